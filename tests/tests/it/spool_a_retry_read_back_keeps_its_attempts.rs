//! A retry that rests on disk (see `SpoolBuilder::rest_after`) is read back with the
//! attempts it made, even when the spool's writer has not written them yet: a write that
//! fails for a while (a full disk), or a pause and resume right after the attempt, would
//! otherwise read the row as it was before, and the event would be tried again from its
//! first attempt, past its retry schedule, for as long as the writes fail.

use std::time::{Duration, Instant};

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, endpoint, for_both_transports, start, ticket};
use deskhook_transports::delivery::DeadLetterQuery;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{DATABASE_FILE, Spool};

fn a_retry_read_back_keeps_its_attempts(t: Transport) {
    let down = Receiver::start(|_, _| Answer::status(503));
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            // Three attempts, then the dead letters.
            .endpoint(endpoint("crm", &down, "0s,30ms,30ms"))
            .spool(
                Spool::builder(dir.path())
                    // Each retry rests on disk until it is due.
                    .rest_after(Duration::from_millis(10))
                    .open()
                    .unwrap(),
            ),
    );
    // The writer cannot record an attempt (as on a full disk) until the trigger goes: it
    // keeps the outcomes and writes them again.
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER held BEFORE UPDATE ON events \
         BEGIN SELECT RAISE(ABORT, 'held by the test'); END;",
    )
    .unwrap();

    dispatcher.emit(Action::Create, &ticket("R1"), &deskhook::sample::user());
    down.wait_for(3);
    db.execute_batch("DROP TRIGGER held").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();

    assert_eq!(
        down.count(),
        3,
        "each retry read back from disk went on from the attempts it had made"
    );
    // The letter's write may have failed once before the trigger went: it is written again
    // a moment later.
    let deadline = Instant::now() + deskhook_tests::WAIT;
    let attempts = loop {
        let letters = sink.dead_letters().list(&DeadLetterQuery::new()).unwrap();
        if !letters.items.is_empty() || Instant::now() > deadline {
            break letters
                .items
                .iter()
                .map(|s| s.letter.attempts)
                .collect::<Vec<u32>>();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(attempts, [3], "one dead letter, after its three attempts");
    assert_eq!(down.count(), 3, "and nothing sent since");
}

for_both_transports!(a_retry_read_back_keeps_its_attempts);
