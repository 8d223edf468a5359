//! An emitted body is exactly what serde_json writes for the event: emit writes a Zenlix
//! body with the model's own writer and the vendor formats with sonic-rs, for speed, and
//! receivers, signatures and the reference fixtures rest on serde_json's bytes.

use deskhook::event::{Comment, LogAction, LogEntry, Priority, Status};
use deskhook::sample;
use deskhook::sink::Emitted;
use deskhook::{Action, Event, EventRef};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Text where escapes fall on every position of a 16- and 32-byte block: quotes,
/// backslashes, every control character, DEL, multi-byte letters and emoji.
fn awkward_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z ]{0,40}",
        "[а-яё ]{0,20}",
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        (0u8..0x20).prop_map(|b| char::from(b).to_string()),
        Just("\u{7f}\u{2028}\u{2029}😀/<>&'".to_owned()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Free-form JSON as the model keeps it (`sla`, `fields`, `extra`): numbers of every kind,
/// nesting, awkward keys and text.
fn free_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        awkward_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((awkward_text(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// An `extra` map whose keys are none of the model's own (those are refused, not written).
fn extra() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((awkward_text(), free_value()), 0..3).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(key, value)| (format!("x-{key}"), value))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x656d_6974),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_zenlix_body_is_serde_jsons_bytes(
        subject in awkward_text(),
        text in awkward_text(),
        comment in awkward_text(),
        long in 0usize..3000,
    ) {
        let mut ticket = sample::ticket();
        ticket.subject = subject;
        ticket.text = format!("{text}{}", "x".repeat(long));
        ticket.comments.push(Comment::new(sample::user(), comment));
        let user = sample::user();
        for action in [Action::Create, Action::Comment] {
            let event = EventRef::new(action, &ticket, &user);
            let emitted = Emitted::new(event.clone()).unwrap();
            let expected = serde_json::to_vec(&event).unwrap();
            prop_assert_eq!(emitted.body().as_ref(), expected.as_slice());
        }
    }

    /// Every part of the model the emitting writer has code for: lists, `null` and set
    /// deadlines, values it does not know for the enums, free-form JSON and `extra` keys
    /// at every level, an event's own description and time.
    #[test]
    fn every_part_of_a_zenlix_body_is_serde_jsons_bytes(
        text in awkward_text(),
        value in free_value(),
        extras in prop::collection::vec(extra(), 5),
        deadline in any::<bool>(),
        other in any::<bool>(),
    ) {
        let mut user = sample::user();
        user.extra = extras[0].clone();
        user.profile.extra = extras[1].clone();
        let mut ticket = sample::ticket();
        ticket.extra = extras[2].clone();
        ticket.sla = vec![value.clone(), json!({"hours": 4.5})];
        ticket.fields = vec![value];
        ticket.deadline_time = deadline.then_some(ticket.created_at);
        ticket.watched = vec![user.clone(), sample::user()];
        ticket.target_user = vec![user.clone()];
        if other {
            ticket.prio = Priority::Other(text.clone());
            ticket.status = Status::Other(text.clone());
        }
        let mut entry = LogEntry::new(user.clone(), LogAction::Other(text.clone()), ticket.created_at);
        entry.extra = extras[3].clone();
        ticket.logs = vec![entry, LogEntry::new(sample::user(), Action::Lock, ticket.created_at)];
        let mut event = Event::new(Action::Edit, ticket, user);
        event.description = text;
        event.extra = extras[4].clone();
        let by_ref = event.as_event_ref().unwrap();
        let emitted = Emitted::new(by_ref.clone()).unwrap();
        let (expected, owned) = (serde_json::to_vec(&by_ref).unwrap(), event.to_json().unwrap());
        prop_assert_eq!(emitted.body().as_ref(), expected.as_slice());
        prop_assert_eq!(emitted.body().as_ref(), owned.as_slice());
    }
}
