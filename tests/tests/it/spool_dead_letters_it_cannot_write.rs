//! With a spool, a dead letter counts once the spool has written it, and its job is
//! outstanding until then: a flush waits for the letter, and the counts are right when it
//! returns. One the spool cannot write is not counted as dead-lettered, and a flush does not
//! wait for it: its event stays in the spool when it has a row there (for the next start),
//! and is counted as dropped when it has none (an event too large to queue).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deskhook::Action;
use deskhook::Dispatcher;
use deskhook::EventRef;
use deskhook::sink::Emitted;
use deskhook_tests::{
    Answer, Receiver, Transport, WAIT, endpoint, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::{DeadLetterQuery, DeliveryGuard, DeliverySink, Routed};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{DATABASE_FILE, Spool};

/// Letters the spool writes are counted and listable as soon as a flush returns, and a
/// flush waits for them: here the spool's writer is held up by a write lock taken from
/// another connection while three events are given up and one too large to queue is
/// refused.
fn a_flush_waits_for_the_letters_to_be_written(t: Transport) {
    let (gate, receiver) = gated_503();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = spooled(t, &receiver, dir.path());
    let user = deskhook::sample::user();
    for code in ["W1", "W2", "W3"] {
        dispatcher.emit(Action::Create, &ticket(code), &user);
    }
    // The events are in the spool (emit waits for their commit); their attempts wait at
    // the receiver. The writer is held up from here on (its busy timeout is 5 s).
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    gate.store(true, Ordering::SeqCst);
    receiver.wait_for(3);
    let routed = route_too_large(&sink);
    assert!(routed.refused[0].dead_lettered, "{routed:?}");
    guard.flush(Duration::from_millis(100)).unwrap_err();
    assert_eq!(sink.stats()[0].dead_lettered, 0, "none is written yet");

    db.execute_batch("COMMIT").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(counts(&sink), (4, 0, 0));
    let letters = sink.dead_letters().list(&DeadLetterQuery::new()).unwrap();
    assert_eq!(letters.items.len(), 4);
    drop(sink);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A receiver that answers 503 once `gate` is set, and holds each request until then.
fn gated_503() -> (Arc<AtomicBool>, Receiver) {
    let gate = Arc::new(AtomicBool::new(false));
    let receiver = {
        let gate = gate.clone();
        Receiver::start(move |_, _| {
            while !gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            Answer::status(503)
        })
    };
    (gate, receiver)
}

/// Waits (at most `WAIT`) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not in {WAIT:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A paused endpoint's events whose letters the spool is writing (one given up, one too
/// large to queue) are not reported held by the pause: a flush waits for the letters.
fn a_letter_being_written_is_not_held_by_a_pause(t: Transport) {
    let (gate, receiver) = gated_503();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = spooled(t, &receiver, dir.path());
    dispatcher.emit(Action::Create, &ticket("P1"), &deskhook::sample::user());
    wait_until("in flight", || sink.stats()[0].in_flight == 1);
    sink.endpoints().pause("crm").unwrap();
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    gate.store(true, Ordering::SeqCst);
    wait_until("given up", || sink.stats()[0].in_flight == 0);
    assert!(route_too_large(&sink).refused[0].dead_lettered);
    match guard.flush(Duration::from_millis(100)) {
        Err(deskhook_transports::Error::Undelivered { held, held_by, .. }) => {
            assert_eq!(
                (held, held_by),
                (0, Vec::<String>::new()),
                "not held by the pause"
            );
        }
        other => panic!("the letter is not written yet: {other:?}"),
    }
    db.execute_batch("COMMIT").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(counts(&sink), (2, 0, 0));
    drop(sink);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A sink of transport `t` with endpoint "crm" (one attempt) at `receiver`, a 16 KiB
/// `max_payload`, and a spool in `dir`.
fn spooled(
    t: Transport,
    receiver: &Receiver,
    dir: &Path,
) -> (DeliverySink, DeliveryGuard, Dispatcher) {
    start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", receiver, "0s"))
            .max_payload(16 * 1024)
            .spool(Spool::builder(dir).open().unwrap()),
    )
}

/// The endpoint's dead-lettered and dropped events, and those still queued or in flight.
fn counts(sink: &DeliverySink) -> (u64, u64, usize) {
    let stats = &sink.stats()[0];
    (
        stats.dead_lettered,
        stats.dropped,
        stats.queued + stats.in_flight,
    )
}

/// `sink.route_now` of an event over the 16 KiB `max_payload` of these tests.
fn route_too_large(sink: &DeliverySink) -> Routed {
    let mut large = ticket("L1");
    large.subject = "x".repeat(16 * 1024);
    let user = deskhook::sample::user();
    let event = EventRef::new(Action::Create, &large, &user);
    sink.route_now(&Emitted::new(event).unwrap())
}

/// The dead letters' table is gone (as if the disk failed under it): the letter of an event
/// given up is not counted, and its event stays in the spool; the letter of an event too
/// large to queue is counted as dropped once the spool gives it up.
fn a_letter_the_spool_cannot_write_is_not_counted_as_dead_lettered(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(503));
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = spooled(t, &receiver, dir.path());
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute("DROP TABLE dead_letters", []).unwrap();

    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("D1"), &user);
    receiver.wait_for(1);
    let routed = route_too_large(&sink);
    assert_eq!(routed.refused.len(), 1, "{routed:?}");
    // The flush waits for the letter's write, and not past its failure: the letter is kept
    // to be written again, and counted then.
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(counts(&sink), (0, 0, 0));

    drop(dispatcher);
    let _ = guard.shutdown(Duration::from_millis(200));
    assert_eq!(
        counts(&sink),
        (0, 1, 0),
        "the large event's letter is dropped; the other's event stays in the spool"
    );
    let rows: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows, 1,
        "the given-up event waits in the spool for the next start"
    );
    assert_eq!(receiver.count(), 1);
}

for_both_transports!(
    a_flush_waits_for_the_letters_to_be_written,
    a_letter_being_written_is_not_held_by_a_pause,
    a_letter_the_spool_cannot_write_is_not_counted_as_dead_lettered
);
