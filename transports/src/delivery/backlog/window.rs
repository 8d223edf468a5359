//! With a spool: which of a lane's rows are in memory, under the lane's lock.
//!
//! Rows are read in up to a window, and a ticket with more than its share keeps the rest on
//! disk (parked). A ticket that cannot go for a while — its next retry far off, or its
//! endpoint paused or its breaker open — is set aside (resting): its jobs in memory are let
//! go, their memory given back to the sink's budget, and its rows are read back when it can
//! go again. So an endpoint that fails for weeks holds no memory but its jobs in flight,
//! and a hundred of them cannot take the budget that the others need.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::delivery::Job;
use crate::delivery::queue::Schedule;

/// With a spool: which of a lane's rows are in memory.
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
    /// Tickets held at a row of an event type this build does not know (a newer deskhook's),
    /// and that row: it and the ticket's later rows stay on disk, never read back by this
    /// process (see [`hold_unknown`](Window::hold_unknown)). Apart from `parked`, which
    /// holds only rows that can be read back, so that reading back does not pass over them.
    stranded: HashMap<Arc<str>, i64>,
    /// The rows held so: those of `stranded`, and each later row of their tickets read
    /// since.
    stranded_rows: usize,
    /// After a failed read (or a spent memory budget), when to try again.
    pub(crate) load_again: Option<Instant>,
    /// Tickets set aside: their rows loaded before wait on disk again.
    resting: HashMap<Arc<str>, Resting>,
    /// The jobs of the resting tickets.
    resting_jobs: usize,
    /// Tickets resting until an instant, earliest first. An entry whose ticket no longer
    /// rests until that instant is stale.
    sleeping: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    /// Tickets resting until their lane can send, in the order they are read back. An
    /// entry whose ticket no longer rests so is stale.
    waiting: VecDeque<Arc<str>>,
    /// The resting tickets that wait for their lane to send (`until` none): `waiting`
    /// may also hold stale entries.
    waiting_tickets: usize,
}

/// A ticket set aside: its rows from `first` to `last`, loaded before and let go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resting {
    /// Its first row: its next job.
    pub(crate) first: i64,
    /// Its last row set aside; its rows after it, if any, are parked.
    pub(crate) last: i64,
    /// How many of its rows rest (every row of the ticket from `first` to `last`).
    pub(crate) jobs: usize,
    /// The ticket's `X-Deskhook-Sequence` before `first`: read back, its rows are numbered
    /// on from it as before, even if the schedule forgot the ticket meanwhile.
    pub(crate) seq: u64,
    /// The attempts its first job had made when it was set aside, as memory knew them: read
    /// back, the row may not say them yet (see [`Tried::mend`]).
    pub(crate) tried: Option<Tried>,
    /// Whether a resume (or a new receiver) made its retries due now: read back, its rows
    /// go now whatever retry time the spool still has for them (the writer may not have
    /// written the resume's yet, writes failing).
    pub(crate) hurried: bool,
    /// When it may be read back; `None`: as soon as its lane can send.
    until: Option<Instant>,
}

/// The attempts a job had made when its ticket was set aside. The spool's writer records an
/// attempt's outcome a moment after it, and writes it again for as long as the disk fails:
/// a row read back meanwhile (its retry due, a pause and resume) would say fewer attempts,
/// and the event would be tried again from the start of its retry schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tried {
    row: i64,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<Box<str>>,
}

#[cfg_attr(not(feature = "spool"), allow(dead_code))]
impl Tried {
    /// What `job` has tried, if it has a row and made an attempt.
    fn of(job: &Job) -> Option<Tried> {
        if job.attempts == 0 {
            return None;
        }
        Some(Tried {
            row: job.row?,
            attempts: job.attempts,
            last_status: job.last_status,
            last_error: job.last_error.clone(),
        })
    }

    /// Gives `job`, read back from the spool, the attempts it made if its row says fewer.
    pub(crate) fn mend(&self, job: &mut Job) {
        if job.row == Some(self.row) && job.attempts < self.attempts {
            job.attempts = self.attempts;
            job.last_status = self.last_status;
            job.last_error.clone_from(&self.last_error);
        }
    }
}

#[cfg_attr(not(feature = "spool"), allow(dead_code))]
impl Window {
    /// Sets ticket `key` aside until `until` (`None`: until its lane can send): its queued
    /// jobs leave the schedule (see [`Schedule::unload`]) and are dropped. Nothing happens
    /// to a ticket with a job in flight. How many jobs went.
    pub(crate) fn rest(
        &mut self,
        schedule: &mut Schedule,
        key: &Arc<str>,
        until: Option<Instant>,
    ) -> usize {
        let jobs = schedule.unload(key);
        self.rest_jobs(key.clone(), &jobs, until)
    }

    /// Sets aside every ticket with nothing in flight until its lane can send (it is paused,
    /// or its breaker open for a while), or until its retry if it waits for one; they are
    /// read back oldest row first. How many jobs went.
    pub(crate) fn rest_all(&mut self, schedule: &mut Schedule) -> usize {
        let mut unloaded = schedule.unload_all();
        unloaded.sort_by_key(|(_, jobs, _)| jobs.first().map(|job| job.row));
        unloaded
            .into_iter()
            .map(|(key, jobs, due)| self.rest_jobs(key, &jobs, due))
            .sum()
    }

    fn rest_jobs(&mut self, key: Arc<str>, jobs: &[Job], until: Option<Instant>) -> usize {
        let (Some(first), Some(last)) = (
            jobs.first().and_then(|j| j.row),
            jobs.last().and_then(|j| j.row),
        ) else {
            return 0;
        };
        let seq = jobs.first().map_or(0, |job| job.seq.saturating_sub(1));
        let resting = Resting {
            first,
            last,
            jobs: jobs.len(),
            seq,
            tried: jobs.first().and_then(Tried::of),
            hurried: false,
            until,
        };
        self.add(key, resting, false);
        jobs.len()
    }

    /// Sets aside `job`, read from the spool and not put in the schedule: its ticket's
    /// first, due at `until` (`seq` its last number), or one behind its rows resting
    /// already.
    pub(crate) fn rest_row(&mut self, job: &Job, seq: u64, until: Option<Instant>) {
        let Some(row) = job.row else {
            return;
        };
        let resting = Resting {
            first: row,
            last: row,
            jobs: 1,
            seq,
            tried: Tried::of(job),
            hurried: false,
            until,
        };
        self.add(job.key().clone(), resting, false);
    }

    /// Adds `new` to what rests of its ticket, if anything does: rows set aside again before
    /// the rest of a ticket read back in part (its first ones: their instant and number
    /// stand), or rows after them (the first ones' stand). The ticket's rows from the first
    /// to the last rest, all of them.
    ///
    /// `front`: a ticket resting until its lane can send is the next read back.
    fn add(&mut self, key: Arc<str>, mut new: Resting, front: bool) {
        // Whether an entry of `sleeping` or `waiting` stands for it already.
        let mut listed = false;
        if let Some(old) = self.resting.remove(&key) {
            self.resting_jobs -= old.jobs;
            self.waiting_tickets -= usize::from(old.until.is_none());
            if old.first < new.first {
                (new.seq, new.until, new.tried) = (old.seq, old.until, old.tried);
                new.hurried = old.hurried;
            } else if new.tried.is_none() {
                new.tried = old.tried;
            }
            new.first = new.first.min(old.first);
            new.last = new.last.max(old.last);
            new.jobs += old.jobs;
            listed = old.until == new.until;
        }
        match new.until {
            _ if listed && !(front && new.until.is_none()) => {}
            Some(at) => self.sleeping.push(Reverse((at, key.clone()))),
            None if front => self.waiting.push_front(key.clone()),
            None => self.waiting.push_back(key.clone()),
        }
        self.resting_jobs += new.jobs;
        self.waiting_tickets += usize::from(new.until.is_none());
        self.resting.insert(key, new);
    }

    /// Whether ticket `key` rests: its rows, and those after them, wait until it is read
    /// back.
    pub(crate) fn is_resting(&self, key: &str) -> bool {
        self.resting.contains_key(key)
    }

    /// The jobs of the resting tickets.
    pub(crate) fn resting_jobs(&self) -> usize {
        self.resting_jobs
    }

    /// Whether a ticket rests until its lane can send.
    pub(crate) fn waits_for_lane(&self) -> bool {
        self.waiting_tickets > 0
    }

    /// Whether the lane has rows to read as soon as it can send: tickets resting until then
    /// (or until an instant passed), or rows committed after those it read (the last is
    /// `last_committed`).
    pub(crate) fn has_unread(&self, last_committed: i64) -> bool {
        last_committed > self.loaded_through || self.has_awake(Instant::now())
    }

    /// Whether a ticket may be read back at `now` (see [`take_awake`](Window::take_awake)).
    pub(crate) fn has_awake(&self, now: Instant) -> bool {
        self.waits_for_lane() || self.next_wake().is_some_and(|at| at <= now)
    }

    /// When the next ticket resting until an instant may be read back (perhaps earlier:
    /// an entry may be stale).
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.sleeping.peek().map(|Reverse((at, _))| *at)
    }

    /// The next ticket to read back at `now`, taken out of the resting ones: one whose
    /// instant came (first), or that waited for its lane to send, in their order.
    pub(crate) fn take_awake(&mut self, now: Instant) -> Option<(Arc<str>, Resting)> {
        while let Some(Reverse((at, _))) = self.sleeping.peek()
            && *at <= now
        {
            let Some(Reverse((at, key))) = self.sleeping.pop() else {
                break;
            };
            if let Some(resting) = self.resting.get_mut(&key)
                && resting.until == Some(at)
            {
                resting.until = None;
                self.waiting_tickets += 1;
                self.waiting.push_back(key);
            }
        }
        while let Some(key) = self.waiting.pop_front() {
            if self.resting.get(&key).is_some_and(|r| r.until.is_none())
                && let Some(resting) = self.resting.remove(&key)
            {
                self.resting_jobs -= resting.jobs;
                self.waiting_tickets -= 1;
                return Some((key, resting));
            }
        }
        None
    }

    /// Puts back a ticket [`take_awake`](Window::take_awake) gave, or what is left of it
    /// (`first` its next row, `jobs` those left): its read failed or found no room. It is
    /// the next read back.
    pub(crate) fn put_back_awake(&mut self, key: Arc<str>, mut resting: Resting) {
        resting.until = None;
        self.add(key, resting, true);
    }

    /// Every resting ticket may be read back as soon as its lane can send (a resume: the
    /// retries its rows wait for go now). How many waited for an instant.
    pub(crate) fn hurry(&mut self) -> usize {
        let mut keys: Vec<(i64, Arc<str>)> = Vec::new();
        for (key, resting) in &mut self.resting {
            resting.hurried = true;
            if resting.until.take().is_some() {
                keys.push((resting.first, key.clone()));
            }
        }
        self.waiting_tickets += keys.len();
        keys.sort_unstable();
        let hurried = keys.len();
        self.waiting.extend(keys.into_iter().map(|(_, key)| key));
        self.sleeping.clear();
        hurried
    }

    /// Holds ticket `key` at `row`, of an event type this build does not know: the row and
    /// the ticket's later ones stay on disk (see [`stranded_at`](Window::stranded_at)), for
    /// a deskhook that knows the type; its earlier rows go as they would (a parked ticket
    /// is read back up to the row before it). The first such row of a ticket is the one
    /// kept.
    pub(crate) fn hold_unknown(&mut self, key: Arc<str>, row: i64) {
        self.stranded_rows += 1;
        let at = self.stranded.entry(key).or_insert(row);
        *at = (*at).min(row);
    }

    /// Whether row `row` of ticket `key` is held behind a row of an unknown type (then
    /// counted among those held).
    pub(crate) fn stranded_at(&mut self, key: &str, row: i64) -> bool {
        let held = self.stranded.get(key).is_some_and(|at| row > *at);
        self.stranded_rows += usize::from(held);
        held
    }

    /// `rows` more held behind a row of an unknown type (read back with it, by mistake).
    pub(crate) fn strand(&mut self, rows: usize) {
        self.stranded_rows += rows;
    }

    /// The rows held behind rows of types this build does not know: they cannot go while it
    /// runs.
    pub(crate) fn stranded_rows(&self) -> usize {
        self.stranded_rows
    }

    /// Through which row ticket `key`, parked from `from`, is read back: up to its row of an
    /// unknown type if it has one; `None` when that is its next row.
    pub(crate) fn unpark_through(&self, key: &str, from: i64) -> Option<i64> {
        match self.stranded.get(key) {
            Some(&at) if at <= from => None,
            Some(&at) => Some(self.loaded_through.min(at - 1)),
            None => Some(self.loaded_through),
        }
    }

    /// Every row of the lane up to `last` left the spool (moved to the dead letters):
    /// nothing is left to read back.
    pub(crate) fn let_go(&mut self, last: i64) {
        self.loaded_through = self.loaded_through.max(last);
        self.parked.clear();
        self.parked_rows = 0;
        self.stranded.clear();
        self.stranded_rows = 0;
        self.resting.clear();
        self.resting_jobs = 0;
        self.sleeping.clear();
        self.waiting.clear();
        self.waiting_tickets = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(key: &str, row: i64) -> Job {
        let mut job = Job::for_test(key, row.unsigned_abs());
        job.row = Some(row);
        job
    }

    fn key(key: &str) -> Arc<str> {
        key.into()
    }

    /// The tickets and rows of what the schedule hands out, with their sequence numbers,
    /// each delivered at once.
    fn take_all(schedule: &mut Schedule) -> Vec<(String, i64, u64)> {
        let mut taken = Vec::new();
        while let Some(job) = schedule.take(Instant::now()) {
            taken.push((job.key().to_string(), job.row.unwrap_or(0), job.seq));
            schedule.done(&job);
        }
        taken
    }

    #[test]
    fn a_ticket_set_aside_comes_back_with_its_numbers() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        for (ticket, row) in [("A", 1), ("B", 2), ("A", 3), ("A", 4)] {
            schedule.push(job(ticket, row));
        }
        // A's first job fails and waits an hour; it is set aside with the two behind it.
        let first = schedule.take(Instant::now()).unwrap();
        assert_eq!((first.row, first.seq), (Some(1), 1));
        let at = Instant::now() + Duration::from_secs(3600);
        schedule.retry_at(first, at);
        assert_eq!(schedule.held_back(), 3);
        assert_eq!(window.rest(&mut schedule, &key("A"), Some(at)), 3);
        assert_eq!((schedule.queued(), schedule.held_back()), (1, 0));
        assert!(window.is_resting("A"));
        assert_eq!(window.resting_jobs(), 3);
        assert_eq!(window.next_wake(), Some(at));
        assert_eq!(
            window.take_awake(Instant::now()),
            None,
            "A waits for its hour"
        );

        // Its hour comes: read back (here, made again) in row order, numbered as before.
        let (ticket, resting) = window.take_awake(at).unwrap();
        assert_eq!(
            (&*ticket, resting.first, resting.last, resting.jobs),
            ("A", 1, 4, 3)
        );
        assert!(!resting.hurried, "due at its instant, not hurried");
        assert_eq!(window.resting_jobs(), 0);
        for row in [1, 3, 4] {
            schedule.push(job("A", row));
        }
        assert_eq!(
            take_all(&mut schedule),
            [
                ("B".into(), 2, 1),
                ("A".into(), 1, 1),
                ("A".into(), 3, 2),
                ("A".into(), 4, 3)
            ]
        );
    }

    #[test]
    fn a_ticket_in_flight_is_not_set_aside() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        schedule.push(job("A", 1));
        schedule.push(job("A", 2));
        schedule.push(job("B", 3));
        let in_flight = schedule.take(Instant::now()).unwrap();
        assert_eq!(window.rest_all(&mut schedule), 1, "B only");
        assert!(!window.is_resting("A") && window.is_resting("B"));
        assert_eq!(schedule.queued(), 1);
        schedule.done(&in_flight);
        assert_eq!(take_all(&mut schedule), [("A".into(), 2, 2)]);
    }

    #[test]
    fn tickets_waiting_for_their_lane_come_back_oldest_row_first() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        let soon = Instant::now() + Duration::from_secs(60);
        // C rests until an instant; B and A until the lane can send.
        schedule.push(job("C", 1));
        window.rest(&mut schedule, &key("C"), Some(soon));
        for (ticket, row) in [("B", 2), ("A", 3), ("B", 4)] {
            schedule.push(job(ticket, row));
        }
        assert_eq!(window.rest_all(&mut schedule), 3);
        assert!(window.waits_for_lane());
        let order = |window: &mut Window, now| {
            std::iter::from_fn(|| window.take_awake(now))
                .map(|(key, resting)| (key.to_string(), resting.first))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(&mut window, Instant::now()),
            [("B".into(), 2), ("A".into(), 3)]
        );
        assert_eq!(order(&mut window, soon), [("C".into(), 1)]);
        assert_eq!(window.resting_jobs(), 0);
    }

    #[test]
    fn a_ticket_put_back_is_read_next_and_a_hurry_wakes_all() {
        let mut window = Window::default();
        let mut schedule = Schedule::default();
        let late = Instant::now() + Duration::from_secs(3600);
        for (ticket, row) in [("A", 1), ("A", 2), ("B", 3)] {
            schedule.push(job(ticket, row));
        }
        window.rest(&mut schedule, &key("A"), Some(late));
        window.rest(
            &mut schedule,
            &key("B"),
            Some(late + Duration::from_secs(1)),
        );
        assert_eq!(window.take_awake(Instant::now()), None);
        assert_eq!(window.hurry(), 2);
        assert_eq!(window.next_wake(), None);
        let (a, mut resting) = window.take_awake(Instant::now()).unwrap();
        assert_eq!((&*a, resting.jobs), ("A", 2));
        // Read back, its rows go now whatever retry time the spool still has for them.
        assert!(resting.hurried);
        // Its first row was read, not the second (no room): the rest comes next.
        resting.first = 2;
        resting.jobs = 1;
        window.put_back_awake(a, resting);
        assert_eq!(window.resting_jobs(), 2);
        let (again, resting) = window.take_awake(Instant::now()).unwrap();
        assert_eq!((&*again, resting.first, resting.jobs), ("A", 2, 1));
        assert!(resting.hurried, "put back, still hurried");
        assert_eq!(&*window.take_awake(Instant::now()).unwrap().0, "B");
        assert_eq!(window.take_awake(Instant::now()), None);
        assert!(!window.waits_for_lane(), "no entry left over");
    }

    #[test]
    fn rows_set_aside_again_before_the_rest_of_their_ticket_join_it() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        let now = Instant::now();
        for row in [10, 11, 12] {
            schedule.push(job("A", row));
        }
        window.rest_all(&mut schedule);
        // Read back in part: row 10, and no room for the others, which are put back.
        let (a, mut resting) = window.take_awake(now).unwrap();
        schedule.number_from(&a, resting.seq);
        schedule.push(job("A", 10));
        (resting.first, resting.jobs) = (11, 2);
        window.put_back_awake(a.clone(), resting);
        // Row 10 fails, its retry an hour away: it rests again, before rows 11 and 12.
        let failed = schedule.take(now).unwrap();
        let at = now + Duration::from_secs(3600);
        schedule.retry_at(failed, at);
        assert_eq!(window.rest(&mut schedule, &a, Some(at)), 1);
        assert_eq!(window.resting_jobs(), 3);
        assert!(
            !window.waits_for_lane(),
            "A waits for its hour, not for the lane"
        );
        assert_eq!(window.take_awake(now), None, "all of A waits for the hour");
        let (_, resting) = window.take_awake(at).unwrap();
        assert_eq!(
            (resting.first, resting.last, resting.jobs, resting.seq),
            (10, 12, 3, 0)
        );
        assert_eq!(window.take_awake(at), None);
        assert!(!window.waits_for_lane() && window.next_wake().is_none());
    }

    #[test]
    fn rows_read_with_a_far_retry_rest_and_keep_their_numbers() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        for row in 1..=4 {
            schedule.push(job("A", row));
        }
        take_all(&mut schedule);
        // Row 5 is read due in an hour, and row 6 behind it.
        let at = Instant::now() + Duration::from_secs(3600);
        window.rest_row(&job("A", 5), schedule.last_seq("A"), Some(at));
        window.rest_row(&job("A", 6), 0, None);
        assert!(window.is_resting("A"));
        assert_eq!(window.take_awake(Instant::now()), None);
        // A schedule that forgot A meanwhile numbers them on from its fourth.
        let mut schedule = Schedule::default();
        let (a, resting) = window.take_awake(at).unwrap();
        assert_eq!(
            (resting.first, resting.last, resting.jobs, resting.seq),
            (5, 6, 2, 4)
        );
        schedule.number_from(&a, resting.seq);
        schedule.push(job("A", 5));
        schedule.push(job("A", 6));
        assert_eq!(
            take_all(&mut schedule),
            [("A".into(), 5, 5), ("A".into(), 6, 6)]
        );
    }

    #[test]
    fn set_aside_with_the_rest_a_ticket_waiting_for_its_retry_rests_until_then() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        let now = Instant::now();
        let at = now + Duration::from_secs(3600);
        for (ticket, row) in [("A", 1), ("B", 2), ("C", 3)] {
            schedule.push(job(ticket, row));
        }
        // A waits for its retry; C's is put back and not released yet (no instant known).
        let a = schedule.take(now).unwrap();
        schedule.retry_at(a, at);
        let b = schedule.take(now).unwrap();
        schedule.done(&b);
        let c = schedule.take(now).unwrap();
        let _held = schedule.put_back(c, at);
        assert_eq!(window.rest_all(&mut schedule), 2);
        assert_eq!(schedule.queued(), 0);
        assert_eq!(&*window.take_awake(now).unwrap().0, "C");
        assert_eq!(window.take_awake(now), None, "A waits for its retry");
        assert_eq!(window.next_wake(), Some(at));
        assert_eq!(&*window.take_awake(at).unwrap().0, "A");
    }

    #[test]
    fn a_ticket_read_back_goes_on_from_the_attempts_it_made() {
        let mut schedule = Schedule::default();
        let mut window = Window::default();
        let now = Instant::now();
        for row in [1, 2] {
            schedule.push(job("A", row));
        }
        // Its first job failed twice; the spool has not written that yet.
        let mut first = schedule.take(now).unwrap();
        (first.attempts, first.last_status) = (2, Some(503));
        first.last_error = Some("503 Service Unavailable".into());
        let at = now + Duration::from_secs(60);
        schedule.retry_at(first, at);
        window.rest(&mut schedule, &key("A"), Some(at));
        // A row read behind it (with no attempts) does not take its place.
        window.rest_row(&job("A", 3), 0, None);

        let (_, resting) = window.take_awake(at).unwrap();
        assert_eq!((resting.first, resting.last, resting.jobs), (1, 3, 3));
        let tried = resting.tried.expect("the first job's attempts");
        // Read back as the disk has it: the attempts before.
        let (mut read, mut second) = (job("A", 1), job("A", 2));
        read.attempts = 1;
        tried.mend(&mut read);
        tried.mend(&mut second);
        assert_eq!(
            (read.attempts, read.last_status, read.last_error.as_deref()),
            (2, Some(503), Some("503 Service Unavailable"))
        );
        assert_eq!(second.attempts, 0, "only its own row");
        // A row that says more attempts keeps them: memory fills in only what the disk lacks.
        let mut later = job("A", 1);
        later.attempts = 3;
        tried.mend(&mut later);
        assert_eq!(later.attempts, 3);
    }

    #[test]
    fn letting_the_rows_go_forgets_the_resting() {
        let mut window = Window::default();
        let mut schedule = Schedule::default();
        schedule.push(job("A", 7));
        window.rest_all(&mut schedule);
        window.parked.insert(key("B"), 9);
        window.parked_rows = 3;
        window.let_go(12);
        assert_eq!(window.loaded_through, 12);
        assert!(!window.is_resting("A") && window.parked.is_empty());
        assert_eq!((window.resting_jobs(), window.parked_rows), (0, 0));
        assert_eq!(window.take_awake(Instant::now()), None);
    }

    #[test]
    fn a_ticket_held_at_a_row_of_an_unknown_type_is_read_back_up_to_it_only() {
        let mut window = Window {
            loaded_through: 20,
            ..Window::default()
        };
        // Parked from row 3 before: read back from there, up to the row before 9.
        window.parked.insert(key("A"), 3);
        window.hold_unknown(key("A"), 9);
        assert_eq!(window.unpark_through("A", 3), Some(8));
        assert_eq!(window.unpark_through("A", 9), None);
        // Its rows after 9 are held, those before are not; the first such row is kept.
        assert!(!window.stranded_at("A", 5) && window.stranded_at("A", 10));
        window.hold_unknown(key("A"), 15);
        assert!(window.stranded_at("A", 12));
        assert_eq!(window.stranded_rows(), 4);
        assert_eq!(window.unpark_through("C", 4), Some(20));
        // A ticket not parked before is not parked by it: held apart, never read back.
        window.hold_unknown(key("B"), 12);
        assert!(!window.parked.contains_key("B"));
        assert_eq!(window.unpark_through("B", 12), None);
        assert_eq!(window.stranded_rows(), 5);
        window.let_go(30);
        assert!(window.stranded.is_empty() && window.parked.is_empty());
        assert_eq!(window.stranded_rows(), 0);
    }
}
