//! Every Usedesk and iQChannels reference body parses, into the right types, and is written
//! back identically: compact and pretty, key order included.

use std::path::{Path, PathBuf};

use deskhook::event::WebhookEvent;
use deskhook::formats::Format;
use deskhook::formats::iqchannels::{self, Actor, ChannelType, ClientType, EventType, Millis};
use deskhook::formats::usedesk::{self, CommentType, Payload, Score, Sender, Status};
use deskhook::formats::{Id, IdForm};
use deskhook::sink::Emitted;
use deskhook::{ReceiveOptions, Received};
use serde_json::Value;

fn fixtures(format: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    files.sort();
    files
}

fn fixture(format: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format)
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The reference in compact form; serde_json's `Value` keeps key order (feature
/// `preserve_order`), so this is the reference's own order.
fn compact(json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap();
    serde_json::to_string(&value).unwrap()
}

/// What emit sends for `event` (written with sonic-rs) is `body`, what serde_json writes.
fn assert_emitted_as<E: WebhookEvent>(event: &E, body: &str, path: &Path) {
    let emitted = Emitted::from_webhook(event).unwrap();
    assert_eq!(
        emitted.body().as_ref(),
        body.as_bytes(),
        "{}",
        path.display()
    );
}

fn pretty(json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap();
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn every_usedesk_fixture_round_trips_byte_for_byte() {
    let files = fixtures("usedesk");
    assert_eq!(files.len(), 4);
    for (path, text) in files {
        let event = usedesk::Event::from_json(text.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let body = String::from_utf8(event.to_json().unwrap()).unwrap();
        assert_eq!(body, compact(&text), "{}", path.display());
        assert_emitted_as(&event, &body, &path);
        let written = serde_json::to_string_pretty(&event).unwrap();
        assert_eq!(written, pretty(&text), "{}", path.display());
        assert_eq!(written, text.trim_end(), "{}", path.display());
        // What was written parses to the same value.
        assert_eq!(usedesk::Event::from_json(body.as_bytes()).unwrap(), event);
    }
}

#[test]
fn every_iqchannels_fixture_round_trips_byte_for_byte() {
    let files = fixtures("iqchannels");
    assert_eq!(files.len(), 12);
    for (path, text) in files {
        let event = iqchannels::Event::from_json(text.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let body = String::from_utf8(event.to_json().unwrap()).unwrap();
        assert_eq!(body, compact(&text), "{}", path.display());
        assert_emitted_as(&event, &body, &path);
        let written = serde_json::to_string_pretty(&event).unwrap();
        assert_eq!(written, pretty(&text), "{}", path.display());
        assert_eq!(written, text.trim_end(), "{}", path.display());
        assert_eq!(
            iqchannels::Event::from_json(body.as_bytes()).unwrap(),
            event
        );
    }
}

#[test]
fn every_fixture_is_received_in_its_format() {
    let options = ReceiveOptions::unauthenticated();
    let no_headers: [(&str, &str); 0] = [];
    for (format, dir) in [
        (Format::Usedesk, "usedesk"),
        (Format::IqChannels, "iqchannels"),
        (Format::Zenlix, "zenlix"),
    ] {
        for (path, text) in fixtures(dir) {
            assert_eq!(Format::detect(text.as_bytes()), Some(format));
            let received = deskhook::receive(&no_headers, text.as_bytes(), &options)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(received.format(), format, "{}", path.display());
            let body = String::from_utf8(received.to_json().unwrap()).unwrap();
            assert_eq!(body, compact(&text), "{}", path.display());
        }
    }
}

#[test]
fn usedesk_ticket_created_parses_into_types() {
    let event =
        usedesk::Event::from_json(fixture("usedesk", "ticket_created.json").as_bytes()).unwrap();
    assert_eq!(event.event_type(), "ticket_created");
    assert_eq!(event.ordering_key(), "2261907");
    assert_eq!(event.content_type(), "application/json");
    assert!(event.secret_matches("0e8f678d8327eb3292a28c8165957b282a1b2f8b"));
    assert!(!format!("{event:?}").contains("0e8f678d"));
    assert!(!format!("{event:?}").contains("dsf4354f"));
    let Payload::TicketCreated(ticket) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(ticket.id, Id::number(2261907));
    assert_eq!(ticket.id.form(), IdForm::String);
    assert_eq!(ticket.status_id, Status::Open);
    assert_eq!(ticket.subject, "First msg");
    assert_eq!(ticket.assignee_id, None);
    assert_eq!(ticket.group, 0);
    assert_eq!(ticket.published_at.to_string(), "2016-12-17T14:07:33");
    assert_eq!(ticket.additional_id.as_deref(), Some("123Ca344"));
    assert_eq!(ticket.custom_fields[0].id, Id::number(54));
    assert_eq!(ticket.custom_fields[0].value, None);
    assert_eq!(ticket.custom_blocks[0].name, "Test");
}

#[test]
fn usedesk_ticket_changed_parses_into_types() {
    let event =
        usedesk::Event::from_json(fixture("usedesk", "ticket_changed.json").as_bytes()).unwrap();
    assert_eq!(event.event_type(), "ticket_changed");
    let Payload::TicketChanged(change) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(change.ticket_id, 2261907);
    assert_eq!(change.ticket_id.form(), IdForm::Number);
    assert_eq!(change.trigger_id, None);
    assert_eq!(change.user_id, Some(Id::number(9087)));
    assert_eq!(change.data[0].target, "status_id");
    assert_eq!(change.data[0].value, "2");
    assert_eq!(change.data[0].old_value, "1");
    assert_eq!(change.old_status.unwrap(), Status::Open);
    assert_eq!(change.new_status.unwrap(), Status::Completed);
    assert_eq!(change.client.name, "Jon Bon Jovi");
    assert_eq!(change.client.emails[0], "jon@bonjovi.com");
}

#[test]
fn usedesk_comment_and_rating_parse_into_types() {
    let event =
        usedesk::Event::from_json(fixture("usedesk", "comment_created.json").as_bytes()).unwrap();
    assert_eq!(event.event_type(), "comment_created");
    let Payload::CommentCreated(comment) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(comment.kind, CommentType::Public);
    assert_eq!(comment.from, Sender::Client);
    assert!(!comment.first);
    assert_eq!(comment.user_id, None);
    assert_eq!(comment.client_id, Some(Id::number(242630)));
    assert_eq!(comment.message, "New message text");

    let event = usedesk::Event::from_json(fixture("usedesk", "rating.json").as_bytes()).unwrap();
    assert_eq!(event.event_type(), "rating");
    assert_eq!(event.ticket_id().unwrap(), 2261907);
    let Payload::Rating(rating) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    let score = rating.rating.as_ref().expect("a score");
    assert_eq!(*score, Score::Good);
    assert_eq!(score.to_string(), "good");
    // The score's key is inferred: a rating with it under another name is read, the score
    // kept in `extra`, and written back as it came.
    let body = br#"{"secret":"s","rating":{"ticket_id":7,"score":3}}"#;
    let event = usedesk::Event::from_json(body).unwrap();
    let Payload::Rating(rating) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(
        (rating.rating.as_ref(), &rating.extra["score"]),
        (None, &3.into())
    );
    assert_eq!(event.to_json().unwrap(), body);
}

#[test]
fn iqchannels_message_with_file_parses_into_types() {
    let text = fixture("iqchannels", "message_created_operator_file.json");
    let event = iqchannels::Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.event_type(), "message_created");
    assert_eq!(event.chat_event.kind, EventType::MessageCreated);
    assert_eq!(event.chat_event.actor, Actor::User);
    assert_eq!(event.ordering_key(), "21");
    assert_eq!(event.content_type(), "application/json; charset=utf-8");
    assert_eq!(event.chat_event.created_at, Millis(1542902705511));
    let message = event.message().unwrap();
    let file_id = message.file_id.as_deref().unwrap();
    let file = event.rels.files.iter().find(|f| f.id == file_id).unwrap();
    assert_eq!(file.name, "example-request.json");
    assert_eq!(file.size, 2493);
    assert_eq!(event.user().unwrap().email, "i.korobkov@iqstore.ru");
    assert_eq!(event.rels.channels[0].kind, ChannelType::IqChat);
    assert_eq!(event.chat().unwrap().ticket_id, 84);
}

#[test]
fn iqchannels_clients_details_and_fields_parse_into_types() {
    let text = fixture("iqchannels", "typing.json");
    let event = iqchannels::Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.chat_event.kind, EventType::Typing);
    assert!(event.chat_event.transitive);
    let client = event.client().unwrap();
    assert_eq!(client.kind, ClientType::Crm);
    assert_eq!(client.crm_client_id.as_deref(), Some("101"));
    assert_eq!(client.details.birthday.as_deref(), Some("15.01.1929"));
    assert_eq!(client.details.fields.len(), 3);
    assert_eq!(client.details.fields[1].value, " 2");

    let text = fixture("iqchannels", "message_created_operator_quote.json");
    let event = iqchannels::Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.rels.channels[0].total_open_tickets, -46);
    assert!(event.client().unwrap().details.created_at.is_unset());
    assert_eq!(event.message().unwrap().reply_to_message_id, Some(25719));
    assert_eq!(event.chat_event.messages, None);
    assert_eq!(event.rels.projects[0].license["Terms"]["Users"], 20);

    let text = fixture("iqchannels", "delete_messages.json");
    let event = iqchannels::Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.chat_event.kind, EventType::DeleteMessages);
    assert_eq!(event.event_type(), "delete-messages");
}

#[test]
fn unknown_keys_are_kept_in_place_and_written_back() {
    let mut value: Value =
        serde_json::from_str(&fixture("iqchannels", "chat_created.json")).unwrap();
    let mut chat_event = serde_json::Map::new();
    for (key, v) in value["ChatEvent"].as_object().unwrap() {
        chat_event.insert(key.clone(), v.clone());
        if key == "Type" {
            chat_event.insert("Source".into(), Value::from("api"));
        }
    }
    value["ChatEvent"] = Value::Object(chat_event);
    value["Rels"]["Chats"][0]["Priority"] = Value::from(3);
    value["Webhook"] = serde_json::json!({"Version": 2});
    let text = serde_json::to_string(&value).unwrap();

    let event = iqchannels::Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.chat_event.extra["Source"], "api");
    assert_eq!(event.rels.chats[0].extra["Priority"], 3);
    assert_eq!(event.extra["Webhook"]["Version"], 2);
    assert_eq!(String::from_utf8(event.to_json().unwrap()).unwrap(), text);

    let mut value: Value =
        serde_json::from_str(&fixture("usedesk", "comment_created.json")).unwrap();
    value["comment"]["attachments"] = serde_json::json!([{"file": "a.png"}]);
    value["comment"]["client"]["vip"] = Value::Bool(true);
    let text = serde_json::to_string(&value).unwrap();
    let received = deskhook::receive(
        &[("a", "b")],
        text.as_bytes(),
        &ReceiveOptions::unauthenticated(),
    )
    .unwrap();
    let Received::Usedesk(event) = &received else {
        panic!("{received:?}")
    };
    let Payload::CommentCreated(comment) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(comment.client.extra["vip"], true);
    assert_eq!(
        String::from_utf8(received.to_json().unwrap()).unwrap(),
        text
    );
}

#[test]
fn ids_and_statuses_come_both_ways_and_go_back_as_they_came() {
    let text = fixture("usedesk", "ticket_changed.json")
        .replace(r#""old_status": "1""#, r#""old_status": 1"#)
        .replace(r#""ticket_id": 2261907"#, r#""ticket_id": "2261907""#)
        .replace(r#""new_status": "2""#, r#""new_status": "12""#);
    let event = usedesk::Event::from_json(text.as_bytes()).unwrap();
    let Payload::TicketChanged(change) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(change.old_status.unwrap(), Status::Open);
    assert_eq!(change.old_status.unwrap().id().form(), IdForm::Number);
    assert_eq!(change.new_status.unwrap(), Status::Other(12));
    assert_eq!(change.ticket_id.form(), IdForm::String);
    assert_eq!(
        String::from_utf8(event.to_json().unwrap()).unwrap(),
        compact(&text)
    );
}
