//! What the spool keeps and for how long: attempts and dead letters past their retention
//! are deleted, and a spool full of expired letters takes events again.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::Connection;

use super::tests::{WAIT, attempt_entry, letter};
use super::*;
use crate::delivery::lane::lane_for_test;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn database(dir: &Path) -> Connection {
    Connection::open(dir.join(super::super::DATABASE_FILE)).unwrap()
}

/// `failed_at` of the letter `id` set to `age` ago, as the writer writes it.
fn age_letter(conn: &Connection, id: &str, age: Duration) {
    let at = jiff::Timestamp::now().checked_sub(age).unwrap();
    let changed = conn
        .execute(
            "UPDATE dead_letters SET failed_at = ?1 WHERE id = ?2",
            rusqlite::params![format!("{at:.3}"), id],
        )
        .unwrap();
    assert_eq!(changed, 1, "letter {id}");
}

/// The attempts' sequence numbers, in order.
fn attempt_seqs(conn: &Connection) -> Vec<i64> {
    conn.prepare("SELECT seq FROM attempts ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn letter_ids(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT id FROM dead_letters ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A store on a spool in `dir` that keeps dead letters a day.
fn keeping_letters_a_day(dir: &Path) -> SpoolStore {
    let spool = Spool::builder(dir)
        .dead_letter_retention(DAY)
        .open()
        .unwrap();
    SpoolStore::start(spool).unwrap().0
}

#[test]
fn attempts_and_dead_letters_past_their_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = keeping_letters_a_day(dir.path());
    store.dead(None, None, letter("old", "create"));
    store.dead(None, None, letter("young", "create"));
    store.record_attempt(&attempt_entry(1, 10));
    store.record_attempt(&attempt_entry(2, 10));
    store.committed().unwrap();
    // The first commit's prune (the first after a start) runs once that commit answered:
    // the next commit comes once it has, and no prune of it is under way as the test ages
    // the rows and asks for the next.
    store.committed().unwrap();
    let conn = database(dir.path());
    age_letter(&conn, "old", DAY + Duration::from_secs(60));
    age_letter(&conn, "young", DAY - Duration::from_secs(3600));
    // The attempt retention is the delivery default's, 7 days.
    let eight_days = i64::try_from((8 * DAY).as_millis()).unwrap();
    let at = unix_ms(SystemTime::now()) - eight_days;
    conn.execute("UPDATE attempts SET at = ?1 WHERE seq = 1", [at])
        .unwrap();
    // The next commit past the minute prunes, once it has answered: the commit after it
    // comes once it has.
    store.core.pruned_at.store(0, Ordering::Release);
    store.record_attempt(&attempt_entry(3, 10));
    store.committed().unwrap();
    store.committed().unwrap();
    assert_eq!(letter_ids(&conn), ["young"]);
    assert_eq!(attempt_seqs(&conn), [2, 3]);
    store.shut();
}

#[test]
fn old_attempts_go_in_steps_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SpoolStore::start(Spool::open(dir.path()).unwrap())
        .unwrap()
        .0;
    // The writer's own pruning (after a commit, once a minute) is not due: the steps below
    // are the test's alone. (Due at the start, it ran after the commit had answered, and
    // took the old attempts first now and then.)
    store
        .core
        .pruned_at
        .store(unix_ms(SystemTime::now()), Ordering::Release);
    for seq in 1..=5 {
        store.record_attempt(&attempt_entry(seq, 10));
    }
    store.committed().unwrap();
    let conn = database(dir.path());
    let eight_days = i64::try_from((8 * DAY).as_millis()).unwrap();
    let now = unix_ms(SystemTime::now());
    conn.execute("UPDATE attempts SET at = ?1 - seq", [now - eight_days])
        .unwrap();
    conn.execute("UPDATE attempts SET at = ?1 WHERE seq = 5", [now])
        .unwrap();
    let left = || attempt_seqs(&conn);
    // The oldest at (the highest seq here) go first; a step that deletes as many as it may
    // says there may be more.
    assert!(!crate::spool::room::prune_attempts(
        &store.core,
        &conn,
        now,
        2
    ));
    assert_eq!(left(), [1, 2, 5]);
    assert!(!crate::spool::room::prune_attempts(
        &store.core,
        &conn,
        now,
        2
    ));
    assert_eq!(left(), [5]);
    assert!(crate::spool::room::prune_attempts(
        &store.core,
        &conn,
        now,
        2
    ));
    assert_eq!(left(), [5]);
    store.shut();
}

#[test]
fn old_dead_letters_go_in_steps_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = keeping_letters_a_day(dir.path());
    for id in ["a", "b", "c", "d"] {
        store.dead(None, None, letter(id, "create"));
    }
    store.committed().unwrap();
    // The writer's own prune after its first commit is over (see the test above): the
    // steps below are the only ones.
    store.committed().unwrap();
    let conn = database(dir.path());
    // c the oldest, then a, then b; d within the retention.
    for (id, hours) in [("a", 30), ("b", 26), ("c", 40), ("d", 2)] {
        age_letter(&conn, id, Duration::from_secs(hours * 3600));
    }
    let now = unix_ms(SystemTime::now());
    let prune = |step| crate::spool::room::prune_letters(&store.core, &conn, now, step);
    assert_eq!(prune(2), 2, "a step deletes as many as it may");
    assert_eq!(letter_ids(&conn), ["b", "d"]);
    assert_eq!(prune(2), 1);
    assert_eq!(prune(2), 0);
    assert_eq!(letter_ids(&conn), ["d"]);
    store.shut();
}

#[test]
fn a_spool_full_of_expired_dead_letters_takes_events_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::builder(dir.path())
        .max_size(256 * 1024)
        .dead_letter_retention(DAY)
        .open()
        .unwrap();
    let store = SpoolStore::start(spool).unwrap().0;
    let lane = lane_for_test("crm");
    let big = |id: String| DeadLetter {
        body: serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(8192)))
            .unwrap(),
        ..letter(&id, "create")
    };
    let mut written = Vec::new();
    while store.core.used.load(Ordering::Acquire) < 256 * 1024 {
        assert!(written.len() < 100, "the letters never filled the spool");
        let id = format!("letter-{:03}", written.len());
        store.dead(None, None, big(id.clone()));
        store.committed().unwrap();
        written.push(id);
    }
    let conn = database(dir.path());
    let full = store.append(vec![(lane.clone(), Job::for_test("T1", 0))]);
    assert!(
        full.wait(WAIT).is_err(),
        "a spool full of letters refuses events"
    );
    // They expire: the next event is taken, though the last prune was under a minute ago.
    for id in &written {
        age_letter(&conn, id, 2 * DAY);
    }
    store
        .append(vec![(lane.clone(), Job::for_test("T1", 1))])
        .wait(WAIT)
        .unwrap();
    assert_eq!(lane.rows.committed().1, 1);
    assert!(letter_ids(&conn).is_empty());
    store.shut();
}

#[test]
fn a_retention_of_zero_is_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Spool::builder(dir.path())
        .dead_letter_retention(Duration::ZERO)
        .open()
        .unwrap_err()
        .to_string();
    assert!(refused.contains("dead_letter_retention"), "{refused}");
    assert!(refused.contains("e.g. \"30d\""), "{refused}");
}
