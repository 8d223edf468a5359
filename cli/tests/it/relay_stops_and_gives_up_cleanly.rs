//! A relay stopped (SIGTERM) while its endpoint keeps failing hands the events it holds back
//! to the stream, and another relay delivers them in order; so does one killed (SIGKILL)
//! after it parked them; an endpoint that answers 410 dead-letters every event without
//! holding up any partition.
//!
//! `nats-server` runs on a free 127.0.0.1 port with a temporary store; receivers are
//! `deskhook listen` on 127.0.0.1. Every child process is killed and waited for at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats;
use deskhook_transports::nats::NatsSink;

use crate::support::{Listen, Running, WAIT, deskhook_in, deskhook_with_env, text};

const EVENTS: usize = 60;
const TICKETS: usize = 6;

/// Publishes the events: ticket `T<n % 6>`, subject `n / 6`.
fn publish(url: &str, dir: &Path) {
    let (sink, guard) = NatsSink::builder(url)
        .require_server(true)
        .dead_letter_path(dir.join("publisher.dead.jsonl"))
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    for n in 0..EVENTS {
        let mut ticket = deskhook::sample::ticket();
        ticket.code = format!("T{}", n % TICKETS);
        ticket.subject = (n / TICKETS).to_string();
        dispatcher.emit(Action::Edit, &ticket, &user);
    }
    guard.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(sink.delivery().totals().delivered as usize, EVENTS);
}

/// A deskhook.toml with one endpoint `crm` at `url`.
fn config(dir: &Path, name: &str, url: &str, retry: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"{url}\"\nallow_private = true\nretry = \"{retry}\"\n",
            dir.join(format!("{name}.dead.jsonl"))
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// A relay delivering with `config`; what a failing endpoint holds is handed back, not
/// parked (but in the test that parks).
fn relay(url: &str, config: &str) -> Running {
    relay_with(url, config, &["--park-after", "1h"])
}

/// A relay delivering with `config`, with `more` flags.
fn relay_with(url: &str, config: &str, more: &[&str]) -> Running {
    let mut args = vec![
        "relay",
        "--nats",
        url,
        "--config",
        config,
        "--ack-wait",
        "5s",
        "--grace",
        "300ms",
        // One runtime thread here; the other relay tests run one per core.
        "--threads",
        "1",
    ];
    args.extend(more);
    let relay = Running::spawn(&args);
    assert!(relay.said().starts_with("relaying from stream DESKHOOK"));
    relay
}

/// Sends SIGTERM and returns the summary: (acknowledged, handed back, dead letters); none
/// was acknowledged twice, none parked.
fn stop(relay: &mut Running) -> (usize, usize, usize) {
    let pid = relay.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let summary = relay.said();
    assert!(relay.wait().success(), "{summary}");
    let numbers: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // The second: those for no endpoint; the sixth: skipped messages stored again
    // (nats-server 2.9 makes some at a takeover); the seventh: messages parked (none: not
    // within an hour); the eighth: messages terminated as not deskhook's.
    assert_eq!(numbers.len(), 8, "{summary}");
    assert_eq!(numbers[1], 0, "every event has its endpoint: {summary}");
    assert_eq!(numbers[4], 0, "no duplicates: {summary}");
    assert_eq!(numbers[6], 0, "nothing parked: {summary}");
    assert_eq!(numbers[7], 0, "nothing terminated: {summary}");
    (numbers[0], numbers[2], numbers[3])
}

/// Waits (30 s at most) until the stream `DESKHOOK` of the server at `url` is empty.
fn until_the_stream_empties(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    while runtime.block_on(nats::stream_len(url, "DESKHOOK")) > 0 {
        assert!(Instant::now() < deadline, "the stream did not empty");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that each of `lines` (bodies) is in order per ticket, and that every event came.
/// `EVENTS` bodies `listen` printed, or a failure that says what `relay` printed (which
/// says, when it happens, which lease it lost and why).
fn delivered_by(listen: &Listen, relay: &Running) -> Vec<String> {
    (0..EVENTS)
        .map(|i| {
            listen.process.line_within(WAIT).unwrap_or_else(|| {
                panic!(
                    "delivery {} of {EVENTS} did not come within {WAIT:?}; the relay said:\n{}",
                    i + 1,
                    relay.stderr()
                )
            })
        })
        .collect()
}

fn in_order(lines: &[String]) {
    let mut next = [0usize; TICKETS];
    for line in lines {
        let body: serde_json::Value = serde_json::from_str(line).unwrap();
        let ticket: usize = body["ticket"]["code"].as_str().unwrap()[1..]
            .parse()
            .unwrap();
        let n: usize = body["ticket"]["subject"].as_str().unwrap().parse().unwrap();
        assert_eq!(n, next[ticket], "ticket T{ticket} out of order");
        next[ticket] += 1;
    }
    assert_eq!(next, [EVENTS / TICKETS; TICKETS]);
}

#[test]
fn a_relay_killed_with_events_parked_leaves_them_to_the_next() {
    let server = nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&server.url(), dir.path());

    // The endpoint fails every time, and the relay parks what it holds up after 50 ms: the
    // stream empties though nothing is delivered. Then the relay is killed; its leases (of
    // 2 s, which the next relay takes from the bucket: with 1 s, a busy machine can make a
    // relay on one thread lose and take partitions over and over) end soon after.
    let failing = Listen::start(&["--status", "503"]);
    let mut first = relay_with(
        &server.url(),
        &config(dir.path(), "failing.toml", &failing.url, "0s,1h"),
        &["--park-after", "50ms", "--lease", "2s"],
    );
    until_the_stream_empties(&server.url());
    // `deskhook parked` shows them: every event, for `crm`. The servers from --nats, or
    // from DESKHOOK_NATS (the JSON run).
    let url = server.url();
    let parked = |json: bool| {
        let out = if json {
            deskhook_with_env(
                dir.path(),
                &["parked", "--json"],
                &[("DESKHOOK_NATS", url.as_str())],
            )
        } else {
            deskhook_in(dir.path(), &["parked", "--nats", url.as_str()])
        };
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let listed: serde_json::Value = serde_json::from_str(parked(true).trim()).unwrap();
    assert_eq!(listed["endpoint"], "crm");
    assert_eq!(listed["events"], EVENTS);
    assert!(
        listed["oldest"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{listed}"
    );
    let line = parked(false);
    assert!(
        line.starts_with(&format!("crm  {EVENTS} event(s)  partitions ")),
        "{line}"
    );
    first.kill();

    // The next relay finds the parked events and delivers them all, in order per ticket.
    let taking = Listen::start(&["--json"]);
    let mut second = relay(
        &server.url(),
        &config(dir.path(), "taking.toml", &taking.url, "0s"),
    );
    in_order(&delivered_by(&taking, &second));
    assert_eq!(stop(&mut second), (EVENTS, 0, 0));
    assert_eq!(parked(false), "nothing is parked\n");
    // A relay name that never ran is said, not taken for one that parked nothing.
    let out = deskhook_in(
        dir.path(),
        &[
            "parked",
            "--nats",
            url.as_str(),
            "--durable",
            "deskhook-rley",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr),
        "deskhook: invalid configuration: no relay named 'deskhook-rley' has run on these \
         servers: there is no bucket 'deskhook-rley-parked', which a relay makes when it \
         starts (relays there: deskhook-relay; give one with --durable)\n"
    );
}

#[test]
fn a_stopped_relay_hands_its_events_to_the_next() {
    let server = nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&server.url(), dir.path());

    // The first relay's endpoint fails every time and would retry in an hour.
    let failing = Listen::start(&["--status", "503"]);
    let mut first = relay(
        &server.url(),
        &config(dir.path(), "failing.toml", &failing.url, "0s,1h"),
    );
    // One head per ticket's partition is attempted and held.
    let held = failing.lines(1).len();
    std::thread::sleep(Duration::from_millis(300));
    let (acknowledged, handed_back, dead) = stop(&mut first);
    assert_eq!((acknowledged, dead), (0, 0));
    assert!(handed_back >= held, "{handed_back} handed back");

    // The next relay delivers everything, in order per ticket.
    let taking = Listen::start(&["--json"]);
    let mut second = relay(
        &server.url(),
        &config(dir.path(), "taking.toml", &taking.url, "0s"),
    );
    in_order(&delivered_by(&taking, &second));
    assert_eq!(stop(&mut second), (EVENTS, 0, 0));
}

#[test]
fn an_endpoint_that_is_gone_does_not_hold_up_the_partitions() {
    let server = nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&server.url(), dir.path());
    let gone = Listen::start(&["--status", "410"]);
    let mut relay = relay(
        &server.url(),
        &config(dir.path(), "gone.toml", &gone.url, "0s"),
    );
    // Every event ends in the dead letters; the stream empties.
    until_the_stream_empties(&server.url());
    assert_eq!(stop(&mut relay), (EVENTS, 0, EVENTS));
    let letters = std::fs::read_to_string(dir.path().join("gone.toml.dead.jsonl")).unwrap();
    assert_eq!(letters.lines().count(), EVENTS);
}

#[test]
fn allow_private_reaches_a_literal_loopback_ip_in_the_relays_config() {
    let server = nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&server.url(), dir.path());
    let receiver = Listen::start(&[]);
    // The file does not allow private addresses itself.
    let path = dir.path().join("loopback.toml");
    std::fs::write(
        &path,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"{}\"\n\
             retry = \"0s\"\n",
            dir.path().join("dead.jsonl"),
            receiver.url
        ),
    )
    .unwrap();
    let path = path.to_str().unwrap();

    let refused = deskhook_in(
        dir.path(),
        &["relay", "--nats", &server.url(), "--config", path],
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to connect to 127.0.0.1 (loopback)"),
        "{stderr}"
    );

    let mut relay = Running::spawn(&[
        "relay",
        "--nats",
        &server.url(),
        "--config",
        path,
        "--allow-private",
        "--grace",
        "300ms",
        // What a failing endpoint holds is handed back here, not parked (parking is tested
        // in tests/it/relay_parks_what_a_failing_endpoint_holds.rs).
        "--park-after",
        "1h",
    ]);
    assert!(relay.said().starts_with("relaying from stream DESKHOOK"));
    assert_eq!(receiver.lines(EVENTS).len(), EVENTS);
    assert_eq!(stop(&mut relay), (EVENTS, 0, 0));
}

/// A `[spool]` in a relay's configuration is refused before the relay connects (it is not
/// left out: whoever wrote it expects the events kept on disk).
#[test]
fn a_relay_refuses_a_spool_section() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[spool]\ndir = {:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/\"\n",
            tmp.path().join("spool")
        ),
    )
    .unwrap();
    // No server listens there: the refusal comes first.
    let out = deskhook_in(
        tmp.path(),
        &[
            "relay",
            "--nats",
            "nats://127.0.0.1:9",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("has a [spool] section"), "{stderr}");
    assert!(!tmp.path().join("spool").exists(), "the spool was opened");
}
