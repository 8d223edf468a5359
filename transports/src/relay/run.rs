//! Running a relay: connecting, the engine set up for relaying, the partitions' owner and
//! the tasks beside it, and the stop that hands everything back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use deskhook::policy::OverflowPolicy;

use super::book::{self, Book, Tracker};
use super::dead::{Letter, Unpublished, dead_letter_stream, publish_letters};
use super::endpoints::{Sources, follow, from_bucket, reload};
use super::owner::Owner;
use super::partition::Shared;
use super::{Relay, RelayReady, RelayReport, foreign, leases, nats_error, parked};
use crate::delivery::{DeadLetter, DeliveryGuard, Hooks};
use crate::endpoint_store::EndpointStore;
use crate::error::Error;
use crate::nats::StreamSettings;

impl Relay {
    /// Delivers until `stop` resolves.
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] when the servers cannot be reached or the stream cannot be opened;
    /// [`Error::StreamConflict`] for a stream deskhook cannot work with; [`Error::Config`]
    /// for a consumer of the stream that is not this group's (see [How work is
    /// shared](super#how-work-is-shared)), the stream made again with another partition
    /// count while the relay runs (it stops, handing back what it had), parked events of
    /// partitions the stream no longer has, a leases or endpoints bucket it cannot use, an
    /// endpoints bucket that does not exist (unless
    /// [`create_endpoints_bucket`](Relay::create_endpoints_bucket)), or a duration out of
    /// its range; what building the sink returns (bad endpoints).
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<RelayReport, Error> {
        self.check_durations()?;
        super::check_durable(&self.durable)?;
        #[cfg(feature = "spool")]
        if self.sink.spool.is_some() {
            return Err(Error::Config(
                "a relay delivers without a spool (the stream is its durable queue, and what it \
                 does not finish goes back to the stream): remove the spool or [spool] section"
                    .to_owned(),
            ));
        }
        let Opened {
            context,
            settings,
            replicas,
            stream,
            dead_stream,
            me,
            leases,
            parked,
            store,
        } = self.open().await?;
        let partitions = settings.partition_count();
        let names: Vec<String> = self
            .sink
            .endpoints
            .iter()
            .map(|e| e.name().to_owned())
            .collect();
        let sources = Sources::new(self.sink.endpoints.clone());
        let unpublished = Arc::new(Unpublished::default());
        let (sink, book, done, letters) = relaying_sink(
            self.sink,
            partitions,
            (self.max_pending, self.ack_wait),
            &unpublished,
        );
        let (http, guard) = sink.build_async()?;
        let revision = Arc::new(AtomicU64::new(0));
        let follower = match store {
            None => None,
            Some(store) => {
                let applied = self.applied.clone();
                let leave_out = self.leave_out_unusable;
                Some(follow_bucket(store, (&http, leave_out), &sources, &revision, applied).await?)
            }
        };
        let reloader = self
            .reloads
            .take()
            .map(|reloads| tokio::spawn(reload(http.clone(), sources.clone(), reloads)));
        let names = if self.bucket.is_some() {
            http.endpoints().names()
        } else {
            names
        };
        let publisher = tokio::spawn(publish_letters(
            context.clone(),
            (settings.prefix().to_owned(), dead_stream),
            book.clone(),
            unpublished.clone(),
            letters,
        ));
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

        let beside = Beside {
            status: self
                .status_every
                .map(|every| tokio::spawn(book::log_status(book.clone(), http.clone(), every))),
            acker: tokio::spawn(book::settle_messages(
                book.clone(),
                done,
                http.clone(),
                parked.clone(),
                book::Confirming::new(self.ack_wait),
            )),
            parker: tokio::spawn(book::park_stuck(
                book.clone(),
                http.clone(),
                self.park_after,
            )),
            progress: tokio::spawn(book::keep_alive(
                book.clone(),
                (self.ack_wait / 3).max(Duration::from_millis(100)),
            )),
        };
        let shared = Arc::new(Shared {
            http,
            book: book.clone(),
            stream,
            context: context.clone(),
            settings,
            durable: self.durable,
            ack_wait: self.ack_wait,
            grace: self.grace,
            max_pending: self.max_pending,
            max_handoffs: self.max_handoffs,
            memory_consumers: replicas <= 1,
            parked,
            leases: leases.clone(),
            unpublished,
            reconnected: tokio::sync::watch::Sender::new(0),
        });
        // However `run` ends (its future dropped by a `select!` or a timeout around it, or
        // its partition owner failing), none of its tasks goes on after it: keep-alives for
        // messages it will not finish, parked entries for partitions another relay owns by
        // then. They are aborted when this goes (those that ended already, in vain).
        let _tasks = AbortOnDrop(
            [Some(&publisher), follower.as_ref(), reloader.as_ref()]
                .into_iter()
                .flatten()
                .chain(beside.status.as_ref())
                .chain([&beside.acker, &beside.parker, &beside.progress])
                .map(tokio::task::JoinHandle::abort_handle)
                .collect(),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut owner =
            tokio::spawn(Owner::new(shared.clone(), leases, partitions, self.owned).run(stop_rx));
        // Until told to stop, or the stream is made again with another partition count, or
        // the owner ends of itself (a panic: it ends only when told to stop otherwise).
        let mut ended = None;
        let remade = tokio::select! {
            () = stop => None,
            why = partitions_changed(
                &context,
                shared.settings.stream_name(),
                partitions,
                self.ack_wait.max(STREAM_LOOK_AT_LEAST),
            ) => Some(why),
            early = &mut owner => {
                ended = Some(early);
                None
            }
        };
        if let Some(why) = &remade {
            log::error!(target: deskhook::LOG_TARGET, "relay: {why}");
        }
        if let Some(status) = &beside.status {
            status.abort();
        }
        for task in [&follower, &reloader].into_iter().flatten() {
            task.abort();
        }
        let _ = stop_tx.send(true);
        let owned = match ended {
            Some(early) => early,
            None => owner.await,
        };
        let stopping = match owned {
            Ok(stopping) => stopping,
            Err(e) => {
                // A bug (a panic): the partitions' leases run out and other relays take
                // them, from the first message not acknowledged.
                return Err(nats_error(
                    &self.urls,
                    format!(
                        "the relay's partition owner stopped unexpectedly ({e}); its tasks \
                         were stopped, and its partitions go to other relays once their leases \
                         end"
                    ),
                ));
            }
        };
        let waits = (self.grace, self.timeout);
        stop_delivering(&book, shared, stopping, guard, beside, waits).await;
        let _ = publisher.await;
        let revision = follower.map(|_| revision.load(Ordering::Relaxed));
        match remade {
            Some(why) => Err(Error::Config(why)),
            None => Ok(report(&book, partitions, revision)),
        }
    }

    /// Connects and opens what the relay works with on the servers: the stream (made if
    /// missing), the endpoints bucket, its dead letters' stream, the leases and the parked
    /// events buckets.
    async fn open(&self) -> Result<Opened, Error> {
        let context = crate::nats::connect(&self.urls, self.connect.clone(), self.timeout).await?;
        // Read patiently: settings guessed for a stream that did not answer at once would
        // make it look like a conflict.
        let settings = patiently(|| self.stream.clone().of_existing(&context)).await?;
        let info = settings.ensure(&context).await?;
        let replicas = info.config.num_replicas;
        let stream = patiently(|| async {
            context
                .get_stream(&info.config.name)
                .await
                .map_err(|e| nats_error(&self.urls, format!("cannot open the stream: {e}")))
        })
        .await?;
        let obstacle =
            patiently(|| foreign::first_obstacle(&stream, &settings, &self.durable, &self.urls))
                .await?;
        if let Some(why) = obstacle {
            return Err(Error::Config(why));
        }
        // Before the relay's own buckets are made: a relay refused for a misspelt bucket
        // leaves nothing behind.
        let store = match &self.bucket {
            None => None,
            Some((bucket, key)) => Some(
                if self.create_bucket {
                    EndpointStore::open(&context, bucket, replicas, key.clone()).await
                } else {
                    EndpointStore::open_existing_or(
                        &context,
                        bucket,
                        key.clone(),
                        "or empty by a relay told to make it (`--create-endpoints-bucket`, \
                         `Relay::create_endpoints_bucket`)",
                    )
                    .await
                }?
                .require_sealed(self.require_sealed)
                .previous_keys(self.previous_keys.clone()),
            ),
        };
        let dead_stream =
            patiently(|| dead_letter_stream(&context, &settings, replicas, &self.urls)).await?;
        let me = relay_id();
        let bucket = format!("{}-leases", self.durable);
        let leases = Arc::new(
            patiently(|| leases::Leases::open(&context, &bucket, replicas, self.lease, me.clone()))
                .await?,
        );
        let bucket = format!("{}-parked", self.durable);
        let parked =
            Arc::new(patiently(|| parked::Parked::open(&context, &bucket, replicas)).await?);
        let stranded = patiently(|| async {
            parked
                .beyond(settings.partition_count())
                .await
                .map_err(|e| {
                    nats_error(
                        &self.urls,
                        format!("cannot list the parked events bucket '{bucket}': {e}"),
                    )
                })
        })
        .await?;
        if !stranded.is_empty() {
            return Err(Error::Config(stranded_message(
                &bucket, &settings, &stranded,
            )));
        }
        Ok(Opened {
            context,
            settings,
            replicas,
            stream,
            dead_stream,
            me,
            leases,
            parked,
            store,
        })
    }
}

/// Why a relay does not start while the parked events bucket `bucket` holds entries of the
/// partitions `stranded` (each with its count), which the stream of `settings` no longer
/// has: no relay would read them, and their events would never be delivered.
fn stranded_message(
    bucket: &str,
    settings: &StreamSettings,
    stranded: &std::collections::BTreeMap<u32, usize>,
) -> String {
    let entries: usize = stranded.values().sum();
    let mut named: Vec<String> = stranded.keys().take(5).map(u32::to_string).collect();
    if stranded.len() > 5 {
        named.push(format!("and {} more", stranded.len() - 5));
    }
    let highest = stranded.keys().next_back().copied().unwrap_or(0);
    format!(
        "the parked events bucket '{bucket}' holds {entries} entr{} of partition(s) {} of \
         stream '{}', which has {} partition(s) now (it was made again with fewer): no relay \
         reads them, so their events would never be delivered. Make the stream again with \
         at least {} partitions (drained first) until `deskhook parked` shows nothing, or \
         give those events up by removing their entries (`nats kv del {bucket} KEY`, the \
         keys starting with those partitions)",
        if entries == 1 { "y" } else { "ies" },
        named.join(", "),
        settings.stream_name(),
        settings.partition_count(),
        highest.saturating_add(1),
    )
}

/// What [`Relay::open`] opened on the servers.
struct Opened {
    context: jetstream::Context,
    settings: StreamSettings,
    /// The stream's replicas, which the relay's consumers and buckets take.
    replicas: usize,
    stream: stream::Stream,
    /// The name of the dead letters' stream.
    dead_stream: String,
    /// This relay's id in the leases bucket.
    me: String,
    leases: Arc<leases::Leases>,
    parked: Arc<parked::Parked>,
    /// The endpoints bucket, when the relay follows one.
    store: Option<EndpointStore>,
}

/// Tasks aborted when this is dropped.
pub(super) struct AbortOnDrop(pub(super) Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The tasks that run beside the partitions' owner while the relay delivers, each stopped
/// at its point of [`stop_delivering`] (the status log at once).
struct Beside {
    /// The status line every `status_every`, if asked.
    status: Option<tokio::task::JoinHandle<()>>,
    /// Acknowledges (or parks) what finished.
    acker: tokio::task::JoinHandle<()>,
    /// Parks what a failing endpoint holds up past `park_after`.
    parker: tokio::task::JoinHandle<()>,
    /// Tells the servers that messages still in delivery are in progress.
    progress: tokio::task::JoinHandle<()>,
}

/// The shortest time between two reads of the stream's description by a running relay
/// (it reads it every `ack_wait`, as the partitions look for skipped messages).
const STREAM_LOOK_AT_LEAST: Duration = Duration::from_millis(100);

/// Reads stream `name`'s description every `every`, and resolves with why the relay stops
/// once it records another partition count than `partitions`: the stream was made again
/// (deleted, and made by a publisher with another count), and this relay's partitions are
/// no longer its: the events of those it does not know would wait for a restart. A stream
/// missing (a publisher makes it again), or a read that fails, is looked at again later.
async fn partitions_changed(
    context: &jetstream::Context,
    name: &str,
    partitions: u32,
    every: Duration,
) -> String {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(stream) = context.get_stream(name).await else {
            continue;
        };
        if let Some(now) = crate::nats::partitions_of(&stream.cached_info().config)
            && now != partitions
        {
            return format!(
                "stream '{name}' records {now} partitions, where this relay works {partitions} \
                 (it was made again, or a publisher recorded its count in a stream that had \
                 none): it stopped, handing back what it had (start the relays again to \
                 work the new partitions; a ticket's events left in the old ones may go out of \
                 order with those in the new ones, and parked events of partitions the \
                 stream no longer has keep the relays from starting)"
            );
        }
    }
}

/// The stop, once the owner took no more: what is in delivery has `grace` to finish, under
/// the leases (still renewed: no other relay takes these partitions before they are given
/// back); the engine stops, and the attempts it had under way are waited for, then the
/// publication of their dead letters (within `timeout`); the rest is left for the
/// partitions' next owners (first, so that nothing that waited in a gate goes
/// to the stopped engine); what finished is acknowledged (or its parked entries removed),
/// each step within `timeout`; then the partitions are given back.
async fn stop_delivering(
    book: &Arc<Book>,
    shared: Arc<Shared>,
    stopping: super::owner::Stopping,
    guard: DeliveryGuard,
    beside: Beside,
    (grace, timeout): (Duration, Duration),
) {
    let _ = tokio::time::timeout(grace, book.until(|b| b.total_outstanding() > 0)).await;
    beside.progress.abort();
    beside.parker.abort();
    book.stop();
    let shut = tokio::task::spawn_blocking(move || finish(guard)).await;
    if shut.is_err() {
        log::error!(target: deskhook::LOG_TARGET, "the relay's delivery engine did not stop cleanly");
    }
    attempts_end(&shared.http).await;
    // An event whose letter is not published by then is left to the next owner too.
    let _ = tokio::time::timeout(timeout, shared.unpublished.until_all_published()).await;
    // The engine is stopped: the parked entries are rewritten with what it delivered.
    let _ = tokio::time::timeout(timeout, book.rewrite_parked(None, &shared.parked)).await;
    book.abandon(None);
    book.flush(timeout).await;
    give_back(book, &shared, stopping, timeout).await;
    drop(shared);
    beside.acker.abort();
}

/// Waits for the attempts under way when the engine stopped, which go on to their end
/// (each within its endpoint's timeout), while this relay still holds the partitions: their
/// next owner must not send a ticket's next event, or this one again, while this relay's
/// request is still on the wire.
async fn attempts_end(http: &crate::delivery::DeliverySink) {
    let engine = http.engine();
    until_attempts_end(http, "the partitions are", || engine.attempts_under_way()).await;
}

/// Waits until `under_way` (attempts still on the wire) is 0, checking every 10 ms, before
/// `what` given back. Past the endpoints' longest timeout (and a second), an attempt that
/// has not ended is not waited for (logged).
pub(super) async fn until_attempts_end(
    http: &crate::delivery::DeliverySink,
    what: &str,
    mut under_way: impl FnMut() -> usize,
) {
    let mut left = under_way();
    if left == 0 {
        return;
    }
    let longest = http.engine().longest_attempt();
    log::info!(
        target: deskhook::LOG_TARGET,
        "relay: waiting for {left} attempt(s) under way to end before {what} given back (at \
         most {})",
        deskhook::policy::format_duration(longest)
    );
    let deadline = tokio::time::Instant::now() + longest + Duration::from_secs(1);
    while left > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        left = under_way();
    }
    if left > 0 {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "relay: {left} attempt(s) still under way past the endpoints' longest timeout; \
             {what} given back all the same"
        );
    }
}

/// What a relay that stopped did, from its book's counts.
fn report(book: &Book, partitions: u32, endpoints_revision: Option<u64>) -> RelayReport {
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let counts = &book.counts;
    RelayReport {
        acknowledged: count(&counts.acknowledged),
        handed_back: count(&counts.handed_back),
        dead_lettered: count(&counts.dead_lettered),
        duplicates: count(&counts.duplicates),
        stored_again: count(&counts.stored_again),
        parked: count(&counts.parked),
        terminated: count(&counts.terminated),
        unrouted: count(&counts.unrouted),
        partitions,
        endpoints_revision,
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

/// The dead letters a relay's engine writes, on their way to the relay's dead stream.
type Letters = tokio::sync::mpsc::UnboundedReceiver<Letter>;

/// `sink` made to deliver for a relay of `partitions` partitions, each with up to
/// `max_pending` messages outstanding: its book, the book's work for the acknowledger, and
/// the dead letters to publish (each noted in `unpublished` until it is).
fn relaying_sink(
    mut sink: crate::delivery::SinkBuilder,
    partitions: u32,
    (max_pending, ack_wait): (usize, Duration),
    unpublished: &Arc<Unpublished>,
) -> (
    crate::delivery::SinkBuilder,
    Arc<Book>,
    tokio::sync::mpsc::UnboundedReceiver<book::Work>,
    Letters,
) {
    // Every partition's outstanding messages may wait at one endpoint: its queue has room
    // for them all, so that the engine never drops what the relay hands it. (A batch
    // message carries many events: the book holds the relay to the queue's room.)
    sink.config.queue_capacity = sink
        .config
        .queue_capacity
        .max(partitions as usize * max_pending + 1);
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
        ack_wait,
    );
    let (letters_tx, letters_rx) = tokio::sync::mpsc::unbounded_channel::<Letter>();
    sink.observer = Some(Arc::new(Tracker {
        book: book.clone(),
        inner: sink.observer.take(),
    }));
    {
        let (book, unpublished) = (book.clone(), unpublished.clone());
        sink.hooks = Hooks {
            drop_on_stop: true,
            // Every dead letter comes here, with an attempt or without (a 410 emptying the
            // queue, a body over the limit). Counted as the relay's dead letters whether
            // the file took it or not: it goes to the dead stream too, and its endpoint is
            // done with the event once it is there (see `dead`).
            dead_letter: Some(Arc::new(move |letter: &DeadLetter, in_file: bool| {
                book.counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
                unpublished.add(&letter.id);
                if letters_tx.send((letter.clone(), in_file)).is_err() {
                    // The publisher is gone (the relay stopped): it is in the file or the
                    // log, as the engine wrote it.
                    book.finished(&letter.id, &letter.endpoint);
                    unpublished.remove(&letter.id);
                }
            })),
        };
    }
    (sink, book, done, letters_rx)
}

/// Applies what the endpoints bucket `store` holds to `http` (removals and records left
/// out included: the last change, not only the last live record), then follows its
/// changes in a task; the bucket's records win over the configuration's endpoints of the
/// same names in `sources`; `revision` is the last applied, told to `applied`.
///
/// # Errors
///
/// [`Error::Config`] naming the records the relay cannot use and why, unless told to
/// `leave_out` their endpoints.
async fn follow_bucket(
    store: EndpointStore,
    (http, leave_out): (&crate::delivery::DeliverySink, bool),
    sources: &Arc<std::sync::Mutex<Sources>>,
    revision: &Arc<AtomicU64>,
    applied: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    // The revision told is the last one every change up to which is applied: `floor` once
    // the list is (it may hold later changes too, which the watch then brings in order).
    let floor = store.last_revision().await?;
    let (current, changes) = store.watch(floor).await?;
    revision.store(floor, Ordering::Relaxed);
    let mut seen = std::collections::HashMap::new();
    let mut unusable = Vec::new();
    for change in current {
        seen.insert(change.name().to_owned(), change.revision());
        if let Err(reason) = from_bucket(http, sources, &change)
            && !http.endpoints().contains(change.name())
        {
            unusable.push(reason);
        }
    }
    if !unusable.is_empty() && !leave_out {
        return Err(unusable_records(store.bucket_name(), &unusable));
    }
    if let Some(applied) = &applied {
        applied(revision.load(Ordering::Relaxed));
    }
    Ok(tokio::spawn(follow(
        http.clone(),
        sources.clone(),
        changes,
        (seen, floor),
        revision.clone(),
        applied,
    )))
}

/// The error of a relay whose endpoints `bucket` has records it cannot read (or use at all:
/// not even a stand-in of their endpoint can be registered), each said by
/// its `reasons` (the first few: a wrong key makes every sealed record one).
fn unusable_records(bucket: &str, reasons: &[String]) -> Error {
    const SAID: usize = 5;
    let mut said = reasons[..reasons.len().min(SAID)].join("; ");
    if reasons.len() > SAID {
        said.push_str(&format!("; and {} more, in the log", reasons.len() - SAID));
    }
    Error::Config(format!(
        "endpoints bucket '{bucket}': this relay cannot read or use {} of its records, whose \
         endpoints' events it would acknowledge without delivering them there. {said}. \
         Mend each as it says, or start with them left out to deliver to the others \
         meanwhile (`--leave-out-unusable`, `Relay::leave_out_unusable`)",
        reasons.len()
    ))
}

/// Gives the partitions `stopping` still holds back to the other relays: each one's
/// acknowledgements confirmed, its consumer deleted and its lease let go, all at once and
/// each within `wait` (a slow cluster leaves the rest to the leases' end); then leaves.
async fn give_back(book: &Book, shared: &Shared, stopping: super::owner::Stopping, wait: Duration) {
    let (leases, held) = stopping.release();
    let leases = &leases;
    let each = held.into_iter().map(|(p, revision)| {
        tokio::time::timeout(wait, async move {
            book.confirm(p, wait).await;
            let _ = shared
                .stream
                .delete_consumer(&shared.consumer_name(p, revision))
                .await;
            leases.give_back(p).await;
        })
    });
    futures_util::future::join_all(each).await;
    let _ = tokio::time::timeout(wait, leases.leave()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relays_unusable_records_are_named_the_first_few_in_full() {
        let one = unusable_records("hooks", &["endpoint 'crm': sealed with another key".into()])
            .to_string();
        assert!(
            one.contains("bucket 'hooks': this relay cannot read or use 1 of its records")
                && one.contains("there. endpoint 'crm': sealed with another key. Mend each")
                && one.ends_with("(`--leave-out-unusable`, `Relay::leave_out_unusable`)"),
            "{one}"
        );
        let reasons: Vec<String> = (0..1000).map(|i| format!("endpoint 'e{i}'")).collect();
        let many = unusable_records("hooks", &reasons).to_string();
        assert!(
            many.contains("cannot read or use 1000 of its records")
                && many.contains("'e3'; endpoint 'e4'; and 995 more, in the log. Mend")
                && !many.contains("'e5'"),
            "{many}"
        );
    }
}
