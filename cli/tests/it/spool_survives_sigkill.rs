//! At-least-once across crashes: `deskhook bench --spool` is killed with SIGKILL at several
//! points — before its first commit, between group commits, after the last one while it
//! delivers — then `deskhook drain` delivers what the spool kept. Every event the killed
//! process had reported durable reaches the receiver; an event arrives twice only if the
//! killed process had already sent it (it was in flight, or its delivery was not yet
//! recorded), never one whose delivery `spool stats` showed on record; nothing arrives that
//! was never emitted.
//!
//! The receiver is `deskhook listen` on 127.0.0.1; every child is killed and waited for.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Listen, Running, deskhook_in, text};

const EVENTS: u64 = 4000;

/// Deliveries on record before the kill while delivering.
const RECORDED: u64 = 64;

/// When to kill the emitting process.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as it runs: perhaps before anything is durable.
    Start,
    /// Once `durable N` passed this many events: between group commits.
    Durable(u64),
    /// Once every event is durable and some deliveries are on record, while delivery goes
    /// on.
    AllDurable,
}

/// The ticket code of a `deskhook listen` line: `unsigned  create   B0000001  seq 1  -`.
fn code_of(line: &str) -> u64 {
    let code = line.split_whitespace().nth(2).unwrap_or_default();
    code.strip_prefix('B')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a bench event: {line}"))
}

/// Every line the receiver prints until it has been quiet for `quiet`.
fn drain_lines(listen: &Listen, quiet: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        match listen.process.try_line() {
            Some(line) => {
                lines.push(line);
                last = Instant::now();
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    lines
}

fn crash_and_recover(kill_at: KillAt) {
    let listen = Listen::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool_arg = spool.to_str().unwrap();
    let events = EVENTS.to_string();
    // Its temporary files (the dead letters it cannot remove once killed) go to the
    // test's own directory.
    let mut bench = Running::spawn_with(
        &[
            "bench",
            "--url",
            &listen.url,
            "--allow-private",
            "--events",
            &events,
            "--body-size",
            "512",
            "--concurrency",
            "4",
            "--spool",
            spool_arg,
        ],
        &[("TMPDIR", dir.path().to_str().unwrap())],
    );
    let target = match kill_at {
        KillAt::Start => 0,
        KillAt::Durable(at) => at,
        KillAt::AllDurable => EVENTS,
    };
    let mut durable = 0;
    while durable < target {
        durable = parse_durable(&bench.line());
    }
    // Deliveries the killed process had on record: not sent again after the restart.
    let recorded = match kill_at {
        KillAt::AllDurable => wait_for_recorded(dir.path(), spool_arg, RECORDED),
        _ => 0,
    };
    bench.kill();
    // Lines printed before the kill, and by requests the kill cut short.
    while let Some(line) = bench.try_line() {
        if line.starts_with("durable ") {
            durable = parse_durable(&line);
        }
    }
    let first: Vec<u64> = drain_lines(&listen, Duration::from_millis(300))
        .iter()
        .map(|l| code_of(l))
        .collect();

    let made = spool
        .join(deskhook_transports::spool::DATABASE_FILE)
        .is_file();
    let out = deskhook_in(
        dir.path(),
        &[
            "drain",
            "--spool",
            spool_arg,
            "--url",
            &listen.url,
            "--allow-private",
        ],
    );
    // Killed before it made its spool: there is nothing to drain, and drain says so
    // rather than making an empty spool.
    if !made {
        assert_eq!(durable, 0, "{kill_at:?}: durable events but no spool");
        assert!(
            text(&out.stderr).contains("no spool here"),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    assert!(
        out.status.success(),
        "{kill_at:?}: drain failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let second: Vec<u64> = drain_lines(&listen, Duration::from_millis(300))
        .iter()
        .map(|l| code_of(l))
        .collect();

    let mut seen: HashMap<u64, (u32, u32)> = HashMap::new();
    for code in &first {
        seen.entry(*code).or_default().0 += 1;
    }
    for code in &second {
        seen.entry(*code).or_default().1 += 1;
    }
    for n in 1..=durable {
        assert!(
            seen.contains_key(&n),
            "{kill_at:?}: event {n} was durable (durable {durable}) but never arrived"
        );
    }
    for (code, (before, after)) in &seen {
        assert!(
            (1..=EVENTS).contains(code),
            "{kill_at:?}: B{code} was never emitted"
        );
        assert!(
            *before <= 1 && *after <= 1,
            "{kill_at:?}: B{code} twice in one life"
        );
    }
    // Sent again after the restart: only events whose delivery the killed process had not
    // yet recorded — those in flight and those whose outcome was still on its way to disk.
    // How many that is depends on how far the spool's writer was behind (CPU contention);
    // those it had on record before the kill are not among them, so the repeats are at
    // most the deliveries before the kill less those (a bound on counts: which events
    // were on record is not known here).
    let twice = seen.values().filter(|(b, a)| b + a > 1).count();
    assert!(
        twice + recorded <= first.len(),
        "{kill_at:?}: {twice} of {} deliveries before the kill were repeated, though \
         {recorded} were on record",
        first.len()
    );
    let stats = deskhook_in(dir.path(), &["spool", "stats", spool_arg, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["pending"], 0, "{kill_at:?}: {stats}");
    assert_eq!(stats["dead_letters"], 0, "{kill_at:?}: {stats}");
    eprintln!(
        "{kill_at:?}: durable {durable}, {} delivered before the kill, {} after, {} twice",
        first.len(),
        second.len(),
        seen.values().filter(|(b, a)| *b + *a > 1).count()
    );
}

/// Waits until the spool of a running `bench` has at least `least` deliveries on record
/// (all `EVENTS` are in it), and says how many it had.
fn wait_for_recorded(dir: &Path, spool: &str, least: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = deskhook_in(dir, &["spool", "stats", spool, "--json"]);
        // A read that met the writer's lock is tried again.
        let stats: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
        let pending = stats.as_ref().and_then(|s| s["pending"].as_u64());
        if let Some(pending) = pending
            && EVENTS - pending >= least
        {
            return (EVENTS - pending) as usize;
        }
        assert!(
            Instant::now() < deadline,
            "{pending:?} pending after 60 s, {least} deliveries on record awaited: {}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn parse_durable(line: &str) -> u64 {
    line.strip_prefix("durable ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected 'durable N', got: {line}"))
}

#[test]
fn a_kill_before_the_first_commit_loses_nothing_durable() {
    crash_and_recover(KillAt::Start);
}

#[test]
fn kills_between_group_commits_lose_nothing_durable() {
    crash_and_recover(KillAt::Durable(1));
    crash_and_recover(KillAt::Durable(EVENTS / 2));
}

#[test]
fn a_kill_after_the_last_commit_while_delivering_loses_nothing_durable() {
    crash_and_recover(KillAt::AllDurable);
}
