//! What goes to the Prometheus exporter: label values written so that the text reads back
//! as them.
//!
//! metrics-exporter-prometheus (0.18) takes a backslash in a label value for an escape
//! already made: `a\"b` is written `a\"b`, which reads back as `a"b`, and `a\\b` as `a\\b`,
//! which reads back as `a\b`. Endpoint names may hold both, and two endpoints then shared
//! one series, which Prometheus drops as duplicates. Each backslash is doubled first, which
//! the exporter then writes as one escaped backslash. Here rather than where the transports
//! label their metrics: another exporter would escape them twice.

use metrics::Unit;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};

/// A recorder that doubles the backslashes of label values before `R` sees them.
#[derive(Debug)]
pub(super) struct Escaped<R>(pub(super) R);

/// `key` with its label values' backslashes doubled, if it has any (most keys have none,
/// and cost a look at their labels).
fn escaped(key: &Key) -> Option<Key> {
    if !key.labels().any(|label| label.value().contains('\\')) {
        return None;
    }
    let labels: Vec<Label> = key
        .labels()
        .map(|label| Label::new(label.key().to_owned(), label.value().replace('\\', "\\\\")))
        .collect();
    Some(Key::from_parts(key.name_shared(), labels))
}

impl<R: Recorder> Recorder for Escaped<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0
            .register_counter(escaped(key).as_ref().unwrap_or(key), metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0
            .register_gauge(escaped(key).as_ref().unwrap_or(key), metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0
            .register_histogram(escaped(key).as_ref().unwrap_or(key), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_backslashes_and_quotes_keep_series_of_their_own() {
        let exporter = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = exporter.handle();
        let recorder = Escaped(exporter);
        let names = [r#"a"b"#, r#"a\"b"#, r"a\b", r"a\\b", "plain"];
        metrics::with_local_recorder(&recorder, || {
            for name in names {
                metrics::counter!("deskhook_test_total", "endpoint" => name).increment(1);
            }
        });
        let text = handle.render();
        // As Prometheus reads a label value: \\ is \, \" is ", \n is a line feed.
        let mut read: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("deskhook_test_total{endpoint=\""))
            .map(|rest| {
                let value = rest.rsplit_once("\"} ").expect("a sample line").0;
                let mut out = String::new();
                let mut chars = value.chars();
                while let Some(c) = chars.next() {
                    out.push(if c == '\\' {
                        chars.next().expect("an escape")
                    } else {
                        c
                    });
                }
                out
            })
            .collect();
        read.sort();
        let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        expected.sort();
        assert_eq!(read, expected, "{text}");
    }
}
