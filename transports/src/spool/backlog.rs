//! The spool as the engine's backlog: the rows on disk are the queue, and each endpoint
//! holds a window of its rows in memory.
//!
//! A lane loads its next rows when its window runs low (at most `memory_window` rows that
//! can go, and at most an eighth of the window per ticket: the rest of a ticket that keeps
//! failing is parked on disk and read back as its queue runs low; and the jobs held back
//! behind a retry do not count against the window, up to twice the window in all, so stuck
//! tickets cannot fill the window and hold up the others). Rows are loaded only while the
//! sink's memory budget has room; the others wait on disk.
//!
//! What cannot go for a while does not stay in memory (see `Window`): a ticket whose next
//! attempt is `rest_after` or more away, and every ticket with nothing in flight of an
//! endpoint paused, or whose breaker is open (or a receiver's `Retry-After` holds it) for
//! that long, lets go of its jobs, and its rows are read back when it can go again. While
//! the breaker is half-open, a lane reads back a ticket or two, for its probe.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::load::{LoadRoom, Loaded, RowRange};
use super::writer::SpoolStore;
use crate::delivery::backlog::{
    Accepted, Backlog, LetterFate, LetterOwner, Registration, Release, Released, RowCounts,
};
use crate::delivery::decide::later;
use crate::delivery::lane::LaneState;
use crate::delivery::{
    AttemptEntry, AttemptPage, AttemptQuery, DeadLetterPage, DeadLetterQuery, StoredLetter,
};
use crate::delivery::{
    BreakerState, DeadLetter, Engine, EventData, Job, Lane, Lanes, Receipt, lock,
};
use crate::error::Error;

/// How long a lane waits before reading again when the memory budget had no room.
const BUDGET_WAIT: Duration = Duration::from_millis(50);

/// How many reads of its next rows a look at a lane makes at most while all they read waits.
const READS_PER_LOOK: usize = 4;

/// What a read of a lane's next rows did.
enum Read {
    /// Done for this look: when to look again, if at a given instant.
    Done(Option<Instant>),
    /// It read a full window's room of rows, none of which can go now: read on.
    Waiting,
}

/// The spool as the engine's [`Backlog`].
#[derive(Debug)]
pub(crate) struct SpoolBacklog {
    store: SpoolStore,
    /// Per name, the last row of the removed lane of that name: a lane registered again
    /// under it never loads rows up to there.
    floors: Mutex<HashMap<Arc<str>, i64>>,
}

impl SpoolBacklog {
    pub(super) fn new(store: SpoolStore) -> SpoolBacklog {
        SpoolBacklog {
            store,
            floors: Mutex::new(HashMap::new()),
        }
    }

    /// Reads back the rows of parked tickets whose queue ran low (not those resting: their
    /// rows come first), while the schedule holds fewer than `bound` jobs.
    fn unpark(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        (per_ticket, bound): (usize, usize),
        now: Instant,
    ) -> Option<Instant> {
        if st.window.parked.is_empty() {
            return None;
        }
        let low: Vec<(Arc<str>, (i64, i64))> = st
            .window
            .parked
            .iter()
            .filter(|(ticket, _)| {
                st.schedule.ticket_len(ticket) <= per_ticket / 2 && !st.window.is_resting(ticket)
            })
            .filter_map(|(ticket, from)| {
                let through = st.window.unpark_through(ticket, *from)?;
                Some((ticket.clone(), (*from, through)))
            })
            .collect();
        let wall = SystemTime::now();
        for (ticket, (from, through)) in low {
            if st.schedule.queued() >= bound {
                break;
            }
            let limit = per_ticket - st.schedule.ticket_len(&ticket);
            let range = RowRange {
                after: from - 1,
                through: Some(through),
                ticket: Some(&ticket),
            };
            let mut loaded = match self.store.load(lane, range, limit, load_room(engine)) {
                Ok(loaded) => loaded,
                Err(err) => return load_failed(lane, st, &err, now),
            };
            let (next, read) = self.admit_ticket(engine, lane, st, &mut loaded, (now, wall));
            st.window.parked_rows = st.window.parked_rows.saturating_sub(read);
            // Read up to its row of a type this build does not know, if it has one: what is
            // left is held (`Window::stranded_at`), not parked.
            let held = st
                .window
                .unpark_through(&ticket, loaded.through + 1)
                .is_none();
            match next {
                // The budget ran out: the rest waits on disk.
                Some(row) => {
                    st.window.parked.insert(ticket, row);
                    st.window.load_again = Some(later(now, BUDGET_WAIT));
                    return st.window.load_again;
                }
                None if (loaded.rows as usize) < limit || held => {
                    st.window.parked.remove(&ticket);
                }
                None => {
                    st.window.parked.insert(ticket, loaded.through + 1);
                }
            }
        }
        None
    }

    /// Reads back the resting tickets whose instant came, or that waited for the lane to
    /// send, while the schedule holds fewer than `bound` jobs.
    fn wake(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        bound: usize,
        now: Instant,
    ) -> Option<Instant> {
        let wall = SystemTime::now();
        // At most `bound` tickets a look: those whose first row rests again as it is read
        // (its retry far off) add nothing to the schedule.
        for _ in 0..bound {
            if st.schedule.queued() >= bound {
                return None;
            }
            let (ticket, mut resting) = st.window.take_awake(now)?;
            st.schedule.number_from(&ticket, resting.seq);
            let range = RowRange {
                after: resting.first - 1,
                through: Some(resting.last),
                ticket: Some(&ticket),
            };
            // Rows left on disk whose move was given up are read (and passed over) too: the
            // ticket's last rows must not be left out for them.
            let limit = resting
                .jobs
                .saturating_add(self.store.given_up_within(resting.first, resting.last));
            let mut loaded = match self.store.load(lane, range, limit, load_room(engine)) {
                Ok(loaded) => loaded,
                Err(err) => {
                    st.window.put_back_awake(ticket, resting);
                    return load_failed(lane, st, &err, now);
                }
            };
            // What memory knows and the spool may not have written yet: the attempts made,
            // and a resume's "now".
            for (job, due) in &mut loaded.jobs {
                if let Some(tried) = &resting.tried {
                    tried.mend(job);
                }
                if resting.hurried {
                    *due = None;
                }
            }
            let (next, read) = self.admit_ticket(engine, lane, st, &mut loaded, (now, wall));
            if let Some(row) = next {
                resting.first = row;
                let read = usize::try_from(read).unwrap_or(usize::MAX);
                resting.jobs = resting.jobs.saturating_sub(read).max(1);
                // Numbered on from those put in the schedule.
                resting.seq = st.schedule.last_seq(&ticket);
                st.window.put_back_awake(ticket, resting);
                st.window.load_again = Some(later(now, BUDGET_WAIT));
                return st.window.load_again;
            }
        }
        // More may wait: at the next look, at once.
        st.window.has_awake(now).then_some(now)
    }

    /// Puts the jobs of `loaded`, a ticket's rows, into the schedule in their order while
    /// the budget has room. Returns the row the ticket goes on from if some were left on
    /// disk for want of memory, and how many rows are done with (put in, or unreadable
    /// and moved to the dead letters).
    fn admit_ticket(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        loaded: &mut Loaded,
        at: (Instant, SystemTime),
    ) -> (Option<i64>, u64) {
        let mut read = loaded.bad;
        // A row of a type this build does not know holds the ticket's later rows (read back
        // rows were all of known types when first read: this is for safety's sake). Held,
        // and counted, only once the rows before it are in: a read that stops before it
        // (the budget) reads it again.
        let first_unknown = loaded.unknown.first().map_or(i64::MAX, |u| u.row);
        let row_of = |job: &Job| job.row.unwrap_or(loaded.through);
        let mut jobs = loaded.jobs.drain(..).peekable();
        while let Some((job, due)) = jobs.next_if(|(job, _)| row_of(job) < first_unknown) {
            let row = row_of(&job);
            if !self.admit(engine, lane, st, job, due, at) {
                return (Some(row), read);
            }
            read += 1;
        }
        if loaded.unknown.is_empty() {
            return (loaded.stopped_at, read);
        }
        let behind = jobs.count();
        for unknown in loaded.unknown.drain(..) {
            st.window.hold_unknown(unknown.ticket, unknown.row);
        }
        st.window.strand(behind);
        (None, read)
    }

    /// [`Backlog::refill`] at `now`, but for the resting tickets' next instant.
    fn refill_at(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        now: Instant,
    ) -> Option<Instant> {
        // A lane that cannot send for a while keeps only its jobs in flight in memory, and
        // reads nothing until it can.
        if let Some(until) = engine.stalled_until(st, now)
            && until.saturating_duration_since(now) >= self.store.settings().rest_after
        {
            st.window.rest_all(&mut st.schedule);
            return Some(until);
        }
        if st.window.load_again.is_some_and(|at| now < at) {
            return st.window.load_again;
        }
        st.window.load_again = None;
        st.window.loaded_through = st.window.loaded_through.max(lane.rows.floor);
        let mut window = self.store.settings().window.max(1);
        if st.breaker.state_at(now) == BreakerState::HalfOpen {
            // Its breaker's probe goes next: one job that can go is all it needs.
            st.schedule.promote(now);
            let active = st.schedule.queued().saturating_sub(st.schedule.held_back());
            if active + st.schedule.in_flight() > 0 {
                return None;
            }
            window = 1;
        }
        let per_ticket = (window / 8).max(4);
        if let Some(again) = self.wake(engine, lane, st, 2 * window, now) {
            return Some(again);
        }
        if let Some(again) = self.unpark(engine, lane, st, (per_ticket, 2 * window), now) {
            return Some(again);
        }
        // A read whose rows all wait (parked, or resting till a retry far off) adds nothing
        // that can go, and no attempt's end will bring the lane back: read on, a few times
        // a look.
        for _ in 0..READS_PER_LOOK {
            match self.read_next(engine, lane, st, (window, per_ticket), now) {
                Read::Done(again) => return again,
                Read::Waiting => {}
            }
        }
        Some(now)
    }

    /// Reads the lane's next rows after those it read, if its window has room.
    fn read_next(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        (window, per_ticket): (usize, usize),
        now: Instant,
    ) -> Read {
        // The window counts the jobs that can go; those held back behind a retry (a stuck
        // ticket's, at most an eighth of the window each) do not keep the others on disk, up
        // to twice the window in all.
        let (through, _) = lane.rows.committed();
        let queued = st.schedule.queued();
        let active = queued.saturating_sub(st.schedule.held_back());
        let room = window
            .saturating_sub(active)
            .min((2 * window).saturating_sub(queued));
        if through <= st.window.loaded_through || active > window / 2 || room == 0 {
            return Read::Done(None);
        }
        let range = RowRange {
            after: st.window.loaded_through,
            through: None,
            ticket: None,
        };
        // Rows that wait (parked, resting) take none of the room: a read takes a whole
        // window of rows, however little room, and those past the room are read again.
        let limit = room.max(self.store.settings().window.max(1));
        let loaded = match self.store.load(lane, range, limit, load_room(engine)) {
            Ok(loaded) => loaded,
            Err(err) => return Read::Done(load_failed(lane, st, &err, now)),
        };
        let full = loaded.rows as usize == limit;
        if loaded.stopped_at.is_some() {
            // The budget has no room for the next row: it and the rest wait on disk.
            st.window.load_again = Some(later(now, BUDGET_WAIT));
        }
        let wall = SystemTime::now();
        let mut read_through = loaded.through;
        // Rows of types this build does not know hold their tickets from there, in the
        // order of the rows: a ticket's earlier rows go, its later ones wait.
        let mut unknown = loaded.unknown.into_iter().peekable();
        for (job, due) in loaded.jobs {
            let row = job.row.unwrap_or(read_through);
            while let Some(held) = unknown.next_if(|u| u.row < row) {
                st.window.hold_unknown(held.ticket, held.row);
            }
            // Behind a row of a type this build does not know: held on disk with it.
            if st.window.stranded_at(job.key(), row) {
                continue;
            }
            // A ticket with its share in memory already keeps the rest on disk; so do the
            // later rows of a ticket parked, or resting, before.
            if st.window.parked.contains_key(job.key()) {
                st.window.parked_rows += 1;
                continue;
            }
            if st.schedule.ticket_len(job.key()) >= per_ticket || st.window.is_resting(job.key()) {
                st.window.parked.insert(job.key().clone(), row);
                st.window.parked_rows += 1;
                continue;
            }
            if st.schedule.queued() >= queued + room {
                read_through = row - 1;
                break;
            }
            if !self.admit(engine, lane, st, job, due, (now, wall)) {
                // The budget ran out: this row and the rest wait on disk.
                read_through = row - 1;
                st.window.load_again = Some(later(now, BUDGET_WAIT));
                break;
            }
        }
        for held in unknown.take_while(|u| u.row <= read_through) {
            st.window.hold_unknown(held.ticket, held.row);
        }
        st.window.loaded_through = st.window.loaded_through.max(read_through);
        let added = st.schedule.queued().saturating_sub(st.schedule.held_back()) > active;
        match st.window.load_again {
            None if full && !added => Read::Waiting,
            again => Read::Done(again),
        }
    }

    /// Puts a job read from the spool into the schedule (numbered, and not before it is
    /// due), charged to the memory budget; `false` when the budget has no room for it now.
    /// A job more than the whole budget (written by a run with a larger one) would never
    /// have room and would hold up every row after it: its row goes to the dead letters
    /// instead (`true`: the row is done with). A ticket's first job due `rest_after` or
    /// more from now rests on disk until then, and so do the jobs read behind it (`true`).
    fn admit(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        mut job: Job,
        due: Option<SystemTime>,
        (now, wall): (Instant, SystemTime),
    ) -> bool {
        // A ticket whose next attempt is far off stays on disk until then: its first row
        // rests, and those read behind it.
        let wait = due.and_then(|due| due.duration_since(wall).ok());
        if job.row.is_some() {
            let key = job.key();
            if st.window.is_resting(key) {
                st.window.rest_row(&job, 0, None);
                return true;
            }
            if let Some(wait) = wait
                && wait >= self.store.settings().rest_after
                && !st.schedule.has_work(key)
            {
                let seq = st.schedule.last_seq(key);
                st.window.rest_row(&job, seq, Some(later(now, wait)));
                return true;
            }
        }
        let Some(charge) = engine.try_charge(crate::delivery::job_cost(&job)) else {
            let (Some(reason), Some(row)) = (engine.beyond_budget(job.event.body.len()), job.row)
            else {
                return false;
            };
            log::error!(
                target: deskhook::LOG_TARGET,
                "endpoint '{}': event {} in the spool: {reason}; it goes to the dead letters",
                lane.name,
                job.event.id_text
            );
            self.store.dead_row(lane, row, reason);
            return true;
        };
        job.charge = Some(charge);
        match wait {
            Some(wait) if !wait.is_zero() => st.schedule.push_at(job, later(now, wait)),
            _ => st.schedule.push(job),
        }
        true
    }
}

/// The memory a load may fill: what the sink's budget has room for now.
fn load_room(engine: &Engine) -> LoadRoom {
    let (free, whole) = engine.budget_room();
    LoadRoom { free, whole }
}

/// A read of the spool failed: say so, and try again in a second.
fn load_failed(lane: &Lane, st: &mut LaneState, err: &Error, now: Instant) -> Option<Instant> {
    log::error!(
        target: deskhook::LOG_TARGET,
        "endpoint '{}': {err}; trying again in 1 s",
        lane.name
    );
    st.window.load_again = Some(later(now, Duration::from_secs(1)));
    st.window.load_again
}

impl Backlog for SpoolBacklog {
    fn durable(&self) -> bool {
        true
    }

    fn poll_room(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.store.poll_room(cx)
    }

    fn hurry(&self, lane: &Lane) {
        self.store.hurry(&lane.name);
    }

    fn written(&self, lane: &Lane) -> Result<(), Error> {
        self.store.committed_after_move(&lane.name)
    }

    fn registry_kept(&self) -> Result<(), Error> {
        if self.store.keeps_registry() {
            return Ok(());
        }
        self.store.committed()
    }

    fn accept(&self, engine: &Engine, event: EventData, lanes: Lanes) -> Accepted {
        let event = Arc::new(event);
        let jobs = lanes
            .into_iter()
            .map(|lane| {
                engine.accepted(&lane, 1);
                lane.rows.pending.fetch_add(1, Ordering::AcqRel);
                let job = Job::new(event.clone(), engine.next_order());
                (lane, job)
            })
            .collect();
        Accepted {
            receipt: Some(self.store.append(jobs)),
            wait: self.store.waits_for_commit(),
            problems: Vec::new(),
            refused: Vec::new(),
        }
    }

    fn requeue(
        &self,
        engine: &Engine,
        lane: &Arc<Lane>,
        job: Job,
    ) -> Result<Option<Receipt>, String> {
        engine.accepted(lane, 1);
        lane.rows.pending.fetch_add(1, Ordering::AcqRel);
        Ok(Some(self.store.append(vec![(lane.clone(), job)])))
    }

    fn refill(&self, engine: &Engine, lane: &Arc<Lane>, st: &mut LaneState) -> Option<Instant> {
        let now = Instant::now();
        let again = self.refill_at(engine, lane, st, now);
        // A ticket resting until an instant is read back then.
        let wake = st.window.next_wake().filter(|at| now < *at);
        [again, wake].into_iter().flatten().min()
    }

    fn retry_later(
        &self,
        st: &mut LaneState,
        key: &Arc<str>,
        at: Instant,
        now: Instant,
    ) -> Option<Instant> {
        if at.saturating_duration_since(now) < self.store.settings().rest_after {
            return None;
        }
        let LaneState {
            window, schedule, ..
        } = st;
        (window.rest(schedule, key, Some(at)) > 0).then_some(at)
    }

    fn set_aside(&self, st: &mut LaneState) {
        st.window.rest_all(&mut st.schedule);
    }

    fn attach(&self, name: &str) -> Result<RowCounts, Error> {
        let floor = lock(&self.floors).get(name).copied().unwrap_or(0);
        let (last, count) = self.store.counts(name, floor)?;
        Ok(RowCounts::new(floor, last, count))
    }

    fn registered(&self, name: &str, entry: Option<Registration<'_>>) {
        if !self.store.keeps_registry() {
            self.store.register(name, entry);
        }
    }

    fn paused(&self, name: &str, paused: bool) {
        if !self.store.keeps_registry() {
            self.store.set_paused(name, paused);
        }
    }

    fn forget(&self, names: &[String]) {
        if self.store.keeps_registry() {
            return;
        }
        for name in names {
            self.store.register(name, None);
        }
        if !names.is_empty()
            && let Err(e) = self.store.committed()
        {
            log::warn!(target: deskhook::LOG_TARGET, "{e}");
        }
    }

    fn keeps_attempts(&self) -> bool {
        true
    }

    fn stored_rows(&self) -> Result<Option<u64>, Error> {
        self.store.rows().map(Some)
    }

    fn health(&self) -> Result<(), Error> {
        self.store.health()
    }

    fn letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error> {
        self.store.letters(query)
    }

    fn letters_by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error> {
        self.store.letters_by_key(keys)
    }

    fn delete_letters(&self, keys: &[String]) -> Result<usize, Error> {
        self.store.delete_letters(keys)
    }

    fn record_attempt(&self, entry: &AttemptEntry) {
        self.store.record_attempt(entry);
    }

    fn query_attempts(&self, query: &AttemptQuery) -> Option<Result<AttemptPage, Error>> {
        Some(self.store.query_attempts(query))
    }

    fn delivered(&self, job: &Job) {
        if let Some(row) = job.row {
            self.store.delivered(row);
        }
    }

    fn retrying(&self, job: &Job, next_at: SystemTime) {
        self.store.attempted(job, next_at);
    }

    /// Pending: the writer commits it later and counts it then. If that commit fails until
    /// the writer gives it up, a job's row stays in the spool (its event is delivered again
    /// after the next start) and is not counted, and a letter without a row goes whole to
    /// the log and is counted as dropped.
    fn dead(&self, owner: Option<LetterOwner>, row: Option<i64>, letter: DeadLetter) -> LetterFate {
        self.store.dead(owner, row, letter);
        LetterFate::Pending
    }

    fn release(
        &self,
        _engine: &Engine,
        lane: &Arc<Lane>,
        st: &mut LaneState,
        why: Release,
    ) -> Released {
        if let Release::Stopping(_) = why {
            // Everything stays in the spool for the next start (but the letters its writer
            // is writing, which go to the dead letters).
            let left = lane.outstanding.load(Ordering::Acquire);
            let writing = lane.letters_writing.load(Ordering::Acquire);
            return Released::kept(left.saturating_sub(st.in_flight.len() + writing));
        }
        // The copies in memory go; their rows move with the rest, counted by the writer.
        drop(st.schedule.drain());
        let except = st.in_flight.iter().filter_map(|job| job.row).collect();
        Released::moving(self.store.dead_all(lane, except, why.reason()))
    }

    fn complete(&self, engine: &Engine, lane: &Arc<Lane>, mut released: Released) -> usize {
        let Some(moved) = released.take_moving() else {
            return released.count();
        };
        let moved = match moved.recv() {
            Ok(Ok(moved)) => moved,
            // The write failed: the rows stay on disk, and this sink lets go of them all
            // the same (a flush does not wait for them; the next start finds them).
            Ok(Err((moved, left))) => {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{}': {left} of its event(s) in the spool could not be moved to \
                     the dead letters (see the error above; {moved} were); they stay in the \
                     spool, where the next start finds them",
                    lane.name
                );
                engine.finished(lane, left);
                moved
            }
            // The writer is gone (it was shut, or it ended: the send logged which): the rows
            // stay on disk for the next start, and this sink lets go of them all the same,
            // as of those of a failed write (but those whose attempts are still to end).
            Err(_) => {
                let in_flight = lock(&lane.state).in_flight.len();
                let writing = lane.letters_writing.load(Ordering::Acquire);
                let left = lane.outstanding.load(Ordering::Acquire);
                engine.finished(lane, left.saturating_sub(in_flight + writing));
                0
            }
        };
        if lane.release_reason() == Some(Release::Removed.reason()) {
            lock(&self.floors).insert(lane.name.clone(), lane.rows.committed().0);
        }
        moved
    }

    fn keeps_undelivered(&self) -> bool {
        true
    }

    fn dead_letter_place(&self) -> String {
        format!("the dead letters of spool {}", self.store.dir().display())
    }

    fn letter_retention(&self) -> Option<std::time::Duration> {
        Some(self.store.settings().dead_letter_retention)
    }

    fn stop_place(&self) -> String {
        "kept in the spool for the next start".to_owned()
    }

    fn close(&self) {
        self.store.shut();
    }

    fn bind(&self, engine: Weak<Engine>) {
        self.store.bind(engine);
    }
}
