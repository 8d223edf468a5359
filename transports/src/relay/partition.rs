//! One partition a relay owns: its consumer, the continuous pull, and each message taken
//! (handed to the engine in [`handing`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::stream::ConsumerErrorKind as consumer_error;
use async_nats::jetstream::{self, AckKind, consumer};
use futures_util::StreamExt as _;
use tokio::sync::watch;

use super::audit::Audit;
use super::book::Book;
use super::foreign;
use super::incoming::{self, Incoming};
use super::parked::Parked;
use crate::delivery::{DeliverySink, Withdrawal};
use crate::nats::StreamSettings;

mod handing;

pub(super) use handing::deliver;
use handing::letter;

/// When a message written by a newer deskhook, which this relay cannot read, comes again.
const NEWER_AGAIN_IN: Duration = Duration::from_secs(30);

/// What the owner of a partition is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Order {
    /// Pull and deliver.
    Keep,
    /// Take nothing more; once what is in delivery is acknowledged or parked, or the
    /// relay's grace has passed, give the partition back (what is left is withdrawn, for
    /// the next owner).
    HandBack,
    /// Take nothing more: the relay stops, and what is in delivery has the relay's grace
    /// to finish, under the lease (still renewed until the relay gives it back).
    End,
    /// The lease is lost: take nothing more, and let go of what is in delivery. What is still
    /// queued is withdrawn from the engine unattempted, so that it cannot reach an endpoint
    /// after the next owner delivered the ticket's later events; an attempt in flight
    /// finishes.
    Lost,
}

/// One relay's tenure of a partition: under one lease, from taking it to giving it up.
pub(super) struct Tenure {
    partition: u32,
    /// The lease's revision when taken: it names the tenure's consumer.
    revision: u64,
    /// Set when the lease is lost: the events taken in this tenure are withdrawn.
    withdrawn: Arc<Withdrawal>,
}

/// Why a partition has no consumer of this relay's.
enum NoConsumer {
    /// The servers failed or were slow: try again.
    Failed(String),
    /// Another relay owns the partition now, by the server's lease, and has made its
    /// consumer: this tenure has ended.
    Superseded(String),
    /// A consumer that is not this relay group's has the partition's subjects (see
    /// `foreign`): left alone, and tried again.
    Foreign(String),
}

/// How the pull loop ended.
enum Pulled {
    /// Told to stop.
    Ordered,
    /// Start again with a new consumer (messages lost on the way, or the pull broke).
    Again,
}

/// What every partition of a relay shares.
pub(super) struct Shared {
    pub(super) http: DeliverySink,
    pub(super) book: Arc<Book>,
    pub(super) stream: jetstream::stream::Stream,
    /// The connection's JetStream context (to store a skipped message again).
    pub(super) context: jetstream::Context,
    pub(super) settings: StreamSettings,
    pub(super) durable: String,
    pub(super) ack_wait: Duration,
    /// How long what is in delivery may take to finish (or be parked) when the relay stops
    /// or hands a partition back.
    pub(super) grace: Duration,
    /// Messages a partition may have outstanding (its consumer's `max_ack_pending`).
    pub(super) max_pending: usize,
    pub(super) max_handoffs: i64,
    /// Whether consumers keep their state in memory (a stream of one replica).
    pub(super) memory_consumers: bool,
    /// Where events held up by failing endpoints are parked (see `parked`).
    pub(super) parked: Arc<Parked>,
    /// The leases, to tell a later owner's consumer from a stale one.
    pub(super) leases: Arc<super::leases::Leases>,
    /// The events whose dead letters are not published yet (see `dead`).
    pub(super) unpublished: Arc<super::dead::Unpublished>,
    /// Counts the times the connection to NATS came back (see `owner::Link`): each pull
    /// starts again then, as the servers may have forgotten its request (a restart), which
    /// the pull would otherwise notice only at its missed heartbeats, seconds later.
    pub(super) reconnected: watch::Sender<u64>,
}

/// How long to wait before trying again after a failure of the servers.
const PAUSE: Duration = Duration::from_millis(500);

/// How often a partition another group's consumer holds is looked at again.
const FOREIGN_AGAIN: Duration = Duration::from_secs(5);

/// The shortest time between two looks for a message the consumer skipped.
const AUDIT_AT_LEAST: Duration = Duration::from_millis(100);

impl Shared {
    /// The name of this relay's consumer for `partition`, owned under lease `revision`: a new
    /// owner uses a new name, so that a relay that lost its lease cannot pull from it.
    pub(super) fn consumer_name(&self, partition: u32, revision: u64) -> String {
        format!("{}-{partition}-{revision}", self.durable)
    }

    /// Owns `partition` under lease `revision` until told otherwise: makes its consumer
    /// (in place of its group's older one), delivers the events parked in it, then
    /// pulls continuously and hands each message to the engine. At [`Order::HandBack`] it
    /// waits until what it took is acknowledged or parked (the relay's grace at most),
    /// withdraws the rest, then deletes its consumer.
    pub(super) async fn own(
        &self,
        (partition, revision): (u32, u64),
        withdrawn: Arc<Withdrawal>,
        mut order: watch::Receiver<Order>,
    ) {
        let tenure = Tenure {
            partition,
            revision,
            withdrawn,
        };
        let name = self.consumer_name(partition, revision);
        // A consumer of this very name is not this tenure's: a leases bucket made again
        // starts its revisions over, and a relay that died under the old one left its
        // consumer. Found again as it is, it would bring back what it had handed out only
        // at `ack_wait`, after the messages behind it. (Told to stop meanwhile, the loop
        // below ends at once.)
        let _gone = self.delete_until_gone(partition, &name, &mut order).await;
        let mut unparked = false;
        let mut superseded = false;
        let mut blocked = false;
        loop {
            if *order.borrow() != Order::Keep {
                break;
            }
            let made = tokio::select! {
                made = self.consumer(partition, &name) => made,
                () = until(&mut order, |o| *o != Order::Keep) => break,
            };
            let consumer = match made {
                Ok(consumer) => consumer,
                // The server gave the lease to another relay, which has pulled already:
                // what this tenure queued is withdrawn now, not at the renewer's next turn
                // (up to a quarter of the lease away), in which it would go on reaching
                // the endpoints after the ticket's later events.
                Err(NoConsumer::Superseded(e)) => {
                    log::error!(
                        target: deskhook::LOG_TARGET,
                        "relay: partition {partition}: {e}; stopped pulling it and withdrew \
                         what it had queued"
                    );
                    superseded = true;
                    break;
                }
                Err(NoConsumer::Failed(e)) => {
                    log::warn!(target: deskhook::LOG_TARGET, "relay: partition {partition}: {e}; trying again");
                    let _ = tokio::time::timeout(PAUSE, order.changed()).await;
                    continue;
                }
                // Said once a tenure: the partition waits until that consumer is gone.
                Err(NoConsumer::Foreign(e)) => {
                    if !blocked {
                        log::error!(
                            target: deskhook::LOG_TARGET,
                            "relay: partition {partition}: {e}; not pulled until it is gone"
                        );
                        blocked = true;
                    }
                    let _ = tokio::time::timeout(FOREIGN_AGAIN, order.changed()).await;
                    continue;
                }
            };
            // What the last owners parked, read after their consumer is gone (ours replaced
            // it, so that they can park no more), and delivered before anything pulled.
            if !unparked {
                match self.parked.of_partition(partition).await {
                    Ok(entries) => {
                        if !self.unpark(&tenure, entries, &mut order).await {
                            break;
                        }
                        unparked = true;
                    }
                    Err(e) => {
                        log::warn!(
                            target: deskhook::LOG_TARGET,
                            "relay: partition {partition}: cannot read its parked events ({e}); \
                             trying again"
                        );
                        let _ = tokio::time::timeout(PAUSE, order.changed()).await;
                        continue;
                    }
                }
            }
            match self.pull(&tenure, &consumer, &mut order).await {
                Pulled::Ordered => break,
                Pulled::Again => {
                    if !self.delete_until_gone(partition, &name, &mut order).await {
                        break;
                    }
                }
            }
        }
        // A superseded tenure's lease is another relay's: it rewrites no parked entry and
        // acknowledges nothing, whatever order came meanwhile (below, as for a lost one).
        if !superseded && *order.borrow() == Order::HandBack {
            let book = self.book.clone();
            let finished =
                tokio::time::timeout(self.grace, book.until(|b| b.outstanding(partition) > 0));
            tokio::select! {
                finished = finished => {
                    // What is left in delivery is parked: the next owner delivers it, to the
                    // endpoints still waiting for it. What is neither parked nor finished
                    // after the grace (an event too large to park, for an endpoint that
                    // keeps failing) is left in the stream: the next owner delivers it
                    // again, to every endpoint.
                    if finished.is_err() {
                        log::warn!(
                            target: deskhook::LOG_TARGET,
                            "relay: partition {partition}: {} message(s) neither finished nor \
                             parked within the grace ({:?}); left for its next owner, which \
                             delivers them again",
                            self.book.outstanding(partition),
                            self.grace
                        );
                    }
                    tenure.withdrawn.store(true, Ordering::Release);
                    // What waits in the engine goes; a request still on the wire ends first,
                    // or the next owner would send the ticket's event again, and its next
                    // ones, while this one is still open.
                    self.http.engine().drop_withdrawn();
                    let engine = self.http.engine();
                    // Listed once: a withdrawn event's job that is not being attempted never
                    // will be (`Schedule::take` lets it go), so the list only shrinks, and
                    // the book's lock is not taken again while the wait polls.
                    let mut open = self.book.in_delivery((partition, revision));
                    let attempting = move || {
                        open.retain(|(ticket, endpoints)| {
                            endpoints.iter().any(|e| engine.attempting(e, ticket))
                        });
                        open.len()
                    };
                    let what = format!("partition {partition} is");
                    tokio::select! {
                        () = super::run::until_attempts_end(&self.http, &what, attempting) => {}
                        () = until(&mut order, |o| *o == Order::Lost) => {}
                    }
                    // Within `ack_wait`, and only while the lease is held: another relay
                    // may read the entries once it is lost.
                    let rewrite = self
                        .book
                        .rewrite_parked(Some((partition, revision)), &self.parked);
                    tokio::select! {
                        _ = tokio::time::timeout(self.ack_wait, rewrite) => {}
                        () = until(&mut order, |o| *o == Order::Lost) => {}
                    }
                    let parked = self.book.abandon(Some((partition, revision)));
                    self.http.engine().drop_withdrawn();
                    // What finished is acknowledged, and its entries removed, before the
                    // next owner reads them.
                    self.book.flush(self.ack_wait).await;
                    if parked > 0 {
                        log::info!(
                            target: deskhook::LOG_TARGET,
                            "relay: partition {partition}: {parked} parked event(s) withdrawn \
                             for its next owner"
                        );
                    }
                    // The acknowledgements are on their way: the server has them before the
                    // consumer goes, or the next owner would deliver them again.
                    self.book.confirm(partition, self.ack_wait).await;
                    let _ = self.stream.delete_consumer(&name).await;
                }
                () = until(&mut order, |o| matches!(o, Order::End | Order::Lost)) => {}
            }
        }
        if !superseded && *order.borrow() == Order::End {
            // The relay stops: what is in delivery has its grace, under the lease the relay
            // renews until it gives the partition back. Lost meanwhile, it is let go of as
            // below (the task is ended once the lease is given back).
            until(&mut order, |o| *o == Order::Lost).await;
        }
        if superseded || *order.borrow() == Order::Lost {
            tenure.withdrawn.store(true, Ordering::Release);
            let let_go = self.book.abandon(Some((partition, revision)));
            self.http.engine().drop_withdrawn();
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: partition {partition}: {let_go} event(s) in delivery left \
                 unacknowledged for its next owner (counted as handed back); those not \
                 attempted yet are withdrawn"
            );
        }
    }

    /// Deletes this relay's consumer `name` of `partition`, trying again until it is gone;
    /// `false` when told to stop first. It must go before the pull starts again: found again
    /// under its name, it would keep what was lost on the way pending until `ack_wait` while
    /// the messages behind it flow, and a ticket's later events would overtake its earlier
    /// ones (seen when a cluster node was killed and the servers were slow to answer).
    async fn delete_until_gone(
        &self,
        partition: u32,
        name: &str,
        order: &mut watch::Receiver<Order>,
    ) -> bool {
        loop {
            match self.stream.delete_consumer(name).await {
                Ok(_) => return true,
                Err(e)
                    if matches!(e.kind(), consumer_error::JetStream(ref js)
                    if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) =>
                {
                    return true;
                }
                Err(e) => {
                    log::warn!(
                        target: deskhook::LOG_TARGET,
                        "relay: partition {partition}: cannot delete consumer '{name}' to pull \
                         again: {e}; trying again"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(PAUSE) => {}
                        () = until(order, |o| *o != Order::Keep) => return false,
                    }
                }
            }
        }
    }

    /// The lease revision in the name of a consumer of `partition` (see
    /// [`Shared::consumer_name`]); `None` for another name.
    fn revision_in(&self, partition: u32, name: &str) -> Option<u64> {
        foreign::parse_name(&self.durable, name)
            .filter(|(p, _)| *p == partition)
            .map(|(_, revision)| revision)
    }

    /// This relay's consumer of `partition`, in place of its group's older consumer of it.
    /// A consumer of a later tenure, with a lease the server says is no longer ours, means
    /// our lease has ended: it is left alone ([`NoConsumer::Superseded`]). One of another
    /// group, or made by hand, that takes the partition's messages is left alone too
    /// ([`NoConsumer::Foreign`]).
    async fn consumer(
        &self,
        partition: u32,
        name: &str,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, NoConsumer> {
        let filter = self.settings.partition_filter(partition);
        let ours = self.revision_in(partition, name);
        let mut others = self.stream.consumers();
        let mut stale = Vec::new();
        while let Some(info) = others.next().await {
            let info =
                info.map_err(|e| NoConsumer::Failed(format!("cannot list the consumers: {e}")))?;
            // Another group's, or one made by hand: never deleted (see `foreign`).
            if !foreign::is_ours(&self.durable, &info.name)
                && foreign::takes(&foreign::filters_of(&info.config), &filter)
            {
                return Err(NoConsumer::Foreign(foreign::explain(
                    &info.name,
                    info.config.description.as_deref(),
                    partition,
                    (self.settings.stream_name(), &self.durable),
                )));
            }
            if info.config.filter_subject == filter && info.name != name {
                if let (Some(ours), Some(theirs)) = (ours, self.revision_in(partition, &info.name))
                    && theirs > ours
                    // Still ours at our revision or later: that consumer is stale (a leases
                    // bucket made again starts its revisions over).
                    && self
                        .leases
                        .lease_of(partition)
                        .await
                        .map_err(NoConsumer::Failed)?
                        .is_none_or(|now| now < ours)
                {
                    return Err(NoConsumer::Superseded(format!(
                        "consumer '{}' of a later owner exists: this relay's lease has ended",
                        info.name
                    )));
                }
                stale.push(info.name);
            }
        }
        for other in stale {
            // A consumer of a relay that gave the partition up or lost it: what it had not
            // acknowledged is still in the stream, and ours starts with it.
            match self.stream.delete_consumer(&other).await {
                Ok(_) => {}
                // Gone meanwhile: a cluster's list can lag behind.
                Err(e)
                    if matches!(e.kind(), consumer_error::JetStream(ref js)
                    if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) => {}
                Err(e) => {
                    return Err(NoConsumer::Failed(format!(
                        "cannot delete the old consumer '{other}': {e}"
                    )));
                }
            }
        }
        let config = consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            description: Some(format!("{}{partition}", foreign::DESCRIPTION)),
            filter_subject: filter.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_ack_pending: i64::try_from(self.max_pending).unwrap_or(i64::MAX),
            max_deliver: -1,
            // The stream is the durable record (an acknowledged event leaves it): on one
            // server the consumer keeps its state in memory (a restart loses it, and the
            // consumer made again starts at the first unacknowledged event). In a cluster
            // it has the stream's replicas, so that it lives on when a node dies.
            memory_storage: self.memory_consumers,
            ..Default::default()
        };
        self.stream
            .get_or_create_consumer(name, config)
            .await
            .map_err(|e| {
                NoConsumer::Failed(format!("cannot make consumer '{name}' for '{filter}': {e}"))
            })
    }

    /// Pulls from `consumer` until told to stop, or until the pull must start again.
    async fn pull(
        &self,
        tenure: &Tenure,
        consumer: &consumer::Consumer<consumer::pull::Config>,
        order: &mut watch::Receiver<Order>,
    ) -> Pulled {
        let partition = tenure.partition;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.max_pending.clamp(1, 500))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                log::warn!(target: deskhook::LOG_TARGET, "relay: partition {partition}: cannot pull: {e}");
                tokio::time::sleep(PAUSE).await;
                return Pulled::Again;
            }
        };
        // The consumer numbers its deliveries: a number skipped is a message lost on the
        // way (a reconnect), which the server hands out again only after ack_wait, after
        // those behind it. Pulling again from the first unacknowledged keeps the order.
        // (A consumer found rather than made has delivered some already.)
        let mut next_delivery = consumer.cached_info().delivered.consumer_sequence + 1;
        // Every ack_wait, a look for a message the consumer has passed but the stream still
        // holds (see `look`).
        let every = self.ack_wait.max(AUDIT_AT_LEAST);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut audit = Audit::default();
        let name = &consumer.cached_info().name;
        let mut reconnected = self.reconnected.subscribe();
        loop {
            let message = tokio::select! {
                biased;
                () = until(order, |o| *o != Order::Keep) => return Pulled::Ordered,
                _ = reconnected.changed() => {
                    log::debug!(
                        target: deskhook::LOG_TARGET,
                        "relay: partition {partition}: connected again; pulling again"
                    );
                    return Pulled::Again;
                }
                message = messages.next() => message,
                _ = tick.tick() => {
                    self.look(partition, name, &mut audit).await;
                    continue;
                }
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    log::warn!(target: deskhook::LOG_TARGET, "relay: partition {partition}: pulling: {e}; pulling again");
                    tokio::time::sleep(PAUSE).await;
                    return Pulled::Again;
                }
                None => return Pulled::Again,
            };
            let delivery = message
                .info()
                .map_or(next_delivery, |i| i.consumer_sequence);
            if delivery > next_delivery {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {partition}: {} message(s) lost on the way; pulling again \
                     from the first unacknowledged",
                    delivery - next_delivery
                );
                return Pulled::Again;
            }
            next_delivery = next_delivery.max(delivery + 1);
            if !self.take(tenure, message, order).await {
                return Pulled::Ordered;
            }
        }
    }

    /// Hands the events of one message (one, or a batch's) to the engine, for every
    /// endpoint that takes them; `false` when told to stop while waiting for room (the
    /// message stays in the stream).
    async fn take(
        &self,
        tenure: &Tenure,
        message: jetstream::Message,
        order: &mut watch::Receiver<Order>,
    ) -> bool {
        let events = match incoming::events(&message) {
            Ok(events) => events,
            // Written by a newer deskhook (a rolling upgrade): not this relay's to end. It
            // comes again later, to this relay or to one that reads it; the ticket's later
            // events may go out before it meanwhile.
            Err(why) if incoming::from_newer(&message) => {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "relay: message on '{}' {why}; it looks written by a newer deskhook: left \
                     in the stream (again in {:?}): upgrade this relay",
                    message.subject,
                    NEWER_AGAIN_IN
                );
                settle(&message, AckKind::Nak(Some(NEWER_AGAIN_IN))).await;
                return true;
            }
            Err(why) => {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "relay: message on '{}' {why}; terminated (counted in the relay's report)",
                    message.subject
                );
                self.book.counts.terminated.fetch_add(1, Ordering::Relaxed);
                settle(&message, AckKind::Term).await;
                return true;
            }
        };
        let handoffs = message.info().map_or(1, |info| info.delivered);
        // A copy handed out again while this relay delivers (or holds in a gate, or just
        // acknowledged) its events is not one that keeps failing: it joins them below rather than being given
        // up, which would dead-letter events that are being delivered.
        let known =
            |e: &Incoming| self.book.knows(&e.id) || self.book.gates.holds(&e.ticket, &e.id);
        if handoffs > self.max_handoffs && !events.iter().any(known) {
            for event in &events {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "relay: event {} was handed out {handoffs} times without being \
                     acknowledged; given up",
                    event.id
                );
                let lanes = self.route(event);
                if lanes.is_empty() {
                    self.http.engine().count_unrouted(event.event_type);
                    self.book.counts.unrouted.fetch_add(1, Ordering::Relaxed);
                }
                for lane in lanes {
                    self.http.write_dead_letter(letter(
                        event,
                        &lane.name,
                        format!("handed out {handoffs} times without being delivered"),
                    ));
                }
                self.book
                    .counts
                    .acknowledged
                    .fetch_add(1, Ordering::Relaxed);
            }
            // Ended only once their letters are published (see `dead`).
            let ids: Vec<&str> = events.iter().map(|e| &*e.id).collect();
            self.unpublished.until_published(&ids).await;
            settle(&message, AckKind::Term).await;
            return true;
        }
        let routed = events.into_iter().map(|event| {
            let lanes = self.route(&event);
            (event, lanes)
        });
        let Some(routed) = self.reserve(routed, order).await else {
            return false;
        };
        let carrier = self.book.carry(
            message,
            (tenure.partition, tenure.revision),
            routed.len(),
            &tenure.withdrawn,
        );
        for (event, lanes, kib) in routed {
            self.hand(tenure, &carrier, event, lanes, kib, true);
        }
        true
    }
}

/// Resolves once the order satisfies `holds` (or its sender is gone).
async fn until(order: &mut watch::Receiver<Order>, holds: impl FnMut(&Order) -> bool) {
    let _ = order.wait_for(holds).await;
}

/// Answers the server about `message`; a failure is logged (the server hands it out again).
pub(super) async fn settle(message: &jetstream::Message, kind: AckKind) {
    if let Err(e) = message.ack_with(kind).await {
        log::warn!(target: deskhook::LOG_TARGET, "relay: cannot answer the server: {e}");
    }
}
