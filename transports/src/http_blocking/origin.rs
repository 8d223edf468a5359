//! The blocking transport's connections: one pool per origin (scheme, host, port, and the
//! connection settings of the endpoints that share it) of HTTP/1.1 connections kept alive
//! between requests, made over std TCP (and TLS with rustls) only to addresses the SSRF
//! guard vetted: no proxy, no redirect.
//!
//! A name is looked up on a thread of its own, as std's lookup cannot be given a timeout:
//! an attempt waits for it no longer than its connect timeout, and a lookup under way is
//! shared by every attempt that needs the name, so that a name whose server drops queries
//! costs an origin one such thread at a time, not one per worker. Each vetted address is
//! tried in turn, each but the last given half of the time left, the last all of it; an
//! address refused or unreachable, or slow to connect, gives way to the next.
//!
//! What it does not do: decide retries (the engine does), or keep a connection whose response
//! body was not read to its end (it is closed instead).

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;

use super::io::{Blocking, block_on};
use crate::delivery::{AttemptError, lock};
use crate::guard::{self, AddressPolicy};
use crate::h1::origins::{Host, Met, Place, Pool, address_share, unresolved};
use crate::h1::tls::handshake_failed;
use crate::h1::{H1, IDLE_REUSE, Io};

/// One HTTP/1.1 connection of the blocking transport.
pub(super) type Conn = H1<Io<Blocking>>;

/// Where requests to one origin go, and the connections kept to it.
pub(super) struct Origin {
    host: Host,
    port: u16,
    /// The TLS settings and the name the certificate must have (`https` only).
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    policy: AddressPolicy,
    connect_timeout: Duration,
    /// Connections kept at most.
    max_idle: usize,
    /// The connections kept, each with when it was last used.
    idle: Mutex<Vec<(Instant, Conn)>>,
    /// Set at the sink's shutdown: no connection is kept from then on.
    closed: AtomicBool,
    /// The last vetted answer of the resolver, reused for [`guard::VETTED_ANSWER_REUSE`].
    vetted: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
    /// The one lookup of the name under way (or its answer), if there is one.
    resolving: Mutex<Option<Arc<Lookup>>>,
}

/// What a lookup found: the addresses, or what the resolver said.
type Found = Result<Vec<SocketAddr>, String>;

/// A lookup on its thread: when it began, and its answer once it came (when, and what it
/// found).
struct Lookup {
    began: Instant,
    answer: Mutex<Option<(Instant, Found)>>,
    /// Told when the answer comes.
    came: Condvar,
}

impl Lookup {
    /// Whether an attempt that needs the name waits for it rather than start another: while
    /// it is under way, for `stuck_after` at most (a resolver that never answers, such as a
    /// stuck name-service module, costs an origin one thread per `stuck_after`, not every
    /// attempt from then on), or when it found the addresses lately (an answer that came
    /// after every attempt waiting for it gave up). A failed one is asked again.
    fn shared(&self, stuck_after: Duration) -> bool {
        match &*lock(&self.answer) {
            None => self.began.elapsed() < stuck_after,
            Some((at, answer)) => answer.is_ok() && at.elapsed() < guard::VETTED_ANSWER_REUSE,
        }
    }

    /// Waits for the answer until `deadline`; `None` if it did not come.
    fn wait(&self, deadline: Instant) -> Option<Found> {
        let mut answer = lock(&self.answer);
        loop {
            if let Some((_, found)) = &*answer {
                return Some(found.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            answer = match self.came.wait_timeout(answer, left) {
                Ok((answer, _)) => answer,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Whether a kept connection last used at `used` may carry a request at `now`.
fn reusable(used: Instant, now: Instant) -> bool {
    now.saturating_duration_since(used) < IDLE_REUSE
}

/// Why a connect did not give a connection.
enum NotConnected {
    /// The connect timeout, or the attempt's deadline, passed.
    TimedOut,
    /// As `TimedOut`, with the name's lookup not answered yet.
    Unresolved,
    /// As `TimedOut`, after an address answered with an error (said with the timeout).
    OutOfTime(Met),
    /// Anything else, as the attempt reports it.
    Failed(AttemptError),
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
            closed: AtomicBool::new(false),
            vetted: Mutex::new(None),
            resolving: Mutex::new(None),
        })
    }

    fn prune_idle(&self, now: Instant) {
        // Taken out under the lock, dropped (closed) after it.
        let stale = lock(&self.idle)
            .extract_if(.., |(used, _)| !reusable(*used, now))
            .collect::<Vec<_>>();
        drop(stale);
    }
}

impl Origin {
    /// The kept connection used last that is still open and was used within
    /// [`IDLE_REUSE`], if there is one; those found closed, or unused too long, are dropped
    /// (which closes them). Only the one taken is probed (a read that does not wait), out of
    /// the pool's lock.
    pub(super) fn checkout(&self) -> Option<Conn> {
        let now = Instant::now();
        loop {
            let mut conn = {
                let mut idle = lock(&self.idle);
                idle.retain(|(used, _)| reusable(*used, now));
                idle.pop()?.1
            };
            if probe(&mut conn) {
                return Some(conn);
            }
        }
    }

    /// Keeps a connection whose response was read to its end, for the next request.
    pub(super) fn checkin(&self, conn: Conn) {
        let mut idle = lock(&self.idle);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if idle.len() < self.max_idle {
            idle.push((Instant::now(), conn));
        }
    }

    /// Closes the connections kept, and keeps none from then on: the sink is shut down.
    pub(super) fn close_kept(&self) {
        let mut idle = lock(&self.idle);
        self.closed.store(true, Ordering::Release);
        idle.clear();
    }

    /// A new connection, within the connect timeout and before `deadline` (the attempt's,
    /// whose `timeout` it names when it is what ended the connect): resolved and vetted, TCP,
    /// then TLS.
    pub(super) fn connect(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Conn, AttemptError> {
        let by = Instant::now()
            .checked_add(self.connect_timeout)
            .map_or(deadline, |by| by.min(deadline));
        let message = match self.connect_by(by) {
            Ok(conn) => return Ok(conn),
            Err(NotConnected::Failed(e)) => return Err(e),
            Err(NotConnected::OutOfTime(met)) => {
                let ended_by = match Instant::now() >= deadline {
                    true => format!("the attempt's timeout ({timeout:?})"),
                    false => format!("the connect timeout ({:?})", self.connect_timeout),
                };
                let late = met.out_of_time(&self.host, &ended_by);
                late.unwrap_or_else(|| met.message(&self.host))
            }
            Err(_) if Instant::now() >= deadline => crate::h1::no_connection_in_time(timeout),
            Err(NotConnected::Unresolved) => unresolved(&self.host, self.connect_timeout),
            Err(_) => format!("timed out connecting ({:?})", self.connect_timeout),
        };
        Err(AttemptError {
            message,
            retryable: true,
        })
    }

    fn connect_by(&self, by: Instant) -> Result<Conn, NotConnected> {
        let addrs = self.resolve(by)?;
        self.connect_any(&addrs, by)
    }

    /// A connection to the first of `addrs` that takes one by `by`.
    fn connect_any(&self, addrs: &[SocketAddr], by: Instant) -> Result<Conn, NotConnected> {
        // Whatever one address answered (refused, no route, denied by a local rule for its
        // family), the next may connect.
        let mut met = Met::default();
        let shown = |i: usize| self.host.shown(&addrs[i], i, addrs.len());
        for (i, addr) in addrs.iter().enumerate() {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let share = address_share(i, addrs.len(), left);
            match TcpStream::connect_timeout(addr, share) {
                Ok(tcp) => {
                    // Requests are written whole; waiting for more would only delay them.
                    let _ = tcp.set_nodelay(true);
                    return self.start(Blocking::new(tcp, by));
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => met.no_answer(shown(i), share),
                Err(e) => met.failed(shown(i), &e),
            }
        }
        if by <= Instant::now() {
            return Err(match met.answered() {
                true => NotConnected::OutOfTime(met),
                false => NotConnected::TimedOut,
            });
        }
        Err(failed(met.message(&self.host)))
    }

    /// The HTTP/1.1 connection over `tcp`: after a TLS handshake for `https`.
    fn start(&self, tcp: Blocking) -> Result<Conn, NotConnected> {
        let Some((config, name)) = &self.tls else {
            return Ok(H1::new(Io::Tcp(tcp)));
        };
        let connecting =
            tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), tcp);
        match block_on(connecting) {
            Ok(tls) => Ok(H1::new(Io::Tls(Box::new(tls)))),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(NotConnected::TimedOut),
            Err(e) => Err(failed(handshake_failed(&e))),
        }
    }

    /// The addresses to connect to, every one passed by the SSRF guard; a name resolved to
    /// any refused address is refused as a whole (the DNS rebinding defence).
    fn resolve(&self, by: Instant) -> Result<Vec<SocketAddr>, NotConnected> {
        let refused_for = |message: String| {
            NotConnected::Failed(AttemptError {
                message,
                retryable: false,
            })
        };
        let refused = |refusal: guard::Refusal| refused_for(refusal.to_string());
        let name = match &self.host {
            Host::Ip(ip) => {
                guard::check_ip(*ip, &self.policy).map_err(refused)?;
                return Ok(vec![SocketAddr::new(*ip, self.port)]);
            }
            Host::Name(name) => name,
        };
        let fresh = lock(&self.vetted)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < guard::VETTED_ANSWER_REUSE)
            .map(|(_, addrs)| addrs.clone());
        if let Some(addrs) = fresh {
            return Ok(addrs);
        }
        let lookup = {
            let mut resolving = lock(&self.resolving);
            match resolving.as_ref() {
                Some(lookup) if lookup.shared(guard::lookup_stuck_after(self.connect_timeout)) => {
                    lookup.clone()
                }
                _ => {
                    let lookup = Arc::new(Lookup {
                        began: Instant::now(),
                        answer: Mutex::new(None),
                        came: Condvar::new(),
                    });
                    let on_thread = lookup.clone();
                    let host = (name.clone(), self.port);
                    std::thread::Builder::new()
                        .name("deskhook-resolve".to_owned())
                        .spawn(move || {
                            let answer = host
                                .to_socket_addrs()
                                .map(Iterator::collect)
                                .map_err(|e| e.to_string());
                            *lock(&on_thread.answer) = Some((Instant::now(), answer));
                            on_thread.came.notify_all();
                        })
                        .map_err(|e| {
                            failed(format!(
                                "cannot resolve '{name}': cannot start a thread: {e}"
                            ))
                        })?;
                    *resolving = Some(lookup.clone());
                    lookup
                }
            }
        };
        let answer = lookup.wait(by).ok_or(NotConnected::Unresolved)?;
        // Done: the next attempt that finds no vetted answer (this one failed, or it is
        // past its reuse) asks again. Another may have started one meanwhile: leave it.
        {
            let mut resolving = lock(&self.resolving);
            if resolving.as_ref().is_some_and(|l| Arc::ptr_eq(l, &lookup)) {
                *resolving = None;
            }
        }
        let addrs = answer.map_err(|e| failed(format!("cannot resolve '{name}': {e}")))?;
        for addr in &addrs {
            guard::check_ip(addr.ip(), &self.policy).map_err(|refusal| {
                refusal.log_resolved(name);
                refused_for(refusal.of_name(name))
            })?;
        }
        // No address is no answer to keep: the next attempt asks again.
        if !addrs.is_empty() {
            *lock(&self.vetted) = Some((Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }
}

/// A retryable failure saying `message`.
fn failed(message: String) -> NotConnected {
    NotConnected::Failed(AttemptError {
        message,
        retryable: true,
    })
}

/// Whether a kept connection can carry a request: the server did not close it, and sent
/// nothing unasked (a read that does not wait).
pub(super) fn probe(conn: &mut Conn) -> bool {
    conn.io_mut().tcp_mut().looking = true;
    let open = conn.is_open();
    conn.io_mut().tcp_mut().looking = false;
    open
}

#[cfg(test)]
mod tests;
