//! A paused endpoint does not slow its tickets at the other endpoints: a message whose
//! events wait only for paused endpoints is parked as soon as the others have them, not
//! after `park_after` (an hour here). Before, each event of a ticket reached the healthy
//! endpoint only once the one before was parked: one per `park_after`.
//!
//! Two receivers, `crm` in the relay's configuration and `audit` paused in the endpoints
//! bucket. `nats-server` runs on a free 127.0.0.1 port; the receivers are on 127.0.0.1.

use std::time::Duration;

use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, context, numbers, publish_numbered,
};
use deskhook_tests::{Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::{DeliverySink, EndpointSpec};
use deskhook_transports::endpoint_store::EndpointStore;
use deskhook_transports::relay::Relay;

#[test]
fn a_tickets_events_reach_the_healthy_endpoint_while_another_is_paused() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let crm = Receiver::ok();
    let audit = Receiver::ok();
    block_on(async {
        let js = context(&server.url()).await;
        let store = EndpointStore::open(&js, "deskhook_endpoints", 1, None)
            .await
            .expect("the bucket");
        let mut spec = EndpointSpec::new("audit", audit.url.clone());
        spec.allow_private = true;
        store.put(&spec, true).await.expect("audit, paused");
    });
    publish_numbered(&server, "T1", 10, &dead);

    let relay = RunningRelay::start(
        Relay::builder(
            server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("crm", &crm, "0s"))
                .dead_letter_path(&dead),
        )
        .endpoints_bucket("deskhook_endpoints", None)
        .park_after(Duration::from_secs(3600))
        // Time for the last message's park once crm has its event (a grace ends as soon as
        // nothing but parked events is left).
        .grace(Duration::from_secs(10)),
    );
    // With the messages parked only after `park_after`, the second would wait an hour.
    crm.wait_for(10);
    let report = relay.stop();
    assert_eq!(numbers(&crm), (0..10).collect::<Vec<_>>(), "{report:?}");
    assert_eq!(audit.count(), 0, "paused");
    assert_eq!(
        report.parked, 10,
        "each message, once crm had it: {report:?}"
    );
}
