//! How long an `emit` that waits for its commit (`Durability::Wait`) waits while an endpoint
//! with a large backlog in the spool is removed, next to the same emits with no removal
//! under way. The spool moves a removed endpoint's rows to the dead letters in steps (a
//! thousand rows or 1 MiB of bodies per commit): an emit waits for one step at most, not
//! for the whole move.
//!
//! ```sh
//! cargo bench -p deskhook-transports --features spool,http-blocking --bench spool_remove -- 50000
//! ```
//!
//! The argument is the backlog, in events of about 2 KiB (default 50 000). Two paused
//! endpoints on `127.0.0.1:9` take every event: nothing is sent anywhere. The spool is in a
//! temporary directory of `$TMPDIR`, `synchronous = NORMAL`. Prints, for the quiet second
//! and for the removal, the emits made, their p50, p99 and longest wait, and how long the
//! removal took.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deskhook::{Action, Dispatcher};
use deskhook_transports::delivery::Endpoint;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{Spool, Synchronous};

/// Emits, one after the other, until `stop` is set; the time each took.
fn emit_until(
    dispatcher: &Dispatcher,
    ticket: &deskhook::Ticket,
    stop: &AtomicBool,
) -> Vec<Duration> {
    let user = deskhook::sample::user();
    let mut waits = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        dispatcher.emit(Action::Comment, ticket, &user);
        waits.push(started.elapsed());
    }
    waits
}

/// One line of figures for `waits`.
fn summary(what: &str, mut waits: Vec<Duration>) -> String {
    waits.sort();
    let at = |q: f64| {
        let last = waits.len().saturating_sub(1) as f64;
        waits.get((last * q) as usize).copied().unwrap_or_default()
    };
    format!(
        "{what}: {} emits, p50 {:?}, p99 {:?}, longest {:?}",
        waits.len(),
        at(0.5),
        at(0.99),
        waits.last().copied().unwrap_or_default()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backlog: usize = match std::env::args().nth(1).filter(|a| a != "--bench") {
        Some(n) => n
            .parse()
            .map_err(|e| format!("the backlog '{n}' is not a number: {e}"))?,
        None => 50_000,
    };
    let dir = tempfile::tempdir()?;
    let spool = Spool::builder(dir.path())
        .synchronous(Synchronous::Normal)
        .max_size(8 << 30)
        .open()?;
    let (sink, guard) = HttpSink::builder()
        .endpoint(Endpoint::new("down", "http://127.0.0.1:9/")?.allow_private(true))
        .endpoint(Endpoint::new("other", "http://127.0.0.1:9/")?.allow_private(true))
        .spool(spool)
        .build()?;
    sink.endpoints().pause("down")?;
    sink.endpoints().pause("other")?;
    let dispatcher = Dispatcher::builder().sink("spool", sink.clone()).build();
    let user = deskhook::sample::user();
    let mut ticket = deskhook::sample::ticket();
    ticket.text = "x".repeat(1000);

    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (dispatcher, user, mut ticket) = (&dispatcher, &user, ticket.clone());
            scope.spawn(move || {
                for n in 0..backlog / 8 {
                    ticket.code = format!("T{thread}-{}", n % 100);
                    dispatcher.emit(Action::Comment, &ticket, user);
                }
            });
        }
    });
    println!(
        "backlog: {backlog} events for each endpoint, written in {:?}",
        started.elapsed()
    );

    let stop = AtomicBool::new(false);
    let quiet = std::thread::scope(|scope| {
        let emitting = scope.spawn(|| emit_until(&dispatcher, &ticket, &stop));
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        emitting.join().map_err(|_| "the emitting thread panicked")
    })?;
    println!("{}", summary("no removal", quiet));

    stop.store(false, Ordering::Relaxed);
    let (removal, took) = std::thread::scope(|scope| {
        let emitting = scope.spawn(|| emit_until(&dispatcher, &ticket, &stop));
        let started = Instant::now();
        let removed = sink.endpoints().remove("down");
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let waits = emitting
            .join()
            .map_err(|_| "the emitting thread panicked")?;
        removed?;
        Ok::<_, Box<dyn std::error::Error>>((waits, took))
    })?;
    println!("{}", summary("removal", removal));
    println!("removal of endpoint 'down' took {took:?}");
    drop((dispatcher, sink));
    // The paused endpoint's events stay in the spool, which goes with its directory.
    let _ = guard.shutdown(Duration::from_millis(100));
    Ok(())
}
