//! The engine driven by hand: no worker threads, the test takes each attempt and settles
//! it, so that the interleavings that matter happen in the order a test sets.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Engine;
use super::attempt::{Attempt, Next};
use crate::delivery::{Endpoint, Response, SinkBuilder};

thread_local! {
    /// Run by `settle` on this thread just before it takes the lane's lock: a test's
    /// stand-in for the thread being preempted there.
    static BEFORE_SETTLE_LOCK: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

/// Called by `settle` before it takes the lane's lock.
pub(super) fn before_settle_lock() {
    if let Some(hook) = BEFORE_SETTLE_LOCK.take() {
        hook();
    }
}

/// An engine with one endpoint, `crm`, retried after `retry` (no jitter), and no workers.
fn engine(retry: Duration, dir: &tempfile::TempDir) -> Arc<Engine> {
    let schedule = format!("0s,{}ms", retry.as_millis())
        .parse::<deskhook::policy::RetrySchedule>()
        .expect("a schedule")
        .with_jitter(0.0);
    let endpoint = Endpoint::new("crm", "http://127.0.0.1:9/")
        .expect("a URL")
        .max_in_flight(4)
        .retry(schedule);
    let (engine, _) = SinkBuilder::new()
        .endpoint(endpoint)
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .start_engine(Box::new(crate::delivery::lane::Nowhere))
        .expect("the engine starts");
    engine.pool().set_limit(8);
    engine
}

/// Emits an event of each ticket and routes them.
fn emit(engine: &Arc<Engine>, tickets: &[&str]) {
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("test", crate::delivery::DeliverySink::new(engine.clone()))
        .build();
    let user = deskhook::sample::user();
    for code in tickets {
        let mut ticket = deskhook::sample::ticket();
        ticket.code = (*code).to_owned();
        dispatcher.emit(deskhook::Action::Create, &ticket, &user);
    }
    engine.route_all();
}

fn attempt(engine: &Arc<Engine>) -> Attempt {
    match engine.next_attempt() {
        Next::Attempt(attempt) => attempt,
        other => panic!("expected an attempt, the engine said {other:?}"),
    }
}

fn status(status: u16) -> Result<Response, crate::delivery::AttemptError> {
    Ok(Response {
        status,
        retry_after: None,
        snippet: Vec::new(),
    })
}

#[test]
fn a_retry_settled_after_its_lanes_timer_fired_gets_a_timer_of_its_own() {
    // Ticket A's retry arms the lane's timer for t. Ticket B's attempt ends before t, but
    // its thread waits for the lane's lock until the timer has fired and a worker has
    // looked at the lane (and taken A's retry). B's retry, due after t, must get a timer
    // of its own: the one the lane had is spent.
    let retry = Duration::from_millis(150);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(retry, &dir);
    emit(&engine, &["A", "B"]);
    let (a, b) = (attempt(&engine), attempt(&engine));
    assert_eq!((&*a.job().event.key, &*b.job().event.key), ("A", "B"));
    // A's retry is due at t, between these two bounds.
    let t_earliest = Instant::now() + retry;
    a.finish(status(503), Duration::ZERO);
    let t_latest = Instant::now() + retry;

    let (reached_tx, reached) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let settling = std::thread::spawn(move || {
        BEFORE_SETTLE_LOCK.set(Some(Box::new(move || {
            reached_tx.send(Instant::now()).expect("the test waits");
            go_rx.recv().expect("the test says when");
        })));
        b.finish(status(503), Duration::ZERO);
    });
    let at = reached.recv().expect("B's settle reaches the lock");
    assert!(
        at < t_earliest,
        "B's attempt must end before A's retry is due (make `retry` longer)"
    );

    // The timer fires, and a worker's look takes A's retry.
    std::thread::sleep(
        t_latest.saturating_duration_since(Instant::now()) + Duration::from_millis(5),
    );
    let a_again = attempt(&engine);
    assert_eq!(&*a_again.job().event.key, "A");
    go.send(()).expect("B's settle waits");
    settling.join().expect("B's settle ends");

    // B's retry falls due, and a worker finds it.
    std::thread::sleep(retry + Duration::from_millis(5));
    let b_again = attempt(&engine);
    assert_eq!(&*b_again.job().event.key, "B");
    a_again.finish(status(204), Duration::ZERO);
    b_again.finish(status(204), Duration::ZERO);
    engine
        .flush(Duration::from_secs(1))
        .expect("both delivered");
}
