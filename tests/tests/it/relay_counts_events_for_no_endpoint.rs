//! A relay acknowledges an event no endpoint is registered for (here: a type its one
//! endpoint does not take) without delivering it, and counts it in its report (and in its
//! delivery sink's `unrouted`, from the same place). `nats-server` runs on a free 127.0.0.1
//! port; the receiver is on 127.0.0.1.

use std::time::{Duration, Instant};

use deskhook::Action;
use deskhook_tests::nats::{NatsServer, RunningRelay, block_on, publish_numbered, stream_len};
use deskhook_tests::{Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::relay::Relay;

const EVENTS: usize = 3;

#[test]
fn events_for_no_endpoint_are_acknowledged_and_counted() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    // The events are comments; the endpoint takes locks only.
    publish_numbered(&server, "T1", EVENTS, &dead);
    let relay = RunningRelay::start(Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").actions([Action::Lock]))
            .dead_letter_path(&dead),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while block_on(stream_len(
        &server.url(),
        StreamSettings::new().stream_name(),
    )) > 0
    {
        assert!(
            Instant::now() < deadline,
            "the events were not acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = relay.stop();
    assert_eq!(
        (report.acknowledged, report.unrouted),
        (EVENTS as u64, EVENTS as u64),
        "{report:?}"
    );
    assert_eq!(receiver.count(), 0);
}
