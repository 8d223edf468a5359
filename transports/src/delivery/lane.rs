//! One endpoint inside the engine: its settings (swapped whole by an upsert), its queue of
//! jobs (a FIFO per ticket), its breaker, rate-limit bucket, sequence numbers, counters and
//! latencies.
//!
//! A lane holds no thread and no task: the pool's workers come to it when it has work due.
//! An idle lane is memory only (a few hundred bytes plus its settings). Its settings, and
//! how an attempt is prepared from them, are its [`Route`] (`route.rs`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::backlog::{Release, RowCounts, Window};
use super::decide::{Breaker, Standing};
use super::queue::Schedule;
use super::rate::TokenBucket;
use super::route::Route;
use super::{EndpointState, EndpointStats, EventData, Job, lock};

/// Why a lane is closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Removed from the registry.
    Removed,
    /// The sink is shutting down.
    Stopping,
}

/// A job being attempted, as shutdown and removal report it.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    pub(crate) order: u64,
    pub(crate) event: Arc<EventData>,
    pub(crate) attempts: u32,
    pub(crate) row: Option<i64>,
    /// Its attempt gave up and its dead letter is being written (without the lane's lock):
    /// a removal leaves its row to that letter, and a stop does not report it again.
    pub(crate) dying: bool,
}

/// The recent latencies of attempts that got a response, in microseconds: the latest few
/// inline, in the endpoint's own state, moved into a ring (allocated at the first move)
/// [`RECENT`] at a time, so that most attempts record without touching memory of their
/// own (with thousands of endpoints, the ring's line is not in cache).
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    recent: [u32; RECENT],
    recent_len: usize,
    ring: Vec<u32>,
    next: usize,
}

const LATENCY_WINDOW: usize = 1024;

/// Latencies kept inline before they move into the ring.
const RECENT: usize = 8;

impl Latencies {
    pub(crate) fn record(&mut self, duration: Duration) {
        if self.recent_len == RECENT {
            for micros in self.recent {
                if self.ring.len() < LATENCY_WINDOW {
                    self.ring.push(micros);
                } else {
                    self.ring[self.next] = micros;
                }
                self.next = (self.next + 1) % LATENCY_WINDOW;
            }
            self.recent_len = 0;
        }
        self.recent[self.recent_len] = u32::try_from(duration.as_micros()).unwrap_or(u32::MAX);
        self.recent_len += 1;
    }

    /// The median and 99th percentile of the last [`LATENCY_WINDOW`] or so.
    pub(crate) fn percentiles(&self) -> (Option<Duration>, Option<Duration>) {
        let mut values: Vec<u32> = self.ring.clone();
        values.extend_from_slice(&self.recent[..self.recent_len]);
        if values.is_empty() {
            return (None, None);
        }
        let last = values.len() - 1;
        let mut at = |p: usize| {
            let (_, value, _) = values.select_nth_unstable(last * p / 100);
            Duration::from_micros(u64::from(*value))
        };
        (Some(at(50)), Some(at(99)))
    }
}

/// How many pending timers a lane remembers (see [`LaneState::arm`]).
const ARMED: usize = 8;

/// What a lane's lock guards.
#[derive(Debug)]
pub(crate) struct LaneState {
    /// Its jobs, and its tickets' sequence numbers.
    pub(crate) schedule: Schedule,
    pub(crate) breaker: Breaker,
    /// Until when a receiver's `Retry-After` (429, 503) holds every request: only the
    /// passing of time ends it, not another attempt's outcome.
    pub(crate) hold_until: Option<Instant>,
    pub(crate) paused: bool,
    /// Disabled by a 410 until resumed.
    pub(crate) disabled: bool,
    pub(crate) closing: Option<Closing>,
    /// The jobs being attempted, to report them if the sink stops first.
    pub(crate) in_flight: Vec<InFlight>,
    pub(crate) latencies: Latencies,
    /// Deliveries and failures per minute over the last hour.
    pub(crate) minutes: super::history::Minutes,
    /// When the last attempt ended, and the status it got (if a response came back).
    pub(crate) last_attempt: Option<(SystemTime, Option<u16>)>,
    /// The rate-limit tokens, when the endpoint has a limit.
    pub(crate) bucket: Option<TokenBucket>,
    /// The limit `bucket` was filled for (the settings' may be newer: see
    /// [`Lane::route_changed`]).
    bucket_limit: Option<super::RateLimit>,
    /// Whether the lane's last look found it waiting for a token (counted once per wait).
    pub(crate) waiting_for_token: bool,
    /// The instants the pool's timers will look at this lane again (some may have
    /// passed), at most [`ARMED`]: see [`arm`](LaneState::arm).
    timers_at: Vec<Instant>,
    /// With a spool: which rows are in memory.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) window: Window,
}

impl LaneState {
    fn new() -> LaneState {
        LaneState {
            schedule: Schedule::default(),
            breaker: Breaker::default(),
            hold_until: None,
            paused: false,
            disabled: false,
            closing: None,
            in_flight: Vec::new(),
            latencies: Latencies::default(),
            minutes: super::history::Minutes::default(),
            last_attempt: None,
            bucket: None,
            bucket_limit: None,
            waiting_for_token: false,
            timers_at: Vec::new(),
            window: Window::default(),
        }
    }

    /// Forgets the job of `order` as in flight (its attempt is over), if it still is. A job
    /// is in flight once at most, so the first found is the one; the others keep their
    /// order (shutdown and removal report them in it).
    pub(crate) fn attempt_over(&mut self, order: u64) {
        if let Some(at) = self.in_flight.iter().position(|j| j.order == order) {
            self.in_flight.remove(at);
        }
    }

    /// Whether the pool needs a new timer to look at the lane at `at`: not when one is set
    /// already for no later than that and not past. Records `at` when it does.
    ///
    /// Every timer set and not past is remembered, not only the last: a lane that waits
    /// for its rate limit's next token many times a second while a ticket's retry is due in
    /// hours would otherwise, after each token, take the retry's timer for spent and set
    /// it again, and the pool's heap would grow by one timer per token until the retry.
    ///
    /// "Not past" is read from the clock here, under the lane's lock, never from an instant
    /// the caller read before it took the lock: the pool fires a timer without the lock, and
    /// the look it starts may come and go while the caller waits for the lock. A caller
    /// whose instant was older would take the timer for one still to come and arm none; the
    /// job it then puts in the schedule would wait for a look that never comes (a retry
    /// stuck for good, found by a flush that timed out with one job queued). Read here, the
    /// instant is either past the fired timer, or from before the fire, and then the look
    /// it starts waits for this lock and sees the job.
    pub(crate) fn arm(&mut self, at: Instant) -> bool {
        let now = Instant::now();
        self.timers_at.retain(|t| now < *t);
        if self.timers_at.iter().any(|t| *t <= at) {
            return false;
        }
        // All later than `at`: the one set furthest ahead is forgotten when the list is full
        // (its timer still fires; one set again for it is only a duplicate).
        if self.timers_at.len() == ARMED {
            let furthest = (0..ARMED).max_by_key(|i| self.timers_at[*i]).unwrap_or(0);
            self.timers_at.swap_remove(furthest);
        }
        self.timers_at.push(at);
        true
    }

    /// Where the lane stands, for deciding an attempt's outcome.
    pub(crate) fn standing(&self, keeps_undelivered: bool) -> Standing {
        match self.closing {
            Some(Closing::Removed) => Standing::Removed,
            Some(Closing::Stopping) => Standing::Stopping {
                keep: keeps_undelivered,
            },
            None if self.disabled => Standing::Disabled,
            None => Standing::Open,
        }
    }

    /// Whether the endpoint takes no new attempts (paused, disabled, closing).
    pub(crate) fn held(&self) -> bool {
        self.paused || self.disabled || self.closing.is_some()
    }

    /// Whether the lane can make no attempt before `deadline`: nothing of it is in flight
    /// (nor delivered and not yet settled), and it is paused or all it has waits past
    /// `deadline` (a retry, its breaker's cool-down, a receiver's `Retry-After`, its rate
    /// limit's next token) or is held in a spool behind a row of a type this build does not
    /// know. `outstanding` is the lane's count of its jobs: one that is not
    /// in the schedule (in the inbox, or a spool's row not in memory) may be ready, and
    /// waits only for what holds the whole lane. A lane removed, stopping or disabled by a
    /// 410 is letting its jobs go to the dead letters: soon over, not idle.
    pub(crate) fn idle_past(
        &self,
        deadline: Instant,
        now: Instant,
        outstanding: usize,
        route: &Route,
        breaker: &deskhook::policy::BreakerPolicy,
    ) -> bool {
        if !self.in_flight.is_empty()
            || self.schedule.in_flight() > 0
            || self.schedule.holds_retries()
        {
            return false;
        }
        if self.closing.is_some() || self.disabled {
            return false;
        }
        if self.paused {
            return true;
        }
        // Jobs not in the schedule: with a spool, tickets set aside until an instant, or
        // until the lane can send; rows held behind a row of a type this build does not
        // know, which never go while it runs; and the others (in the inbox, or a spool's
        // rows not read yet), which may be ready now but wait for what holds the lane all
        // the same.
        let stranded = self.window.stranded_rows();
        let unread = outstanding > self.schedule.queued() + self.window.resting_jobs() + stranded;
        let first = if self.schedule.has_ready() || self.window.waits_for_lane() || unread {
            now
        } else {
            let due = [self.schedule.next_due(), self.window.next_wake()];
            match due.into_iter().flatten().min() {
                Some(at) => at,
                // All that is left is held for a newer deskhook.
                None => return stranded > 0,
            }
        };
        let token = match (&self.bucket, &route.endpoint.rate_limit) {
            (Some(bucket), Some(limit)) => bucket.check(limit, now).err(),
            _ => None,
        };
        let can_go = [Some(first), self.stalled_until(now, breaker), token]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
        can_go > deadline
    }

    /// When the lane can send again, if it cannot at `now`: its breaker is open (or its
    /// probe under way), or a receiver's `Retry-After` holds it.
    pub(crate) fn stalled_until(
        &self,
        now: Instant,
        breaker: &deskhook::policy::BreakerPolicy,
    ) -> Option<Instant> {
        let breaker = self.breaker.check(now, breaker).err();
        [breaker, self.hold_until.filter(|until| now < *until)]
            .into_iter()
            .flatten()
            .max()
    }

    /// The public state: an endpoint whose breaker's cool-down is over, waiting for its
    /// probe, is active (its next event goes out).
    pub(crate) fn public_state(&self) -> EndpointState {
        let now = Instant::now();
        if self.paused {
            EndpointState::Paused
        } else if self.disabled {
            EndpointState::Disabled
        } else if self.breaker.holds(now) || self.hold_until.is_some_and(|until| now < until) {
            // A receiver's Retry-After holds it as an open breaker would.
            EndpointState::BreakerOpen
        } else {
            EndpointState::Active
        }
    }
}

/// Counters of one endpoint, readable without its lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

/// One registered endpoint.
///
/// `repr(C)` with the fields routing reads first, so that routing an event to a lane that has
/// not been touched for a while costs a cache line or two, not one per field.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Lane {
    /// Its event types, as [`deskhook::EventTypeSet`] bits, for routing without a lock.
    subscription: AtomicU32,
    /// Set (under the state lock) when the lane is disabled or closing: routing then takes the
    /// slow path, which dead-letters.
    pub(crate) closed: AtomicBool,
    /// Whether the lane is in the pool's run queue (so it is put there once).
    pub(crate) notified: AtomicBool,
    /// Whether the lane waits among the pool's lanes that had work but no slot, and requests
    /// in flight (so it waits there once).
    pub(crate) starved: AtomicBool,
    /// Whether it waits among those that had none in flight when refused (see
    /// [`Pool::starve`](super::pool::Pool::starve)): one refused first with requests in
    /// flight, then again without, waits in both.
    pub(crate) starved_idle: AtomicBool,
    /// Whether a freed slot was handed to it: it left the lanes waiting for a slot for the
    /// run queue, and its next look passes the slot on if it does not take it (see
    /// [`Pool::unstarve`](super::pool::Pool::unstarve)).
    pub(crate) handed: AtomicBool,
    /// [`LaneState::held`] as of the last change, readable without the lock: a held lane is
    /// not put in the run queue (events for a paused endpoint wake no worker).
    pub(crate) held: AtomicBool,
    /// `inbox.len()`, readable without the inbox lock.
    pub(crate) inbox_len: AtomicUsize,
    /// `schedule.queued()` as of the last change, readable without the state lock.
    pub(crate) queued_mirror: AtomicUsize,
    /// Events accepted for this lane and not finished (delivered, dead-lettered, dropped,
    /// handed back), in memory or in the spool.
    pub(crate) outstanding: AtomicUsize,
    /// Of those, jobs whose dead letter is being written by a backlog's writer (given up
    /// and no longer in flight, or an event over `max_payload`), until both the writer and
    /// the attempt or caller are done with them (see
    /// [`Settling`](super::backlog::Settling)): neither queued nor idle, soon finished.
    pub(crate) letters_writing: AtomicUsize,
    /// Jobs routed to it not yet moved into the schedule (memory backlog). Routing appends here
    /// without taking the state lock, which workers take often; the next look at the lane
    /// moves them over (and numbers them).
    pub(crate) inbox: Mutex<Vec<Job>>,
    pub(crate) name: Arc<str>,
    /// Its settings now.
    route: Mutex<Arc<Route>>,
    /// Whether its route has a payload template, for routing to read without the lock.
    templated: AtomicBool,
    pub(crate) state: Mutex<LaneState>,
    /// `emit` waits here for room under the block policy (with the state lock).
    pub(crate) room: Condvar,
    /// Emits waiting on `room` (counted under the state lock), so that making room costs a
    /// wake-up only when someone waits.
    pub(crate) room_waiters: AtomicUsize,
    /// Its place in the registry's tenant index (kept by the registry under its lock).
    pub(crate) index_pos: AtomicUsize,
    /// With a spool: its rows on disk.
    pub(crate) rows: RowCounts,
    pub(crate) counters: Counters,
}

impl Lane {
    /// A new lane for `route`.
    pub(crate) fn new(route: Arc<Route>, rows: RowCounts) -> Lane {
        let now = Instant::now();
        let mut state = LaneState::new();
        state.bucket = route
            .endpoint
            .rate_limit
            .map(|limit| TokenBucket::full(&limit, now));
        state.bucket_limit = route.endpoint.rate_limit;
        Lane {
            name: route.endpoint.name.as_str().into(),
            subscription: AtomicU32::new(route.endpoint.actions.bits()),
            templated: AtomicBool::new(route.endpoint.template.is_some()),
            route: Mutex::new(route),
            state: Mutex::new(state),
            inbox: Mutex::new(Vec::new()),
            inbox_len: AtomicUsize::new(0),
            queued_mirror: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            starved: AtomicBool::new(false),
            starved_idle: AtomicBool::new(false),
            handed: AtomicBool::new(false),
            held: AtomicBool::new(false),
            room: Condvar::new(),
            room_waiters: AtomicUsize::new(0),
            index_pos: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            letters_writing: AtomicUsize::new(0),
            rows,
            counters: Counters::default(),
        }
    }

    /// Mirrors `st.held()` for the run queue; call after changing what it depends on.
    pub(crate) fn update_held(&self, st: &LaneState) {
        self.held.store(st.held(), Ordering::Release);
    }

    /// Wakes emits waiting for room in its queue, if there are any (call without the state
    /// lock, after the change that made room).
    pub(crate) fn notify_room(&self) {
        if self.room_waiters.load(Ordering::Acquire) > 0 {
            self.room.notify_all();
        }
    }

    /// Whether its route has a payload template (a lock-free read for routing).
    pub(crate) fn templated(&self) -> bool {
        self.templated.load(Ordering::Acquire)
    }

    /// Why an event queued to it now would only be dead-lettered (said after its name):
    /// disabled by a 410, or being removed (or the sink stopping); `None` when it takes
    /// events.
    pub(crate) fn refusing(&self) -> Option<&'static str> {
        if lock(&self.state).disabled {
            Some("is disabled (it answered 410 Gone): resume it first")
        } else if self.closed.load(Ordering::Acquire) {
            Some("is being removed, or the sink is stopping")
        } else {
            None
        }
    }

    /// Its settings now.
    pub(crate) fn route(&self) -> Arc<Route> {
        lock(&self.route).clone()
    }

    /// Replaces its settings; attempts in flight keep the old ones (their failures are then
    /// retried at once with the new ones when the request changed, but for the same
    /// receiver's `Retry-After`: [`Standing::Replaced`](super::decide::Standing)). Not under the state lock, which
    /// a worker may hold across a spool's reads: the caller holds the registry's, which
    /// every emit waits for meanwhile. The caller then calls
    /// [`route_changed`](Lane::route_changed), out of the registry's lock.
    pub(crate) fn set_route(&self, route: Arc<Route>) {
        self.subscription
            .store(route.endpoint.actions.bits(), Ordering::Release);
        self.templated
            .store(route.endpoint.template.is_some(), Ordering::Release);
        *lock(&self.route) = route;
    }

    /// After [`set_route`](Lane::set_route): waits for an attempt being taken to be taken
    /// (under the state lock, which attempts are taken under), so that every attempt taken
    /// after this returns has the new settings; and fits the rate-limit bucket to them. A
    /// first limit starts with a full bucket; a changed one keeps the tokens left (at most
    /// its burst), the same one keeps its tokens.
    pub(crate) fn route_changed(&self) {
        let mut st = lock(&self.state);
        let limit = self.route().endpoint.rate_limit;
        if st.bucket_limit != limit {
            let now = Instant::now();
            st.bucket = match (limit, st.bucket_limit, st.bucket) {
                (Some(new), Some(before), Some(bucket)) => Some(bucket.changed(&before, &new, now)),
                (limit, _, _) => limit.map(|limit| TokenBucket::full(&limit, now)),
            };
            st.bucket_limit = limit;
        }
    }

    /// Why it takes no more jobs and lets go of what it had, if it was removed or disabled
    /// by a 410 (a lane stopping with the sink keeps them).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn release_reason(&self) -> Option<&'static str> {
        let st = lock(&self.state);
        match st.closing {
            Some(Closing::Removed) => Some(Release::Removed.reason()),
            None if st.disabled => Some(Release::Disabled.reason()),
            _ => None,
        }
    }

    /// Whether it receives events of `event_type`.
    pub(crate) fn subscribed(&self, event_type: deskhook::EventType) -> bool {
        deskhook::EventTypeSet::from_bits(self.subscription.load(Ordering::Acquire))
            .contains(event_type)
    }

    /// Its counters and state.
    pub(crate) fn stats(&self, in_flight_total: Option<usize>) -> EndpointStats {
        let route = self.route();
        let st = lock(&self.state);
        let in_flight = in_flight_total.unwrap_or_else(|| st.schedule.in_flight());
        let (state, breaker) = (st.public_state(), st.breaker.state_at(Instant::now()));
        let (latency_p50, latency_p99) = st.latencies.percentiles();
        drop(st);
        let outstanding = self.outstanding.load(Ordering::Acquire);
        let c = &self.counters;
        EndpointStats {
            name: self.name.to_string(),
            tenant: route.endpoint.tenant.clone(),
            state,
            queued: outstanding.saturating_sub(in_flight),
            in_flight,
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            breaker,
            latency_p50,
            latency_p99,
        }
    }
}

/// A transport's connector for unit tests, which never connects.
#[cfg(test)]
pub(crate) struct Nowhere;

#[cfg(test)]
impl super::Connector for Nowhere {
    fn target(&self, _endpoint: &super::Endpoint) -> Result<super::Target, crate::Error> {
        Ok(Arc::new(()))
    }
    fn default_max_in_flight(&self) -> usize {
        1
    }
}

/// A lane for unit tests, whose endpoint is `name` at a loopback URL.
#[cfg(test)]
pub(crate) fn lane_for_test(name: &str) -> Arc<Lane> {
    let endpoint = super::Endpoint::new(name, "http://127.0.0.1:9/").expect("a URL");
    let route = Route::new(endpoint, &Nowhere).expect("a route");
    Arc::new(Lane::new(Arc::new(route), RowCounts::default()))
}

#[cfg(test)]
#[path = "lane_tests.rs"]
mod tests;
