//! With a spool, `deskhook serve` keeps its idempotency keys on disk beside it: a client
//! that retries after a restart (its first 202 lost) gets the first answer, not a second
//! event under another id; the key's other body is still refused. Everything listens on
//! 127.0.0.1; the daemon is killed (SIGKILL) between the two.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::support::serve::{Serve, Switchable, crm_config, zenlix_event};

#[test]
fn a_retry_after_a_restart_is_the_same_event() {
    let target = Switchable::start(503);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let config = crm_config(dir.path(), "", &target.receiver.url);
    let serve = Serve::start(&config, Some(&spool));
    let body = zenlix_event("K-1");
    let key = [("Idempotency-Key", "ticket-K-1-create")];
    let (status, first) = serve.post_event(&body, &key);
    assert_eq!(
        (status, first["durable"].clone()),
        (202, json!(true)),
        "{first}"
    );
    target.wait_delivered(1);

    let mut serve = serve;
    serve.process.kill();
    let serve = Serve::start(&config, Some(&spool));
    let (status, again) = serve.post_event(&body, &key);
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (again["id"].clone(), again["replayed_key"].clone()),
        (first["id"].clone(), json!(true)),
        "the retry is the first event"
    );
    let (status, refused) = serve.post_event(&zenlix_event("OTHER"), &key);
    assert_eq!(status, 422, "{refused}");

    // Once nothing is left to deliver, the receiver has seen one event id: the retry made
    // no event (the first may arrive twice, at least once: the kill can come before the
    // spool wrote down its delivery).
    let deadline = std::time::Instant::now() + crate::support::WAIT;
    loop {
        let (_, stats) = serve.call("GET", "/api/v1/stats", &[], "");
        if stats["queued"] == 0 && stats["in_flight"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(target.delivered(), 1);
}

/// A keys file that cannot be used (damaged, not a database) costs the keys on disk, not
/// the daemon: it starts, says so, and keeps the keys in memory.
#[test]
fn a_damaged_keys_file_does_not_stop_the_daemon() {
    let target = Switchable::start(503);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let config = crm_config(dir.path(), "", &target.receiver.url);
    let mut serve = Serve::start(&config, Some(&spool));
    serve.process.kill();
    // Its write-ahead log would give SQLite the pages the file no longer has.
    for log in ["idempotency-keys.sqlite-wal", "idempotency-keys.sqlite-shm"] {
        let _ = std::fs::remove_file(spool.join(log));
    }
    std::fs::write(
        spool.join("idempotency-keys.sqlite"),
        "not a database, whatever it says".repeat(100),
    )
    .unwrap();
    let serve = Serve::start(&config, Some(&spool));
    let said = serve
        .process
        .stderr_with("idempotency keys are kept in memory only");
    assert!(
        said.contains("idempotency keys are kept in memory only"),
        "{said}"
    );
    let key = [("Idempotency-Key", "k-2")];
    let body = zenlix_event("K-2");
    let (status, first) = serve.post_event(&body, &key);
    assert_eq!(status, 202, "{first}");
    let (status, again) = serve.post_event(&body, &key);
    assert_eq!((status, &again["id"]), (202, &first["id"]), "{again}");
}
