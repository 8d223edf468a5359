//! The per-endpoint schedule of jobs: one FIFO per ticket, so that a ticket's events go out
//! in emit order while other tickets proceed in parallel.
//!
//! It holds no lock and does no I/O; the engine keeps it behind the endpoint's mutex and
//! decides how workers wait.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::Job;

#[derive(Debug, PartialEq, Eq)]
enum TicketState {
    /// Its head job is in `ready`.
    Ready,
    /// Its head job waits in `delayed` until the instant.
    Delayed(Instant),
    /// Its head job is being attempted; the rest wait for the outcome.
    InFlight,
}

#[derive(Debug)]
struct TicketQueue {
    jobs: VecDeque<Job>,
    state: TicketState,
}

/// Jobs of one endpoint, ordered per ticket key.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    tickets: HashMap<Arc<str>, TicketQueue>,
    ready: VecDeque<Arc<str>>,
    delayed: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    /// Tie-breaker for `delayed`, so that equal instants keep insertion order.
    delayed_seq: u64,
    queued: usize,
    in_flight: usize,
    /// Jobs of tickets whose first job waits for a retry (it and those behind it).
    held_back: usize,
    /// Withdrawn jobs [`Schedule::take`] let go since [`Schedule::take_withdrawn`].
    withdrawn: usize,
}

impl Schedule {
    /// Jobs held back behind a retry: of tickets whose first job waits for its next attempt.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn held_back(&self) -> usize {
        self.held_back
    }

    /// Jobs waiting (ready or delayed), not counting those in flight.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Jobs being attempted.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether nothing is queued or in flight.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.queued == 0 && self.in_flight == 0
    }

    /// How many jobs of the ticket wait (not counting one in flight).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn ticket_len(&self, key: &str) -> usize {
        self.tickets.get(key).map_or(0, |queue| queue.jobs.len())
    }

    /// Whether the ticket has jobs queued or in flight.
    pub(crate) fn has_ticket(&self, key: &str) -> bool {
        self.tickets.contains_key(key)
    }

    /// Appends a job behind the others of its ticket.
    pub(crate) fn push(&mut self, job: Job) {
        self.queued += 1;
        match self.tickets.entry(job.key().clone()) {
            Entry::Occupied(mut entry) => {
                let queue = entry.get_mut();
                if matches!(queue.state, TicketState::Delayed(_)) {
                    self.held_back += 1;
                }
                queue.jobs.push_back(job);
            }
            Entry::Vacant(entry) => {
                let key = job.key().clone();
                let mut jobs = VecDeque::with_capacity(1);
                jobs.push_back(job);
                entry.insert(TicketQueue {
                    jobs,
                    state: TicketState::Ready,
                });
                self.ready.push_back(key);
            }
        }
    }

    /// Appends a job that is not due before `at` (a retry read back from the spool). Only a
    /// ticket's first job can be waiting for a retry, so behind others it just queues.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn push_at(&mut self, job: Job, at: Instant) {
        if self.tickets.contains_key(job.key()) {
            return self.push(job);
        }
        self.queued += 1;
        self.held_back += 1;
        let key = job.key().clone();
        self.tickets.insert(
            key.clone(),
            TicketQueue {
                jobs: VecDeque::from([job]),
                state: TicketState::Delayed(at),
            },
        );
        self.delayed_seq += 1;
        self.delayed.push(Reverse((at, self.delayed_seq, key)));
    }

    /// Makes the jobs due at `now` ready; whether one is.
    pub(crate) fn promote(&mut self, now: Instant) -> bool {
        while let Some(Reverse((at, _, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, _, key))) = self.delayed.pop() else {
                break;
            };
            if let Some(queue) = self.tickets.get_mut(&key)
                && queue.state == TicketState::Delayed(at)
            {
                queue.state = TicketState::Ready;
                self.held_back -= queue.jobs.len();
                self.ready.push_back(key);
            }
        }
        !self.ready.is_empty()
    }

    /// Takes the next job that is due at `now`, marking its ticket in flight. Withdrawn
    /// jobs on the way are let go (see [`Schedule::take_withdrawn`]).
    pub(crate) fn take(&mut self, now: Instant) -> Option<Job> {
        self.promote(now);
        while let Some(key) = self.ready.pop_front() {
            let Some(queue) = self.tickets.get_mut(&key) else {
                continue;
            };
            if queue.state != TicketState::Ready {
                continue;
            }
            let job = loop {
                match queue.jobs.pop_front() {
                    Some(job) if job.event.is_withdrawn() => {
                        self.queued -= 1;
                        self.withdrawn += 1;
                    }
                    next => break next,
                }
            };
            let Some(job) = job else {
                self.tickets.remove(&key);
                continue;
            };
            queue.state = TicketState::InFlight;
            self.queued -= 1;
            self.in_flight += 1;
            return Some(job);
        }
        None
    }

    /// How many withdrawn jobs [`Schedule::take`] let go since the last call: they are
    /// finished for the engine's counts.
    pub(crate) fn take_withdrawn(&mut self) -> usize {
        std::mem::take(&mut self.withdrawn)
    }

    /// When the earliest delayed job falls due, if any is delayed.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.delayed.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Whether a job is ready now (no waiting needed).
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The in-flight job of its ticket is finished for good (delivered or given up): the
    /// ticket's next job, if any, becomes ready.
    pub(crate) fn done(&mut self, key: &Arc<str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(queue) = self.tickets.get_mut(key) {
            if queue.jobs.is_empty() {
                self.tickets.remove(key);
            } else {
                queue.state = TicketState::Ready;
                self.ready.push_back(key.clone());
            }
        }
    }

    /// The in-flight job goes back to the head of its ticket, due at `at`; the ticket's later
    /// jobs keep waiting behind it.
    pub(crate) fn retry_at(&mut self, job: Job, at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.queued += 1;
        let key = job.key().clone();
        let queue = self
            .tickets
            .entry(key.clone())
            .or_insert_with(|| TicketQueue {
                jobs: VecDeque::new(),
                state: TicketState::InFlight,
            });
        queue.jobs.push_front(job);
        queue.state = TicketState::Delayed(at);
        self.held_back += queue.jobs.len();
        self.delayed_seq += 1;
        self.delayed.push(Reverse((at, self.delayed_seq, key)));
    }

    /// Removes the oldest queued job (smallest `order`) to make room under the drop-oldest
    /// policy. Jobs in flight are not in the queues and are never taken.
    pub(crate) fn pop_oldest(&mut self) -> Option<Job> {
        let key = self
            .tickets
            .iter()
            .filter_map(|(key, q)| q.jobs.front().map(|job| (job.order, key.clone())))
            .min_by_key(|(order, _)| *order)
            .map(|(_, key)| key)?;
        let queue = self.tickets.get_mut(&key)?;
        // A delayed ticket's next job inherits the wait: the heap entry names the ticket.
        let job = queue.jobs.pop_front()?;
        if matches!(queue.state, TicketState::Delayed(_)) {
            self.held_back -= 1;
        }
        if queue.jobs.is_empty() && queue.state != TicketState::InFlight {
            self.tickets.remove(&key);
        }
        self.queued -= 1;
        Some(job)
    }

    /// Removes every queued job (not those in flight), oldest first.
    pub(crate) fn drain(&mut self) -> Vec<Job> {
        let mut jobs: Vec<Job> = Vec::with_capacity(self.queued);
        let mut keep = HashMap::new();
        for (key, mut queue) in self.tickets.drain() {
            jobs.extend(queue.jobs.drain(..));
            if queue.state == TicketState::InFlight {
                keep.insert(key, queue);
            }
        }
        self.tickets = keep;
        self.ready.clear();
        self.delayed.clear();
        self.queued = 0;
        self.held_back = 0;
        jobs.sort_by_key(|job| job.order);
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(key: &str, order: u64) -> Job {
        Job::for_test(key, order)
    }

    fn keys(jobs: &[Job]) -> Vec<(String, u64)> {
        jobs.iter()
            .map(|j| (j.key().to_string(), j.order))
            .collect()
    }

    #[test]
    fn a_tickets_jobs_wait_for_the_one_in_flight() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.push(job("A", 1));
        s.push(job("A", 2));
        s.push(job("B", 3));
        let a1 = s.take(now).unwrap();
        assert_eq!(a1.order, 1);
        let b = s.take(now).unwrap();
        assert_eq!(b.order, 3, "B goes while A1 is in flight; A2 waits");
        assert!(s.take(now).is_none());
        assert_eq!((s.queued(), s.in_flight()), (1, 2));
        s.done(a1.key());
        assert_eq!(s.take(now).unwrap().order, 2);
        s.done(b.key());
        s.done(&"A".into());
        assert!(s.is_idle());
    }

    /// A job whose event `flag` withdraws.
    fn withdrawable(key: &str, order: u64, flag: &Arc<std::sync::atomic::AtomicBool>) -> Job {
        Job::withdrawable_for_test(key, order, Some(flag.clone()))
    }

    #[test]
    fn withdrawn_jobs_are_let_go_unattempted_and_counted() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let now = Instant::now();
        let lost = Arc::new(AtomicBool::new(false));
        let mut s = Schedule::default();
        s.push(withdrawable("A", 1, &lost));
        s.push(withdrawable("A", 2, &lost));
        s.push(withdrawable("A", 3, &lost));
        s.push(job("A", 4));
        s.push(withdrawable("B", 5, &lost));
        let a1 = s.take(now).unwrap();
        assert_eq!(
            a1.order, 1,
            "taken before the withdrawal: in flight, it finishes"
        );
        lost.store(true, Ordering::Release);
        assert!(
            s.take(now).is_none(),
            "B's only job is withdrawn; A waits for A1"
        );
        assert_eq!(s.take_withdrawn(), 1);
        s.done(a1.key());
        let a4 = s.take(now).unwrap();
        assert_eq!(a4.order, 4, "A2 and A3 are let go, A4 (not withdrawn) goes");
        assert_eq!((s.take_withdrawn(), s.take_withdrawn()), (2, 0));
        assert_eq!((s.queued(), s.in_flight()), (0, 1));
        s.done(a4.key());
        assert!(s.is_idle());
    }

    #[test]
    fn a_retry_holds_its_ticket_until_due() {
        let now = Instant::now();
        let later = now + Duration::from_millis(50);
        let mut s = Schedule::default();
        s.push(job("A", 1));
        s.push(job("A", 2));
        let a1 = s.take(now).unwrap();
        s.retry_at(a1, later);
        assert!(s.take(now).is_none(), "A2 must not overtake A1");
        assert_eq!(s.next_due(), Some(later));
        let again = s.take(later).unwrap();
        assert_eq!(again.order, 1);
        s.done(again.key());
        assert_eq!(s.take(later).unwrap().order, 2);
    }

    #[test]
    fn a_job_pushed_for_later_waits_and_holds_its_ticket() {
        let now = Instant::now();
        let later = now + Duration::from_millis(50);
        let mut s = Schedule::default();
        s.push_at(job("A", 1), later);
        s.push_at(job("A", 2), now);
        s.push(job("B", 3));
        assert_eq!(s.take(now).unwrap().order, 3);
        assert!(
            s.take(now).is_none(),
            "A1 is not due, and A2 waits behind it"
        );
        assert_eq!(s.next_due(), Some(later));
        let a1 = s.take(later).unwrap();
        assert_eq!(a1.order, 1);
        s.done(a1.key());
        assert_eq!(s.take(later).unwrap().order, 2);
    }

    #[test]
    fn jobs_behind_a_retry_are_counted_as_held_back() {
        let now = Instant::now();
        let later = now + Duration::from_millis(50);
        let mut s = Schedule::default();
        s.push(job("A", 1));
        s.push(job("B", 2));
        let a1 = s.take(now).unwrap();
        s.push(job("A", 3));
        assert_eq!(s.held_back(), 0);
        s.retry_at(a1, later);
        assert_eq!(s.held_back(), 2, "A1 and A3 wait for A1's retry");
        s.push(job("A", 4));
        s.push_at(job("C", 5), later);
        assert_eq!(s.held_back(), 4);
        assert_eq!(s.pop_oldest().unwrap().order, 1, "the oldest, A1, goes");
        assert_eq!(s.held_back(), 3);
        let _b = s.take(now).unwrap();
        assert_eq!(s.held_back(), 3, "taking B changes nothing held back");
        assert!(s.take(later).is_some());
        assert_eq!(s.held_back(), 0, "due: A and C are ready again");
        s.push_at(job("D", 6), later);
        assert_eq!(s.drain().len(), 3);
        assert_eq!(s.held_back(), 0);
    }

    #[test]
    fn drop_oldest_skips_in_flight_jobs() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.push(job("A", 1));
        s.push(job("B", 2));
        s.push(job("A", 3));
        let a1 = s.take(now).unwrap();
        assert_eq!(a1.order, 1);
        assert_eq!(s.pop_oldest().unwrap().order, 2);
        assert_eq!(s.pop_oldest().unwrap().order, 3);
        assert!(s.pop_oldest().is_none());
        assert_eq!(s.queued(), 0);
        s.done(a1.key());
        assert!(s.is_idle());
    }

    #[test]
    fn drain_returns_queued_jobs_oldest_first() {
        let now = Instant::now();
        let mut s = Schedule::default();
        for (i, key) in ["A", "B", "A", "C"].iter().enumerate() {
            s.push(job(key, i as u64));
        }
        let a0 = s.take(now).unwrap();
        let b1 = s.take(now).unwrap();
        s.retry_at(b1, now + Duration::from_secs(60));
        let drained = s.drain();
        assert_eq!(
            keys(&drained),
            [("B".into(), 1), ("A".into(), 2), ("C".into(), 3)]
        );
        assert_eq!((s.queued(), s.in_flight()), (0, 1));
        s.done(a0.key());
        assert!(s.is_idle());
        assert!(s.take(now + Duration::from_secs(120)).is_none());
    }
}
