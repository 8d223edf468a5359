//! NATS down with the spool on: `emit` still returns once each event is on disk, the events
//! wait in the spool (also across a restart of the helpdesk), and they are published once the
//! server is back — each once.

use std::time::Duration;

use deskhook::policy::BreakerPolicy;
use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, drain_stream};
use deskhook_tests::ticket;
use deskhook_transports::nats::NatsSink;
use deskhook_transports::spool::{self, Spool};

const EVENTS: usize = 40;

fn sink(
    url: &str,
    dir: &std::path::Path,
) -> (NatsSink, deskhook_transports::delivery::DeliveryGuard) {
    NatsSink::builder(url)
        .connect_timeout(Duration::from_millis(200))
        .timeout(Duration::from_millis(500))
        .retry(format!("0s{}", ",50ms".repeat(200)).parse().unwrap())
        .breaker(BreakerPolicy {
            failures: 0,
            cool_down: Duration::ZERO,
        })
        .shutdown_timeout(Duration::from_millis(100))
        .spool(Spool::open(dir).unwrap())
        .build()
        .expect("the sink starts without its server")
}

#[test]
fn events_wait_in_the_spool_while_nats_is_down() {
    let mut server = NatsServer::start();
    server.stop();
    let dir = tempfile::tempdir().unwrap();

    // First life: NATS is down; every emit is durable, nothing is published.
    let (nats, guard) = sink(&server.url(), dir.path());
    let dispatcher = Dispatcher::builder().sink("nats", nats.clone()).build();
    let user = deskhook::sample::user();
    for i in 0..EVENTS {
        dispatcher.emit(Action::Create, &ticket(&format!("W{}", i % 4)), &user);
    }
    assert_eq!(
        dispatcher.stats().sinks[0].failed,
        0,
        "every emit was accepted"
    );
    drop((dispatcher, nats));
    assert!(
        guard.shutdown(Duration::from_millis(50)).is_err(),
        "nothing was published"
    );
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, EVENTS as u64);

    // Second life: the server is back; the spool's events are published, each once.
    server.restart();
    let (nats, guard) = sink(&server.url(), dir.path());
    guard.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(nats.delivery().totals().delivered as usize, EVENTS);
    drop(nats);
    guard.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(spool::inspect(dir.path()).unwrap().pending, 0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(drain_stream(
        &server.url(),
        "DESKHOOK",
        Duration::from_secs(1),
    ));
    assert_eq!(stored.len(), EVENTS, "each event once");
}
