//! What carried events to the relay: a message of the stream, or an entry of the parked
//! bucket read back; acknowledged (or removed) once its events have finished.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::Message;
use bytes::Bytes;
use tokio::time::Instant;

use crate::delivery::Withdrawal;

use super::lock;

/// A message taken from the stream, acknowledged once each event it carries has finished or
/// once it is parked; or an entry of the parked bucket, removed once its events have
/// finished.
pub(in crate::relay) struct Carrier {
    /// The message; `None` for a parked entry read back.
    pub(super) message: Option<Message>,
    pub(super) partition: u32,
    /// Those without their final outcome; 0 once abandoned.
    pub(super) left: AtomicUsize,
    /// Set when its last event finished (not when it was abandoned, which also leaves
    /// `left` at 0): `done` then removes its parked entries as it settles it.
    pub(super) finished: AtomicBool,
    /// The tickets of its events handed to the engine (see [`Gates`]).
    pub(super) opened: Mutex<Vec<Arc<str>>>,
    /// Its place in the stream (0 when the server did not say).
    pub(super) sequence: u64,
    pub(super) taken: Instant,
    /// Its events finished so far.
    pub(super) done: Mutex<Vec<Arc<str>>>,
    /// Set (under the `done` lock) once the server did not confirm its acknowledgement: its
    /// events, those finished and those that finish later (a parked message's), are pinned
    /// (see [`Book::pin`](super::Book::pin)).
    pub(super) pinned: AtomicBool,
    /// Its events waiting in a gate for their tickets' earlier messages.
    pub(super) held: AtomicUsize,
    /// No longer outstanding (acknowledged, parked or left): set once.
    pub(super) settled: AtomicBool,
    /// The keys of the parked bucket that hold its unfinished events, once parked.
    pub(super) parked: Mutex<Vec<String>>,
    /// The endpoints its entries name, counted once per event (what a rewrite compares:
    /// endpoints only ever finish).
    pub(super) parked_remaining: AtomicUsize,
    /// The first part number its entries may take: those below were written (or tried,
    /// and left to be removed), and a key in the list of those to remove is never written
    /// again, or its removal would take the new entry.
    pub(super) next_part: AtomicU32,
    /// When it was parked (Unix seconds; 0 before), which its entries keep when they are
    /// written again.
    pub(super) parked_at: AtomicI64,
    /// Set when it could not be parked (its entries not written, or its events not read):
    /// a look at once for a paused endpoint leaves it to the regular looks, each of which
    /// tries again (see `park_stuck`).
    pub(super) not_at_once: AtomicBool,
    /// Set when the tenure that took it ends.
    pub(super) withdrawn: Arc<Withdrawal>,
    /// The lease revision of that tenure.
    pub(super) revision: u64,
    /// For an entry read back: its value and its revision in the bucket, as last read or
    /// written (what a rewrite replaces).
    pub(super) entry: Mutex<Option<(Bytes, u64)>>,
}

/// A parked entry read back, as a carrier of its events keeps it.
pub(in crate::relay) struct ReadBack {
    pub(in crate::relay) key: String,
    /// The parked message's place in the stream.
    pub(in crate::relay) sequence: u64,
    /// Its value, and its revision in the bucket.
    pub(in crate::relay) value: Bytes,
    pub(in crate::relay) revision: u64,
    /// The endpoints its events name, counted once per event.
    pub(in crate::relay) named: usize,
}

impl Carrier {
    pub(super) fn new(
        message: Option<Message>,
        (partition, revision): (u32, u64),
        sequence: u64,
        events: usize,
        withdrawn: &Arc<Withdrawal>,
    ) -> Arc<Carrier> {
        Arc::new(Carrier {
            message,
            partition,
            left: AtomicUsize::new(events),
            finished: AtomicBool::new(false),
            opened: Mutex::default(),
            sequence,
            taken: Instant::now(),
            done: Mutex::default(),
            pinned: AtomicBool::new(false),
            held: AtomicUsize::new(0),
            settled: AtomicBool::new(false),
            parked: Mutex::default(),
            parked_remaining: AtomicUsize::new(0),
            next_part: AtomicU32::new(0),
            parked_at: AtomicI64::new(0),
            not_at_once: AtomicBool::new(false),
            withdrawn: withdrawn.clone(),
            revision,
            entry: Mutex::default(),
        })
    }

    pub(in crate::relay) fn partition(&self) -> u32 {
        self.partition
    }

    /// One more of its events waits in a gate (`true`), or one left it (`false`).
    pub(in crate::relay) fn hold(&self, held: bool) {
        if held {
            self.held.fetch_add(1, Ordering::AcqRel);
        } else {
            self.held.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Entries `keys` were written, or tried: later ones take part numbers after theirs.
    pub(super) fn parts_taken(&self, keys: &[String]) {
        if let Some(last) = keys
            .iter()
            .filter_map(|k| super::super::parked::part_of(k))
            .max()
        {
            self.next_part.fetch_max(last + 1, Ordering::AcqRel);
        }
    }

    pub(super) fn parked_keys(&self) -> Vec<String> {
        lock(&self.parked).clone()
    }

    pub(super) fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// An event of `ticket` it carries went to the engine.
    pub(in crate::relay) fn opened(&self, ticket: Arc<str>) {
        lock(&self.opened).push(ticket);
    }

    /// The tickets of its events that went to the engine, taken once it is acknowledged.
    pub(in crate::relay) fn take_opened(&self) -> Vec<Arc<str>> {
        std::mem::take(&mut *lock(&self.opened))
    }

    /// Whether `holds` is true of one of the tickets of its events that went to the engine.
    pub(in crate::relay) fn any_opened(&self, holds: impl Fn(&Arc<str>) -> bool) -> bool {
        lock(&self.opened).iter().any(holds)
    }
}
