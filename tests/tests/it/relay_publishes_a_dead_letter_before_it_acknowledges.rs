//! A relay's dead letter goes to the stream `<stream>_DEAD` before the event's message is
//! acknowledged: the dead-letter file is not synced, and a host that crashed between an
//! acknowledgement and the publication would have lost the letter. When the dead stream
//! does not take it, the message is acknowledged once the publication has failed (the
//! letter is in the file). `nats-server` runs on a free 127.0.0.1 port; the receiver, which
//! refuses every event with a 400, is on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, context, drain_stream, publish_numbered, stream_len,
};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::{DeliverySink, read_dead_letters};
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::relay::Relay;

const DEAD_STREAM: &str = "DESKHOOK_DEAD";

/// A relay for `server` delivering to `receiver` as endpoint `crm`, with no retry, its
/// dead letters in `dead`.
fn relay(server: &NatsServer, receiver: &Receiver, dead: &Path) -> RunningRelay {
    RunningRelay::start(Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", receiver, "0s"))
            .dead_letter_path(dead),
    ))
}

/// How many messages the events' stream holds.
fn events_left(server: &NatsServer) -> u64 {
    block_on(stream_len(
        &server.url(),
        StreamSettings::new().stream_name(),
    ))
}

/// Waits up to 30 s for `done`, polled every 20 ms.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_dead_letter_is_in_the_dead_stream_when_the_message_is_acknowledged() {
    let server = NatsServer::start();
    let (_published, published_dead) = dead_letter_file();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::start(|_, _| Answer::status(400));
    publish_numbered(&server, "T1", 1, &published_dead);
    let relay = relay(&server, &receiver, &dead);
    wait_until("the event's message was not acknowledged", || {
        events_left(&server) == 0
    });
    // At once: the acknowledgement came after the publication.
    assert_eq!(block_on(stream_len(&server.url(), DEAD_STREAM)), 1);
    let report = relay.stop();
    assert_eq!(
        (report.acknowledged, report.dead_lettered),
        (1, 1),
        "{report:?}"
    );
    let letters = block_on(drain_stream(
        &server.url(),
        DEAD_STREAM,
        Duration::from_secs(1),
    ));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].subject, "deskhook-dead.crm");
    let letter: serde_json::Value = serde_json::from_slice(&letters[0].body).unwrap();
    let in_file = read_dead_letters(&dead).unwrap();
    assert_eq!(letter["id"], in_file[0].id.as_str());
    assert_eq!(letter["endpoint"], "crm");
    assert_eq!(receiver.count(), 1);
}

#[test]
fn the_message_waits_while_the_dead_stream_does_not_take_the_letter() {
    let server = NatsServer::start();
    // A dead stream that never acknowledges a publication: each one fails at the relay's
    // timeout (5 s).
    block_on(async {
        context(&server.url())
            .await
            .create_stream(
                deskhook_transports::nats::async_nats::jetstream::stream::Config {
                    name: DEAD_STREAM.to_owned(),
                    subjects: vec!["deskhook-dead.>".to_owned()],
                    no_ack: true,
                    ..Default::default()
                },
            )
            .await
            .expect("the dead stream is made")
    });
    let (_published, published_dead) = dead_letter_file();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::start(|_, _| Answer::status(400));
    publish_numbered(&server, "T1", 1, &published_dead);
    let relay = relay(&server, &receiver, &dead);
    wait_until("the event was not dead-lettered", || {
        read_dead_letters(&dead).is_ok_and(|letters| letters.len() == 1)
    });
    // Its publication is under way for 5 s: the message is not acknowledged meanwhile.
    // (Before the fix, it was within milliseconds of the letter.)
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(1) {
        assert_eq!(
            events_left(&server),
            1,
            "the message was acknowledged before its dead letter was published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Once the publication failed, the letter is in the file: the message ends.
    wait_until(
        "the message was not acknowledged after the publication failed",
        || events_left(&server) == 0,
    );
    let report = relay.stop();
    assert_eq!(
        (report.acknowledged, report.dead_lettered),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(receiver.count(), 1);
}
