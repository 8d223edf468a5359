//! What an operator does to a running sink: list, replay and delete dead letters (in the
//! dead-letter file and in a spool), send an endpoint a test event, rotate its secret.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deskhook::{Action, Secret};
use deskhook_tests::{Answer, Receiver, Transport, for_both_transports, start, ticket};
use deskhook_transports::delivery::{
    AttemptQuery, DeadLetterQuery, DeliverySink, EndpointSpec, SinkBuilder,
};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::Spool;

/// A receiver that answers 503 until `up` is set, then 204.
fn flaky() -> (Receiver, Arc<AtomicBool>) {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::start(move |_, _| {
        Answer::status(if flag.load(Ordering::SeqCst) {
            204
        } else {
            503
        })
    });
    (receiver, up)
}

fn spec(name: &str, receiver: &Receiver) -> EndpointSpec {
    let mut spec = EndpointSpec::new(name, receiver.url.clone());
    spec.allow_private = true;
    spec.retry = Some("0s".parse().unwrap());
    spec
}

fn keys(sink: &DeliverySink, query: DeadLetterQuery) -> Vec<(String, String)> {
    sink.dead_letters()
        .list(&query)
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.letter.ticket, s.key))
        .collect()
}

/// The dead letters once there are `n` of them (a spool commits them a moment after the
/// flush sees their events finished).
fn wait_for_letters(sink: &DeliverySink, n: usize) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + deskhook_tests::WAIT;
    loop {
        let found = keys(sink, DeadLetterQuery::new());
        if found.len() >= n || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn dead_letters_are_listed_replayed_and_deleted(t: Transport, spooled: bool) {
    let (receiver, up) = flaky();
    let dir = tempfile::tempdir().unwrap();
    let builder: SinkBuilder = if spooled {
        HttpSink::builder().spool(Spool::open(dir.path().join("spool")).unwrap())
    } else {
        HttpSink::builder().dead_letter_path(dir.path().join("dead.jsonl"))
    };
    let (sink, guard, dispatcher) = start(t, builder);
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    let mut chat = spec("chat", &receiver);
    chat.tenant = Some("acme".into());
    sink.endpoints().upsert_spec(&chat).unwrap();
    let user = deskhook::sample::user();
    for code in ["T-1", "T-2", "T-3"] {
        dispatcher.emit(Action::Comment, &ticket(code), &user);
    }
    dispatcher
        .for_tenant("acme")
        .emit(Action::Create, &ticket("T-4"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    // One attempt each (retry "0s"), all 503: 3 for crm, 1 each for crm and chat of T-4.
    // (A spool writes its letters in its next commit: wait for them.)
    let all = wait_for_letters(&sink, 5);
    let mut tickets: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    tickets.sort_unstable();
    assert_eq!(tickets, ["T-1", "T-2", "T-3", "T-4", "T-4"]);
    let of_t4 = keys(
        &sink,
        DeadLetterQuery {
            ticket: Some("T-4".into()),
            ..DeadLetterQuery::new()
        },
    );
    assert_eq!(of_t4.len(), 2, "by ticket, from the file or the spool");
    let of_chat = keys(
        &sink,
        DeadLetterQuery {
            endpoint: Some("chat".into()),
            ..DeadLetterQuery::new()
        },
    );
    assert_eq!(of_chat.len(), 1);
    let of_acme = keys(
        &sink,
        DeadLetterQuery {
            tenant: Some("acme".into()),
            ..DeadLetterQuery::new()
        },
    );
    assert_eq!(of_acme.len(), 2);
    let creates = keys(
        &sink,
        DeadLetterQuery {
            event_type: Some("create".into()),
            ..DeadLetterQuery::new()
        },
    );
    assert_eq!(creates.len(), 2);
    // Paging: 2, 2, 1.
    let first = sink
        .dead_letters()
        .list(&DeadLetterQuery {
            limit: 2,
            ..DeadLetterQuery::new()
        })
        .unwrap();
    let second = sink
        .dead_letters()
        .list(&DeadLetterQuery {
            limit: 2,
            before: first.next,
            ..DeadLetterQuery::new()
        })
        .unwrap();
    let third = sink
        .dead_letters()
        .list(&DeadLetterQuery {
            limit: 2,
            before: second.next,
            ..DeadLetterQuery::new()
        })
        .unwrap();
    assert_eq!(
        (first.items.len(), second.items.len(), third.items.len()),
        (2, 2, 1)
    );
    assert_eq!(third.next, None);

    // The receiver is back: replay chat's letter, and one that names nothing.
    up.store(true, Ordering::SeqCst);
    let before = receiver.count();
    let report = sink
        .dead_letters()
        .replay(&[of_chat[0].1.clone(), "r999999".into()])
        .unwrap();
    assert_eq!(report.replayed, 1);
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].1.contains("no dead letter"), "{report:?}");
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.count(), before + 1);
    let again = receiver.requests().pop().unwrap();
    assert_eq!(again.json()["ticket"]["code"], "T-4");
    assert_eq!(keys(&sink, DeadLetterQuery::new()).len(), 4);

    // Every letter matching a filter (whatever the query's page size): acme's at crm
    // (T-4), and neither crm's letters of no tenant nor anything of chat's.
    let before = receiver.count();
    let report = sink
        .dead_letters()
        .replay_matching(&DeadLetterQuery {
            endpoint: Some("crm".into()),
            tenant: Some("acme".into()),
            limit: 1,
            ..DeadLetterQuery::new()
        })
        .unwrap();
    assert_eq!((report.replayed, report.failed.len()), (1, 0), "{report:?}");
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.count(), before + 1);
    assert_eq!(
        receiver.requests().pop().unwrap().json()["ticket"]["code"],
        "T-4"
    );
    assert_eq!(keys(&sink, DeadLetterQuery::new()).len(), 3);

    // Every letter of crm (oldest first, so that a ticket's events keep their order), more
    // than the query's page size.
    let report = sink
        .dead_letters()
        .replay_matching(&DeadLetterQuery {
            endpoint: Some("crm".into()),
            limit: 2,
            ..DeadLetterQuery::new()
        })
        .unwrap();
    assert_eq!((report.replayed, report.failed.len()), (3, 0));
    guard.flush(Duration::from_secs(10)).unwrap();
    let mut replayed: Vec<String> = receiver
        .requests()
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|r| {
            r.json()["ticket"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    replayed.sort_unstable();
    assert_eq!(replayed, ["T-1", "T-2", "T-3"]);
    assert!(keys(&sink, DeadLetterQuery::new()).is_empty());

    // A letter whose endpoint is gone stays; delete removes it.
    up.store(false, Ordering::SeqCst);
    dispatcher.emit(Action::Comment, &ticket("T-5"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    sink.endpoints().remove("crm").unwrap();
    let left = wait_for_letters(&sink, 1);
    assert_eq!(left.len(), 1);
    let report = sink.dead_letters().replay(&[left[0].1.clone()]).unwrap();
    assert_eq!(report.replayed, 0);
    assert!(report.failed[0].1.contains("crm"), "{report:?}");
    assert_eq!(sink.dead_letters().delete(&[left[0].1.clone()]).unwrap(), 1);
    assert!(keys(&sink, DeadLetterQuery::new()).is_empty());
    assert_eq!(sink.dead_letters().delete(&[left[0].1.clone()]).unwrap(), 0);

    // A letter of acme's chat is not replayed to a chat made again for another tenant.
    dispatcher
        .for_tenant("acme")
        .emit(Action::Create, &ticket("T-6"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    let left = wait_for_letters(&sink, 1);
    sink.endpoints().remove("chat").unwrap();
    let mut globex = spec("chat", &receiver);
    globex.tenant = Some("globex".into());
    sink.endpoints().upsert_spec(&globex).unwrap();
    up.store(true, Ordering::SeqCst);
    let before = receiver.count();
    let report = sink.dead_letters().replay(&[left[0].1.clone()]).unwrap();
    assert_eq!(report.replayed, 0, "{report:?}");
    assert!(
        report.failed[0].1.contains("tenant 'acme'") && report.failed[0].1.contains("globex"),
        "{report:?}"
    );
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(
        receiver.count(),
        before,
        "nothing went to globex's endpoint"
    );
    assert_eq!(
        keys(&sink, DeadLetterQuery::new()).len(),
        1,
        "the letter stays"
    );
    // Nor to one that no longer takes its type (its actions changed since).
    let mut narrowed = spec("chat", &receiver);
    narrowed.tenant = Some("acme".into());
    narrowed.actions = Some("comment".parse().unwrap());
    sink.endpoints().remove("chat").unwrap();
    sink.endpoints().upsert_spec(&narrowed).unwrap();
    let report = sink.dead_letters().replay(&[left[0].1.clone()]).unwrap();
    assert_eq!(report.replayed, 0, "{report:?}");
    assert!(
        report.failed[0].1.contains("no longer takes 'create'"),
        "{report:?}"
    );
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

fn dead_letters_in_the_file_are_listed_replayed_and_deleted(t: Transport) {
    dead_letters_are_listed_replayed_and_deleted(t, false);
}

fn dead_letters_in_the_spool_are_listed_replayed_and_deleted(t: Transport) {
    dead_letters_are_listed_replayed_and_deleted(t, true);
}

fn a_test_event_goes_to_one_endpoint_for_its_tenant(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder().dead_letter_path(dir.path().join("dead.jsonl")),
    );
    let mut crm = spec("crm", &receiver);
    crm.tenant = Some("acme".into());
    crm.actions = Some(serde_json::from_str(r#"["ok", "comment"]"#).unwrap());
    sink.endpoints().upsert_spec(&crm).unwrap();
    sink.endpoints()
        .upsert_spec(&spec("other", &receiver))
        .unwrap();
    let id = sink.endpoints().send_test("crm").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    let got = receiver.requests();
    assert_eq!(got.len(), 1, "to crm only");
    assert_eq!(got[0].header("webhook-id"), Some(id.to_string().as_str()));
    assert_eq!(got[0].json()["action"], "ok", "its first Zenlix action");
    assert_eq!(got[0].json()["ticket"]["code"], "DESKHOOK-TEST");
    let log = sink
        .attempts(&AttemptQuery {
            event_id: Some(id.to_string()),
            ..AttemptQuery::new()
        })
        .unwrap();
    assert_eq!(log.items.len(), 1);
    assert_eq!(
        log.items[0].tenant.as_deref(),
        Some("acme"),
        "for its tenant"
    );

    let mut usedesk_only = spec("usedesk-only", &receiver);
    usedesk_only.actions = Some(serde_json::from_str("[\"usedesk.*\"]").unwrap());
    sink.endpoints().upsert_spec(&usedesk_only).unwrap();
    let err = sink
        .endpoints()
        .send_test("usedesk-only")
        .unwrap_err()
        .to_string();
    assert!(err.contains("subscribe it to one"), "{err}");
    let err = sink
        .endpoints()
        .send_test("usedesk-onyl")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean 'usedesk-only'"), "{err}");
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

fn rotations_at_once_keep_every_new_secret(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder().dead_letter_path(dir.path().join("dead.jsonl")),
    );
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    // Four operators rotating at once: none's new secret is lost to another's write.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..4 {
                    sink.endpoints()
                        .rotate_secret(
                            "crm",
                            Secret::generate().unwrap(),
                            Duration::from_secs(3600),
                        )
                        .unwrap();
                }
            });
        }
    });
    let info = sink.endpoints().get("crm").unwrap();
    assert_eq!(info.secret_hints.len(), 16);
    // A seventeenth within the overlaps: its receivers would not read the oldest signature.
    let refused = sink
        .endpoints()
        .rotate_secret(
            "crm",
            Secret::generate().unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("would sign with 17 secrets"), "{refused}");
    // A rotation of an endpoint removed meanwhile does not bring it back.
    sink.endpoints().remove("crm").unwrap();
    assert!(
        sink.endpoints()
            .rotate_secret("crm", Secret::generate().unwrap(), Duration::from_secs(60))
            .is_err()
    );
    assert!(sink.endpoints().get("crm").is_err());
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

fn a_rotated_secret_signs_with_the_old_one_for_the_overlap(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder().dead_letter_path(dir.path().join("dead.jsonl")),
    );
    let old: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
    let new = Secret::generate().unwrap();
    let mut crm = spec("crm", &receiver);
    crm.secrets = Some(vec![old.clone().into()]);
    crm.hub_signature = true;
    sink.endpoints().upsert_spec(&crm).unwrap();
    // X-Hub-Signature-256 is an HMAC: a rotation to an ed25519 key would end it.
    let refused = sink
        .endpoints()
        .rotate_secret(
            "crm",
            Secret::generate_ed25519().unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("rotate to a whsec_ secret"), "{refused}");
    sink.endpoints()
        .rotate_secret("crm", new.clone(), Duration::from_secs(3600))
        .unwrap();
    // The same secret given again signs once, with no end.
    sink.endpoints()
        .rotate_secret("crm", new.clone(), Duration::from_secs(3600))
        .unwrap();
    dispatcher.emit(Action::Create, &ticket("T-1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let request = receiver.requests().pop().unwrap();
    let signatures = request.header("webhook-signature").unwrap().to_owned();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert_eq!(
        request.header("x-hub-signature-256").unwrap(),
        deskhook::signature::hub_signature(&old, &request.body).unwrap(),
        "the one hub signature is the old secret's for the overlap"
    );
    for secret in [&old, &new] {
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        deskhook::signature::verify(
            &headers[..],
            &request.body,
            std::slice::from_ref(secret),
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("verifies with either secret: {e}"));
    }
    let info = sink.endpoints().get("crm").unwrap();
    assert_eq!(info.secret_hints.len(), 2);
    let spec = info.spec.unwrap();
    assert_eq!(
        spec.secret_hints, info.secret_hints,
        "the kept settings say the same"
    );
    // An overlap of zero: the old one stops at once.
    sink.endpoints()
        .rotate_secret("crm", Secret::generate().unwrap(), Duration::ZERO)
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    dispatcher.emit(Action::Create, &ticket("T-2"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let request = receiver.requests().pop().unwrap();
    assert_eq!(
        request
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    // An overlap past what a date can say is refused, not a panic.
    let refused = sink
        .endpoints()
        .rotate_secret(
            "crm",
            Secret::generate().unwrap(),
            Duration::from_secs(i64::MAX as u64),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("year 9999"), "{refused}");
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// An endpoint removed while a ticket's first event is in flight dead-letters the queued
/// ones at once and the first when its attempt ends: replayed, they still go in the
/// ticket's order.
fn letters_of_a_removed_endpoint_are_replayed_in_their_tickets_order(t: Transport) {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::start(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Answer::status(204)
        } else {
            Answer::status(503).after(Duration::from_millis(300))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder().dead_letter_path(dir.path().join("dead.jsonl")),
    );
    let mut crm = spec("crm", &receiver);
    crm.retry = Some("0s,10s".parse().unwrap());
    sink.endpoints().upsert_spec(&crm).unwrap();
    let user = deskhook::sample::user();
    for n in 1..=3 {
        let mut ticket = ticket("T-1");
        ticket.subject = n.to_string();
        dispatcher.emit(Action::Comment, &ticket, &user);
    }
    receiver.wait_for(1);
    sink.endpoints().remove("crm").unwrap();
    let letters = wait_for_letters(&sink, 3);
    assert_eq!(letters.len(), 3);
    // Replayed while it is gone, they stay, and the first says why.
    let report = sink.dead_letters().replay_endpoint("crm").unwrap();
    assert_eq!((report.replayed, report.failed.len()), (0, 3), "{report:?}");
    assert_eq!(
        report.failed[0].1, "no endpoint is named 'crm'",
        "{report:?}"
    );
    up.store(true, Ordering::SeqCst);
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    let report = sink.dead_letters().replay_endpoint("crm").unwrap();
    assert_eq!((report.replayed, report.failed.len()), (3, 0), "{report:?}");
    guard.flush(Duration::from_secs(10)).unwrap();
    let replayed: Vec<String> = receiver.wait_for(4)[1..]
        .iter()
        .map(|r| r.json()["ticket"]["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(replayed, ["1", "2", "3"]);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A replay whose letters are queued again but cannot be taken out of the dead letters (a
/// spool that cannot be written) says which are still listed, rather than fail and have
/// the operator replay them again: each is delivered once.
fn letters_replayed_but_not_taken_out_are_named_not_failed(t: Transport) {
    let (receiver, up) = flaky();
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder().spool(Spool::open(&spool_dir).unwrap()),
    );
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    dispatcher.emit(Action::Create, &ticket("T-1"), &deskhook::sample::user());
    let letters = wait_for_letters(&sink, 1);
    assert_eq!(letters.len(), 1);
    rusqlite::Connection::open(spool_dir.join(deskhook_transports::spool::DATABASE_FILE))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER kept BEFORE DELETE ON dead_letters \
             BEGIN SELECT RAISE(FAIL, 'kept for the test'); END",
        )
        .unwrap();
    up.store(true, Ordering::SeqCst);
    let report = sink.dead_letters().replay(&[letters[0].1.clone()]).unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    assert_eq!(report.still_listed, [letters[0].1.clone()]);
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(
        receiver.wait_for(2).len(),
        2,
        "the first attempt, then the replay"
    );
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

for_both_transports!(
    letters_replayed_but_not_taken_out_are_named_not_failed,
    letters_of_a_removed_endpoint_are_replayed_in_their_tickets_order,
    dead_letters_in_the_file_are_listed_replayed_and_deleted,
    dead_letters_in_the_spool_are_listed_replayed_and_deleted,
    a_test_event_goes_to_one_endpoint_for_its_tenant,
    a_rotated_secret_signs_with_the_old_one_for_the_overlap,
    rotations_at_once_keep_every_new_secret,
);

/// A replay that a full queue refuses leaves the letter where it was, says why, and counts
/// nothing as dropped.
#[test]
fn a_replay_a_full_queue_refuses_keeps_the_letter_and_drops_nothing() {
    let (receiver, _up) = flaky();
    let dir = tempfile::tempdir().unwrap();
    let mut config = deskhook_transports::delivery::DeliveryConfig::default();
    config.queue_capacity = 1;
    let (sink, guard) = HttpSink::builder()
        .config(config)
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .build()
        .unwrap();
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", sink.clone())
        .build();
    let user = deskhook::sample::user();
    // One letter (a 503, no retry); then the paused endpoint's queue is full.
    dispatcher.emit(Action::Create, &ticket("T-1"), &user);
    let letters = wait_for_letters(&sink, 1);
    assert_eq!(letters.len(), 1);
    sink.endpoints().pause("crm").unwrap();
    dispatcher.emit(Action::Create, &ticket("T-2"), &user);
    // Routed by a worker after `emit` returns: queued a moment later.
    let deadline = std::time::Instant::now() + deskhook_tests::WAIT;
    while sink.totals().queued < 1 {
        assert!(std::time::Instant::now() < deadline, "T-2 never queued");
        std::thread::sleep(Duration::from_millis(2));
    }
    let report = sink.dead_letters().replay(&[letters[0].1.clone()]).unwrap();
    assert_eq!(report.replayed, 0, "{report:?}");
    assert!(report.failed[0].1.contains("queue full"), "{report:?}");
    assert_eq!(sink.totals().dropped, 0);
    assert_eq!(keys(&sink, DeadLetterQuery::new()), letters);
    drop((dispatcher, sink));
    let _ = guard.shutdown(Duration::ZERO);
}

/// A letter a replay cannot queue holds back the later letters of its ticket for that
/// endpoint: queued, they would go out before it.
#[test]
fn a_letter_not_replayed_holds_back_the_later_ones_of_its_ticket() {
    let (receiver, up) = flaky();
    up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    // Ids in the order the events were emitted; the first over max_payload.
    let letter = |ticket: &str, body: &str| {
        let id = deskhook::sink::EventId::new();
        format!(
            r#"{{"id":"{id}","endpoint":"crm","url":"{}","action":"create","ticket":"{ticket}","attempts":1,"last_status":503,"last_error":null,"reason":"r","failed_at":"2026-01-01T00:00:00Z","body":{body}}}"#,
            receiver.url
        )
    };
    let large = format!(r#"{{"text":"{}"}}"#, "x".repeat(200));
    let lines = [
        letter("T-1", &large),
        letter("T-1", r#"{"text":"later"}"#),
        letter("T-2", r#"{"text":"other"}"#),
    ];
    std::fs::write(&dead, lines.join("\n") + "\n").unwrap();
    let mut config = deskhook_transports::delivery::DeliveryConfig::default();
    config.max_payload = 100;
    let (sink, guard) = HttpSink::builder()
        .config(config)
        .dead_letter_path(&dead)
        .build()
        .unwrap();
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();

    let report = sink
        .dead_letters()
        .replay_matching(&DeadLetterQuery::new())
        .unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    let reasons: Vec<&str> = report.failed.iter().map(|(_, why)| why.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{report:?}");
    assert!(reasons[0].contains("max_payload"), "{reasons:?}");
    assert!(
        reasons[1].contains("held behind dead letter"),
        "{reasons:?}"
    );
    guard.flush(deskhook_tests::WAIT).unwrap();
    let got = receiver.wait_for(1);
    assert_eq!(got[0].body, br#"{"text":"other"}"#);
    assert_eq!(keys(&sink, DeadLetterQuery::new()).len(), 2);
}
