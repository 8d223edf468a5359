//! Actions compiled out through the `action-*` features never reach a sink, emitted for a
//! tenant or not.
//!
//! In the workspace build every action is on, and this checks that all twelve arrive.
//! `.ci/run` also runs it on a build with only two actions:
//!
//! ```text
//! cargo test -p deskhook --no-default-features --features action-create,action-comment --test compiled_out_actions
//! ```

use std::sync::{Arc, Mutex};

use deskhook::sink::{Emitted, EventSink};
use deskhook::{Action, Dispatcher, Error, EventTypeSet, sample};

#[derive(Default)]
struct Record(Mutex<Vec<Action>>);

impl EventSink for Record {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        self.0.lock().unwrap().push(event.action());
        Ok(())
    }
}

/// What the features of this build turn on, read from cargo's own flags rather than from
/// the crate under test.
fn features_of_this_build() -> EventTypeSet {
    let all = cfg!(feature = "all-actions");
    let flags = [
        cfg!(feature = "action-create"),
        cfg!(feature = "action-refer"),
        cfg!(feature = "action-lock"),
        cfg!(feature = "action-unlock"),
        cfg!(feature = "action-ok"),
        cfg!(feature = "action-unok"),
        cfg!(feature = "action-waitok"),
        cfg!(feature = "action-approve"),
        cfg!(feature = "action-delete"),
        cfg!(feature = "action-restore"),
        cfg!(feature = "action-comment"),
        cfg!(feature = "action-edit"),
    ];
    Action::ALL
        .into_iter()
        .zip(flags)
        .filter(|(_, on)| all || *on)
        .map(|(action, _)| action)
        .collect()
}

#[test]
fn only_compiled_in_actions_reach_the_sinks() {
    let record = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder().sink("record", record.clone()).build();
    let ticket = sample::ticket();
    let user = sample::user();
    deskhook::with_dispatcher(&dispatcher, || {
        for action in Action::ALL {
            deskhook::emit(action, &ticket, &user);
            deskhook::emit_webhook(&sample::event(action));
            deskhook::for_tenant("acme").emit(action, &ticket, &user);
        }
    });
    let expected: Vec<Action> = features_of_this_build()
        .actions()
        .flat_map(|a| [a, a, a])
        .collect();
    assert_eq!(*record.0.lock().unwrap(), expected);
    let zenlix = |set: EventTypeSet| set.actions().collect::<EventTypeSet>();
    assert_eq!(
        zenlix(EventTypeSet::compiled_in()),
        features_of_this_build()
    );
    assert_eq!(zenlix(deskhook::enabled()), features_of_this_build());
    // What `replace_enabled` says was on is what `enabled` says, compiled-out actions not in it.
    let on = deskhook::enabled();
    assert_eq!(deskhook::replace_enabled(on), on);
    let compiled_out = 12 - features_of_this_build().len() as u64;
    assert_eq!(
        dispatcher.stats().dropped,
        compiled_out,
        "emit_webhook counts the whole events it drops"
    );
}

#[cfg(not(any(feature = "all-actions", feature = "action-edit")))]
#[test]
fn an_action_compiled_out_is_a_constant_false() {
    // Checked at compile time: `emit(Action::Edit, ..)` begins with this constant and folds away.
    const EDIT_ON: bool = Action::Edit.is_compiled_in();
    const _: () = assert!(!EDIT_ON);
    assert!(!EventTypeSet::compiled_in().contains(Action::Edit));
}

#[cfg(all(
    feature = "action-create",
    feature = "action-comment",
    not(feature = "all-actions")
))]
#[test]
fn the_reduced_build_has_exactly_create_and_comment() {
    assert_eq!(
        EventTypeSet::compiled_in().actions().collect::<Vec<_>>(),
        [Action::Create, Action::Comment]
    );
}
