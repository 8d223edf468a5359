//! `deskhook bench` emits through the real facade, engine and transport to a loopback
//! receiver and ends with exactly one JSON line: every event delivered with both transports
//! (signed, and verified by the receiver), and a receiver that answers 400 makes the run
//! fail with the events undelivered.
//!
//! The receiver is a small HTTP/1.1 server on 127.0.0.1 inside the test; every `deskhook` child is killed
//! and waited for when its handle is dropped.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use deskhook::Secret;
use deskhook::signature::DEFAULT_TOLERANCE;
use serde_json::Value;

use crate::support::{Run, deskhook_bounded, one_json_line};

/// How long a run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// The secret of the Standard Webhooks specification's example.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const EVENTS: u64 = 200;
const BODY_SIZE: usize = 1024;

/// What the receiver saw in one request.
#[derive(Debug)]
struct Seen {
    /// The request's path.
    path: String,
    code: String,
    body_len: usize,
    /// `None` when the receiver has no secret; otherwise whether the signature checked out.
    verified: Option<bool>,
}

/// A loopback HTTP/1.1 receiver with keep-alive, a thread per connection, that answers every
/// request with one status. (Not tiny_http: its thread pool can leave a new connection
/// unserved while others stay open, which stalls a sender with many connections.)
struct Receiver {
    url: String,
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(status: u16, secret: Option<&str>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let secrets: Arc<[Secret]> = secret
            .map(|s| vec![Secret::parse(s).unwrap()])
            .unwrap_or_default()
            .into();
        let stopping = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stopping, seen) = (stopping.clone(), seen.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (seen, secrets) = (seen.clone(), secrets.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, status, &secrets, &seen);
                    });
                }
            })
        };
        Receiver {
            url: format!("http://{addr}/"),
            addr,
            stopping,
            seen,
            acceptor: Some(acceptor),
        }
    }

    /// Stops accepting and returns what was received. Called after the sender exited, so
    /// every request it sent has been answered and recorded.
    fn stop(mut self) -> Vec<Seen> {
        self.stop_accepting();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn stop_accepting(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            self.stopping.store(true, Ordering::Release);
            // Wakes the acceptor up so that it sees the flag.
            let _ = TcpStream::connect(self.addr);
            let _ = acceptor.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

/// Answers the requests of one connection until the sender closes it.
fn serve(
    stream: TcpStream,
    status: u16,
    secrets: &[Secret],
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(RUN_LIMIT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let start = body.len();
                body.resize(start + size + 2, 0);
                reader.read_exact(&mut body[start..])?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        }
        let verified = (!secrets.is_empty()).then(|| {
            deskhook::signature::verify(&headers, &body, secrets, DEFAULT_TOLERANCE).is_ok()
        });
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["ticket"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        seen.lock().unwrap().push(Seen {
            path,
            code,
            body_len: body.len(),
            verified,
        });
        // A 204 has no body and must not say Content-Length; other statuses say 0.
        let response = if status == 204 {
            "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
        } else {
            format!("HTTP/1.1 {status} Status\r\nContent-Length: 0\r\n\r\n")
        };
        writer.write_all(response.as_bytes())?;
        writer.flush()?;
    }
}

fn deskhook(tmp: &Path, args: &[&str]) -> Run {
    deskhook_bounded(tmp, args, RUN_LIMIT)
}

/// The one JSON line of stdout, with exactly the documented keys.
fn report(run: &Run) -> Value {
    one_json_line(
        run,
        &[
            "events",
            "endpoints",
            "tenants",
            "deliveries",
            "delivered",
            "failed",
            "dropped",
            "seconds",
            "events_per_sec",
            "emit_ns_p50",
            "emit_ns_p99",
            "emit_waits",
            "emit_preempted",
            "rss_max_kb",
            "rss_endpoints_kb",
            "threads_max",
            "cpu_seconds",
            "cpu_us_per_delivery",
            "cpu_user_us_per_delivery",
            "cpu_emit_us_per_event",
            "cpu_us_per_delivery_beside_emit",
            "order_violations",
            "attempt_log",
            "backlog",
            "backlog_stalled",
        ],
    )
}

/// Fails the test with what the run printed unless it exited 0.
fn succeeded(run: &Run, transport: &str) {
    assert!(
        run.status.success(),
        "{transport}: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

fn bench_args<'a>(url: &'a str, transport: &'a str, events: &'a str) -> Vec<&'a str> {
    vec![
        "bench",
        "--url",
        url,
        "--events",
        events,
        "--concurrency",
        "8",
        "--transport",
        transport,
        "--body-size",
        "1024",
        "--allow-private",
    ]
}

fn delivers_every_event(transport: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(204, Some(SECRET));
    let events = EVENTS.to_string();
    let mut args = bench_args(&receiver.url, transport, &events);
    args.extend(["--secret", SECRET]);
    let run = deskhook(tmp.path(), &args);
    let value = report(&run);
    succeeded(&run, transport);
    assert_eq!(value["events"], EVENTS);
    assert_eq!(value["delivered"], EVENTS);
    assert_eq!(value["failed"], 0);
    assert!(value["seconds"].as_f64().unwrap() > 0.0, "{value}");
    assert!(value["events_per_sec"].as_f64().unwrap() > 0.0, "{value}");
    let p50 = value["emit_ns_p50"].as_u64().unwrap();
    let p99 = value["emit_ns_p99"].as_u64().unwrap();
    assert!(p50 > 0 && p50 <= p99, "{value}");
    if cfg!(target_os = "linux") {
        assert!(value["rss_max_kb"].as_u64().unwrap() > 0, "{value}");
        // The CPU the run used, and that per delivery, agree with each other.
        let cpu = value["cpu_seconds"].as_f64().unwrap();
        let per = value["cpu_us_per_delivery"].as_f64().unwrap();
        assert!(
            (per * EVENTS as f64 / 1e6 - cpu).abs() < 0.001 + cpu * 0.01,
            "{value}"
        );
        // The user part is part of the whole.
        let user = value["cpu_user_us_per_delivery"].as_f64().unwrap();
        assert!((0.0..=per).contains(&user), "{value}");
        // The emitting thread rendered and queued every event; the delivery side's share
        // is part of the whole.
        let emit = value["cpu_emit_us_per_event"].as_f64().unwrap();
        assert!(emit > 0.0, "{value}");
        let beside = value["cpu_us_per_delivery_beside_emit"].as_f64().unwrap();
        assert!((0.0..=per).contains(&beside), "{value}");
    }

    // The receiver got each ticket once, signed, with a body of about the size asked.
    let seen = receiver.stop();
    assert_eq!(seen.len() as u64, EVENTS);
    let codes: BTreeSet<&str> = seen.iter().map(|s| s.code.as_str()).collect();
    let expected: BTreeSet<String> = (1..=EVENTS).map(|n| format!("B{n:07}")).collect();
    assert_eq!(
        codes,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for s in &seen {
        assert_eq!(s.verified, Some(true), "{s:?}");
        assert!(
            s.body_len.abs_diff(BODY_SIZE) <= 24,
            "{} bytes for --body-size {BODY_SIZE}",
            s.body_len
        );
    }
    // Nothing failed, so the dead-letter file is removed.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn the_blocking_transport_delivers_every_event() {
    delivers_every_event("blocking");
}

#[test]
fn the_async_transport_delivers_every_event() {
    delivers_every_event("async");
}

#[test]
fn events_over_the_memory_budget_are_reported_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(204, None);
    let events = EVENTS.to_string();
    let mut args = bench_args(&receiver.url, "async", &events);
    // Less than one body: what is emitted while another event waits is dropped.
    args.extend(["--max-queued-bytes", "512"]);
    let run = deskhook(tmp.path(), &args);
    let value = report(&run);
    assert!(!run.status.success(), "{}", run.stdout);
    let dropped = value["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{value}");
    // The receiver takes every request: what failed is what was dropped.
    assert_eq!(value["failed"].as_u64().unwrap(), dropped, "{value}");
    assert_eq!(
        receiver.stop().len() as u64,
        value["delivered"].as_u64().unwrap()
    );
    assert!(
        run.stderr.contains(&format!(
            "{dropped} dropped (the queue or its memory budget was full: raise --max-queued-bytes)"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_receiver_answering_400_makes_the_run_fail() {
    for transport in ["blocking", "async"] {
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::start(400, None);
        let events = EVENTS.to_string();
        let run = deskhook(tmp.path(), &bench_args(&receiver.url, transport, &events));
        let value = report(&run);
        assert!(!run.status.success(), "{transport}: {}", run.stdout);
        assert_eq!(value["events"], EVENTS);
        let delivered = value["delivered"].as_u64().unwrap();
        assert!(delivered < EVENTS, "{value}");
        assert_eq!(value["failed"].as_u64().unwrap(), EVENTS - delivered);
        assert_eq!(value["dropped"], 0, "{value}");
        assert!(
            run.stderr.contains("not delivered") && run.stderr.contains("dead letters:"),
            "{}",
            run.stderr
        );
        // 400 is final: each event was tried once and dead-lettered.
        assert_eq!(receiver.stop().len() as u64, EVENTS);
        let files: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let letters = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(letters.lines().count() as u64, EVENTS - delivered);
    }
}

#[test]
fn many_endpoints_over_tenants_each_get_their_tenants_events_in_order() {
    // And through a spool, whose events carry their tenant as the others do.
    for (transport, spooled) in [("blocking", false), ("async", false), ("async", true)] {
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::start(204, None);
        // 20 endpoints over 5 tenants: each event goes to the 4 endpoints of its tenant; 10
        // tickets, so every endpoint gets several events of a ticket, in order.
        let mut args = bench_args(&receiver.url, transport, "100");
        args.extend(["--endpoints", "20", "--tenants", "5", "--tickets", "10"]);
        let spool = tmp.path().join("spool");
        if spooled {
            args.extend(["--spool", spool.to_str().unwrap()]);
        }
        let run = deskhook(tmp.path(), &args);
        let value = if spooled {
            // Its `durable N` lines first (and the spool's figures): the report is the last.
            assert!(run.stdout.starts_with("durable "), "{}", run.stdout);
            serde_json::from_str(run.stdout.lines().last().unwrap_or_default()).unwrap()
        } else {
            report(&run)
        };
        succeeded(&run, transport);
        assert_eq!(value["endpoints"], 20);
        assert_eq!(value["tenants"], 5);
        assert_eq!(value["deliveries"], 400);
        assert_eq!(value["delivered"], 400);
        assert_eq!(value["order_violations"], 0);
        if cfg!(target_os = "linux") {
            // The pool holds at most --concurrency (8) request threads; a runtime, the
            // progress bar and the main thread come on top, whatever the endpoints.
            let threads = value["threads_max"].as_u64().unwrap();
            assert!((1..=20).contains(&threads), "{value}");
        }
        let seen = receiver.stop();
        assert_eq!(seen.len(), 400);
        // Endpoint e<i> belongs to tenant t<i mod 5>, event n (from 1) to t<(n-1) mod 5>:
        // e.g. /e0, /e5, /e10 and /e15 get events 1, 6, 11, …
        let mut paths: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in &seen {
            *paths.entry(s.path.as_str()).or_default() += 1;
        }
        assert_eq!(paths.len(), 20, "{paths:?}");
        assert!(paths.values().all(|n| *n == 20), "{paths:?}");
        let e0: BTreeSet<&str> = seen
            .iter()
            .filter(|s| s.path == "/e0")
            .map(|s| s.code.as_str())
            .collect();
        // Events 1, 6, 11, … are on tickets 1, 6, 1, 6, …: B0000001 and B0000006 only.
        assert_eq!(e0, BTreeSet::from(["B0000001", "B0000006"]), "{transport}");
    }
}

#[test]
fn a_loopback_url_needs_allow_private() {
    let tmp = tempfile::tempdir().unwrap();
    let run = deskhook(
        tmp.path(),
        &["bench", "--url", "http://127.0.0.1:9/", "--events", "1"],
    );
    assert!(!run.status.success());
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("--allow-private"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn an_https_receiver_with_a_ca_of_its_own_gets_every_event() {
    for transport in ["blocking", "async"] {
        let tmp = tempfile::tempdir().unwrap();
        let server = deskhook_tests::tls::tls_receiver(&[b"http/1.1"], false);
        let ca = tmp.path().join("ca.pem");
        std::fs::write(&ca, &server.ca_pem).unwrap();
        let url = format!("https://127.0.0.1:{}/", server.port);
        let mut args = bench_args(&url, transport, "50");
        args.extend(["--ca-file", ca.to_str().unwrap()]);
        let run = deskhook(tmp.path(), &args);
        let value = report(&run);
        succeeded(&run, transport);
        assert_eq!(value["delivered"], 50, "{transport}");
        assert_eq!(server.seen.lock().unwrap().len(), 50, "{transport}");
        std::fs::remove_file(&ca).unwrap();
    }
    // A CA file that is not PEM is named, with what was wrong.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let mut args = bench_args("https://127.0.0.1:9/", "async", "1");
    args.extend(["--ca-file", bad.to_str().unwrap()]);
    let run = deskhook(tmp.path(), &args);
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("--ca-file") && run.stderr.contains("no certificate in the CA PEM"),
        "{}",
        run.stderr
    );
}

#[test]
fn paused_endpoints_measure_emit_alone() {
    for transport in ["blocking", "async"] {
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::start(204, None);
        let mut args = bench_args(&receiver.url, transport, "100");
        args.push("--paused");
        let run = deskhook(tmp.path(), &args);
        let value = report(&run);
        succeeded(&run, transport);
        assert_eq!(
            (value["deliveries"].as_u64(), value["delivered"].as_u64()),
            (Some(0), Some(0))
        );
        assert!(value["emit_ns_p99"].as_u64().unwrap() > 0, "{value}");
        // Nothing was sent, and nothing was left in the temporary directory.
        assert_eq!(receiver.stop().len(), 0, "{transport}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}

#[test]
fn a_backlog_paces_the_emits_and_every_event_is_still_delivered() {
    for transport in ["blocking", "async"] {
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::start(204, None);
        let events = EVENTS.to_string();
        let mut args = bench_args(&receiver.url, transport, &events);
        // Far fewer than the events: the loop waits for deliveries again and again.
        args.extend(["--backlog", "4"]);
        let run = deskhook(tmp.path(), &args);
        let value = report(&run);
        succeeded(&run, transport);
        assert_eq!(value["delivered"], EVENTS, "{transport}");
        assert_eq!(value["order_violations"], 0, "{transport}");
        assert_eq!(value["backlog"], 4, "{transport}");
        assert_eq!(value["backlog_stalled"], false, "{value}");
        assert_eq!(receiver.stop().len() as u64, EVENTS, "{transport}");
    }
    // Without a backlog both are null.
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(204, None);
    let run = deskhook(tmp.path(), &bench_args(&receiver.url, "async", "10"));
    let value = report(&run);
    assert!(
        value["backlog"].is_null() && value["backlog_stalled"].is_null(),
        "{value}"
    );
    // A paused endpoint settles nothing: a backlog could only stall.
    let mut args = bench_args(&receiver.url, "async", "10");
    args.extend(["--paused", "--backlog", "4"]);
    let run = deskhook(tmp.path(), &args);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "--backlog waits for deliveries to settle, and --paused makes none: give one or \
             the other"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_template_renders_every_delivered_body_and_is_refused_over_nats() {
    for transport in ["blocking", "async"] {
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::start(204, Some(SECRET));
        let events = EVENTS.to_string();
        let mut args = bench_args(&receiver.url, transport, &events);
        args.extend([
            "--secret",
            SECRET,
            "--template",
            r#"{"ticket": {"code": "{{ ticket }}"}, "said": "{{ label }}"}"#,
        ]);
        let run = deskhook(tmp.path(), &args);
        succeeded(&run, transport);
        assert_eq!(report(&run)["delivered"], EVENTS);
        let seen = receiver.stop();
        assert_eq!(seen.len() as u64, EVENTS);
        for s in &seen {
            assert_eq!(s.verified, Some(true), "{s:?}");
            // The rendered body, not the 1 KiB event.
            assert!(s.body_len < 100, "{s:?}");
            assert!(s.code.starts_with('B'), "{s:?}");
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = deskhook(
        tmp.path(),
        &[
            "bench",
            "--transport",
            "nats",
            "--nats",
            "nats://127.0.0.1:1",
            "--events",
            "1",
            "--template",
            "slack",
        ],
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--template is for"), "{}", run.stderr);
}
