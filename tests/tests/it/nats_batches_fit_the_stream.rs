//! Batches of events for a stream that takes smaller messages than a batch (its own
//! `max_msg_size`): made full under it when the sink knows it, and when the limit was set
//! after the sink was built, a batch refused has the limit read again, and goes again with
//! the next in batches under it; each event is stored once, none dead-lettered.

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, block_on, context, drain_stream};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::nats::batch::{BATCH_HEADER, decode};
use deskhook_transports::nats::{NatsSink, StreamSettings};

const EVENTS: usize = 200;

#[test]
fn batches_fit_a_stream_made_with_a_message_limit() {
    let messages = batches_fit_the_stream(false);
    // Made under the limit (up to 12 KiB of events of about 2 KiB each): batches of four
    // or more, none refused and sent again event by event (which would store most events
    // alone).
    assert!(
        messages.len() <= EVENTS / 3,
        "batches of {messages:?} events"
    );
}

#[test]
fn a_batch_the_stream_refuses_for_its_size_goes_event_by_event() {
    let messages = batches_fit_the_stream(true);
    // The first batch refused has the sink read the limit again, and its events and the
    // next go in batches under it (before, each batch was refused, and every event was
    // stored alone).
    assert!(
        messages.len() <= EVENTS / 2,
        "batches of {messages:?} events"
    );
}

/// Events of about 2 KiB batched by up to 64 for a stream taking messages of 16 KiB at
/// most, the limit set before the sink is built or `after`: each stored once, none
/// dead-lettered. The events of each message stored, in stream order.
fn batches_fit_the_stream(after: bool) -> Vec<usize> {
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
    // Queued while the stream's endpoint is paused, so that they all wait at once when it
    // resumes: the batches are as full as they may be.
    let endpoints = sink.delivery().endpoints();
    endpoints.pause("nats").expect("the stream's endpoint");
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    for i in 0..EVENTS {
        // A ticket each: a ticket has one event in flight at a time.
        let mut t = ticket(&format!("T{i}"));
        (t.comments, t.logs) = (Vec::new(), Vec::new());
        dispatcher.emit(Action::Comment, &t, &user);
    }
    endpoints.resume("nats").expect("the stream's endpoint");
    guard.flush(WAIT).expect("every event is acknowledged");
    let stored = block_on(drain_stream(
        &server.url(),
        "DESKHOOK",
        std::time::Duration::from_millis(300),
    ));
    let mut ids = Vec::new();
    let mut messages = Vec::new();
    for message in &stored {
        match message.header(BATCH_HEADER) {
            Some(count) => {
                let count: usize = count.parse().expect("a count");
                let events = decode(&message.body.clone().into(), count).expect("a batch");
                ids.extend(
                    events
                        .iter()
                        .map(|e| e.header("webhook-id").unwrap().to_owned()),
                );
                messages.push(count);
            }
            None => {
                ids.push(message.header("webhook-id").unwrap().to_owned());
                messages.push(1);
            }
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "each event once");
    assert_eq!(messages.iter().sum::<usize>(), EVENTS, "each event once");
    assert!(
        read_dead_letters(&dead).map_or(true, |letters| letters.is_empty()),
        "no dead letter"
    );
    messages
}
