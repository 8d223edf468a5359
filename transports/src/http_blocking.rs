//! Blocking HTTP delivery over ureq: [`HttpSink`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use deskhook::Dispatcher;
//! use deskhook_transports::delivery::Endpoint;
//! use deskhook_transports::http_blocking::HttpSink;
//!
//! let (http, _guard) = HttpSink::builder()
//!     .endpoint(Endpoint::new("crm", "https://crm.example.com/hooks")?.secret(deskhook::Secret::generate()?))
//!     .build()?;
//! deskhook::set_dispatcher(Dispatcher::builder().sink("http", http).build())?;
//! // … the helpdesk runs and emits; dropping `_guard` at exit flushes (5 s by default).
//! # Ok(()) }
//! ```

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use deskhook::policy::{BreakerPolicy, OverflowPolicy};
use deskhook::{Emitted, EventSink};

use crate::delivery::{
    AttemptError, DeadLetter, DeliveryConfig, Endpoint, EndpointStats, Engine, Observer,
    RESPONSE_READ_LIMIT, Response, Route, Transport,
};
use crate::error::Error;
use crate::guard;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("deskhook/", env!("CARGO_PKG_VERSION"));

/// A sink that delivers events to HTTP endpoints from worker threads.
///
/// `send` (called by `emit`) only queues: one job per subscribed endpoint. Cloning is cheap and
/// clones share the queues.
#[derive(Clone, Debug)]
pub struct HttpSink {
    engine: Arc<Engine>,
}

impl HttpSink {
    /// A builder.
    pub fn builder() -> HttpSinkBuilder {
        HttpSinkBuilder {
            endpoints: Vec::new(),
            config: DeliveryConfig::default(),
            observer: None,
        }
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
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush(timeout)
    }

    /// Queues a dead letter again: same id (`webhook-id`) and body, attempts from the start.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the dead letter names an endpoint this sink does not have, or
    /// its queue refuses it.
    pub fn redeliver(&self, letter: &DeadLetter) -> Result<(), Error> {
        self.engine.redeliver(letter)
    }
}

impl EventSink for HttpSink {
    fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        self.engine.enqueue(event)
    }

    fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        self.engine.flush(timeout).map_err(deskhook::Error::sink)
    }
}

/// Builds an [`HttpSink`]; see [`HttpSink::builder`].
pub struct HttpSinkBuilder {
    endpoints: Vec<Endpoint>,
    config: DeliveryConfig,
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for HttpSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSinkBuilder")
            .field("endpoints", &self.endpoints)
            .field("config", &self.config)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl HttpSinkBuilder {
    /// Adds an endpoint.
    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Replaces all delivery settings at once.
    #[must_use]
    pub fn config(mut self, config: DeliveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Most events waiting per endpoint. Defaults to 10 000.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = capacity;
        self
    }

    /// What a full queue does. Defaults to [`OverflowPolicy::DropNewest`].
    #[must_use]
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.config.overflow = policy;
        self
    }

    /// The dead-letter file. Defaults to `deskhook-dead-letters.jsonl` in the working
    /// directory.
    #[must_use]
    pub fn dead_letter_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.dead_letter_path = path.into();
        self
    }

    /// The circuit breaker. Defaults to 10 failures in a row, 30 s cool-down.
    #[must_use]
    pub fn breaker(mut self, breaker: BreakerPolicy) -> Self {
        self.config.breaker = breaker;
        self
    }

    /// The longest `Retry-After` honoured. Defaults to 1 h.
    #[must_use]
    pub fn retry_after_max(mut self, max: Duration) -> Self {
        self.config.retry_after_max = max;
        self
    }

    /// How long dropping the guard waits for delivery. Defaults to 5 s.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Largest body sent. Defaults to 1 MiB.
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }

    /// Receives one record per attempt. Defaults to none.
    #[must_use]
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Checks the endpoints, opens the dead-letter file, and starts the workers.
    ///
    /// Keep the guard for as long as events should be delivered: bind it to a name
    /// (`let (sink, _guard) = …`), not to `_`, which drops it at once and stops delivery
    /// (events emitted afterwards go to the dead letters).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`], [`Error::InvalidUrl`] or [`Error::Refused`] naming the
    /// endpoint and what to change; [`Error::Open`] when the dead-letter file cannot be
    /// opened; [`Error::Config`] for duplicate endpoint names or a thread that cannot start.
    pub fn build(self) -> Result<(HttpSink, DeliveryGuard), Error> {
        let mut seen = std::collections::HashSet::new();
        for endpoint in &self.endpoints {
            endpoint.validate()?;
            if !seen.insert(endpoint.name.as_str()) {
                return Err(Error::Config(format!(
                    "two endpoints are named '{}'; names must be unique (dead letters refer to them)",
                    endpoint.name
                )));
            }
        }
        let mut agents = Vec::with_capacity(self.endpoints.len());
        let mut routes = Vec::with_capacity(self.endpoints.len());
        for endpoint in &self.endpoints {
            agents.push(EndpointAgent {
                agent: agent_for(endpoint),
                url: endpoint.url.to_string(),
            });
            routes.push(Route {
                name: endpoint.name.clone(),
                url: crate::delivery::endpoint_redact(endpoint.url.as_str()),
                actions: endpoint.actions,
                retry: endpoint.retry.clone(),
                workers: endpoint.workers,
                headers: endpoint.headers.clone(),
                signers: endpoint
                    .secrets
                    .iter()
                    .map(|(secret, expires)| {
                        (
                            deskhook::signature::Signer::new(vec![secret.clone()]),
                            *expires,
                        )
                    })
                    .collect(),
                hub_secrets: if endpoint.hub_signature {
                    endpoint.secrets.clone()
                } else {
                    Vec::new()
                },
            });
        }
        let shutdown_timeout = self.config.shutdown_timeout;
        let engine = Arc::new(Engine::new(
            routes,
            Box::new(UreqTransport { agents }),
            self.config,
            self.observer,
        ));
        engine.check_dead_letter_file()?;
        for (index, endpoint) in engine.endpoints().iter().enumerate() {
            for n in 0..endpoint.route.workers {
                let engine = engine.clone();
                std::thread::Builder::new()
                    .name(format!("deskhook-http-{}-{n}", endpoint.route.name))
                    .spawn(move || engine.run_worker(index))
                    .map_err(|e| Error::Config(format!("cannot start a delivery thread: {e}")))?;
            }
        }
        Ok((
            HttpSink {
                engine: engine.clone(),
            },
            DeliveryGuard {
                engine,
                timeout: shutdown_timeout,
                done: false,
            },
        ))
    }
}

/// Flushes and stops delivery when dropped, waiting at most the shutdown timeout (5 s by
/// default). What is still undelivered then is written to the dead letters and logged.
#[must_use = "delivery stops when the guard is dropped; keep it for the life of the program"]
#[derive(Debug)]
pub struct DeliveryGuard {
    engine: Arc<Engine>,
    timeout: Duration,
    done: bool,
}

impl DeliveryGuard {
    /// Waits until everything queued is delivered or dead-lettered, at most `timeout`;
    /// delivery goes on afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Undelivered`] with what is still queued and in flight.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush(timeout)
    }

    /// Flushes for at most `timeout`, then stops the workers; what is left goes to the dead
    /// letters.
    ///
    /// # Errors
    ///
    /// [`Error::Undelivered`] when something was left.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), Error> {
        self.done = true;
        self.engine.shutdown(timeout)
    }
}

impl Drop for DeliveryGuard {
    fn drop(&mut self) {
        if !self.done
            && let Err(err) = self.engine.shutdown(self.timeout)
        {
            log::warn!(target: "deskhook", "{err}");
        }
    }
}

struct EndpointAgent {
    agent: ureq::Agent,
    url: String,
}

struct UreqTransport {
    agents: Vec<EndpointAgent>,
}

fn agent_for(endpoint: &Endpoint) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(endpoint.connect_timeout))
        .timeout_global(Some(endpoint.timeout))
        .user_agent(USER_AGENT)
        .max_idle_connections_per_host(endpoint.workers.max(1));
    // The guard's agent ignores proxies from the environment.
    guard::agent(endpoint.address_policy.clone(), config)
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

impl Transport for UreqTransport {
    fn post(
        &self,
        endpoint: usize,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let target = &self.agents[endpoint];
        let mut request = target.agent.post(&target.url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send(&body[..]).map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut snippet = Vec::new();
        // A body that cannot be read does not change what the status says.
        let _ = response
            .body_mut()
            .as_reader()
            .take(RESPONSE_READ_LIMIT)
            .read_to_end(&mut snippet);
        Ok(Response {
            status,
            retry_after,
            snippet,
        })
    }
}

fn classify(err: ureq::Error) -> AttemptError {
    if let Some(refusal) = guard::refusal_of(&err) {
        return AttemptError {
            message: refusal.to_string(),
            retryable: false,
        };
    }
    let retryable = !matches!(err, ureq::Error::BadUri(_) | ureq::Error::Http(_));
    let message = match &err {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        other => other.to_string(),
    };
    AttemptError { message, retryable }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(
            parsed <= Duration::from_secs(90) && parsed >= Duration::from_secs(85),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
