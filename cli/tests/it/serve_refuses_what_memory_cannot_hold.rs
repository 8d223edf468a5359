//! An event that needs more memory than the whole `max_queued_bytes` is answered 413 by
//! `deskhook serve`, with a spool and without: a 503 would have the client retry for ever,
//! each retry written to the dead letters (spool) or dropped (memory). An event that fits is
//! accepted and delivered as before.

use serde_json::{Value, json};

use crate::support::serve::{Serve, Switchable, write_config, zenlix_event};

/// What memory holds in this test's daemons: the sample event (9 KB), not a large one.
const BUDGET: usize = 32 * 1024;

fn refuses_and_keeps_nothing(spool: bool) {
    let target = Switchable::start(503);
    target.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[delivery]\ndead_letter_path = {:?}\nmax_queued_bytes = {BUDGET}\n\n\
             [[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nallow_private = true\n",
            dir.path().join("dead.jsonl"),
            target.receiver.url
        ),
    );
    let spool_dir = dir.path().join("spool");
    let mut serve = Serve::start_with(&config, spool.then_some(spool_dir.as_path()), &[]);

    let mut large: Value = serde_json::from_str(&zenlix_event("LARGE")).unwrap();
    large["ticket"]["text"] = json!("x".repeat(BUDGET));
    for _ in 0..2 {
        // The same answer to a retry, under its Idempotency-Key as without one.
        for key in [None, Some("large-1")] {
            let headers: Vec<(&str, &str)> =
                key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
            let (status, problem) = serve.post_event(&large.to_string(), &headers);
            assert_eq!(status, 413, "spool: {spool}: {problem}");
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("max_queued_bytes")),
                "{problem}"
            );
        }
    }
    let (status, reply) = serve.post_event(&zenlix_event("SMALL"), &[]);
    assert_eq!(status, 202, "{reply}");
    target.wait_delivered(1);

    let (status, letters) = serve.call("GET", "/api/v1/dead-letters", &[], "");
    assert_eq!(status, 200, "{letters}");
    assert_eq!(letters["items"], json!([]), "spool: {spool}");
    let (_, metrics) = serve.call("GET", "/metrics", &[], "");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        !metrics.contains("deskhook_events_dropped_total{"),
        "nothing was dropped: {metrics}"
    );
    serve.signal("-TERM");
    assert!(serve.process.wait().success());
    assert_eq!(target.delivered(), 1);
}

#[test]
fn an_event_memory_cannot_hold_is_answered_413_with_a_spool() {
    refuses_and_keeps_nothing(true);
}

#[test]
fn an_event_memory_cannot_hold_is_answered_413_without_a_spool() {
    refuses_and_keeps_nothing(false);
}

/// Without a spool, an event is charged its body once and a job's bookkeeping (256 bytes)
/// for each endpoint it goes to: one that fits a single endpoint's share but not its 60
/// endpoints' is refused 413 too, not answered 503 for every retry. With a spool, which
/// loads each endpoint's row on its own, it is accepted.
#[test]
fn an_event_is_measured_with_the_endpoints_it_goes_to() {
    const ENDPOINTS: usize = 60;
    let target = deskhook_tests::Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let endpoints: String = (0..ENDPOINTS)
        .map(|i| {
            format!(
                "[[endpoint]]\nname = \"crm-{i}\"\nurl = \"{}\"\nallow_private = true\n\n",
                target.url
            )
        })
        .collect();
    let config = write_config(
        dir.path(),
        &format!(
            "[delivery]\ndead_letter_path = {:?}\nmax_queued_bytes = {BUDGET}\n\n{endpoints}",
            dir.path().join("dead.jsonl"),
        ),
    );
    // About 20 KB: with 60 jobs' 15 KB more than the budget, with one job well within it.
    let mut medium: Value = serde_json::from_str(&zenlix_event("MEDIUM")).unwrap();
    medium["ticket"]["text"] = json!("x".repeat(BUDGET / 3));
    let medium = medium.to_string();
    assert!(medium.len() + ENDPOINTS * 256 > BUDGET && medium.len() + 256 < BUDGET);

    let mut serve = Serve::start_with(&config, None, &[]);
    let (status, problem) = serve.post_event(&medium, &[]);
    assert_eq!(status, 413, "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("its {ENDPOINTS} endpoints")),
        "{problem}"
    );
    let (status, reply) = serve.post_event(&zenlix_event("SMALL"), &[]);
    assert_eq!(status, 202, "{reply}");
    target.wait_for(ENDPOINTS);
    serve.signal("-TERM");
    assert!(serve.process.wait().success());

    let spool_dir = dir.path().join("spool");
    let mut serve = Serve::start_with(&config, Some(spool_dir.as_path()), &[]);
    let (status, reply) = serve.post_event(&medium, &[]);
    assert_eq!(status, 202, "with a spool: {reply}");
    target.wait_for(2 * ENDPOINTS);
    serve.signal("-TERM");
    assert!(serve.process.wait().success());
    assert_eq!(target.count(), 2 * ENDPOINTS);
}
