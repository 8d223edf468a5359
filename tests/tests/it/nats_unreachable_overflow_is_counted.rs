//! NATS unreachable (nothing listens on the port): the sink starts anyway, events wait in the
//! bounded queue, and once it is full drop-newest drops them — each one counted in the
//! sink's and the dispatcher's stats and logged, never lost silently. And a drop that `emit`
//! is told of is logged once, not again by the dispatcher.

use std::time::Duration;

use deskhook::policy::OverflowPolicy;
use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::free_port;
use deskhook_tests::{dead_letter_file, ticket};
use deskhook_transports::nats::NatsSink;

#[test]
fn a_full_queue_drops_newest_and_counts_and_logs_each_drop() {
    // The logger is the process's: it also takes the other tests' records, so the checks
    // below look only at messages that name this test's server or its 4-event queue.
    let logs = deskhook_tests::logs::logs();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let (_dir, dead) = dead_letter_file();
    let (sink, guard) = NatsSink::builder(&url)
        .connect_timeout(Duration::from_millis(200))
        .timeout(Duration::from_secs(5))
        .max_in_flight(1)
        .queue_capacity(4)
        .overflow(OverflowPolicy::DropNewest)
        .dead_letter_path(&dead)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .expect("the sink starts without its server");
    let waits = format!("NATS at {url} did not answer within 200ms; events wait in the queue");
    assert!(!logs.with(&waits).is_empty(), "{:?}", logs.with(""));
    // Its one endpoint is the stream: HTTP endpoints are the relays', not its own.
    let endpoints = sink.delivery().endpoints();
    assert_eq!(endpoints.names(), ["nats"]);
    let http =
        deskhook_transports::delivery::Endpoint::new("crm", "https://crm.example.com/").unwrap();
    let refused = endpoints.upsert(http).unwrap_err().to_string();
    assert!(
        refused.starts_with("endpoint 'crm': a NATS sink publishes to its stream only"),
        "{refused}"
    );
    assert_eq!(endpoints.len(), 1);
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    // The first publish is taken (it waits for the connection) before the others come.
    dispatcher.emit(Action::Create, &ticket("U0"), &user);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.delivery().totals().in_flight == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first publish never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 1..20 {
        dispatcher.emit(Action::Create, &ticket(&format!("U{i}")), &user);
    }
    let stats = sink.delivery().totals();
    // One publish waits for the connection, four wait in the queue, the rest are dropped.
    assert_eq!(stats.queued + stats.in_flight, 5, "{stats:?}");
    assert_eq!(stats.dropped, 15, "{stats:?}");
    assert_eq!(stats.delivered, 0);
    // `emit` had handed the events over: the drops are counted and logged, not returned.
    assert_eq!(dispatcher.stats().sinks[0].failed, 0);
    let drops = logs
        .with("endpoint 'nats': queue full (4 events, overflow drop-newest)")
        .len();
    assert_eq!(drops, 15, "each drop is logged");

    // At shutdown what waited goes to the dead letters: nothing is lost silently.
    assert!(guard.shutdown(Duration::from_millis(50)).is_err());
    let letters = deskhook_transports::delivery::read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 5);
    assert!(letters.iter().all(|l| l.endpoint == "nats"));
}

#[test]
fn a_drop_emit_is_told_of_is_logged_once() {
    let logs = deskhook_tests::logs::logs();
    let (_dir, dead) = dead_letter_file();
    // A paused endpoint with room for one event, and `block` (which routes on the emitting
    // thread): the second event waits 10 ms for room and is dropped, and `emit` is told.
    let endpoint = deskhook_transports::delivery::Endpoint::new("paused", "http://127.0.0.1:9/")
        .unwrap()
        .allow_private(true);
    let (sink, _guard) = deskhook_transports::http_blocking::HttpSink::builder()
        .endpoint(endpoint)
        .queue_capacity(1)
        .overflow(OverflowPolicy::Block {
            timeout: Duration::from_millis(10),
        })
        .dead_letter_path(&dead)
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    sink.endpoints().pause("paused").unwrap();
    let dispatcher = Dispatcher::builder().sink("http", sink.clone()).build();
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("LOGGED-ONCE-1"), &user);
    dispatcher.emit(Action::Create, &ticket("LOGGED-ONCE-2"), &user);
    assert_eq!(sink.endpoints().get("paused").unwrap().stats.dropped, 1);
    assert_eq!(dispatcher.stats().sinks[0].failed, 1, "emit was told");
    let told = logs.with("on ticket LOGGED-ONCE-2)");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("endpoint 'paused': queue full (1 events, overflow block"),
        "{told:?}"
    );
}

/// The stream's endpoint changed without a number of events in flight (its retry schedule
/// only) keeps the sink's default, which batches raise: not the unbatched one.
#[test]
fn the_streams_endpoint_changed_keeps_the_sinks_events_in_flight() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let (_dir, dead) = dead_letter_file();
    let (sink, _guard) = NatsSink::builder(&url)
        .connect_timeout(Duration::from_millis(50))
        .batch(64)
        .dead_letter_path(&dead)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .expect("the sink starts without its server");
    let endpoints = sink.delivery().endpoints();
    let before = endpoints.get("nats").unwrap();
    assert_eq!(
        before.max_in_flight,
        deskhook_transports::nats::DEFAULT_BATCH_CONCURRENCY
    );
    assert_eq!(
        before.url,
        format!("{url}/"),
        "shown as the stream's server"
    );
    let changed = deskhook_transports::delivery::Endpoint::new("nats", &url)
        .unwrap()
        .retry("0s,1s".parse().unwrap());
    endpoints.upsert(changed).unwrap();
    assert_eq!(
        endpoints.get("nats").unwrap().max_in_flight,
        before.max_in_flight
    );
}
