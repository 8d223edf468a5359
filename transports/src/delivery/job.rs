//! One event and its jobs: what `emit` makes of an event ([`EventData`], shared), and the
//! job each endpoint it goes to queues and attempts ([`Job`]), with a template's render of
//! its body kept for the retries ([`Rendered`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
#[cfg(test)]
use deskhook::Action;
use deskhook::EventType;
use deskhook::sink::EventId;

use super::budget::Charge;

/// What one event is, shared by its jobs (one per endpoint it goes to).
#[derive(Debug)]
pub(crate) struct EventData {
    pub(crate) id: EventId,
    pub(crate) id_text: Arc<str>,
    pub(crate) event_type: EventType,
    /// The ticket: the ordering key.
    pub(crate) key: Arc<str>,
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// Shared, not copied, by the attempt log's entry of each attempt and by renders.
    pub(crate) tenant: Option<Arc<str>>,
    /// The body's share of the memory budget, released with the last job.
    pub(crate) charge: Option<Charge>,
    /// The body parsed for payload templates, once for all the endpoints that have one.
    pub(crate) parsed: std::sync::OnceLock<Result<Arc<crate::template::Parsed>, String>>,
    /// Set when the event must no longer be attempted: a relay lost the partition it came
    /// from, and the partition's next owner delivers it. Its jobs still queued are let go
    /// unattempted (an attempt in flight finishes).
    pub(crate) withdrawn: Option<Arc<Withdrawal>>,
    /// Queued whatever its endpoints' queues hold (`queue_capacity`): a relay let it in past
    /// its whole room, as part of a message that goes whole.
    pub(crate) past_capacity: bool,
}

impl EventData {
    /// The event of an emit (not charged to any budget yet).
    pub(crate) fn of(emitted: &deskhook::sink::Emitted<'_>) -> EventData {
        let id = emitted.id();
        // Written straight into its place, not through a formatter and a `String`: this
        // runs in every `emit`.
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        EventData {
            id,
            id_text: (&*id.as_uuid().hyphenated().encode_lower(&mut text)).into(),
            event_type: emitted.event_type(),
            key: emitted.ordering_key().into(),
            body: emitted.body().clone(),
            content_type: emitted.content_type(),
            tenant: emitted.tenant().map(Into::into),
            charge: None,
            parsed: std::sync::OnceLock::new(),
            withdrawn: None,
            past_capacity: false,
        }
    }

    /// Whether the event was withdrawn (see [`EventData::withdrawn`]).
    pub(crate) fn is_withdrawn(&self) -> bool {
        self.withdrawn
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }
}

/// One event for one endpoint. Owned by exactly one place at a time (the inbox, the
/// endpoint's schedule, or the attempt in flight), never copied.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) event: Arc<EventData>,
    /// `X-Deskhook-Sequence`.
    pub(crate) seq: u64,
    /// Order of acceptance across all endpoints, for drop-oldest and dead-letter order.
    pub(crate) order: u64,
    pub(crate) attempts: u32,
    pub(crate) last_status: Option<u16>,
    /// Its ticket's place in its endpoint's schedule while it is attempted (see
    /// [`Schedule::take`](super::queue::Schedule::take)), so that the end of the attempt finds it without a look-up.
    pub(crate) slot: u32,
    pub(crate) last_error: Option<Box<str>>,
    /// Its row in the spool, when there is one.
    pub(crate) row: Option<i64>,
    /// Its share of the memory budget.
    pub(crate) charge: Option<Charge>,
    /// Its body rendered with its endpoint's payload template, kept for the retries. Boxed:
    /// most jobs have none, and a queue of jobs is read from cold memory, a job at a time
    /// (96 bytes a job instead of 160).
    pub(crate) rendered: Option<Box<Rendered>>,
}

// A job is read from cold memory each time it is taken (a queue of 100,000 does not stay in
// cache): keep it small. Boxing `rendered` took it from 160 to 96 bytes, and async delivery
// to 1,000 endpoints from about 59k to 65k deliveries/s in an A/B of 4 rounds (`last_error`
// is a boxed `str` to make room for `slot`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Job>() <= 96);

/// A body rendered with a payload template.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The template it was rendered with: another one renders again.
    pub(crate) template: crate::template::Template,
    pub(crate) body: Bytes,
    /// Its share of the memory budget while it waits with its job for a retry.
    pub(crate) charge: Option<Charge>,
}

impl Job {
    /// A new job for `event`.
    pub(crate) fn new(event: Arc<EventData>, order: u64) -> Job {
        Job {
            event,
            seq: 0,
            order,
            attempts: 0,
            last_status: None,
            slot: u32::MAX,
            last_error: None,
            row: None,
            charge: None,
            rendered: None,
        }
    }

    /// The body an attempt sends: rendered with the endpoint's template, or the event's.
    pub(crate) fn body(&self) -> &Bytes {
        self.rendered
            .as_ref()
            .map_or(&self.event.body, |rendered| &rendered.body)
    }

    /// The `Content-Type` of [`body`](Job::body).
    pub(crate) fn content_type(&self) -> &str {
        self.rendered
            .as_ref()
            .map_or(self.event.content_type, |rendered| {
                rendered.template.body_content_type()
            })
    }

    /// The ticket.
    pub(crate) fn key(&self) -> &Arc<str> {
        &self.event.key
    }

    #[cfg(test)]
    pub(crate) fn for_test(key: &str, order: u64) -> Job {
        Job::withdrawable_for_test(key, order, None)
    }

    /// A job whose event `withdrawn` may withdraw.
    #[cfg(test)]
    pub(crate) fn withdrawable_for_test(
        key: &str,
        order: u64,
        withdrawn: Option<Arc<Withdrawal>>,
    ) -> Job {
        let id = EventId::new();
        let event = EventData {
            id,
            id_text: id.to_string().into(),
            event_type: EventType::Zenlix(Action::Create),
            key: key.into(),
            body: Bytes::new(),
            content_type: "application/json",
            tenant: None,
            charge: None,
            parsed: std::sync::OnceLock::new(),
            withdrawn,
            past_capacity: false,
        };
        Job::new(Arc::new(event), order)
    }
}

/// Whether the events a relay took in one tenure of a partition are withdrawn: set when the
/// tenure ends (its lease lost, or its task failed), and read as set once the tenure's
/// deadline has passed, for good. The deadline is moved on by each renewal of the lease
/// (see `relay::owner`), seven eighths of a lease after the renewal was sent (the lease
/// lasts at least a lease from then): past it the lease may have ended unseen, when the
/// relay's renewer did not run (the process frozen, or starved of CPU, for longer than the
/// lease), and another relay may deliver the partition's tickets. The engine's workers read
/// it before each attempt, so that none starts then, even before the renewer runs again and
/// ends the tenure.
///
/// The deadline is read on the monotonic clock, which does not count the time a host is
/// suspended: a relay should not run on a host that suspends.
#[derive(Debug)]
pub(crate) struct Withdrawal {
    set: AtomicBool,
    /// Nanoseconds after [`clock_base`]; `u64::MAX` for none.
    until: AtomicU64,
}

impl Withdrawal {
    /// Not withdrawn; read as withdrawn from `until` (if given) until it is moved on.
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn new(until: Option<Instant>) -> Withdrawal {
        Withdrawal {
            set: AtomicBool::new(false),
            until: AtomicU64::new(until.map_or(u64::MAX, nanos_of)),
        }
    }

    /// Whether the events are withdrawn: set, or past the deadline (then set for good).
    /// Costs an atomic load, and a read of the clock when there is a deadline.
    pub(crate) fn load(&self, order: Ordering) -> bool {
        if self.set.load(order) {
            return true;
        }
        if self.past_deadline() {
            self.set.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// Whether the deadline has passed, whether or not the withdrawal was set otherwise (a
    /// hand-back sets it while the lease is still renewed, until the partition is given
    /// back). The clock is read before the deadline (see [`extend`](Withdrawal::extend)).
    pub(crate) fn past_deadline(&self) -> bool {
        let now = nanos_of(Instant::now());
        let until = self.until.load(Ordering::Acquire);
        until != u64::MAX && now >= until
    }

    /// Sets (or clears) the withdrawal.
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn store(&self, withdrawn: bool, order: Ordering) {
        self.set.store(withdrawn, order);
    }

    /// Moves the deadline to `until` (a renewal of the lease), and says whether the one it
    /// replaced had passed: a worker may then have read the events as withdrawn, for good,
    /// and the tenure is to end (it is set withdrawn here). The old deadline is swapped out
    /// before the clock is read, and a worker reads the clock before the deadline: a worker
    /// that found the old one passed read a clock no later than this one.
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn extend(&self, until: Instant) -> bool {
        let old = self.until.swap(nanos_of(until), Ordering::AcqRel);
        let passed = old != u64::MAX && nanos_of(Instant::now()) >= old;
        if passed {
            self.set.store(true, Ordering::Release);
        }
        passed
    }
}

/// The instant [`Withdrawal`] deadlines count from: the first read in the process.
fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `at` as nanoseconds after [`clock_base`] (0 for one before it).
fn nanos_of(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(clock_base()).as_nanos()).unwrap_or(u64::MAX - 1)
}

/// What a job held in memory costs the memory budget when its body is not shared.
#[cfg(feature = "spool")]
pub(crate) fn job_cost(job: &Job) -> usize {
    job.event.body.len() + super::budget::JOB_OVERHEAD
}
