//! Batches of events for a stream that takes smaller messages than a batch (its own
//! `max_msg_size`, set after the sink was built for a larger one): the events go one by
//! one, each stored once, none dead-lettered.

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, block_on, context, drain_stream};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::nats::{NatsSink, StreamSettings};

const EVENTS: usize = 200;

#[test]
fn a_batch_the_stream_refuses_for_its_size_goes_event_by_event() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let settings = StreamSettings::new().partitions(1);
    // The stream as deskhook makes it, but taking messages of 16 KiB at most: a batch of
    // ten events of about 9 KiB is over it, each event alone is not.
    block_on(async {
        let mut config = settings.stream_config();
        config.max_message_size = 16 * 1024;
        context(&server.url())
            .await
            .create_stream(config)
            .await
            .expect("the stream is created");
    });
    let (sink, guard) = NatsSink::builder(server.url())
        .stream(settings)
        .batch(64)
        .dead_letter_path(&dead)
        .build()
        .expect("the sink starts on the existing stream");
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    for i in 0..EVENTS {
        dispatcher.emit(Action::Comment, &ticket(&format!("T{}", i % 7)), &user);
    }
    guard.flush(WAIT).expect("every event is acknowledged");
    let stored = block_on(drain_stream(
        &server.url(),
        "DESKHOOK",
        std::time::Duration::from_millis(300),
    ));
    let mut ids: Vec<String> = stored
        .iter()
        .map(|m| m.header("webhook-id").unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (stored.len(), ids.len()),
        (EVENTS, EVENTS),
        "each event alone, once"
    );
    assert!(
        read_dead_letters(&dead).map_or(true, |letters| letters.is_empty()),
        "no dead letter"
    );
}
