//! The JetStream stream deskhook publishes to: its settings ([`StreamSettings`]), the
//! partitions of its subjects, and making or checking it ([`StreamSettings::ensure`]).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::{DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, server_url};

#[path = "stream_edit.rs"]
mod stream_edit;
use crate::error::Error;

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
    ///
    /// A publish whose acknowledgement was lost (stored, but the answer cut off) is sent
    /// again at the sink's next retry: within the window it is dropped; after it (the
    /// standard schedule's third attempt comes 5 minutes after the second, and a spool
    /// replays what it kept after a restart) it is stored twice. The relays then deliver it
    /// once only while they remember acknowledging it (each its last 65,536 events): a
    /// partition that changed owner in between delivers it again (at least once). A longer
    /// window costs the server memory for every id it remembers, in proportion to the
    /// events published during it; a shorter retry schedule
    /// ([`NatsSinkBuilder::retry`](crate::nats::NatsSinkBuilder::retry)) keeps retries inside
    /// it, at the price of giving up sooner on a server that is down.
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

    /// How long an undelivered message stays in the stream, when deskhook creates it; an
    /// event no relay delivers by then is deleted without a dead letter. An existing stream
    /// with another age limit is used with a warning. Defaults to no limit.
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

    /// The partition of a subject of this stream (`<prefix>.<format>.<event type>.<n>`, see
    /// [`partitioned_subject`](StreamSettings::partitioned_subject)); `None` for any other
    /// subject.
    pub fn partition_of_subject(&self, subject: &str) -> Option<u32> {
        let rest = subject
            .strip_prefix(self.subject_prefix.as_str())?
            .strip_prefix('.')?;
        match rest.split('.').collect::<Vec<_>>()[..] {
            [format, event_type, n] if is_token(format) && is_token(event_type) => {
                n.parse().ok().filter(|p| *p < self.partitions)
            }
            _ => None,
        }
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
            // A full stream refuses the publish (retried), rather than deleting the oldest
            // undelivered events as the default policy does.
            discard: stream::DiscardPolicy::New,
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
    /// `partitions`, `replicas` (fewer copies than asked: a node's death would lose
    /// acknowledged events), `sealed`, `discard` (a size or message limit with the policy
    /// that deletes the oldest messages), `max_msgs_per_subject`, `no_ack`. Accepted with a
    /// warning: a stream that does not say its partition count, one with no duplicate window,
    /// and one with an age limit these settings do not ask for (an event older than it is
    /// deleted undelivered, without a dead letter).
    pub fn check(&self, found: &stream::Config) -> Result<(), Error> {
        for warning in self.review(found)? {
            log::warn!(target: deskhook::LOG_TARGET, "{warning}");
        }
        Ok(())
    }

    /// [`check`](StreamSettings::check)'s verdict: the conflict, or what deskhook works with
    /// but an operator should know, one sentence each.
    fn review(&self, found: &stream::Config) -> Result<Vec<String>, Error> {
        let mut warnings = Vec::new();
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
        match partitions_of(found) {
            Some(partitions) if partitions != self.partitions => {
                return Err(conflict(
                    "partitions",
                    partitions.to_string(),
                    self.partitions.to_string(),
                ));
            }
            Some(_) => {}
            None => warnings.push(format!(
                "JetStream stream '{}' does not say how many partitions it has (its \
                 description has no 'partitions='); assuming {}: relays that assume another \
                 count would leave some partitions undelivered",
                self.name, self.partitions
            )),
        }
        if found.num_replicas.max(1) < self.replicas {
            return Err(conflict(
                "replicas",
                found.num_replicas.to_string(),
                format!("{} or more", self.replicas),
            ));
        }
        if found.sealed {
            return Err(conflict(
                "sealed",
                "true".to_owned(),
                "a stream that takes messages (sealed false)".to_owned(),
            ));
        }
        // With the default discard policy, a stream at a limit deletes its oldest messages:
        // events already acknowledged to the sink, never delivered.
        let limited = found.max_bytes > 0 || found.max_messages > 0;
        if limited && found.discard != stream::DiscardPolicy::New {
            return Err(conflict(
                "discard",
                "'old' with a size or message limit (a full stream would delete undelivered \
                 events)"
                    .to_owned(),
                "'new' (nats stream edit NAME --discard new), or no max_bytes/max_msgs".to_owned(),
            ));
        }
        if found.max_messages_per_subject > 0
            && !(found.discard == stream::DiscardPolicy::New && found.discard_new_per_subject)
        {
            return Err(conflict(
                "max_msgs_per_subject",
                format!(
                    "{} without discard new per subject (a full subject would delete \
                 undelivered events)",
                    found.max_messages_per_subject
                ),
                "no limit per subject".to_owned(),
            ));
        }
        if found.no_ack {
            return Err(conflict(
                "no_ack",
                "true (publishes are not acknowledged)".to_owned(),
                "false".to_owned(),
            ));
        }
        if found.duplicate_window.is_zero() {
            warnings.push(format!(
                "JetStream stream '{}' has no duplicate window: an event published again after \
                 a timeout may be stored twice",
                self.name
            ));
        }
        // An age limit deletes undelivered events as a full stream with discard old does,
        // but without a dead letter: allowed (an operator may want it), said unless asked for.
        if !found.max_age.is_zero() && self.max_age != Some(found.max_age) {
            warnings.push(format!(
                "JetStream stream '{}' deletes messages after {}: an event no relay has \
                 delivered by then is lost without a dead letter (nats stream edit NAME \
                 --max-age 0 keeps them; StreamSettings::max_age with the same age accepts \
                 it quietly)",
                self.name,
                deskhook::policy::format_duration(found.max_age)
            ));
        }
        Ok(warnings)
    }

    /// These settings with the partition count and the storage of the stream, when it
    /// exists (its publisher chose them): what a relay, or a publisher that joins the
    /// stream rather than makes it, works with. A stream that does not record its partition
    /// count keeps these settings' (logged: relays and publishers must agree).
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the stream cannot be looked up (no answer, a timeout, a
    /// permission refused): the settings are then not known, and guessing them would make
    /// an existing stream look like a conflict. A stream that does not exist is not an
    /// error: these settings are returned as they are.
    pub async fn of_existing(self, context: &jetstream::Context) -> Result<StreamSettings, Error> {
        let mut settings = self;
        let found = match context.get_stream(settings.stream_name()).await {
            Ok(found) => Some(found),
            Err(err) => match err.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(api)
                    if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    None
                }
                _ => {
                    let url = server_url(context);
                    return Err(
                        request_trouble("cannot look up the stream", &err, &url).into_error(&url)
                    );
                }
            },
        };
        if let Some(found) = found {
            let config = &found.cached_info().config;
            settings = settings.storage(match config.storage {
                stream::StorageType::Memory => Storage::Memory,
                stream::StorageType::File => Storage::File,
            });
            match partitions_of(config) {
                Some(partitions) => settings = settings.partitions(partitions),
                None => log::warn!(
                    target: deskhook::LOG_TARGET,
                    "stream '{}' does not record its partition count (it was not made by \
                     deskhook 0.1's NatsSink); assuming {}: relays and publishers must agree",
                    settings.stream_name(),
                    settings.partition_count()
                ),
            }
        }
        Ok(settings)
    }

    /// Creates the stream if it is missing, or checks it if it exists; returns its info. An
    /// existing stream that does not record its partition count (made by hand) is given
    /// this one in its description, so that relays and publishers assuming another refuse
    /// it rather than leave partitions undelivered.
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

    pub(super) async fn ensure_inner(
        &self,
        context: &jetstream::Context,
        url: &str,
    ) -> Result<stream::Info, Trouble> {
        self.validate().map_err(Trouble::Fatal)?;
        for _ in 0..2 {
            match context.get_stream(&self.name).await {
                Ok(found) => {
                    let info = found.cached_info().clone();
                    let info = self.discard_new(context, info).await?;
                    self.check(&info.config).map_err(Trouble::Fatal)?;
                    return Ok(self.record_partitions(context, info).await);
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
                    // Too few nodes up for the replicas asked, no leader: for now.
                    jetstream::context::CreateStreamErrorKind::JetStream(api) if for_now(&api) => {
                        return Err(Trouble::Transient(format!(
                            "cannot create the stream yet: {api}"
                        )));
                    }
                    jetstream::context::CreateStreamErrorKind::JetStream(api) => {
                        let error = Error::Nats {
                            url: url.to_owned(),
                            message: format!(
                                "JetStream refused to create stream '{}' for subjects '{}': {api}",
                                self.name,
                                self.subjects(),
                            ),
                        };
                        let taken =
                            api.error_code() == jetstream::ErrorCode::STREAM_SUBJECT_OVERLAP;
                        return Err(if taken {
                            Trouble::Taken(error)
                        } else {
                            Trouble::Fatal(error)
                        });
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
pub(super) enum Trouble {
    /// A setting or an answer that waiting will not change by itself (the stream unlike
    /// the settings, a refusal): the build's error when the sink starts and the server
    /// answers; once it runs, retried as [`Trouble::Taken`] is (an operator changes the
    /// stream, or the settings and restarts).
    Fatal(Error),
    /// Another stream holds the subjects: fatal when the sink starts and the server answers
    /// (a configuration to change), but once it runs, perhaps a stream made over its
    /// subjects by someone else, which may go (its events are retried per the schedule).
    Taken(Error),
    /// Nobody answers JetStream requests: JetStream is off, or starting.
    Unavailable,
    /// Anything that may pass (timeouts, lost connections).
    Transient(String),
}

impl Trouble {
    pub(super) fn into_error(self, url: &str) -> Error {
        match self {
            Trouble::Fatal(error) | Trouble::Taken(error) => error,
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

pub(super) const UNAVAILABLE: &str = "JetStream does not answer (no responders): start the server with \
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
        // No leader, the stream's peers offline: a cluster in the middle of a failover.
        jetstream::context::GetStreamErrorKind::JetStream(api) if for_now(&api) => {
            Trouble::Transient(format!("{what}: {api}"))
        }
        jetstream::context::GetStreamErrorKind::JetStream(api) => Trouble::Fatal(Error::Nats {
            url: url.to_owned(),
            message: format!("{what}: {api}"),
        }),
        _ => Trouble::Transient(format!("{what}: {err}")),
    }
}

/// Whether a JetStream API error is one of a cluster that will answer otherwise soon (no
/// leader or one being elected, too few nodes or resources up, the stream's peers offline,
/// a member change under way), not a refusal that stays (a bad configuration, replicas a
/// single server cannot have, JetStream off: those come as 5xx too).
fn for_now(api: &jetstream::Error) -> bool {
    use jetstream::ErrorCode as C;
    [
        C::CLUSTER_NOT_AVAILABLE,
        C::CLUSTER_NO_PEERS,
        C::CLUSTER_INCOMPLETE,
        // "JetStream cluster can't handle request": the meta leader is being elected.
        C::CLUSTER_NOT_LEADER,
        C::CLUSTER_NOT_ASSIGNED,
        C::CLUSTER_SERVER_MEMBER_CHANGE_INFLIGHT,
        C::RAFT_GENERAL,
        C::INSUFFICIENT_RESOURCES,
        C::STREAM_OFFLINE,
        C::STREAM_OFFLINE_REASON,
    ]
    .contains(&api.error_code())
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
pub(super) fn subject_covers(filter: &str, pattern: &str) -> bool {
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

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
