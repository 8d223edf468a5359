//! The blocking transport's connections against servers on 127.0.0.1: a request's writing
//! ends at its deadline when the server does not take it, a refusal while it goes out is the
//! answer (an interim answer or an early `2xx` is not), what a reset after an answer means,
//! the probe of a kept connection, the next address after a refusing one, and the lookup on
//! its thread. The sockets' buffers are made small, so that a write the server does not take
//! stalls whatever the host's TCP memory settings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;

use socket2::{Domain, SockRef, Socket, Type};

use super::super::io::STALL;
use super::*;
use crate::h1::Failed;

/// A body far larger than what the (small) sockets' buffers take while nothing reads it.
const BODY: usize = 8 * 1024 * 1024;

/// The sockets' buffer sizes asked for (the kernel may double them).
const SMALL_BUFFER: usize = 32 * 1024;

/// How long a test waits for what should come at once (a bound, not a measure).
const WAIT: Duration = Duration::from_secs(20);

/// A connection to `addr` as the transport makes one (plain HTTP), with a small send buffer.
fn open(addr: SocketAddr) -> Conn {
    let stream = TcpStream::connect(addr).unwrap();
    SockRef::from(&stream)
        .set_send_buffer_size(SMALL_BUFFER)
        .unwrap();
    H1::new(Io::Tcp(Blocking::new(stream, Instant::now() + WAIT)))
}

/// Sends a request with a body of [`BODY`] bytes on `conn`, as the transport does, within
/// `timeout`.
fn send(conn: &mut Conn, timeout: Duration) -> Result<crate::h1::Head, Failed> {
    let head = format!("POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {BODY}\r\n\r\n");
    let tcp = conn.io_mut().tcp_mut();
    tcp.set_deadline(Instant::now() + timeout);
    tcp.looking = true;
    let sent = block_on(conn.send(head.as_bytes(), &vec![b'x'; BODY]));
    conn.io_mut().tcp_mut().looking = false;
    sent
}

/// A server for one connection, on a socket with a small receive buffer: reads the
/// request's head, sends `answer`, then reads nothing more until the test ends (`stop`),
/// unless `take_all`, when it reads the whole body before answering. Gives back how many
/// bytes of the body it read.
fn server(
    answer: &'static [u8],
    take_all: bool,
) -> (SocketAddr, mpsc::Sender<()>, JoinHandle<usize>) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(SMALL_BUFFER).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(1).unwrap();
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        let body_at = loop {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the head came whole");
            seen.extend_from_slice(&chunk[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let mut body = seen.len() - body_at;
        if take_all {
            while body < BODY {
                match stream.read(&mut chunk) {
                    Ok(n @ 1..) => body += n,
                    _ => break,
                }
            }
        }
        stream.write_all(answer).unwrap();
        // Holds the connection, reading nothing, until the test is done with it.
        let _ = stopped.recv_timeout(WAIT);
        body
    });
    (addr, stop, handle)
}

/// Sends a request whose server answers `answer` after the head and reads nothing more: the
/// answer, heard while the write stalls (not on Windows, whose writes wait the whole time
/// left), ends the writing.
#[cfg(unix)]
fn answered_while_written(answer: &'static [u8]) -> crate::h1::Head {
    let (addr, stop, server) = server(answer, false);
    let mut conn = open(addr);
    let started = Instant::now();
    let head = send(&mut conn, WAIT).unwrap();
    assert!(started.elapsed() < WAIT / 2, "not at the deadline");
    assert!(
        !block_on(conn.read_body(&head, &mut Vec::new())),
        "a request cut short leaves its connection unusable"
    );
    stop.send(()).unwrap();
    assert!(
        server.join().unwrap() < BODY,
        "the body was not taken whole"
    );
    head
}

#[cfg(unix)]
#[test]
fn a_refusal_while_the_request_is_written_is_the_answer() {
    let head =
        answered_while_written(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(head.status, 413);
}

#[cfg(unix)]
#[test]
fn a_redirect_while_the_request_is_written_is_the_answer() {
    // Never followed, it is the outcome: not a write waited out to the attempt's timeout.
    let head = answered_while_written(
        b"HTTP/1.1 301 Moved Permanently\r\nlocation: https://127.0.0.1/\r\n\
          content-length: 0\r\n\r\n",
    );
    assert_eq!(head.status, 301);
}

/// A write the server does not take, after `answer`, ends at its deadline, not at the
/// answer.
fn written_on_to_the_deadline(answer: &'static [u8]) {
    let (addr, stop, server) = server(answer, false);
    let mut conn = open(addr);
    let started = Instant::now();
    let sent = send(&mut conn, STALL * 4);
    let took = started.elapsed();
    match sent {
        Err(failed) => {
            assert_eq!(failed.error.kind(), io::ErrorKind::TimedOut, "{failed:?}");
            assert!(!failed.cut);
        }
        Ok(head) => panic!("answered {}", head.status),
    }
    assert!(took >= STALL * 4 && took < WAIT / 2, "{took:?}");
    stop.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn a_write_the_server_does_not_take_ends_at_the_deadline() {
    written_on_to_the_deadline(b"");
}

#[test]
fn an_interim_answer_does_not_end_the_writing_and_the_deadline_does() {
    written_on_to_the_deadline(b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn an_early_success_does_not_end_the_writing() {
    // The server may still read the rest, as it said it would.
    written_on_to_the_deadline(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
}

/// Sends a request whose server answered `answer` after the head and then closed, before
/// the body: what the sending gave.
fn answered_then_reset(answer: &'static [u8]) -> Result<crate::h1::Head, Failed> {
    let (addr, stop, server) = server(answer, false);
    let mut conn = open(addr);
    // The head alone first, so that the server answers and closes before the body goes.
    let head = format!("POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {BODY}\r\n\r\n");
    let mut raw = conn.io_mut().tcp_mut().stream();
    raw.write_all(head.as_bytes()).unwrap();
    stop.send(()).unwrap();
    server.join().unwrap();
    // The body alone: the head went out already.
    let tcp = conn.io_mut().tcp_mut();
    tcp.looking = true;
    let sent = block_on(conn.send(b"", &vec![b'x'; BODY]));
    conn.io_mut().tcp_mut().looking = false;
    sent
}

// Windows drops what was received and not read once a reset comes: the answer is not
// seen, and the request goes again at once.
#[cfg(unix)]
#[test]
fn an_early_success_then_a_reset_is_a_failure_after_an_answer() {
    // Not sent again at once, as a request on a kept connection closed under it would be:
    // the server answered it.
    let failed = answered_then_reset(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap_err();
    assert!(!failed.cut, "{failed:?}");
}

#[test]
fn a_408_as_the_server_closes_is_no_answer() {
    // A server closing a connection idle too long says 408 and goes, the request unread:
    // the request is cut, to go again at once on a new connection.
    let failed = answered_then_reset(b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n")
        .unwrap_err();
    assert!(failed.cut, "{failed:?}");
}

#[test]
fn a_request_the_server_takes_goes_whole_and_the_connection_is_kept() {
    let (addr, stop, server) = server(b"HTTP/1.1 204 No Content\r\n\r\n", true);
    let mut conn = open(addr);
    let head = send(&mut conn, WAIT).unwrap();
    assert_eq!(head.status, 204);
    assert!(block_on(conn.read_body(&head, &mut Vec::new())));
    assert!(probe(&mut conn), "open and idle");
    stop.send(()).unwrap();
    assert_eq!(server.join().unwrap(), BODY);
    // The server closed it: the probe sees it, with no request written.
    let deadline = Instant::now() + WAIT;
    while probe(&mut conn) {
        assert!(
            Instant::now() < deadline,
            "the close never reached the client"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn bytes_sent_unasked_make_a_kept_connection_unusable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut conn = open(listener.local_addr().unwrap());
    let (mut server, _) = listener.accept().unwrap();
    assert!(probe(&mut conn));
    server.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
    let deadline = Instant::now() + WAIT;
    while probe(&mut conn) {
        assert!(Instant::now() < deadline, "the bytes never came");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// An origin for `url`, with loopback allowed.
fn origin(url: &str) -> Origin {
    Origin::new(
        &url::Url::parse(url).unwrap(),
        None,
        AddressPolicy::default().allow_private(true),
        WAIT,
        4,
    )
    .unwrap()
}

#[test]
fn the_next_address_is_tried_when_one_refuses() {
    // A socket bound but not listening refuses, and keeps its port while it lives.
    let refusing = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    refusing
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let closed = refusing.local_addr().unwrap().as_socket().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap();
    let origin = origin("http://127.0.0.1:1/");
    let by = Instant::now() + WAIT;
    assert!(origin.connect_any(&[closed, open], by).is_ok());
    drop(listener);
    // Every address's error is said, in order.
    match origin.connect_any(&[closed, open], by) {
        Err(NotConnected::Failed(e)) => {
            let said = format!("connection failed: {closed}: ");
            assert!(e.message.starts_with(&said), "{}", e.message);
            assert!(e.message.contains(&format!("; {open}: ")), "{}", e.message);
            assert!(e.retryable);
        }
        _ => panic!("connected to a socket that does not listen"),
    }
}

#[test]
fn a_name_is_looked_up_on_a_thread_and_every_address_vetted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let allowed = origin(&format!("http://localhost:{port}/"));
    let addrs = allowed.resolve(Instant::now() + WAIT).ok().unwrap();
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == port)
    );
    // Reused, with no lookup under way.
    assert!(lock(&allowed.vetted).is_some());
    assert!(lock(&allowed.resolving).is_none());
    let refusing = Origin::new(
        &url::Url::parse(&format!("http://localhost:{port}/")).unwrap(),
        None,
        AddressPolicy::default(),
        WAIT,
        4,
    )
    .unwrap();
    match refusing.connect(Instant::now() + WAIT, WAIT) {
        Err(e) => {
            assert!(e.message.contains("loopback"), "{}", e.message);
            assert!(!e.retryable);
        }
        Ok(_) => panic!("connected to loopback"),
    }
}

#[test]
fn idle_connections_are_reused_within_idle_reuse() {
    let used = Instant::now();
    assert!(reusable(used, used));
    assert!(reusable(used, used + Duration::from_secs(29)));
    assert!(!reusable(used, used + IDLE_REUSE));
    // A clock read before `used` (another thread's) is no time at all.
    assert!(reusable(used + Duration::from_secs(5), used));
}

#[test]
fn nothing_is_kept_once_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = origin(&format!("http://{}/", listener.local_addr().unwrap()));
    let conn = origin.connect(Instant::now() + WAIT, WAIT).ok().unwrap();
    let _server = listener.accept().unwrap();
    origin.checkin(conn);
    assert!(origin.checkout().is_some());
    let conn = origin.connect(Instant::now() + WAIT, WAIT).ok().unwrap();
    origin.checkin(conn);
    origin.close_kept();
    assert!(origin.checkout().is_none());
    let conn = origin.connect(Instant::now() + WAIT, WAIT).ok().unwrap();
    origin.checkin(conn);
    assert!(origin.checkout().is_none());
}

#[test]
fn a_sweep_closes_the_connections_unused_too_long() {
    use crate::h1::origins::Pool as _;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = origin(&format!("http://{}/", listener.local_addr().unwrap()));
    let conn = origin.connect(Instant::now() + WAIT, WAIT).ok().unwrap();
    let (mut server, _) = listener.accept().unwrap();
    origin.checkin(conn);
    // Used just now: kept.
    origin.prune_idle(Instant::now());
    let conn = origin.checkout().expect("kept");
    origin.checkin(conn);
    // Unused for longer than it may be: closed, as the server sees.
    origin.prune_idle(Instant::now() + IDLE_REUSE);
    assert!(origin.checkout().is_none());
    server.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(server.read(&mut [0; 16]).unwrap(), 0, "closed by the sweep");
}
