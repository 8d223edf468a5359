//! An endpoint disabled by a 410 on an async runtime's thread: what it had queued moves to
//! the dead letters off that thread, so that a spool's writer held up holds up no task.

use std::time::Duration;

use super::tests::{attempt, emit, spooled_engine, status};

#[test]
fn a_410_settled_on_a_runtime_thread_does_not_wait_for_the_spools_writer() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = spooled_engine(&dir);
    // Three events on disk (each emit returns once it is written); the first is attempted.
    emit(&engine, &["T1", "T2", "T3"]);
    let first = attempt(&engine);
    // Another connection holds the database: the writer's next commit waits for it, up to
    // its busy timeout (5 s), then fails.
    let holder = rusqlite::Connection::open(dir.path().join(crate::spool::DATABASE_FILE))
        .expect("the spool's database opens");
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("the database is held");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    // Answered 410 on the runtime's thread: settled without waiting for the writer (which
    // would wait out its timeout and fail to move the other two).
    runtime.block_on(async move { first.finish(status(410), Duration::ZERO) });
    holder
        .execute_batch("COMMIT")
        .expect("the database is let go");
    engine
        .flush(Duration::from_secs(10))
        .expect("the letters are written");
    let stats = crate::spool::inspect(dir.path()).expect("the spool reads");
    assert_eq!(
        (stats.pending, stats.dead_letters),
        (0, 3),
        "its own letter and the two queued events' moved"
    );
}
