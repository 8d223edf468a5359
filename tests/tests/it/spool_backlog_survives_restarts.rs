//! With the spool, a backlog built while the receiver is down survives the sink being shut
//! down and started again — attempts and backoff included — and then drains in per-ticket
//! order once the receiver is back.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deskhook::Action;
use deskhook::policy::BreakerPolicy;
use deskhook_tests::{Answer, Receiver, Transport, endpoint, for_both_transports, start, ticket};
use deskhook_transports::delivery::AttemptRecord;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, Spool};

const TICKETS: [&str; 4] = ["T1", "T2", "T3", "T4"];
const PER_TICKET: usize = 12;

fn builder(
    receiver: &Receiver,
    spool: Spool,
    attempts: Arc<Mutex<Vec<u32>>>,
) -> deskhook_transports::delivery::SinkBuilder {
    HttpSink::builder()
        .endpoint(
            endpoint(
                "crm",
                receiver,
                "0s,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms",
            )
            .max_in_flight(3),
        )
        .breaker(BreakerPolicy {
            failures: 3,
            cool_down: Duration::from_millis(10),
        })
        .shutdown_timeout(Duration::from_millis(50))
        .observer(move |record: &AttemptRecord<'_>| attempts.lock().unwrap().push(record.attempt))
        .spool(spool)
}

fn a_backlog_survives_a_restart_and_drains_in_order(t: Transport) {
    let down = Arc::new(AtomicBool::new(true));
    let receiver = {
        let down = down.clone();
        Receiver::start(move |_, _| {
            if down.load(Ordering::SeqCst) {
                Answer::status(503)
            } else {
                Answer::status(204)
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Spool::builder(dir.path())
            // A small window: most of the backlog is only on disk.
            .memory_window(8)
            .open()
            .unwrap()
    };

    // First life: everything fails, then the sink stops with the backlog in the spool.
    let first_attempts = Arc::new(Mutex::new(Vec::new()));
    let (sink, guard, dispatcher) = start(t, builder(&receiver, open(), first_attempts.clone()));
    let user = deskhook::sample::user();
    for i in 0..PER_TICKET {
        for code in TICKETS {
            let mut t = ticket(code);
            t.subject = i.to_string();
            dispatcher.emit(Action::Comment, &t, &user);
        }
    }
    let total = TICKETS.len() * PER_TICKET;
    // Each ticket's head is retried: wait until some have failed twice.
    receiver.wait_for(8);
    // One snapshot: an attempt that ends between two reads moves its job from in flight to
    // queued, and a sum of two snapshots' fields can miss it.
    let stats = &sink.stats()[0];
    assert_eq!(stats.queued + stats.in_flight, total, "{stats:?}");
    drop(dispatcher);
    drop(sink);
    assert!(
        guard.shutdown(Duration::from_millis(20)).is_err(),
        "nothing could be delivered"
    );
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!(stats.pending, total as u64, "{stats:?}");
    assert_eq!(stats.dead_letters, 0);
    let failed_before = receiver.count();
    assert!(failed_before >= 8);

    // Second life: the receiver is back; the heads go on from the attempts they had made.
    down.store(false, Ordering::SeqCst);
    let second_attempts = Arc::new(Mutex::new(Vec::new()));
    let (sink, guard, _dispatcher) = start(t, builder(&receiver, open(), second_attempts.clone()));
    guard.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(sink.stats()[0].delivered as usize, total);
    assert!(
        second_attempts.lock().unwrap().iter().any(|n| *n > 1),
        "attempt numbers carry on after the restart: {:?}",
        second_attempts.lock().unwrap()
    );

    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.index);
    let mut next = std::collections::HashMap::new();
    for request in requests.iter().filter(|r| r.status == 204) {
        let body = request.json();
        let code = body["ticket"]["code"].as_str().unwrap().to_owned();
        let subject: usize = body["ticket"]["subject"].as_str().unwrap().parse().unwrap();
        let expected = next.entry(code.clone()).or_insert(0);
        assert_eq!(subject, *expected, "ticket {code} out of order");
        *expected += 1;
    }
    assert!(next.values().all(|n| *n == PER_TICKET), "{next:?}");
    drop(sink);
    guard.shutdown(Duration::from_secs(5)).unwrap();
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 0), "{stats:?}");
}

for_both_transports!(a_backlog_survives_a_restart_and_drains_in_order);
