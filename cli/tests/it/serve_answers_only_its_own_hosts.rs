//! `deskhook serve` on loopback answers requests for its own names only: localhost, a
//! loopback address, or one given with --allow-host (DNS rebinding); /healthz answers any.
//! Everything listens on 127.0.0.1; the daemon is stopped by the test.

use crate::support::WAIT;
use crate::support::serve::{Serve, no_endpoint_config};

/// A daemon on loopback answers requests for localhost, a loopback address or a name given
/// with --allow-host, and 421 to others: a page of another site whose name resolves to
/// 127.0.0.1 (DNS rebinding) must not reach it.
#[test]
fn serve_on_loopback_answers_only_requests_for_its_own_names() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let config = no_endpoint_config(dir.path());
    let mut serve = Serve::start_with(&config, None, &["--allow-host", "helpdesk.example"]);
    let status_for = |host: &str| {
        let mut stream = std::net::TcpStream::connect(&serve.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let head = format!("GET /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    let port = serve.addr.rsplit(':').next().unwrap().to_owned();
    for ours in [
        format!("localhost:{port}"),
        serve.addr.clone(),
        format!("[::1]:{port}"),
        format!("helpdesk.example:{port}"),
    ] {
        let answer = status_for(&ours);
        assert!(answer.starts_with("HTTP/1.1 200"), "{ours}: {answer}");
    }
    let answer = status_for(&format!("rebound.example:{port}"));
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(answer.contains("--allow-host"), "{answer}");
    // But a health check, which says nothing else: a probe may name another host.
    let mut stream = std::net::TcpStream::connect(&serve.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let probe =
        format!("GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(probe.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    serve.signal("-TERM");
    assert!(serve.process.wait_within(WAIT).is_some_and(|s| s.success()));
}
