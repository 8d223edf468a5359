//! A message the stream still holds though the partition's consumer has passed it (some
//! nats-server versions now and then skip one, and a consumer made again skips it too) is
//! found by the relay, which stores it again at the stream's tail: the event is delivered, not left in
//! the stream for good.
//!
//! The test makes that state on purpose, through the server's own API: the relay's consumer
//! is paused, an event is published, the consumer is reset past it and resumed. A message
//! of a subject no partition takes stays at the stream's head, before it. Consumer
//! pause and reset came with nats-server 2.11 and 2.14: on an older server the test says so
//! and ends (CI runs it again on the current release). `nats-server` runs on a free
//! 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, RunningRelay, context};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint, ticket};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::async_nats;
use deskhook_transports::nats::{NatsSink, StreamSettings, partition_of};
use deskhook_transports::relay::Relay;
use futures_util::StreamExt as _;

/// One request of the JetStream API, by hand; the server's error, if it answered with one.
async fn api(client: &async_nats::Client, subject: String, body: &str) -> Result<(), String> {
    let answer = client
        .request(subject.clone(), body.to_owned().into())
        .await
        .map_err(|e| format!("{subject}: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_slice(&answer.payload).map_err(|e| format!("{subject}: {e}"))?;
    match answer.get("error") {
        Some(error) => Err(format!("{subject}: {error}")),
        None => Ok(()),
    }
}

#[test]
fn a_relay_delivers_a_message_its_consumer_passed() {
    delivers_a_skipped_message(false);
}

/// In a stream that refuses deletes, the skipped message is stored again once: its copy is
/// delivered, the old one stays, and no third copy follows however often it is found.
#[test]
fn a_skipped_message_that_cannot_be_removed_is_copied_once() {
    delivers_a_skipped_message(true);
}

fn delivers_a_skipped_message(deny_delete: bool) {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::start(|_, _| Answer::status(204));
    if deny_delete {
        let mut config = StreamSettings::new().stream_config();
        config.deny_delete = true;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                context(&server.url())
                    .await
                    .create_stream(config)
                    .await
                    .expect("the stream")
            });
    }
    let (publisher, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new())
        .require_server(true)
        .dead_letter_path(&dead)
        .build()
        .expect("the publisher starts");
    let dispatcher = Dispatcher::builder().sink("nats", publisher).build();
    let user = deskhook::sample::user();
    let emit = |n: usize| {
        let mut ticket = ticket("T1");
        ticket.subject = n.to_string();
        dispatcher.emit(Action::Comment, &ticket, &user);
        guard.flush(Duration::from_secs(20)).expect("published");
    };
    let filter = StreamSettings::new()
        .partition_filter(partition_of("T1", StreamSettings::new().partition_count()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    emit(0);

    let relay = RunningRelay::start(
        Relay::builder(
            server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("crm", &receiver, "0s,10ms"))
                .dead_letter_path(&dead),
        )
        .ack_wait(Duration::from_millis(300)),
    );

    // The relay owns the ticket's partition and delivers its first event.
    receiver.wait_for(1);

    let made = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("a client");
        let version = client.server_info().version;
        let release: Vec<u32> = version.split('.').filter_map(|n| n.parse().ok()).collect();
        if release < vec![2, 14] {
            return Err(format!("version {version}; pause and reset need 2.14"));
        }
        let mut stream = context(&server.url())
            .await
            .get_stream("DESKHOOK")
            .await
            .expect("the stream");
        let mut consumers = stream.consumers();
        let mut name = None;
        while let Some(info) = consumers.next().await {
            let info = info.expect("the consumers");
            if info.config.filter_subject == filter {
                name = Some(info.name);
            }
        }
        let name = name.expect("the relay's consumer of the ticket's partition");
        let api_of = |verb: &str| format!("$JS.API.CONSUMER.{verb}.DESKHOOK.{name}");

        // A message no partition takes, at the stream's head from now on: the relay looks
        // past it.
        context(&server.url())
            .await
            .publish(
                format!("{}.stray", StreamSettings::new().prefix()),
                "{}".into(),
            )
            .await
            .expect("published")
            .await
            .expect("stored");
        // Paused for good, until resumed below.
        api(
            &client,
            api_of("PAUSE"),
            r#"{"pause_until":"2100-01-01T00:00:00Z"}"#,
        )
        .await?;
        emit(1);
        let last = stream.info().await.expect("the stream").state.last_sequence;
        api(
            &client,
            api_of("RESET"),
            &format!(r#"{{"seq":{}}}"#, last + 1),
        )
        .await?;
        api(&client, api_of("PAUSE"), "{}")
            .await
            .expect("the consumer resumed");
        let info = stream.consumer_info(&name).await.expect("the consumer");
        assert_eq!(
            info.ack_floor.stream_sequence, last,
            "the consumer counts the second event as acknowledged"
        );
        assert_eq!(info.num_pending, 0, "and has nothing to hand out");
        Ok::<u64, String>(last)
    });
    let skipped = match made {
        Ok(skipped) => skipped,
        Err(e) => {
            // An older server (no consumer pause or reset): nothing to test here.
            eprintln!("this nats-server cannot pause or reset a consumer ({e}); test not run");
            relay.stop();
            return;
        }
    };

    // The relay finds the event its consumer passed (two looks, 300 ms apart), and delivers
    // it.
    receiver.wait_for(2);
    if deny_delete {
        // Looks enough to have found the old one twice more (ack_wait is 300 ms).
        std::thread::sleep(Duration::from_millis(1500));
    }
    let report = relay.stop();
    assert_eq!(report.stored_again, 1, "{report:?}");
    let subjects: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["ticket"]["subject"].to_string())
        .collect();
    assert_eq!(subjects, [r#""0""#, r#""1""#], "each event once, in order");
    // What was delivered is a copy, the only one: the message skipped is gone from the
    // stream, or stays where it cannot be removed.
    runtime.block_on(async {
        let mut stream = context(&server.url())
            .await
            .get_stream("DESKHOOK")
            .await
            .expect("the stream");
        assert_eq!(
            stream.get_raw_message(skipped).await.is_ok(),
            deny_delete,
            "message {skipped} is in the stream"
        );
        let last = stream.info().await.expect("the stream").state.last_sequence;
        assert_eq!(last, skipped + 1, "one copy stored");
    });
}
