//! A relay that loses a partition's lease withdraws what it took from that partition and has
//! not attempted yet: when the partition is delivered again from the stream, a ticket's
//! events still arrive in order, a repeat only right after itself. A relay that finds a later
//! owner's consumer withdraws at once, not at its next renewal.
//!
//! The lease is taken from the relay by the test (another owner written into the leases
//! bucket), so the loss does not depend on timing; the receiver answers slowly, so that
//! most of the ticket's events are queued in the relay's engine when it happens.
//! `nats-server` runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, context, numbers, publish_numbered,
};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::async_nats::jetstream::{self, consumer};
use deskhook_transports::nats::{StreamSettings, partition_of};
use deskhook_transports::relay::Relay;
use futures_util::StreamExt as _;

const EVENTS: usize = 30;
/// Each request takes this long to answer: one ticket has one attempt in flight, so the
/// relay holds the rest queued.
const SLOW: Duration = Duration::from_millis(100);

#[test]
fn a_relay_that_loses_a_lease_withdraws_what_it_had_queued() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::start(|_, _| Answer::status(204).after(SLOW));

    // One ticket, numbered in its subject.
    publish_numbered(&server, "T1", EVENTS, &dead);
    let partition = partition_of("T1", StreamSettings::new().partition_count());

    // What the relay owns, each time it changes.
    let owned: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
    let relay = RunningRelay::start(
        Relay::builder(
            server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("crm", &receiver, "0s,10ms"))
                .dead_letter_path(&dead),
        )
        .lease(Duration::from_secs(1))
        .max_pending(EVENTS)
        .on_partitions({
            let owned = owned.clone();
            move |now: &[u32]| owned.lock().unwrap().push(now.to_vec())
        }),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    // Once the ticket flows, another owner takes the partition's lease.
    receiver.wait_for(3);
    runtime.block_on(async {
        let client = deskhook_transports::nats::async_nats::connect(server.url())
            .await
            .expect("a client");
        let leases = jetstream::new(client)
            .get_key_value("deskhook-relay-leases")
            .await
            .expect("the relay's leases bucket");
        leases
            .put(format!("p.{partition}"), "intruder".into())
            .await
            .expect("the lease taken");
    });

    // The intruder's lease ends (it is never renewed); the relay takes the partition back
    // and delivers from the first unacknowledged event.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let arrived = numbers(&receiver);
        if arrived.contains(&(EVENTS - 1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered after the lease came back: {arrived:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = relay.stop();

    let arrived = numbers(&receiver);
    for n in 0..EVENTS {
        assert!(arrived.contains(&n), "event {n} never arrived: {arrived:?}");
    }
    // In order: each arrival is the next event, or a repeat of the one just before it (the
    // attempt in flight when the lease was lost, delivered again by the next tenure).
    for pair in arrived.windows(2) {
        assert!(
            pair[1] == pair[0] + 1 || pair[1] == pair[0],
            "{} arrived after {}: {arrived:?}",
            pair[1],
            pair[0]
        );
    }
    // The partition was lost, then owned again.
    let owned = owned.lock().unwrap().clone();
    let lost = owned
        .windows(2)
        .position(|pair| pair[0].contains(&partition) && !pair[1].contains(&partition));
    assert!(
        lost.is_some_and(|at| owned[at + 1..].iter().any(|now| now.contains(&partition))),
        "partition {partition} owned, lost, owned again: {owned:?}"
    );
    assert!(
        report.handed_back > 0,
        "the lost tenure let events go: {report:?}"
    );
}

/// What a relay owns, each time it changes, as [`Relay::on_partitions`] tells it.
type Owned = Arc<Mutex<Vec<Vec<u32>>>>;

#[test]
fn a_relay_that_finds_a_later_owners_consumer_withdraws_at_once() {
    // Renewed as the relay starts, then every quarter of it: 10 s, longer than the slow
    // receiver takes for every ticket (6 s), so that only the later owner's consumer can
    // stop the relay before all is delivered. Slow enough that the relay, which looks for
    // its consumer again half a second after it is gone, has time to find the later
    // owner's on a busy machine before half the tickets are delivered.
    const LEASE: Duration = Duration::from_secs(40);
    const TICKETS: usize = 15;
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::start(|_, _| Answer::status(204).after(Duration::from_millis(400)));
    // Tickets of one partition, one event each: a ticket's events wait for the server to
    // confirm the acknowledgement of its earlier ones, which a deleted consumer never does,
    // but the first event of each is attempted when its turn comes.
    let settings = StreamSettings::new();
    let partition = partition_of("T0", settings.partition_count());
    let tickets = (0..)
        .map(|n| format!("T{n}"))
        .filter(|code| partition_of(code, settings.partition_count()) == partition)
        .take(TICKETS);
    for code in tickets {
        publish_numbered(&server, &code, 1, &dead);
    }
    let owned = Owned::default();
    let relay = RunningRelay::start(
        Relay::builder(
            server.url(),
            DeliverySink::builder()
                // One request at a time: the others wait in the relay's engine.
                .endpoint(endpoint("crm", &receiver, "0s,10ms").max_in_flight(1))
                .dead_letter_path(&dead),
        )
        .lease(LEASE)
        .max_pending(TICKETS)
        .on_partitions({
            let owned = owned.clone();
            move |now: &[u32]| owned.lock().unwrap().push(now.to_vec())
        }),
    );
    receiver.wait_for(2);

    // Another relay takes the lease and replaces the relay's consumer with its own (as a new
    // owner does); it pulls nothing.
    block_on(async {
        let js = context(&server.url()).await;
        let leases = js
            .get_key_value("deskhook-relay-leases")
            .await
            .expect("the relay's leases bucket");
        let revision = leases
            .put(format!("p.{partition}"), "intruder".into())
            .await
            .expect("the lease taken");
        let stream = js
            .get_stream(settings.stream_name())
            .await
            .expect("the events' stream");
        let filter = settings.partition_filter(partition);
        let relays: Vec<String> = stream
            .consumers()
            .map(|info| info.expect("a consumer"))
            .filter(|info| std::future::ready(info.config.filter_subject == filter))
            .map(|info| info.name)
            .collect()
            .await;
        assert_eq!(relays.len(), 1, "the relay's consumer: {relays:?}");
        // A work queue has one consumer per subject: the relay's goes first (the relay
        // pauses half a second before it makes one again).
        stream
            .delete_consumer(&relays[0])
            .await
            .expect("the relay's consumer deleted");
        let intruder = format!("deskhook-relay-{partition}-{revision}");
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(intruder),
                filter_subject: filter,
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("the later owner's consumer");
    });

    // The relay lets the partition go long before its next renewal would have told it:
    // most tickets are still undelivered then, and stay so (withdrawn).
    let deadline = Instant::now() + Duration::from_secs(60);
    let let_go = || {
        let owned = owned.lock().unwrap();
        owned.last().is_some_and(|now| !now.contains(&partition))
    };
    while !let_go() {
        assert!(Instant::now() < deadline, "the partition is never let go");
        std::thread::sleep(Duration::from_millis(20));
    }
    let when_let_go = receiver.count();
    let report = relay.stop();
    let arrived = receiver.count();
    assert!(
        when_let_go < TICKETS - 5,
        "the relay went on delivering after the later owner's consumer was made: {arrived:?}"
    );
    assert!(
        arrived <= when_let_go + 1,
        "only the attempt in flight may finish once the partition is let go: {arrived:?}"
    );
    assert!(
        report.handed_back > 0,
        "the superseded tenure let events go: {report:?}"
    );
}
