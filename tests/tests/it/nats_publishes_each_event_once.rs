//! Events emitted through the dispatcher arrive in the JetStream stream once each, with the
//! subject, headers and body a relay needs; publishing an event id again is de-duplicated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::{Action, Dispatcher, Secret};
use deskhook_tests::nats::{NatsServer, drain_stream, stream_len};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::{AttemptOutcome, DeadLetter};
use deskhook_transports::nats::{NatsSink, StreamSettings, decode_ticket};

const EVENTS: usize = 2000;
const TICKETS: usize = 100;

/// What the dispatcher handed out: id → (action, ticket, body), in emit order per ticket.
type Emitted = Arc<Mutex<Vec<(String, Action, String, Vec<u8>)>>>;

/// What the observer saw of each acknowledgement: event id → the ack as its response.
type Acks = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[test]
fn every_event_is_in_the_stream_once_with_its_subject_headers_and_body() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let secret = Secret::generate().expect("a secret");
    let responses: Acks = Arc::default();
    let seen = responses.clone();
    let (sink, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new())
        .secret(secret.clone())
        .dead_letter_path(&dead)
        .observer(
            move |record: &deskhook_transports::delivery::AttemptRecord<'_>| {
                if record.outcome == AttemptOutcome::Delivered {
                    seen.lock()
                        .unwrap()
                        .push((record.event_id.to_string(), record.response.to_vec()));
                }
            },
        )
        .build()
        .expect("the sink starts and creates the stream");

    let emitted: Emitted = Arc::default();
    let record = emitted.clone();
    let dispatcher = Dispatcher::builder()
        .sink("nats", sink.clone())
        .sink(
            "record",
            deskhook::sink::sink_fn(move |event| {
                record.lock().unwrap().push((
                    event.id().to_string(),
                    event.action(),
                    event.ordering_key().to_owned(),
                    event.body().to_vec(),
                ));
                Ok(())
            }),
        )
        .build();
    let user = deskhook::sample::user();
    let actions = [Action::Create, Action::Comment, Action::Edit, Action::Ok];
    let started = std::time::Instant::now();
    deskhook::with_dispatcher(&dispatcher, || {
        for i in 0..EVENTS {
            let action = actions[i % actions.len()];
            deskhook::emit(action, &ticket(&format!("T{:03}", i % TICKETS)), &user);
        }
    });
    eprintln!("emitted in {:?}", started.elapsed());
    guard.flush(WAIT).expect("every event is acknowledged");
    let elapsed = started.elapsed();
    eprintln!(
        "{EVENTS} events acknowledged in {elapsed:?} ({:.0} events/s)",
        EVENTS as f64 / elapsed.as_secs_f64()
    );
    let stats = sink.delivery().stats().remove(0);
    eprintln!(
        "ack latency p50 {:?}, p99 {:?}",
        stats.latency_p50, stats.latency_p99
    );
    assert_eq!(stats.name, "nats");
    assert_eq!(stats.delivered, EVENTS as u64);
    assert_eq!((stats.dropped, stats.dead_lettered), (0, 0));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(drain_stream(
        &server.url(),
        "DESKHOOK",
        Duration::from_secs(2),
    ));
    assert_eq!(stored.len(), EVENTS, "each event once");
    let emitted = emitted.lock().unwrap().clone();
    let by_id: HashMap<&str, &(String, Action, String, Vec<u8>)> =
        emitted.iter().map(|e| (e.0.as_str(), e)).collect();
    let mut per_ticket: HashMap<String, Vec<String>> = HashMap::new();
    for message in &stored {
        let id = message.header("webhook-id").expect("webhook-id");
        let (_, action, code, body) = by_id[id];
        let partition = deskhook_transports::nats::partition_of(code, 16);
        assert_eq!(
            message.subject,
            format!("deskhook.zenlix.{action}.{partition}")
        );
        assert_eq!(message.header("Nats-Msg-Id"), Some(id));
        assert_eq!(message.header("x-deskhook-action"), Some(action.as_str()));
        assert_eq!(message.header("content-type"), Some("application/json"));
        assert_eq!(
            message
                .header("x-deskhook-ticket")
                .map(decode_ticket)
                .as_deref(),
            Some(code.as_str())
        );
        assert_eq!(&message.body, body);
        deskhook::signature::verify(
            &message.headers[..],
            &message.body,
            std::slice::from_ref(&secret),
            deskhook::signature::DEFAULT_TOLERANCE,
        )
        .expect("signed as an HTTP request would be");
        let seq: u64 = message
            .header("x-deskhook-sequence")
            .unwrap()
            .parse()
            .unwrap();
        let list = per_ticket.entry(code.clone()).or_default();
        assert_eq!(seq, list.len() as u64 + 1, "ticket {code} in order");
        list.push(id.to_owned());
    }
    // The stream holds each ticket's events in emit order.
    for (code, ids) in &per_ticket {
        let expected: Vec<String> = emitted
            .iter()
            .filter(|e| &e.2 == code)
            .map(|e| e.0.clone())
            .collect();
        assert_eq!(ids, &expected, "ticket {code}");
    }
    // The observer saw each acknowledgement.
    let acks = responses.lock().unwrap().clone();
    assert_eq!(acks.len(), EVENTS);
    let ack: serde_json::Value = serde_json::from_slice(&acks[0].1).unwrap();
    assert_eq!(ack["stream"], "DESKHOOK");
    assert_eq!(ack["duplicate"], false);

    // The same event id published again (a retry after a lost ack, a replayed dead letter)
    // is acknowledged as a duplicate and not stored again.
    let (id, action, code, body) = emitted[0].clone();
    let letter: DeadLetter = serde_json::from_value(serde_json::json!({
        "id": id,
        "endpoint": "nats",
        "url": server.url(),
        "action": action.to_string(),
        "ticket": code,
        "attempts": 1,
        "last_status": null,
        "last_error": "timed out",
        "reason": "no acknowledgement",
        "failed_at": "2026-01-01T00:00:00Z",
        "body": serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
    }))
    .expect("a dead letter");
    sink.delivery().redeliver(&letter).unwrap();
    guard.flush(WAIT).unwrap();
    let acks = responses.lock().unwrap().clone();
    let (again, ack) = acks.last().unwrap();
    assert_eq!(again, &id);
    let ack: serde_json::Value = serde_json::from_slice(ack).unwrap();
    assert_eq!(ack["duplicate"], true, "{ack}");
    assert_eq!(runtime.block_on(stream_len(&server.url(), "DESKHOOK")), 0);
    assert_eq!(sink.delivery().totals().delivered, EVENTS as u64 + 1);
    drop(guard);
}
