//! A relay that loses a partition's lease withdraws what it took from that partition and has
//! not attempted yet: when the partition is delivered again from the stream, a ticket's
//! events still arrive in order, a repeat only right after itself.
//!
//! The lease is taken from the relay by the test (another owner written into the leases
//! bucket), so the loss does not depend on timing; the receiver answers slowly, so that
//! most of the ticket's events are queued in the relay's engine when it happens.
//! `nats-server` runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook_tests::nats::{NatsServer, RunningRelay, numbers, publish_numbered};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::async_nats::jetstream;
use deskhook_transports::nats::{StreamSettings, partition_of};
use deskhook_transports::relay::Relay;

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
