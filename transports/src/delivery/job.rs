//! One event and its jobs: what `emit` makes of an event ([`EventData`], shared), and the
//! job each endpoint it goes to queues and attempts ([`Job`]), with a template's render of
//! its body kept for the retries ([`Rendered`]).

use std::sync::Arc;

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
    pub(crate) withdrawn: Option<Arc<std::sync::atomic::AtomicBool>>,
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
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Acquire))
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
        withdrawn: Option<Arc<std::sync::atomic::AtomicBool>>,
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

/// What a job held in memory costs the memory budget when its body is not shared.
#[cfg(feature = "spool")]
pub(crate) fn job_cost(job: &Job) -> usize {
    job.event.body.len() + super::budget::JOB_OVERHEAD
}
