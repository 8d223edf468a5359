//! The delivery engine shared by every engine-backed sink (HTTP blocking and async, NATS):
//! a registry of endpoints changed at run time, per-ticket order, retries with backoff,
//! `Retry-After`, the circuit breaker, rate limits, dead letters, stats, the observer, and
//! flushing on shutdown — on a bounded pool of workers.
//!
//! A transport gives the engine one thing: a way to send a body with headers to an
//! endpoint and report the status (or an error). Everything else is here, so every
//! transport behaves the same.
//!
//! # Endpoints are data
//!
//! A sink starts with the endpoints of its builder (or of `deskhook.toml`), possibly none,
//! and its [`Endpoints`] handle ([`DeliverySink::endpoints`]) changes them while events
//! flow: [`upsert`](Endpoints::upsert), [`remove`](Endpoints::remove),
//! [`pause`](Endpoints::pause), [`resume`](Endpoints::resume), [`get`](Endpoints::get),
//! [`list`](Endpoints::list), [`replace_all`](Endpoints::replace_all). See [`Endpoints`] for
//! what each change does to events already queued.
//!
//! # Tenants
//!
//! An endpoint may belong to a tenant ([`Endpoint::tenant`]) and an event may carry one
//! (`deskhook::for_tenant("acme").emit(..)`). An endpoint with a tenant receives only that
//! tenant's events; an endpoint without one receives every event; an event without a tenant
//! goes only to endpoints without one. Routing is indexed by tenant: an event costs the
//! endpoints it goes to, not the endpoints registered.
//!
//! # How an event moves
//!
//! `emit` serializes the event once, charges it to the memory budget and hands it to the
//! sink's router, a queue that the next worker looking for work empties: it puts one job per
//! endpoint the event goes to into that endpoint's queue. So `emit` costs the same with one
//! endpoint or 100,000, and never touches what the workers touch; whatever happens when the
//! event is routed (a full queue, a disabled endpoint) is counted and logged, not returned.
//! Anything that reads or changes the registry, [`totals`](DeliverySink::totals),
//! [`stats`](DeliverySink::stats) and flush first route what was emitted before them, so an
//! event emitted before [`Endpoints::remove`] is dead-lettered with the endpoint's queue. Where
//! the caller must wait or be told (the `block` overflow policy, a spool, a body over
//! `max_payload`, a sink that stops), `emit` routes the event itself and returns what
//! happened; [`DeliverySink::send_now`] and [`DeliverySink::route_now`] do that for any
//! event, for a caller that answers for it (`deskhook serve` replies 503 only to an event
//! that no endpoint kept, [`Routed::lost`]).
//!
//! Within an endpoint, the jobs of one ticket form a FIFO: a
//! later event of a ticket waits while an earlier one is attempted or waits for a retry;
//! other tickets go on in parallel. Each job carries `X-Deskhook-Sequence` (1, 2, … per
//! endpoint and ticket) so receivers can check the order.
//!
//! # Workers
//!
//! Workers do not belong to endpoints: one pool per sink takes the endpoints with work due in
//! turn, one attempt each per turn, so an endpoint with a backlog of 100,000 delays another
//! endpoint's first event by at most one turn. The blocking transport's pool is threads that
//! grow with demand up to [`DeliveryConfig::max_threads`] and shrink when idle; the async
//! transports run one task per request in flight. Limits:
//!
//! - per endpoint, [`Endpoint::max_in_flight`] requests at once and an optional
//!   [`Endpoint::rate_limit`] (waiting for a token holds no worker);
//! - per sink, [`DeliveryConfig::max_in_flight`] requests at once, of which an endpoint that
//!   already has a request in flight may not take the reserve: one slot per other endpoint,
//!   at most a quarter of the slots, kept for endpoints with nothing in flight, so that slow
//!   and dead endpoints cannot take every worker from the healthy ones (a sink with a
//!   single endpoint keeps nothing back);
//! - per sink, [`DeliveryConfig::max_queued_bytes`] of events queued in memory, on top of
//!   each endpoint's [`DeliveryConfig::queue_capacity`]. With a spool, what cannot go for a
//!   while (a ticket whose next retry is far off, an endpoint paused or whose breaker is
//!   open) waits on disk and holds none of it.
//!
//! An idle endpoint costs memory only (about 1 KiB; the figures are in `benches/README.md`),
//! never a worker; to it add the last `X-Deskhook-Sequence` of each ticket it has seen
//! (some 40 bytes each, 100,000 tickets at most per endpoint before the idle ones are
//! forgotten): an endpoint without a tenant that sees every ticket of a large helpdesk
//! holds a few MiB of them. Connections are pooled per origin, shared by the endpoints with the same
//! TLS roots, SSRF policy and timeouts.
//!
//! The sink's own threads (the blocking workers, an async sink's own runtime) run
//! [`DeliveryConfig::worker_nice`] below the thread that built the sink, under `SCHED_BATCH`
//! (Linux), so that a worker woken by an event or an answer does not take the processor from
//! the thread that emits.
//! The threads that prepare an async sink's costly attempts run at the priority of the
//! runtime thread that delivers.
//!
//! # Outcomes
//!
//! | Result of an attempt | What happens |
//! |---|---|
//! | 2xx | delivered |
//! | 408, 425, 429, 5xx, timeout, connection error | retried per the schedule; `Retry-After` (429, 503) can only lengthen the wait, up to `retry_after_max`, and holds the whole endpoint |
//! | 410 | the endpoint is disabled; its queued events and all later ones go to the dead letters, until [`Endpoints::resume`] |
//! | 3xx (never followed), other 4xx, refused by the SSRF guard | dead letter at once |
//! | last attempt of the schedule fails | dead letter |
//!
//! # What a request carries
//!
//! A `POST` of the exact body (the event's JSON, or what its [template](crate::template)
//! renders) with these headers:
//!
//! | Header | Value |
//! |---|---|
//! | `Content-Type` | `application/json`; `application/json; charset=utf-8` for iQChannels; a template's own |
//! | `User-Agent` | [`USER_AGENT`]: `deskhook/<version>` |
//! | `X-Deskhook-Action` | the event type: `create`, `usedesk.comment_created`, … |
//! | `X-Deskhook-Sequence` | 1, 2, 3, … per endpoint and ticket, so that a receiver can check the order; it starts again at 1 after a restart, and for a ticket with nothing pending once the endpoint has seen more than 100,000 tickets |
//! | `webhook-id` | the event id (a UUID v7), the same on every retry: receivers de-duplicate on it |
//! | `webhook-timestamp` | Unix seconds of this attempt |
//! | `webhook-signature` | with secrets: a `v1,…` entry (HMAC-SHA256) per `whsec_` secret and a `v1a,…` entry (ed25519) per `whsk_` key, space-separated, as [`deskhook::signature`] describes |
//! | `X-Hub-Signature-256` | with [`Endpoint::hub_signature`]: `sha256=` and the hex HMAC-SHA256 of the body under one `whsec_` secret that has not expired: the one that expires first (a rotation's old one), else the first |
//! | the endpoint's own | [`Endpoint::header`]; none may replace a header above (refused when the endpoint is registered) |
//!
//! `webhook-id` and `webhook-timestamp` are sent without a secret too, so that unsigned
//! receivers can de-duplicate. Every secret of an endpoint signs, which is how one is
//! rotated: add the new secret and keep the old one with an expiry
//! ([`Endpoint::secret_until`]), after which it stops signing. An endpoint whose secrets have
//! all expired sends nothing: its events go to the dead letters with a message saying so.
//! A `whpk_` public key cannot sign: an endpoint given one is refused. Secrets never appear
//! in `Debug` output or logs.
//!
//! # Retries, order and failure
//!
//! - **Schedule.** Each endpoint has its [`RetrySchedule`](deskhook::policy::RetrySchedule)
//!   ([`Endpoint::retry`]); after its last attempt the event goes to the dead letters. A
//!   `Retry-After` (seconds or an HTTP date) on a 429 or 503 can only lengthen the wait, up
//!   to [`DeliveryConfig::retry_after_max`], and holds the whole endpoint until then, not
//!   only the event's ticket (attempts already under way that succeed meanwhile do not end
//!   the hold).
//! - **Order.** Per endpoint and ticket, in emit order (see [How an event moves](self#how-an-event-moves));
//!   a slow endpoint holds only its own share of the workers, and `emit` never waits on it.
//! - **Circuit breaker.** After [`BreakerPolicy`](deskhook::policy::BreakerPolicy)'s
//!   retryable failures in a row an endpoint pauses for its cool-down; then one probe decides
//!   whether it resumes. Its state is in [`EndpointStats`].
//! - **Full queue.** When an endpoint's queue or the sink's memory budget is full, the
//!   [`OverflowPolicy`](deskhook::policy::OverflowPolicy) decides: drop the newest event,
//!   drop the oldest, or block the caller of `emit` for at most its timeout, then drop. (A
//!   spent memory budget drops the newest under `drop-oldest` too: the budget is the
//!   sink's, and the oldest queued events may be any endpoint's.) Every drop is counted
//!   in the endpoint's stats ([`EndpointStats::dropped`]) and the sink's
//!   ([`DeliveryTotals::dropped`]), and logged at warn. The dispatcher's `failed` counts
//!   only the drops `emit` itself is told of: under `block`, with a spool, or for a spent
//!   memory budget; others happen after `emit` returned, when the event is routed (see [How
//!   an event moves](self#how-an-event-moves)). With a spool (feature `spool`) the queue is
//!   on disk and neither limit applies.
//! - **Dead letters.** A JSON Lines file ([`DeliveryConfig::dead_letter_path`]), opened at
//!   start so that a bad path fails early; each line a [`DeadLetter`] with the exact body.
//!   `deskhook dead-letters list|replay` lists them (newest first, filtered by endpoint,
//!   tenant, type, ticket or event, a page at a time; [`read_dead_letter_page`] for your
//!   own tools) and delivers them again with their original `webhook-id`. A sink with a
//!   spool keeps them in the spool instead. A letter
//!   the file cannot take (a full disk) goes whole to the log at error level and is counted
//!   as dropped, not dead-lettered.
//! - **Payload limit.** A body over [`DeliveryConfig::max_payload`] goes to the dead letters
//!   with an error saying so.
//! - **Shutdown.** The [`DeliveryGuard`] that `build()` returns flushes when dropped, for at
//!   most [`DeliveryConfig::shutdown_timeout`]; `flush` and `shutdown` do it explicitly. What
//!   is undelivered at the deadline goes to the dead letters (an attempt still in flight is
//!   written too and may also arrive: receivers de-duplicate on `webhook-id`) and is logged;
//!   so do events emitted after shutdown. With a spool it stays there for the next start.
//!   The wait ends early when all that is left is for endpoints that cannot send before the
//!   deadline (paused, or waiting past it for a retry, a cool-down, a `Retry-After` or a
//!   rate limit's token): one endpoint
//!   dead for weeks does not hold every shutdown for its whole timeout.
//! - **Observability.** [`DeliverySink::stats`] gives each endpoint's [`EndpointStats`]
//!   (state, queued, in flight, delivered, failed attempts, retries, drops, dead letters,
//!   rate-limited waits, breaker, latency p50 and p99), [`DeliverySink::totals`] their sum,
//!   cheaply. An [`Observer`] ([`SinkBuilder::observer`]) gets an [`AttemptRecord`] per
//!   attempt, what a helpdesk's "webhook log" page shows; [`DeliverySink::attempts`] keeps
//!   the last ones for the console.

// Built alone (feature `spool` without a transport), the engine has no worker to use it.
#![cfg_attr(
    not(any(feature = "http-blocking", feature = "_async")),
    allow(dead_code)
)]

pub(crate) mod backlog;
pub(crate) mod budget;
pub(crate) mod builder;
mod dead_letter;
pub(crate) mod decide;
pub(crate) mod endpoint;
pub(crate) mod engine;
pub(crate) mod history;
mod job;
pub(crate) mod lane;
pub(crate) mod letters;
pub(crate) mod pool;
pub(crate) mod priority;
pub(crate) mod queue;
mod rate;
mod receipt;
mod registry;
pub(crate) mod route;
mod settings;
mod sink;
#[cfg(feature = "_async")]
pub(crate) mod spawn;
mod spec;
pub mod telemetry;
mod transport;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deskhook::sink::EventId;
use deskhook::{Action, EventType};

#[cfg(any(feature = "spool", feature = "relay"))]
pub(crate) use budget::JOB_OVERHEAD;
pub use builder::{DeliveryGuard, SinkBuilder};
#[cfg(any(feature = "spool", feature = "relay"))]
pub(crate) use dead_letter::raw_body;
pub use dead_letter::{
    DEFAULT_DEAD_LETTER_PATH, DeadLetter, append_dead_letter_lines, open_dead_letters_locked,
    read_dead_letter_page, read_dead_letters,
};
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
pub(crate) use endpoint::ClientKey;
pub use endpoint::{Endpoint, MAX_TIMEOUT, MIN_TIMEOUT, NAME_MAX_BYTES, redact_url};
pub(crate) use engine::Engine;
pub use history::{AttemptEntry, AttemptPage, AttemptQuery, MAX_PAGE, MinuteCount, StatusFilter};
#[cfg(any(feature = "relay", test))]
pub(crate) use job::Withdrawal;
#[cfg(feature = "spool")]
pub(crate) use job::job_cost;
pub(crate) use job::{EventData, Job, Rendered};
pub(crate) use lane::Lane;
pub use letters::{
    DeadLetterPage, DeadLetterQuery, DeadLetters, MAX_PAGE_BYTES, Replayed, StoredLetter,
};
pub use rate::RateLimit;
pub use receipt::Receipt;
#[cfg(feature = "spool")]
pub(crate) use receipt::ReceiptState;
pub(crate) use registry::Lanes;
pub use registry::{
    EndpointInfo, EndpointPage, EndpointQuery, Endpoints, Removed, ReplaceReport, Upserted,
};
pub(crate) use route::Route;
pub use settings::DeliveryConfig;
pub use sink::DeliverySink;
pub(crate) use spec::SHOWN_VARS;
pub use spec::{EndpointSpec, RedactedSpec, SecretSpec, SpecError};
#[cfg(feature = "_async")]
pub(crate) use transport::AsyncTransport;
#[cfg(feature = "http-blocking")]
pub(crate) use transport::Transport;
pub(crate) use transport::{AttemptError, Connector, Response, Target};
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
pub(crate) use transport::{connection_cut, parse_retry_after};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("deskhook/", env!("CARGO_PKG_VERSION"));

/// The header that carries the ticket (the ordering key) where the transport asks for it:
/// NATS messages, so that a relay can keep each ticket's order without parsing the body.
pub const TICKET_HEADER: &str = "x-deskhook-ticket";

/// The header that carries the event's tenant where the transport asks for it (NATS
/// messages), so that a relay can route it to that tenant's endpoints.
pub const TENANT_HEADER: &str = "x-deskhook-tenant";

/// The first bytes of a response that the observer sees.
pub const RESPONSE_SNIPPET_BYTES: usize = 1024;

/// How much of a response body is read at most; the rest is left unread.
pub const RESPONSE_READ_LIMIT: u64 = 64 * 1024;

/// What became of one attempt, for the [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered,
    /// Failed; another attempt is scheduled at `next_attempt`.
    Retrying,
    /// Failed for good; the event is in the dead letters.
    DeadLettered,
    /// 410 Gone: the endpoint is now disabled and the event is in the dead letters.
    EndpointDisabled,
}

/// One delivery attempt, as an [`Observer`] sees it: a row of a helpdesk's "webhook log".
#[derive(Debug)]
#[non_exhaustive]
pub struct AttemptRecord<'a> {
    /// The event id (`webhook-id`).
    pub event_id: EventId,
    /// The endpoint's name.
    pub endpoint: &'a str,
    /// The endpoint's URL, cut to its origin.
    pub url: &'a str,
    /// The event's tenant, if it has one.
    pub tenant: Option<&'a str>,
    /// The Zenlix action; for the other formats, the closest one ([`EventType::action`]).
    pub action: Action,
    /// The event type (`create`, `usedesk.comment_created`, …), as `X-Deskhook-Action`
    /// carried it.
    pub event_type: EventType,
    /// The ticket (ordering key).
    pub ticket: &'a str,
    /// `X-Deskhook-Sequence`: the event's number among the ticket's events for this endpoint.
    pub sequence: u64,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// What went wrong without a response (timeout, refused connection, SSRF refusal).
    pub error: Option<&'a str>,
    /// How long the attempt took.
    pub duration: Duration,
    /// The first [`RESPONSE_SNIPPET_BYTES`] of the response body.
    pub response: &'a [u8],
    /// When the next attempt is due, for [`AttemptOutcome::Retrying`]: its retry delay (or
    /// `Retry-After`). It may go later, never sooner: while the endpoint's breaker is open,
    /// or another ticket's `Retry-After` holds the endpoint.
    pub next_attempt: Option<SystemTime>,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The endpoint's circuit breaker after this attempt.
    pub breaker: BreakerState,
}

/// Receives one record per delivery attempt, on the worker that made it. Keep it quick: a
/// ticket's next event for the endpoint waits for it. A ticket's attempts at one endpoint
/// are observed in the order they were made (endpoints and tickets run in parallel, so
/// records of different ones interleave).
pub trait Observer: Send + Sync {
    /// Called after every attempt.
    fn on_attempt(&self, record: &AttemptRecord<'_>);
}

impl<F> Observer for F
where
    F: Fn(&AttemptRecord<'_>) + Send + Sync,
{
    fn on_attempt(&self, record: &AttemptRecord<'_>) {
        self(record)
    }
}

/// The state of an endpoint's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Delivering normally.
    Closed,
    /// Paused after too many failures in a row, until the cool-down ends.
    Open,
    /// One probe decides whether the endpoint resumes.
    HalfOpen,
}

/// Whether an endpoint delivers, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointState {
    /// Delivering.
    Active,
    /// Paused by [`Endpoints::pause`]: events are queued, nothing is sent until
    /// [`Endpoints::resume`].
    Paused,
    /// Disabled by a 410 Gone: its events go to the dead letters until
    /// [`Endpoints::resume`].
    Disabled,
    /// Its circuit breaker is open (or probing), or the receiver asked it to wait
    /// (`Retry-After`): attempts wait for the cool-down or the hold, which
    /// [`Endpoints::resume`] ends.
    BreakerOpen,
}

impl EndpointState {
    /// Every state, in the order of [`name`](EndpointState::name)'s list.
    pub const ALL: [EndpointState; 4] = [
        EndpointState::Active,
        EndpointState::Paused,
        EndpointState::Disabled,
        EndpointState::BreakerOpen,
    ];

    /// Its name in machine-read places (the `state` label of the metrics, the admin API):
    /// `active`, `paused`, `disabled` or `breaker_open`.
    pub fn name(self) -> &'static str {
        match self {
            EndpointState::Active => "active",
            EndpointState::Paused => "paused",
            EndpointState::Disabled => "disabled",
            EndpointState::BreakerOpen => "breaker_open",
        }
    }

    /// The state of [`name`](EndpointState::name) `name`, if it is one.
    ///
    /// ```
    /// use deskhook_transports::delivery::EndpointState;
    ///
    /// for state in EndpointState::ALL {
    ///     assert_eq!(EndpointState::from_name(state.name()), Some(state));
    /// }
    /// assert_eq!(EndpointState::BreakerOpen.name(), "breaker_open");
    /// assert_eq!(EndpointState::from_name("breaker open"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<EndpointState> {
        EndpointState::ALL
            .into_iter()
            .find(|state| state.name() == name)
    }
}

impl std::fmt::Display for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndpointState::Active => "active",
            EndpointState::Paused => "paused",
            EndpointState::Disabled => "disabled",
            EndpointState::BreakerOpen => "breaker open",
        })
    }
}

/// Counters and state of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The endpoint's name.
    pub name: String,
    /// Its tenant, if it has one.
    pub tenant: Option<String>,
    /// Whether it delivers.
    pub state: EndpointState,
    /// Events waiting (ready, for a retry, for a rate-limit token, or on disk in the spool).
    pub queued: usize,
    /// Events being attempted now.
    pub in_flight: usize,
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed (any outcome but 2xx).
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Events dropped: the queue (or the sink's memory budget) was full, or their dead
    /// letter could not be written (it went whole to the log at error level).
    pub dropped: u64,
    /// Events put in the dead letters (with a spool, counted once its write of the letter
    /// is committed).
    pub dead_lettered: u64,
    /// Times an event was ready but waited for a token of the endpoint's rate limit.
    pub rate_limited: u64,
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// Median duration of the recent attempts that got a response.
    pub latency_p50: Option<Duration>,
    /// 99th percentile of the same.
    pub latency_p99: Option<Duration>,
}

/// What each endpoint did with an event [`DeliverySink::route_now`] routed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Routed {
    /// The endpoints whose queue took it (with a spool: handed to its writer, and on disk
    /// under `Durability::Wait`).
    pub queued: Vec<String>,
    /// The endpoints that did not, each with why.
    pub refused: Vec<Refused>,
}

impl Routed {
    /// Whether every endpoint it goes to dropped it (none queued it or wrote it to the dead
    /// letters): nothing keeps it, and sending it again is the way to have it delivered. An
    /// event that goes nowhere was not wanted; one that some endpoint kept would reach that
    /// endpoint (or its dead letters) twice, under another id, if sent again.
    pub fn lost(&self) -> bool {
        self.queued.is_empty()
            && !self.refused.is_empty()
            && self.refused.iter().all(|r| !r.dead_lettered)
    }
}

/// An endpoint that did not queue an event, in [`Routed`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// The endpoint's name.
    pub endpoint: String,
    /// Why, as logged.
    pub reason: String,
    /// Whether the event went to the dead letters (the endpoint closed or disabled by a
    /// 410, the body over `max_payload`): an operator can replay it. Else it was dropped (a
    /// full queue under `drop-newest`, the memory budget, a spool that could not write it,
    /// a dead letter its file could not take), and counted as such. With a spool, the
    /// letter is handed to its writer: should the write fail until the spool gives it up,
    /// it is logged whole and counted as dropped then.
    pub dead_lettered: bool,
}

impl Refused {
    pub(crate) fn new(endpoint: &str, reason: String, dead_lettered: bool) -> Refused {
        Refused {
            endpoint: endpoint.to_owned(),
            reason,
            dead_lettered,
        }
    }
}

/// The counters of all endpoints of a sink added up since it started (endpoints removed
/// since included), from [`DeliverySink::totals`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryTotals {
    /// Endpoints registered.
    pub endpoints: usize,
    /// Events waiting, over all endpoints.
    pub queued: usize,
    /// Events being attempted.
    pub in_flight: usize,
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Events dropped (a full queue or memory budget, a dead letter not written).
    pub dropped: u64,
    /// Events put in the dead letters (with a spool, counted once its write of the letter
    /// is committed).
    pub dead_lettered: u64,
    /// Waits for a rate-limit token.
    pub rate_limited: u64,
    /// Events accepted that went to no endpoint: none was registered for their tenant (and
    /// those without one) and type when they were routed. Normal for a tenant without
    /// webhooks; a count that grows for a tenant that has some suggests a misspelt name.
    pub unrouted: u64,
}

/// Called with every dead letter after it is written, and whether it is kept (false: the
/// file could not take it, it was logged whole and counted as dropped).
pub(crate) type DeadLetterHook = Arc<dyn Fn(&DeadLetter, bool) + Send + Sync>;

/// Behaviour a relay needs from the engine.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    /// At shutdown, drop what is undelivered instead of dead-lettering it: its owner (a
    /// relay) hands it back to be delivered elsewhere.
    pub(crate) drop_on_stop: bool,
    /// Told of every dead letter.
    pub(crate) dead_letter: Option<DeadLetterHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("drop_on_stop", &self.drop_on_stop)
            .field("dead_letter", &self.dead_letter.is_some())
            .finish()
    }
}

/// Text from an event (its ticket) as a log line shows it: at most 64 characters, then
/// `…`, control characters escaped (core's, which logs the same).
pub(crate) use deskhook::shown_in_log as shown;

/// The current time as RFC 3339 with milliseconds, for dead letters.
pub(crate) fn now_rfc3339() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

/// Runs a log call: the logger is the application's code, and one that panics loses its
/// line, never the accounting around it (a letter counted, a job finished, a worker).
pub(crate) fn logged(log: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(log));
}

/// Locks a mutex; nothing in the engine panics while holding one, but a poisoned lock is
/// recovered rather than stopping delivery.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
