//! Relays of one stream share one durable name: a relay named otherwise refuses to start
//! while another group's consumers work the stream, as it does while a consumer made by
//! hand holds a partition's subjects. It used to delete their consumers to make its own:
//! the two groups deleted each other's, and events were lost, repeated and reordered.
//!
//! `nats-server` runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::time::Duration;

use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, context, numbers, publish_numbered, stream_len,
};
use deskhook_tests::{Receiver, dead_letter_file, endpoint};
use deskhook_transports::Error;
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::relay::Relay;

/// A relay delivering to `receiver`, named `durable`.
fn relay(server: &NatsServer, receiver: &Receiver, dead: &std::path::Path, durable: &str) -> Relay {
    Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", receiver, "0s"))
            .dead_letter_path(dead),
    )
    .durable(durable)
    .grace(Duration::from_millis(300))
}

/// What `relay` fails with. Told to stop after 10 s, one that runs gives its report.
fn refusal(relay: Relay) -> String {
    let stop = async { tokio::time::sleep(Duration::from_secs(10)).await };
    match block_on(relay.run(stop)) {
        Err(Error::Config(why)) => why,
        other => panic!("the relay ran: {other:?}"),
    }
}

#[test]
fn a_relay_named_otherwise_refuses_and_the_working_group_loses_nothing() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    publish_numbered(&server, "T1", 5, &dead);
    let working = RunningRelay::start(relay(&server, &receiver, &dead, "deskhook-relay"));
    receiver.wait_for(5);

    let why = refusal(relay(&server, &receiver, &dead, "eu-relay"));
    assert!(
        why.starts_with("stream 'DESKHOOK': consumer 'deskhook-relay-")
            && why.contains(
                "belongs to other relays, named 'deskhook-relay', and this one is \
                 named 'eu-relay'"
            )
            && why.contains("start this one with --durable deskhook-relay"),
        "{why}"
    );

    // The working relay goes on, its consumers untouched.
    publish_numbered(&server, "T2", 5, &dead);
    receiver.wait_for(10);
    let report = working.stop();
    assert_eq!(
        numbers(&receiver),
        [0, 1, 2, 3, 4, 0, 1, 2, 3, 4],
        "each once, in order ({report:?})"
    );
    assert_eq!(report.acknowledged, 10, "{report:?}");
}

#[test]
fn a_consumer_made_by_hand_on_a_partition_is_named_and_left_alone() {
    use deskhook_transports::nats::async_nats::jetstream::consumer;
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    publish_numbered(&server, "T1", 1, &dead);
    let settings = StreamSettings::new();
    block_on(async {
        let js = context(&server.url()).await;
        let stream = js
            .get_stream(settings.stream_name())
            .await
            .expect("the stream");
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("audit".to_owned()),
                filter_subject: settings.partition_filter(3),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("the consumer is made");
    });

    let why = refusal(relay(&server, &receiver, &dead, "deskhook-relay"));
    assert_eq!(
        why,
        "stream 'DESKHOOK': consumer 'audit' on partition 3's subjects is not a relay's, and \
         the stream gives each message to one consumer: the relays cannot pull that partition \
         while it exists. Delete it if it is not needed (`nats consumer rm DESKHOOK audit`)"
    );
    let consumers = block_on(async {
        use futures_util::StreamExt as _;
        let js = context(&server.url()).await;
        let stream = js
            .get_stream(settings.stream_name())
            .await
            .expect("the stream");
        stream
            .consumer_names()
            .map(|n| n.expect("a name"))
            .collect::<Vec<String>>()
            .await
    });
    assert_eq!(consumers, ["audit"], "left alone");
    assert_eq!(receiver.count(), 0);
}

/// A consumer made by hand while a relay runs (the relay's own consumer of that partition
/// gone meanwhile): the relay, making its consumer again, finds it, says so once at
/// `error`, and leaves it and the partition alone; once it is gone, the relay pulls again
/// and delivers what waited.
#[test]
fn a_consumer_that_appears_later_is_left_alone_until_it_goes() {
    use deskhook_transports::nats::async_nats::jetstream::consumer;
    use deskhook_transports::nats::partition_of;
    use futures_util::StreamExt as _;
    let logs = deskhook_tests::logs::logs();
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    let code = "LATER-1";
    publish_numbered(&server, code, 1, &dead);
    let settings = StreamSettings::new();
    let partition = partition_of(code, settings.partition_count());
    let filter = settings.partition_filter(partition);
    let relay = RunningRelay::start(relay(&server, &receiver, &dead, "deskhook-relay"));
    receiver.wait_for(1);
    // Acknowledged (a work-queue stream lets it go then): the consumer deleted below could
    // otherwise take the acknowledgement with it, and the event would come again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while block_on(stream_len(&server.url(), settings.stream_name())) > 0 {
        assert!(std::time::Instant::now() < deadline, "never acknowledged");
        std::thread::sleep(Duration::from_millis(10));
    }

    let consumers = || {
        block_on(async {
            let js = context(&server.url()).await;
            let stream = js
                .get_stream(settings.stream_name())
                .await
                .expect("the stream");
            stream
                .consumers()
                .map(|info| info.expect("a consumer"))
                .filter(|info| std::future::ready(info.config.filter_subject == filter))
                .map(|info| info.name)
                .collect::<Vec<String>>()
                .await
        })
    };
    let ours = consumers();
    assert_eq!(ours.len(), 1, "{ours:?}");
    block_on(async {
        let js = context(&server.url()).await;
        let stream = js
            .get_stream(settings.stream_name())
            .await
            .expect("the stream");
        stream
            .delete_consumer(&ours[0])
            .await
            .expect("the relay's consumer deleted");
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("audit".to_owned()),
                filter_subject: filter.clone(),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("the consumer is made");
    });
    publish_numbered(&server, code, 1, &dead);

    let said = logs.wait_for(&format!(
        "relay: partition {partition}: consumer 'audit' on partition {partition}'s subjects \
         is not a relay's"
    ));
    assert!(said.ends_with("; not pulled until it is gone"), "{said}");
    assert_eq!(consumers(), ["audit"], "left alone");
    assert_eq!(receiver.count(), 1, "the partition waits");

    block_on(async {
        let js = context(&server.url()).await;
        let stream = js
            .get_stream(settings.stream_name())
            .await
            .expect("the stream");
        stream.delete_consumer("audit").await.expect("deleted");
    });
    receiver.wait_for(2);
    let report = relay.stop();
    assert_eq!(numbers(&receiver), [0, 0], "{report:?}");
    assert_eq!(
        logs.with(&format!(
            "consumer 'audit' on partition {partition}'s subjects"
        ))
        .len(),
        1,
        "said once"
    );
}

/// The stream made again with another partition count while a relay runs (deleted, then
/// made by a publisher configured otherwise): the relay stops, saying so, rather than leave
/// the events of partitions it does not know waiting until it is started again.
#[test]
fn a_stream_made_again_with_another_partition_count_stops_the_relay() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    // The stream, made with the default count (16).
    publish_numbered(&server, "T1", 1, &dead);
    let relay = RunningRelay::start(
        relay(&server, &receiver, &dead, "deskhook-relay").ack_wait(Duration::from_millis(300)),
    );
    receiver.wait_for(1);
    block_on(async {
        let js = context(&server.url()).await;
        js.delete_stream(StreamSettings::new().stream_name())
            .await
            .expect("the stream deleted");
        StreamSettings::new()
            .partitions(4)
            .ensure(&js)
            .await
            .expect("the stream made again");
    });
    let err = relay
        .ended_by_itself(Duration::from_secs(30))
        .expect_err("the relay stops");
    assert!(
        matches!(err, Error::Config(_))
            && err
                .to_string()
                .contains("records 4 partitions, where this relay works 16"),
        "{err}"
    );
}
