//! Server time of the console's dead letters page over 100,000 letters, in a dead-letter file
//! and in a spool's table, next to the same page over a file of 50 (the reference measured in
//! the same run).
//!
//!   cargo bench -p deskhook-console --bench letters_page
//!
//! Prints, before criterion's own figures, p50 and p99 over `PAGES` (default 200) requests of
//! each page kind, the time to page through one endpoint's letters 50 at a time (what a
//! replay of all of them does), and the ratios against the 50-letter page. Set `LETTERS` for
//! another count. No endpoint is registered and no event is emitted: nothing is sent
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
use deskhook_transports::spool::{DATABASE_FILE, Spool};
use tower::ServiceExt as _;

/// Endpoints (and tenants) the letters are spread over; `ep-007` has one in every `SPREAD`.
const SPREAD: usize = 100;

/// The `i`th letter's endpoint, ticket and body (about 450 bytes).
fn letter_fields(i: usize) -> (String, String, String) {
    let ticket = format!("T-{}", i / 7);
    let body = format!(
        r#"{{"ticket":{{"code":"{ticket}","text":"{}"}},"action":"create"}}"#,
        "x".repeat(400)
    );
    (format!("ep-{:03}", i % SPREAD), ticket, body)
}

/// Writes `n` dead letters (about 700 bytes a line) to `path`.
fn write_letters(path: &Path, n: usize) {
    let file = std::fs::File::create(path).expect("the dead-letter file is created");
    let mut out = std::io::BufWriter::new(file);
    for i in 0..n {
        let (endpoint, ticket, body) = letter_fields(i);
        writeln!(
            out,
            r#"{{"id":"msg_{i:08}","endpoint":"{endpoint}","url":"http://127.0.0.1:9","tenant":"t-{endpoint}","action":"create","ticket":"{ticket}","attempts":8,"last_status":503,"last_error":null,"reason":"gave up after 8 attempts","failed_at":"2026-12-04T08:00:00Z","body":{body}}}"#,
        )
        .expect("a letter is written");
    }
    out.flush().expect("the file is written");
}

/// Writes `n` dead letters straight into the table of a new spool in `dir`.
fn spool_letters(dir: &Path, n: usize) {
    drop(Spool::open(dir).expect("the spool is made"));
    let mut conn =
        rusqlite::Connection::open(dir.join(DATABASE_FILE)).expect("the spool's database opens");
    let tx = conn.transaction().expect("a transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
                 attempts, last_status, last_error, reason, failed_at, body, tenant) VALUES \
                 (?1, ?2, 'http://127.0.0.1:9', 'create', ?3, 'application/json', 8, 503, NULL, \
                 'gave up after 8 attempts', '2026-12-04T08:00:00Z', ?4, ?5)",
            )
            .expect("the insert is prepared");
        for i in 0..n {
            let (endpoint, ticket, body) = letter_fields(i);
            let tenant = format!("t-{endpoint}");
            insert
                .execute(rusqlite::params![
                    format!("msg_{i:08}"),
                    endpoint,
                    ticket,
                    body.into_bytes(),
                    tenant
                ])
                .expect("a letter is written");
        }
    }
    tx.commit().expect("the letters are committed");
}

/// A console over a sink whose dead letters (`n`) are in a file, or in a spool.
fn console(n: usize, dir: &Path, spool: bool) -> (Router, DeliverySink, DeliveryGuard) {
    let path = dir.join(format!("dead-{n}-{spool}.jsonl"));
    let mut builder = HttpSink::builder().dead_letter_path(&path);
    if spool {
        let spool_dir = dir.join(format!("spool-{n}"));
        spool_letters(&spool_dir, n);
        builder = builder.spool(Spool::open(&spool_dir).expect("the spool opens"));
    } else {
        write_letters(&path, n);
    }
    let (sink, guard) = builder.build().expect("the sink starts");
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

/// The cursor after the newest `skip` letters (a multiple of 1,000), found 1,000 at a time.
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
    let (small, _small_sink, _small_guard) = console(50, dir.path(), false);
    let (file, file_sink, _file_guard) = console(letters, dir.path(), false);
    let (spool, spool_sink, _spool_guard) = console(letters, dir.path(), true);
    let size = std::fs::metadata(dir.path().join(format!("dead-{letters}-false.jsonl")))
        .expect("the file is there")
        .len();

    let times = |app: &Router, path: &str| {
        percentiles((0..pages).map(|_| serve(&runtime, app, path)).collect())
    };
    let (ref_p50, ref_p99) = times(&small, "/dead-letters");
    eprintln!(
        "dead letters page, {pages} requests each (server time: routing, reading the letters, \
         rendering), {letters} letters ({:.0} MB as a file):",
        size as f64 / 1e6
    );
    eprintln!(
        "  {:<46} p50 {:>9.1} µs  p99 {:>9.1} µs  (reference)",
        "file of 50 letters, first page",
        micros(ref_p50),
        micros(ref_p99)
    );
    for (place, app, sink) in [("file", &file, &file_sink), ("spool", &spool, &spool_sink)] {
        let middle = format!(
            "/dead-letters?before={}",
            cursor_after(sink, letters / 2 / 1_000 * 1_000)
        );
        for (label, path) in [
            ("first page", "/dead-letters"),
            ("a page in the middle", middle.as_str()),
            ("one endpoint's newest", "/dead-letters?endpoint=ep-007"),
            ("one tenant's newest", "/dead-letters?tenant=t-ep-007"),
            ("an endpoint with none", "/dead-letters?endpoint=none"),
        ] {
            let (p50, p99) = times(app, path);
            eprintln!(
                "  {:<46} p50 {:>9.1} µs  p99 {:>9.1} µs  ({:.2}× / {:.2}× the reference)",
                format!("{place}, {label}"),
                micros(p50),
                micros(p99),
                p50.as_secs_f64() / ref_p50.as_secs_f64(),
                p99.as_secs_f64() / ref_p99.as_secs_f64(),
            );
        }
        let started = Instant::now();
        let seen = page_through(sink, "ep-007");
        let took = started.elapsed();
        assert_eq!(
            seen,
            letters.div_ceil(SPREAD),
            "every letter of ep-007 is listed"
        );
        eprintln!(
            "  {place}, paging through ep-007's {seen} letters, 50 a page: {:.1} ms ({:.0}× the \
             reference page)",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / ref_p50.as_secs_f64()
        );
    }

    let mut group = c.benchmark_group("dead letters page");
    group.sample_size(20);
    group.bench_function("50 letters", |b| {
        b.iter(|| serve(&runtime, &small, "/dead-letters"))
    });
    for (place, app) in [("file", &file), ("spool", &spool)] {
        group.bench_function(format!("{place}, first page"), |b| {
            b.iter(|| serve(&runtime, app, "/dead-letters"))
        });
        group.bench_function(format!("{place}, one endpoint's newest"), |b| {
            b.iter(|| serve(&runtime, app, "/dead-letters?endpoint=ep-007"))
        });
    }
    group.finish();
}

criterion_group!(benches, letters_page);
criterion_main!(benches);
