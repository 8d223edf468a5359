//! Parking: the messages whose events wait only for failing or paused endpoints are written
//! to the parked bucket (see `parked`) and acknowledged, so that their partitions go on
//! without them. [`park_stuck`] looks for them; the book's acknowledging task
//! (`settle_messages`) parks them, one piece of work at a time, and removes the entries of
//! those whose events finished since; a partition's owner rewrites its entries before the
//! partition goes to its next owner ([`Book::rewrite_parked`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::settle::acknowledged;
use super::{Book, Carrier, Work, lock};
use crate::delivery::{DeliverySink, EndpointState};
use crate::nats::batch::{self, Framed};
use crate::relay::incoming;
use crate::relay::parked::{self, Parked};

/// A message that may be parked (see [`Book::parkable`]).
struct Parkable {
    carrier: Arc<Carrier>,
    /// The endpoints where one of its events waits for a retry, or behind its ticket's
    /// event that does.
    retrying: HashSet<Box<str>>,
    /// The endpoints its events in delivery wait for.
    endpoints: HashSet<Box<str>>,
}

/// The events of a message to park (with the endpoints still to take them) and their ids.
type ToPark = (Vec<Framed>, Vec<Arc<str>>);

/// Removes the entries whose removal failed before: a stale entry would bring its events
/// back, after their tickets' later ones, to the partition's next owner.
pub(super) async fn remove_unremoved(book: &Book, parked: &Parked) {
    let unremoved = std::mem::take(&mut *lock(&book.unremoved));
    if !unremoved.is_empty()
        && let Err(e) = parked.remove(&unremoved).await
    {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "relay: cannot remove {} finished parked entries yet ({e}); trying again",
            unremoved.len()
        );
        lock(&book.unremoved).extend(unremoved);
    }
}

/// Parks `carriers` (see `parked`): their unfinished events are written to the parked
/// bucket, all at once, then each message is acknowledged. One that cannot be written stays
/// outstanding, for the next look. Returns those whose acknowledgement is to be confirmed
/// (events wait for it: see the module).
pub(super) async fn park(
    book: &Book,
    http: &DeliverySink,
    parked: &Parked,
    carriers: Vec<Arc<Carrier>>,
    quietly: bool,
) -> Vec<Arc<Carrier>> {
    remove_unremoved(book, parked).await;
    // When they are parked: what their entries say, to the second.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let mut writes = Vec::new();
    for carrier in carriers {
        if carrier.is_settled()
            || !carrier.parked_keys().is_empty()
            || carrier.withdrawn.load(Ordering::Acquire)
        {
            continue;
        }
        match book.to_park(&carrier, false, Some(now)) {
            Ok(Some((events, ids))) if !events.is_empty() => writes.push((carrier, events, ids)),
            Ok(_) => carrier.not_at_once.store(true, Ordering::Release),
            Err(e) => {
                carrier.not_at_once.store(true, Ordering::Release);
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {}: message {} cannot be parked ({e}); it stays \
                     outstanding",
                    carrier.partition,
                    carrier.sequence
                );
            }
        }
    }
    let written = futures_util::future::join_all(writes.iter().map(|(c, events, _)| {
        let first = first_part(book, c);
        parked.write_from((c.partition, c.revision), c.sequence, first, events)
    }))
    .await;
    let mut unconfirmed = Vec::new();
    let (mut messages, mut events_parked) = (0, 0);
    for ((carrier, events, ids), written) in writes.into_iter().zip(written) {
        let keys = match written {
            Ok(keys) => {
                carrier.parts_taken(&keys);
                keys
            }
            Err(e) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {}: cannot park message {} ({e}); it stays outstanding, \
                     and the relay tries again",
                    carrier.partition,
                    carrier.sequence
                );
                // Removed at the next look: left, they would be read back by the next
                // owner, though the message is delivered from the stream.
                carrier.parts_taken(&e.left);
                lock(&book.unremoved).extend(e.left);
                // Tried again at the next regular look, not at once (see `park_stuck`).
                carrier.not_at_once.store(true, Ordering::Release);
                continue;
            }
        };
        let withdrawn = carrier.withdrawn.load(Ordering::Acquire);
        if withdrawn && !finishing(&carrier) {
            // Its tenure ended meanwhile (the relay cut off, or a hand-back's grace over):
            // the message, not acknowledged, stays for the next owner, and carries the
            // events. The entries go: the next owner may have read the partition's entries
            // before they were written, and an owner after it would then deliver their
            // events again, after their tickets' later ones.
            remove_withdrawn(book, parked, &carrier, keys).await;
            continue;
        }
        *lock(&carrier.parked) = keys;
        carrier.parked_at.store(now.as_second(), Ordering::Release);
        carrier.parked_remaining.store(
            events.iter().map(parked::remaining_of).sum(),
            Ordering::Release,
        );
        if withdrawn {
            // Its tenure ended meanwhile, and its events have all finished: `done` removes
            // the entries as it settles it (see `Book::parked_done`).
            continue;
        }
        if let Some(message) = &carrier.message
            && let Err(e) = message.ack().await
        {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: acknowledging parked message {} failed ({e}); its events are parked \
                 and taken once if it comes back",
                carrier.sequence
            );
        }
        book.counts.parked.fetch_add(1, Ordering::Relaxed);
        log::debug!(
            target: deskhook::LOG_TARGET,
            "relay: partition {}: parked message {} ({} event(s))",
            carrier.partition,
            carrier.sequence,
            events.len()
        );
        messages += 1;
        events_parked += events.len();
        book.unslot(&ids);
        if !acknowledged(book, http, &carrier, false) {
            unconfirmed.push(carrier);
        }
    }
    if messages > 0 {
        let level = if quietly {
            log::Level::Debug
        } else {
            log::Level::Info
        };
        log::log!(
            target: deskhook::LOG_TARGET,
            level,
            "relay: parked {messages} message(s), {events_parked} event(s) waiting for failing \
             endpoints: their partitions go on without them"
        );
    }
    unconfirmed
}

/// Whether all the events of `carrier`, withdrawn, have finished and it waits for `done`
/// (which removes its entries as it settles it): not when some are still to finish, nor
/// when its tenure's end let go of it (it was settled then, and `done` never comes).
pub(super) fn finishing(carrier: &Carrier) -> bool {
    carrier.finished.load(Ordering::Acquire) && !carrier.is_settled()
}

/// The first part number `carrier`'s next entries may take: after those it wrote or tried,
/// and after those of its message and tenure waiting to be removed (another carrier of the
/// same message, handed out again by the server, may have left them): a key to remove is
/// never written again, or its removal would take the new entry.
pub(super) fn first_part(book: &Book, carrier: &Carrier) -> u32 {
    let prefix = format!(
        "{}.{}.{}.",
        carrier.partition, carrier.sequence, carrier.revision
    );
    let unremoved = lock(&book.unremoved)
        .iter()
        .filter(|key| key.starts_with(&prefix))
        .filter_map(|key| parked::part_of(key))
        .max()
        .map_or(0, |last| last + 1);
    carrier.next_part.load(Ordering::Acquire).max(unremoved)
}

/// Which entries go once `carrier`'s entries `old` were written again as `new`:
/// - its last event finished meanwhile: the settle task removed the entries it found, old
///   or new; all go (whatever became of its tenure: its events need no one);
/// - its tenure ended meanwhile (lost as the relay stopped: `stopping`, and the carrier
///   withdrawn, which a hand-back's rewrite always is and the stop's never is when it
///   begins): the next owner reads the old entries, and the new ones go;
/// - else the old ones.
pub(super) fn rewritten_to_remove(
    stopping: bool,
    carrier: &Carrier,
    old: Vec<String>,
    new: Vec<String>,
) -> Vec<String> {
    if carrier.finished.load(Ordering::Acquire) {
        [old, new].concat()
    } else if stopping && carrier.withdrawn.load(Ordering::Acquire) {
        new
    } else {
        old
    }
}

/// Removes the entries `keys` just written for `carrier`, whose tenure ended as they were
/// written; a removal that fails is tried again at the next look.
async fn remove_withdrawn(book: &Book, parked: &Parked, carrier: &Carrier, keys: Vec<String>) {
    if let Err(e) = parked.remove(&keys).await {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "relay: partition {}: cannot remove the entries of message {}, written as the \
             partition's tenure ended ({e}); trying again at the next look",
            carrier.partition,
            carrier.sequence
        );
        lock(&book.unremoved).extend(keys);
    }
}

/// Every half of `after`, parks the messages taken longer than `after` ago whose events wait
/// only for failing endpoints (see `parked`). One that a healthy endpoint still has to take
/// waits for it: an entry names the endpoints still to take its events, and one that
/// delivers it meanwhile would get it again from the partition's next owner.
///
/// A message whose events wait only for paused endpoints is parked at once, not after
/// `after`: a pause is an operator's, for longer than a retry, and while the message is
/// outstanding its tickets' next events wait for it at every other endpoint (one per
/// `after`, where the healthy endpoints would take dozens a second). The book says when an
/// event comes to wait for paused endpoints alone (`Book::park_soon`), which costs an
/// atomic load per event while none is paused; the paused endpoints are looked up each half
/// of `after`.
pub(in crate::relay) async fn park_stuck(book: Arc<Book>, http: DeliverySink, after: Duration) {
    let mut tick = tokio::time::interval((after / 2).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut paused: HashSet<Box<str>> = HashSet::new();
    // Looks at once are this far apart at least: each reads every event in delivery.
    let spacing = AT_ONCE_SPACING.min(after / 2);
    let mut last_at_once = Instant::now();
    loop {
        // Told only when an event waits for paused endpoints alone (`Book::only_paused`).
        let at_once = tokio::select! {
            _ = tick.tick() => false,
            () = book.park_soon.notified(), if !paused.is_empty() => true,
        };
        let carriers: Vec<Arc<Carrier>> = if at_once {
            tokio::time::sleep_until(last_at_once + spacing).await;
            last_at_once = Instant::now();
            // The state now, not the last look's: one resumed since is not parked for.
            let mut now_paused: HashMap<Box<str>, bool> = HashMap::new();
            book.parkable(Duration::ZERO)
                .into_iter()
                .filter(|p| {
                    !p.carrier.withdrawn.load(Ordering::Acquire)
                        && !p.carrier.not_at_once.load(Ordering::Acquire)
                        && p.endpoints.iter().all(|name| {
                            paused.contains(name)
                                && *now_paused
                                    .entry(name.clone())
                                    .or_insert_with(|| is_paused(&http, name))
                        })
                })
                .map(|p| p.carrier)
                .collect()
        } else {
            let seen = paused_endpoints(&http);
            // A pause seen now: what waits for it alone already is looked for at once.
            if seen.iter().any(|name| !paused.contains(name)) {
                book.park_soon.notify_one();
            }
            paused = seen;
            book.any_paused.store(!paused.is_empty(), Ordering::Release);
            lock(&book.paused).clone_from(&paused);
            let mut stuck: HashMap<Box<str>, bool> = HashMap::new();
            book.parkable(after)
                .into_iter()
                .filter(|p| {
                    p.endpoints.iter().all(|name| {
                        p.retrying.contains(name)
                            || *stuck
                                .entry(name.clone())
                                .or_insert_with(|| book.failing(&http, name))
                    })
                })
                .map(|p| p.carrier)
                .collect()
        };
        let removals = !at_once && !lock(&book.unremoved).is_empty();
        if removals || !carriers.is_empty() {
            // One waiting at a time: a park that waits behind a slow one would hold up the
            // acknowledgements queued after it too. What a look at once finds meanwhile,
            // the end of that park looks for again.
            if book.park_queued.swap(true, Ordering::AcqRel) {
                if at_once {
                    book.park_deferred.store(true, Ordering::Release);
                }
            } else if book
                .acks
                .send(Work::Park {
                    carriers,
                    quietly: at_once,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

/// How far apart looks at once for messages only paused endpoints hold are, at least.
const AT_ONCE_SPACING: Duration = Duration::from_millis(20);

/// Whether endpoint `name` of `http` is paused now.
fn is_paused(http: &DeliverySink, name: &str) -> bool {
    http.engine()
        .registry()
        .get(name)
        .is_some_and(|lane| lock(&lane.state).paused)
}

/// The endpoints of `http` that are paused now.
fn paused_endpoints(http: &DeliverySink) -> HashSet<Box<str>> {
    let mut paused = HashSet::new();
    http.engine().registry().for_each_state(|lane, st| {
        if st.paused {
            paused.insert(Box::from(&*lane.name));
        }
    });
    paused
}

impl Book {
    /// `carrier` is done and was parked: the keys of its entries, to remove (none when it
    /// was not parked). It is no longer outstanding. It was settled when it was parked,
    /// unless its tenure ended while its entries were written, with its last event finished
    /// meanwhile: `park` left it to the next owner, and the end of the tenure found no
    /// event of it to leave, so its partition would wait for it for ever.
    pub(super) fn parked_done(&self, carrier: &Carrier) -> Vec<String> {
        let keys = carrier.parked_keys();
        if !keys.is_empty() {
            self.settle(carrier);
        }
        keys
    }

    /// Rewrites the parked entries of the messages of `tenure` (every tenure still held
    /// when `None`) with the endpoints still to take each event, before the partition goes
    /// to its next owner: an entry names them as they were when it was written, and the
    /// relay goes on delivering its parked events meanwhile, so an endpoint that recovered
    /// would get them again from the next owner, after the ticket's later events. Only the
    /// entries that name more endpoints than still wait (some took their events since, or,
    /// in an entry read back, were removed and their events dead-lettered) are written
    /// again, all at once. A message
    /// this relay parked gets new entries beside the old ones (parts numbered after theirs),
    /// which then go; an entry it read back from an earlier owner is replaced in place, if
    /// it is still the one read (not removed meanwhile as its events finished). A write that
    /// fails leaves the old entries as they were (logged). Run while no other relay reads the
    /// partition's entries (its lease held); an attempt still in flight meanwhile may
    /// deliver an event its endpoint then gets again.
    pub(in crate::relay) async fn rewrite_parked(
        &self,
        tenure: Option<(u32, u64)>,
        parked: &Parked,
    ) {
        let carriers: Vec<Arc<Carrier>> = {
            let waiting = lock(&self.waiting);
            let mut seen = HashSet::new();
            waiting
                .values()
                .filter(|p| tenure.is_none_or(|t| (p.partition, p.tenure) == t))
                .flat_map(|p| p.carriers.iter())
                .filter(|c| {
                    !c.parked_keys().is_empty()
                        && (tenure.is_some() || !c.withdrawn.load(Ordering::Acquire))
                })
                .filter(|c| seen.insert(Arc::as_ptr(c)))
                .cloned()
                .collect()
        };
        let mut rewrites = Vec::new();
        let mut replaces = Vec::new();
        for carrier in carriers {
            let read_back = carrier.message.is_none();
            let looked = if read_back {
                // Each event keeps the time it was first parked; one not in delivery here
                // (withdrawn before it went, or finishing right now) leaves the entry as
                // it is.
                self.to_park(&carrier, false, None)
            } else {
                // Its entries keep the time it was parked.
                let at = jiff::Timestamp::from_second(carrier.parked_at.load(Ordering::Acquire))
                    .unwrap_or_else(|_| jiff::Timestamp::now());
                self.to_park(&carrier, true, Some(at))
            };
            match looked {
                // Finished: the settle task removes its entries.
                Ok(Some((events, _))) if events.is_empty() => {}
                Ok(Some((events, _))) => {
                    let remaining: usize = events.iter().map(parked::remaining_of).sum();
                    if remaining >= carrier.parked_remaining.load(Ordering::Acquire) {
                        continue;
                    }
                    if read_back {
                        let value = batch::encode(&events.iter().collect::<Vec<_>>());
                        replaces.push((carrier, value, remaining));
                    } else {
                        rewrites.push((carrier, events));
                    }
                }
                Ok(None) => {}
                Err(e) => log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {}: the parked entries of message {} cannot be \
                     rewritten ({e}); its next owner delivers them as they were parked",
                    carrier.partition,
                    carrier.sequence
                ),
            }
        }
        let written = futures_util::future::join_all(rewrites.iter().map(|(carrier, events)| {
            carrier.parts_taken(&carrier.parked_keys());
            let first = first_part(self, carrier);
            let at = (carrier.partition, carrier.revision);
            parked.write_from(at, carrier.sequence, first, events)
        }));
        let replaced =
            futures_util::future::join_all(replaces.iter().map(|(carrier, value, _)| async move {
                let key = carrier.parked_keys().pop()?;
                let revision = lock(&carrier.entry).as_ref()?.1;
                Some(parked.replace(&key, revision, value.clone()).await)
            }));
        let (written, replaced) = futures_util::future::join(written, replaced).await;
        for ((carrier, value, remaining), replaced) in replaces.into_iter().zip(replaced) {
            match replaced {
                Some(Ok(Some(revision))) => {
                    *lock(&carrier.entry) = Some((value, revision));
                    carrier.parked_remaining.store(remaining, Ordering::Release);
                }
                // Removed meanwhile (its events finished), or written by another relay
                // since it was read (an earlier owner's late rewrite), or not an entry
                // read back.
                Some(Ok(None)) => log::debug!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {}: the parked entry of message {} read back changed or \
                     went since it was read; left as it is",
                    carrier.partition,
                    carrier.sequence
                ),
                None => {}
                Some(Err(e)) => log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {}: the parked entry of message {} read back cannot be \
                     rewritten ({e}); its next owner delivers it as it was parked, perhaps \
                     again to endpoints that took its events since",
                    carrier.partition,
                    carrier.sequence
                ),
            }
        }
        for ((carrier, _), written) in rewrites.into_iter().zip(written) {
            let keys = match written {
                Ok(keys) => keys,
                Err(e) => {
                    log::warn!(
                        target: deskhook::LOG_TARGET,
                        "relay: partition {}: the parked entries of message {} cannot be \
                         rewritten ({e}); its next owner delivers them as they were parked, \
                         perhaps again to endpoints that took them since",
                        carrier.partition,
                        carrier.sequence
                    );
                    carrier.parts_taken(&e.left);
                    lock(&self.unremoved).extend(e.left);
                    continue;
                }
            };
            let old = std::mem::replace(&mut *lock(&carrier.parked), keys.clone());
            let gone = rewritten_to_remove(tenure.is_none(), &carrier, old, keys);
            if let Err(e) = parked.remove(&gone).await {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {}: the parked entries {gone:?} cannot be removed \
                     ({e}); trying again",
                    carrier.partition
                );
                lock(&self.unremoved).extend(gone);
            }
        }
    }

    /// The messages taken longer than `age` ago, not acknowledged nor parked, with no event
    /// waiting in a gate, each with the endpoints its events in delivery wait for and those
    /// among them where an event waits for a retry: those to park if every endpoint among
    /// them is retrying or failing.
    fn parkable(&self, age: Duration) -> Vec<Parkable> {
        let mut found: Vec<Parkable> = Vec::new();
        // Each carrier's place in `found`, by its address.
        let mut places: HashMap<*const Carrier, usize> = HashMap::new();
        let now = Instant::now();
        let waiting = lock(&self.waiting);
        // (ticket, endpoint) of each event waiting for a retry: the ticket's later events
        // wait behind it at that endpoint.
        let retrying: HashSet<(&str, &str)> = waiting
            .values()
            .flat_map(|p| p.retrying.iter().map(|e| (&*p.ticket, &**e)))
            .collect();
        for pending in waiting.values() {
            for carrier in &pending.carriers {
                // A parked one may wait for its acknowledgement's confirmation: not settled,
                // and not to park again.
                if carrier.message.is_none()
                    || carrier.is_settled()
                    || !carrier.parked_keys().is_empty()
                    || carrier.held.load(Ordering::Acquire) > 0
                    || now.duration_since(carrier.taken) < age
                {
                    continue;
                }
                let at = *places.entry(Arc::as_ptr(carrier)).or_insert_with(|| {
                    found.push(Parkable {
                        carrier: carrier.clone(),
                        retrying: HashSet::new(),
                        endpoints: HashSet::new(),
                    });
                    found.len() - 1
                });
                found[at].retrying.extend(
                    pending
                        .remaining
                        .iter()
                        .filter(|e| retrying.contains(&(&*pending.ticket, &***e)))
                        .cloned(),
                );
                found[at]
                    .endpoints
                    .extend(pending.remaining.iter().cloned());
            }
        }
        found.sort_by_key(|p| (p.carrier.partition, p.carrier.sequence));
        found
    }

    /// The events of `carrier` (a message, or an entry read back) to park at `at` (when
    /// `None`, each keeps the time it was parked): those not finished, each with the
    /// endpoints still to take it. `None` when one of them is not in the engine (it waits in
    /// a gate, or is on its way), so that the message cannot be acknowledged yet; unless
    /// `parked`: a parked message's events are all in the engine, and one that is no longer
    /// there has finished.
    fn to_park(
        &self,
        carrier: &Carrier,
        parked: bool,
        at: Option<jiff::Timestamp>,
    ) -> Result<Option<ToPark>, String> {
        let framed = match &carrier.message {
            Some(message) => incoming::framed(message)?,
            None => match &*lock(&carrier.entry) {
                Some((value, _)) => batch::decode_all(value, 1)?,
                None => return Ok(None),
            },
        };
        let done = lock(&carrier.done).clone();
        let done: std::collections::HashSet<&str> = done.iter().map(|d| &**d).collect();
        let waiting = lock(&self.waiting);
        let mut events = Vec::new();
        let mut ids = Vec::new();
        for event in &framed {
            // Known by its id as the engine writes it (see `incoming`), whatever the
            // publisher's spelling.
            let Some(id) = incoming::read_framed(event).map(|read| read.id) else {
                return Err("an event has no webhook-id deskhook can read".to_owned());
            };
            if done.contains(&*id) {
                continue;
            }
            let Some((id, pending)) = waiting.get_key_value(&*id) else {
                if parked {
                    continue;
                }
                return Ok(None);
            };
            if carrier.message.is_some() {
                events.push(parked::with_remaining(event, &pending.remaining, at)?);
            } else {
                // An entry read back names no endpoint it did not name: the event's delivery
                // may be shared with another carrier of it, for other endpoints.
                let named = parked::remaining_names(event);
                let remaining: Vec<Box<str>> = pending
                    .remaining
                    .iter()
                    .filter(|name| named.iter().any(|n| **n == ***name))
                    .cloned()
                    .collect();
                // Every endpoint it names took it: finished, as far as this entry goes.
                if remaining.is_empty() {
                    continue;
                }
                events.push(parked::with_remaining(event, &remaining, at)?);
            }
            ids.push(id.clone());
        }
        Ok(Some((events, ids)))
    }

    /// Whether endpoint `name` holds its events up: its last attempt failed, or it is not
    /// active (breaker open, paused, disabled).
    fn failing(&self, http: &DeliverySink, name: &str) -> bool {
        lock(&self.failing).contains(name)
            || http
                .engine()
                .registry()
                .get(name)
                .is_some_and(|lane| lock(&lane.state).public_state() != EndpointState::Active)
    }
}
