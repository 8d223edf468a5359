//! A ticket's next event goes only once the server has confirmed the acknowledgement of
//! the message before it: an acknowledgement the server never got would bring that message
//! back, after the next event, to a relay that no longer knows its events (or to the
//! partition's next owner).
//!
//! The relay's acknowledgements are refused by the server's permissions (its user may not
//! publish to `$JS.ACK.>`), as a lost one would be, until the configuration is reloaded.
//! `nats-server` runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::time::{Duration, Instant};

use deskhook_tests::nats::{NatsServer, RunningRelay, block_on, context, numbers, stream_len};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint, ticket};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::{NatsSink, StreamSettings, async_nats};
use deskhook_transports::relay::Relay;
use futures_util::StreamExt as _;

/// The publisher may do anything; the relay may not acknowledge (`deny`) or may (``).
fn config(relay_may_not: &str) -> String {
    format!(
        r#"authorization {{
  users = [
    {{ user: "publisher", password: "publisher" }}
    {{ user: "relay", password: "relay", permissions: {{ publish: {{ deny: [{relay_may_not}] }} }} }}
  ]
}}
"#
    )
}

fn login(user: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::with_user_and_password(user.to_owned(), user.to_owned())
}

/// The server's URL with `user`'s credentials in it, as `deskhook relay --nats` takes them.
fn url_as(server: &NatsServer, user: &str) -> String {
    server
        .url()
        .replace("nats://", &format!("nats://{user}:{user}@"))
}

/// Waits until `receiver` has `n` requests, 30 s at most.
fn wait_for(receiver: &Receiver, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.requests().len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} delivered: {:?}",
            receiver.requests().len(),
            numbers(receiver)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many messages the consumers of `stream` have handed out and not had acknowledged.
async fn handed_out(url: &str, stream: &str) -> u64 {
    let js = context(url).await;
    let stream = js.get_stream(stream).await.expect("the stream exists");
    let mut consumers = stream.consumers();
    let mut pending = 0;
    while let Some(info) = consumers.next().await {
        pending += info.map_or(0, |c| c.num_ack_pending as u64);
    }
    pending
}

#[test]
fn a_tickets_next_event_waits_for_the_servers_confirmation() {
    let server = NatsServer::start_configured(&config(r#""$JS.ACK.>""#));
    let (_dir, dead) = dead_letter_file();
    // The first answer waits for the test's word: the second event must be in its
    // ticket's gate, behind the first, before the first is acknowledged. (Were the second
    // message taken after the first's acknowledgement was sent, nothing would have waited
    // for it, and it would go at once, as the relay's docs say.)
    let (answer, answer_now) = std::sync::mpsc::channel::<()>();
    let answer_now = std::sync::Mutex::new(answer_now);
    let receiver = Receiver::start(move |_, n| {
        if n == 0 {
            let _ = answer_now
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
        }
        Answer::status(204)
    });

    // Two events of one ticket, in two messages.
    let (publisher, guard) = NatsSink::builder(server.url())
        .connect_options(login("publisher"))
        .stream(StreamSettings::new())
        .require_server(true)
        .dead_letter_path(&dead)
        .build()
        .expect("the publisher starts");
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("nats", publisher)
        .build();
    for n in 0..2 {
        let mut ticket = ticket("T1");
        ticket.subject = n.to_string();
        dispatcher.emit(
            deskhook::Action::Comment,
            &ticket,
            &deskhook::sample::user(),
        );
        guard.flush(Duration::from_secs(20)).expect("published");
    }

    // Confirmations are asked for every 5 s (a quarter of `ack_wait`, at most 5 s), for
    // 60 s (twice `ack_wait`): then the events would go all the same, but `wait_for` gives
    // up after 30 s.
    let relay = RunningRelay::start(
        Relay::builder(
            url_as(&server, "relay"),
            DeliverySink::builder()
                .endpoint(endpoint("crm", &receiver, "0s"))
                .dead_letter_path(&dead),
        )
        .ack_wait(Duration::from_secs(30)),
    );
    // Both messages handed out to the relay, which takes them in one go (one pull): a
    // margin for it to take the second after the first (the relay says nothing outside
    // when it takes a message; the server's count is the closest sign), then the first is
    // answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = StreamSettings::new().stream_name().to_owned();
    while block_on(handed_out(&url_as(&server, "publisher"), &stream)) < 2 {
        assert!(
            Instant::now() < deadline,
            "the relay never had both messages"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    answer.send(()).expect("the receiver waits");
    wait_for(&receiver, 1);
    // The first acknowledgement is refused, and asked again: the second event waits. Were
    // it let go on the acknowledgement sent, it would follow at once.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(numbers(&receiver), [0], "the second event waits");

    server.reconfigure(&config(""));
    // Let go by the confirmation, the next time it is asked for (within 5 s), not by the
    // end of the wait for one.
    wait_for(&receiver, 2);
    let report = relay.stop();

    assert_eq!(
        numbers(&receiver),
        [0, 1],
        "each once, in order ({report:?})"
    );
    let left = block_on(stream_len(
        &url_as(&server, "publisher"),
        StreamSettings::new().stream_name(),
    ));
    assert_eq!(left, 0, "both acknowledged ({report:?})");
}

/// The relay has the server confirm an acknowledgement by sending it as a request on the
/// message's reply subject, again after one sent without (see `relay::book::settle`): the
/// server answers for a message it has acknowledged already, removed from its work-queue
/// stream, or the relay would wait for the answer in vain.
#[test]
fn the_server_answers_an_acknowledgement_sent_again() {
    use async_nats::jetstream::{consumer, stream};
    let server = NatsServer::start();
    block_on(async {
        let js = context(&server.url()).await;
        let stream = js
            .create_stream(stream::Config {
                name: "ACKS".to_owned(),
                subjects: vec!["acks.>".to_owned()],
                retention: stream::RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await
            .expect("the stream is made");
        js.publish("acks.1", "one".into())
            .await
            .expect("published")
            .await
            .expect("stored");
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("acks".to_owned()),
                filter_subject: "acks.1".to_owned(),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("the consumer is made");
        let mut messages = consumer
            .fetch()
            .max_messages(1)
            .messages()
            .await
            .expect("a fetch");
        let message = messages.next().await.expect("a message").expect("readable");
        message.ack().await.expect("the ack is sent");
        js.client().flush().await.expect("flushed");
        let reply = message.reply.clone().expect("a reply subject");
        for time in ["first", "second"] {
            tokio::time::timeout(
                Duration::from_secs(5),
                js.client().request(reply.clone(), "+ACK".into()),
            )
            .await
            .unwrap_or_else(|_| panic!("no answer to the {time} acknowledgement sent again"))
            .unwrap_or_else(|e| panic!("the {time} acknowledgement sent again: {e}"));
        }
    });
}
