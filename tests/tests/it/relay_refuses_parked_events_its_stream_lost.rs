//! Parked events of a partition the stream no longer has (made again with fewer) would never
//! be read: each relay reads the parked entries of the partitions it owns. A relay refuses
//! to start while there are such entries, naming them and what to do, rather than leave
//! their events undelivered without a word.
//!
//! `crm` is in the relay's configuration and `audit` paused in the endpoints bucket, so the
//! event is parked for `audit` once `crm` has it. `nats-server` runs on a free 127.0.0.1
//! port; the receivers are on 127.0.0.1.

use std::time::Duration;

use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, context, kv_keys, publish_numbered,
};
use deskhook_tests::{Receiver, dead_letter_file, endpoint};
use deskhook_transports::Error;
use deskhook_transports::delivery::{DeliverySink, EndpointSpec};
use deskhook_transports::endpoint_store::EndpointStore;
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::relay::Relay;

/// A relay delivering to `crm`, with the endpoints bucket.
fn relay(server: &NatsServer, crm: &Receiver, dead: &std::path::Path) -> Relay {
    Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", crm, "0s"))
            .dead_letter_path(dead),
    )
    .endpoints_bucket("deskhook_endpoints", None)
    .park_after(Duration::from_secs(3600))
    .grace(Duration::from_secs(10))
}

#[test]
fn a_relay_refuses_parked_events_of_partitions_the_stream_no_longer_has() {
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
    // The stream made with the default count (16).
    publish_numbered(&server, "T1", 1, &dead);
    let running = RunningRelay::start(relay(&server, &crm, &dead));
    crm.wait_for(1);
    let report = running.stop();
    assert_eq!(report.parked, 1, "{report:?}");
    let keys = block_on(kv_keys(&server.url(), "deskhook-relay-parked"));
    assert_eq!(keys.len(), 1, "{keys:?}");
    let partition: u32 = keys[0]
        .split('.')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the key starts with its partition");
    assert!(partition > 0, "T1's partition is one a stream of 1 has not");

    block_on(async {
        let js = context(&server.url()).await;
        js.delete_stream(StreamSettings::new().stream_name())
            .await
            .expect("the stream deleted");
        StreamSettings::new()
            .partitions(1)
            .ensure(&js)
            .await
            .expect("the stream made again");
    });
    let stop = async { tokio::time::sleep(Duration::from_secs(10)).await };
    let why = match block_on(relay(&server, &crm, &dead).run(stop)) {
        Err(Error::Config(why)) => why,
        other => panic!("the relay ran: {other:?}"),
    };
    assert_eq!(
        why,
        format!(
            "the parked events bucket 'deskhook-relay-parked' holds 1 entry of partition(s) \
             {partition} of stream 'DESKHOOK', which has 1 partition(s) now (it was made again \
             with fewer): no relay reads them, so their events would never be delivered. Make \
             the stream again with at least {} partitions (drained first) until `deskhook \
             parked` shows nothing, or give those events up by removing their entries (`nats \
             kv del deskhook-relay-parked KEY`, the keys starting with those partitions)",
            partition + 1
        )
    );
    // Nothing was delivered or taken meanwhile: the entry is there still.
    assert_eq!(
        block_on(kv_keys(&server.url(), "deskhook-relay-parked")),
        keys
    );
    assert_eq!((crm.count(), audit.count()), (1, 0));
}
