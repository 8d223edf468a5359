//! [`DeliveryConfig`]: the settings shared by all endpoints of a sink, the `[delivery]`
//! table of `deskhook.toml`.

use std::time::Duration;

use deskhook::policy::{BreakerPolicy, OverflowPolicy, deserialize_duration};
use serde::Deserialize;

use super::DEFAULT_DEAD_LETTER_PATH;

/// Settings shared by all endpoints of a sink.
///
/// This struct is also the `[delivery]` table of `deskhook.toml`: each field is a key of the
/// same name, durations are written `"30s"`, and a key left out keeps the default given
/// here (see [`config`](crate::config)). In code, change the fields of
/// `DeliveryConfig::default()` and give it to
/// [`SinkBuilder::config`](super::SinkBuilder::config), or use the builder's setter of the
/// same name.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// Most events waiting per endpoint (not counting those in flight). Defaults to 10 000.
    pub queue_capacity: usize,
    /// What a full queue (or a spent [`max_queued_bytes`](DeliveryConfig::max_queued_bytes))
    /// does. Defaults to [`OverflowPolicy::DropNewest`]. A spent budget drops the newest
    /// under `DropOldest` too (the budget is the sink's, its oldest events any endpoint's).
    pub overflow: OverflowPolicy,
    /// Where dead letters go. Defaults to [`DEFAULT_DEAD_LETTER_PATH`] in the working
    /// directory. The sink opens (and creates) it when it starts, so that a path that cannot
    /// be written fails at start-up rather than when an event needs it.
    pub dead_letter_path: std::path::PathBuf,
    /// The circuit breaker. Defaults to 10 failures in a row, 30 s cool-down.
    pub breaker: BreakerPolicy,
    /// The longest `Retry-After` honoured; longer ones are cut to this. Defaults to 1 h.
    #[serde(deserialize_with = "deserialize_duration")]
    pub retry_after_max: Duration,
    /// How long the guard's drop waits for queues to drain. Defaults to 5 s.
    #[serde(deserialize_with = "deserialize_duration")]
    pub shutdown_timeout: Duration,
    /// Largest body accepted; a larger event goes to the dead letters with an error. Defaults
    /// to 1 MiB.
    pub max_payload: usize,
    /// Requests in flight at once over the whole sink, whatever the number of endpoints.
    /// An endpoint that already has one in flight may not take the last ones, kept for the
    /// others (one per other endpoint, at most a quarter; see the
    /// [module docs](super#workers)). Defaults to 1024; the blocking transport also stops
    /// at [`max_threads`](DeliveryConfig::max_threads).
    pub max_in_flight: usize,
    /// The most worker threads of the blocking transport: the pool grows with demand up to
    /// this and shrinks when idle. Defaults to 256.
    pub max_threads: usize,
    /// How long a worker thread of the blocking transport stays without work before it
    /// ends (one always stays). Defaults to 10 s.
    #[serde(deserialize_with = "deserialize_duration")]
    pub thread_idle_timeout: Duration,
    /// How far below the application's priority the sink's own delivery threads run: added
    /// to the nice value of the thread that builds the sink (Linux; 0 to 19, 0 leaves them
    /// at the application's). Above 0 they also run under `SCHED_BATCH`, whose threads,
    /// woken, never preempt the one running. It applies to the blocking transport's workers
    /// and to the runtime threads an async sink starts for itself, not to the threads of a
    /// runtime the application gives it. Lower, a worker woken by an answer waits for the
    /// emitting thread's time slice instead of taking its processor: measured on two cores,
    /// `emit`'s p99 during a flood of deliveries fell from 35–118 µs to 6–24 µs with the
    /// blocking transport, at the same throughput. Delivery gets less processor time only
    /// while the application itself keeps every core busy. Defaults to 10.
    pub worker_nice: u8,
    /// Memory for events queued in memory over the whole sink: their bodies (once per event),
    /// 256 bytes per event and endpoint, and for payload templates the bodies rendered that
    /// wait for a retry or are kept for an event's other endpoints, and what an event keeps
    /// for its renders (the index of `event`, the copy of `raw`). When it is spent
    /// the overflow policy applies to new events (with a spool, rows simply stay on disk
    /// until there is room; and an endpoint that cannot send for a while holds none of it,
    /// see the spool's `rest_after`), and a render that does not fit is let go and made again at
    /// the next attempt. An event more than the whole of it (its body and 256 bytes) is
    /// dropped as it comes, or with a spool, which could never load it, dead-lettered.
    /// Renders in flight are not counted (at most `max_in_flight`, each at most the
    /// template's `max_output`). Defaults to 256 MiB.
    pub max_queued_bytes: usize,
    /// Attempts kept in memory for the operator's view
    /// ([`DeliverySink::attempts`](super::DeliverySink::attempts)); 0 turns the attempt log
    /// off (a spool then records none either). Defaults to 10 000.
    pub attempt_log: usize,
    /// With a spool, how long attempts are kept in its database. Defaults to 7 days.
    #[serde(deserialize_with = "deserialize_duration")]
    pub attempt_retention: Duration,
    /// With a spool, the most attempts kept in its database (the oldest go first). Defaults
    /// to 1 000 000.
    pub attempt_max_rows: u64,
    /// Whether metrics (feature `metrics`) carry an `endpoint` label: a series per endpoint,
    /// so off by default (mind the cardinality with thousands of endpoints). A removed
    /// endpoint's series stay in the recorder until it forgets them: `deskhook serve`'s
    /// after `--metrics-forget` (a day) without a change; another recorder, as it is set
    /// (metrics-exporter-prometheus: `idle_timeout`).
    pub metrics_per_endpoint: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_capacity: 10_000,
            overflow: OverflowPolicy::DropNewest,
            dead_letter_path: DEFAULT_DEAD_LETTER_PATH.into(),
            breaker: BreakerPolicy::default(),
            retry_after_max: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(5),
            max_payload: 1024 * 1024,
            max_in_flight: 1024,
            max_threads: 256,
            thread_idle_timeout: Duration::from_secs(10),
            worker_nice: 10,
            max_queued_bytes: 256 * 1024 * 1024,
            attempt_log: 10_000,
            attempt_retention: Duration::from_secs(7 * 24 * 3600),
            attempt_max_rows: 1_000_000,
            metrics_per_endpoint: false,
        }
    }
}

impl DeliveryConfig {
    /// Checks the settings that cannot work.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        self.check()
            .map_err(|(_, message)| crate::Error::Config(message))
    }

    /// The first setting that cannot work: its name and what to write instead.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.queue_capacity == 0 {
            return Err((
                "queue_capacity",
                "queue_capacity = 0 would drop every event; give the number of events that may \
                 wait per endpoint, e.g. 10000"
                    .into(),
            ));
        }
        if self.max_payload == 0 {
            return Err((
                "max_payload",
                "max_payload = 0 would refuse every event; give a size in bytes, e.g. 1048576"
                    .into(),
            ));
        }
        if self.attempt_max_rows == 0 {
            return Err((
                "attempt_max_rows",
                "attempt_max_rows = 0 would keep no attempt in the spool; to keep none at all \
                 write attempt_log = 0"
                    .into(),
            ));
        }
        if self.thread_idle_timeout.is_zero() {
            return Err((
                "thread_idle_timeout",
                "thread_idle_timeout = 0s would end each worker thread the moment it has \
                 nothing to do, and start one again for the next event; give a time, e.g. \
                 \"10s\""
                    .into(),
            ));
        }
        if self.breaker.failures > 0 && self.breaker.cool_down.is_zero() {
            return Err((
                "breaker",
                "breaker cool_down = 0s would pause a failing endpoint for no time at all; give \
                 a time such as \"30s\", or turn the breaker off with failures = 0"
                    .into(),
            ));
        }
        let nice_max = super::priority::NICE_MAX;
        if self.worker_nice > nice_max {
            return Err((
                "worker_nice",
                format!(
                    "worker_nice = {} is past the lowest priority; give 0 (the application's \
                     priority) to {nice_max}",
                    self.worker_nice
                ),
            ));
        }
        let zero = [
            ("max_in_flight", self.max_in_flight),
            ("max_threads", self.max_threads),
            ("max_queued_bytes", self.max_queued_bytes),
        ];
        if let Some((name, _)) = zero.into_iter().find(|(_, value)| *value == 0) {
            return Err((
                name,
                format!("{name} = 0 cannot work; give at least 1 (or leave it out)"),
            ));
        }
        Ok(())
    }
}
