//! `emit` where a helpdesk's code may call it: inside nested scopes dropped in any order, from a
//! sink dropped with its scope, and from a thread-local destructor at thread exit, after
//! deskhook's own thread-locals (its serialization buffer, the id generator's RNG) are gone.

use std::cell::RefCell;

use deskhook::sink::NopSink;
use deskhook::{Action, Dispatcher, sample};

fn sent(dispatcher: &Dispatcher) -> u64 {
    dispatcher.stats().sinks[0].sent
}

#[test]
fn scoped_guards_dropped_out_of_order_leave_no_stale_dispatcher() {
    let a = Dispatcher::builder().sink("a", NopSink).build();
    let b = Dispatcher::builder().sink("b", NopSink).build();
    let emit = || deskhook::emit(Action::Lock, &sample::ticket(), &sample::user());
    let guard_a = deskhook::dispatch::set_scoped(&a);
    let guard_b = deskhook::dispatch::set_scoped(&b);
    drop(guard_a);
    emit();
    assert_eq!((sent(&a), sent(&b)), (0, 1), "b, set last, is in force");
    drop(guard_b);
    emit();
    assert_eq!(sent(&a), 0, "a's scope ended first: it never comes back");
}

/// A sink that emits (through the facade) when it is dropped.
struct EmitsWhenDropped;

impl deskhook::sink::EventSink for EmitsWhenDropped {
    fn send(&self, _: &deskhook::sink::Emitted<'_>) -> Result<(), deskhook::Error> {
        Ok(())
    }
}

impl Drop for EmitsWhenDropped {
    fn drop(&mut self) {
        deskhook::emit(Action::Comment, &sample::ticket(), &sample::user());
    }
}

/// A scoped dispatcher's last clone goes with its guard, and its sinks with it: one that
/// emits as it goes reaches the scoped dispatchers still in force (here an outer one), and
/// finds their list free.
#[test]
fn a_sink_dropped_with_its_scope_may_emit() {
    let outer = Dispatcher::builder().sink("outer", NopSink).build();
    let inner = Dispatcher::builder()
        .sink("inner", EmitsWhenDropped)
        .build();
    let guard_outer = deskhook::dispatch::set_scoped(&outer);
    let guard_inner = deskhook::dispatch::set_scoped(&inner);
    drop(inner);
    drop(guard_inner);
    assert_eq!(
        sent(&outer),
        1,
        "the dropped sink's event went to the outer scope"
    );
    drop(guard_outer);
}

/// Emits one event when the thread it lives on exits.
struct EmitOnExit(Option<Dispatcher>);

impl Drop for EmitOnExit {
    fn drop(&mut self) {
        if let Some(dispatcher) = self.0.take() {
            dispatcher.emit(Action::Unlock, &sample::ticket(), &sample::user());
        }
    }
}

thread_local! {
    static ON_EXIT: RefCell<EmitOnExit> = const { RefCell::new(EmitOnExit(None)) };
}

#[test]
fn an_event_emitted_from_a_thread_local_destructor_is_sent() {
    let dispatcher = Dispatcher::builder().sink("nop", NopSink).build();
    let on_thread = dispatcher.clone();
    std::thread::spawn(move || {
        // Registered before deskhook's own thread-locals, so destroyed after them (thread
        // locals go in the reverse order of their first use on Linux).
        ON_EXIT.with(|slot| slot.borrow_mut().0 = Some(on_thread.clone()));
        on_thread.emit(Action::Lock, &sample::ticket(), &sample::user());
    })
    .join()
    .expect("the thread, and its destructors, ran without a panic");
    assert_eq!(sent(&dispatcher), 2);
}

#[test]
fn an_async_emit_goes_to_the_dispatcher_current_when_it_is_called() {
    let (scoped, other) = (
        Dispatcher::builder().sink("scoped", NopSink).build(),
        Dispatcher::builder().sink("other", NopSink).build(),
    );
    let (ticket, user) = (sample::ticket(), sample::user());
    let body = br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21},"Rels":{}}"#;
    let event = deskhook::formats::iqchannels::Event::from_json(body).unwrap();
    // Made inside the scope, awaited inside another: the first one counts.
    let futures = deskhook::with_dispatcher(&scoped, || {
        (
            deskhook::emit_async(Action::Create, &ticket, &user),
            deskhook::emit_webhook_async(&event),
            deskhook::for_tenant("acme").emit_async(Action::Comment, &ticket, &user),
            deskhook::for_tenant("acme").emit_webhook_async(&event),
        )
    });
    deskhook::with_dispatcher(&other, || {
        pollster::block_on(async {
            futures.0.await;
            futures.1.await;
            futures.2.await;
            futures.3.await;
        });
    });
    assert_eq!((sent(&scoped), sent(&other)), (4, 0));
}
