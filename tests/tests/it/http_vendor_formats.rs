//! Usedesk and iQChannels events emitted through a Dispatcher arrive as their own format:
//! the exact body, the format's content type, `X-Deskhook-Action` with the event type's
//! name, signed like any event, and only at the endpoints and sinks subscribed to them. A
//! dead letter and a spooled event keep their type and content type.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::formats::{iqchannels, usedesk};
use deskhook::{Action, Dispatcher, EventType, EventTypeSet, ReceiveOptions, Received, Secret};
use deskhook_tests::{
    Answer, BuildFor, Receiver, Transport, dead_letter_file, endpoint, for_both_transports, start,
    ticket,
};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::Spool;

fn fixture(path: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/fixtures/");
    std::fs::read(format!("{dir}{path}")).expect("a fixture")
}

fn usedesk_comment() -> usedesk::Event {
    usedesk::Event::from_json(&fixture("usedesk/comment_created.json")).unwrap()
}

fn usedesk_rating() -> usedesk::Event {
    usedesk::Event::from_json(&fixture("usedesk/rating.json")).unwrap()
}

fn iq_message() -> iqchannels::Event {
    iqchannels::Event::from_json(&fixture("iqchannels/message_created_client.json")).unwrap()
}

fn iq_typing() -> iqchannels::Event {
    iqchannels::Event::from_json(&fixture("iqchannels/typing.json")).unwrap()
}

fn each_format_arrives_as_itself_where_subscribed(t: Transport) {
    let everything = Receiver::ok();
    let comments = Receiver::ok();
    let chats = Receiver::ok();
    let zenlix = Receiver::ok();
    let secret = Secret::generate().unwrap();
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("everything", &everything, "0s").secret(secret.clone()))
            .endpoint(
                endpoint("comments", &comments, "0s")
                    .actions("usedesk.comment_created".parse::<EventTypeSet>().unwrap()),
            )
            .endpoint(
                endpoint("chats", &chats, "0s")
                    .actions("iqchannels.*".parse::<EventTypeSet>().unwrap()),
            )
            .endpoint(endpoint("zenlix", &zenlix, "0s").actions([Action::Create]))
            .dead_letter_path(&dead),
    );

    let (comment, rating, message, typing) = (
        usedesk_comment(),
        usedesk_rating(),
        iq_message(),
        iq_typing(),
    );
    dispatcher.emit_webhook(&comment);
    dispatcher.emit_webhook(&rating);
    dispatcher.emit_webhook(&message);
    dispatcher.emit_webhook(&typing);
    dispatcher.emit(Action::Create, &ticket("Z1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();

    // The endpoint that takes everything gets all five, signed, each in its format.
    let requests = everything.wait_for(5);
    assert_eq!(requests.len(), 5);
    let expected: [(&str, &str, Vec<u8>); 4] = [
        (
            "usedesk.comment_created",
            "application/json",
            comment.to_json().unwrap(),
        ),
        (
            "usedesk.rating",
            "application/json",
            rating.to_json().unwrap(),
        ),
        (
            "iqchannels.message_created",
            "application/json; charset=utf-8",
            message.to_json().unwrap(),
        ),
        (
            "iqchannels.typing",
            "application/json; charset=utf-8",
            typing.to_json().unwrap(),
        ),
    ];
    for (name, content_type, body) in &expected {
        let request = requests
            .iter()
            .find(|r| r.header("x-deskhook-action") == Some(*name))
            .unwrap_or_else(|| panic!("no {name} request"));
        assert_eq!(
            request.header("content-type"),
            Some(*content_type),
            "{name}"
        );
        assert_eq!(&request.body, body, "{name}");
        let options = ReceiveOptions::new().secret(secret.clone());
        let received = deskhook::receive(&request.headers, &request.body, &options).unwrap();
        assert_eq!(
            format!("{}.{}", received.format(), received.event_type()),
            *name
        );
        match received {
            Received::Usedesk(event) if name.starts_with("usedesk.") => {
                assert!(event == comment || event == rating)
            }
            Received::IqChannels(event) if name.starts_with("iqchannels.") => {
                assert!(event == message || event == typing)
            }
            other => panic!("{name} parsed as {}", other.format()),
        }
    }
    let create = requests
        .iter()
        .find(|r| r.header("x-deskhook-action") == Some("create"))
        .unwrap();
    assert_eq!(create.header("content-type"), Some("application/json"));

    // The others get only what they subscribe to.
    let names = |r: &Receiver| -> Vec<String> {
        let mut names: Vec<String> = r
            .requests()
            .iter()
            .map(|r| r.header("x-deskhook-action").unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&comments), ["usedesk.comment_created"]);
    assert_eq!(
        names(&chats),
        ["iqchannels.message_created", "iqchannels.typing"]
    );
    assert_eq!(names(&zenlix), ["create"]);
    // Usedesk events are ordered by ticket id, iQChannels events by chat id.
    let ticket_id = comment.ordering_key();
    assert!(
        comments.requests()[0].header("x-deskhook-sequence") == Some("1"),
        "first event of ticket {ticket_id}"
    );
    assert!(read_dead_letters(&dead).unwrap().is_empty());
}

fn a_dead_letter_keeps_its_type_and_content_type_when_replayed(t: Transport) {
    let receiver = Receiver::start(|_, n| {
        if n == 0 {
            Answer::status(400)
        } else {
            Answer::status(204)
        }
    });
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("chats", &receiver, "0s"))
            .dead_letter_path(&dead),
    );
    let message = iq_message();
    dispatcher.emit_webhook(&message);
    guard.flush(Duration::from_secs(10)).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].action, "iqchannels.message_created");
    assert_eq!(letters[0].ticket, message.ordering_key());

    sink.redeliver(&letters[0]).unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    let requests = receiver.wait_for(2);
    let again = &requests[1];
    assert_eq!(
        again.header("x-deskhook-action"),
        Some("iqchannels.message_created")
    );
    assert_eq!(
        again.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(again.body, message.to_json().unwrap());
    assert_eq!(again.header("webhook-id"), requests[0].header("webhook-id"));
}

fn a_spooled_event_keeps_its_type_across_a_restart(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (_dead_dir, dead) = dead_letter_file();
    // First life: the receiver answers 503 and the next attempt is an hour away, so the
    // event is still in the spool when the sink stops.
    let down = Receiver::start(|_, _| Answer::status(503));
    let first = HttpSink::builder()
        .endpoint(endpoint("chats", &down, "0s,1h"))
        .dead_letter_path(&dead)
        .shutdown_timeout(Duration::from_millis(50))
        .spool(Spool::builder(dir.path()).open().unwrap());
    let (sink, guard) = first.build_for(t).unwrap();
    let dispatcher = dispatcher_for(&sink);
    let rating = usedesk_rating();
    dispatcher.emit_webhook(&rating);
    down.wait_for(1);
    drop(dispatcher);
    drop(sink);
    drop(guard);

    // Second life: the same spool, a live receiver; the backoff is ignored on restart.
    let second = HttpSink::builder()
        .endpoint(endpoint("chats", &receiver, "0s"))
        .dead_letter_path(&dead)
        .spool(
            Spool::builder(dir.path())
                .ignore_backoff(true)
                .open()
                .unwrap(),
        );
    let (_sink, guard) = second.build_for(t).unwrap();
    let requests = receiver.wait_for(1);
    assert_eq!(
        requests[0].header("x-deskhook-action"),
        Some("usedesk.rating")
    );
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(requests[0].body, rating.to_json().unwrap());
    guard.flush(Duration::from_secs(10)).unwrap();
}

fn dispatcher_for(sink: &DeliverySink) -> Dispatcher {
    Dispatcher::builder().sink("http", sink.clone()).build()
}

for_both_transports!(
    each_format_arrives_as_itself_where_subscribed,
    a_dead_letter_keeps_its_type_and_content_type_when_replayed,
    a_spooled_event_keeps_its_type_across_a_restart,
);

/// Per-sink subscriptions of the Dispatcher name event types of
/// every format; an iQChannels type deskhook does not know is dropped and counted.
#[test]
fn sink_subscriptions_filter_by_event_type() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let collect = |tag: &'static str| {
        let seen = seen.clone();
        deskhook::sink::sink_fn(move |event| {
            seen.lock().unwrap().push(format!(
                "{tag} {} {}",
                event.event_type(),
                event.ordering_key()
            ));
            Ok(())
        })
    };
    let usedesk_only = EventTypeSet::format(deskhook::formats::Format::Usedesk);
    let dispatcher = Dispatcher::builder()
        .sink_for("usedesk", collect("u"), usedesk_only)
        .sink_for("zenlix", collect("z"), [Action::Comment])
        .sink_for(
            "typing",
            collect("t"),
            ["iqchannels.typing".parse::<EventType>().unwrap()],
        )
        .build();
    let comment = usedesk_comment();
    dispatcher.emit_webhook(&comment);
    dispatcher.emit_webhook(&iq_typing());
    dispatcher.emit_webhook(&iq_message()); // nobody subscribes
    dispatcher.emit(Action::Comment, &ticket("Z2"), &deskhook::sample::user());

    let typing = "iqchannels.typing".parse::<EventType>().unwrap();
    assert_eq!(
        dispatcher.subscription("typing"),
        Some(EventTypeSet::only(typing))
    );
    assert_eq!(
        dispatcher.subscription("zenlix"),
        Some(EventTypeSet::from(Action::Comment))
    );
    dispatcher
        .set_subscription("typing", EventTypeSet::empty())
        .unwrap();
    dispatcher.emit_webhook(&iq_typing());

    let mut unknown = iq_message();
    unknown.chat_event.kind = iqchannels::EventType::Other("message_exploded".into());
    dispatcher.emit_webhook(&unknown);

    let chat = iq_typing().chat_id();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("u usedesk.comment_created {}", comment.ordering_key()),
            format!("t iqchannels.typing {chat}"),
            "z comment Z2".to_owned(),
        ]
    );
    let stats = dispatcher.stats();
    assert_eq!(stats.dropped, 1, "the unknown iQChannels type");
    assert_eq!(stats.sinks[0].subscription, usedesk_only);
    assert_eq!(stats.sinks[0].subscription.actions().count(), 0);
}
