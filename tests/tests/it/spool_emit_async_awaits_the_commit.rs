//! In async code, `emit_async` through a spooled `AsyncHttpSink` awaits the commit without
//! blocking the runtime, and the events are delivered from the spool.

use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::{Receiver, endpoint, ticket};
use deskhook_transports::http_async::AsyncHttpSink;
use deskhook_transports::spool::{self, Spool};

#[test]
fn emit_async_is_durable_when_it_returns() {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    // One worker thread: a blocking wait for the disk there would stall the delivery tasks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
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
