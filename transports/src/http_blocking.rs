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
use std::time::Duration;

use bytes::Bytes;
use deskhook::{Emitted, EventSink};

use crate::delivery::{
    AttemptError, DeadLetter, DeliveryGuard, Endpoint, EndpointStats, Engine, RESPONSE_READ_LIMIT,
    Receipt, Response, SinkBuilder, Transport, parse_retry_after,
};
use crate::error::Error;
use crate::guard;

pub use crate::delivery::USER_AGENT;

/// Worker threads per endpoint when the endpoint does not set `workers`.
pub const DEFAULT_WORKERS: usize = 4;

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
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush(timeout)
    }

    /// Queues an event like `emit` but does not wait for the disk: the [`Receipt`] says when
    /// the event is durable. (It waits only while the spool's writer is 8192 events behind,
    /// so that memory stays bounded.) For a sink with a spool (see `SinkBuilder::spool`); without
    /// one, the event is queued in memory and the receipt settles at once with an error
    /// saying that nothing is durable.
    pub fn send_with_receipt(&self, event: &Emitted<'_>) -> Receipt {
        self.engine.enqueue_with_receipt(event)
    }

    /// Writes a dead letter for an event this sink never queued (a relay gives up on it).
    #[cfg(feature = "relay")]
    pub(crate) fn write_dead_letter(&self, letter: DeadLetter) {
        log::warn!(
            target: "deskhook",
            "event {} ({} on ticket {}) for endpoint '{}' dead-lettered: {}",
            letter.id,
            letter.action,
            letter.ticket,
            letter.endpoint,
            letter.reason
        );
        self.engine.write_letter(None, letter);
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

impl SinkBuilder {
    /// Checks the endpoints, opens the dead-letter file, and starts the worker threads of
    /// the blocking transport.
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
        let (engine, endpoints, shutdown_timeout) = self.engine(DEFAULT_WORKERS)?;
        let agents = endpoints
            .iter()
            .map(|endpoint| EndpointAgent {
                agent: agent_for(endpoint),
                url: endpoint.url.to_string(),
            })
            .collect();
        let transport = Arc::new(UreqTransport { agents });
        for (index, endpoint) in engine.endpoints().iter().enumerate() {
            for n in 0..endpoint.route.workers {
                let (engine, transport) = (engine.clone(), transport.clone());
                std::thread::Builder::new()
                    .name(format!("deskhook-http-{}-{n}", endpoint.route.name))
                    .spawn(move || engine.run_worker(index, transport.as_ref()))
                    .map_err(|e| Error::Config(format!("cannot start a delivery thread: {e}")))?;
            }
        }
        Ok((
            HttpSink {
                engine: engine.clone(),
            },
            DeliveryGuard::new(engine, shutdown_timeout),
        ))
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
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(endpoint.connect_timeout))
        .timeout_global(Some(endpoint.timeout))
        .user_agent(USER_AGENT)
        .max_idle_connections_per_host(endpoint.workers.unwrap_or(DEFAULT_WORKERS).max(1))
        .max_idle_connections(endpoint.workers.unwrap_or(DEFAULT_WORKERS).max(10));
    if let Some(certs) = &endpoint.ca_certificates {
        let roots = certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned());
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::from(roots))
                .build(),
        );
    }
    // The guard's agent ignores proxies from the environment.
    guard::agent(endpoint.address_policy.clone(), config)
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
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(
            parsed <= Duration::from_secs(90) && parsed >= Duration::from_secs(85),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
