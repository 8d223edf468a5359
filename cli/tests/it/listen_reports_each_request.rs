//! `deskhook listen` prints one line per request, whatever arrives, and answers as told.

use deskhook::Secret;

use crate::support::{Listen, SECRET, post};

#[test]
fn without_a_secret_requests_are_unsigned_and_answered_the_status() {
    let listen = Listen::start(&["--status", "202"]);
    let status = post(
        &listen.addr,
        &[("X-Deskhook-Action", "ok"), ("X-Deskhook-Sequence", "7")],
        br#"{"action":"create","ticket":{"code":"Q1"}}"#,
    );
    assert_eq!(status, 202);
    // The body names the action (a signature covers it, not the header) when they disagree.
    assert_eq!(listen.line(), "unsigned  create   Q1  seq 7  -");
    // Without one in the body, the header names it.
    let status = post(
        &listen.addr,
        &[("X-Deskhook-Action", "ok")],
        br#"{"ticket":{"code":"Q2"}}"#,
    );
    assert_eq!(status, 202);
    assert_eq!(listen.line(), "unsigned  ok       Q2  seq -  -");

    let status = post(&listen.addr, &[], b"hello");
    assert_eq!(status, 202);
    let line = listen.line();
    assert!(
        line.starts_with("unsigned  -        -  seq -  -  (body is not JSON: "),
        "{line}"
    );
    assert!(line.ends_with("; 5 bytes)"), "{line}");
}

#[test]
fn with_a_secret_an_unsigned_request_gets_401() {
    let listen = Listen::start(&["--secret", SECRET]);
    let status = post(&listen.addr, &[], br#"{"action":"lock"}"#);
    assert_eq!(status, 401);
    assert_eq!(
        listen.line(),
        "bad signature (missing header 'webhook-id': the sender does not sign with Standard \
         Webhooks, or something on the way dropped the header)  lock     -  seq -  -"
    );
}

#[test]
fn json_prints_each_body_on_one_line() {
    let listen = Listen::start(&["--json", "--secret", SECRET]);
    let body = br#"{"action":"edit","ticket":{"code":"J1"}}"#;
    let now = jiff::Timestamp::now().as_second().to_string();
    let signature = deskhook::signature::sign(
        "msg_1",
        now.parse().unwrap(),
        body,
        &[Secret::parse(SECRET).unwrap()],
    )
    .unwrap();
    let headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", now.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    assert_eq!(post(&listen.addr, &headers, body), 204);
    assert_eq!(listen.line(), String::from_utf8_lossy(body));

    // A pretty-printed body comes out compact, still one line.
    let pretty = b"{\n  \"action\": \"ok\"\n}\n";
    let signature = deskhook::signature::sign(
        "msg_2",
        now.parse().unwrap(),
        pretty,
        &[Secret::parse(SECRET).unwrap()],
    )
    .unwrap();
    let headers = [
        ("webhook-id", "msg_2"),
        ("webhook-timestamp", now.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    assert_eq!(post(&listen.addr, &headers, pretty), 204);
    assert_eq!(listen.line(), r#"{"action":"ok"}"#);

    // A forged body is answered 401 and kept off stdout, which is JSON Lines only (the
    // "listening on" line went to stderr).
    let forged = br#"{"action":"delete"}"#;
    assert_eq!(post(&listen.addr, &headers, forged), 401);
    let signed = br#"{"action":"lock"}"#;
    let signature = deskhook::signature::sign(
        "msg_3",
        now.parse().unwrap(),
        signed,
        &[Secret::parse(SECRET).unwrap()],
    )
    .unwrap();
    let headers = [
        ("webhook-id", "msg_3"),
        ("webhook-timestamp", now.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    assert_eq!(post(&listen.addr, &headers, signed), 204);
    assert_eq!(listen.line(), r#"{"action":"lock"}"#);
    let stderr = listen.process.stderr_with("body not printed");
    assert!(
        stderr.contains("bad signature") && stderr.contains("body not printed"),
        "{stderr}"
    );
}

#[test]
fn every_format_is_summarised_from_its_body() {
    let listen = Listen::start(&[]);
    let usedesk = br#"{"secret":"0e8f","rating":{"id":7,"ticket_id":"2261907","rating":3}}"#;
    assert_eq!(post(&listen.addr, &[], usedesk), 204);
    assert_eq!(listen.line(), "unsigned  usedesk.rating 2261907  seq -  -");
    let iq = br#"{"ChatEvent":{"Id":608,"Type":"delete-messages","ChatId":21},"Rels":{}}"#;
    assert_eq!(post(&listen.addr, &[], iq), 204);
    assert_eq!(
        listen.line(),
        "unsigned  iqchannels.delete-messages 21  seq -  -"
    );
    let zenlix = deskhook::sample::event(deskhook::Action::Refer)
        .to_json()
        .unwrap();
    assert_eq!(post(&listen.addr, &[], &zenlix), 204);
    assert_eq!(listen.line(), "unsigned  refer    E3XK  seq -  -");
}

#[test]
fn delay_holds_each_answer_back() {
    use std::io::{Read as _, Write as _};

    let slow = Listen::start(&["--delay", "30s"]);
    let mut stream = std::net::TcpStream::connect(&slow.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    // The request is taken (and printed) at once; its answer is 30 s away.
    assert_eq!(slow.line(), "unsigned  -        -  seq -  -");
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer);
    assert!(
        read.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "{read:?}"
    );

    // A short delay still answers with the status.
    let quick = Listen::start(&["--delay", "20ms", "--status", "202"]);
    assert_eq!(post(&quick.addr, &[], b"{}"), 202);
}

#[test]
fn a_request_it_cannot_read_safely_is_answered_400() {
    use std::io::{Read as _, Write as _};

    let listen = Listen::start(&[]);
    let answer = |request: &[u8]| {
        let mut stream = std::net::TcpStream::connect(&listen.addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    // Two lengths that disagree: the body would be read as the next request.
    let reply = answer(b"POST / HTTP/1.1\r\nContent-Length: 2, 5\r\n\r\n{}");
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(
        reply.contains("Content-Length is not one number"),
        "{reply}"
    );
    // A header line with no end.
    let mut long = b"POST / HTTP/1.1\r\nX-Long: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 20_000));
    let reply = answer(&long);
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    // The same length twice, as a proxy may join them, is one length.
    let reply = answer(b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\nConnection: close\r\n\r\n{}");
    assert!(reply.starts_with("HTTP/1.1 204 "), "{reply}");
}

#[test]
fn a_sender_still_writing_a_body_over_the_limit_gets_its_413() {
    use std::io::{Read as _, Write as _};

    let listen = Listen::start(&[]);
    let mut stream = std::net::TcpStream::connect(&listen.addr).unwrap();
    let bound = Some(std::time::Duration::from_secs(10));
    stream.set_read_timeout(bound).unwrap();
    stream.set_write_timeout(bound).unwrap();
    let length = 17 * 1024 * 1024;
    let head = format!("POST / HTTP/1.1\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The whole body, as a sender that does not look for an early answer writes it: the
    // answer comes first, and the rest is read and thrown away rather than reset.
    let written = stream.write_all(&vec![b'x'; length]);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(written.is_ok(), "{written:?}");
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[test]
fn listen_refuses_a_status_that_is_not_an_answer() {
    // Bounded: a listen that took it would run until stopped.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["listen", "--status", "100"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "it listened: {stderr}"
    );
    assert!(stderr.contains("100 is not in 200..=599"), "{stderr}");
}

/// The answer's head, to a POST of `body` with `Connection: close`.
fn answer_head(addr: &str, body: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(crate::support::WAIT)).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A 204, listen's answer by default, has no Content-Length (RFC 9110, 8.6); another
/// status has one.
#[test]
fn a_204_comes_without_a_length() {
    let listen = Listen::start(&[]);
    let answer = answer_head(&listen.addr, b"{}");
    assert!(answer.starts_with("HTTP/1.1 204 "), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("content-length"),
        "{answer}"
    );
    let _ = listen.line();
    let listen = Listen::start(&["--status", "202"]);
    let answer = answer_head(&listen.addr, b"{}");
    assert!(
        answer.to_ascii_lowercase().contains("content-length: 0"),
        "{answer}"
    );
}

/// A sender that asks first (`Expect: 100-continue`) is told to go on before it sends its
/// body, then gets its answer.
#[test]
fn a_sender_that_expects_100_continue_is_told_to_go_on() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listen = Listen::start(&[]);
    let mut stream = std::net::TcpStream::connect(&listen.addr).unwrap();
    stream.set_read_timeout(Some(crate::support::WAIT)).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nExpect: 100-continue\r\n\
         Content-Length: 2\r\n\r\n",
        listen.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Nothing of the body is sent until the interim answer has come.
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "\r\n");
    stream.write_all(b"{}").unwrap();
    let mut answer = String::new();
    reader.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204 "), "{answer}");
    assert!(listen.line().starts_with("unsigned"));
}

/// A capture an hour old is refused for its timestamp, unless the window allows it
/// (--tolerance) or the clock is left out (--no-tolerance); its signature is checked all
/// the same. Also --listen, the name serve gives the address.
#[test]
fn the_timestamp_window_is_a_flag() {
    let body = br#"{"action":"edit","ticket":{"code":"T1"}}"#;
    let hour_ago = jiff::Timestamp::now().as_second() - 3600;
    let signature =
        deskhook::signature::sign("msg_old", hour_ago, body, &[Secret::parse(SECRET).unwrap()])
            .unwrap();
    let stamp = hour_ago.to_string();
    let headers = [
        ("webhook-id", "msg_old"),
        ("webhook-timestamp", stamp.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    for (flags, status) in [
        (&[][..], 401),
        (&["--tolerance", "2h"][..], 204),
        (&["--no-tolerance"][..], 204),
    ] {
        let listen = Listen::start(&[&["--secret", SECRET][..], flags].concat());
        assert_eq!(post(&listen.addr, &headers, body), status, "{flags:?}");
        let line = listen.line();
        if status == 401 {
            assert!(line.contains("in the past"), "{line}");
        } else {
            assert!(line.starts_with("verified  edit"), "{line}");
        }
    }
    let listen = Listen::start(&["--no-tolerance", "--secret", SECRET]);
    assert_eq!(post(&listen.addr, &headers, b"{}"), 401, "a forged body");

    let named_as_serve = crate::support::Running::spawn(&["listen", "--listen", "127.0.0.1:0"]);
    let line = named_as_serve.line();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
}
