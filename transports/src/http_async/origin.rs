//! The async transport's connections: one pool per origin (scheme, host, port, and the
//! connection settings of the endpoints that share it), holding HTTP/1.1 connections kept
//! alive between requests, or the one HTTP/2 connection every request shares when the server
//! chose `h2` by ALPN. Connections are made over TCP (and TLS with rustls) only to addresses
//! the SSRF guard vetted, with hyper's `client::conn`: no proxy, no redirect, no pool of
//! hyper's own.
//!
//! What it does not do: decide retries (the engine does), or keep a connection whose response
//! body was not read to its end (it is closed instead).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;

use crate::delivery::{AttemptError, lock};
use crate::guard::{self, AddressPolicy};

/// The body of every request: the event's bytes, shared, not copied.
pub(super) type Body = Full<Bytes>;

/// A connection taken from the pool or just made.
pub(super) enum Conn {
    /// An HTTP/1.1 connection, this request's alone until it goes back to the pool.
    H1(http1::SendRequest<Body>),
    /// A handle on the origin's HTTP/2 connection, shared with every other request.
    H2(http2::SendRequest<Body>),
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
    /// The last vetted answer of the resolver, reused for [`guard::VETTED_ANSWER_REUSE`].
    vetted: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
}

/// An origin's host: an address, or a name to resolve.
enum Host {
    Ip(IpAddr),
    Name(String),
}

#[derive(Default)]
struct Idle {
    h1: Vec<http1::SendRequest<Body>>,
    h2: Option<http2::SendRequest<Body>>,
}

impl Origin {
    /// The origin of `url` (checked: `http` or `https`, with a host).
    pub(super) fn new(
        url: &url::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
        policy: AddressPolicy,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Result<Origin, String> {
        let (host, name) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (Host::Ip(ip.into()), ServerName::from(IpAddr::from(ip))),
            Some(url::Host::Ipv6(ip)) => (Host::Ip(ip.into()), ServerName::from(IpAddr::from(ip))),
            Some(url::Host::Domain(domain)) => (
                Host::Name(domain.to_owned()),
                ServerName::try_from(domain.to_owned())
                    .map_err(|e| format!("'{domain}' cannot be a TLS server name: {e}"))?,
            ),
            None => return Err("the URL has no host".to_owned()),
        };
        let port = url
            .port_or_known_default()
            .ok_or("the URL has no port and its scheme no default one")?;
        let tls = match url.scheme() {
            "https" => Some((tls.ok_or("an https URL needs TLS settings")?, name)),
            _ => None,
        };
        Ok(Origin {
            host,
            port,
            tls,
            policy,
            connect_timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::default(),
            vetted: Mutex::new(None),
        })
    }

    /// A kept connection that is still open, if there is one.
    pub(super) fn checkout(&self) -> Option<Conn> {
        let mut idle = lock(&self.idle);
        if let Some(h2) = &idle.h2 {
            if !h2.is_closed() {
                return Some(Conn::H2(h2.clone()));
            }
            idle.h2 = None;
        }
        while let Some(h1) = idle.h1.pop() {
            if !h1.is_closed() {
                return Some(Conn::H1(h1));
            }
        }
        None
    }

    /// Keeps an HTTP/1.1 connection whose response was read to its end, for the next
    /// request.
    pub(super) fn checkin(&self, conn: http1::SendRequest<Body>) {
        if conn.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.h1.len() < self.max_idle {
            idle.h1.push(conn);
        }
    }

    /// A new connection, within the connect timeout: resolved and vetted, TCP, then TLS and
    /// the protocol the server chose by ALPN.
    pub(super) async fn connect(&self) -> Result<Conn, AttemptError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_now()).await {
            Ok(conn) => conn,
            Err(_) => Err(AttemptError {
                message: format!("timed out connecting ({:?})", self.connect_timeout),
                retryable: true,
            }),
        }
    }

    async fn connect_now(&self) -> Result<Conn, AttemptError> {
        let mut last = None;
        for addr in self.resolve().await? {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => {
                    // Requests are written whole; waiting for more would only delay them.
                    let _ = tcp.set_nodelay(true);
                    return self.handshake(tcp).await;
                }
                Err(e) => last = Some(e),
            }
        }
        Err(AttemptError {
            message: match last {
                Some(e) => format!("connection failed: {e}"),
                None => "connection failed: the name resolved to no address".to_owned(),
            },
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
        if let Some((at, addrs)) = &*lock(&self.vetted)
            && at.elapsed() < guard::VETTED_ANSWER_REUSE
        {
            return Ok(addrs.clone());
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), self.port))
            .await
            .map_err(|e| AttemptError {
                message: format!("cannot resolve '{name}': {e}"),
                retryable: true,
            })?
            .collect();
        for addr in &addrs {
            guard::check_ip(addr.ip(), &self.policy).map_err(refused)?;
        }
        *lock(&self.vetted) = Some((Instant::now(), addrs.clone()));
        Ok(addrs)
    }

    async fn handshake(&self, tcp: tokio::net::TcpStream) -> Result<Conn, AttemptError> {
        let Some((config, name)) = &self.tls else {
            return self.start(tcp, false).await;
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| AttemptError {
                message: format!("TLS handshake failed: {e}"),
                retryable: true,
            })?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        self.start(tls, h2).await
    }

    /// Starts hyper on `io`; its connection task runs beside the requests.
    async fn start<IO>(&self, io: IO, h2: bool) -> Result<Conn, AttemptError>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let failed = |e: hyper::Error| AttemptError {
            message: format!("connection failed: {e}"),
            retryable: true,
        };
        let io = TokioIo::new(io);
        if h2 {
            let (send, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(failed)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    log::debug!(target: deskhook::LOG_TARGET, "an HTTP/2 connection ended: {e}");
                }
            });
            let mut idle = lock(&self.idle);
            // Requests that connected at the same time share the first connection kept.
            let kept = idle.h2.get_or_insert(send);
            Ok(Conn::H2(kept.clone()))
        } else {
            let (send, conn) = http1::Builder::new().handshake(io).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    log::debug!(target: deskhook::LOG_TARGET, "an HTTP/1.1 connection ended: {e}");
                }
            });
            Ok(Conn::H1(send))
        }
    }
}
