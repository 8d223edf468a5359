//! A spooled sink's health (its readiness) fails while the spool's writes of events fail,
//! saying so, and comes back with the first write that succeeds (or 10 s after the last
//! failure, which the spool's unit tests check).

use deskhook::Action;
use deskhook::sink::Emitted;
use deskhook_tests::ticket;
use deskhook_transports::delivery::{DeliverySink, Endpoint};
use deskhook_transports::spool::{DATABASE_FILE, Spool};

#[test]
fn health_fails_while_the_spools_writes_fail() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the endpoint is paused, its events stay in the spool.
    let endpoint = Endpoint::new("crm", "http://127.0.0.1:9/")
        .unwrap()
        .allow_private(true);
    let (sink, guard) = DeliverySink::builder()
        .endpoint(endpoint)
        .spool(Spool::open(dir.path()).unwrap())
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .build()
        .unwrap();
    sink.endpoints().pause("crm").unwrap();
    let user = deskhook::sample::user();
    let send = |code: &str| {
        let ticket = ticket(code);
        let emitted = Emitted::new(deskhook::EventRef::new(Action::Create, &ticket, &user));
        sink.send_with_receipt(&emitted.unwrap())
            .wait(deskhook_tests::WAIT)
    };
    send("H1").unwrap();
    sink.health().unwrap();
    // Writes of new events fail, as on a full disk.
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON events \
         BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END",
    )
    .unwrap();
    send("H2").unwrap_err();
    let unhealthy = sink.health().unwrap_err().to_string();
    assert!(
        unhealthy.contains("it has refused events since")
            && unhealthy.contains("its writes fail")
            && unhealthy.contains("disk is full"),
        "{unhealthy}"
    );
    db.execute_batch("DROP TRIGGER full").unwrap();
    send("H3").unwrap();
    sink.health().unwrap();
    // The paused endpoint's events stay in the spool.
    drop(sink);
    let _ = guard.shutdown(std::time::Duration::from_millis(100));
}
