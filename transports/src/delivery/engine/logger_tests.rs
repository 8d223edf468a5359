//! A `log` logger that panics while an attempt is settled (one writing to a closed pipe
//! does): the event's letter is kept, its ticket's next event goes, the attempt's slot of
//! the pool is released, and a flush returns.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::tests::{attempt, emit, endpoint, engine, status};

/// The endpoint whose records the logger panics on; no other test names it, so that the
/// logger, global to this test binary, disturbs no other test.
const ENDPOINT: &str = "the-logger-panics-on-this-endpoint";

/// Panics on a warning about [`ENDPOINT`], takes every other record without a word.
struct Panicking;

impl log::Log for Panicking {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) && record.args().to_string().contains(ENDPOINT) {
            panic!("the logger's pipe is closed");
        }
    }

    fn flush(&self) {}
}

static LOGGER: Panicking = Panicking;

#[test]
fn a_logger_that_panics_in_settle_holds_no_ticket_and_loses_no_letter() {
    // Set by whichever of this file's tests comes first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint(ENDPOINT, Duration::from_secs(60))], 4, &dir);
    emit(&engine, &["T1", "T1"]);
    let first = attempt(&engine);
    // A 400 gives the event up: its dead letter's warning panics in the logger, which is
    // let be (the letter is written first).
    let settled = catch_unwind(AssertUnwindSafe(|| {
        first.finish(status(400), Duration::ZERO)
    }));
    assert!(settled.is_ok(), "the logger's panic stays in the warning");
    // The ticket's next event goes, and the flush sees every job finished.
    attempt(&engine).finish(status(204), Duration::ZERO);
    engine
        .flush(Duration::from_secs(5))
        .expect("every job is finished");
    let letters = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("the letters");
    assert_eq!(
        letters.lines().count(),
        1,
        "the given-up event's letter: {letters}"
    );
    let stats = engine
        .registry()
        .get(ENDPOINT)
        .expect("the endpoint")
        .stats(None);
    assert_eq!((stats.delivered, stats.dead_lettered), (1, 1), "{stats:?}");
}

/// A 410 settled while the logger panics (the endpoint's disabling is logged): the attempt's
/// slot of the pool is released all the same, and the event is in the dead letters.
#[test]
fn a_logger_that_panics_on_a_410_holds_no_slot() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint(ENDPOINT, Duration::from_secs(60))], 4, &dir);
    emit(&engine, &["T1"]);
    let first = attempt(&engine);
    assert_eq!(engine.pool().in_flight(), 1);
    // The disabling's own warning panics, out of settle: the end of the attempt runs as it
    // unwinds.
    let settled = catch_unwind(AssertUnwindSafe(|| {
        first.finish(status(410), Duration::ZERO)
    }));
    assert!(settled.is_err(), "the logger panicked");
    assert_eq!(engine.pool().in_flight(), 0, "the slot is back");
    engine
        .flush(Duration::from_secs(5))
        .expect("the job is finished");
    let letters = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("the letters");
    assert_eq!(letters.lines().count(), 1, "{letters}");
}

/// Whatever panics in `settle` (here a stand-in, as it takes the lane's lock), the attempt's
/// slot of the pool is released: a slot never released would shrink the sink's limit for
/// good.
#[test]
fn a_panic_in_settle_releases_the_attempts_slot() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 4, &dir);
    emit(&engine, &["T1"]);
    let first = attempt(&engine);
    assert_eq!(engine.pool().in_flight(), 1);
    super::tests::BEFORE_SETTLE_LOCK.set(Some(Box::new(|| panic!("a bug in settle"))));
    let settled = catch_unwind(AssertUnwindSafe(|| {
        first.finish(status(204), Duration::ZERO)
    }));
    assert!(settled.is_err(), "the stand-in panicked");
    assert_eq!(engine.pool().in_flight(), 0, "the slot is back");
}

/// A letter that cannot be written goes whole to the log and is counted as dropped; a
/// logger that panics on it loses the line, not the count, nor the ticket's next event.
#[test]
fn a_logger_that_panics_on_a_lost_letter_loses_no_count() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint(ENDPOINT, Duration::from_secs(60))], 4, &dir);
    // The dead-letter file cannot be opened: a folder has its name now.
    let file = dir.path().join("dead.jsonl");
    let _ = std::fs::remove_file(&file);
    std::fs::create_dir(&file).expect("a folder in its place");
    emit(&engine, &["T1", "T1"]);
    let first = attempt(&engine);
    let settled = catch_unwind(AssertUnwindSafe(|| {
        first.finish(status(400), Duration::ZERO)
    }));
    assert!(settled.is_ok(), "the logger's panic stays in the log call");
    let stats = || {
        engine
            .registry()
            .get(ENDPOINT)
            .expect("the endpoint")
            .stats(None)
    };
    assert_eq!(stats().dropped, 1, "{:?}", stats());
    // The ticket's next event goes, and the flush sees every job finished.
    attempt(&engine).finish(status(204), Duration::ZERO);
    engine
        .flush(Duration::from_secs(5))
        .expect("every job is finished");
    assert_eq!(stats().delivered, 1);
}
