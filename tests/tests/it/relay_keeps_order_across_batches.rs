//! A batch message is acknowledged once all its events have finished, so a relay holds a
//! ticket's next event until the message of its last one is acknowledged: otherwise, when
//! the partition's next owner delivers the unacknowledged batch again, the ticket's earlier
//! event would arrive after its later one.
//!
//! The stream holds two messages of one partition: a batch of T's event 1 and U's event 1,
//! then T's event 2 alone. U's endpoint answers 503 while the first relay runs, so the batch
//! stays unacknowledged. The first relay delivers T1 and holds T2; it stops; the second
//! relay (U's endpoint healed) delivers the batch again, then T2. T's arrivals are 1, 1, 2.
//! A batch that holds two events of one ticket (deskhook's publisher never makes one, as it
//! publishes a ticket's next event only once its last is stored) is delivered in order,
//! without waiting on itself.
//!
//! `nats-server` runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deskhook::sink::EventId;
use deskhook_tests::nats::{NatsServer, RunningRelay};
use deskhook_tests::{Answer, Received, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::async_nats::{self, HeaderMap, jetstream};
use deskhook_transports::nats::batch::{self, BATCH_HEADER, Framed};
use deskhook_transports::nats::{MSG_ID_HEADER, StreamSettings};
use deskhook_transports::relay::Relay;

/// One event of ticket `ticket`, numbered `n` in its subject: its headers and its body.
fn event(ticket: &str, n: usize) -> Framed {
    let id = EventId::new().to_string();
    let body = format!(r#"{{"ticket":{{"code":"{ticket}","subject":"{n}"}}}}"#);
    Framed::new(
        vec![
            ("webhook-id".to_owned(), id),
            ("x-deskhook-action".to_owned(), "comment".to_owned()),
            ("x-deskhook-ticket".to_owned(), ticket.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        Bytes::from(body),
    )
    .expect("valid headers")
}

/// Makes the stream (one partition) and stores each of `messages`: a batch, or an event
/// alone.
fn publish(server: &NatsServer, messages: &[&[Framed]]) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let client = async_nats::connect(server.url()).await.expect("a client");
            let context = jetstream::new(client);
            StreamSettings::new()
                .partitions(1)
                .ensure(&context)
                .await
                .expect("the stream");
            for events in messages {
                let mut headers = HeaderMap::new();
                let (subject, payload) = match events {
                    [alone] => {
                        for (name, value) in alone.headers() {
                            headers.insert(name.as_str(), value.as_str());
                        }
                        headers.insert(MSG_ID_HEADER, alone.header("webhook-id").expect("an id"));
                        ("deskhook.zenlix.comment.0", alone.body.clone())
                    }
                    _ => {
                        headers.insert(BATCH_HEADER, events.len().to_string().as_str());
                        let events: Vec<&Framed> = events.iter().collect();
                        ("deskhook.batch.events.0", batch::encode(&events))
                    }
                };
                context
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .expect("published")
                    .await
                    .expect("stored");
            }
        });
}

/// What arrived: (ticket, number) of each request.
type Arrived = [(String, String)];

/// (ticket, number) of a request.
fn named(request: &Received) -> (String, String) {
    let body = request.json();
    let field = |name: &str| body["ticket"][name].as_str().expect(name).to_owned();
    (field("code"), field("subject"))
}

#[test]
fn a_tickets_next_event_waits_for_its_batch_to_be_acknowledged() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let healed = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start({
        let healed = healed.clone();
        move |request, _| {
            if named(request).0 == "U" && !healed.load(Ordering::SeqCst) {
                Answer::status(503)
            } else {
                Answer::status(204)
            }
        }
    });

    publish(
        &server,
        &[&[event("T", 1), event("U", 1)], &[event("T", 2)]],
    );

    let relay = || {
        RunningRelay::start(
            Relay::builder(
                server.url(),
                DeliverySink::builder()
                    .endpoint(endpoint("crm", &receiver, "0s,20ms,1h"))
                    .dead_letter_path(&dead),
            )
            .grace(Duration::from_millis(100)),
        )
    };
    let first = relay();
    // U's event failed twice (it waits an hour for its third attempt), so its batch is not
    // acknowledged: T2 came in the meantime, and waits.
    let wait_for = |what: &dyn Fn(&Arrived) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let arrived: Vec<(String, String)> = receiver.requests().iter().map(named).collect();
            if what(&arrived) {
                return arrived;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still waiting; arrived: {arrived:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let count = |arrived: &Arrived, ticket: &str, n: &str| {
        arrived
            .iter()
            .filter(|(t, k)| t == ticket && k == n)
            .count()
    };
    let arrived = wait_for(&|a| count(a, "U", "1") == 2 && count(a, "T", "1") == 1);
    assert_eq!(
        count(&arrived, "T", "2"),
        0,
        "T2 waits for T1's batch: {arrived:?}"
    );
    let report = first.stop();
    assert_eq!(
        report.handed_back, 2,
        "U1 in delivery and T2 waiting, left for the next owner: {report:?}"
    );

    healed.store(true, Ordering::SeqCst);
    let second = relay();
    let arrived = wait_for(&|a| count(a, "T", "2") == 1 && count(a, "U", "1") == 3);
    second.stop();
    let of_t: Vec<&str> = arrived
        .iter()
        .filter(|(t, _)| t == "T")
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(of_t, ["1", "1", "2"], "T1 again with its batch, then T2");
}

#[test]
fn two_events_of_a_ticket_in_one_batch_go_in_order() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    publish(&server, &[&[event("T", 1), event("U", 1), event("T", 2)]]);
    let relay = RunningRelay::start(Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .dead_letter_path(&dead),
    ));
    let arrived: Vec<(String, String)> = receiver.wait_for(3).iter().map(named).collect();
    let report = relay.stop();
    let of_t: Vec<&str> = arrived
        .iter()
        .filter(|(t, _)| t == "T")
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(of_t, ["1", "2"], "{arrived:?}");
    assert_eq!(report.acknowledged, 3, "{report:?}");
}
