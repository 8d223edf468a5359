//! The body of every action for the reference ticket equals the reference except for
//! `action` and `description`.

use deskhook::sample::{self, REFERENCE_JSON};
use deskhook::sink::Emitted;
use deskhook::{Action, Dispatcher, EventRef, User};
use serde_json::Value;
use std::sync::Mutex;

#[test]
fn every_action_renders_the_reference_with_its_action_and_label() {
    let reference: Value = serde_json::from_str(REFERENCE_JSON).unwrap();
    let ticket = sample::ticket();
    let user = sample::user();
    let dt = sample::event(Action::Create).dt;
    for action in Action::ALL {
        let body = EventRef::new(action, &ticket, &user)
            .with_dt(dt)
            .to_json()
            .unwrap();
        let mut got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["action"], action.as_str());
        // The reference's initial user speaks Russian.
        assert_eq!(got["description"], action.label_ru());
        got["action"] = reference["action"].clone();
        got["description"] = reference["description"].clone();
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&reference).unwrap()
        );
    }
}

#[test]
fn the_description_follows_the_initial_users_language() {
    let ticket = sample::ticket();
    let english = User::new("a@example.com", "A");
    let event = EventRef::new(Action::Waitok, &ticket, &english);
    assert_eq!(event.description(), "Ticket awaiting review");
    let event = event.with_description("Waiting for Anna");
    assert_eq!(event.description(), "Waiting for Anna");
}

#[test]
fn a_dispatched_body_is_serialized_once_and_shared() {
    #[derive(Default)]
    struct Bodies(Mutex<Vec<(usize, Vec<u8>)>>);
    impl deskhook::sink::EventSink for Bodies {
        fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
            let body = event.body();
            self.0
                .lock()
                .unwrap()
                .push((body.as_ptr() as usize, body.to_vec()));
            Ok(())
        }
    }
    let first = std::sync::Arc::new(Bodies::default());
    let second = std::sync::Arc::new(Bodies::default());
    let dispatcher = Dispatcher::builder()
        .sink("first", first.clone())
        .sink("second", second.clone())
        .build();
    let ticket = sample::ticket();
    let user = sample::user();
    dispatcher.emit(Action::Comment, &ticket, &user);
    let a = first.0.lock().unwrap();
    let b = second.0.lock().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0], b[0], "both sinks see the same allocation and bytes");
    let value: Value = serde_json::from_slice(&a[0].1).unwrap();
    assert_eq!(value["action"], "comment");
}
