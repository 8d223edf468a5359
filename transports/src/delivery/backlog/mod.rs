//! Where accepted jobs wait: the seam between the engine and its store.
//!
//! [`Backlog`] is everything the engine asks of the place jobs wait in: take an emit's jobs,
//! move the next ones of an endpoint into its schedule, record outcomes, let an endpoint's
//! queue go (removed, disabled by a 410, shut down). [`MemoryBacklog`] keeps them in memory
//! (bounded per endpoint by `queue_capacity` and per sink by `max_queued_bytes`); the spool
//! (`crate::spool`) keeps them in SQLite and memory holds a window of each endpoint's rows.
//! The engine never asks which one it has.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use super::history::{AttemptEntry, AttemptPage, AttemptQuery};
use super::lane::{InFlight, LaneState};
use super::letters::{DeadLetterPage, DeadLetterQuery, StoredLetter};
use super::{DeadLetter, EndpointSpec, Engine, EventData, Job, Lane, Lanes, Receipt};
use crate::error::Error;

mod memory;
mod window;
#[cfg(test)]
pub(crate) use memory::tests as memory_hooks;

pub(crate) use memory::MemoryBacklog;
#[cfg(feature = "relay")]
pub(crate) use memory::drain_inbox;
pub(crate) use window::Window;

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
    /// Whether the job was given to the dead letters, kept or not (the dead-letter hook
    /// was told of it): the relay writes a letter of its own only for one that was not.
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) lettered: bool,
}

impl Refusal {
    /// The job was given to the dead letters for `problem`: kept there, or dropped when
    /// their file could not take it (`kept` false).
    pub(crate) fn dead_lettered(problem: &str, kept: bool) -> Refusal {
        if kept {
            Refusal {
                problem: format!("{problem}; event dead-lettered"),
                dead_lettered: true,
                lettered: true,
            }
        } else {
            Refusal {
                problem: format!(
                    "{problem}; event dropped: the dead-letter file could not take it (the \
                     letter is in the error log; free space on its disk, or set \
                     dead_letter_path to a file deskhook can write)"
                ),
                dead_lettered: false,
                lettered: true,
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
    /// With a spool: the writer's answer to the move of the lane's rows. Only the caller of
    /// the release waits for it: a resume or another attempt's outcome that took it would
    /// leave the release's own caller (a removal) returning before the move, with no count
    /// of it.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    moving: Option<std::sync::mpsc::Receiver<MoveAnswer>>,
}

/// The spool writer's answer to the move of a lane's rows to the dead letters: how many it
/// moved, or, when a write failed, how many it moved before and how many it left on disk.
pub(crate) type MoveAnswer = Result<usize, (usize, usize)>;

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

    /// Rows the spool's writer moves to the dead letters, and says how many on `moving`.
    #[cfg(feature = "spool")]
    pub(crate) fn moving(moving: std::sync::mpsc::Receiver<MoveAnswer>) -> Released {
        Released {
            moving: Some(moving),
            ..Released::default()
        }
    }

    /// The writer's answer to wait for, if any.
    #[cfg(feature = "spool")]
    pub(crate) fn take_moving(&mut self) -> Option<std::sync::mpsc::Receiver<MoveAnswer>> {
        self.moving.take()
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
    /// A retry of ticket `key` was put back in `st`'s schedule, due at `at`: a backlog that
    /// keeps the jobs on disk may let go of the ticket's copies in memory until then, and
    /// says when to look at the lane again to read them back. Nothing by default.
    fn retry_later(
        &self,
        _st: &mut LaneState,
        _key: &Arc<str>,
        _at: Instant,
        _now: Instant,
    ) -> Option<Instant> {
        None
    }
    /// `st`'s lane sends nothing until it is resumed (paused): a backlog that keeps the jobs
    /// on disk lets go of their copies in memory (but those in flight) until then. Nothing
    /// by default.
    fn set_aside(&self, _st: &mut LaneState) {}
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
    /// letters; the spool waits for its writer); returns the jobs it let go, less those
    /// whose dead letter was lost (logged whole, and counted as dropped).
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
    /// Waits until what was handed to the store before is written, and the release of
    /// `lane`'s rows under way (a spool's move of them, after a 410) has ended: nothing to
    /// wait for without a store.
    fn written(&self, _lane: &Lane) -> Result<(), Error> {
        Ok(())
    }
    /// Ready once accepting an event would not wait (a spool's writer far behind makes it
    /// wait); until then the task is woken when that changes.
    fn poll_room(&self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
    /// Whether it takes events now: a spool whose writes fail (a full disk) does not.
    fn health(&self) -> Result<(), Error> {
        Ok(())
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
    /// How long dead letters are kept before they are deleted; `None`: until an operator
    /// deletes them.
    fn letter_retention(&self) -> Option<std::time::Duration> {
        None
    }
    /// The dead letters `query` asks for, newest first.
    fn letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error>;
    /// The dead letters named by `keys`, oldest first.
    fn letters_by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error>;
    /// The dead letters named by `wanted` (each a key and the position a listing found it
    /// at), oldest first: by key unless the store can read a letter where it was found.
    fn letters_at(&self, wanted: &[(String, u64)]) -> Result<Vec<StoredLetter>, Error> {
        let keys: Vec<String> = wanted.iter().map(|(key, _)| key.clone()).collect();
        self.letters_by_key(&keys)
    }
    /// Whether a delete of dead letters rewrites what holds them whole (a file), so that a
    /// replay of many takes them out all at once rather than a part at a time.
    fn letter_deletes_rewrite(&self) -> bool {
        false
    }
    /// Deletes the dead letters named by `keys`; how many went.
    fn delete_letters(&self, keys: &[String]) -> Result<usize, Error>;
    /// Where undelivered events go at shutdown, for messages.
    fn stop_place(&self) -> String;
    /// Writes what is queued and lets the store go (at shutdown).
    fn close(&self);
    /// Tells the backlog its engine (the spool's writer wakes endpoints after a commit).
    fn bind(&self, _engine: std::sync::Weak<Engine>) {}
}
