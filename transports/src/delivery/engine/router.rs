//! The router: events `emit` accepted and handed over, on their way to their endpoints.
//!
//! `emit` renders its event and appends it here; a worker routes it (the tenant's endpoints
//! and those without a tenant, their queues, the run queue) when it next looks for work.
//! So the caller's thread pays for one append to a queue that stays in its cache, whatever
//! endpoints the event goes to: with 100,000 endpoints, routing is a few cache misses per
//! endpoint, and they are a worker's.
//!
//! One worker routes at a time, in the order of acceptance, so a ticket's events reach each
//! endpoint's queue in emit order. Anything that reads or changes the registry (and flush
//! and stop) first routes, on its own thread, what was accepted before it: an endpoint
//! removed after an emit still dead-letters that event, and `get` counts it as queued.
//!
//! Only what cannot fail for the caller goes this way: the `block` overflow policy (whose
//! caller waits for room), the spool (whose caller may wait for the commit), a body over
//! `max_payload` and a sink that stops are routed at once, on the caller's thread, and so is
//! an event for a sink with no endpoints (it goes nowhere, and wakes nobody).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use super::Engine;
use crate::delivery::{EventData, lock};
use crate::template::Summary;

/// How many events one look routes before the run queue's endpoints get a turn.
const BATCH: usize = 256;

thread_local! {
    /// Whether this thread is routing (so that a hook called meanwhile cannot wait for
    /// itself).
    static ROUTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`ROUTING`] set while it lives (a panicking hook unsets it too).
struct Routing;

impl Routing {
    fn mark() -> Routing {
        ROUTING.set(true);
        Routing
    }
}

impl Drop for Routing {
    fn drop(&mut self) {
        ROUTING.set(false);
    }
}

/// An event accepted and not routed yet.
#[derive(Debug)]
struct Unrouted {
    /// Charged to the memory budget for its body and one job.
    event: EventData,
    /// A Zenlix event's template summary, taken from the typed event at emit when the sink
    /// has had templated endpoints (else read from the body if one turns up).
    summary: Option<Box<Summary>>,
}

/// The events waiting to be routed.
#[derive(Debug, Default)]
pub(crate) struct Router {
    /// Where `emit` appends. The router swaps it whole for an empty one of the same
    /// capacity, so an emitter never waits behind more than that swap.
    queue: Mutex<Vec<Unrouted>>,
    /// Whether the pool has been told there is routing to do (so it is told once).
    notified: AtomicBool,
    /// The router's own side, held by whoever routes: one at a time, so acceptance order
    /// is kept.
    routing: Mutex<Taken>,
    accepted: AtomicU64,
    routed: AtomicU64,
    /// Whether an endpoint with a payload template was ever registered.
    pub(crate) templates: AtomicBool,
}

impl Router {
    /// Events accepted and not routed yet.
    fn unrouted(&self) -> u64 {
        let routed = self.routed.load(Ordering::SeqCst);
        self.accepted.load(Ordering::SeqCst).saturating_sub(routed)
    }
}

/// Events taken from the router's queue and not routed yet, under the routing lock.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    events: VecDeque<Unrouted>,
    /// The emptied queue, swapped in at the next take (its capacity kept, up to a bound).
    spare: Vec<Unrouted>,
}

/// The most events an emptied queue keeps room for (a burst's room is let go after it).
const KEPT_ROOM: usize = 4096;

impl Taken {
    /// Takes up to `n` events, in order: those taken before, then the queue's.
    fn take(&mut self, queue: &Mutex<Vec<Unrouted>>, n: usize) -> Vec<Unrouted> {
        if self.events.len() < n {
            std::mem::swap(&mut *lock(queue), &mut self.spare);
            self.events.extend(self.spare.drain(..));
            self.spare.shrink_to(KEPT_ROOM);
        }
        let n = n.min(self.events.len());
        self.events.drain(..n).collect()
    }
}

impl Engine {
    /// Whether `emitted` may be routed later, by a worker (see the module docs). Not when
    /// no endpoint is registered: then it goes nowhere, and no worker is woken for it.
    pub(super) fn routes_later(&self, emitted: &deskhook::sink::Emitted<'_>) -> bool {
        self.pool.endpoints() > 0
            && !matches!(
                self.config.overflow,
                deskhook::policy::OverflowPolicy::Block { .. }
            )
            && !self.backlog.durable()
            && emitted.body().len() <= self.config.max_payload
            && !self.stopping()
    }

    /// Hands `emitted` to the router. `false` when the memory budget cannot hold it: then
    /// the caller routes it at once (which counts and logs the drop for each endpoint).
    pub(super) fn hand_over(&self, emitted: &deskhook::sink::Emitted<'_>) -> bool {
        let mut event = EventData::of(emitted);
        let Some(charge) = self
            .budget
            .try_charge(event.body.len() + super::super::budget::JOB_OVERHEAD)
        else {
            return false;
        };
        event.charge = Some(charge);
        let summary = if self.router.templates.load(Ordering::Acquire) {
            crate::template::Parsed::summary_of(emitted).map(Box::new)
        } else {
            None
        };
        // Counted before it is queued: a flush that starts now waits for it.
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        {
            let mut queue = lock(&self.router.queue);
            queue.push(Unrouted { event, summary });
            self.router.accepted.fetch_add(1, Ordering::SeqCst);
        }
        if !self.router.notified.swap(true, Ordering::SeqCst) {
            self.pool.push_routing();
        }
        // A stop that began meanwhile may have routed everything before this event came:
        // then it is routed here, to its endpoints' dead letters.
        if self.stopping.load(Ordering::SeqCst) {
            self.route_all();
        }
        true
    }

    /// Routes a batch of events, or nothing if another thread is routing (which looks for
    /// events left when it ends). Called by a worker that found routing to do.
    pub(super) fn route_some(&self) {
        let mut routing = match self.router.routing.try_lock() {
            Ok(routing) => routing,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let batch = routing.take(&self.router.queue, BATCH);
        let marked = Routing::mark();
        for unrouted in batch {
            self.route(unrouted);
        }
        drop(marked);
        drop(routing);
        self.after_routing(false);
    }

    /// Routes on the caller's thread every event accepted before the call, after a batch
    /// under way ends. Costs two atomic loads when there is nothing to route, and nothing
    /// when called from a hook run while routing (a dead-letter hook reading the stats).
    pub(crate) fn route_all(&self) {
        let until = self.router.accepted.load(Ordering::SeqCst);
        if self.router.routed.load(Ordering::SeqCst) >= until || ROUTING.get() {
            return;
        }
        let mut routing = lock(&self.router.routing);
        let marked = Routing::mark();
        loop {
            let left = until.saturating_sub(self.router.routed.load(Ordering::SeqCst));
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(BATCH);
            let batch = routing.take(&self.router.queue, n);
            if batch.is_empty() {
                break;
            }
            for unrouted in batch {
                self.route(unrouted);
            }
        }
        drop(marked);
        drop(routing);
        self.after_routing(true);
    }

    /// After routing: events left (accepted meanwhile, whose notification a worker may have
    /// spent finding the router busy) are for the next look at the run queue, by this worker
    /// or, from another thread (`wake`), one woken for them. Only when none is left does an
    /// emit notify again: during a flood, emitters wake nobody.
    fn after_routing(&self, wake: bool) {
        if self.router.unrouted() > 0 {
            if wake {
                self.pool.push_routing();
            } else {
                self.pool.requeue_routing();
            }
            return;
        }
        self.router.notified.store(false, Ordering::SeqCst);
        // An event accepted between the look above and the store saw `notified` set.
        if self.router.unrouted() > 0 && !self.router.notified.swap(true, Ordering::SeqCst) {
            self.pool.push_routing();
        }
    }

    /// Queues one event for its endpoints (the problems, such as a full queue, are counted
    /// and logged there), and ends its own count, even if routing it panicked (a metrics
    /// recorder, a hook): then it is logged as dropped, and the rest of the batch goes on.
    fn route(&self, unrouted: Unrouted) {
        let id = unrouted.event.id_text.clone();
        let (tenant, event_type) = (unrouted.event.tenant.clone(), unrouted.event.event_type);
        let routed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.route_one(unrouted)));
        self.router.routed.fetch_add(1, Ordering::SeqCst);
        // Its own count ends; its jobs, if any, are counted on their own.
        self.settle_outstanding(1);
        if routed.is_err() {
            // Counted for the endpoints it was for (one that took it before the panic is
            // counted too: the count errs on the side of a drop), itself guarded, since the
            // metrics recorder may be what panicked.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for lane in self.registry.route(tenant.as_deref(), event_type).iter() {
                    self.count_dropped(lane, Some(event_type), 1);
                }
            }));
            log::error!(
                target: deskhook::LOG_TARGET,
                "routing event {id} panicked; it is dropped (a bug: please report it)"
            );
        }
    }

    fn route_one(&self, Unrouted { event, summary }: Unrouted) {
        let lanes = self
            .registry
            .route(event.tenant.as_deref(), event.event_type);
        // The charge taken at hand-over (the body and one job) is kept: the backlog grows it
        // for the other endpoints' jobs, so that room is never given back and taken again
        // (a newer event could take it meanwhile, and this accepted one be dropped).
        if !lanes.is_empty() {
            let templated = lanes.iter().filter(|lane| lane.templated()).count();
            if templated > 0 {
                let parsed = crate::template::Parsed::of_routed(
                    event.event_type,
                    &event.body,
                    summary.map(|summary| *summary),
                    templated > 1,
                );
                let _ = event
                    .parsed
                    .set(parsed.map(|p| Arc::new(p.charged_to(&self.budget))));
            }
            #[cfg(feature = "metrics")]
            crate::delivery::telemetry::accepted(event.event_type);
            // Each problem (a full queue, a spent budget, a closed endpoint) was counted and
            // logged where it happened; nobody waits for the list.
            let _ = self.backlog.accept(self, event, lanes);
        } else {
            self.count_unrouted(event.event_type);
        }
    }
}
