//! What the engine asks of a transport: a target made of an endpoint when it is
//! registered ([`Connector`]), then a POST of a body with headers to it, blocking
//! ([`Transport`]) or async ([`AsyncTransport`]), answered with a [`Response`] or an
//! [`AttemptError`]; and what both HTTP transports read the same way.

use std::sync::Arc;
use std::time::Duration;
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
use std::time::SystemTime;

#[cfg(any(feature = "http-blocking", feature = "_async"))]
use bytes::Bytes;

use super::Endpoint;

/// A response as the engine needs it.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) snippet: Vec<u8>,
}

/// An attempt that got no response.
#[derive(Clone, Debug)]
pub(crate) struct AttemptError {
    pub(crate) message: String,
    /// Timeouts and connection errors are retried; a refusal by the SSRF guard is not.
    pub(crate) retryable: bool,
}

/// What a transport makes of an endpoint when it is registered: its client (from a pool of
/// clients shared by endpoints with the same connection settings) and its URL. An attempt
/// holds the target of the settings it started with.
pub(crate) type Target = Arc<dyn std::any::Any + Send + Sync>;

/// What the engine asks of every transport when an endpoint is added or changed.
pub(crate) trait Connector: Send + Sync {
    /// Checks what only the transport can check about `endpoint` and makes its target.
    fn target(&self, endpoint: &Endpoint) -> Result<Target, crate::Error>;
    /// Requests in flight per endpoint when the endpoint does not say.
    fn default_max_in_flight(&self) -> usize;
    /// Whether requests carry the ticket and tenant headers (NATS: a relay routes by them).
    fn event_headers(&self) -> bool {
        false
    }
    /// Whether the target already holds the endpoint's own headers (prepared once when it
    /// was made), so that attempts leave them out.
    fn endpoint_headers_in_target(&self) -> bool {
        false
    }
    /// At shutdown: closes the connections kept for later requests, and keeps none from
    /// then on (those in use close when their attempt ends). Without it they would stay
    /// open for as long as the sink is referenced (a global dispatcher: the process).
    fn close_kept(&self) {}
}

/// What the engine asks of a blocking transport.
#[cfg(feature = "http-blocking")]
pub(crate) trait Transport: Send + Sync {
    /// POSTs `body` with `headers` to `target`.
    fn post(
        &self,
        target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError>;
}

/// What the engine asks of an async transport.
#[cfg(feature = "_async")]
pub(crate) trait AsyncTransport: Send + Sync {
    /// Sends `body` with `headers` to `target` (an HTTP POST, or a JetStream publish whose
    /// acknowledgement counts as a 200).
    fn post(
        &self,
        target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> impl std::future::Future<Output = Result<Response, AttemptError>> + Send;
}

/// Whether an I/O error says the peer cut the connection: reset, aborted, or a write on
/// one it closed. Both HTTP transports send a request cut so before any answer again.
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
pub(crate) fn connection_cut(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many seconds to count is a very long wait (capped by `retry_after_max`), not
        // no wait at all.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
