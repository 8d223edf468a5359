//! The relay: delivers the events a [`NatsSink`](crate::nats::NatsSink) published, from the
//! JetStream stream, with the same engine and endpoint configuration as in-process delivery
//! (feature `relay`). `deskhook relay` runs one; any number of them on any machines share
//! the work.
//!
//! # How work is shared and ordered
//!
//! Messages are spread over the stream's partitions by a hash of their ticket (see
//! [`partition_of`](crate::nats::partition_of)). Each partition has one durable pull
//! consumer (`<durable>-<partition>`) with `max_ack_pending = 1`, which all relays pull
//! from: the server hands out a partition's next message only once the one before is
//! acknowledged, whichever relay had it. So a ticket's events are delivered in the order they
//! were published, by any number of relays, and up to one event per partition is in delivery
//! at a time across all of them.
//!
//! A relay delivers a message to every endpoint of its registry subscribed to its event
//! type and, when the message carries a tenant, belonging to that tenant or to none (see
//! [the engine's tenants](crate::delivery#tenants)), through the delivery engine: signatures, the SSRF guard, the retry schedule, the
//! breaker, the observer and dead letters work as in-process. While it does, it tells the
//! server the message is in progress (every third of `ack_wait`), so that a slow endpoint's
//! work is not taken away from a live relay; it acknowledges once every endpoint has its
//! final outcome (delivered or dead-lettered). A relay that dies stops sending progress: the
//! server gives the message to another relay after `ack_wait`; receivers see it again with
//! the same `webhook-id`.
//!
//! A failed attempt is retried by the relay that holds the message, on the endpoint's
//! schedule, instead of being nak'ed with a delay: a nak would let the next event of the
//! partition — perhaps of the same ticket — overtake it, and would send the event again to
//! the endpoints that already took it. The cost is that a failing endpoint holds its
//! partitions until the event is delivered or given up. A message the server has handed out
//! more than `max_handoffs` times (relays keep dying on it) is given up: dead-lettered and
//! terminated.
//!
//! Dead letters go where the configuration says (the dead-letter file) and are also
//! published, as JSON, to the stream `<stream>_DEAD` under `<prefix>-dead.<endpoint>`.
//!
//! The order rests on the progress reaching the server within `ack_wait`: if it does not
//! (a reconnect longer than that), the server hands the event to another relay while the
//! first may still deliver it, and the first one's late acknowledgement can release the
//! partition early.
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
//! `grace` to finish, and hands the rest back (nak): another relay delivers them at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use deskhook::EventType;

use crate::delivery::{
    AttemptOutcome, AttemptRecord, DeadLetter, DeliveryGuard, DeliverySink, Hooks, Observer,
    SinkBuilder, TENANT_HEADER, TICKET_HEADER,
};
use crate::endpoint_store::{Change, EndpointStore, SecretsKey};

mod endpoints;

use crate::error::Error;
use crate::nats::{StreamSettings, decode_ticket, partitions_of};
pub use endpoints::Reload;
use endpoints::{apply, follow, reload};

/// How long a relay waits for a message before it looks at `stop` again.
const FETCH_EXPIRY: Duration = Duration::from_secs(1);

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
    ready: Option<ReadyCallback>,
    /// The KV bucket of endpoints to follow, and the key that opens their secrets.
    bucket: Option<(String, Option<SecretsKey>)>,
    /// Called with each bucket revision applied.
    applied: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// New sets of the configuration's endpoints (a re-read `--config`).
    reloads: Option<tokio::sync::mpsc::UnboundedReceiver<Reload>>,
}

/// What [`Relay::on_ready`] keeps.
type ReadyCallback = Box<dyn FnOnce(&RelayReady) + Send>;

/// What a relay is about to do, for [`Relay::on_ready`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RelayReady {
    /// The stream delivered from.
    pub stream: String,
    /// Its partitions (one consumer each).
    pub partitions: u32,
    /// The endpoints delivered to.
    pub endpoints: Vec<String>,
    /// The revision of the endpoints bucket applied, when the relay follows one.
    pub endpoints_revision: Option<u64>,
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
            .finish_non_exhaustive()
    }
}

/// What a relay did, when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Messages acknowledged: every subscribed endpoint delivered or dead-lettered them.
    pub acknowledged: u64,
    /// Messages handed back (nak) at stop, for another relay.
    pub handed_back: u64,
    /// Dead letters written (per endpoint).
    pub dead_lettered: u64,
    /// The stream's partitions.
    pub partitions: u32,
    /// The last revision of the endpoints bucket applied, when the relay follows one.
    pub endpoints_revision: Option<u64>,
}

/// Counters shared by the partition loops.
#[derive(Default)]
struct Counts {
    acknowledged: AtomicU64,
    handed_back: AtomicU64,
    dead_lettered: AtomicU64,
}

/// Messages in delivery, by event id: the endpoints with no final outcome yet, and whom to
/// tell when none is left.
type Waiting = Arc<Mutex<HashMap<String, Pending>>>;

/// One message in delivery.
struct Pending {
    endpoints: Vec<String>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Endpoint `endpoint` is finished with event `id` (delivered or dead-lettered); tells the
/// waiting handler when it was the last one. Idempotent: the observer and the dead-letter
/// hook may both report the same outcome.
fn finished(waiting: &Waiting, id: &str, endpoint: &str) {
    let mut waiting = waiting.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pending) = waiting.get_mut(id) {
        pending.endpoints.retain(|e| e != endpoint);
        if pending.endpoints.is_empty() {
            if let Some(done) = pending.done.take() {
                let _ = done.send(());
            }
            waiting.remove(id);
        }
    }
}

/// Sees final outcomes for the relay, then passes every record on to the configured
/// observer.
struct Tracker {
    waiting: Waiting,
    inner: Option<Arc<dyn Observer>>,
}

impl Observer for Tracker {
    fn on_attempt(&self, record: &AttemptRecord<'_>) {
        if record.outcome != AttemptOutcome::Retrying {
            finished(&self.waiting, &record.event_id.to_string(), record.endpoint);
        }
        if let Some(inner) = &self.inner {
            inner.on_attempt(record);
        }
    }
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
            timeout: Duration::from_secs(5),
            ready: None,
            bucket: None,
            applied: None,
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
    /// endpoint the relay cannot use (sealed secrets without the key, a newer record layout,
    /// a setting that does not work here) is logged with its name and left out.
    #[must_use]
    pub fn endpoints_bucket(mut self, bucket: impl Into<String>, key: Option<SecretsKey>) -> Self {
        self.bucket = Some((bucket.into(), key));
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

    /// Called once the consumers exist and delivery starts. Defaults to nothing.
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

    /// The prefix of the durable consumers' names (`<durable>-<partition>`); relays with the
    /// same name share the work. Defaults to `deskhook-relay`.
    #[must_use]
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = name.into();
        self
    }

    /// How long the server waits without news from a relay before it gives the message to
    /// another one. Defaults to 30 s.
    #[must_use]
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// How many times a message may be handed out before it is given up. Defaults to 10.
    #[must_use]
    pub fn max_handoffs(mut self, handoffs: u32) -> Self {
        self.max_handoffs = i64::from(handoffs.max(1));
        self
    }

    /// How long a stopping relay lets the messages in delivery finish before it hands them
    /// back. Defaults to 10 s.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Delivers until `stop` resolves.
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the servers cannot be reached or a consumer cannot be made;
    /// [`Error::StreamConflict`] for a stream deskhook cannot work with; what building the
    /// sink returns (bad endpoints).
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
        // The partition count and the storage are the stream's own: the publisher chose them.
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
        let info = settings.ensure(&context).await?;
        let partitions = settings.partition_count();
        let stream = context
            .get_stream(&info.config.name)
            .await
            .map_err(|e| nats_error(&self.urls, format!("cannot open the stream: {e}")))?;
        let dead_stream = dead_letter_stream(&context, &settings, &self.urls).await?;

        let mut consumers = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            consumers.push(self.consumer(&stream, &settings, partition).await?);
        }
        // A consumer made earlier keeps its own ack wait: progress must come within the
        // shorter of the two.
        let ack_wait = consumers
            .iter()
            .map(|c| c.cached_info().config.ack_wait)
            .filter(|wait| !wait.is_zero())
            .fold(self.ack_wait, Duration::min);

        let waiting: Waiting = Arc::default();
        let counts = Arc::new(Counts::default());
        let (letters_tx, mut letters_rx) = tokio::sync::mpsc::unbounded_channel::<DeadLetter>();
        let mut sink = self.sink;
        // At most one message per partition is in the engine, one job per endpoint: the
        // queue never fills, and `redeliver` never waits or drops.
        let jobs = partitions as usize * sink.endpoints.len().max(1);
        sink.config.queue_capacity = sink.config.queue_capacity.max(2 * jobs);
        sink.config.overflow = deskhook::policy::OverflowPolicy::DropNewest;
        let names: Vec<String> = sink.endpoints.iter().map(|e| e.name().to_owned()).collect();
        sink.observer = Some(Arc::new(Tracker {
            waiting: waiting.clone(),
            inner: sink.observer.take(),
        }));
        {
            let counts = counts.clone();
            let waiting = waiting.clone();
            sink.hooks = Hooks {
                drop_on_stop: true,
                // Also final: some dead letters (a 410 emptying the queue, a body over the
                // limit) come without an attempt of their own.
                dead_letter: Some(Arc::new(move |letter: &DeadLetter| {
                    counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    finished(&waiting, &letter.id, &letter.endpoint);
                    let _ = letters_tx.send(letter.clone());
                })),
            };
        }
        let (http, guard) = sink.build()?;
        let revision = Arc::new(AtomicU64::new(0));
        let follower = match &self.bucket {
            None => None,
            Some((bucket, key)) => {
                let replicas = settings.stream_config().num_replicas;
                let store = EndpointStore::open(&context, bucket, replicas, key.clone()).await?;
                let (current, changes) = store.watch().await?;
                for stored in current {
                    revision.fetch_max(stored.revision, Ordering::Relaxed);
                    apply(&http, &Change::Put(Box::new(stored)));
                }
                if let Some(applied) = &self.applied {
                    applied(revision.load(Ordering::Relaxed));
                }
                Some(tokio::spawn(follow(
                    http.clone(),
                    changes,
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
            "relay '{}': delivering from stream '{}' ({partitions} partitions) to {} endpoint(s)",
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
            });
        }

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            http,
            waiting,
            counts: counts.clone(),
            stop: stop_rx,
            ack_wait,
            grace: self.grace,
            max_handoffs: self.max_handoffs,
        });
        let mut loops = tokio::task::JoinSet::new();
        for consumer in consumers {
            let shared = shared.clone();
            loops.spawn(async move { shared.pull(consumer).await });
        }
        stop.await;
        if let Some(follower) = &follower {
            follower.abort();
        }
        if let Some(reloader) = &reloader {
            reloader.abort();
        }
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        drop(shared);
        let shut = tokio::task::spawn_blocking(move || finish(guard)).await;
        if shut.is_err() {
            log::error!(target: deskhook::LOG_TARGET, "the relay's delivery engine did not stop cleanly");
        }
        let _ = publisher.await;
        Ok(RelayReport {
            acknowledged: counts.acknowledged.load(Ordering::Relaxed),
            handed_back: counts.handed_back.load(Ordering::Relaxed),
            dead_lettered: counts.dead_lettered.load(Ordering::Relaxed),
            partitions,
            endpoints_revision: follower.map(|_| revision.load(Ordering::Relaxed)),
        })
    }

    /// The durable consumer of one partition, made or checked.
    async fn consumer(
        &self,
        stream: &jetstream::stream::Stream,
        settings: &StreamSettings,
        partition: u32,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, Error> {
        let name = format!("{}-{partition}", self.durable);
        let filter = settings.partition_filter(partition);
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("deskhook relay, partition {partition}")),
            filter_subject: filter.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_ack_pending: 1,
            max_deliver: -1,
            ..Default::default()
        };
        let found = stream
            .get_or_create_consumer(&name, config)
            .await
            .map_err(|e| {
                nats_error(
                    &self.urls,
                    format!("cannot make consumer '{name}' for '{filter}': {e}"),
                )
            })?;
        let info = found.cached_info();
        if info.config.filter_subject != filter
            || info.config.max_ack_pending != 1
            || info.config.ack_policy != consumer::AckPolicy::Explicit
        {
            return Err(Error::StreamConflict {
                stream: settings.stream_name().to_owned(),
                setting: "consumer",
                found: format!(
                    "consumer '{name}' with filter '{}', max_ack_pending {} and ack policy {:?}",
                    info.config.filter_subject, info.config.max_ack_pending, info.config.ack_policy
                ),
                expected: format!(
                    "filter '{filter}' and max_ack_pending 1 (delete the old consumers: on a \
                     work-queue stream no two consumers may take the same subjects)"
                ),
            });
        }
        Ok(found)
    }
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

/// The stream dead letters are published to: `<stream>_DEAD`, subjects `<prefix>-dead.>`.
async fn dead_letter_stream(
    context: &jetstream::Context,
    settings: &StreamSettings,
    urls: &str,
) -> Result<String, Error> {
    let name = format!("{}_DEAD", settings.stream_name());
    context
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}-dead.>", settings.prefix())],
            description: Some("deskhook dead letters, published by deskhook relay".to_owned()),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            nats_error(
                urls,
                format!("cannot make the dead-letter stream '{name}': {e}"),
            )
        })?;
    Ok(name)
}

/// Publishes a dead letter; what cannot be published is in the relay's dead-letter file.
async fn publish_dead_letter(
    context: &jetstream::Context,
    prefix: &str,
    stream: &str,
    letter: &DeadLetter,
) {
    let token: String = letter
        .endpoint
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || ".*>".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let subject = format!("{prefix}-dead.{token}");
    let Ok(payload) = serde_json::to_vec(letter) else {
        return;
    };
    let acked = match context.publish(subject, payload.into()).await {
        Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = acked {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "dead letter {} not published to stream '{stream}' ({e}); it is in the relay's \
             dead-letter file",
            letter.id
        );
    }
}

/// What the partition loops share.
struct Shared {
    http: DeliverySink,
    waiting: Waiting,
    counts: Arc<Counts>,
    /// Becomes `true` when the relay stops.
    stop: tokio::sync::watch::Receiver<bool>,
    ack_wait: Duration,
    grace: Duration,
    max_handoffs: i64,
}

/// What became of one message.
enum Handled {
    Acknowledged,
    HandedBack,
}

impl Shared {
    /// Whether the relay is stopping.
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the relay is stopping (at once if it is).
    async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    /// One partition: take a message, deliver it, acknowledge it; until stopped.
    async fn pull(&self, consumer: consumer::Consumer<consumer::pull::Config>) {
        use futures_util::StreamExt as _;
        while !self.stopping() {
            let started = std::time::Instant::now();
            let batch = consumer
                .fetch()
                .max_messages(1)
                .expires(FETCH_EXPIRY)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    log::warn!(target: deskhook::LOG_TARGET, "relay: cannot fetch: {e}; trying again");
                    self.pause(FETCH_EXPIRY).await;
                    continue;
                }
            };
            let mut taken = 0;
            while let Some(message) = batch.next().await {
                match message {
                    Ok(message) => {
                        taken += 1;
                        let counter = match self.handle(&message).await {
                            Handled::Acknowledged => &self.counts.acknowledged,
                            Handled::HandedBack => &self.counts.handed_back,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        log::warn!(target: deskhook::LOG_TARGET, "relay: a fetch failed: {e}");
                        self.pause(FETCH_EXPIRY).await;
                    }
                }
            }
            // A fetch the server ended early without a message: do not spin.
            if taken == 0 && started.elapsed() < FETCH_EXPIRY / 10 {
                self.pause(FETCH_EXPIRY / 10).await;
            }
        }
    }

    /// Sleeps for `wait`, or until the relay stops.
    async fn pause(&self, wait: Duration) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.stopped() => {}
        }
    }

    /// Delivers one message to its endpoints, then acknowledges it (or hands it back when
    /// the relay stops first).
    async fn handle(&self, message: &jetstream::Message) -> Handled {
        if self.stopping() {
            // Taken by the last fetch after the stop: another relay delivers it.
            self.settle(message, AckKind::Nak(None)).await;
            return Handled::HandedBack;
        }
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let handoffs = message.info().map_or(1, |info| info.delivered);
        let id = header("webhook-id");
        let name = header("x-deskhook-action");
        let event_type = name.as_deref().and_then(EventType::from_wire);
        let (Some(id), Some(event_type)) = (id, event_type) else {
            log::error!(
                target: deskhook::LOG_TARGET,
                "relay: message on '{}' is not a deskhook event (webhook-id or \
                 x-deskhook-action missing or unknown); terminated",
                message.subject
            );
            self.settle(message, AckKind::Term).await;
            return Handled::Acknowledged;
        };
        let ticket = header(TICKET_HEADER)
            .map(|t| decode_ticket(&t))
            .unwrap_or_default();
        let tenant = header(TENANT_HEADER).map(|t| decode_ticket(&t));
        // The endpoints registered now that take this event: those of its tenant and those
        // without a tenant.
        let lanes = self
            .http
            .engine()
            .registry()
            .route(tenant.as_deref(), event_type);
        let targets: Vec<&str> = lanes.iter().map(|lane| &*lane.name).collect();
        if targets.is_empty() {
            self.settle(message, AckKind::Ack).await;
            return Handled::Acknowledged;
        }
        let body = crate::delivery::raw_body(&message.payload);
        // The event for one endpoint, in the form the engine takes back (and dead-letters).
        let letter_for = |endpoint: &str, reason: String| DeadLetter {
            id: id.clone(),
            endpoint: endpoint.to_owned(),
            url: String::new(),
            tenant: tenant.clone(),
            action: event_type.as_str().to_owned(),
            ticket: ticket.clone(),
            attempts: 0,
            last_status: None,
            last_error: None,
            failed_at: if reason.is_empty() {
                String::new()
            } else {
                format!("{:.3}", jiff::Timestamp::now())
            },
            reason,
            body: body.clone(),
        };
        if handoffs > self.max_handoffs {
            log::error!(
                target: deskhook::LOG_TARGET,
                "relay: event {id} was handed out {handoffs} times (relays stopped while \
                 delivering it); given up"
            );
            for endpoint in &targets {
                self.http.write_dead_letter(letter_for(
                    endpoint,
                    format!("handed out {handoffs} times without being delivered"),
                ));
            }
            self.settle(message, AckKind::Term).await;
            return Handled::Acknowledged;
        }

        let (done_tx, mut done) = tokio::sync::oneshot::channel();
        let busy = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let busy = waiting.contains_key(&id);
            if !busy {
                waiting.insert(
                    id.clone(),
                    Pending {
                        endpoints: targets.iter().map(|e| (*e).to_owned()).collect(),
                        done: Some(done_tx),
                    },
                );
            }
            busy
        };
        if busy {
            // The same event again while this relay still delivers it (the server thought it
            // lost): leave it to the delivery under way.
            self.settle(message, AckKind::Nak(Some(self.ack_wait)))
                .await;
            return Handled::HandedBack;
        }
        for endpoint in &targets {
            let letter = letter_for(endpoint, String::new());
            if let Err(e) = self.http.redeliver(&letter) {
                // Refused: dead-lettered already (too large, endpoint disabled; the hook has
                // counted it as finished), or dropped, which the queue sized for every
                // partition should not allow: then it is dead-lettered here, so that the
                // message still ends.
                let dead_lettered = !self
                    .waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .is_some_and(|p| p.endpoints.iter().any(|x| x == endpoint));
                if !dead_lettered {
                    self.http.write_dead_letter(letter_for(
                        endpoint,
                        format!("the relay could not queue it: {e}"),
                    ));
                }
            }
        }

        // Progress keeps the message ours while the endpoints take their time, also during
        // the grace period of a stop.
        let progress_every = (self.ack_wait / 3).max(Duration::from_millis(100));
        let mut grace_ends: Option<tokio::time::Instant> = None;
        loop {
            let tick = match grace_ends {
                Some(ends) => {
                    progress_every.min(ends.saturating_duration_since(tokio::time::Instant::now()))
                }
                None => progress_every,
            };
            tokio::select! {
                _ = &mut done => break,
                () = tokio::time::sleep(tick) => {
                    if grace_ends.is_some_and(|ends| tokio::time::Instant::now() >= ends) {
                        self.forget(&id);
                        self.settle(message, AckKind::Nak(None)).await;
                        return Handled::HandedBack;
                    }
                    self.settle(message, AckKind::Progress).await;
                }
                () = self.stopped(), if grace_ends.is_none() => {
                    grace_ends = Some(tokio::time::Instant::now() + self.grace);
                }
            }
        }
        // Double ack: wait for the server to confirm, so that an acknowledgement lost on the
        // way does not let the partition stall until ack_wait.
        if let Err(e) = message.double_ack().await {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: acknowledging event {id} failed ({e}); it may be delivered again"
            );
        }
        Handled::Acknowledged
    }

    fn forget(&self, id: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    async fn settle(&self, message: &jetstream::Message, kind: AckKind) {
        if let Err(e) = message.ack_with(kind).await {
            log::warn!(target: deskhook::LOG_TARGET, "relay: cannot answer the server: {e}");
        }
    }
}
