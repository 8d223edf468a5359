//! Blocking HTTP delivery on worker threads: [`HttpSink`].
//!
//! The same engine as the async transport; the workers are threads, one per request in
//! flight, from a pool shared by every endpoint. HTTP/1.1 is the crate's own, the one the
//! async transport runs (a request written whole in one vectored write, its answer's head
//! parsed with `httparse`), driven here over blocking std sockets: its futures are polled on
//! the worker's thread, their reads and writes waiting in the system calls (see `io.rs` for
//! why that is sound). It replaced ureq, whose own work was most of this transport's CPU
//! (see `benches/README.md`, *Where the CPU goes*). Each endpoint's request head (its URL's
//! path, `Host`, `User-Agent` and its own headers) is made once when the endpoint is
//! registered or changed; an attempt adds only what changes.
//!
//! Connections are pooled per origin and connection settings, shared by the endpoints on
//! that origin, and go only to addresses the SSRF guard vetted (every address a name
//! resolves to is checked, and a name is refused as a whole if any is refused); no proxy from
//! the environment is used and redirects are not followed. TLS is rustls (ring) with the
//! Mozilla roots or the endpoint's own CA, one configuration (and session-resumption cache)
//! per set of roots; only `http/1.1` is offered by ALPN. A name is looked up on a thread of
//! its own (std's lookup has no timeout), for no longer than the connect timeout; a
//! connection has the connect timeout, the whole attempt its timeout.
//!
//! - **A write ends at the attempt's deadline**, however slowly the server takes it: a write
//!   waits 50 ms at most for the server to take more, then the deadline is checked.
//! - **A refusal or a redirect that comes while the request is still being written is the
//!   answer** (a `413` for a large body, once the server has the head), not a timeout, over
//!   `http` and, now that the transport reads TLS itself, over `https` too (over ureq it was
//!   heard there only once the request was written or the timeout passed); that connection
//!   is not kept. An early `2xx` does not end the writing (RFC 9112 asks a client to stop
//!   only on an error), nor does a `408`, which a server sends as it closes a connection idle too
//!   long: if the writing then fails, the request goes again at once on a new connection.
//!   On Windows, where a write waits the whole time left, such an answer is heard only if
//!   the write fails.
//! - **A kept connection the server closed meanwhile is seen before use** (a read that does
//!   not wait), and the request goes on another one; one cut as the request goes out on it,
//!   before any byte of an answer (a server's idle timeout), sends it again at once, once, on
//!   a new connection, within what is left of the attempt (at least once, as every attempt
//!   is).
//! - A kept connection unused for 30 s when a request would take it is closed rather than
//!   used (a firewall on the way may have forgotten it), and a thread of the sink's
//!   (`deskhook-idle`, asleep in between) closes every 30 s those of every origin unused for
//!   longer, so that endpoints gone quiet hold no sockets; at shutdown the kept connections
//!   are closed.
//! - The answer's status and `Retry-After` are the attempt's outcome; of its body up to
//!   64 KiB is read (so that the connection can be kept), its start kept for the observer.
//!   The timeout bounds the whole attempt, body included: a status that came in time is the
//!   answer however slowly its body follows, but that connection is not kept.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use deskhook::Dispatcher;
//! use deskhook_transports::delivery::Endpoint;
//! use deskhook_transports::http_blocking::HttpSink;
//!
//! // The secret the receiver has too (`deskhook secret new` makes one).
//! let secret = deskhook::Secret::parse(&std::env::var("CRM_WEBHOOK_SECRET")?)?;
//! let (http, _guard) = HttpSink::builder()
//!     .endpoint(Endpoint::new("crm", "https://crm.example.com/hooks")?.secret(secret))
//!     .build()?;
//! deskhook::set_dispatcher(Dispatcher::builder().sink("http", http).build())?;
//! // … the helpdesk runs and emits; dropping `_guard` at exit flushes (5 s by default).
//! # Ok(()) }
//! ```

mod io;
mod origin;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::delivery::endpoint::is_header_name;
use crate::delivery::engine::attempt::Next;
use crate::delivery::pool::Woke;
use crate::delivery::{
    AttemptError, ClientKey, Connector, DeliveryGuard, DeliverySink, Endpoint, Engine, Response,
    SinkBuilder, Target, Transport, lock,
};
use crate::error::Error;
use crate::h1::origins::{Origins, Sweeper};
use crate::h1::{self, IDLE_REUSE, tls::TlsConfigs};
use io::block_on;
use origin::Origin;

pub use crate::delivery::USER_AGENT;

/// Requests in flight per endpoint when the endpoint does not set `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// The sink of the blocking transport: a [`DeliverySink`] whose workers are threads making
/// HTTP requests. `HttpSink::builder()` starts one; `.build()` runs it.
pub type HttpSink = DeliverySink;

impl SinkBuilder {
    /// Checks the settings and the endpoints, opens the dead-letter file (or the spool), and
    /// starts the blocking transport's worker pool: one thread at first, more with demand up
    /// to `max_threads` (idle ones end after `thread_idle_timeout`), shared by every
    /// endpoint.
    ///
    /// Keep the guard for as long as events should be delivered: bind it to a name
    /// (`let (sink, _guard) = …`), not to `_`, which drops it at once and stops delivery
    /// (events emitted afterwards go to the dead letters).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`], [`Error::InvalidUrl`] or [`Error::Refused`] naming the
    /// endpoint and what to change; [`Error::Open`] when the dead-letter file cannot be
    /// opened; [`Error::Config`] for duplicate endpoint names, a setting of 0, or a thread
    /// that cannot start.
    pub fn build(self) -> Result<(HttpSink, DeliveryGuard), Error> {
        let config = &self.config;
        let slots = config.max_in_flight.min(config.max_threads);
        let origins = Arc::new(Mutex::new(Origins::default()));
        let connector = BlockingConnector {
            idle_per_host: slots,
            sweeper: Sweeper::start(&origins, IDLE_REUSE),
            origins,
            tls: TlsConfigs::new(&[b"http/1.1"]),
        };
        let (engine, shutdown_timeout) = self.start_engine(Box::new(connector))?;
        engine.pool().set_limit(slots);
        let weak = Arc::downgrade(&engine);
        let spawn = move || {
            let weak: Weak<Engine> = weak.clone();
            std::thread::Builder::new()
                .name("deskhook-http".to_owned())
                .spawn(move || {
                    if let Some(engine) = weak.upgrade() {
                        run_thread(&engine);
                    }
                })
                .map(drop)
        };
        engine
            .pool()
            .start_threads(Box::new(spawn))
            .map_err(|e| Error::Config(format!("cannot start a delivery thread: {e}")))?;
        Ok((
            DeliverySink::new(engine.clone()),
            DeliveryGuard::new(engine, shutdown_timeout),
        ))
    }
}

/// One worker thread: attempts until the pool stops, or ends when idle too long.
fn run_thread(engine: &Arc<Engine>) {
    /// Tells the pool the thread ended, however it ends.
    struct Exit<'a>(&'a Engine);
    impl Drop for Exit<'_> {
        fn drop(&mut self) {
            self.0.pool().exited();
        }
    }
    let _exit = Exit(engine);
    engine.priority().apply();
    // A panic (a bug, in the transport or around it; a `log` logger writing to a closed
    // pipe) leaves this thread to go on: were it to end, the thread that frees a slot would
    // be gone, and with the last one nobody would deliver. An attempt under way settles as
    // a failure (its drop).
    while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deliver(engine))).is_err() {
        let _ = std::panic::catch_unwind(|| {
            log::error!(
                target: deskhook::LOG_TARGET,
                "a delivery thread panicked (a bug: please report it); an attempt under way \
                 counts as failed, and delivery goes on"
            );
        });
    }
}

/// Attempts until the pool stops, or lets this thread go when idle too long.
fn deliver(engine: &Arc<Engine>) {
    loop {
        match engine.next_attempt() {
            Next::Attempt(attempt) => {
                engine.pool().busy();
                attempt.run(|attempt, headers| {
                    BlockingTransport.post(
                        attempt.route.target.as_ref(),
                        headers,
                        attempt.job().body(),
                    )
                });
            }
            Next::Wait(until) => match engine.pool().wait(until) {
                Woke::Work => {}
                Woke::Exit | Woke::Stop => return,
            },
            Next::Stop => return,
        }
    }
}

/// Makes the blocking transport's targets: the endpoint's request head, and the pool of its
/// origin (shared with every endpoint on the same origin with the same connection settings).
struct BlockingConnector {
    /// HTTP/1.1 connections kept per origin at most.
    idle_per_host: usize,
    /// The origins in use.
    origins: Arc<Mutex<Origins<Origin>>>,
    /// Closes their connections unused too long.
    sweeper: Arc<Sweeper>,
    /// One TLS configuration per set of roots, offering `http/1.1` by ALPN.
    tls: TlsConfigs,
}

impl Drop for BlockingConnector {
    fn drop(&mut self) {
        self.sweeper.stop();
    }
}

/// An endpoint as the blocking transport sends to it: its origin's pool and its request
/// head.
struct BlockingTarget {
    /// Where its requests go, and the connections kept there.
    origin: Arc<Origin>,
    /// The whole attempt's timeout.
    timeout: Duration,
    /// The request head but the attempt's own headers: the request line (path and query),
    /// `Host`, `User-Agent` (unless the endpoint has its own) and the endpoint's headers.
    head: Vec<u8>,
}

impl Connector for BlockingConnector {
    fn target(&self, endpoint: &Endpoint) -> Result<Target, Error> {
        endpoint.check_http()?;
        let invalid = |message: String| Error::InvalidEndpoint {
            name: endpoint.name.clone(),
            message,
        };
        let key = ClientKey::of(endpoint);
        let origin = self.origin(&key, endpoint).map_err(&invalid)?;
        let mut fixed = Vec::with_capacity(1 + endpoint.headers.len());
        if h1::request::default_user_agent(endpoint) {
            fixed.push(("user-agent", USER_AGENT.as_bytes()));
        }
        for (name, value) in &endpoint.headers {
            if !is_header_name(name) {
                return Err(invalid(format!("'{name}' is not a valid header name")));
            }
            if !h1::valid_value(value) {
                return Err(invalid(format!(
                    "the value of header '{name}' is not valid"
                )));
            }
            fixed.push((name.as_str(), value.as_bytes()));
        }
        let head = h1::request::target_head(&endpoint.url, fixed).map_err(&invalid)?;
        Ok(Arc::new(BlockingTarget {
            origin,
            timeout: endpoint.timeout,
            head,
        }))
    }

    fn default_max_in_flight(&self) -> usize {
        DEFAULT_MAX_IN_FLIGHT
    }

    // `attempt_head` relies on it: with the endpoint's headers in the target (checked when
    // it is made), every name an attempt adds is one of the engine's constants.
    fn endpoint_headers_in_target(&self) -> bool {
        true
    }

    fn close_kept(&self) {
        self.sweeper.stop();
        let live = lock(&self.origins).live();
        for origin in live {
            origin.close_kept();
        }
    }
}

impl BlockingConnector {
    /// The pool of `endpoint`'s origin, made if no endpoint uses it yet.
    fn origin(&self, key: &ClientKey, endpoint: &Endpoint) -> Result<Arc<Origin>, String> {
        lock(&self.origins).pool(key, &endpoint.url, &self.tls, self.idle_per_host)
    }
}

/// The blocking transport's requests.
struct BlockingTransport;

impl Transport for BlockingTransport {
    fn post(
        &self,
        target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let Some(target) = target.downcast_ref::<BlockingTarget>() else {
            return Err(AttemptError {
                message: "the endpoint was not made for the blocking transport".to_owned(),
                retryable: false,
            });
        };
        let started = Instant::now();
        // A timeout too long to add is none worth keeping: a year.
        let deadline = started
            .checked_add(target.timeout)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600));
        let progress = h1::Progress::default();
        let head = h1::request::attempt_head(&target.head, headers, body.len())?;
        let origin = &target.origin;
        let (mut conn, mut reused) = match origin.checkout() {
            Some(conn) => (conn, true),
            None => (origin.connect(deadline, target.timeout)?, false),
        };
        let answer = loop {
            let tcp = conn.io_mut().tcp_mut();
            tcp.set_deadline(deadline);
            tcp.looking = true;
            let sent = block_on(conn.send_telling(&head, body, &progress));
            // Cleared by the flush once the request is written whole, but not when an
            // early refusal ended the writing.
            conn.io_mut().tcp_mut().looking = false;
            match sent {
                Ok(answer) => break answer,
                // A kept connection the server closed as the request went out on it (an
                // idle timeout), which it did not read: sent again on a new connection,
                // once, within what is left of the attempt (at least once, as every attempt
                // is). One closed before is seen at checkout.
                Err(failed) if reused && failed.cut && Instant::now() < deadline => {
                    conn = origin.connect(deadline, target.timeout)?;
                    reused = false;
                }
                Err(failed) if failed.error.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(AttemptError {
                        message: progress.timed_out(target.timeout),
                        retryable: true,
                    });
                }
                Err(failed) => {
                    return Err(AttemptError {
                        message: format!("connection failed: {}", failed.error),
                        retryable: true,
                    });
                }
            }
        };
        // The status is the answer: a body that comes too slowly (or not at all) within the
        // timeout does not change it, but its connection is not kept.
        let mut snippet = Vec::new();
        if block_on(conn.read_body(&answer, &mut snippet)) {
            origin.checkin(conn);
        }
        Ok(Response {
            status: answer.status,
            retry_after: answer.retry_after,
            snippet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::parse_retry_after;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(
            parsed <= Duration::from_secs(90) && parsed >= Duration::from_secs(85),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        // More seconds than a u64 holds: the longest wait, which the engine caps.
        assert_eq!(
            parse_retry_after("99999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-5"), None);
    }

    #[test]
    fn endpoints_share_an_origin_per_key_and_an_unused_one_goes() {
        let connector = BlockingConnector {
            idle_per_host: 4,
            origins: Arc::default(),
            sweeper: Arc::default(),
            tls: TlsConfigs::new(&[b"http/1.1"]),
        };
        let endpoint = |name: &str, timeout: u64| {
            Endpoint::new(name, "http://127.0.0.1:9/")
                .unwrap()
                .allow_private(true)
                .timeout(Duration::from_secs(timeout))
        };
        let origin = |target: &Target| {
            target
                .downcast_ref::<BlockingTarget>()
                .unwrap()
                .origin
                .clone()
        };
        let a = connector.target(&endpoint("a", 10)).unwrap();
        let b = connector.target(&endpoint("b", 10)).unwrap();
        assert!(
            Arc::ptr_eq(&origin(&a), &origin(&b)),
            "same settings, one origin"
        );
        // Another address policy, or other CA roots, is another origin: a connection is
        // never used for an endpoint with other settings.
        let cidr = endpoint("cidr", 10).allow_cidr("127.0.0.0/8".parse().unwrap());
        let mut rooted = endpoint("rooted", 10);
        rooted.ca_certificates = Some(vec![rustls_pki_types::CertificateDer::from(vec![0x30])]);
        for other in [cidr, rooted] {
            let other = connector.target(&other).unwrap();
            assert!(!Arc::ptr_eq(&origin(&a), &origin(&other)));
        }
        // Another attempt timeout shares it too (each attempt keeps its own); another
        // connect timeout is another origin. Once no target holds the first, it is gone.
        let patient = connector.target(&endpoint("patient", 20)).unwrap();
        assert!(Arc::ptr_eq(&origin(&a), &origin(&patient)));
        drop(patient);
        let c = endpoint("a", 10).connect_timeout(Duration::from_secs(2));
        let c = connector.target(&c).unwrap();
        assert!(!Arc::ptr_eq(&origin(&a), &origin(&c)));
        let first = Arc::downgrade(&origin(&a));
        drop((a, b));
        assert!(first.upgrade().is_none(), "the unused origin was dropped");
        lock(&connector.origins).sweep_next();
        let _d = endpoint("d", 10).connect_timeout(Duration::from_secs(3));
        let _d = connector.target(&_d).unwrap();
        assert_eq!(lock(&connector.origins).len(), 2, "swept");
    }
}
