//! Wrong types, missing required keys and truncated JSON give errors that name the key and
//! the line and column.

use std::path::Path;

use deskhook::formats::Format;
use deskhook::formats::{iqchannels, usedesk};
use deskhook::{Error, ReceiveOptions};
use serde_json::Value;

fn fixture(format: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format)
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn fixture_value(format: &str, name: &str) -> Value {
    serde_json::from_str(&fixture(format, name)).unwrap()
}

fn usedesk_error(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap();
    let err = usedesk::Event::from_json(text.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::InvalidEvent { .. }), "{err:?}");
    assert!(!err.is_signature_error());
    err.to_string()
}

fn iqchannels_error(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap();
    iqchannels::Event::from_json(text.as_bytes())
        .unwrap_err()
        .to_string()
}

fn assert_starts(text: &str, start: &str) {
    assert!(
        text.starts_with(start),
        "{text}\n  does not start with\n{start}"
    );
}

#[test]
fn usedesk_wrong_types_are_named_with_their_position() {
    let mut value = fixture_value("usedesk", "comment_created.json");
    value["comment"]["ticket_id"] = Value::from("22x");
    assert_starts(
        &usedesk_error(&value),
        "invalid event at comment.ticket_id: invalid value: string \"22x\", expected an id: \
         a non-negative integer, or a string of its digits at line 10 column",
    );

    let mut value = fixture_value("usedesk", "comment_created.json");
    value["comment"]["first"] = Value::from(2);
    assert_starts(
        &usedesk_error(&value),
        "invalid event at comment.first: invalid value: integer `2`, expected 0 or 1 at line 11",
    );

    let mut value = fixture_value("usedesk", "ticket_created.json");
    value["ticket"]["published_at"] = Value::from("17.12.2016");
    assert_starts(
        &usedesk_error(&value),
        "invalid event at ticket.published_at: invalid time '17.12.2016': expected \
         YYYY-MM-DD HH:MM:SS",
    );

    let mut value = fixture_value("usedesk", "ticket_changed.json");
    value["trigger"]["data"][0]["target"] = Value::from(5);
    assert_starts(
        &usedesk_error(&value),
        "invalid event at trigger.data[0].target: invalid type: integer `5`, expected a string",
    );

    let mut value = fixture_value("usedesk", "ticket_created.json");
    value["ticket"]["custom_fields"] = Value::from("none");
    assert_starts(
        &usedesk_error(&value),
        "invalid event at ticket.custom_fields: invalid type: string \"none\", expected a \
         sequence",
    );

    let mut value = fixture_value("usedesk", "rating.json");
    value["secret"] = Value::from(42);
    assert_starts(
        &usedesk_error(&value),
        "invalid event at secret: invalid type: integer `42`, expected a string",
    );
}

#[test]
fn usedesk_missing_required_keys_are_named() {
    let mut value = fixture_value("usedesk", "rating.json");
    value["rating"].as_object_mut().unwrap().remove("ticket_id");
    assert_starts(
        &usedesk_error(&value),
        "invalid event at rating: missing field `ticket_id` at line",
    );

    let mut value = fixture_value("usedesk", "ticket_created.json");
    value["ticket"].as_object_mut().unwrap().remove("id");
    assert_starts(
        &usedesk_error(&value),
        "invalid event at ticket: missing field `id`",
    );

    let mut value = fixture_value("usedesk", "ticket_created.json");
    value.as_object_mut().unwrap().remove("secret");
    assert_starts(
        &usedesk_error(&value),
        "invalid event: missing field `secret`",
    );

    let mut value = fixture_value("usedesk", "ticket_created.json");
    value["comment"] = serde_json::json!({"ticket_id": 1});
    assert_starts(
        &usedesk_error(&value),
        "invalid event at comment: two payloads, `ticket` and `comment`",
    );
}

#[test]
fn iqchannels_wrong_types_and_missing_keys_are_named() {
    let mut value = fixture_value("iqchannels", "chat_created.json");
    value["ChatEvent"]["ChatId"] = Value::from("170");
    assert_starts(
        &iqchannels_error(&value),
        "invalid event at ChatEvent.ChatId: invalid type: string \"170\", expected i64 at line 5",
    );

    let mut value = fixture_value("iqchannels", "typing.json");
    value["Rels"]["Clients"][0]["Details"]["Fields"][2]["Deleted"] = Value::from("no");
    assert_starts(
        &iqchannels_error(&value),
        "invalid event at Rels.Clients[0].Details.Fields[2].Deleted: invalid type: string \
         \"no\", expected a boolean",
    );

    let mut value = fixture_value("iqchannels", "message_created_operator_file.json");
    value["Rels"]["Files"][0]["CreatedAt"] = Value::from(1.5);
    assert_starts(
        &iqchannels_error(&value),
        "invalid event at Rels.Files[0].CreatedAt: invalid type: floating point `1.5`, \
         expected i64",
    );

    let mut value = fixture_value("iqchannels", "chat_closed.json");
    value["Rels"]["Users"][0]
        .as_object_mut()
        .unwrap()
        .remove("Id");
    assert_starts(
        &iqchannels_error(&value),
        "invalid event at Rels.Users[0]: missing field `Id`",
    );

    let mut value = fixture_value("iqchannels", "chat_closed.json");
    value["ChatEvent"].as_object_mut().unwrap().remove("Type");
    assert_starts(
        &iqchannels_error(&value),
        "invalid event at ChatEvent: missing field `Type`",
    );

    let mut value = fixture_value("iqchannels", "chat_closed.json");
    value["Rels"] = Value::from(Vec::<Value>::new());
    assert_starts(
        &iqchannels_error(&value),
        "invalid event at Rels: invalid type: sequence, expected a Rels object",
    );
}

#[test]
fn truncated_bodies_say_where_they_end() {
    let text = fixture("iqchannels", "message_read.json");
    let cut = &text.as_bytes()[..text.find("\"Projects\"").unwrap() + 20];
    let err = iqchannels::Event::from_json(cut).unwrap_err().to_string();
    assert_starts(&err, "invalid event at Rels.Projects");
    assert!(err.contains("EOF while parsing"), "{err}");

    // receive tells the format from the keys it could read, then reports the parser's error.
    let text = fixture("usedesk", "ticket_changed.json");
    let cut = &text.as_bytes()[..text.find("old_value").unwrap()];
    let err = deskhook::receive(&[("a", "b")], cut, &ReceiveOptions::unauthenticated())
        .unwrap_err()
        .to_string();
    // The body ends inside a key, which serde_path_to_error writes as `?`.
    assert_starts(
        &err,
        "invalid event at trigger.data[0].?: EOF while parsing a string",
    );
    assert!(err.ends_with("at line 12 column 9"), "{err}");
    assert_eq!(Format::detect(cut), Some(Format::Usedesk));

    let err = deskhook::receive(
        &[("a", "b")],
        b"{\"hello\": ",
        &ReceiveOptions::unauthenticated(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "invalid event: EOF while parsing a value at line 1 column 10"
    );
}

#[test]
fn trailing_garbage_is_refused() {
    let text = format!("{} x", fixture("usedesk", "rating.json"));
    let err = usedesk::Event::from_json(text.as_bytes()).unwrap_err();
    assert_starts(&err.to_string(), "invalid event: trailing characters");
}

#[test]
fn a_huge_bad_value_is_quoted_short() {
    let huge = "9".repeat(100_000);
    let mut value = fixture_value("usedesk", "comment_created.json");
    value["comment"]["first"] = Value::from(huge.clone());
    let text = usedesk_error(&value);
    assert!(text.len() < 400, "{} bytes: {}…", text.len(), &text[..200]);
    assert!(text.contains(&format!("{}…", &huge[..64])), "{text}");
}
