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

    // Nothing was queued since the restart: the retry made no event.
    let (_, stats) = serve.call("GET", "/api/v1/stats", &[], "");
    assert_eq!(
        [&stats["queued"], &stats["in_flight"], &stats["delivered"]],
        [&json!(0), &json!(0), &json!(0)],
        "{stats}"
    );
    assert_eq!(target.delivered(), 1);
}
