//! A batch message is acknowledged once all its events have finished, so a relay holds a
//! ticket's next event until the message of its last one is acknowledged: otherwise, when
//! the partition's next owner delivers the unacknowledged batch again, the ticket's earlier
//! event would arrive after its later one.
//!
//! The stream holds two messages of one partition: a batch of T's event 1 and U's event 1,
//! then T's event 2 alone. U's endpoint answers 503 while the first relay runs, so the batch
//! stays unacknowledged. The first relay delivers T1 and holds T2; it stops; the second
//! relay (U's endpoint healed) delivers the batch again, then T2. T's arrivals are 1, 1, 2.
//! When the batch waits longer than the relay's `park_after`, the relay parks U1 (its
//! endpoint is failing) and acknowledges the batch, and T2 goes; the next relay delivers U1
//! from the parked bucket, and T1 is not delivered again. T's arrivals are 1, 2.
//! A batch that holds two events of one ticket (deskhook's publisher never makes one, as it
//! publishes a ticket's next event only once its last is stored) is delivered in order,
//! without waiting on itself.
//!
//! A batch that cannot be read, and a message without deskhook's headers, are terminated
//! and counted in the relay's report; the event after them is delivered.
//!
//! `nats-server` runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deskhook::sink::EventId;
use deskhook_tests::nats::{NatsServer, RunningRelay, block_on, context, stream_len};
use deskhook_tests::{Answer, Received, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::async_nats::HeaderMap;
use deskhook_transports::nats::batch::{self, BATCH_HEADER, Framed};
use deskhook_transports::nats::{MSG_ID_HEADER, StreamSettings};
use deskhook_transports::relay::{Relay, RelayReport};

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
    block_on(async {
        let context = context(&server.url()).await;
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

/// A relay delivering to `receiver` (endpoint `crm`, retried on `retry`).
fn relay_to(
    server: &NatsServer,
    receiver: &Receiver,
    dead: &std::path::Path,
    retry: &str,
) -> Relay {
    Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", receiver, retry))
            .dead_letter_path(dead),
    )
}

/// What arrived: (ticket, number) of each request.
type Arrived = [(String, String)];

/// (ticket, number) of a request.
fn named(request: &Received) -> (String, String) {
    let body = request.json();
    let field = |name: &str| body["ticket"][name].as_str().expect(name).to_owned();
    (field("code"), field("subject"))
}

/// What arrived while the first relay ran, and in all, with both relays' reports.
struct Run {
    first: Vec<(String, String)>,
    all: Vec<(String, String)>,
    reports: [RelayReport; 2],
    /// The entries left in the relays' parked bucket at the end.
    parked_left: u64,
}

impl Run {
    /// How many times ticket `ticket`'s event `n` arrived in `arrived`.
    fn count(arrived: &Arrived, ticket: &str, n: &str) -> usize {
        arrived
            .iter()
            .filter(|(t, k)| t == ticket && k == n)
            .count()
    }

    /// Ticket `ticket`'s arrivals in `arrived`, in order.
    fn of<'a>(arrived: &'a Arrived, ticket: &str) -> Vec<&'a str> {
        arrived
            .iter()
            .filter(|(t, _)| t == ticket)
            .map(|(_, n)| n.as_str())
            .collect()
    }
}

/// The stream holds a batch of T1 and U1, then T2 alone. U's endpoint answers 503 while
/// the first relay runs (with `park_after`), which stops once `enough` arrived; the second
/// relay runs with U's endpoint healed until everything arrived.
fn run(park_after: Duration, enough: &dyn Fn(&Arrived) -> bool) -> Run {
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
        // After two attempts U1 waits an hour for its third.
        RunningRelay::start(
            relay_to(&server, &receiver, &dead, "0s,20ms,1h")
                .park_after(park_after)
                .grace(Duration::from_millis(100)),
        )
    };
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
    let first = relay();
    let arrived_first = wait_for(enough);
    let first_report = first.stop();
    healed.store(true, Ordering::SeqCst);
    let second = relay();
    let all = wait_for(&|a| Run::count(a, "T", "2") >= 1 && Run::count(a, "U", "1") >= 3);
    // The receiver has the last request; the relay may not have its answer yet (a stop
    // then leaves the event to the next owner): give it the time to remove the entry.
    // The bucket's stream, not its keys listed (see `relay_parks_what_a_failing_endpoint_holds`'s
    // `parked_left`): a removed entry leaves no message.
    let parked = || block_on(stream_len(&server.url(), "KV_deskhook-relay-parked"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while parked() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second_report = second.stop();
    let parked_left = parked();
    Run {
        first: arrived_first,
        all,
        reports: [first_report, second_report],
        parked_left,
    }
}

#[test]
fn a_tickets_next_event_waits_for_its_batch_to_be_acknowledged() {
    // U1 failed twice: its batch is not acknowledged, and T2 waits.
    let run = run(Duration::from_secs(60), &|a| {
        Run::count(a, "U", "1") == 2 && Run::count(a, "T", "1") == 1
    });
    assert_eq!(
        Run::count(&run.first, "T", "2"),
        0,
        "T2 waits for T1's batch: {:?}",
        run.first
    );
    assert_eq!(
        run.reports[0].handed_back, 2,
        "U1 in delivery and T2 waiting, left for the next owner: {:?}",
        run.reports[0]
    );
    assert_eq!(
        Run::of(&run.all, "T"),
        ["1", "1", "2"],
        "T1 again with its batch, then T2"
    );
}

#[test]
fn a_batch_held_up_by_a_failing_endpoint_is_parked_and_its_tickets_go_on() {
    // After 50 ms the first relay parks U1 and acknowledges the batch, and T2 goes while U1
    // still fails. The first relay stops once U1 has failed twice too (its retry 20 ms after
    // the first failure may come after T2 on a busy machine).
    let run = run(Duration::from_millis(50), &|a| {
        Run::count(a, "T", "2") == 1 && Run::count(a, "U", "1") == 2
    });
    assert_eq!(Run::count(&run.first, "T", "1"), 1, "{:?}", run.first);
    assert_eq!(run.reports[0].parked, 1, "{:?}", run.reports[0]);
    assert_eq!(
        run.reports[0].handed_back, 1,
        "U1, withdrawn for the next owner: {:?}",
        run.reports[0]
    );
    // The batch is gone from the stream: T1 is not delivered again (it would come after
    // T2); U1 comes from the parked bucket.
    assert_eq!(Run::of(&run.all, "T"), ["1", "2"], "{:?}", run.all);
    assert_eq!(
        Run::count(&run.all, "U", "1"),
        3,
        "two failures, then U1 delivered"
    );
    assert_eq!(run.reports[1].duplicates, 0, "{:?}", run.reports[1]);
    assert_eq!(run.reports[1].acknowledged, 1, "U1: {:?}", run.reports[1]);
    assert_eq!(run.parked_left, 0, "the entry went once U1 was delivered");
}

#[test]
fn two_events_of_a_ticket_in_one_batch_go_in_order() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    publish(&server, &[&[event("T", 1), event("U", 1), event("T", 2)]]);
    let relay = RunningRelay::start(relay_to(&server, &receiver, &dead, "0s"));
    let arrived: Vec<(String, String)> = receiver.wait_for(3).iter().map(named).collect();
    let report = relay.stop();
    assert_eq!(Run::of(&arrived, "T"), ["1", "2"], "{arrived:?}");
    assert_eq!(report.acknowledged, 3, "{report:?}");
}

#[test]
fn messages_that_are_not_deskhooks_are_terminated_and_counted() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let receiver = Receiver::ok();
    // A batch whose payload is cut short, a message without deskhook's headers, then an
    // event: only the event is delivered, and the relay counts the other two.
    let mut batched = batch::encode(&[&event("T", 1), &event("T", 2)]).to_vec();
    batched.truncate(batched.len() - 3);
    publish(&server, &[]);
    block_on(async {
        let context = context(&server.url()).await;
        let mut headers = HeaderMap::new();
        headers.insert(BATCH_HEADER, "2");
        for (subject, headers, payload) in [
            ("deskhook.batch.events.0", headers, Bytes::from(batched)),
            (
                "deskhook.zenlix.comment.0",
                HeaderMap::new(),
                Bytes::from("{}"),
            ),
        ] {
            context
                .publish_with_headers(subject, headers, payload)
                .await
                .expect("published")
                .await
                .expect("stored");
        }
    });
    publish(&server, &[&[event("U", 1)]]);
    let relay = RunningRelay::start(relay_to(&server, &receiver, &dead, "0s"));
    let arrived: Vec<(String, String)> = receiver.wait_for(1).iter().map(named).collect();
    let report = relay.stop();
    assert_eq!(arrived, [("U".to_owned(), "1".to_owned())]);
    assert_eq!(report.terminated, 2, "{report:?}");
    assert_eq!(report.acknowledged, 1, "{report:?}");
}

/// A batch message bigger than the relay's whole memory budget, for three endpoints, is
/// delivered whole: the relay lets it past its room (nothing else could ever make room for
/// it), and the engine takes what the relay lets in (an event's body once, however many
/// endpoints it goes to), so that none of its events is dead-lettered for want of room.
#[test]
fn a_batch_bigger_than_the_whole_budget_is_delivered_whole() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    // Slow enough that the whole batch is in the engine at once.
    let receiver = Receiver::start(|_, _| {
        std::thread::sleep(Duration::from_millis(5));
        Answer::status(204)
    });
    let padded = |n: usize| {
        let mut framed = event(&format!("B{n}"), n);
        framed.body = Bytes::from(format!(
            r#"{{"ticket":{{"code":"B{n}","subject":"{n}","text":"{}"}}}}"#,
            "x".repeat(2048)
        ));
        framed
    };
    // 40 events of 2 KiB and more: over 80 KiB, against a budget of 32 KiB.
    let events: Vec<Framed> = (0..40).map(padded).collect();
    publish(&server, &[&events]);
    let relay = RunningRelay::start(Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(16))
            .endpoint(endpoint("chat", &receiver, "0s").max_in_flight(16))
            .endpoint(endpoint("audit", &receiver, "0s").max_in_flight(16))
            .max_queued_bytes(32 * 1024)
            .dead_letter_path(&dead),
    ));
    let arrived = receiver.wait_for(120).len();
    let report = relay.stop();
    let letters = deskhook_transports::delivery::read_dead_letters(&dead).unwrap();
    assert_eq!(
        (arrived, letters.len()),
        (120, 0),
        "{report:?} {:?}",
        letters.iter().map(|l| &l.reason).collect::<Vec<_>>()
    );
    assert_eq!(report.acknowledged, 40, "{report:?}");
}

/// A batch with more events than the relay's room for events (each endpoint's queue) is let
/// in whole, as it must be, and delivered: the engine's queues take all of its events, where
/// they dead-lettered what went past `queue_capacity`. Its first event waits in its ticket's
/// gate for the message before it, and reaches the queues after the others filled them.
#[test]
fn a_batch_bigger_than_the_endpoints_queues_is_delivered_whole() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    // Slow enough that the whole batch is in the engine at once.
    let receiver = Receiver::start(|_, _| {
        std::thread::sleep(Duration::from_millis(2));
        Answer::status(204)
    });
    let lead = event("Q0", 0);
    let batch: Vec<Framed> = (0..40).map(|n| event(&format!("Q{n}"), n + 1)).collect();
    publish(&server, &[std::slice::from_ref(&lead), &batch]);
    // Room for 2 events: two messages of one partition, or the queues' 3 less one.
    let relay = RunningRelay::start(
        Relay::builder(
            server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(4))
                .endpoint(endpoint("audit", &receiver, "0s").max_in_flight(4))
                .queue_capacity(3)
                .dead_letter_path(&dead),
        )
        .max_pending(2),
    );
    let arrived = receiver.wait_for(82);
    let report = relay.stop();
    let letters = deskhook_transports::delivery::read_dead_letters(&dead).unwrap();
    assert_eq!(
        (arrived.len(), letters.len()),
        (82, 0),
        "{report:?} {:?}",
        letters.iter().map(|l| &l.reason).collect::<Vec<_>>()
    );
    assert_eq!(report.acknowledged, 41, "{report:?}");
    // Q0's two events in their order at each endpoint.
    let q0: Vec<String> = arrived
        .iter()
        .filter(|r| r.json()["ticket"]["code"] == "Q0")
        .map(|r| r.json()["ticket"]["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(q0, ["0", "0", "1", "1"]);
}
