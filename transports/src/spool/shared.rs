//! What the spool's writer thread and the engine share (`Core`): the room appends wait for
//! while the writer is behind, the receipts it holds, and what happens when it ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use rusqlite::Connection;

use super::Settings;
use super::writer::Op;
use crate::delivery::backlog::Settling;
use crate::delivery::{Engine, Job, Lane, ReceiptState, lock};
use crate::error::Error;

/// One `emit`'s jobs for the writer, with the receipt it settles once they are written (or
/// refused). Dropped unsettled (the writer panicked with it in hand, or it never reached the
/// writer), it settles by itself: durable if its jobs were committed; else its jobs are
/// counted as dropped (unless they were already), logged, and its receipt fails. So no
/// `emit` waits for ever, and no event is lost without a word or counted twice.
pub(super) struct Append {
    pub(super) jobs: Vec<(Arc<Lane>, Job)>,
    state: Arc<ReceiptState>,
    dir: Arc<Path>,
    /// To count the jobs as dropped (the engine's counters).
    core: Weak<Core>,
    /// Its jobs are on disk.
    written: bool,
    /// Its jobs were counted as dropped.
    counted: bool,
}

impl Append {
    /// `jobs` for the writer of `core`, their receipt settling `state`.
    pub(super) fn new(
        core: &Arc<Core>,
        jobs: Vec<(Arc<Lane>, Job)>,
        state: Arc<ReceiptState>,
    ) -> Append {
        Append {
            jobs,
            state,
            dir: core.dir.clone(),
            core: Arc::downgrade(core),
            written: false,
            counted: false,
        }
    }

    /// Its jobs were committed and their rows handed to their lanes: whatever happens next,
    /// its receipt says durable.
    pub(super) fn written(&mut self) {
        self.written = true;
    }

    /// Tells the `emit` waiting for the receipt.
    pub(super) fn settle(&self, outcome: Result<(), Error>) {
        let _ = self.state.settle(outcome);
    }

    /// Its jobs were not written: counted as dropped (once, before the receipt tells, so
    /// that stats agree with what `emit` returned), then its receipt fails with `error`.
    pub(super) fn refuse(&mut self, core: &Core, error: Error) {
        if !std::mem::replace(&mut self.counted, true) {
            super::commit::report_dropped(core, &self.jobs);
        }
        self.settle(Err(error));
    }
}

impl Drop for Append {
    fn drop(&mut self) {
        if self.state.is_settled() {
            return;
        }
        if self.written {
            self.settle(Ok(()));
            return;
        }
        let error = Error::Spool {
            path: self.dir.to_path_buf(),
            message: "the spool's writer stopped before the event was written; it was not \
                      accepted"
                .to_owned(),
        };
        log::error!(
            target: deskhook::LOG_TARGET,
            "{} event(s) dropped: {error}",
            self.jobs.len()
        );
        match self.core.upgrade() {
            Some(core) => self.refuse(&core, error),
            None => self.settle(Err(error)),
        }
    }
}

/// The writer's claim on the job of a dead letter it writes (see
/// [`LetterOwner::job`](crate::delivery::backlog::LetterOwner::job)), let go when the writer
/// is done with the letter, whichever way: written (after it is counted), failed once (it is
/// written again later, without the job), given up, or dropped with a writer that panicked.
/// The job is finished then if the attempt that gave it up is done with it too.
pub(super) struct JobHold {
    lane: Arc<Lane>,
    job: Settling,
    core: Weak<Core>,
}

impl JobHold {
    /// The claim of `core`'s writer on `job`, of `lane`.
    pub(super) fn new(core: &Arc<Core>, lane: Arc<Lane>, job: Settling) -> JobHold {
        JobHold {
            lane,
            job,
            core: Arc::downgrade(core),
        }
    }
}

impl Drop for JobHold {
    fn drop(&mut self) {
        if self.job.arrive()
            && let Some(engine) = self.core.upgrade().and_then(|core| core.engine())
        {
            engine.letter_settled(&self.lane);
        }
    }
}

/// What the writer thread and the engine share.
pub(super) struct Core {
    pub(super) dir: Arc<Path>,
    pub(super) db: PathBuf,
    pub(super) settings: Settings,
    pub(super) uncommitted: AtomicUsize,
    /// The bytes of their bodies.
    pub(super) uncommitted_bytes: AtomicUsize,
    /// Set when the writer thread has ended (a panic too): no append waits for it any more.
    pub(super) ended: AtomicBool,
    /// Whether events are written: since when they have not been (the first of a run of
    /// failures), when they last were not, and why; `None` once a write of events succeeds.
    pub(super) failing: Mutex<Option<Failing>>,
    /// Set when the sink shuts the spool down (the writer then ends as it should).
    pub(super) shut: AtomicBool,
    /// Where ops go to the writer; `None` once the sink shuts down or the writer has ended,
    /// taken under this lock, which every send holds: an op sent is one the writer takes, or
    /// one its end finds still queued.
    pub(super) ops: Mutex<Option<Sender<Op>>>,
    /// Appends wait here while [`MAX_UNCOMMITTED`] jobs wait for the writer: threads on
    /// the condition variable, async callers ([`Core::poll_room`]) with their wakers.
    pub(super) room: (Mutex<Vec<Waker>>, std::sync::Condvar),
    pub(super) used: AtomicU64,
    /// Transactions written, for tests of group commit, and those that failed.
    pub(super) commits: AtomicU64,
    pub(super) failed_commits: AtomicU64,
    /// When old attempts were last pruned (Unix milliseconds).
    pub(super) pruned_at: AtomicI64,
    /// When a full spool last asked whether its attempt log could make room, and the
    /// answer (the writer's alone).
    pub(super) give_way_answer: GiveWay,
    /// Rows whose outcome (a delivery, a dead letter) was given up: the engine finished
    /// their jobs, so a release leaves them on disk for the next start rather than moving
    /// them and counting them a second time, and a load does not move an unreadable one
    /// again (written by the writer alone; the loader reads it).
    pub(super) given_up: Mutex<std::collections::BTreeSet<i64>>,
    /// The moves of whole lanes' rows to the dead letters under way: the next step of each,
    /// for the writer's next commit (the writer's alone).
    pub(super) moving: Mutex<Vec<super::writer::Op>>,
    /// Whether the writer leaves the next steps of moves where they are, for tests of what
    /// happens while a move is under way.
    #[cfg(test)]
    pub(super) moves_paused: std::sync::atomic::AtomicBool,
    pub(super) engine: OnceLock<Weak<Engine>>,
    /// For the engine's loads.
    pub(super) reader: Mutex<Connection>,
    /// For the console's, the admin API's and the metrics' reads (pages of dead letters and
    /// attempts, counts): a slow page never holds up a lane's load, which reads under the
    /// lane's lock.
    pub(super) browser: Mutex<Connection>,
    /// Held for as long as the spool is open.
    pub(super) lock: Mutex<Option<super::SpoolLock>>,
}

/// The last answer to whether a full spool's attempt log could make room: when (Unix
/// milliseconds) and what.
#[derive(Debug, Default)]
pub(super) struct GiveWay(Mutex<(i64, bool)>);

impl GiveWay {
    pub(super) fn load(&self) -> (i64, bool) {
        *lock(&self.0)
    }

    /// Drops the answer: the next question is answered afresh.
    pub(super) fn forget(&self) {
        *lock(&self.0) = (0, false);
    }

    pub(super) fn store(&self, at: i64, could: bool) {
        *lock(&self.0) = (at, could);
    }
}

/// Most jobs handed to the writer and not committed yet: past it, appends wait, so that
/// emitting faster than the disk takes cannot fill memory.
pub(super) const MAX_UNCOMMITTED: usize = 8192;

/// Most bytes of bodies handed to the writer and not committed yet: past it, appends wait
/// too (8192 jobs of 1 MiB, the default `max_payload`, would be 8 GiB).
pub(super) const MAX_UNCOMMITTED_BYTES: usize = 64 << 20;

/// The bytes of the bodies of `jobs`.
pub(super) fn body_bytes<'a>(jobs: impl IntoIterator<Item = &'a (Arc<Lane>, Job)>) -> usize {
    jobs.into_iter().map(|(_, job)| job.event.body.len()).sum()
}

/// A run of writes of events that failed (see [`Core::health`]).
#[derive(Clone)]
pub(super) struct Failing {
    since: SystemTime,
    last: std::time::Instant,
    why: String,
}

/// How long after a write of events failed the spool says it does not take events, unless
/// one succeeds meanwhile: a daemon that a balancer stopped sending events to gets none to
/// write, and would otherwise stay "not ready" after the disk is freed.
pub(super) const NOT_READY_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a spool whose write of events last failed at `last` says, at `now`, that it does
/// not take events.
fn not_ready(last: std::time::Instant, now: std::time::Instant) -> bool {
    now.saturating_duration_since(last) < NOT_READY_FOR
}

impl Core {
    /// Events were not written: `why`.
    pub(super) fn events_not_written(&self, why: String) {
        let mut failing = lock(&self.failing);
        let now = std::time::Instant::now();
        // A run goes on while it is "not ready"; one that ended (no write of events since)
        // starts again.
        let since = failing
            .as_ref()
            .filter(|f| not_ready(f.last, now))
            .map_or_else(SystemTime::now, |f| f.since);
        *failing = Some(Failing {
            since,
            last: now,
            why,
        });
    }

    /// Events were written.
    pub(super) fn events_written(&self) {
        let mut failing = lock(&self.failing);
        if failing.is_some() {
            *failing = None;
        }
    }

    /// Whether the spool takes events now: its writer runs, and no write of events failed
    /// (or found the spool full) within [`NOT_READY_FOR`], unless one succeeded since.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] saying what fails, and since when.
    pub(super) fn health(&self) -> Result<(), Error> {
        let failed = |message: String| {
            Err(Error::Spool {
                path: self.db.clone(),
                message,
            })
        };
        if self.ended.load(Ordering::Acquire) && !self.shut.load(Ordering::Acquire) {
            return failed("its writer has stopped (see the log): restart the sink".to_owned());
        }
        let Some(Failing { since, last, why }) = lock(&self.failing).clone() else {
            return Ok(());
        };
        if !not_ready(last, std::time::Instant::now()) {
            return Ok(());
        }
        let since = jiff::Timestamp::try_from(since)
            .ok()
            .and_then(|at| at.round(jiff::Unit::Second).ok())
            .map_or_else(|| "a while".to_owned(), |at| at.to_string());
        failed(format!("it has refused events since {since}: {why}"))
    }

    /// Whether the writer is [`MAX_UNCOMMITTED`] jobs, or [`MAX_UNCOMMITTED_BYTES`], behind:
    /// appends wait. Never once it has ended: the jobs it took then never count down (a
    /// writer that panicked), and nothing is worth waiting for.
    pub(super) fn behind(&self) -> bool {
        !self.ended.load(Ordering::Acquire)
            && (self.uncommitted.load(Ordering::Acquire) >= MAX_UNCOMMITTED
                || self.uncommitted_bytes.load(Ordering::Acquire) >= MAX_UNCOMMITTED_BYTES)
    }

    /// Waits while the writer is [`MAX_UNCOMMITTED`] jobs behind.
    pub(super) fn wait_for_room(&self) {
        if !self.behind() {
            return;
        }
        let (lock, room) = &self.room;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        while self.behind() {
            guard = room
                .wait_timeout(guard, std::time::Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Ready once the writer is less than [`MAX_UNCOMMITTED`] jobs behind; until then the
    /// task's waker is kept, and woken when jobs are committed.
    pub(super) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.behind() {
            return Poll::Ready(());
        }
        let mut wakers = self.room.0.lock().unwrap_or_else(|p| p.into_inner());
        // Checked again under the lock that `committed_jobs` takes after its count went
        // down: either this sees the room, or that wakes this waker.
        if !self.behind() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// `n` jobs of `bytes` were committed or failed: room for waiting appends.
    pub(super) fn committed_jobs(&self, n: usize, bytes: usize) {
        self.uncommitted.fetch_sub(n, Ordering::AcqRel);
        self.uncommitted_bytes.fetch_sub(bytes, Ordering::AcqRel);
        let wakers = {
            let mut wakers = self.room.0.lock().unwrap_or_else(|p| p.into_inner());
            self.room.1.notify_all();
            std::mem::take(&mut *wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    pub(super) fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.get().and_then(Weak::upgrade)
    }
}

/// What happens when the writer thread ends, dropped as it ends (a panic too): ops are
/// refused from then on (appends counted as dropped), those still queued to it are counted
/// as dropped too (their receipts fail; a dead letter as [`letter_lost`] says, its job let
/// go), appends waiting for room go on (to be refused), and, after a shutdown, the spool's
/// lock file is released. After a panic the lock is kept until the sink is dropped: its
/// lanes still deliver the rows they read, and another process taking the spool meanwhile
/// (the operator restarting, `deskhook drain`) would deliver the same rows at once, out of
/// their tickets' order.
///
/// [`letter_lost`]: super::again::letter_lost
pub(super) struct WriterEnd<'a> {
    pub(super) core: &'a Core,
    pub(super) ops: &'a mpsc::Receiver<Op>,
}

impl Drop for WriterEnd<'_> {
    fn drop(&mut self) {
        self.core.ended.store(true, Ordering::Release);
        // Under the lock every send holds: nothing is sent after what is drained below.
        drop(lock(&self.core.ops).take());
        // Empty after a shutdown, which lets the writer write everything; after a panic,
        // what it had not taken yet. (What it had taken and not written went as the panic
        // dropped it: counted as dropped the same way, by `Append`'s drop; a dead letter's
        // job let go by its `JobHold`'s, the letter not counted.)
        // The next steps of moves under way, left untaken after a panic (a writer that
        // ends otherwise runs them to their end): their callers are told by the drop of
        // their channels that the writer is gone.
        let moving = std::mem::take(&mut *lock(&self.core.moving));
        let mut unwritten = moving.len();
        drop(moving);
        for op in self.ops.try_iter() {
            match op {
                Op::Append(append) => {
                    self.core
                        .committed_jobs(append.jobs.len(), body_bytes(&append.jobs));
                    // Counted, logged and told as it goes.
                    drop(append);
                }
                Op::Dead {
                    lane, row, letter, ..
                } => super::again::letter_lost(self.core, lane.as_deref(), row, &letter),
                // Their waiters are told by the drop of their channels.
                Op::Written { .. } | Op::DeleteLetters { .. } | Op::Hurry(_) => {}
                _ => unwritten += 1,
            }
        }
        if unwritten > 0 {
            log::error!(
                target: deskhook::LOG_TARGET,
                "spool: the writer ended with {unwritten} outcome(s) and change(s) queued and \
                 not written (deliveries, attempts, moves to the dead letters, endpoint \
                 changes; those it had taken when it ended are not counted): after a \
                 restart, events delivered meanwhile may be sent again, with older attempt \
                 counts, and endpoint changes made meanwhile are lost"
            );
        }
        self.core.committed_jobs(0, 0);
        if !std::thread::panicking() {
            drop(lock(&self.core.lock).take());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn a_failed_write_of_events_makes_the_spool_not_ready_for_ten_seconds() {
        let last = Instant::now();
        assert!(super::not_ready(last, last));
        assert!(super::not_ready(last, last + Duration::from_millis(9_999)));
        assert!(!super::not_ready(last, last + super::NOT_READY_FOR));
        // A clock read before `last` (another thread's): just now.
        assert!(super::not_ready(last + Duration::from_secs(1), last));
    }
}
