//! Async HTTP delivery over reqwest on tokio: [`AsyncHttpSink`].
//!
//! The same engine as the blocking transport (registry, queues, per-ticket order, retries,
//! `Retry-After`, 410, breaker, rate limits, dead letters, observer, stats, the guard); the
//! workers are tokio tasks, one per request in flight (up to 16 per endpoint by default and
//! the sink's `max_in_flight` in all), over clients shared by the endpoints with the same
//! connection settings, pooling connections per origin, speaking HTTP/1.1 and HTTP/2 (by
//! ALPN on `https`).
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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use crate::delivery::{
    AsyncTransport, AttemptError, ClientKey, Connector, DeliveryGuard, DeliverySink, Endpoint,
    RESPONSE_READ_LIMIT, Response, SinkBuilder, Target, lock, parse_retry_after, spawn,
};
use crate::error::Error;
use crate::guard::{self, AddressPolicy};

/// Requests in flight per endpoint when the endpoint does not set `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// The sink of the async transport: a [`DeliverySink`] whose workers are tokio tasks making
/// requests with reqwest. `AsyncHttpSink::builder()` starts one; `.build_async()` runs it.
pub type AsyncHttpSink = DeliverySink;

impl SinkBuilder {
    /// Checks the settings and the endpoints, opens the dead-letter file (or the spool) and
    /// starts the async transport: one task per request in flight (up to the sink's
    /// `max_in_flight`), over HTTP clients shared by every endpoint with the same connection
    /// settings; on the current tokio runtime when called inside one, otherwise on a runtime
    /// of the sink's own (two threads) that the guard shuts down.
    ///
    /// Keep the guard for as long as events should be delivered; in async code end with
    /// `guard.shutdown_async(timeout).await`.
    ///
    /// # Errors
    ///
    /// As [`SinkBuilder::build`]; [`Error::Config`] when the HTTP client or the runtime
    /// cannot be made.
    pub fn build_async(self) -> Result<(AsyncHttpSink, DeliveryGuard), Error> {
        let connector = ReqwestConnector {
            idle_per_host: self.config.max_in_flight,
            clients: Mutex::new(HashMap::new()),
            public_tls: OnceLock::new(),
        };
        let (engine, shutdown_timeout) = self.start_engine(Box::new(connector))?;
        let (handle, owned) = spawn::runtime_here("deskhook-http-async")?;
        spawn::start(&engine, Arc::new(ReqwestTransport), &handle);
        let guard = DeliveryGuard::new(engine.clone(), shutdown_timeout);
        let guard = match owned {
            Some(runtime) => guard.owning(runtime),
            None => guard,
        };
        Ok((DeliverySink::new(engine), guard))
    }
}

/// Makes the async transport's targets: one reqwest client (a connection pool per origin)
/// per [`ClientKey`], and one TLS configuration for every client with the public roots.
struct ReqwestConnector {
    idle_per_host: usize,
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    public_tls: OnceLock<rustls::ClientConfig>,
}

/// An endpoint as the async transport sends to it.
struct ReqwestTarget {
    client: reqwest::Client,
    url: url::Url,
}

impl Connector for ReqwestConnector {
    fn target(&self, endpoint: &Endpoint) -> Result<Target, Error> {
        endpoint.check_http()?;
        let key = ClientKey::of(endpoint);
        let known = lock(&self.clients).get(&key).cloned();
        let client = match known {
            Some(client) => client,
            None => {
                let client = self.client_for(&key, endpoint)?;
                lock(&self.clients).entry(key).or_insert(client).clone()
            }
        };
        Ok(Arc::new(ReqwestTarget {
            client,
            url: endpoint.url.clone(),
        }))
    }

    fn default_max_in_flight(&self) -> usize {
        DEFAULT_MAX_IN_FLIGHT
    }
}

impl ReqwestConnector {
    fn client_for(&self, key: &ClientKey, endpoint: &Endpoint) -> Result<reqwest::Client, Error> {
        let tls = match &endpoint.ca_certificates {
            Some(certs) => tls_config(Some(certs), &endpoint.name)?,
            None => match self.public_tls.get() {
                Some(tls) => tls.clone(),
                None => {
                    let tls = tls_config(None, &endpoint.name)?;
                    let _ = self.public_tls.set(tls.clone());
                    tls
                }
            },
        };
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(key.connect_timeout)
            .timeout(key.timeout)
            .user_agent(crate::delivery::USER_AGENT)
            .pool_max_idle_per_host(self.idle_per_host.max(1))
            .dns_resolver(GuardedDns {
                policy: key.policy.clone(),
            })
            .build()
            .map_err(|e| Error::InvalidEndpoint {
                name: endpoint.name.clone(),
                message: format!("cannot make its HTTP client: {e}"),
            })
    }
}

struct ReqwestTransport;

/// A reqwest resolver that vets every address a name resolves to with the SSRF guard; the
/// connection then goes only to those addresses. IP-literal hosts skip resolvers, so they
/// are checked when the endpoint is registered or changed (`Endpoint::check_http`).
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

/// TLS with rustls and the ring provider, the Mozilla roots of webpki-roots (or an
/// endpoint's own CA), and ALPN for HTTP/2 and HTTP/1.1; set per client, so nothing
/// process-wide is installed.
fn tls_config(
    certs: Option<&Vec<rustls_pki_types::CertificateDer<'static>>>,
    name: &str,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match certs {
        Some(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| Error::InvalidEndpoint {
                        name: name.to_owned(),
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

impl AsyncTransport for ReqwestTransport {
    async fn post(
        &self,
        target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let Some(target) = target.downcast_ref::<ReqwestTarget>() else {
            return Err(AttemptError {
                message: "the endpoint was not made for the async transport".to_owned(),
                retryable: false,
            });
        };
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
