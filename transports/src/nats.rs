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
//! - Subject `<prefix>.<format>.<event type>`: `deskhook.zenlix.create`, ….
//! - Body: the exact body an HTTP endpoint would get.
//! - Headers: `Nats-Msg-Id` (the event id, so that JetStream drops a second publish of the
//!   same event within the stream's duplicate window), and the headers of an HTTP request:
//!   `content-type`, `x-deskhook-action`, `x-deskhook-sequence`, `webhook-id`,
//!   `webhook-timestamp`, `webhook-signature` (with secrets), plus `x-deskhook-ticket`, the
//!   ticket code (the ordering key; see [`decode_ticket`]) so that a relay can keep each
//!   ticket's order without parsing the body, and `x-deskhook-tenant`, the event's tenant
//!   when it has one (encoded the same way), so that a relay routes it to that tenant's
//!   endpoints.
//!
//! # Outcomes
//!
//! | Result of a publish | What happens |
//! |---|---|
//! | acknowledged (also as a duplicate) | delivered (the observer sees status 200 and the ack) |
//! | not connected, no ack in time, connection lost, no stream answering | retried per the schedule; the stream is checked (and created if gone) again before the next publish |
//! | refused by JetStream (message too large, other API errors), stream settings in conflict | dead letter at once |
//!
//! # The stream
//!
//! At start the sink creates the stream if it is missing (work-queue retention, subjects
//! `<prefix>.>`, file storage, a two-minute duplicate window; see [`StreamSettings`]) and
//! checks it if it exists: another retention, subjects that do not cover deskhook's, another
//! storage or a sealed stream fail the build with [`Error::StreamConflict`], which names the
//! setting. If the server cannot be reached at start, the sink starts anyway (unless
//! [`NatsSinkBuilder::require_server`]) and events wait in the queue (or the spool); the
//! stream is checked before the first publish.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, HeaderName, HeaderValue, ServerAddr};
use bytes::Bytes;
use deskhook::policy::{BreakerPolicy, OverflowPolicy, RetrySchedule};
use deskhook::{Emitted, EventTypeSet, Secret};

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

/// Publishes awaiting their acknowledgement at once, when not set.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The header JetStream de-duplicates on; it holds the event id (`webhook-id`).
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// The format token of the subject of Zenlix events.
pub const ZENLIX_FORMAT: &str = "zenlix";

/// Where JetStream keeps the stream's messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// On disk: messages survive a server restart. The default.
    #[default]
    File,
    /// In memory: faster, lost when the server stops.
    Memory,
}

impl Storage {
    fn jetstream(self) -> stream::StorageType {
        match self {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        }
    }
}

/// The JetStream stream deskhook publishes to, and what it must look like: shared by the
/// sink (which creates or checks it) and by relays (which consume from it).
///
/// ```
/// use std::time::Duration;
/// use deskhook_transports::nats::{Storage, StreamSettings};
///
/// let settings = StreamSettings::new()
///     .name("HELPDESK_EVENTS")
///     .subject_prefix("acme.helpdesk")
///     .storage(Storage::File)
///     .duplicate_window(Duration::from_secs(300));
/// assert_eq!(settings.subjects(), "acme.helpdesk.>");
/// assert_eq!(settings.subject("zenlix", "create")?, "acme.helpdesk.zenlix.create");
/// # Ok::<(), deskhook_transports::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    name: String,
    subject_prefix: String,
    storage: Storage,
    duplicate_window: Duration,
    replicas: usize,
    max_bytes: Option<u64>,
    max_age: Option<Duration>,
    partitions: u32,
}

/// Partitions of the stream when none are set: relays deliver at most this many events at
/// once, one per partition.
pub const DEFAULT_PARTITIONS: u32 = 16;

/// The most partitions a stream can have.
pub const MAX_PARTITIONS: u32 = 1024;

/// The partition of a ticket among `partitions`: FNV-1a (64-bit) of its UTF-8 bytes, modulo
/// `partitions`. Stable across versions and machines: publishers and relays must agree.
pub fn partition_of(ticket: &str, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ticket.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(partitions.max(1))).unwrap_or(0)
}

/// The stream's description, which records its partition count for relays.
fn description(partitions: u32) -> String {
    format!("deskhook events, consumed by deskhook relay; partitions={partitions}")
}

/// The partition count a stream's description records, if it does.
pub fn partitions_of(config: &stream::Config) -> Option<u32> {
    config
        .description
        .as_deref()?
        .rsplit_once("partitions=")?
        .1
        .trim()
        .parse()
        .ok()
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings::new()
    }
}

impl StreamSettings {
    /// The defaults: stream `DESKHOOK`, subjects `deskhook.>`, file storage, a two-minute
    /// duplicate window, one replica, no size or age limit.
    pub fn new() -> StreamSettings {
        StreamSettings {
            name: DEFAULT_STREAM.to_owned(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            storage: Storage::File,
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            max_bytes: None,
            max_age: None,
            partitions: DEFAULT_PARTITIONS,
        }
    }

    /// How many partitions the events are spread over, by a hash of their ticket
    /// ([`partition_of`]): each partition is owned by one relay at a time, which keeps its
    /// tickets in order, so this is also the most relays that can share the work. Recorded in the stream's description when deskhook
    /// creates it; a stream with another count is a conflict. Defaults to
    /// [`DEFAULT_PARTITIONS`] (16); at most [`MAX_PARTITIONS`].
    #[must_use]
    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions;
        self
    }

    /// The partition count.
    pub fn partition_count(&self) -> u32 {
        self.partitions
    }

    /// The stream's name. Defaults to [`DEFAULT_STREAM`].
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The first tokens of every subject (`acme.helpdesk` gives
    /// `acme.helpdesk.zenlix.create`). Defaults to [`DEFAULT_SUBJECT_PREFIX`].
    #[must_use]
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// Where the stream keeps messages when deskhook creates it. Defaults to
    /// [`Storage::File`].
    #[must_use]
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// How long JetStream remembers a `Nats-Msg-Id` to drop a second publish of the same
    /// event, when deskhook creates the stream. Defaults to 2 minutes.
    #[must_use]
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Replicas of the stream in a cluster, when deskhook creates it. Defaults to 1.
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// The most bytes the stream holds, when deskhook creates it; a publish past it is
    /// refused (and retried: relays make room). Defaults to no limit.
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// How long an undelivered message stays in the stream, when deskhook creates it.
    /// Defaults to no limit.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.name
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.subject_prefix
    }

    /// The subjects the stream takes: `<prefix>.>`.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// The subject of an event, without its partition: `<prefix>.<format>.<event type>`.
    /// Messages go to [`partitioned_subject`](StreamSettings::partitioned_subject).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `format` or `event_type` is not a valid subject token (empty,
    /// or holds `.`, `*`, `>`, white space or a control character).
    pub fn subject(&self, format: &str, event_type: &str) -> Result<String, Error> {
        for (what, token) in [("format", format), ("event type", event_type)] {
            if !is_token(token) {
                return Err(Error::Config(format!(
                    "the {what} '{}' cannot be a NATS subject token (it must be non-empty, \
                     without '.', '*', '>', white space or control characters)",
                    token.escape_debug()
                )));
            }
        }
        Ok(format!("{}.{format}.{event_type}", self.subject_prefix))
    }

    /// The subject a message goes to: `<prefix>.<format>.<event type>.<partition>`, the
    /// partition of its ticket ([`partition_of`]).
    ///
    /// # Errors
    ///
    /// As [`subject`](StreamSettings::subject).
    pub fn partitioned_subject(
        &self,
        format: &str,
        event_type: &str,
        ticket: &str,
    ) -> Result<String, Error> {
        let subject = self.subject(format, event_type)?;
        Ok(format!(
            "{subject}.{}",
            partition_of(ticket, self.partitions)
        ))
    }

    /// The filter of partition `partition`'s consumer: `<prefix>.*.*.<partition>`.
    pub fn partition_filter(&self, partition: u32) -> String {
        format!("{}.*.*.{partition}", self.subject_prefix)
    }

    /// Checks the name and the prefix.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the setting and what is wrong with it.
    pub fn validate(&self) -> Result<(), Error> {
        let name_ok = !self.name.is_empty()
            && !self
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c));
        if !name_ok {
            return Err(Error::Config(format!(
                "stream name '{}' is not valid: give a non-empty name without '.', '*', '>', \
                 '/', '\\', white space or control characters (such as {DEFAULT_STREAM})",
                self.name.escape_debug()
            )));
        }
        if self.subject_prefix.is_empty() || !self.subject_prefix.split('.').all(is_token) {
            return Err(Error::Config(format!(
                "subject prefix '{}' is not valid: give dot-separated tokens without '*', '>', \
                 white space or control characters (such as {DEFAULT_SUBJECT_PREFIX} or \
                 acme.helpdesk)",
                self.subject_prefix.escape_debug()
            )));
        }
        if self.replicas == 0 {
            return Err(Error::Config(
                "stream replicas is 0; give at least 1".to_owned(),
            ));
        }
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err(Error::Config(format!(
                "{} partitions: give 1 to {MAX_PARTITIONS} (such as {DEFAULT_PARTITIONS})",
                self.partitions
            )));
        }
        Ok(())
    }

    /// The configuration deskhook creates the stream with.
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![self.subjects()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: self.storage.jetstream(),
            duplicate_window: self.duplicate_window,
            num_replicas: self.replicas,
            max_bytes: self
                .max_bytes
                .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            max_age: self.max_age.unwrap_or_default(),
            description: Some(description(self.partitions)),
            ..stream::Config::default()
        }
    }

    /// Checks an existing stream's configuration against these settings.
    ///
    /// # Errors
    ///
    /// [`Error::StreamConflict`] naming the first setting deskhook cannot work with:
    /// `retention` (must be work-queue), `subjects` (must cover `<prefix>.>`), `storage`,
    /// `sealed`.
    pub fn check(&self, found: &stream::Config) -> Result<(), Error> {
        let conflict = |setting, found: String, expected: String| Error::StreamConflict {
            stream: self.name.clone(),
            setting,
            found,
            expected,
        };
        if found.retention != stream::RetentionPolicy::WorkQueue {
            return Err(conflict(
                "retention",
                format!("'{}'", retention_name(found.retention)),
                "'workqueue'".to_owned(),
            ));
        }
        let ours = format!("{}.*.*.*", self.subject_prefix);
        if !found.subjects.iter().any(|s| subject_covers(s, &ours)) {
            return Err(conflict(
                "subjects",
                format!("{:?}", found.subjects),
                format!("a subject covering '{}'", self.subjects()),
            ));
        }
        if found.storage != self.storage.jetstream() {
            let name = |s: &stream::StorageType| match s {
                stream::StorageType::File => "'file'",
                stream::StorageType::Memory => "'memory'",
            };
            return Err(conflict(
                "storage",
                name(&found.storage).to_owned(),
                name(&self.storage.jetstream()).to_owned(),
            ));
        }
        if let Some(partitions) = partitions_of(found)
            && partitions != self.partitions
        {
            return Err(conflict(
                "partitions",
                partitions.to_string(),
                self.partitions.to_string(),
            ));
        }
        if found.sealed {
            return Err(conflict(
                "sealed",
                "true".to_owned(),
                "a stream that takes messages (sealed false)".to_owned(),
            ));
        }
        if found.duplicate_window.is_zero() {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "JetStream stream '{}' has no duplicate window: an event published again after \
                 a timeout may be stored twice",
                self.name
            );
        }
        Ok(())
    }

    /// Creates the stream if it is missing, or checks it if it exists; returns its info.
    ///
    /// # Errors
    ///
    /// [`Error::StreamConflict`] as [`check`](StreamSettings::check); [`Error::Nats`] when
    /// JetStream is not enabled, does not answer, or refuses to create the stream (for
    /// example because another stream already takes these subjects).
    pub async fn ensure(&self, context: &jetstream::Context) -> Result<stream::Info, Error> {
        let url = server_url(context);
        self.ensure_inner(context, &url)
            .await
            .map_err(|e| e.into_error(&url))
    }

    async fn ensure_inner(
        &self,
        context: &jetstream::Context,
        url: &str,
    ) -> Result<stream::Info, Trouble> {
        self.validate().map_err(Trouble::Fatal)?;
        for _ in 0..2 {
            match context.get_stream(&self.name).await {
                Ok(found) => {
                    let info = found.cached_info().clone();
                    self.check(&info.config).map_err(Trouble::Fatal)?;
                    return Ok(info);
                }
                Err(err) => match err.kind() {
                    jetstream::context::GetStreamErrorKind::JetStream(api)
                        if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND => {}
                    _ => return Err(request_trouble("cannot look up the stream", &err, url)),
                },
            }
            match context.create_stream(self.stream_config()).await {
                Ok(mut created) => {
                    log::info!(
                        target: deskhook::LOG_TARGET,
                        "created JetStream stream '{}' for subjects '{}'",
                        self.name,
                        self.subjects()
                    );
                    let info = created
                        .info()
                        .await
                        .map_err(|e| Trouble::Transient(format!("cannot read the stream: {e}")))?;
                    return Ok(info.clone());
                }
                Err(err) => match err.kind() {
                    // Created meanwhile by another process: look at it again.
                    jetstream::context::CreateStreamErrorKind::JetStream(api)
                        if api.error_code() == jetstream::ErrorCode::STREAM_NAME_EXIST => {}
                    jetstream::context::CreateStreamErrorKind::JetStream(api) => {
                        return Err(Trouble::Fatal(Error::Nats {
                            url: url.to_owned(),
                            message: format!(
                                "JetStream refused to create stream '{}' for subjects '{}': {api}",
                                self.name,
                                self.subjects(),
                            ),
                        }));
                    }
                    jetstream::context::CreateStreamErrorKind::JetStreamUnavailable => {
                        return Err(Trouble::Unavailable);
                    }
                    _ => {
                        return Err(Trouble::Transient(format!(
                            "cannot create the stream: {err}"
                        )));
                    }
                },
            }
        }
        Err(Trouble::Transient(format!(
            "stream '{}' was created and deleted again while deskhook looked at it",
            self.name
        )))
    }
}

/// Why the stream could not be made ready.
enum Trouble {
    /// A setting or an answer that waiting will not change.
    Fatal(Error),
    /// Nobody answers JetStream requests: JetStream is off, or starting.
    Unavailable,
    /// Anything that may pass (timeouts, lost connections).
    Transient(String),
}

impl Trouble {
    fn into_error(self, url: &str) -> Error {
        match self {
            Trouble::Fatal(error) => error,
            Trouble::Unavailable => Error::Nats {
                url: url.to_owned(),
                message: UNAVAILABLE.to_owned(),
            },
            Trouble::Transient(message) => Error::Nats {
                url: url.to_owned(),
                message,
            },
        }
    }
}

const UNAVAILABLE: &str = "JetStream does not answer (no responders): start the server with \
                           JetStream on (nats-server -js), or wait until it has started";

fn request_trouble(what: &str, err: &jetstream::context::GetStreamError, url: &str) -> Trouble {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(request) = e.downcast_ref::<async_nats::RequestError>() {
            return match request.kind() {
                async_nats::RequestErrorKind::NoResponders => Trouble::Unavailable,
                async_nats::RequestErrorKind::TimedOut => {
                    Trouble::Transient(format!("{what}: JetStream did not answer in time"))
                }
                _ => Trouble::Transient(format!("{what}: {request}")),
            };
        }
        source = e.source();
    }
    match err.kind() {
        jetstream::context::GetStreamErrorKind::JetStream(api) => Trouble::Fatal(Error::Nats {
            url: url.to_owned(),
            message: format!("{what}: {api}"),
        }),
        _ => Trouble::Transient(format!("{what}: {err}")),
    }
}

/// Whether `token` can be one token of a subject.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ".*>".contains(c))
}

/// Whether every subject that `pattern` matches is matched by `filter` (both may use `*`
/// and a final `>`).
fn subject_covers(filter: &str, pattern: &str) -> bool {
    let mut filter = filter.split('.');
    let mut pattern = pattern.split('.');
    loop {
        match (filter.next(), pattern.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some(_), Some(">")) | (None, Some(_)) | (Some(_), None) => return false,
            (Some("*"), Some(_)) => {}
            (Some(f), Some(p)) if f == p && p != "*" => {}
            _ => return false,
        }
    }
}

fn retention_name(policy: stream::RetentionPolicy) -> &'static str {
    match policy {
        stream::RetentionPolicy::Limits => "limits",
        stream::RetentionPolicy::Interest => "interest",
        stream::RetentionPolicy::WorkQueue => "workqueue",
    }
}

/// The server a context is connected to, for messages.
fn server_url(context: &jetstream::Context) -> String {
    context.client().try_server_info().map_or_else(
        || "the server".to_owned(),
        |info| format!("{}:{}", info.host, info.port),
    )
}

/// Parses `urls`, a comma-separated list of NATS server URLs (`nats://host:4222`,
/// `tls://…`, or `host:port`), into server addresses and the list cut to schemes, hosts and
/// ports for messages (user-info is left out).
fn parse_urls(urls: &str) -> Result<(Vec<ServerAddr>, String), Error> {
    let mut addrs = Vec::new();
    let mut shown = Vec::new();
    for part in urls.split(',').map(str::trim) {
        let addr = ServerAddr::from_str(part).map_err(|e| Error::InvalidUrl {
            url: part.rsplit('@').next().unwrap_or_default().to_owned(),
            reason: format!("{e} (give nats://host:port, tls://host:port or host:port)"),
        })?;
        shown.push(format!(
            "{}://{}:{}",
            addr.scheme(),
            addr.host(),
            addr.port()
        ));
        addrs.push(addr);
    }
    Ok((addrs, shown.join(",")))
}

/// Connects to NATS and returns a JetStream context whose requests and publish acks wait at
/// most `timeout`: for relays and tools that share the sink's stream. Unlike the sink, it
/// fails at once when no server answers.
///
/// # Errors
///
/// [`Error::InvalidUrl`] for a URL that does not parse; [`Error::Nats`] when no server can be
/// reached or authentication fails.
pub async fn connect(
    urls: &str,
    options: async_nats::ConnectOptions,
    timeout: Duration,
) -> Result<jetstream::Context, Error> {
    let (addrs, shown) = parse_urls(urls)?;
    let client = options.connect(addrs).await.map_err(|e| Error::Nats {
        url: shown,
        message: format!("cannot connect: {e}"),
    })?;
    Ok(jetstream::context::ContextBuilder::new()
        .timeout(timeout)
        .build(client))
}

/// The subject of one message, from the headers the engine passes:
/// `<prefix>.<format>.<event type>`. The format is Zenlix (the only one the engine emits for
/// now) and the event type is the action (`x-deskhook-action`).
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

fn header<'a>(headers: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The ticket code as it goes into `x-deskhook-ticket`: `%`, space and control characters
/// percent-encoded (NATS header values cannot hold line breaks). [`decode_ticket`] reverses it.
pub fn encode_ticket(ticket: &str) -> String {
    let mut out = String::with_capacity(ticket.len());
    for c in ticket.chars() {
        if c == '%' || c == ' ' || c.is_control() {
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

/// The NATS headers of a message: the engine's, with the ticket encoded, and `Nats-Msg-Id`.
fn header_map(headers: &[(&str, &str)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let key = HeaderName::from_str(name).map_err(|e| format!("header name '{name}': {e}"))?;
        let value = if name.eq_ignore_ascii_case(TICKET_HEADER)
            || name.eq_ignore_ascii_case(TENANT_HEADER)
        {
            HeaderValue::from_str(&encode_ticket(value))
        } else {
            HeaderValue::from_str(value)
        }
        .map_err(|e| format!("header '{name}': {e}"))?;
        map.insert(key, value);
    }
    let id = header(headers, "webhook-id").ok_or_else(|| "the event has no id".to_owned())?;
    let id = HeaderValue::from_str(id).map_err(|e| format!("event id: {e}"))?;
    map.insert(MSG_ID_HEADER, id);
    Ok(map)
}

/// The first server of a list, as the URL of the sink's endpoint (for logs and dead
/// letters).
fn first_url(shown: &str) -> Result<url::Url, Error> {
    let first = shown.split(',').next().unwrap_or_default().trim();
    let with_scheme = if first.contains("://") {
        first.to_owned()
    } else {
        format!("nats://{first}")
    };
    url::Url::parse(&with_scheme).map_err(|e| Error::InvalidUrl {
        url: first.to_owned(),
        reason: e.to_string(),
    })
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
}

impl JetStreamTransport {
    /// Waits up to `deadline` for the client to be connected.
    async fn connected(&self, deadline: Instant) -> bool {
        loop {
            if self.client.connection_state() == async_nats::connection::State::Connected {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(20))).await;
        }
    }

    /// Creates or checks the stream once; `Err` says whether to retry.
    async fn make_ready(&self, deadline: Instant) -> Result<(), AttemptError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.checking.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ensure = self.settings.ensure_inner(&self.context, &self.url);
        match tokio::time::timeout(left, ensure).await {
            Ok(Ok(_)) => {
                self.ready.store(true, Ordering::Release);
                Ok(())
            }
            Ok(Err(Trouble::Fatal(error))) => {
                log::error!(target: deskhook::LOG_TARGET, "{error}");
                Err(AttemptError {
                    message: error.to_string(),
                    retryable: false,
                })
            }
            Ok(Err(trouble)) => Err(AttemptError {
                message: trouble.into_error(&self.url).to_string(),
                retryable: true,
            }),
            Err(_) => Err(AttemptError {
                message: format!(
                    "JetStream did not answer about stream '{}' within {}",
                    self.settings.name,
                    deskhook::policy::format_duration(self.timeout)
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
                        self.settings.name
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
                    // Limits a relay's progress lifts, and a cluster without a leader.
                    Some(api) if api.code() >= 500 || is_limit(api.error_code()) => {
                        (format!("JetStream: {api}"), true)
                    }
                    Some(api) => (format!("JetStream refused the message: {api}"), false),
                    None => (err.to_string(), true),
                }
            }
        };
        AttemptError { message, retryable }
    }
}

/// JetStream errors that go away when the stream is consumed or the account freed.
fn is_limit(code: jetstream::ErrorCode) -> bool {
    use jetstream::ErrorCode as C;
    [
        C::ACCOUNT_RESOURCES_EXCEEDED,
        C::INSUFFICIENT_RESOURCES,
        C::STORAGE_RESOURCES_EXCEEDED,
        C::MEMORY_RESOURCES_EXCEEDED,
        C::STREAM_STORE_FAILED,
        C::STREAM_MAX_STREAM_BYTES_EXCEEDED,
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
        let map = header_map(headers).map_err(refuse)?;
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
        let publish = jetstream::message::PublishMessage::build()
            .payload(body.clone())
            .headers(map);
        let ack = match self.context.send_publish(subject, publish).await {
            Ok(pending) => pending.await,
            Err(err) => Err(err),
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
/// It implements both [`EventSink`](deskhook::EventSink) (for `emit`) and
/// [`AsyncEventSink`](deskhook::AsyncEventSink) (for `emit_async`); either way `send` only
/// queues. Its stats, flush and redelivery are those of [`delivery`](NatsSink::delivery).
/// Cloning is cheap and clones share the queue.
#[derive(Clone, Debug)]
pub struct NatsSink {
    delivery: DeliverySink,
    settings: Arc<StreamSettings>,
}

impl NatsSink {
    /// A builder for a sink publishing through the NATS server(s) at `urls` (comma-separated
    /// `nats://host:port`, `tls://host:port` or `host:port`).
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

impl deskhook::EventSink for NatsSink {
    fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        deskhook::EventSink::send(&self.delivery, event)
    }

    fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        deskhook::EventSink::flush(&self.delivery, timeout)
    }
}

#[deskhook::async_trait]
impl deskhook::AsyncEventSink for NatsSink {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        deskhook::AsyncEventSink::send(&self.delivery, event).await
    }

    async fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        deskhook::AsyncEventSink::flush(&self.delivery, timeout).await
    }
}

/// The NATS sink's one endpoint: the stream. Other endpoints cannot be added to it (HTTP
/// endpoints are the relays'); its own settings can be changed, and it can be paused.
struct NatsConnector {
    url: url::Url,
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
        DEFAULT_CONCURRENCY
    }

    fn event_headers(&self) -> bool {
        true
    }
}

/// Builds a [`NatsSink`]: the stream, the connection, and the delivery settings shared with
/// the HTTP transports (queue, overflow, retries, dead letters, spool, observer).
pub struct NatsSinkBuilder {
    urls: String,
    options: async_nats::ConnectOptions,
    stream: StreamSettings,
    delivery: SinkBuilder,
    name: String,
    actions: EventTypeSet,
    retry: RetrySchedule,
    max_in_flight: usize,
    timeout: Duration,
    connect_timeout: Duration,
    secrets: Vec<(Secret, Option<SystemTime>)>,
    require_server: bool,
}

impl std::fmt::Debug for NatsSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = parse_urls(&self.urls).map_or_else(|_| "(invalid)".to_owned(), |(_, s)| s);
        f.debug_struct("NatsSinkBuilder")
            .field("urls", &shown)
            .field("stream", &self.stream)
            .field("delivery", &self.delivery)
            .field("name", &self.name)
            .field("actions", &self.actions)
            .field("retry", &self.retry.to_string())
            .field("max_in_flight", &self.max_in_flight)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("secrets", &self.secrets.len())
            .field("require_server", &self.require_server)
            .finish_non_exhaustive()
    }
}

impl NatsSinkBuilder {
    fn new(urls: String) -> NatsSinkBuilder {
        NatsSinkBuilder {
            urls,
            options: async_nats::ConnectOptions::new().name("deskhook"),
            stream: StreamSettings::new(),
            delivery: SinkBuilder::new(),
            name: DEFAULT_ENDPOINT_NAME.to_owned(),
            actions: EventTypeSet::all(),
            retry: RetrySchedule::standard(),
            max_in_flight: DEFAULT_CONCURRENCY,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            secrets: Vec::new(),
            require_server: false,
        }
    }

    /// The stream to publish to. Defaults to [`StreamSettings::new`].
    #[must_use]
    pub fn stream(mut self, settings: StreamSettings) -> Self {
        self.stream = settings;
        self
    }

    /// Connection options of async-nats: credentials (`user_and_password`, `token`,
    /// `credentials_file`, `nkey`), TLS, client name, reconnect behaviour. The sink adds
    /// `retry_on_initial_connect` and the [`connect_timeout`](NatsSinkBuilder::connect_timeout).
    /// Defaults to async-nats' defaults with the client name `deskhook`.
    #[must_use]
    pub fn connect_options(mut self, options: async_nats::ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// The name of the sink's endpoint in stats, logs, dead letters and observer records.
    /// Defaults to [`DEFAULT_ENDPOINT_NAME`].
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The event types published (Zenlix actions, or names such as
    /// `usedesk.comment_created`). Defaults to all.
    #[must_use]
    pub fn actions(mut self, actions: impl Into<EventTypeSet>) -> Self {
        self.actions = actions.into();
        self
    }

    /// The retry schedule of a publish that failed (not connected, no acknowledgement).
    /// Defaults to [`RetrySchedule::standard`].
    #[must_use]
    pub fn retry(mut self, schedule: RetrySchedule) -> Self {
        self.retry = schedule;
        self
    }

    /// Publishes awaiting their acknowledgement at once (one per task; events of one ticket
    /// go one at a time, in order). Defaults to [`DEFAULT_CONCURRENCY`].
    #[must_use]
    pub fn max_in_flight(mut self, publishes: usize) -> Self {
        self.max_in_flight = publishes;
        self
    }

    /// How long one publish waits for the connection and then for its acknowledgement
    /// before it counts as failed (and is retried). Defaults to 5 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the build waits for the server to create or check the stream; also the
    /// connection timeout of the client. Defaults to 5 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Fails the build when the server does not answer within the connect timeout. Defaults
    /// to `false`: the sink starts, events wait in the queue (or the spool) and the stream is
    /// checked before the first publish.
    #[must_use]
    pub fn require_server(mut self, on: bool) -> Self {
        self.require_server = on;
        self
    }

    /// Adds a signing secret: messages then carry `webhook-signature` as HTTP requests do
    /// (a relay may pass it on or sign again). Defaults to none.
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push((secret, None));
        self
    }

    /// Adds a signing secret that signs until `expires` (the old secret of a rotation).
    #[must_use]
    pub fn secret_until(mut self, secret: Secret, expires: SystemTime) -> Self {
        self.secrets.push((secret, Some(expires)));
        self
    }

    /// Replaces all delivery settings at once.
    #[must_use]
    pub fn config(mut self, config: DeliveryConfig) -> Self {
        self.delivery = self.delivery.config(config);
        self
    }

    /// Most events waiting (while NATS is unreachable, say). Defaults to 10 000.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.delivery = self.delivery.queue_capacity(capacity);
        self
    }

    /// What a full queue does. Defaults to [`OverflowPolicy::DropNewest`].
    #[must_use]
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.delivery = self.delivery.overflow(policy);
        self
    }

    /// The dead-letter file. Defaults to `deskhook-dead-letters.jsonl` in the working
    /// directory.
    #[must_use]
    pub fn dead_letter_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.delivery = self.delivery.dead_letter_path(path);
        self
    }

    /// The circuit breaker. Defaults to 10 failures in a row, 30 s cool-down.
    #[must_use]
    pub fn breaker(mut self, breaker: BreakerPolicy) -> Self {
        self.delivery = self.delivery.breaker(breaker);
        self
    }

    /// How long dropping the guard waits for acknowledgements. Defaults to 5 s.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.delivery = self.delivery.shutdown_timeout(timeout);
        self
    }

    /// Largest body published. Defaults to 1 MiB (NATS servers take 1 MB by default).
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.delivery = self.delivery.max_payload(bytes);
        self
    }

    /// Receives one record per publish attempt; a delivered one has status 200 and the
    /// acknowledgement (`{"stream":…,"seq":…,"duplicate":…}`) as its response. Defaults to
    /// none.
    #[must_use]
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.delivery = self.delivery.observer(observer);
        self
    }

    /// Puts the sink behind a durable spool, as for HTTP (see `SinkBuilder::spool`): events
    /// are on disk before `emit` returns and wait there while NATS is unreachable. Defaults
    /// to none.
    #[cfg(feature = "spool")]
    #[must_use]
    pub fn spool(mut self, spool: crate::spool::Spool) -> Self {
        self.delivery = self.delivery.spool(spool);
        self
    }

    /// Checks the settings, connects, creates or checks the stream and starts the publishing
    /// tasks on a tokio runtime of the sink's own (two threads), which the guard shuts down.
    /// Callable anywhere, also inside a runtime; in async code
    /// [`build_async`](NatsSinkBuilder::build_async) puts the tasks on the caller's runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::Config`] or [`Error::InvalidEndpoint`] for bad
    /// settings; [`Error::StreamConflict`] when the stream exists with settings deskhook
    /// cannot use; [`Error::Nats`] when JetStream refuses to create the stream or is not
    /// enabled, or (with [`require_server`](NatsSinkBuilder::require_server)) when no server
    /// answers; [`Error::Open`] for a dead-letter file that cannot be opened.
    pub fn build(self) -> Result<(NatsSink, DeliveryGuard), Error> {
        let runtime = spawn::own_runtime("deskhook-nats")?;
        let handle = runtime.handle().clone();
        let started = if tokio::runtime::Handle::try_current().is_ok() {
            // `block_on` is not allowed on a runtime's thread: wait on a thread of our own.
            std::thread::scope(|scope| {
                scope
                    .spawn(|| handle.block_on(self.start(&handle)))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(Error::Config(
                            "the NATS sink's start-up thread panicked".to_owned(),
                        ))
                    })
            })
        } else {
            handle.block_on(self.start(&handle))
        };
        let (sink, guard) = started?;
        Ok((sink, guard.owning(runtime)))
    }

    /// [`build`](NatsSinkBuilder::build) inside a tokio runtime: the connection and the
    /// publishing tasks live on the current runtime. End with
    /// `guard.shutdown_async(timeout).await`.
    ///
    /// # Errors
    ///
    /// As [`build`](NatsSinkBuilder::build); [`Error::Config`] when called outside a runtime.
    pub async fn build_async(self) -> Result<(NatsSink, DeliveryGuard), Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "NatsSinkBuilder::build_async needs a tokio runtime; outside one, use build()"
                    .to_owned(),
            )
        })?;
        self.start(&handle).await
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Error::InvalidEndpoint {
            name: self.name.clone(),
            message,
        };
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "the name is empty or holds a control character".into(),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(invalid("max_in_flight is 0; give at least 1".into()));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(invalid(
                "a timeout of 0 would fail every publish; give e.g. 5s".into(),
            ));
        }
        if let Some(first) = self.retry.delay_before(1).filter(|d| !d.is_zero()) {
            return Err(invalid(format!(
                "the retry schedule starts with {}, but the first attempt is always made at \
                 once; start it with 0s (\"0s,{}\")",
                deskhook::policy::format_duration(first),
                self.retry
            )));
        }
        self.stream.validate()
    }

    async fn start(
        self,
        handle: &tokio::runtime::Handle,
    ) -> Result<(NatsSink, DeliveryGuard), Error> {
        self.validate()?;
        let (addrs, shown) = parse_urls(&self.urls)?;
        let client = self
            .options
            .clone()
            .retry_on_initial_connect()
            .connection_timeout(self.connect_timeout)
            .connect(addrs)
            .await
            .map_err(|e| Error::Nats {
                url: shown.clone(),
                message: format!("cannot connect: {e}"),
            })?;
        let context = jetstream::context::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client.clone());
        let ensure = self.stream.ensure_inner(&context, &shown);
        let ready = match tokio::time::timeout(self.connect_timeout, ensure).await {
            Ok(Ok(_)) => true,
            Ok(Err(Trouble::Fatal(error))) => return Err(error),
            Ok(Err(Trouble::Unavailable)) => {
                return Err(Error::Nats {
                    url: shown,
                    message: UNAVAILABLE.to_owned(),
                });
            }
            Ok(Err(Trouble::Transient(message))) if self.require_server => {
                return Err(Error::Nats {
                    url: shown,
                    message,
                });
            }
            Err(_) if self.require_server => {
                return Err(Error::Nats {
                    url: shown,
                    message: format!(
                        "no answer within {} (is the server running and reachable?)",
                        deskhook::policy::format_duration(self.connect_timeout)
                    ),
                });
            }
            Ok(Err(Trouble::Transient(why))) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "NATS at {shown}: {why}; events wait in the queue and the stream is \
                     checked before the first publish"
                );
                false
            }
            Err(_) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "NATS at {shown} did not answer within {}; events wait in the queue \
                     and stream '{}' is checked before the first publish",
                    deskhook::policy::format_duration(self.connect_timeout),
                    self.stream.name
                );
                false
            }
        };
        let url = first_url(&shown)?;
        let mut endpoint = Endpoint::new(self.name.clone(), url.as_str())?
            .actions(self.actions)
            .retry(self.retry.clone())
            .max_in_flight(self.max_in_flight)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        for (secret, expires) in &self.secrets {
            endpoint = match expires {
                Some(at) => endpoint.secret_until(secret.clone(), *at),
                None => endpoint.secret(secret.clone()),
            };
        }
        let mut delivery = self.delivery.endpoint(endpoint);
        // Publishes in flight are limited by the endpoint alone.
        delivery.config.max_in_flight = delivery.config.max_in_flight.max(self.max_in_flight);
        let (engine, shutdown_timeout) = delivery.start_engine(Box::new(NatsConnector { url }))?;
        let settings = Arc::new(self.stream);
        let transport = Arc::new(JetStreamTransport {
            context,
            client,
            settings: StreamSettings::clone(&settings),
            url: shown,
            timeout: self.timeout,
            ready: AtomicBool::new(ready),
            checking: tokio::sync::Mutex::new(()),
        });
        spawn::start(&engine, transport, handle);
        let guard = DeliveryGuard::new(engine.clone(), shutdown_timeout);
        Ok((
            NatsSink {
                delivery: DeliverySink::new(engine),
                settings,
            },
            guard,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_cover_deskhook_s_only_when_every_one_matches() {
        let ours = "deskhook.*.*";
        for filter in [">", "deskhook.>", "deskhook.*.*", "deskhook.*.>", "*.*.*"] {
            assert!(subject_covers(filter, ours), "{filter}");
        }
        for filter in [
            "deskhook",
            "deskhook.*",
            "deskhook.zenlix.*",
            "deskhook.*.*.*",
            "other.>",
            "deskhook.*.create",
        ] {
            assert!(!subject_covers(filter, ours), "{filter}");
        }
    }

    #[test]
    fn tickets_survive_the_header_encoding() {
        for ticket in ["E3XK", "50%", "a b", "line\r\nbreak", "Заявка 7", "%zz"] {
            let encoded = encode_ticket(ticket);
            assert!(!encoded.contains(['\r', '\n', ' ']), "{encoded}");
            assert_eq!(decode_ticket(&encoded), ticket);
        }
        assert_eq!(encode_ticket("a\nb"), "a%0Ab");
        assert_eq!(decode_ticket("50%"), "50%");
    }

    #[test]
    fn the_subject_comes_from_the_action_header() {
        let settings = StreamSettings::new();
        let headers = [
            ("webhook-id", "x"),
            ("x-deskhook-action", "create"),
            ("x-deskhook-ticket", "E3XK"),
        ];
        let partition = partition_of("E3XK", DEFAULT_PARTITIONS);
        assert_eq!(
            subject_for(&settings, &headers).unwrap(),
            format!("deskhook.zenlix.create.{partition}")
        );
        let vendor = [
            ("webhook-id", "x"),
            ("x-deskhook-action", "usedesk.comment_created"),
            ("x-deskhook-ticket", "E3XK"),
        ];
        assert_eq!(
            subject_for(&settings, &vendor).unwrap(),
            format!("deskhook.usedesk.comment_created.{partition}")
        );
        // Stable: relays on other machines and versions must agree.
        assert_eq!(partition_of("E3XK", 16), partition_of("E3XK", 16));
        assert_eq!(partition_of("", 16), 0xcbf2_9ce4_8422_2325_u64 as u32 % 16);
        assert_eq!(partition_of("anything", 1), 0);
        let err = settings.subject("zenlix", "a.b").unwrap_err().to_string();
        assert!(
            err.contains("'a.b' cannot be a NATS subject token"),
            "{err}"
        );
        assert!(subject_for(&settings, &[("webhook-id", "x")]).is_err());
    }

    #[test]
    fn bad_names_and_prefixes_are_refused_with_the_setting() {
        let err = StreamSettings::new().name("a.b").validate().unwrap_err();
        assert!(err.to_string().contains("stream name 'a.b'"), "{err}");
        for prefix in ["", "a..b", "a.>", "a b", "a.*"] {
            let err = StreamSettings::new()
                .subject_prefix(prefix)
                .validate()
                .unwrap_err();
            assert!(
                err.to_string().contains("subject prefix"),
                "{prefix}: {err}"
            );
        }
        assert!(
            StreamSettings::new()
                .subject_prefix("acme.helpdesk")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn conflicts_name_the_setting() {
        let settings = StreamSettings::new();
        let mut found = settings.stream_config();
        assert!(settings.check(&found).is_ok());
        found.retention = stream::RetentionPolicy::Limits;
        let err = settings.check(&found).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "JetStream stream 'DESKHOOK' exists with retention 'limits', but deskhook needs \
                 'workqueue'"
            ),
            "{err}"
        );
        let mut found = settings.stream_config();
        found.subjects = vec!["other.>".into()];
        let err = settings.check(&found).unwrap_err().to_string();
        assert!(err.contains("subjects [\"other.>\"]"), "{err}");
        let mut found = settings.stream_config();
        found.storage = stream::StorageType::Memory;
        let err = settings.check(&found).unwrap_err().to_string();
        assert!(err.contains("storage 'memory'"), "{err}");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let (addrs, shown) = parse_urls("nats://user:secret@127.0.0.1:4222, localhost").unwrap();
        assert_eq!(addrs.len(), 2);
        assert_eq!(shown, "nats://127.0.0.1:4222,nats://localhost:4222");
        let err = parse_urls("http://127.0.0.1:4222").unwrap_err().to_string();
        assert!(err.contains("give nats://host:port"), "{err}");
    }
}
