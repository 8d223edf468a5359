//! A relay's share of the partitions: taken, renewed and given back through the leases (see
//! [`leases`](super::leases)), with one task per partition owned.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use async_nats::jetstream::kv;
use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::leases::{Leases, Renewed, plan, rank};
use super::partition::{Order, Shared};
use crate::delivery::Withdrawal;

/// Told the partitions a relay owns each time they change.
pub(super) type OnPartitions = Arc<dyn Fn(&[u32]) + Send + Sync>;

/// How often [`Link`] looks at the connection: an atomic load.
const LINK_LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// Says when the relay's connection to NATS goes and when it comes back: async-nats
/// reconnects by itself, and says nothing. Looked at every [`LINK_LOOK`] by a task of its
/// own ([`watch_link`]), so that a cut is said within that, whatever the owner is doing, and
/// the partitions pull again as soon as it is back (see `Shared::reconnected`). (A
/// callback in the connection's options would say it at once, but it would replace the
/// one an application sets with `Relay::connect_options`.)
struct Link {
    client: async_nats::Client,
    connected: bool,
    /// Its `reconnected` is told each time the connection comes back, for the
    /// partitions' pulls.
    shared: Arc<Shared>,
}

impl Link {
    fn new(client: async_nats::Client, shared: Arc<Shared>) -> Link {
        Link {
            client,
            connected: true,
            shared,
        }
    }

    /// Logs a change of the connection since the last look.
    fn look(&mut self) {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        if connected == self.connected {
            return;
        }
        self.connected = connected;
        if connected {
            log::info!(target: deskhook::LOG_TARGET, "relay: connected to NATS again");
            self.shared
                .reconnected
                .send_modify(|times| *times = times.wrapping_add(1));
        } else {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: lost the connection to NATS; reconnecting (attempts in flight finish; \
                 acknowledgements and leases wait for the connection)"
            );
        }
    }
}

/// Looks at the connection every [`LINK_LOOK`], until aborted with the renewer.
async fn watch_link(client: async_nats::Client, shared: Arc<Shared>) {
    let mut link = Link::new(client, shared);
    let mut tick = tokio::time::interval(LINK_LOOK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        link.look();
    }
}

/// Logs that a request of the leases bucket got no answer in time: a warning while
/// connected (the bucket is slow), a debug record while not (the lost connection is said
/// once, by [`Link`]).
fn no_answer(client: &async_nats::Client, then: &str) {
    if client.connection_state() == async_nats::connection::State::Connected {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "relay: the leases bucket is slow to answer{then}"
        );
    } else {
        log::debug!(
            target: deskhook::LOG_TARGET,
            "relay: no connection to NATS, so no answer from the leases bucket{then}"
        );
    }
}

/// A partition this relay owns.
struct Held {
    /// The lease's revision when taken: it names the tenure's consumer.
    taken: u64,
    /// The lease's revision now (each renewal changes it).
    revision: u64,
    /// Set when the tenure ends (its lease lost, or its task failed): what it queued is
    /// withdrawn.
    withdrawn: Arc<Withdrawal>,
    order: watch::Sender<Order>,
    renewed: Instant,
    /// When the first renewal since the last one answered was sent, if its answer was lost:
    /// the lease was written at or after that when a later turn finds it written
    /// (`Renewed::Earlier`).
    unanswered: Option<Instant>,
}

/// The partitions this relay owns, shared by the owner and the renewer.
type HeldMap = Arc<Mutex<HashMap<u32, Held>>>;

fn lock(held: &HeldMap) -> MutexGuard<'_, HashMap<u32, Held>> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

/// The partitions of one relay.
pub(super) struct Owner {
    shared: Arc<Shared>,
    leases: Arc<Leases>,
    partitions: u32,
    held: HeldMap,
    tasks: JoinSet<u32>,
    /// The partition of each task still running: a partition is not taken again before
    /// its last tenure's task has ended (and let go of what it had).
    running: HashMap<tokio::task::Id, u32>,
    /// The relays seen alive at the last look, to tell a new one from a renewal.
    members: HashSet<String>,
    /// A partition being taken when a rebalance timed out: its lease may have been written
    /// though the answer never came, naming this relay with nothing pulling it.
    taking: Option<u32>,
    told: Option<OnPartitions>,
}

impl Owner {
    pub(super) fn new(
        shared: Arc<Shared>,
        leases: Arc<Leases>,
        partitions: u32,
        told: Option<OnPartitions>,
    ) -> Owner {
        Owner {
            shared,
            leases,
            partitions,
            held: HeldMap::default(),
            tasks: JoinSet::new(),
            running: HashMap::new(),
            members: HashSet::new(),
            taking: None,
            told,
        }
    }

    /// Takes, renews and gives back partitions until `stop` turns true; then ends every
    /// partition's pull and returns what stays until the relay has finished what it has in
    /// delivery: the leases, still renewed (a lease ending meanwhile would let another relay
    /// deliver the same tickets at once).
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) -> Stopping {
        let every = self.leases.lease / 3;
        // Renewals on their own, so that a slow look at the bucket never delays them.
        let client = self.shared.context.client();
        let renewer = tokio::spawn(renew(
            self.leases.clone(),
            self.held.clone(),
            self.told.clone(),
            client.clone(),
        ));
        let link = tokio::spawn(watch_link(client.clone(), self.shared.clone()));
        // A panic below (a bug) must not leave the renewals running without partitions:
        // the leases would never end, and their partitions never go to other relays.
        let mut armed = super::run::AbortOnDrop(vec![renewer.abort_handle(), link.abort_handle()]);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changes = self.leases.changes().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // A watch that broke (the servers went away) is made again, so that
                    // hand-backs and departures are seen at once, not at the next tick.
                    if changes.is_none() {
                        changes = tokio::time::timeout(every, self.leases.changes())
                            .await
                            .ok()
                            .flatten();
                    }
                }
                change = next_change(&mut changes) => {
                    if !self.matters(change.as_ref()) {
                        continue;
                    }
                }
                Some(ended) = self.tasks.join_next_with_id() => self.ended(ended).await,
                () = stopping(&mut stop) => break,
            }
            if tokio::time::timeout(every, self.rebalance()).await.is_err() {
                no_answer(&client, "; trying again");
            }
        }
        for held in lock(&self.held).values() {
            let _ = held.order.send(Order::End);
        }
        // Ended as told: the renewals go on until the relay has finished (see `Stopping`).
        armed.0.clear();
        Stopping {
            leases: self.leases,
            held: self.held,
            renewer,
            link,
            tasks: self.tasks,
        }
    }

    /// Whether a change of the bucket may change the plan: a lease given back, a relay gone
    /// or new (renewals do not).
    fn matters(&self, change: Option<&kv::Entry>) -> bool {
        change.is_none_or(|entry| match entry.operation {
            kv::Operation::Put => entry
                .key
                .strip_prefix("m.")
                .is_some_and(|member| !self.members.contains(member)),
            kv::Operation::Delete | kv::Operation::Purge => true,
        })
    }

    /// A partition's task ended: a partition handed back is given back, and one whose
    /// task failed too (nothing would pull it while the lease lived on).
    async fn ended(&mut self, ended: Result<(tokio::task::Id, u32), tokio::task::JoinError>) {
        let id = match &ended {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let Some(p) = self.running.remove(&id) else {
            return;
        };
        let Some(held) = lock(&self.held).remove(&p) else {
            return;
        };
        if let Err(e) = ended {
            log::error!(
                target: deskhook::LOG_TARGET,
                "relay: partition {p}'s task failed ({e}); withdrawing what it queued and \
                 giving the partition back"
            );
            // As a lost lease does: nothing it queued may reach an endpoint once the next
            // owner delivers the partition.
            held.withdrawn.store(true, Ordering::Release);
            self.shared.book.abandon(Some((p, held.taken)));
            self.shared.http.engine().drop_withdrawn();
            self.leases.give_back(p).await;
        } else if *held.order.borrow() == Order::HandBack {
            self.leases.give_back(p).await;
            log::info!(target: deskhook::LOG_TARGET, "relay: gave partition {p} back");
        }
        tell(self.told.as_ref(), &self.held);
    }

    /// A take cut short by a rebalance's timeout may have written its lease: owned, then,
    /// rather than left to expire with nothing pulling the partition. Whether it did.
    async fn adopt_orphan(&mut self) -> bool {
        let Some(p) = self.taking else {
            return false;
        };
        // The bucket not answering: `taking` stays, to look again at the next rebalance.
        let Ok(written) = self.leases.lease_of(p).await else {
            return false;
        };
        let free = !lock(&self.held).contains_key(&p) && !self.running.values().any(|q| *q == p);
        let Some(revision) = written.filter(|_| free) else {
            self.taking = None;
            return false;
        };
        // `taking` stays until the renewal answers: a rebalance cut short here (its timeout)
        // looks again next time.
        // Written up to a rebalance's timeout ago: renewed first, so that it does not end
        // under the new tenure before the renewer's first turn.
        let asked = Instant::now();
        match self.leases.renew(p, revision).await {
            Renewed::At(revision) => {
                self.taking = None;
                log::info!(target: deskhook::LOG_TARGET, "relay: partition {p}'s lease was taken though its answer came late; owning it");
                self.start(p, revision, asked);
                true
            }
            // Written by an earlier request, at a time not known: not owned on it.
            Renewed::Earlier(_) => {
                self.taking = None;
                false
            }
            Renewed::Lost => {
                self.taking = None;
                false
            }
            Renewed::Unknown(e) => {
                log::warn!(target: deskhook::LOG_TARGET, "relay: {e}");
                false
            }
        }
    }

    /// Starts pulling partition `p`, whose lease this relay took at `revision` with a
    /// request sent at `asked` (the lease lasts from when the server wrote it, after that).
    fn start(&mut self, p: u32, revision: u64, asked: Instant) {
        let (order, orders) = watch::channel(Order::Keep);
        let shared = self.shared.clone();
        let withdrawn = Arc::new(Withdrawal::new(deadline(asked, self.leases.lease)));
        let tenure = withdrawn.clone();
        let task = self.tasks.spawn(async move {
            shared.own((p, revision), tenure, orders).await;
            p
        });
        self.running.insert(task.id(), p);
        lock(&self.held).insert(
            p,
            Held {
                taken: revision,
                revision,
                withdrawn,
                order,
                renewed: asked,
                unanswered: None,
            },
        );
        log::info!(target: deskhook::LOG_TARGET, "relay: took partition {p}");
    }

    /// Takes free partitions up to this relay's share, or hands back what is over it.
    async fn rebalance(&mut self) {
        let mut changed = self.adopt_orphan().await;
        let (members, leased) = match self.leases.look().await {
            Ok(found) => found,
            Err(e) => {
                log::warn!(target: deskhook::LOG_TARGET, "relay: {e}");
                if changed {
                    tell(self.told.as_ref(), &self.held);
                }
                return;
            }
        };
        self.members = members;
        let keeping: Vec<u32> = lock(&self.held)
            .iter()
            .filter(|(_, h)| *h.order.borrow() == Order::Keep)
            .map(|(p, _)| *p)
            .collect();
        let plan = plan(
            self.partitions,
            self.members.len(),
            keeping.len(),
            &leased,
            &self.leases.me,
        );
        for p in plan.take {
            // A lease that may be ours is still to look at (`taking`): taking another now
            // would forget it.
            if self.taking.is_some() {
                break;
            }
            // Its last tenure is still letting go (its lease was lost): not yet.
            if self.running.values().any(|q| *q == p) {
                continue;
            }
            self.taking = Some(p);
            let asked = Instant::now();
            match self.leases.take(p).await {
                Ok(Some(revision)) => {
                    self.taking = None;
                    self.start(p, revision, asked);
                    changed = true;
                }
                Ok(None) => self.taking = None,
                Err(e) => {
                    // `taking` stays: the next rebalance looks whether the lease is ours.
                    log::warn!(target: deskhook::LOG_TARGET, "relay: {e}");
                    break;
                }
            }
        }
        let mut giving = keeping;
        giving.sort_by_key(|p| std::cmp::Reverse(rank(&self.leases.me, *p)));
        for p in giving.into_iter().take(plan.give) {
            if let Some(held) = lock(&self.held).get(&p) {
                let _ = held.order.send(Order::HandBack);
                log::info!(target: deskhook::LOG_TARGET, "relay: handing partition {p} back");
            }
        }
        if changed {
            tell(self.told.as_ref(), &self.held);
        }
    }
}

/// What a stopping relay keeps until it has finished what it has in delivery (see
/// [`Owner::run`]).
pub(super) struct Stopping {
    pub(super) leases: Arc<Leases>,
    held: HeldMap,
    renewer: tokio::task::JoinHandle<()>,
    /// The task that says when the connection goes and comes back.
    link: tokio::task::JoinHandle<()>,
    /// The partitions' tasks, ended (`Order::End`) but waiting in case a lease is lost
    /// meanwhile, to withdraw what its tenure has queued.
    tasks: JoinSet<u32>,
}

impl Stopping {
    /// Stops renewing; returns the leases still held, each with the revision that names its
    /// tenure's consumer, for the relay to give back.
    pub(super) fn release(mut self) -> (Arc<Leases>, Vec<(u32, u64)>) {
        self.renewer.abort();
        self.link.abort();
        self.tasks.abort_all();
        let held = lock(&self.held)
            .iter()
            .map(|(p, h)| (*p, h.taken))
            .collect();
        (self.leases.clone(), held)
    }
}

impl Drop for Stopping {
    /// A relay's run dropped before it gave its leases back (its caller gave up on it) stops
    /// renewing them too: they end, and the other relays take the partitions.
    fn drop(&mut self) {
        self.renewer.abort();
        self.link.abort();
    }
}

/// When the events of a tenure whose lease was last written after `sent` are read as
/// withdrawn, should the renewer not have renewed it by then (see
/// [`Withdrawal`](crate::delivery::Withdrawal)): seven eighths of the lease after `sent`,
/// before the lease can end (a lease from then). The renewer gives a lease up at a turn
/// that ends half a lease after its last renewal was sent, and a renewal answered in time
/// comes before this deadline, but for one answered late at the next turn: the deadline
/// passes first when the renewer does not run in time.
fn deadline(sent: Instant, lease: std::time::Duration) -> Option<std::time::Instant> {
    sent.into_std().checked_add(lease - lease / 8)
}

/// What a renewal's answer `renewed`, for a turn sent at `sent`, does to the tenure of
/// partition `p` that `entry` holds: `Some` reason when it ends, the tenure lost. `lease`
/// and `turn` (the longest a turn of the renewer takes with its wait for answers) are the
/// renewer's timing.
///
/// Past its deadline, the engine's workers start no attempt of the tenure any more, whatever
/// the renewal says. (Not one whose hand-back withdrew its events: its lease is renewed
/// until the partition is given back.) A renewal moves the deadline on, and is told whether
/// the old one had passed.
fn outcome(
    p: u32,
    entry: &mut Held,
    renewed: Renewed,
    sent: Instant,
    (lease, turn): (std::time::Duration, std::time::Duration),
) -> Option<String> {
    let late = || {
        Some(
            "it was not renewed in time (the relay was held up, frozen or without CPU, for \
             most of the lease)"
                .to_owned(),
        )
    };
    let renewed_at = |entry: &mut Held, at: Instant| {
        let passed = deadline(at, lease).map_or_else(
            || entry.withdrawn.past_deadline(),
            |until| entry.withdrawn.extend(until),
        );
        if !passed {
            entry.renewed = at;
            entry.unanswered = None;
        }
        passed
    };
    match renewed {
        Renewed::At(revision) => {
            entry.revision = revision;
            if renewed_at(entry, sent) {
                return late();
            }
            None
        }
        // Written by a turn whose answer was lost: the first of those since the last
        // renewal answered, or a later one. Its revision goes on; its time is that first
        // turn's, if known, else the last one known.
        Renewed::Earlier(revision) => {
            entry.revision = revision;
            let passed = match entry.unanswered {
                Some(first) => renewed_at(entry, first),
                None => entry.withdrawn.past_deadline(),
            };
            if passed { late() } else { None }
        }
        Renewed::Lost => {
            Some("it is no longer this relay's (it ran out, or another relay took it)".to_owned())
        }
        Renewed::Unknown(_) if entry.withdrawn.past_deadline() => late(),
        Renewed::Unknown(e) if entry.renewed.elapsed() + turn >= lease => {
            Some(format!("it could not be renewed before it ended ({e})"))
        }
        Renewed::Unknown(e) => {
            entry.unanswered.get_or_insert(sent);
            log::warn!(target: deskhook::LOG_TARGET, "relay: partition {p}: {e}; trying again");
            None
        }
    }
}

/// Every quarter of the lease: says this relay is alive and renews every lease it holds,
/// all at once (until the relay has given them back: see [`Stopping`]); a lease lost, or
/// not renewed in time, stops its partition at once.
///
/// Each turn waits at most a turn for its answers, and a lease counts from when its last
/// renewal was sent (the server wrote it later). A lease not renewed is given up at the
/// first turn that ends less than two turns before it would: the next turn ends at most
/// that much later, so a relay never delivers a partition past its lease (one renewal that
/// times out, or two in a row that fail, give it up before it ends).
async fn renew(
    leases: Arc<Leases>,
    held: HeldMap,
    told: Option<OnPartitions>,
    client: async_nats::Client,
) {
    let every = leases.lease / 4;
    let wait = every;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A lease lasts from when the server wrote it, which is after this.
        let sent = Instant::now();
        let alive = tokio::time::timeout(wait, leases.join());
        // With each tenure (the revision it was taken at): an answer is for it alone, not
        // for one that took the partition again meanwhile.
        let owned: Vec<(u32, u64, u64)> = lock(&held)
            .iter()
            .map(|(p, h)| (*p, h.taken, h.revision))
            .collect();
        let renewals = owned.iter().map(|(p, taken, revision)| {
            let leases = &leases;
            async move {
                let renewed = tokio::time::timeout(wait, leases.renew(*p, *revision)).await;
                (
                    (*p, *taken),
                    renewed.unwrap_or_else(|_| Renewed::Unknown("no answer in time".into())),
                )
            }
        });
        let (alive, renewed) = tokio::join!(alive, futures_util::future::join_all(renewals));
        match alive {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!(target: deskhook::LOG_TARGET, "relay: {e}"),
            Err(_) => no_answer(&client, ""),
        }
        let mut lost = Vec::new();
        {
            let mut held = lock(&held);
            for ((p, taken), renewed) in renewed {
                let Some(entry) = held.get_mut(&p).filter(|entry| entry.taken == taken) else {
                    continue;
                };
                if let Some(why) = outcome(p, entry, renewed, sent, (leases.lease, every + wait)) {
                    lost.push((p, why));
                }
            }
            for (p, _) in &lost {
                if let Some(entry) = held.remove(p) {
                    // At once, not when the partition's task next looks at its orders (it
                    // may be inside a request to the server for seconds): from here on no
                    // event of this tenure is attempted.
                    entry.withdrawn.store(true, Ordering::Release);
                    let _ = entry.order.send(Order::Lost);
                }
            }
        }
        for (p, why) in &lost {
            log::error!(
                target: deskhook::LOG_TARGET,
                "relay: lease of partition {p} lost: {why}; stopped pulling it and withdrew what \
                 it had queued (its next owner delivers those; an attempt in flight finishes, \
                 and may arrive twice)"
            );
        }
        if !lost.is_empty() {
            tell(told.as_ref(), &held);
        }
    }
}

/// Tells [`Relay::on_partitions`](super::Relay::on_partitions) what is owned now.
fn tell(told: Option<&OnPartitions>, held: &HeldMap) {
    if let Some(told) = told {
        let mut owned: Vec<u32> = lock(held).keys().copied().collect();
        owned.sort_unstable();
        told(&owned);
    }
}

/// Resolves once the relay stops.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// The next change of the bucket; never, while it cannot be watched (the run loop makes the
/// watch again at its next tick).
async fn next_change(changes: &mut Option<kv::Watch>) -> Option<kv::Entry> {
    match changes {
        Some(watch) => match watch.next().await {
            Some(Ok(entry)) => Some(entry),
            Some(Err(_)) | None => {
                *changes = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A lease of 8 s: turns every 2 s, each waiting 2 s at most for its answers.
    const LEASE: Duration = Duration::from_secs(8);
    const TURN: Duration = Duration::from_secs(4);

    /// A tenure last renewed by a turn sent `ago`, with that renewal's deadline.
    fn held(ago: Duration) -> Held {
        let renewed = Instant::now() - ago;
        Held {
            taken: 1,
            revision: 1,
            withdrawn: Arc::new(Withdrawal::new(deadline(renewed, LEASE))),
            order: watch::channel(Order::Keep).0,
            renewed,
            unanswered: None,
        }
    }

    /// A lease found written by a turn whose answer was lost counts from the first such
    /// turn (it was written then or later), not from the last answered one: else the
    /// deadline, left where it was, would end a lease the server holds.
    #[test]
    fn a_lease_found_written_counts_from_the_first_turn_whose_answer_was_lost() {
        let mut entry = held(Duration::from_secs(3));
        let first = Instant::now() - Duration::from_secs(1);
        let unknown = Renewed::Unknown("no answer in time".into());
        assert_eq!(outcome(0, &mut entry, unknown, first, (LEASE, TURN)), None);
        let now = Instant::now();
        assert_eq!(
            outcome(0, &mut entry, Renewed::Earlier(3), now, (LEASE, TURN)),
            None
        );
        assert_eq!((entry.renewed, entry.revision), (first, 3));
        assert!(!entry.withdrawn.load(Ordering::Acquire));
    }

    /// A renewal answered after the deadline ends the tenure: the workers may have read its
    /// events as withdrawn, for good. An unanswered turn past it does too.
    #[test]
    fn a_renewal_after_the_deadline_ends_the_tenure() {
        let mut late = held(LEASE);
        let renewed = outcome(0, &mut late, Renewed::At(2), Instant::now(), (LEASE, TURN));
        assert!(renewed.is_some_and(|why| why.contains("not renewed in time")));
        assert!(late.withdrawn.load(Ordering::Acquire));
        let mut unanswered = held(LEASE);
        let unknown = Renewed::Unknown("no answer in time".into());
        let why = outcome(0, &mut unanswered, unknown, Instant::now(), (LEASE, TURN));
        assert!(why.is_some_and(|why| why.contains("not renewed in time")));
    }

    /// A tenure handing back has its events withdrawn while its lease is still renewed (until
    /// the partition is given back): a renewal in time keeps it.
    #[test]
    fn a_tenure_handing_back_is_renewed() {
        let mut entry = held(Duration::from_secs(2));
        entry.withdrawn.store(true, Ordering::Release);
        let now = Instant::now();
        assert_eq!(
            outcome(0, &mut entry, Renewed::At(2), now, (LEASE, TURN)),
            None
        );
        assert_eq!(entry.renewed, now);
    }
}
