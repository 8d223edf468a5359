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
//! [`Relay::lease`] unless renewed (every quarter of it). Relays share the partitions evenly:
//! each takes free ones up to its share (the partitions divided by the live relays, rounded
//! up) and hands back what is over it, so a new relay gets partitions from the others, a
//! relay that stops gives its partitions back at once, and a relay that dies loses them
//! when its leases end.
//!
//! The partition count is the stream's (its description records it) and read at the start.
//! A running relay reads it again every [`Relay::ack_wait`]: a stream made again with
//! another count (deleted, then made by a publisher configured otherwise) stops it, handing
//! back what it had, with [`Error::Config`] saying so: started again, the relays work the
//! new partitions. A ticket's events left in the old partitions may then go out of order
//! with those published to the new ones: drain the stream before such a change, and the
//! parked events too (`deskhook parked` shows nothing): each relay reads the parked entries
//! of the partitions it owns, so those of a partition the stream no longer has would never
//! be read, and a relay refuses to start while there are any ([`Error::Config`] naming
//! them and what to do).
//!
//! The owner of a partition makes its own durable pull consumer (`<durable>-<partition>-
//! <lease revision>`, deleting the consumer of the partition's last owner) and pulls from it
//! continuously, with up to [`Relay::max_pending`] messages outstanding. On the stream (a
//! work queue) an acknowledged message is gone, so a new consumer starts with the first
//! unacknowledged message of the partition, in stream order: the next owner resumes where
//! the last one stopped. (So the stream is the durable record: on a single server the
//! consumers keep their state in memory; in a cluster they have the stream's replicas.)
//!
//! Every relay of a stream has the same [`Relay::durable`] name. A consumer of the stream's
//! partitions that is not theirs (relays named otherwise, or one made by hand) is never
//! deleted: the stream gives each message to one consumer, and two groups replacing each
//! other's consumers would lose, repeat and reorder events. A relay refuses to start
//! ([`Error::Config`], naming the consumer and what to do) while one is there, and one
//! that appears later keeps its partition from the relays, logged at `error`, until it
//! goes.
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
//!   delivery (the relay remembers the events it acknowledged in the last two `ack_wait`s:
//!   at least the last 65,536, at most about a million). A ticket's
//!   next event, when it waits in the relay for a message's acknowledgement, goes only once
//!   the server has confirmed it (asked again every quarter of [`Relay::ack_wait`], between
//!   100 ms and 5 s, for twice `ack_wait` at most, then it goes all the same, logged, and
//!   the relay remembers the unconfirmed message's events apart from the 65,536, until
//!   65,536 further events of unconfirmed messages come after them): a lost
//!   acknowledgement does not bring the earlier event back after it, unless the message
//!   goes to another relay.
//! - A message lost on the way to the relay (a reconnect) shows as a gap in the consumer's
//!   delivery numbers: the relay pulls again from the first unacknowledged message rather
//!   than deliver what came after it first.
//! - A message the stream still holds though the partition's consumer counts it as
//!   acknowledged would never be handed out. nats-server 2.9 makes such messages: when a
//!   relay takes over a partition, the consumer it makes now and then skips a message of
//!   it (in the kill test, in about half the runs, mostly an event the relay that died had
//!   delivered without its acknowledgement reaching the server), and a consumer made again
//!   skips it too. So each partition reads the stream's head every `ack_wait` (up to 64
//!   messages, past other partitions' messages under way and stray subjects'); a message
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
//!   ticket and endpoint). A relay frozen (or without CPU) past seven eighths of a lease
//!   since its last renewal starts nothing more of that partition, even before its
//!   renewer runs again (counted on the monotonic clock, which a host's suspension stops:
//!   do not run a relay on a host that suspends). Pick the lease longer than the outages
//!   and stalls you expect (the default is 10 s) and shorter than the wait you accept
//!   after a relay dies. A
//!   relay that finds the next owner's consumer before its renewal fails (its clock runs
//!   behind the server's) does the same at once.
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
//! cost: a ticket's next event waits until the message of its last one is acknowledged
//! (and the server confirms it), so
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
//! outstanding for longer than [`Relay::park_after`] (1 s by default; at once when they
//! wait only for paused endpoints, see below), none of whose events waits for its ticket's
//! earlier ones, and whose events in delivery wait only for endpoints that are failing (an
//! endpoint whose last attempt failed, or whose breaker is open, or that is paused or
//! disabled, or where the ticket waits for a retry), is parked: its unfinished events, each
//! with the endpoints still to take it, are written to the JetStream KV bucket
//! `<durable>-parked` under `<partition>.<stream sequence>.<lease revision>.<part>`, then
//! the message is acknowledged (a bucket made by hand whose entries expire, or whose oldest
//! go when it is full, is refused at start: they would be lost). The events stay
//! in the engine and are retried on their schedule as before, and no longer count against
//! the partition's window nor the relay's room for events (they still count against its
//! memory budget, `max_queued_bytes`, and each endpoint's `queue_capacity`, whose overflow
//! is dead-lettered as in-process delivery does). An entry goes when its events have
//! finished; [`RelayReport::parked`] and the status line count the messages parked, and
//! [`parked`] (`deskhook parked`) lists what is parked, by endpoint, with the oldest's time.
//!
//! A failing endpoint also slows its tickets at the other endpoints that take them. A
//! ticket's next event goes to the engine only once the message of its last one is
//! acknowledged or parked (see [Order and duplicates](self#order-and-duplicates)), and a
//! message waits for every endpoint that takes its events. So while one of them fails, the
//! ticket's events reach the healthy ones one at a time, each once the one before is
//! parked: one per half `park_after` (how often the relay looks for messages to park) for
//! events that waited already, one per `park_after` for events that come one by one. With
//! the default, one or two events a second per ticket, where a healthy endpoint alone takes
//! dozens; other tickets are not slowed. A shorter `park_after` shortens the wait (at the
//! cost of parking for failures a quick retry would have cured); an endpoint that is down
//! for good is better paused, removed, or narrowed to fewer tenants or `actions`.
//!
//! A paused endpoint does not slow them: a message whose events wait only for paused
//! endpoints is parked as soon as the others have its events, not after `park_after` (a
//! pause is the operator's, and lasts longer than a retry), 20 ms after the last such park
//! at the soonest. The relay sees a pause at its next look for messages to park, within
//! half `park_after`, and then parks at once what waits for it alone. A message whose
//! entries could not be written is left to the looks every half `park_after`.
//!
//! A partition's next owner reads the partition's entries when it takes it, and delivers
//! their events, in stream order and to the endpoints the entries name (one removed or
//! changed meanwhile so that it no longer takes the event gets a dead letter instead), before
//! anything it pulls: each ticket keeps its order (a ticket's events pulled later go behind its parked
//! ones in the engine's per-ticket queue). A relay that hands a partition back (another
//! relay joined) waits only for what is not parked (up to `grace`), then withdraws its
//! parked events for the next owner, so a failing endpoint no longer holds a rebalance for its retry
//! schedule. What this leaves:
//!
//! - An entry names the endpoints as they were when the message was parked, all failing
//!   then (a message a healthy endpoint still has to take waits for it). A relay that
//!   stops or hands the partition back rewrites the entries first with the endpoints still
//!   waiting (within `ack_wait` at a hand-back): those it parked get new entries beside
//!   the old ones, which then go; those it read back from an earlier owner are replaced in
//!   place (unless removed meanwhile, their events finished), which also drops the
//!   endpoints removed since (their events dead-lettered by this relay, not again by the
//!   next). So an endpoint that recovered meanwhile does not get its events again. One
//!   that recovers and delivers an event afterwards gets it again (same `webhook-id`) if
//!   the relay dies or loses its lease before the others finish, if the rewrite fails
//!   (logged), or if an event of an entry read back was not in delivery when the relay let
//!   the partition go (that entry is left as it was).
//! - An attempt in flight when its partition is handed back finishes before the partition
//!   goes (the relay waits for it past `grace`, up to the endpoints' longest timeout and a
//!   second): its event may arrive again from the next owner, but never while it is still
//!   open, nor after that ticket's later events. One in flight when the lease is lost
//!   finishes too: its event may arrive twice, once after the next owner's first
//!   deliveries of its ticket (as for a lost lease, above).
//! - A relay cut off from the servers, or handing a partition back once its grace is over,
//!   may write a message's entries after its tenure ended: it removes them once written
//!   (the message, not acknowledged, carries the events to the next owner). Should it not
//!   reach the servers again before the next owner reads the entries, the next owner gets
//!   the events from both (and delivers them once); should the removal fail until an owner
//!   after that reads them, that owner delivers them again, late.
//! - An event too large for a KV value (the server's `max_payload` less 4 KiB), or one the
//!   bucket refuses (full, or its values limited), cannot be parked: its message stays
//!   outstanding, and the relay logs it at each look. A hand-back
//!   of its partition waits for it up to [`Relay::grace`], then leaves it in the stream:
//!   the next owner delivers it again, to every endpoint.
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
//! published, as JSON, to the stream `<stream>_DEAD` under `<prefix>-dead.<endpoint>` (made
//! with as many replicas as the events' stream; one made before with fewer is logged). An
//! endpoint is done with an event once its letter is published there (or has failed to
//! be: logged, and the letter is in the file, or else logged whole): the message is not
//! acknowledged before, so that a crash of the host never loses a letter the stream did
//! not take (the file is not synced). A stop waits up to its timeout for the letters on
//! their way; an event whose letter is still unpublished then is delivered by the
//! partition's next owner (again: at least once).
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
//! [`Relay::on_endpoints`] told the revision each time. A bucket that does not exist is
//! refused (a misspelt name would leave the relay with no endpoint, acknowledging every
//! event) unless [`Relay::create_endpoints_bucket`] asks for it to be made; so is a bucket
//! with records the relay cannot read (a wrong key makes every sealed record one), whose
//! endpoints' events it would acknowledge without delivering them there, unless
//! [`Relay::leave_out_unusable`] says to start without them. An endpoint whose settings do
//! not work on the relay's machine (a file missing there) is held, paused, its events kept,
//! until a change the relay can apply.
//! [`Relay::reloads`] replaces the configured endpoints with new sets as they come
//! (`deskhook relay` sends one when SIGHUP makes it re-read `--config`). A name is the bucket's when the bucket has a record of it:
//! the configured endpoint of that name is set aside (logged) and takes over again when the
//! bucket's record is removed. So an endpoint moved from the configuration to the bucket is
//! never removed on the way, and a SIGHUP never puts an old URL or revoked secrets back
//! over the bucket's record.
//!
//! # Stopping
//!
//! When `stop` resolves, the relay takes no new messages, gives those in delivery up to
//! `grace` to finish, stops its engine, waits for the requests it still has on the wire
//! (each within its endpoint's timeout: a stop can take that long past `grace` when an
//! endpoint hangs), then deletes its consumers and leases: the other relays take the
//! partitions at once and deliver what it had not finished. It renews its leases until
//! then, so that no other relay delivers a partition's tickets while it still does; a lease
//! lost meanwhile (the relay cut off) withdraws what that partition has queued, as below.

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::SinkBuilder;
use crate::endpoint_store::SecretsKey;

mod audit;
mod book;
mod dead;
mod endpoints;
mod foreign;
mod gate;
mod incoming;
mod leases;
mod limits;
mod owner;
mod parked;
mod partition;
mod run;

use crate::error::Error;
use crate::nats::StreamSettings;
pub use endpoints::Reload;
pub use limits::MAX_PENDING;
use limits::check_durable;
use owner::OnPartitions;
pub use parked::{ParkedEndpoint, ParkedSummary, parked};

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
    /// Whether the bucket is made when it does not exist.
    create_bucket: bool,
    /// Whether the bucket's records must be sealed in the current layout.
    require_sealed: bool,
    /// Whether the relay starts with endpoints of the bucket it cannot use left out.
    leave_out_unusable: bool,
    /// The keys of a rotation under way, that the bucket's records may still be sealed with.
    previous_keys: Vec<SecretsKey>,
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
    /// Of the events acknowledged, those no endpoint was registered for (their tenant and
    /// type): normal for a tenant without webhooks; growing for one that has some, a
    /// misspelt tenant in the publisher. An event handed out again (its acknowledgement
    /// lost) counts again, as it does in `acknowledged`: the relay remembers the events it
    /// delivered, to acknowledge their copies as duplicates, not those that went nowhere.
    pub unrouted: u64,
    /// The stream's partitions.
    pub partitions: u32,
    /// The last revision of the endpoints bucket applied, when the relay follows one.
    pub endpoints_revision: Option<u64>,
}

impl Relay {
    /// A relay pulling from the NATS servers `urls` (comma-separated; a URL's credentials,
    /// `nats://user:password@host:port`, log in: see [`nats`](crate::nats)'s *Connecting*)
    /// and delivering with `sink`'s endpoints and settings (from
    /// `Config::http_sink_builder` or built in code).
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
            create_bucket: false,
            require_sealed: false,
            leave_out_unusable: false,
            previous_keys: Vec::new(),
            applied: None,
            owned: None,
            reloads: None,
        }
    }

    /// Replaces the builder's endpoints with each set `reloads` yields (what `deskhook
    /// relay` does with a configuration re-read on SIGHUP): new and changed ones are
    /// upserted, those of the previous set that are gone are removed; names the endpoints
    /// bucket has are left to the bucket. Each set's sender is told once it is applied.
    #[must_use]
    pub fn reloads(mut self, reloads: tokio::sync::mpsc::UnboundedReceiver<Reload>) -> Self {
        self.reloads = Some(reloads);
        self
    }

    /// Also delivers to the endpoints of the KV bucket `bucket` (see
    /// [`endpoint_store`](crate::endpoint_store)), opening their secrets with `key`: they are
    /// registered before delivery starts, and every change to the bucket (`deskhook endpoints
    /// --nats …`) is applied as it comes: an endpoint added, changed (from its next attempt),
    /// paused, resumed or removed, as [`Endpoints`](crate::delivery::Endpoints) does it.
    ///
    /// An endpoint whose record the relay reads but whose settings do not work here (a
    /// `ca_file` or `template_file` missing on this machine, a `secret_env` not set) is
    /// held: registered paused with the record's URL, tenant and event types, its events
    /// kept (parked), until a change this relay can apply. One whose record it cannot read
    /// (sealed with another key or without one, a newer layout, refused as unsealed) would
    /// have its events acknowledged without delivery there, since what it takes is not
    /// known (so would one whose stand-in cannot be registered either: a name over
    /// [`NAME_MAX_BYTES`](crate::delivery::NAME_MAX_BYTES), a URL this build refuses): at
    /// start [`run`](Relay::run) fails naming each and why, unless
    /// [`leave_out_unusable`](Relay::leave_out_unusable) says to start without them (a
    /// configured endpoint of the same name is paused instead: its events wait); once the
    /// relay runs, one added is logged with its name and left out. One it delivered to
    /// whose change it cannot read or apply is paused (its events wait) until a change it
    /// can, rather than go on with its old URL and secrets.
    ///
    /// The bucket must exist (made by the first endpoint added to it), or
    /// [`run`](Relay::run) fails naming the buckets there are: a relay given a misspelt name
    /// would otherwise start with no endpoint, and acknowledge every event as one that no
    /// endpoint takes. See [`create_endpoints_bucket`](Relay::create_endpoints_bucket) to
    /// start before the first endpoint is added.
    #[must_use]
    pub fn endpoints_bucket(mut self, bucket: impl Into<String>, key: Option<SecretsKey>) -> Self {
        self.bucket = Some((bucket.into(), key));
        self
    }

    /// Makes the [endpoints bucket](Relay::endpoints_bucket) empty when it does not exist,
    /// for a relay deployed before the first endpoint is added. Until one is, the relay
    /// acknowledges every event as one that no endpoint takes (counted in
    /// [`RelayReport::unrouted`]). Defaults to false: a bucket that does not exist is an
    /// error.
    #[must_use]
    pub fn create_endpoints_bucket(mut self, create: bool) -> Self {
        self.create_bucket = create;
        self
    }

    /// Starts even when the [endpoints bucket](Relay::endpoints_bucket) has records this
    /// relay cannot read: each is logged with its name and why, and its endpoint left out, its
    /// events acknowledged without delivery there (the others are delivered to meanwhile).
    /// For a bucket where a broken record must not stop every tenant's deliveries; check
    /// the log at each start. Defaults to false: `run` fails naming the records.
    #[must_use]
    pub fn leave_out_unusable(mut self, leave_out: bool) -> Self {
        self.leave_out_unusable = leave_out;
        self
    }

    /// Refuses, with a key, the bucket's records not sealed in the current layout (see
    /// [`EndpointStore::require_sealed`](crate::endpoint_store::EndpointStore::require_sealed)):
    /// they are records this relay cannot use (see
    /// [`endpoints_bucket`](Relay::endpoints_bucket)). Defaults to false
    /// (they are read, with a warning naming each, but for those that set what reaches into
    /// the relay's machine: `template_file`, `ca_file`, `secret_env`, `allow_private`,
    /// `allow_cidrs`, refused all the same).
    #[must_use]
    pub fn require_sealed(mut self, require: bool) -> Self {
        self.require_sealed = require;
        self
    }

    /// The keys a rotation of the bucket's key replaces: records not yet sealed with the new
    /// one open with these (see
    /// [`EndpointStore::previous_keys`](crate::endpoint_store::EndpointStore::previous_keys),
    /// which says how to rotate). Defaults to none.
    #[must_use]
    pub fn previous_keys(mut self, keys: Vec<SecretsKey>) -> Self {
        self.previous_keys = keys;
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
    /// is made; an existing bucket keeps its own. Defaults to 10 s; at least 1 s, at most an
    /// hour (longer fails [`run`](Relay::run)).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// How long a message may stay outstanding while its events wait for a failing endpoint
    /// before it is parked (see [Failing endpoints](self#failing-endpoints)): its unfinished
    /// events are written to the KV bucket `<durable>-parked` and the message acknowledged, so
    /// that the partition goes on (at once for a paused endpoint). While an endpoint fails,
    /// its tickets' events reach their other endpoints one per half `park_after` to one per
    /// `park_after` (see the same section). Defaults to 1 s; at least 10 ms, at most a day
    /// (longer fails [`run`](Relay::run)).
    #[must_use]
    pub fn park_after(mut self, after: Duration) -> Self {
        self.park_after = after.max(Duration::from_millis(10));
        self
    }

    /// How many messages each partition may have outstanding (taken and not acknowledged):
    /// what a relay delivers at once from one partition, and the most one partition can
    /// deliver twice when its relay dies. Defaults to 512; at most [`MAX_PENDING`] (more
    /// fails [`run`](Relay::run)).
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

    /// Connection options (credentials, TLS), with the URLs' credentials if they have any
    /// (see [`nats`](crate::nats)'s *Connecting*). Defaults to none.
    #[must_use]
    pub fn connect_options(mut self, options: async_nats::ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// The name relays that share the work have in common: the prefix of their consumers'
    /// names (`<durable>-<partition>-<lease>`), of their leases bucket (`<durable>-leases`)
    /// and of their parked events bucket (`<durable>-parked`). Every relay of a stream has
    /// the same: [`run`](Relay::run) fails while consumers of relays named otherwise are on
    /// the stream (see [How work is shared](self#how-work-is-shared)). Defaults to
    /// `deskhook-relay`; ASCII letters, digits, `-` and `_` only (else [`run`](Relay::run)
    /// fails).
    #[must_use]
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = name.into();
        self
    }

    /// How long the server waits without news of a message before it hands it out again
    /// (the relay tells it every third of this while the message is in delivery). Defaults
    /// to 30 s; from 300 ms to an hour (else [`run`](Relay::run) fails).
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
    /// flight. For watching a relay at work, or seeing why it went quiet. Defaults to never;
    /// at most a day (longer fails [`run`](Relay::run)).
    #[must_use]
    pub fn log_status_every(mut self, every: Duration) -> Self {
        self.status_every = Some(every.max(Duration::from_millis(100)));
        self
    }

    /// How long a stopping relay lets the messages in delivery finish before it stops its
    /// engine and leaves the rest to the partitions' next owners (after the requests still
    /// on the wire end: see *Stopping* in the [module docs](self)); and how long a relay
    /// handing a partition back to another waits for that partition's messages to finish
    /// or be parked (then for its requests still on the wire to end, as a stop does).
    /// Defaults to 10 s; at most an hour (longer fails [`run`](Relay::run)).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

fn nats_error(urls: &str, message: String) -> Error {
    Error::Nats {
        url: urls.rsplit('@').next().unwrap_or_default().to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_event_a_full_queue_cannot_take_is_dead_lettered_not_dropped() {
        use crate::delivery::{DeliveryConfig, DeliverySink, Endpoint, Job};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let config = DeliveryConfig {
                queue_capacity: 1,
                ..DeliveryConfig::default()
            };
            let (http, guard) = DeliverySink::builder()
                .config(config)
                .dead_letter_path(dir.path().join("dead.jsonl"))
                .endpoint(Endpoint::new("crm", "https://crm.example.com/hooks").unwrap())
                .build_async()
                .unwrap();
            http.endpoints().pause("crm").unwrap();
            let withdrawn = Arc::new(crate::delivery::Withdrawal::new(None));
            let job = |ticket: &str| Job::withdrawable_for_test(ticket, 0, Some(withdrawn.clone()));
            let relay = |job: Job| {
                let lanes = http.engine().registry().route(None, job.event.event_type);
                let event = Arc::try_unwrap(job.event).expect("one owner");
                http.engine().enqueue_relayed(lanes, event)
            };
            assert!(relay(job("T1")).is_empty());
            // The queue is full: refused, not counted as dropped (the relay dead-letters it).
            let refused = relay(job("T2"));
            assert_eq!(refused.len(), 1, "{refused:?}");
            assert!(refused[0].1.contains("queue full"), "{refused:?}");
            assert_eq!(http.totals().dropped, 0);
            // The relay's dead letter is counted as one.
            let lane = http.engine().registry().get("crm").unwrap();
            http.write_dead_letter(crate::delivery::DeadLetter::of_job(
                &lane,
                &job("T2"),
                "the relay could not queue it",
            ));
            assert_eq!((http.totals().dropped, http.totals().dead_lettered), (0, 1));
            drop(http);
            let _ = guard.shutdown_async(std::time::Duration::ZERO).await;
        });
    }
}
