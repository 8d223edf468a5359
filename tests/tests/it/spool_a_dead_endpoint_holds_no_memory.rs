//! With the spool, an endpoint that cannot send for a while holds none of the sink's memory
//! budget: its breaker open, its tickets' next retries far off, or paused, its rows wait on
//! disk, and another endpoint's events flow though the budget could not hold both
//! endpoints'.
//! Once it is resumed, or its breaker's probe goes through, its events follow in order,
//! each with the `X-Deskhook-Sequence` it had (a retry read back from disk is sent with the
//! number of its first attempt).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deskhook::policy::BreakerPolicy;
use deskhook::{Action, Dispatcher};
use deskhook_tests::{Answer, Received, Receiver, Transport, endpoint, for_both_transports};
use deskhook_tests::{start, ticket};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::Spool;

const TICKETS: usize = 10;
const PER_TICKET: usize = 10;
const EVENTS: usize = TICKETS * PER_TICKET;

/// What keeps the dead endpoint from sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stuck {
    /// Its breaker opens at the first failure, for an hour.
    BreakerOpen,
    /// Its breaker opens at the first failure, for 300 ms at a time, and it recovers by
    /// itself: a probe goes through.
    BreakerProbes,
    /// No breaker; each ticket's first attempt fails and its retry is an hour away.
    RetriesLater,
    /// As `RetriesLater`, and the sink restarts: its rows are read with their retry times.
    RetriesLaterRestarted,
    /// No breaker, retries every 10 ms; an operator pauses it.
    Paused,
}

/// Emits the test's events for `tenant`: each ticket's i-th with subject `i`.
fn emit(dispatcher: &Dispatcher, tenant: &str) {
    let user = deskhook::sample::user();
    for i in 0..PER_TICKET {
        for n in 0..TICKETS {
            let mut t = ticket(&format!("{tenant}{n}"));
            t.subject = i.to_string();
            dispatcher
                .for_tenant(tenant)
                .emit(Action::Comment, &t, &user);
        }
    }
}

/// Waits (up to 20 s) until `receiver` has answered `n` requests with `status`.
fn wait_for(receiver: &Receiver, status: u16, n: usize) -> usize {
    let count = || {
        receiver
            .requests()
            .iter()
            .filter(|r| r.status == status)
            .count()
    };
    for _ in 0..1000 {
        if count() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    count()
}

/// The ticket and subject of a request.
fn ticket_and_subject(request: &Received) -> (String, usize) {
    let body = request.json();
    let code = body["ticket"]["code"].as_str().unwrap().to_owned();
    (
        code,
        body["ticket"]["subject"].as_str().unwrap().parse().unwrap(),
    )
}

fn a_dead_endpoint_holds_no_memory(t: Transport, stuck: Stuck) {
    let down = Arc::new(AtomicBool::new(true));
    let dead = {
        let down = down.clone();
        Receiver::start(move |_, _| {
            Answer::status(if down.load(Ordering::SeqCst) {
                503
            } else {
                204
            })
        })
    };
    let live = Receiver::start(|_, _| Answer::status(204));
    let often = format!("0s{}", ",10ms".repeat(500));
    let (retry, breaker, cool_down) = match stuck {
        Stuck::BreakerOpen => (often.as_str(), 1, Duration::from_secs(3600)),
        Stuck::BreakerProbes => (often.as_str(), 1, Duration::from_millis(300)),
        Stuck::RetriesLater | Stuck::RetriesLaterRestarted => ("0s,1h", 0, Duration::ZERO),
        Stuck::Paused => (often.as_str(), 0, Duration::ZERO),
    };
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        start(
            t,
            HttpSink::builder()
                // One attempt at a time: the breaker opens at the first failure.
                .endpoint(endpoint("dead", &dead, retry).tenant("a").max_in_flight(1))
                .endpoint(endpoint("live", &live, "0s").tenant("b"))
                .breaker(BreakerPolicy {
                    failures: breaker,
                    cool_down,
                })
                // Room for about 17 of the 9 KiB events in memory: the dead endpoint's hundred
                // would take it all, and the live endpoint could read none of its own.
                .max_queued_bytes(160 * 1024)
                .spool(
                    Spool::builder(dir.path())
                        .memory_window(64)
                        // Less than the 300 ms of a breaker that probes (the default is 10 s).
                        .rest_after(Duration::from_millis(100))
                        .open()
                        .unwrap(),
                ),
        )
    };
    let (mut sink, mut guard, mut dispatcher) = open();

    // The dead endpoint fails and stops trying: one attempt with its breaker open, one per
    // ticket with its retries an hour away, or as many as came before it was paused.
    emit(&dispatcher, "a");
    let failed = match stuck {
        Stuck::RetriesLater | Stuck::RetriesLaterRestarted => TICKETS,
        Stuck::BreakerOpen | Stuck::BreakerProbes | Stuck::Paused => 1,
    };
    // Those that go on trying (probes, retries before the pause) have tried at least that.
    let goes_on = matches!(stuck, Stuck::BreakerProbes | Stuck::Paused);
    let seen = wait_for(&dead, 503, failed);
    if goes_on {
        assert!(seen >= failed);
    } else {
        assert_eq!(seen, failed);
    }
    if stuck == Stuck::Paused {
        sink.endpoints().pause("dead").unwrap();
    }
    if stuck == Stuck::RetriesLaterRestarted {
        drop((dispatcher, sink));
        // What waits for its retry stays in the spool for the next start, and says so.
        match guard.shutdown(Duration::from_millis(100)) {
            Err(deskhook_transports::Error::Undelivered { queued, .. }) => {
                assert_eq!(queued, EVENTS);
            }
            other => panic!("the shutdown said {other:?}"),
        }
        (sink, guard, dispatcher) = open();
    }

    // The live endpoint's events all go meanwhile.
    emit(&dispatcher, "b");
    assert_eq!(
        wait_for(&live, 204, EVENTS),
        EVENTS,
        "the live endpoint was held up: {:?}",
        sink.stats()
    );
    if !goes_on {
        assert_eq!(
            dead.requests().len(),
            failed,
            "the dead endpoint was tried again"
        );
    }

    // A flush does not wait for what waits behind the open breaker, on disk or not: it
    // says so at once rather than at its deadline.
    if stuck == Stuck::BreakerOpen {
        match guard.flush(Duration::from_secs(20)) {
            Err(deskhook_transports::Error::Undelivered { held, held_by, .. }) => {
                assert_eq!((held, held_by), (EVENTS, vec!["dead".to_owned()]));
            }
            other => panic!("the flush said {other:?}"),
        }
    }

    // The dead endpoint comes back (resumed, or found by a probe): its events follow, in
    // order, with their numbers.
    down.store(false, Ordering::SeqCst);
    if stuck != Stuck::BreakerProbes {
        sink.endpoints().resume("dead").unwrap();
    }
    guard.flush(Duration::from_secs(30)).unwrap();
    let stats = sink.stats();
    let of = |name: &str| stats.iter().find(|s| s.name == name).unwrap();
    assert_eq!(of("dead").delivered as usize, EVENTS, "{stats:?}");
    assert_eq!(of("dead").dead_lettered, 0, "{stats:?}");
    let mut requests = dead.requests();
    requests.sort_by_key(|r| r.index);
    let failed = requests.iter().filter(|r| r.status == 503).count();
    assert_eq!(requests.len(), EVENTS + failed);
    let mut next: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        let (code, n) = ticket_and_subject(request);
        let sequence = request.header("x-deskhook-sequence").unwrap();
        assert_eq!(sequence, (n + 1).to_string(), "ticket {code}, event {n}");
        if request.status == 204 {
            let expected = next.entry(code.clone()).or_default();
            assert_eq!(n, *expected, "ticket {code} out of order");
            *expected += 1;
        }
    }
    assert!(next.values().all(|n| *n == PER_TICKET), "{next:?}");
    drop((dispatcher, sink));
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// After a restart, rows due now behind many rows that wait (tickets whose retry is an hour
/// away, and the rows behind those) are read and delivered: a read whose rows all wait does
/// not leave the lane without a next look.
fn rows_due_now_behind_rows_that_wait_are_read(t: Transport) {
    let receiver = Receiver::start(|request, _| {
        let (code, _) = ticket_and_subject(request);
        Answer::status(if code.starts_with('a') { 503 } else { 204 })
    });
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        start(
            t,
            HttpSink::builder()
                // Ten attempts, then one every six minutes: the last tickets wait untried.
                .endpoint(
                    endpoint("crm", &receiver, "0s,1h")
                        .max_in_flight(1)
                        .rate_limit(TICKETS as u32, Duration::from_secs(3600))
                        .unwrap(),
                )
                .spool(
                    Spool::builder(dir.path())
                        // Reads of four rows: the hundred that wait take 25 of them.
                        .memory_window(4)
                        .rest_after(Duration::from_millis(100))
                        .open()
                        .unwrap(),
                ),
        )
    };
    let (sink, guard, dispatcher) = open();
    emit(&dispatcher, "a");
    assert_eq!(wait_for(&receiver, 503, TICKETS), TICKETS);
    let user = deskhook::sample::user();
    for n in 0..TICKETS {
        let mut t = ticket(&format!("c{n}"));
        t.subject = "0".to_owned();
        dispatcher.emit(Action::Comment, &t, &user);
    }
    drop((dispatcher, sink));
    assert!(guard.shutdown(Duration::from_millis(100)).is_err());
    assert_eq!(receiver.requests().len(), TICKETS, "the c tickets waited");

    // Started again, with ten tokens: the a tickets' rows wait for their hour, the c
    // tickets' go.
    let (sink, guard, dispatcher) = open();
    assert_eq!(
        wait_for(&receiver, 204, TICKETS),
        TICKETS,
        "{:?}",
        sink.stats()
    );
    assert_eq!(receiver.requests().len(), 2 * TICKETS);
    drop((dispatcher, sink));
    assert!(guard.shutdown(Duration::from_millis(100)).is_err());
}

fn with_its_breaker_open(t: Transport) {
    a_dead_endpoint_holds_no_memory(t, Stuck::BreakerOpen);
}

fn with_its_breaker_probing(t: Transport) {
    a_dead_endpoint_holds_no_memory(t, Stuck::BreakerProbes);
}

fn with_its_retries_far_off(t: Transport) {
    a_dead_endpoint_holds_no_memory(t, Stuck::RetriesLater);
}

fn with_its_retries_far_off_after_a_restart(t: Transport) {
    a_dead_endpoint_holds_no_memory(t, Stuck::RetriesLaterRestarted);
}

fn paused(t: Transport) {
    a_dead_endpoint_holds_no_memory(t, Stuck::Paused);
}

for_both_transports!(
    with_its_breaker_open,
    with_its_breaker_probing,
    with_its_retries_far_off,
    with_its_retries_far_off_after_a_restart,
    paused,
    rows_due_now_behind_rows_that_wait_are_read
);
