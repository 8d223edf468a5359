//! Relays share the stream's partitions through leases: a relay added mid-run takes its
//! share from the one running; events go to their tenant's endpoints and to those without a
//! tenant; and on a 3-node nats-server cluster (stream, consumers, buckets and the dead
//! letters' stream replicated 3 times) a node killed with SIGKILL mid-run loses nothing and
//! breaks no ticket's order. Each ticket's events first arrive in the order they were published;
//! repeats (same webhook-id) are counted and bounded.
//!
//! nats-server runs on free 127.0.0.1 ports with temporary stores; the receiver is
//! `deskhook listen` on 127.0.0.1. Every child process is killed and waited for at the end.

use std::path::Path;
use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats;
use deskhook_transports::nats::{NatsSink, Storage, StreamSettings};

use crate::support::{self, Arrivals, Listen, Running};

const TICKETS: usize = 50;
const PER_TICKET: usize = 40;
const EVENTS: usize = TICKETS * PER_TICKET;

/// A publisher to the stream at `urls` (`replicas` copies).
struct Publisher {
    sink: NatsSink,
    guard: deskhook_transports::delivery::DeliveryGuard,
    dispatcher: Dispatcher,
}

impl Publisher {
    fn new(urls: &str, replicas: usize, dir: &Path) -> Publisher {
        let (sink, guard) = NatsSink::builder(urls)
            .stream(
                StreamSettings::new()
                    .storage(Storage::File)
                    .replicas(replicas),
            )
            .require_server(true)
            .dead_letter_path(dir.join("publisher.dead.jsonl"))
            .build()
            .unwrap();
        let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
        Publisher {
            sink,
            guard,
            dispatcher,
        }
    }

    /// Publishes events `range` (ticket `T<n % 50>`, subject `n / 50`), each acknowledged by
    /// the stream.
    fn publish(&self, range: std::ops::Range<usize>) {
        let user = deskhook::sample::user();
        for n in range.clone() {
            let mut ticket = deskhook::sample::ticket();
            ticket.code = format!("T{}", n % TICKETS);
            ticket.subject = (n / TICKETS).to_string();
            self.dispatcher.emit(Action::Comment, &ticket, &user);
        }
        self.guard.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(self.sink.delivery().totals().delivered as usize, range.end);
    }
}

/// A deskhook.toml delivering to `url`, with a retry schedule that survives a node's death.
fn config(dir: &Path, url: &str) -> String {
    let path = dir.join("deskhook.toml");
    std::fs::write(
        &path,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"{url}\"\nallow_private = true\nretry = \"0s,50ms,100ms,500ms\"\n",
            dir.join("dead.jsonl")
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// A relay on `urls`, once ready.
fn relay(urls: &str, config: &str, lease: &str) -> Running {
    let relay = Running::spawn(&[
        "relay",
        "--nats",
        urls,
        "--config",
        config,
        "--lease",
        lease,
        "--ack-wait",
        "5s",
        "--grace",
        "2s",
    ]);
    let ready = relay.said();
    assert!(
        ready.starts_with("relaying from stream DESKHOOK (16 partitions)"),
        "{ready}"
    );
    relay
}

/// Stops `relay` with SIGTERM and waits at most `wait` for its summary; the events it
/// acknowledged, from that summary.
fn stop(relay: &mut Running, wait: Duration) -> usize {
    let pid = relay.pid().to_string();
    let asked = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(asked.success());
    let summary = std::iter::from_fn(|| relay.line_within(wait))
        .find(|line| !line.starts_with("partitions:"))
        .unwrap_or_else(|| panic!("no summary within {wait:?}; stderr: {}", relay.stderr()));
    assert!(relay.wait().success(), "{summary}");
    assert!(summary.contains(", 0 dead letter(s)"), "{summary}");
    summary
        .strip_prefix("stopped: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"))
}

#[test]
fn a_relay_added_mid_run_takes_its_share_and_order_holds() {
    let server = nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--json"]);
    let config = config(dir.path(), &listen.url);
    let publisher = Publisher::new(&server.url(), 1, dir.path());
    publisher.publish(0..EVENTS / 2);

    let mut first = relay(&server.url(), &config, "2s");
    first.owns(16);
    let mut arrivals = Arrivals::new();
    arrivals.until(&listen, EVENTS / 5, Duration::from_secs(60));

    // The second relay joins while the first delivers: the first hands half the partitions
    // back, each once what it has in delivery from it is acknowledged, and the second takes
    // them. Then the rest is published.
    let mut second = relay(&server.url(), &config, "2s");
    second.owns(8);
    first.owns(8);
    publisher.publish(EVENTS / 2..EVENTS);
    arrivals.until(&listen, EVENTS, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    arrivals.rest(&listen);

    let repeats = arrivals.check_order(TICKETS, PER_TICKET);
    assert_eq!(repeats, 0, "a hand-over delivers nothing twice");
    let (a, b) = (
        stop(&mut first, support::WAIT),
        stop(&mut second, support::WAIT),
    );
    assert!(b > 0, "the second relay delivered part: {a} + {b}");
    assert_eq!(a + b, EVENTS);
}

#[test]
fn relays_on_a_cluster_survive_a_node_killed() {
    let mut cluster = nats::NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--json"]);
    let config = config(dir.path(), &listen.url);
    let publisher = Publisher::new(&cluster.urls(), 3, dir.path());
    publisher.publish(0..EVENTS / 2);

    // Leases longer than the cluster takes to elect new leaders, even on a loaded machine:
    // with 10 s, the leases bucket was once unanswerable for longer than that while the
    // whole test suite ran, the relays gave their partitions up, and 161 deliveries came
    // again (the documented limit of a relay cut off longer than its lease, which is not
    // what this test is about: a node killed under relays that stay).
    let mut relays = [
        relay(&cluster.urls(), &config, "30s"),
        relay(&cluster.urls(), &config, "30s"),
    ];
    // The node dies under relays that stay: the second relay's start is over first (the
    // first, started alone, took every partition and hands half back). A hand-back that
    // overlapped the node's death left its unconfirmed messages to the next owner, who
    // delivered them again: 336 repeats once (2026-12-07), the documented cost of a
    // hand-back cut short, not of a node's death. The second half is published once the
    // partitions are shared, so that at least 3/8 of the events are still to come when the
    // node dies, however fast the relays were meanwhile.
    relays[1].owns_within(8, Duration::from_secs(120));
    relays[0].owns_within(8, Duration::from_secs(120));
    publisher.publish(EVENTS / 2..EVENTS);
    let mut arrivals = Arrivals::new();
    arrivals.until(&listen, EVENTS * 5 / 8, Duration::from_secs(60));
    // A dead letter acknowledges its event: it rests on as many copies as the event did.
    let dead_replicas = nats::block_on(async {
        let context = nats::context(&cluster.nodes[1].url()).await;
        let stream = context.get_stream("DESKHOOK_DEAD").await.unwrap();
        stream.cached_info().config.num_replicas
    });
    assert_eq!(dead_replicas, 3);
    cluster.nodes[0].stop();
    // Alone, the cluster answers again within 30 s; while the whole suite ran, its leases
    // bucket was once unanswerable for about two minutes, and 120 s were too few.
    let all = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arrivals.until(&listen, EVENTS, Duration::from_secs(300));
    }));
    if let Err(panic) = all {
        for relay in &relays {
            eprintln!("---- relay\n{}", relay.stderr());
        }
        std::panic::resume_unwind(panic);
    }
    std::thread::sleep(Duration::from_millis(500));
    arrivals.rest(&listen);

    for relay in &relays {
        eprintln!("---- relay\n{}", relay.stderr());
    }
    let repeats = arrivals.check_order(TICKETS, PER_TICKET);
    eprintln!("{} arrivals, {repeats} repeated", arrivals.lines.len());
    // A repeat is a delivery whose acknowledgement the dead node took, or that timed out
    // while the cluster elected new leaders (each logged as "has not confirmed the
    // acknowledgement"), redelivered by the server before the relay's second ask was
    // confirmed. Their number follows how many deliveries ended in that window: 19 once
    // with the whole suite running (2026-12-07), where 16 was the bound; a few dozen at
    // most, against the 2,000 events.
    assert!(
        repeats <= 32,
        "{repeats} repeats: at most the deliveries whose acknowledgement the dead node took"
    );
    // A relay's stop makes NATS requests (consumers deleted, leases given back), each
    // bounded by the relay's NATS timeout (5 s); while the cluster still recovers, they
    // may take it whole.
    let acknowledged: usize = relays
        .iter_mut()
        .map(|relay| stop(relay, Duration::from_secs(60)))
        .sum();
    assert!(acknowledged >= EVENTS, "{acknowledged} acknowledged");
    assert!(
        std::fs::read(dir.path().join("dead.jsonl")).map_or(true, |d| d.is_empty()),
        "no dead letters"
    );
}

#[test]
fn a_relay_delivers_each_event_to_its_tenants_endpoints_and_those_of_none() {
    let server = nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (acme, everyone) = (
        deskhook_tests::Receiver::ok(),
        deskhook_tests::Receiver::ok(),
    );
    let config = dir.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n\n\
             [[endpoint]]\nname = \"acme-crm\"\ntenant = \"acme\"\nurl = \"{}\"\nallow_private = true\n\n\
             [[endpoint]]\nname = \"audit\"\nurl = \"{}\"\nallow_private = true\n",
            dir.path().join("dead.jsonl"),
            acme.url,
            everyone.url
        ),
    )
    .unwrap();
    let publisher = Publisher::new(&server.url(), 1, dir.path());
    let user = deskhook::sample::user();
    let mut ticket = deskhook::sample::ticket();
    for (n, tenant) in ["acme", "globex", "acme", "globex", "acme"]
        .iter()
        .enumerate()
    {
        ticket.subject = format!("{tenant} {n}");
        publisher
            .dispatcher
            .for_tenant(tenant)
            .emit(Action::Comment, &ticket, &user);
    }
    ticket.subject = "no tenant".into();
    publisher.dispatcher.emit(Action::Comment, &ticket, &user);
    publisher.guard.flush(Duration::from_secs(30)).unwrap();

    let mut relay = relay(&server.url(), config.to_str().unwrap(), "2s");
    let subjects = |received: Vec<deskhook_tests::Received>| -> Vec<String> {
        received
            .iter()
            .map(|r| {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                body["ticket"]["subject"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(
        everyone.wait_for(6).len(),
        6,
        "the endpoint of no tenant takes every event"
    );
    assert_eq!(
        subjects(acme.wait_for(3)),
        ["acme 0", "acme 2", "acme 4"],
        "the tenant's endpoint takes its tenant's events, in order"
    );
    assert_eq!(stop(&mut relay, support::WAIT), 6);
    assert_eq!(acme.count(), 3, "nothing of another tenant or of none");
}

#[test]
fn sharing_flags_out_of_range_are_refused_with_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deskhook.toml");
    std::fs::write(
        &config,
        "[[endpoint]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let base = ["relay", "--nats", "127.0.0.1:9", "--config", config];
    let lease = support::deskhook_in(dir.path(), &[&base[..], &["--lease", "200ms"]].concat());
    assert_eq!(lease.status.code(), Some(2));
    assert!(
        support::text(&lease.stderr).contains("at least 1s"),
        "{}",
        support::text(&lease.stderr)
    );
    // Said in the flags' terms, not the library's settings' (ack_wait).
    for (flag, value, says) in [
        ("--ack-wait", "10ms", "--ack-wait 10ms cannot work"),
        (
            "--park-after",
            "25h",
            "--park-after 25h is longer than a relay can use",
        ),
    ] {
        let args = [&base[..], &["--allow-private", flag, value]].concat();
        let refused = support::deskhook_in(dir.path(), &args);
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}");
        let said = support::text(&refused.stderr);
        assert!(said.contains(says), "{flag} {value}: {said}");
    }
    for (flag, value) in [
        ("--max-handoffs", "0"),
        ("--max-pending", "0"),
        ("--threads", "0"),
        ("--threads", "1025"),
    ] {
        let refused = support::deskhook_in(dir.path(), &[&base[..], &[flag, value]].concat());
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}");
        let said = support::text(&refused.stderr);
        assert!(
            said.contains(flag) && said.contains("1.."),
            "{flag} {value}: {said}"
        );
    }
}
