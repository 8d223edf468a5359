//! The engine: its state and accounting here; where an emit's jobs go (`intake`, `router`),
//! how a worker takes an attempt and settles its outcome (`attempt`), and how the sink
//! flushes and stops (`stop`). The pieces it joins live in their own modules: the registry
//! (`registry`), each endpoint's queue and state (`lane`), the scheduler and workers
//! (`pool`), the outcome of an attempt (`decide`), and where jobs wait (`backlog`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use deskhook::EventType;

use super::backlog::Backlog;
use super::budget::{Budget, Charge};
use super::history::AttemptLog;
use super::lane::Counters;
use super::pool::Pool;
#[cfg(any(feature = "http-async", feature = "http-blocking"))]
use super::priority::Priority;
use super::registry::Registry;
use super::{
    Connector, DeliveryConfig, Endpoint, EventData, Hooks, Job, Lane, Observer, Route, lock,
};
use crate::error::Error;

pub(crate) mod attempt;
mod intake;
mod router;
mod stop;
#[cfg(test)]
pub(crate) mod tests;

#[cfg(all(test, feature = "_async", feature = "spool"))]
mod disabled_tests;

#[cfg(test)]
mod lock_tests;

#[cfg(test)]
mod logger_tests;

#[cfg(test)]
mod stop_tests;

#[cfg(test)]
mod version_tests;

/// The engine of one sink.
pub(crate) struct Engine {
    registry: Registry,
    /// Events `emit` handed over, for a worker to route.
    router: router::Router,
    pool: Pool,
    backlog: Box<dyn Backlog>,
    budget: Arc<Budget>,
    config: DeliveryConfig,
    observer: Option<Arc<dyn Observer>>,
    /// The last attempts, for the operator's view.
    attempts: AttemptLog,
    hooks: Hooks,
    connector: Box<dyn Connector>,
    order: AtomicU64,
    /// Resumes so far: a flush's look at the lanes must see none while it looks (a resume
    /// changes no count, and lets a lane it found held go).
    resumed: AtomicU64,
    /// Jobs accepted for registered endpoints and not finished, over the whole sink.
    outstanding: AtomicUsize,
    /// Every endpoint's counters added up since the sink started (removed endpoints
    /// included), so that [`totals`](Engine::totals) reads six numbers, not every lane.
    counted: Counters,
    /// Events accepted that no endpoint was registered for (their tenant and type).
    unrouted: AtomicU64,
    /// Flushes wait here for `outstanding` to reach zero.
    idle: (Mutex<()>, Condvar),
    /// Held by a replay of dead letters from their reading to their deletion, so that two
    /// (a double click, two operators) do not queue the same letters twice.
    pub(crate) replaying: Mutex<()>,
    /// One `Endpoints::replace_all` at a time: two at once would each remove what the other
    /// installed, and leave the registry matching neither.
    pub(crate) replacing: Mutex<()>,
    flush_waiters: AtomicUsize,
    #[cfg(feature = "_async")]
    idle_async: tokio::sync::Notify,
    stopping: AtomicBool,
    /// Attempts given up whose letters the workers that settle them are about to write
    /// (marked `dying`, which a stop passes over): a shutdown waits for them, briefly, so
    /// that the process does not end before they are written.
    letters_due: AtomicUsize,
    /// Endpoints removed while attempts of theirs were in flight (until they are dropped):
    /// a stop reports those attempts as it does a registered endpoint's.
    retiring: Mutex<Vec<std::sync::Weak<Lane>>>,
    /// The priority of the sink's own delivery threads, relative to the builder's (the HTTP
    /// transports'; a NATS sink sets its runtime's itself).
    #[cfg(any(feature = "http-async", feature = "http-blocking"))]
    priority: Priority,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("endpoints", &self.registry.len())
            .field("config", &self.config)
            .field("backlog", &self.backlog)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub(crate) fn new(
        config: DeliveryConfig,
        observer: Option<Arc<dyn Observer>>,
        backlog: Box<dyn Backlog>,
        hooks: Hooks,
        connector: Box<dyn Connector>,
    ) -> Engine {
        Engine {
            registry: Registry::default(),
            router: router::Router::default(),
            pool: Pool::new(
                config.max_in_flight,
                config.max_threads,
                config.thread_idle_timeout,
            ),
            backlog,
            budget: Budget::new(config.max_queued_bytes),
            observer,
            attempts: AttemptLog::new(config.attempt_log),
            hooks,
            connector,
            order: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            outstanding: AtomicUsize::new(0),
            counted: Counters::default(),
            unrouted: AtomicU64::new(0),
            idle: (Mutex::new(()), Condvar::new()),
            replaying: Mutex::new(()),
            replacing: Mutex::new(()),
            flush_waiters: AtomicUsize::new(0),
            #[cfg(feature = "_async")]
            idle_async: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
            letters_due: AtomicUsize::new(0),
            retiring: Mutex::default(),
            #[cfg(any(feature = "http-async", feature = "http-blocking"))]
            priority: Priority::below_caller(config.worker_nice),
            config,
        }
    }

    /// The priority of the sink's own delivery threads.
    #[cfg(any(feature = "http-async", feature = "http-blocking"))]
    pub(crate) fn priority(&self) -> Priority {
        self.priority
    }

    pub(crate) fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn backlog(&self) -> &dyn Backlog {
        self.backlog.as_ref()
    }

    /// Whether the sink is shutting down (or stopped).
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The next acceptance number.
    pub(crate) fn next_order(&self) -> u64 {
        self.order.fetch_add(1, Ordering::Relaxed)
    }

    /// Checks `endpoint` and makes its route, as at build.
    pub(crate) fn route_for(&self, endpoint: Endpoint) -> Result<Route, Error> {
        endpoint.validate()?;
        if endpoint.template.is_some() {
            self.router.templates.store(true, Ordering::Release);
        }
        Route::new(endpoint, self.connector.as_ref())
    }

    /// A lane was just registered: rows already waiting for it (in the spool) are queued.
    /// `waiting` is the count read when the lane was attached: rows committed since were
    /// counted when they were accepted.
    pub(crate) fn adopt(&self, lane: &Arc<Lane>, waiting: u64) {
        if waiting > 0 {
            self.accepted(lane, usize::try_from(waiting).unwrap_or(usize::MAX));
            log::info!(
                target: deskhook::LOG_TARGET,
                "endpoint '{}': {waiting} event(s) waiting in the spool are queued again \
                 (each goes out when due: a retry waits for its time)",
                lane.name
            );
            self.pool.push(lane);
        }
    }

    // --- accounting ---------------------------------------------------------------------

    /// Adds `n` to the counter `which` picks, of `lane` and of the whole sink.
    pub(crate) fn count(&self, lane: &Lane, which: fn(&Counters) -> &AtomicU64, n: u64) {
        which(&lane.counters).fetch_add(n, Ordering::Relaxed);
        which(&self.counted).fetch_add(n, Ordering::Relaxed);
    }

    /// `n` events of `lane` went to the dead letters (after attempts, or without: too large,
    /// an endpoint closed or removed, rows the spool moved): counted for the endpoint and
    /// in the metrics.
    pub(crate) fn count_dead_lettered(&self, lane: &Lane, n: u64) {
        self.count(lane, |c| &c.dead_lettered, n);
        #[cfg(feature = "metrics")]
        super::telemetry::dead_lettered(&lane.name, n, self.config.metrics_per_endpoint);
    }

    /// `n` jobs of `lane` were dropped (a full queue, the memory budget, a full spool, a
    /// dead letter its file could not take): counted for the endpoint and in the metrics.
    pub(crate) fn count_dropped(&self, lane: &Lane, event_type: Option<EventType>, n: u64) {
        self.count(lane, |c| &c.dropped, n);
        #[cfg(feature = "metrics")]
        super::telemetry::dropped(&lane.name, event_type, n, self.config.metrics_per_endpoint);
        #[cfg(not(feature = "metrics"))]
        let _ = event_type;
    }

    /// An event was accepted that no endpoint was registered for: counted, and in the
    /// metrics, so that an operator can see events of a tenant without webhooks (or with a
    /// mistyped name) go nowhere.
    pub(crate) fn count_unrouted(&self, event_type: EventType) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        super::telemetry::unrouted(event_type);
        #[cfg(not(feature = "metrics"))]
        let _ = event_type;
    }

    /// `n` jobs were accepted for `lane`.
    pub(crate) fn accepted(&self, lane: &Lane, n: usize) {
        lane.outstanding.fetch_add(n, Ordering::AcqRel);
        self.outstanding.fetch_add(n, Ordering::AcqRel);
    }

    /// Lets go of every queued job whose event was withdrawn (a relay's tenure ended), on
    /// every endpoint, at once: their memory and their places in the queues come back now
    /// rather than when each ticket comes up (see
    /// [`Schedule::drop_withdrawn`](super::queue::Schedule::drop_withdrawn)). Jobs in flight
    /// finish.
    #[cfg(feature = "relay")]
    pub(crate) fn drop_withdrawn(&self) {
        for lane in self.registry().all() {
            // Nothing accepted and unfinished (most of a relay's thousands of endpoints at
            // any time): nothing to let go, and no lock to take.
            if lane.outstanding.load(Ordering::Acquire) == 0 {
                continue;
            }
            let mut st = lock(&lane.state);
            // Those accepted but still in the inbox too.
            super::backlog::drain_inbox(&lane, &mut st);
            let gone = st.schedule.drop_withdrawn();
            if gone == 0 {
                continue;
            }
            lane.queued_mirror
                .store(st.schedule.queued(), Ordering::Release);
            let ready = st.schedule.has_ready();
            drop(st);
            self.finished(&lane, gone);
            lane.notify_room();
            if ready {
                self.pool().push(&lane);
            }
        }
    }

    /// `n` jobs of `lane` are finished: delivered, dead-lettered, dropped or handed back.
    pub(crate) fn finished(&self, lane: &Lane, n: usize) {
        if n == 0 {
            return;
        }
        lane.outstanding.fetch_sub(n, Ordering::AcqRel);
        self.settle_outstanding(n);
    }

    /// `n` of the sink's outstanding jobs (or events not routed yet) are over.
    fn settle_outstanding(&self, n: usize) {
        let before = self.outstanding.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "{n} jobs finished of {before} outstanding");
        if before <= n {
            self.wake_flushes();
        }
    }

    fn wake_flushes(&self) {
        if self.flush_waiters.load(Ordering::Acquire) > 0 {
            // Under the lock, so that a flush between its check and its wait is not missed.
            let _guard = lock(&self.idle.0);
            self.idle.1.notify_all();
        }
        #[cfg(feature = "_async")]
        self.idle_async.notify_waiters();
    }

    /// Until when the caller of one `emit` may wait for room, under the block policy: one
    /// deadline for the event's charge and all of its endpoints' queues.
    pub(crate) fn block_deadline(&self) -> Option<Instant> {
        match self.config.overflow {
            deskhook::policy::OverflowPolicy::Block { timeout } => {
                Some(crate::delivery::decide::later(Instant::now(), timeout))
            }
            _ => None,
        }
    }

    /// Charges `bytes` to the memory budget, waiting for room until `deadline` (the block
    /// policy's; none: not at all).
    pub(crate) fn charge(&self, bytes: usize, deadline: Option<Instant>) -> Option<Charge> {
        match deadline {
            Some(deadline) => self
                .budget
                .charge_within(bytes, deadline.saturating_duration_since(Instant::now())),
            None => self.budget.try_charge(bytes),
        }
    }

    /// A job's rendered body waits with it for its retry only if the memory budget holds it;
    /// else it is let go, and the next attempt renders it again (the template's output is
    /// the same). So a tenant's template that renders large bodies for an endpoint that is
    /// down costs budget, not unbounded memory. Renders in flight are not charged: there are
    /// at most `max_in_flight` of them, each at most the template's `max_output`.
    fn keep_render(&self, job: &mut Job) {
        if let Some(rendered) = &mut job.rendered
            && rendered.charge.is_none()
        {
            match self.budget.try_charge(rendered.body.len()) {
                Some(charge) => rendered.charge = Some(charge),
                None => job.rendered = None,
            }
        }
    }

    /// Charges `bytes` to the memory budget if they fit now, never waiting (the spool loads
    /// its rows only then).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn try_charge(&self, bytes: usize) -> Option<Charge> {
        self.budget.try_charge(bytes)
    }

    /// `st`'s [`stalled_until`](crate::delivery::lane::LaneState::stalled_until) under the
    /// sink's breaker policy.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn stalled_until(
        &self,
        st: &crate::delivery::lane::LaneState,
        now: Instant,
    ) -> Option<Instant> {
        st.stalled_until(now, &self.config.breaker)
    }

    /// The memory budget's room now and its whole size, in bytes: the spool reads no more
    /// rows than would fit.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn budget_room(&self) -> (usize, usize) {
        let max = self.budget.max();
        (max.saturating_sub(self.budget.used()), max)
    }

    /// Why an event of `body` bytes can never be queued in memory (more than the whole
    /// memory budget), if it cannot: the dead letter's reason. A spool loads each endpoint's
    /// row on its own, so one job's bookkeeping is counted.
    pub(crate) fn beyond_budget(&self, body: usize) -> Option<String> {
        self.beyond_budget_for(body, 1)
    }

    /// Why `emitted` can never be queued, if so (see `DeliverySink::never_fits`): the memory
    /// backlog charges its body once and a job for each endpoint it goes to, all at once.
    pub(crate) fn never_fits(&self, emitted: &deskhook::sink::Emitted<'_>) -> Option<String> {
        let jobs = if self.backlog.durable() {
            1
        } else {
            self.registry
                .routed_count(emitted.tenant(), emitted.event_type())
                .max(1)
        };
        self.beyond_budget_for(emitted.body().len(), jobs)
    }

    /// [`beyond_budget`](Self::beyond_budget) for `jobs` jobs charged together.
    fn beyond_budget_for(&self, body: usize, jobs: usize) -> Option<String> {
        let needs = body.saturating_add(jobs.saturating_mul(super::budget::JOB_OVERHEAD));
        (needs > self.budget.max()).then(|| {
            let endpoints = if jobs > 1 {
                format!(" for its {jobs} endpoints")
            } else {
                String::new()
            };
            format!(
                "body of {body} bytes needs {needs} bytes of memory to be delivered{endpoints}, \
                 more than the sink's whole max_queued_bytes ({}) (raise max_queued_bytes, or \
                 lower max_payload to refuse such events at emit)",
                self.budget.max()
            )
        })
    }

    /// The message (also logged) for an event dropped for `endpoints` endpoints because the
    /// memory budget is spent.
    pub(crate) fn budget_spent(&self, event: &EventData, endpoints: usize) -> String {
        let needs = event.body.len() + endpoints * super::budget::JOB_OVERHEAD;
        let message = if needs > self.budget.max() {
            // Not a backlog: this event alone is more than the whole budget.
            format!(
                "event {} ({} on ticket {}) needs {needs} bytes queued for {endpoints} \
                 endpoint(s), more than the sink's whole max_queued_bytes ({}); dropped \
                 (raise max_queued_bytes, or lower max_payload to refuse such events at \
                 emit)",
                event.id_text,
                event.event_type,
                super::shown(&event.key),
                self.budget.max(),
            )
        } else {
            format!(
                "the sink's memory for queued events is spent ({} of {} bytes, \
                 max_queued_bytes); event {} ({} on ticket {}) dropped for {endpoints} \
                 endpoint(s) (endpoints are down or slow: see their stats; raise \
                 max_queued_bytes or add a spool)",
                self.budget.used(),
                self.budget.max(),
                event.id_text,
                event.event_type,
                super::shown(&event.key),
            )
        };
        log::warn!(target: deskhook::LOG_TARGET, "{message}");
        message
    }
}
