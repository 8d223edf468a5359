//! Batches of events for a stream that takes smaller messages than a batch (its own
//! `max_msg_size`): made under it when the sink knows it, and when the limit was set after
//! the sink was built, each batch refused goes event by event; each event is stored once,
//! none dead-lettered.

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, block_on, context, drain_stream};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::nats::{NatsSink, StreamSettings};

const EVENTS: usize = 200;

#[test]
fn batches_fit_a_stream_made_with_a_message_limit() {
    batches_fit_the_stream(false);
}

#[test]
fn a_batch_the_stream_refuses_for_its_size_goes_event_by_event() {
    batches_fit_the_stream(true);
}

/// Events of about 9 KiB batched for a stream taking messages of 16 KiB at most, the limit
/// set before the sink is built or `after`.
fn batches_fit_the_stream(after: bool) {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let settings = StreamSettings::new().partitions(1);
    let limit = |limited: bool| {
        let mut config = settings.stream_config();
        if limited {
            config.max_message_size = 16 * 1024;
        }
        config
    };
    block_on(async {
        context(&server.url())
            .await
            .create_stream(limit(!after))
            .await
            .expect("the stream is created");
    });
    let (sink, guard) = NatsSink::builder(server.url())
        .stream(settings.clone())
        .batch(64)
        .dead_letter_path(&dead)
        .build()
        .expect("the sink starts on the existing stream");
    if after {
        block_on(async {
            context(&server.url())
                .await
                .update_stream(limit(true))
                .await
                .expect("the stream takes its limit");
        });
    }
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
