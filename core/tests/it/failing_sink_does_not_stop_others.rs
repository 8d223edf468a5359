//! A sink that fails or panics is logged and counted; the other sinks still get the event and
//! the caller of `emit` sees nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::sink::{AsyncEventSink, Emitted, EventSink, sink_fn};
use deskhook::{Action, Dispatcher, Error, EventTypeSet, sample};

#[derive(Default)]
struct Record(Mutex<Vec<String>>);

impl Record {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl EventSink for Record {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", event.action(), event.ordering_key()));
        Ok(())
    }
}

struct AsyncRecord(Arc<Record>);

#[deskhook::sink::async_trait]
impl AsyncEventSink for AsyncRecord {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        self.0.send(event)
    }
}

fn dispatcher(record: Arc<Record>) -> Dispatcher {
    Dispatcher::builder()
        .sink("broken", sink_fn(|_| Err(Error::sink("disk full"))))
        .sink("panicky", sink_fn(|_| panic!("sink bug")))
        .sink("record", record)
        .build()
}

#[test]
fn failing_and_panicking_sinks_do_not_stop_the_others() {
    let record = Arc::new(Record::default());
    let dispatcher = dispatcher(record.clone());
    let ticket = sample::ticket();
    let user = sample::user();

    deskhook::with_dispatcher(&dispatcher, || {
        deskhook::emit(Action::Create, &ticket, &user);
        deskhook::emit(Action::Comment, &ticket, &user);
    });

    assert_eq!(record.lines(), ["create E3XK", "comment E3XK"]);
    let stats = dispatcher.stats();
    assert_eq!(stats.emitted, 2);
    let by_name = |name: &str| stats.sinks.iter().find(|s| s.name == name).unwrap().clone();
    assert_eq!((by_name("broken").sent, by_name("broken").failed), (0, 2));
    assert_eq!((by_name("panicky").sent, by_name("panicky").failed), (0, 2));
    assert_eq!((by_name("record").sent, by_name("record").failed), (2, 0));
}

#[test]
fn subscriptions_choose_the_sinks_and_change_at_run_time() {
    let all = Arc::new(Record::default());
    let some = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder()
        .sink("all", all.clone())
        .sink_for("some", some.clone(), [Action::Create, Action::Ok])
        .build();
    let ticket = sample::ticket();
    let user = sample::user();

    dispatcher.emit(Action::Create, &ticket, &user);
    dispatcher.emit(Action::Edit, &ticket, &user);
    dispatcher.set_subscription("some", Action::Edit).unwrap();
    assert_eq!(
        dispatcher.subscription("some"),
        Some(EventTypeSet::from(Action::Edit))
    );
    dispatcher.emit(Action::Create, &ticket, &user);
    dispatcher.emit(Action::Edit, &ticket, &user);

    assert_eq!(
        all.lines(),
        ["create E3XK", "edit E3XK", "create E3XK", "edit E3XK"]
    );
    assert_eq!(some.lines(), ["create E3XK", "edit E3XK"]);

    let err = dispatcher
        .set_subscription("crm", EventTypeSet::all())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no sink named 'crm' (the dispatcher has: all, some)"
    );
}

#[test]
fn a_dispatcher_with_no_subscriber_serializes_nothing() {
    let some = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder()
        .sink_for("some", some.clone(), EventTypeSet::from(Action::Ok))
        .build();
    dispatcher.emit(Action::Lock, &sample::ticket(), &sample::user());
    assert_eq!(dispatcher.stats().emitted, 0);
    assert!(some.lines().is_empty());
}

#[test]
fn an_event_that_cannot_be_serialized_is_dropped_not_emitted() {
    let all = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder().sink("all", all.clone()).build();
    let mut ticket = sample::ticket();
    // A key that is one of the ticket's fields: it would be written twice.
    ticket
        .extra
        .insert("subject".into(), serde_json::json!("other"));
    dispatcher.emit(Action::Create, &ticket, &sample::user());
    dispatcher.emit(Action::Create, &sample::ticket(), &sample::user());
    let stats = dispatcher.stats();
    assert_eq!((stats.emitted, stats.dropped), (1, 1));
    assert_eq!(all.lines(), ["create E3XK"]);
}

#[test]
fn async_sinks_are_awaited_or_driven_from_blocking_emit() {
    let record = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder()
        .async_sink("async", AsyncRecord(record.clone()))
        .async_sink_for(
            "async-nop",
            deskhook::sink::NopSink,
            EventTypeSet::from(Action::Unlock),
        )
        .build();
    let ticket = sample::ticket();
    let user = sample::user();

    dispatcher.emit(Action::Lock, &ticket, &user);
    pollster::block_on(dispatcher.emit_async(Action::Unlock, &ticket, &user));
    let event = sample::event(Action::Restore);
    pollster::block_on(dispatcher.emit_webhook_async(&event));

    assert_eq!(record.lines(), ["lock E3XK", "unlock E3XK", "restore E3XK"]);
    assert_eq!(dispatcher.stats().sinks[1].sent, 1);
    dispatcher.flush(Duration::from_millis(100)).unwrap();
}

#[test]
fn an_event_with_an_unknown_action_is_dropped_and_counted() {
    let record = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder().sink("record", record.clone()).build();
    let reference = deskhook::Event::from_json(sample::REFERENCE_JSON.as_bytes()).unwrap();
    dispatcher.emit_webhook(&reference); // action "action": a placeholder, not an action
    assert!(record.lines().is_empty());
    assert_eq!(dispatcher.stats().dropped, 1);
}

#[test]
fn flush_failures_are_reported_per_sink() {
    struct Stuck;
    impl EventSink for Stuck {
        fn send(&self, _: &Emitted<'_>) -> Result<(), Error> {
            Ok(())
        }
        fn flush(&self, timeout: Duration) -> Result<(), Error> {
            Err(Error::sink(format!(
                "3 events still queued after {timeout:?}"
            )))
        }
    }
    let dispatcher = Dispatcher::builder()
        .sink("stuck", Stuck)
        .sink("fine", deskhook::sink::NopSink)
        .build();
    let err = dispatcher.flush(Duration::ZERO).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flush failed for 1 sink(s): sink 'stuck' failed: 3 events still queued after 0ns"
    );
}

/// An async sink that never finishes taking an event.
struct Stuck;

#[deskhook::sink::async_trait]
impl AsyncEventSink for Stuck {
    async fn send(&self, _event: &Emitted<'_>) -> Result<(), Error> {
        std::future::pending().await
    }
}

#[test]
fn an_async_emit_dropped_midway_counts_the_sinks_it_never_reached() {
    let record = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder()
        .async_sink("stuck", Stuck)
        .async_sink("record", AsyncRecord(record.clone()))
        .build();
    let (ticket, user) = (sample::ticket(), sample::user());
    let mut emit = Box::pin(dispatcher.emit_async(Action::Create, &ticket, &user));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        emit.as_mut().poll(&mut cx).is_pending(),
        "held by the stuck sink"
    );
    // The caller gives up (a client that hung up): the sink after it never got the event.
    drop(emit);
    let stats = dispatcher.stats();
    assert_eq!((stats.sinks[0].sent, stats.sinks[0].failed), (0, 0));
    assert_eq!((stats.sinks[1].sent, stats.sinks[1].failed), (0, 1));
    assert!(record.lines().is_empty());
}
