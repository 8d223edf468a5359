//! Three `deskhook relay` processes deliver 5,000 events from a JetStream stream to a
//! loopback receiver; one is killed with SIGKILL mid-run. The events were published in
//! batches (several events in one message), so the relays keep each ticket's next event
//! until the message of its last one is acknowledged. Every event is delivered, each
//! ticket's events first arrive in order, and an event arrives twice only if the killed
//! relay had it outstanding (at most --max-pending messages for each partition it owned).
//! The other two stop cleanly on SIGTERM.
//!
//! `nats-server` (Debian package `nats-server`) runs on a free 127.0.0.1 port with a
//! temporary store; the receiver is `deskhook listen` on 127.0.0.1. Every child process is
//! killed and waited for at the end.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats;
use deskhook_transports::nats::NatsSink;

use crate::support::{Listen, Running, WAIT};

const EVENTS: usize = 5000;
const TICKETS: usize = 100;
const PARTITIONS: usize = 16;
/// Messages each partition may have outstanding (`--max-pending`).
const MAX_PENDING: usize = 32;
/// Events in one message at most (`NatsSinkBuilder::batch`).
const BATCH: usize = 16;

/// A body as `deskhook listen --json` prints it: (ticket code, its number within the
/// ticket), which names the event.
fn parse(line: &str) -> (String, usize) {
    let body: serde_json::Value = serde_json::from_str(line).expect("a JSON body");
    let code = body["ticket"]["code"].as_str().expect("a code").to_owned();
    let n = body["ticket"]["subject"]
        .as_str()
        .expect("a subject")
        .parse()
        .expect("a number");
    (code, n)
}

#[test]
fn three_relays_deliver_everything_in_order_when_one_is_killed() {
    let server = nats::NatsServer::start();
    let listen = Listen::start(&["--json"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nallow_private = true\nretry = \"0s,50ms,50ms,50ms\"\n",
            dir.path().join("dead.jsonl"),
            listen.url
        ),
    )
    .unwrap();

    // Publish: 5,000 events over 100 tickets, in batches; the subject counts per ticket.
    let (sink, guard) = NatsSink::builder(server.url())
        .require_server(true)
        .batch(BATCH)
        .dead_letter_path(dir.path().join("publisher-dead.jsonl"))
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    for n in 0..EVENTS {
        let mut ticket = deskhook::sample::ticket();
        ticket.code = format!("T{}", n % TICKETS);
        ticket.subject = (n / TICKETS).to_string();
        dispatcher.emit(Action::Comment, &ticket, &user);
    }
    guard.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(
        sink.delivery().totals().delivered as usize,
        EVENTS,
        "all published"
    );

    let config_arg = config.to_str().unwrap();
    let relay = || {
        let relay = Running::spawn(&[
            "relay",
            "--nats",
            &server.url(),
            "--config",
            config_arg,
            "--ack-wait",
            "2s",
            "--lease",
            "2s",
            "--grace",
            "5s",
            "--max-pending",
            &MAX_PENDING.to_string(),
            // What each relay holds, in its log: printed should a delivery not come.
            "--log-status-every",
            "1s",
        ]);
        let ready = relay.said();
        assert_eq!(
            ready,
            format!("relaying from stream DESKHOOK ({PARTITIONS} partitions) to 1 endpoint(s)")
        );
        relay
    };
    let mut victim = relay();
    let mut others = [relay(), relay()];
    // The next delivery; when none comes, the relays' logs say why.
    let next = |others: &[Running], ids: &HashSet<(String, usize)>| -> String {
        listen.process.line_within(WAIT).unwrap_or_else(|| {
            // The events still missing, as (ticket, number, index in the publishing order).
            let missing: Vec<(String, usize, usize)> = (0..EVENTS)
                .map(|n| (format!("T{}", n % TICKETS), n / TICKETS, n))
                .filter(|(code, k, _)| !ids.contains(&(code.clone(), *k)))
                .take(10)
                .collect();
            let logs: Vec<String> = others.iter().map(Running::stderr).collect();
            let consumers = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(nats::consumers_report(&server.url(), "DESKHOOK"));
            panic!(
                "no delivery for {WAIT:?}; missing (ticket, number, index): {missing:?}; \
                 the stream's consumers:\n{consumers}\nthe relays left said:\n{}",
                logs.join("\n---\n")
            )
        })
    };

    // Kill one relay once a good part is delivered.
    let mut lines = Vec::new();
    while lines.len() < EVENTS / 4 {
        lines.push(listen.line());
    }
    victim.kill();
    let before_kill = lines.len();

    // Everything arrives.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ids: HashSet<(String, usize)> = lines.iter().map(|l| parse(l)).collect();
    while ids.len() < EVENTS {
        assert!(
            Instant::now() < deadline,
            "only {} of {EVENTS} arrived",
            ids.len()
        );
        let line = next(&others, &ids);
        ids.insert(parse(&line));
        lines.push(line);
    }
    // A late duplicate (an event the killed relay held at the very end of its partition)
    // comes after the server's ack wait (2 s).
    std::thread::sleep(Duration::from_millis(2500));
    while let Some(line) = listen.process.try_line() {
        lines.push(line);
    }

    let twice = lines.len() - ids.len();
    eprintln!(
        "{} deliveries, {twice} twice, {before_kill} before the kill",
        lines.len()
    );
    assert!(
        twice <= PARTITIONS * MAX_PENDING * BATCH,
        "{twice} duplicates: at most --max-pending messages of a batch each for each \
         partition the killed relay owned \
         ({before_kill} before the kill)"
    );
    // Events the server's consumer skipped (some nats-server versions do, now and then),
    // which a relay found still in the stream and delivered late: by ticket, as the relays
    // logged them.
    let mut skipped: HashMap<String, usize> = HashMap::new();
    for log in others.iter().chain([&victim]).map(Running::stderr) {
        for line in log
            .lines()
            .filter(|l| l.contains("stored it again, for delivery"))
        {
            // "(ticket 'T')", or "(tickets 'T1', 'T2')" for a batch.
            let named = line
                .split_once("(ticket")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(named, _)| named)
                .unwrap_or_else(|| panic!("a ticket in: {line}"));
            for ticket in named.split('\'').skip(1).step_by(2) {
                *skipped.entry(ticket.to_owned()).or_default() += 1;
            }
        }
    }
    if !skipped.is_empty() {
        eprintln!("events the server's consumers skipped, delivered late: {skipped:?}");
        for ticket in skipped.keys() {
            let arrivals: Vec<usize> = lines
                .iter()
                .map(|l| parse(l))
                .filter(|(code, _)| code == ticket)
                .map(|(_, n)| n)
                .collect();
            eprintln!("  {ticket} arrived as: {arrivals:?}");
        }
    }
    // Late: an event that arrived after a later event of its ticket (for the first time,
    // or again: a skipped message may have been delivered once before its relay died).
    // Only as many as the relays found skipped for the ticket.
    let mut late: HashSet<(String, usize)> = HashSet::new();
    let mut highest: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let event = parse(line);
        let top = highest.entry(event.0.clone()).or_insert(event.1);
        if event.1 < *top && !late.contains(&event) {
            let allowed = skipped.entry(event.0.clone()).or_default();
            assert!(
                *allowed > 0,
                "ticket {}: {} arrived after {top}",
                event.0,
                event.1
            );
            *allowed -= 1;
            late.insert(event);
        } else {
            *top = (*top).max(event.1);
        }
    }
    // Per ticket, the other arrivals follow the publishing order: 0, 1, 2, … — a repeat
    // comes right after itself, never after a later event of its ticket.
    let mut seen: HashSet<(String, usize)> = HashSet::new();
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut last: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let event = parse(line);
        if late.contains(&event) {
            continue;
        }
        let (ticket, n) = event.clone();
        if let Some(before) = last.insert(ticket.clone(), n) {
            assert!(n >= before, "ticket {ticket}: {n} arrived after {before}");
        }
        if !seen.insert(event) {
            continue;
        }
        let expected = next.entry(ticket.clone()).or_default();
        while late.contains(&(ticket.clone(), *expected)) {
            *expected += 1;
        }
        assert_eq!(n, *expected, "ticket {ticket} out of order");
        *expected += 1;
    }
    for (ticket, expected) in &mut next {
        while late.contains(&(ticket.clone(), *expected)) {
            *expected += 1;
        }
    }
    assert_eq!(next.len(), TICKETS);
    assert!(next.values().all(|n| *n == EVENTS / TICKETS));

    // They logged their status as asked.
    for relay in &others {
        let log = relay.stderr();
        assert!(
            log.contains("relay status: ")
                && log.contains(" of them parked (messages by partition: "),
            "{log}"
        );
    }
    // The other two stop on SIGTERM and say what they did.
    for relay in &mut others {
        let pid = relay.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let summary = relay.said();
        let acknowledged: usize = summary
            .strip_prefix("stopped: ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{summary}"));
        assert!(
            acknowledged > 0,
            "both survivors took part of the work: {summary}"
        );
        assert!(summary.contains(", 0 dead letter(s)"), "{summary}");
        assert!(relay.wait().success(), "exit status");
    }
    let dead = dir.path().join("dead.jsonl");
    assert!(
        std::fs::read(&dead).map_or(true, |d| d.is_empty()),
        "no dead letters"
    );
    drop(dispatcher);
    drop(sink);
}
