//! `deskhook serve` as a helpdesk not written in Rust uses it: events posted over HTTP (as
//! `curl` would), the admin API, bad input of every kind, a kill -9 and a restart that lose
//! nothing accepted, a stop that ends within its grace (the console in a real browser is in
//! `serve_console_in_a_browser`).
//!
//! Everything listens on 127.0.0.1; every process (serve, chromedriver, Chromium) is stopped
//! by the test.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::serve::{
    Serve, Switchable, TOKEN, crm_config, no_endpoint_config, write_config, zenlix_action,
    zenlix_event,
};
use crate::support::{WAIT, request};

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
    // Without a spool, the dead letters' file is named whole.
    assert!(
        serve.banner.contains(&format!(
            "no spool: events in memory only, dead letters to {}",
            dir.path().join("dead.jsonl").display()
        )),
        "{}",
        serve.banner
    );
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
    // Its ticket code is long: the answer names it, clipped.
    let long = format!("Q-2{}", "x".repeat(4000));
    let (status, problem) = serve.post_event(&zenlix_event(&long), &[]);
    assert_eq!(status, 503, "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("queue full"), "{problem}");
    assert!(detail.len() < 1000, "{} bytes", detail.len());
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
    let config = crm_config(dir.path(), "", &target.receiver.url);
    let mut serve = Serve::start(&config, None);
    let mut in_head = std::net::TcpStream::connect(&serve.addr).unwrap();
    in_head
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let mut in_body = std::net::TcpStream::connect(&serve.addr).unwrap();
    in_body
        .write_all(
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
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

/// A second SIGTERM ends a long --grace there and then: the attempt still hanging is let
/// go (to the dead letters, without a spool), and the summary and the exit status say so.
#[test]
fn a_second_signal_ends_the_grace_at_once() {
    let target = deskhook_tests::Hanging::start();
    let dir = tempfile::tempdir().unwrap();
    let config = crm_config(dir.path(), "", &target.base);
    let mut serve = Serve::start_with(&config, None, &["--grace", "10m"]);
    let (status, reply) = serve.post_event(&zenlix_event("H-1"), &[]);
    assert_eq!(status, 202, "{reply}");
    target.wait_for_connections(1);
    serve.signal("-TERM");
    let stopping = serve.process.line();
    assert!(
        stopping.starts_with("stopping:") && stopping.contains("(10m)"),
        "{stopping}"
    );
    serve.signal("-TERM");
    let stopped = serve.process.wait_within(WAIT);
    assert!(
        stopped.is_some_and(|status| !status.success()),
        "serve stopped at the second signal, saying that an event was not delivered: \
         {stopped:?}"
    );
    let log = serve.process.stderr();
    assert!(log.contains("a second stop signal"), "{log}");
    let summary = std::iter::from_fn(|| serve.process.try_line()).collect::<Vec<_>>();
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("stopped: 0 delivered, 1 dead letter(s)")),
        "{summary:?}"
    );
    let letters = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    assert_eq!(letters.lines().count(), 1, "{letters}");
}

/// An event's body that stops arriving is answered 408 once --body-timeout passes without a
/// byte, and nothing of it is accepted; one announced past max_payload is answered 413
/// before it arrives; an event's body that keeps coming, slowly, is read whole within 4
/// times --body-timeout. A login form's body, read before any token is
/// checked, must arrive whole within --body-timeout (400).
#[test]
fn a_body_that_stops_arriving_is_answered_408_and_a_slow_one_is_read() {
    use std::io::{Read as _, Write as _};
    let target = Switchable::start(503);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = crm_config(dir.path(), "", &target.receiver.url);
    let mut serve = Serve::start_with(&config, None, &["--body-timeout", "1s"]);
    let head = |length: usize| {
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\
             Connection: close\r\n\r\n"
        )
    };
    let answer = |stream: &mut std::net::TcpStream| {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };

    let mut stalled = std::net::TcpStream::connect(&serve.addr).unwrap();
    stalled
        .write_all(format!("{}{{\"ticket\"", head(1000)).as_bytes())
        .unwrap();
    let stalled = answer(&mut stalled);
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(
        stalled.contains("the event's body stopped arriving (9 bytes came, then nothing for 1s)"),
        "{stalled}"
    );

    // A Content-Length past max_payload (1 MiB) is answered 413 at once, before its body.
    let mut announced = std::net::TcpStream::connect(&serve.addr).unwrap();
    announced
        .write_all(head(1024 * 1024 + 1).as_bytes())
        .unwrap();
    let announced = answer(&mut announced);
    assert!(announced.starts_with("HTTP/1.1 413"), "{announced}");
    assert!(
        announced.contains("the body is larger than 1048576 bytes"),
        "{announced}"
    );

    // The login form, read before any token is checked, is not waited for either: stalled,
    // or coming a byte at a time.
    let login_head = b"POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    let mut login = std::net::TcpStream::connect(&serve.addr).unwrap();
    login.write_all(login_head).unwrap();
    login.write_all(b"token=").unwrap();
    let mut trickled = std::net::TcpStream::connect(&serve.addr).unwrap();
    trickled.write_all(login_head).unwrap();
    let head_sent = std::time::Instant::now();
    // Three bytes 150 ms apart, none past 600 ms: then nothing more until the answer (a
    // byte coming after the server stopped reading would reset the connection). An idle
    // limit of 1 s would not end it before 1.4 s; the whole body's does, at 1 s.
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(150));
        if head_sent.elapsed() < std::time::Duration::from_millis(600) {
            trickled.write_all(b"x").unwrap();
        }
    }
    for login in [answer(&mut login), answer(&mut trickled)] {
        assert!(login.starts_with("HTTP/1.1 400"), "{login}");
        assert!(
            login.contains("the request's body did not arrive whole within 1s of its head"),
            "{login}"
        );
    }

    // Ten pieces 150 ms apart: longer than the timeout in all, never that long without one.
    let event = zenlix_event("SLOW-1");
    let mut slow = std::net::TcpStream::connect(&serve.addr).unwrap();
    slow.write_all(head(event.len()).as_bytes()).unwrap();
    for piece in event.as_bytes().chunks(event.len().div_ceil(10)) {
        std::thread::sleep(std::time::Duration::from_millis(150));
        slow.write_all(piece).unwrap();
    }
    let slow = answer(&mut slow);
    assert!(slow.starts_with("HTTP/1.1 202"), "{slow}");
    target.wait_delivered(1);

    serve.signal("-TERM");
    assert!(serve.process.wait_within(WAIT).is_some_and(|s| s.success()));
    assert_eq!(target.delivered(), 1, "the stalled event was not accepted");
}

/// An event's body that never stops for --body-timeout but takes 4 times it in all is
/// answered 408: a byte now and then would otherwise hold its place for ever.
#[test]
fn a_body_that_trickles_past_four_body_timeouts_is_answered_408() {
    use std::io::{Read as _, Write as _};
    let target = Switchable::start(503);
    let dir = tempfile::tempdir().unwrap();
    let config = crm_config(dir.path(), "", &target.receiver.url);
    let mut serve = Serve::start_with(&config, None, &["--body-timeout", "200ms"]);
    let mut trickle = std::net::TcpStream::connect(&serve.addr).unwrap();
    trickle
        .write_all(
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    // A byte every 100 ms, within the 200 ms each time, until the answer comes (at 800 ms)
    // or a write fails (the daemon stopped reading).
    trickle
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let mut answer = String::new();
    for _ in 0..100 {
        if trickle.write_all(b" ").is_err() {
            break;
        }
        match trickle.read_to_string(&mut answer) {
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    trickle.set_read_timeout(Some(WAIT)).unwrap();
    let _ = trickle.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the event's body came too slowly ("),
        "{answer}"
    );
    assert!(answer.contains("4 times --body-timeout)"), "{answer}");
    serve.signal("-TERM");
    assert!(serve.process.wait_within(WAIT).is_some_and(|s| s.success()));
}

/// A request whose head stops arriving is not waited for past --header-timeout: its
/// connection is closed (with no answer, as hyper does), and so is a keep-alive connection
/// left idle as long; the daemon goes on answering others.
#[test]
fn a_request_head_that_stops_arriving_has_its_connection_closed() {
    use std::io::{Read as _, Write as _};
    let target = Switchable::start(503);
    let dir = tempfile::tempdir().unwrap();
    let config = crm_config(dir.path(), "", &target.receiver.url);
    let mut serve = Serve::start_with(&config, None, &["--header-timeout", "1s"]);
    // What comes before the connection closes: nothing, or (when the daemon answered) all.
    let until_closed = |stream: &mut std::net::TcpStream| {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut came = String::new();
        match stream.read_to_string(&mut came) {
            Ok(_) => came,
            Err(e) => panic!("the connection was still open after {WAIT:?} ({e}); came: {came:?}"),
        }
    };

    let mut stalled = std::net::TcpStream::connect(&serve.addr).unwrap();
    stalled
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bea")
        .unwrap();
    assert_eq!(until_closed(&mut stalled), "");

    let mut idle = std::net::TcpStream::connect(&serve.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answered = until_closed(&mut idle);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.ends_with("ok\n"), "{answered}");

    serve.signal("-TERM");
    assert!(serve.process.wait_within(WAIT).is_some_and(|s| s.success()));
}

#[test]
fn serve_keeps_its_events_through_a_sighup() {
    let target = Switchable::start(503);
    target.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let file_log = format!(
        "[file_log]\npath = {:?}\n\n",
        dir.path().join("events.jsonl")
    );
    let config = crm_config(dir.path(), &file_log, &target.receiver.url);
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
    // The API's endpoint is the loopback receiver's.
    let serve = Serve::start_with(&config, Some(&spool), &["--console-allow-private"]);

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
    // A body in windows-1251 is named by its label, with the conversion that fixes it.
    let auth = format!("Bearer {TOKEN}");
    let (status, body) = request(
        &serve.addr,
        "POST",
        "/v1/events",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json; charset=windows-1251"),
        ],
        b"{\"ticket\": {\"code\": \"\xcf\xf0\xe8\"}}",
    );
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("iconv -f windows-1251 -t UTF-8"), "{body}");
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
    // A typo is told as such: a problem document under /v1/ and /api/, a page elsewhere,
    // and the login form for one without the token.
    let (status, problem) = serve.call("POST", "/v1/event", &[], &zenlix_event("T"));
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("POST /v1/events")),
        "{problem}"
    );
    let (status, problem) = serve.call("GET", "/api/v2/stats", &[], "");
    assert_eq!(
        (status, problem["status"].clone()),
        (404, json!(404)),
        "{problem}"
    );
    let (status, page) = serve.call("GET", "/endpoint", &[], "");
    assert_eq!(status, 404, "{page}");
    assert!(
        page.as_str()
            .is_some_and(|p| p.contains("no page at this address")),
        "{page}"
    );
    let (status, _) = request(&serve.addr, "GET", "/endpoint", &[], b"");
    assert_eq!(status, 303);
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

/// A daemon started with no endpoint says that events go nowhere until one is added.
#[test]
fn serve_with_no_endpoint_says_so_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = no_endpoint_config(dir.path());
    let serve = Serve::start(&config, None);
    assert!(
        serve.banner.contains(
            "; no endpoint yet (events go nowhere until one is added in the console or the API)"
        ),
        "{}",
        serve.banner
    );
}

/// /healthz answers 503 while the spool cannot write (a balancer sends events elsewhere),
/// without saying what fails to whoever asks, and 200 again once a write succeeds.
#[test]
fn serve_is_not_ready_while_its_spool_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there; the endpoint is paused, so its events stay in the spool.
    let config = write_config(
        dir.path(),
        "[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/\"\nallow_private = true\n",
    );
    let spool = dir.path().join("spool");
    let serve = Serve::start(&config, Some(&spool));
    let (status, _) = serve.call("POST", "/api/v1/endpoints/crm/pause", &[], "");
    assert_eq!(status, 200);
    let (status, _) = request(&serve.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    let db =
        rusqlite::Connection::open(spool.join(deskhook_transports::spool::DATABASE_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON events \
         BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END",
    )
    .unwrap();
    let (status, refused) = serve.post_event(&zenlix_event("F1"), &[]);
    assert!(status >= 500, "{status} {refused}");
    let (status, answer) = request(&serve.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("not ready"), "{answer}");
    assert!(
        !answer.contains("spool.db"),
        "no path to strangers: {answer}"
    );
    db.execute_batch("DROP TRIGGER full").unwrap();
    let (status, accepted) = serve.post_event(&zenlix_event("F2"), &[]);
    assert_eq!(status, 202, "{accepted}");
    let (status, _) = request(&serve.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
}

/// With --ingest-token-env, the helpdesk's token posts events and nothing else; the
/// operators' token does everything; the two must differ.
#[test]
fn an_ingest_token_posts_events_and_nothing_else() {
    const INGEST: &str = "ingest-only-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = no_endpoint_config(dir.path());
    let serve = Serve::with_ingest_token(&config, INGEST);
    let ingest = format!("Bearer {INGEST}");
    let with_ingest = [("Authorization", ingest.as_str())];
    let (status, answer) = request(
        &serve.addr,
        "POST",
        "/v1/events",
        &with_ingest,
        zenlix_event("I1").as_bytes(),
    );
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = request(&serve.addr, "GET", "/metrics", &with_ingest, b"");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("may only post events"), "{answer}");
    // The console and the API too, before the console sees it (it would log a guess).
    for path in ["/api/v1/stats", "/"] {
        let (status, answer) = request(&serve.addr, "GET", path, &with_ingest, b"");
        assert_eq!(status, 403, "{path}: {answer}");
    }
    // The operators' token, everywhere.
    let (status, _) = serve.call("GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let (status, answer) = serve.post_event(&zenlix_event("I2"), &[]);
    assert_eq!(status, 202, "{answer}");
    drop(serve);
    // The same token twice is refused at start.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--ingest-token-env", "HELPDESK_TOKEN"])
        .env("DESKHOOK_TOKEN", INGEST)
        .env("HELPDESK_TOKEN", INGEST)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("is the operators' token"), "{stderr}");
}
