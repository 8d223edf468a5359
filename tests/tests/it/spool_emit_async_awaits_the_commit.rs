//! In async code, `emit_async` through a spooled `AsyncHttpSink` awaits the commit without
//! blocking the runtime, and the events are delivered from the spool.

use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::{Receiver, endpoint, ticket};
use deskhook_transports::http_async::AsyncHttpSink;
use deskhook_transports::spool::{self, Spool};

/// A runtime of one worker thread: a blocking wait for the disk there would stall the
/// delivery tasks.
fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn emit_async_is_durable_when_it_returns() {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    one_worker().block_on(async {
        let (sink, guard) = AsyncHttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .spool(Spool::open(dir.path()).unwrap())
            .build_async()
            .unwrap();
        let dispatcher = Dispatcher::builder()
            .async_sink("http", sink.clone())
            .build();
        let user = deskhook::sample::user();
        for i in 0..30 {
            dispatcher
                .emit_async(Action::Create, &ticket(&format!("A{}", i % 3)), &user)
                .await;
        }
        assert_eq!(dispatcher.stats().sinks[0].failed, 0);
        guard.flush_async(Duration::from_secs(20)).await.unwrap();
        assert_eq!(sink.stats()[0].delivered, 30);
        drop((dispatcher, sink));
        guard.shutdown_async(Duration::from_secs(5)).await.unwrap();
    });
    assert_eq!(receiver.count(), 30);
    let stats = spool::inspect(dir.path()).unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 0));
}

/// An `emit_async` dropped while it waits for the spool's writer (far behind: the database
/// is locked by another connection) is counted and logged as dropped; the events before it
/// are written once the lock goes.
#[test]
fn an_emit_async_cancelled_while_the_writer_is_behind_is_counted_as_dropped() {
    use std::future::Future as _;

    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (accepted, dropped) = one_worker().block_on(async {
        let (sink, guard) = AsyncHttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .spool(
                Spool::builder(dir.path())
                    .durability(spool::Durability::Receipt)
                    .open()
                    .unwrap(),
            )
            .build_async()
            .unwrap();
        sink.endpoints().pause("crm").unwrap();
        let dispatcher = Dispatcher::builder()
            .async_sink("http", sink.clone())
            .build();
        // The writer waits for the lock (its busy timeout is 5 s) while emits pile up, until
        // one has to wait for it: 8,192 events, or 64 MiB of bodies (about 130 of these).
        let lock = rusqlite::Connection::open(dir.path().join(spool::DATABASE_FILE)).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        let locked = std::time::Instant::now();
        let user = deskhook::sample::user();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut accepted = 0;
        loop {
            assert!(accepted <= 200, "no emit waited for the writer");
            let mut next = ticket(&format!("B{accepted}"));
            next.subject = "x".repeat(500_000);
            let mut emit = Box::pin(dispatcher.emit_async(Action::Comment, &next, &user));
            if emit.as_mut().poll(&mut cx).is_pending() {
                // Cancelled while it waits.
                drop(emit);
                break;
            }
            accepted += 1;
        }
        assert!(accepted > 100, "{accepted}");
        let dropped = sink.totals().dropped;
        // Past its busy timeout the writer gives its first batch up (counted as dropped
        // too): on a machine that slow, only the cancelled emit's count is not told apart.
        if locked.elapsed() < Duration::from_secs(4) {
            assert_eq!(dropped, 1);
        } else {
            eprintln!("the emits took {:?}; dropped {dropped}", locked.elapsed());
            assert!(dropped >= 1);
        }
        assert_eq!(dispatcher.stats().sinks[0].failed, 0);
        lock.execute_batch("ROLLBACK").unwrap();
        drop((dispatcher, sink));
        // The paused endpoint holds them; they stay in the spool.
        match guard.shutdown_async(Duration::from_secs(5)).await {
            Err(deskhook_transports::Error::Undelivered { queued, .. }) => {
                assert_eq!(queued as u64 + dropped - 1, accepted as u64);
            }
            other => panic!("{other:?}"),
        }
        (accepted as u64, dropped)
    });
    let stats = spool::inspect(dir.path()).unwrap();
    // Those accepted, but for a first batch the writer gave up on a slow machine.
    assert_eq!(stats.pending + dropped - 1, accepted);
}
