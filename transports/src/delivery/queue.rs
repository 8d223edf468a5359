//! The per-endpoint schedule of jobs: one FIFO per ticket, so that a ticket's events go out
//! in emit order while other tickets proceed in parallel.
//!
//! It holds no lock and does no I/O; the engine keeps it behind the endpoint's mutex and
//! decides how workers wait.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::Job;

/// How many tickets an endpoint remembers the last sequence number of. Past it, the numbers
/// of tickets with nothing pending are forgotten (their next event starts again at 1, as
/// after a restart), so that the memory of a long-running helpdesk does not grow with every
/// ticket it ever had.
pub(crate) const SEQUENCE_MEMORY: usize = 100_000;

/// A ticket's place in [`Schedule::slots`].
type Slot = usize;

/// The slot of a ticket that never had one.
const NO_SLOT: Slot = Slot::MAX;

/// A free slot keeps its queue's buffer for the next ticket, up to this many jobs.
const KEPT_CAPACITY: usize = 16;

/// Slots kept when the schedule empties; more are let go.
const KEPT_SLOTS: usize = 1024;

/// What the schedule knows of a ticket for as long as it remembers it.
#[derive(Debug)]
struct Known {
    /// Its last `X-Deskhook-Sequence`.
    seq: u64,
    /// The slot it was last given: its own while that slot holds its key (see
    /// [`Schedule::holds`]), since a slot is let go without coming back here.
    slot: Slot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TicketState {
    /// The slot holds no ticket (it is in `free`).
    Free,
    /// Its head job is in `ready`.
    Ready,
    /// Its head job waits in `delayed`, under this tie-breaker (an entry of `delayed` with
    /// another one is stale).
    Delayed(u64),
    /// Its head job is being attempted; the rest wait for the outcome.
    InFlight,
}

/// The jobs of a ticket that has some queued or in flight.
#[derive(Debug)]
struct TicketQueue {
    key: Option<Arc<str>>,
    jobs: VecDeque<Job>,
    state: TicketState,
}

/// A retry [`Schedule::put_back`] keeps from every take until [`Schedule::release`]: the
/// engine logs the attempt that failed first, so that a retry due at once cannot be
/// attempted, and logged, before it.
#[derive(Debug)]
#[must_use = "a held retry is never attempted until it is released"]
pub(crate) struct HeldRetry {
    at: Instant,
    /// Its number in `delayed` (see [`TicketState::Delayed`]).
    n: u64,
    slot: Slot,
}

/// Jobs of one endpoint, ordered per ticket key, and the tickets' sequence numbers.
///
/// A ticket with work has a slot. The run queue (`ready`) and the retries (`delayed`) name
/// slots, and a job being attempted carries its slot, so a ticket is looked up by its key
/// once per job, when the job is queued: with thousands of endpoints each look-up is memory
/// out of cache (about 5% of the async delivery thread's time to 1,000 endpoints when the
/// schedule looked tickets up by key to take and to finish a job).
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Every ticket remembered: its sequence, and the slot it was last given.
    index: HashMap<Arc<str>, Known, foldhash::fast::RandomState>,
    slots: Vec<TicketQueue>,
    /// Slots without a ticket, for the next ticket that gets work.
    free: Vec<Slot>,
    /// Slots whose head job is due. An entry whose slot is no longer `Ready` is skipped.
    ready: VecDeque<Slot>,
    delayed: BinaryHeap<Reverse<(Instant, u64, Slot)>>,
    /// Tie-breaker for `delayed`, so that equal instants keep insertion order.
    delayed_seq: u64,
    /// `delayed_seq` at the last [`Schedule::hurry`]: a [`HeldRetry`] numbered up to it is
    /// due at its release.
    hurried: u64,
    /// Retries put back and not released yet.
    holding: usize,
    /// Under drop-oldest ([`Schedule::track_oldest`]): the order and slot of each job that
    /// became the first of its ticket's queue, smallest order first, so that the oldest
    /// queued job is found without a look at every ticket. An entry whose slot's first job
    /// is another is stale, and skipped.
    heads: Option<BinaryHeap<Reverse<(u64, Slot)>>>,
    /// The size of `index` at which idle tickets are forgotten next.
    memory_limit: usize,
    queued: usize,
    in_flight: usize,
    /// Jobs of tickets whose first job waits for a retry (it and those behind it).
    held_back: usize,
    /// Withdrawn jobs [`Schedule::take`] let go since [`Schedule::take_withdrawn`].
    withdrawn: usize,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            ready: VecDeque::new(),
            delayed: BinaryHeap::new(),
            delayed_seq: 0,
            hurried: 0,
            holding: 0,
            heads: None,
            memory_limit: SEQUENCE_MEMORY,
            queued: 0,
            in_flight: 0,
            held_back: 0,
            withdrawn: 0,
        }
    }
}

impl Schedule {
    /// Keeps the tickets' first jobs in order, for [`Schedule::pop_oldest`] (the
    /// drop-oldest policy): a heap push each time a ticket's first job changes, where
    /// otherwise each pop looks at every ticket.
    pub(crate) fn track_oldest(&mut self) {
        if self.heads.is_none() {
            self.heads = Some(BinaryHeap::new());
            self.rebuild_heads();
        }
    }

    /// Notes the first job of `slot`'s queue, if it has one, when the oldest are tracked.
    fn note_head(&mut self, slot: Slot) {
        let Some(heads) = &mut self.heads else {
            return;
        };
        let Some(first) = self.slots.get(slot).and_then(|q| q.jobs.front()) else {
            return;
        };
        heads.push(Reverse((first.order, slot)));
        // Stale entries go once they outnumber the tickets: a rebuild after as many pushes.
        if heads.len() > 2 * self.slots.len() + 64 {
            self.rebuild_heads();
        }
    }

    /// The heap of first jobs made anew from the slots.
    fn rebuild_heads(&mut self) {
        if let Some(heads) = &mut self.heads {
            heads.clear();
            heads.extend(
                self.slots
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, q)| q.jobs.front().map(|j| Reverse((j.order, slot)))),
            );
        }
    }

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

    /// Whether a retry [`put back`](Schedule::put_back) waits for its release: due then,
    /// perhaps at once, though no instant says so yet.
    pub(crate) fn holds_retries(&self) -> bool {
        self.holding > 0
    }

    /// Whether nothing is queued or in flight.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.queued == 0 && self.in_flight == 0
    }

    /// Whether `slot` holds the work of ticket `key`.
    fn holds(slots: &[TicketQueue], slot: Slot, key: &Arc<str>) -> bool {
        slots
            .get(slot)
            .and_then(|queue| queue.key.as_ref())
            .is_some_and(|held| Arc::ptr_eq(held, key) || **held == **key)
    }

    /// The slot of a ticket with work.
    fn slot_of(&self, key: &Arc<str>) -> Option<Slot> {
        let slot = self.index.get(&**key)?.slot;
        Self::holds(&self.slots, slot, key).then_some(slot)
    }

    /// How many jobs of the ticket wait (not counting one in flight).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn ticket_len(&self, key: &Arc<str>) -> usize {
        self.slot_of(key)
            .map_or(0, |slot| self.slots[slot].jobs.len())
    }

    /// Whether a job of ticket `key` is being attempted.
    #[cfg(feature = "relay")]
    pub(crate) fn attempting(&self, key: &str) -> bool {
        self.index
            .get(key)
            .and_then(|known| self.slots.get(known.slot))
            .is_some_and(|queue| {
                queue.key.as_deref() == Some(key) && queue.state == TicketState::InFlight
            })
    }

    /// Whether the ticket has jobs queued or in flight.
    #[cfg(test)]
    pub(crate) fn has_ticket(&self, key: &str) -> bool {
        self.has_work(&key.into())
    }

    /// Whether ticket `key` has jobs queued or in flight.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn has_work(&self, key: &Arc<str>) -> bool {
        self.slot_of(key).is_some()
    }

    /// The ticket's last `X-Deskhook-Sequence` (0 for a ticket the schedule does not
    /// remember).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn last_seq(&self, key: &str) -> u64 {
        self.index.get(key).map_or(0, |known| known.seq)
    }

    /// Numbers ticket `key`'s next jobs on from `seq` if the schedule forgot its number
    /// (see [`SEQUENCE_MEMORY`]): jobs read back from a spool keep the numbers they had.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn number_from(&mut self, key: &Arc<str>, seq: u64) {
        self.index
            .entry(key.clone())
            .or_insert(Known { seq, slot: NO_SLOT });
    }

    /// Appends a newly accepted job behind the others of its ticket, numbering it
    /// (`X-Deskhook-Sequence`: the ticket's last number plus one).
    pub(crate) fn push(&mut self, job: Job) {
        self.enqueue(job, None);
    }

    /// [`Schedule::push`] for a job that is not due before `at` (a retry read back from the
    /// spool). Only a ticket's first job can be waiting for a retry, so behind others it
    /// just queues.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn push_at(&mut self, job: Job, at: Instant) {
        self.enqueue(job, Some(at));
    }

    fn enqueue(&mut self, mut job: Job, at: Option<Instant>) {
        if self.index.len() >= self.memory_limit && !self.index.contains_key(&**job.key()) {
            self.forget_idle();
        }
        self.queued += 1;
        let known = self.index.entry(job.key().clone()).or_insert(Known {
            seq: 0,
            slot: NO_SLOT,
        });
        known.seq += 1;
        job.seq = known.seq;
        if Self::holds(&self.slots, known.slot, job.key()) {
            let slot = known.slot;
            let queue = &mut self.slots[slot];
            if matches!(queue.state, TicketState::Delayed(_)) {
                self.held_back += 1;
            }
            queue.jobs.push_back(job);
            if queue.jobs.len() == 1 {
                self.note_head(slot);
            }
            return;
        }
        // The ticket had no work: it takes a slot, due now or at `at`.
        let state = match at {
            None => TicketState::Ready,
            Some(_) => {
                self.delayed_seq += 1;
                TicketState::Delayed(self.delayed_seq)
            }
        };
        let slot = Self::occupy(&mut self.slots, &mut self.free, job.key().clone(), state);
        known.slot = slot;
        self.slots[slot].jobs.push_back(job);
        self.note_head(slot);
        match at {
            None => self.ready.push_back(slot),
            Some(at) => {
                self.held_back += 1;
                self.delayed.push(Reverse((at, self.delayed_seq, slot)));
            }
        }
    }

    /// Forgets the sequence numbers of tickets with no work. If most tickets have work, the
    /// next pass waits until the index has doubled: the cost stays linear in the tickets seen.
    fn forget_idle(&mut self) {
        let slots = &self.slots;
        self.index
            .retain(|key, known| Self::holds(slots, known.slot, key));
        self.memory_limit = SEQUENCE_MEMORY.max(self.index.len() * 2);
    }

    /// Makes the jobs due at `now` ready; whether one is.
    pub(crate) fn promote(&mut self, now: Instant) -> bool {
        while let Some(Reverse((at, _, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, n, slot))) = self.delayed.pop() else {
                break;
            };
            self.make_ready(slot, n);
        }
        !self.ready.is_empty()
    }

    /// Makes every ticket waiting for a retry due now (an operator resumed the endpoint);
    /// how many were.
    pub(crate) fn hurry(&mut self) -> usize {
        self.hurried = self.delayed_seq;
        let mut hurried = 0;
        while let Some(Reverse((_, n, slot))) = self.delayed.pop() {
            hurried += usize::from(self.make_ready(slot, n));
        }
        hurried
    }

    /// The ticket of `slot`, delayed as the `n`-th, is due: ready, if it still waits so.
    fn make_ready(&mut self, slot: Slot, n: u64) -> bool {
        let Some(queue) = self.slots.get_mut(slot) else {
            return false;
        };
        if queue.state != TicketState::Delayed(n) {
            return false;
        }
        queue.state = TicketState::Ready;
        self.held_back -= queue.jobs.len();
        self.ready.push_back(slot);
        true
    }

    /// Takes the next job that is due at `now`, marking its ticket in flight; the job
    /// carries its ticket's slot to [`Schedule::done`] or [`Schedule::put_back`]. Withdrawn
    /// jobs on the way are let go (see [`Schedule::take_withdrawn`]).
    pub(crate) fn take(&mut self, now: Instant) -> Option<Job> {
        self.promote(now);
        while let Some(slot) = self.ready.pop_front() {
            let Some(queue) = self.slots.get_mut(slot) else {
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
            let Some(mut job) = job else {
                self.vacate(slot);
                continue;
            };
            queue.state = TicketState::InFlight;
            self.queued -= 1;
            self.in_flight += 1;
            self.note_head(slot);
            // A slot past `u32` (four billion tickets with work) is found by key instead.
            job.slot = u32::try_from(slot).unwrap_or(u32::MAX);
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

    /// The slot of the ticket of `job`, taken by [`Schedule::take`]: the one it carries,
    /// else (a job the schedule did not hand out) found by key.
    fn slot_of_taken(&self, job: &Job) -> Option<Slot> {
        let carried = usize::try_from(job.slot).unwrap_or(NO_SLOT);
        if Self::holds(&self.slots, carried, job.key()) {
            return Some(carried);
        }
        self.slot_of(job.key())
    }

    /// The in-flight `job` is finished for good (delivered or given up): its ticket's next
    /// job, if any, becomes ready.
    pub(crate) fn done(&mut self, job: &Job) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(slot) = self.slot_of_taken(job) else {
            return;
        };
        let queue = &mut self.slots[slot];
        if queue.jobs.is_empty() {
            self.vacate(slot);
        } else {
            queue.state = TicketState::Ready;
            self.ready.push_back(slot);
        }
    }

    /// The in-flight job goes back to the head of its ticket, due at `at`; the ticket's later
    /// jobs keep waiting behind it.
    #[cfg(test)]
    pub(crate) fn retry_at(&mut self, job: Job, at: Instant) {
        let held = self.put_back(job, at);
        self.release(held);
    }

    /// The in-flight job goes back to the head of its ticket, to be due at `at` once
    /// [`Schedule::release`]d: until then it is queued (a drain or a drop takes it) but no
    /// take hands it out, even if `at` has passed. The ticket's later jobs keep waiting
    /// behind it.
    pub(crate) fn put_back(&mut self, job: Job, at: Instant) -> HeldRetry {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.queued += 1;
        self.delayed_seq += 1;
        let n = self.delayed_seq;
        let slot = match self.slot_of_taken(&job) {
            Some(slot) => slot,
            // Not a job the schedule handed out: its ticket gets a slot again.
            None => {
                let slot = Self::occupy(
                    &mut self.slots,
                    &mut self.free,
                    job.key().clone(),
                    TicketState::InFlight,
                );
                let known = self
                    .index
                    .entry(job.key().clone())
                    .or_insert(Known { seq: job.seq, slot });
                known.slot = slot;
                slot
            }
        };
        let queue = &mut self.slots[slot];
        queue.jobs.push_front(job);
        queue.state = TicketState::Delayed(n);
        self.held_back += queue.jobs.len();
        self.holding += 1;
        self.note_head(slot);
        HeldRetry { at, n, slot }
    }

    /// Makes a job [`Schedule::put_back`] due at its instant, or now if the schedule was
    /// hurried since. Returns the instant it waits for, or `None` if it does not wait (it
    /// is due now, or no longer waits for this retry: drained, dropped or let go).
    pub(crate) fn release(&mut self, held: HeldRetry) -> Option<Instant> {
        let HeldRetry { at, n, slot } = held;
        self.holding -= 1;
        if self.slots.get(slot)?.state != TicketState::Delayed(n) {
            return None;
        }
        if n <= self.hurried {
            self.make_ready(slot, n);
            return None;
        }
        self.delayed.push(Reverse((at, n, slot)));
        Some(at)
    }

    /// Removes the oldest queued job (smallest `order`) to make room under the drop-oldest
    /// policy. Jobs in flight are not in the queues and are never taken. Its cost: with
    /// [`track_oldest`](Schedule::track_oldest), a few heap pops; without, a look at every
    /// ticket with work.
    pub(crate) fn pop_oldest(&mut self) -> Option<Job> {
        let slot = match &mut self.heads {
            Some(heads) => loop {
                let Reverse((order, slot)) = heads.pop()?;
                let first = self.slots.get(slot).and_then(|q| q.jobs.front());
                if first.is_some_and(|job| job.order == order) {
                    break slot;
                }
            },
            None => self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(slot, q)| q.jobs.front().map(|job| (job.order, slot)))
                .min_by_key(|(order, _)| *order)
                .map(|(_, slot)| slot)?,
        };
        let queue = &mut self.slots[slot];
        let job = queue.jobs.pop_front()?;
        let delayed = matches!(queue.state, TicketState::Delayed(_));
        if delayed {
            self.held_back -= 1;
        }
        if queue.jobs.is_empty() && queue.state != TicketState::InFlight {
            self.vacate(slot);
        } else if delayed {
            // The retry its ticket waited for goes with it (the job dropped is the one that
            // failed): the next job, which never did, is due now, as with a withdrawn head.
            // The heap's entry for the wait is stale once the state changes.
            queue.state = TicketState::Ready;
            self.held_back -= queue.jobs.len();
            self.ready.push_back(slot);
        }
        self.queued -= 1;
        self.note_head(slot);
        Some(job)
    }

    /// Lets go of every queued job whose event was withdrawn (a relay's tenure ended) at
    /// once, rather than when its ticket comes up: one waiting for a retry hours away would
    /// keep its memory and its place in the queue until then. A ticket whose first job
    /// waited for a retry and goes, while later jobs of it stay, has those due now. Returns
    /// how many went.
    #[cfg(any(test, feature = "relay"))]
    pub(crate) fn drop_withdrawn(&mut self) -> usize {
        let mut gone = 0;
        let mut slot = 0;
        // `vacate` may shrink `slots` once the last ticket goes.
        while let Some(queue) = self.slots.get_mut(slot) {
            let head_withdrawn = queue.jobs.front().is_some_and(|j| j.event.is_withdrawn());
            let before = queue.jobs.len();
            queue.jobs.retain(|job| !job.event.is_withdrawn());
            let removed = before - queue.jobs.len();
            if removed > 0 {
                gone += removed;
                self.queued -= removed;
                match queue.state {
                    TicketState::Delayed(_) => {
                        self.held_back -= removed;
                        if queue.jobs.is_empty() {
                            self.vacate(slot);
                        } else if head_withdrawn {
                            // The retry it waited for is gone with its job.
                            queue.state = TicketState::Ready;
                            self.held_back -= queue.jobs.len();
                            self.ready.push_back(slot);
                        }
                    }
                    TicketState::Ready if queue.jobs.is_empty() => self.vacate(slot),
                    // A job in flight finishes (and frees the slot if nothing is left).
                    TicketState::Ready | TicketState::InFlight | TicketState::Free => {}
                }
                if head_withdrawn {
                    self.note_head(slot);
                }
            }
            slot += 1;
        }
        gone
    }

    /// Takes out ticket `key`'s queued jobs, oldest first, to wait elsewhere (a spool's rows)
    /// and be pushed again later: none when a job of the ticket is in flight, or when one
    /// of them has no row to be read back from. Its sequence goes back to before them, so
    /// that pushed again in the same order they get the numbers they had (a retry is sent
    /// with the number of its first attempt).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn unload(&mut self, key: &Arc<str>) -> Vec<Job> {
        match self.slot_of(key) {
            Some(slot) => self.unload_slot(slot),
            None => Vec::new(),
        }
    }

    /// [`unload`](Schedule::unload) of every ticket that has nothing in flight: its key, its
    /// jobs (oldest first), and when its first job is due if it waits for a retry.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn unload_all(&mut self) -> Vec<(Arc<str>, Vec<Job>, Option<Instant>)> {
        // The instants of the retries waited for (an entry whose slot no longer waits for
        // it is stale; a retry held until its release has none yet).
        let due: HashMap<Slot, Instant> = self
            .delayed
            .iter()
            .filter(|Reverse((_, n, slot))| {
                self.slots
                    .get(*slot)
                    .is_some_and(|q| q.state == TicketState::Delayed(*n))
            })
            .map(|Reverse((at, _, slot))| (*slot, *at))
            .collect();
        let mut unloaded = Vec::new();
        let mut slot = 0;
        // `vacate` may shrink `slots` once the last ticket goes.
        while slot < self.slots.len() && self.queued > 0 {
            let key = self.slots[slot].key.clone();
            let jobs = self.unload_slot(slot);
            if let (Some(key), false) = (key, jobs.is_empty()) {
                unloaded.push((key, jobs, due.get(&slot).copied()));
            }
            slot += 1;
        }
        unloaded
    }

    fn unload_slot(&mut self, slot: Slot) -> Vec<Job> {
        let queue = &mut self.slots[slot];
        let delayed = match queue.state {
            TicketState::Ready => false,
            TicketState::Delayed(_) => true,
            TicketState::InFlight | TicketState::Free => return Vec::new(),
        };
        if queue.jobs.iter().any(|job| job.row.is_none()) {
            return Vec::new();
        }
        let jobs: Vec<Job> = queue.jobs.drain(..).collect();
        if delayed {
            self.held_back -= jobs.len();
        }
        self.queued -= jobs.len();
        if let (Some(first), Some(key)) = (jobs.first(), &queue.key)
            && let Some(known) = self.index.get_mut(&**key)
        {
            known.seq = first.seq.saturating_sub(1);
        }
        self.vacate(slot);
        jobs
    }

    /// Removes every queued job (not those in flight), oldest first.
    pub(crate) fn drain(&mut self) -> Vec<Job> {
        let mut jobs: Vec<Job> = Vec::with_capacity(self.queued);
        let mut slot = 0;
        // `vacate` may shrink `slots` once the last ticket goes.
        while let Some(queue) = self.slots.get_mut(slot) {
            jobs.extend(queue.jobs.drain(..));
            if !matches!(queue.state, TicketState::Free | TicketState::InFlight) {
                self.vacate(slot);
            }
            slot += 1;
        }
        self.ready.clear();
        self.delayed.clear();
        self.rebuild_heads();
        self.queued = 0;
        self.held_back = 0;
        jobs.sort_by_key(|job| job.order);
        jobs
    }

    /// A slot for a ticket that gets work: a free one (with its buffer) or a new one.
    fn occupy(
        slots: &mut Vec<TicketQueue>,
        free: &mut Vec<Slot>,
        key: Arc<str>,
        state: TicketState,
    ) -> Slot {
        // Most tickets have one job at a time: room for one, not the four a first push
        // would make (a job is 96 bytes; with 1,000 endpoints down, 60 MB more).
        if let Some(slot) = free.pop() {
            let queue = &mut slots[slot];
            queue.key = Some(key);
            queue.state = state;
            queue.jobs.reserve_exact(1);
            return slot;
        }
        slots.push(TicketQueue {
            key: Some(key),
            jobs: VecDeque::with_capacity(1),
            state,
        });
        slots.len() - 1
    }

    /// Lets go of an empty ticket's slot, keeping a small buffer for the next ticket. The
    /// index keeps naming the slot; [`Schedule::holds`] tells that it is no longer the
    /// ticket's. Once nothing is queued or in flight, the slots past [`KEPT_SLOTS`] go too: a
    /// burst of many tickets does not keep its memory.
    fn vacate(&mut self, slot: Slot) {
        let Some(queue) = self.slots.get_mut(slot) else {
            return;
        };
        if queue.state == TicketState::Free {
            return;
        }
        queue.key = None;
        queue.state = TicketState::Free;
        if queue.jobs.capacity() > KEPT_CAPACITY {
            queue.jobs = VecDeque::new();
        }
        self.free.push(slot);
        if self.slots.len() > KEPT_SLOTS && self.free.len() == self.slots.len() {
            self.slots.truncate(KEPT_SLOTS);
            self.slots.shrink_to_fit();
            self.free = (0..KEPT_SLOTS).collect();
            self.ready.clear();
            self.delayed.clear();
            self.rebuild_heads();
        }
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
