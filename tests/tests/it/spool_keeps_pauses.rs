//! An endpoint an operator paused stays paused across restarts with a spool: given to the
//! builder again or restored, after a start that failed, and in a spool made before pauses
//! were kept; a tool that keeps the registry (`deskhook drain`) delivers to it anyway; and
//! its resume sends what waited for a retry at once.

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, WAIT, for_both_transports, start, ticket};
use deskhook_transports::Error;
use deskhook_transports::delivery::{DeliverySink, EndpointSpec, EndpointState};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{DATABASE_FILE, Spool};

fn spec(name: &str, receiver: &Receiver) -> EndpointSpec {
    let mut spec = EndpointSpec::new(name, receiver.url.clone());
    spec.allow_private = true;
    spec.retry = Some("0s,10ms".parse().unwrap());
    spec
}

fn emit(dispatcher: &deskhook::Dispatcher, code: &str) {
    dispatcher.emit(Action::Comment, &ticket(code), &deskhook::sample::user());
}

/// The names the spool's table lists as paused.
fn paused_on_disk(dir: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM endpoints WHERE paused != 0 ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A first run with the spool in `dir`: "crm", made from settings, paused with one event
/// queued when the run ends.
fn leave_crm_paused_with_an_event(t: Transport, receiver: &Receiver, dir: &std::path::Path) {
    let (sink, guard, dispatcher) = start(t, HttpSink::builder().spool(Spool::open(dir).unwrap()));
    sink.endpoints()
        .upsert_spec(&spec("crm", receiver))
        .unwrap();
    sink.endpoints().pause("crm").unwrap();
    emit(&dispatcher, "T-1");
    shutdown_leaving(guard, 1);
}

/// A run with the spool in `dir` that registers the endpoints it kept again.
fn restoring(
    t: Transport,
    dir: &std::path::Path,
) -> (DeliverySink, deskhook_transports::delivery::DeliveryGuard) {
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .spool(Spool::open(dir).unwrap())
            .restore_endpoints(true),
    );
    (sink, guard)
}

/// Shuts down with `queued` events left for paused endpoints: they stay in the spool, and
/// the shutdown does not wait for them.
fn shutdown_leaving(guard: deskhook_transports::delivery::DeliveryGuard, queued: usize) {
    let left = guard.shutdown(WAIT);
    assert!(
        matches!(left, Err(Error::Undelivered { queued: q, held: h, .. }) if q == queued && h == q),
        "{left:?}"
    );
}

/// An endpoint an operator paused stays paused across a restart, whether the builder gives
/// it again or the spool restores it, until it is resumed; one removed and added again is
/// not paused.
fn a_paused_endpoint_stays_paused_across_a_restart(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let paused_on_disk = || paused_on_disk(dir.path());
    // "audit" comes from the builder at every start, "crm" from the spool.
    let run = || {
        start(
            t,
            HttpSink::builder()
                .spool(Spool::open(dir.path()).unwrap())
                .restore_endpoints(true)
                .endpoint(spec("audit", &receiver).to_endpoint().unwrap()),
        )
    };
    let states = |sink: &DeliverySink| {
        ["audit", "crm"].map(|name| sink.endpoints().get(name).unwrap().state)
    };
    {
        let (sink, guard, dispatcher) = run();
        sink.endpoints()
            .upsert_spec(&spec("crm", &receiver))
            .unwrap();
        sink.endpoints().pause("audit").unwrap();
        sink.endpoints().pause("crm").unwrap();
        // On disk when the call returns.
        assert_eq!(paused_on_disk(), ["audit", "crm"]);
        emit(&dispatcher, "T-1");
        // Undelivered, the paused endpoints' events stay in the spool.
        shutdown_leaving(guard, 2);
    }
    {
        let (sink, guard, _dispatcher) = run();
        assert_eq!(states(&sink), [EndpointState::Paused; 2]);
        assert_eq!(sink.endpoints().get("crm").unwrap().stats.queued, 1);
        sink.endpoints().resume("crm").unwrap();
        assert_eq!(paused_on_disk(), ["audit"]);
        assert_eq!(receiver.wait_for(1).len(), 1, "crm's event, once resumed");
        // A change keeps it paused; removed and added again, it is not.
        let mut audit = spec("audit", &receiver);
        audit.timeout = Some(Duration::from_secs(3));
        sink.endpoints().upsert_spec(&audit).unwrap();
        assert_eq!(paused_on_disk(), ["audit"]);
        assert_eq!(
            sink.endpoints().get("audit").unwrap().state,
            EndpointState::Paused
        );
        sink.endpoints().remove("crm").unwrap();
        sink.endpoints()
            .upsert_spec(&spec("crm", &receiver))
            .unwrap();
        assert_eq!(paused_on_disk(), ["audit"]);
        shutdown_leaving(guard, 1);
    }
    let (sink, guard, _dispatcher) = run();
    assert_eq!(
        states(&sink),
        [EndpointState::Paused, EndpointState::Active]
    );
    sink.endpoints().resume("audit").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.count(), 2, "audit's event too");
    guard.shutdown(Duration::from_secs(5)).unwrap();
    let (sink, guard, _dispatcher) = run();
    assert_eq!(states(&sink), [EndpointState::Active; 2]);
    assert!(paused_on_disk().is_empty());
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A spool made before endpoints' pauses were kept (no `paused` column) is read as it is,
/// then given the column by the next sink that opens it, its endpoints and events kept.
#[test]
fn a_spool_made_before_pauses_were_kept_gets_the_column_and_keeps_its_rows() {
    let t = Transport::Blocking;
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DATABASE_FILE);
    leave_crm_paused_with_an_event(t, &receiver, dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("ALTER TABLE endpoints DROP COLUMN paused")
        .unwrap();
    drop(conn);
    assert_eq!(
        deskhook_transports::spool::inspect(dir.path())
            .unwrap()
            .pending,
        1
    );
    let (sink, guard) = restoring(t, dir.path());
    assert_eq!(
        sink.endpoints().get("crm").unwrap().state,
        EndpointState::Active,
        "the spool did not keep it paused"
    );
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.count(), 1);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let paused: i64 = conn
        .query_row("SELECT paused FROM endpoints WHERE name = 'crm'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!((version, paused), (3, 0));
    drop(conn);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A start that fails (an endpoint it cannot make) leaves the pauses of the endpoints it
/// registered before as they were.
fn a_start_that_fails_keeps_the_pauses(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let audit = || spec("audit", &receiver).to_endpoint().unwrap();
    {
        let (sink, guard, dispatcher) = start(
            t,
            HttpSink::builder()
                .spool(Spool::open(dir.path()).unwrap())
                .endpoint(audit()),
        );
        sink.endpoints().pause("audit").unwrap();
        emit(&dispatcher, "T-1");
        shutdown_leaving(guard, 1);
    }
    // "audit" is registered, then "bad" refused: the build fails.
    let refused = HttpSink::builder()
        .spool(Spool::open(dir.path()).unwrap())
        .endpoint(audit())
        .endpoint(
            deskhook_transports::delivery::Endpoint::new("bad", &receiver.url)
                .unwrap()
                .allow_private(true)
                .max_in_flight(0),
        )
        .build();
    assert!(refused.is_err());
    drop(refused);
    assert_eq!(paused_on_disk(dir.path()), ["audit"]);
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .spool(Spool::open(dir.path()).unwrap())
            .endpoint(audit()),
    );
    assert_eq!(
        sink.endpoints().get("audit").unwrap().state,
        EndpointState::Paused
    );
    assert_eq!(receiver.count(), 0);
    shutdown_leaving(guard, 1);
}

/// A tool that keeps the registry (`deskhook drain`, `dead-letters replay --spool`)
/// delivers to an endpoint the helpdesk paused, and leaves it paused for the helpdesk.
fn a_tool_that_keeps_the_registry_delivers_to_a_paused_endpoint(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    leave_crm_paused_with_an_event(t, &receiver, dir.path());
    {
        let spool = Spool::builder(dir.path())
            .existing(true)
            .keep_registry(true)
            .open()
            .unwrap();
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder()
                .spool(spool)
                .endpoint(spec("crm", &receiver).to_endpoint().unwrap()),
        );
        assert_eq!(
            sink.endpoints().get("crm").unwrap().state,
            EndpointState::Active
        );
        guard.flush(Duration::from_secs(10)).unwrap();
        assert_eq!(receiver.count(), 1);
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    assert_eq!(paused_on_disk(dir.path()), ["crm"]);
    let (sink, guard) = restoring(t, dir.path());
    assert_eq!(
        sink.endpoints().get("crm").unwrap().state,
        EndpointState::Paused
    );
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A resume sends again at once what waited for a retry, including what the spool had not
/// read into memory yet: here all of it, the endpoint having been paused across a restart.
fn a_resume_hurries_retries_the_spool_had_not_read_yet(t: Transport) {
    let receiver = Receiver::start(|_, index| {
        if index == 0 {
            Answer::status(503)
        } else {
            Answer::status(204)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    {
        let (sink, guard, dispatcher) = start(
            t,
            HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
        );
        let mut crm = spec("crm", &receiver);
        crm.retry = Some("0s,1h".parse().unwrap());
        sink.endpoints().upsert_spec(&crm).unwrap();
        emit(&dispatcher, "T-1");
        receiver.wait_for(1);
        sink.endpoints().pause("crm").unwrap();
        shutdown_leaving(guard, 1);
    }
    let (sink, guard) = restoring(t, dir.path());
    sink.endpoints().resume("crm").unwrap();
    // Not in an hour: now.
    guard.flush(WAIT).unwrap();
    assert_eq!(receiver.count(), 2);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

for_both_transports!(
    a_resume_hurries_retries_the_spool_had_not_read_yet,
    a_paused_endpoint_stays_paused_across_a_restart,
    a_start_that_fails_keeps_the_pauses,
    a_tool_that_keeps_the_registry_delivers_to_a_paused_endpoint,
);
