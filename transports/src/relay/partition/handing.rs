//! Handing a partition's events to the engine: the events its last owners parked, the
//! room each one needs, its ticket's gate, and the dead letters of what the engine cannot
//! take.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::{Order, Shared, Tenure, until};
use crate::delivery::{DeadLetter, DeliverySink, EventData, JOB_OVERHEAD, raw_body};
use crate::relay::book::{Book, Carrier, Opened, ReadBack, Seen};
use crate::relay::gate::Handoff;
use crate::relay::incoming::Incoming;
use crate::relay::parked::Entry;

impl Shared {
    /// Delivers the events of `entries`, parked by the partition's last owners, in order:
    /// each to the endpoints its entry names that still take it (it is dead-lettered for the
    /// others). `false` when told to stop while waiting for room (the entries stay).
    pub(super) async fn unpark(
        &self,
        tenure: &Tenure,
        entries: Vec<Entry>,
        order: &mut watch::Receiver<Order>,
    ) -> bool {
        let (mut count, found) = (0, entries.len());
        for entry in entries {
            let read_back = ReadBack {
                named: entry.events.iter().map(|(_, names)| names.len()).sum(),
                key: entry.key,
                sequence: entry.sequence,
                value: entry.value,
                revision: entry.revision,
            };
            // The endpoints an entry names that no longer take its event (removed, or
            // changed, while it was parked), by event.
            let mut gone: Vec<Vec<String>> = Vec::with_capacity(entry.events.len());
            let routed = entry.events.into_iter().map(|(event, mut remaining)| {
                let mut lanes = self.route(&event);
                lanes.retain(|lane| remaining.iter().any(|name| **name == *lane.name));
                remaining.retain(|name| !lanes.iter().any(|lane| **name == *lane.name));
                gone.push(remaining);
                (event, lanes)
            });
            let Some(routed) = self.reserve(routed, order).await else {
                return false;
            };
            let mut lettered = Vec::new();
            for ((event, _, _), names) in routed.iter().zip(&gone) {
                // One this relay has (in delivery, or ended lately) came in an earlier entry
                // too, which had these letters written: a park whose tenure ended as it was
                // written leaves a message's events in two entries (see `hand`).
                if self.book.knows(&event.id) {
                    continue;
                }
                for name in names {
                    self.http.write_dead_letter(letter(
                        event,
                        name,
                        "parked for this endpoint, which no longer takes it (removed or \
                         changed meanwhile)"
                            .to_owned(),
                    ));
                    lettered.push(&*event.id);
                }
            }
            // The entry may go as soon as its other endpoints are done: not before these
            // letters are published (see `dead`). Told to stop first, the entry stays for
            // the next owner, which writes them again (at least once).
            tokio::select! {
                () = self.unpublished.until_published(&lettered) => {}
                () = until(order, |o| *o != Order::Keep) => {
                    for (_, lanes, kib) in &routed {
                        if !lanes.is_empty() {
                            self.book.give_back(*kib);
                        }
                    }
                    return false;
                }
            }
            count += routed.len();
            let ids: Vec<Arc<str>> = routed
                .iter()
                .map(|(event, _, _)| event.id.clone())
                .collect();
            let carrier = self.book.carry_parked(
                read_back,
                tenure.partition,
                routed.len(),
                &tenure.withdrawn,
            );
            for (event, lanes, kib) in routed {
                self.hand(tenure, &carrier, event, lanes, kib, false);
            }
            // Parked: they hold no place in the room for what is pulled.
            self.book.unslot(&ids);
        }
        if found > 0 {
            log::info!(
                target: deskhook::LOG_TARGET,
                "relay: partition {}: {count} event(s) parked by its last owner ({found} \
                 parked message part(s)), delivered before what it pulls",
                tenure.partition
            );
        }
        true
    }

    /// Reserves the room each of `routed` needs in the engine, waiting for it; `None` (with
    /// the room given back) when told to stop first. One partition reserves at a time, so
    /// that none waits for room another holds while waiting itself; a message that needs
    /// more than the whole room takes what is beyond it without waiting.
    pub(super) async fn reserve(
        &self,
        routed: impl Iterator<Item = (Incoming, crate::delivery::Lanes)>,
        order: &mut watch::Receiver<Order>,
    ) -> Option<Vec<(Incoming, crate::delivery::Lanes, u32)>> {
        let mut reserved: Vec<(Incoming, crate::delivery::Lanes, u32)> = Vec::new();
        let give_back = |reserved: Vec<(Incoming, crate::delivery::Lanes, u32)>| {
            for (_, lanes, kib) in reserved {
                if !lanes.is_empty() {
                    self.book.give_back(kib);
                }
            }
        };
        let _turn = tokio::select! {
            biased;
            turn = self.book.reserving.lock() => turn,
            () = until(order, |o| *o != Order::Keep) => return None,
        };
        let (all_kib, all_slots) = self.book.capacity();
        let routed: Vec<_> = routed.collect();
        // More events than the room has places: all of them go past the endpoints' queues'
        // capacity, which is the room's (one of them in a gate may reach a queue that the
        // others filled).
        let past_room = routed.iter().filter(|(_, lanes)| !lanes.is_empty()).count() > all_slots;
        let (mut taken_kib, mut taken_slots) = (0u64, 0usize);
        for (mut event, lanes) in routed {
            let kib = if lanes.is_empty() {
                0
            } else {
                // The engine charges the body once, and a job per endpoint.
                let kib = self
                    .book
                    .kib_of(event.body.len() + lanes.len() * JOB_OVERHEAD);
                let past_budget = taken_kib + u64::from(kib) > u64::from(all_kib);
                if taken_slots >= all_slots {
                    self.book.reserve_beyond(kib);
                } else {
                    let reserve = async {
                        if past_budget {
                            self.book.reserve_slot_beyond_budget(kib).await;
                        } else {
                            self.book.reserve(kib).await;
                        }
                    };
                    tokio::select! {
                        biased;
                        () = reserve => {}
                        () = until(order, |o| *o != Order::Keep) => {
                            give_back(reserved);
                            return None;
                        }
                    }
                }
                event.past_room = past_room;
                taken_kib += u64::from(kib);
                taken_slots += 1;
                kib
            };
            reserved.push((event, lanes, kib));
        }
        Some(reserved)
    }

    /// The endpoints that take `event`.
    pub(super) fn route(&self, event: &Incoming) -> crate::delivery::Lanes {
        self.http
            .engine()
            .registry()
            .route(event.tenant.as_deref(), event.event_type)
    }

    /// Hands one event of `carrier` to the engine for `lanes`, with `kib` of the budget
    /// reserved for it (given back if it needs nothing); through its ticket's gate when
    /// `gated` (a parked event was let through it already).
    pub(super) fn hand(
        &self,
        tenure: &Tenure,
        carrier: &Arc<Carrier>,
        event: Incoming,
        lanes: crate::delivery::Lanes,
        kib: u32,
        gated: bool,
    ) {
        let count = |counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::Relaxed);
        };
        let seen = self.book.seen(&event.id, carrier);
        if seen.is_some() && !lanes.is_empty() {
            self.book.give_back(kib);
        }
        match seen {
            Some(Seen::Joined) => return,
            Some(Seen::Acknowledged) => {
                count(&self.book.counts.duplicates);
                self.book.pass(carrier, &event.id);
                return;
            }
            None if lanes.is_empty() => {
                // Routed now, it went to no endpoint; a parked event (not `gated`) has the
                // endpoints its entry names, and those removed meanwhile were dead-lettered.
                if gated {
                    self.http.engine().count_unrouted(event.event_type);
                    count(&self.book.counts.unrouted);
                }
                // Ended: a copy of it (a second entry, a message handed out again) is known.
                self.book.remember(&event.id);
                count(&self.book.counts.acknowledged);
                self.book.pass(carrier, &event.id);
                return;
            }
            None => {}
        }
        // Handed out again while it waits in its gate (a reconnect): it joins itself.
        if gated && self.book.gates.join(&event.ticket, &event.id, carrier) {
            self.book.give_back(kib);
            return;
        }
        let handoff = Handoff {
            event,
            lanes,
            kib,
            carrier: carrier.clone(),
            joined: Vec::new(),
            tenure: (tenure.partition, tenure.revision),
            withdrawn: tenure.withdrawn.clone(),
        };
        if !gated {
            deliver(&self.http, &self.book, handoff);
        } else if let Some(handoff) = self.book.gates.admit(handoff) {
            deliver(&self.http, &self.book, handoff);
        }
    }
}

/// Hands `handoff` to `http`'s engine, for each of its endpoints, and notes it in `book`.
pub(in crate::relay) fn deliver(http: &DeliverySink, book: &Book, handoff: Handoff) {
    let Handoff {
        event,
        lanes,
        kib,
        carrier,
        joined,
        tenure,
        withdrawn,
    } = handoff;
    let opened = book.open(
        (event.id.clone(), event.ticket.clone()),
        lanes
            .iter()
            .map(|lane| lane.name.to_string().into())
            .collect(),
        (&carrier, joined),
        tenure,
        kib,
    );
    match opened {
        Opened::Yes => {}
        // Its tenure ended while it waited: the partition's next owner delivers it.
        Opened::Withdrawn => return book.let_go(&carrier, kib),
        Opened::Joined => return book.give_back(kib),
        Opened::Acknowledged => {
            book.counts.duplicates.fetch_add(1, Ordering::Relaxed);
            return book.give_back(kib);
        }
    }
    // One event for all its endpoints, as an emit's: one body, one parse, one charge.
    let data = EventData {
        id: event.parsed,
        id_text: event.id.clone(),
        event_type: event.event_type,
        key: event.ticket.clone(),
        body: event.body.clone(),
        content_type: event.event_type.content_type(),
        tenant: event.tenant.as_deref().map(Into::into),
        charge: None,
        parsed: std::sync::OnceLock::new(),
        withdrawn: Some(withdrawn),
        past_capacity: event.past_room,
    };
    // Those the engine gave to the dead letters (a closed endpoint's) end with their
    // letter's publication; the others it dropped.
    for (name, problem) in http.engine().enqueue_relayed(lanes, data) {
        if book.waits_for(&event.id, &name) {
            // Dropped rather than dead-lettered (the queues are sized for the relay's room,
            // and what went past it is taken anyway: a failing endpoint's parked events
            // fill them): dead-lettered here, so that the message still ends.
            http.write_dead_letter(letter(
                &event,
                &name,
                format!("the relay could not queue it: {problem}"),
            ));
        }
    }
}

/// `event` for one endpoint as a dead letter.
pub(super) fn letter(event: &Incoming, endpoint: &str, reason: String) -> DeadLetter {
    DeadLetter {
        id: event.id.to_string(),
        endpoint: endpoint.to_owned(),
        url: String::new(),
        tenant: event.tenant.clone(),
        action: event.event_type.as_str().to_owned(),
        ticket: event.ticket.to_string(),
        attempts: 0,
        last_status: None,
        last_error: None,
        failed_at: format!("{:.3}", jiff::Timestamp::now()),
        reason,
        body: raw_body(&event.body),
    }
}
