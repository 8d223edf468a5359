//! The memory backlog: jobs queued in each endpoint's schedule (bounded per endpoint by
//! `queue_capacity` and per sink by `max_queued_bytes`), dead letters in a JSON Lines file.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use deskhook::policy::OverflowPolicy;

use super::{
    Accepted, Backlog, Letter, LetterFate, LetterOwner, Refusal, Registration, Release, Released,
    RowCounts,
};
use crate::delivery::budget::JOB_OVERHEAD;
use crate::delivery::dead_letter::DeadLetterLog;
use crate::delivery::lane::{Closing, LaneState};
use crate::delivery::letters::{DeadLetterPage, DeadLetterQuery, StoredLetter};
use crate::delivery::{
    DeadLetter, DeliveryConfig, Engine, EventData, Job, Lane, Lanes, Receipt, lock,
};
use crate::error::Error;

/// Jobs in memory; dead letters in a JSON Lines file.
#[derive(Debug)]
pub(crate) struct MemoryBacklog {
    pub(crate) letters: DeadLetterLog,
    /// At shutdown, drop what is undelivered instead of dead-lettering it (a relay hands it
    /// back to the stream).
    pub(crate) drop_on_stop: bool,
}

impl MemoryBacklog {
    /// Queues a job for `lane`. The common case (room in the queue, lane open) never waits
    /// for the state lock: the job goes straight into the schedule when the lock is free,
    /// and to the inbox when a worker holds it. A full queue or a closed lane goes the slow
    /// way.
    fn submit(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        job: Job,
        deadline: Option<Instant>,
    ) -> Result<(), Refusal> {
        let capacity = capacity_for(engine.config(), &job);
        let queued =
            lane.inbox_len.load(Ordering::Acquire) + lane.queued_mirror.load(Ordering::Acquire);
        if queued >= capacity || lane.closed.load(Ordering::Acquire) {
            return self.submit_slow(engine, lane, job, deadline);
        }
        let free = match lane.state.try_lock() {
            Ok(st) => Some(st),
            Err(std::sync::TryLockError::Poisoned(st)) => Some(st.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        // Closing sets `closed` under the state lock: holding it and seeing it unset, the
        // closer will find this job in the schedule.
        if let Some(mut st) = free.filter(|_| !lane.closed.load(Ordering::SeqCst)) {
            // Straight into the schedule, behind what the inbox holds (routed before it):
            // one move of the job and no inbox to grow, which with thousands of endpoints
            // meant an allocation per event.
            drain_inbox(lane, &mut st);
            schedule(engine, lane, st, job);
            return Ok(());
        }
        engine.accepted(lane, 1);
        {
            let mut inbox = lock(&lane.inbox);
            inbox.push(job);
            lane.inbox_len.store(inbox.len(), Ordering::SeqCst);
        }
        #[cfg(test)]
        tests::hook(&tests::AFTER_INBOX_PUSH);
        if lane.closed.load(Ordering::SeqCst)
            && let Some(kept) = self.reclaim_inbox(engine, lane)
        {
            // Closed meanwhile, perhaps after the inbox was emptied for the last time:
            // nobody else would see this job.
            return Err(Refusal::dead_lettered(
                &format!(
                    "endpoint '{}': closed while the event was queued",
                    lane.name
                ),
                kept,
            ));
        }
        engine.pool().push(lane);
        Ok(())
    }

    /// Dead-letters whatever is in the inbox of a closed lane; false when a letter of them
    /// could not be kept (counted as dropped). `None` when the lane is open again (a resume
    /// after a 410 came since the caller saw it closed): the inbox is then the lane's to
    /// drain, the caller's job with the others emitters were told were queued.
    fn reclaim_inbox(&self, engine: &Engine, lane: &Arc<Lane>) -> Option<bool> {
        #[cfg(test)]
        tests::hook(&tests::BEFORE_RECLAIM);
        // Under the lane's lock, as a resume opens it and a drain empties the inbox.
        let (jobs, why) = {
            let st = lock(&lane.state);
            if !lane.closed.load(Ordering::SeqCst) {
                return None;
            }
            let mut inbox = lock(&lane.inbox);
            lane.inbox_len.store(0, Ordering::SeqCst);
            (std::mem::take(&mut *inbox), closed_reason(&st))
        };
        if jobs.is_empty() {
            return Some(true);
        }
        let mut kept = true;
        for job in &jobs {
            kept &= engine.dead_letter(lane, job, why.reason(), None) != LetterFate::Lost;
        }
        engine.finished(lane, jobs.len());
        Some(kept)
    }

    /// `submit` when the queue is full or the lane closed: under the state lock. Under the
    /// block policy it waits for room until `deadline`.
    fn submit_slow(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        job: Job,
        deadline: Option<Instant>,
    ) -> Result<(), Refusal> {
        let name = &lane.name;
        let config = engine.config();
        let capacity = capacity_for(config, &job);
        let mut st = lock(&lane.state);
        drain_inbox(lane, &mut st);
        if st.schedule.queued() >= capacity
            && let Some(deadline) = deadline
        {
            while st.schedule.queued() >= capacity && !lane.closed.load(Ordering::Acquire) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                lane.room_waiters.fetch_add(1, Ordering::AcqRel);
                st = lane
                    .room
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                lane.room_waiters.fetch_sub(1, Ordering::AcqRel);
                drain_inbox(lane, &mut st);
            }
        }
        if lane.closed.load(Ordering::Acquire) {
            let why = closed_reason(&st);
            drop(st);
            let kept = engine.dead_letter(lane, &job, why.reason(), None) != LetterFate::Lost;
            return Err(Refusal::dead_lettered(
                &format!("endpoint '{name}': {}", why.reason()),
                kept,
            ));
        }
        let mut dropped = None;
        if st.schedule.queued() >= capacity {
            match config.overflow {
                OverflowPolicy::DropOldest => dropped = st.schedule.pop_oldest(),
                _ if job.event.withdrawn.is_some() => {
                    // A relayed event: not dropped, the relay dead-letters it (and counts
                    // it as such) so that its message can end.
                    drop(st);
                    return Err(Refusal {
                        problem: format!("endpoint '{name}': queue full ({capacity} events)"),
                        dead_lettered: false,
                        lettered: false,
                    });
                }
                _ => {
                    drop(st);
                    engine.count_dropped(lane, Some(job.event.event_type), 1);
                    // Logged here, as every other drop is where it happens: an event routed
                    // after `emit` returned has nobody else to tell.
                    let message = format!(
                        "endpoint '{name}': queue full ({capacity} events, overflow {}); event {} \
                         ({} on ticket {}) dropped",
                        config.overflow,
                        job.event.id_text,
                        job.event.event_type,
                        crate::delivery::shown(&job.event.key)
                    );
                    crate::delivery::logged(
                        || log::warn!(target: deskhook::LOG_TARGET, "{message}"),
                    );
                    return Err(Refusal {
                        problem: message,
                        dead_lettered: false,
                        lettered: false,
                    });
                }
            }
        }
        schedule(engine, lane, st, job);
        if let Some(old) = dropped {
            engine.count_dropped(lane, Some(old.event.event_type), 1);
            crate::delivery::logged(|| {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{name}': queue full ({capacity} events, overflow drop-oldest); \
                     event {} ({} on ticket {}, sequence {}) dropped",
                    old.event.id_text,
                    old.event.event_type,
                    crate::delivery::shown(&old.event.key),
                    old.seq
                );
            });
            engine.finished(lane, 1);
        }
        Ok(())
    }
}

/// Queues an accepted `job` in `lane`'s schedule, under the lock `st`, which it lets go
/// before putting the lane in the run queue. The sequence is taken only when the job is
/// queued, so numbers reach the queue in order; a gap tells the receiver that an event was
/// dropped (drop-oldest).
fn schedule(
    engine: &Engine,
    lane: &Arc<Lane>,
    mut st: std::sync::MutexGuard<'_, LaneState>,
    job: Job,
) {
    engine.accepted(lane, 1);
    st.schedule.push(job);
    lane.queued_mirror
        .store(st.schedule.queued(), Ordering::Release);
    drop(st);
    engine.pool().push(lane);
}

/// Why a closed lane refuses jobs.
fn closed_reason(st: &LaneState) -> Release {
    match st.closing {
        Some(Closing::Removed) => Release::Removed,
        Some(Closing::Stopping) => Release::Stopping("sink shut down"),
        None => Release::Disabled,
    }
}

/// Moves the inbox into the schedule, numbering each job per ticket
/// (`X-Deskhook-Sequence`) in the order they were emitted. Under the state lock. Once the
/// lane is closed it does nothing: from then on only the emitters empty the inbox, into the
/// dead letters.
pub(crate) fn drain_inbox(lane: &Lane, st: &mut LaneState) {
    // SeqCst, paired with `submit`'s store of `inbox_len` and load of `closed`: a closer
    // either sees the job here or the emitter sees `closed` and reclaims it.
    if lane.closed.load(Ordering::SeqCst) || lane.inbox_len.load(Ordering::SeqCst) == 0 {
        return;
    }
    let jobs = {
        let mut inbox = lock(&lane.inbox);
        // Count the jobs as queued before the inbox looks empty, so that emitters racing
        // this drain cannot see room that is not there.
        lane.queued_mirror
            .store(st.schedule.queued() + inbox.len(), Ordering::Release);
        lane.inbox_len.store(0, Ordering::SeqCst);
        std::mem::take(&mut *inbox)
    };
    for job in jobs {
        st.schedule.push(job);
    }
    lane.queued_mirror
        .store(st.schedule.queued(), Ordering::Release);
}

/// How many jobs a lane's queue holds before `job` overflows it.
fn capacity_for(config: &DeliveryConfig, job: &Job) -> usize {
    if job.event.past_capacity {
        usize::MAX
    } else {
        config.queue_capacity.max(1)
    }
}

impl Backlog for MemoryBacklog {
    fn accept(&self, engine: &Engine, mut event: EventData, lanes: Lanes) -> Accepted {
        let mut accepted = Accepted::default();
        // One charge for the event: its body once, and each job's bookkeeping; released when
        // its last job goes.
        let bytes = event.body.len() + lanes.len() * JOB_OVERHEAD;
        let deadline = engine.block_deadline();
        let charge = match event.charge.take() {
            // Charged at hand-over for its body and one job: grown for the others.
            Some(mut held) => held.grow_to(bytes).then_some(held),
            None => engine.charge(bytes, deadline),
        };
        let Some(charge) = charge else {
            for lane in &lanes {
                engine.count_dropped(lane, Some(event.event_type), 1);
            }
            accepted
                .problems
                .push(engine.budget_spent(&event, lanes.len()));
            return accepted;
        };
        event.charge = Some(charge);
        let event = Arc::new(event);
        for lane in lanes {
            let job = Job::new(event.clone(), engine.next_order());
            if let Err(refusal) = self.submit(engine, &lane, job, deadline) {
                accepted.problems.push(refusal.problem.clone());
                accepted.refused.push((lane.name.clone(), refusal));
            }
        }
        accepted
    }

    fn requeue(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        mut job: Job,
    ) -> Result<Option<Receipt>, String> {
        // A replayed letter (or a test event) refused here stays where it was, with its
        // caller told: not counted as dropped. (Under the block policy a full queue is
        // waited for, and counted as dropped if it stays full.)
        let deadline = engine.block_deadline();
        let capacity = capacity_for(engine.config(), &job);
        let queued =
            lane.inbox_len.load(Ordering::Acquire) + lane.queued_mirror.load(Ordering::Acquire);
        if deadline.is_none() && queued >= capacity && !lane.closed.load(Ordering::Acquire) {
            return Err(format!(
                "endpoint '{}': queue full ({capacity} events); try again once it has \
                 delivered some",
                lane.name
            ));
        }
        job.charge = engine.charge(JOB_OVERHEAD + job.event.body.len(), deadline);
        if job.charge.is_none() {
            return Err(engine.budget_spent(&job.event, 1));
        }
        self.submit(engine, lane, job, deadline)
            .map_err(|refusal| refusal.problem)?;
        Ok(None)
    }

    fn refill(&self, _engine: &Engine, lane: &Arc<Lane>, st: &mut LaneState) -> Option<Instant> {
        drain_inbox(lane, st);
        None
    }

    fn attach(&self, _name: &str) -> Result<RowCounts, Error> {
        Ok(RowCounts::default())
    }

    fn registered(&self, _name: &str, _entry: Option<Registration<'_>>) {}

    fn delivered(&self, _job: &Job) {}

    fn retrying(&self, _job: &Job, _next_at: SystemTime) {}

    fn dead(
        &self,
        _owner: Option<LetterOwner>,
        _row: Option<i64>,
        letter: DeadLetter,
    ) -> LetterFate {
        LetterFate::written(self.letters.write(&letter))
    }

    fn dead_all(
        &self,
        _lane: &Arc<Lane>,
        letters: &[(Option<i64>, DeadLetter)],
    ) -> Vec<LetterFate> {
        self.letters
            .write_all(letters.iter().map(|(_, letter)| letter))
            .into_iter()
            .map(LetterFate::written)
            .collect()
    }

    fn release(
        &self,
        _engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        why: Release,
    ) -> Released {
        // Whatever raced into the inbox before the lane closed goes too.
        let mut jobs: Vec<Job> = std::mem::take(&mut *lock(&lane.inbox));
        lane.inbox_len.store(0, Ordering::SeqCst);
        jobs.extend(st.schedule.drain());
        lane.queued_mirror.store(0, Ordering::Release);
        // A withdrawn event is another relay's to deliver now: no dead letter.
        let queued = jobs.len();
        jobs.retain(|job| !job.event.is_withdrawn());
        let stopping = matches!(why, Release::Stopping(_));
        if stopping && self.drop_on_stop {
            // Handed back: the relay's stream delivers them elsewhere.
            return Released {
                finished: queued,
                count: jobs.len() + st.in_flight.len(),
                ..Released::default()
            };
        }
        let finished = queued;
        let mut letters: Vec<Letter> = jobs
            .into_iter()
            .map(|job| Letter::Queued(job, why.reason()))
            .collect();
        if stopping {
            // Reported now; their late outcome is not written again.
            let while_in_flight = format!(
                "{}, while in flight (it may also have been delivered; receivers de-duplicate \
                 on webhook-id)",
                why.reason()
            );
            letters.extend(
                st.in_flight
                    .iter()
                    .filter(|f| !f.dying)
                    .map(|f| Letter::InFlight(f.clone(), while_in_flight.clone())),
            );
        }
        letters.sort_by_key(Letter::order);
        Released {
            count: letters.len(),
            letters,
            finished,
            ..Released::default()
        }
    }

    fn complete(&self, engine: &Engine, lane: &Arc<Lane>, released: Released) -> usize {
        let letters = released.letters.iter().map(|letter| match letter {
            Letter::Queued(job, reason) => (job.row, DeadLetter::of_job(lane, job, reason)),
            Letter::InFlight(f, reason) => {
                (f.row, DeadLetter::of(lane, &f.event, f.attempts, reason))
            }
        });
        let written = released.letters.len();
        let moved = engine.dead_letter_all(lane, letters);
        engine.finished(lane, released.finished);
        // Less those whose letter was lost (logged whole, and counted as dropped).
        released.count.saturating_sub(written - moved)
    }

    fn keeps_undelivered(&self) -> bool {
        self.drop_on_stop
    }

    fn dead_letter_place(&self) -> String {
        self.letters.path().display().to_string()
    }

    fn letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error> {
        crate::delivery::letters::page(self.letters.newest_first(query)?, query)
    }

    fn letters_by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error> {
        self.letters.by_key(keys)
    }

    fn letters_at(&self, wanted: &[(String, u64)]) -> Result<Vec<StoredLetter>, Error> {
        self.letters.at(wanted)
    }

    fn letter_deletes_rewrite(&self) -> bool {
        true
    }

    fn delete_letters(&self, keys: &[String]) -> Result<usize, Error> {
        self.letters.delete(keys)
    }

    fn stop_place(&self) -> String {
        if self.drop_on_stop {
            "handed back to be delivered elsewhere".to_owned()
        } else {
            format!("written to {}", self.letters.path().display())
        }
    }

    fn close(&self) {}
}

/// Places in `submit` where a test stops an emitter, to set an interleaving.
#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;

    type Hook = RefCell<Option<Box<dyn FnOnce()>>>;

    thread_local! {
        /// Run on this thread after an emitter put its job in the inbox.
        pub(crate) static AFTER_INBOX_PUSH: Hook = RefCell::new(None);
        /// Run on this thread as an emitter that saw the lane closed reclaims the inbox.
        pub(crate) static BEFORE_RECLAIM: Hook = RefCell::new(None);
    }

    /// Runs (once) the hook set in `place` on this thread, if any.
    pub(super) fn hook(place: &'static std::thread::LocalKey<Hook>) {
        if let Some(hook) = place.take() {
            hook();
        }
    }
}
