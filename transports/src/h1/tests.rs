//! The HTTP/1.1 connection over in-memory pipes: framing, interim answers, early answers,
//! what keeps a connection, and what makes a request worth sending again.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

use super::*;
use crate::delivery::endpoint::is_header_name;

/// A connection to a server that reads the request, then writes `answer`, and what the
/// server read.
async fn exchange(
    answer: &'static [u8],
    close: bool,
) -> (Result<Head, Failed>, H1<DuplexStream>, Vec<u8>) {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let mut conn = H1::new(client);
    let served = tokio::spawn(async move {
        let mut request = vec![0; 256];
        let n = server.read(&mut request).await.unwrap();
        request.truncate(n);
        server.write_all(answer).await.unwrap();
        if !close {
            // Held open until the test ends.
            std::future::pending::<()>().await;
        }
        request
    });
    let head = conn
        .send(
            b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n",
            b"{}",
        )
        .await;
    let request = if close {
        served.await.unwrap()
    } else {
        Vec::new()
    };
    (head, conn, request)
}

/// A connection whose server, once it has read the request, writes `pieces` one at a
/// time, letting the client read after each, then holds the connection open; and the
/// server's task, to abort at the test's end.
fn answering_in_pieces(pieces: Vec<Vec<u8>>) -> (H1<DuplexStream>, tokio::task::JoinHandle<()>) {
    let (client, mut server) = tokio::io::duplex(1024);
    let served = tokio::spawn(async move {
        let mut request = [0; 64];
        let _ = server.read(&mut request).await.unwrap();
        for piece in pieces {
            server.write_all(&piece).await.unwrap();
            tokio::task::yield_now().await;
        }
        std::future::pending::<()>().await;
    });
    (H1::new(client), served)
}

#[tokio::test]
async fn a_length_framed_answer_is_read_and_its_connection_kept() {
    let (head, mut conn, _) = exchange(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nRetry-After: 7\r\n\r\nhello",
        false,
    )
    .await;
    let head = head.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.retry_after, Some(Duration::from_secs(7)));
    let mut snippet = Vec::new();
    assert!(conn.read_body(&head, &mut snippet).await);
    assert_eq!(snippet, b"hello");
    assert!(conn.is_open());
}

#[tokio::test]
async fn interim_answers_are_skipped_and_chunks_joined() {
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
        HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n\
        3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let (head, mut conn, _) = exchange(answer, false).await;
    let head = head.unwrap();
    assert_eq!(head.status, 202);
    let mut snippet = Vec::new();
    assert!(conn.read_body(&head, &mut snippet).await);
    assert_eq!(snippet, b"abcde");
}

#[tokio::test]
async fn a_body_to_the_close_is_read_but_its_connection_not_kept() {
    let (head, mut conn, request) =
        exchange(b"HTTP/1.1 500 Oops\r\n\r\nwhat went wrong", true).await;
    assert!(request.ends_with(b"\r\n\r\n{}"), "{request:?}");
    let head = head.unwrap();
    assert_eq!(head.status, 500);
    let mut snippet = Vec::new();
    assert!(!conn.read_body(&head, &mut snippet).await);
    assert_eq!(snippet, b"what went wrong");
}

#[tokio::test]
async fn connection_close_http_1_0_and_over_limit_bodies_are_not_kept() {
    let mut over = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        RESPONSE_READ_LIMIT + 1
    )
    .into_bytes();
    over.resize(over.len() + RESPONSE_READ_LIMIT as usize + 1, b'x');
    let answers: [&'static [u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        over.leak(),
    ];
    for answer in answers {
        let (head, mut conn, _) = exchange(answer, false).await;
        let head = head.unwrap();
        let mut snippet = Vec::new();
        assert!(!conn.read_body(&head, &mut snippet).await, "{head:?}");
        // Over the limit, the snippet is still the body's start.
        assert!(snippet.iter().all(|&b| b == b'x'));
    }
    // The same length twice in a list is that length.
    let (head, mut conn, _) =
        exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", false).await;
    assert!(conn.read_body(&head.unwrap(), &mut Vec::new()).await);
    // A signed length is no length.
    let (head, _, _) = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", false).await;
    assert!(
        head.unwrap_err()
            .error
            .to_string()
            .contains("Content-Length")
    );
    // Its value is quoted as a log shows it: an override (or a C1 control) the receiver
    // wrote cannot reorder or drive what shows the error.
    let (head, _, _) = exchange(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\u{202E}\u{9b}\r\n\r\nhello".as_bytes(),
        false,
    )
    .await;
    let error = head.unwrap_err().error.to_string();
    assert!(error.contains("('5\\u{202e}\\u{9b}')"), "{error}");
}

#[tokio::test]
async fn a_close_before_any_answer_is_a_cut_and_garbage_is_not() {
    let (head, _, _) = exchange(b"", true).await;
    assert!(head.unwrap_err().cut);
    let (head, _, _) = exchange(b"SMTP ready\r\n\r\n", true).await;
    let failed = head.unwrap_err();
    assert!(!failed.cut);
    assert!(
        failed.error.to_string().contains("not HTTP/1.1"),
        "{failed:?}"
    );
    let (head, _, _) = exchange(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", true).await;
    assert!(head.unwrap_err().error.to_string().contains("101"));
    let (head, _, _) = exchange(b"HTTP/1.1 099 Odd\r\n\r\n", true).await;
    let failed = head.unwrap_err();
    assert!(failed.error.to_string().contains("status 99"), "{failed:?}");
    // An interim answer is an answer: a close after it is no cut (the server was at work
    // on the request).
    let (head, _, _) = exchange(b"HTTP/1.1 102 Processing\r\n\r\n", true).await;
    let failed = head.unwrap_err();
    assert!(!failed.cut, "{failed:?}");
}

#[tokio::test]
async fn an_answer_before_the_body_is_taken_is_the_answer() {
    // A pipe smaller than the body: the server answers without reading it.
    let (client, mut server) = tokio::io::duplex(1024);
    let mut conn = H1::new(client);
    let body = vec![b'x'; 64 * 1024];
    let served = tokio::spawn(async move {
        server
            .write_all(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        std::future::pending::<()>().await;
    });
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", &body).await.unwrap();
    assert_eq!(head.status, 413);
    assert!(!conn.read_body(&head, &mut Vec::new()).await);
    served.abort();
}

#[tokio::test]
async fn an_early_success_lets_the_body_go_whole() {
    // The server answers 200 at once, then reads the request: it may still want the rest.
    let (client, mut server) = tokio::io::duplex(1024);
    let mut conn = H1::new(client);
    let head = b"POST / HTTP/1.1\r\n\r\n";
    let body = vec![b'x'; 64 * 1024];
    let whole = head.len() + body.len();
    let served = tokio::spawn(async move {
        server
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut request = vec![0; whole];
        server.read_exact(&mut request).await.unwrap();
        std::future::pending::<()>().await;
    });
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), conn.send(head, &body))
        .await
        .expect("written whole, not waiting for the server")
        .unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        conn.read_body(&answer, &mut Vec::new()).await,
        "written whole, the connection is kept"
    );
    served.abort();
}

#[tokio::test]
async fn a_408_as_the_server_closes_is_a_cut_not_an_answer() {
    // A server closing a connection idle too long says 408 and goes: the request was not
    // read, and goes again at once on a new connection.
    let (client, mut server) = tokio::io::duplex(1024);
    let mut conn = H1::new(client);
    server
        .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    drop(server);
    let failed = conn
        .send(b"POST / HTTP/1.1\r\n\r\n", &vec![b'x'; 64 * 1024])
        .await
        .unwrap_err();
    assert!(failed.cut, "{failed:?}");
}

/// A connection whose server sent `answer`, then takes nothing of the request at first
/// and fails the next write (a reset), as a server does that answers and closes while a
/// large body goes out.
struct AnswersThenResets {
    answer: &'static [u8],
    read: bool,
    writes: usize,
}

impl AsyncRead for AnswersThenResets {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !std::mem::replace(&mut self.read, true) {
            buf.put_slice(self.answer);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for AnswersThenResets {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writes += 1;
        if self.writes == 1 {
            // What a full socket says; the connection is looked at for an answer at once.
            Poll::Pending
        } else {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn an_answer_kept_while_writing_decides_a_reset_that_follows() {
    let send = |answer: &'static [u8]| async move {
        let mut conn = H1::new(AnswersThenResets {
            answer,
            read: false,
            writes: 0,
        });
        conn.send(b"POST / HTTP/1.1\r\n\r\n", b"{}")
            .await
            .unwrap_err()
    };
    // A 408: the request was not read, and goes again at once.
    let failed = send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n").await;
    assert!(failed.cut, "{failed:?}");
    // A 200: the server answered it; not sent again at once.
    let failed = send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    assert!(!failed.cut, "{failed:?}");
    // One read loosely (a folded header), whose connection is not kept but which does not
    // say the server closes it: the writing went on as well.
    let failed = send(b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n").await;
    assert!(!failed.cut, "{failed:?}");
}

#[tokio::test]
async fn a_redirect_before_a_reset_is_the_answer() {
    // A load balancer sending `http` to `https` answers without reading the body, then
    // resets: the redirect is the outcome (the dead letters, with a URL to fix), not a
    // connection error retried for a day.
    let mut conn = H1::new(AnswersThenResets {
        answer: b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://a/\r\n\
            Content-Length: 0\r\n\r\n",
        read: false,
        writes: 0,
    });
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", b"{}").await.unwrap();
    assert_eq!((head.status, head.keep), (301, false));
}

#[tokio::test]
async fn interim_answers_without_end_are_cut_off() {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let mut conn = H1::new(client);
    let flood = tokio::spawn(async move {
        let mut request = vec![0; 256];
        let _ = server.read(&mut request).await;
        let mut sent = 0;
        // Stops when the client lets the connection go.
        while server
            .write_all(b"HTTP/1.1 102 Processing\r\n\r\n")
            .await
            .is_ok()
        {
            sent += 1;
        }
        sent
    });
    let sent = conn.send(b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n", b"{}");
    let failed = tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("cut off, not read until the attempt's timeout")
        .unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("interim (1xx) answers"), "{message}");
    assert!(
        !failed.cut,
        "answered, if without end: not sent again at once"
    );
    drop(conn);
    let sent = flood.await.unwrap();
    // 25 bytes each: the client read about 64 KiB of them, and the pipe holds 64 KiB more.
    assert!(sent < 2 * MAX_HEAD / 25 + 64, "{sent} interim answers");
}

#[tokio::test]
async fn each_request_has_its_own_allowance_of_interim_answers() {
    // Two requests on a kept connection, each answered after 40 KiB of interim answers:
    // 80 KiB in all, over the limit of one.
    let (client, mut server) = tokio::io::duplex(256 * 1024);
    let mut conn = H1::new(client);
    let interim = b"HTTP/1.1 102 Processing\r\n\r\n".repeat(40 * 1024 / 25);
    tokio::spawn(async move {
        let mut request = vec![0; 256];
        for _ in 0..2 {
            let _ = server.read(&mut request).await;
            server.write_all(&interim).await.unwrap();
            server
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
        }
        std::future::pending::<()>().await;
    });
    for _ in 0..2 {
        let head = conn
            .send(b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n", b"{}")
            .await
            .unwrap();
        assert_eq!(head.status, 200);
        assert!(conn.read_body(&head, &mut Vec::new()).await);
    }
}

#[tokio::test]
async fn an_answer_that_closes_the_connection_ends_the_writing_and_is_the_answer() {
    // A server that will not read the rest says so (Go's does past 256 KiB unread), and
    // resets the connection as the body goes on: its 200 is the answer, not the reset.
    let mut conn = H1::new(AnswersThenResets {
        answer: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        read: false,
        writes: 0,
    });
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", b"{}").await.unwrap();
    assert_eq!((head.status, head.keep), (200, false));
}

#[tokio::test]
async fn chunk_framing_past_its_budget_ends_the_body() {
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    // 1 000 one-byte chunks, each with a 20-byte extension: 27 KB of framing.
    for _ in 0..1000 {
        answer.extend_from_slice(b"1;note=aaaaaaaaaaaaaa\r\nx\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let (head, mut conn, _) = exchange(answer.leak(), false).await;
    let mut snippet = Vec::new();
    assert!(!conn.read_body(&head.unwrap(), &mut snippet).await);
    assert!(
        !snippet.is_empty() && snippet.len() < 1000,
        "{}",
        snippet.len()
    );
}

#[tokio::test]
async fn a_head_that_comes_a_byte_at_a_time_is_read_once_whole() {
    let (mut conn, served) = answering_in_pieces(
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"
            .iter()
            .map(|&b| vec![b])
            .collect(),
    );
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", b"").await.unwrap();
    assert_eq!(head.status, 204);
    assert!(conn.read_body(&head, &mut Vec::new()).await);
    served.abort();
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_not_open() {
    let (client, server) = tokio::io::duplex(1024);
    let mut conn = H1::new(client);
    assert!(conn.is_open());
    drop(server);
    assert!(!conn.is_open());
}

#[test]
fn header_names_and_values_are_checked() {
    assert!(is_header_name("x-deskhook-sequence"));
    assert!(!is_header_name("bad name"));
    assert!(!is_header_name(""));
    assert!(valid_value("v1,abc\tdef ghi"));
    assert!(!valid_value("a\r\nInjected: 1"));
    assert!(valid_value("\u{c9}quipe caf\u{e9}"));
    assert!(!valid_value("a\u{7f}"));
    // The same answers as the http crate's, byte by byte (http comes with http-async).
    #[cfg(feature = "http-async")]
    for b in 0..=255u8 {
        let text = char::from(b).to_string();
        assert_eq!(
            is_header_name(&text),
            http::HeaderName::from_bytes(&[b]).is_ok(),
            "name byte {b}"
        );
        assert_eq!(
            valid_value(&text),
            http::HeaderValue::from_str(&text).is_ok(),
            "value byte {b}"
        );
    }
}

#[tokio::test]
async fn a_wrong_content_length_fails_only_an_answer_it_frames() {
    // A 204 or 304 ends at its head, and a Transfer-Encoding frames the body: what their
    // Content-Length says does not matter, but their connection is not kept.
    for answer in [
        &b"HTTP/1.1 204 No Content\r\nContent-Length: \r\n\r\n"[..],
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        // One that announces a body may send it: read as the next answer, were it kept.
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n",
    ] {
        let (head, _, _) = exchange(answer, false).await;
        let head = head.unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(answer)));
        assert!(!head.keep, "{}", String::from_utf8_lossy(answer));
    }
    let (head, _, _) = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).await;
    assert!(head.is_err());
    let (head, _, _) = exchange(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .await;
    assert!(head.unwrap().keep, "no body announced");
    // A 304's length is that of the representation it did not send (RFC 9110, 8.6).
    let (head, _, _) = exchange(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        false,
    )
    .await;
    assert!(head.unwrap().keep, "a 304's length");
}

#[tokio::test]
async fn a_chunk_size_line_ended_by_a_bare_line_feed_ends_the_connection() {
    // httparse reads `2;x\nok\r\n` as one size line (of 2, with an extension): the body
    // would be `hi`, where a stricter reader has `ok`.
    let (head, mut conn, _) = exchange(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x\nok\r\nhi\r\n0\r\n\r\n",
        false,
    )
    .await;
    assert!(!conn.read_body(&head.unwrap(), &mut Vec::new()).await);
}

#[tokio::test]
async fn a_chunk_size_line_that_comes_a_byte_at_a_time_is_parsed_once_whole() {
    let mut rest = b"2;note=".to_vec();
    rest.extend(std::iter::repeat_n(b'a', 2000));
    rest.extend_from_slice(b"\r\nok\r\n0\r\n\r\n");
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let (mut conn, served) = answering_in_pieces(
        std::iter::once(head)
            .chain(rest.into_iter().map(|b| vec![b]))
            .collect(),
    );
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", b"").await.unwrap();
    let parses = PARSES.get();
    let mut snippet = Vec::new();
    assert!(conn.read_body(&head, &mut snippet).await);
    assert_eq!(snippet, b"ok");
    // The size lines (this one and the last chunk's), not once per byte that came.
    assert!(
        PARSES.get() - parses < 5,
        "{} parses",
        PARSES.get() - parses
    );
    served.abort();
}

#[tokio::test]
async fn a_chunk_size_line_without_a_digit_ends_the_connection_not_the_body() {
    let (head, mut conn, _) = exchange(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        false,
    )
    .await;
    assert!(!conn.read_body(&head.unwrap(), &mut Vec::new()).await);
}

#[tokio::test]
async fn blank_lines_before_a_head_that_comes_slowly_are_not_looked_at_again() {
    let mut pieces = vec![b"\r\n\r\nHTTP/1.1 204 No Content\r\n".to_vec()];
    pieces.extend(std::iter::repeat_n(b"X-A: 1\r\n".to_vec(), 80));
    pieces.push(b"\r\n".to_vec());
    let (mut conn, served) = answering_in_pieces(pieces);
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", b"").await.unwrap();
    assert_eq!(head.status, 204);
    // Parsed a few times (each time a fill ends with the blank lines' look-alike gone
    // past), not once per line that came.
    assert!(PARSES.get() < 20, "{} parses", PARSES.get());
    served.abort();
}

#[tokio::test]
async fn blank_lines_that_come_one_at_a_time_are_not_parsed_again_each() {
    let mut pieces: Vec<Vec<u8>> = (0..400)
        .map(|n| {
            if n % 2 == 0 {
                b"\n".to_vec()
            } else {
                b"\r\n".to_vec()
            }
        })
        .collect();
    pieces.push(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec());
    let (mut conn, served) = answering_in_pieces(pieces);
    let parses = PARSES.get();
    let head = conn.send(b"POST / HTTP/1.1\r\n\r\n", b"").await.unwrap();
    assert_eq!(head.status, 204);
    // Taken off as they come: none looks like a head's end, and the head is parsed once.
    assert!(
        PARSES.get() - parses < 5,
        "{} parses",
        PARSES.get() - parses
    );
    served.abort();
}

#[tokio::test]
async fn blank_lines_count_in_the_heads_budget_while_the_body_is_written_too() {
    for reads_the_request in [true, false] {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = H1::new(client);
        let served = tokio::spawn(async move {
            if reads_the_request {
                let mut request = [0; 64];
                let _ = server.read(&mut request).await.unwrap();
            }
            let blank = vec![b'\n'; 1024];
            for _ in 0..=MAX_HEAD / 1024 {
                if server.write_all(&blank).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        // Not read, the body waits to be written while the blank lines come.
        let body = vec![b'x'; if reads_the_request { 0 } else { 64 * 1024 }];
        let sent = conn.send(b"POST / HTTP/1.1\r\n\r\n", &body);
        // Bounded: a budget not kept would wait here for ever, not fail.
        let err = tokio::time::timeout(Duration::from_secs(10), sent)
            .await
            .expect("refused once over the budget")
            .unwrap_err();
        let err = err.error.to_string();
        assert!(
            err.contains("over 65536 bytes"),
            "{reads_the_request}: {err}"
        );
        served.abort();
    }
}

#[tokio::test]
async fn a_request_out_of_time_says_where_it_was() {
    let timeout = Duration::from_millis(20);
    let progress = Progress::default();
    assert_eq!(
        progress.timed_out(timeout),
        "timed out (20ms) waiting for a connection"
    );
    // A server that reads nothing: the pipe takes 1 KiB of the request, then the writing
    // waits until the attempt's time is up.
    let (client, _server) = tokio::io::duplex(1024);
    let mut conn = H1::new(client);
    let head = b"POST / HTTP/1.1\r\n\r\n";
    let body = vec![b'x'; 4096];
    let sent = tokio::time::timeout(timeout, conn.send_telling(head, &body, &progress));
    assert!(sent.await.is_err(), "nothing read, nothing answered");
    assert_eq!(
        progress.timed_out(timeout),
        format!(
            "timed out (20ms) writing the request, 1024 of {} bytes given to the connection: \
             the receiver reads slowly or not at all",
            head.len() + body.len()
        )
    );
    // A server that reads the request whole and answers nothing.
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let mut conn = H1::new(client);
    let read = tokio::spawn(async move {
        let mut request = vec![0; head.len() + 2];
        server.read_exact(&mut request).await.unwrap();
        server
    });
    let sent = tokio::time::timeout(timeout, conn.send_telling(head, b"{}", &progress));
    assert!(sent.await.is_err(), "nothing answered");
    let _server = read.await.unwrap();
    assert_eq!(
        progress.timed_out(timeout),
        "timed out (20ms) waiting for the answer, the request written"
    );
    progress.on_h2();
    assert_eq!(
        progress.timed_out(timeout),
        "timed out (20ms) waiting for the answer, the request handed to HTTP/2"
    );
    progress.connecting();
    assert_eq!(
        progress.timed_out(timeout),
        "timed out (20ms) waiting for a connection"
    );
}

#[tokio::test]
async fn an_answer_with_hundreds_of_headers_keeps_its_status() {
    // More header lines than the first parse has room for: a proxy adding many, say.
    let mut answer = b"HTTP/1.1 410 Gone\r\n".to_vec();
    for i in 0..300 {
        answer.extend_from_slice(format!("X-Hop-{i}: a\r\n").as_bytes());
    }
    answer.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let answer: &'static [u8] = Box::leak(answer.into_boxed_slice());
    let (head, _conn, _) = exchange(answer, false).await;
    assert_eq!(head.map(|head| head.status).ok(), Some(410));
}

#[tokio::test]
async fn the_first_retry_after_that_reads_is_the_one_honoured() {
    let (head, _conn, _) = exchange(
        b"HTTP/1.1 503 Busy\r\nRetry-After: 120\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(
        head.ok().and_then(|head| head.retry_after),
        Some(Duration::from_secs(120))
    );
    let (head, _conn, _) = exchange(
        b"HTTP/1.1 429 Slow\r\nRetry-After: \r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(
        head.ok().and_then(|head| head.retry_after),
        Some(Duration::from_secs(30))
    );
}

#[tokio::test]
async fn interim_answers_and_the_final_head_share_one_limit() {
    let mut answer = format!(
        "HTTP/1.1 102 Processing\r\nX-A: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    answer.push_str(&format!(
        "HTTP/1.1 200 OK\r\nX-B: {}\r\nContent-Length: 0\r\n\r\n",
        "b".repeat(30_000)
    ));
    let answer: &'static [u8] = Box::leak(answer.into_bytes().into_boxed_slice());
    let (head, _conn, _) = exchange(answer, false).await;
    let Err(failed) = head else {
        panic!("a head of 70 KB was taken")
    };
    let text = failed.error.to_string();
    assert!(
        text.contains("the answer's head is over 65536 bytes"),
        "{text}"
    );
}
