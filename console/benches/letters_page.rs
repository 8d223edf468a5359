//! Server time of the console's dead letters page over a dead-letter file of 100,000 letters,
//! next to the same page over a file of 50 (the reference measured in the same run).
//!
//!   cargo bench -p deskhook-console --bench letters_page
//!
//! Prints, before criterion's own figures, p50 and p99 over `PAGES` (default 200) requests of
//! each page kind, the time to page through one endpoint's letters 50 at a time (what a
//! replay of all of them does), and the ratios against the 50-letter page. Set `LETTERS` for
//! another file size. No endpoint is registered and no event is emitted: nothing is sent
//! anywhere.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use deskhook_transports::delivery::{DeadLetterQuery, DeliveryGuard, DeliverySink};
use deskhook_transports::http_blocking::HttpSink;
use tower::ServiceExt as _;

/// Endpoints the letters are spread over; `ep-007` has one in every `SPREAD`.
const SPREAD: usize = 100;

/// Writes `n` dead letters (about 700 bytes each) to `path`, spread over `SPREAD` endpoints.
fn write_letters(path: &Path, n: usize) {
    let file = std::fs::File::create(path).expect("the dead-letter file is created");
    let mut out = std::io::BufWriter::new(file);
    let text = "x".repeat(400);
    for i in 0..n {
        writeln!(
            out,
            r#"{{"id":"msg_{i:08}","endpoint":"ep-{:03}","url":"http://127.0.0.1:9","action":"create","ticket":"T-{}","attempts":8,"last_status":503,"last_error":null,"reason":"gave up after 8 attempts","failed_at":"2026-12-04T08:00:00Z","body":{{"ticket":{{"code":"T-{}","text":"{text}"}},"action":"create"}}}}"#,
            i % SPREAD,
            i / 7,
            i / 7
        )
        .expect("a letter is written");
    }
    out.flush().expect("the file is written");
}

/// A console over a sink whose dead-letter file holds `n` letters.
fn console(n: usize, dir: &Path) -> (Router, DeliverySink, DeliveryGuard) {
    let path = dir.join(format!("dead-{n}.jsonl"));
    write_letters(&path, n);
    let (sink, guard) = HttpSink::builder()
        .dead_letter_path(path)
        .build()
        .expect("the sink starts");
    (deskhook_console::router(sink.clone()), sink, guard)
}

/// One request's server time.
fn serve(runtime: &tokio::runtime::Runtime, app: &Router, path: &str) -> Duration {
    let request = Request::get(path).body(Body::empty()).expect("a request");
    let started = Instant::now();
    let status = runtime.block_on(async {
        let Ok(response) = app.clone().oneshot(request).await;
        let status = response.status();
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the page is read");
        status
    });
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{path}");
    took
}

/// p50 and p99 of `times`.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    let last = times.len() - 1;
    (times[last / 2], times[last * 99 / 100])
}

/// The cursor after the newest `skip` letters, found 1,000 at a time.
fn cursor_after(sink: &DeliverySink, skip: usize) -> u64 {
    let mut query = DeadLetterQuery {
        limit: 1_000,
        ..DeadLetterQuery::new()
    };
    for _ in 0..skip / 1_000 {
        let page = sink.dead_letters().list(&query).expect("a page");
        query.before = Some(page.next.expect("more letters"));
    }
    query.before.expect("at least one page skipped")
}

/// Pages through every letter of `endpoint`, 50 at a time; returns how many there were.
fn page_through(sink: &DeliverySink, endpoint: &str) -> usize {
    let mut query = DeadLetterQuery {
        endpoint: Some(endpoint.to_owned()),
        ..DeadLetterQuery::new()
    };
    let mut seen = 0;
    loop {
        let page = sink.dead_letters().list(&query).expect("a page");
        seen += page.items.len();
        match page.next {
            Some(next) => query.before = Some(next),
            None => return seen,
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn letters_page(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(default)
    };
    let pages = number("PAGES", 200);
    let letters = number("LETTERS", 100_000).max(2_000);
    let (small, _small_sink, _small_guard) = console(50, dir.path());
    let (large, large_sink, _large_guard) = console(letters, dir.path());
    let size = std::fs::metadata(dir.path().join(format!("dead-{letters}.jsonl")))
        .expect("the file is there")
        .len();
    let middle = cursor_after(&large_sink, letters / 2 / 1_000 * 1_000);

    let times = |app: &Router, path: &str| {
        percentiles((0..pages).map(|_| serve(&runtime, app, path)).collect())
    };
    let (ref_p50, ref_p99) = times(&small, "/dead-letters");
    eprintln!(
        "dead letters page, {pages} requests each (server time: routing, reading the file, \
         rendering), {letters} letters = {:.0} MB:",
        size as f64 / 1e6
    );
    eprintln!(
        "  {:<46} p50 {:>9.1} µs  p99 {:>9.1} µs  (reference)",
        "50 letters, first page",
        micros(ref_p50),
        micros(ref_p99)
    );
    let middle_path = format!("/dead-letters?before={middle}");
    for (label, path) in [
        ("large file, first page", "/dead-letters"),
        ("large file, a page in the middle", middle_path.as_str()),
        (
            "large file, one endpoint's newest",
            "/dead-letters?endpoint=ep-007",
        ),
        (
            "large file, an endpoint with none",
            "/dead-letters?endpoint=none",
        ),
    ] {
        let (p50, p99) = times(&large, path);
        eprintln!(
            "  {label:<46} p50 {:>9.1} µs  p99 {:>9.1} µs  ({:.2}× / {:.2}× the reference)",
            micros(p50),
            micros(p99),
            p50.as_secs_f64() / ref_p50.as_secs_f64(),
            p99.as_secs_f64() / ref_p99.as_secs_f64(),
        );
    }
    let started = Instant::now();
    let seen = page_through(&large_sink, "ep-007");
    let took = started.elapsed();
    assert_eq!(
        seen,
        letters.div_ceil(SPREAD),
        "every letter of ep-007 is listed"
    );
    eprintln!(
        "  paging through ep-007's {seen} letters, 50 a page: {:.1} ms ({:.0}× the reference page)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() / ref_p50.as_secs_f64()
    );

    let mut group = c.benchmark_group("dead letters page");
    group.sample_size(20);
    group.bench_function("50 letters", |b| {
        b.iter(|| serve(&runtime, &small, "/dead-letters"))
    });
    group.bench_function("large file, first page", |b| {
        b.iter(|| serve(&runtime, &large, "/dead-letters"))
    });
    group.bench_function("large file, one endpoint's newest", |b| {
        b.iter(|| serve(&runtime, &large, "/dead-letters?endpoint=ep-007"))
    });
    group.finish();
}

criterion_group!(benches, letters_page);
criterion_main!(benches);
