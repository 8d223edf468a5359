//! The async transport's HTTP/1.1: a request written whole (its head and the event's bytes in
//! one vectored write), its answer's head parsed with `httparse` (hyper's own parser), and its
//! body read up to the limit, on a connection the attempt owns from start to end.
//!
//! hyper's `client::conn` costs about 12 k instructions a request on this path (its connection
//! task, its channel, an `http::Request` and header map per attempt): half of deskhook's
//! delivery CPU, and what kept the async transport at 0.45 × wrk (measured in
//! `benches/README.md`). Here a request costs what the bytes cost. hyper stays for HTTP/2,
//! where its multiplexing is the whole job.
//!
//! What it keeps from hyper's behaviour, each covered by the transports' tests:
//! - an interim `1xx` answer is skipped; `101` is refused (no upgrade was asked for);
//! - a body framed by `Content-Length`, `chunked`, or the connection's end;
//! - an answer that comes while the body is still being written (a receiver refusing it
//!   early) is read and is the answer; that connection is not kept;
//! - a connection is kept only when its answer was read to its end, nothing came after it,
//!   and neither side said `Connection: close` (nor is it HTTP/1.0);
//! - a kept connection the server closed meanwhile is seen before it is written to
//!   ([`H1::is_open`]); one that ends as the request goes out, before any byte of an
//!   answer, is reported as [`Failed::cut`], for the caller to send again on a new one.

use std::future::Future as _;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::delivery::{RESPONSE_READ_LIMIT, RESPONSE_SNIPPET_BYTES, parse_retry_after};

/// What a connection reads into at first; it grows for a longer head.
const BUF_START: usize = 8 * 1024;

/// The longest answer head read (hyper's default buffer limit is about 400 KiB; nothing
/// a webhook receiver says needs more than a few hundred bytes).
const MAX_HEAD: usize = 64 * 1024;

/// The most header lines an answer's head may have (hyper's default).
const MAX_HEADERS: usize = 100;

/// The most bytes of a chunked body's framing read beside its data: chunk-size lines with
/// their extensions, and trailers (hyper's limits for each).
const MAX_CHUNK_FRAMING: usize = 16 * 1024;

/// The bytes of a connection to a server: TCP, or TLS over it.
pub(super) enum Io {
    /// Plain `http`.
    Tcp(TcpStream),
    /// `https`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Tcp(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One HTTP/1.1 connection, used by one request at a time.
pub(super) struct H1<IO> {
    io: IO,
    /// What was read and not used yet is `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// How many bytes from `start` are known not to end a head: a head that comes a few
    /// bytes at a time is parsed once it is whole, not at every read.
    checked: usize,
    /// Whether any byte came since the request began to go out (an interim answer counts).
    received: bool,
}

/// How an answer's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// It has none (`204`, `304`, or `Content-Length: 0`).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// When the server closes the connection.
    Close,
}

/// An answer's head: what the attempt needs of it, and how to read its body.
#[derive(Debug)]
pub(super) struct Head {
    /// The final status (interim `1xx` ones skipped).
    pub(super) status: u16,
    /// `Retry-After`, when it says something.
    pub(super) retry_after: Option<Duration>,
    framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    keep: bool,
}

/// A request that got no answer.
#[derive(Debug)]
pub(super) struct Failed {
    /// What went wrong.
    pub(super) error: io::Error,
    /// The connection ended (closed, reset) before any byte of an answer: on a kept
    /// connection, one the server closed as the request went out, which it did not read.
    pub(super) cut: bool,
}

impl Failed {
    fn new(error: io::Error, answered: bool) -> Failed {
        let cut = !answered
            && (error.kind() == io::ErrorKind::UnexpectedEof
                || crate::delivery::connection_cut(&error));
        Failed { error, cut }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn closed_before_answering() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection before answering",
    )
}

impl<IO: AsyncRead + AsyncWrite + Unpin> H1<IO> {
    /// A connection over `io`, which nothing has been written to yet.
    pub(super) fn new(io: IO) -> H1<IO> {
        H1 {
            io,
            buf: vec![0; BUF_START],
            start: 0,
            end: 0,
            checked: 0,
            received: false,
        }
    }

    /// Whether a kept connection can carry a request: the server did not close it, and sent
    /// nothing unasked. Looks without waiting (one read that finds nothing, or the close).
    pub(super) fn is_open(&mut self) -> bool {
        if self.start != self.end {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        // Outside tokio's budget, which could make the read pending without looking. It costs
        // no system call when tokio knows the socket has nothing to read.
        let read = tokio::task::unconstrained(std::future::poll_fn(|cx| {
            Pin::new(&mut self.io).poll_read(cx, &mut probe)
        }));
        // Pending: nothing to read, and the connection open. TLS may read records that
        // carry no data (session tickets) and still find nothing.
        matches!(std::pin::pin!(read).poll(&mut cx), Poll::Pending)
    }

    /// Writes the request (`head`, then `body`) and reads its answer's head.
    ///
    /// While the server does not take the body, what it sent is read: an answer that comes
    /// before the body is written whole (a `413`, say) is the answer.
    pub(super) async fn send(&mut self, head: &[u8], body: &[u8]) -> Result<Head, Failed> {
        self.received = false;
        let mut written = 0;
        let early =
            std::future::poll_fn(|cx| self.poll_write_request(cx, head, body, &mut written))
                .await
                .map_err(|e| Failed::new(e, self.received))?;
        if let Some(mut head) = early {
            // The rest of the request was not sent: the connection cannot carry another.
            head.keep = false;
            return Ok(head);
        }
        loop {
            match self.take_head() {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(Failed::new(e, true)),
            }
            if self.end - self.start >= MAX_HEAD {
                return Err(Failed::new(
                    invalid(format!("the answer's head is over {MAX_HEAD} bytes")),
                    true,
                ));
            }
            let answered = self.received;
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) if answered => {
                    return Err(Failed::new(
                        invalid("the server closed the connection within its answer's head".into()),
                        true,
                    ));
                }
                Ok(0) => return Err(Failed::new(closed_before_answering(), false)),
                Ok(_) => {}
                Err(e) => return Err(Failed::new(e, answered)),
            }
        }
    }

    /// Reads the body `head` announced: its first [`RESPONSE_SNIPPET_BYTES`] into `snippet`,
    /// and no more than [`RESPONSE_READ_LIMIT`] in all. Whether the connection may carry
    /// another request: the body was read to its end, nothing followed it, and the head let
    /// it be kept.
    pub(super) async fn read_body(&mut self, head: &Head, snippet: &mut Vec<u8>) -> bool {
        let complete = match head.framing {
            Framing::Empty => true,
            // Over the limit, what the limit allows is read (its start is the snippet), and
            // the connection is not kept.
            Framing::Length(length) => {
                self.read_exactly(length.min(RESPONSE_READ_LIMIT), snippet)
                    .await
                    && length <= RESPONSE_READ_LIMIT
            }
            Framing::Chunked => self.read_chunked(snippet).await,
            Framing::Close => {
                self.read_to_close(snippet).await;
                false
            }
        };
        let keep = complete && head.keep && self.start == self.end;
        if keep && self.buf.len() > BUF_START {
            // A long head grew the buffer: a kept connection holds no more than it started
            // with.
            self.buf = vec![0; BUF_START];
        }
        keep
    }

    /// Writes the request; `Some` answer when one came before it was written whole.
    fn poll_write_request(
        &mut self,
        cx: &mut Context<'_>,
        head: &[u8],
        body: &[u8],
        written: &mut usize,
    ) -> Poll<io::Result<Option<Head>>> {
        let total = head.len() + body.len();
        loop {
            let wrote = if *written < total {
                let parts = if *written < head.len() {
                    [IoSlice::new(&head[*written..]), IoSlice::new(body)]
                } else {
                    [
                        IoSlice::new(&body[*written - head.len()..]),
                        IoSlice::new(&[]),
                    ]
                };
                Pin::new(&mut self.io)
                    .poll_write_vectored(cx, &parts)
                    .map_ok(Some)
            } else {
                Pin::new(&mut self.io).poll_flush(cx).map_ok(|()| None)
            };
            match wrote {
                Poll::Ready(Ok(Some(0))) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(Some(n))) => *written += n,
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Err(e)) => {
                    // A server that answered and closed without reading the rest: its answer
                    // may be waiting to be read (what came before a reset is read first).
                    while let Poll::Ready(Ok(1..)) = self.poll_fill(cx) {}
                    return Poll::Ready(match self.take_head() {
                        Ok(Some(head)) => Ok(Some(head)),
                        _ => Err(e),
                    });
                }
                Poll::Pending => {
                    // The server does not take more now: has it answered?
                    match ready!(self.poll_fill(cx))? {
                        0 => {
                            return Poll::Ready(match self.take_head()? {
                                Some(head) => Ok(Some(head)),
                                None if !self.received => Err(closed_before_answering()),
                                None => Err(invalid(
                                    "the server closed the connection within its answer's head"
                                        .into(),
                                )),
                            });
                        }
                        _ => {
                            if let Some(head) = self.take_head()? {
                                return Poll::Ready(Ok(Some(head)));
                            }
                            // Part of a head, or an interim answer skipped: write on.
                        }
                    }
                }
            }
        }
    }

    /// Reads more of what the server sent after what is buffered; how many bytes (0: the
    /// connection ended).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // Only a head longer than the buffer gets here (bodies are used as read).
                let grown = (self.buf.len() * 2).min(MAX_HEAD + BUF_START);
                if grown == self.buf.len() {
                    return Poll::Ready(Err(invalid(format!(
                        "the answer's head is over {MAX_HEAD} bytes"
                    ))));
                }
                self.buf.resize(grown, 0);
            }
        }
        let mut read = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        self.end += n;
        self.received |= n > 0;
        Poll::Ready(Ok(n))
    }

    /// Parses the final answer's head from what is buffered, skipping interim ones; `None`
    /// until all of it came.
    fn take_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            let unread = &self.buf[self.start..self.end];
            // A head ends with an empty line (CRLF, or a bare LF as httparse also takes):
            // looked for in what came since the last look, before anything is parsed.
            let from = self.checked.saturating_sub(2);
            let tail = &unread[from..];
            let ends = memchr::memchr_iter(b'\n', tail)
                .any(|at| matches!(&tail[at + 1..], [b'\n', ..] | [b'\r', b'\n', ..]));
            if !ends {
                self.checked = unread.len();
                return Ok(None);
            }
            // Left uninitialized: httparse writes those it uses (zeroing 100 headers cost
            // more than parsing a short head).
            let mut headers =
                [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut answer = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut answer,
                &self.buf[self.start..self.end],
                &mut headers,
            );
            let used = match parsed {
                Ok(httparse::Status::Complete(used)) => used,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(invalid(format!("the answer is not HTTP/1.1: {e}"))),
            };
            let status = answer.code.unwrap_or_default();
            let head = match status {
                0..=99 => return Err(invalid(format!("its status {status} is not one"))),
                101 => {
                    return Err(invalid(
                        "the server switched protocols (101), which no request asked".into(),
                    ));
                }
                100..=199 => None,
                _ => Some(head_of(status, answer.version, answer.headers)?),
            };
            self.start += used;
            self.checked = 0;
            if head.is_some() {
                return Ok(head);
            }
        }
    }

    /// Reads `length` bytes of body; whether all came.
    async fn read_exactly(&mut self, length: u64, snippet: &mut Vec<u8>) -> bool {
        let mut left = length;
        loop {
            let take = left.min((self.end - self.start) as u64) as usize;
            self.consume(take, snippet);
            left -= take as u64;
            if left == 0 {
                return true;
            }
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    }

    /// Reads until the server closes the connection, or past the read limit.
    async fn read_to_close(&mut self, snippet: &mut Vec<u8>) {
        let mut left = RESPONSE_READ_LIMIT;
        loop {
            let take = self.end - self.start;
            self.consume(take, snippet);
            match left.checked_sub(take as u64) {
                Some(rest) => left = rest,
                None => return,
            }
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Reads a chunked body and its trailers; whether it was read to its end within the
    /// read limit.
    async fn read_chunked(&mut self, snippet: &mut Vec<u8>) -> bool {
        let mut left = RESPONSE_READ_LIMIT;
        // What the size lines and the trailers may still take.
        let mut framing = MAX_CHUNK_FRAMING;
        loop {
            let size = match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                Ok(httparse::Status::Complete((used, size))) if used <= framing => {
                    framing -= used;
                    self.start += used;
                    size
                }
                Ok(httparse::Status::Partial) if self.end - self.start <= framing => {
                    if !self.fill_more().await {
                        return false;
                    }
                    continue;
                }
                _ => return false,
            };
            if size == 0 {
                return self.skip_trailers(framing).await;
            }
            let Some(rest) = left.checked_sub(size) else {
                return false;
            };
            left = rest;
            if !self.read_exactly(size, snippet).await {
                return false;
            }
            // The chunk's own line end.
            while self.end - self.start < 2 {
                if !self.fill_more().await {
                    return false;
                }
            }
            if &self.buf[self.start..self.start + 2] != b"\r\n" {
                return false;
            }
            self.start += 2;
        }
    }

    /// Reads the trailer lines of a chunked body, up to the empty line that ends it, at most
    /// `room` bytes of them.
    async fn skip_trailers(&mut self, mut room: usize) -> bool {
        loop {
            match memchr::memmem::find(&self.buf[self.start..self.end], b"\r\n") {
                Some(0) => {
                    self.start += 2;
                    return true;
                }
                Some(at) if at + 2 <= room => {
                    room -= at + 2;
                    self.start += at + 2;
                }
                None if self.end - self.start <= room => {
                    if !self.fill_more().await {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }

    /// Reads more; whether anything came.
    async fn fill_more(&mut self) -> bool {
        matches!(
            std::future::poll_fn(|cx| self.poll_fill(cx)).await,
            Ok(n) if n > 0
        )
    }

    /// Uses `n` buffered bytes of body, the first of them kept in `snippet`.
    fn consume(&mut self, n: usize, snippet: &mut Vec<u8>) {
        let room = RESPONSE_SNIPPET_BYTES.saturating_sub(snippet.len()).min(n);
        snippet.extend_from_slice(&self.buf[self.start..self.start + room]);
        self.start += n;
    }
}

/// What the attempt needs of a final answer's head.
fn head_of(status: u16, version: Option<u8>, headers: &[httparse::Header<'_>]) -> io::Result<Head> {
    let mut retry_after = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut encoded = false;
    // HTTP/1.0 closes after each answer unless both sides asked otherwise; we do not ask.
    let mut keep = version == Some(1);
    for header in headers {
        let name = header.name;
        let value = || std::str::from_utf8(header.value).unwrap_or_default();
        if name.eq_ignore_ascii_case("content-length") {
            // Digits only (`u64::from_str` would take a sign); a list of the same number
            // is that number (RFC 9110, 8.6).
            for item in value().split(',') {
                let digits = item.trim();
                let parsed = digits
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| digits.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        invalid(format!("its Content-Length '{}' is not a number", value()))
                    })?;
                if length.is_some_and(|l| l != parsed) {
                    return Err(invalid("it has two different Content-Lengths".into()));
                }
                length = Some(parsed);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            // Chunked is the last coding when it is there at all.
            chunked = value()
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            if value()
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
            {
                keep = false;
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = parse_retry_after(value());
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Empty
    } else if encoded {
        // A length beside an encoding is ignored (RFC 9112, 6.3), and the connection not
        // kept: one of the two lied.
        if length.is_some() {
            keep = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    if framing == Framing::Close {
        keep = false;
    }
    Ok(Head {
        status,
        retry_after,
        framing,
        keep,
    })
}

/// The bytes of an RFC 9110 token: what a header's name is made of.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'..=b'`' | b'|' | b'~');
        b += 1;
    }
    table
};

/// Whether `name` can be a header's name (an RFC 9110 token).
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| TOKEN[usize::from(b)])
}

/// Whether `value` can be sent as a header's value as it is: visible ASCII, spaces and tabs
/// (what `http::HeaderValue::from_str` takes). Every byte is looked at, with no branch per
/// byte, so that the check runs many bytes at a time.
pub(super) fn valid_value(value: &str) -> bool {
    value.bytes().fold(true, |ok, b| {
        ok & ((b' '..=b'~').contains(&b) | (b == b'\t'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

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
        let (head, _, _) =
            exchange(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", false).await;
        assert!(
            head.unwrap_err()
                .error
                .to_string()
                .contains("Content-Length")
        );
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
        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = H1::new(client);
        let served = tokio::spawn(async move {
            let mut request = [0; 64];
            let _ = server.read(&mut request).await.unwrap();
            for &b in b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n" {
                server.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            std::future::pending::<()>().await;
        });
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
        assert!(valid_name("x-deskhook-sequence"));
        assert!(!valid_name("bad name"));
        assert!(!valid_name(""));
        assert!(valid_value("v1,abc\tdef ghi"));
        assert!(!valid_value("a\r\nInjected: 1"));
        assert!(!valid_value("caf\u{e9}"));
        // The same answers as the http crate's, byte by byte.
        for b in 0..128u8 {
            let text = char::from(b).to_string();
            assert_eq!(
                valid_name(&text),
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
}
