//! /metrics: the Prometheus recorder the daemon installs, its upkeep, and the handler that
//! renders it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use deskhook_console::Problem;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::Daemon;

/// How often the samples the metrics recorder holds are folded into its histograms (as
/// the exporter's own HTTP listener does).
const UPKEEP: Duration = Duration::from_secs(5);

/// The buckets of `deskhook_attempt_duration_seconds` on /metrics: 5 ms to a minute.
const ATTEMPT_SECONDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// Installs the process's recorder: counters and histograms not updated for `forget` are
/// dropped (`--metrics-forget`), label values escaped as [`super::labels`] says.
pub(super) fn install_recorder(forget: Duration) -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .idle_timeout(
            metrics_util::MetricKindMask::COUNTER | metrics_util::MetricKindMask::HISTOGRAM,
            Some(forget),
        )
        // A histogram (summable across serve instances), not the exporter's default summary.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("deskhook_attempt_duration_seconds".into()),
            &ATTEMPT_SECONDS,
        )
        .map(PrometheusBuilder::build_recorder)
        .map_err(|e| format!("cannot make the metrics recorder: {e}"))
        .and_then(|recorder| {
            let handle = recorder.handle();
            metrics::set_global_recorder(super::labels::Escaped(recorder))
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            Ok(handle)
        })
}

/// Drains the histograms' samples every [`UPKEEP`], in a task: without a scraper, they
/// would grow for as long as the daemon runs.
pub(super) fn keep_up(handle: PrometheusHandle) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP).await;
            handle.run_upkeep();
        }
    });
}

/// `GET /metrics`: the gauges read now, then every metric as Prometheus text.
pub(super) async fn render(State(daemon): State<Arc<Daemon>>) -> Response {
    // The spool's depth is a query of its database: off the runtime's threads, which
    // deliver.
    let gauges = {
        let daemon = daemon.clone();
        tokio::task::spawn_blocking(move || daemon.sink.record_gauges()).await
    };
    match gauges {
        Ok(Ok(())) => {}
        // Every other metric still: an incident is when they matter most.
        Ok(Err(e)) => {
            log::warn!(target: deskhook::LOG_TARGET, "/metrics: cannot read the spool's depth: {e}");
        }
        Err(e) => {
            return Problem::internal(format!("the metrics task failed: {e}")).into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        daemon.metrics.render(),
    )
        .into_response()
}
