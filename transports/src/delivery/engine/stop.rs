//! The way out: closing an endpoint (removed, or the sink stops), resuming one, flushing,
//! shutting down, and the counters.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deskhook::EventType;

use super::Engine;
use crate::delivery::backlog::{Release, Released};
use crate::delivery::decide::later;
use crate::delivery::lane::Closing;
use crate::delivery::lane::LaneState;
use crate::delivery::registry::Removed;
use crate::delivery::{DeliveryTotals, EndpointState, EndpointStats, Lane, lock};
use crate::error::Error;

/// How often a flush looks whether all it waits for is held past its deadline (an attempt
/// that ends, or a pause, changes that without waking it).
const HELD_LOOK: Duration = Duration::from_millis(20);

impl Engine {
    // --- registry changes ---------------------------------------------------------------

    /// Closes `lane` (removed, or the sink stops) and lets its queue go.
    pub(crate) fn close_lane(&self, lane: &Arc<Lane>, closing: Closing, why: Release) -> Removed {
        let mut st = lock(&lane.state);
        if st.closing.is_some() {
            if closing == Closing::Removed {
                // Removed while the sink stops: a spool forgets it all the same, or it would
                // be registered again at the next start (its rows then wait, kept, for an
                // endpoint of that name).
                self.backlog.registered(&lane.name, None);
            }
            return Removed {
                dead_lettered: 0,
                in_flight: 0,
            };
        }
        lane.closed.store(true, Ordering::SeqCst);
        st.closing = Some(closing);
        lane.update_held(&st);
        let in_flight = st.in_flight.len();
        if closing == Closing::Removed {
            // Before the move of its events: with a spool, both go in the writer's order,
            // so that a crash between them leaves rows waiting for an endpoint no longer
            // registered, never the endpoint registered again at the next start.
            self.backlog.registered(&lane.name, None);
        }
        let released = self.backlog.release(self, lane, &mut st, why);
        drop(st);
        lane.notify_room();
        #[cfg(test)]
        super::tests::between_release_and_complete();
        let released = self.backlog.complete(self, lane, released);
        // (A spool keeps their rows, a relay's stream their messages: they are not lost.)
        if closing == Closing::Removed && in_flight > 0 && !self.backlog.keeps_undelivered() {
            self.retire(lane);
        }
        if closing == Closing::Removed {
            log::info!(
                target: deskhook::LOG_TARGET,
                "endpoint '{}' removed: {released} queued event(s) moved to {}, {in_flight} \
                 attempt(s) in flight finish",
                lane.name,
                self.backlog.dead_letter_place()
            );
        }
        Removed {
            dead_lettered: released,
            in_flight,
        }
    }

    /// The end of the release of an endpoint disabled by a 410: the letters of what it had
    /// queued written (with a spool, their rows' move waited for), then logged, its own
    /// letter (`own_lost`: lost) counted in. On an async runtime's thread, on a thread of its
    /// own (a 410 is rare): many letters to write, or a wait for the spool's writer to commit
    /// a large move, would hold up every task of that runtime thread meanwhile. Where no
    /// thread starts, here.
    pub(crate) fn complete_disabled(
        self: &Arc<Self>,
        lane: &Arc<Lane>,
        released: Released,
        url: &str,
        own_lost: bool,
    ) {
        let released = Arc::new(std::sync::Mutex::new(Some(released)));
        let finish = {
            let (engine, lane, url) = (self.clone(), lane.clone(), url.to_owned());
            let released = released.clone();
            move || {
                let Some(released) = lock(&released).take() else {
                    return;
                };
                let moved = engine.backlog.complete(&engine, &lane, released);
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{}' ({url}) answered 410 Gone and is disabled; {} event(s) \
                     moved to the dead letters (resume it to deliver again)",
                    lane.name,
                    moved + usize::from(!own_lost)
                );
            }
        };
        #[cfg(feature = "_async")]
        if tokio::runtime::Handle::try_current().is_ok() {
            let thread = std::thread::Builder::new()
                .name("deskhook-disable".into())
                .spawn(finish.clone());
            if thread.is_ok() {
                return;
            }
        }
        finish();
    }

    /// Stops `lane` sending (its events stay queued) until [`resume`](Engine::resume); a
    /// spool keeps that it is paused, for the next start. False when the lane is being
    /// removed (or the sink stops): nothing is paused.
    pub(crate) fn pause(&self, lane: &Arc<Lane>) -> bool {
        let mut st = lock(&lane.state);
        if st.closing.is_some() {
            return false;
        }
        st.paused = true;
        lane.update_held(&st);
        self.backlog.set_aside(&mut st);
        // Under the lane's lock, so that a pause and a resume reach the spool in the order
        // they took effect.
        self.backlog.paused(&lane.name, true);
        true
    }

    /// Lets `lane` deliver again: not paused, not disabled, and started afresh
    /// ([`start_afresh`](Engine::start_afresh)). Whether it did: not for a lane being
    /// removed or stopping.
    pub(crate) fn resume(&self, lane: &Arc<Lane>) -> bool {
        let hurried = self.start_afresh(lane, |st| {
            st.paused = false;
            // Whatever it was: the operator's word puts the spool's table right too.
            self.backlog.paused(&lane.name, false);
            enable(lane, st);
        });
        match hurried {
            None => return false,
            Some(0) => log::info!(target: deskhook::LOG_TARGET, "endpoint '{}' resumed", lane.name),
            Some(n) => log::info!(
                target: deskhook::LOG_TARGET,
                "endpoint '{}' resumed; the retries of {n} ticket(s) go now",
                lane.name
            ),
        }
        true
    }

    /// A new receiver for `lane` (its URL or CA roots changed): it starts afresh, and a 410
    /// of the old one no longer disables it (a pause stays: the operator's word).
    pub(crate) fn new_receiver(&self, lane: &Arc<Lane>) -> Option<usize> {
        self.start_afresh(lane, |st| enable(lane, st))
    }

    /// Ends what `lane`'s failures so far made it wait for: its breaker closes, a
    /// receiver's `Retry-After` hold ends, and what waits for a retry (hours, late in a
    /// schedule) goes now, in memory and in the spool; `also` changes its state besides,
    /// under the same lock. For a resume (the operator's word) and for a new receiver (its
    /// URL or CA roots changed: the old one's failures say nothing of it). Nothing is done
    /// to a lane being removed or stopping (`None`); else the number of tickets whose retry
    /// was hurried, and the lane is pushed to the pool.
    fn start_afresh(&self, lane: &Arc<Lane>, also: impl FnOnce(&mut LaneState)) -> Option<usize> {
        // A 410's release must be over before the lane takes rows again: the wait for the
        // writer below comes after its move (sent under the lane's lock when the 410 came).
        // The spool's rows waiting for a retry are due now, on disk before that wait:
        // the lane, going again, reads rows in as it goes, and one read with its old retry
        // time would wait for it (hours, late in a schedule). What was read in before that
        // is hurried in memory below.
        self.backlog.hurry(lane);
        if let Err(e) = self.backlog.written(lane) {
            log::warn!(target: deskhook::LOG_TARGET, "endpoint '{}': {e}", lane.name);
        }
        let mut st = lock(&lane.state);
        if st.closing.is_some() {
            return None;
        }
        // Before anything changes: a flush looking at the lanes now sees it when it ends.
        self.resumed.fetch_add(1, Ordering::SeqCst);
        also(&mut st);
        st.breaker = crate::delivery::decide::Breaker::default();
        st.hold_until = None;
        // In memory, and (with a spool) set aside until their retry.
        let hurried = st.schedule.hurry() + st.window.hurry();
        lane.update_held(&st);
        drop(st);
        self.pool.push(lane);
        Some(hurried)
    }

    // --- flush and stop -----------------------------------------------------------------

    /// Waits until nothing is queued or in flight, or `timeout` passes, or all that is left
    /// waits on endpoints that cannot send before it passes ([`Engine::held_past`]).
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), Error> {
        // The deadline counts from the call: routing what waits for the router is part of
        // the wait, not before it.
        let deadline = later(Instant::now(), timeout);
        self.route_all();
        let mut hint = None;
        self.flush_waiters.fetch_add(1, Ordering::AcqRel);
        let busy = || {
            self.outstanding.load(Ordering::Acquire) > 0 && !self.stopping.load(Ordering::Acquire)
        };
        let mut held = None;
        while busy() {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                break;
            }
            // Without the lock, which the attempt that ends the last job takes to wake us.
            held = self.held_past(deadline, now, &mut hint, timeout);
            if held.is_some() {
                break;
            }
            let guard = lock(&self.idle.0);
            // Checked again under the lock: a wake since the look is not missed.
            if busy() {
                drop(
                    self.idle
                        .1
                        .wait_timeout(guard, left.min(HELD_LOOK))
                        .unwrap_or_else(|p| p.into_inner()),
                );
            }
        }
        self.flush_waiters.fetch_sub(1, Ordering::AcqRel);
        held.map_or_else(|| self.pending_after(timeout), Err)
    }

    /// [`Engine::flush`] for async code: waits without blocking the runtime.
    #[cfg(feature = "_async")]
    pub(crate) async fn flush_async(&self, timeout: Duration) -> Result<(), Error> {
        // The deadline counts from the call: routing what waits for the router is part of
        // the wait, not before it.
        let deadline = later(Instant::now(), timeout);
        self.route_all();
        let ticker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
            .then(Ticker::start)
            .flatten();
        let mut hint = None;
        loop {
            let notified = self.idle_async.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            if self.outstanding.load(Ordering::Acquire) == 0
                || self.stopping.load(Ordering::Acquire)
                || now >= deadline
            {
                break;
            }
            if let Some(held) = self.held_past(deadline, now, &mut hint, timeout) {
                return Err(held);
            }
            let look = deadline.min(later(now, HELD_LOOK));
            match &ticker {
                Some(ticker) => tokio::select! {
                    () = notified => {}
                    () = ticker.until(look) => {}
                },
                None => tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(look.into()) => {}
                },
            }
        }
        self.pending_after(timeout)
    }

    /// When all that is outstanding waits on endpoints that can make no attempt before
    /// `deadline` ([`LaneState::idle_past`]): the flush's answer, naming them. `None` while
    /// anything could still go, or the look was not one consistent picture (an event came
    /// or went while it looked). `hint` is the lane last found able to go: looked at first.
    ///
    /// [`LaneState::idle_past`]: crate::delivery::lane::LaneState::idle_past
    pub(super) fn held_past(
        &self,
        deadline: Instant,
        now: Instant,
        hint: &mut Option<Arc<Lane>>,
        timeout: Duration,
    ) -> Option<Error> {
        if let Some(lane) = hint.as_ref()
            && self.held_jobs(lane, deadline, now, true).is_none()
        {
            return None;
        }
        let before = self.picture();
        let (mut held, mut names) = (0, Vec::new());
        let mut movable = None;
        self.registry.for_each(|lane| {
            if movable.is_some() {
                return;
            }
            // Under the registry's read lock: a lane locked by a worker is one at work.
            match self.held_jobs(lane, deadline, now, false) {
                Some(0) => {}
                Some(jobs) => {
                    held += jobs;
                    names.push(lane.name.clone());
                }
                None => movable = Some(lane.clone()),
            }
        });
        if movable.is_some() {
            *hint = movable;
            return None;
        }
        let (queued, in_flight) = self.pending();
        let consistent = before == self.picture() && before.0 == held;
        (consistent && held > 0 && in_flight == 0 && queued == held).then(|| Error::Undelivered {
            queued,
            in_flight,
            held,
            // The registry is ordered by name.
            held_by: names.iter().map(ToString::to_string).collect(),
            timeout,
        })
    }

    /// The jobs `lane` holds that can make no attempt before `deadline` (0 when it has
    /// none), or `None` when it may make one. Unless told to `wait` for the lane's lock, a
    /// lane whose lock is held (a worker at it) is taken for one that may.
    fn held_jobs(&self, lane: &Lane, deadline: Instant, now: Instant, wait: bool) -> Option<usize> {
        if lane.outstanding.load(Ordering::Acquire) == 0 {
            return Some(0);
        }
        // A dead letter being written: soon over.
        if lane.letters_writing.load(Ordering::Acquire) > 0 {
            return None;
        }
        let route = lane.route();
        let st = match lane.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if wait => lock(&lane.state),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let outstanding = lane.outstanding.load(Ordering::Acquire);
        st.idle_past(deadline, now, outstanding, &route, &self.config.breaker)
            .then_some(outstanding)
    }

    /// What a look at the lanes must see unchanged from its start to its end: the sink's
    /// outstanding jobs, how many it ever took, and the resumes.
    fn picture(&self) -> (usize, u64, u64) {
        (
            self.outstanding.load(Ordering::SeqCst),
            self.order.load(Ordering::SeqCst),
            self.resumed.load(Ordering::SeqCst),
        )
    }

    fn pending_after(&self, timeout: Duration) -> Result<(), Error> {
        let (queued, in_flight) = self.pending();
        if queued + in_flight == 0 {
            return Ok(());
        }
        Err(Error::Undelivered {
            queued,
            in_flight,
            held: 0,
            held_by: Vec::new(),
            timeout,
        })
    }

    /// Attempts under way (after a stop too: those started before it run to their end):
    /// an atomic load.
    #[cfg(feature = "relay")]
    pub(crate) fn attempts_under_way(&self) -> usize {
        self.pool.in_flight()
    }

    /// The longest an attempt under way may still take: the longest timeout of the
    /// endpoints' settings, and what is left of those of settings replaced or removed (an
    /// attempt keeps the settings it began with): a look at every endpoint.
    #[cfg(feature = "relay")]
    pub(crate) fn longest_attempt(&self) -> Duration {
        let mut longest = Duration::ZERO;
        self.registry.for_each(|lane| {
            longest = longest.max(lane.route().endpoint.attempt_timeout());
        });
        // After the look: settings replaced during it are counted here, if not there.
        longest.max(self.registry.retired_left())
    }

    /// Whether endpoint `endpoint` is attempting an event of ticket `ticket` now.
    #[cfg(feature = "relay")]
    pub(crate) fn attempting(&self, endpoint: &str, ticket: &str) -> bool {
        self.registry
            .get(endpoint)
            .is_some_and(|lane| lock(&lane.state).schedule.attempting(ticket))
    }

    /// Jobs queued, and jobs in flight.
    pub(crate) fn pending(&self) -> (usize, usize) {
        let outstanding = self.outstanding.load(Ordering::Acquire);
        let in_flight = self.pool.in_flight().min(outstanding);
        (outstanding - in_flight, in_flight)
    }

    /// Flushes for `timeout`, then stops the workers. What is still queued goes to the dead
    /// letters (or stays in the spool, or is handed back to a relay's stream); what is in
    /// flight is reported too (it may also arrive: receivers de-duplicate on `webhook-id`).
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let flushed = self.flush(timeout);
        #[cfg(test)]
        super::tests::between_flush_and_stop();
        let left = self.stop_all("undelivered at shutdown");
        self.wait_for_letters_due();
        self.backlog.close();
        self.connector.close_kept();
        if left > 0 {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "shutdown after {}: {left} event(s) undelivered, {}",
                deskhook::policy::format_duration(timeout),
                self.backlog.stop_place()
            );
        }
        match flushed {
            // Emitted after the flush found nothing left (another thread still emitting):
            // let go all the same, and told.
            Ok(()) if left > 0 => Err(Error::Undelivered {
                queued: left,
                in_flight: 0,
                held: 0,
                held_by: Vec::new(),
                timeout,
            }),
            flushed => flushed,
        }
    }

    /// Waits, a second at most, for the letters of attempts given up as the stop began
    /// (which it passes over, their workers writing them): returned before, the process
    /// could end without them. A letter is written in microseconds, once the stop's own
    /// letters have let go of the file.
    fn wait_for_letters_due(&self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.letters_due.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "shutdown: {} dead letter(s) still being written after a second; they \
                     may be lost if the process ends now",
                    self.letters_due.load(Ordering::Acquire)
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops every lane and the workers; returns the jobs let go.
    fn stop_all(&self, reason: &'static str) -> usize {
        // SeqCst, paired with `hand_over`: an event handed over as the stop begins is routed
        // either below or by its emitter.
        if self.stopping.swap(true, Ordering::SeqCst) {
            return 0;
        }
        self.pool.stop();
        // To the lanes first, so that they go where the lanes' queues go.
        self.route_all();
        let left = self
            .registry
            .all()
            .iter()
            .map(|lane| {
                let closed = self.close_lane(lane, Closing::Stopping, Release::Stopping(reason));
                closed.dead_lettered
            })
            .sum::<usize>()
            + self.stop_retiring(reason);
        self.wake_flushes();
        left
    }

    /// Keeps `lane`, removed with attempts in flight, for a stop to report them; a stop
    /// already under way (it may have looked for such lanes before this one came) reports
    /// them here.
    fn retire(&self, lane: &Arc<Lane>) {
        {
            let mut retiring = lock(&self.retiring);
            retiring.retain(|gone| gone.strong_count() > 0);
            retiring.push(Arc::downgrade(lane));
        }
        // SeqCst, paired with `stop_all`: either it sees this lane, or this sees its stop.
        if self.stopping.load(Ordering::SeqCst) {
            let left = self.stop_retiring("undelivered at shutdown");
            if left > 0 {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{}' removed as the sink stopped: {left} attempt(s) in flight \
                     {}",
                    lane.name,
                    self.backlog.stop_place()
                );
            }
        }
    }

    /// The attempts still in flight of endpoints removed before the stop: let go as a
    /// stop lets go of a registered endpoint's (with the dead letters "while in flight"),
    /// so that one whose outcome never comes (the process ends) is reported, and one whose
    /// outcome comes is not written twice. Returns how many.
    fn stop_retiring(&self, reason: &'static str) -> usize {
        let retiring = std::mem::take(&mut *lock(&self.retiring));
        retiring
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|lane| {
                let mut st = lock(&lane.state);
                if st.closing != Some(Closing::Removed) || st.in_flight.is_empty() {
                    return 0;
                }
                st.closing = Some(Closing::Stopping);
                lane.update_held(&st);
                let released =
                    self.backlog
                        .release(self, &lane, &mut st, Release::Stopping(reason));
                drop(st);
                self.backlog.complete(self, &lane, released)
            })
            .sum()
    }

    /// The async workers' runtime shut down: nothing would deliver what is queued, so it
    /// goes where a shutdown sends it rather than being lost silently.
    #[cfg(feature = "_async")]
    pub(crate) fn runtime_gone(&self) {
        let left = self.stop_all("the async runtime shut down before delivery");
        if left > 0 {
            log::error!(
                target: deskhook::LOG_TARGET,
                "the delivery runtime shut down with {left} event(s) undelivered, {}",
                self.backlog.stop_place()
            );
        }
    }

    /// Counters and state of every endpoint, by name.
    pub(crate) fn stats(&self) -> Vec<EndpointStats> {
        self.route_all();
        self.registry
            .all()
            .iter()
            .map(|lane| lane.stats(None))
            .collect()
    }

    /// The counters of every endpoint added up since the sink started: a few atomic loads.
    pub(crate) fn totals(&self) -> DeliveryTotals {
        self.route_all();
        let (queued, in_flight) = self.pending();
        let c = &self.counted;
        DeliveryTotals {
            endpoints: self.registry.len(),
            queued,
            in_flight,
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            unrouted: self.unrouted.load(Ordering::Relaxed),
        }
    }

    /// Endpoints by state: active, paused, disabled, breaker open, in one walk.
    pub(crate) fn states(&self) -> [(EndpointState, usize); 4] {
        let mut counts = [
            (EndpointState::Active, 0),
            (EndpointState::Paused, 0),
            (EndpointState::Disabled, 0),
            (EndpointState::BreakerOpen, 0),
        ];
        self.registry.for_each_state(|_, st| {
            let slot = match st.public_state() {
                EndpointState::Active => 0,
                EndpointState::Paused => 1,
                EndpointState::Disabled => 2,
                EndpointState::BreakerOpen => 3,
            };
            counts[slot].1 += 1;
        });
        counts
    }

    /// Worker threads alive now and at most (blocking transport).
    pub(crate) fn threads(&self) -> (usize, usize) {
        self.pool.threads()
    }

    /// The spool's commit listener: `touched` lanes got rows (a worker looks at them);
    /// `dropped` jobs (each its lane and event type) could not be written.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn on_commit(
        &self,
        touched: &[Arc<Lane>],
        dropped: &[(Arc<Lane>, EventType)],
        dead: &[(Arc<Lane>, usize)],
    ) {
        for (lane, event_type) in dropped {
            self.count_dropped(lane, Some(*event_type), 1);
            self.finished(lane, 1);
        }
        // Rows moved to the dead letters by the writer (an endpoint removed or disabled, an
        // unreadable row), and events for such an endpoint written there at once.
        for (lane, n) in dead {
            self.count_dead_lettered(lane, *n as u64);
            self.finished(lane, *n);
        }
        for lane in touched {
            self.pool.push(lane);
        }
    }
}

/// Wakes a flush at each look on a current-thread runtime, whose timer may not run while it
/// waits: a blocking `deskhook::flush()` polls an async sink's flush on the thread it is
/// called from (with pollster), and on the runtime's one thread that drives neither its
/// timers nor its deliveries. The flush then ends at its deadline, an error saying what is
/// left, rather than never. A thread of its own for the flush's time, every [`HELD_LOOK`].
#[cfg(feature = "_async")]
struct Ticker {
    waker: Arc<std::sync::Mutex<Option<std::task::Waker>>>,
    done: Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(feature = "_async")]
impl Ticker {
    /// `None` when no thread can be started (the runtime's timer is used then).
    fn start() -> Option<Ticker> {
        let ticker = Ticker {
            waker: Arc::default(),
            done: Arc::default(),
        };
        let (waker, done) = (ticker.waker.clone(), ticker.done.clone());
        std::thread::Builder::new()
            .name("deskhook-flush".to_owned())
            .spawn(move || {
                while !done.load(Ordering::Acquire) {
                    std::thread::sleep(HELD_LOOK);
                    if let Some(waker) = lock(&waker).take() {
                        waker.wake();
                    }
                }
            })
            .ok()?;
        Some(ticker)
    }

    /// Resolves at `at` or after (polled at the next tick past it).
    async fn until(&self, at: Instant) {
        std::future::poll_fn(|cx| {
            if Instant::now() >= at {
                return std::task::Poll::Ready(());
            }
            *lock(&self.waker) = Some(cx.waker().clone());
            std::task::Poll::Pending
        })
        .await;
    }
}

#[cfg(feature = "_async")]
impl Drop for Ticker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

/// Takes back a 410's disabling of `lane` (under its state lock): it takes events again.
fn enable(lane: &Lane, st: &mut LaneState) {
    if st.disabled {
        st.disabled = false;
        lane.closed.store(false, Ordering::SeqCst);
    }
}
