//! A NATS server restarted mid-run (killed, then started again on the same port with the same
//! file store): every event the sink reported acknowledged is in the stream afterwards, and
//! the events emitted while it was down waited in the queue and arrive once it is back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook::policy::BreakerPolicy;
use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, drain_stream};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::{AttemptOutcome, AttemptRecord};
use deskhook_transports::nats::{NatsSink, Storage, StreamSettings};

#[test]
fn acknowledged_events_survive_a_restart_and_queued_ones_follow() {
    let mut server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = acked.clone();
    let (sink, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new().storage(Storage::File))
        .timeout(Duration::from_millis(500))
        // Enough short retries to outlast the restart; the breaker pauses briefly.
        .retry("0s,50ms,100ms,200ms,300ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms".parse().unwrap())
        .breaker(BreakerPolicy {
            failures: 10,
            cool_down: Duration::from_millis(200),
        })
        .dead_letter_path(&dead)
        .observer(move |r: &AttemptRecord<'_>| {
            if r.outcome == AttemptOutcome::Delivered {
                record.lock().unwrap().push(r.event_id.to_string());
            }
        })
        .build()
        .expect("the sink starts");
    let emitted: Arc<Mutex<Vec<String>>> = Arc::default();
    let ids = emitted.clone();
    let dispatcher = Dispatcher::builder()
        .sink("nats", sink.clone())
        .sink(
            "ids",
            deskhook::sink::sink_fn(move |e| {
                ids.lock().unwrap().push(e.id().to_string());
                Ok(())
            }),
        )
        .build();
    let user = deskhook::sample::user();
    let (stopped, server_stopped) = std::sync::mpsc::channel::<()>();
    let stopped_at = std::thread::scope(|scope| {
        // Events keep coming, before and during the outage: 150 before (100 of them
        // acknowledged before the server stops), and the others once it has stopped.
        let (dispatcher, user) = (&dispatcher, &user);
        let emitter = scope.spawn(move || {
            for i in 0..500 {
                if i == 150 {
                    // Bounded: the test thread may have failed before it stopped it.
                    let _ = server_stopped.recv_timeout(WAIT);
                }
                dispatcher.emit(Action::Comment, &ticket(&format!("R{}", i % 20)), user);
                if i % 10 == 9 {
                    std::thread::sleep(Duration::from_millis(4));
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        while acked.lock().unwrap().len() < 100 {
            assert!(Instant::now() < deadline, "nothing acknowledged");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Mid-run: the server dies with publishes in flight and events coming.
        server.stop();
        stopped.send(()).expect("the emitter waits");
        let acked_before: Vec<String> = acked.lock().unwrap().clone();
        std::thread::sleep(Duration::from_millis(400));
        let queued = sink.delivery().totals().queued;
        server.restart();
        emitter.join().unwrap();
        (acked_before, queued)
    });
    let (acked_before_restart, queued_while_down) = stopped_at;
    assert!(
        queued_while_down > 0,
        "events wait in the queue while NATS is down"
    );

    guard
        .flush(WAIT)
        .expect("everything is acknowledged after the restart");
    let stats = sink.delivery().totals();
    assert_eq!(stats.delivered, 500, "{stats:?}");
    assert_eq!((stats.dropped, stats.dead_lettered), (0, 0), "{stats:?}");
    assert!(stats.failed > 0, "publishes failed while it was down");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(drain_stream(
        &server.url(),
        "DESKHOOK",
        Duration::from_secs(2),
    ));
    let stored_ids: Vec<&str> = stored
        .iter()
        .map(|m| m.header("Nats-Msg-Id").expect("a message id"))
        .collect();
    let unique: HashSet<&str> = stored_ids.iter().copied().collect();
    assert_eq!(unique.len(), stored_ids.len(), "no event stored twice");
    for id in &acked_before_restart {
        assert!(unique.contains(id.as_str()), "acknowledged event {id} lost");
    }
    for id in acked.lock().unwrap().iter() {
        assert!(unique.contains(id.as_str()), "acknowledged event {id} lost");
    }
    let all: HashSet<String> = emitted.lock().unwrap().iter().cloned().collect();
    assert_eq!(all.len(), 500);
    assert!(
        all.iter().all(|id| unique.contains(id.as_str())),
        "every emitted event is in the stream"
    );
    drop(guard);
}
