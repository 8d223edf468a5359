//! A 3-node nats-server cluster on 127.0.0.1 with the stream replicated 3 times: a node
//! killed (SIGKILL) while events are published loses no acknowledged event and breaks no
//! ticket's order; the publisher reconnects to the other nodes by itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook::policy::BreakerPolicy;
use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsCluster, read_stream, stream_len, wait_for_stream_leader};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::{AttemptOutcome, AttemptRecord};
use deskhook_transports::nats::{NatsSink, Storage, StreamSettings};

const EVENTS: usize = 300;

#[test]
fn a_node_killed_mid_run_loses_and_reorders_nothing() {
    let mut cluster = NatsCluster::start(3);
    let (_dir, dead) = dead_letter_file();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let record = acked.clone();
    let (sink, guard) = NatsSink::builder(cluster.urls())
        .stream(StreamSettings::new().storage(Storage::File).replicas(3))
        .timeout(Duration::from_secs(2))
        .retry(
            "0s,50ms,100ms,200ms,500ms,500ms,1s,1s,1s,1s,1s,1s"
                .parse()
                .unwrap(),
        )
        // Publishes fail while the client moves to another node: a short cool-down, so
        // that the breaker does not hold the queue for the default 30 s.
        .breaker(BreakerPolicy {
            failures: 10,
            cool_down: Duration::from_millis(200),
        })
        .dead_letter_path(&dead)
        .observer(move |r: &AttemptRecord<'_>| {
            if r.outcome == AttemptOutcome::Delivered {
                record.lock().unwrap().insert(r.event_id.to_string());
            }
        })
        .build()
        .expect("the sink starts");
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    std::thread::scope(|scope| {
        let emitter = scope.spawn(|| {
            for i in 0..EVENTS {
                let mut t = ticket(&format!("C{}", i % 10));
                t.subject = i.to_string();
                dispatcher.emit(Action::Comment, &t, &user);
                if i % 10 == 9 {
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        while acked.lock().unwrap().len() < EVENTS / 4 {
            assert!(Instant::now() < deadline, "nothing acknowledged");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Mid-run, the first node dies (perhaps the one the publisher is connected to).
        cluster.nodes[0].stop();
        emitter.join().unwrap();
    });
    guard
        .flush(Duration::from_secs(30))
        .expect("every event is acknowledged by the remaining nodes");
    let totals = sink.delivery().totals();
    assert_eq!(totals.delivered as usize, EVENTS, "{totals:?}");
    assert_eq!((totals.dropped, totals.dead_lettered), (0, 0), "{totals:?}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_for_stream_leader(&cluster.nodes[1].url(), "DESKHOOK"));
    // Read by sequence, not drained by a consumer: see `read_stream`.
    let held = runtime.block_on(stream_len(&cluster.nodes[1].url(), "DESKHOOK"));
    let stored = runtime.block_on(read_stream(&cluster.nodes[1].url(), "DESKHOOK"));
    let seen = format!("the stream held {held}, {} read", stored.len());
    let ids: HashSet<&str> = stored
        .iter()
        .map(|m| m.header("Nats-Msg-Id").expect("a message id"))
        .collect();
    assert_eq!(ids.len(), stored.len(), "no event stored twice; {seen}");
    for id in acked.lock().unwrap().iter() {
        assert!(
            ids.contains(id.as_str()),
            "acknowledged event {id} lost; {seen}"
        );
    }
    assert_eq!(stored.len(), EVENTS, "{seen}");
    // Each ticket's events are in the stream in the order they were emitted.
    let mut last: HashMap<String, usize> = HashMap::new();
    for message in &stored {
        let body: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
        let code = body["ticket"]["code"].as_str().unwrap().to_owned();
        let n: usize = body["ticket"]["subject"].as_str().unwrap().parse().unwrap();
        if let Some(previous) = last.insert(code.clone(), n) {
            assert!(previous < n, "ticket {code}: {n} after {previous}");
        }
    }
}
