//! `deskhook serve --metrics-forget`: with per-endpoint metrics, the series of an endpoint
//! removed leave /metrics once they go that long without a change, where they stayed for as
//! long as the daemon ran. Everything listens on 127.0.0.1.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::WAIT;
use crate::support::serve::{Serve, Switchable, crm_config, zenlix_event};

/// /metrics' text, once `wanted` says it is as awaited (within [`WAIT`]).
fn metrics_when(serve: &Serve, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, metrics) = serve.call("GET", "/metrics", &[], "");
        assert_eq!(status, 200);
        let metrics = metrics.as_str().unwrap().to_owned();
        if wanted(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_removed_endpoints_series_leave_metrics() {
    let target = Switchable::start(204);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = crm_config(
        dir.path(),
        "metrics_per_endpoint = true\n",
        &target.receiver.url,
    );
    let serve = Serve::start_with(&config, None, &["--metrics-forget", "500ms"]);
    let (status, _) = serve.post_event(&zenlix_event("M-1"), &[]);
    assert_eq!(status, 202);
    target.wait_delivered(1);
    let crm = "endpoint=\"crm\"";
    metrics_when(&serve, |m| {
        m.contains("deskhook_attempts_total{") && m.contains(crm)
    });

    let (status, removed) = serve.call("DELETE", "/api/v1/endpoints/crm", &[], "");
    assert!((200..300).contains(&status), "{removed}");
    let metrics = metrics_when(&serve, |m| !m.contains(crm));
    // The gauges are read at each scrape: they stay.
    assert!(metrics.contains("deskhook_queue_depth"), "{metrics}");
}
