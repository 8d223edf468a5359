//! The delivery engine shared by every HTTP transport: bounded queues, per-ticket order,
//! retries with backoff, `Retry-After`, the circuit breaker, dead letters, stats, the
//! observer, and flushing on shutdown.
//!
//! A transport gives the engine one thing: a way to POST a body with headers to endpoint
//! `i` and report the status (or an error). Everything else is here, so the blocking and the
//! async transports behave the same.
//!
//! # How an event moves
//!
//! `emit` serializes the event once; the sink puts one job per subscribed endpoint into that
//! endpoint's queue and returns. Each endpoint has its own workers, so a slow endpoint never
//! holds up another. Within an endpoint, the jobs of one ticket form a FIFO: a later event of
//! a ticket waits while an earlier one is attempted or waits for a retry; other tickets go on
//! in parallel. Each job carries `X-Deskhook-Sequence` (1, 2, … per endpoint and ticket) so
//! receivers can check the order.
//!
//! # Outcomes
//!
//! | Result of an attempt | What happens |
//! |---|---|
//! | 2xx | delivered |
//! | 408, 425, 429, 5xx, timeout, connection error | retried per the schedule; `Retry-After` (429, 503) can only lengthen the wait, up to `retry_after_max` |
//! | 410 | the endpoint is disabled; its queued events and all later ones go to the dead letters |
//! | 3xx (never followed), other 4xx, refused by the SSRF guard | dead letter at once |
//! | last attempt of the schedule fails | dead letter |

// Built alone (feature `spool` without a transport), the engine has no worker to use it.
#![cfg_attr(
    not(any(feature = "http-blocking", feature = "_async")),
    allow(dead_code)
)]

mod builder;
mod dead_letter;
mod endpoint;
pub(crate) mod queue;
mod receipt;
#[cfg(feature = "_async")]
pub(crate) mod spawn;

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use deskhook::policy::{BreakerPolicy, OverflowPolicy, RetrySchedule, Verdict};
use deskhook::{Action, Emitted, EventId, EventType, EventTypeSet};

pub use builder::{DeliveryGuard, SinkBuilder};
pub(crate) use dead_letter::raw_body;
pub use dead_letter::{DEFAULT_DEAD_LETTER_PATH, DeadLetter, read_dead_letters};
pub use endpoint::Endpoint;
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
pub(crate) use endpoint::redact_url as endpoint_redact;
pub use receipt::Receipt;
#[cfg(feature = "spool")]
pub(crate) use receipt::ReceiptState;

use crate::error::Error;
use dead_letter::DeadLetterLog;
use queue::Schedule;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("deskhook/", env!("CARGO_PKG_VERSION"));

/// The header that carries the ticket (the ordering key) where the transport asks for it:
/// NATS messages, so that a relay can keep each ticket's order without parsing the body.
pub const TICKET_HEADER: &str = "x-deskhook-ticket";

/// The first bytes of a response that the observer sees.
pub const RESPONSE_SNIPPET_BYTES: usize = 1024;

/// How much of a response body is read at most; the rest is left unread.
pub const RESPONSE_READ_LIMIT: u64 = 64 * 1024;

/// Settings shared by all endpoints of a sink.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Most events waiting per endpoint (not counting those in flight). Defaults to 10 000.
    pub queue_capacity: usize,
    /// What a full queue does. Defaults to [`OverflowPolicy::DropNewest`].
    pub overflow: OverflowPolicy,
    /// Where dead letters go. Defaults to [`DEFAULT_DEAD_LETTER_PATH`] in the working
    /// directory. The sink opens (and creates) it when it starts, so that a path that cannot
    /// be written fails at start-up rather than when an event needs it.
    pub dead_letter_path: std::path::PathBuf,
    /// The circuit breaker. Defaults to 10 failures in a row, 30 s cool-down.
    pub breaker: BreakerPolicy,
    /// The longest `Retry-After` honoured; longer ones are cut to this. Defaults to 1 h.
    pub retry_after_max: Duration,
    /// How long the guard's drop waits for queues to drain. Defaults to 5 s.
    pub shutdown_timeout: Duration,
    /// Largest body accepted; a larger event goes to the dead letters with an error. Defaults
    /// to 1 MiB.
    pub max_payload: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_capacity: 10_000,
            overflow: OverflowPolicy::DropNewest,
            dead_letter_path: DEFAULT_DEAD_LETTER_PATH.into(),
            breaker: BreakerPolicy::default(),
            retry_after_max: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(5),
            max_payload: 1024 * 1024,
        }
    }
}

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
    /// The endpoint's URL.
    pub url: &'a str,
    /// The Zenlix action; for the other formats, the closest one ([`EventType::action`]).
    pub action: Action,
    /// The event type (`create`, `usedesk.comment_created`, …), as `X-Deskhook-Action`
    /// carried it.
    pub event_type: EventType,
    /// The ticket (ordering key).
    pub ticket: &'a str,
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
    /// When the next attempt is due, for [`AttemptOutcome::Retrying`].
    pub next_attempt: Option<SystemTime>,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The endpoint's circuit breaker after this attempt.
    pub breaker: BreakerState,
}

/// Receives one record per delivery attempt, on the worker that made it. Keep it quick.
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

/// Counters and state of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The endpoint's name.
    pub name: String,
    /// Events waiting (ready or for a retry).
    pub queued: usize,
    /// Events being attempted now.
    pub in_flight: usize,
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed (any outcome but 2xx).
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events put in the dead letters.
    pub dead_lettered: u64,
    /// Whether a 410 disabled the endpoint.
    pub disabled: bool,
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// Median duration of the recent attempts that got a response.
    pub latency_p50: Option<Duration>,
    /// 99th percentile of the same.
    pub latency_p99: Option<Duration>,
}

/// One event for one endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) id: EventId,
    pub(crate) id_text: Arc<str>,
    pub(crate) event_type: EventType,
    pub(crate) key: Arc<str>,
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// `X-Deskhook-Sequence`.
    pub(crate) seq: u64,
    /// Order of acceptance across all endpoints, for drop-oldest and dead-letter order.
    pub(crate) order: u64,
    pub(crate) attempts: u32,
    pub(crate) last_status: Option<u16>,
    pub(crate) last_error: Option<String>,
    /// Its row in the spool, when there is one.
    pub(crate) row: Option<i64>,
}

#[cfg(test)]
impl Job {
    pub(crate) fn for_test(key: &str, order: u64) -> Job {
        let id = EventId::new();
        Job {
            id,
            id_text: id.to_string().into(),
            event_type: EventType::Zenlix(Action::Create),
            key: key.into(),
            body: Bytes::new(),
            content_type: "application/json",
            seq: 0,
            order,
            attempts: 0,
            last_status: None,
            last_error: None,
            row: None,
        }
    }
}

/// A job read back from a [`Store`], with when its next attempt is due (`None`: now).
pub(crate) type StoredJob = (Job, Option<SystemTime>);

/// Rows of one endpoint: those after `after`, up to `through` if given, of one ticket if
/// given.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
pub(crate) struct RowRange<'a> {
    pub(crate) after: i64,
    pub(crate) through: Option<i64>,
    pub(crate) ticket: Option<&'a str>,
}

impl RowRange<'_> {
    /// Every row after `after`.
    pub(crate) fn after(after: i64) -> RowRange<'static> {
        RowRange {
            after,
            through: None,
            ticket: None,
        }
    }
}

/// What one [`Store::load`] read.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The jobs, oldest first.
    pub(crate) jobs: Vec<StoredJob>,
    /// The last row read (`after` when none was).
    pub(crate) through: i64,
    /// Rows read, the unreadable ones included.
    pub(crate) rows: u64,
    /// Rows that could not be read; the store moved them to the dead letters.
    pub(crate) bad: u64,
}

/// Durable storage of the engine's jobs: the spool. With a store, the store is the queue
/// and memory holds a window of it: `enqueue` appends (and waits for the commit unless the
/// store says otherwise), workers load the next rows of their endpoint when their window runs
/// low, and every outcome is written back, so that attempts, backoff and per-ticket order
/// survive a restart.
pub(crate) trait Store: Send + Sync + fmt::Debug {
    /// Appends jobs, `(endpoint index, job)`, in one group commit. The receipt settles when
    /// they are durable; the store then calls the engine's commit listener.
    fn append(&self, jobs: Vec<(usize, Job)>) -> Receipt;
    /// Whether `emit` waits for the commit (else it returns at once).
    fn waits_for_commit(&self) -> bool;
    /// How many jobs per endpoint memory holds at most.
    fn window(&self) -> usize;
    /// The last row committed for endpoint `index`, and how many rows it has had in all
    /// (those there at start included).
    fn committed(&self, index: usize) -> (i64, u64);
    /// Appends not committed yet.
    fn uncommitted(&self) -> usize;
    /// Up to `limit` rows of endpoint `index` after row `after`, oldest first; only those up
    /// to row `through` and of ticket `ticket` when given. A row that cannot be read goes to
    /// the dead letters (and is counted in [`Loaded::bad`]).
    fn load(&self, index: usize, range: RowRange<'_>, limit: usize) -> Result<Loaded, Error>;
    /// Moves endpoint `index`'s rows in the range to the dead letters.
    fn dead_range(&self, index: usize, range: RowRange<'_>, reason: &str);
    /// A failed attempt; the next is due at `next_at`.
    fn attempted(&self, job: &Job, next_at: SystemTime);
    /// Delivered: the row goes.
    fn delivered(&self, row: i64);
    /// Given up: the row (if the job has one) moves to the dead letters.
    fn dead(&self, row: Option<i64>, letter: DeadLetter);
    /// Where the dead letters are, for messages.
    fn dead_letter_place(&self) -> String;
    /// Sets the engine's commit listener (once).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    fn listen(&self, listener: CommitListener);
    /// Writes what is queued and releases the store (at shutdown); later updates are lost
    /// (their events are delivered again after the next start).
    fn close(&self);
}

/// Told by a [`Store`] after each batch: the endpoints (by index) that got new rows, and per
/// endpoint how many jobs could not be written (dropped).
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
pub(crate) type CommitListener = Box<dyn Fn(&[usize], &[(usize, u64)]) + Send + Sync>;

/// What one endpoint needs from the engine's point of view.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) actions: EventTypeSet,
    pub(crate) retry: RetrySchedule,
    pub(crate) workers: usize,
    /// `(name, value)` headers added to every request of this endpoint.
    pub(crate) headers: Vec<(String, String)>,
    /// One signer per secret, with the time it stops signing.
    pub(crate) signers: Vec<(deskhook::signature::Signer, Option<SystemTime>)>,
    /// Sign `X-Hub-Signature-256` with the first active secret.
    pub(crate) hub_secrets: Vec<(deskhook::Secret, Option<SystemTime>)>,
    /// Add `x-deskhook-ticket` with the ordering key (for NATS, where a relay partitions
    /// by ticket; HTTP receivers read the ticket from the body).
    pub(crate) ticket_header: bool,
}

/// A response as the engine needs it.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) snippet: Vec<u8>,
}

/// An attempt that got no response.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) message: String,
    /// Timeouts and connection errors are retried; a refusal by the SSRF guard is not.
    pub(crate) retryable: bool,
}

/// What the engine asks of a blocking transport.
#[cfg(feature = "http-blocking")]
pub(crate) trait Transport: Send + Sync {
    /// POSTs `body` with `headers` to endpoint `endpoint`.
    fn post(
        &self,
        endpoint: usize,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError>;
}

/// What the engine asks of an async transport.
#[cfg(feature = "_async")]
pub(crate) trait AsyncTransport: Send + Sync {
    /// Sends `body` with `headers` to endpoint `endpoint` (an HTTP POST, or a JetStream
    /// publish whose acknowledgement counts as a 200).
    fn post(
        &self,
        endpoint: usize,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> impl std::future::Future<Output = Result<Response, AttemptError>> + Send;
}

/// What a worker does next.
enum Step {
    Attempt(Job),
    /// Nothing is due: wait for a wake-up, or until the instant when a retry falls due.
    Wait(Option<Instant>),
    Stop,
}

/// The headers of one attempt that change per attempt.
struct Prepared {
    timestamp: String,
    seq: String,
    signature: Option<String>,
    hub: Option<String>,
}

impl Prepared {
    /// Every header of the attempt, borrowed from the job, the route and `self`.
    fn headers<'a>(&'a self, rt: &'a EndpointRt, job: &'a Job) -> Vec<(&'a str, &'a str)> {
        let mut headers = Vec::with_capacity(8 + rt.route.headers.len());
        headers.push(("content-type", job.content_type));
        headers.push(("x-deskhook-action", job.event_type.as_str()));
        headers.push(("x-deskhook-sequence", self.seq.as_str()));
        headers.push(("webhook-id", &*job.id_text));
        headers.push(("webhook-timestamp", self.timestamp.as_str()));
        if let Some(signature) = &self.signature {
            headers.push(("webhook-signature", signature.as_str()));
        }
        if let Some(hub) = &self.hub {
            headers.push(("x-hub-signature-256", hub.as_str()));
        }
        if rt.route.ticket_header {
            headers.push((TICKET_HEADER, &*job.key));
        }
        headers.extend(
            rt.route
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        headers
    }
}

enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

enum Admit {
    Go,
    Hold(Instant),
}

impl Breaker {
    fn admit(&mut self, now: Instant, policy: &BreakerPolicy) -> Admit {
        match *self {
            Breaker::Closed { .. } => Admit::Go,
            Breaker::Open { until } if now < until => Admit::Hold(until),
            Breaker::Open { .. } | Breaker::HalfOpen { probing: false } => {
                *self = Breaker::HalfOpen { probing: true };
                Admit::Go
            }
            Breaker::HalfOpen { probing: true } => {
                let wait =
                    (policy.cool_down / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
                Admit::Hold(later(now, wait))
            }
        }
    }

    fn success(&mut self) {
        *self = Breaker::Closed { failures: 0 };
    }

    fn failure(&mut self, now: Instant, policy: &BreakerPolicy) {
        let open = Breaker::Open {
            until: later(now, policy.cool_down),
        };
        *self = match *self {
            _ if policy.failures == 0 => Breaker::Closed { failures: 0 },
            Breaker::Closed { failures } if failures + 1 < policy.failures => Breaker::Closed {
                failures: failures + 1,
            },
            _ => open,
        };
    }

    fn state(&self) -> BreakerState {
        match self {
            Breaker::Closed { .. } => BreakerState::Closed,
            Breaker::Open { .. } => BreakerState::Open,
            Breaker::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

const LATENCY_WINDOW: usize = 1024;

struct State {
    schedule: Schedule,
    /// The last `X-Deskhook-Sequence` per ticket; see [`SEQUENCE_MEMORY`].
    sequences: HashMap<Arc<str>, u64>,
    /// The size of `sequences` at which idle tickets are forgotten next.
    sequence_limit: usize,
    breaker: Breaker,
    disabled: bool,
    stopping: bool,
    /// Copies of the jobs being attempted, to report them if shutdown comes first.
    in_flight: Vec<Job>,
    latencies: Vec<Duration>,
    latency_next: usize,
    /// With a store: the last row moved into `schedule`, and how many rows were.
    loaded_through: i64,
    loaded: u64,
    /// With a store: tickets with more rows than a ticket may hold in memory, and the first
    /// of their rows left on disk (rows up to `loaded_through` of those tickets are read back
    /// from there when the ticket's queue runs low), so that one stuck ticket cannot fill the
    /// window and hold up the others.
    parked: HashMap<Arc<str>, i64>,
    /// Rows of parked tickets left on disk.
    parked_rows: u64,
    /// With a store: after a failed load, when to try again.
    load_again: Option<Instant>,
}

impl State {
    fn new() -> State {
        State {
            schedule: Schedule::default(),
            sequences: HashMap::new(),
            sequence_limit: SEQUENCE_MEMORY,
            breaker: Breaker::Closed { failures: 0 },
            disabled: false,
            stopping: false,
            in_flight: Vec::new(),
            latencies: Vec::new(),
            latency_next: 0,
            loaded_through: 0,
            loaded: 0,
            parked: HashMap::new(),
            parked_rows: 0,
            load_again: None,
        }
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    dead_lettered: AtomicU64,
}

pub(crate) struct EndpointRt {
    pub(crate) route: Route,
    /// Its place in the engine's endpoints.
    index: usize,
    state: Mutex<State>,
    /// Workers wait here for a job.
    work: Condvar,
    /// `emit` waits here for room under the block policy.
    room: Condvar,
    /// `flush` waits here for the queue to empty.
    idle: Condvar,
    /// Async workers wait here for a job.
    #[cfg(feature = "_async")]
    work_async: tokio::sync::Notify,
    /// Async flushes wait here for the queue to empty.
    #[cfg(feature = "_async")]
    idle_async: tokio::sync::Notify,
    /// Async workers alive.
    #[cfg(feature = "_async")]
    alive: std::sync::atomic::AtomicUsize,
    /// Attempts whose outcome is decided but whose observer call and dead letter are still
    /// being written; `flush` waits for them too. Raised under the state lock; lowered
    /// without it, but the last one takes the lock before waking a flush.
    settling: AtomicUsize,
    /// Jobs from `emit` not yet moved into the schedule. `emit` appends here without taking
    /// the state lock, which the workers hold often; a worker moves them over (and numbers
    /// them) the next time it looks for work.
    inbox: Mutex<Vec<Job>>,
    /// `inbox.len()`, readable without the inbox lock.
    inbox_len: AtomicUsize,
    /// `schedule.queued()` as of the last change, readable without the state lock.
    queued_mirror: AtomicUsize,
    /// Set (under the state lock) when the endpoint is disabled or stopping: `emit` then
    /// takes the slow path, which dead-letters.
    closed: std::sync::atomic::AtomicBool,
    /// Blocking workers about to wait or waiting on `work`; `emit` takes the state lock to
    /// wake one only when there are some.
    sleepers: AtomicUsize,
    counters: Counters,
}

impl EndpointRt {
    /// Wakes one worker, blocking or async.
    fn wake_one(&self) {
        self.work.notify_one();
        #[cfg(feature = "_async")]
        self.work_async.notify_one();
    }

    /// Wakes every worker.
    fn wake_all(&self) {
        self.work.notify_all();
        #[cfg(feature = "_async")]
        self.work_async.notify_waiters();
    }

    /// Wakes whoever waits for the queue to empty.
    fn wake_idle(&self) {
        self.idle.notify_all();
        #[cfg(feature = "_async")]
        self.idle_async.notify_waiters();
    }
}

/// The engine: endpoints, their queues and workers.
pub(crate) struct Engine {
    endpoints: Box<[EndpointRt]>,
    config: DeliveryConfig,
    dead_letters: DeadLetterLog,
    observer: Option<Arc<dyn Observer>>,
    order: AtomicU64,
    /// The spool, when there is one: then it is the queue (see [`Store`]).
    store: Option<Arc<dyn Store>>,
    /// What the owner of the engine asked for beyond the settings.
    hooks: Hooks,
}

/// Called with every dead letter, after it is written.
pub(crate) type DeadLetterHook = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// Behaviour a relay needs from the engine.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    /// At shutdown, drop what is undelivered instead of dead-lettering it: its owner (a
    /// relay) hands it back to be delivered elsewhere.
    pub(crate) drop_on_stop: bool,
    /// Told of every dead letter.
    pub(crate) dead_letter: Option<DeadLetterHook>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("drop_on_stop", &self.drop_on_stop)
            .field("dead_letter", &self.dead_letter.is_some())
            .finish()
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .endpoints
            .iter()
            .map(|e| e.route.name.as_str())
            .collect();
        f.debug_struct("Engine")
            .field("endpoints", &names)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in the engine panics while holding a lock; recover anyway rather than stop
    // delivering.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A number in [0, 1) that is random across events and attempts: the random bits of the
/// UUID v7 mixed with the attempt number (splitmix64). No RNG state, no lock.
fn jitter_unit(id: EventId, attempt: u32) -> f64 {
    let bits =
        id.as_uuid().as_u64_pair().1 ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut z = bits.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The longest wait the engine schedules: a retry, a Retry-After or a breaker pause past it
/// is cut to it, so that no instant arithmetic can overflow.
const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

/// `now + d`, with `d` cut to [`MAX_DELAY`].
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_DELAY)).unwrap_or(now)
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
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

/// How many tickets an endpoint remembers the last sequence number of. Past it, the numbers of
/// tickets with nothing pending are forgotten (their next event starts again at 1, as after a
/// restart), so that the memory of a long-running helpdesk does not grow with every ticket it
/// ever had.
pub(crate) const SEQUENCE_MEMORY: usize = 100_000;

/// The next `X-Deskhook-Sequence` of `key`, forgetting idle tickets when too many are known.
fn next_sequence(st: &mut State, key: &Arc<str>) -> u64 {
    if st.sequences.len() >= st.sequence_limit && !st.sequences.contains_key(key) {
        let schedule = &st.schedule;
        st.sequences.retain(|ticket, _| schedule.has_ticket(ticket));
        // If most tickets are pending, scan again only when the map has doubled: the cost
        // stays linear in the number of tickets seen.
        st.sequence_limit = SEQUENCE_MEMORY.max(st.sequences.len() * 2);
    }
    let seq = st.sequences.entry(key.clone()).or_insert(0);
    *seq += 1;
    *seq
}

/// Puts a job read from the store into the schedule: numbered, and not before it is due.
fn admit_loaded(
    st: &mut State,
    mut job: Job,
    due: Option<SystemTime>,
    now: Instant,
    wall: SystemTime,
) {
    job.seq = next_sequence(st, &job.key);
    match due.and_then(|due| due.duration_since(wall).ok()) {
        Some(wait) if !wait.is_zero() => st.schedule.push_at(job, later(now, wait)),
        _ => st.schedule.push(job),
    }
}

/// `EventSink` and `AsyncEventSink` for a sink that is an engine with a transport (a
/// `engine: Arc<Engine>` field): `send` queues, `flush` waits for the queues. The blocking
/// `flush` blocks the calling thread; in async code flush through the guard or the sink's
/// own `flush`.
#[cfg(feature = "_async")]
macro_rules! engine_sinks {
    ($sink:ty) => {
        impl deskhook::EventSink for $sink {
            fn send(&self, event: &deskhook::Emitted<'_>) -> Result<(), deskhook::Error> {
                self.engine.enqueue(event)
            }

            fn flush(&self, timeout: std::time::Duration) -> Result<(), deskhook::Error> {
                self.engine.flush(timeout).map_err(deskhook::Error::sink)
            }
        }

        #[async_trait::async_trait]
        impl deskhook::AsyncEventSink for $sink {
            async fn send(&self, event: &deskhook::Emitted<'_>) -> Result<(), deskhook::Error> {
                self.engine.enqueue_async(event).await
            }

            async fn flush(&self, timeout: std::time::Duration) -> Result<(), deskhook::Error> {
                self.engine
                    .flush_async(timeout)
                    .await
                    .map_err(deskhook::Error::sink)
            }
        }
    };
}
#[cfg(feature = "_async")]
pub(crate) use engine_sinks;

/// What `emit` returns for the problems of its endpoints.
fn sink_result(problems: Vec<String>) -> Result<(), deskhook::Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(deskhook::Error::sink(problems.join("; ")))
    }
}

fn now_rfc3339() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

impl Engine {
    pub(crate) fn new(
        routes: Vec<Route>,
        config: DeliveryConfig,
        observer: Option<Arc<dyn Observer>>,
        store: Option<Arc<dyn Store>>,
        hooks: Hooks,
    ) -> Engine {
        let endpoints = routes
            .into_iter()
            .enumerate()
            .map(|(index, route)| EndpointRt {
                route,
                index,
                state: Mutex::new(State::new()),
                work: Condvar::new(),
                room: Condvar::new(),
                idle: Condvar::new(),
                #[cfg(feature = "_async")]
                work_async: tokio::sync::Notify::new(),
                #[cfg(feature = "_async")]
                idle_async: tokio::sync::Notify::new(),
                #[cfg(feature = "_async")]
                alive: std::sync::atomic::AtomicUsize::new(0),
                settling: AtomicUsize::new(0),
                inbox: Mutex::new(Vec::new()),
                inbox_len: AtomicUsize::new(0),
                queued_mirror: AtomicUsize::new(0),
                closed: std::sync::atomic::AtomicBool::new(false),
                sleepers: AtomicUsize::new(0),
                counters: Counters::default(),
            })
            .collect();
        Engine {
            endpoints,
            dead_letters: DeadLetterLog::new(config.dead_letter_path.clone()),
            config,
            observer,
            order: AtomicU64::new(0),
            store,
            hooks,
        }
    }

    /// Whether what is undelivered at shutdown stays where it is (in the store, or with the
    /// relay that owns the engine) rather than going to the dead letters.
    fn keeps_undelivered(&self) -> bool {
        self.store.is_some() || self.hooks.drop_on_stop
    }

    /// The store's commit listener: the endpoints in `touched` got rows (wake a worker of
    /// each to load them); `dropped` jobs could not be written. Either way a flush may be
    /// waiting for the batch.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn on_commit(&self, touched: &[usize], dropped: &[(usize, u64)]) {
        for (index, n) in dropped {
            if let Some(rt) = self.endpoints.get(*index) {
                rt.counters.dropped.fetch_add(*n, Ordering::Relaxed);
            }
        }
        for rt in self.endpoints.iter() {
            // Under the lock, so that a worker or a flush between its last look and its
            // wait cannot miss the wake-up.
            drop(lock(&rt.state));
            if touched.contains(&rt.index) {
                rt.wake_one();
            }
            rt.wake_idle();
        }
    }

    pub(crate) fn endpoints(&self) -> &[EndpointRt] {
        &self.endpoints
    }

    pub(crate) fn check_dead_letter_file(&self) -> Result<(), Error> {
        self.dead_letters.check()
    }

    /// Queues `emitted` for every endpoint subscribed to its action. With a store that
    /// waits for commits, it returns once the jobs are durable.
    pub(crate) fn enqueue(&self, emitted: &Emitted<'_>) -> Result<(), deskhook::Error> {
        if let Some(store) = &self.store {
            let (receipt, mut problems) = self.spool(store.as_ref(), self.jobs_for(emitted));
            if store.waits_for_commit()
                && let Err(err) = receipt.wait(Duration::MAX)
            {
                problems.push(err.to_string());
            }
            return sink_result(problems);
        }
        let mut problems = Vec::new();
        for (index, job) in self.jobs_for(emitted) {
            if let Err(problem) = self.submit(index, job) {
                problems.push(problem);
            }
        }
        sink_result(problems)
    }

    /// [`enqueue`](Engine::enqueue) for async code: waits for the commit without blocking.
    #[cfg(feature = "_async")]
    pub(crate) async fn enqueue_async(&self, emitted: &Emitted<'_>) -> Result<(), deskhook::Error> {
        let Some(store) = &self.store else {
            return self.enqueue(emitted);
        };
        let (receipt, mut problems) = self.spool(store.as_ref(), self.jobs_for(emitted));
        if store.waits_for_commit()
            && let Err(err) = receipt.await
        {
            problems.push(err.to_string());
        }
        sink_result(problems)
    }

    /// Queues `emitted` like [`enqueue`](Engine::enqueue) but never waits: the receipt says
    /// when the event is durable. Without a store, the receipt is settled at once with an
    /// error saying so (the event is queued in memory all the same).
    pub(crate) fn enqueue_with_receipt(&self, emitted: &Emitted<'_>) -> Receipt {
        if let Some(store) = &self.store {
            let (receipt, problems) = self.spool(store.as_ref(), self.jobs_for(emitted));
            if problems.is_empty() {
                return receipt;
            }
            // Too large for every endpoint (the limit is the sink's): nothing was spooled.
            return Receipt::settled(Err(Error::Config(problems.join("; "))));
        }
        let outcome = self
            .enqueue(emitted)
            .map_err(|e| Error::Config(e.to_string()));
        Receipt::settled(
            outcome.and(Err(Error::Config(
                "this sink has no spool, so nothing is durable (the event is queued in memory); \
             add one with SinkBuilder::spool to get durability receipts"
                    .to_owned(),
            ))),
        )
    }

    /// Hands jobs to the store; a body over the limit goes to the dead letters instead.
    fn spool(&self, store: &dyn Store, jobs: Vec<(usize, Job)>) -> (Receipt, Vec<String>) {
        let mut problems = Vec::new();
        let mut fit = Vec::with_capacity(jobs.len());
        for (index, job) in jobs {
            match self.check_size(&self.endpoints[index], &job) {
                Ok(()) => fit.push((index, job)),
                Err(problem) => problems.push(problem),
            }
        }
        (store.append(fit), problems)
    }

    /// Dead-letters a job whose body is over `max_payload`, and says so.
    fn check_size(&self, rt: &EndpointRt, job: &Job) -> Result<(), String> {
        if job.body.len() <= self.config.max_payload {
            return Ok(());
        }
        let reason = format!(
            "body of {} bytes exceeds the {}-byte limit (raise max_payload or send less)",
            job.body.len(),
            self.config.max_payload
        );
        self.dead_letter(rt, job, &reason);
        Err(format!(
            "endpoint '{}': {reason}; event dead-lettered",
            rt.route.name
        ))
    }

    /// One job per endpoint subscribed to the event's type.
    fn jobs_for(&self, emitted: &Emitted<'_>) -> Vec<(usize, Job)> {
        let event_type = emitted.event_type();
        let mut targets = self
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.route.actions.contains(event_type))
            .peekable();
        if targets.peek().is_none() {
            return Vec::new();
        }
        let id = emitted.id();
        let template = Job {
            id,
            id_text: id.to_string().into(),
            event_type,
            key: emitted.ordering_key().into(),
            body: emitted.body().clone(),
            content_type: emitted.content_type(),
            seq: 0,
            order: 0,
            attempts: 0,
            last_status: None,
            last_error: None,
            row: None,
        };
        targets
            .map(|(index, _)| {
                let mut job = template.clone();
                job.order = self.order.fetch_add(1, Ordering::Relaxed);
                (index, job)
            })
            .collect()
    }

    /// Queues a job for endpoint `index`; returns what went wrong for that endpoint (the job
    /// is then dropped and counted, or dead-lettered). With drop-oldest the new job is queued
    /// and the oldest one is dropped, counted and logged here.
    ///
    /// The common case (room in the queue, endpoint open) appends to the inbox and never takes
    /// the state lock; a full queue (whatever the overflow policy) or a closed endpoint goes
    /// the slow way.
    pub(crate) fn submit(&self, index: usize, job: Job) -> Result<(), String> {
        let rt = &self.endpoints[index];
        self.check_size(rt, &job)?;
        let capacity = self.config.queue_capacity.max(1);
        let queued =
            rt.inbox_len.load(Ordering::Acquire) + rt.queued_mirror.load(Ordering::Acquire);
        if queued >= capacity || rt.closed.load(Ordering::Acquire) {
            return self.submit_slow(rt, job);
        }
        {
            let mut inbox = lock(&rt.inbox);
            inbox.push(job);
            rt.inbox_len.store(inbox.len(), Ordering::SeqCst);
        }
        if rt.closed.load(Ordering::SeqCst) {
            // Closed meanwhile, perhaps after the inbox was emptied for the last time:
            // nobody else would see this job.
            self.reclaim_inbox(rt);
            return Err(format!(
                "endpoint '{}': closed while the event was queued; event dead-lettered",
                rt.route.name
            ));
        }
        if rt.sleepers.load(Ordering::SeqCst) > 0 {
            // A blocking worker is waiting or about to: wake it under the lock so the wake-up
            // cannot fall between its last look at the inbox and its wait.
            let _st = lock(&rt.state);
            rt.work.notify_one();
        }
        #[cfg(feature = "_async")]
        rt.work_async.notify_one();
        Ok(())
    }

    /// Moves the inbox into the schedule, numbering each job per ticket
    /// (`X-Deskhook-Sequence`) in the order they were emitted. Under the state lock.
    ///
    /// Once the endpoint is stopping or disabled it does nothing: from then on only the
    /// emitters empty the inbox (`reclaim_inbox`), into the dead letters.
    fn drain_inbox(&self, rt: &EndpointRt, st: &mut State) {
        // SeqCst, paired with `submit`'s store of `inbox_len` and load of `closed`: a closer
        // either sees the job here or the emitter sees `closed` and reclaims it.
        if st.stopping || st.disabled || rt.inbox_len.load(Ordering::SeqCst) == 0 {
            return;
        }
        let jobs = {
            let mut inbox = lock(&rt.inbox);
            // Count the jobs as queued before the inbox looks empty, so that emitters racing
            // this drain cannot see room that is not there.
            rt.queued_mirror
                .store(st.schedule.queued() + inbox.len(), Ordering::Release);
            rt.inbox_len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *inbox)
        };
        for mut job in jobs {
            job.seq = next_sequence(st, &job.key);
            st.schedule.push(job);
        }
        rt.queued_mirror
            .store(st.schedule.queued(), Ordering::Release);
    }

    /// Dead-letters whatever is in the inbox of a closed endpoint.
    fn reclaim_inbox(&self, rt: &EndpointRt) {
        let jobs = {
            let mut inbox = lock(&rt.inbox);
            rt.inbox_len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *inbox)
        };
        let reason = if lock(&rt.state).disabled {
            "endpoint disabled after 410 Gone"
        } else {
            "sink shut down"
        };
        for job in &jobs {
            self.dead_letter(rt, job, reason);
        }
        // A flush may be waiting for this inbox to empty.
        drop(lock(&rt.state));
        rt.wake_idle();
    }

    /// `submit` when the queue is full or the endpoint is closed: under the state lock.
    fn submit_slow(&self, rt: &EndpointRt, mut job: Job) -> Result<(), String> {
        let name = &rt.route.name;
        let capacity = self.config.queue_capacity.max(1);
        let mut st = lock(&rt.state);
        self.drain_inbox(rt, &mut st);
        if st.schedule.queued() >= capacity
            && let OverflowPolicy::Block { timeout } = self.config.overflow
        {
            let deadline = later(Instant::now(), timeout);
            while st.schedule.queued() >= capacity && !st.stopping && !st.disabled {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = rt
                    .room
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                self.drain_inbox(rt, &mut st);
            }
        }
        if st.disabled || st.stopping {
            let reason = if st.disabled {
                "endpoint disabled after 410 Gone"
            } else {
                "sink shut down"
            };
            drop(st);
            self.dead_letter(rt, &job, reason);
            return Err(format!("endpoint '{name}': {reason}; event dead-lettered"));
        }
        let mut dropped = None;
        if st.schedule.queued() >= capacity {
            match self.config.overflow {
                OverflowPolicy::DropOldest => dropped = st.schedule.pop_oldest(),
                _ => {
                    drop(st);
                    rt.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return Err(format!(
                        "endpoint '{name}': queue full ({capacity} events, overflow {}); event {} \
                         ({} on ticket {}) dropped",
                        self.config.overflow, job.id_text, job.event_type, job.key
                    ));
                }
            }
        }
        // The sequence is taken only when the job is queued, so numbers reach the queue in
        // order; a gap tells the receiver that an event was dropped (drop-oldest).
        job.seq = next_sequence(&mut st, &job.key);
        st.schedule.push(job);
        rt.queued_mirror
            .store(st.schedule.queued(), Ordering::Release);
        rt.wake_one();
        drop(st);
        if let Some(old) = dropped {
            rt.counters.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                target: "deskhook",
                "endpoint '{name}': queue full ({capacity} events, overflow drop-oldest); event {} \
                 ({} on ticket {}, sequence {}) dropped",
                old.id_text,
                old.event_type,
                old.key,
                old.seq
            );
        }
        Ok(())
    }

    fn dead_letter(&self, rt: &EndpointRt, job: &Job, reason: &str) {
        rt.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        // Bodies are JSON; anything else is kept as a JSON string rather than lost.
        let body = raw_body(&job.body);
        let letter = DeadLetter {
            id: job.id_text.to_string(),
            endpoint: rt.route.name.clone(),
            url: rt.route.url.clone(),
            action: job.event_type.to_string(),
            ticket: job.key.to_string(),
            attempts: job.attempts,
            last_status: job.last_status,
            last_error: job.last_error.clone(),
            reason: reason.to_owned(),
            failed_at: now_rfc3339(),
            body,
        };
        log::warn!(
            target: "deskhook",
            "event {} ({} on ticket {}) for endpoint '{}' dead-lettered to {}: {reason}",
            job.id_text,
            job.event_type,
            job.key,
            rt.route.name,
            self.dead_letter_place()
        );
        self.write_letter(job.row, letter);
    }

    /// Writes a dead letter (moving row `row` of the store, if it has one) and tells the
    /// hook.
    pub(crate) fn write_letter(&self, row: Option<i64>, letter: DeadLetter) {
        if let Some(hook) = &self.hooks.dead_letter {
            hook(&letter);
        }
        match &self.store {
            Some(store) => store.dead(row, letter),
            None => self.dead_letters.write(&letter),
        }
    }

    /// Where dead letters go, for messages.
    fn dead_letter_place(&self) -> String {
        match &self.store {
            Some(store) => store.dead_letter_place(),
            None => self.dead_letters.path().display().to_string(),
        }
    }

    /// With a store: whether every committed row of the endpoint is in memory (or done).
    fn all_loaded(&self, rt: &EndpointRt, st: &State) -> bool {
        self.store.as_ref().is_none_or(|store| {
            store.uncommitted() == 0 && store.committed(rt.index).0 <= st.loaded_through
        })
    }

    /// Whether nothing is waiting, in memory or in the store, and nothing is in flight.
    fn is_idle(&self, rt: &EndpointRt, st: &State) -> bool {
        st.schedule.is_idle()
            && rt.inbox_len.load(Ordering::Acquire) == 0
            && st.parked.is_empty()
            && self.all_loaded(rt, st)
    }

    /// Jobs waiting in the store, not loaded yet.
    fn unloaded(&self, rt: &EndpointRt, st: &State) -> usize {
        self.store.as_ref().map_or(0, |store| {
            let total = store.committed(rt.index).1;
            usize::try_from(total.saturating_sub(st.loaded) + st.parked_rows).unwrap_or(usize::MAX)
        })
    }

    /// With a store: moves the endpoint's next committed rows into the schedule when it runs
    /// low. Returns when to try again after a failed read.
    fn load(&self, rt: &EndpointRt, st: &mut State) -> Option<Instant> {
        let store = self.store.as_ref()?;
        let now = Instant::now();
        if st.stopping || st.load_again.is_some_and(|at| now < at) {
            return st.load_again;
        }
        let (through, total) = store.committed(rt.index);
        if st.disabled {
            if through > st.loaded_through || !st.parked.is_empty() {
                self.dead_letter_the_rest(rt, st, store.as_ref(), through, total);
            }
            return None;
        }
        let window = store.window().max(1);
        let per_ticket = (window / 8).max(4);
        if let Some(again) = self.unpark(rt, st, store.as_ref(), per_ticket, now) {
            return Some(again);
        }
        let queued = st.schedule.queued();
        if through <= st.loaded_through || queued > window / 2 {
            return None;
        }
        let loaded = match store.load(
            rt.index,
            RowRange::after(st.loaded_through),
            window - queued,
        ) {
            Ok(loaded) => loaded,
            Err(err) => return self.load_failed(rt, st, &err, now),
        };
        st.load_again = None;
        st.loaded_through = st.loaded_through.max(loaded.through);
        st.loaded += loaded.rows;
        rt.counters
            .dead_lettered
            .fetch_add(loaded.bad, Ordering::Relaxed);
        let wall = SystemTime::now();
        for (job, due) in loaded.jobs {
            // A ticket with its share in memory already keeps the rest on disk; so do the
            // later rows of a ticket parked before.
            if st.parked.contains_key(&job.key) {
                st.parked_rows += 1;
                continue;
            }
            if st.schedule.ticket_len(&job.key) >= per_ticket {
                st.parked
                    .insert(job.key.clone(), job.row.unwrap_or(st.loaded_through));
                st.parked_rows += 1;
                continue;
            }
            admit_loaded(st, job, due, now, wall);
        }
        if loaded.bad > 0 {
            rt.wake_idle();
        }
        None
    }

    /// Reads back the rows of parked tickets whose queue ran low.
    fn unpark(
        &self,
        rt: &EndpointRt,
        st: &mut State,
        store: &dyn Store,
        per_ticket: usize,
        now: Instant,
    ) -> Option<Instant> {
        if st.parked.is_empty() {
            return None;
        }
        let low: Vec<(Arc<str>, i64)> = st
            .parked
            .iter()
            .filter(|(ticket, _)| st.schedule.ticket_len(ticket) <= per_ticket / 2)
            .map(|(ticket, from)| (ticket.clone(), *from))
            .collect();
        let wall = SystemTime::now();
        for (ticket, from) in low {
            let limit = per_ticket - st.schedule.ticket_len(&ticket);
            let range = RowRange {
                after: from - 1,
                through: Some(st.loaded_through),
                ticket: Some(&ticket),
            };
            let loaded = match store.load(rt.index, range, limit) {
                Ok(loaded) => loaded,
                Err(err) => return self.load_failed(rt, st, &err, now),
            };
            st.parked_rows = st.parked_rows.saturating_sub(loaded.rows);
            rt.counters
                .dead_lettered
                .fetch_add(loaded.bad, Ordering::Relaxed);
            if (loaded.rows as usize) < limit {
                st.parked.remove(&ticket);
            } else {
                st.parked.insert(ticket, loaded.through + 1);
            }
            for (job, due) in loaded.jobs {
                admit_loaded(st, job, due, now, wall);
            }
        }
        None
    }

    /// A read of the store failed: say so, and try again in a second.
    fn load_failed(
        &self,
        rt: &EndpointRt,
        st: &mut State,
        err: &Error,
        now: Instant,
    ) -> Option<Instant> {
        log::error!(
            target: "deskhook",
            "endpoint '{}': {err}; trying again in 1 s",
            rt.route.name
        );
        st.load_again = Some(later(now, Duration::from_secs(1)));
        st.load_again
    }

    /// A disabled endpoint: everything left on disk goes to the dead letters, in one
    /// statement per parked ticket and one for the rest, without reading it.
    fn dead_letter_the_rest(
        &self,
        rt: &EndpointRt,
        st: &mut State,
        store: &dyn Store,
        through: i64,
        total: u64,
    ) {
        const REASON: &str = "endpoint disabled after 410 Gone";
        let moved = total.saturating_sub(st.loaded) + st.parked_rows;
        for (ticket, from) in std::mem::take(&mut st.parked) {
            let range = RowRange {
                after: from - 1,
                through: Some(st.loaded_through),
                ticket: Some(&ticket),
            };
            store.dead_range(rt.index, range, REASON);
        }
        st.parked_rows = 0;
        if through > st.loaded_through {
            let range = RowRange {
                after: st.loaded_through,
                through: Some(through),
                ticket: None,
            };
            store.dead_range(rt.index, range, REASON);
        }
        (st.loaded_through, st.loaded) = (through.max(st.loaded_through), total);
        rt.counters
            .dead_lettered
            .fetch_add(moved, Ordering::Relaxed);
        log::warn!(
            target: "deskhook",
            "endpoint '{}' is disabled (410 Gone): {moved} spooled event(s) moved to {}",
            rt.route.name,
            self.dead_letter_place()
        );
        rt.wake_idle();
    }

    /// The blocking worker loop of endpoint `index`; returns when the engine stops.
    #[cfg(feature = "http-blocking")]
    pub(crate) fn run_worker(&self, index: usize, transport: &dyn Transport) {
        let rt = &self.endpoints[index];
        loop {
            let job = {
                let mut st = lock(&rt.state);
                loop {
                    match self.step(rt, &mut st) {
                        Step::Attempt(job) => break job,
                        Step::Stop => return,
                        Step::Wait(due) => {
                            // Announce the wait before the last look at the inbox: an emit
                            // that lands after that look sees a sleeper and wakes it under
                            // this lock (see `submit`).
                            rt.sleepers.fetch_add(1, Ordering::SeqCst);
                            if rt.inbox_len.load(Ordering::SeqCst) == 0 {
                                st = match due {
                                    Some(due) => {
                                        let wait = due.saturating_duration_since(Instant::now());
                                        rt.work
                                            .wait_timeout(st, wait)
                                            .unwrap_or_else(|p| p.into_inner())
                                            .0
                                    }
                                    None => rt.work.wait(st).unwrap_or_else(|p| p.into_inner()),
                                };
                            }
                            rt.sleepers.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
            };
            let result = match self.prepare(rt, &job) {
                Ok(prepared) => {
                    let headers = prepared.headers(rt, &job);
                    let started = Instant::now();
                    let result = transport.post(index, &headers, &job.body);
                    (result, started.elapsed())
                }
                Err(err) => (Err(err), Duration::ZERO),
            };
            self.settle(rt, job, result.0, result.1);
        }
    }

    /// The async worker loop of endpoint `index`; returns when the engine stops.
    #[cfg(feature = "_async")]
    pub(crate) async fn run_worker_async<T: AsyncTransport>(&self, index: usize, transport: &T) {
        let rt = &self.endpoints[index];
        loop {
            let job = loop {
                // Registered before the state is looked at, so no wake-up is missed.
                let notified = rt.work_async.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let step = {
                    let mut st = lock(&rt.state);
                    self.step(rt, &mut st)
                };
                match step {
                    Step::Attempt(job) => break job,
                    Step::Stop => return,
                    Step::Wait(None) => notified.await,
                    Step::Wait(Some(due)) => {
                        tokio::select! {
                            () = notified => {}
                            () = tokio::time::sleep_until(due.into()) => {}
                        }
                    }
                }
            };
            let (result, duration) = match self.prepare(rt, &job) {
                Ok(prepared) => {
                    let headers = prepared.headers(rt, &job);
                    let started = Instant::now();
                    let result = transport.post(index, &headers, &job.body).await;
                    (result, started.elapsed())
                }
                Err(err) => (Err(err), Duration::ZERO),
            };
            self.settle(rt, job, result, duration);
        }
    }

    /// Under the endpoint's lock: the next job to attempt, or how long to wait.
    fn step(&self, rt: &EndpointRt, st: &mut State) -> Step {
        self.drain_inbox(rt, st);
        let load_again = self.load(rt, st);
        let mut step = self.step_schedule(rt, st);
        if let (Step::Wait(due), Some(again)) = (&mut step, load_again) {
            *due = Some(due.map_or(again, |due| due.min(again)));
        }
        rt.queued_mirror
            .store(st.schedule.queued(), Ordering::Release);
        step
    }

    fn step_schedule(&self, rt: &EndpointRt, st: &mut State) -> Step {
        loop {
            if st.stopping {
                return Step::Stop;
            }
            let now = Instant::now();
            let Some(mut job) = st.schedule.take(now) else {
                return Step::Wait(st.schedule.next_due());
            };
            match st.breaker.admit(now, &self.config.breaker) {
                Admit::Go => {
                    job.attempts += 1;
                    st.in_flight.push(job.clone());
                    // Room for a blocked emit; another worker for what is ready, or to
                    // take over the wait for the next retry.
                    rt.room.notify_one();
                    if st.schedule.has_ready() || st.schedule.next_due().is_some() {
                        rt.wake_one();
                    }
                    return Step::Attempt(job);
                }
                Admit::Hold(until) => st.schedule.retry_at(job, until),
            }
        }
    }

    /// The timestamp, sequence and signatures of an attempt.
    fn prepare(&self, rt: &EndpointRt, job: &Job) -> Result<Prepared, AttemptError> {
        let now = SystemTime::now();
        let timestamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let active = |expires: &Option<SystemTime>| expires.is_none_or(|e| now < e);
        let mut signature = None;
        if !rt.route.signers.is_empty() {
            let ts = i64::try_from(timestamp).unwrap_or(i64::MAX);
            // One string, no list: this runs on every attempt.
            let mut entries = String::new();
            for (signer, _) in rt.route.signers.iter().filter(|(_, e)| active(e)) {
                let entry = signer.sign(&job.id_text, ts, &job.body);
                if entries.is_empty() {
                    entries = entry;
                } else {
                    entries.push(' ');
                    entries.push_str(&entry);
                }
            }
            if entries.is_empty() {
                return Err(AttemptError {
                    message: "every signing secret of the endpoint has expired; add a current \
                              secret (an unsigned request would be refused by the receiver)"
                        .to_owned(),
                    retryable: false,
                });
            }
            signature = Some(entries);
        }
        let hub = rt
            .route
            .hub_secrets
            .iter()
            .find(|(_, expires)| active(expires))
            .map(|(secret, _)| deskhook::signature::hub_signature(secret, &job.body));
        Ok(Prepared {
            timestamp: timestamp.to_string(),
            seq: job.seq.to_string(),
            signature,
            hub,
        })
    }

    /// Records the outcome of an attempt. A job that is finished for good keeps its ticket
    /// in flight until its dead letter is written, so that the ticket's next event is neither
    /// attempted nor dead-lettered before it.
    fn settle(
        &self,
        rt: &EndpointRt,
        mut job: Job,
        result: Result<Response, AttemptError>,
        duration: Duration,
    ) {
        let (verdict, retry_after, snippet) = match result {
            Ok(response) => {
                job.last_status = Some(response.status);
                job.last_error = None;
                let retry_after = if Verdict::honours_retry_after(response.status) {
                    response.retry_after
                } else {
                    None
                };
                (
                    Verdict::of_status(response.status),
                    retry_after,
                    response.snippet,
                )
            }
            Err(err) => {
                job.last_status = None;
                job.last_error = Some(err.message);
                let verdict = if err.retryable {
                    Verdict::Retry
                } else {
                    Verdict::Fail
                };
                (verdict, None, Vec::new())
            }
        };
        let now = Instant::now();
        // Jobs to dead-letter, with the reason; `finished` is the attempted one when it is
        // finished for good (its ticket stays in flight until the letter is written).
        let mut dead: Vec<(Job, String)> = Vec::new();
        let mut finished: Option<Arc<str>> = None;
        let mut next_attempt = None;
        let outcome;
        let mut st = lock(&rt.state);
        // Shutdown dead-letters what is in flight, except with a store, which keeps it.
        let already_reported = st.stopping && !self.keeps_undelivered();
        let mut stored_retry = None;
        st.in_flight.retain(|j| j.order != job.order);
        if job.last_status.is_some() {
            if st.latencies.len() < LATENCY_WINDOW {
                st.latencies.push(duration);
            } else {
                let at = st.latency_next;
                st.latencies[at] = duration;
            }
            st.latency_next = (st.latency_next + 1) % LATENCY_WINDOW;
        }
        let record_job = job.clone();
        match verdict {
            Verdict::Delivered => {
                st.breaker.success();
                rt.counters.delivered.fetch_add(1, Ordering::Relaxed);
                // Recorded before the ticket's next job can go, so that the store sees a
                // ticket's outcomes in order.
                if let (Some(store), Some(row)) = (&self.store, job.row) {
                    store.delivered(row);
                }
                st.schedule.done(&job.key);
                outcome = AttemptOutcome::Delivered;
            }
            Verdict::Retry => {
                st.breaker.failure(now, &self.config.breaker);
                rt.counters.failed.fetch_add(1, Ordering::Relaxed);
                let next = job.attempts + 1;
                let delay = rt
                    .route
                    .retry
                    .jittered_delay_before(next, jitter_unit(job.id, next));
                match delay {
                    // With a store, a retry due after shutdown stays in the store.
                    Some(delay) if (!st.stopping || self.keeps_undelivered()) && !st.disabled => {
                        let floor = retry_after
                            .map_or(Duration::ZERO, |r| r.min(self.config.retry_after_max));
                        let delay = delay.max(floor).min(MAX_DELAY);
                        next_attempt = SystemTime::now().checked_add(delay);
                        if self.store.is_some() {
                            stored_retry = Some((job.clone(), next_attempt));
                        }
                        st.schedule.retry_at(job, later(now, delay));
                        rt.counters.retried.fetch_add(1, Ordering::Relaxed);
                        outcome = AttemptOutcome::Retrying;
                    }
                    _ => {
                        let reason = if st.disabled {
                            "endpoint disabled after 410 Gone".to_owned()
                        } else if st.stopping {
                            "shut down before the next attempt".to_owned()
                        } else {
                            format!("gave up after {} attempt(s)", job.attempts)
                        };
                        finished = Some(job.key.clone());
                        dead.push((job, reason));
                        outcome = AttemptOutcome::DeadLettered;
                    }
                }
            }
            Verdict::Fail => {
                // A response means the endpoint is up (its answer was final); no response
                // (a refusal) says nothing good about it. Either way a probe is resolved.
                if job.last_status.is_some() {
                    st.breaker.success();
                } else {
                    st.breaker.failure(now, &self.config.breaker);
                }
                rt.counters.failed.fetch_add(1, Ordering::Relaxed);
                let reason = match job.last_status {
                    Some(status) if (300..400).contains(&status) => format!(
                        "{status} redirect (redirects are not followed; configure the final URL)"
                    ),
                    Some(status) => format!("{status} from the receiver (not retried)"),
                    None => job.last_error.clone().unwrap_or_default(),
                };
                finished = Some(job.key.clone());
                dead.push((job, reason));
                outcome = AttemptOutcome::DeadLettered;
            }
            _ => {
                st.breaker.success();
                rt.counters.failed.fetch_add(1, Ordering::Relaxed);
                rt.closed.store(true, Ordering::SeqCst);
                self.drain_inbox(rt, &mut st);
                st.disabled = true;
                finished = Some(job.key.clone());
                dead.push((
                    job,
                    "410 Gone: the endpoint asked to stop; it is disabled".to_owned(),
                ));
                for queued in st.schedule.drain() {
                    dead.push((queued, "endpoint disabled after 410 Gone".to_owned()));
                }
                outcome = AttemptOutcome::EndpointDisabled;
            }
        }
        rt.queued_mirror
            .store(st.schedule.queued(), Ordering::Release);
        rt.settling.fetch_add(1, Ordering::AcqRel);
        let ready = st.schedule.has_ready();
        let breaker = st.breaker.state();
        drop(st);
        rt.room.notify_all();
        if ready {
            rt.wake_one();
        }
        if let (Some(store), Some((job, next))) = (&self.store, &stored_retry) {
            store.attempted(job, next.unwrap_or_else(SystemTime::now));
        }

        if outcome == AttemptOutcome::EndpointDisabled {
            log::error!(
                target: "deskhook",
                "endpoint '{}' ({}) answered 410 Gone and is disabled; {} event(s) moved to the \
                 dead letters",
                rt.route.name,
                rt.route.url,
                dead.len()
            );
        }
        for (job, reason) in &dead {
            if already_reported && job.order == record_job.order {
                // Shutdown wrote this job as in flight already.
                continue;
            }
            self.dead_letter(rt, job, reason);
        }
        if let Some(observer) = &self.observer {
            let take = snippet.len().min(RESPONSE_SNIPPET_BYTES);
            let record = AttemptRecord {
                event_id: record_job.id,
                endpoint: &rt.route.name,
                url: &rt.route.url,
                action: record_job.event_type.action(),
                event_type: record_job.event_type,
                ticket: &record_job.key,
                attempt: record_job.attempts,
                status: record_job.last_status,
                error: record_job.last_error.as_deref(),
                duration,
                response: &snippet[..take],
                next_attempt,
                outcome,
                breaker,
            };
            if catch_unwind(AssertUnwindSafe(|| observer.on_attempt(&record))).is_err() {
                log::error!(target: "deskhook", "the delivery observer panicked; delivery goes on");
            }
        }
        if let Some(key) = finished {
            let mut st = lock(&rt.state);
            st.schedule.done(&key);
            let last = rt.settling.fetch_sub(1, Ordering::AcqRel) == 1;
            let idle = last && self.is_idle(rt, &st);
            let ready = st.schedule.has_ready();
            drop(st);
            if ready {
                rt.wake_one();
            }
            if idle {
                rt.wake_idle();
            }
        } else if rt.settling.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Taking the lock orders this with a flush that checked before the decrement and
            // is about to wait: it is then waiting when woken.
            let idle = self.is_idle(rt, &lock(&rt.state));
            if idle {
                rt.wake_idle();
            }
        }
    }

    /// Waits until every queue is empty and nothing is in flight, or `timeout` passes.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = later(Instant::now(), timeout);
        for rt in self.endpoints.iter() {
            let mut st = lock(&rt.state);
            loop {
                let settled = self.is_idle(rt, &st) && rt.settling.load(Ordering::Acquire) == 0;
                if settled || st.stopping {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = rt
                    .idle
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        self.pending_after(timeout)
    }

    /// [`Engine::flush`] for async code: waits without blocking the runtime.
    #[cfg(feature = "_async")]
    pub(crate) async fn flush_async(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = later(Instant::now(), timeout);
        for rt in self.endpoints.iter() {
            loop {
                let notified = rt.idle_async.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let st = lock(&rt.state);
                    let settled = self.is_idle(rt, &st) && rt.settling.load(Ordering::Acquire) == 0;
                    if settled || st.stopping {
                        break;
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
        }
        self.pending_after(timeout)
    }

    fn pending_after(&self, timeout: Duration) -> Result<(), Error> {
        let (queued, in_flight) = self.pending();
        if queued + in_flight == 0 {
            Ok(())
        } else {
            Err(Error::Undelivered {
                queued,
                in_flight,
                timeout,
            })
        }
    }

    /// Jobs queued, and jobs in flight or still being settled.
    fn pending(&self) -> (usize, usize) {
        self.endpoints.iter().fold((0, 0), |(q, f), rt| {
            let st = lock(&rt.state);
            (
                q + st.schedule.queued()
                    + rt.inbox_len.load(Ordering::Acquire)
                    + self.unloaded(rt, &st),
                f + st
                    .schedule
                    .in_flight()
                    .max(rt.settling.load(Ordering::Acquire)),
            )
        })
    }

    /// Flushes for `timeout`, then stops the workers. What is still queued goes to the dead
    /// letters; what is in flight is dead-lettered too (it may also arrive: receivers
    /// de-duplicate on `webhook-id`), all in the order they were accepted.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let flushed = self.flush(timeout);
        let left: usize = self
            .endpoints
            .iter()
            .map(|rt| self.stop_endpoint(rt, "undelivered at shutdown"))
            .sum();
        if let Some(store) = &self.store {
            store.close();
        }
        if left > 0 {
            log::warn!(
                target: "deskhook",
                "shutdown after {}: {left} event(s) undelivered, {}",
                deskhook::policy::format_duration(timeout),
                self.left_place()
            );
        }
        flushed
    }

    /// Where undelivered events go at shutdown, for messages.
    fn left_place(&self) -> String {
        match &self.store {
            Some(_) => "kept in the spool for the next start".to_owned(),
            None if self.hooks.drop_on_stop => "handed back to be delivered elsewhere".to_owned(),
            None => format!("written to {}", self.dead_letters.path().display()),
        }
    }

    /// Stops one endpoint's workers and dead-letters its queued and in-flight jobs, in the
    /// order they were accepted; returns how many. With a store they stay in the store
    /// instead (and are counted all the same). Does nothing if it was stopped already.
    fn stop_endpoint(&self, rt: &EndpointRt, reason: &str) -> usize {
        let mut st = lock(&rt.state);
        if st.stopping {
            return 0;
        }
        rt.closed.store(true, Ordering::SeqCst);
        self.drain_inbox(rt, &mut st);
        st.stopping = true;
        rt.queued_mirror.store(0, Ordering::Release);
        if self.keeps_undelivered() {
            let left = st.schedule.drain().len() + st.in_flight.len() + self.unloaded(rt, &st);
            drop(st);
            rt.wake_all();
            rt.room.notify_all();
            rt.wake_idle();
            return left;
        }
        let mut jobs: Vec<(Job, String)> = st
            .schedule
            .drain()
            .into_iter()
            .map(|job| (job, reason.to_owned()))
            .collect();
        jobs.extend(st.in_flight.iter().cloned().map(|job| {
            (
                job,
                format!(
                    "{reason}, while in flight (it may also have been delivered; receivers \
                     de-duplicate on webhook-id)"
                ),
            )
        }));
        drop(st);
        rt.wake_all();
        rt.room.notify_all();
        rt.wake_idle();
        jobs.sort_by_key(|(job, _)| job.order);
        for (job, reason) in &jobs {
            self.dead_letter(rt, job, reason);
        }
        jobs.len()
    }

    /// An async worker of endpoint `index` started.
    #[cfg(feature = "_async")]
    pub(crate) fn worker_started(&self, index: usize) {
        self.endpoints[index].alive.fetch_add(1, Ordering::AcqRel);
    }

    /// An async worker of endpoint `index` ended: it returned, or its runtime shut down and
    /// dropped it. When the last one goes while the engine runs, nothing would deliver what
    /// is queued, so it goes to the dead letters rather than being lost silently.
    #[cfg(feature = "_async")]
    pub(crate) fn worker_gone(&self, index: usize) {
        let rt = &self.endpoints[index];
        if rt.alive.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let left = self.stop_endpoint(rt, "the async runtime shut down before delivery");
        if left > 0 {
            log::error!(
                target: "deskhook",
                "the runtime of endpoint '{}' shut down with {left} event(s) undelivered, {}",
                rt.route.name,
                self.left_place()
            );
        }
    }

    pub(crate) fn stats(&self) -> Vec<EndpointStats> {
        self.endpoints
            .iter()
            .map(|rt| {
                let st = lock(&rt.state);
                let mut latencies = st.latencies.clone();
                let (queued, in_flight, disabled, breaker) = (
                    st.schedule.queued()
                        + rt.inbox_len.load(Ordering::Acquire)
                        + self.unloaded(rt, &st),
                    st.schedule.in_flight(),
                    st.disabled,
                    st.breaker.state(),
                );
                drop(st);
                latencies.sort_unstable();
                let pct = |p: usize| {
                    (!latencies.is_empty()).then(|| latencies[(latencies.len() - 1) * p / 100])
                };
                let c = &rt.counters;
                EndpointStats {
                    name: rt.route.name.clone(),
                    queued,
                    in_flight,
                    delivered: c.delivered.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    retried: c.retried.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
                    disabled,
                    breaker,
                    latency_p50: pct(50),
                    latency_p99: pct(99),
                }
            })
            .collect()
    }

    /// Queues a dead letter again for its endpoint, with its id and body, attempts from 0.
    pub(crate) fn redeliver(&self, letter: &DeadLetter) -> Result<(), Error> {
        let index = self
            .endpoints
            .iter()
            .position(|e| e.route.name == letter.endpoint)
            .ok_or_else(|| {
                Error::Config(format!(
                    "dead letter {} names endpoint '{}', which the configuration does not have",
                    letter.id, letter.endpoint
                ))
            })?;
        let id: EventId = letter.id.parse().map_err(|e| {
            Error::Config(format!(
                "dead letter id '{}' is not a deskhook event id: {e}",
                letter.id
            ))
        })?;
        let event_type = EventType::from_wire(&letter.action).ok_or_else(|| {
            Error::Config(format!(
                "dead letter {} has unknown event type '{}'",
                letter.id, letter.action
            ))
        })?;
        let job = Job {
            id,
            id_text: letter.id.as_str().into(),
            event_type,
            key: letter.ticket.as_str().into(),
            body: Bytes::copy_from_slice(letter.body.get().as_bytes()),
            content_type: event_type.content_type(),
            seq: 0,
            order: self.order.fetch_add(1, Ordering::Relaxed),
            attempts: 0,
            last_status: None,
            last_error: None,
            row: None,
        };
        match &self.store {
            Some(store) => store.append(vec![(index, job)]).wait(Duration::MAX),
            None => self.submit(index, job).map_err(Error::Config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_tickets_are_forgotten_past_the_sequence_memory() {
        let mut st = State::new();
        let pending: Arc<str> = "pending".into();
        st.schedule.push(Job::for_test("pending", 0));
        assert_eq!(next_sequence(&mut st, &pending), 1);
        for i in 1..SEQUENCE_MEMORY {
            let key: Arc<str> = format!("T{i}").into();
            assert_eq!(next_sequence(&mut st, &key), 1);
        }
        assert_eq!(st.sequences.len(), SEQUENCE_MEMORY);
        // One more ticket: the idle ones are forgotten, the pending one keeps counting.
        let new: Arc<str> = "new".into();
        assert_eq!(next_sequence(&mut st, &new), 1);
        assert_eq!(st.sequences.len(), 2);
        assert_eq!(next_sequence(&mut st, &pending), 2);
        let t1: Arc<str> = "T1".into();
        assert_eq!(
            next_sequence(&mut st, &t1),
            1,
            "a forgotten ticket starts again at 1"
        );
    }

    #[test]
    fn jitter_units_spread_over_the_unit_interval() {
        let units: Vec<f64> = (0..1000).map(|_| jitter_unit(EventId::new(), 2)).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        let low = units.iter().filter(|u| **u < 0.5).count();
        assert!((350..650).contains(&low), "{low} of 1000 below 0.5");
        let id = EventId::new();
        assert_ne!(jitter_unit(id, 2), jitter_unit(id, 3));
    }

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let policy = BreakerPolicy {
            failures: 2,
            cool_down: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        let mut b = Breaker::Closed { failures: 0 };
        b.failure(t0, &policy);
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure(t0, &policy);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.admit(t0, &policy), Admit::Hold(_)));
        let later = t0 + Duration::from_millis(100);
        assert!(matches!(b.admit(later, &policy), Admit::Go));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(
            matches!(b.admit(later, &policy), Admit::Hold(_)),
            "one probe at a time"
        );
        b.failure(later, &policy);
        assert_eq!(b.state(), BreakerState::Open);
        let much_later = later + Duration::from_millis(100);
        assert!(matches!(b.admit(much_later, &policy), Admit::Go));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
