//! Metrics through the `metrics` facade and a `tracing` span per attempt, as a helpdesk's
//! exporter and subscriber see them. One test: the recorder and the subscriber are global.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, dead_letter_file, endpoint, start, ticket};
use deskhook_transports::http_blocking::HttpSink;
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// The spans seen: name and fields, as text, in the order they began.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<SpanLog>>);

#[derive(Default)]
struct SpanLog {
    spans: Vec<(String, Vec<(String, String)>)>,
    /// Where each live span id is in `spans` (ids are reused once a span closes).
    index: HashMap<u64, usize>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let mut log = self.0.lock().unwrap();
        let at = log.spans.len();
        log.spans.push((attrs.metadata().name().to_owned(), fields));
        log.index.insert(id.into_u64(), at);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut log = self.0.lock().unwrap();
        if let Some(&at) = log.index.get(&id.into_u64()) {
            values.record(&mut Fields(&mut log.spans[at].1));
        }
    }
}

fn value(line: &str, metric: &str) -> Option<f64> {
    line.strip_prefix(metric)?
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
}

fn sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(metric) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| value(line, metric))
        .sum()
}

/// Three events to one endpoint that answers 503 to each event's first attempt and 204 to
/// its second.
fn deliver_three_events_twice_each(t: Transport) {
    let seen = Mutex::new(HashSet::new());
    let receiver = Receiver::start(move |request, _| {
        let id = request.header("webhook-id").unwrap_or_default().to_owned();
        Answer::status(if seen.lock().unwrap().insert(id) {
            503
        } else {
            204
        })
    });
    // Its dead letters in a directory of its own, not the working directory.
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .metrics_per_endpoint(true)
            .dead_letter_path(&dead)
            .endpoint(endpoint("crm", &receiver, "0s,1ms")),
    );
    let user = deskhook::sample::user();
    for code in ["T-1", "T-2"] {
        dispatcher.emit(Action::Create, &ticket(code), &user);
    }
    dispatcher.emit(Action::Comment, &ticket("T-1"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    sink.record_gauges().unwrap();
}

#[test]
fn metrics_and_attempt_spans_reach_the_helpdesks_exporter_and_subscriber() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
    let spans = Spans::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))
        .expect("the only subscriber of this test binary");

    for t in [Transport::Blocking, Transport::Async] {
        *spans.0.lock().unwrap() = SpanLog::default();
        deliver_three_events_twice_each(t);
        let seen = spans.0.lock().unwrap().spans.clone();
        // 3 events, each a 503 then a 204: 6 attempts, 3 spans with 503, 3 with 204.
        let attempts: Vec<_> = seen
            .iter()
            .filter(|(n, _)| n == "deskhook.attempt")
            .collect();
        assert_eq!(attempts.len(), 6, "{t:?}: {seen:?}");
        let field = |fields: &[(String, String)], k: &str| {
            fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone())
        };
        let statuses: Vec<_> = attempts.iter().map(|(_, f)| field(f, "status")).collect();
        assert_eq!(
            statuses
                .iter()
                .filter(|s| s.as_deref() == Some("503"))
                .count(),
            3,
            "{t:?}: {statuses:?}"
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| s.as_deref() == Some("204"))
                .count(),
            3,
            "{t:?}: {statuses:?}"
        );
        for (_, fields) in &attempts {
            assert_eq!(field(fields, "endpoint").as_deref(), Some("crm"));
            assert!(
                field(fields, "webhook_id").is_some_and(|id| id.len() > 20),
                "{fields:?}"
            );
            assert!(field(fields, "ticket").is_some_and(|t| t.starts_with("T-")));
        }
        // Numbered from 1: each event's 503, then its 204.
        for (number, status) in [("1", "503"), ("2", "204")] {
            let these: Vec<_> = attempts
                .iter()
                .filter(|(_, f)| field(f, "attempt").as_deref() == Some(number))
                .collect();
            assert_eq!(these.len(), 3, "{t:?}: attempt {number}: {attempts:?}");
            assert!(
                these
                    .iter()
                    .all(|(_, f)| field(f, "status").as_deref() == Some(status)),
                "{these:?}"
            );
        }
    }
    // Both transports' runs add up in the one recorder.
    let text = handle.render();
    assert_eq!(
        sum(&text, "deskhook_events_total", &["event_type=\"create\""]),
        4.0,
        "{text}"
    );
    assert_eq!(
        sum(&text, "deskhook_events_total", &["event_type=\"comment\""]),
        2.0
    );
    assert_eq!(
        sum(
            &text,
            "deskhook_attempts_total",
            &["outcome=\"retrying\"", "status=\"5xx\"", "endpoint=\"crm\""]
        ),
        6.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &text,
            "deskhook_attempts_total",
            &["outcome=\"delivered\"", "status=\"2xx\""]
        ),
        6.0
    );
    assert_eq!(
        sum(
            &text,
            "deskhook_attempt_duration_seconds_count",
            &["endpoint=\"crm\""]
        ),
        12.0,
        "{text}"
    );
    assert_eq!(sum(&text, "deskhook_queue_depth", &[]), 0.0);
    assert_eq!(
        sum(&text, "deskhook_endpoints", &["state=\"active\""]),
        1.0,
        "{text}"
    );
    assert!(text.contains("# HELP deskhook_attempts_total"), "{text}");

    // An event too large to send goes to the dead letters without an attempt: the dead
    // letters' counter has it all the same.
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        Transport::Blocking,
        HttpSink::builder()
            .metrics_per_endpoint(true)
            .max_payload(64)
            .dead_letter_path(&dead)
            .endpoint(endpoint("big", &receiver, "0s")),
    );
    dispatcher.emit(Action::Create, &ticket("T-9"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let text = handle.render();
    assert_eq!(
        sum(&text, "deskhook_dead_letters_total", &["endpoint=\"big\""]),
        1.0,
        "{text}"
    );
    assert_eq!(receiver.count(), 0);

    // An attempt that cannot be made (its template does not render) is counted, but no
    // request took time: the histogram has requests only.
    let template =
        deskhook_transports::template::Template::inline("{\"s\": \"{{ event.ticket.nope }}\"}")
            .unwrap();
    let (_sink, guard, dispatcher) = start(
        Transport::Blocking,
        HttpSink::builder()
            .metrics_per_endpoint(true)
            .dead_letter_path(&dead)
            .endpoint(endpoint("unrendered", &receiver, "0s").template(template)),
    );
    dispatcher.emit(Action::Create, &ticket("T-10"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let text = handle.render();
    let unrendered = ["endpoint=\"unrendered\""];
    assert_eq!(
        sum(
            &text,
            "deskhook_attempts_total",
            &[
                "outcome=\"dead_lettered\"",
                "status=\"none\"",
                unrendered[0]
            ]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &text,
            "deskhook_attempt_duration_seconds_count",
            &unrendered
        ),
        0.0,
        "{text}"
    );
    assert_eq!(receiver.count(), 0);
}
