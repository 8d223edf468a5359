//! The blocking transport's TCP against servers on 127.0.0.1 that do not take what is
//! written: a refusal while the request goes out ends the writing (over plain HTTP), an
//! interim answer or an early `2xx` does not, and the deadline ends a write the server
//! never takes. The sockets' buffers are made small, so that such a write stalls whatever
//! the host's TCP memory settings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;

use socket2::{Domain, SockRef, Socket, Type};

use super::*;

/// A body far larger than what the (small) sockets' buffers take while nothing reads it.
const BODY: usize = 8 * 1024 * 1024;

/// The sockets' buffer sizes asked for (the kernel may double them).
const SMALL_BUFFER: usize = 32 * 1024;

/// How long a test waits for what should come at once (a bound, not a measure).
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

fn within(left: std::time::Duration) -> NextTimeout {
    NextTimeout {
        after: Duration::Exact(left),
        reason: ureq::Timeout::Global,
        ..NextTimeout::default()
    }
}

/// A connection to `addr` as the connector makes it, with room for the whole body.
fn open(addr: SocketAddr, plain: bool) -> TcpTransport {
    let stream = TcpStream::connect(addr).unwrap();
    SockRef::from(&stream)
        .set_send_buffer_size(SMALL_BUFFER)
        .unwrap();
    TcpTransport {
        stream: Arc::new(stream),
        buffers: LazyBuffers::new(64 * 1024, BODY),
        plain,
        read_timeout: None,
        write_timeout: None,
        cut_short: false,
    }
}

/// Writes `bytes` as ureq does: into the output buffer, then transmitted.
fn transmit(
    conn: &mut TcpTransport,
    bytes: &[u8],
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    conn.buffers().output()[..bytes.len()].copy_from_slice(bytes);
    conn.transmit_output(bytes.len(), timeout)
}

/// Writes the request's head, waits until the server has answered it (`answered`), then
/// writes the body within `timeout`: what the body's write gave.
fn request(
    conn: &mut TcpTransport,
    answered: &mpsc::Receiver<()>,
    timeout: std::time::Duration,
) -> Result<(), ureq::Error> {
    let head = format!("POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {BODY}\r\n\r\n");
    transmit(conn, head.as_bytes(), within(WAIT)).unwrap();
    answered.recv_timeout(WAIT).expect("the server answered");
    transmit(conn, &vec![b'x'; BODY], within(timeout))
}

/// A server for one connection, on a socket with a small receive buffer: reads the
/// request's head, sends `answer` (then tells `answered`), then reads nothing more until the
/// test ends (`stop`), unless `take_all`, when it reads the whole body before answering.
/// Gives back how many bytes of the body it read.
fn server(
    answer: &'static [u8],
    take_all: bool,
) -> (
    SocketAddr,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
    JoinHandle<usize>,
) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(SMALL_BUFFER).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(1).unwrap();
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().unwrap();
    let (tell, answered) = mpsc::channel::<()>();
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
        let _ = tell.send(());
        // Holds the connection, reading nothing, until the test is done with it.
        let _ = stopped.recv_timeout(WAIT);
        body
    });
    (addr, answered, stop, handle)
}

// Heard while the write stalls: not on Windows, whose writes are not sliced.
#[cfg(unix)]
#[test]
fn a_refusal_while_the_request_is_written_is_the_answer() {
    let (addr, answered, stop, server) = server(
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
        false,
    );
    let mut conn = open(addr, true);
    request(&mut conn, &answered, WAIT).unwrap();
    assert!(conn.cut_short, "the writing ended at the refusal");
    // What more ureq hands over is dropped.
    transmit(&mut conn, b"more", within(WAIT)).unwrap();
    assert!(conn.await_input(within(WAIT)).unwrap());
    let input = conn.buffers().input();
    assert!(input.starts_with(b"HTTP/1.1 413"), "{:?}", &input[..12]);
    assert!(
        !conn.is_open(),
        "a request cut short leaves its connection unusable"
    );
    stop.send(()).unwrap();
    assert!(
        server.join().unwrap() < BODY,
        "the body was not taken whole"
    );
}

/// A write the server does not take, after `answer`, ends at its deadline, not at the
/// answer.
fn written_on_to_the_deadline(answer: &'static [u8], plain: bool) {
    let (addr, answered, stop, server) = server(answer, false);
    let mut conn = open(addr, plain);
    let written = request(&mut conn, &answered, STALL * 4);
    assert!(
        matches!(written, Err(ureq::Error::Timeout(ureq::Timeout::Global))),
        "{written:?}"
    );
    assert!(!conn.cut_short);
    stop.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn an_interim_answer_does_not_end_the_writing_and_the_deadline_does() {
    written_on_to_the_deadline(b"HTTP/1.1 100 Continue\r\n\r\n", true);
}

#[test]
fn an_early_success_does_not_end_the_writing() {
    // The server may still read the rest, as it said it would.
    written_on_to_the_deadline(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true);
}

#[test]
fn over_tls_bytes_from_the_server_do_not_end_the_writing() {
    // Under TLS, what the server sends unasked (session tickets) is no answer: this layer
    // cannot tell, so it writes on to the deadline.
    written_on_to_the_deadline(
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
        false,
    );
}

/// Writes a request whose server answered `answer` after the head and then closed, before
/// the body: what the body's write gave (its first segments get a reset back), and whether
/// an answer was noted.
fn answered_then_reset(answer: &'static [u8]) -> (TcpTransport, Result<(), ureq::Error>, bool) {
    let (addr, answered, stop, server) = server(answer, false);
    let mut conn = open(addr, true);
    super::super::kept::watch_connects();
    let head = format!("POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {BODY}\r\n\r\n");
    transmit(&mut conn, head.as_bytes(), within(WAIT)).unwrap();
    answered.recv_timeout(WAIT).unwrap();
    stop.send(()).unwrap();
    server.join().unwrap();
    let written = transmit(&mut conn, &vec![b'x'; BODY], within(WAIT));
    (conn, written, super::super::kept::answered())
}

// Windows drops what was received and not read once a reset comes: the answer is not
// seen, and the request goes again at once (see the module docs).
#[cfg(unix)]
#[test]
fn an_early_success_then_a_reset_is_a_failure_after_an_answer() {
    // Not sent again at once, as a request on a kept connection closed under it would be:
    // the server answered it.
    let (conn, written, heard) =
        answered_then_reset(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(written.is_err() && !conn.cut_short, "{written:?}");
    assert!(heard);
}

#[test]
fn a_408_as_the_server_closes_is_no_answer() {
    // A server closing a connection idle too long says 408 and goes, the request unread:
    // the write fails as on any connection closed under it (and the request goes again at
    // once), and nothing counts as an answer.
    let (conn, written, heard) =
        answered_then_reset(b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n");
    assert!(
        matches!(&written, Err(ureq::Error::Io(e)) if crate::delivery::connection_cut(e)),
        "{written:?}"
    );
    assert!(!conn.cut_short);
    assert!(!heard);
}

#[test]
fn a_request_the_server_takes_goes_whole_and_the_connection_is_kept() {
    let (addr, answered, stop, server) = server(b"HTTP/1.1 204 No Content\r\n\r\n", true);
    let mut conn = open(addr, true);
    let head = format!("POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {BODY}\r\n\r\n");
    transmit(&mut conn, head.as_bytes(), within(WAIT)).unwrap();
    transmit(&mut conn, &vec![b'x'; BODY], within(WAIT)).unwrap();
    assert!(!conn.cut_short);
    answered.recv_timeout(WAIT).unwrap();
    assert!(conn.await_input(within(WAIT)).unwrap());
    assert!(conn.buffers().input().starts_with(b"HTTP/1.1 204"));
    let consumed = conn.buffers().input().len();
    conn.buffers().input_consume(consumed);
    assert!(conn.is_open());
    stop.send(()).unwrap();
    assert_eq!(server.join().unwrap(), BODY);
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
    let stream = connect(&[closed, open], within(WAIT)).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), open);
    let refused = connect(&[closed], within(WAIT)).unwrap_err();
    assert!(
        matches!(&refused, ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    let none = connect(&[], within(WAIT)).unwrap_err();
    assert!(matches!(none, ureq::Error::Io(_)), "{none:?}");
    let spent = connect(&[open], within(std::time::Duration::ZERO)).unwrap_err();
    assert!(matches!(spent, ureq::Error::Timeout(_)), "{spent:?}");
}

#[test]
fn what_the_server_sent_is_told_apart() {
    for (sent, seen) in [
        (&b""[..], Seen::Nothing),
        (b"HTT", Seen::Nothing),
        (b"HTTP/1.1 1", Seen::Nothing),
        (b"HTTP/1.1 100 Continue\r\n\r\n", Seen::Nothing),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.", Seen::Nothing),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Payload Too Large",
            Seen::Refusal(413),
        ),
        (b"HTTP/1.1 413", Seen::Refusal(413)),
        (b"HTTP/1.1 408 Request Timeout", Seen::Refusal(408)),
        (
            b"HTTP/1.1 100 Continue\n\nHTTP/1.1 401 ",
            Seen::Refusal(401),
        ),
        (b"HTTP/1.1 2xx Fine", Seen::End),
        (b"HTTP/1.1 +99 What", Seen::End),
        (b"HTTP/1.1 799 Odd", Seen::Other),
        (b"HTTP/1.0 503 ", Seen::Refusal(503)),
        (b"HTTP/1.1 200 OK", Seen::Other),
        (b"HTTP/1.1 301 Moved", Seen::Other),
        (b"garbage, and more of it", Seen::End),
    ] {
        assert_eq!(seen_in(sent), seen, "{}", String::from_utf8_lossy(sent));
    }
    // A 408 is sent as a server closes a connection idle too long: no refusal.
    assert!(Seen::Refusal(413).refuses() && !Seen::Refusal(408).refuses());
    assert!(!Seen::Other.refuses() && !Seen::End.refuses());
}
