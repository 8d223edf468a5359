//! Delivery over TLS to a loopback server whose certificate comes from a private CA that the
//! endpoint trusts: the async transport speaks HTTP/2 when the server offers it (ALPN) and
//! HTTP/1.1 otherwise; the blocking one speaks HTTP/1.1. An endpoint that does not trust the
//! CA gets nothing through. A receiver that closes every connection sees the sessions
//! resumed after the first handshake. An HTTP/2 connection that goes silent is given up after
//! one attempt times out on it, but not for an endpoint whose short timeout ends before a
//! slow answer. A large body the receiver refuses (`413`) once it has the
//! head is answered by the refusal on both transports, not by a timeout. An HTTP/2 answer
//! head is read up to the 64 KiB an HTTP/1.1 one is.

use std::time::Duration;

use deskhook::{Action, Secret};
use deskhook_tests::tls::{
    TlsReceiver, h2_receiver_that_goes_silent, h2_receiver_that_holds, h2_receiver_that_turns_away,
    h2_receiver_with_a_large_answer_head, tls_receiver, tls_receiver_that_refuses_over,
};
use deskhook_tests::{Transport, dead_letter_file, start, ticket};
use deskhook_transports::delivery::{Endpoint, read_dead_letters};
use deskhook_transports::http_blocking::HttpSink;

/// Delivers three events to `server`, trusting its CA or not; the dead letters' last
/// errors.
fn deliver(t: Transport, server: &TlsReceiver, secret: &Secret, trust: bool) -> Vec<String> {
    let (_dir, dead) = dead_letter_file();
    let mut endpoint = Endpoint::new("tls", &format!("https://localhost:{}/hook", server.port))
        .unwrap()
        .allow_private(true)
        .https_only(true)
        .secret(secret.clone())
        .retry("0s".parse().unwrap());
    if trust {
        endpoint = endpoint
            .ca_certificates_pem(server.ca_pem.as_bytes())
            .unwrap();
    }
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for code in ["H1", "H2", "H3"] {
        dispatcher.emit(Action::Comment, &ticket(code), &user);
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    read_dead_letters(&dead)
        .unwrap()
        .into_iter()
        .map(|letter| letter.last_error.unwrap_or_default())
        .collect()
}

/// An endpoint named `name` for `https://127.0.0.1:<port>/<path>` on `server`, trusting its
/// CA.
fn trusted(server: &TlsReceiver, name: &str, path: &str) -> Endpoint {
    Endpoint::new(name, &format!("https://127.0.0.1:{}/{path}", server.port))
        .unwrap()
        .allow_private(true)
        .ca_certificates_pem(server.ca_pem.as_bytes())
        .unwrap()
}

fn check_requests(server: &TlsReceiver, secret: &Secret, protocol: &str) {
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.protocol, protocol);
        deskhook::signature::verify(
            &request.headers,
            &request.body,
            std::slice::from_ref(secret),
            Duration::from_secs(300),
        )
        .unwrap();
    }
}

#[test]
fn async_speaks_http2_when_the_server_offers_it() {
    let server = tls_receiver(&[b"h2", b"http/1.1"], false);
    let secret = Secret::generate().unwrap();
    assert_eq!(deliver(Transport::Async, &server, &secret, true), [""; 0]);
    check_requests(&server, &secret, "h2");
}

#[test]
fn async_speaks_http1_when_that_is_all_the_server_offers() {
    let server = tls_receiver(&[b"http/1.1"], false);
    let secret = Secret::generate().unwrap();
    assert_eq!(deliver(Transport::Async, &server, &secret, true), [""; 0]);
    check_requests(&server, &secret, "http/1.1");
}

#[test]
fn blocking_delivers_over_tls_with_http1() {
    let server = tls_receiver(&[b"h2", b"http/1.1"], false);
    let secret = Secret::generate().unwrap();
    assert_eq!(
        deliver(Transport::Blocking, &server, &secret, true),
        [""; 0]
    );
    check_requests(&server, &secret, "http/1.1");
}

#[test]
fn a_large_body_refused_early_over_tls_is_the_answer() {
    // The receiver answers 413 once it has the head and reads no more: both transports read
    // TLS themselves, so the refusal is heard while the body is still being written, not
    // taken for a timeout (the blocking transport over ureq heard it only at its timeout).
    const LARGE: usize = 16 * 1024 * 1024;
    // On Windows the blocking transport's write waits the whole time left (its module
    // docs say why), and hears the refusal only if the server closes.
    let transports: &[Transport] = if cfg!(unix) {
        &[Transport::Blocking, Transport::Async]
    } else {
        &[Transport::Async]
    };
    for &t in transports {
        let server = tls_receiver_that_refuses_over(64 * 1024);
        let (_dir, dead) = dead_letter_file();
        let endpoint = trusted(&server, "tls", "hook")
            // Past this, the attempt is a timeout: what the refusal must not become.
            .timeout(Duration::from_secs(8))
            .retry("0s".parse().unwrap());
        let (_sink, guard, dispatcher) = start(
            t,
            HttpSink::builder()
                .max_payload(2 * LARGE)
                .endpoint(endpoint)
                .dead_letter_path(&dead),
        );
        let mut large = ticket("BIG");
        large.subject = "x".repeat(LARGE);
        dispatcher.emit(Action::Create, &large, &deskhook::sample::user());
        guard.flush(Duration::from_secs(20)).unwrap();
        let letters = read_dead_letters(&dead).unwrap();
        assert_eq!(letters.len(), 1, "{t:?}");
        assert_eq!(
            (letters[0].last_status, letters[0].attempts),
            (Some(413), 1),
            "{t:?}: {:?}",
            letters[0].last_error
        );
    }
}

#[test]
fn an_http2_answer_head_larger_than_16_kib_is_read() {
    // HTTP/2's usual limit is 16 KiB; over HTTP/1.1 deskhook reads heads up to 64 KiB.
    let server = h2_receiver_with_a_large_answer_head(20 * 1024);
    let secret = Secret::generate().unwrap();
    assert_eq!(deliver(Transport::Async, &server, &secret, true), [""; 0]);
    check_requests(&server, &secret, "h2");
}

#[test]
fn an_untrusted_certificate_gets_nothing_through() {
    for t in [Transport::Blocking, Transport::Async] {
        let server = tls_receiver(&[b"h2", b"http/1.1"], false);
        let secret = Secret::generate().unwrap();
        let errors = deliver(t, &server, &secret, false);
        assert_eq!(errors.len(), 3, "{t:?}");
        // The error says what to do.
        assert!(
            errors[0].contains("UnknownIssuer") && errors[0].contains("give the endpoint that CA"),
            "{t:?}: {}",
            errors[0]
        );
        assert!(server.seen.lock().unwrap().is_empty(), "{t:?}");
    }
}

#[test]
fn requests_to_an_http2_origin_wait_for_one_connection() {
    // 32 requests at once to an origin not connected yet: they share the connection the
    // first makes (64 streams), rather than each make its own and drop all but one.
    let server = tls_receiver(&[b"h2"], false);
    let (_dir, dead) = dead_letter_file();
    let endpoint = trusted(&server, "tls", "hook")
        .max_in_flight(32)
        .retry("0s".parse().unwrap());
    let (_sink, guard, dispatcher) = start(
        Transport::Async,
        HttpSink::builder()
            .endpoint(endpoint)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for i in 0..32 {
        dispatcher.emit(Action::Comment, &ticket(&format!("S{i}")), &user);
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 32);
    let handshakes = server.resumed.lock().unwrap().len();
    assert_eq!(handshakes, 1, "one TLS handshake for the 32 requests");
}

#[test]
fn new_connections_resume_the_tls_session() {
    for t in [Transport::Blocking, Transport::Async] {
        let server = tls_receiver(&[b"http/1.1"], true);
        let secret = Secret::generate().unwrap();
        // One request at a time, so that each new connection follows a finished handshake
        // whose session the client kept.
        let (_dir, dead) = dead_letter_file();
        let endpoint = trusted(&server, "tls", "hook")
            .secret(secret.clone())
            .max_in_flight(1)
            .retry("0s,10ms".parse().unwrap());
        let (_sink, guard, dispatcher) = start(
            t,
            HttpSink::builder()
                .endpoint(endpoint)
                .dead_letter_path(&dead),
        );
        let user = deskhook::sample::user();
        for i in 0..4 {
            dispatcher.emit(Action::Comment, &ticket(&format!("R{i}")), &user);
            guard.flush(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(server.seen.lock().unwrap().len(), 4, "{t:?}");
        let resumed = server.resumed.lock().unwrap().clone();
        assert!(
            resumed.len() >= 4,
            "{t:?}: a connection per request: {resumed:?}"
        );
        assert!(!resumed[0], "{t:?}: the first handshake is a full one");
        assert!(
            resumed[1..].iter().all(|&r| r),
            "{t:?}: later handshakes resume: {resumed:?}"
        );
    }
}

#[test]
fn http2_requests_refused_or_turned_away_go_again_within_their_attempt() {
    // The server refuses the first stream it is sent, and sends GOAWAY after 3 requests on
    // each connection.
    let server = h2_receiver_that_turns_away(3);
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let errors = failures.clone();
    let (_dir, dead) = dead_letter_file();
    let endpoint = trusted(&server, "h2", "")
        .retry("0s,0s,0s".parse().unwrap())
        .max_in_flight(4);
    let (sink, guard, dispatcher) = start(
        Transport::Async,
        HttpSink::builder()
            .endpoint(endpoint)
            .dead_letter_path(&dead)
            .observer(
                move |r: &deskhook_transports::delivery::AttemptRecord<'_>| {
                    if let Some(e) = r.error {
                        errors.lock().unwrap().push(e.to_owned());
                    }
                },
            ),
    );
    let user = deskhook::sample::user();
    for i in 0..40 {
        dispatcher.emit(Action::Comment, &ticket(&format!("G{}", i % 8)), &user);
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    let stats = &sink.stats()[0];
    let failures = failures.lock().unwrap();
    assert_eq!(stats.delivered, 40, "{stats:?} {failures:?}");
    assert!(read_dead_letters(&dead).unwrap().is_empty());
    // A request the server refused or left past its GOAWAY went again within its attempt:
    // no attempt failed for it. (The test server closes a connection without lingering, so
    // a request it never read can now and then end in a reset, which no client can tell
    // from one processed: that one fails its attempt, and the next attempt sends it.)
    assert!(
        failures.iter().all(|e| !e.contains("received")),
        "{failures:?}"
    );
    // Every event arrived, over many connections.
    let seen = server.seen.lock().unwrap();
    let mut ids: Vec<&str> = seen
        .iter()
        .filter_map(|s| {
            s.headers
                .iter()
                .find(|(k, _)| k == "webhook-id")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    // No duplicate but from an attempt that failed (a reset, above).
    assert!(seen.len() - 40 <= failures.len(), "{} seen", seen.len());
    // The server shuts a connection down gracefully as it reads the third request, which
    // lets finish those the client opened before the GOAWAY came: up to 4 more in flight,
    // so a connection carries 6 at most.
    let handshakes = server.resumed.lock().unwrap().len();
    assert!(
        handshakes >= 40_usize.div_ceil(6),
        "{handshakes} connections"
    );
}

#[test]
fn a_hanging_endpoint_does_not_hold_up_another_on_its_http2_origin() {
    // A server that lets a connection have 66 requests at once, and never answers /hold.
    let server = h2_receiver_that_holds(66);
    let (_dir, dead) = dead_letter_file();
    let at = |path: &str| trusted(&server, path, path).timeout(Duration::from_secs(30));
    let (sink, guard, dispatcher) = start(
        Transport::Async,
        HttpSink::builder()
            .endpoint(at("hold").max_in_flight(70).actions(Action::Comment))
            .endpoint(at("ok").actions(Action::Create))
            .max_in_flight(100)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    // 70 requests that hang, more than the server lets one connection have.
    for i in 0..70 {
        dispatcher.emit(Action::Comment, &ticket(&format!("H{i}")), &user);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.totals().in_flight < 70 {
        assert!(std::time::Instant::now() < deadline, "not 70 in flight");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The healthy endpoint's event is answered while they hang, on a connection with room.
    dispatcher.emit(Action::Create, &ticket("OK1"), &user);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.endpoints().get("ok").unwrap().stats.delivered == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the healthy endpoint waited behind the hanging one"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The hanging requests are left to the stop (and the receiver's end).
    let _ = guard.shutdown(Duration::from_millis(50));
}

#[test]
fn an_endpoint_timing_out_on_a_slow_answer_keeps_its_origins_http2_connection() {
    // A server that never answers /hold: its endpoint's attempts time out after 100 ms,
    // shorter than the connect timeout (5 s), on the connection the other endpoint uses.
    let server = h2_receiver_that_holds(100);
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        Transport::Async,
        HttpSink::builder()
            .endpoint(
                trusted(&server, "hold", "hold")
                    .timeout(Duration::from_millis(100))
                    .retry("0s".parse().unwrap())
                    .actions(Action::Comment),
            )
            .endpoint(trusted(&server, "ok", "ok").actions(Action::Create))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("OK1"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    for i in 0..3 {
        dispatcher.emit(Action::Comment, &ticket(&format!("H{i}")), &user);
        guard.flush(Duration::from_secs(10)).unwrap();
    }
    dispatcher.emit(Action::Create, &ticket("OK2"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    let stats = |name: &str| sink.endpoints().get(name).unwrap().stats;
    assert_eq!((stats("hold").failed, stats("ok").delivered), (3, 2));
    assert_eq!(read_dead_letters(&dead).unwrap().len(), 3);
    // One connection for all: none was dropped for the timeouts.
    assert_eq!(server.resumed.lock().unwrap().len(), 1);
    let _ = guard.shutdown(Duration::from_millis(50));
}

#[test]
fn an_http2_connection_gone_silent_is_given_up_after_one_timeout() {
    // The first connection answers one request, then nothing: not even hyper's pings,
    // which would notice it only after 20 s.
    let server = h2_receiver_that_goes_silent(1);
    let (_dir, dead) = dead_letter_file();
    let endpoint = trusted(&server, "h2", "")
        // Long enough for a new TLS connection's handshake and answer on a busy machine;
        // only the silent connection waits it out, silent for longer than a connect may
        // take.
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .retry("0s,10ms,10ms,10ms".parse().unwrap());
    let (sink, guard, dispatcher) = start(
        Transport::Async,
        HttpSink::builder()
            .endpoint(endpoint)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Comment, &ticket("S1"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    // Its first attempt times out on the silent connection; the next goes on a new one.
    dispatcher.emit(Action::Comment, &ticket("S2"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    assert!(read_dead_letters(&dead).unwrap().is_empty());
    let stats = sink.endpoints().get("h2").unwrap().stats;
    assert_eq!((stats.delivered, stats.failed), (2, 1));
    assert_eq!(server.seen.lock().unwrap().len(), 2);
}
