//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`) and a
//! `tracing` span per attempt (feature `tracing`). Without the features these are empty
//! functions the compiler removes.
//!
//! Metrics (the helpdesk installs whatever exporter it likes):
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `deskhook_events_total` | counter | `event_type` (once per event, whatever its endpoints) |
//! | `deskhook_events_unrouted_total` | counter | `event_type` (events no endpoint was registered for: a tenant without webhooks, or a misspelt one) |
//! | `deskhook_events_dropped_total` | counter | `event_type` (once per endpoint that dropped the event: with many endpoints it can pass `deskhook_events_total`; a dead letter its file could not take counts here, not in `deskhook_dead_letters_total`) |
//! | `deskhook_dead_letters_total` | counter | (events that went to the dead letters, with attempts or without: too large, an endpoint closed or removed) |
//! | `deskhook_attempts_total` | counter | `outcome` (`delivered`, `retrying`, `dead_lettered`, `endpoint_disabled`), `status` (`1xx` … `5xx`, `other` for a code outside them, `none`); an attempt that could not be made (a template that does not render, no secret in force) counts with `status` `none` |
//! | `deskhook_attempt_duration_seconds` | histogram | (requests sent only) |
//! | `deskhook_queue_depth` | gauge | events waiting, over all endpoints |
//! | `deskhook_in_flight` | gauge | attempts under way |
//! | `deskhook_spool_depth` | gauge | rows in the spool (with a spool); NaN while the spool cannot be read (`record_gauges` returns why), not its last figure |
//! | `deskhook_endpoints` | gauge | `state` (`active`, `paused`, `disabled`, `breaker_open`) |
//!
//! With [`DeliveryConfig::metrics_per_endpoint`](super::DeliveryConfig::metrics_per_endpoint)
//! the counters and the histogram also carry an `endpoint` label (one series per endpoint:
//! mind the cardinality with thousands). Gauges are set by
//! [`DeliverySink::record_gauges`](super::DeliverySink::record_gauges), which an exporter
//! calls before it renders (`deskhook serve` does at each scrape).
//!
//! Traces: with the `tracing` feature every attempt runs in a `deskhook.attempt` span at
//! INFO level (target `deskhook`) with `endpoint`, `webhook_id`, `event_type`, `ticket` and
//! `attempt` (1 for the first), and `status` or `error` recorded when it ends. It is entered
//! around the request, so what the HTTP stack logs lands inside it.

#[cfg(feature = "metrics")]
use deskhook::EventType;

#[cfg(feature = "metrics")]
use super::AttemptOutcome;

/// Describes the metrics to the installed recorder (once per sink).
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!("deskhook_events_total", "Events queued for delivery");
        describe_counter!(
            "deskhook_events_unrouted_total",
            "Events no endpoint was registered for (by event type)"
        );
        describe_counter!(
            "deskhook_events_dropped_total",
            "Events dropped (a full queue, memory budget or spool; a dead letter not written)"
        );
        describe_counter!(
            "deskhook_dead_letters_total",
            "Events that went to the dead letters"
        );
        describe_counter!("deskhook_attempts_total", "Delivery attempts by outcome");
        describe_histogram!(
            "deskhook_attempt_duration_seconds",
            Unit::Seconds,
            "How long delivery attempts took"
        );
        describe_gauge!("deskhook_queue_depth", "Events waiting, over all endpoints");
        describe_gauge!("deskhook_in_flight", "Delivery attempts under way");
        describe_gauge!("deskhook_spool_depth", "Rows in the spool");
        describe_gauge!("deskhook_endpoints", "Endpoints by state");
    }
}

/// Runs a call into the metrics recorder, which is the application's code: one that
/// panics loses its figure, never the delivery around it (a job half settled, a worker).
#[cfg(feature = "metrics")]
fn guarded(record: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(record)).is_err() {
        log::error!(
            target: deskhook::LOG_TARGET,
            "the metrics recorder panicked; the figure is lost, delivery goes on"
        );
    }
}

/// An event was queued for one endpoint or more.
#[cfg(feature = "metrics")]
pub(crate) fn accepted(event_type: EventType) {
    guarded(|| {
        let key = &EVENTS[event_type.index()];
        metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(1);
    });
}

/// The table of [`EVENTS`], from the positions in [`EventType::ALL`].
#[cfg(feature = "metrics")]
macro_rules! event_keys {
    ($($i:literal)*) => {
        [$({
            static LABELS: [metrics::Label; 1] = [metrics::Label::from_static_parts(
                "event_type",
                EventType::ALL[$i].as_str(),
            )];
            metrics::Key::from_static_parts("deskhook_events_total", &LABELS)
        }),*]
    };
}

/// `deskhook_events_total`'s keys, one per event type in the order of [`EventType::ALL`],
/// made when compiling, as [`ATTEMPTS`] are: this runs in every `emit`.
#[cfg(feature = "metrics")]
static EVENTS: [metrics::Key; EventType::ALL.len()] = event_keys!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24
);

/// An event went to no endpoint.
#[cfg(feature = "metrics")]
pub(crate) fn unrouted(event_type: EventType) {
    guarded(|| {
        metrics::counter!("deskhook_events_unrouted_total", "event_type" => event_type.as_str())
            .increment(1);
    });
}

/// `n` jobs of `endpoint` were dropped.
#[cfg(feature = "metrics")]
pub(crate) fn dropped(endpoint: &str, event_type: Option<EventType>, n: u64, per_endpoint: bool) {
    guarded(|| {
        let event_type = event_type.map_or("unknown", EventType::as_str);
        if per_endpoint {
            metrics::counter!("deskhook_events_dropped_total", "event_type" => event_type,
                "endpoint" => endpoint.to_owned())
            .increment(n);
        } else {
            metrics::counter!("deskhook_events_dropped_total", "event_type" => event_type)
                .increment(n);
        }
    });
}

/// `n` events of `endpoint` went to the dead letters.
#[cfg(feature = "metrics")]
pub(crate) fn dead_lettered(endpoint: &str, n: u64, per_endpoint: bool) {
    guarded(|| {
        if per_endpoint {
            metrics::counter!("deskhook_dead_letters_total", "endpoint" => endpoint.to_owned())
                .increment(n);
        } else {
            metrics::counter!("deskhook_dead_letters_total").increment(n);
        }
    });
}

/// The outcomes of `deskhook_attempts_total`, in the order of [`ATTEMPTS`]' rows.
#[cfg(feature = "metrics")]
fn outcome_index(outcome: AttemptOutcome) -> usize {
    match outcome {
        AttemptOutcome::Delivered => 0,
        AttemptOutcome::Retrying => 1,
        AttemptOutcome::DeadLettered => 2,
        AttemptOutcome::EndpointDisabled => 3,
    }
}

/// The status classes of `deskhook_attempts_total`, in the order of [`ATTEMPTS`]' columns.
#[cfg(feature = "metrics")]
fn status_index(status: Option<u16>) -> usize {
    match status.map(|s| s / 100) {
        Some(class @ 1..=5) => usize::from(class) - 1,
        Some(_) => 5,
        None => 6,
    }
}

/// The table of [`ATTEMPTS`]: each outcome's row of keys, one per status. (A macro, as
/// a key's labels must be a `static` of their own to be made when compiling.)
#[cfg(feature = "metrics")]
macro_rules! attempt_keys {
    ([$($outcome:literal),*], $statuses:tt) => {
        [$(attempt_keys!(@row $outcome, $statuses)),*]
    };
    (@row $outcome:literal, [$($status:literal),*]) => {
        [$({
            static LABELS: [metrics::Label; 2] = [
                metrics::Label::from_static_parts("outcome", $outcome),
                metrics::Label::from_static_parts("status", $status),
            ];
            metrics::Key::from_static_parts("deskhook_attempts_total", &LABELS)
        }),*]
    };
}

/// `deskhook_attempts_total`'s keys without an `endpoint` label, one per outcome and
/// status, made when the program is compiled: counting an attempt then builds no key, no
/// list of labels and no hash (this runs on every attempt; `metrics::counter!` does the same
/// only when every label is a literal).
#[cfg(feature = "metrics")]
static ATTEMPTS: [[metrics::Key; 7]; 4] = attempt_keys!(
    [
        "delivered",
        "retrying",
        "dead_lettered",
        "endpoint_disabled"
    ],
    ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "none"]
);

/// What `metrics::counter!` tells the recorder about a count made in this module.
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// An attempt of `endpoint` ended.
#[cfg(feature = "metrics")]
pub(crate) fn attempt(
    endpoint: &str,
    outcome: AttemptOutcome,
    status: Option<u16>,
    duration: Option<std::time::Duration>,
    per_endpoint: bool,
) {
    guarded(|| {
        let key = &ATTEMPTS[outcome_index(outcome)][status_index(status)];
        if per_endpoint {
            let endpoint = endpoint.to_owned();
            let key =
                key.with_extra_labels(vec![metrics::Label::new("endpoint", endpoint.clone())]);
            metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA))
                .increment(1);
            if let Some(duration) = duration {
                metrics::histogram!("deskhook_attempt_duration_seconds", "endpoint" => endpoint)
                    .record(duration.as_secs_f64());
            }
        } else {
            metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
                .increment(1);
            if let Some(duration) = duration {
                metrics::histogram!("deskhook_attempt_duration_seconds")
                    .record(duration.as_secs_f64());
            }
        }
    });
}

/// The gauges, as of now.
#[cfg(feature = "metrics")]
pub(crate) fn gauges(
    queued: usize,
    in_flight: usize,
    spool_rows: Result<Option<u64>, ()>,
    states: [(&'static str, usize); 4],
) {
    guarded(|| {
        metrics::gauge!("deskhook_queue_depth").set(queued as f64);
        metrics::gauge!("deskhook_in_flight").set(in_flight as f64);
        match spool_rows {
            Ok(Some(rows)) => metrics::gauge!("deskhook_spool_depth").set(rows as f64),
            // Its last figure would pass for today's.
            Err(()) => metrics::gauge!("deskhook_spool_depth").set(f64::NAN),
            Ok(None) => {}
        }
        for (state, count) in states {
            metrics::gauge!("deskhook_endpoints", "state" => state).set(count as f64);
        }
    });
}

/// The span of one attempt (feature `tracing`): `deskhook.attempt` at INFO level, with
/// `endpoint`, `webhook_id`, `event_type`, `ticket`, `attempt` (1 for the first), and
/// `status` or `error` recorded when it ends. It is entered around the request, so what the
/// HTTP stack logs lands inside it.
#[cfg(feature = "tracing")]
pub(crate) fn attempt_span(route: &super::Route, job: &super::Job) -> tracing::Span {
    tracing::info_span!(
        target: deskhook::LOG_TARGET,
        "deskhook.attempt",
        endpoint = %route.endpoint.name,
        webhook_id = %job.event.id_text,
        event_type = job.event.event_type.as_str(),
        ticket = %job.event.key,
        // Counted when the attempt was taken: 1 for the first.
        attempt = job.attempts,
        status = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// Records how the attempt of `span` ended.
#[cfg(feature = "tracing")]
pub(crate) fn attempt_ended(
    span: &tracing::Span,
    result: &Result<super::Response, super::AttemptError>,
) {
    match result {
        Ok(response) => span.record("status", response.status),
        Err(error) => span.record("error", error.message.as_str()),
    };
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use metrics::{Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder};
    use metrics::{SharedString, Unit};

    #[test]
    fn a_recorder_that_panics_loses_its_figure_not_the_caller() {
        let mut after = false;
        super::guarded(|| panic!("a recorder's bug"));
        super::guarded(|| after = true);
        assert!(after);
    }

    /// The gauges' last values, by name.
    #[derive(Debug, Default)]
    struct Gauges(Arc<Mutex<HashMap<String, f64>>>);

    #[derive(Debug)]
    struct Slot(String, Arc<Mutex<HashMap<String, f64>>>);

    impl GaugeFn for Slot {
        fn increment(&self, _: f64) {}
        fn decrement(&self, _: f64) {}
        fn set(&self, value: f64) {
            self.1.lock().unwrap().insert(self.0.clone(), value);
        }
    }

    impl Recorder for Gauges {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(Arc::new(Slot(key.name().to_owned(), self.0.clone())))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn a_spool_that_cannot_be_read_shows_nan_not_its_last_depth() {
        let recorder = Gauges::default();
        let depth = || {
            recorder
                .0
                .lock()
                .unwrap()
                .get("deskhook_spool_depth")
                .copied()
        };
        let states = [
            ("active", 1),
            ("paused", 0),
            ("disabled", 0),
            ("breaker_open", 0),
        ];
        metrics::with_local_recorder(&recorder, || super::gauges(3, 1, Ok(Some(42)), states));
        assert_eq!(depth(), Some(42.0));
        metrics::with_local_recorder(&recorder, || super::gauges(3, 1, Err(()), states));
        assert!(depth().is_some_and(f64::is_nan), "{:?}", depth());
        // Without a spool there is no such gauge.
        let without = Gauges::default();
        metrics::with_local_recorder(&without, || super::gauges(0, 0, Ok(None), states));
        assert_eq!(without.0.lock().unwrap().get("deskhook_spool_depth"), None);
        assert_eq!(
            without.0.lock().unwrap().get("deskhook_queue_depth"),
            Some(&0.0)
        );
    }

    /// The counters registered, as `name{label=value,…} target`, in order.
    #[derive(Debug, Default)]
    struct Counters(Mutex<Vec<String>>);

    impl Recorder for Counters {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
            let labels: Vec<_> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let line = format!(
                "{}{{{}}} {}",
                key.name(),
                labels.join(","),
                metadata.target()
            );
            self.0.lock().unwrap().push(line);
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn an_event_is_counted_under_its_type() {
        let recorder = Counters::default();
        metrics::with_local_recorder(&recorder, || {
            for event_type in deskhook::EventType::ALL {
                super::accepted(event_type);
            }
        });
        let target = module_path!().trim_end_matches("::tests");
        let expected: Vec<_> = deskhook::EventType::ALL
            .iter()
            .map(|t| format!("deskhook_events_total{{event_type={t}}} {target}"))
            .collect();
        assert_eq!(*recorder.0.lock().unwrap(), expected);
    }

    #[test]
    fn an_attempt_is_counted_under_its_outcome_and_status_class() {
        use crate::delivery::AttemptOutcome::{
            DeadLettered, Delivered, EndpointDisabled, Retrying,
        };
        let cases = [
            (Delivered, Some(204), "delivered", "2xx"),
            (Retrying, Some(503), "retrying", "5xx"),
            (Retrying, Some(101), "retrying", "1xx"),
            (DeadLettered, Some(302), "dead_lettered", "3xx"),
            (EndpointDisabled, Some(410), "endpoint_disabled", "4xx"),
            (Retrying, Some(600), "retrying", "other"),
            (Retrying, Some(42), "retrying", "other"),
            (DeadLettered, None, "dead_lettered", "none"),
        ];
        for per_endpoint in [false, true] {
            let recorder = Counters::default();
            metrics::with_local_recorder(&recorder, || {
                for (outcome, status, ..) in cases {
                    super::attempt("crm", outcome, status, None, per_endpoint);
                }
            });
            let target = module_path!().trim_end_matches("::tests");
            let expected: Vec<_> = cases
                .iter()
                .map(|(.., outcome, status)| {
                    let endpoint = if per_endpoint { ",endpoint=crm" } else { "" };
                    format!(
                        "deskhook_attempts_total{{outcome={outcome},status={status}{endpoint}}} \
                         {target}"
                    )
                })
                .collect();
            assert_eq!(*recorder.0.lock().unwrap(), expected);
        }
    }
}
