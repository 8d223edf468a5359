//! The global facade: nothing before a dispatcher is set, set once, scoped overrides, and the
//! run-time action switches. One process for this file, since it sets the global dispatcher.

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

impl Record {
    fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

// One test, because the steps share the process-wide dispatcher and switches.
#[test]
fn the_global_facade_works_from_start_to_finish() {
    let ticket = sample::ticket();
    let user = sample::user();

    // Before a dispatcher is set, emit and flush do nothing.
    assert!(deskhook::dispatch::dispatcher().is_none());
    deskhook::emit(Action::Create, &ticket, &user);
    deskhook::flush().unwrap();

    let global = Arc::new(Record::default());
    deskhook::set_dispatcher(Dispatcher::builder().sink("global", global.clone()).build()).unwrap();
    let again = deskhook::set_dispatcher(Dispatcher::none()).unwrap_err();
    assert!(matches!(again, Error::DispatcherAlreadySet));
    assert!(
        again
            .to_string()
            .starts_with("a global dispatcher is already set")
    );

    deskhook::emit(Action::Create, &ticket, &user);
    deskhook::emit_webhook(&sample::event(Action::Edit));
    deskhook::emit_webhook(
        &deskhook::EventRef::new(Action::Ok, &ticket, &user).with_description("done"),
    );
    assert_eq!(global.take(), [Action::Create, Action::Edit, Action::Ok]);

    // A scoped dispatcher takes over on this thread only, and nests.
    let scoped = Arc::new(Record::default());
    let inner = Arc::new(Record::default());
    let scoped_dispatcher = Dispatcher::builder().sink("scoped", scoped.clone()).build();
    let inner_dispatcher = Dispatcher::builder().sink("inner", inner.clone()).build();
    deskhook::with_dispatcher(&scoped_dispatcher, || {
        deskhook::emit(Action::Lock, &ticket, &user);
        deskhook::with_dispatcher(&inner_dispatcher, || {
            deskhook::emit(Action::Unlock, &ticket, &user)
        });
        deskhook::emit(Action::Lock, &ticket, &user);
        std::thread::scope(|s| {
            s.spawn(|| deskhook::emit(Action::Delete, &ticket, &user));
        });
    });
    assert_eq!(scoped.take(), [Action::Lock, Action::Lock]);
    assert_eq!(inner.take(), [Action::Unlock]);
    assert_eq!(global.take(), [Action::Delete]);

    // Run-time switches.
    deskhook::set_enabled(Action::Comment, false);
    assert!(!deskhook::is_enabled(Action::Comment));
    deskhook::emit(Action::Comment, &ticket, &user);
    deskhook::emit(Action::Restore, &ticket, &user);
    assert_eq!(global.take(), [Action::Restore]);
    deskhook::set_enabled(Action::Comment, true);
    deskhook::emit(Action::Comment, &ticket, &user);
    assert_eq!(global.take(), [Action::Comment]);

    let before = deskhook::replace_enabled(Action::Approve);
    assert_eq!(before, EventTypeSet::all());
    assert_eq!(deskhook::enabled(), EventTypeSet::from(Action::Approve));
    for action in Action::ALL {
        deskhook::emit(action, &ticket, &user);
    }
    assert_eq!(global.take(), [Action::Approve]);
    deskhook::replace_enabled(before);

    // From many threads at once.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    deskhook::emit(Action::Edit, &ticket, &user);
                }
            });
        }
    });
    assert_eq!(global.take().len(), 400);
    assert_eq!(
        deskhook::dispatch::dispatcher().unwrap().stats().sinks[0].failed,
        0
    );
}
