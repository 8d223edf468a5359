//! The spool's clear errors: a second opener, a damaged or foreign file, a full disk budget;
//! and dead letters kept in the spool's own table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deskhook::Action;
use deskhook::policy::BreakerPolicy;
use deskhook_tests::{Answer, Receiver, endpoint, ticket};
use deskhook_transports::Error;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, DATABASE_FILE, Durability, Spool};

#[test]
fn a_second_opener_is_told_who_holds_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path()).unwrap();
    let err = Spool::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::SpoolLocked { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("in use by this process already") && text.contains("share it"),
        "{text}"
    );
    // Known by this process's own note, not by the id in the lock file (which another
    // process in another container may share).
    std::fs::write(dir.path().join(spool::LOCK_FILE), "1\n").unwrap();
    let text = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(text.contains("in use by this process already"), "{text}");
    // Reading it meanwhile is fine.
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, 0);
    drop(first);
    Spool::open(dir.path()).expect("free again once the first is dropped");
}

#[test]
fn a_damaged_or_foreign_file_is_named_in_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DATABASE_FILE);
    std::fs::write(
        &db,
        b"this is not SQLite at all, just some text long enough to be a page",
    )
    .unwrap();
    let err = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(
        err.contains("not a database") && err.contains("move it aside"),
        "{err}"
    );
    let err = spool::inspect(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&db.display().to_string()), "{err}");

    // Another application's SQLite database.
    std::fs::remove_file(&db).unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    drop(other);
    let err = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a deskhook spool"), "{err}");
    // Refused as it was found: another application's file keeps its journal mode.
    let mode: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");

    // A spool of a newer format: not damaged, so not to be moved aside.
    std::fs::remove_file(&db).unwrap();
    drop(Spool::open(dir.path()).unwrap());
    let newer = rusqlite::Connection::open(&db).unwrap();
    newer.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(newer);
    let err = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("format 999") && err.contains("newer deskhook") && !err.contains("aside"),
        "{err}"
    );
    // One of a format no deskhook writes is damaged, not newer.
    let odd = rusqlite::Connection::open(&db).unwrap();
    odd.execute_batch("PRAGMA user_version = -1").unwrap();
    drop(odd);
    let err = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("no deskhook writes")
            && !err.contains("newer deskhook")
            && err.contains("aside"),
        "{err}"
    );
    for extra in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{extra}", db.display()));
    }

    // A directory where the database should be.
    std::fs::remove_file(&db).unwrap();
    std::fs::create_dir(&db).unwrap();
    let err = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&db.display().to_string()), "{err}");
}

#[test]
fn a_full_spool_refuses_new_events_until_deliveries_make_room() {
    let up = Arc::new(AtomicBool::new(false));
    let receiver = {
        let up = up.clone();
        Receiver::start(move |_, _| {
            Answer::status(if up.load(Ordering::SeqCst) { 204 } else { 503 })
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::builder(dir.path())
        .max_size(128 * 1024)
        .durability(Durability::Receipt)
        .open()
        .unwrap();
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint(
            "crm",
            &receiver,
            &format!("0s{}", ",10ms".repeat(50)),
        ))
        .breaker(BreakerPolicy {
            failures: 0,
            cool_down: Duration::ZERO,
        })
        .shutdown_timeout(Duration::from_millis(10))
        .spool(spool)
        .build()
        .unwrap();
    let user = deskhook::sample::user();
    let send = |i: usize| {
        let t = ticket(&format!("F{i}"));
        let emitted =
            deskhook::sink::Emitted::new(deskhook::EventRef::new(Action::Create, &t, &user))
                .unwrap();
        sink.send_with_receipt(&emitted)
            .wait(Duration::from_secs(10))
    };
    let mut refused = None;
    for i in 0..200 {
        if let Err(err) = send(i) {
            refused = Some((i, err));
            break;
        }
    }
    let (at, err) = refused.expect("the 128 KiB budget runs out");
    assert!(at > 3, "some events fit first ({at})");
    assert!(matches!(err, Error::SpoolFull { .. }), "{err:?}");
    assert!(err.to_string().contains("raise max_size"), "{err}");
    assert!(
        sink.stats()[0].dropped >= 1,
        "the refused event is counted as dropped"
    );

    // The receiver is back: the backlog drains, and deleted rows make room again.
    up.store(true, Ordering::SeqCst);
    guard.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(sink.stats()[0].delivered as usize, at);
    send(1000).expect("room again once the backlog is delivered");
    guard.flush(Duration::from_secs(30)).unwrap();

    // Full again, with the receiver down: removing the endpoint frees the spool, and
    // nothing is left outstanding (a flush ends at once).
    up.store(false, Ordering::SeqCst);
    let mut filled = 0;
    while send(2000 + filled).is_ok() {
        filled += 1;
    }
    let removed = sink.endpoints().remove("crm").unwrap();
    assert_eq!(
        removed.dead_lettered + removed.in_flight,
        filled,
        "{removed:?}"
    );
    guard.flush(Duration::from_secs(30)).unwrap();
    drop(sink);
    let _ = guard.shutdown(Duration::from_secs(5));
}

#[test]
fn dead_letters_go_to_the_spools_table_and_can_be_requeued() {
    let receiver = Receiver::start(|_, _| Answer::status(400));
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint("crm", &receiver, "0s"))
        .spool(Spool::open(dir.path()).unwrap())
        .build()
        .unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", sink.clone())
        .build();
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("D1"), &user);
    dispatcher.emit(Action::Lock, &ticket("D1"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    drop((dispatcher, sink));
    guard.shutdown(Duration::from_secs(5)).unwrap();

    let letters = spool::read_dead_letters(dir.path()).unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].action, "create");
    assert_eq!(letters[0].last_status, Some(400));
    assert_eq!(letters[1].ticket, "D1");
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, 0);

    let mut spool = Spool::open(dir.path()).unwrap();
    let max_payload = 1 << 20;
    let other = endpoint("other", &receiver, "0s");
    let requeued = spool.requeue_dead_letters(&[other], max_payload).unwrap();
    assert_eq!((requeued.moved, requeued.kept.len()), (0, 0));
    // As the endpoint is now: made again for a tenant, or no longer taking `lock` events,
    // it takes none of them, or only the `create`.
    let crm = || endpoint("crm", &receiver, "0s");
    let requeued = spool
        .requeue_dead_letters(&[crm().tenant("acme")], max_payload)
        .unwrap();
    assert_eq!((requeued.moved, requeued.kept.len()), (0, 2));
    assert!(
        requeued.kept[0].1.contains("now belongs to tenant 'acme'"),
        "{:?}",
        requeued.kept
    );
    // One taking only the later letter's type: that letter stays too, held behind the
    // earlier one of its ticket (queued, it would go out first).
    let locks = crm().actions([Action::Lock]);
    let requeued = spool.requeue_dead_letters(&[locks], max_payload).unwrap();
    assert_eq!((requeued.moved, requeued.kept.len()), (0, 2));
    assert!(
        requeued.kept[1].1.contains("held behind dead letter"),
        "{:?}",
        requeued.kept
    );
    let creates = crm().actions([Action::Create]);
    let requeued = spool.requeue_dead_letters(&[creates], max_payload).unwrap();
    assert_eq!(requeued.moved, 1);
    assert!(
        requeued.kept[0].1.contains("no longer takes 'lock' events"),
        "{:?}",
        requeued.kept
    );
    let requeued = spool.requeue_dead_letters(&[crm()], max_payload).unwrap();
    assert_eq!((requeued.moved, requeued.kept.len()), (1, 0));
    let stats = spool.stats().unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (2, 0));
}

/// An event more than the whole memory budget would never be loaded from the spool, and
/// would hold up every later row of its endpoint for good: it goes to the dead letters as
/// it comes, saying why, and the events after it are delivered.
#[test]
fn an_event_more_than_the_whole_memory_budget_is_dead_lettered_not_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint("crm", &receiver, "0s"))
        // The reference ticket's events are about 9 KB.
        .max_queued_bytes(64 * 1024)
        .spool(Spool::open(dir.path()).unwrap())
        .build()
        .unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", sink.clone())
        .build();
    let user = deskhook::sample::user();
    let mut large = ticket("A");
    large.text = "x".repeat(128 * 1024);
    dispatcher.emit(Action::Create, &large, &user);
    dispatcher.emit(Action::Create, &ticket("B"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.wait_for(1)[0].json()["ticket"]["code"], "B");
    drop((dispatcher, sink));
    guard.shutdown(Duration::from_secs(5)).unwrap();
    one_letter_over_the_budget(dir.path());
}

/// The same event written by a run with a larger memory budget, found by one with a
/// smaller: it goes to the dead letters as it is read, saying why, rather than holding up
/// the rows after it for good.
#[test]
fn a_row_more_than_the_whole_memory_budget_found_at_start_is_dead_lettered_not_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let mut large = ticket("A");
    large.text = "x".repeat(128 * 1024);
    // The first run: the endpoint is paused, and both events stay in the spool.
    let receiver = Receiver::ok();
    kept_by_a_paused_endpoint(dir.path(), &receiver, &[large, ticket("B")]);
    // The next, with a smaller budget.
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint("crm", &receiver, "0s"))
        .max_queued_bytes(64 * 1024)
        .spool(Spool::open(dir.path()).unwrap())
        .build()
        .unwrap();
    sink.endpoints().resume("crm").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.wait_for(1)[0].json()["ticket"]["code"], "B");
    drop(sink);
    guard.shutdown(Duration::from_secs(5)).unwrap();
    one_letter_over_the_budget(dir.path());
}

/// An unreadable row whose move to the dead letters cannot be written (as on a full disk)
/// stays on disk for the next start, and is let go of: a flush does not wait for it, and
/// the rows after it are delivered.
#[test]
fn an_unreadable_row_that_cannot_be_moved_does_not_hold_up_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    kept_by_a_paused_endpoint(dir.path(), &receiver, &[ticket("A"), ticket("B")]);
    // A's row cannot be read, and no dead letter can be written.
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    db.execute_batch(
        "UPDATE events SET id = 'not-an-id' WHERE ticket = 'A';
         CREATE TRIGGER full BEFORE INSERT ON dead_letters
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint("crm", &receiver, "0s"))
        .spool(Spool::open(dir.path()).unwrap())
        .build()
        .unwrap();
    sink.endpoints().resume("crm").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.wait_for(1)[0].json()["ticket"]["code"], "B");
    drop(sink);
    let _ = guard.shutdown(Duration::from_secs(5));
    // A's row waits for the next start.
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, 1);
}

/// A row of an event type this build does not know (a newer deskhook wrote it, and was
/// rolled back) is not this build's to end: it stays in the spool, and its ticket's later
/// events wait behind it while the other tickets go. A deskhook that knows the type
/// delivers them, in their order; no dead letter is written meanwhile.
#[test]
fn events_of_a_type_this_build_does_not_know_wait_with_their_tickets_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    // Rows 1 to 10 are ticket A's (more than a ticket holds in memory at once: its later
    // rows are parked, and read back), row 11 is B's; row 7 becomes a newer deskhook's.
    let mut tickets = vec![ticket("A"); 10];
    tickets.push(ticket("B"));
    kept_by_a_paused_endpoint(dir.path(), &receiver, &tickets);
    let db = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let ids: Vec<String> = db
        .prepare("SELECT id FROM events ORDER BY row")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    db.execute(
        "UPDATE events SET action = 'zenlix.escalate' WHERE row = 7",
        [],
    )
    .unwrap();
    let run = |receiver: &Receiver, wait: Duration| {
        let (sink, guard) = HttpSink::builder()
            .endpoint(endpoint("crm", receiver, "0s"))
            .spool(Spool::builder(dir.path()).memory_window(8).open().unwrap())
            .build()
            .unwrap();
        sink.endpoints().resume("crm").unwrap();
        let flushed = guard.flush(wait);
        drop(sink);
        let _ = guard.shutdown(wait);
        flushed
    };
    let sent = |receiver: &Receiver, n: usize| -> Vec<String> {
        let received = receiver.wait_for(n);
        let sent = received
            .iter()
            .map(|r| r.header("webhook-id").unwrap().to_owned());
        sent.collect()
    };
    // A's first six events and B's go; A's seventh to tenth wait, and a flush says so
    // once they are all that is left (not at its timeout: `held` would be 0).
    let kept = run(&receiver, Duration::from_secs(30)).unwrap_err();
    assert!(
        matches!(&kept, Error::Undelivered { queued: 4, held: 4, held_by, .. } if held_by == &["crm"]),
        "{kept:?}"
    );
    assert!(
        kept.to_string()
            .contains("a type only a newer deskhook knows"),
        "{kept}"
    );
    let first = sent(&receiver, 7);
    let of_a: Vec<&String> = first.iter().filter(|id| **id != ids[10]).collect();
    assert_eq!(of_a, ids[..6].iter().collect::<Vec<_>>());
    assert!(first.contains(&ids[10]));
    assert_eq!(receiver.count(), 7);
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, 4);
    assert!(spool::read_dead_letters(dir.path()).unwrap().is_empty());
    // A deskhook that knows the type (here: the row made known again) sends them in order.
    db.execute("UPDATE events SET action = 'comment' WHERE row = 7", [])
        .unwrap();
    let upgraded = Receiver::ok();
    run(&upgraded, Duration::from_secs(10)).unwrap();
    assert_eq!(sent(&upgraded, 4), ids[6..10]);
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, 0);
}

/// A run of a sink on the spool in `dir` whose endpoint `crm` (to `receiver`) is paused:
/// each of `tickets` is created, and stays in the spool.
fn kept_by_a_paused_endpoint(
    dir: &std::path::Path,
    receiver: &Receiver,
    tickets: &[deskhook::Ticket],
) {
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint("crm", receiver, "0s"))
        .spool(Spool::open(dir).unwrap())
        .build()
        .unwrap();
    sink.endpoints().pause("crm").unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", sink.clone())
        .build();
    for ticket in tickets {
        dispatcher.emit(Action::Create, ticket, &deskhook::sample::user());
    }
    drop((dispatcher, sink));
    let kept = guard.shutdown(Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(kept, Error::Undelivered { queued, .. } if queued == tickets.len()),
        "{kept:?}"
    );
    assert_eq!(spool::inspect(dir).unwrap().pending, tickets.len() as u64);
}

/// The spool in `dir` holds one dead letter, ticket A's, more than a budget of 64 KiB, and
/// no event.
fn one_letter_over_the_budget(dir: &std::path::Path) {
    let letters = spool::read_dead_letters(dir).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].ticket, "A");
    assert!(
        letters[0]
            .reason
            .contains("more than the sink's whole max_queued_bytes (65536)"),
        "{}",
        letters[0].reason
    );
    assert_eq!(spool::inspect(dir).unwrap().pending, 0);
}
