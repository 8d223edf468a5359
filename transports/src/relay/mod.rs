//! The relay: delivers the events a [`NatsSink`](crate::nats::NatsSink) published, from the
//! JetStream stream, with the same engine and endpoint configuration as in-process delivery
//! (feature `relay`): signatures, the SSRF guard, each endpoint's retry schedule, the
//! breaker, the observer and dead letters. An event with a tenant goes to that tenant's
//! endpoints and to those without one. `deskhook relay` runs one; any number of them on any
//! machines share the work, and a relay given every server of a cluster moves to another
//! when one dies.
//!
//! # How work is shared
//!
//! Messages are spread over the stream's partitions by a hash of their ticket (see
//! [`partition_of`](crate::nats::partition_of)). Each partition is owned by one relay at a
//! time, under a lease in the JetStream KV bucket `<durable>-leases` whose entries live for
//! [`Relay::lease`] unless renewed (every third of it). Relays share the partitions evenly:
//! each takes free ones up to its share (the partitions divided by the live relays, rounded
//! up) and hands back what is over it, so a new relay gets partitions from the others, a
//! relay that stops gives its partitions back at once, and a relay that dies loses them
//! when its leases end.
//!
//! The owner of a partition makes its own durable pull consumer (`<durable>-<partition>-
//! <lease revision>`, deleting any other consumer of the partition) and pulls from it
//! continuously, with up to [`Relay::max_pending`] messages outstanding. On the stream (a
//! work queue) an acknowledged message is gone, so a new consumer starts with the first
//! unacknowledged message of the partition, in stream order: the next owner resumes where
//! the last one stopped. (So the stream is the durable record: on a single server the
//! consumers keep their state in memory; in a cluster they have the stream's replicas.)
//!
//! # Order and duplicates
//!
//! A relay hands each message to the engine as it comes, and the engine keeps each ticket's
//! events in order per endpoint (its per-ticket FIFO, as in-process delivery does). A
//! message is acknowledged once every endpoint that takes it has its final outcome
//! (delivered or dead-lettered); while an endpoint takes its time, the relay tells the
//! server the message is in progress (every third of `ack_wait`). A failed attempt is
//! retried by the relay on the endpoint's schedule, not handed back: a failing endpoint
//! holds up only its own ticket's later events, and what it holds up is parked (see
//! [Failing endpoints](self#failing-endpoints)) so that it does not fill the partition's
//! window.
//!
//! The guarantee: each ticket's events reach each endpoint in the order they were
//! published, across relays starting, stopping, dying and taking over, and across a NATS
//! node dying in a cluster. What may happen, and is bounded:
//!
//! - An event is delivered twice (same `webhook-id`) when its relay stopped or died after
//!   delivering it and before the acknowledgement reached the server: at most the messages
//!   outstanding for the partition ([`Relay::max_pending`]), delivered again by the next
//!   owner in stream order. Messages handed out again to the same relay (a lost
//!   acknowledgement) are recognised by their id and acknowledged without a second
//!   delivery (the relay remembers the last 65,536 events it acknowledged).
//! - A message lost on the way to the relay (a reconnect) shows as a gap in the consumer's
//!   delivery numbers: the relay pulls again from the first unacknowledged message rather
//!   than deliver what came after it first.
//! - A message the stream still holds though the partition's consumer counts it as
//!   acknowledged would never be handed out. nats-server 2.9 makes such messages: when a
//!   relay takes over a partition, the consumer it makes now and then skips a message of
//!   it (in the kill test, in about half the runs, mostly an event the relay that died had
//!   delivered without its acknowledgement reaching the server), and a consumer made again
//!   skips it too. So each partition looks at the stream's head every `ack_wait`; a message
//!   of its own below its consumer's floor, seen twice in a row, is stored again at the
//!   stream's tail and the old one removed. The event is then delivered after the ticket's
//!   events that overtook it: once, late, if it had not arrived; a second time, late, if
//!   it had (same `webhook-id`: receivers that keep the ids they processed drop it). Both
//!   are logged. Where order must hold without exception, run a current nats-server: the
//!   same test passes on 2.15 without the relay finding any (fixes for consumers that skip
//!   messages went into 2.10 and 2.11, such as nats-io/nats-server#6526).
//! - A relay that cannot renew a lease in time (cut off from the servers, or too starved
//!   of CPU to answer for longer than the lease) loses that partition: it stops pulling
//!   it, and withdraws from its engine what it took from it and has not attempted yet, so
//!   that none of it goes out after the next owner delivered the same ticket's later
//!   events. Attempts already in flight finish: their events may arrive twice, and one of
//!   them may arrive after the next owner's first deliveries of its ticket (at most one per
//!   ticket and endpoint). Pick the lease longer than the outages and stalls you expect
//!   (the default is 10 s) and shorter than the wait you accept after a relay dies.
//!
//! A message the server handed out more than `max_handoffs` times to one consumer (lost
//! acknowledgements) is given up: dead-lettered and terminated.
//!
//! # Batches
//!
//! A message may carry a batch of events ([`NatsSinkBuilder::batch`](crate::nats::NatsSinkBuilder::batch)).
//! The relay hands each to the engine as above, and acknowledges the message once every
//! event in it has finished: [`Relay::max_pending`] counts messages, so a partition may
//! then have that many batches outstanding, and the relay holds itself to its engine's
//! queue (in events) and memory budget besides. The guarantee above holds as it is, at this
//! cost: a ticket's next event waits until the message of its last one is acknowledged, so
//! that a batch delivered again by the next owner never brings an earlier event after a
//! later one.
//!
//! While an event of a batch is retried, the tickets whose events shared the batch would
//! wait with it, until the batch is parked (below).
//!
//! # Failing endpoints
//!
//! A partition has at most [`Relay::max_pending`] messages outstanding, and an endpoint
//! that fails for hours or days would fill that window with its retries and stop the whole
//! partition: every tenant's events behind them. So the relay parks them. A message
//! outstanding for longer than [`Relay::park_after`] (1 s by default), none of whose
//! events waits for its ticket's earlier ones, and whose events in delivery wait only for
//! endpoints that are failing (an endpoint whose last attempt failed, or whose breaker is
//! open, or that is paused or disabled, or where the ticket waits for a retry), is parked: its unfinished events, each with the endpoints still to
//! take it, are written to the JetStream KV bucket `<durable>-parked` under
//! `<partition>.<stream sequence>.<lease revision>.<part>`, then the message is acknowledged. The events stay
//! in the engine and are retried on their schedule as before, and no longer count against
//! the partition's window nor the relay's room for events (they still count against its
//! memory budget, `max_queued_bytes`, and each endpoint's `queue_capacity`, whose overflow
//! is dead-lettered as in-process delivery does). An entry goes when its events have
//! finished; [`RelayReport::parked`] and the status line count the messages parked, and
//! [`parked`] (`deskhook parked`) lists what is parked, by endpoint, with the oldest's time.
//!
//! A partition's next owner reads the partition's entries when it takes it, and delivers
//! their events, in stream order and to the endpoints the entries name (one removed or
//! changed meanwhile so that it no longer takes the event gets a dead letter instead), before
//! anything it pulls: each ticket keeps its order (a ticket's events pulled later go behind its parked
//! ones in the engine's per-ticket queue). A relay that hands a partition back (another
//! relay joined) waits only for what is not parked, then withdraws its parked events for
//! the next owner, so a failing endpoint no longer holds a rebalance for its retry
//! schedule. What this leaves:
//!
//! - An entry names the endpoints as they were when the message was parked, all failing
//!   then (a message a healthy endpoint still has to take waits for it): one that recovers
//!   and delivers the event afterwards gets it again (same `webhook-id`) if the relay dies
//!   or gives the partition back before the others finish.
//! - An attempt in flight when its partition is handed back or lost finishes: its event may
//!   arrive twice, once after the next owner's first deliveries of its ticket (as for a
//!   lost lease, above).
//! - A relay cut off from the servers may park a message after its lease ended and the next
//!   owner read the entries: the message is not acknowledged (its consumer is gone), so the
//!   next owner delivers it from the stream, and the entry is delivered again, late, by the
//!   owner after that.
//! - An event too large for a KV value (the server's `max_payload` less 4 KiB) cannot be
//!   parked: its message stays outstanding (a hand-back of its partition waits for it), and
//!   the relay logs it at each look.
//! - Parked events are in the relay's memory: endpoints failing for long enough fill the
//!   memory budget, and then the relay waits for room as it does for healthy endpoints.
//! - An endpoint that answers, but slower than its events come, is not failing: what waits
//!   for it is not parked, and once it holds the partition's whole window the partition's
//!   other events wait for it too (the stream keeps them). Parking its queue would free the
//!   window at the price of that endpoint's queue overflowing into dead letters, which a
//!   relay delivering to one endpoint would not want. A larger [`Relay::max_pending`] gives
//!   the others more room.
//! - An endpoint's full queue (`queue_capacity`) dead-letters what it cannot take, whatever
//!   `overflow` says (it applies to in-process delivery): the relay must see every event
//!   end, and must not block. The queues have room for the relay's whole room for events,
//!   so this happens to a failing endpoint whose parked events fill its queue. A batch
//!   message with more events than the room has places is let in whole, and all its events
//!   go past the queues' capacity too.
//!
//! Dead letters go where the configuration says (the dead-letter file) and are also
//! published, as JSON, to the stream `<stream>_DEAD` under `<prefix>-dead.<endpoint>`.
//!
//! `X-Deskhook-Sequence` is numbered by each relay process; the order itself is kept by the
//! partitions and the engine, not by the numbers. A relay has no spool (the stream is its
//! durable queue): a `[spool]` in its configuration is refused.
//!
//! # Endpoints from a KV bucket
//!
//! With [`Relay::endpoints_bucket`] the relay also delivers to the endpoints of a JetStream
//! KV bucket ([`endpoint_store`](crate::endpoint_store), what `deskhook endpoints --nats`
//! changes): registered before delivery starts, then every change applied as it comes, with
//! [`Relay::on_endpoints`] told the revision each time. [`Relay::reloads`] replaces the
//! configured endpoints with new sets as they come (`deskhook relay` sends one when SIGHUP
//! makes it re-read `--config`).
//!
//! # Stopping
//!
//! When `stop` resolves, the relay takes no new messages, gives those in delivery up to
//! `grace` to finish, stops its engine, then deletes its consumers and leases: the other
//! relays take the partitions at once and deliver what it had not finished. It renews its
//! leases until then, so that no other relay delivers a partition's tickets while it still
//! does; a lease lost meanwhile (the relay cut off) withdraws what that partition has
//! queued, as below.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use deskhook::policy::OverflowPolicy;

use crate::delivery::{DeadLetter, DeliveryGuard, Hooks, SinkBuilder};
use crate::endpoint_store::{Change, EndpointStore, SecretsKey};

mod audit;
mod book;
mod dead;
mod endpoints;
mod gate;
mod incoming;
mod leases;
mod owner;
mod parked;
mod partition;

use crate::error::Error;
use crate::nats::{StreamSettings, partitions_of};
use book::{Book, Tracker};
use dead::{dead_letter_stream, publish_dead_letter};
pub use endpoints::Reload;
use endpoints::{apply, follow, reload};
use owner::{OnPartitions, Owner};
pub use parked::{ParkedEndpoint, parked};
use partition::Shared;

/// Builds and runs a relay; see the [module docs](self).
pub struct Relay {
    urls: String,
    connect: async_nats::ConnectOptions,
    stream: StreamSettings,
    durable: String,
    sink: SinkBuilder,
    ack_wait: Duration,
    max_handoffs: i64,
    grace: Duration,
    timeout: Duration,
    lease: Duration,
    park_after: Duration,
    max_pending: usize,
    ready: Option<ReadyCallback>,
    /// The KV bucket of endpoints to follow, and the key that opens their secrets.
    bucket: Option<(String, Option<SecretsKey>)>,
    /// Whether the bucket's records must be sealed in the current layout.
    require_sealed: bool,
    /// Called with each bucket revision applied.
    applied: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Called with the partitions owned each time they change.
    owned: Option<OnPartitions>,
    /// New sets of the configuration's endpoints (a re-read `--config`).
    reloads: Option<tokio::sync::mpsc::UnboundedReceiver<Reload>>,
    /// How often to log a status line, if at all.
    status_every: Option<Duration>,
}

/// What [`Relay::on_ready`] keeps.
type ReadyCallback = Box<dyn FnOnce(&RelayReady) + Send>;

/// What a relay is about to do, for [`Relay::on_ready`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RelayReady {
    /// The stream delivered from.
    pub stream: String,
    /// Its partitions (shared among the relays).
    pub partitions: u32,
    /// The endpoints delivered to.
    pub endpoints: Vec<String>,
    /// The revision of the endpoints bucket applied, when the relay follows one.
    pub endpoints_revision: Option<u64>,
    /// The relay's id in the leases bucket.
    pub relay_id: String,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("stream", &self.stream)
            .field("durable", &self.durable)
            .field("sink", &self.sink)
            .field("ack_wait", &self.ack_wait)
            .field("max_handoffs", &self.max_handoffs)
            .field("grace", &self.grace)
            .field("lease", &self.lease)
            .field("park_after", &self.park_after)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

/// What a relay did, when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Events acknowledged: every subscribed endpoint delivered or dead-lettered them (each
    /// event of a batch counts).
    pub acknowledged: u64,
    /// Events left unacknowledged when the relay stopped, gave a partition back or lost
    /// it, for the partition's next owner: those in delivery, those that waited for their
    /// ticket's earlier ones, and those parked (withdrawn from the engine, left in the
    /// parked bucket).
    pub handed_back: u64,
    /// Dead letters written (per endpoint).
    pub dead_lettered: u64,
    /// Events handed out again though already acknowledged (acknowledged without a second
    /// delivery).
    pub duplicates: u64,
    /// Messages a consumer skipped (a fault of nats-server 2.9; see
    /// [Order and duplicates](self#order-and-duplicates)), found at the stream's head and
    /// stored again for delivery.
    pub stored_again: u64,
    /// Messages parked: held up longer than [`Relay::park_after`] by failing endpoints,
    /// their unfinished events written to the parked bucket and the message acknowledged
    /// (see [Failing endpoints](self#failing-endpoints)).
    pub parked: u64,
    /// Messages terminated as not deskhook's (no event id or action, or a batch this relay
    /// cannot read), each logged at `error`: their events are not delivered.
    pub terminated: u64,
    /// The stream's partitions.
    pub partitions: u32,
    /// The last revision of the endpoints bucket applied, when the relay follows one.
    pub endpoints_revision: Option<u64>,
}

impl Relay {
    /// A relay pulling from the NATS servers `urls` (comma-separated) and delivering with
    /// `sink`'s endpoints and settings (from `Config::http_sink_builder` or built in code).
    pub fn builder(urls: impl Into<String>, sink: SinkBuilder) -> Relay {
        Relay {
            urls: urls.into(),
            connect: async_nats::ConnectOptions::new(),
            stream: StreamSettings::new(),
            durable: "deskhook-relay".to_owned(),
            sink,
            ack_wait: Duration::from_secs(30),
            max_handoffs: 10,
            grace: Duration::from_secs(10),
            status_every: None,
            timeout: Duration::from_secs(5),
            lease: Duration::from_secs(10),
            park_after: Duration::from_secs(1),
            max_pending: 512,
            ready: None,
            bucket: None,
            require_sealed: false,
            applied: None,
            owned: None,
            reloads: None,
        }
    }

    /// Replaces the builder's endpoints with each set `reloads` yields (what `deskhook
    /// relay` does with a configuration re-read on SIGHUP): new and changed ones are
    /// upserted, those of the previous set that are gone are removed; endpoints from the
    /// bucket are left alone. Each set's sender is told once it is applied.
    #[must_use]
    pub fn reloads(mut self, reloads: tokio::sync::mpsc::UnboundedReceiver<Reload>) -> Self {
        self.reloads = Some(reloads);
        self
    }

    /// Also delivers to the endpoints of the KV bucket `bucket` (see
    /// [`endpoint_store`](crate::endpoint_store)), opening their secrets with `key`: they are
    /// registered before delivery starts, and every change to the bucket (`deskhook endpoints
    /// --nats …`) is applied as it comes: an endpoint added, changed (from its next attempt),
    /// paused, resumed or removed, as [`Endpoints`](crate::delivery::Endpoints) does it. An
    /// endpoint the relay cannot use (sealed settings without the key, a newer record layout,
    /// a setting that does not work here) is logged with its name and left out; one the
    /// relay delivered to whose change it cannot read or apply is paused (its events wait)
    /// until a change it can, rather than go on with its old URL and secrets.
    #[must_use]
    pub fn endpoints_bucket(mut self, bucket: impl Into<String>, key: Option<SecretsKey>) -> Self {
        self.bucket = Some((bucket.into(), key));
        self
    }

    /// Refuses, with a key, the bucket's records not sealed in the current layout (see
    /// [`EndpointStore::require_sealed`]): their endpoints are left out, or paused if the
    /// relay had them. Defaults to false (they are read, with a warning naming each).
    #[must_use]
    pub fn require_sealed(mut self, require: bool) -> Self {
        self.require_sealed = require;
        self
    }

    /// Called with the bucket's revision each time the relay has applied a change to the
    /// endpoints (and once with the revision it started from), so that a tool can wait for
    /// a change to reach the relays. Defaults to nothing.
    #[must_use]
    pub fn on_endpoints(mut self, applied: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.applied = Some(Arc::new(applied));
        self
    }

    /// Called with the partitions the relay owns each time they change (a tool can wait for
    /// a relay to hold some). Defaults to nothing.
    #[must_use]
    pub fn on_partitions(mut self, owned: impl Fn(&[u32]) + Send + Sync + 'static) -> Self {
        self.owned = Some(Arc::new(owned));
        self
    }

    /// How long a partition stays owned by a relay that stops renewing its lease (a relay
    /// that dies): the wait before another relay takes it over. Used when the leases bucket
    /// is made; an existing bucket keeps its own. Defaults to 10 s; at least 1 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// How long a message may stay outstanding while its events wait for a failing endpoint
    /// before it is parked (see [Failing endpoints](self#failing-endpoints)): its unfinished
    /// events are written to the KV bucket `<durable>-parked` and the message acknowledged, so
    /// that the partition goes on. Defaults to 1 s; at least 10 ms.
    #[must_use]
    pub fn park_after(mut self, after: Duration) -> Self {
        self.park_after = after.max(Duration::from_millis(10));
        self
    }

    /// How many messages each partition may have outstanding (taken and not acknowledged):
    /// what a relay delivers at once from one partition, and the most one partition can
    /// deliver twice when its relay dies. Defaults to 512.
    #[must_use]
    pub fn max_pending(mut self, messages: usize) -> Self {
        self.max_pending = messages.max(1);
        self
    }

    /// Called once the stream is found and delivery starts. Defaults to nothing.
    #[must_use]
    pub fn on_ready(mut self, ready: impl FnOnce(&RelayReady) + Send + 'static) -> Self {
        self.ready = Some(Box::new(ready));
        self
    }

    /// The stream to deliver from. Defaults to [`StreamSettings::new`]; the partition count
    /// is taken from the stream itself.
    #[must_use]
    pub fn stream(mut self, stream: StreamSettings) -> Self {
        self.stream = stream;
        self
    }

    /// Connection options (credentials, TLS). Defaults to none.
    #[must_use]
    pub fn connect_options(mut self, options: async_nats::ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// The name relays that share the work have in common: the prefix of their consumers'
    /// names (`<durable>-<partition>-<lease>`), of their leases bucket (`<durable>-leases`)
    /// and of their parked events bucket (`<durable>-parked`). Defaults to
    /// `deskhook-relay`.
    #[must_use]
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = name.into();
        self
    }

    /// How long the server waits without news of a message before it hands it out again
    /// (the relay tells it every third of this while the message is in delivery). Defaults
    /// to 30 s.
    #[must_use]
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// How many times a partition's consumer may hand a message out before it is given up.
    /// Defaults to 10.
    #[must_use]
    pub fn max_handoffs(mut self, handoffs: u32) -> Self {
        self.max_handoffs = i64::from(handoffs.max(1));
        self
    }

    /// Logs a status line at `info` every `every`: the events in delivery (by partition),
    /// those acknowledged and taken twice so far, and what the engine has queued and in
    /// flight. For watching a relay at work, or seeing why it went quiet. Defaults to never.
    #[must_use]
    pub fn log_status_every(mut self, every: Duration) -> Self {
        self.status_every = Some(every.max(Duration::from_millis(100)));
        self
    }

    /// How long a stopping relay lets the messages in delivery finish before it stops its
    /// engine and leaves the rest to the partitions' next owners. Defaults to 10 s.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Delivers until `stop` resolves.
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the servers cannot be reached or the stream cannot be opened;
    /// [`Error::StreamConflict`] for a stream deskhook cannot work with; [`Error::Config`]
    /// for a leases or endpoints bucket it cannot use; what building the sink returns (bad
    /// endpoints).
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<RelayReport, Error> {
        #[cfg(feature = "spool")]
        if self.sink.spool.is_some() {
            return Err(Error::Config(
                "a relay delivers without a spool (the stream is its durable queue, and what it \
                 does not finish goes back to the stream): remove the spool or [spool] section"
                    .to_owned(),
            ));
        }
        let context = crate::nats::connect(&self.urls, self.connect.clone(), self.timeout).await?;
        let settings = self.stream_settings(&context).await;
        let info = settings.ensure(&context).await?;
        let partitions = settings.partition_count();
        let replicas = info.config.num_replicas;
        let stream = patiently(|| async {
            context
                .get_stream(&info.config.name)
                .await
                .map_err(|e| nats_error(&self.urls, format!("cannot open the stream: {e}")))
        })
        .await?;
        let dead_stream = patiently(|| dead_letter_stream(&context, &settings, &self.urls)).await?;
        let me = relay_id();
        let bucket = format!("{}-leases", self.durable);
        let leases = Arc::new(
            patiently(|| leases::Leases::open(&context, &bucket, replicas, self.lease, me.clone()))
                .await?,
        );
        let bucket = format!("{}-parked", self.durable);
        let parked =
            Arc::new(patiently(|| parked::Parked::open(&context, &bucket, replicas)).await?);

        let mut sink = self.sink;
        // Every partition's outstanding messages may wait at one endpoint: its queue has room
        // for them all, so that the engine never drops what the relay hands it. (A batch
        // message carries many events: the book holds the relay to the queue's room.)
        sink.config.queue_capacity = sink
            .config
            .queue_capacity
            .max(partitions as usize * self.max_pending + 1);
        // What a full endpoint queue cannot take (a failing endpoint's, with its events
        // parked) is dead-lettered, so that its message can end: dropping the oldest would
        // drop an event the book waits for without a word, and blocking would hold a thread
        // of the relay's runtime.
        if sink.config.overflow != OverflowPolicy::DropNewest {
            log::info!(
                target: deskhook::LOG_TARGET,
                "relay: overflow = {} applies to in-process delivery; the relay dead-letters \
                 what an endpoint's full queue cannot take",
                sink.config.overflow
            );
            sink.config.overflow = OverflowPolicy::DropNewest;
        }
        let (book, done) = Book::new(
            partitions,
            sink.config.max_queued_bytes,
            sink.config.queue_capacity - 1,
        );
        let (letters_tx, mut letters_rx) = tokio::sync::mpsc::unbounded_channel::<DeadLetter>();
        let names: Vec<String> = sink.endpoints.iter().map(|e| e.name().to_owned()).collect();
        sink.observer = Some(Arc::new(Tracker {
            book: book.clone(),
            inner: sink.observer.take(),
        }));
        {
            let book = book.clone();
            sink.hooks = Hooks {
                drop_on_stop: true,
                // Also final: some dead letters (a 410 emptying the queue, a body over the
                // limit) come without an attempt of their own.
                dead_letter: Some(Arc::new(move |letter: &DeadLetter| {
                    book.counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    book.finished(&letter.id, &letter.endpoint);
                    let _ = letters_tx.send(letter.clone());
                })),
            };
        }
        let (http, guard) = sink.build_async()?;
        let revision = Arc::new(AtomicU64::new(0));
        let follower = match &self.bucket {
            None => None,
            Some((bucket, key)) => {
                let store = EndpointStore::open(&context, bucket, replicas, key.clone())
                    .await?
                    .require_sealed(self.require_sealed);
                let floor = store.last_revision().await?;
                let (current, changes) = store.watch().await?;
                // What the bucket held when it was read is applied, removals and records
                // left out included: the last change, not only the last live record.
                revision.store(floor, Ordering::Relaxed);
                let mut seen = std::collections::HashMap::new();
                for stored in current {
                    revision.fetch_max(stored.revision, Ordering::Relaxed);
                    seen.insert(stored.spec.name.clone(), stored.revision);
                    apply(&http, &Change::Put(Box::new(stored)));
                }
                if let Some(applied) = &self.applied {
                    applied(revision.load(Ordering::Relaxed));
                }
                Some(tokio::spawn(follow(
                    http.clone(),
                    changes,
                    (seen, floor),
                    revision.clone(),
                    self.applied.clone(),
                )))
            }
        };
        let reloader = self
            .reloads
            .take()
            .map(|reloads| tokio::spawn(reload(http.clone(), names.clone(), reloads)));
        let names = if self.bucket.is_some() {
            http.endpoints().names()
        } else {
            names
        };
        let publisher = {
            let context = context.clone();
            let prefix = settings.prefix().to_owned();
            tokio::spawn(async move {
                while let Some(letter) = letters_rx.recv().await {
                    publish_dead_letter(&context, &prefix, &dead_stream, &letter).await;
                }
            })
        };
        log::info!(
            target: deskhook::LOG_TARGET,
            "relay '{}' ({me}): delivering from stream '{}' ({partitions} partitions) to {} \
             endpoint(s)",
            self.durable,
            settings.stream_name(),
            names.len()
        );
        if let Some(ready) = self.ready {
            ready(&RelayReady {
                stream: settings.stream_name().to_owned(),
                partitions,
                endpoints: names,
                endpoints_revision: follower.as_ref().map(|_| revision.load(Ordering::Relaxed)),
                relay_id: me,
            });
        }

        let status = self
            .status_every
            .map(|every| tokio::spawn(book::log_status(book.clone(), http.clone(), every)));
        let acker = tokio::spawn(book::settle_messages(
            book.clone(),
            done,
            http.clone(),
            parked.clone(),
        ));
        let parker = tokio::spawn(book::park_stuck(
            book.clone(),
            http.clone(),
            self.park_after,
        ));
        let progress = tokio::spawn(book::keep_alive(
            book.clone(),
            (self.ack_wait / 3).max(Duration::from_millis(100)),
        ));
        let shared = Arc::new(Shared {
            http,
            book: book.clone(),
            stream,
            context: context.clone(),
            settings,
            durable: self.durable,
            ack_wait: self.ack_wait,
            max_pending: self.max_pending,
            max_handoffs: self.max_handoffs,
            memory_consumers: replicas <= 1,
            parked,
            leases: leases.clone(),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let owner =
            tokio::spawn(Owner::new(shared.clone(), leases, partitions, self.owned).run(stop_rx));
        stop.await;
        if let Some(status) = &status {
            status.abort();
        }
        for task in [&follower, &reloader].into_iter().flatten() {
            task.abort();
        }
        let _ = stop_tx.send(true);
        let stopping = match owner.await {
            Ok(stopping) => stopping,
            Err(e) => {
                return Err(Error::Config(format!(
                    "the relay's partition owner failed: {e}"
                )));
            }
        };
        // Nothing more is taken: what is in delivery has `grace` to finish, under the leases
        // (still renewed: no other relay takes these partitions before they are given back).
        let _ = tokio::time::timeout(self.grace, book.until(|b| b.total_outstanding() > 0)).await;
        progress.abort();
        parker.abort();
        book.stop();
        let shut = tokio::task::spawn_blocking(move || finish(guard)).await;
        if shut.is_err() {
            log::error!(target: deskhook::LOG_TARGET, "the relay's delivery engine did not stop cleanly");
        }
        // The rest is left for the partitions' next owners (first, so that nothing that
        // waited in a gate goes to the stopped engine), then what finished is acknowledged
        // (or its parked entries removed).
        book.abandon(None);
        book.flush(self.timeout).await;
        let (leases, held) = stopping.release();
        // The acknowledgements confirmed, then the partitions given back for the other
        // relays, all at once and each within a bound (a slow cluster leaves the rest to
        // the leases' end).
        let wait = self.timeout;
        let give_back = held.into_iter().map(|(p, revision)| {
            let (book, shared, leases) = (&book, &shared, &leases);
            tokio::time::timeout(wait, async move {
                book.confirm(p, wait).await;
                let _ = shared
                    .stream
                    .delete_consumer(&shared.consumer_name(p, revision))
                    .await;
                leases.give_back(p).await;
            })
        });
        futures_util::future::join_all(give_back).await;
        let _ = tokio::time::timeout(wait, leases.leave()).await;
        drop(shared);
        acker.abort();
        let _ = publisher.await;
        Ok(RelayReport {
            acknowledged: book.counts.acknowledged.load(Ordering::Relaxed),
            handed_back: book.counts.handed_back.load(Ordering::Relaxed),
            dead_lettered: book.counts.dead_lettered.load(Ordering::Relaxed),
            duplicates: book.counts.duplicates.load(Ordering::Relaxed),
            stored_again: book.counts.stored_again.load(Ordering::Relaxed),
            parked: book.counts.parked.load(Ordering::Relaxed),
            terminated: book.counts.terminated.load(Ordering::Relaxed),
            partitions,
            endpoints_revision: follower.map(|_| revision.load(Ordering::Relaxed)),
        })
    }

    /// The stream's settings: the partition count and the storage are the stream's own
    /// when it exists (the publisher chose them).
    async fn stream_settings(&self, context: &jetstream::Context) -> StreamSettings {
        let mut settings = self.stream.clone();
        if let Ok(found) = context.get_stream(settings.stream_name()).await {
            let config = &found.cached_info().config;
            settings = settings.storage(match config.storage {
                stream::StorageType::Memory => crate::nats::Storage::Memory,
                stream::StorageType::File => crate::nats::Storage::File,
            });
            match partitions_of(config) {
                Some(partitions) => settings = settings.partitions(partitions),
                None => log::warn!(
                    target: deskhook::LOG_TARGET,
                    "stream '{}' does not record its partition count (it was not made by \
                     deskhook 0.1's NatsSink); assuming {}: relays and publishers must agree",
                    settings.stream_name(),
                    settings.partition_count()
                ),
            }
        }
        settings
    }
}

/// Runs `attempt` until it succeeds, six times at most, a second apart: a cluster busy
/// electing leaders (several relays starting at once, or a node just restarted) may not
/// answer a JetStream request the first time. The last error is returned.
async fn patiently<T, F, Fut>(mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) if tries < 5 => {
                tries += 1;
                log::warn!(target: deskhook::LOG_TARGET, "relay: {e}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A relay's id in the leases bucket: random, so that a restarted relay is a new one.
fn relay_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stops the engine: what is left was handed back already.
fn finish(guard: DeliveryGuard) {
    if let Err(e) = guard.shutdown(Duration::ZERO) {
        log::debug!(target: deskhook::LOG_TARGET, "relay engine at stop: {e}");
    }
}

fn nats_error(urls: &str, message: String) -> Error {
    Error::Nats {
        url: urls.rsplit('@').next().unwrap_or_default().to_owned(),
        message,
    }
}
