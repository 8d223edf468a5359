//! The engine's lifecycle driven by hand: removals and stops with attempts in flight,
//! resumes and emits that come in between (see `tests` for the hooks and helpers).

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

#[cfg(feature = "spool")]
use super::tests::{AFTER_UPDATE, BETWEEN_RELEASE_AND_COMPLETE, spooled_engine};
use super::tests::{BEFORE_DYING_LETTER, BETWEEN_FLUSH_AND_STOP};
use super::tests::{attempt, emit, endpoint, engine, status};
#[cfg(feature = "spool")]
use crate::delivery::Endpoint;
use crate::delivery::lock;

/// A removal tells how many of its endpoint's events it moved to the dead letters, and
/// sets the endpoint's floor in the spool before it returns, even when a resume of the
/// endpoint comes between its release and its end (were the resume to wait for the move
/// in its place, the removal would return at once, counting none, and an endpoint added
/// again under the name could load the old rows before the floor was set).
#[cfg(feature = "spool")]
#[test]
fn a_removal_waits_for_its_own_move_when_a_resume_comes_in_between() {
    use crate::delivery::backlog::Release;
    use crate::delivery::lane::Closing;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = spooled_engine(&dir);
    // Three events in the spool (each emit returns once it is on disk).
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("test", crate::delivery::DeliverySink::new(engine.clone()))
        .build();
    for code in ["T1", "T2", "T3"] {
        let mut ticket = deskhook::sample::ticket();
        ticket.code = code.to_owned();
        dispatcher.emit(deskhook::Action::Create, &ticket, &deskhook::sample::user());
    }
    let crm = engine.registry().get("crm").expect("crm");
    let (resuming, lane) = (engine.clone(), crm.clone());
    BETWEEN_RELEASE_AND_COMPLETE.set(Some(Box::new(move || {
        resuming.resume(&lane);
    })));
    let removed = engine.close_lane(&crm, Closing::Removed, Release::Removed);
    assert!(
        BETWEEN_RELEASE_AND_COMPLETE.take().is_none(),
        "the resume came"
    );
    assert_eq!(removed.dead_lettered, 3, "the removal counts its move");
    engine.flush(Duration::from_secs(5)).expect("nothing left");
}

/// A removal after the spool's writer is gone (it ended): nothing moves the endpoint's rows,
/// which stay on disk for the next start, and a flush does not wait for them.
#[cfg(feature = "spool")]
#[test]
fn a_removal_after_the_spools_writer_ended_lets_go_of_its_rows() {
    use crate::delivery::backlog::Release;
    use crate::delivery::lane::Closing;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = spooled_engine(&dir);
    super::tests::emit(&engine, &["T1", "T2", "T3"]);
    engine.backlog().close();
    let crm = engine.registry().get("crm").expect("crm");
    let removed = engine.close_lane(&crm, Closing::Removed, Release::Removed);
    assert_eq!(removed.dead_lettered, 0, "nothing was moved");
    engine
        .flush(Duration::from_millis(200))
        .expect("nothing left to wait for");
}

/// An update and a removal of the same endpoint, the removal coming once the update has let
/// go of the registry's lock: the spool's table ends without the endpoint, so it does not
/// come back at the next start (the update's row was written after the removal's).
#[cfg(feature = "spool")]
#[test]
fn an_endpoint_removed_as_it_is_updated_stays_removed_in_the_spool() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = spooled_engine(&dir);
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    let removing = endpoints.clone();
    AFTER_UPDATE.set(Some(Box::new(move || {
        removing.remove("crm").expect("crm is removed");
    })));
    let moved = Endpoint::new("crm", "http://127.0.0.1:10/").expect("a URL");
    endpoints.upsert(moved).expect("the endpoint is updated");
    assert!(AFTER_UPDATE.take().is_none(), "the removal came");
    engine
        .backlog()
        .registry_kept()
        .expect("the spool is written");
    let stats = crate::spool::inspect(dir.path()).expect("the spool reads");
    assert_eq!(
        (stats.registered, engine.registry().get("crm").is_none()),
        (0, true),
        "removed in the sink and in the spool's table"
    );
}

#[test]
fn a_shutdown_that_lets_go_of_an_event_emitted_after_its_flush_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    // Nothing to flush; another thread emits as the flush returns.
    let emitting = engine.clone();
    BETWEEN_FLUSH_AND_STOP.set(Some(Box::new(move || emit(&emitting, &["T1"]))));
    let stopped = engine.shutdown(Duration::from_secs(1));
    assert!(BETWEEN_FLUSH_AND_STOP.take().is_none(), "the event came");
    match stopped {
        Err(crate::Error::Undelivered { queued: 1, .. }) => {}
        other => panic!("expected the event reported undelivered, got {other:?}"),
    }
}

/// A `shutdown_async` cancelled while it flushes (by a `tokio::time::timeout` shorter than
/// its own) still stops delivery as the guard goes: the attempt in flight is reported in
/// the dead letters rather than left to a process that ends.
#[cfg(feature = "_async")]
#[test]
fn a_cancelled_shutdown_async_still_stops_delivery() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    emit(&engine, &["T1"]);
    // In flight: the flush cannot end before its timeout.
    let in_flight = attempt(&engine);
    let guard = crate::delivery::DeliveryGuard::new(engine.clone(), Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let cut = runtime.block_on(async {
        let shutdown = guard.shutdown_async(Duration::from_secs(5));
        tokio::time::timeout(Duration::from_millis(20), shutdown).await
    });
    assert!(cut.is_err(), "the shutdown was cut short");
    assert!(engine.stopping());
    let letters = crate::delivery::read_dead_letters(dir.path().join("dead.jsonl"))
        .expect("the dead letters read");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("while in flight"),
        "{}",
        letters[0].reason
    );
    in_flight.finish(status(204), Duration::ZERO);
}

/// An attempt given up as the sink stops: the stop passes over it (its worker writes its
/// letter), and the shutdown waits for that letter rather than return first, which would
/// let the process end without it.
#[test]
fn a_shutdown_waits_for_the_letter_of_an_attempt_given_up_as_it_stops() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    emit(&engine, &["T1"]);
    let in_flight = attempt(&engine);
    let (reached_tx, reached) = mpsc::channel();
    let settling = std::thread::spawn(move || {
        BEFORE_DYING_LETTER.set(Some(Box::new(move || {
            reached_tx.send(()).expect("the test waits");
            std::thread::sleep(Duration::from_millis(50));
        })));
        // Refused: given up at once.
        in_flight.finish(status(400), Duration::ZERO);
    });
    reached.recv().expect("the letter is about to be written");
    // Its flush of no time finds the event outstanding still: an error either way.
    let _ = engine.shutdown(Duration::ZERO);
    let letters = crate::delivery::read_dead_letters(dir.path().join("dead.jsonl"))
        .expect("the dead letters read");
    assert_eq!(letters.len(), 1, "written before the shutdown returned");
    assert!(letters[0].reason.contains("400"), "{}", letters[0].reason);
    settling.join().expect("the settle ends");
}

/// An attempt in flight when its endpoint is removed, then the sink stops before it ends
/// (the process may end with it): reported in the dead letters as a registered endpoint's
/// would be, and not written again when it ends after all.
#[test]
fn a_shutdown_reports_the_attempt_in_flight_of_an_endpoint_removed_before_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    emit(&engine, &["T1"]);
    let in_flight = attempt(&engine);
    let id = in_flight.job().event.id_text.to_string();
    crate::delivery::Endpoints::new(engine.clone())
        .remove("crm")
        .expect("crm is removed");
    let stopped = engine.shutdown(Duration::ZERO);
    assert!(
        stopped.is_err(),
        "the attempt in flight is reported: {stopped:?}"
    );
    let letters = || {
        crate::delivery::read_dead_letters(dir.path().join("dead.jsonl"))
            .expect("the dead letters read")
    };
    let written = letters();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].id, id);
    assert!(
        written[0].reason.contains("while in flight"),
        "{}",
        written[0].reason
    );
    // Its failure comes after all: no second letter.
    in_flight.finish(status(500), Duration::ZERO);
    assert_eq!(letters().len(), 1);
}

/// An emitter that saw its endpoint closed by a 410 reclaims the inbox; a resume and
/// another emitter came in between: neither event is dead-lettered, nor reported so, and
/// both are delivered.
#[test]
fn an_emitter_that_saw_its_endpoint_closed_leaves_the_inbox_to_it_once_resumed() {
    use crate::delivery::backlog::memory_hooks::{AFTER_INBOX_PUSH, BEFORE_RECLAIM};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(vec![endpoint("crm", Duration::from_secs(60))], 8, &dir);
    let crm = engine.registry().get("crm").expect("crm");
    let sink = crate::delivery::DeliverySink::new(engine.clone());
    let event = |code: &str| {
        let mut ticket = deskhook::sample::ticket();
        ticket.code = code.to_owned();
        ticket
    };
    let user = deskhook::sample::user();
    let (reached_tx, reached) = mpsc::channel::<&str>();
    let (go, go_rx) = mpsc::channel::<()>();
    // A worker holds the lane's lock: emitter A's job goes to the inbox.
    let held = lock(&crm.state);
    let emitter = {
        let (sink, ticket, user) = (sink.clone(), event("T-A"), user.clone());
        std::thread::spawn(move || {
            let go_rx = Arc::new(Mutex::new(go_rx));
            for (place, name) in [
                (&AFTER_INBOX_PUSH, "pushed"),
                (&BEFORE_RECLAIM, "reclaiming"),
            ] {
                let (reached_tx, go_rx) = (reached_tx.clone(), go_rx.clone());
                place.set(Some(Box::new(move || {
                    reached_tx.send(name).expect("the test waits");
                    lock(&go_rx).recv().expect("the test says when");
                })));
            }
            let emitted = deskhook::EventRef::new(deskhook::Action::Create, &ticket, &user);
            sink.route_now(&deskhook::sink::Emitted::new(emitted).expect("an event"))
        })
    };
    // Pushed: the endpoint is disabled by a 410 (as `settle` does, under the lock).
    assert_eq!(reached.recv().expect("A pushed"), "pushed");
    let mut st = held;
    st.disabled = true;
    crm.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(st);
    go.send(()).expect("A waits");
    // A saw it closed; before it reclaims, the endpoint is resumed and B emits.
    assert_eq!(reached.recv().expect("A reclaims"), "reclaiming");
    assert!(engine.resume(&crm));
    let ticket_b = event("T-B");
    let emitted = deskhook::EventRef::new(deskhook::Action::Create, &ticket_b, &user);
    let b = sink.route_now(&deskhook::sink::Emitted::new(emitted).expect("an event"));
    assert_eq!(b.queued, ["crm"]);
    go.send(()).expect("A waits");
    let a = emitter.join().expect("A ends");
    assert!(a.refused.is_empty(), "A's event was taken: {:?}", a.refused);
    assert_eq!(a.queued, ["crm"]);
    for _ in 0..2 {
        attempt(&engine).finish(status(204), Duration::ZERO);
    }
    engine
        .flush(Duration::from_secs(1))
        .expect("both delivered");
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        (
            count(&crm.counters.delivered),
            count(&crm.counters.dead_lettered)
        ),
        (2, 0)
    );
}
