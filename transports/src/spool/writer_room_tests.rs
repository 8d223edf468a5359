//! The spool writer's tests of back-pressure: emits wait when the writer is far behind, in
//! events or in bytes (a blocking emit on its thread, an async one with its waker), and go
//! on once it catches up, or once it ends (then refused, and counted as dropped).

use super::*;

#[test]
fn a_writer_far_behind_is_reported_and_appends_go_on_once_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    assert!(!store.behind());
    // As if 8192 jobs were handed to the writer and not committed yet.
    store
        .core
        .uncommitted
        .fetch_add(MAX_UNCOMMITTED, Ordering::AcqRel);
    assert!(store.behind(), "a writer {MAX_UNCOMMITTED} jobs behind");
    std::thread::scope(|scope| {
        let append = scope.spawn(|| {
            store
                .append(vec![(lane.clone(), Job::for_test("T1", 0))])
                .wait(WAIT)
        });
        // It waits (a broken wait would have returned, and committed, by now)…
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!append.is_finished(), "the append did not wait for room");
        // …until the writer catches up: then it goes on and is committed.
        store.core.committed_jobs(MAX_UNCOMMITTED, 0);
        append.join().unwrap().unwrap();
    });
    assert!(!store.behind());
    assert_eq!(lane.rows.committed().1, 1);
}

#[test]
fn an_append_waiting_for_room_goes_on_when_the_writer_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store(dir.path(), 1024));
    store
        .core
        .uncommitted
        .fetch_add(MAX_UNCOMMITTED, Ordering::AcqRel);
    let (done, finished) = std::sync::mpsc::channel();
    let appending = store.clone();
    std::thread::spawn(move || {
        let lane = lane_for_test("crm");
        let _ = done.send(
            appending
                .append(vec![(lane, Job::for_test("T1", 0))])
                .wait(WAIT),
        );
    });
    // It waits for room…
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        finished.try_recv().is_err(),
        "the append did not wait for room"
    );
    // …until the writer ends (as a panic would end it, the jobs it took uncounted).
    drop(lock(&store.core.ops).take());
    let writer = lock(&store.writer).take().unwrap();
    writer.join().unwrap();
    let outcome = finished
        .recv_timeout(WAIT)
        .expect("the append still waits for a writer that is gone");
    let err = outcome.unwrap_err().to_string();
    assert!(err.contains("the event was not accepted"), "{err}");
}

#[test]
fn appends_queued_to_a_writer_that_ends_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let lane = lane_for_test("crm");
    // As the engine counts a job it hands to the spool.
    lane.rows.pending.fetch_add(1, Ordering::AcqRel);
    let state = Arc::new(ReceiptState::default());
    let (tx, rx) = mpsc::channel();
    tx.send(Op::Append(Append::new(
        &store.core,
        vec![(lane.clone(), Job::for_test("T1", 0))],
        state.clone(),
    )))
    .unwrap();
    drop(WriterEnd {
        core: &store.core,
        ops: &rx,
    });
    assert_eq!(
        lane.rows.pending.load(Ordering::Acquire),
        0,
        "counted as dropped"
    );
    let err = Receipt::new(state).wait(WAIT).unwrap_err().to_string();
    assert!(err.contains("writer stopped"), "{err}");
    assert!(store.core.ended.load(Ordering::Acquire));
}

#[test]
fn a_writer_behind_by_bytes_makes_appends_wait_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    // Few jobs, but large ones: 64 MiB of bodies not committed yet.
    store
        .core
        .uncommitted_bytes
        .fetch_add(MAX_UNCOMMITTED_BYTES, Ordering::AcqRel);
    assert!(store.behind(), "{MAX_UNCOMMITTED_BYTES} bytes behind");
    store.core.committed_jobs(0, 1);
    assert!(!store.behind());
    // An append counts its body while it waits for its commit, and gives it back.
    let lane = lane_for_test("crm");
    store
        .append(vec![(lane, Job::for_test("T1", 0))])
        .wait(WAIT)
        .unwrap();
    assert_eq!(
        store.core.uncommitted_bytes.load(Ordering::Acquire),
        MAX_UNCOMMITTED_BYTES - 1
    );
}

#[test]
fn an_async_caller_waits_for_room_with_its_waker_not_its_thread() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 1024);
    let woken = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(
        store.poll_room(&mut cx).is_ready(),
        "room while the writer keeps up"
    );
    store
        .core
        .uncommitted
        .fetch_add(MAX_UNCOMMITTED, Ordering::AcqRel);
    // Polled twice while the writer is behind: pending, the waker kept once.
    assert!(store.poll_room(&mut cx).is_pending());
    assert!(store.poll_room(&mut cx).is_pending());
    assert_eq!(woken.0.load(Ordering::Acquire), 0);
    // Some jobs committed, still behind: woken, and pending again when polled.
    store.core.committed_jobs(1, 0);
    assert_eq!(
        woken.0.load(Ordering::Acquire),
        1,
        "woken once, not per poll"
    );
    store.core.uncommitted.fetch_add(1, Ordering::AcqRel);
    assert!(store.poll_room(&mut cx).is_pending());
    store.core.committed_jobs(MAX_UNCOMMITTED, 0);
    assert_eq!(woken.0.load(Ordering::Acquire), 2);
    assert!(store.poll_room(&mut cx).is_ready());
    // An append now goes through without waiting.
    let lane = lane_for_test("crm");
    store
        .append(vec![(lane.clone(), Job::for_test("T1", 0))])
        .wait(WAIT)
        .unwrap();
    assert_eq!(lane.rows.committed().1, 1);
}
