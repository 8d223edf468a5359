//! The spool writer's tests: group commits, receipts, unreadable rows, outcomes written
//! back, a removed endpoint's rows.

use super::*;
use crate::delivery::backlog::{LetterOwner, Settling};
use crate::delivery::lane::lane_for_test;
use crate::spool::load::{LoadRoom, Loaded, RowRange};
use crate::spool::shared::{MAX_UNCOMMITTED, MAX_UNCOMMITTED_BYTES};

fn store(dir: &Path, max_batch: usize) -> SpoolStore {
    let spool = Spool::builder(dir).max_batch(max_batch).open().unwrap();
    SpoolStore::start(spool).unwrap().0
}

pub(super) const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A store holding three rows of endpoint "crm", ticket "A" (rows 1 to 3).
fn store_with_three_rows(dir: &Path) -> (SpoolStore, Arc<Lane>) {
    let store = store(dir, 1024);
    let lane = lane_for_test("crm");
    let jobs = (1..=3)
        .map(|i| (lane.clone(), Job::for_test("A", i)))
        .collect();
    store.append(jobs).wait(WAIT).unwrap();
    (store, lane)
}

/// Eight threads append 50 events each, one at a time, waiting for each commit.
fn commits_for_concurrent_emits(store: &SpoolStore, lane: &Arc<Lane>) -> u64 {
    std::thread::scope(|scope| {
        for t in 0..8 {
            scope.spawn(move || {
                for i in 0..50 {
                    let job = Job::for_test(&format!("T{t}"), i);
                    store.append(vec![(lane.clone(), job)]).wait(WAIT).unwrap();
                }
            });
        }
    });
    store.commits()
}

fn all_rows(store: &SpoolStore, lane: &Arc<Lane>) -> Loaded {
    let everything = RowRange {
        after: 0,
        through: None,
        ticket: None,
    };
    store.load(lane, everything, 10_000, ROOMY).unwrap()
}

/// Memory enough for any load.
const ROOMY: LoadRoom = LoadRoom {
    free: usize::MAX,
    whole: usize::MAX,
};

#[test]
fn a_load_reads_the_rows_its_memory_has_room_for_and_those_that_never_fit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    let jobs = (0..5)
        .map(|n| (lane.clone(), Job::for_test("T", n)))
        .collect();
    store.append(jobs).wait(WAIT).unwrap();
    let everything = || RowRange {
        after: 0,
        through: None,
        ticket: None,
    };
    // Each test job is an empty body and its bookkeeping.
    let job = crate::delivery::JOB_OVERHEAD;
    let two = LoadRoom {
        free: 2 * job + job / 2,
        whole: usize::MAX,
    };
    let loaded = store.load(&lane, everything(), 10, two).unwrap();
    assert_eq!((loaded.jobs.len(), loaded.rows), (2, 2));
    assert_eq!(loaded.stopped_at, Some(loaded.through + 1));
    // No room at all: nothing is read, and the load says where it stopped.
    let none = LoadRoom {
        free: 0,
        whole: usize::MAX,
    };
    let loaded = store.load(&lane, everything(), 10, none).unwrap();
    assert_eq!((loaded.jobs.len(), loaded.through), (0, 0));
    assert!(loaded.stopped_at.is_some());
    // Rows no budget could hold are read all the same (they go to the dead letters).
    let never = LoadRoom {
        free: 0,
        whole: job - 1,
    };
    let loaded = store.load(&lane, everything(), 10, never).unwrap();
    assert_eq!((loaded.jobs.len(), loaded.stopped_at), (5, None));
    store.shut();
}

#[test]
fn concurrent_emits_share_commits_and_rows_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    let commits = commits_for_concurrent_emits(&store, &lane);
    assert!(commits < 300, "{commits} transactions for 400 events");
    assert_eq!(lane.rows.committed().1, 400);
    let jobs = all_rows(&store, &lane).jobs;
    assert_eq!(jobs.len(), 400);
    // Per ticket, rows come back in the order each thread appended them.
    for t in 0..8 {
        let key = format!("T{t}");
        let rows: Vec<i64> = jobs
            .iter()
            .filter(|(job, _)| **job.key() == *key)
            .filter_map(|(job, _)| job.row)
            .collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "{key}: {rows:?}");
        assert_eq!(rows.len(), 50);
    }
}

#[test]
fn an_append_the_writer_drops_unsettled_is_counted_as_dropped_and_its_receipt_fails() {
    // As a writer that panics with a batch in hand drops it.
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    // As the engine counts a job it hands to the spool.
    lane.rows.pending.fetch_add(1, Ordering::AcqRel);
    let state = Arc::new(ReceiptState::default());
    let receipt = Receipt::new(state.clone());
    drop(Append::new(
        &store.core,
        vec![(lane.clone(), Job::for_test("T1", 0))],
        state,
    ));
    assert_eq!(
        lane.rows.pending.load(Ordering::Acquire),
        0,
        "counted as dropped"
    );
    let err = receipt
        .wait(std::time::Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(err.contains("writer stopped"), "{err}");
    // One that was settled is not counted again.
    lane.rows.pending.fetch_add(1, Ordering::AcqRel);
    let state = Arc::new(ReceiptState::default());
    let append = Append::new(
        &store.core,
        vec![(lane.clone(), Job::for_test("T2", 0))],
        state,
    );
    append.settle(Ok(()));
    drop(append);
    assert_eq!(lane.rows.pending.load(Ordering::Acquire), 1);
    // Nor one whose jobs were committed (a panic after the commit): its receipt says
    // durable.
    let state = Arc::new(ReceiptState::default());
    let receipt = Receipt::new(state.clone());
    let mut append = Append::new(
        &store.core,
        vec![(lane.clone(), Job::for_test("T3", 0))],
        state,
    );
    append.written();
    drop(append);
    assert_eq!(lane.rows.pending.load(Ordering::Acquire), 1);
    receipt.wait(std::time::Duration::ZERO).expect("durable");
}

#[test]
fn an_unreadable_row_goes_to_the_dead_letters_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    let writer = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    writer
        .execute("UPDATE events SET id = 'not-an-id' WHERE row = 2", [])
        .unwrap();
    let loaded = all_rows(&store, &lane);
    assert_eq!((loaded.rows, loaded.bad, loaded.through), (3, 1, 3));
    let rows: Vec<i64> = loaded.jobs.iter().map(|(j, _)| j.row.unwrap()).collect();
    assert_eq!(rows, [1, 3]);
    assert!(loaded.unknown.is_empty());
    store.shut();
    let letters = super::super::schema::dead_letters(&writer).unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("bad event id 'not-an-id'"),
        "{letters:?}"
    );
    assert_eq!(letters[0].url, "http://127.0.0.1:9/");
}

#[test]
fn a_row_of_an_event_type_this_build_does_not_know_stays_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    let writer = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    writer
        .execute(
            "UPDATE events SET action = 'zenlix.teleport' WHERE row = 2",
            [],
        )
        .unwrap();
    let loaded = all_rows(&store, &lane);
    assert_eq!((loaded.rows, loaded.bad, loaded.through), (3, 0, 3));
    let rows: Vec<i64> = loaded.jobs.iter().map(|(j, _)| j.row.unwrap()).collect();
    assert_eq!(rows, [1, 3]);
    let unknown: Vec<(i64, &str)> = loaded.unknown.iter().map(|u| (u.row, &*u.ticket)).collect();
    assert_eq!(unknown, [(2, "A")]);
    store.shut();
    assert!(
        super::super::schema::dead_letters(&writer)
            .unwrap()
            .is_empty()
    );
    let left: i64 = writer
        .query_row("SELECT count(*) FROM events WHERE row = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(left, 1);
}

#[test]
fn a_batch_of_one_commits_each_event_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1);
    assert_eq!(
        commits_for_concurrent_emits(&store, &lane_for_test("crm")),
        400
    );
}

#[test]
fn a_wait_for_what_was_sent_comes_back_once_appends_past_a_batch_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1);
    let lane = lane_for_test("crm");
    // The database held: the writer waits in its first commit while three appends and the
    // wait for them queue up behind it.
    let holder = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let receipts: Vec<_> = (0..3)
        .map(|n| store.append(vec![(lane.clone(), Job::for_test("T1", n))]))
        .collect();
    let (done, written) = mpsc::sync_channel(1);
    store.send(Op::Written {
        done,
        move_of: None,
    });
    holder.execute_batch("COMMIT").unwrap();
    // Batches of one: the wait is answered with the third append's, not the second's.
    written.recv().unwrap().unwrap();
    assert_eq!(lane.rows.committed().1, 3);
    for receipt in receipts {
        receipt.wait(WAIT).unwrap();
    }
    store.shut();
}

#[test]
fn outcomes_are_written_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    let receipt = store.append(vec![
        (lane.clone(), Job::for_test("A", 1)),
        (lane.clone(), Job::for_test("A", 2)),
        (lane.clone(), Job::for_test("B", 3)),
    ]);
    receipt.wait(WAIT).unwrap();
    let mut jobs = all_rows(&store, &lane).jobs.into_iter();
    let (mut first, _) = jobs.next().unwrap();
    let (second, _) = jobs.next().unwrap();
    first.attempts = 2;
    first.last_status = Some(503);
    let due = SystemTime::now() + std::time::Duration::from_secs(60);
    store.attempted(&first, due);
    store.delivered(second.row.unwrap());
    store.shut();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let rows: Vec<(u32, Option<u16>, i64)> = conn
        .prepare("SELECT attempts, last_status, next_at FROM events ORDER BY row")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "the delivered row is gone");
    assert_eq!((rows[0].0, rows[0].1), (2, Some(503)));
    assert!(
        (rows[0].2 - unix_ms(due)).abs() < 2,
        "next attempt kept to the ms"
    );
    assert_eq!((rows[1].0, rows[1].2), (0, 0));
}

#[test]
fn a_removed_lanes_rows_and_later_appends_go_to_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    // Row 2 is in flight: it stays for its attempt to settle.
    lane.closed.store(true, Ordering::SeqCst);
    lock(&lane.state).closing = Some(crate::delivery::lane::Closing::Removed);
    let moved = store.dead_all(&lane, vec![2], "endpoint removed");
    assert_eq!(moved.recv().unwrap(), Ok(2));
    store
        .append(vec![(lane.clone(), Job::for_test("A", 4))])
        .wait(WAIT)
        .unwrap();
    assert_eq!(
        store.counts("crm", 0).unwrap(),
        (2, 1),
        "only the row in flight"
    );
    store.shut();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let letters = super::super::schema::dead_letters(&conn).unwrap();
    assert_eq!(letters.len(), 3);
    assert!(letters.iter().all(|l| l.reason == "endpoint removed"));
}

/// Rows in a lane's move of three steps: two full ones and a half.
const THREE_STEPS: usize = crate::spool::moving::MOVE_STEP_ROWS * 5 / 2;

/// A store holding [`THREE_STEPS`] rows of endpoint "crm" (rows 1 to 2,500), each its own
/// ticket named by its number ("00000" to "02499"); the lane removed.
fn store_with_a_removed_backlog(dir: &Path) -> (SpoolStore, Arc<Lane>) {
    let store = store(dir, 1024);
    let lane = lane_for_test("crm");
    for chunk in 0..THREE_STEPS / 500 {
        let jobs = (0..500)
            .map(|n| {
                let n = chunk * 500 + n;
                (lane.clone(), Job::for_test(&format!("{n:05}"), n as u64))
            })
            .collect();
        store.append(jobs).wait(WAIT).unwrap();
    }
    lane.closed.store(true, Ordering::SeqCst);
    lock(&lane.state).closing = Some(crate::delivery::lane::Closing::Removed);
    (store, lane)
}

#[test]
fn a_removed_lanes_rows_move_in_steps_and_a_wait_for_the_move_waits_for_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_a_removed_backlog(dir.path());
    let rows = THREE_STEPS;
    let commits = store.commits();
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    // A resume after a 410 waits so: sent after the move, it is answered after its end.
    store.committed_after_move("crm").unwrap();
    assert_eq!(
        moved.try_recv().unwrap(),
        Ok(rows),
        "told once the move is done"
    );
    assert_eq!(
        store.commits() - commits,
        4,
        "one commit per step of {} rows, and the wait's",
        crate::spool::moving::MOVE_STEP_ROWS
    );
    assert_eq!(store.counts("crm", 0).unwrap().1, 0, "no row left");
    store.shut();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let letters = super::super::schema::dead_letters(&conn).unwrap();
    assert_eq!(letters.len(), rows);
    // Each ticket is the row's number.
    let tickets: Vec<&str> = letters.iter().map(|l| l.ticket.as_str()).collect();
    assert!(tickets.is_sorted(), "in the order of the rows");
}

/// A move under way holds up no other change: a wait for what was sent before it is
/// answered between the move's steps, and one for the move's end only once it has ended.
#[test]
fn a_move_under_way_holds_up_only_the_waits_for_its_end() {
    use std::sync::mpsc::TryRecvError;
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_a_removed_backlog(dir.path());
    // The move stops after its first step, until the test lets it go on.
    let paused = &store.core.moves_paused;
    paused.store(true, Ordering::SeqCst);
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    let (done, after_move) = mpsc::sync_channel(1);
    store.send(Op::Written {
        done,
        move_of: Some("crm".into()),
    });
    // Another endpoint's change, and a wait for it, sent after both.
    store.set_paused("erp", true);
    store.committed().unwrap();
    // Sent after the first step's commit: taken once it is written.
    store.committed().unwrap();
    let step = crate::spool::moving::MOVE_STEP_ROWS;
    assert_eq!(
        store.counts("crm", 0).unwrap().1,
        (THREE_STEPS - step) as u64,
        "the first step went, and the move waits"
    );
    assert_eq!(moved.try_recv(), Err(TryRecvError::Empty));
    assert!(
        matches!(after_move.try_recv(), Err(TryRecvError::Empty)),
        "the wait for the move is held"
    );
    paused.store(false, Ordering::SeqCst);
    // Wakes the writer, which waits for an op.
    store.committed().unwrap();
    assert_eq!(after_move.recv().unwrap().ok(), Some(()));
    assert_eq!(
        moved.try_recv().unwrap(),
        Ok(THREE_STEPS),
        "told of the move's end before the wait for it"
    );
    assert_eq!(store.counts("crm", 0).unwrap().1, 0, "no row left");
    store.shut();
}

#[path = "writer_room_tests.rs"]
mod room;

/// A store that holds 256 KiB at most.
pub(super) fn small_store(dir: &Path) -> SpoolStore {
    let spool = Spool::builder(dir).max_size(256 * 1024).open().unwrap();
    SpoolStore::start(spool).unwrap().0
}

/// An attempt of the attempt log, with a response of `response` bytes.
pub(super) fn attempt_entry(seq: u64, response: usize) -> AttemptEntry {
    AttemptEntry {
        seq,
        at: SystemTime::now(),
        event_id: format!("event-{seq}").into(),
        endpoint: "crm".into(),
        tenant: None,
        event_type: deskhook::EventType::from_wire("create").unwrap(),
        ticket: "T1".into(),
        attempt: 1,
        outcome: crate::delivery::AttemptOutcome::Delivered,
        status: Some(200),
        error: None,
        duration: std::time::Duration::from_millis(1),
        response: vec![b'x'; response].into_boxed_slice(),
        next_attempt: None,
    }
}

#[test]
fn a_spool_full_of_attempts_drops_the_oldest_for_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let lane = lane_for_test("crm");
    let entry = |seq: u64| attempt_entry(seq, 1024);
    // Delivered events whose responses alone fill the spool.
    for seq in 1..=400 {
        store.record_attempt(&entry(seq));
    }
    store.committed().unwrap();
    assert!(
        store.core.used.load(Ordering::Acquire) >= 256 * 1024,
        "the attempts fill it"
    );
    let count = || {
        let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
        conn.query_row("SELECT count(*) FROM attempts", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let before = count();
    // An event is taken all the same: the older attempts make room.
    store
        .append(vec![(lane.clone(), Job::for_test("T1", 0))])
        .wait(WAIT)
        .unwrap();
    assert_eq!(lane.rows.committed().1, 1);
    let after = count();
    assert!(after < before && after > 0, "{before} → {after}");
    // The answer that let the log give way is not kept for the next full spool: what is
    // left of the log is judged afresh.
    assert_eq!(store.core.give_way_answer.load(), (0, false));
    store.shut();
}

/// A dead letter of endpoint "crm", ticket "T1", given up after a 400 just now.
pub(super) fn letter(id: &str, action: &str) -> DeadLetter {
    DeadLetter {
        id: id.into(),
        endpoint: "crm".into(),
        url: String::new(),
        tenant: None,
        action: action.into(),
        ticket: "T1".into(),
        attempts: 1,
        last_status: Some(400),
        last_error: None,
        reason: "400".into(),
        failed_at: crate::delivery::now_rfc3339(),
        body: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
    }
}

#[test]
fn a_dead_letter_keeps_its_event_types_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    for (id, action) in [("a", "iqchannels.message_created"), ("b", "create")] {
        store.dead(None, None, letter(id, action));
    }
    store.committed().unwrap();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let types: Vec<String> = conn
        .prepare("SELECT content_type FROM dead_letters ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // What a replay from the spool sends.
    assert_eq!(
        types,
        ["application/json; charset=utf-8", "application/json"]
    );
    store.shut();
}

#[cfg(unix)]
#[test]
fn the_spool_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let store = store(&spool_dir, 1024);
    let lane = lane_for_test("crm");
    store
        .append(vec![(lane, Job::for_test("T1", 0))])
        .wait(WAIT)
        .unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spool_dir), 0o700);
    let db = spool_dir.join(super::super::DATABASE_FILE);
    assert_eq!(mode(&db), 0o600);
    let mut wal = db.into_os_string();
    wal.push("-wal");
    assert_eq!(mode(Path::new(&wal)), 0o600, "the write-ahead log too");
    store.shut();
}

#[test]
fn a_resumed_endpoints_rows_waiting_for_a_retry_are_due_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    let other = lane_for_test("erp");
    store
        .append(vec![
            (lane.clone(), Job::for_test("A", 1)),
            (other.clone(), Job::for_test("B", 2)),
        ])
        .wait(WAIT)
        .unwrap();
    let later = SystemTime::now() + std::time::Duration::from_secs(3600);
    for (job, _) in all_rows(&store, &lane)
        .jobs
        .into_iter()
        .chain(all_rows(&store, &other).jobs)
    {
        store.attempted(&job, later);
    }
    store.hurry("crm");
    store.committed().unwrap();
    let due = |lane: &Arc<Lane>| all_rows(&store, lane).jobs[0].1;
    assert_eq!(due(&lane), None, "due now");
    assert!(due(&other).is_some(), "another endpoint's wait stays");
    store.shut();
}

/// Appends events of `lane` to `store` until it refuses them (full).
fn fill_with_events(store: &SpoolStore, lane: &Arc<Lane>) {
    for batch in 0..200 {
        let jobs = (0..100)
            .map(|n| (lane.clone(), Job::for_test(&format!("T{batch}-{n}"), n)))
            .collect();
        if store.append(jobs).wait(WAIT).is_err() {
            return;
        }
    }
    panic!("the spool never filled up");
}

#[test]
fn a_spool_full_of_events_keeps_its_attempt_log() {
    let dir = tempfile::tempdir().unwrap();
    // Its size goes by 4 KiB pages: past a limit half a page over 256 KiB, a full spool is
    // at least 2 KiB over it, more than the attempts below (about 1.1 KiB by the writer's
    // reckoning) could free, wherever the events' pages fall.
    let spool = Spool::builder(dir.path())
        .max_size(256 * 1024 + 2048)
        .open()
        .unwrap();
    let store = SpoolStore::start(spool).unwrap().0;
    let lane = lane_for_test("crm");
    for seq in 1..=10 {
        store.record_attempt(&attempt_entry(seq, 1));
    }
    store.committed().unwrap();
    // Events until the spool refuses them: the attempts could not have made the room.
    fill_with_events(&store, &lane);
    store.committed().unwrap();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let attempts: i64 = conn
        .query_row("SELECT count(*) FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 10, "the history of what is failing stays");
    store.shut();
}

#[test]
fn a_spool_full_of_attempts_makes_room_for_a_dead_letter_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    for seq in 1..=400 {
        store.record_attempt(&attempt_entry(seq, 1024));
    }
    store.committed().unwrap();
    assert!(store.core.used.load(Ordering::Acquire) >= 256 * 1024);
    // A letter of an event the spool never held (over max_payload) takes the attempts'
    // room, as an event would.
    store.dead(None, None, letter("oversized", "create"));
    store.committed().unwrap();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let letters: i64 = conn
        .query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(letters, 1);
    store.shut();
}

#[test]
fn a_full_spool_drops_dead_letters_of_events_it_never_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let lane = lane_for_test("crm");
    fill_with_events(&store, &lane);
    // A letter of an event over max_payload (no row): its body would only add to a full
    // spool. One of an event in the spool moves its row, and is written.
    let big = |id: &str| DeadLetter {
        body: serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(65536)))
            .unwrap(),
        ..letter(id, "create")
    };
    store.dead(None, None, big("oversized"));
    let row = all_rows(&store, &lane).rows;
    let (job, _) = all_rows(&store, &lane).jobs.remove(0);
    store.dead(None, job.row, letter("in-the-spool", "create"));
    store.committed().unwrap();
    let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
    let letters: Vec<String> = conn
        .prepare("SELECT id FROM dead_letters ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(letters, ["in-the-spool"]);
    assert_eq!(all_rows(&store, &lane).rows, row - 1, "its row moved");
    store.shut();
}

#[test]
fn the_write_ahead_log_is_cut_back_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let spool = crate::spool::Spool::open(dir.path()).unwrap();
    let limit: i64 = spool
        .conn
        .query_row("PRAGMA journal_size_limit", [], |r| r.get(0))
        .unwrap();
    // SQLite's default, -1, keeps the log at the largest size it ever reached.
    assert_eq!(limit, super::super::schema::WAL_SIZE_LIMIT);
}

/// A page of the console being read (the console's connection held) does not hold up a
/// lane's load of its rows, which happens under the lane's lock.
#[test]
fn a_console_page_being_read_does_not_hold_up_a_load() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    let page = lock(&store.core.browser);
    let (sent, loaded) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = sent.send(all_rows(&store, &lane).rows);
            // And the counts a new endpoint starts from.
            let _ = sent.send(store.counts("crm", 0).unwrap().1);
        });
        // Waits only when the load waits for the page (the test then fails).
        let rows = loaded.recv_timeout(WAIT);
        let counted = loaded.recv_timeout(WAIT);
        drop(page);
        assert_eq!((rows, counted), (Ok(3), Ok(3)));
    });
}

#[path = "writer_failure_tests.rs"]
mod failures;

#[test]
fn the_pending_events_of_a_gone_endpoint_move_to_the_dead_letters_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, crm) = store_with_three_rows(dir.path());
    let erp = lane_for_test("erp");
    store
        .append(vec![(erp, Job::for_test("B", 4))])
        .wait(WAIT)
        .unwrap();
    store.shut();
    drop((store, crm));
    let mut spool = Spool::builder(dir.path()).existing(true).open().unwrap();
    let moved = spool
        .dead_letter_pending(&["crm".to_owned()], "its endpoint is gone")
        .unwrap();
    assert_eq!(moved, 3);
    let stats = spool.stats().unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (1, 3));
    assert_eq!(stats.endpoints, [("erp".to_owned(), 1)]);
    let letters = spool.dead_letters().unwrap();
    assert!(
        letters
            .iter()
            .all(|l| l.endpoint == "crm" && l.ticket == "A" && l.reason == "its endpoint is gone"),
        "{letters:?}"
    );
}

/// The read-only connections (the engine's loads, the console's pages) wait a second for a
/// passing lock rather than fail at once.
#[test]
fn the_read_only_connections_wait_for_a_passing_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    for conn in [&store.core.reader, &store.core.browser] {
        let waits: i64 = lock(conn)
            .pragma_query_value(None, "busy_timeout", |row| row.get(0))
            .unwrap();
        assert_eq!(waits, 1000);
    }
    // So does a reader from outside the sink (`deskhook spool stats`), a little longer.
    let (outside, _) = crate::spool::read_only(dir.path()).unwrap();
    let waits: i64 = outside
        .pragma_query_value(None, "busy_timeout", |row| row.get(0))
        .unwrap();
    assert_eq!(waits, 5000);
    store.shut();
}

#[test]
fn a_writer_that_panics_keeps_the_spool_locked_until_the_sink_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    // The store's own writer stays (its channel open) until the check below: ended, it
    // would release the lock as any writer that ends without a panic does.
    let open = lock(&store.core.ops).clone().unwrap();
    // The lanes would go on delivering what they read: no one else may take the spool.
    let panicked = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let (_tx, rx) = mpsc::channel::<Op>();
                let _end = WriterEnd {
                    core: &store.core,
                    ops: &rx,
                };
                panic!("the writer panics");
            })
            .join()
    });
    assert!(panicked.is_err());
    let err = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("already"), "{err}");
    // Once the sink (here its store) is gone, it is free.
    drop(open);
    store.shut();
    drop(store);
    assert!(Spool::open(dir.path()).is_ok());
}

#[test]
fn the_rows_given_up_in_a_range_are_counted_for_a_tickets_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    lock(&store.core.given_up).extend([2, 6, 9]);
    assert_eq!(store.given_up_within(1, 6), 2);
    assert_eq!(store.given_up_within(3, 5), 0);
    assert_eq!(store.given_up_within(9, 9), 1);
    // An empty range, not a panic.
    assert_eq!(store.given_up_within(7, 3), 0);
    store.shut();
}
