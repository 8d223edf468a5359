//! The blocking transport's bytes: a std [`TcpStream`] seen through tokio's
//! `AsyncRead`/`AsyncWrite` ([`Blocking`]), so that the crate's HTTP/1.1 ([`crate::h1`]) and
//! tokio-rustls run on it, and [`block_on`], which drives their futures on the calling
//! thread.
//!
//! [`Blocking`] never stores a waker: its reads and writes wait in the system call, under a
//! socket timeout, and it returns `Poll::Pending` in three cases only:
//!
//! - a write that waited a [`STALL`] while the server took nothing (Unix): the request's
//!   writing gives way, so that the HTTP/1.1 connection looks for an early answer (a `413`
//!   for a body the server will not take) before it writes on;
//! - a read while it is [`looking`](Blocking::looking) that found nothing: one that only
//!   looks (a read that does not wait). The transport sets `looking` while a request goes out
//!   (the HTTP/1.1 connection reads then only to look for an early answer, after a write
//!   that stalled; the flush that ends the request ends it) and for the probe of a kept
//!   connection, which is not driven by [`block_on`];
//! - a read right after a read that brought bytes, which only looks too, and found nothing.
//!   TLS (tokio-rustls) reads on while rustls wants more, to fill the caller's buffer or to
//!   finish its side of a handshake: a read that waited there would wait for a server that
//!   waits for us. The read after such a `Pending` waits.
//!
//! So [`block_on`], which polls again at once with a waker that does nothing, waits in each
//! turn rather than spins: each `Pending` it sees followed a write that waited a [`STALL`]
//! (and the turn after writes again, or looks after one), or a look after bytes came, and
//! the turn after it reads, waiting. A future that returned `Pending` for any other reason
//! would spin it: nothing here waits on a waker.
//!
//! Every read and write ends at the [`deadline`](Blocking::set_deadline) (the attempt's, or
//! the connect timeout's while connecting): past it, they fail with
//! [`io::ErrorKind::TimedOut`]. A write that the server takes a little of now and then ends
//! there too (a socket timeout alone would start again with each partial write).
//!
//! On Windows, whose sockets are left in an undefined state by a send that timed out, a
//! write waits the whole time left instead of a [`STALL`], and a refusal that comes while the
//! request is written is heard only if the write then fails (the server closed).

use std::future::Future;
use std::io::{self, IoSlice, Read};
use std::net::TcpStream;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a write waits for the server to take more before the connection is looked at
/// for an answer (and the deadline checked).
pub(super) const STALL: Duration = Duration::from_millis(50);

/// A read's socket timeout is the time left, rounded up to a multiple of this: it changes
/// (a system call) only when the time left moved by as much, and fires at most this late.
const TIMEOUT_GRAIN: Duration = Duration::from_millis(10);

/// Whether writes wait a [`STALL`] at most, between which the connection is looked at. Not
/// on Windows, where a socket whose send timed out is left in an undefined state: a write
/// there has the whole time left, and ends the attempt when that passes.
const SLICED: bool = cfg!(unix);

/// A std TCP connection as tokio's `AsyncRead`/`AsyncWrite` (see the module docs).
#[derive(Debug)]
pub(super) struct Blocking {
    stream: TcpStream,
    /// When reads and writes stop waiting, and fail.
    deadline: Instant,
    /// Whether reads only look (see the module docs).
    pub(super) looking: bool,
    /// Whether the last I/O was a read that brought bytes: the next read only looks (see
    /// the module docs).
    just_read: bool,
    /// Whether the socket is non-blocking now (it is switched only when that must change;
    /// never on Linux, where a read that does not wait says so itself).
    nonblocking: bool,
    /// The socket timeouts as last set, so that they are set only when they change.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// The error of a read or write past the deadline.
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the deadline passed")
}

impl Blocking {
    /// `stream` (blocking, as a connect leaves it), whose reads and writes end at `deadline`.
    pub(super) fn new(stream: TcpStream, deadline: Instant) -> Blocking {
        Blocking {
            stream,
            deadline,
            looking: false,
            just_read: false,
            nonblocking: false,
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// Sets when reads and writes stop waiting.
    pub(super) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.just_read = false;
    }

    /// The socket (for tests that write past the connection).
    #[cfg(test)]
    pub(super) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The time left until the deadline; an error once it has passed.
    fn left(&self) -> io::Result<Duration> {
        Some(self.deadline.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
            .ok_or_else(timed_out)
    }

    /// Switches the socket to non-blocking or back, only when that changes (a system call).
    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        if self.nonblocking != nonblocking {
            self.stream.set_nonblocking(nonblocking)?;
            self.nonblocking = nonblocking;
        }
        Ok(())
    }

    /// Reads into `buf`, waiting up to the deadline, or, [`looking`](Self::looking) or
    /// right after a read that brought bytes, not at all (`None`: nothing there).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let read = self.read_now(buf);
        self.just_read = matches!(read, Ok(Some(1..)));
        read
    }

    /// [`read`](Self::read) but for its note of what the read brought.
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.looking || self.just_read {
            return loop {
                match self.read_no_wait(buf) {
                    Ok(n) => break Ok(Some(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
        }
        self.set_nonblocking(false)?;
        loop {
            self.read_timeout_to_deadline()?;
            match (&self.stream).read(buf) {
                Ok(n) => return Ok(Some(n)),
                // Linux does not restart a read with a timeout after a signal; a timeout
                // that fired before the deadline (rounded, or set by macOS's rule below) is
                // waited on with what is left.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads what is there now; `WouldBlock` when nothing is. On Linux a `recv` with
    /// `MSG_DONTWAIT`, the socket left blocking: one system call, where switching it to
    /// non-blocking for the read and back for the next (the probe of every kept connection)
    /// takes three.
    fn read_no_wait(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        return rustix::net::recv(&self.stream, buf, rustix::net::RecvFlags::DONTWAIT)
            .map(|(read, _)| read)
            .map_err(io::Error::from);
        #[cfg(not(target_os = "linux"))]
        {
            self.set_nonblocking(true)?;
            self.stream.read(buf)
        }
    }

    /// Sets the read timeout to the time left, rounded up to a [`TIMEOUT_GRAIN`]; an error
    /// once the deadline has passed.
    fn read_timeout_to_deadline(&mut self) -> io::Result<()> {
        let left = self.left()?;
        // Kept while it ends no sooner than the deadline, and no later than a grain after.
        if self
            .read_timeout
            .is_some_and(|set| set >= left && set <= left + TIMEOUT_GRAIN)
        {
            return Ok(());
        }
        let grain = TIMEOUT_GRAIN.as_nanos();
        let rounded = left.as_nanos().div_ceil(grain).saturating_mul(grain);
        let rounded = u64::try_from(rounded).map_or(Duration::MAX, Duration::from_nanos);
        let stream = &self.stream;
        set_timeout(&mut self.read_timeout, Some(rounded), |t| {
            stream.set_read_timeout(t)
        })
    }

    /// Writes some of `bufs`, waiting a [`STALL`] at most (where writes are [`SLICED`]);
    /// `None` when the server took nothing meanwhile.
    fn write(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
        self.just_read = false;
        self.set_nonblocking(false)?;
        loop {
            let left = self.left()?;
            let slice = if SLICED { left.min(STALL) } else { left };
            let stream = &self.stream;
            set_timeout(&mut self.write_timeout, Some(slice), |t| {
                stream.set_write_timeout(t)
            })?;
            match send(&self.stream, bufs) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !SLICED || self.left().is_err() {
                        return Err(timed_out());
                    }
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes `bufs` to `stream` in one system call, never raising `SIGPIPE` when the server has
/// closed the connection: std's vectored write is a plain `writev`, which would (only its
/// `write` passes `MSG_NOSIGNAL`), and a process that set `SIGPIPE` back to its default, or
/// a host that is not a Rust program, would die of it. The write fails with `EPIPE` instead.
/// Where there is no `MSG_NOSIGNAL` (macOS and iOS, whose std sets `SO_NOSIGPIPE` on every
/// socket; Windows, which has no such signal), std's write.
fn send(stream: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    return socket2::SockRef::from(stream).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL);
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    )))]
    {
        let mut stream = stream;
        io::Write::write_vectored(&mut stream, bufs)
    }
}

/// Sets a socket timeout with `set` when it is not `current` already. macOS refuses a change
/// once the peer closed with data unread (`InvalidInput`), when its answer may still be
/// there to read: that is let pass, and the I/O tells how it ended.
fn set_timeout(
    current: &mut Option<Duration>,
    to: Option<Duration>,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if *current == to {
        return Ok(());
    }
    match set(to) {
        Ok(()) => *current = to,
        Err(e) if cfg!(target_os = "macos") && e.kind() == io::ErrorKind::InvalidInput => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

impl AsyncRead for Blocking {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.read(buf.initialize_unfilled()) {
            Ok(Some(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Blocking {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().write(&[IoSlice::new(buf)]) {
            Ok(Some(n)) => Poll::Ready(Ok(n)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().write(bufs) {
            Ok(Some(n)) => Poll::Ready(Ok(n)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Writes nothing (a write is the system call's); the request is written whole, so
    /// reads wait for its answer from here on: no longer [`looking`](Blocking::looking).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().looking = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// Runs `future` to its end on the calling thread, polling it again at once whenever it is
/// pending. Sound only for futures over [`Blocking`] (see the module docs): each `Pending`
/// of theirs follows a write that waited a [`STALL`].
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
