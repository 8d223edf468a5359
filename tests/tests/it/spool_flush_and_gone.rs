//! A flush over several spooled endpoints ends as soon as the last one is idle, a 410
//! moves an endpoint's whole backlog on disk to the dead letters at once, and outcomes
//! whose write failed are written again once the spool can be written.

use std::time::{Duration, Instant};

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, endpoint, for_both_transports, start, ticket};
use deskhook_transports::delivery::EndpointState;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, Durability, Spool};

fn a_flush_ends_when_the_last_endpoint_is_idle(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::builder(dir.path())
        .durability(Durability::Receipt)
        .open()
        .unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("first", &receiver, "0s").actions(Action::Lock))
            .endpoint(endpoint("second", &receiver, "0s").actions(Action::Create))
            .spool(spool),
    );
    let user = deskhook::sample::user();
    for i in 0..20 {
        dispatcher.emit(Action::Create, &ticket(&format!("S{i}")), &user);
    }
    // Not a performance check: a flush that missed its wake-up would sleep the whole minute.
    let started = Instant::now();
    guard.flush(Duration::from_secs(60)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "flush slept: {:?}",
        started.elapsed()
    );
    assert_eq!(sink.stats()[1].delivered, 20);
    assert_eq!(receiver.count(), 20);
}

fn a_gone_endpoint_dead_letters_its_backlog_on_disk(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(410));
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::builder(dir.path()).memory_window(4).open().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("gone", &receiver, "0s"))
            .spool(spool),
    );
    let user = deskhook::sample::user();
    for i in 0..50 {
        dispatcher.emit(Action::Create, &ticket(&format!("G{}", i % 5)), &user);
    }
    let started = Instant::now();
    guard.flush(Duration::from_secs(60)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "flush slept: {:?}",
        started.elapsed()
    );
    let stats = &sink.stats()[0];
    assert_eq!(
        stats.state,
        deskhook_transports::delivery::EndpointState::Disabled
    );
    assert_eq!(stats.dead_lettered, 50);
    // The first 410 disables it; until it came back, at most one request per ticket (5
    // tickets) was in flight.
    assert!(
        receiver.count() <= 5,
        "one request disables it, with at most 5 in flight; {} came",
        receiver.count()
    );
    drop((dispatcher, sink));
    guard.shutdown(Duration::from_secs(5)).unwrap();
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 50), "{stats:?}");
    let letters = spool::read_dead_letters(dir.path()).unwrap();
    assert!(
        letters
            .iter()
            .all(|l| l.url.starts_with("http://127.0.0.1:"))
    );
}

/// An attempt in flight when the sink stops that then fails stays in the spool for the
/// next start, and is no longer counted as queued by the sink that stopped.
fn a_failure_in_flight_at_shutdown_stays_in_the_spool(t: Transport) {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let receiver = Receiver::start(move |_, _| {
        let _ = released
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
        Answer::status(500)
    });
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,10s"))
            .spool(Spool::open(dir.path()).unwrap()),
    );
    dispatcher.emit(Action::Create, &ticket("S1"), &deskhook::sample::user());
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait("never in flight", &|| sink.totals().in_flight == 1);
    // The stop's wait for it ends first; then it is answered.
    let _ = guard.shutdown(Duration::from_millis(10));
    release.send(()).unwrap();
    wait("never answered", &|| receiver.count() == 1);
    wait("still in flight", &|| sink.totals().in_flight == 0);
    // Its settling frees its slot before it ends its job (queued is what is outstanding
    // but not in flight): a look between the two counts it as queued, for a moment.
    wait("still counted as queued", &|| sink.totals().queued == 0);
    drop((dispatcher, sink));
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (1, 0), "{stats:?}");
}

/// A removal whose move of the rows to the dead letters fails (a full disk) leaves them in
/// the spool, and the sink lets go of them: a flush does not wait for them.
fn a_removal_that_cannot_be_written_leaves_no_flush_waiting(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .spool(Spool::open(dir.path()).unwrap()),
    );
    sink.endpoints().pause("crm").unwrap();
    for i in 0..3 {
        dispatcher.emit(
            Action::Create,
            &ticket(&format!("S{i}")),
            &deskhook::sample::user(),
        );
    }
    rusqlite::Connection::open(dir.path().join(spool::DATABASE_FILE))
        .unwrap()
        .execute("DROP TABLE dead_letters", [])
        .unwrap();
    sink.endpoints().remove("crm").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(sink.totals().queued, 0);
    assert_eq!(receiver.count(), 0);
}

/// A 410 whose move of the backlog cannot be written lets the backlog go all the same (its
/// rows wait on disk for the next start); a resume then does not load them and count them
/// a second time.
fn a_410_that_cannot_be_written_then_a_resume_counts_each_event_once(t: Transport) {
    let receiver = Receiver::start(|_, n| Answer::status(if n == 0 { 410 } else { 204 }));
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            // One row in memory: the others are still on disk when the 410 comes.
            .spool(Spool::builder(dir.path()).memory_window(1).open().unwrap()),
    );
    // One ticket, on disk before any attempt: the first is answered 410, the other two
    // wait behind it.
    sink.endpoints().pause("crm").unwrap();
    for _ in 0..3 {
        dispatcher.emit(Action::Comment, &ticket("G"), &deskhook::sample::user());
    }
    rusqlite::Connection::open(dir.path().join(spool::DATABASE_FILE))
        .unwrap()
        .execute("DROP TABLE dead_letters", [])
        .unwrap();
    sink.endpoints().resume("crm").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.endpoints().get("crm").unwrap().state != EndpointState::Disabled {
        assert!(Instant::now() < deadline, "never disabled");
        std::thread::sleep(Duration::from_millis(2));
    }
    sink.endpoints().resume("crm").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    let totals = sink.totals();
    assert_eq!((totals.queued, totals.in_flight), (0, 0), "{totals:?}");
    assert_eq!(receiver.count(), 1);
    // Still on disk, for the next start.
    let rows: i64 = rusqlite::Connection::open(dir.path().join(spool::DATABASE_FILE))
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(rows >= 2, "{rows}");
}

/// A spooled sink whose three deliveries (to `crm`) are made while the spool refuses to
/// delete rows (a full disk, here a trigger `full_disk`), flushed: the sink, its guard, and
/// a connection to its database. The receiver and directory live as long as the test.
fn delivered_while_deletes_fail(
    t: Transport,
    receiver: &Receiver,
    dir: &std::path::Path,
) -> (
    deskhook_transports::delivery::DeliverySink,
    deskhook_transports::delivery::DeliveryGuard,
    rusqlite::Connection,
) {
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", receiver, "0s"))
            .spool(Spool::open(dir).unwrap()),
    );
    let db = rusqlite::Connection::open(dir.join(spool::DATABASE_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full_disk BEFORE DELETE ON events \
         BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END",
    )
    .unwrap();
    for i in 0..3 {
        dispatcher.emit(
            Action::Create,
            &ticket(&format!("W{i}")),
            &deskhook::sample::user(),
        );
    }
    receiver.wait_for(3);
    guard.flush(Duration::from_secs(10)).unwrap();
    (sink, guard, db)
}

/// Deliveries whose rows cannot be deleted for a while are written again until they are:
/// no row is left on disk to be delivered a second time after a restart.
fn deliveries_whose_write_failed_are_written_again(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, db) = delivered_while_deletes_fail(t, &receiver, dir.path());
    let rows = || -> i64 {
        db.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(), 3, "the deletes failed");
    db.execute_batch("DROP TRIGGER full_disk").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows() > 0 {
        assert!(Instant::now() < deadline, "{} row(s) never deleted", rows());
        std::thread::sleep(Duration::from_millis(10));
    }
    guard.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(sink.totals().delivered, 3);
}

/// An endpoint removed while its deliveries' outcomes wait to be written again does not
/// count those deliveries a second time.
fn a_removal_while_outcomes_wait_counts_each_event_once(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, db) = delivered_while_deletes_fail(t, &receiver, dir.path());
    // Its move to the dead letters fails too; the three rows on disk are delivered ones.
    sink.endpoints().remove("crm").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    let totals = sink.totals();
    assert_eq!(
        (totals.queued, totals.in_flight, totals.delivered),
        (0, 0, 3),
        "{totals:?}"
    );
    db.execute_batch("DROP TRIGGER full_disk").unwrap();
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

for_both_transports!(
    a_removal_while_outcomes_wait_counts_each_event_once,
    deliveries_whose_write_failed_are_written_again,
    a_410_that_cannot_be_written_then_a_resume_counts_each_event_once,
    a_removal_that_cannot_be_written_leaves_no_flush_waiting,
    a_failure_in_flight_at_shutdown_stays_in_the_spool,
    a_flush_ends_when_the_last_endpoint_is_idle,
    a_gone_endpoint_dead_letters_its_backlog_on_disk
);
