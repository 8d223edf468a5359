//! `deskhook serve` as a helpdesk not written in Rust uses it: events posted over HTTP (as
//! `curl` would), the admin API, bad input of every kind, a kill -9 and a restart that lose
//! nothing accepted; and its console in a real browser (headless Chromium over WebDriver):
//! log in, find the failing endpoint, replay its dead letter, pause it, and see a hostile
//! endpoint name as text.
//!
//! Everything listens on 127.0.0.1; every process (serve, chromedriver, Chromium) is stopped
//! by the test.

use std::collections::HashSet;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook_tests::{Answer, Receiver};
use serde_json::{Value, json};

use crate::support::{Running, WAIT, request};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A receiver that answers 503 until it is switched up, then 204, and remembers the
/// webhook-ids it answered 204.
struct Switchable {
    receiver: Receiver,
    up: Arc<AtomicBool>,
    delivered: Arc<Mutex<HashSet<String>>>,
}

impl Switchable {
    fn start(down_status: u16) -> Switchable {
        let up = Arc::new(AtomicBool::new(false));
        let delivered: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (flag, seen) = (up.clone(), delivered.clone());
        let receiver = Receiver::start(move |request, _| {
            if flag.load(Ordering::SeqCst) {
                let id = request.header("webhook-id").unwrap_or_default().to_owned();
                seen.lock().unwrap().insert(id);
                Answer::status(204)
            } else {
                Answer::status(down_status).body(r#"{"error": "the CRM's database is down"}"#)
            }
        });
        Switchable {
            receiver,
            up,
            delivered,
        }
    }

    fn delivered(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }

    /// Waits until `n` events were delivered.
    fn wait_delivered(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.delivered() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.delivered(), n, "events delivered");
    }
}

/// `deskhook serve` on 127.0.0.1 and a free port.
struct Serve {
    process: Running,
    addr: String,
}

impl Serve {
    fn start(config: &Path, spool: Option<&Path>) -> Serve {
        let mut args = vec![
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "100ms",
        ];
        if let Some(spool) = spool {
            // With a spool, a runtime of one worker thread; without, one per core: both run.
            args.extend(["--spool", spool.to_str().unwrap(), "--threads", "1"]);
        }
        let process = Running::spawn_with(&args, &[("DESKHOOK_TOKEN", TOKEN)]);
        let first = process.line();
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        let second = process.line();
        assert!(second.starts_with("loopback only"), "{second}");
        Serve { process, addr }
    }

    /// Sends it `signal` (`-TERM`, `-HUP`) with kill(1).
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.process.pid().to_string()])
            .status();
        assert!(sent.unwrap().success(), "kill {signal}");
    }

    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let auth = format!("Bearer {TOKEN}");
        let mut all = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        all.extend_from_slice(headers);
        let (status, body) = request(&self.addr, method, path, &all, body.as_bytes());
        let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (status, json)
    }

    /// POSTs an event the way a PHP helpdesk's curl would.
    fn post_event(&self, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.call("POST", "/v1/events", headers, body)
    }
}

/// The JSON of a Zenlix `create` event for ticket `code`.
fn zenlix_event(code: &str) -> String {
    zenlix_action(deskhook::Action::Create, code)
}

/// The JSON of a Zenlix event of `action` for ticket `code`.
fn zenlix_action(action: deskhook::Action, code: &str) -> String {
    let mut ticket = deskhook::sample::ticket();
    ticket.code = code.to_owned();
    let user = deskhook::sample::user();
    String::from_utf8(
        deskhook::EventRef::new(action, &ticket, &user)
            .to_json()
            .unwrap(),
    )
    .unwrap()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("deskhook.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_without_a_spool_answers_503_when_a_queue_is_full() {
    let target = Switchable::start(204);
    let dir = tempfile::tempdir().unwrap();
    // "audit" takes comments only.
    let config = write_config(
        dir.path(),
        &format!(
            "[delivery]\nqueue_capacity = 1\ndead_letter_path = {:?}\n\n[[endpoint]]\n\
             name = \"crm\"\nurl = \"{url}\"\nallow_private = true\n\n[[endpoint]]\n\
             name = \"audit\"\nurl = \"{url}/audit\"\nallow_private = true\n\
             actions = [\"comment\"]\n",
            dir.path().join("dead.jsonl"),
            url = target.receiver.url
        ),
    );
    let serve = Serve::start(&config, None);
    let (status, paused) = serve.call("POST", "/api/v1/endpoints/crm/pause", &[], "");
    assert_eq!(
        (status, paused["state"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    let (status, _) = serve.post_event(&zenlix_event("Q-1"), &[]);
    assert_eq!(status, 202);
    // The paused endpoint's queue holds one event: the next is not accepted, and the client
    // is told to retry rather than the event being dropped behind its back.
    let (status, problem) = serve.post_event(&zenlix_event("Q-2"), &[]);
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("queue full")),
        "{problem}"
    );
    // A comment goes to "audit" too: accepted, naming the endpoint that dropped it. Sent
    // again, "audit" would get it twice.
    target.up.store(true, Ordering::SeqCst);
    let comment = zenlix_action(deskhook::Action::Comment, "Q-3");
    let key = [("Idempotency-Key", "q-3")];
    let (status, accepted) = serve.post_event(&comment, &key);
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        (
            accepted["endpoints"].clone(),
            accepted["refused"].as_array().map(Vec::len)
        ),
        (json!(2), Some(1))
    );
    assert_eq!(accepted["refused"][0]["endpoint"], "crm");
    assert_eq!(accepted["refused"][0]["dead_lettered"], false);
    // A retry that lost that answer gets the same one, refusals included.
    let (status, again) = serve.post_event(&comment, &key);
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (again["id"].clone(), again["refused"].clone()),
        (accepted["id"].clone(), accepted["refused"].clone())
    );
    assert_eq!(
        (again["ticket"].clone(), again["replayed_key"].clone()),
        (json!("Q-3"), json!(true))
    );
    target.wait_delivered(1);
}

/// Clients that stall in the middle of their requests (one in its head, one with a token in
/// its body) do not hold up serve's stop: what is still open when --grace ends is no longer
/// waited for (an event whose body has not arrived is answered 503), and the stop ends with
/// its summary.
#[test]
fn a_request_stalled_midway_does_not_hold_up_the_stop() {
    use std::io::Write as _;
    let target = Switchable::start(503);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"{}\"\n\
             allow_private = true\n",
            dir.path().join("dead.jsonl"),
            target.receiver.url
        ),
    );
    let mut serve = Serve::start(&config, None);
    let mut in_head = std::net::TcpStream::connect(&serve.addr).unwrap();
    in_head
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut in_body = std::net::TcpStream::connect(&serve.addr).unwrap();
    in_body
        .write_all(
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"ticket\""
            )
            .as_bytes(),
        )
        .unwrap();
    // A whole event after them: by its answer, serve has read what the others sent.
    let (status, reply) = serve.post_event(&zenlix_event("S-1"), &[]);
    assert_eq!(status, 202, "{reply}");
    target.wait_delivered(1);
    serve.signal("-TERM");
    let stopped = serve.process.wait_within(WAIT);
    assert!(
        stopped.is_some_and(|status| status.success()),
        "serve did not stop with two stalled requests open: {stopped:?}"
    );
    let log = serve.process.stderr();
    assert!(log.contains("no longer waited for"), "{log}");
    // The one whose body had not all arrived was not taken after the sink stopped: it was
    // answered 503 at the grace's end, or cut when serve exited before that answer went.
    in_body.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut in_body, &mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    let summary = std::iter::from_fn(|| serve.process.try_line()).collect::<Vec<_>>();
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("stopped: 1 delivered")),
        "{summary:?}"
    );
    drop((in_head, in_body));
}

#[test]
fn serve_keeps_its_events_through_a_sighup() {
    let target = Switchable::start(503);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[file_log]\npath = {:?}\n\n[[endpoint]]\n\
             name = \"crm\"\nurl = \"{}\"\nallow_private = true\n",
            dir.path().join("dead.jsonl"),
            dir.path().join("events.jsonl"),
            target.receiver.url
        ),
    );
    let mut serve = Serve::start(&config, None);
    serve.signal("-HUP");
    // A reload as for a relay: logged, and serve goes on (SIGHUP's default would end it).
    let log = serve.process.stderr_with("SIGHUP ignored");
    assert!(log.contains("SIGHUP ignored"), "{log}");
    let (status, reply) = serve.post_event(&zenlix_event("H-1"), &[]);
    assert_eq!(status, 202, "{reply}");
    target.wait_delivered(1);
    // The configuration's [file_log] has the accepted event once serve stops.
    serve.signal("-TERM");
    assert!(serve.process.wait().success());
    let log = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("\"H-1\""), "{log}");
}

#[test]
fn serve_accepts_posted_events_refuses_bad_input_and_loses_nothing_to_a_kill() {
    let target = Switchable::start(503);
    let dir = tempfile::tempdir().unwrap();
    // Retries every 200 ms for 30 s: the events outlive the kill and the restart however
    // slow the machine is; no breaker, which would hold them back for its cool-down.
    let retry = vec!["200ms"; 150].join(",");
    let config = write_config(
        dir.path(),
        &format!(
            "[delivery]\nmax_payload = 65536\nbreaker = {{ failures = 0 }}\n\n[[endpoint]]\n\
             name = \"crm\"\nurl = \"{}\"\nallow_private = true\nretry = \"0s,{retry}\"\n",
            target.receiver.url
        ),
    );
    let spool = dir.path().join("spool");
    let serve = Serve::start(&config, Some(&spool));

    // An endpoint added through the API, of a tenant.
    let (status, created) = serve.call(
        "POST",
        "/api/v1/endpoints",
        &[],
        &json!({"name": "acme-crm", "url": format!("{}/acme", target.receiver.url),
                "allow_private": true, "tenant": "acme", "retry": format!("0s,{retry}")})
        .to_string(),
    );
    assert_eq!(status, 201, "{created}");

    // 10 events; one posted twice with the same Idempotency-Key (a retried request); two
    // for tenant acme (they go to both endpoints).
    let mut ids = HashSet::new();
    for i in 0..10 {
        let code = format!("PHP-{i}");
        let key = format!("key-{i}");
        let mut headers = vec![("Idempotency-Key", key.as_str())];
        if i < 2 {
            headers.push(("Deskhook-Tenant", "acme"));
        }
        // Made once: a retried request sends the same bytes (a body made again could carry
        // the next second in its time stamps, and be refused as another event).
        let body = zenlix_event(&code);
        let (status, accepted) = serve.post_event(&body, &headers);
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["durable"], true);
        assert_eq!(accepted["endpoints"], if i < 2 { 2 } else { 1 });
        assert_eq!(accepted["ticket"], code.as_str());
        ids.insert(accepted["id"].as_str().unwrap().to_owned());
        if i == 3 {
            let (again, same) = serve.post_event(&body, &headers);
            assert_eq!(again, 202);
            assert_eq!(
                same["id"], accepted["id"],
                "the retried request is the same event"
            );
            let (other, refused) = serve.post_event(&zenlix_event("OTHER"), &headers);
            assert_eq!(other, 422, "{refused}");
            assert_eq!(refused["field"], "Idempotency-Key");
        }
    }
    assert_eq!(ids.len(), 10);

    // Bad input: each a problem document, nothing accepted.
    let (status, problem) = serve.post_event(r#"{"hello": "world"}"#, &[]);
    assert_eq!(
        (status, problem["status"].clone()),
        (400, json!(400)),
        "{problem}"
    );
    let long_key = "k".repeat(256);
    let (status, problem) = serve.post_event(
        &zenlix_event("X"),
        &[("Idempotency-Key", long_key.as_str())],
    );
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 to 255 bytes (this one is 256)")),
        "{problem}"
    );
    let big = format!(r#"{{"action": "{}"}}"#, "x".repeat(70_000));
    let (status, problem) = serve.post_event(&big, &[]);
    assert_eq!(status, 413, "{problem}");
    // An empty body, and a compressed one, are said to be what they are.
    let (status, problem) = serve.post_event("", &[]);
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("the body is empty")),
        "{problem}"
    );
    let (status, problem) = serve.post_event(&zenlix_event("X"), &[("Content-Encoding", "gzip")]);
    assert_eq!(status, 415, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("'gzip' is not read")),
        "{problem}"
    );
    let (status, problem) = serve.post_event(&zenlix_event("X"), &[("Deskhook-Format", "xml")]);
    assert_eq!(
        (status, problem["field"].clone()),
        (400, json!("Deskhook-Format"))
    );
    for tenant in [&*"a".repeat(200), "", " "] {
        let (status, problem) =
            serve.post_event(&zenlix_event("X"), &[("Deskhook-Tenant", tenant)]);
        assert_eq!(
            (status, problem["field"].clone()),
            (400, json!("Deskhook-Tenant")),
            "{problem}"
        );
    }
    let (status, problem) = serve.post_event(
        &zenlix_event("X"),
        &[("Deskhook-Tenant", "acme"), ("Deskhook-Tenant", "other")],
    );
    assert_eq!(
        (status, problem["field"].clone()),
        (400, json!("Deskhook-Tenant"))
    );
    // Within max_payload as received, over it as sent: deskhook writes the fields the
    // body left out. Refused before anything is queued or dead-lettered.
    let mut lean: Value = serde_json::from_str(&zenlix_event("LEAN")).unwrap();
    let ticket = lean["ticket"].as_object_mut().unwrap();
    ticket.retain(|_, value| !matches!(value, Value::Null) && *value != json!([]));
    let room = 65_536 - lean.to_string().len();
    lean["ticket"]["text"] = json!(format!(
        "{}{}",
        lean["ticket"]["text"].as_str().unwrap(),
        "x".repeat(room)
    ));
    let lean = lean.to_string();
    assert_eq!(lean.len(), 65_536);
    let (status, problem) = serve.post_event(&lean, &[]);
    assert_eq!(status, 413, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("as deskhook sends it")),
        "{problem}"
    );
    let (status, _) = request(
        &serve.addr,
        "POST",
        "/v1/events",
        &[("Authorization", "Bearer wrong")],
        zenlix_event("X").as_bytes(),
    );
    assert_eq!(status, 401);
    let (status, _) = request(&serve.addr, "GET", "/api/v1/stats", &[], b"");
    assert_eq!(status, 401);
    let (status, problem) = serve.call("GET", "/v1/events", &[], "");
    assert_eq!(
        (status, problem["status"].clone()),
        (405, json!(405)),
        "{problem}"
    );
    let (status, problem) = serve.call("GET", "/api/v1/endpoints/nope", &[], "");
    assert_eq!(status, 404, "{problem}");
    let (status, problem) = serve.call(
        "POST",
        "/api/v1/endpoints",
        &[],
        r#"{"name": "x", "url": "http://127.0.0.1/", "timeout": "soon"}"#,
    );
    assert_eq!(
        (status, problem["field"].clone()),
        (400, json!("timeout")),
        "{problem}"
    );
    let (status, _) = request(&serve.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    // The scheme's case does not matter (RFC 9110).
    let lower = format!("bearer {TOKEN}");
    let (status, _) = request(
        &serve.addr,
        "GET",
        "/metrics",
        &[("Authorization", &lower)],
        b"",
    );
    assert_eq!(status, 200);
    let (status, metrics) = serve.call("GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("deskhook_events_total{event_type=\"create\"} 10"),
        "{metrics}"
    );
    let endpoints: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("deskhook_endpoints{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(endpoints, 2.0, "{metrics}");
    // Attempt durations are a histogram (buckets that add up across instances), once the
    // receiver has answered an attempt.
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let (_, metrics) = serve.call("GET", "/metrics", &[], "");
        let metrics = metrics.as_str().unwrap().to_owned();
        if metrics.contains("deskhook_attempt_duration_seconds_bucket") {
            break metrics;
        }
        assert!(Instant::now() < deadline, "no attempt recorded: {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        metrics.contains("# TYPE deskhook_attempt_duration_seconds histogram"),
        "{metrics}"
    );

    // Killed with everything undelivered (the receiver answers 503), restarted: the API's
    // endpoint is back, and every accepted event reaches the receiver once it is up.
    let mut serve = serve;
    serve.process.kill();
    let serve = Serve::start(&config, Some(&spool));
    let (status, kept) = serve.call("GET", "/api/v1/endpoints/acme-crm", &[], "");
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["tenant"], "acme");
    target.up.store(true, Ordering::SeqCst);
    // 10 events to crm, 2 of them to acme-crm too: 10 distinct ids, 12 deliveries.
    target.wait_delivered(10);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, stats) = serve.call("GET", "/api/v1/stats", &[], "");
        if stats["delivered"] == 12 || Instant::now() > deadline {
            assert_eq!(stats["delivered"], 12, "{stats}");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(&*target.delivered.lock().unwrap(), &ids);
}

/// chromedriver on a free port, killed on drop.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs (Debian: apt-get install chromium chromium-driver; .ci/run \
                 installs them)",
            );
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the browser shows `path` (with `query` in its query string, when given):
/// a click that submits a form returns before the next page is there.
async fn arrive(
    client: &fantoccini::Client,
    path: &str,
    query: Option<&str>,
) -> Result<(), fantoccini::error::CmdError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = client.current_url().await?;
        let query_ok = query.is_none_or(|q| url.query().is_some_and(|have| have.contains(q)));
        if url.path() == path && query_ok {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "the browser did not reach {path}: {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text of the first element matching `css`, once the page has one (found again if
/// the page was replaced between finding and reading it).
async fn text_of(
    client: &fantoccini::Client,
    css: &str,
) -> Result<String, fantoccini::error::CmdError> {
    use fantoccini::error::{CmdError, ErrorStatus};
    let mut tries = 0;
    loop {
        let element = client
            .wait()
            .for_element(fantoccini::Locator::Css(css))
            .await?;
        match element.text().await {
            Err(CmdError::Standard(e))
                if e.error == ErrorStatus::StaleElementReference && tries < 50 =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Writes a screenshot of the page to `$DESKHOOK_SCREENSHOTS/<name>.png` when that variable
/// is set (how the README's pictures are made).
async fn screenshot(client: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("DESKHOOK_SCREENSHOTS") {
        let png = client.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_admin_finds_a_failure_replays_it_and_pauses_the_endpoint_in_a_browser() {
    use fantoccini::Locator;

    let target = Switchable::start(500);
    let dir = tempfile::tempdir().unwrap();
    let hostile = "<img src=x onerror=alert(1)>";
    // Its own dead letters: not the default file in the working directory, which would
    // outlive the test and count in the next run.
    let mut endpoints = format!(
        "[delivery]\ndead_letter_path = {:?}\n\n\
         [[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nallow_private = true\nretry = \"0s\"\n\
         secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n\n\
         [[endpoint]]\nname = \"{hostile}\"\nurl = \"{}/x\"\nallow_private = true\nactions = [\"comment\"]\n",
        dir.path().join("dead.jsonl"),
        target.receiver.url,
        target.receiver.url
    );
    for i in 0..12 {
        endpoints.push_str(&format!(
            "\n[[endpoint]]\nname = \"tenant-{i:02}-chat\"\nurl = \"{}/t{i}\"\nallow_private = true\n\
             tenant = \"tenant-{i:02}\"\n",
            target.receiver.url
        ));
    }
    let config = write_config(dir.path(), &endpoints);
    let serve = Serve::start(&config, None);
    let (status, _) = serve.post_event(&zenlix_event("HD-1042"), &[]);
    assert_eq!(status, 202);
    // crm answers 500 and has no retry: a dead letter.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, letters) = serve.call("GET", "/api/v1/dead-letters?endpoint=crm", &[], "");
        if letters["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter: {letters}");
        std::thread::sleep(Duration::from_millis(10));
    }

    let chat_url = format!("{}/chat", target.receiver.url);
    let driver = Chromedriver::start();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,860",
                     format!("--user-data-dir={}", dir.path().join("chromium").display())],
        }),
    );
    let client =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("chromedriver starts a headless Chromium");
    let base = format!("http://{}", serve.addr);
    let result = async {
        // Not logged in: the login form.
        client.goto(&format!("{base}/")).await?;
        assert!(client.current_url().await?.path().starts_with("/login"));
        client
            .find(Locator::Css("input[name=token]"))
            .await?
            .send_keys(TOKEN)
            .await?;
        client
            .find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/", None).await?;

        // The endpoints, the hostile name as text and no image made of it.
        let table = text_of(&client, "table.endpoints").await?;
        assert!(table.contains(hostile), "{table}");
        let links = client.find_all(Locator::LinkText(hostile)).await?;
        assert_eq!(links.len(), 1, "the hostile name is one link's text");
        let images = client
            .execute("return document.images.length", vec![])
            .await?;
        assert_eq!(images, json!(0), "the endpoint name made no <img>");
        screenshot(&client, "console-endpoints").await;

        // The failing endpoint: its 500 in the attempts.
        client.find(Locator::LinkText("crm")).await?.click().await?;
        arrive(&client, "/endpoints/crm", None).await?;
        let attempts = text_of(&client, "table.attempts").await?;
        assert!(
            attempts.contains("HD-1042") && attempts.contains("500"),
            "{attempts}"
        );
        screenshot(&client, "console-endpoint").await;

        // The dead letter, replayed once the receiver is back.
        target.up.store(true, Ordering::SeqCst);
        client
            .goto(&format!("{base}/dead-letters?endpoint=crm"))
            .await?;
        let row = text_of(&client, "table.letters tbody tr").await?;
        assert!(row.contains("HD-1042"), "{row}");
        client
            .find(Locator::Css("button[name=key_one]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/dead-letters", Some("done=replayed")).await?;
        assert_eq!(text_of(&client, "p.flash").await?, "1 replayed.");
        target.wait_delivered(1);

        // Pause it from its page.
        client.goto(&format!("{base}/endpoints/crm")).await?;
        client
            .find(Locator::Css("button[value=pause]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/endpoints/crm", Some("done=paused")).await?;
        assert_eq!(text_of(&client, "h1 .badge").await?, "paused");

        // A team chat: a new endpoint that posts to Slack, picked from the presets.
        client.goto(&format!("{base}/new-endpoint")).await?;
        for (name, value) in [
            ("name", "team-chat"),
            ("url", chat_url.as_str()),
            ("retry", "0s"),
        ] {
            client
                .find(Locator::Css(&format!("input[name={name}]")))
                .await?
                .send_keys(value)
                .await?;
        }
        client
            .find(Locator::Css("input[name=allow_private]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Css(
                "select[name=template_preset] option[value=slack]",
            ))
            .await?
            .click()
            .await?;
        screenshot(&client, "console-endpoint-preset").await;
        client
            .find(Locator::Css("form.endpoint button[type=submit]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/endpoints/team-chat", Some("done=created")).await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    client.close().await.expect("the browser closes");
    drop(driver);
    result.expect("the console works in the browser");
    let (_, crm) = serve.call("GET", "/api/v1/endpoints/crm", &[], "");
    assert_eq!(crm["state"], "paused");
    // The next event reaches the chat as a Slack message.
    let (status, _) = serve.post_event(&zenlix_event("HD-1043"), &[]);
    assert_eq!(status, 202);
    let deadline = Instant::now() + WAIT;
    let message = loop {
        let requests = target.receiver.requests();
        if let Some(request) = requests.iter().find(|r| r.path.ends_with("/chat")) {
            break request.json();
        }
        if Instant::now() > deadline {
            let (_, chat) = serve.call("GET", "/api/v1/endpoints/team-chat", &[], "");
            panic!("nothing reached the chat: {requests:?} {chat}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(message["blocks"][0]["type"], "section", "{message}");
}
