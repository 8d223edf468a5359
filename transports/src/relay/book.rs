//! What a relay has in delivery: the messages taken from the stream whose endpoints have not
//! all finished, their acknowledgement once they have (or once they are parked: see
//! `parked`), the memory they may take, and the events acknowledged lately (a lost
//! acknowledgement brings a message back, and delivering it again would put an old event
//! after newer ones of its ticket).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::Message;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;

use super::gate::Gates;
use crate::delivery::Withdrawal;

mod carrier;
mod park;
mod recent;
mod report;
mod settle;

pub(super) use carrier::{Carrier, ReadBack};
pub(super) use park::park_stuck;
use recent::Recent;
pub(super) use report::{Tracker, keep_alive, log_status};
pub(super) use settle::{Confirming, settle_messages};

/// Counters a relay reports when it stops.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) acknowledged: AtomicU64,
    pub(super) handed_back: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) duplicates: AtomicU64,
    /// Messages a consumer skipped, stored again (see `Shared::look`).
    pub(super) stored_again: AtomicU64,
    /// Messages parked (see `parked`).
    pub(super) parked: AtomicU64,
    /// Messages terminated as not deskhook's.
    pub(super) terminated: AtomicU64,
    /// Events acknowledged that no endpoint was registered for.
    pub(super) unrouted: AtomicU64,
}

/// The book of one relay; see the [module docs](self).
pub(super) struct Book {
    waiting: Mutex<HashMap<Arc<str>, Pending>>,
    recent: Mutex<Recent>,
    /// KiB of event bodies the engine may hold for the relay (its `max_queued_bytes`).
    budget: Semaphore,
    budget_kib: u32,
    /// Events the engine may hold for the relay (room in its queue): a batch message
    /// carries many.
    slots: Semaphore,
    slot_capacity: usize,
    /// Room taken past the whole of `budget` and `slots` by a message bigger than they are
    /// (see [`reserve_beyond`](Book::reserve_beyond)): given back to nobody.
    owed_kib: AtomicU64,
    owed_slots: AtomicUsize,
    /// Held by the one partition task reserving a message's room, event by event: two
    /// tasks each holding part of what they need could otherwise wait for each other.
    pub(super) reserving: tokio::sync::Mutex<()>,
    acks: mpsc::UnboundedSender<Work>,
    /// Messages in delivery, by partition.
    outstanding: Vec<AtomicUsize>,
    /// Told each time a partition's count falls.
    fell: Notify,
    /// Each ticket's events waiting for its earlier ones' messages.
    pub(super) gates: Gates,
    /// The last message acknowledged, by partition (see [`Book::confirm`]).
    last: Mutex<HashMap<u32, Arc<Carrier>>>,
    /// The endpoints whose last attempt failed or whose breaker is not closed (told by the
    /// [`Tracker`]): what they hold up may be parked.
    failing: Mutex<HashSet<Box<str>>>,
    /// Keys of parked entries whose events finished but whose removal failed: tried again.
    unremoved: Mutex<Vec<String>>,
    /// Set while a `Work::Park` waits for the acknowledging task: one at a time, so that a
    /// slow parked bucket does not pile them up ahead of acknowledgements.
    park_queued: AtomicBool,
    /// Told when an event waits only for paused endpoints (it is opened so, or the others
    /// finished): its message may be parked at once (see `park_stuck`).
    pub(super) park_soon: Notify,
    /// The endpoints paused at `park_stuck`'s last look, and whether there are any.
    pub(super) paused: Mutex<HashSet<Box<str>>>,
    pub(super) any_paused: AtomicBool,
    /// Set when a look at once found messages to park while a park was queued: the end
    /// of that park looks again.
    pub(super) park_deferred: AtomicBool,
    /// Set when the relay stops its engine: nothing more goes to it.
    stopping: AtomicBool,
    pub(super) counts: Counts,
}

/// One event in delivery.
struct Pending {
    /// The endpoints with no final outcome yet.
    remaining: Vec<Box<str>>,
    /// Whether it holds a place in the relay's room for events (a parked one does not).
    slot: bool,
    /// Its ticket.
    ticket: Arc<str>,
    /// The endpoints whose last attempt of it failed, with another scheduled.
    retrying: Vec<Box<str>>,
    /// The messages that carried it: one, or more when the server handed it out again.
    carriers: Vec<Arc<Carrier>>,
    partition: u32,
    /// The lease revision of the tenure that took it (see [`super::partition::Tenure`]).
    tenure: u64,
    since: Instant,
    kib: u32,
}

/// What the acknowledging task does, in order.
pub(super) enum Work {
    /// The carrier's events have all finished: the message is acknowledged (or its parked
    /// entries removed).
    Done(Arc<Carrier>),
    /// The carriers, held up by failing endpoints, are parked; logged at `info` unless
    /// `quietly` (those only paused endpoints hold, parked one by one as they come).
    Park {
        carriers: Vec<Arc<Carrier>>,
        quietly: bool,
    },
    /// Told once the work sent before it is done (the relay stops), but for confirmations
    /// of acknowledgements still awaited: their messages stay outstanding until they come.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// What [`Book::open`] did with an event.
pub(super) enum Opened {
    /// It is in delivery: it goes to the engine.
    Yes,
    /// Its tenure ended, or the relay stops: the partition's next owner delivers it.
    Withdrawn,
    /// It was in delivery already: its messages joined it.
    Joined,
    /// It was just acknowledged: its messages were passed.
    Acknowledged,
}

/// What the relay already knows of an event it is handed.
pub(super) enum Seen {
    /// Acknowledged already (a lost acknowledgement, or the same event published twice).
    Acknowledged,
    /// In delivery: the message joins the one under way and is acknowledged with it.
    Joined,
}

/// Locks `mutex`, whatever a thread that panicked holding it left (the relay's state stays
/// usable: each change under these locks is whole or not made).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Book {
    /// A book for `partitions` partitions whose bodies may take `budget_bytes`, with room
    /// for `events` events in delivery, remembering acknowledged events for twice
    /// `ack_wait` (see [`Recent`]); the receiver gets the messages to acknowledge (see
    /// [`acknowledge`]).
    pub(super) fn new(
        partitions: u32,
        budget_bytes: usize,
        events: usize,
        ack_wait: Duration,
    ) -> (Arc<Book>, mpsc::UnboundedReceiver<Work>) {
        let budget_kib = u32::try_from(budget_bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        let (acks, done) = mpsc::unbounded_channel();
        let book = Book {
            waiting: Mutex::default(),
            recent: Mutex::new(Recent::new(ack_wait.saturating_mul(2))),
            budget: Semaphore::new(budget_kib as usize),
            budget_kib,
            slots: Semaphore::new(events.clamp(1, Semaphore::MAX_PERMITS)),
            slot_capacity: events.clamp(1, Semaphore::MAX_PERMITS),
            owed_kib: AtomicU64::new(0),
            owed_slots: AtomicUsize::new(0),
            reserving: tokio::sync::Mutex::new(()),
            acks,
            outstanding: (0..partitions).map(|_| AtomicUsize::new(0)).collect(),
            fell: Notify::new(),
            gates: Gates::default(),
            last: Mutex::default(),
            failing: Mutex::default(),
            unremoved: Mutex::default(),
            park_queued: AtomicBool::new(false),
            park_soon: Notify::new(),
            paused: Mutex::default(),
            any_paused: AtomicBool::new(false),
            park_deferred: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            counts: Counts::default(),
        };
        (Arc::new(book), done)
    }

    /// Message `message`, carrying `events` events, taken in the tenure (partition, lease
    /// revision) that ends when `withdrawn` is set: outstanding until it is acknowledged,
    /// parked or abandoned.
    pub(super) fn carry(
        &self,
        message: Message,
        tenure: (u32, u64),
        events: usize,
        withdrawn: &Arc<Withdrawal>,
    ) -> Arc<Carrier> {
        self.outstanding[tenure.0 as usize].fetch_add(1, Ordering::AcqRel);
        let sequence = message.info().map_or(0, |i| i.stream_sequence);
        Carrier::new(Some(message), tenure, sequence, events, withdrawn)
    }

    /// The parked entry `entry` of `partition`, read back, holding `events` events of its
    /// message: not outstanding (the message was acknowledged), removed once they have
    /// finished.
    pub(super) fn carry_parked(
        &self,
        entry: ReadBack,
        partition: u32,
        events: usize,
        withdrawn: &Arc<Withdrawal>,
    ) -> Arc<Carrier> {
        let carrier = Carrier::new(None, (partition, 0), entry.sequence, events, withdrawn);
        carrier.settled.store(true, Ordering::Release);
        carrier
            .parked_remaining
            .store(entry.named, Ordering::Release);
        lock(&carrier.parked).push(entry.key);
        *lock(&carrier.entry) = Some((entry.value, entry.revision));
        carrier
    }

    /// Whether event `id` is in delivery here or was just acknowledged.
    pub(super) fn knows(&self, id: &str) -> bool {
        lock(&self.waiting).contains_key(id) || lock(&self.recent).contains(id)
    }

    /// The server never confirmed the acknowledgement of `carrier`'s message, and the events
    /// its tickets held back go on: its events, finished or (parked) finishing later, are
    /// remembered until [`RECENT`](recent::RECENT) further events are pinned after them (of
    /// this message or later unconfirmed ones), however many are acknowledged meanwhile. Should the
    /// acknowledgement have been lost, and the server hand the message out again late, the
    /// relay knows it, and does not deliver its events after their tickets' later ones.
    pub(super) fn pin(&self, carrier: &Carrier) {
        let done = {
            let done = lock(&carrier.done);
            carrier.pinned.store(true, Ordering::Release);
            done.clone()
        };
        let mut recent = lock(&self.recent);
        for id in done {
            recent.pin(id);
        }
    }

    /// Event `id` ended without going to the engine (no endpoint takes it): remembered as
    /// acknowledged events are.
    pub(super) fn remember(&self, id: &Arc<str>) {
        lock(&self.recent).insert(id.clone(), std::time::Instant::now());
    }

    /// What the relay knows of event `id`; joins `carrier` to its delivery when it is under
    /// way.
    pub(super) fn seen(&self, id: &str, carrier: &Arc<Carrier>) -> Option<Seen> {
        let mut waiting = lock(&self.waiting);
        if let Some(pending) = waiting.get_mut(id) {
            pending.carriers.push(carrier.clone());
            return Some(Seen::Joined);
        }
        lock(&self.recent)
            .contains(id)
            .then_some(Seen::Acknowledged)
    }

    /// Event `id` of `carrier` is finished: the message is acknowledged when it was the
    /// last (not once abandoned).
    pub(super) fn pass(&self, carrier: &Arc<Carrier>, id: &Arc<str>) {
        let pinned = {
            let mut done = lock(&carrier.done);
            done.push(id.clone());
            carrier.pinned.load(Ordering::Acquire)
        };
        if pinned {
            lock(&self.recent).pin(id.clone());
        }
        let last = carrier
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            == Ok(1);
        if last {
            carrier.finished.store(true, Ordering::Release);
        }
        if last
            && let Err(mpsc::error::SendError(Work::Done(unsent))) =
                self.acks.send(Work::Done(carrier.clone()))
        {
            // The relay is past its stop: the message goes back to the stream.
            self.settle(&unsent);
        }
    }

    /// The KiB of the memory budget an event of `bytes` takes (at least 1, at most all).
    pub(super) fn kib_of(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_kib)
    }

    /// The whole room: KiB of the memory budget, places in the engine's queue.
    pub(super) fn capacity(&self) -> (u32, usize) {
        (self.budget_kib, self.slot_capacity)
    }

    /// Waits until the engine has room for one more event of `kib` (the memory budget, and
    /// a place in its queue). Called by the holder of [`reserving`](Book::reserving).
    pub(super) async fn reserve(&self, kib: u32) {
        // Both are kept only once both are had: a wait cancelled in between (the partition
        // given up) gives the first back.
        let budget = self.budget.acquire_many(kib).await;
        let slot = self.slots.acquire().await;
        if let (Ok(budget), Ok(slot)) = (budget, slot) {
            budget.forget();
            slot.forget();
        }
    }

    /// Takes room for an event of `kib` of a message bigger than the whole room, without
    /// waiting (it would wait for ever: the message's events go to the engine together).
    /// What it takes is owed, and paid back from what comes back before anyone else gets
    /// it.
    pub(super) fn reserve_beyond(&self, kib: u32) {
        self.owed_kib.fetch_add(u64::from(kib), Ordering::AcqRel);
        self.owed_slots.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes room for an event of `kib` of a message bigger than the memory budget but not
    /// than the room for events: its KiB without waiting, owed as
    /// [`reserve_beyond`](Book::reserve_beyond)'s are, and a place in the queue when one
    /// is free. Called by the holder of [`reserving`](Book::reserving).
    pub(super) async fn reserve_slot_beyond_budget(&self, kib: u32) {
        if let Ok(slot) = self.slots.acquire().await {
            self.owed_kib.fetch_add(u64::from(kib), Ordering::AcqRel);
            slot.forget();
        }
    }

    /// Gives back the room [`reserve`](Book::reserve) gave an event of `kib`.
    pub(super) fn give_back(&self, kib: u32) {
        self.release(kib, true);
    }

    /// Gives back `kib` of the budget, and a place in the room for events when `slot` (a
    /// parked event gave its place back already).
    fn release(&self, kib: u32, slot: bool) {
        let owed = self
            .owed_kib
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| {
                (owed > 0).then(|| owed.saturating_sub(u64::from(kib)))
            })
            .unwrap_or(0);
        let back = u64::from(kib).saturating_sub(owed);
        self.budget
            .add_permits(usize::try_from(back).unwrap_or(usize::MAX));
        if slot {
            self.release_slot();
        }
    }

    /// Gives back a place in the room for events, paying what [`reserve_beyond`] owes first.
    ///
    /// [`reserve_beyond`]: Book::reserve_beyond
    fn release_slot(&self) {
        let owed = self
            .owed_slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| {
                owed.checked_sub(1)
            });
        if owed.is_err() {
            self.slots.add_permits(1);
        }
    }

    /// Event `id` of `ticket` from `carrier` (and the messages that `joined` it: see
    /// [`Gates::join`](super::gate::Gates::join)), taken in the tenure (partition, lease
    /// revision), goes to `endpoints`, with `kib` reserved. Not when the tenure has ended or
    /// the relay stops (checked under the same lock as [`Book::abandon`] takes, so that an
    /// event is either abandoned with the others or not opened at all), nor when the event
    /// is already in delivery or was just acknowledged (its messages join it, or are
    /// passed).
    pub(super) fn open(
        &self,
        (id, ticket): (Arc<str>, Arc<str>),
        endpoints: Vec<Box<str>>,
        (carrier, joined): (&Arc<Carrier>, Vec<Arc<Carrier>>),
        (partition, tenure): (u32, u64),
        kib: u32,
    ) -> Opened {
        let mut waiting = lock(&self.waiting);
        if carrier.withdrawn.load(Ordering::Acquire) || self.stopping.load(Ordering::Acquire) {
            for other in &joined {
                self.leave(other);
            }
            return Opened::Withdrawn;
        }
        let carriers: Vec<Arc<Carrier>> = std::iter::once(carrier.clone()).chain(joined).collect();
        if let Some(pending) = waiting.get_mut(&id) {
            pending.carriers.extend(carriers);
            return Opened::Joined;
        }
        if lock(&self.recent).contains(&id) {
            drop(waiting);
            for carrier in &carriers {
                self.pass(carrier, &id);
            }
            return Opened::Acknowledged;
        }
        let park_soon = self.only_paused(&endpoints);
        waiting.insert(
            id,
            Pending {
                ticket,
                remaining: endpoints,
                slot: true,
                retrying: Vec::new(),
                carriers,
                partition,
                tenure,
                since: Instant::now(),
                kib,
            },
        );
        if park_soon {
            self.park_soon.notify_one();
        }
        Opened::Yes
    }

    /// Whether `endpoints` are all paused (as `park_stuck` last saw them): an atomic load
    /// while none is.
    fn only_paused(&self, endpoints: &[Box<str>]) -> bool {
        self.any_paused.load(Ordering::Acquire) && {
            let paused = lock(&self.paused);
            endpoints.iter().all(|e| paused.contains(e))
        }
    }

    /// Events `ids`, parked, no longer hold a place in the room for events: the relay may
    /// take more from the stream while they wait for their endpoints.
    pub(super) fn unslot(&self, ids: &[Arc<str>]) {
        let mut waiting = lock(&self.waiting);
        for id in ids {
            if let Some(pending) = waiting.get_mut(id)
                && std::mem::take(&mut pending.slot)
            {
                self.release_slot();
            }
        }
    }

    /// Whether event `id` still waits for `endpoint`.
    pub(super) fn waits_for(&self, id: &str, endpoint: &str) -> bool {
        lock(&self.waiting)
            .get(id)
            .is_some_and(|p| p.remaining.iter().any(|e| &**e == endpoint))
    }

    /// Endpoint `endpoint` is finished with event `id` (delivered or dead-lettered); the
    /// event is acknowledged when it was the last. Idempotent: an event a removal
    /// dead-letters while an attempt delivers it is reported by both.
    pub(super) fn finished(&self, id: &str, endpoint: &str) {
        let done = {
            let mut waiting = lock(&self.waiting);
            let Some(pending) = waiting.get_mut(id) else {
                return;
            };
            pending.remaining.retain(|e| &**e != endpoint);
            pending.retrying.retain(|e| &**e != endpoint);
            if !pending.remaining.is_empty() {
                if self.only_paused(&pending.remaining) {
                    self.park_soon.notify_one();
                }
                return;
            }
            let Some((id, pending)) = waiting.remove_entry(id) else {
                return;
            };
            lock(&self.recent).insert(id.clone(), std::time::Instant::now());
            (id, pending)
        };
        let (id, done) = done;
        self.release(done.kib, done.slot);
        self.counts.acknowledged.fetch_add(1, Ordering::Relaxed);
        for carrier in &done.carriers {
            self.pass(carrier, &id);
        }
    }

    /// The relay stops its engine: no event goes to it any more (those released from a gate
    /// from now on are left for the partitions' next owners).
    pub(super) fn stop(&self) {
        let _waiting = lock(&self.waiting);
        self.stopping.store(true, Ordering::Release);
    }

    /// Waits up to `wait` until the acknowledgements and removals of parked entries asked
    /// for so far are done (removals that failed before are tried again).
    pub(super) async fn flush(&self, wait: Duration) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.acks.send(Work::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(wait, flushed).await;
        }
    }

    /// Messages in delivery for `partition`.
    pub(super) fn outstanding(&self, partition: u32) -> usize {
        self.outstanding[partition as usize].load(Ordering::Acquire)
    }

    /// The ticket of each event that tenure (partition, lease revision) has in delivery,
    /// with the endpoints it still waits for.
    pub(super) fn in_delivery(&self, tenure: (u32, u64)) -> Vec<(Arc<str>, Vec<Box<str>>)> {
        lock(&self.waiting)
            .values()
            .filter(|p| (p.partition, p.tenure) == tenure)
            .map(|p| (p.ticket.clone(), p.remaining.clone()))
            .collect()
    }

    /// Messages in delivery for every partition.
    pub(super) fn total_outstanding(&self) -> usize {
        self.outstanding
            .iter()
            .map(|n| n.load(Ordering::Acquire))
            .sum()
    }

    /// Resolves once `holds` is false (checked each time a partition's count falls).
    pub(super) async fn until(&self, holds: impl Fn(&Book) -> bool) {
        loop {
            let fell = self.fell.notified();
            if !holds(self) {
                return;
            }
            fell.await;
        }
    }

    fn fall(&self, partition: u32) {
        self.outstanding[partition as usize].fetch_sub(1, Ordering::AcqRel);
        self.fell.notify_waiters();
    }

    /// `carrier` is no longer outstanding (acknowledged, parked or left), once.
    fn settle(&self, carrier: &Carrier) {
        if !carrier.settled.swap(true, Ordering::AcqRel) {
            self.fall(carrier.partition);
        }
    }

    /// Forgets what one tenure (partition, lease revision) has in delivery, or all when
    /// `None` (the relay stops): its messages are not acknowledged, so the partition's next
    /// owner delivers them again. Returns how many there were.
    pub(super) fn abandon(&self, tenure: Option<(u32, u64)>) -> usize {
        let gone: Vec<Pending> = {
            let mut waiting = lock(&self.waiting);
            let ids: Vec<Arc<str>> = waiting
                .iter()
                .filter(|(_, p)| tenure.is_none_or(|t| (p.partition, p.tenure) == t))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| waiting.remove(id)).collect()
        };
        let held = self.gates.abandon(tenure.map(|(partition, _)| partition));
        let carriers = gone.iter().flat_map(|p| p.carriers.iter()).chain(
            held.iter()
                .flat_map(|h| std::iter::once(&h.carrier).chain(&h.joined)),
        );
        for carrier in carriers {
            self.leave(carrier);
        }
        for pending in &gone {
            self.release(pending.kib, pending.slot);
        }
        for handoff in &held {
            self.give_back(handoff.kib);
        }
        let count = gone.len() + held.len();
        self.counts
            .handed_back
            .fetch_add(count as u64, Ordering::Relaxed);
        count
    }

    /// `carrier` will not be acknowledged, nor its parked entries removed (its tenure
    /// ended): no longer outstanding, once.
    fn leave(&self, carrier: &Carrier) {
        if carrier.left.swap(0, Ordering::AcqRel) > 0 {
            self.settle(carrier);
        }
    }

    /// An event of `carrier` that waited is not delivered (its tenure ended): its room is
    /// given back, and the message is left for the partition's next owner.
    pub(super) fn let_go(&self, carrier: &Carrier, kib: u32) {
        self.give_back(kib);
        self.leave(carrier);
        self.counts.handed_back.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until the server has processed the acknowledgements of `partition` sent so
    /// far (up to `wait`), before its consumer goes: the last one is sent again, waiting
    /// for the answer, and the server answers a consumer's acknowledgements in order.
    pub(super) async fn confirm(&self, partition: u32, wait: Duration) {
        let last = lock(&self.last).remove(&partition);
        if let Some(message) = last.as_ref().and_then(|c| c.message.as_ref())
            && let Err(e) = settle::confirm_ack(message, wait).await
        {
            log::debug!(
                target: deskhook::LOG_TARGET,
                "relay: partition {partition}: the last acknowledgement is not confirmed: {e}"
            );
        }
    }

    /// The messages in delivery for longer than `age`, to tell the server they are still
    /// being worked on.
    pub(super) fn overdue(&self, age: Duration) -> Vec<Message> {
        let now = Instant::now();
        let mut carriers: Vec<Arc<Carrier>> = Vec::new();
        // A message's carrier comes once per event it holds: a set, not a scan of those
        // found (tens of thousands of messages in delivery under `--max-pending`).
        let mut seen = std::collections::HashSet::new();
        let mut add = |carrier: &Arc<Carrier>| {
            if !carrier.is_settled() && seen.insert(Arc::as_ptr(carrier)) {
                carriers.push(carrier.clone());
            }
        };
        for pending in lock(&self.waiting).values() {
            if now.duration_since(pending.since) >= age {
                pending.carriers.iter().for_each(&mut add);
            }
        }
        // Those whose events wait in gates too: handed out again, they would come back
        // behind their tickets' later events' messages.
        for carrier in self.gates.carriers() {
            if now.duration_since(carrier.taken) >= age {
                add(&carrier);
            }
        }
        carriers
            .into_iter()
            .filter_map(|c| c.message.clone())
            .collect()
    }

    /// An attempt of event `id` at `endpoint` failed and another is scheduled.
    fn retrying(&self, id: &str, endpoint: &str) {
        if let Some(pending) = lock(&self.waiting).get_mut(id)
            && !pending.retrying.iter().any(|e| &**e == endpoint)
        {
            pending.retrying.push(endpoint.into());
        }
    }
}

#[cfg(test)]
mod tests;
