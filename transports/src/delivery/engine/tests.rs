//! The engine driven by hand: no worker threads, the test takes each attempt and settles
//! it, so that the interleavings that matter happen in the order a test sets.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use super::Engine;
use super::attempt::{Attempt, Next};
use crate::delivery::history::AttemptQuery;
use crate::delivery::pool::Popped;
use crate::delivery::{AttemptRecord, Endpoint, Response, SinkBuilder, lock};

thread_local! {
    /// Run by `settle` on this thread just before it takes the lane's lock: a test's
    /// stand-in for the thread being preempted there.
    pub(super) static BEFORE_SETTLE_LOCK: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

/// Called by `settle` before it takes the lane's lock.
pub(super) fn before_settle_lock() {
    if let Some(hook) = BEFORE_SETTLE_LOCK.take() {
        hook();
    }
}

thread_local! {
    /// Run by a walk of the registry on this thread once it has let go of the read lock and
    /// before it waits for the lanes it found locked.
    pub(crate) static OUT_OF_THE_READ_LOCK: RefCell<Option<Box<dyn FnOnce()>>> =
        RefCell::new(None);
}

/// Called by a walk of the registry once out of its read lock, before it waits for lanes.
pub(crate) fn out_of_the_read_lock() {
    if let Some(hook) = OUT_OF_THE_READ_LOCK.take() {
        hook();
    }
}

thread_local! {
    /// Run by `settle` on this thread before it writes the letter of an attempt given up.
    pub(super) static BEFORE_DYING_LETTER: RefCell<Option<Box<dyn FnOnce()>>> =
        RefCell::new(None);
}

/// Called by `settle` before it writes the letter of an attempt given up.
pub(super) fn before_dying_letter() {
    if let Some(hook) = BEFORE_DYING_LETTER.take() {
        hook();
    }
}

thread_local! {
    /// Run by `close_lane` on this thread between its release and its completion.
    pub(super) static BETWEEN_RELEASE_AND_COMPLETE: RefCell<Option<Box<dyn FnOnce()>>> =
        RefCell::new(None);
}

/// Called by `close_lane` between the release of the lane's queue and its completion.
pub(super) fn between_release_and_complete() {
    if let Some(hook) = BETWEEN_RELEASE_AND_COMPLETE.take() {
        hook();
    }
}

thread_local! {
    /// Run by `shutdown` on this thread between its flush and its stop.
    pub(super) static BETWEEN_FLUSH_AND_STOP: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

/// Called by `shutdown` between its flush and its stop.
pub(super) fn between_flush_and_stop() {
    if let Some(hook) = BETWEEN_FLUSH_AND_STOP.take() {
        hook();
    }
}

thread_local! {
    /// Run by an endpoint's update on this thread once it has let go of the registry's
    /// write lock.
    pub(super) static AFTER_UPDATE: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

/// Called by an endpoint's update once it has let go of the registry's write lock.
pub(crate) fn after_update() {
    if let Some(hook) = AFTER_UPDATE.take() {
        hook();
    }
}

/// An endpoint retried once, after `retry` (no jitter), with up to 4 requests in flight.
pub(super) fn endpoint(name: &str, retry: Duration) -> Endpoint {
    let schedule = format!("0s,{}ms", retry.as_millis())
        .parse::<deskhook::policy::RetrySchedule>()
        .expect("a schedule")
        .with_jitter(0.0);
    Endpoint::new(name, "http://127.0.0.1:9/")
        .expect("a URL")
        .max_in_flight(4)
        .retry(schedule)
}

/// An engine with `endpoints` and `slots` requests in flight at most, and no workers.
pub(super) fn engine(
    endpoints: Vec<Endpoint>,
    slots: usize,
    dir: &tempfile::TempDir,
) -> Arc<Engine> {
    engine_of(SinkBuilder::new(), endpoints, slots, dir)
}

/// [`engine`] from a builder with other settings.
pub(super) fn engine_of(
    builder: SinkBuilder,
    endpoints: Vec<Endpoint>,
    slots: usize,
    dir: &tempfile::TempDir,
) -> Arc<Engine> {
    let mut builder = builder.dead_letter_path(dir.path().join("dead.jsonl"));
    for endpoint in endpoints {
        builder = builder.endpoint(endpoint);
    }
    let (engine, _) = builder
        .start_engine(Box::new(crate::delivery::lane::Nowhere))
        .expect("the engine starts");
    engine.pool().set_limit(slots);
    engine
}

/// An engine with endpoint "crm" (retried after a minute) and a spool in `dir`, and no
/// workers.
#[cfg(feature = "spool")]
pub(super) fn spooled_engine(dir: &tempfile::TempDir) -> Arc<Engine> {
    let (engine, _) = SinkBuilder::new()
        .endpoint(endpoint("crm", Duration::from_secs(60)))
        .spool(crate::spool::Spool::open(dir.path()).expect("a spool"))
        .start_engine(Box::new(crate::delivery::lane::Nowhere))
        .expect("the engine starts");
    engine
}

/// Emits an event of each ticket and routes them.
pub(super) fn emit(engine: &Arc<Engine>, tickets: &[&str]) {
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

pub(super) fn attempt(engine: &Arc<Engine>) -> Attempt {
    match engine.next_attempt() {
        Next::Attempt(attempt) => attempt,
        other => panic!("expected an attempt, the engine said {other:?}"),
    }
}

/// The next attempt, once it is due (waiting for its instant).
fn due_attempt(engine: &Arc<Engine>) -> Attempt {
    loop {
        match engine.next_attempt() {
            Next::Attempt(attempt) => return attempt,
            Next::Wait(Some(at)) => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            other => panic!("an attempt is due, the engine said {other:?}"),
        }
    }
}

/// An observer that holds the thread of each attempt `holds` picks until the test sends on
/// the returned sender, and says on the receiver that it got there.
fn holding_observer(
    holds: impl Fn(&AttemptRecord<'_>) -> bool + Send + Sync + 'static,
) -> (
    impl crate::delivery::Observer + 'static,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (reached_tx, reached) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let observer = move |record: &AttemptRecord<'_>| {
        if holds(record) {
            reached_tx.send(()).expect("the test waits");
            lock(&go_rx).recv().expect("the test says when");
        }
    };
    (observer, reached, go)
}

pub(super) fn status(status: u16) -> Result<Response, crate::delivery::AttemptError> {
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
    let retry = Duration::from_millis(400);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", retry)], 8, &dir);
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

#[test]
fn a_retry_due_at_once_waits_until_the_attempt_before_it_is_logged_and_observed() {
    // The first retry is due at once. Were it handed out while the failed attempt's thread
    // is still logging it, its own record could come first in the attempt log and to the
    // observer. The observer here holds attempt 1's thread while the test looks for work.
    let (observer, reached, go) = holding_observer(|record| record.attempt == 1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let builder = SinkBuilder::new().observer(observer);
    let engine = engine_of(builder, vec![endpoint("crm", Duration::ZERO)], 8, &dir);
    emit(&engine, &["A"]);
    let first = attempt(&engine);
    let settling = std::thread::spawn(move || first.finish(status(503), Duration::ZERO));
    reached.recv().expect("attempt 1 is observed");
    let logged = engine
        .attempts(&AttemptQuery::new())
        .expect("the attempt log");
    assert_eq!(
        logged.items.len(),
        1,
        "attempt 1 is logged before it is observed"
    );
    match engine.next_attempt() {
        Next::Wait(_) => {}
        Next::Attempt(early) => panic!(
            "attempt {} went before attempt 1 was observed",
            early.job().attempts
        ),
        Next::Stop => panic!("the engine stopped"),
    }
    go.send(()).expect("attempt 1's observer waits");
    settling.join().expect("attempt 1 is settled");

    // Now it goes: the lane's timer is due at once.
    let second = due_attempt(&engine);
    assert_eq!((&*second.job().event.key, second.job().attempts), ("A", 2));
    second.finish(status(204), Duration::ZERO);
    let logged = engine
        .attempts(&AttemptQuery::new())
        .expect("the attempt log");
    let order: Vec<u32> = logged
        .items
        .iter()
        .rev()
        .map(|entry| entry.attempt)
        .collect();
    assert_eq!(order, [1, 2], "the log, oldest first");
}

#[test]
fn a_lane_whose_retry_is_held_for_its_log_is_not_idle_for_a_flush() {
    // B waits an hour for its second retry; A's retry, due at once, is held while A's
    // attempt is observed. A flush looking then must not find the lane idle past its
    // deadline (B's hour): A is due.
    let (observer, reached, go) = holding_observer(|record| record.ticket == "A");
    let schedule = "0s,0s,3600s"
        .parse::<deskhook::policy::RetrySchedule>()
        .expect("a schedule")
        .with_jitter(0.0);
    let crm = Endpoint::new("crm", "http://127.0.0.1:9/")
        .expect("a URL")
        .max_in_flight(4)
        .retry(schedule);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine_of(SinkBuilder::new().observer(observer), vec![crm], 8, &dir);
    emit(&engine, &["B", "A"]);
    let (b, a) = (attempt(&engine), attempt(&engine));
    assert_eq!((&*b.job().event.key, &*a.job().event.key), ("B", "A"));
    b.finish(status(503), Duration::ZERO);
    let b = due_attempt(&engine);
    assert_eq!((&*b.job().event.key, b.job().attempts), ("B", 2));
    b.finish(status(503), Duration::ZERO);

    let settling = std::thread::spawn(move || a.finish(status(503), Duration::ZERO));
    reached.recv().expect("A's attempt is observed");
    let (now, wait) = (Instant::now(), Duration::from_secs(60));
    let held = engine.held_past(now + wait, now, &mut None, wait);
    go.send(()).expect("A's observer waits");
    settling.join().expect("A's attempt is settled");
    assert!(
        held.is_none(),
        "a flush gave up on a lane with a retry due: {held:?}"
    );
}

#[test]
fn a_slot_handed_to_a_lane_that_cannot_use_it_goes_to_the_next_lane_waiting() {
    // One slot. Endpoints a and b each have an attempt due, and wait for the slot (as a
    // worker finds them when another takes the slot just before). a is paused, then its
    // attempt in flight ends: the slot is handed to a, which cannot use it, and must go on
    // to b.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let retry = Duration::from_secs(60);
    let engine = engine(vec![endpoint("a", retry), endpoint("b", retry)], 1, &dir);
    emit(&engine, &["T1"]);
    let a1 = attempt(&engine);
    assert_eq!(&*a1.lane.name, "a");
    emit(&engine, &["T2"]);
    let pool = engine.pool();
    let mut waiting = Vec::new();
    for name in ["b", "a"] {
        // (The routing the emits asked for is done: `emit` routed on this thread.)
        let lane = loop {
            match pool.pop() {
                Popped::Routing => {}
                Popped::Lane(lane) => break lane,
                other => panic!("lane {name} is in the run queue, the pool said {other:?}"),
            }
        };
        assert_eq!(&*lane.name, name);
        assert!(!pool.try_acquire(1), "the one slot is taken");
        waiting.push(lane);
    }
    // a waits first, so the slot a1 frees is handed to a.
    for lane in waiting.iter().rev() {
        pool.starve(lane, 1);
    }
    let a = engine.registry().get("a").expect("endpoint a");
    assert!(engine.pause(&a));
    a1.finish(status(204), Duration::ZERO);
    // b's attempt, not a wait with b left waiting for a slot that is free.
    let b = attempt(&engine);
    assert_eq!((&*b.lane.name, &*b.job().event.key), ("b", "T1"));
}

/// Whether a wake-up is stored for the async dispatcher (taking it).
#[cfg(feature = "_async")]
fn dispatcher_woken(engine: &Engine) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let notified = engine.pool().notify.notified();
        tokio::select! {
            biased;
            () = notified => true,
            () = std::future::ready(()) => false,
        }
    })
}

#[cfg(feature = "_async")]
#[test]
fn an_attempt_dropped_by_a_panic_wakes_the_dispatcher_for_what_it_freed() {
    // One request in flight per endpoint, one attempt per event. T1's attempt panics in its
    // task: it is dead-lettered, and T2 may go. The task ends without looking for work, so
    // the dispatcher must be woken for T2.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let once = Endpoint::new("crm", "http://127.0.0.1:9/")
        .expect("a URL")
        .max_in_flight(1)
        .retry("0s".parse().expect("a schedule"));
    let engine = engine(vec![once], 8, &dir);
    emit(&engine, &["T1", "T2"]);
    let t1 = attempt(&engine);
    assert!(
        matches!(engine.next_attempt(), Next::Wait(None)),
        "T2 waits for T1"
    );
    dispatcher_woken(&engine);
    let task = std::thread::spawn(move || {
        let _attempt = t1;
        panic!("the transport panics");
    });
    assert!(task.join().is_err());
    assert!(dispatcher_woken(&engine), "the dispatcher is woken");
    let t2 = attempt(&engine);
    assert_eq!(&*t2.job().event.key, "T2");
    assert_eq!(
        engine
            .registry()
            .get("crm")
            .expect("crm")
            .counters
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn an_event_over_max_payload_does_not_route_the_routers_backlog_on_the_callers_thread() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (engine, _) = SinkBuilder::new()
        .endpoint(endpoint("crm", Duration::from_secs(60)))
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .max_payload(16 * 1024)
        .start_engine(Box::new(crate::delivery::lane::Nowhere))
        .expect("the engine starts");
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("test", crate::delivery::DeliverySink::new(engine.clone()))
        .build();
    let user = deskhook::sample::user();
    let mut ticket = deskhook::sample::ticket();
    // Handed to the router, which no worker runs here.
    dispatcher.emit(deskhook::Action::Create, &ticket, &user);
    let crm = engine.registry().get("crm").expect("crm");
    let queued = || crm.outstanding.load(std::sync::atomic::Ordering::Acquire);
    assert_eq!(queued(), 0, "the first event waits for the router");
    ticket.subject = "x".repeat(20 * 1024);
    dispatcher.emit(deskhook::Action::Edit, &ticket, &user);
    assert_eq!(
        crm.counters
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the event over max_payload is dead-lettered"
    );
    assert_eq!(queued(), 0, "the router's event was left to the router");
    engine.route_all();
    assert_eq!(queued(), 1);
}

/// An attempt in flight when its endpoint's settings change, answered 410 (the URL the
/// endpoint moved away from is retired), neither disables the endpoint nor dead-letters
/// the event: it goes again at once, with the new settings. And an attempt taken after the
/// update returned has the new settings.
#[test]
fn a_410_to_settings_since_replaced_neither_disables_nor_dead_letters() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    emit(&engine, &["T1"]);
    let old = attempt(&engine);
    assert_eq!(old.route.url, "http://127.0.0.1:9/");
    let moved = Endpoint::new("crm", "http://127.0.0.1:10/")
        .expect("a URL")
        .max_in_flight(4);
    crate::delivery::Endpoints::new(engine.clone())
        .upsert(moved)
        .expect("the endpoint is updated");
    emit(&engine, &["T2"]);
    let t2 = attempt(&engine);
    assert_eq!(
        (&*t2.job().event.key, t2.route.url.as_str()),
        ("T2", "http://127.0.0.1:10/")
    );
    old.finish(status(410), Duration::ZERO);
    let again = attempt(&engine);
    assert_eq!(
        (&*again.job().event.key, again.route.url.as_str()),
        ("T1", "http://127.0.0.1:10/")
    );
    again.finish(status(204), Duration::ZERO);
    t2.finish(status(204), Duration::ZERO);
    engine
        .flush(Duration::from_secs(1))
        .expect("both delivered");
    let crm = engine.registry().get("crm").expect("crm");
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        (
            count(&crm.counters.delivered),
            count(&crm.counters.dead_lettered)
        ),
        (2, 0)
    );
    assert!(
        !crm.closed.load(std::sync::atomic::Ordering::SeqCst),
        "not disabled"
    );
}

/// An attempt in flight when only its endpoint's limits change (not its request nor its
/// receiver) is decided as without the change: a 503's `Retry-After` holds the event and the
/// endpoint, and a 400 dead-letters the event; neither goes again at once.
#[test]
fn a_change_of_limits_alone_leaves_an_answer_its_meaning() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_millis(1))], 8, &dir);
    emit(&engine, &["T1", "T2"]);
    let (t1, t2) = (attempt(&engine), attempt(&engine));
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    endpoints
        .upsert(
            endpoint("crm", Duration::from_millis(1))
                .max_in_flight(2)
                .rate_limit(100, Duration::from_secs(1))
                .expect("a rate"),
        )
        .expect("the endpoint is updated");
    t1.finish(
        Ok(Response {
            status: 503,
            retry_after: Some(Duration::from_secs(600)),
            snippet: Vec::new(),
        }),
        Duration::ZERO,
    );
    t2.finish(status(400), Duration::ZERO);
    assert!(
        matches!(engine.next_attempt(), Next::Wait(Some(_))),
        "T1 waits for its Retry-After, not sent again at once"
    );
    let crm = engine.registry().get("crm").expect("crm");
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        count(&crm.counters.dead_lettered),
        1,
        "T2's 400 dead-letters it"
    );
    assert!(
        lock(&crm.state).hold_until.is_some(),
        "the Retry-After holds the endpoint"
    );
}

/// A pause or resume that finds the endpoint it looked up removed (and one of the same name
/// added meanwhile) acts on the endpoint the name has now, not on the one removed under it.
#[test]
fn a_pause_reaches_the_endpoint_added_again_under_its_name() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_millis(1))], 8, &dir);
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    for pause in [true, false] {
        let raced = std::cell::Cell::new(false);
        endpoints
            .on_current("crm", |lane| {
                if !raced.replace(true) {
                    endpoints.remove("crm").expect("removed");
                    endpoints
                        .upsert(endpoint("crm", Duration::from_millis(1)))
                        .expect("added again");
                }
                if pause {
                    engine.pause(lane)
                } else {
                    engine.resume(lane)
                }
            })
            .expect("the endpoint of that name now");
        let state = endpoints.get("crm").expect("crm").state;
        assert_eq!(
            state == crate::delivery::EndpointState::Paused,
            pause,
            "{state:?}"
        );
    }
}

/// A relay waits for attempts under way up to the longest timeout they may have: an
/// attempt keeps the settings it began with, so a timeout since shortened, or an endpoint
/// since removed, still counts, until it has passed.
#[cfg(feature = "relay")]
#[test]
fn the_longest_attempt_counts_the_timeouts_of_settings_replaced_or_removed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let long = Duration::from_secs(600);
    let engine = engine(
        vec![
            endpoint("crm", Duration::from_secs(1)).timeout(long),
            endpoint("chat", Duration::from_secs(1)).timeout(Duration::from_secs(20)),
        ],
        8,
        &dir,
    );
    assert_eq!(engine.longest_attempt(), long);
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    endpoints
        .upsert(endpoint("crm", Duration::from_secs(1)).timeout(Duration::from_secs(5)))
        .expect("the endpoint is updated");
    let left = engine.longest_attempt();
    assert!(
        left > long - Duration::from_secs(60) && left <= long,
        "{left:?}"
    );
    endpoints
        .upsert(endpoint("chat", Duration::from_secs(1)).timeout(Duration::from_secs(900)))
        .expect("the endpoint is updated");
    endpoints.remove("chat").expect("the endpoint is removed");
    let left = engine.longest_attempt();
    assert!(
        left > Duration::from_secs(840) && left <= Duration::from_secs(900),
        "{left:?}"
    );

    // What is left of a retired timeout shrinks, down to the current settings'.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let short = Duration::from_millis(10);
    let engine = self::engine(
        vec![endpoint("crm", Duration::from_secs(1)).timeout(Duration::from_millis(40))],
        8,
        &dir,
    );
    crate::delivery::Endpoints::new(engine.clone())
        .upsert(endpoint("crm", Duration::from_secs(1)).timeout(short))
        .expect("the endpoint is updated");
    // Past the 40 ms of the settings replaced.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(engine.longest_attempt(), short);
}

/// A replay of every letter a query matches, read a part at a time, queues them again in
/// the order their events were emitted across the parts, however they were written.
#[test]
fn a_replay_read_a_part_at_a_time_keeps_the_order_events_were_emitted_in() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    let tickets = ["T1", "T2", "T3", "T4"];
    emit(&engine, &tickets);
    let attempts: Vec<Attempt> = tickets.iter().map(|_| attempt(&engine)).collect();
    // Written to the dead letters last event first.
    for attempt in attempts.into_iter().rev() {
        attempt.finish(status(400), Duration::ZERO);
    }
    let letters = crate::delivery::DeadLetters {
        engine: engine.clone(),
    };
    let two = crate::delivery::letters::Part {
        bytes: usize::MAX,
        letters: 2,
    };
    use crate::delivery::dead_letter::tests::{READS_WHOLE, REWRITES};
    let (reads, rewrites) = (READS_WHOLE.get(), REWRITES.get());
    let report = letters
        .replay_matching_in(&crate::delivery::DeadLetterQuery::new(), two)
        .expect("the replay");
    assert_eq!((report.replayed, report.failed.len()), (4, 0));
    // From the file: each part read where the listing found its letters, and all taken
    // out in one rewrite (by key and a part at a time, a read and a rewrite of the whole
    // file each).
    assert_eq!(
        (READS_WHOLE.get() - reads, REWRITES.get() - rewrites),
        (0, 1)
    );
    let again: Vec<String> = tickets
        .iter()
        .map(|_| {
            let attempt = attempt(&engine);
            let key = attempt.job().event.key.to_string();
            attempt.finish(status(204), Duration::ZERO);
            key
        })
        .collect();
    assert_eq!(again, tickets);
    assert!(
        letters
            .list(&crate::delivery::DeadLetterQuery::new())
            .expect("the listing")
            .items
            .is_empty()
    );
}

#[test]
fn an_unknown_name_is_told_its_closest_unless_no_endpoint_could_have_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let longest = "n".repeat(crate::delivery::NAME_MAX_BYTES);
    let engine = engine_of(
        SinkBuilder::new(),
        vec![
            endpoint("acme-crm", Duration::from_secs(60)),
            endpoint(&longest, Duration::from_secs(60)),
        ],
        1,
        &dir,
    );
    let unknown = |name: &str| match engine.registry().unknown(name) {
        crate::Error::UnknownEndpoint { suggestion, .. } => suggestion,
        other => panic!("{other}"),
    };
    assert_eq!(unknown("acme-cmr").as_deref(), Some("acme-crm"));
    // Longer than a name may be: not compared (it would take long with many endpoints),
    // though it is close to one.
    assert_eq!(unknown(&longest[1..]).as_deref(), Some(longest.as_str()));
    assert_eq!(unknown(&format!("{longest}n")), None);
}

#[test]
fn a_removal_if_unchanged_removes_only_the_version_read() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine_of(
        SinkBuilder::new(),
        vec![endpoint("crm", Duration::from_secs(60))],
        1,
        &dir,
    );
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    let read = endpoints.get("crm").expect("crm");
    endpoints
        .upsert(endpoint("crm", Duration::from_secs(30)))
        .expect("changed");
    assert!(matches!(
        endpoints.remove_if_unchanged(&read),
        Err(crate::Error::EndpointChanged { .. })
    ));
    assert!(endpoints.contains("crm"), "changed since: not removed");
    let read = endpoints.get("crm").expect("crm");
    endpoints.remove_if_unchanged(&read).expect("removed");
    assert!(!endpoints.contains("crm"));
    // Removed (or made again) since: the same.
    assert!(endpoints.remove_if_unchanged(&read).is_err());
}
