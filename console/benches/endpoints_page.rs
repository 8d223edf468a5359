//! Server time of the console's endpoints page with 10,000 endpoints, next to the same page
//! with 50 endpoints (the reference measured in the same run).
//!
//!   cargo bench -p deskhook-console --bench endpoints_page
//!
//! Prints, before criterion's own figures, p50 and p99 over `PAGES` (default 2,000)
//! requests of each page kind, and the ratios against the 50-endpoint page. The endpoints
//! point at 127.0.0.1:9 and no event is emitted: nothing is sent anywhere.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use deskhook_transports::delivery::{DeliveryGuard, Endpoint};
use deskhook_transports::http_blocking::HttpSink;
use tower::ServiceExt as _;

/// A console over a sink with `n` endpoints (tenant `tenant-NNNN` for each pair).
fn console(n: usize, dir: &std::path::Path) -> (Router, DeliveryGuard) {
    let (sink, guard) = HttpSink::builder()
        .dead_letter_path(dir.join(format!("dead-{n}.jsonl")))
        .build()
        .expect("the sink starts");
    let endpoints = sink.endpoints();
    for i in 0..n {
        let endpoint = Endpoint::new(format!("ep-{i:05}"), &format!("http://127.0.0.1:9/e{i}"))
            .expect("a loopback URL")
            .allow_private(true)
            .tenant(format!("tenant-{:04}", i / 2));
        endpoints.upsert(endpoint).expect("the endpoint is added");
    }
    (deskhook_console::router(sink), guard)
}

/// One request's server time.
fn serve(runtime: &tokio::runtime::Runtime, app: &Router, path: &str) -> Duration {
    let request = Request::get(path).body(Body::empty()).expect("a request");
    let started = Instant::now();
    let response = runtime
        .block_on(async {
            let Ok(response) = app.clone().oneshot(request).await;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok::<_, std::io::Error>((status, body.len()))
        })
        .expect("the page renders");
    let took = started.elapsed();
    assert_eq!(response.0, StatusCode::OK, "{path}");
    took
}

/// p50 and p99 of `pages` requests of `path`.
fn percentiles(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    path: &str,
    pages: usize,
) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..pages).map(|_| serve(runtime, app, path)).collect();
    times.sort_unstable();
    (times[(pages - 1) / 2], times[(pages - 1) * 99 / 100])
}

fn endpoints_page(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (small, _small_guard) = console(50, dir.path());
    let (large, _large_guard) = console(10_000, dir.path());
    let pages: usize = std::env::var("PAGES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(2_000);

    let (ref_p50, ref_p99) = percentiles(&runtime, &small, "/", pages);
    eprintln!(
        "endpoints page, {pages} requests each (server time: routing, the registry's page, rendering):"
    );
    eprintln!(
        "  {:<44} p50 {:>8.1} µs  p99 {:>8.1} µs  (reference)",
        "50 endpoints, first page",
        ref_p50.as_secs_f64() * 1e6,
        ref_p99.as_secs_f64() * 1e6
    );
    for (label, path) in [
        ("10,000 endpoints, first page", "/"),
        ("10,000 endpoints, page after ep-05000", "/?after=ep-05000"),
        ("10,000 endpoints, search 'tenant-042'", "/?q=tenant-042"),
        ("10,000 endpoints, paused only (none)", "/?state=paused"),
    ] {
        let (p50, p99) = percentiles(&runtime, &large, path, pages);
        eprintln!(
            "  {label:<44} p50 {:>8.1} µs  p99 {:>8.1} µs  ({:.2}× / {:.2}× the reference)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            p50.as_secs_f64() / ref_p50.as_secs_f64(),
            p99.as_secs_f64() / ref_p99.as_secs_f64(),
        );
    }

    let mut group = c.benchmark_group("endpoints page");
    group.bench_function("50 endpoints", |b| b.iter(|| serve(&runtime, &small, "/")));
    group.bench_function("10,000 endpoints", |b| {
        b.iter(|| serve(&runtime, &large, "/"))
    });
    group.bench_function("10,000 endpoints, search", |b| {
        b.iter(|| serve(&runtime, &large, "/?q=tenant-042"))
    });
    group.finish();
}

criterion_group!(benches, endpoints_page);
criterion_main!(benches);
