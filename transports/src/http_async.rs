//! Async HTTP delivery over reqwest on tokio: [`AsyncHttpSink`].
//!
//! The same engine as the blocking transport (queues, per-ticket order, retries,
//! `Retry-After`, 410, breaker, dead letters, observer, stats, the guard); the workers are
//! tokio tasks, `workers` of them per endpoint (default 16 here), each with one request in
//! flight, over a pooled client that speaks HTTP/1.1 and HTTP/2 (by ALPN on `https`).
//!
//! Built inside a runtime, the tasks live on that runtime; built outside one, the sink makes a
//! small runtime of its own (two worker threads) that the guard shuts down. `emit` never
//! awaits the network: the sink only queues.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use deskhook::Dispatcher;
//! use deskhook_transports::delivery::Endpoint;
//! use deskhook_transports::http_async::AsyncHttpSink;
//!
//! let (http, guard) = AsyncHttpSink::builder()
//!     .endpoint(Endpoint::new("crm", "https://crm.example.com/hooks")?)
//!     .build_async()?;
//! deskhook::set_dispatcher(Dispatcher::builder().async_sink("http", http).build())?;
//! // … handlers emit; at shutdown:
//! guard.shutdown_async(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deskhook::Emitted;

use crate::delivery::{
    AsyncTransport, AttemptError, DeadLetter, DeliveryGuard, Endpoint, EndpointStats, Engine,
    RESPONSE_READ_LIMIT, Receipt, Response, SinkBuilder, parse_retry_after, spawn,
};
use crate::error::Error;
use crate::guard::{self, AddressPolicy};

/// Concurrent requests per endpoint when the endpoint does not set `workers`.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// A sink that delivers events to HTTP endpoints from tokio tasks.
///
/// It implements both [`EventSink`](deskhook::EventSink) (for `emit`) and [`AsyncEventSink`](deskhook::AsyncEventSink) (for `emit_async`);
/// either way `send` only queues. Cloning is cheap and clones share the queues.
#[derive(Clone, Debug)]
pub struct AsyncHttpSink {
    engine: Arc<Engine>,
}

impl AsyncHttpSink {
    /// A builder; finish it with [`SinkBuilder::build_async`].
    pub fn builder() -> SinkBuilder {
        SinkBuilder::new()
    }

    /// Counters and state of every endpoint, in the order they were added.
    pub fn stats(&self) -> Vec<EndpointStats> {
        self.engine.stats()
    }

    /// Waits until everything queued is delivered or dead-lettered, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Undelivered`] with what is still queued and in flight.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush_async(timeout).await
    }

    /// Queues an event like `emit` but does not wait for the disk: the [`Receipt`] says when
    /// the event is durable. (It waits only while the spool's writer is 8192 events behind,
    /// so that memory stays bounded.) For a sink with a spool (see `SinkBuilder::spool`); without
    /// one, the event is queued in memory and the receipt settles at once with an error
    /// saying that nothing is durable.
    pub fn send_with_receipt(&self, event: &Emitted<'_>) -> Receipt {
        self.engine.enqueue_with_receipt(event)
    }

    /// Queues a dead letter again: same id (`webhook-id`) and body, attempts from the start.
    ///
    /// # Errors
    ///
    /// As [`HttpSink::redeliver`](crate::http_blocking::HttpSink::redeliver).
    pub fn redeliver(&self, letter: &DeadLetter) -> Result<(), Error> {
        self.engine.redeliver(letter)
    }
}

crate::delivery::engine_sinks!(AsyncHttpSink);

impl SinkBuilder {
    /// Checks the endpoints, opens the dead-letter file, builds one HTTP client per endpoint
    /// and starts the delivery tasks: on the current tokio runtime when called inside one,
    /// otherwise on a runtime of the sink's own that the guard shuts down.
    ///
    /// Keep the guard for as long as events should be delivered; in async code end with
    /// `guard.shutdown_async(timeout).await`.
    ///
    /// # Errors
    ///
    /// As [`SinkBuilder::build`]; [`Error::Config`] when the HTTP client or the runtime
    /// cannot be made.
    pub fn build_async(self) -> Result<(AsyncHttpSink, DeliveryGuard), Error> {
        let (engine, endpoints, shutdown_timeout) = self.engine(DEFAULT_CONCURRENCY)?;
        let clients = endpoints
            .iter()
            .map(|endpoint| {
                Ok(EndpointClient {
                    client: client_for(endpoint)?,
                    url: endpoint.url.clone(),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let transport = Arc::new(ReqwestTransport { clients });
        let (handle, owned) = spawn::runtime_here("deskhook-http-async")?;
        spawn::spawn_workers(&engine, &transport, &handle);
        let guard = DeliveryGuard::new(engine.clone(), shutdown_timeout);
        let guard = match owned {
            Some(runtime) => guard.owning(runtime),
            None => guard,
        };
        Ok((AsyncHttpSink { engine }, guard))
    }
}

struct EndpointClient {
    client: reqwest::Client,
    url: url::Url,
}

struct ReqwestTransport {
    clients: Vec<EndpointClient>,
}

/// A reqwest resolver that vets every address a name resolves to with the SSRF guard; the
/// connection then goes only to those addresses. IP-literal hosts skip resolvers, so they
/// are checked when the sink is built (an endpoint's URL does not change).
struct GuardedDns {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                guard::check_ip(addr.ip(), &policy)?;
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// TLS with rustls and the ring provider, the Mozilla roots of webpki-roots (or the endpoint's
/// own CA), and ALPN for HTTP/2 and HTTP/1.1; set per client, so nothing process-wide is
/// installed.
fn tls_config(endpoint: &Endpoint) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match &endpoint.ca_certificates {
        Some(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| Error::InvalidEndpoint {
                        name: endpoint.name.clone(),
                        message: format!("a CA certificate cannot be used: {e}"),
                    })?;
            }
            roots
        }
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn client_for(endpoint: &Endpoint) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(endpoint)?)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(endpoint.connect_timeout)
        .timeout(endpoint.timeout)
        .user_agent(crate::delivery::USER_AGENT)
        .pool_max_idle_per_host(endpoint.workers.unwrap_or(DEFAULT_CONCURRENCY).max(1))
        .dns_resolver(GuardedDns {
            policy: endpoint.address_policy.clone(),
        })
        .build()
        .map_err(|e| Error::InvalidEndpoint {
            name: endpoint.name.clone(),
            message: format!("cannot make its HTTP client: {e}"),
        })
}

impl AsyncTransport for ReqwestTransport {
    async fn post(
        &self,
        endpoint: usize,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let target = &self.clients[endpoint];
        let mut request = target.client.post(target.url.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.body(body.clone()).send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut snippet = Vec::new();
        // Read at most RESPONSE_READ_LIMIT bytes; a body that fails midway does not change
        // what the status says.
        while (snippet.len() as u64) < RESPONSE_READ_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                _ => break,
            }
        }
        Ok(Response {
            status,
            retry_after,
            snippet,
        })
    }
}

fn classify(err: reqwest::Error) -> AttemptError {
    // A refusal of the guard travels inside the connect error's sources.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<guard::Refusal>() {
            return AttemptError {
                message: refusal.to_string(),
                retryable: false,
            };
        }
        source = e.source();
    }
    let retryable = !err.is_builder();
    let message = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        let mut text = "connection failed".to_owned();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            text = format!("connection failed: {e}");
            source = e.source();
        }
        text
    } else {
        err.to_string()
    };
    AttemptError { message, retryable }
}
