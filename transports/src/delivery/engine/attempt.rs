//! A worker's side of the engine: the next attempt to make (the run queue, a lane's look:
//! its schedule, limits, breaker, hold and rate), the attempt itself, and settling its
//! outcome (the decision, counters, the attempt log, retries and dead letters).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::Engine;
use crate::delivery::backlog::{LetterFate, Release, Settling};
use crate::delivery::decide::{Decision, Reply, Standing, decide, jitter_unit, later, outcome_of};
use crate::delivery::history::{AttemptEntry, AttemptPage, AttemptQuery};
use crate::delivery::lane::{InFlight, LaneState};
use crate::delivery::pool::Popped;
use crate::delivery::queue::HeldRetry;
use crate::delivery::{
    AttemptError, AttemptRecord, EventData, Job, Lane, RESPONSE_SNIPPET_BYTES, Response, Route,
    lock,
};
use crate::error::Error;

/// What a worker does next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Make this attempt.
    Attempt(Attempt),
    /// Nothing is due: wait for a wake-up, or until the instant.
    Wait(Option<Instant>),
    /// The sink stops.
    Stop,
}

/// One attempt of one job, taken by a worker. Settled with [`Attempt::finish`]; one dropped
/// unsettled (its task was dropped by a runtime that shut down) settles as a failure, so
/// that its job is never lost silently.
#[derive(Debug)]
pub(crate) struct Attempt {
    engine: Arc<Engine>,
    pub(crate) lane: Arc<Lane>,
    pub(crate) route: Arc<Route>,
    job: Option<Job>,
}

impl Attempt {
    /// The job.
    pub(crate) fn job(&self) -> &Job {
        self.job
            .as_ref()
            .expect("an attempt holds its job until it is settled")
    }

    /// Whether preparing it is worth another thread; see [`Route::costly`].
    #[cfg(feature = "_async")]
    pub(crate) fn costly(&self) -> bool {
        self.route.costly(self.job())
    }

    /// The headers of this attempt (rendering the job's body first, when its endpoint has a
    /// payload template); see [`Route::prepare`].
    pub(crate) fn prepare(
        &mut self,
        now: SystemTime,
    ) -> Result<crate::delivery::route::Prepared, String> {
        let job = self
            .job
            .as_mut()
            .expect("an attempt holds its job until it is settled");
        // A panic (a template's or a signer's bug) is this event's, not the endpoint's: as a
        // render error, the attempt is refused for good (dead-lettered, the breaker left
        // alone), rather than retried through its whole schedule with its ticket held.
        let (route, budget) = (&self.route, &self.engine.budget);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            route.prepare(job, now, budget)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(format!(
                "preparing the request panicked ({what}); not sent, and not retried"
            ))
        })
    }

    /// Records the outcome.
    pub(crate) fn finish(mut self, result: Result<Response, AttemptError>, duration: Duration) {
        if let Some(job) = self.job.take() {
            self.engine
                .settle(&self.lane, &self.route, job, result, duration, true);
        }
    }

    /// Records that the attempt could not be made (what [`prepare`](Attempt::prepare)
    /// refused): final for the event, no failure of the endpoint's.
    pub(crate) fn refuse(mut self, message: String) {
        if let Some(job) = self.job.take() {
            let refused = AttemptError {
                message,
                retryable: false,
            };
            self.engine.settle(
                &self.lane,
                &self.route,
                job,
                Err(refused),
                Duration::ZERO,
                false,
            );
        }
    }

    /// Makes the attempt's headers and sends them with `send`, then records the outcome.
    #[cfg(feature = "http-blocking")]
    pub(crate) fn run(
        mut self,
        send: impl FnOnce(&Attempt, &[(&str, &str)]) -> Result<Response, AttemptError>,
    ) {
        let (result, took) = match self.prepare(SystemTime::now()) {
            Ok(mut prepared) => {
                let headers = prepared.headers(&self.route, self.job());
                #[cfg(feature = "tracing")]
                let span = crate::delivery::telemetry::attempt_span(&self.route, self.job());
                #[cfg(feature = "tracing")]
                let entered = span.enter();
                let started = Instant::now();
                let result = send(&self, &headers);
                #[cfg(feature = "tracing")]
                {
                    crate::delivery::telemetry::attempt_ended(&span, &result);
                    drop(entered);
                }
                (result, started.elapsed())
            }
            Err(message) => return self.refuse(message),
        };
        self.finish(result, took);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            // Dropped by a panic in the transport: a failed attempt like any other. Dropped
            // otherwise: its task was dropped by a runtime shutting down, and with it every
            // delivery task: the sink stops first, so that this job is reported with the rest.
            let panicked = std::thread::panicking();
            #[cfg(feature = "_async")]
            if !panicked {
                self.engine.runtime_gone();
            }
            let abandoned = AttemptError {
                message: if panicked {
                    "the transport panicked during the attempt".to_owned()
                } else {
                    "the attempt was dropped before it ended (its runtime shut down)".to_owned()
                },
                retryable: true,
            };
            self.engine.settle(
                &self.lane,
                &self.route,
                job,
                Err(abandoned),
                Duration::ZERO,
                true,
            );
            // The slot it freed and the lanes it queued are for a worker to see: the task
            // (or preparer thread) that dropped it ends without looking for one.
            self.engine.pool.nudge();
        }
    }
}

impl Engine {
    /// The next attempt to make, or how long to wait for one.
    pub(crate) fn next_attempt(self: &Arc<Self>) -> Next {
        if self.stopping() {
            // Before the slots: the async dispatcher, woken by the stop while every slot is
            // taken, must end rather than wait for a slot no attempt will tell it of.
            return Next::Stop;
        }
        if self.pool.saturated() {
            // No lane could go; the worker that frees a slot comes back here.
            return Next::Wait(None);
        }
        loop {
            match self.pool.pop() {
                Popped::Stop => return Next::Stop,
                Popped::Wait(at) => return Next::Wait(at),
                Popped::Routing => self.route_some(),
                Popped::Lane(lane) => {
                    if let Some(attempt) = self.take(&lane) {
                        return Next::Attempt(attempt);
                    }
                }
            }
        }
    }

    /// Takes `lane`'s next attempt if it may make one now. Otherwise arranges to look at it
    /// again: a timer for a retry, a cool-down or a token; the run queue when a slot frees;
    /// nothing when it is held (paused, disabled, closing) or at its own limit (the end of
    /// one of its attempts, or a resume, brings it back). A lane that was handed a freed slot
    /// and does not take it hands it to the next lane waiting that may fill it (none when
    /// it was refused again at the limit, see
    /// [`Pool::unstarve`](crate::delivery::pool::Pool::unstarve)), which the caller looks
    /// at next.
    fn take(self: &Arc<Self>, lane: &Arc<Lane>) -> Option<Attempt> {
        let handed = lane.handed.swap(false, Ordering::AcqRel);
        let attempt = self.take_now(lane);
        if handed && attempt.is_none() {
            self.pool.unstarve(false);
        }
        attempt
    }

    /// [`take`](Engine::take) but for passing on a slot handed to the lane.
    fn take_now(self: &Arc<Self>, lane: &Arc<Lane>) -> Option<Attempt> {
        let mut st = lock(&lane.state);
        // Read under the state lock, which an update takes once it has set the route
        // (`Lane::route_changed`): an update that has returned is the settings of every
        // attempt taken after it.
        let route = lane.route();
        if st.held() {
            return None;
        }
        let load_again = self.backlog.refill(self, lane, &mut st);
        let now = Instant::now();
        let looked = self.look(lane, &route, &mut st, now);
        // The next look: a retry, cool-down or token it waits for, a job of another ticket
        // delayed behind the one going now, or a read of the spool to try again.
        let later_at = [
            match &looked {
                Look::Later(at) => Some(*at),
                _ => None,
            },
            st.schedule.next_due(),
            load_again,
        ]
        .into_iter()
        .flatten()
        .min();
        let timer = later_at.filter(|at| st.arm(*at));
        let attempt = match looked {
            Look::Go(mut job) => {
                job.attempts += 1;
                st.in_flight.push(InFlight {
                    order: job.order,
                    event: job.event.clone(),
                    attempts: job.attempts,
                    row: job.row,
                    dying: false,
                });
                Some(job)
            }
            _ => None,
        };
        lane.queued_mirror
            .store(st.schedule.queued(), Ordering::Release);
        let withdrawn = st.schedule.take_withdrawn();
        let more = attempt.is_some()
            && st.schedule.has_ready()
            && st.schedule.in_flight() < route.max_in_flight;
        drop(st);
        self.finished(lane, withdrawn);
        // Room for an emit blocked on a full queue.
        lane.notify_room();
        if let Some(at) = timer {
            self.pool.timer(lane, at);
        }
        if more {
            self.pool.push(lane);
        }
        attempt.map(|job| Attempt {
            engine: self.clone(),
            lane: lane.clone(),
            route,
            job: Some(job),
        })
    }

    /// Whether `lane` can go now, under its lock.
    fn look(&self, lane: &Arc<Lane>, route: &Route, st: &mut LaneState, now: Instant) -> Look {
        if !st.schedule.promote(now) {
            return st.schedule.next_due().map_or(Look::Idle, Look::Later);
        }
        if st.schedule.in_flight() >= route.max_in_flight {
            return Look::Full;
        }
        match st.hold_until {
            Some(until) if now < until => return Look::Later(until),
            Some(_) => st.hold_until = None,
            None => {}
        }
        if let Err(at) = st.breaker.check(now, &self.config.breaker) {
            return Look::Later(at);
        }
        if let (Some(bucket), Some(limit)) = (&st.bucket, &route.endpoint.rate_limit)
            && let Err(at) = bucket.check(limit, now)
        {
            if !st.waiting_for_token {
                st.waiting_for_token = true;
                self.count(lane, |c| &c.rate_limited, 1);
            }
            return Look::Later(at);
        }
        // An endpoint that is failing counts as one with a request in flight: it may not
        // take the slots kept back for the healthy ones.
        let load = st.schedule.in_flight() + usize::from(st.breaker.failing());
        if !self.pool.try_acquire(load) {
            self.pool.starve(lane, load);
            return Look::Full;
        }
        let Some(job) = st.schedule.take(now) else {
            self.pool.release();
            return Look::Idle;
        };
        st.breaker.admit();
        if let (Some(bucket), Some(limit)) = (&mut st.bucket, &route.endpoint.rate_limit) {
            bucket.take(limit, now);
        }
        st.waiting_for_token = false;
        Look::Go(job)
    }

    /// Records the outcome of an attempt. A job that is finished for good keeps its ticket
    /// in flight until its dead letter is written, so that the ticket's next event is neither
    /// attempted nor dead-lettered before it.
    fn settle(
        self: &Arc<Self>,
        lane: &Arc<Lane>,
        route: &Route,
        mut job: Job,
        result: Result<Response, AttemptError>,
        duration: Duration,
        sent: bool,
    ) {
        let (reply, snippet) = match &result {
            Ok(response) => {
                job.last_status = Some(response.status);
                job.last_error = None;
                (
                    Reply::Status {
                        status: response.status,
                        retry_after: response.retry_after,
                    },
                    &response.snippet[..],
                )
            }
            Err(err) => {
                job.last_status = None;
                job.last_error = Some(err.message.as_str().into());
                let reply = if sent {
                    Reply::Error {
                        message: &err.message,
                        retryable: err.retryable,
                    }
                } else {
                    Reply::Unsent {
                        message: &err.message,
                    }
                };
                (reply, &[][..])
            }
        };
        let jitter = jitter_unit(job.event.id, job.attempts.saturating_add(1));
        // Before the lock: dropped after it, also while unwinding (its end locks).
        let mut ending = Ending {
            engine: self,
            lane,
            slot: true,
            held: None,
            done: None,
            settling: None,
            finish: false,
        };
        #[cfg(test)]
        super::tests::before_settle_lock();
        let mut st = lock(&lane.state);
        // Under the lock: the retry's instant, the breaker's and the hold's count from when
        // this outcome takes effect, not from before a wait for the lock.
        let now = Instant::now();
        // The lane's route may be newer than its rate-limit bucket for a moment (an update
        // swaps it, then fits the bucket under this lock: `Lane::route_changed`). Only a
        // change of the request or its receiver makes this attempt's outcome moot; another
        // (a schedule, a limit) applies from the next attempt: the retry's delay is the new
        // schedule's.
        let current = lane.route();
        let standing = match st.standing(self.backlog.keeps_undelivered()) {
            Standing::Open
                if !std::ptr::eq(route, Arc::as_ptr(&current))
                    && !route.endpoint.same_request(&current.endpoint) =>
            {
                Standing::Replaced {
                    same_receiver: route.endpoint.same_receiver(&current.endpoint),
                }
            }
            standing => standing,
        };
        let (decision, moved) = decide(
            reply,
            job.attempts,
            jitter,
            standing,
            &current.endpoint.retry,
            self.config.retry_after_max,
        );
        // A stop that dead-letters wrote the jobs in flight already.
        let reported = standing == Standing::Stopping { keep: false };
        let order = job.order;
        if job.last_status.is_some() {
            st.latencies.record(duration);
        }
        let ended = SystemTime::now();
        st.minutes.record(ended, decision == Decision::Delivered);
        st.last_attempt = Some((ended, job.last_status));
        if let crate::delivery::decide::BreakerMove::Backoff(wait) = moved {
            let until = later(now, wait);
            st.hold_until = Some(st.hold_until.map_or(until, |held| held.max(until)));
        }
        st.breaker.record(moved, now, &self.config.breaker);
        if decision != Decision::Delivered {
            self.count(lane, |c| &c.failed, 1);
        }
        let (event, attempts, seq) = (job.event.clone(), job.attempts, job.seq);
        let (status, error) = (job.last_status, job.last_error.clone());
        let mut next_attempt = None;
        let mut dead = None;
        let mut delivered = None;
        let mut released = None;
        // Whether the letter of a job given up on a 410 was lost (not in the file).
        let mut own_lost = false;
        // A withdrawn job (its relay's tenure ended) is not kept for a retry.
        let mut let_go = false;
        let mut rest_timer = None;
        let mut unread = false;
        match &decision {
            Decision::Retry { .. } if event.is_withdrawn() => {
                st.schedule.done(&job);
                let_go = true;
            }
            // The sink stops and keeps what is undelivered where it is (the spool's row,
            // the relay's stream): its outcome is written if the spool is still open (a
            // shutdown closes it once its wait for the attempts in flight ends), and it is
            // no longer this sink's to count as queued.
            Decision::Retry { delay } if standing == Standing::Stopping { keep: true } => {
                self.count(lane, |c| &c.retried, 1);
                let at = SystemTime::now().checked_add(*delay);
                next_attempt = at;
                self.backlog
                    .retrying(&job, at.unwrap_or_else(SystemTime::now));
                st.schedule.done(&job);
                let_go = true;
            }
            Decision::Delivered => {
                // One the stop reported with its dead letters ("it may also have been
                // delivered") is counted there, once.
                if !reported {
                    self.count(lane, |c| &c.delivered, 1);
                }
                // Recorded before the ticket's next job can go, so that the store sees a
                // ticket's outcomes in order.
                self.backlog.delivered(&job);
                // The ticket's next job goes once this attempt is logged and observed
                // (below), so that the attempt log and the observer see a ticket's
                // deliveries in their order.
                delivered = Some(job);
            }
            Decision::Retry { delay } => {
                self.count(lane, |c| &c.retried, 1);
                let at = SystemTime::now().checked_add(*delay);
                next_attempt = at;
                self.backlog
                    .retrying(&job, at.unwrap_or_else(SystemTime::now));
                let mut job = job;
                self.keep_render(&mut job);
                // Queued again (a stop or a removal takes it with the rest), and due for
                // no worker until this attempt is logged and observed (below), so that the
                // attempt log and the observer see a ticket's attempts in their order.
                let (key, at) = (job.key().clone(), later(now, *delay));
                ending.held = Some(st.schedule.put_back(job, at));
                // A backlog that keeps it on disk may let go of the ticket's copies in
                // memory until then (a timer reads them back).
                let rested = self.backlog.retry_later(&mut st, &key, at, now);
                // Then the lane's rows not read yet (its breaker, open again after a failed
                // probe, has its cool-down's end for them) are looked at.
                unread = rested.is_some() && st.window.has_unread(lane.rows.committed().0);
                rest_timer = rested.filter(|at| st.arm(*at));
            }
            Decision::Dead { reason, disable } => {
                if *disable {
                    // This job's letter first, then its ticket's later events, and while it is
                    // still in flight (the release leaves it to this attempt).
                    if !reported {
                        let fate;
                        (fate, ending.settling) = self.dead_letter_settling(lane, &job, reason);
                        own_lost = fate == LetterFate::Lost;
                    }
                    lane.closed.store(true, Ordering::SeqCst);
                    st.disabled = true;
                    lane.update_held(&st);
                    released = Some(self.backlog.release(self, lane, &mut st, Release::Disabled));
                }
                dead = Some((job, reason.clone(), *disable));
            }
        }
        let mut due = None;
        match &dead {
            // Given up and not written yet: still in flight for a removal or a stop that
            // comes before its letter is written, so that neither writes it a second time
            // (a removal with a spool moves every row not in flight).
            Some((_, _, false)) if !reported => {
                if let Some(entry) = st.in_flight.iter_mut().find(|j| j.order == order) {
                    entry.dying = true;
                }
                self.letters_due.fetch_add(1, Ordering::AcqRel);
                due = Some(Due(&self.letters_due));
            }
            _ => st.attempt_over(order),
        }
        lane.queued_mirror
            .store(st.schedule.queued(), Ordering::Release);
        let ready = st.schedule.has_ready() || unread;
        let breaker = st.breaker.state_at(now);
        drop(st);
        if let Some(at) = rest_timer {
            self.pool.timer(lane, at);
        }
        let given_up = dead
            .as_ref()
            .map(|(_, reason, disable)| (reason.clone(), *disable));
        ending.done = dead.map(|(job, _, _)| job).or(delivered);
        ending.finish = let_go || !matches!(decision, Decision::Retry { .. });
        lane.notify_room();
        // The worker settling this attempt looks at the run queue next: it takes the freed
        // slot, so nobody else is woken for it.
        self.pool.release();
        ending.slot = false;
        if ready {
            self.pool.requeue(lane);
        }
        if let Some(released) = released {
            self.complete_disabled(lane, released, &route.url, own_lost);
        }
        if let (Some(job), Some((reason, false))) = (&ending.done, &given_up)
            && !reported
        {
            #[cfg(test)]
            super::tests::before_dying_letter();
            ending.settling = self.dead_letter_settling(lane, job, reason).1;
        }
        drop(due);
        let take = snippet.len().min(RESPONSE_SNIPPET_BYTES);
        let record = AttemptRecord {
            event_id: event.id,
            endpoint: &lane.name,
            url: &route.url,
            tenant: event.tenant.as_deref(),
            action: event.event_type.action(),
            event_type: event.event_type,
            ticket: &event.key,
            sequence: seq,
            attempt: attempts,
            status,
            error: error.as_deref(),
            duration,
            response: &snippet[..take],
            next_attempt,
            outcome: outcome_of(&decision),
            breaker,
        };
        self.log_attempt(lane, &event, &record, ended);
        #[cfg(feature = "metrics")]
        crate::delivery::telemetry::attempt(
            &lane.name,
            record.outcome,
            record.status,
            // One never sent took no time worth a sample.
            sent.then_some(record.duration),
            self.config.metrics_per_endpoint,
        );
        if let Some(observer) = &self.observer
            && catch_unwind(AssertUnwindSafe(|| observer.on_attempt(&record))).is_err()
        {
            log::error!(target: deskhook::LOG_TARGET, "the delivery observer panicked; delivery goes on");
        }
        // Dropped: the retry let go, or the job done and finished.
        drop(ending);
    }
}

/// A letter due (see `Engine::letters_due`): counted from when its job is marked dying
/// until the letter is written, however the settle ends (something in between that panics
/// included).
struct Due<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Due<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What ends an attempt once it is logged and observed, when this is dropped: at the end of
/// `settle`, or by a panic before it (a `log` logger writing to a closed pipe, an observer's
/// metrics recorder). The attempt's slot of the pool is released if it was not already; a
/// retry [`Schedule::put_back`](crate::delivery::queue::Schedule::put_back)
/// holds is released (else it would never go, and its lane would never look idle); a job
/// delivered or given up is done, which lets its ticket's next event go (else the ticket
/// would be held for good); and the job is finished for a flush (else it would wait for it).
struct Ending<'a> {
    engine: &'a Engine,
    lane: &'a Arc<Lane>,
    /// Whether the attempt still holds its slot of the pool (released early on the way: a
    /// slot never released would shrink the sink's limit for good).
    slot: bool,
    /// A retry queued again, due for no worker until released.
    held: Option<HeldRetry>,
    /// A job delivered or given up, still in flight.
    done: Option<Job>,
    /// A letter its writer settles later: this job ends when both this attempt and the
    /// writer are done with it.
    settling: Option<Settling>,
    /// Whether the job ends with this attempt (not queued again for a retry).
    finish: bool,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let (engine, lane) = (self.engine, self.lane);
        if self.slot {
            engine.pool.release();
        }
        if let Some(held) = self.held.take() {
            let mut st = lock(&lane.state);
            let timer = st.schedule.release(held).filter(|at| st.arm(*at));
            let ready = st.schedule.has_ready();
            drop(st);
            if let Some(at) = timer {
                engine.pool.timer(lane, at);
            }
            if ready {
                engine.pool.requeue(lane);
            }
        }
        if let Some(job) = self.done.take() {
            let mut st = lock(&lane.state);
            // From in flight to being written, in one step for a look under the lock.
            if self.settling.is_some() {
                lane.letters_writing.fetch_add(1, Ordering::AcqRel);
            }
            st.attempt_over(job.order);
            st.schedule.done(&job);
            // With a spool, rows not read yet (those that came while its breaker was open,
            // tickets set aside until it could send) are read at its next look: this may
            // have been its breaker's probe, with nothing else of it in memory.
            let ready = st.schedule.has_ready() || st.window.has_unread(lane.rows.committed().0);
            drop(st);
            if ready {
                engine.pool.requeue(lane);
            }
        }
        if self.finish {
            match self.settling.take() {
                None => engine.finished(lane, 1),
                Some(settling) => {
                    if settling.arrive() {
                        engine.letter_settled(lane);
                    }
                }
            }
        }
    }
}

impl Engine {
    /// Dead-letters `job`, given up by an attempt: its [`Settling`] when its writer
    /// settles the letter later, so that the attempt finishes the job only if it comes
    /// second.
    fn dead_letter_settling(
        &self,
        lane: &Arc<Lane>,
        job: &Job,
        reason: &str,
    ) -> (LetterFate, Option<Settling>) {
        let settling = Settling::default();
        let fate = self.dead_letter(lane, job, reason, Some(settling.clone()));
        (fate, (fate == LetterFate::Pending).then_some(settling))
    }

    /// Keeps `record` in the attempt log (and, with a spool, in its database).
    fn log_attempt(
        &self,
        lane: &Lane,
        event: &EventData,
        record: &AttemptRecord<'_>,
        at: SystemTime,
    ) {
        // attempt_log = 0 turns the log off, the spool's table too.
        if !self.attempts.enabled() {
            return;
        }
        let persists = self.backlog.keeps_attempts();
        let entry = AttemptEntry {
            seq: 0,
            at,
            event_id: event.id_text.clone(),
            endpoint: lane.name.clone(),
            tenant: event.tenant.clone(),
            event_type: event.event_type,
            ticket: event.key.clone(),
            attempt: record.attempt,
            outcome: record.outcome,
            status: record.status,
            error: record.error.map(str::to_owned),
            duration: record.duration,
            response: record.response.into(),
            next_attempt: record.next_attempt,
        };
        if persists {
            self.backlog.record_attempt(&entry);
        }
        self.attempts.record(entry);
    }

    /// The attempts `query` asks for: from the spool's database when it keeps them, else
    /// from the ring in memory.
    pub(crate) fn attempts(&self, query: &AttemptQuery) -> Result<AttemptPage, Error> {
        match self.backlog.query_attempts(query) {
            Some(found) => found,
            None => Ok(self.attempts.query(query)),
        }
    }
}

/// What a look at a lane found.
#[derive(Debug)]
enum Look {
    /// Nothing queued.
    Idle,
    /// Nothing to do before the instant (a retry, a cool-down, a token).
    Later(Instant),
    /// At its limit, or the sink's: the end of an attempt brings it back.
    Full,
    /// This job goes now.
    Go(Job),
}
