//! The blocking transport's connections: TCP (our own, see [`super::tcp`]) and ureq's TLS,
//! with a layer between them that saves the system calls ureq spends on a kept connection
//! between two requests.
//!
//! ureq probes a kept connection (switch it to non-blocking, read, switch it back: three
//! system calls) when it goes back to the pool after a response and again when it is taken
//! out for the next request, the second time under the pool's lock that every delivery
//! thread shares; and it gives a new timeout before each request, because the time left is
//! a little less each time, which its own TCP set on the socket each time. `strace` of
//! 20 000 deliveries (with ureq's TCP) counted 4 `ioctl`, 3 `setsockopt` and 3 `recvfrom`
//! (2 of them probes) per request, against one `recvfrom` that reads the answer.
//!
//! It also writes each request in two system calls, its head and then its body, each of
//! which on loopback runs the receiver's side of TCP and wakes the receiver.
//!
//! Here what ureq writes is held until it waits for the answer (or until [`HOLD_LIMIT`] bytes
//! are held), then written at once: a request in one system call, as the async transport and
//! `wrk` write theirs; the time that takes comes out of the time left for the answer. A
//! probe that finds the connection open stands for the next one, as long as no I/O came in
//! between and less than [`PROBE_STANDS_FOR`] passed: a connection handed straight to the
//! next request is probed once, one idle in the pool longer is probed again before it is
//! used. The socket timeouts are given in whole [`TIMEOUT_GRAIN`]s, rounded up, so that
//! they change only when the time left does by that much.
//!
//! What the skipped probe would have caught in those few milliseconds: a server that closed
//! the connection (the next request fails before any answer, and the transport sends it
//! again on a new connection, as for any kept connection closed as the request went out),
//! and bytes a server sent unasked after its answer, which the next request would read as
//! its own answer. Every HTTP/1.1 client has that race between its last look at a kept
//! connection and its next request; here it is [`PROBE_STANDS_FOR`] wide at most.

use std::time::Instant;

use ureq::unversioned::transport::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, RustlsConnector, Transport,
};

/// Held output is written once it reaches this much (a larger body goes out in pieces as ureq
/// hands them over, each written with what was held before it).
pub(super) const HOLD_LIMIT: usize = 64 * 1024;

/// A connection keeps the room of its held output up to this much between requests.
const HOLD_KEPT: usize = 16 * 1024;

/// How long a probe that found a kept connection open stands for the next one.
pub(super) const PROBE_STANDS_FOR: std::time::Duration = std::time::Duration::from_millis(5);

/// The socket timeouts are set in multiples of this, rounded up: a timeout fires at most this
/// much late.
pub(super) const TIMEOUT_GRAIN: std::time::Duration = std::time::Duration::from_millis(10);

/// The connectors for a direct connection (the agents have no proxy): TCP (our own, see
/// [`super::tcp`]), [`Kept`] around it, then ureq's TLS for `https` endpoints, and [`Heard`]
/// on top.
pub(super) fn connector() -> impl Connector {
    ().chain(super::tcp::Tcp)
        .chain(Kept)
        .chain(RustlsConnector::default())
        .chain(Heard)
}

/// The connector that wraps each new TCP connection in a [`KeptTransport`].
#[derive(Debug)]
pub(super) struct Kept;

thread_local! {
    /// Whether this thread made a new connection since [`watch_connects`]: ureq runs its
    /// connectors only when its pool has no connection to hand out.
    static CONNECTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

thread_local! {
    /// Whether a byte of an answer (after TLS, if any) came to this thread since
    /// [`watch_connects`].
    static ANSWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts watching whether the calling thread's next request makes a new connection (see
/// [`connected`]), and whether any of an answer comes (see [`answered`]).
pub(super) fn watch_connects() {
    CONNECTED.set(false);
    ANSWERED.set(false);
}

/// Notes that an answer came to the calling thread (see [`answered`]): bytes of it that
/// the TCP layer saw while the request was still going out.
pub(super) fn heard() {
    ANSWERED.set(true);
}

/// Whether any byte of an answer came to the calling thread since [`watch_connects`]: a
/// connection that ended after that ended as the server answered, which had the request.
pub(super) fn answered() -> bool {
    ANSWERED.get()
}

/// Whether the calling thread made a new connection since [`watch_connects`]; if not, its
/// request went out on a kept one.
pub(super) fn connected() -> bool {
    CONNECTED.get()
}

impl<In: Transport> Connector<In> for Kept {
    type Out = KeptTransport<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            CONNECTED.set(true);
        }
        Ok(chained.map(|inner| KeptTransport {
            inner,
            held: Vec::new(),
            found_open: None,
            broken: false,
        }))
    }
}

/// A connection that writes a request at once, skips the probe a recent one stands for, and
/// sets coarse timeouts (see the module docs).
pub(super) struct KeptTransport<T> {
    inner: T,
    /// Output handed over and not written yet.
    held: Vec<u8>,
    /// When a probe last found it open, if there was no I/O since.
    found_open: Option<Instant>,
    /// A write failed: what the server got of it is unknown (a socket write can take part of
    /// what it is given before a timeout), so nothing more goes out on this connection.
    broken: bool,
}

// Not derived: the held output holds the request's headers (a signature, an endpoint's
// credentials), and the TLS transport's Debug prints the transport under it.
impl<T: std::fmt::Debug> std::fmt::Debug for KeptTransport<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptTransport")
            .field("inner", &self.inner)
            .field("held_bytes", &self.held.len())
            .field("found_open", &self.found_open)
            .field("broken", &self.broken)
            .finish()
    }
}

impl<T: Transport> KeptTransport<T> {
    /// Writes the held output, in pieces of the inner output buffer's size, each within what
    /// is left of `timeout`; returns the time it took. After an error the connection is
    /// [`broken`](KeptTransport::broken).
    fn write_held(&mut self, timeout: NextTimeout) -> Result<std::time::Duration, ureq::Error> {
        if self.broken {
            return Err(broken());
        }
        if self.held.is_empty() {
            return Ok(std::time::Duration::ZERO);
        }
        let started = Instant::now();
        let mut start = 0;
        while start < self.held.len() {
            let output = self.inner.buffers().output();
            let n = output.len().min(self.held.len() - start);
            if n == 0 {
                self.broken = true;
                return Err(ureq::Error::Io(std::io::Error::other(
                    "the connection's output buffer has no room",
                )));
            }
            output[..n].copy_from_slice(&self.held[start..start + n]);
            let left = coarse(less(timeout, started.elapsed()));
            if let Err(err) = self.inner.transmit_output(n, left) {
                self.broken = true;
                self.held.clear();
                return Err(err);
            }
            start += n;
        }
        self.held.clear();
        self.held.shrink_to(HOLD_KEPT);
        Ok(started.elapsed())
    }
}

impl<T: Transport> Transport for KeptTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.found_open = None;
        if self.broken {
            return Err(broken());
        }
        let output = &self.inner.buffers().output()[..amount];
        self.held.extend_from_slice(output);
        if self.held.len() >= HOLD_LIMIT {
            self.write_held(timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.found_open = None;
        let spent = self.write_held(timeout)?;
        self.inner.await_input(coarse(less(timeout, spent)))
    }

    fn is_open(&mut self) -> bool {
        if self.broken {
            return false;
        }
        if self
            .found_open
            .is_some_and(|at| at.elapsed() < PROBE_STANDS_FOR)
        {
            return true;
        }
        let open = self.inner.is_open();
        self.found_open = open.then(Instant::now);
        open
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// The connector that wraps each connection, after TLS, in a [`HeardTransport`].
#[derive(Debug)]
pub(super) struct Heard;

impl<In: Transport> Connector<In> for Heard {
    type Out = HeardTransport<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(HeardTransport))
    }
}

/// A connection that notes (see [`answered`]) when bytes of an answer come: plain bytes,
/// after TLS, so that a TLS `close_notify` is not taken for an answer.
#[derive(Debug)]
pub(super) struct HeardTransport<T>(T);

impl<T: Transport> Transport for HeardTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let got = self.0.await_input(timeout)?;
        if got {
            ANSWERED.set(true);
        }
        Ok(got)
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

/// The error of a write on a [`broken`](KeptTransport::broken) connection (not one of the
/// kinds the transport takes for a kept connection the server closed, which it would send
/// again at once: the attempt fails, and its retries follow).
fn broken() -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(
        "a write on this connection failed before",
    ))
}

/// `timeout` with `spent` taken off the time left.
fn less(mut timeout: NextTimeout, spent: std::time::Duration) -> NextTimeout {
    if let Duration::Exact(left) = timeout.after {
        timeout.after = Duration::Exact(left.saturating_sub(spent));
    }
    timeout
}

/// `timeout` with the time left rounded up to a whole [`TIMEOUT_GRAIN`] (an expired one stays
/// expired, so that it is reported as such).
fn coarse(mut timeout: NextTimeout) -> NextTimeout {
    if let Duration::Exact(left) = timeout.after
        && !left.is_zero()
    {
        let grain = TIMEOUT_GRAIN.as_nanos();
        let rounded = left.as_nanos().div_ceil(grain).saturating_mul(grain);
        let rounded = u64::try_from(rounded).map_or(std::time::Duration::MAX, |nanos| {
            std::time::Duration::from_nanos(nanos)
        });
        timeout.after = Duration::Exact(rounded);
    }
    timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(timeout: NextTimeout) -> Option<std::time::Duration> {
        match timeout.after {
            Duration::Exact(left) => Some(left),
            Duration::NotHappening => None,
        }
    }

    fn after(left: std::time::Duration) -> NextTimeout {
        NextTimeout {
            after: Duration::Exact(left),
            ..NextTimeout::default()
        }
    }

    /// A connection that counts its probes and keeps what it is asked to write, by write,
    /// and the time left it is given for each write and read. Each write takes `slow`; the
    /// write numbered `fail_at` (from 0) fails.
    #[derive(Debug)]
    struct Counting {
        buffers: ureq::unversioned::transport::LazyBuffers,
        probes: usize,
        writes: Vec<Vec<u8>>,
        given: Vec<Option<std::time::Duration>>,
        slow: std::time::Duration,
        fail_at: Option<usize>,
    }

    impl Transport for Counting {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(
            &mut self,
            amount: usize,
            timeout: NextTimeout,
        ) -> Result<(), ureq::Error> {
            self.given.push(left(timeout));
            std::thread::sleep(self.slow);
            if self.fail_at == Some(self.writes.len()) {
                self.fail_at = None;
                return Err(ureq::Error::Timeout(ureq::Timeout::SendRequest));
            }
            let written = self.buffers.output()[..amount].to_vec();
            self.writes.push(written);
            Ok(())
        }
        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
            self.given.push(left(timeout));
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            self.probes += 1;
            true
        }
    }

    fn kept(output_buffer: usize) -> KeptTransport<Counting> {
        KeptTransport {
            inner: Counting {
                buffers: ureq::unversioned::transport::LazyBuffers::new(64, output_buffer),
                probes: 0,
                writes: Vec::new(),
                given: Vec::new(),
                slow: std::time::Duration::ZERO,
                fail_at: None,
            },
            held: Vec::new(),
            found_open: None,
            broken: false,
        }
    }

    /// Hands `bytes` over as ureq does: written into the output buffer, then transmitted.
    fn hand_over(kept: &mut KeptTransport<Counting>, bytes: &[u8]) {
        kept.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        kept.transmit_output(bytes.len(), NextTimeout::default())
            .unwrap();
    }

    #[test]
    fn a_request_is_written_at_once_when_the_answer_is_awaited() {
        let mut kept = kept(1024);
        hand_over(&mut kept, b"POST / HTTP/1.1\r\n\r\n");
        hand_over(&mut kept, b"{\"body\":1}");
        assert!(
            kept.inner.writes.is_empty(),
            "held until the answer is awaited"
        );
        kept.await_input(NextTimeout::default()).unwrap();
        assert_eq!(
            kept.inner.writes,
            [b"POST / HTTP/1.1\r\n\r\n{\"body\":1}".to_vec()]
        );
        // Nothing held: nothing written again.
        kept.await_input(NextTimeout::default()).unwrap();
        assert_eq!(kept.inner.writes.len(), 1);
    }

    #[test]
    fn past_the_limit_held_output_goes_out_in_pieces_of_the_buffer() {
        let mut kept = kept(HOLD_LIMIT / 2);
        let body: Vec<u8> = (0..HOLD_LIMIT / 2).map(|i| (i % 251) as u8).collect();
        hand_over(&mut kept, &body);
        assert!(kept.inner.writes.is_empty());
        hand_over(&mut kept, &body);
        // The limit reached: written, in pieces the inner buffer holds.
        assert_eq!(kept.inner.writes, [body.clone(), body.clone()]);
        hand_over(&mut kept, b"tail");
        kept.await_input(NextTimeout::default()).unwrap();
        assert_eq!(kept.inner.writes.len(), 3);
        assert_eq!(kept.inner.writes[2], b"tail");
    }

    #[test]
    fn writing_what_was_held_takes_from_the_time_left() {
        let ms = std::time::Duration::from_millis;
        let mut kept = kept(8);
        kept.inner.slow = ms(30);
        hand_over(&mut kept, b"01234567");
        hand_over(&mut kept, b"89abcdef");
        kept.await_input(after(ms(1_000))).unwrap();
        let given: Vec<_> = kept.inner.given.iter().map(|g| g.unwrap()).collect();
        // Two writes of 8 bytes, then the read, each with what the ones before left.
        assert_eq!(given.len(), 3, "{given:?}");
        assert_eq!(given[0], ms(1_000));
        assert!(given[1] <= ms(1_000) - ms(30) + TIMEOUT_GRAIN, "{given:?}");
        assert!(given[2] <= ms(1_000) - ms(60) + TIMEOUT_GRAIN, "{given:?}");
    }

    #[test]
    fn after_a_failed_write_nothing_more_goes_out() {
        let mut kept = kept(4);
        kept.inner.fail_at = Some(1);
        hand_over(&mut kept, b"head");
        hand_over(&mut kept, b"body");
        assert!(kept.await_input(NextTimeout::default()).is_err());
        assert_eq!(kept.inner.writes, [b"head".to_vec()]);
        // ureq goes on after an Expect: 100-continue wait times out: the body is refused,
        // not written after a piece the server may have got part of.
        kept.buffers().output()[..4].copy_from_slice(b"more");
        assert!(kept.transmit_output(4, NextTimeout::default()).is_err());
        assert!(kept.await_input(NextTimeout::default()).is_err());
        assert!(!kept.is_open(), "not kept for another request");
        assert_eq!(kept.inner.writes, [b"head".to_vec()]);
        assert_eq!(kept.inner.probes, 0);
    }

    #[test]
    fn held_output_is_not_in_debug() {
        let mut kept = kept(64);
        hand_over(&mut kept, b"Authorization: Bearer s3cret");
        let debug = format!("{kept:?}");
        assert!(
            !debug.contains("s3cret") && debug.contains("held_bytes: 28"),
            "{debug}"
        );
    }

    #[test]
    fn a_probe_stands_for_the_next_until_io_or_time_passes() {
        let mut kept = kept(64);
        // Back to the pool, then out of it: one probe.
        assert!(kept.is_open());
        assert!(kept.is_open());
        assert_eq!(kept.inner.probes, 1);
        // A request in between: probed again.
        kept.transmit_output(0, NextTimeout::default()).unwrap();
        assert!(kept.is_open());
        assert_eq!(kept.inner.probes, 2);
        kept.await_input(NextTimeout::default()).unwrap();
        assert!(kept.is_open());
        assert_eq!(kept.inner.probes, 3);
        // Idle in the pool for longer: probed again.
        kept.found_open = Instant::now().checked_sub(PROBE_STANDS_FOR);
        assert!(kept.is_open());
        assert_eq!(kept.inner.probes, 4);
    }

    #[test]
    fn timeouts_round_up_to_the_grain() {
        let ms = std::time::Duration::from_millis;
        let us = std::time::Duration::from_micros;
        assert_eq!(left(coarse(after(ms(9_999) + us(950)))), Some(ms(10_000)));
        assert_eq!(left(coarse(after(ms(9_999) + us(1)))), Some(ms(10_000)));
        assert_eq!(left(coarse(after(ms(10_000)))), Some(ms(10_000)));
        assert_eq!(left(coarse(after(us(1)))), Some(TIMEOUT_GRAIN));
        // Expired stays expired; none stays none.
        assert_eq!(left(coarse(after(ms(0)))), Some(ms(0)));
        assert_eq!(left(coarse(NextTimeout::default())), None);
        assert_eq!(
            left(coarse(after(std::time::Duration::MAX))),
            Some(std::time::Duration::MAX)
        );
    }
}
