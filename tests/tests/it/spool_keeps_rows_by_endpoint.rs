//! With a spool, rows belong to an endpoint by name: across a restart they wait until their
//! endpoint is registered again, a paused endpoint keeps them on disk, and a removed one
//! moves them to the dead letters.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{
    Answer, Receiver, Transport, WAIT, endpoint, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::{DeliverySink, Upserted};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, Spool};

fn emit(dispatcher: &deskhook::Dispatcher, codes: &[&str]) {
    let user = deskhook::sample::user();
    for code in codes {
        dispatcher.emit(Action::Comment, &ticket(code), &user);
    }
}

fn wait_in_flight(sink: &DeliverySink, n: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    while sink.totals().in_flight < n {
        assert!(std::time::Instant::now() < deadline, "not {n} in flight");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn rows_wait_for_their_endpoint_across_a_restart(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    {
        // The endpoint is paused: its rows stay on disk, and so they are at the stop.
        let (sink, guard, dispatcher) = start(
            t,
            HttpSink::builder()
                .endpoint(endpoint("crm", &receiver, "0s"))
                .spool(Spool::open(dir.path()).unwrap()),
        );
        sink.endpoints().pause("crm").unwrap();
        emit(&dispatcher, &["W1", "W2", "W1", "W2", "W1"]);
        let undelivered = guard.shutdown(Duration::from_millis(50)).unwrap_err();
        assert!(
            undelivered.to_string().starts_with("5 event(s) queued"),
            "{undelivered}"
        );
    }
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.registered), (5, 1), "{stats:?}");
    assert_eq!(receiver.count(), 0);

    // The next run starts with no endpoints: the rows wait for theirs.
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
    );
    guard.flush(WAIT).unwrap();
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!(
        (stats.pending, stats.waiting_for_endpoint, stats.registered),
        (5, 5, 0),
        "{stats:?}"
    );
    assert_eq!(
        sink.endpoints()
            .upsert(endpoint("crm", &receiver, "0s"))
            .unwrap(),
        Upserted::Added
    );
    guard.flush(WAIT).unwrap();
    let mut requests = receiver.wait_for(5);
    requests.sort_by_key(|r| r.index);
    for code in ["W1", "W2"] {
        let sequences: Vec<&str> = requests
            .iter()
            .filter(|r| r.json()["ticket"]["code"] == code)
            .map(|r| r.header("x-deskhook-sequence").unwrap())
            .collect();
        let expected = if code == "W1" {
            vec!["1", "2", "3"]
        } else {
            vec!["1", "2"]
        };
        assert_eq!(sequences, expected, "{code} in order");
    }
    guard.shutdown(WAIT).unwrap();
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 0), "{stats:?}");
}

fn remove_moves_the_rows_to_the_dead_letters_and_lets_the_attempt_finish(t: Transport) {
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let receiver = Receiver::start(move |_, _| {
        let _ = released.lock().unwrap().recv_timeout(WAIT);
        Answer::status(204)
    });
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(1))
            .spool(Spool::open(dir.path()).unwrap()),
    );
    emit(&dispatcher, &["X1"; 8]);
    wait_in_flight(&sink, 1);
    let removed = sink.endpoints().remove("crm").unwrap();
    assert_eq!((removed.dead_lettered, removed.in_flight), (7, 1));
    // Events for it now go nowhere; the one in flight is delivered and its row goes.
    emit(&dispatcher, &["X1"]);
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();
    assert_eq!(receiver.wait_for(1).len(), 1);
    // Registered again: it starts with nothing queued.
    sink.endpoints()
        .upsert(endpoint("crm", &receiver, "0s"))
        .unwrap();
    let info = sink.endpoints().get("crm").unwrap();
    assert_eq!((info.stats.queued, info.stats.delivered), (0, 0));
    guard.shutdown(WAIT).unwrap();
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 7), "{stats:?}");
    let letters = spool::read_dead_letters(dir.path()).unwrap();
    assert!(letters.iter().all(|l| l.reason == "endpoint removed"));
}

for_both_transports!(
    rows_wait_for_their_endpoint_across_a_restart,
    remove_moves_the_rows_to_the_dead_letters_and_lets_the_attempt_finish,
);
