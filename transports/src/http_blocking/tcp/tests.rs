//! The blocking transport's TCP against servers on 127.0.0.1 that do not take what is
//! written: an answer while the request goes out ends the writing (over plain HTTP), an
//! interim one does not, and the deadline ends a write the server never takes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::*;

/// A request far larger than what the sockets' buffers take while nothing reads it.
const LARGE: usize = 16 * 1024 * 1024;

/// How long a test waits for what should come at once (a bound, not a measure).
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

fn within(left: std::time::Duration) -> NextTimeout {
    NextTimeout {
        after: Duration::Exact(left),
        reason: ureq::Timeout::Global,
        ..NextTimeout::default()
    }
}

/// A connection to `addr` as the connector makes it, with room for a [`LARGE`] request.
fn open(addr: SocketAddr, plain: bool) -> TcpTransport {
    TcpTransport {
        stream: Arc::new(TcpStream::connect(addr).unwrap()),
        buffers: LazyBuffers::new(64 * 1024, LARGE),
        plain,
        read_timeout: None,
        write_timeout: None,
        cut_short: false,
    }
}

/// Puts a request with a [`LARGE`] body in the output buffer; its length.
fn large_request(conn: &mut TcpTransport) -> usize {
    let head = format!(
        "POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n",
        LARGE - 128
    );
    let output = conn.buffers().output();
    output[..head.len()].copy_from_slice(head.as_bytes());
    output[head.len()..].fill(b'x');
    head.len() + LARGE - 128
}

/// A server for one connection: reads the request's head, sends `answer`, then reads
/// nothing more until the test ends (`stop`), unless `take_all`, when it reads the whole
/// body before answering. Gives back how many bytes of the body it read.
fn server(
    answer: &'static [u8],
    take_all: bool,
) -> (SocketAddr, mpsc::Sender<()>, JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
            while body < LARGE - 128 {
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

#[test]
fn an_answer_while_the_request_is_written_is_the_answer() {
    let (addr, stop, server) = server(
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
        false,
    );
    let mut conn = open(addr, true);
    let amount = large_request(&mut conn);
    conn.transmit_output(amount, within(WAIT)).unwrap();
    assert!(conn.cut_short, "the writing ended at the answer");
    // What more ureq hands over is dropped.
    conn.transmit_output(1, within(WAIT)).unwrap();
    assert!(conn.await_input(within(WAIT)).unwrap());
    let input = conn.buffers().input();
    assert!(input.starts_with(b"HTTP/1.1 413"), "{:?}", &input[..12]);
    assert!(
        !conn.is_open(),
        "a request cut short leaves its connection unusable"
    );
    stop.send(()).unwrap();
    assert!(
        server.join().unwrap() < LARGE - 128,
        "the body was not taken whole"
    );
}

#[test]
fn an_interim_answer_does_not_end_the_writing_and_the_deadline_does() {
    let (addr, stop, server) = server(b"HTTP/1.1 100 Continue\r\n\r\n", false);
    let mut conn = open(addr, true);
    let amount = large_request(&mut conn);
    let written = conn.transmit_output(amount, within(STALL * 4));
    assert!(
        matches!(written, Err(ureq::Error::Timeout(ureq::Timeout::Global))),
        "{written:?}"
    );
    assert!(!conn.cut_short);
    stop.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn over_tls_bytes_from_the_server_do_not_end_the_writing() {
    // Under TLS, what the server sends unasked (session tickets) is no answer: this layer
    // cannot tell, so it writes on to the deadline.
    let (addr, stop, server) = server(
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
        false,
    );
    let mut conn = open(addr, false);
    let amount = large_request(&mut conn);
    let written = conn.transmit_output(amount, within(STALL * 4));
    assert!(
        matches!(written, Err(ureq::Error::Timeout(ureq::Timeout::Global))),
        "{written:?}"
    );
    assert!(!conn.cut_short);
    stop.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn a_request_the_server_takes_goes_whole_and_the_connection_is_kept() {
    let (addr, stop, server) = server(b"HTTP/1.1 204 No Content\r\n\r\n", true);
    let mut conn = open(addr, true);
    let amount = large_request(&mut conn);
    conn.transmit_output(amount, within(WAIT)).unwrap();
    assert!(!conn.cut_short);
    assert!(conn.await_input(within(WAIT)).unwrap());
    assert!(conn.buffers().input().starts_with(b"HTTP/1.1 204"));
    let consumed = conn.buffers().input().len();
    conn.buffers().input_consume(consumed);
    assert!(conn.is_open());
    stop.send(()).unwrap();
    assert_eq!(server.join().unwrap(), LARGE - 128);
}

#[test]
fn the_next_address_is_tried_when_one_refuses() {
    // A port just closed refuses; the listening one takes the connection.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
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
fn a_final_answer_is_told_from_interim_ones() {
    for (seen, final_began) in [
        (&b""[..], false),
        (b"HTT", false),
        (b"HTTP/1.1 1", false),
        (b"HTTP/1.1 100 Continue\r\n\r\n", false),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.", false),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Payload Too Large",
            true,
        ),
        (b"HTTP/1.1 413", true),
        (b"HTTP/1.0 200 OK", true),
        (b"HTTP/1.1 4", true),
        (b"garbage", true),
    ] {
        assert_eq!(
            final_answer_began(seen),
            final_began,
            "{}",
            String::from_utf8_lossy(seen)
        );
    }
}
