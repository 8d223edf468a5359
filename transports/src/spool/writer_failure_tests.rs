//! The spool writer's tests of writes that fail (as on a full disk): releases, dead
//! letters and registry changes whose transaction fails, outcomes kept and given up.

use super::*;

/// A row whose outcome was given up (the engine finished its job) stays on disk when its
/// endpoint is removed, for the next start: the move does not count it a second time.
#[test]
fn a_removal_leaves_the_rows_of_outcomes_given_up_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    // Row 1 was delivered and row 2 dead-lettered, and neither outcome could be written.
    crate::spool::again::lost(
        &store.core,
        &[
            Op::Delivered(1),
            Op::Dead {
                lane: Some(lane.clone()),
                hold: None,
                row: Some(2),
                letter: letter("2", "create"),
            },
        ],
    );
    lane.closed.store(true, Ordering::SeqCst);
    lock(&lane.state).closing = Some(crate::delivery::lane::Closing::Removed);
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    assert_eq!(moved.recv().unwrap(), Ok(1), "row 3 only");
    assert_eq!(store.counts("crm", 0).unwrap(), (2, 2), "rows 1 and 2 wait");
    store.shut();
}

#[test]
fn a_release_whose_write_fails_says_how_many_rows_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    // A write of dead letters that fails (as on a full disk).
    Connection::open(dir.path().join(crate::spool::DATABASE_FILE))
        .unwrap()
        .execute("DROP TABLE dead_letters", [])
        .unwrap();
    let moved = store.dead_all(&lane, vec![2], "endpoint removed");
    assert_eq!(
        moved.recv().unwrap(),
        Err((0, 2)),
        "the rows not in flight, left"
    );
    assert_eq!(store.counts("crm", 0).unwrap().0, 3, "all still on disk");
    store.shut();
}

/// The rows a failed release left were finished by its caller: a later release (the
/// endpoint removed after the 410 whose release failed) leaves them on disk for the next
/// start, and moves and counts only the others.
#[test]
fn rows_a_failed_release_left_are_not_moved_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    let db = Connection::open(dir.path().join(crate::spool::DATABASE_FILE)).unwrap();
    let table: String = db
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'dead_letters'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute("DROP TABLE dead_letters", []).unwrap();
    let moved = store.dead_all(&lane, vec![2], "410 Gone");
    assert_eq!(moved.recv().unwrap(), Err((0, 2)), "rows 1 and 3 left");
    // The disk has room again; row 2's attempt ended, and the endpoint is removed.
    db.execute(&table, []).unwrap();
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    assert_eq!(moved.recv().unwrap(), Ok(1), "row 2 only");
    assert_eq!(store.counts("crm", 0).unwrap(), (3, 2), "rows 1 and 3 wait");
    store.shut();
}

/// A lane's move whose second step fails (as on a full disk) says how far it went: the
/// first step's rows are dead letters, the others stay on disk for the next start.
#[test]
fn a_move_cut_short_by_a_failed_step_says_how_many_rows_went_and_how_many_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_a_removed_backlog(dir.path());
    let step = crate::spool::moving::MOVE_STEP_ROWS;
    // The first row of the second step cannot be written.
    Connection::open(dir.path().join(crate::spool::DATABASE_FILE))
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER full AFTER INSERT ON dead_letters WHEN NEW.ticket = '{step:05}' \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
        ))
        .unwrap();
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    assert_eq!(moved.recv().unwrap(), Err((step, THREE_STEPS - step)));
    assert_eq!(
        store.counts("crm", 0).unwrap().1,
        (THREE_STEPS - step) as u64
    );
    store.shut();
}

/// While a change is kept to be written again, a lane's move waits for it (a step is not
/// tried with it, which could fail for it, nor before it): the move goes to its end once
/// the change is written.
#[test]
fn a_move_behind_a_change_kept_to_be_written_again_waits_for_it_then_goes_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_a_removed_backlog(dir.path());
    let db = Connection::open(dir.path().join(crate::spool::DATABASE_FILE)).unwrap();
    db.execute("ALTER TABLE endpoints RENAME TO hidden", [])
        .unwrap();
    store.register("erp", None);
    assert!(store.committed().is_err(), "the change is kept");
    let failed = store.failed_commits();
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    // The change is tried again every 100 ms, and the move waits.
    until_failed(&store, failed + 2);
    assert_eq!(
        moved.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the move waits for the change"
    );
    assert_eq!(store.counts("crm", 0).unwrap().1, THREE_STEPS as u64);
    // The disk has room again, as it were.
    db.execute("ALTER TABLE hidden RENAME TO endpoints", [])
        .unwrap();
    assert_eq!(
        moved.recv().unwrap(),
        Ok(THREE_STEPS),
        "the move went to its end"
    );
    store.committed().expect("the change kept is written");
    assert_eq!(store.counts("crm", 0).unwrap().1, 0, "no row left");
    store.shut();
}

/// A step that fails on its own (a trigger here; a disk nearly full) beside a change kept
/// to be written again does not hold the change up: the step waits for the change, not
/// with it, and once the change is written the step, tried alone, ends the move.
#[test]
fn a_step_that_fails_on_its_own_does_not_hold_up_a_change_kept_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_a_removed_backlog(dir.path());
    let db = Connection::open(dir.path().join(crate::spool::DATABASE_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full AFTER INSERT ON dead_letters WHEN NEW.ticket = '00000' \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    db.execute("ALTER TABLE endpoints RENAME TO hidden", [])
        .unwrap();
    store.register("erp", None);
    assert!(store.committed().is_err(), "the change is kept");
    let failed = store.failed_commits();
    let moved = store.dead_all(&lane, Vec::new(), "endpoint removed");
    until_failed(&store, failed + 2);
    assert_eq!(
        moved.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the step waits for the change, neither before it nor with it"
    );
    // The change could be written now; the step still cannot.
    db.execute("ALTER TABLE hidden RENAME TO endpoints", [])
        .unwrap();
    assert_eq!(
        moved.recv_timeout(WAIT),
        Ok(Err((0, THREE_STEPS))),
        "the move ended at its failed step, not a minute later"
    );
    store.committed().expect("the change kept is written");
    assert_eq!(store.counts("crm", 0).unwrap().1, THREE_STEPS as u64);
    store.shut();
}

/// A dead letter's job is let go by the writer however it ends with the letter: written,
/// failed (it is written again later), or left queued when the writer ends (a panic too).
#[test]
fn the_writer_lets_go_of_a_dead_letters_job_whatever_becomes_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_three_rows(dir.path());
    let dead = |row: i64, job: &Settling| {
        let owner = LetterOwner {
            lane: lane.clone(),
            job: Some(job.clone()),
        };
        store.dead(Some(owner), Some(row), letter(&row.to_string(), "create"));
    };
    // Written: let go once committed.
    let written = Settling::default();
    dead(1, &written);
    store.committed().unwrap();
    assert!(
        written.arrive(),
        "the writer let go once the letter was written"
    );
    // Failed: let go at once, and the letter kept to be written again.
    Connection::open(dir.path().join(crate::spool::DATABASE_FILE))
        .unwrap()
        .execute("ALTER TABLE dead_letters RENAME TO hidden", [])
        .unwrap();
    let failed = Settling::default();
    dead(2, &failed);
    let _ = store.committed();
    assert!(
        failed.arrive(),
        "the writer let go at the first failed write"
    );
    // Left in the channel of a writer that ends.
    let left = Settling::default();
    let (tx, rx) = mpsc::channel();
    tx.send(Op::Dead {
        lane: Some(lane.clone()),
        hold: Some(JobHold::new(&store.core, lane.clone(), left.clone())),
        row: Some(3),
        letter: letter("3", "create"),
    })
    .unwrap();
    drop(WriterEnd {
        core: &store.core,
        ops: &rx,
    });
    assert!(left.arrive(), "the writer's end let go of it");
    store.shut();
}

/// "Written" means written: a registry change whose write failed makes the wait for what
/// was sent before fail (the operator's change is logged as at risk), and once the change
/// is written again, the wait succeeds.
#[test]
fn the_wait_for_what_was_sent_fails_while_a_change_before_it_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let db = Connection::open(dir.path().join(crate::spool::DATABASE_FILE)).unwrap();
    let registered = || {
        db.query_row("SELECT count(*) FROM endpoints", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    db.execute("ALTER TABLE endpoints RENAME TO hidden", [])
        .unwrap();
    let entry = Registration {
        tenant: "acme",
        url: "http://127.0.0.1:9",
        spec: None,
        paused: Some(false),
    };
    store.register("crm", Some(entry));
    assert!(store.committed().is_err(), "the change is not on disk");
    // As a full disk freed: the change kept is written again, ahead of the next wait.
    db.execute("ALTER TABLE hidden RENAME TO endpoints", [])
        .unwrap();
    store.committed().unwrap();
    assert_eq!(registered(), 1);
    store.shut();
}

/// A wait that came among appends (emits in flight) while a change before it is kept to be
/// written again: the appends' commit does not answer it; the change written again does.
#[test]
fn a_wait_among_appends_waits_for_the_change_kept_before_it() {
    use crate::spool::again::Again;
    use crate::spool::commit::commit_appends;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let mut conn = Connection::open(dir.path().join(crate::spool::DATABASE_FILE)).unwrap();
    conn.execute("ALTER TABLE endpoints RENAME TO hidden", [])
        .unwrap();
    let register = Op::Register {
        name: "crm".to_owned(),
        entry: Some(Entry {
            tenant: "acme".to_owned(),
            url: "http://127.0.0.1:9".to_owned(),
            spec: None,
            paused: Some(false),
        }),
    };
    let mut again = Again::default();
    again.keep(&store.core, vec![register]);
    let (done, written) = mpsc::sync_channel(1);
    commit_appends(
        &store.core,
        &mut conn,
        vec![Op::Written {
            done,
            move_of: None,
        }],
        &mut again,
    );
    assert!(
        written.try_recv().is_err(),
        "not answered while the change waits"
    );
    // As a full disk freed: the change is written, and then the wait answered.
    conn.execute("ALTER TABLE hidden RENAME TO endpoints", [])
        .unwrap();
    again.last_chance(&store.core, &mut conn);
    written.try_recv().unwrap().unwrap();
    let registered: i64 = conn
        .query_row("SELECT count(*) FROM endpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(registered, 1);
    store.shut();
}

/// The outcomes kept past the limits: the oldest go, and only as many as the limits ask
/// (the bytes of those already given up by count are not counted again).
#[test]
fn outcomes_kept_past_the_limits_give_up_the_oldest_only() {
    let dead = |body: &str| {
        let mut letter = letter("1", "create");
        letter.body = serde_json::value::RawValue::from_string(format!("\"{body}\"")).unwrap();
        Op::Dead {
            lane: None,
            hold: None,
            row: None,
            letter,
        }
    };
    let size = |op: &Op| match op {
        Op::Dead { letter, .. } => letter.body.get().len(),
        _ => 0,
    };
    // A large letter first, then small ones: past the count limit by one.
    let big = dead(&"9".repeat(1000));
    let small = size(&dead("1"));
    let mut ops = vec![big];
    ops.extend((0..4).map(|i| dead(&i.to_string())));
    let over = crate::spool::again::over_limits(&ops, 4, 4 * small);
    assert_eq!(over, 1, "the big one goes by count; the four small fit");
    // Past the bytes: the oldest go until the rest fit.
    assert_eq!(crate::spool::again::over_limits(&ops, 10, 2 * small), 3);
    assert_eq!(crate::spool::again::over_limits(&ops, 10, 0), 5);
}

/// Waits (within `WAIT`) until `store` has had `count` failed transactions in all.
fn until_failed(store: &SpoolStore, count: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    while store.failed_commits() < count && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        store.failed_commits() >= count,
        "{count} failed transactions"
    );
}

/// Past the most outcomes kept to be written again, the oldest are given up; a step of a
/// move among them is no outcome: it goes back to the writer, and the move goes on.
#[test]
fn a_step_kept_past_the_limit_of_outcomes_goes_back_to_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, lane) = store_with_a_removed_backlog(dir.path());
    let (done, moved) = mpsc::sync_channel(1);
    let mut ops = vec![Op::DeadRange {
        lane: lane.clone(),
        range: None,
        except: Vec::new(),
        reason: "endpoint removed".to_owned(),
        done: Some(done),
        moving: None,
    }];
    // Rows no event has: giving up their deliveries only marks them.
    ops.extend((0..100_000).map(|n| Op::Delivered(1_000_000 + n)));
    let mut again = crate::spool::again::Again::default();
    again.keep(&store.core, ops);
    assert!(
        lock(&store.core.moving)
            .iter()
            .any(crate::spool::moving::is_step),
        "the step is back with the writer"
    );
    drop(again);
    // The writer runs it once it turns (woken by a wait).
    store.committed().unwrap();
    assert_eq!(moved.recv_timeout(WAIT).unwrap(), Ok(THREE_STEPS));
    store.shut();
}
