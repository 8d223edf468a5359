//! The async transport's connections: one pool per origin (scheme, host, port, and the
//! connection settings of the endpoints that share it), holding HTTP/1.1 connections kept
//! alive between requests, or, when the server chose `h2` by ALPN, HTTP/2 connections that
//! requests share, [`H2_STREAMS`] at a time each. Connections are made over TCP (and TLS
//! with rustls) only to addresses the SSRF guard vetted: no proxy, no redirect. HTTP/1.1 is
//! the transport's own ([`crate::h1`]); HTTP/2 is hyper's `client::conn`, with no pool of
//! hyper's own.
//!
//! What it does not do: decide retries (the engine does), or keep a connection whose response
//! body was not read to its end (it is closed instead).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;

use crate::delivery::{AttemptError, lock};
use crate::guard::{self, AddressPolicy};
use crate::h1::origins::{Host, Met, Place, Pool, address_share, unresolved};
use crate::h1::tls::handshake_failed;
use crate::h1::{H1, IDLE_REUSE};

/// How often an HTTP/2 connection with requests in flight is pinged, and how long its
/// answer may take.
const H2_PING_EVERY: Duration = Duration::from_secs(10);

/// The bytes under an HTTP/1.1 connection: tokio's TCP, or TLS over it.
type Io = crate::h1::Io<tokio::net::TcpStream>;

/// An HTTP/2 stream's flow-control window: what a server may send of a response before the
/// transport reads it (the protocol's default).
const H2_STREAM_WINDOW: u32 = 65_535;

/// The body of every HTTP/2 request: the event's bytes, shared, not copied.
pub(super) type Body = Full<Bytes>;

/// Our requests in flight on one HTTP/2 connection at most; past it, another connection.
/// Below what servers let a connection have at once (100 to 250; nginx 128), so that a
/// request never waits inside a connection for a stream while others hold them all (a
/// hanging endpoint's requests, with every endpoint of the origin sharing the connection).
/// A server that allows fewer (its `SETTINGS_MAX_CONCURRENT_STREAMS`, which hyper does not
/// tell) makes the requests past its limit wait inside the connection, where a hanging
/// endpoint can hold up the others of its origin; and a request hyper queued there goes out
/// when a stream frees even if its attempt timed out meanwhile, so that its event may
/// arrive twice (its retry too: at least once, as after any timeout).
const H2_STREAMS: usize = 64;

/// A connection taken from the pool or just made.
pub(super) enum Conn {
    /// An HTTP/1.1 connection, this request's alone until it goes back to the pool.
    H1(H1<Io>),
    /// A handle on one of the origin's HTTP/2 connections, shared with other requests, and
    /// this request's place among its streams (held until the request is over).
    H2 {
        send: http2::SendRequest<Body>,
        _stream: Stream,
    },
}

/// What the requests on one HTTP/2 connection share: how many are in flight on it, how
/// many answers it has given (its sign of life), and since when a request on it has waited
/// for one.
#[derive(Default)]
pub(super) struct Streams {
    open: AtomicUsize,
    answered: AtomicUsize,
    /// When the first request that went out after its last answer (or since it was made)
    /// went out, as [`ticks`] count; 0 while none waits so.
    unanswered_since: AtomicU64,
}

/// Nanoseconds from the first call in the process to `at`, plus one (0 is "none").
fn ticks(at: Instant) -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(base).as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// A request's place among an HTTP/2 connection's streams, counted while it lives.
pub(super) struct Stream(Arc<Streams>);

impl Stream {
    fn on(streams: &Arc<Streams>) -> Stream {
        streams.open.fetch_add(1, Ordering::AcqRel);
        Stream(streams.clone())
    }

    /// Counts an answer's head on its connection.
    pub(super) fn answered(&self) {
        self.0.answered.fetch_add(1, Ordering::AcqRel);
        self.0.unanswered_since.store(0, Ordering::Release);
    }

    /// Its connection, and the answers it had given, as its request goes out.
    pub(super) fn sent(&self) -> Sent {
        // The first to go out unanswered starts the connection's silence.
        let _ = self.0.unanswered_since.compare_exchange(
            0,
            ticks(Instant::now()),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        Sent {
            streams: self.0.clone(),
            answered: self.0.answered.load(Ordering::Acquire),
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The HTTP/2 connection a request went out on, and the answers it had given by then: to
/// tell, when the request times out, whether the connection said anything since.
pub(super) struct Sent {
    streams: Arc<Streams>,
    answered: usize,
}

/// An HTTP/2 connection kept: its handle, our requests in flight on it and its answers,
/// and when it was last taken.
struct H2 {
    send: http2::SendRequest<Body>,
    streams: Arc<Streams>,
    used: Instant,
}

impl H2 {
    fn take(&mut self, now: Instant) -> Conn {
        self.used = now;
        Conn::H2 {
            send: self.send.clone(),
            _stream: Stream::on(&self.streams),
        }
    }

    fn in_flight(&self) -> usize {
        self.streams.open.load(Ordering::Acquire)
    }

    fn full(&self) -> bool {
        self.in_flight() >= H2_STREAMS
    }
}

/// Where requests to one origin go, and the connections kept to it.
pub(super) struct Origin {
    host: Host,
    port: u16,
    /// The TLS settings and the name the certificate must have (`https` only).
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    policy: AddressPolicy,
    connect_timeout: Duration,
    /// HTTP/1.1 connections kept at most.
    max_idle: usize,
    idle: Mutex<Idle>,
    /// Set at the sink's shutdown: no connection is kept from then on.
    closed: std::sync::atomic::AtomicBool,
    /// The last vetted answer of the resolver, reused for [`guard::VETTED_ANSWER_REUSE`].
    vetted: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
    /// The one lookup of the name under way, if there is one: every attempt that needs
    /// the name waits for its answer rather than start another. It runs as a task of its
    /// own: an attempt whose connect timeout ends stops waiting, not the lookup, which
    /// holds a thread of the runtime's blocking pool until the resolver answers (seconds
    /// for a name whose server drops queries), so that a dead name costs an origin one
    /// such thread at a time, not one per timed-out attempt.
    resolving: Mutex<Option<(Instant, Lookup)>>,
    /// What its server chose by ALPN last time (`None`: not known yet; never for `http`).
    speaks_h2: Mutex<Option<bool>>,
    /// The one connect under way to an origin that speaks, or may speak, HTTP/2, if there
    /// is one: see [`connect`](Origin::connect).
    connecting: Mutex<Option<Connecting>>,
}

/// A shared connect's outcome to come: the connection it made, kept in the pool, or what
/// failed.
type Connecting = tokio::sync::watch::Receiver<Option<Result<Made, AttemptError>>>;

/// The connection a shared connect made.
#[derive(Clone)]
enum Made {
    /// An HTTP/2 connection, known by its streams.
    H2(Arc<Streams>),
    /// An HTTP/1.1 connection (its server did not choose `h2`).
    H1,
}

/// A lookup's answer to come: when it came, and the addresses or what the resolver said.
type Lookup = tokio::sync::watch::Receiver<Option<(Instant, Result<Vec<SocketAddr>, String>)>>;

/// Whether an attempt that needs the name waits for `lookup`, begun at `began`, rather than
/// start another: while it is under way (its task alive: one that died tells nothing), for
/// `stuck_after` at most (a resolver that never answers, such as a stuck name-service
/// module, costs an origin one blocking thread per `stuck_after`, not every attempt from
/// then on), or when it found addresses lately (an answer that came after every attempt
/// waiting for it gave up, for a resolver slower than the connect timeout). A failed one,
/// or one that found no address, is asked again.
fn shared((began, lookup): &(Instant, Lookup), stuck_after: Duration) -> bool {
    match &*lookup.borrow() {
        None => lookup.has_changed().is_ok() && began.elapsed() < stuck_after,
        Some((at, answer)) => {
            answer.as_ref().is_ok_and(|addrs| !addrs.is_empty())
                && at.elapsed() < guard::VETTED_ANSWER_REUSE
        }
    }
}

/// Whether a kept connection last taken at `used`, with `in_flight` requests of ours on it
/// (an HTTP/2 connection's; an idle HTTP/1.1 connection has none), may carry a request at
/// `now`: taken within [`IDLE_REUSE`], or in use, however long ago it was taken.
fn reusable(used: Instant, in_flight: usize, now: Instant) -> bool {
    in_flight > 0 || now.saturating_duration_since(used) < IDLE_REUSE
}

/// The connections kept, each with when it was last used.
#[derive(Default)]
struct Idle {
    h1: Vec<(Instant, H1<Io>)>,
    h2: Vec<H2>,
}

impl Pool for Origin {
    fn new(
        url: &url::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
        policy: AddressPolicy,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Result<Origin, String> {
        let Place { host, port, tls } = Place::of(url, tls)?;
        Ok(Origin {
            host,
            port,
            tls,
            policy,
            connect_timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
            vetted: Mutex::new(None),
            resolving: Mutex::new(None),
            speaks_h2: Mutex::new(None),
            connecting: Mutex::new(None),
        })
    }

    fn prune_idle(&self, now: Instant) {
        // Taken out under the lock, dropped (closed) after it.
        let (h1, h2) = {
            let mut idle = lock(&self.idle);
            let h2 = idle
                .h2
                .extract_if(.., |c| {
                    c.send.is_closed() || !reusable(c.used, c.in_flight(), now)
                })
                .collect::<Vec<_>>();
            let h1 = idle
                .h1
                .extract_if(.., |(used, _)| !reusable(*used, 0, now))
                .collect::<Vec<_>>();
            (h1, h2)
        };
        drop((h1, h2));
    }
}

impl Origin {
    /// A kept connection that is still open and was used within [`IDLE_REUSE`], if there
    /// is one (the others are dropped, which closes them); not the HTTP/2 connection of
    /// `except` (one that just refused a stream).
    pub(super) fn checkout(&self, except: Option<&Stream>) -> Option<Conn> {
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        // Closed ones go, and idle ones unused too long.
        idle.h2
            .retain(|c| !c.send.is_closed() && reusable(c.used, c.in_flight(), now));
        // The same for HTTP/1.1 connections (dropped, which closes them), wherever they are
        // in the pile, and whether HTTP/2 connections are kept beside them or not (an origin
        // whose servers do not all offer h2): else they would hold their sockets for as long
        // as an HTTP/2 connection is kept. Seeing that one is closed costs a read only when
        // tokio heard from its socket since its last answer.
        idle.h1
            .retain_mut(|(used, h1)| reusable(*used, 0, now) && h1.is_open());
        if let Some(h2) = idle
            .h2
            .iter_mut()
            .filter(|c| !c.full() && except.is_none_or(|s| !Arc::ptr_eq(&c.streams, &s.0)))
            .min_by_key(|c| c.in_flight())
        {
            return Some(h2.take(now));
        }
        // Every HTTP/2 connection is full, or there is none: the HTTP/1.1 connection used
        // last, else a new connection (which `start` keeps beside the others when it is
        // HTTP/2).
        idle.h1.pop().map(|(_, h1)| Conn::H1(h1))
    }

    /// Stops handing out the HTTP/2 connection that carries `stream` (its server sent a
    /// `GOAWAY`): requests go on another one. Those in flight on it finish.
    pub(super) fn forget(&self, stream: &Stream) {
        self.forget_connection(&stream.0);
    }

    /// Stops handing out the HTTP/2 connection a request timed out on if it has given no
    /// answer since that request went out (to any request), and none for the connect
    /// timeout at least while requests waited on it: a peer gone without a word (a NAT or
    /// load balancer that dropped the connection's flow) would otherwise take every
    /// request of the origin, each to its timeout, until hyper's unanswered pings close it
    /// ([`H2_PING_EVERY`] twice). A connection that answers others meanwhile is only slow
    /// for this request, and stays. So does one silent for less than the connect timeout
    /// (what a new connection may take): the endpoints of an origin share its connections
    /// whatever their timeouts, and one with a short timeout on a slow receiver would
    /// otherwise drop the others' connection, a new handshake each time. Short timeouts
    /// in a row add up: the silence counts from the first request unanswered. Whether it
    /// was forgotten.
    pub(super) fn forget_if_silent(&self, sent: &Sent) -> bool {
        let since = sent.streams.unanswered_since.load(Ordering::Acquire);
        let silent = sent.streams.answered.load(Ordering::Acquire) == sent.answered
            && since != 0
            && ticks(Instant::now()).saturating_sub(since)
                >= u64::try_from(self.connect_timeout.as_nanos()).unwrap_or(u64::MAX);
        if silent {
            self.forget_connection(&sent.streams);
        }
        silent
    }

    fn forget_connection(&self, streams: &Arc<Streams>) {
        lock(&self.idle)
            .h2
            .retain(|c| !Arc::ptr_eq(&c.streams, streams));
    }

    /// Closes the connections kept (dropping a handle ends its connection once no request
    /// is on it), and keeps none from then on: the sink is shut down.
    pub(super) fn close_kept(&self) {
        let mut idle = lock(&self.idle);
        self.closed.store(true, Ordering::Release);
        *idle = Idle::default();
    }

    /// Keeps an HTTP/1.1 connection whose response was read to its end, for the next
    /// request.
    pub(super) fn checkin(&self, conn: H1<Io>) {
        let mut idle = lock(&self.idle);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if idle.h1.len() < self.max_idle {
            idle.h1.push((Instant::now(), conn));
        }
    }

    /// A connection for a request that found none with room at [`checkout`](Origin::checkout):
    /// a new one, within the connect timeout (resolved and vetted, TCP, then TLS and the
    /// protocol the server chose by ALPN), or a place on one made meanwhile; never the
    /// HTTP/2 connection of `except` (one that just refused a stream).
    ///
    /// An HTTP/2 connection carries [`H2_STREAMS`] requests: to an origin that speaks HTTP/2
    /// (or may: `https`, its ALPN not known yet), one connect at a time, shared. It runs as a
    /// task of its own, bounded by the connect timeout alone: the requests that find no
    /// connection with room wait for it and take a place on the connection it keeps, rather
    /// than each make its own and drop all but one (a cold start with a backlog, or a
    /// `GOAWAY`, made as many TLS handshakes as requests in flight). A request whose attempt
    /// ends while it waits stops waiting, not the connect, which the others still share. If
    /// the connect fails, those that waited for it fail with its error (one that began
    /// waiting late in it too, without a try of its own); if it finds HTTP/1.1, the
    /// connection it made goes to the pool, and those that do not find it there connect
    /// side by side, as to an `http` origin. The connection made has no places kept for
    /// those that waited: requests that come meanwhile take them too, and those left
    /// without one wait for the next connect. One that goes from the pool as soon as it was
    /// made (a `GOAWAY` of a server that drains) is made again once, then its waiters fail.
    pub(super) async fn connect(
        self: &Arc<Self>,
        except: Option<&Stream>,
    ) -> Result<Conn, AttemptError> {
        let mut gone_before = false;
        loop {
            let maybe_h2 = self.tls.is_some() && *lock(&self.speaks_h2) != Some(false);
            if !maybe_h2 || self.closed.load(Ordering::Acquire) {
                return self.connect_alone().await;
            }
            let mut connecting = self.join_connect();
            let ended = |_| AttemptError {
                message: "the connect ended without an outcome".to_owned(),
                retryable: true,
            };
            // `Some`, as waited for.
            let made = match connecting
                .wait_for(Option::is_some)
                .await
                .map_err(ended)?
                .clone()
            {
                Some(outcome) => outcome?,
                None => continue,
            };
            if let Some(conn) = self.checkout(except) {
                return Ok(conn);
            }
            // Its HTTP/2 connection full already (more requests waited than it carries):
            // another connect. Gone from the pool (closed, or a `GOAWAY`) as soon as it was
            // made: once more, then given up.
            if let Made::H2(streams) = made
                && !self.closed.load(Ordering::Acquire)
                && !lock(&self.idle)
                    .h2
                    .iter()
                    .any(|c| Arc::ptr_eq(&c.streams, &streams))
                && std::mem::replace(&mut gone_before, true)
            {
                return Err(AttemptError {
                    message: "the HTTP/2 connection was gone as soon as it was made, twice"
                        .to_owned(),
                    retryable: true,
                });
            }
            // Else HTTP/1.1, its connection taken, or the sink closed: the loop tells which.
        }
    }

    /// The connect under way to join, or a new one started.
    fn join_connect(self: &Arc<Self>) -> Connecting {
        let mut connecting = lock(&self.connecting);
        // One whose task is alive and has no outcome yet; else a new one.
        if let Some(under_way) = &*connecting
            && under_way.borrow().is_none()
            && under_way.has_changed().is_ok()
        {
            return under_way.clone();
        }
        let (tell, outcome) = tokio::sync::watch::channel(None);
        let origin = self.clone();
        tokio::spawn(async move {
            let outcome = origin.connect_alone().await.map(|conn| match conn {
                // Kept in the pool by `start`.
                Conn::H2 {
                    _stream: stream, ..
                } => Made::H2(stream.0.clone()),
                Conn::H1(h1) => {
                    origin.checkin(h1);
                    Made::H1
                }
            });
            let _ = tell.send(Some(outcome));
        });
        *connecting = Some(outcome.clone());
        outcome
    }

    /// A new connection, within the connect timeout, whatever others do.
    async fn connect_alone(&self) -> Result<Conn, AttemptError> {
        // What the connect met, for its error if the timeout ends it: `None` until the name's
        // addresses are known.
        let met = Mutex::new(None);
        match tokio::time::timeout(self.connect_timeout, self.connect_now(&met)).await {
            Ok(conn) => conn,
            Err(_) => Err(AttemptError {
                message: match &*lock(&met) {
                    None => unresolved(&self.host, self.connect_timeout),
                    Some(met) => met
                        .out_of_time(
                            &self.host,
                            &format!("the connect timeout ({:?})", self.connect_timeout),
                        )
                        .unwrap_or_else(|| {
                            format!("timed out connecting ({:?})", self.connect_timeout)
                        }),
                },
                retryable: true,
            }),
        }
    }

    /// [`connect_alone`](Origin::connect_alone) but for its timeout, telling `met` what each
    /// address did.
    async fn connect_now(&self, met: &Mutex<Option<Met>>) -> Result<Conn, AttemptError> {
        // From before the lookup, whose time the connect timeout covers too.
        let start = Instant::now();
        let addrs = self.resolve().await?;
        *lock(met) = Some(Met::default());
        let shown = |i: usize| self.host.shown(&addrs[i], i, addrs.len());
        for (i, addr) in addrs.iter().enumerate() {
            let left = self.connect_timeout.saturating_sub(start.elapsed());
            let share = address_share(i, addrs.len(), left);
            match tokio::time::timeout(share, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    // Requests are written whole; waiting for more would only delay them.
                    let _ = tcp.set_nodelay(true);
                    // Connected: a handshake that runs out of time is what timed out.
                    *lock(met) = Some(Met::default());
                    return self.handshake(tcp).await;
                }
                Ok(Err(e)) => lock(met).get_or_insert_default().failed(shown(i), &e),
                Err(_) => lock(met).get_or_insert_default().no_answer(shown(i), share),
            }
        }
        Err(AttemptError {
            message: lock(met).take().unwrap_or_default().message(&self.host),
            retryable: true,
        })
    }

    /// The addresses to connect to, every one passed by the SSRF guard; a name resolved to
    /// any refused address is refused as a whole (the DNS rebinding defence).
    async fn resolve(&self) -> Result<Vec<SocketAddr>, AttemptError> {
        let refused = |refusal: guard::Refusal| AttemptError {
            message: refusal.to_string(),
            retryable: false,
        };
        let name = match &self.host {
            Host::Ip(ip) => {
                guard::check_ip(*ip, &self.policy).map_err(refused)?;
                return Ok(vec![SocketAddr::new(*ip, self.port)]);
            }
            Host::Name(name) => name,
        };
        let fresh = || {
            lock(&self.vetted)
                .as_ref()
                .filter(|(at, _)| at.elapsed() < guard::VETTED_ANSWER_REUSE)
                .map(|(_, addrs)| addrs.clone())
        };
        if let Some(addrs) = fresh() {
            return Ok(addrs);
        }
        let mut lookup = {
            let mut resolving = lock(&self.resolving);
            let stuck_after = crate::guard::lookup_stuck_after(self.connect_timeout);
            match resolving.as_ref() {
                Some(under_way) if shared(under_way, stuck_after) => under_way.1.clone(),
                _ => {
                    let (tell, lookup) = tokio::sync::watch::channel(None);
                    let host = (name.clone(), self.port);
                    tokio::spawn(async move {
                        let answer = tokio::net::lookup_host(host)
                            .await
                            .map(Iterator::collect)
                            .map_err(|e| e.to_string());
                        let _ = tell.send(Some((Instant::now(), answer)));
                    });
                    *resolving = Some((Instant::now(), lookup.clone()));
                    lookup
                }
            }
        };
        let answer = match lookup.wait_for(Option::is_some).await {
            Ok(answer) => answer
                .as_ref()
                .map_or_else(|| Err("no answer".to_owned()), |(_, a)| a.clone()),
            Err(_) => Err("the lookup ended without an answer".to_owned()),
        };
        // Done: the next attempt that finds no vetted answer (this one failed, or it is
        // past its reuse) asks again. Another may have started one meanwhile: leave it.
        {
            let mut resolving = lock(&self.resolving);
            if resolving
                .as_ref()
                .is_some_and(|(_, l)| l.same_channel(&lookup))
            {
                *resolving = None;
            }
        }
        let addrs = answer.map_err(|e| AttemptError {
            message: format!("cannot resolve '{name}': {e}"),
            retryable: true,
        })?;
        for addr in &addrs {
            guard::check_ip(addr.ip(), &self.policy).map_err(|refusal| {
                refusal.log_resolved(name);
                AttemptError {
                    message: refusal.of_name(name),
                    retryable: false,
                }
            })?;
        }
        // No address is no answer to keep: the next attempt asks again.
        if !addrs.is_empty() {
            *lock(&self.vetted) = Some((Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }

    async fn handshake(&self, tcp: tokio::net::TcpStream) -> Result<Conn, AttemptError> {
        let Some((config, name)) = &self.tls else {
            return self.start(Io::Tcp(tcp), false).await;
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| AttemptError {
                message: handshake_failed(&e),
                retryable: true,
            })?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        *lock(&self.speaks_h2) = Some(h2);
        self.start(Io::Tls(Box::new(tls)), h2).await
    }

    /// Starts the connection: HTTP/1.1, or hyper's HTTP/2 with its connection task running
    /// beside the requests, kept in the pool beside the others.
    async fn start(&self, io: Io, h2: bool) -> Result<Conn, AttemptError> {
        if !h2 {
            return Ok(Conn::H1(H1::new(io)));
        }
        let failed = |e: hyper::Error| AttemptError {
            message: format!("connection failed: {e}"),
            retryable: true,
        };
        let io = TokioIo::new(io);
        let (send, conn) = http2::Builder::new(TokioExecutor::new())
            // A peer gone without a word (a host down, a NAT that forgot the
            // connection) is noticed by its unanswered pings, and the connection
            // closed, rather than kept for every request to time out on.
            .timer(TokioTimer::new())
            // Only while requests are in flight: an idle connection is left for the
            // server to close when it wants (see IDLE_REUSE).
            .keep_alive_interval(H2_PING_EVERY)
            .keep_alive_timeout(H2_PING_EVERY)
            .keep_alive_while_idle(false)
            // What a response may send before it is read: no more than the transport
            // reads of it (the protocol's own default), a few streams' worth in all.
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_STREAM_WINDOW * 16)
            .max_header_list_size(crate::h1::MAX_H2_HEADER_LIST)
            .handshake(io)
            .await
            .map_err(failed)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!(target: deskhook::LOG_TARGET, "an HTTP/2 connection ended: {e}");
            }
        });
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        if self.closed.load(Ordering::Acquire) {
            // This request's alone, closed when it ends.
            let streams = Arc::default();
            return Ok(Conn::H2 {
                _stream: Stream::on(&streams),
                send,
            });
        }
        idle.h2.push(H2 {
            send,
            streams: Arc::default(),
            used: now,
        });
        let last = idle.h2.len() - 1;
        Ok(idle.h2[last].take(now))
    }
}

#[cfg(test)]
#[path = "origin_tests.rs"]
mod tests;
