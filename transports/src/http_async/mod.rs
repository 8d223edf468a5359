//! Async HTTP delivery on tokio: [`AsyncHttpSink`].
//!
//! The same engine as the blocking transport (registry, queues, per-ticket order, retries,
//! `Retry-After`, 410, breaker, rate limits, dead letters, observer, stats, the guard); the
//! workers are tokio tasks, one per request in flight (up to 16 per endpoint by default and
//! the sink's `max_in_flight` in all).
//!
//! Requests go out without a client stack around them: each endpoint's request head (its
//! URL's path, `Host`, `User-Agent` and its own headers) is made once when the endpoint is
//! registered or changed, and an attempt adds only what changes (id, timestamp, signature,
//! sequence); the body is the event's `Bytes`, shared, written after the head in one
//! vectored write. HTTP/1.1 is the transport's own, on `httparse` (hyper's parser), with no
//! task or channel between the attempt and its connection: a delivery costs a third less
//! CPU than over hyper's `client::conn` (see `benches/README.md`). HTTP/2 is hyper's
//! `client::conn`. Connections are pooled per origin and connection settings, shared by the
//! endpoints on that origin:
//! HTTP/1.1 kept alive, or, when the server chooses `h2` by ALPN on `https`, HTTP/2
//! connections shared by requests, 64 of ours at most on each (past that, another: a
//! hanging endpoint cannot take every stream the server allows a connection, and hold up
//! the other endpoints of its origin). TLS is rustls (ring) with the Mozilla roots or the endpoint's own CA, one
//! configuration (and session-resumption cache) per set of roots. Connections go only to
//! addresses the SSRF guard vetted; no proxy from the environment is used and redirects are
//! not followed. A kept connection the server closed meanwhile is noticed before the request
//! is written, and the request goes on a new connection at once; one the server closes as
//! the request goes out on it (an idle timeout) sends it again on a new connection, once,
//! within the same attempt. An HTTP/2 request the server did not take, and so did not
//! process (refused with `REFUSED_STREAM`, or past the last stream of its `GOAWAY`: nginx
//! sends one after 1,000 requests on a connection), goes again on another connection within
//! the same attempt, up to 3 times; a connection whose server sent `GOAWAY` gets no new
//! request. A kept connection found unused for 30 s when a request would take it is closed
//! rather than used (a firewall on the way may have forgotten it); an
//! idle HTTP/2 connection is not pinged, so that the server's idle timeout can end it, and
//! one with requests in flight is pinged every 10 s and closed when a ping goes unanswered.
//! A thread of the sink's (`deskhook-idle`, asleep in between) closes every 30 s the kept
//! connections of every origin unused for longer, so that endpoints gone quiet hold no
//! sockets (thousands of them would otherwise take the process's file descriptors). The
//! timeout bounds the response's head: a status that came in time is the answer, however
//! slowly its body follows.
//!
//! Built inside a runtime, the tasks live on that runtime; built outside one, the sink makes a
//! runtime of its own (one worker thread: on two cores a second one cost more in wake-ups
//! than it gave) that the guard shuts down. Attempts that are costly to prepare (a payload
//! template whose renders take 4 µs or more, an ed25519 signature, an HMAC over a body of
//! 8 KiB or more) are prepared on threads of the sink's own, one per core but one, started by the
//! first such attempt, so that they do not hold up the other requests on the runtime's
//! thread (measured in `benches/README.md`). If the application's runtime shuts down while
//! events are queued, they go to the dead letters, never lost silently. `emit` never
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

mod origin;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http_body_util::BodyExt as _;

use crate::delivery::{
    AsyncTransport, AttemptError, ClientKey, Connector, DeliveryGuard, DeliverySink, Endpoint,
    RESPONSE_READ_LIMIT, RESPONSE_SNIPPET_BYTES, Response, SinkBuilder, Target, lock,
    parse_retry_after, spawn,
};
use crate::error::Error;
use crate::h1::origins::{Origins, Sweeper};
use crate::h1::{self, IDLE_REUSE, request::invalid_value, tls::TlsConfigs};
use origin::{Body, Conn, Origin};

/// Requests in flight per endpoint when the endpoint does not set `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// The sink of the async transport: a [`DeliverySink`] whose workers are tokio tasks making
/// HTTP requests. `AsyncHttpSink::builder()` starts one; `.build_async()` runs it.
pub type AsyncHttpSink = DeliverySink;

impl SinkBuilder {
    /// Checks the settings and the endpoints, opens the dead-letter file (or the spool) and
    /// starts the async transport: one task per request in flight (up to the sink's
    /// `max_in_flight`), over connections pooled per origin; on the current tokio runtime
    /// when called inside one, otherwise on a runtime of the sink's own (one thread) that
    /// the guard shuts down.
    ///
    /// Keep the guard for as long as events should be delivered; in async code end with
    /// `guard.shutdown_async(timeout).await`.
    ///
    /// # Errors
    ///
    /// As [`SinkBuilder::build`]; [`Error::Config`] when TLS or the runtime cannot be set up.
    pub fn build_async(self) -> Result<(AsyncHttpSink, DeliveryGuard), Error> {
        let origins = Arc::new(Mutex::new(Origins::default()));
        let connector = AsyncConnector {
            idle_per_host: self.config.max_in_flight,
            sweeper: Sweeper::start(&origins, IDLE_REUSE),
            origins,
            tls: TlsConfigs::new(&[b"h2", b"http/1.1"]),
        };
        let (engine, shutdown_timeout) = self.start_engine(Box::new(connector))?;
        let (handle, owned) = spawn::runtime_here("deskhook-http-async", engine.priority())?;
        spawn::start(&engine, Arc::new(AsyncHttp), &handle);
        let guard = DeliveryGuard::new(engine.clone(), shutdown_timeout);
        let guard = match owned {
            Some(runtime) => guard.owning(runtime),
            None => guard,
        };
        Ok((DeliverySink::new(engine), guard))
    }
}

/// Makes the async transport's targets: the endpoint's request head, and the pool of its
/// origin (shared with every endpoint on the same origin with the same connection settings).
struct AsyncConnector {
    idle_per_host: usize,
    origins: Arc<Mutex<Origins<Origin>>>,
    /// Closes their connections unused too long.
    sweeper: Arc<Sweeper>,
    /// One TLS configuration per set of roots, offering `h2` and `http/1.1` by ALPN.
    tls: TlsConfigs,
}

impl Drop for AsyncConnector {
    fn drop(&mut self) {
        self.sweeper.stop();
    }
}

/// An endpoint as the async transport sends to it: its origin's pool and its request head.
struct HttpTarget {
    origin: Arc<Origin>,
    timeout: Duration,
    /// The HTTP/1.1 request head but the attempt's own headers: the request line (path and
    /// query), `Host`, then the headers of `fixed`, each line ended.
    h1_head: Vec<u8>,
    /// The request target of HTTP/2: the URL without its fragment.
    absolute: http::Uri,
    /// `User-Agent` (unless the endpoint has its own), then the endpoint's own headers,
    /// parsed once.
    fixed: Vec<(HeaderName, HeaderValue)>,
}

impl Connector for AsyncConnector {
    fn target(&self, endpoint: &Endpoint) -> Result<Target, Error> {
        endpoint.check_http()?;
        let invalid = |message: String| Error::InvalidEndpoint {
            name: endpoint.name.clone(),
            message,
        };
        let key = ClientKey::of(endpoint);
        let url = &endpoint.url;
        let origin = self.origin(&key, endpoint).map_err(&invalid)?;
        let uri = |text: &str| {
            http::Uri::try_from(text).map_err(|e| invalid(format!("its URL cannot be sent: {e}")))
        };
        let mut fixed = Vec::with_capacity(1 + endpoint.headers.len());
        if h1::request::default_user_agent(endpoint) {
            fixed.push((
                header::USER_AGENT,
                HeaderValue::from_static(crate::delivery::USER_AGENT),
            ));
        }
        for (name, value) in &endpoint.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("'{name}' is not a valid header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("the value of header '{name}' is not valid")))?;
            fixed.push((name, value));
        }
        let h1_head = h1::request::target_head(
            url,
            fixed
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        )
        .map_err(&invalid)?;
        Ok(Arc::new(HttpTarget {
            origin,
            timeout: endpoint.timeout,
            h1_head,
            absolute: uri(&url[..url::Position::AfterQuery])?,
            fixed,
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

impl AsyncConnector {
    /// The pool of `endpoint`'s origin, made if no endpoint uses it yet.
    fn origin(&self, key: &ClientKey, endpoint: &Endpoint) -> Result<Arc<Origin>, String> {
        lock(&self.origins).pool(key, &endpoint.url, &self.tls, self.idle_per_host)
    }
}

struct AsyncHttp;

impl AsyncTransport for AsyncHttp {
    async fn post(
        &self,
        target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let Some(target) = target.downcast_ref::<HttpTarget>() else {
            return Err(AttemptError {
                message: "the endpoint was not made for the async transport".to_owned(),
                retryable: false,
            });
        };
        let deadline = tokio::time::Instant::now() + target.timeout;
        // The HTTP/2 connection the request is on, if it is on one, and its answers by then.
        let mut on = None;
        let progress = h1::Progress::default();
        let exchanged = exchange(target, headers, body, &mut on, &progress);
        let Ok(sent) = tokio::time::timeout_at(deadline, exchanged).await else {
            if let Some(on) = on
                && target.origin.forget_if_silent(&on)
            {
                log::debug!(
                    target: deskhook::LOG_TARGET,
                    "an HTTP/2 connection to {} gave no answer since a request that timed out \
                     went out on it: no longer used",
                    target.absolute.authority().map_or("its origin", |a| a.as_str())
                );
            }
            return Err(AttemptError {
                message: progress.timed_out(target.timeout),
                retryable: true,
            });
        };
        // The status is the answer: a body that comes too slowly (or not at all) within the
        // timeout does not change it, but its connection is not kept.
        let mut snippet = Vec::new();
        let (status, retry_after) = match sent? {
            Answer::H1(head, mut conn) => {
                let keep = tokio::time::timeout_at(deadline, conn.read_body(&head, &mut snippet))
                    .await
                    .unwrap_or(false);
                if keep {
                    target.origin.checkin(conn);
                }
                (head.status, head.retry_after)
            }
            Answer::H2(response, _stream) => {
                let status = response.status().as_u16();
                // The first that reads, as over HTTP/1.1.
                let retry_after = response
                    .headers()
                    .get_all(header::RETRY_AFTER)
                    .iter()
                    .find_map(|v| v.to_str().ok().and_then(parse_retry_after));
                let _ = tokio::time::timeout_at(
                    deadline,
                    read_limited(response.into_body(), &mut snippet),
                )
                .await;
                (status, retry_after)
            }
        };
        Ok(Response {
            status,
            retry_after,
            snippet,
        })
    }
}

/// The head of an answer, with the connection that carried it: an HTTP/1.1 connection the
/// attempt owns (kept if its body is read to the end), or its place among an HTTP/2
/// connection's streams (held until the body is read).
enum Answer {
    H1(h1::Head, h1::H1<h1::Io<tokio::net::TcpStream>>),
    H2(http::Response<hyper::body::Incoming>, origin::Stream),
}

/// One request and the head of its answer, on a kept connection or a new one; `on` tells
/// the HTTP/2 connection the request last went out on (for [`origin::Origin::forget_if_silent`]
/// when the attempt times out), and `progress` how far the request went.
async fn exchange(
    target: &HttpTarget,
    headers: &[(&str, &str)],
    body: &Bytes,
    on: &mut Option<origin::Sent>,
    progress: &h1::Progress,
) -> Result<Answer, AttemptError> {
    let origin = &target.origin;
    let (mut conn, mut reused) = match origin.checkout(None) {
        Some(conn) => (conn, true),
        None => (origin.connect(None).await?, false),
    };
    // The HTTP/1.1 head, made once whatever connection carries it.
    let mut head = None;
    // Times sent again on another connection because the server did not take it.
    let mut resent = 0;
    loop {
        match conn {
            Conn::H1(mut h1) => {
                let head = match &head {
                    Some(head) => head,
                    None => head.insert(h1::request::attempt_head(
                        &target.h1_head,
                        headers,
                        body.len(),
                    )?),
                };
                match h1.send_telling(head, body, progress).await {
                    Ok(answer) => return Ok(Answer::H1(answer, h1)),
                    // A kept connection the server closed as the request went out on it (a
                    // server closing an idle connection, as Node does after 5 s, never read
                    // it): sent again on a new connection, once (at least once, as every
                    // attempt is). One closed before is seen at checkout.
                    Err(failed) if reused && failed.cut => {
                        progress.connecting();
                        conn = origin.connect(None).await?;
                        reused = false;
                    }
                    Err(failed) => {
                        return Err(AttemptError {
                            message: format!("connection failed: {}", failed.error),
                            retryable: true,
                        });
                    }
                }
            }
            Conn::H2 {
                mut send,
                _stream: stream,
            } => {
                let request = h2_request(target, headers, body)?;
                *on = Some(stream.sent());
                progress.on_h2();
                let mut e = match send.try_send_request(request).await {
                    Ok(response) => {
                        stream.answered();
                        return Ok(Answer::H2(response, stream));
                    }
                    Err(e) => e,
                };
                // An HTTP/2 server that did not take the stream: refused, or past its
                // GOAWAY (nginx sends one after 1,000 requests on a connection). Or one
                // hyper never wrote. Either way the request goes on another connection with
                // room, kept or new, never the one that did not take it, up to MAX_RESENDS
                // times (no duplicate).
                let unsent = e.take_message().is_some();
                let error = e.into_error();
                let untaken = not_taken(&error);
                // A GOAWAY ends the connection; a refused stream is the stream's (one over
                // the server's limit): the connection stays, for others.
                if untaken == Some(Untaken::GoAway) {
                    origin.forget(&stream);
                }
                if resent >= MAX_RESENDS || (untaken.is_none() && !unsent) {
                    return Err(failed(&error));
                }
                progress.connecting();
                let kept = origin.checkout(Some(&stream));
                reused = kept.is_some();
                conn = match kept {
                    Some(kept) => kept,
                    None => origin.connect(Some(&stream)).await?,
                };
                resent += 1;
            }
        }
    }
}

/// The most times one attempt's HTTP/2 request is sent again on another connection because
/// the server did not take it (a server shutting down turns every connection away).
const MAX_RESENDS: u32 = 3;

/// How an HTTP/2 server did not take a request's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Untaken {
    /// `REFUSED_STREAM`.
    Refused,
    /// Beyond the last stream of a `GOAWAY` it sent.
    GoAway,
}

/// Whether an HTTP/2 request failed because the server did not take its stream, which
/// HTTP/2 says it did not process (RFC 9113, 8.7), and how.
fn not_taken(err: &hyper::Error) -> Option<Untaken> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            if !h2.is_remote() {
                return None;
            }
            if h2.is_go_away() {
                return Some(Untaken::GoAway);
            }
            return (h2.reason() == Some(h2::Reason::REFUSED_STREAM)).then_some(Untaken::Refused);
        }
        source = e.source();
    }
    None
}

fn invalid_name(name: &str) -> AttemptError {
    AttemptError {
        message: format!("'{name}' is not a valid header name"),
        retryable: false,
    }
}

/// The HTTP/2 request of one attempt: the target's head, then the attempt's own headers.
fn h2_request(
    target: &HttpTarget,
    headers: &[(&str, &str)],
    body: &Bytes,
) -> Result<http::Request<Body>, AttemptError> {
    let mut request = http::Request::new(Body::new(body.clone()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = target.absolute.clone();
    *request.version_mut() = http::Version::HTTP_2;
    let map = request.headers_mut();
    map.reserve(target.fixed.len() + headers.len());
    for (name, value) in &target.fixed {
        map.append(name.clone(), value.clone());
    }
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| invalid_value(name))?;
        map.append(attempt_header(name)?, value);
    }
    Ok(request)
}

/// The name of a header the engine adds to an attempt, without parsing the ones it always
/// adds: their names are made when the program is compiled, and an attempt only looks them
/// up (`HeaderName::from_static` outside a constant checks its argument at every call).
fn attempt_header(name: &str) -> Result<HeaderName, AttemptError> {
    const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
    const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
    const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
    const ACTION: HeaderName = HeaderName::from_static("x-deskhook-action");
    const SEQUENCE: HeaderName = HeaderName::from_static("x-deskhook-sequence");
    const HUB_SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
    const TICKET: HeaderName = HeaderName::from_static(crate::delivery::TICKET_HEADER);
    const TENANT: HeaderName = HeaderName::from_static(crate::delivery::TENANT_HEADER);
    Ok(match name {
        "content-type" => header::CONTENT_TYPE,
        "webhook-id" => WEBHOOK_ID,
        "webhook-timestamp" => WEBHOOK_TIMESTAMP,
        "webhook-signature" => WEBHOOK_SIGNATURE,
        "x-deskhook-action" => ACTION,
        "x-deskhook-sequence" => SEQUENCE,
        "x-hub-signature-256" => HUB_SIGNATURE,
        crate::delivery::TICKET_HEADER => TICKET,
        crate::delivery::TENANT_HEADER => TENANT,
        other => HeaderName::from_bytes(other.as_bytes()).map_err(|_| invalid_name(other))?,
    })
}

/// Reads a response body up to [`RESPONSE_READ_LIMIT`], keeping its first
/// [`RESPONSE_SNIPPET_BYTES`] in `snippet` (what the observer is shown); whether it was read
/// to its end (only then can its connection carry another request). A body that fails midway
/// does not change what the status says.
async fn read_limited(mut body: hyper::body::Incoming, snippet: &mut Vec<u8>) -> bool {
    let mut left = RESPONSE_READ_LIMIT;
    loop {
        match body.frame().await {
            None => return true,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = RESPONSE_SNIPPET_BYTES.saturating_sub(snippet.len());
                    snippet.extend_from_slice(&data[..data.len().min(room)]);
                    match left.checked_sub(data.len() as u64) {
                        Some(rest) => left = rest,
                        None => return false,
                    }
                }
            }
            Some(Err(_)) => return false,
        }
    }
}

/// An attempt that got no response: what hyper said, with its causes.
fn failed(err: &hyper::Error) -> AttemptError {
    let mut message = if err.is_closed() || err.is_incomplete_message() || err.is_canceled() {
        format!("connection failed: {err}")
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        message.push_str(": ");
        message.push_str(&e.to_string());
        source = e.source();
    }
    AttemptError {
        message,
        retryable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_headers_made_at_compile_time_are_the_names_parsed() {
        for name in [
            "content-type",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-deskhook-action",
            "x-deskhook-sequence",
            "x-hub-signature-256",
            crate::delivery::TICKET_HEADER,
            crate::delivery::TENANT_HEADER,
            "x-crm-key",
        ] {
            let made = attempt_header(name).unwrap_or_else(|e| panic!("{name}: {}", e.message));
            assert_eq!(
                made,
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "{name}"
            );
            assert_eq!(made.as_str(), name);
        }
        let bad = attempt_header("bad name").unwrap_err();
        assert_eq!(bad.message, "'bad name' is not a valid header name");
        assert!(!bad.retryable);
    }
}
