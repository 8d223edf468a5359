//! What a relay has in delivery: the messages taken from the stream whose endpoints have not
//! all finished, their acknowledgement once they have, the memory they may take, and the
//! events acknowledged lately (a lost acknowledgement brings a message back, and delivering
//! it again would put an old event after newer ones of its ticket).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::Message;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;

use crate::delivery::{AttemptOutcome, AttemptRecord, Observer};

/// How many acknowledged events a relay remembers.
const RECENT: usize = 65_536;

/// Counters a relay reports when it stops.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) acknowledged: AtomicU64,
    pub(super) handed_back: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) duplicates: AtomicU64,
    /// Messages a consumer skipped, stored again (see `Shared::look`).
    pub(super) stored_again: AtomicU64,
}

/// The book of one relay; see the [module docs](self).
pub(super) struct Book {
    waiting: Mutex<HashMap<Arc<str>, Pending>>,
    recent: Mutex<Recent>,
    /// KiB of event bodies the engine may hold for the relay (its `max_queued_bytes`).
    budget: Semaphore,
    budget_kib: u32,
    acks: mpsc::UnboundedSender<Done>,
    /// Messages in delivery, by partition.
    outstanding: Vec<AtomicUsize>,
    /// Told each time a partition's count falls.
    fell: Notify,
    /// The last message acknowledged, by partition (see [`Book::confirm`]).
    last: Mutex<HashMap<u32, Message>>,
    pub(super) counts: Counts,
}

/// One event in delivery.
struct Pending {
    /// The endpoints with no final outcome yet.
    remaining: Vec<Box<str>>,
    /// The messages that carried it: one, or more when the server handed it out again.
    messages: Vec<Message>,
    partition: u32,
    /// The lease revision of the tenure that took it (see [`super::partition::Tenure`]).
    tenure: u64,
    since: Instant,
    kib: u32,
}

/// An event every endpoint has finished with: its messages are acknowledged.
pub(super) struct Done {
    messages: Vec<Message>,
    partition: u32,
}

/// What the relay already knows of an event it is handed.
pub(super) enum Seen {
    /// Acknowledged already (a lost acknowledgement, or the same event published twice).
    Acknowledged,
    /// In delivery: the message joins the one under way and is acknowledged with it.
    Joined,
}

/// The ids of the last [`RECENT`] events acknowledged.
#[derive(Default)]
struct Recent {
    order: VecDeque<Arc<str>>,
    ids: HashSet<Arc<str>>,
}

impl Recent {
    fn insert(&mut self, id: Arc<str>) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > RECENT
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Book {
    /// A book for `partitions` partitions whose bodies may take `budget_bytes`; the receiver
    /// gets the events to acknowledge (see [`acknowledge`]).
    pub(super) fn new(
        partitions: u32,
        budget_bytes: usize,
    ) -> (Arc<Book>, mpsc::UnboundedReceiver<Done>) {
        let budget_kib = u32::try_from(budget_bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        let (acks, done) = mpsc::unbounded_channel();
        let book = Book {
            waiting: Mutex::default(),
            recent: Mutex::default(),
            budget: Semaphore::new(budget_kib as usize),
            budget_kib,
            acks,
            outstanding: (0..partitions).map(|_| AtomicUsize::new(0)).collect(),
            fell: Notify::new(),
            last: Mutex::default(),
            counts: Counts::default(),
        };
        (Arc::new(book), done)
    }

    /// What the relay knows of event `id`; joins `message` to its delivery when it is under
    /// way.
    pub(super) fn seen(&self, id: &str, message: &Message) -> Option<Seen> {
        let mut waiting = lock(&self.waiting);
        if let Some(pending) = waiting.get_mut(id) {
            pending.messages.push(message.clone());
            return Some(Seen::Joined);
        }
        lock(&self.recent)
            .ids
            .contains(id)
            .then_some(Seen::Acknowledged)
    }

    /// Waits until the engine has room for `bytes` more (the memory budget, in KiB).
    pub(super) async fn reserve(&self, bytes: usize) -> u32 {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_kib);
        if let Ok(permits) = self.budget.acquire_many(kib).await {
            permits.forget();
        }
        kib
    }

    /// Event `id` from `message`, taken in the tenure (partition, lease revision), goes to
    /// `endpoints`, with `kib` reserved.
    pub(super) fn open(
        &self,
        id: Arc<str>,
        endpoints: Vec<Box<str>>,
        message: Message,
        (partition, tenure): (u32, u64),
        kib: u32,
    ) {
        self.outstanding[partition as usize].fetch_add(1, Ordering::AcqRel);
        lock(&self.waiting).insert(
            id,
            Pending {
                remaining: endpoints,
                messages: vec![message],
                partition,
                tenure,
                since: Instant::now(),
                kib,
            },
        );
    }

    /// Whether event `id` still waits for `endpoint`.
    pub(super) fn waits_for(&self, id: &str, endpoint: &str) -> bool {
        lock(&self.waiting)
            .get(id)
            .is_some_and(|p| p.remaining.iter().any(|e| &**e == endpoint))
    }

    /// Endpoint `endpoint` is finished with event `id` (delivered or dead-lettered); the
    /// event is acknowledged when it was the last. Idempotent: the observer and the
    /// dead-letter hook may both report the same outcome.
    pub(super) fn finished(&self, id: &str, endpoint: &str) {
        let done = {
            let mut waiting = lock(&self.waiting);
            let Some(pending) = waiting.get_mut(id) else {
                return;
            };
            pending.remaining.retain(|e| &**e != endpoint);
            if !pending.remaining.is_empty() {
                return;
            }
            let Some((id, pending)) = waiting.remove_entry(id) else {
                return;
            };
            lock(&self.recent).insert(id);
            pending
        };
        self.budget.add_permits(done.kib as usize);
        let partition = done.partition;
        let done = Done {
            messages: done.messages,
            partition,
        };
        if let Err(unsent) = self.acks.send(done) {
            // The relay is past its stop: the message goes back to the stream.
            self.fall(unsent.0.partition);
        }
    }

    /// One line on what the relay has in delivery, for [`log_status`].
    fn status(&self) -> String {
        let (events, oldest) = {
            let waiting = lock(&self.waiting);
            let oldest = waiting.values().map(|p| p.since.elapsed()).max();
            (waiting.len(), oldest.unwrap_or_default())
        };
        let partitions: Vec<String> = self
            .outstanding
            .iter()
            .enumerate()
            .filter_map(|(p, n)| {
                let n = n.load(Ordering::Acquire);
                (n > 0).then(|| format!("{p}:{n}"))
            })
            .collect();
        format!(
            "{events} event(s) in delivery (by partition: {}; the oldest for {} ms), {} KiB of \
             budget free, {} acknowledged, {} taken twice, {} stored again",
            if partitions.is_empty() {
                "none".to_owned()
            } else {
                partitions.join(" ")
            },
            oldest.as_millis(),
            self.budget.available_permits(),
            self.counts.acknowledged.load(Ordering::Relaxed),
            self.counts.duplicates.load(Ordering::Relaxed),
            self.counts.stored_again.load(Ordering::Relaxed),
        )
    }

    /// Messages in delivery for `partition`.
    pub(super) fn outstanding(&self, partition: u32) -> usize {
        self.outstanding[partition as usize].load(Ordering::Acquire)
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
        for pending in &gone {
            self.budget.add_permits(pending.kib as usize);
            self.fall(pending.partition);
        }
        self.counts
            .handed_back
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
        gone.len()
    }

    /// Waits until the server has processed the acknowledgements of `partition` sent so
    /// far (up to `wait`), before its consumer goes: the last one is sent again, waiting
    /// for the answer, and the server answers a consumer's acknowledgements in order.
    pub(super) async fn confirm(&self, partition: u32, wait: Duration) {
        let last = lock(&self.last).remove(&partition);
        if let Some(message) = last {
            match tokio::time::timeout(wait, message.double_ack()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    log::debug!(target: deskhook::LOG_TARGET, "relay: partition {partition}: {e}")
                }
                Err(_) => {
                    log::debug!(target: deskhook::LOG_TARGET, "relay: partition {partition}: no answer to an acknowledgement")
                }
            }
        }
    }

    /// The messages in delivery for longer than `age`, to tell the server they are still
    /// being worked on.
    pub(super) fn overdue(&self, age: Duration) -> Vec<Message> {
        let now = Instant::now();
        lock(&self.waiting)
            .values()
            .filter(|p| now.duration_since(p.since) >= age)
            .flat_map(|p| p.messages.iter().cloned())
            .collect()
    }
}

/// Acknowledges each event of `done` as it comes, until the book is dropped.
pub(super) async fn acknowledge(book: Arc<Book>, mut done: mpsc::UnboundedReceiver<Done>) {
    while let Some(mut event) = done.recv().await {
        for message in &event.messages {
            if let Err(e) = message.ack().await {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: acknowledging a message on '{}' failed ({e}); the server will hand \
                     it out again and the relay will acknowledge it then",
                    message.subject
                );
            }
        }
        book.counts.acknowledged.fetch_add(1, Ordering::Relaxed);
        if let Some(message) = event.messages.pop() {
            lock(&book.last).insert(event.partition, message);
        }
        book.fall(event.partition);
    }
}

/// Logs, every `every`, what the relay has in delivery and what its engine holds.
pub(super) async fn log_status(
    book: Arc<Book>,
    http: crate::delivery::DeliverySink,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let totals = http.totals();
        log::info!(
            target: deskhook::LOG_TARGET,
            "relay status: {}; engine: {} queued, {} in flight, {} delivered, {} failed attempt(s)",
            book.status(),
            totals.queued,
            totals.in_flight,
            totals.delivered,
            totals.failed
        );
    }
}

/// Tells the server, every `every`, which messages are still in delivery, so that a slow
/// endpoint's work is not handed out again.
pub(super) async fn keep_alive(book: Arc<Book>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for message in book.overdue(every) {
            if let Err(e) = message
                .ack_with(async_nats::jetstream::AckKind::Progress)
                .await
            {
                log::warn!(target: deskhook::LOG_TARGET, "relay: cannot tell the server of progress: {e}");
            }
        }
    }
}

/// Sees final outcomes for the relay, then passes every record on to the configured
/// observer.
pub(super) struct Tracker {
    pub(super) book: Arc<Book>,
    pub(super) inner: Option<Arc<dyn Observer>>,
}

impl Observer for Tracker {
    fn on_attempt(&self, record: &AttemptRecord<'_>) {
        if record.outcome != AttemptOutcome::Retrying {
            self.book
                .finished(&record.event_id.to_string(), record.endpoint);
        }
        if let Some(inner) = &self.inner {
            inner.on_attempt(record);
        }
    }
}
