//! Each ticket's next event waits until the message of its last one is acknowledged.
//!
//! A message is acknowledged once every event it carries has finished. With one event per
//! message that is when the event finishes; a batch waits for its slowest event. Were a
//! ticket's next event delivered meanwhile and the relay died, the next owner would deliver
//! the batch again, the earlier event after the later one. So an event is handed to the
//! engine only when no earlier event of its ticket sits in a message not yet acknowledged
//! (or when they sit in its own message: the engine keeps their order, and only a publisher
//! other than deskhook's puts two events of a ticket in one batch). A parked message counts
//! as acknowledged (see `parked`): the partition's next owner delivers its events before
//! anything it pulls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::book::Carrier;
use super::incoming::Incoming;
use crate::delivery::{Lanes, Withdrawal, lock};

/// An event ready for the engine: where it goes, the room reserved for it, what carried it.
pub(super) struct Handoff {
    pub(super) event: Incoming,
    pub(super) lanes: Lanes,
    /// KiB of the budget reserved for it (and one place in the queue).
    pub(super) kib: u32,
    pub(super) carrier: Arc<Carrier>,
    /// The messages that carried it again while it waited (the server handed it out again:
    /// a reconnect): acknowledged with it, never delivered twice.
    pub(super) joined: Vec<Arc<Carrier>>,
    /// The tenure (partition, lease revision) that took it.
    pub(super) tenure: (u32, u64),
    /// Set when that tenure's lease is lost.
    pub(super) withdrawn: Arc<Withdrawal>,
}

/// One ticket with events in delivery.
struct Gate {
    /// Its events handed to the engine whose message is not acknowledged yet (all in
    /// `carrier`).
    open: Vec<Arc<str>>,
    /// The message of the last one handed to the engine.
    carrier: Arc<Carrier>,
    /// Its events waiting for those to be acknowledged, in order.
    held: VecDeque<Handoff>,
}

impl Gate {
    /// `next` goes to the engine: it is now the ticket's open event.
    fn open(&mut self, ticket: &Arc<str>, next: &Handoff) {
        self.open.push(next.event.id.clone());
        if !Arc::ptr_eq(&self.carrier, &next.carrier) {
            self.carrier = next.carrier.clone();
        }
        next.carrier.opened(ticket.clone());
    }

    /// The ticket's open events are done with (their message acknowledged or parked): the
    /// next waiting event may go, with those after it in the same message (the engine
    /// keeps their order; they could not wait for a message that waits for them). Empty
    /// when nothing waits (the gate can go).
    fn pass(&mut self, ticket: &Arc<str>) -> Vec<Handoff> {
        self.open.clear();
        let mut next = Vec::new();
        while let Some(first) = self.held.front() {
            if next
                .first()
                .is_some_and(|n: &Handoff| !Arc::ptr_eq(&n.carrier, &first.carrier))
            {
                break;
            }
            let Some(first) = self.held.pop_front() else {
                break;
            };
            for carrier in std::iter::once(&first.carrier).chain(&first.joined) {
                carrier.hold(false);
            }
            self.open(ticket, &first);
            next.push(first);
        }
        next
    }
}

/// The gates of the tickets with events in delivery.
#[derive(Default)]
pub(super) struct Gates {
    tickets: Mutex<HashMap<Arc<str>, Gate>>,
}

impl Gates {
    /// `handoff` back if it may go to the engine now; otherwise it waits for its ticket's
    /// earlier events' messages.
    pub(super) fn admit(&self, handoff: Handoff) -> Option<Handoff> {
        let mut tickets = lock(&self.tickets);
        let ticket = handoff.event.ticket.clone();
        let gate = tickets.entry(ticket.clone()).or_insert_with(|| Gate {
            open: Vec::new(),
            carrier: handoff.carrier.clone(),
            held: VecDeque::new(),
        });
        if gate.held.is_empty()
            && (gate.open.is_empty() || Arc::ptr_eq(&gate.carrier, &handoff.carrier))
        {
            gate.open(&ticket, &handoff);
            Some(handoff)
        } else {
            handoff.carrier.hold(true);
            gate.held.push_back(handoff);
            None
        }
    }

    /// Whether event `id` of `ticket` waits in its gate.
    pub(super) fn holds(&self, ticket: &str, id: &str) -> bool {
        lock(&self.tickets)
            .get(ticket)
            .is_some_and(|gate| gate.held.iter().any(|h| &*h.event.id == id))
    }

    /// Whether event `id` of `ticket` waits in its gate: then `carrier`, which brought it
    /// again, joins it (and is acknowledged with it).
    pub(super) fn join(&self, ticket: &str, id: &str, carrier: &Arc<Carrier>) -> bool {
        let mut tickets = lock(&self.tickets);
        let Some(waiting) = tickets
            .get_mut(ticket)
            .and_then(|gate| gate.held.iter_mut().find(|h| &*h.event.id == id))
        else {
            return false;
        };
        carrier.hold(true);
        waiting.joined.push(carrier.clone());
        true
    }

    /// The messages whose events wait in gates, to tell the server they are still being
    /// worked on.
    pub(super) fn carriers(&self) -> Vec<Arc<Carrier>> {
        lock(&self.tickets)
            .values()
            .flat_map(|gate| gate.held.iter())
            .flat_map(|h| std::iter::once(&h.carrier).chain(&h.joined))
            .cloned()
            .collect()
    }

    /// `carrier` is acknowledged: the events that waited for it and may go now. `None`,
    /// with nothing changed, when the acknowledgement is not `confirmed` and events wait
    /// for it (they go once it is: see `book::settle`).
    pub(super) fn acknowledged(
        &self,
        carrier: &Arc<Carrier>,
        confirmed: bool,
    ) -> Option<Vec<Handoff>> {
        let mut released = Vec::new();
        let mut tickets = lock(&self.tickets);
        if !confirmed && held_behind(&tickets, carrier) {
            return None;
        }
        for ticket in carrier.take_opened() {
            let Some(gate) = tickets.get_mut(&ticket) else {
                continue;
            };
            // A ticket whose message was parked has moved on to another one.
            if !Arc::ptr_eq(&gate.carrier, carrier) || gate.open.is_empty() {
                continue;
            }
            let next = gate.pass(&ticket);
            if next.is_empty() {
                tickets.remove(&ticket);
            }
            released.extend(next);
        }
        Some(released)
    }

    /// Forgets the tickets of `partition` (all when `None`): its tenure ended without its
    /// messages acknowledged. Returns the events that waited, for their room to be given
    /// back (they are not delivered: the partition's next owner delivers them).
    pub(super) fn abandon(&self, partition: Option<u32>) -> Vec<Handoff> {
        let mut tickets = lock(&self.tickets);
        let mut held = Vec::new();
        tickets.retain(|_, gate| {
            if partition.is_some_and(|p| gate.carrier.partition() != p) {
                return true;
            }
            held.extend(gate.held.drain(..));
            false
        });
        held
    }

    /// Whether an event waits for `carrier`'s acknowledgement: one of the tickets it opened
    /// has events held behind it.
    pub(super) fn held_behind(&self, carrier: &Arc<Carrier>) -> bool {
        held_behind(&lock(&self.tickets), carrier)
    }

    /// Events waiting for their ticket's earlier messages.
    pub(super) fn held(&self) -> usize {
        lock(&self.tickets).values().map(|g| g.held.len()).sum()
    }
}

/// Whether one of the tickets `carrier` opened holds events behind it (`tickets` locked).
fn held_behind(tickets: &HashMap<Arc<str>, Gate>, carrier: &Arc<Carrier>) -> bool {
    carrier.any_opened(|ticket| {
        tickets.get(ticket).is_some_and(|gate| {
            Arc::ptr_eq(&gate.carrier, carrier) && !gate.open.is_empty() && !gate.held.is_empty()
        })
    })
}
