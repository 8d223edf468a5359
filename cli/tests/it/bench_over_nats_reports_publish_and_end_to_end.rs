//! `deskhook bench --transport nats` publishes through a NatsSink to a stream of its own and
//! ends with one JSON line: publishing alone, and end to end through two `deskhook relay`
//! processes it starts itself, which deliver every event (signed) to `deskhook listen` and
//! are all gone when the bench exits. The stream is deleted at the end either way, and
//! flags that do not go together exit 2.
//!
//! `nats-server` (Debian package `nats-server`) runs on a free 127.0.0.1 port with a
//! temporary store; the receiver is `deskhook listen` on 127.0.0.1. Every child is killed and
//! waited for when its handle is dropped.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use deskhook_tests::nats;
use futures_util::StreamExt;
use serde_json::Value;

use crate::support::{Listen, Run, SECRET, deskhook_bounded, one_json_line};

/// How long a run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

const EVENTS: u64 = 300;
const RELAYS: u64 = 2;

fn deskhook(tmp: &Path, args: &[&str]) -> Run {
    deskhook_bounded(tmp, args, RUN_LIMIT)
}

/// The one JSON line of stdout, with exactly the documented keys.
fn report(run: &Run) -> Value {
    one_json_line(
        run,
        &[
            "events",
            "endpoints",
            "tenants",
            "deliveries",
            "delivered",
            "failed",
            "dropped",
            "seconds",
            "events_per_sec",
            "emit_ns_p50",
            "emit_ns_p99",
            "emit_waits",
            "emit_preempted",
            "rss_max_kb",
            "rss_endpoints_kb",
            "threads_max",
            "cpu_seconds",
            "cpu_us_per_delivery",
            "cpu_user_us_per_delivery",
            "cpu_emit_us_per_event",
            "cpu_us_per_delivery_beside_emit",
            "order_violations",
            "attempt_log",
            "backlog",
            "backlog_stalled",
            "publish_per_sec",
            "relays",
            "batch",
            "relayed",
            "end_to_end_seconds",
            "delivered_per_sec",
        ],
    )
}

/// Processes whose command line mentions `needle` (Linux: /proc), other than this one.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(cmdline)
        })
        .collect()
}

/// The streams on the server.
fn stream_names(url: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let js = nats::context(url).await;
        js.stream_names()
            .map(|name| name.expect("a stream name"))
            .collect()
            .await
    })
}

#[test]
fn two_relays_deliver_every_event_and_are_gone_at_the_end() {
    let server = nats::NatsServer::start();
    let listen = Listen::start(&["--secret", SECRET]);
    let tmp = tempfile::tempdir().unwrap();
    let (events, relays) = (EVENTS.to_string(), RELAYS.to_string());
    let url = server.url();
    let run = deskhook(
        tmp.path(),
        &[
            "bench",
            "--transport",
            "nats",
            "--nats",
            &url,
            "--events",
            &events,
            "--relays",
            &relays,
            "--url",
            &listen.url,
            "--allow-private",
            "--secret",
            SECRET,
            "--partitions",
            "4",
            "--batch",
            "8",
        ],
    );
    let value = report(&run);
    assert!(
        run.status.success(),
        "{}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert_eq!(value["events"], EVENTS);
    assert_eq!(value["delivered"], EVENTS, "all acknowledged by JetStream");
    assert_eq!(value["failed"], 0);
    assert_eq!(value["relays"], RELAYS);
    assert_eq!(value["batch"], 8);
    assert_eq!(value["relayed"], EVENTS, "all delivered by the relays");
    let publish_per_sec = value["publish_per_sec"].as_u64().unwrap();
    assert!(publish_per_sec > 0, "{value}");
    assert_eq!(value["events_per_sec"], publish_per_sec);
    let seconds = value["seconds"].as_f64().unwrap();
    let end_to_end = value["end_to_end_seconds"].as_f64().unwrap();
    assert!(
        seconds > 0.0 && end_to_end >= seconds,
        "delivery ends after publishing: {value}"
    );
    let delivered_per_sec = value["delivered_per_sec"].as_u64().unwrap();
    assert!(delivered_per_sec > 0, "{value}");
    assert!(
        (delivered_per_sec as f64 - EVENTS as f64 / end_to_end).abs() <= 1.0,
        "delivered_per_sec is relayed per end-to-end second: {value}"
    );

    // The receiver got each ticket once, signed with the secret.
    let lines = listen.lines(EVENTS as usize);
    let mut codes = BTreeSet::new();
    for line in &lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], "verified", "{line}");
        assert!(codes.insert(fields[2].to_owned()), "twice: {line}");
    }
    let expected: BTreeSet<String> = (1..=EVENTS).map(|n| format!("B{n:07}")).collect();
    assert_eq!(codes, expected);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(listen.process.try_line(), None, "nothing more arrives");

    // The relays (whose deskhook.toml was in TMPDIR) are gone, their files too, and so is the
    // stream.
    let tmp_path = tmp.path().to_str().unwrap();
    assert_eq!(processes_mentioning(tmp_path), Vec::<String>::new());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert_eq!(stream_names(&url), Vec::<String>::new());
}

#[test]
fn publishing_alone_leaves_the_relay_fields_null() {
    let server = nats::NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = server.url();
    let run = deskhook(
        tmp.path(),
        &[
            "bench",
            "--transport",
            "nats",
            "--nats",
            &url,
            "--events",
            "200",
        ],
    );
    let value = report(&run);
    assert!(
        run.status.success(),
        "{}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert_eq!(value["delivered"], 200);
    assert!(value["publish_per_sec"].as_u64().unwrap() > 0, "{value}");
    assert_eq!(value["relays"], 0);
    assert_eq!(value["batch"], 1);
    for key in ["relayed", "end_to_end_seconds", "delivered_per_sec"] {
        assert!(value[key].is_null(), "{key}: {value}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert_eq!(stream_names(&url), Vec::<String>::new());
}

#[test]
fn a_three_node_cluster_takes_a_stream_replicated_three_times() {
    let cluster = nats::NatsCluster::start(3);
    let tmp = tempfile::tempdir().unwrap();
    let urls = cluster.urls();
    let run = deskhook(
        tmp.path(),
        &[
            "bench",
            "--transport",
            "nats",
            "--nats",
            &urls,
            "--replicas",
            "3",
            "--events",
            "200",
        ],
    );
    let value = report(&run);
    assert!(
        run.status.success(),
        "{}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert_eq!(value["delivered"], 200);
    assert!(value["publish_per_sec"].as_u64().unwrap() > 0, "{value}");
    assert_eq!(stream_names(&cluster.nodes[1].url()), Vec::<String>::new());
}

#[test]
fn flags_that_do_not_go_together_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["--transport", "nats"], "--nats URL"),
        (
            &[
                "--transport",
                "nats",
                "--nats",
                "nats://127.0.0.1:9",
                "--relays",
                "1",
            ],
            "--relays needs --url",
        ),
        (
            &[
                "--transport",
                "nats",
                "--nats",
                "nats://127.0.0.1:9",
                "--url",
                "http://127.0.0.1:9/",
            ],
            "give --relays N",
        ),
        (
            &["--url", "http://127.0.0.1:9/", "--relays", "2"],
            "--relays is for --transport nats",
        ),
        (&["--transport", "async"], "--url is required"),
        // Accepted and ignored before.
        (
            &["--url", "http://127.0.0.1:9/", "--batch", "4"],
            "--batch is for --transport nats",
        ),
        (
            &["--url", "http://127.0.0.1:9/", "--relay-workers", "4"],
            "--relay-workers is for --transport nats",
        ),
        (
            &[
                "--transport",
                "nats",
                "--nats",
                "nats://127.0.0.1:9",
                "--endpoints",
                "3",
            ],
            "--endpoints is for --transport blocking and async",
        ),
        (
            &[
                "--transport",
                "nats",
                "--nats",
                "nats://127.0.0.1:9",
                "--relay-threads",
                "2",
            ],
            "--relay-threads is for the relays: give --relays N too",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["bench", "--events", "1"];
        args.extend_from_slice(flags);
        let run = deskhook(tmp.path(), &args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
