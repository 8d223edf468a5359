//! The HTTP/1.1 of both HTTP transports: a request written whole (its head and the event's
//! bytes in one vectored write), its answer's head parsed with `httparse` (hyper's own
//! parser), and its body read up to the limit, on a connection the attempt owns from start to
//! end. It is generic over the bytes under it (`AsyncRead + AsyncWrite`): the async transport
//! drives it on tokio's sockets, the blocking transport on std's, polled in a loop (see
//! `http_blocking/io.rs`). The request heads ([`request`]) and the TLS settings ([`tls`]) are
//! made here for both too.
//!
//! hyper's `client::conn` costs about 12 k instructions a request on this path (its connection
//! task, its channel, an `http::Request` and header map per attempt): half of deskhook's
//! delivery CPU, and what kept the async transport at 0.45 × wrk (measured in
//! `benches/README.md`). Here a request costs what the bytes cost. hyper stays for HTTP/2,
//! where its multiplexing is the whole job. The blocking transport had ureq's HTTP/1.1, whose
//! own work was most of that transport's CPU: it has this one now.
//!
//! What it keeps from hyper's behaviour, each covered by the transports' tests:
//! - an interim `1xx` answer is skipped; `101` is refused (no upgrade was asked for);
//! - a head written loosely is read as browsers and curl read it, where hyper refuses it: a
//!   header folded over lines, a space before a header's colon, a line that is no header
//!   (skipped), so that the status of an answer to a delivered event counts; its connection
//!   is not kept (a skipped line may have been a framing header);
//! - a body framed by `Content-Length`, `chunked`, or the connection's end;
//! - a refusal (`4xx` but `408`, `5xx`) or a redirect (`3xx`, the outcome whatever becomes
//!   of the body) that comes while the body is still being written (a receiver refusing it
//!   early) is read and is the answer; that connection is not kept. An early `2xx` or `408`
//!   is kept for when the request is written whole (RFC 9112 asks a client to stop sending
//!   only on an error); if the writing fails instead, the
//!   attempt fails, and after a `408` (a server closing a connection idle too long) the
//!   request goes again at once, as on any kept connection closed under it;
//! - a connection is kept only when its answer was read to its end, nothing came after it,
//!   and neither side said `Connection: close` (nor is it HTTP/1.0);
//! - a kept connection the server closed meanwhile is seen before it is written to
//!   ([`H1::is_open`]); one that ends as the request goes out, before any byte of an
//!   answer, is reported as [`Failed::cut`], for the caller to send again on a new one.

mod head;
pub(crate) mod origins;
pub(crate) mod request;
mod stream;
#[cfg(test)]
mod tests;
pub(crate) mod tls;

use std::future::Future as _;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::delivery::{RESPONSE_READ_LIMIT, RESPONSE_SNIPPET_BYTES};
use head::{Framing, head_of, invalid};
pub(crate) use head::{Head, valid_value};
pub(crate) use stream::Io;

/// A kept connection unused for longer is not used again but closed, and the request goes on
/// a new one: a firewall or NAT on the way may have forgotten it without a word (the request
/// would wait for its timeout). Every as long, the sink's [`Sweeper`](origins::Sweeper)
/// closes those of every origin unused for longer, so that an endpoint gone quiet holds no
/// sockets.
pub(crate) const IDLE_REUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// What a connection reads into at first; it grows for a longer head.
const BUF_START: usize = 8 * 1024;

/// The longest answer head read (hyper's default buffer limit is about 400 KiB; nothing
/// a webhook receiver says needs more than a few hundred bytes). HTTP/2 answers are held to
/// it too (see [`MAX_H2_HEADER_LIST`]).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// The header lines an answer's head is first parsed for (hyper's default limit). A head
/// with more is parsed again for as many as it has lines (it is at most [`MAX_HEAD`]): its
/// status must count (refused, a delivered event would be sent again and dead-lettered).
const MAX_HEADERS: usize = 100;

/// The largest HTTP/2 answer head taken: [`MAX_HEAD`], with the 32 bytes HTTP/2 counts for
/// each header besides its name and value (RFC 9113 6.5.2) for [`MAX_HEADERS`] of them.
/// HTTP/2's usual 16 KiB refused a head that HTTP/1.1 reads.
#[cfg(feature = "http-async")]
pub(crate) const MAX_H2_HEADER_LIST: u32 = (MAX_HEAD + 32 * MAX_HEADERS) as u32;

/// The most bytes of a chunked body's framing read beside its data: chunk-size lines with
/// their extensions, and trailers (hyper's limits for each).
const MAX_CHUNK_FRAMING: usize = 16 * 1024;

/// One HTTP/1.1 connection, used by one request at a time.
pub(crate) struct H1<IO> {
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
    /// The bytes of interim (`1xx`) answers to this request so far: they count against the
    /// head's limit, so that a receiver sending them without end is cut off.
    interim: usize,
}

/// Why an answer's head could not be taken.
enum HeadError {
    /// It does not read as HTTP/1.1.
    Syntax(httparse::Error),
    /// It reads, and says something no request asked for (see [`parse_answer`]).
    Answer(io::Error),
}

/// The answer head at the start of `buf`: `None` until all of it came; else the bytes it
/// took and, for a final answer, what the attempt needs of it (`None` for an interim `1xx`
/// one). `loose` reads it as browsers do (see [`H1::take_head`]).
fn parse_answer(buf: &[u8], loose: bool) -> Result<Option<(usize, Option<Head>)>, HeadError> {
    // Left uninitialized: httparse writes those it uses (zeroing 100 headers cost more than
    // parsing a short head).
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    match parse_answer_in(buf, loose, &mut headers) {
        Err(HeadError::Syntax(httparse::Error::TooManyHeaders)) => {
            // One header a line at most: the lines of what came, up to the head's limit (a
            // bound, whatever blank lines come before the status line).
            let lines = memchr::memchr_iter(b'\n', &buf[..buf.len().min(MAX_HEAD)]).count() + 1;
            let mut many = Vec::new();
            many.resize_with(lines, MaybeUninit::uninit);
            parse_answer_in(buf, loose, &mut many)
        }
        parsed => parsed,
    }
}

/// [`parse_answer`] with room for `headers.len()` headers.
fn parse_answer_in<'b>(
    buf: &'b [u8],
    loose: bool,
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<(usize, Option<Head>)>, HeadError> {
    #[cfg(test)]
    PARSES.set(PARSES.get() + 1);
    let mut answer = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config
        .allow_obsolete_multiline_headers_in_responses(loose)
        .allow_spaces_after_header_name_in_responses(loose)
        .ignore_invalid_headers_in_responses(loose);
    let used = match config.parse_response_with_uninit_headers(&mut answer, buf, headers) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    let status = answer.code.unwrap_or_default();
    let head = match status {
        0..=99 => {
            return Err(HeadError::Answer(invalid(format!(
                "the receiver's answer has status {status}, which is not an HTTP status"
            ))));
        }
        101 => {
            return Err(HeadError::Answer(invalid(
                "the receiver switched protocols (101), which no request asked for".into(),
            )));
        }
        100..=199 => None,
        _ => Some(head_of(status, answer.version, answer.headers).map_err(HeadError::Answer)?),
    };
    Ok(Some((used, head)))
}

/// How far an attempt's request went, for the error of an attempt that runs out of time:
/// told as it goes, read when its time is up (the async transport drops the future that
/// sends it; the blocking one reads it after the timed-out read or write).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// On a connection: its bytes are being written, or were.
    on: AtomicBool,
    /// Over HTTP/2, handed to hyper, which tells nothing of the bytes it writes.
    h2: AtomicBool,
    /// Given to the connection (TLS may hold them, not sent yet).
    written: AtomicUsize,
    total: AtomicUsize,
    /// Written whole and flushed: what is left is the answer.
    flushed: AtomicBool,
}

impl Progress {
    /// A request of `total` bytes starts out on a connection (a new one after a cut too).
    pub(crate) fn on_connection(&self, total: usize) {
        self.written.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.flushed.store(false, Ordering::Relaxed);
        self.h2.store(false, Ordering::Relaxed);
        self.on.store(true, Ordering::Relaxed);
    }

    /// The request is handed to an HTTP/2 connection.
    #[cfg_attr(not(feature = "http-async"), allow(dead_code))]
    pub(crate) fn on_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
        self.on.store(true, Ordering::Relaxed);
    }

    /// The connection is gone (cut, or it did not take the request): another is being
    /// found or made.
    #[cfg_attr(not(feature = "http-async"), allow(dead_code))]
    pub(crate) fn connecting(&self) {
        self.on.store(false, Ordering::Relaxed);
    }

    /// The error of the attempt whose `timeout` ended it where the request was: waiting for
    /// a connection, writing (the receiver reads slowly or not at all), or waiting for the
    /// answer (the receiver is slow to answer).
    pub(crate) fn timed_out(&self, timeout: std::time::Duration) -> String {
        if !self.on.load(Ordering::Relaxed) {
            return no_connection_in_time(timeout);
        }
        if self.h2.load(Ordering::Relaxed) {
            return format!(
                "timed out ({timeout:?}) waiting for the answer, the request handed to HTTP/2"
            );
        }
        if self.flushed.load(Ordering::Relaxed) {
            return format!("timed out ({timeout:?}) waiting for the answer, the request written");
        }
        format!(
            "timed out ({timeout:?}) writing the request, {} of {} bytes given to the \
             connection: the receiver reads slowly or not at all",
            self.written.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// The error of an attempt whose `timeout` ended before it had a connection.
pub(crate) fn no_connection_in_time(timeout: std::time::Duration) -> String {
    format!("timed out ({timeout:?}) waiting for a connection")
}

/// A request that got no answer.
#[derive(Debug)]
pub(crate) struct Failed {
    /// What went wrong.
    pub(crate) error: io::Error,
    /// The connection ended (closed, reset) before any byte of an answer: on a kept
    /// connection, one the server closed as the request went out, which it did not read.
    pub(crate) cut: bool,
}

impl Failed {
    fn new(error: io::Error, answered: bool) -> Failed {
        let cut = !answered
            && (error.kind() == io::ErrorKind::UnexpectedEof
                || crate::delivery::connection_cut(&error));
        Failed { error, cut }
    }
}

#[cfg(test)]
thread_local! {
    /// Heads and chunk size lines parsed on this thread, for tests of how often one is
    /// looked at.
    static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether an answer that comes while its request is still being written ends the writing,
/// the rest not sent: a refusal (`4xx` but `408`, `5xx`; RFC 9112 asks a client to stop
/// only on an error), a redirect (never followed, it is the outcome whatever becomes of the
/// body: a load balancer sending `http` to `https` need not read it, and may reset or wait),
/// or any answer that closes the connection (RFC 9112 9.6: the server will not read the
/// rest, and the write would end in a reset that loses the answer; Go's servers answer so
/// when 256 KiB of a body are unread). Not a `408`, which a server sends as it closes a
/// connection idle too long: the request was not read, and goes again.
fn ends_the_writing(head: &Head) -> bool {
    head.status != 408 && ((300..=599).contains(&head.status) || head.closes)
}

/// How many bytes of whole blank lines (`CRLF` or a bare `LF`) `unread` starts with.
fn blank_lines(unread: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match &unread[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => return at,
        }
    }
}

/// An answer that came before its request was written whole.
enum Early {
    /// A refusal, or an answer that closes the connection (see [`ends_the_writing`]): the
    /// rest of the request was not sent.
    Refusal(Head),
    /// An answer that refused nothing, read as the request went on: it was written whole.
    Whole(Head),
}

fn closed_before_answering() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection before answering",
    )
}

impl<IO: AsyncRead + AsyncWrite + Unpin> H1<IO> {
    /// A connection over `io`, which nothing has been written to yet.
    pub(crate) fn new(io: IO) -> H1<IO> {
        H1 {
            io,
            buf: vec![0; BUF_START],
            start: 0,
            end: 0,
            checked: 0,
            received: false,
            interim: 0,
        }
    }

    /// The bytes under the connection (to set their deadline, say).
    #[cfg(feature = "http-blocking")]
    pub(crate) fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// Whether a kept connection can carry a request: the server did not close it, and sent
    /// nothing unasked. Looks without waiting (one read that finds nothing, or the close).
    pub(crate) fn is_open(&mut self) -> bool {
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
    /// While the server does not take the body, what it sent is read: a refusal that comes
    /// before the body is written whole (a `413`, say) is the answer.
    #[cfg(test)]
    pub(crate) async fn send(&mut self, head: &[u8], body: &[u8]) -> Result<Head, Failed> {
        self.send_telling(head, body, &Progress::default()).await
    }

    /// [`send`](H1::send), telling `progress` how much of the request is written.
    pub(crate) async fn send_telling(
        &mut self,
        head: &[u8],
        body: &[u8],
        progress: &Progress,
    ) -> Result<Head, Failed> {
        self.received = false;
        self.interim = 0;
        progress.on_connection(head.len() + body.len());
        let mut written = 0;
        let mut early = None;
        let answered = std::future::poll_fn(|cx| {
            let polled = self.poll_write_request(cx, (head, body), &mut written, &mut early);
            progress.written.store(written, Ordering::Relaxed);
            // Not on an error: the blocking transport's timeout is one.
            if let Poll::Ready(Ok(_)) = polled {
                progress.flushed.store(true, Ordering::Relaxed);
            }
            polled
        })
        .await
        .map_err(|e| Failed::new(e, self.received))?;
        match answered {
            Some(Early::Refusal(mut head)) => {
                // The rest of the request was not sent: the connection cannot carry another.
                head.keep = false;
                return Ok(head);
            }
            Some(Early::Whole(head)) => return Ok(head),
            None => {}
        }
        loop {
            match self.take_head() {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(Failed::new(e, true)),
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
    pub(crate) async fn read_body(&mut self, head: &Head, snippet: &mut Vec<u8>) -> bool {
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
            // with, and reads the next answer from its start (the places in the old buffer
            // may lie past the new one's end).
            self.buf = vec![0; BUF_START];
            self.start = 0;
            self.end = 0;
            self.checked = 0;
        }
        keep
    }

    /// Writes the request (`head`, then `body`); `Some` answer when one came before it was
    /// written whole: a refusal that ended the writing, or an answer that did not (kept in
    /// `early` until the request is written whole).
    fn poll_write_request(
        &mut self,
        cx: &mut Context<'_>,
        (head, body): (&[u8], &[u8]),
        written: &mut usize,
        early: &mut Option<Head>,
    ) -> Poll<io::Result<Option<Early>>> {
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
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(early.take().map(Early::Whole))),
                Poll::Ready(Err(e)) => {
                    // A server that refused the request and closed without reading the rest:
                    // its answer may be waiting to be read (what came before a reset is read
                    // first). Not a 408, which a server sends as it closes a connection idle
                    // too long: the request goes again on a new one.
                    if early.is_none() {
                        while let Poll::Ready(Ok(1..)) = self.poll_fill(cx) {}
                        *early = self.take_head().ok().flatten();
                    }
                    return Poll::Ready(match early.take() {
                        Some(head) if ends_the_writing(&head) => Ok(Some(Early::Refusal(head))),
                        Some(head) => {
                            // A 408 says the request was not read: the connection ended before
                            // an answer to it (sent again at once on a kept one). Any other
                            // answer was one: sent again later.
                            if head.status == 408 {
                                self.received = false;
                            }
                            Err(e)
                        }
                        None => Err(e),
                    });
                }
                // An answer came, and it ends nothing: the writing goes on.
                Poll::Pending if early.is_some() => return Poll::Pending,
                Poll::Pending => {
                    // The server does not take more now: has it answered?
                    match ready!(self.poll_fill(cx))? {
                        0 => {
                            // Each fill's bytes were looked at for a head already, so a
                            // whole one is not expected here; one that is would be a refusal
                            // cut short by the close.
                            return Poll::Ready(match self.take_head()? {
                                Some(head) => Ok(Some(Early::Refusal(head))),
                                None if !self.received => Err(closed_before_answering()),
                                None => Err(invalid(
                                    "the server closed the connection within its answer's head"
                                        .into(),
                                )),
                            });
                        }
                        _ => match self.take_head()? {
                            Some(head) if ends_the_writing(&head) => {
                                return Poll::Ready(Ok(Some(Early::Refusal(head))));
                            }
                            // Refusing nothing (a 408, which a server sends as it closes a
                            // connection idle too long, says only that this request was not
                            // read yet): kept until the request is written whole, or fails.
                            Some(head) => *early = Some(head),
                            // Part of a head, or an interim answer skipped: write on.
                            None => {}
                        },
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
            // Blank lines before the status line (httparse skips them) are taken off, and
            // counted in the head's budget: left, each one that came alone looked like a
            // head's end, and had the whole of what came parsed again (64 KiB of them, one
            // byte at a time, cost seconds of CPU).
            let blank = blank_lines(&self.buf[self.start..self.end]);
            self.start += blank;
            self.interim += blank;
            self.checked = self.checked.saturating_sub(blank);
            let unread = &self.buf[self.start..self.end];
            // A head ends with an empty line (CRLF, or a bare LF as httparse also takes):
            // looked for in what came since the last look, before anything is parsed.
            let from = self.checked.saturating_sub(2);
            let tail = &unread[from..];
            let ends = memchr::memchr_iter(b'\n', tail)
                .any(|at| matches!(&tail[at + 1..], [b'\n', ..] | [b'\r', b'\n', ..]));
            if !ends {
                self.checked = unread.len();
                return self.head_to_come();
            }
            // As browsers and curl read an answer, when it does not read strictly: a header
            // folded over lines (obs-fold), a space before a header's colon, and a line that
            // is no header (skipped) do not make an answer that came unread, so that its
            // status counts (refused, a delivered event would be sent again and end in the
            // dead letters). Such a head may have lost a framing header with the line it
            // skipped: its connection is not kept.
            let parsed = match parse_answer(unread, false) {
                Err(HeadError::Syntax(_)) => parse_answer(unread, true).map(|parsed| {
                    let (used, head) = parsed?;
                    Some((
                        used,
                        head.map(|head| Head {
                            keep: false,
                            ..head
                        }),
                    ))
                }),
                strict => strict,
            };
            let (used, head) = match parsed {
                Ok(None) => {
                    self.checked = unread.len();
                    return self.head_to_come();
                }
                Ok(Some(answer)) => answer,
                Err(HeadError::Syntax(e)) => {
                    return Err(invalid(format!(
                        "the receiver's answer is not HTTP/1.1: {e}"
                    )));
                }
                Err(HeadError::Answer(e)) => return Err(e),
            };
            self.start += used;
            self.checked = 0;
            if head.is_some() {
                return Ok(head);
            }
            self.interim += used;
            if self.interim > MAX_HEAD {
                return Err(invalid(format!(
                    "the receiver sent over {MAX_HEAD} bytes of interim (1xx) answers and no \
                     final one"
                )));
            }
        }
    }

    /// A head not all come yet (`None`), or over its budget: what came of it, the blank lines
    /// and interim (1xx) answers before it included. Checked here, where every look at an
    /// answer passes, not only where the head is awaited: an answer read while the request
    /// is still being written is looked at here alone.
    fn head_to_come(&self) -> io::Result<Option<Head>> {
        if self.interim + (self.end - self.start) >= MAX_HEAD {
            return Err(invalid(format!(
                "the answer's head is over {MAX_HEAD} bytes"
            )));
        }
        Ok(None)
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
        // How much of the size line is known to hold no line break: a line that comes a byte
        // at a time is looked at once per byte, and parsed once whole, not from its start at
        // each byte.
        let mut scanned = 0;
        loop {
            let line = &self.buf[self.start..self.end];
            // A size line with no digit (`\r\n`, `;x\r\n`), which httparse reads as 0, the
            // last chunk: the body would end early, the rest taken for the next answer.
            if line.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                return false;
            }
            let Some(lf) = memchr::memchr(b'\n', &line[scanned..]).map(|at| scanned + at) else {
                scanned = line.len();
                if scanned > framing || !self.fill_more().await {
                    return false;
                }
                continue;
            };
            scanned = 0;
            // Ended by CRLF only: a bare LF (httparse takes one inside an extension) would
            // frame the body otherwise than a stricter reader of the same bytes.
            if lf == 0 || line[lf - 1] != b'\r' {
                return false;
            }
            #[cfg(test)]
            PARSES.set(PARSES.get() + 1);
            let size = match httparse::parse_chunk_size(line) {
                Ok(httparse::Status::Complete((used, size)))
                    if used == lf + 1 && used <= framing =>
                {
                    framing -= used;
                    self.start += used;
                    size
                }
                _ => return false,
            };
            if size == 0 {
                return self.skip_trailers(framing).await;
            }
            let Some(rest) = left.checked_sub(size) else {
                // Past the limit: what the limit allows of this chunk is read (the snippet's
                // start), and the connection is not kept.
                self.read_exactly(left, snippet).await;
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
        // As in `read_chunked`: what of the line was looked at already (but its last byte,
        // a `\r` whose `\n` may come next).
        let mut scanned = 0;
        loop {
            let line = &self.buf[self.start..self.end];
            match memchr::memmem::find(&line[scanned..], b"\r\n").map(|at| scanned + at) {
                Some(0) => {
                    self.start += 2;
                    return true;
                }
                Some(at) if at + 2 <= room => {
                    room -= at + 2;
                    self.start += at + 2;
                    scanned = 0;
                }
                None if line.len() <= room => {
                    scanned = line.len().saturating_sub(1);
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
