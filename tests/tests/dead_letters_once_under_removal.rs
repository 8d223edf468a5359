//! An attempt that gives up writes its dead letter after it lets go of its endpoint's lock;
//! an endpoint removed in between must not write that event's letter a second time (with a
//! spool, the removal moves every row not in flight). The test holds the worker inside that
//! window through the `log` record of the letter, so it installs a global logger: a process
//! of its own.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, WAIT, endpoint, start, ticket};
use deskhook_transports::delivery::DeadLetterQuery;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::Spool;

/// Holds the thread that logs the first dead letter until the test lets it go.
struct Holding {
    reached: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

impl log::Log for Holding {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if !record.args().to_string().contains("dead-lettered to") {
            return;
        }
        // Only the first: taken once.
        let Some(reached) = self.reached.lock().unwrap().take() else {
            return;
        };
        let release = self.release.lock().unwrap().take().unwrap();
        reached.send(()).unwrap();
        let _ = release.recv_timeout(WAIT);
    }

    fn flush(&self) {}
}

static LOGGER: OnceLock<Holding> = OnceLock::new();

#[test]
fn a_letter_written_while_its_endpoint_is_removed_is_written_once() {
    let (reached_tx, reached) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let logger = LOGGER.get_or_init(|| Holding {
        reached: Mutex::new(Some(reached_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    log::set_logger(logger).unwrap();
    log::set_max_level(log::LevelFilter::Warn);

    // 400: given up at once. One ticket, one request at a time: the second event waits
    // behind the first.
    let receiver = Receiver::start(|_, _| Answer::status(400));
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::builder(dir.path()).open().unwrap();
    let (sink, guard, dispatcher) = start(
        Transport::Blocking,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(1))
            .spool(spool),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("T1"), &user);
    dispatcher.emit(Action::Comment, &ticket("T1"), &user);

    // The first event's attempt gave up and is writing its letter: remove the endpoint now.
    reached
        .recv_timeout(WAIT)
        .expect("the first letter is written");
    let removed = sink.endpoints().remove("crm").unwrap();
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();

    // The spool's writer moves the rows on its own thread: wait for the attempt's own letter
    // (the 400), written after the removal's.
    let list = || {
        sink.dead_letters()
            .list(&DeadLetterQuery::default())
            .unwrap()
            .items
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !list().iter().any(|s| s.letter.reason.contains("400"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let letters = list();
    let mut ids: Vec<&str> = letters.iter().map(|s| s.letter.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        (letters.len(), ids.len()),
        (2, 2),
        "one letter per event: {:?}",
        letters
            .iter()
            .map(|s| (&s.letter.id, &s.letter.reason))
            .collect::<Vec<_>>()
    );
    assert_eq!(removed.dead_lettered, 1, "the queued event only");
    assert_eq!(sink.totals().queued, 0);
    assert_eq!(receiver.count(), 1);
}
