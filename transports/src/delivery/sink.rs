//! [`DeliverySink`]: the one sink type over the engine, whatever the transport and runtime.

use std::sync::Arc;
use std::time::Duration;

use deskhook::sink::Emitted;

use super::{
    AttemptPage, AttemptQuery, DeadLetter, DeadLetters, DeliveryTotals, EndpointStats, Endpoints,
    Engine, Receipt, Routed, SinkBuilder,
};
use crate::error::Error;

/// A running delivery engine: what `HttpSink::builder().build()`, `.build_async()` and the
/// NATS sink's builder give. `send` (called by `emit`) only queues, one job per endpoint the
/// event goes to; workers deliver. Cloning is cheap and clones share everything.
///
/// It implements [`EventSink`](deskhook::sink::EventSink) (for `emit`) and
/// [`AsyncEventSink`](deskhook::sink::AsyncEventSink) (for `emit_async`), whichever transport
/// delivers; with a spool that waits for commits, the async form awaits the commit without
/// blocking. So register it with the dispatcher's `.sink` where the helpdesk calls `emit`,
/// and with `.async_sink` where it calls `emit_async` on a runtime: with a spool in
/// `Durability::Wait` (the default), `.sink` would hold a
/// runtime thread for each commit. Without such a spool the two cost the same.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use std::time::Duration;
/// use deskhook_transports::delivery::Endpoint;
/// use deskhook_transports::http_blocking::HttpSink;
///
/// let (sink, guard) = HttpSink::builder()
///     .dead_letter_path(dir.path().join("dead-letters.jsonl"))
///     .build()?;
/// sink.endpoints().upsert(Endpoint::new("crm", "https://crm.example.com/hooks")?)?;
/// assert_eq!(sink.stats()[0].name, "crm");
/// guard.shutdown(Duration::from_secs(1))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DeliverySink {
    engine: Arc<Engine>,
}

impl DeliverySink {
    /// A builder of an HTTP sink; finish it with [`SinkBuilder::build`] (blocking transport,
    /// worker threads) or [`SinkBuilder::build_async`] (tokio tasks).
    pub fn builder() -> SinkBuilder {
        SinkBuilder::new()
    }

    pub(crate) fn new(engine: Arc<Engine>) -> DeliverySink {
        DeliverySink { engine }
    }

    #[cfg(feature = "relay")]
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The endpoints, to add, change, pause and remove while events flow.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.engine.clone())
    }

    /// Counters and state of every endpoint, by name. It reads each endpoint's state and
    /// latencies; for the sums alone, [`totals`](DeliverySink::totals) is much cheaper.
    pub fn stats(&self) -> Vec<EndpointStats> {
        self.engine.stats()
    }

    /// The counters of all endpoints added up since the sink started, endpoints removed since
    /// included: a few atomic loads, however many endpoints there are (cheap enough to poll
    /// for a progress bar).
    pub fn totals(&self) -> DeliveryTotals {
        self.engine.totals()
    }

    /// Whether the sink takes events durably now, for a readiness check: always without a
    /// spool; with one, while its writer runs and no write of events failed (a full disk)
    /// or found it at its `max_size` in the last 10 s, unless one succeeded since (the
    /// 10 s let a daemon that a balancer stopped sending events to be ready again once the
    /// disk is freed). A lock and a load.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] saying what fails and since when.
    pub fn health(&self) -> Result<(), Error> {
        self.engine.backlog().health()
    }

    /// The attempts `query` asks for, newest first: from the spool's database when the sink
    /// has a spool (they outlive restarts there), else from the last
    /// [`attempt_log`](super::DeliveryConfig::attempt_log) attempts kept in memory.
    ///
    /// ```
    /// # use deskhook_transports::delivery::{AttemptQuery, StatusFilter};
    /// # use deskhook_transports::http_blocking::HttpSink;
    /// # let dir = tempfile::tempdir()?;
    /// # let (sink, _guard) = HttpSink::builder().dead_letter_path(dir.path().join("d")).build()?;
    /// let failures = sink.attempts(&AttemptQuery {
    ///     endpoint: Some("crm".into()),
    ///     status: Some(StatusFilter::Failed),
    ///     ..AttemptQuery::new()
    /// })?;
    /// for attempt in &failures.items {
    ///     println!("{} attempt {}: {:?} {:?}", attempt.event_id, attempt.attempt, attempt.status, attempt.error);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when the spool's database cannot be read.
    pub fn attempts(&self, query: &AttemptQuery) -> Result<AttemptPage, Error> {
        self.engine.attempts(query)
    }

    /// Sets the gauges of the metrics (feature `metrics`; see the
    /// [`telemetry`](super::telemetry) module): queue depth, attempts in flight, spool depth,
    /// endpoints by state. An exporter calls it before it renders. Without the feature it
    /// does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when the spool's depth cannot be read; the spool depth is then NaN,
    /// and the other gauges are set all the same.
    pub fn record_gauges(&self) -> Result<(), Error> {
        #[cfg(feature = "metrics")]
        {
            let totals = self.engine.totals();
            // The other gauges are set even when the spool cannot be read.
            let rows = self.engine.backlog().stored_rows();
            let known = rows.as_ref().copied().map_err(|_| ());
            let states = self.engine.states().map(|(state, n)| (state.name(), n));
            super::telemetry::gauges(totals.queued, totals.in_flight, known, states);
            rows?;
        }
        Ok(())
    }

    /// Its dead letters, where it writes them (the dead-letter file, or the spool's table):
    /// list, replay, delete.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters {
            engine: self.engine.clone(),
        }
    }

    /// Waits until everything queued is delivered or dead-lettered, at most `timeout`. It
    /// blocks the calling thread; in async code use [`flush_async`](DeliverySink::flush_async).
    ///
    /// # Errors
    ///
    /// [`Error::Undelivered`] with what is still queued and in flight. It comes before
    /// `timeout` when all that is left waits on endpoints that cannot send within it
    /// (paused, waiting past it for a retry, a cool-down, a `Retry-After` or a rate limit's
    /// token, or held in a spool behind an event of a type this build does not know),
    /// naming them.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush(timeout)
    }

    /// [`flush`](DeliverySink::flush) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`flush`](DeliverySink::flush).
    #[cfg(feature = "_async")]
    pub async fn flush_async(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush_async(timeout).await
    }

    /// Queues an event like `emit`, but routes it to its endpoints' queues on the calling
    /// thread (after the events emitted before it) and returns what happened to it: a full
    /// queue (under `drop-newest`), a disabled endpoint or a spent memory budget are errors
    /// here, where `emit` counts and logs them. A caller that answers for the event and has
    /// its client send it again on an error wants [`route_now`](DeliverySink::route_now)
    /// instead: an error here may mean that some endpoints took the event, and those would
    /// get it twice, under another `webhook-id` (`deskhook serve` replies 503 only when
    /// [`Routed::lost`] says nothing kept it).
    ///
    /// # Errors
    ///
    /// [`deskhook::Error::Sink`] naming each endpoint that did not take the event and why.
    pub fn send_now(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        self.engine.enqueue_now(event)
    }

    /// [`send_now`](DeliverySink::send_now), saying what each endpoint did with the event:
    /// for a caller that answers for it and must tell an event some endpoints took (sending
    /// it again would give them a second copy, under another `webhook-id`) from one nothing
    /// kept ([`Routed::lost`]). It blocks while `send_now` would (the block overflow policy,
    /// a spool's commit): in async code, call it where blocking is allowed.
    pub fn route_now(&self, event: &Emitted<'_>) -> Routed {
        self.engine.route_now(event)
    }

    /// Why `event` can never be queued, if so: it needs more memory than the sink's whole
    /// `max_queued_bytes` (with a spool it would go to the dead letters at once, without one
    /// be dropped, however empty the queues). Without a spool that is its body and a job's
    /// bookkeeping (256 bytes) for each endpoint it goes to now; with one, a single job's
    /// (the spool loads each endpoint's row on its own). For a caller that answers for the
    /// event and refuses it first, before anything is kept (`deskhook serve`'s 413). It
    /// costs a count of the endpoints the event goes to, under the registry's read lock.
    pub fn never_fits(&self, event: &Emitted<'_>) -> Option<String> {
        self.engine.never_fits(event)
    }

    /// Queues an event like `emit` but does not wait for the disk: the [`Receipt`] says when
    /// the event is durable. (It waits only while the spool's writer is 8192 events or 64 MiB
    /// of bodies behind, so that memory stays bounded: async code awaits
    /// [`room`](Self::room) first.) For a
    /// sink with a spool (see `SinkBuilder::spool`); without one, the event is queued in
    /// memory and the receipt settles at once with an error saying that nothing is durable.
    /// An endpoint that does not take it settles the receipt with [`Error::NotQueued`].
    pub fn send_with_receipt(&self, event: &Emitted<'_>) -> Receipt {
        self.engine.enqueue_with_receipt(event)
    }

    /// Waits, without blocking the thread, while the spool's writer is 8192 events or 64 MiB
    /// of bodies behind, so that a [`send_with_receipt`](Self::send_with_receipt) right after does not wait
    /// for it (unless other senders took the room meanwhile: then it waits for the next
    /// commit). Returns at once without a spool. `deskhook serve` awaits it before each
    /// event; the async `emit` path (`AsyncEventSink::send`) does it itself. Works on any
    /// executor.
    pub async fn room(&self) {
        self.engine.room().await;
    }

    /// Queues a dead letter again for its endpoint: same id (`webhook-id`) and body,
    /// attempts from the start.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when the dead letter names an endpoint this sink does not
    /// have (removed since, say); [`Error::Config`] when its id or event type cannot be read,
    /// or the endpoint is disabled or being removed;
    /// [`Error::NotQueued`] when its queue or the memory budget is full.
    pub fn redeliver(&self, letter: &DeadLetter) -> Result<(), Error> {
        self.engine.redeliver(letter)
    }

    /// Worker threads of the blocking transport alive now, and the most alive at once (0
    /// and 0 for the async transports, whose workers are tasks).
    pub fn threads(&self) -> (usize, usize) {
        self.engine.threads()
    }

    /// Writes a dead letter for an event this sink never queued (a relay gives up on it),
    /// counted for its endpoint when the endpoint is registered.
    #[cfg(feature = "relay")]
    pub(crate) fn write_dead_letter(&self, letter: DeadLetter) {
        let lane = self.engine.registry().get(&letter.endpoint);
        log::warn!(
            target: deskhook::LOG_TARGET,
            "event {} ({} on ticket {}) for endpoint '{}' dead-lettered: {}",
            letter.id,
            letter.action,
            super::shown(&letter.ticket),
            letter.endpoint,
            letter.reason
        );
        let owner = lane.map(|lane| crate::delivery::backlog::LetterOwner { lane, job: None });
        self.engine.write_letter(owner, None, letter);
    }
}

impl deskhook::sink::EventSink for DeliverySink {
    fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        self.engine.enqueue(event)
    }

    fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        self.engine.flush(timeout).map_err(deskhook::Error::sink)
    }
}

#[deskhook::sink::async_trait]
impl deskhook::sink::AsyncEventSink for DeliverySink {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        self.engine.enqueue_async(event).await
    }

    /// Waits without blocking the runtime with an async transport; with the blocking
    /// transport alone (no feature `http-async` or `nats`), or when polled outside a tokio
    /// runtime (a blocking `deskhook::flush()` polls async sinks on its own thread), it
    /// blocks the calling thread. A blocking `deskhook::flush()` called on the thread of a
    /// current-thread runtime that runs this sink's deliveries holds them all: it ends at
    /// its timeout with what is left. Await this flush there instead.
    async fn flush(&self, timeout: Duration) -> Result<(), deskhook::Error> {
        #[cfg(feature = "_async")]
        let flushed = if tokio::runtime::Handle::try_current().is_ok() {
            self.engine.flush_async(timeout).await
        } else {
            self.engine.flush(timeout)
        };
        #[cfg(not(feature = "_async"))]
        let flushed = self.engine.flush(timeout);
        flushed.map_err(deskhook::Error::sink)
    }
}
