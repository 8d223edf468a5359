//! The async transport on an application's own runtime: emit from many tasks at once,
//! dropping the guard inside the runtime flushes, a runtime that shuts down with events
//! queued dead-letters them instead of losing them (and an endpoint removed then is removed
//! from its spool), and a sink shut down closes the connections it kept although the
//! application still holds it.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::{Answer, Receiver, WAIT, dead_letter_file, endpoint, ticket};
use deskhook_transports::delivery::{EndpointSpec, read_dead_letters};
use deskhook_transports::http_async::AsyncHttpSink;

/// A multi-threaded runtime of the application's, with `threads` workers.
fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

/// An async sink built on the current runtime, delivering to `receiver`'s `crm`, with a
/// dispatcher over it.
fn started(
    receiver: &Receiver,
    dead: &std::path::Path,
) -> (
    deskhook_transports::delivery::DeliverySink,
    deskhook_transports::delivery::DeliveryGuard,
    Dispatcher,
) {
    let (sink, guard) = AsyncHttpSink::builder()
        .endpoint(endpoint("crm", receiver, "0s"))
        .dead_letter_path(dead)
        .build_async()
        .unwrap();
    let dispatcher = Dispatcher::builder()
        .async_sink("http", sink.clone())
        .build();
    (sink, guard, dispatcher)
}

#[test]
fn events_emitted_from_many_tasks_at_once_are_all_delivered() {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let runtime = runtime(2);
    runtime.block_on(async {
        let (sink, guard, dispatcher) = started(&receiver, &dead);
        let user = deskhook::sample::user();
        let mut tasks = Vec::new();
        for task in 0..8 {
            let (dispatcher, user) = (dispatcher.clone(), user.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let t = ticket(&format!("A{task}-{}", i % 3));
                    dispatcher.emit_async(Action::Comment, &t, &user).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        guard.shutdown_async(WAIT).await.unwrap();
        let letters = std::fs::read_to_string(&dead).unwrap();
        assert_eq!(letters, "", "stats: {:?}", sink.stats());
        assert_eq!(sink.stats()[0].delivered, 200);
    });
    assert_eq!(receiver.count(), 200);
}

#[test]
fn a_shut_down_sink_closes_the_connections_it_kept() {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let runtime = runtime(2);
    runtime.block_on(async {
        let (sink, guard, dispatcher) = started(&receiver, &dead);
        let user = deskhook::sample::user();
        for n in 0..3 {
            let t = ticket(&format!("K-{n}"));
            dispatcher.emit_async(Action::Comment, &t, &user).await;
        }
        guard.shutdown_async(WAIT).await.unwrap();
        assert_eq!(receiver.count(), 3);
        // The sink is still referenced (a global dispatcher keeps it for the process's
        // life), and the runtime its connections' tasks run on goes on.
        assert_eq!(
            receiver.wait_until_all_closed(),
            0,
            "kept connections still open"
        );
        drop((dispatcher, sink));
    });
}

#[test]
fn a_blocking_flush_outside_a_runtime_waits_for_an_async_sink() {
    // Registered as an async sink, flushed from plain code with deskhook's blocking flush
    // (which polls async sinks on its own thread, outside any runtime).
    let receiver = Receiver::start(|_, _| Answer::status(204).after(Duration::from_millis(50)));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard) = AsyncHttpSink::builder()
        .endpoint(endpoint("crm", &receiver, "0s"))
        .dead_letter_path(&dead)
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder()
        .async_sink("http", sink.clone())
        .build();
    dispatcher.emit(Action::Lock, &ticket("F1"), &deskhook::sample::user());
    dispatcher.flush(WAIT).unwrap();
    assert_eq!(sink.stats()[0].delivered, 1);
    drop(guard);
}

#[test]
fn a_blocking_flush_on_a_current_thread_runtime_ends_at_its_timeout() {
    // deskhook's blocking flush called from async code on a current-thread runtime, whose
    // one thread also runs the async sink's deliveries: it holds that thread, so nothing is
    // delivered meanwhile, and its timer stands still too. It must end at its timeout
    // (before, it never ended).
    let receiver = Arc::new(Receiver::ok());
    let (_dir, dead) = dead_letter_file();
    let (ended, flushed) = mpsc::channel();
    let app = {
        let receiver = receiver.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let guard = runtime.block_on(async {
                let (sink, guard, dispatcher) = started(&receiver, &dead);
                dispatcher.emit(Action::Lock, &ticket("C1"), &deskhook::sample::user());
                let blocking = dispatcher.flush(Duration::from_millis(200));
                let _ = ended.send(blocking.is_err());
                // Awaited, the flush lets the runtime deliver.
                deskhook::sink::AsyncEventSink::flush(&sink, WAIT)
                    .await
                    .unwrap();
                guard
            });
            guard.shutdown(WAIT).unwrap();
        })
    };
    let failed = flushed
        .recv_timeout(Duration::from_secs(20))
        .expect("the blocking flush ended");
    assert!(
        failed,
        "nothing could be delivered while it held the thread"
    );
    app.join().unwrap();
    assert_eq!(receiver.count(), 1);
}

#[test]
fn dropping_the_guard_inside_a_runtime_flushes() {
    let receiver = Receiver::start(|_, _| Answer::status(204).after(Duration::from_millis(1)));
    let (_dir, dead) = dead_letter_file();
    let runtime = runtime(2);
    runtime.block_on(async {
        let (sink, guard) = AsyncHttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .dead_letter_path(&dead)
            .shutdown_timeout(WAIT)
            .build_async()
            .unwrap();
        let dispatcher = Dispatcher::builder().sink("http", sink).build();
        let user = deskhook::sample::user();
        for i in 0..30 {
            dispatcher.emit(Action::Edit, &ticket(&format!("D{}", i % 4)), &user);
        }
        drop(guard); // waits with block_in_place
    });
    assert_eq!(receiver.count(), 30);
    assert_eq!(std::fs::read_to_string(&dead).unwrap(), "");
}

#[test]
fn a_runtime_that_shuts_down_dead_letters_what_it_held() {
    // The receiver holds every request, so events stay queued and in flight.
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let receiver = Receiver::start(move |_, _| {
        let _ = released.lock().unwrap().recv_timeout(WAIT);
        Answer::status(204)
    });
    let (_dir, dead) = dead_letter_file();
    let runtime = runtime(1);
    let (sink, guard) = runtime.block_on(async {
        AsyncHttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(1))
            .dead_letter_path(&dead)
            .build_async()
            .unwrap()
    });
    let dispatcher = Dispatcher::builder().sink("http", sink.clone()).build();
    let user = deskhook::sample::user();
    for code in ["R1", "R2", "R3"] {
        dispatcher.emit(Action::Create, &ticket(code), &user);
    }
    let deadline = std::time::Instant::now() + WAIT;
    while sink.stats()[0].in_flight == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing went out");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The application's runtime goes away with the delivery tasks on it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 3, "every accepted event is accounted for");
    assert!(letters.iter().all(|l| {
        l.reason
            .starts_with("the async runtime shut down before delivery")
    }));
    assert_eq!(
        letters
            .iter()
            .map(|l| l.ticket.as_str())
            .collect::<Vec<_>>(),
        ["R1", "R2", "R3"]
    );
    // Later events are not lost either.
    dispatcher.emit(Action::Create, &ticket("R4"), &user);
    assert_eq!(read_dead_letters(&dead).unwrap().len(), 4);
    release.send(()).unwrap();
    drop(guard);
}

/// An endpoint removed once the runtime that delivered for a spool is gone (the sink
/// stopped its endpoints) is removed from the spool too: it is not registered again at
/// the next start.
#[test]
fn an_endpoint_removed_after_the_runtime_went_is_not_restored() {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(1);
    let (sink, guard) = runtime.block_on(async {
        AsyncHttpSink::builder()
            .spool(deskhook_transports::spool::Spool::open(dir.path()).unwrap())
            .build_async()
            .unwrap()
    });
    for name in ["crm", "chat"] {
        let mut spec = EndpointSpec::new(name, receiver.url.clone());
        spec.allow_private = true;
        sink.endpoints().upsert_spec(&spec).unwrap();
    }
    runtime.shutdown_timeout(Duration::from_millis(100));
    sink.endpoints().remove("chat").unwrap();
    drop(guard);
    drop(sink);
    let runtime = self::runtime(1);
    let (sink, guard) = runtime.block_on(async {
        AsyncHttpSink::builder()
            .spool(deskhook_transports::spool::Spool::open(dir.path()).unwrap())
            .restore_endpoints(true)
            .build_async()
            .unwrap()
    });
    assert_eq!(sink.endpoints().names(), ["crm"]);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}
