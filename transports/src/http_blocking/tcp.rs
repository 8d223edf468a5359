//! The blocking transport's TCP connections, made here rather than by ureq's `TcpConnector`
//! for what happens while a request goes to a server that does not take it.
//!
//! - **A write ends at the attempt's deadline.** ureq's writes what it is given with
//!   `write_all` under a socket timeout that each partial write starts again, so a receiver
//!   that took a little now and then held the attempt, and its worker thread, past its
//!   timeout. Here the socket timeout is a slice ([`STALL`]) and the deadline is checked
//!   between slices.
//! - **Over plain HTTP, a refusal that comes while the request is still being written is
//!   the answer.** A receiver refusing a large body (a `413`, a `401` from a middleware) may
//!   answer once it has the head and stop reading. ureq's wrote on until the timeout, and the
//!   final `4xx` became a retryable timeout, retried for a day. Here, when a write has waited
//!   a [`STALL`] (or failed), the connection is looked at: the start of a `4xx` (but `408`)
//!   or `5xx` answer, or the connection's end, stops the writing (the rest of the request
//!   is dropped), and ureq reads the answer as it would after a whole request. The
//!   connection is not kept: the server did not get the whole request. An interim answer
//!   (`100 Continue`, unasked) or an early `2xx` or `3xx` does not stop it (RFC 9112 asks a
//!   client to stop sending only on an error: such a server may read the rest yet); if the
//!   writing then fails, the server answered, and the attempt fails. Nor does a `408`,
//!   which a server sends as it closes a connection idle too long: if the writing then
//!   fails, the request goes again at once on a new connection, as for any kept connection
//!   closed under it. Over TLS this layer sees records it cannot read (a server sends
//!   session tickets unasked), so the write waits on, up to the deadline; the async
//!   transport, which reads TLS, hears a refusal there too.
//!
//! On Windows, whose sockets are left in an undefined state by a send that timed out, a
//! write is given the whole time left instead of slices, and the first refusal is heard
//! only if the write fails; and as a reset there drops what was received and not read, an
//! early `2xx` followed by a reset is not seen, and the request goes again at once.
//!
//! Connecting is as ureq's: each of the resolved (and vetted: see the guard's resolver)
//! addresses in turn, each but the last given half of the time left, the last all of it; an
//! address refused or unreachable, or slow to connect, gives way to the next.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::Instant;

use ureq::unversioned::transport::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};

/// How long a write waits for the server to take more before the connection is looked at
/// for an answer (and the deadline checked).
pub(super) const STALL: std::time::Duration = std::time::Duration::from_millis(50);

/// The least time an address is given to connect, as ureq gives it.
const LEAST_PER_ADDRESS: std::time::Duration = std::time::Duration::from_millis(10);

/// The connector that opens a [`TcpTransport`] to the first address that takes it.
#[derive(Debug)]
pub(super) struct Tcp;

impl Connector<()> for Tcp {
    type Out = TcpTransport;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        _chained: Option<()>,
    ) -> Result<Option<TcpTransport>, ureq::Error> {
        let stream = connect(&details.addrs, details.timeout)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let config = details.config;
        let stream = Arc::new(stream);
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        Ok(Some(TcpTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            plain: !details.needs_tls(),
            read_timeout: None,
            write_timeout: None,
            cut_short: false,
        }))
    }
}

/// Connects to the first of `addrs` that takes it, within `timeout`.
fn connect(addrs: &[SocketAddr], timeout: NextTimeout) -> Result<TcpStream, ureq::Error> {
    let deadline = deadline_of(timeout)?;
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let left = match deadline {
            Some(deadline) => match time_left(deadline) {
                Some(left) => Some(left),
                None => return Err(ureq::Error::Timeout(timeout.reason)),
            },
            None => None,
        };
        let per_address = left.map(|left| {
            let share = if i + 1 == addrs.len() { left } else { left / 2 };
            share.max(LEAST_PER_ADDRESS)
        });
        let connected = match per_address {
            Some(limit) => TcpStream::connect_timeout(addr, limit),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                // The attempt's own limit when that is what ran out.
                let spent = deadline.is_some_and(|deadline| time_left(deadline).is_none());
                let reason = if spent {
                    timeout.reason
                } else {
                    ureq::Timeout::Connect
                };
                last = Some(ureq::Error::Timeout(reason));
            }
            Err(e) if next_address_may_do(&e) => last = Some(e.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused).into()))
}

/// Whether a failed connect concerns only the address tried (refused, or no route to it),
/// so that the next address may still connect.
fn next_address_may_do(e: &io::Error) -> bool {
    // A firewall or VPN refusing one address family shows as WSAEACCES on Windows (as ureq
    // has it).
    #[cfg(windows)]
    if e.raw_os_error() == Some(10013) {
        return true;
    }
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
    )
}

/// When `timeout` ends (`None`: never); an error when it has ended already.
fn deadline_of(timeout: NextTimeout) -> Result<Option<Instant>, ureq::Error> {
    match timeout.after {
        Duration::NotHappening => Ok(None),
        after if after.is_zero() => Err(ureq::Error::Timeout(timeout.reason)),
        Duration::Exact(left) => Ok(Instant::now().checked_add(left)),
    }
}

/// The time left until `deadline`, `None` once it has passed.
fn time_left(deadline: Instant) -> Option<std::time::Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero())
}

/// One TCP connection of the blocking transport (see the module docs).
pub(super) struct TcpTransport {
    /// Shared (weakly) with the agent, which may shut it down.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// Whether the connection carries HTTP itself (not TLS), so that an answer can be seen.
    plain: bool,
    /// The socket timeouts as last set, so that they are set only when they change.
    read_timeout: Option<std::time::Duration>,
    write_timeout: Option<std::time::Duration>,
    /// The server refused the request (or ended the connection) before it took it whole:
    /// the rest is dropped, and the connection is not kept.
    cut_short: bool,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .field("plain", &self.plain)
            .field("cut_short", &self.cut_short)
            .finish()
    }
}

impl TcpTransport {
    /// Sets the write timeout to what is left of `deadline`, at most a [`STALL`] where
    /// writes are [`SLICED`]; an error once the deadline has passed.
    fn write_slice(
        &mut self,
        deadline: Option<Instant>,
        timeout: NextTimeout,
    ) -> Result<(), ureq::Error> {
        let slice = match deadline {
            None => SLICED.then_some(STALL),
            Some(deadline) => {
                let left = time_left(deadline).ok_or(ureq::Error::Timeout(timeout.reason))?;
                Some(if SLICED { left.min(STALL) } else { left })
            }
        };
        let stream = &self.stream;
        set_timeout(&mut self.write_timeout, slice, |t| {
            stream.set_write_timeout(t)
        })?;
        Ok(())
    }

    /// [`sent_meanwhile`](Self::sent_meanwhile), noting an answer that refuses nothing: a
    /// failure from there on is not one to send again at once (see `kept::answered`).
    fn answer_meanwhile(&self) -> Seen {
        let seen = self.sent_meanwhile();
        if seen == Seen::Other {
            super::kept::heard();
        }
        seen
    }

    /// What the server sent while the request was being written, looked at without taking
    /// it (ureq reads it as usual after): only over plain HTTP, where its bytes are an
    /// answer's.
    fn sent_meanwhile(&self) -> Seen {
        if !self.plain || self.stream.set_nonblocking(true).is_err() {
            return Seen::Nothing;
        }
        let mut seen = [0u8; 4096];
        let looked = self.stream.peek(&mut seen);
        if self.stream.set_nonblocking(false).is_err() {
            // Left non-blocking, a read would not wait: the read says the connection failed.
            return Seen::End;
        }
        match looked {
            Ok(n @ 1..) => seen_in(&seen[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Seen::Nothing
            }
            // Its end, or a reset: the read says how it ended.
            Ok(0) | Err(_) => Seen::End,
        }
    }
}

/// Whether writes go in slices of [`STALL`], between which the connection is looked at. Not
/// on Windows, where a socket whose send timed out is left in an undefined state: a write
/// there has the whole time left, and ends the attempt when that passes.
const SLICED: bool = cfg!(unix);

/// Sets a socket timeout with `set` when it is not `current` already. macOS refuses a change
/// once the peer closed with data unread (`InvalidInput`), when its answer may still be
/// there to read: that is let pass, as ureq does, and the I/O tells how it ended.
fn set_timeout(
    current: &mut Option<std::time::Duration>,
    to: Option<std::time::Duration>,
    set: impl FnOnce(Option<std::time::Duration>) -> io::Result<()>,
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

/// What a server sent while its request was being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Nothing, interim (`1xx`) answers only, or too little to tell.
    Nothing,
    /// A final `4xx` or `5xx` answer, with its status.
    Refusal(u16),
    /// A final answer that refuses nothing (`2xx`, `3xx`, or past `5xx`): the server may
    /// still read the rest, as it said it would (RFC 9112 asks a client to stop sending only
    /// on an error).
    Other,
    /// The connection's end, a reset, or bytes that are no HTTP answer.
    End,
}

impl Seen {
    /// Whether it refuses the request: not a `408`, which a server sends as it closes a
    /// connection idle too long (the request was not read: it goes again at once).
    fn refuses(self) -> bool {
        matches!(self, Seen::Refusal(status) if status != 408)
    }
}

/// What `seen` (the first bytes the server sent) holds, past any interim answers: ureq skips
/// those, and they refuse nothing.
fn seen_in(mut seen: &[u8]) -> Seen {
    const STATUS_AT: usize = "HTTP/1.1 ".len();
    loop {
        let Some(status) = seen.get(STATUS_AT..STATUS_AT + 3) else {
            return Seen::Nothing;
        };
        if !seen.starts_with(b"HTTP/1.") || seen[STATUS_AT - 1] != b' ' {
            // Not HTTP: no answer ureq can read, as good as the end.
            return Seen::End;
        }
        let status = if status.iter().all(u8::is_ascii_digit) {
            status.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0'))
        } else {
            0
        };
        match status {
            100..=199 => match head_end(seen) {
                Some(end) => seen = &seen[end..],
                None => return Seen::Nothing,
            },
            400..=599 => return Seen::Refusal(status),
            200..=399 | 600..=999 => return Seen::Other,
            // Not a status: no answer ureq can read, as good as the end.
            _ => return Seen::End,
        }
    }
}

/// Where the head at the start of `seen` ends (after its empty line, `\r\n` or a bare
/// `\n`), if it is whole.
fn head_end(seen: &[u8]) -> Option<usize> {
    seen.windows(2)
        .enumerate()
        .find_map(|(i, pair)| match pair {
            b"\n\n" => Some(i + 2),
            [b'\n', b'\r'] if seen.get(i + 2) == Some(&b'\n') => Some(i + 3),
            _ => None,
        })
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.cut_short {
            return Ok(());
        }
        let timeout = timeout.for_write();
        let deadline = deadline_of(timeout)?;
        let mut written = 0;
        while written < amount {
            self.write_slice(deadline, timeout)?;
            let output = &self.buffers.output()[written..amount];
            match (&*self.stream).write(output) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A slice without progress: has the server refused the request, or gone?
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !SLICED {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    let seen = self.answer_meanwhile();
                    if seen.refuses() || seen == Seen::End {
                        self.cut_short = true;
                        return Ok(());
                    }
                }
                // A server that refused the request and closed without reading the rest:
                // its answer comes before the reset. Not a 408, which a server sends as it
                // closes a connection idle too long: the request goes again at once, on a
                // new one, as after any kept connection closed under it.
                Err(e) => {
                    if self.answer_meanwhile().refuses() {
                        self.cut_short = true;
                        return Ok(());
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let deadline = deadline_of(timeout)?;
        // As given (the layer above rounds it, so that it seldom changes), then, after a
        // signal, what is left.
        let mut left = match timeout.after {
            Duration::Exact(left) => Some(left),
            Duration::NotHappening => None,
        };
        loop {
            let stream = &self.stream;
            set_timeout(&mut self.read_timeout, left, |t| stream.set_read_timeout(t))?;
            let input = self.buffers.input_append_buf();
            match (&*self.stream).read(input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                // Linux does not restart a read with a timeout after a signal.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if let Some(deadline) = deadline {
                        left =
                            Some(time_left(deadline).ok_or(ureq::Error::Timeout(timeout.reason))?);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn is_open(&mut self) -> bool {
        if self.cut_short || self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        // Nothing to read is the one sign of an open, idle connection: bytes the server sent
        // unasked, its end or an error each mean it cannot carry the next request.
        let open = matches!(
            (&*self.stream).read(&mut [0u8; 1]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        self.stream.set_nonblocking(false).is_ok() && open
    }
}

#[cfg(test)]
mod tests;
