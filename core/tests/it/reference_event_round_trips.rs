//! The Zenlix document's example parses and is written back identically, key order included.

use deskhook::event::{ActionName, Priority, Status};
use deskhook::sample::REFERENCE_JSON;
use deskhook::{Action, Event};
use serde_json::Value;

fn compact(json: &str) -> String {
    // serde_json's Value keeps key order (feature preserve_order), so this is the reference's
    // own order, minus white space.
    let value: Value = serde_json::from_str(json).unwrap();
    serde_json::to_string(&value).unwrap()
}

#[test]
fn the_reference_event_round_trips_byte_for_byte() {
    let event = Event::from_json(REFERENCE_JSON.as_bytes()).unwrap();
    let body = String::from_utf8(event.to_json().unwrap()).unwrap();
    assert_eq!(body, compact(REFERENCE_JSON));

    let pretty = serde_json::to_string_pretty(&event).unwrap();
    assert_eq!(pretty, REFERENCE_JSON.trim_end());
}

#[test]
fn the_reference_event_parses_into_types() {
    let event = Event::from_json(REFERENCE_JSON.as_bytes()).unwrap();
    let ticket = &event.ticket;
    assert_eq!(ticket.code, "E3XK");
    assert_eq!(ticket.prio, Priority::Normal);
    assert_eq!(ticket.status, Status::Lock);
    assert_eq!(ticket.text, "Body text with attachments.\r\nРусский текст.");
    assert!(!ticket.inspect_after_ok);
    assert!(!ticket.individual_ok);
    assert_eq!(ticket.deadline_time, None);
    assert_eq!(ticket.client.len(), 1);
    assert_eq!(ticket.watched.len(), 2);
    assert_eq!(ticket.watched[1].contacts.email, "info@example.com");
    assert_eq!(ticket.comments.len(), 22);
    assert_eq!(ticket.logs.len(), 24);
    assert_eq!(ticket.logs[3].action, deskhook::event::LogAction::Lock);
    assert_eq!(ticket.target_group, "Default group");
    assert_eq!(event.initial_user.profile.lang, "ru");
    // The document's placeholders are not actions; they are kept as they came.
    assert_eq!(event.action, ActionName::Other("action".into()));
    assert_eq!(event.description, "message");
    assert_eq!(event.dt.to_string(), "2019-06-11T11:24:18");
}

#[test]
fn unknown_keys_are_kept_everywhere_and_written_back() {
    let mut value: Value = serde_json::from_str(REFERENCE_JSON).unwrap();
    value["webhook_version"] = Value::from(2);
    value["ticket"]["sla"] = serde_json::json!([{"plan": "gold", "hours": 4}]);
    value["ticket"]["fields"] = serde_json::json!([{"name": "Room", "value": "301"}]);
    value["ticket"]["department_id"] = Value::from(17);
    value["ticket"]["comments"][0]["dt"] = Value::from("2019-06-09 21:06:01");
    value["ticket"]["logs"][0]["ip"] = Value::from("127.0.0.1");
    value["initial_user"]["profile"]["avatar"] = Value::Null;
    value["initial_user"]["contacts"]["phone"] = Value::from("+7 000");
    value["initial_user"]["id"] = Value::from(1);
    let text = serde_json::to_string(&value).unwrap();

    let event = Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.extra["webhook_version"], 2);
    assert_eq!(event.ticket.extra["department_id"], 17);
    assert_eq!(event.ticket.sla[0]["plan"], "gold");
    assert_eq!(event.initial_user.contacts.extra["phone"], "+7 000");
    assert_eq!(String::from_utf8(event.to_json().unwrap()).unwrap(), text);
}

#[test]
fn string_booleans_are_written_as_strings_and_read_both_ways() {
    let mut value: Value = serde_json::from_str(REFERENCE_JSON).unwrap();
    value["ticket"]["inspect_after_ok"] = Value::Bool(true);
    value["ticket"]["individual_ok"] = Value::from("true");
    let event = Event::from_json(value.to_string().as_bytes()).unwrap();
    assert!(event.ticket.inspect_after_ok);
    assert!(event.ticket.individual_ok);

    let written: Value = serde_json::from_slice(&event.to_json().unwrap()).unwrap();
    assert_eq!(written["ticket"]["inspect_after_ok"], "true");
    assert_eq!(written["ticket"]["individual_ok"], "true");

    value["ticket"]["individual_ok"] = Value::from("yes");
    let err = Event::from_json(value.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "invalid event at ticket.individual_ok: invalid value: string \"yes\", expected \"true\" or \"false\""
        ),
        "{err}"
    );
}

#[test]
fn aprrove_on_the_wire_reads_as_approve() {
    let text = REFERENCE_JSON.replace(r#""action": "action""#, r#""action": "aprrove""#);
    let event = Event::from_json(text.as_bytes()).unwrap();
    assert_eq!(event.action, ActionName::Known(Action::Approve));
    assert_eq!(event.action.action(), Some(Action::Approve));
}

#[test]
fn a_deadline_and_a_bad_log_time_are_handled() {
    let mut value: Value = serde_json::from_str(REFERENCE_JSON).unwrap();
    value["ticket"]["deadline_time"] = Value::from("2019-06-20 18:00:00");
    let event = Event::from_json(value.to_string().as_bytes()).unwrap();
    assert_eq!(
        event.ticket.deadline_time.unwrap().to_string(),
        "2019-06-20T18:00:00"
    );
    let written: Value = serde_json::from_slice(&event.to_json().unwrap()).unwrap();
    assert_eq!(written["ticket"]["deadline_time"], "2019-06-20 18:00:00");

    value["ticket"]["logs"][3]["dt"] = Value::from("yesterday");
    let err = Event::from_json(value.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "invalid event at ticket.logs[3].dt: invalid time 'yesterday': expected YYYY-MM-DD HH:MM:SS"
        ),
        "{err}"
    );
}
