//! Where accepted jobs wait: the seam between the engine and its store.
//!
//! [`Backlog`] is everything the engine asks of the place jobs wait in: take an emit's jobs,
//! move the next ones of an endpoint into its schedule, record outcomes, let an endpoint's
//! queue go (removed, disabled by a 410, shut down). [`MemoryBacklog`] keeps them in memory
//! (bounded per endpoint by `queue_capacity` and per sink by `max_queued_bytes`); the spool
//! (`crate::spool`) keeps them in SQLite and memory holds a window of each endpoint's rows.
//! The engine never asks which one it has.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use deskhook::policy::OverflowPolicy;

use super::budget::JOB_OVERHEAD;
use super::dead_letter::DeadLetterLog;
use super::history::{AttemptEntry, AttemptPage, AttemptQuery};
use super::lane::{Closing, InFlight, LaneState};
use super::letters::{DeadLetterPage, DeadLetterQuery, StoredLetter};
use super::{
    DeadLetter, DeliveryConfig, EndpointSpec, Engine, EventData, Job, Lane, Lanes, Receipt, lock,
};
use crate::error::Error;

/// What became of an emit's jobs.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    /// Settles when the jobs are durable; `None` when the backlog is not durable.
    pub(crate) receipt: Option<Receipt>,
    /// Whether `emit` waits for the receipt.
    pub(crate) wait: bool,
    /// What went wrong, per endpoint (the job was dropped and counted, or dead-lettered).
    pub(crate) problems: Vec<String>,
    /// The endpoints whose queue did not take the event, each with its problem (also in
    /// `problems`). Not those of a spent memory budget, which takes it for none.
    pub(crate) refused: Vec<(Arc<str>, Refusal)>,
}

/// Why an endpoint's queue did not take a job.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// What went wrong, naming the endpoint (counted, and logged).
    pub(crate) problem: String,
    /// Whether the job went to the dead letters (else it was dropped).
    pub(crate) dead_lettered: bool,
}

impl Refusal {
    /// The job was given to the dead letters for `problem`: kept there, or dropped when
    /// their file could not take it (`kept` false).
    pub(crate) fn dead_lettered(problem: &str, kept: bool) -> Refusal {
        if kept {
            Refusal {
                problem: format!("{problem}; event dead-lettered"),
                dead_lettered: true,
            }
        } else {
            Refusal {
                problem: format!(
                    "{problem}; event dropped: the dead-letter file could not take it (the \
                     letter is in the error log; free space on its disk, or set \
                     dead_letter_path to a file deskhook can write)"
                ),
                dead_lettered: false,
            }
        }
    }
}

/// Why an endpoint's queue is let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Removed from the registry: to the dead letters.
    Removed,
    /// Disabled by a 410: to the dead letters.
    Disabled,
    /// The sink stops (`reason` says why): to the dead letters, or kept where it is when the
    /// backlog keeps undelivered events; jobs in flight are reported too.
    Stopping(&'static str),
}

impl Release {
    /// The dead letters' reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Release::Removed => "endpoint removed",
            Release::Disabled => "endpoint disabled after 410 Gone",
            Release::Stopping(reason) => reason,
        }
    }
}

/// An endpoint as the registry's table keeps it.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
pub(crate) struct Registration<'a> {
    /// Its tenant ("" for none).
    pub(crate) tenant: &'a str,
    /// Its URL cut to its origin.
    pub(crate) url: &'a str,
    /// The settings it was made from, if it was made from settings.
    pub(crate) spec: Option<&'a EndpointSpec>,
    /// Whether it is paused, when it was just added (whatever a row of its name said);
    /// `None` when it was changed (paused or not as it was).
    pub(crate) paused: Option<bool>,
}

impl<'a> Registration<'a> {
    /// The registration of an endpoint with `route`: just added (`paused` or not), or
    /// changed (`None`).
    pub(crate) fn of(route: &'a super::Route, paused: Option<bool>) -> Registration<'a> {
        Registration {
            tenant: route.endpoint.tenant.as_deref().unwrap_or(""),
            url: &route.url,
            spec: route.endpoint.spec.as_deref(),
            paused,
        }
    }
}

/// What a [`Backlog::release`] let go, to finish with [`Backlog::complete`].
#[derive(Debug, Default)]
pub(crate) struct Released {
    /// Dead letters to write, in the order their events were accepted.
    letters: Vec<Letter>,
    /// Jobs let go that are finished once the letters are written.
    finished: usize,
    /// Jobs let go in all, for messages.
    count: usize,
}

/// A dead letter to write when a lane lets go of its queue: a queued job, or a job in flight
/// at a stop (which may also arrive).
#[derive(Debug)]
enum Letter {
    Queued(Job, &'static str),
    InFlight(InFlight, String),
}

// Only the spool's backlog reads the count back.
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
impl Released {
    /// Jobs let go in all.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// `count` jobs let go and kept where they are (nothing to write).
    pub(crate) fn kept(count: usize) -> Released {
        Released {
            count,
            ..Released::default()
        }
    }
}

impl Letter {
    fn order(&self) -> u64 {
        match self {
            Letter::Queued(job, _) => job.order,
            Letter::InFlight(job, _) => job.order,
        }
    }
}

/// With a spool: a lane's rows on disk, as the writer commits them. `floor`: rows up to it
/// belong to an earlier lane of the same name (removed) and are never loaded.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
pub(crate) struct RowCounts {
    /// The last row committed.
    pub(crate) last: AtomicI64,
    /// Rows committed in all (those there at start included).
    pub(crate) count: AtomicU64,
    /// Jobs handed to the writer and not committed yet.
    pub(crate) pending: AtomicU64,
    pub(crate) floor: i64,
}

#[cfg_attr(not(feature = "spool"), allow(dead_code))]
impl RowCounts {
    /// Counts starting with what is on disk: rows up to `last`, `count` of them above `floor`.
    pub(crate) fn new(floor: i64, last: i64, count: u64) -> RowCounts {
        RowCounts {
            last: AtomicI64::new(last.max(floor)),
            count: AtomicU64::new(count),
            pending: AtomicU64::new(0),
            floor,
        }
    }

    /// The last row committed, and rows committed in all.
    pub(crate) fn committed(&self) -> (i64, u64) {
        (
            self.last.load(Ordering::Acquire),
            self.count.load(Ordering::Acquire),
        )
    }
}

/// With a spool: which of a lane's rows are in memory. Under the lane's lock.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
pub(crate) struct Window {
    /// The last row moved into the schedule (or left parked).
    pub(crate) loaded_through: i64,
    /// Tickets with more rows than a ticket may hold in memory, and the first of their rows
    /// left on disk: one stuck ticket cannot fill the window and hold up the others.
    pub(crate) parked: HashMap<Arc<str>, i64>,
    /// Rows of parked tickets left on disk.
    pub(crate) parked_rows: u64,
    /// After a failed read (or a spent memory budget), when to try again.
    pub(crate) load_again: Option<Instant>,
    /// A release under way in the writer: it says how many rows it moved, or how many it
    /// could not move (its write failed).
    pub(crate) releasing: Option<std::sync::mpsc::Receiver<Result<usize, usize>>>,
}

/// What a backlog did with a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LetterFate {
    /// Written: the engine counts it as dead-lettered.
    Kept,
    /// Not written; it went whole to the log at error level: the engine counts it as
    /// dropped.
    Lost,
    /// Handed to a writer that settles it once it is written (a spool's, at its commit) or
    /// given up: it counts the letter for its lane, and lets go of its job if it has one
    /// (see [`LetterOwner::job`]), finished by the second of the writer and the attempt to
    /// be done with it.
    Pending,
}

impl LetterFate {
    /// The fate of a letter written at once: kept, or lost.
    pub(crate) fn written(kept: bool) -> LetterFate {
        if kept {
            LetterFate::Kept
        } else {
            LetterFate::Lost
        }
    }
}

/// Whose dead letter a backlog writes: what a writer that settles it later needs.
#[derive(Clone, Debug)]
pub(crate) struct LetterOwner {
    /// The endpoint it is counted for.
    pub(crate) lane: Arc<Lane>,
    /// The letter's job, outstanding until both the attempt that gave it up and the
    /// letter's writer are done with it: so that a flush waits for the letter to be written
    /// and the counts are right when it returns. `None` for a relay's letters, and for jobs
    /// their caller finishes.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) job: Option<Settling>,
}

/// A job two parties end: the attempt that gave it up, and the writer of its letter. The
/// second to [`arrive`](Settling::arrive) finishes it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settling(Arc<std::sync::atomic::AtomicBool>);

impl Settling {
    /// Whether the caller is the second to arrive, and so finishes the job.
    pub(crate) fn arrive(&self) -> bool {
        self.0.swap(true, Ordering::AcqRel)
    }
}

/// Where accepted jobs wait; see the [module docs](self).
pub(crate) trait Backlog: Send + Sync + fmt::Debug {
    /// Takes `event` for `lanes` (already checked against `max_payload`).
    fn accept(&self, engine: &Engine, event: EventData, lanes: Lanes) -> Accepted;
    /// Takes one job for `lane` again (a redelivery): the receipt of a durable backlog, or
    /// what went wrong.
    fn requeue(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        job: Job,
    ) -> Result<Option<Receipt>, String>;
    /// Moves what `lane` has accepted into its schedule. Returns when to look again (after a
    /// failed read, or when the memory budget had no room), if it must.
    fn refill(&self, engine: &Engine, lane: &Arc<Lane>, st: &mut LaneState) -> Option<Instant>;
    /// A lane of this name is being registered: the counts of its rows already waiting.
    fn attach(&self, name: &str) -> Result<RowCounts, Error>;
    /// The registry changed: `name` is registered (with its tenant and URL), or not.
    fn registered(&self, name: &str, entry: Option<Registration<'_>>);
    /// `name` is paused, or resumed (a spool keeps it in its table, for the next start).
    fn paused(&self, _name: &str, _paused: bool) {}
    /// Endpoints kept from an earlier run that this one leaves out are forgotten, before
    /// the sink is handed out (a spool waits until its table says so).
    #[cfg(feature = "spool")]
    fn forget(&self, names: &[String]) {
        for name in names {
            self.registered(name, None);
        }
    }
    /// Job outcomes.
    fn delivered(&self, job: &Job);
    /// A failed attempt; the next one is due at `next_at`.
    fn retrying(&self, job: &Job, next_at: SystemTime);
    /// Writes a dead letter of `owner` (when it has one), moving the job's row if it has
    /// one, and says what became of it (see [`LetterFate`]).
    fn dead(&self, owner: Option<LetterOwner>, row: Option<i64>, letter: DeadLetter) -> LetterFate;
    /// Writes dead letters of `lane` in order, as [`dead`](Backlog::dead) each, and says
    /// what became of each. Their jobs are the caller's to finish.
    fn dead_all(&self, lane: &Arc<Lane>, letters: &[(Option<i64>, DeadLetter)]) -> Vec<LetterFate> {
        let owner = LetterOwner {
            lane: lane.clone(),
            job: None,
        };
        letters
            .iter()
            .map(|(row, letter)| self.dead(Some(owner.clone()), *row, letter.clone()))
            .collect()
    }
    /// Lets go of what `lane` has queued (under its lock; jobs in flight finish on their
    /// own): to the dead letters, or kept where it is at a stop that keeps undelivered events.
    /// What it let go is finished by [`complete`](Backlog::complete), without the lock.
    fn release(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        why: Release,
    ) -> Released;
    /// Finishes a release without the lane's lock (the memory backlog writes its dead
    /// letters; the spool waits for its writer); returns the jobs it let go.
    fn complete(&self, engine: &Engine, lane: &Arc<Lane>, released: Released) -> usize;
    /// Whether undelivered events stay where they are at shutdown.
    fn keeps_undelivered(&self) -> bool;
    /// Whether an accepted job is written to disk before `emit` returns (the spool): then
    /// events are routed on the caller's thread, never handed to the router.
    fn durable(&self) -> bool {
        false
    }
    /// `lane` was resumed: what it keeps waiting for a retry outside memory (the spool's
    /// rows) is due now.
    fn hurry(&self, _lane: &Lane) {}
    /// Waits until the registry changes told by [`registered`](Backlog::registered) are
    /// stored (the spool's table): nothing to wait for without one.
    fn registry_kept(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Waits until what was handed to the store before is written (a spool's release of a
    /// lane's rows among it): nothing to wait for without one.
    fn written(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Ready once accepting an event would not wait (a spool's writer far behind makes it
    /// wait); until then the task is woken when that changes.
    fn poll_room(&self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
    /// Rows it keeps on disk, when it keeps them there (the spool).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn stored_rows(&self) -> Result<Option<u64>, Error> {
        Ok(None)
    }
    /// Whether it keeps the attempt log too (the spool, in its database).
    fn keeps_attempts(&self) -> bool {
        false
    }
    /// Keeps one attempt of the attempt log (see [`keeps_attempts`](Backlog::keeps_attempts)).
    fn record_attempt(&self, _entry: &AttemptEntry) {}
    /// Looks attempts up where it keeps them; `None` when it keeps none.
    fn query_attempts(&self, _query: &AttemptQuery) -> Option<Result<AttemptPage, Error>> {
        None
    }
    /// Where dead letters go, for messages.
    fn dead_letter_place(&self) -> String;
    /// The dead letters `query` asks for, newest first.
    fn letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error>;
    /// The dead letters named by `keys`, oldest first.
    fn letters_by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error>;
    /// Deletes the dead letters named by `keys`; how many went.
    fn delete_letters(&self, keys: &[String]) -> Result<usize, Error>;
    /// Where undelivered events go at shutdown, for messages.
    fn stop_place(&self) -> String;
    /// Writes what is queued and lets the store go (at shutdown).
    fn close(&self);
    /// Tells the backlog its engine (the spool's writer wakes endpoints after a commit).
    fn bind(&self, _engine: std::sync::Weak<Engine>) {}
}

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
        if lane.closed.load(Ordering::SeqCst) {
            // Closed meanwhile, perhaps after the inbox was emptied for the last time:
            // nobody else would see this job.
            let kept = self.reclaim_inbox(engine, lane);
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
    /// could not be kept (counted as dropped).
    fn reclaim_inbox(&self, engine: &Engine, lane: &Arc<Lane>) -> bool {
        let jobs = {
            let mut inbox = lock(&lane.inbox);
            lane.inbox_len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *inbox)
        };
        if jobs.is_empty() {
            return true;
        }
        let why = closed_reason(&lock(&lane.state));
        let mut kept = true;
        for job in &jobs {
            kept &= engine.dead_letter(lane, job, why.reason(), None) != LetterFate::Lost;
        }
        engine.finished(lane, jobs.len());
        kept
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
                        config.overflow, job.event.id_text, job.event.event_type, job.event.key
                    );
                    log::warn!(target: deskhook::LOG_TARGET, "{message}");
                    return Err(Refusal {
                        problem: message,
                        dead_lettered: false,
                    });
                }
            }
        }
        schedule(engine, lane, st, job);
        if let Some(old) = dropped {
            engine.count_dropped(lane, Some(old.event.event_type), 1);
            log::warn!(
                target: deskhook::LOG_TARGET,
                "endpoint '{name}': queue full ({capacity} events, overflow drop-oldest); event {} \
                 ({} on ticket {}, sequence {}) dropped",
                old.event.id_text,
                old.event.event_type,
                old.event.key,
                old.seq
            );
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
                letters: Vec::new(),
                finished: queued,
                count: jobs.len() + st.in_flight.len(),
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
        }
    }

    fn complete(&self, engine: &Engine, lane: &Arc<Lane>, released: Released) -> usize {
        let letters = released.letters.iter().map(|letter| match letter {
            Letter::Queued(job, reason) => (job.row, DeadLetter::of_job(lane, job, reason)),
            Letter::InFlight(f, reason) => {
                (f.row, DeadLetter::of(lane, &f.event, f.attempts, reason))
            }
        });
        engine.dead_letter_all(lane, letters);
        engine.finished(lane, released.finished);
        released.count
    }

    fn keeps_undelivered(&self) -> bool {
        self.drop_on_stop
    }

    fn dead_letter_place(&self) -> String {
        self.letters.path().display().to_string()
    }

    fn letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error> {
        let text = self.letters.snapshot()?;
        Ok(super::letters::page(self.letters.letters_in(&text), query))
    }

    fn letters_by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error> {
        let keys: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut found = self.letters.stored()?;
        found.retain(|s| keys.contains(s.key.as_str()));
        Ok(found)
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
