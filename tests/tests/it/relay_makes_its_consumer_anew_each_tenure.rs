//! A relay that takes a partition makes its consumer anew, even when one of its very name
//! is there: a leases bucket made again starts its revisions over, and a relay that died
//! under the old one left its consumer, with a message handed out and not acknowledged.
//! Taken over as it was, that consumer brings the message back only at its `ack_wait`,
//! after the ticket's later events.
//!
//! The first relay shows which name the partition's consumer gets in a new leases bucket;
//! the bucket is then deleted, a consumer of that name made by hand takes the ticket's first
//! event without acknowledging it, and a second relay takes the partition.
//! `nats-server` runs on a free 127.0.0.1 port; the receivers are on 127.0.0.1.

use std::time::Duration;

use deskhook_tests::nats::{NatsServer, RunningRelay, block_on, context, publish_in_turn};
use deskhook_tests::{Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::nats::async_nats::jetstream::consumer;
use deskhook_transports::relay::Relay;
use futures_util::StreamExt as _;

/// A relay delivering to `receiver`.
fn relay(server: &NatsServer, receiver: &Receiver, dead: &std::path::Path) -> Relay {
    Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", receiver, "0s"))
            .dead_letter_path(dead),
    )
    .grace(Duration::from_millis(300))
}

/// The names of the stream's consumers.
fn consumers(server: &NatsServer) -> Vec<String> {
    block_on(async {
        let js = context(&server.url()).await;
        let stream = js.get_stream("DESKHOOK").await.expect("the stream");
        let names: Vec<_> = stream.consumer_names().collect().await;
        names.into_iter().map(|n| n.expect("a name")).collect()
    })
}

#[test]
fn a_consumer_left_under_the_same_name_is_not_taken_over() {
    // The second relay takes the partition at the first one's revision unless something
    // came between its writes to the leases bucket (a machine under load): then the round
    // is made again, on a new server.
    for _ in 0..5 {
        if round() {
            return;
        }
    }
    panic!("in five rounds, the second relay never took the partition at the first one's revision");
}

/// One round on a new server; whether the second relay's consumer had the left one's name
/// (the case this file is about). Its events arrive in order either way.
fn round() -> bool {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let first = Receiver::ok();
    publish_in_turn(&server, 1, (&["A"], 1), &dead);
    let running = RunningRelay::start(relay(&server, &first, &dead));
    first.wait_for(1);
    let name = consumers(&server).pop().expect("the partition's consumer");
    running.stop();
    assert!(consumers(&server).is_empty(), "given back, deleted");

    publish_in_turn(&server, 1, (&["T1"], 2), &dead);
    block_on(async {
        let js = context(&server.url()).await;
        js.delete_key_value("deskhook-relay-leases")
            .await
            .expect("the leases bucket deleted");
        let stream = js.get_stream("DESKHOOK").await.expect("the stream");
        let stale = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: StreamSettings::new().partitions(1).partition_filter(0),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .expect("the dead relay's consumer");
        let mut handed_out = stale
            .fetch()
            .max_messages(1)
            .messages()
            .await
            .expect("a fetch");
        handed_out
            .next()
            .await
            .expect("T1's first event")
            .expect("a message");
    });

    let second = Receiver::ok();
    let running = RunningRelay::start(relay(&server, &second, &dead));
    second.wait_for(2);
    let same = consumers(&server) == [name.clone()];
    let report = running.stop();
    assert_eq!(
        deskhook_tests::nats::numbers(&second),
        [0, 1],
        "in order ({report:?})"
    );
    same
}
