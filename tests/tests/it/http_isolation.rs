//! A slow endpoint holds up neither another endpoint nor the caller of emit; an observer
//! that panics holds up no delivery.

use std::sync::{Arc, Mutex, mpsc};

use deskhook::Action;
use deskhook_tests::{
    Answer, Receiver, Transport, WAIT, dead_letter_file, endpoint, for_both_transports, start,
    ticket,
};
use deskhook_transports::http_blocking::HttpSink;

fn a_stuck_endpoint_delays_neither_the_other_nor_the_caller(t: Transport) {
    // The stuck receiver holds every request until the test lets it go.
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let stuck = Receiver::start(move |_, _| {
        let _ = released.lock().unwrap().recv_timeout(WAIT);
        Answer::status(204)
    });
    let fast = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("stuck", &stuck, "0s").max_in_flight(2))
            .endpoint(endpoint("fast", &fast, "0s").max_in_flight(2))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();

    // emit on another thread: if it blocked on the stuck endpoint, `done` would never come.
    let (done, emitted) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..20 {
                dispatcher.emit(Action::Comment, &ticket(&format!("S{i}")), &user);
            }
            done.send(()).unwrap();
        });
        emitted
            .recv_timeout(WAIT)
            .expect("emit returned while an endpoint was stuck");
    });
    // The fast endpoint gets all 20 while the stuck one has answered nothing.
    assert_eq!(fast.wait_for(20).len(), 20);
    assert_eq!(stuck.count(), 0);
    let stuck_stats = sink.endpoints().get("stuck").unwrap().stats;
    assert_eq!(stuck_stats.in_flight + stuck_stats.queued, 20);

    for _ in 0..20 {
        release.send(()).unwrap();
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(stuck.count(), 20);
}

fn an_observer_that_panics_stops_no_delivery(t: Transport) {
    // Each ticket's first request fails, so that retries go through the observer too.
    let failed = Mutex::new(std::collections::HashSet::new());
    let receiver = Receiver::start(move |r, _| {
        let code = r.json()["ticket"]["code"].as_str().unwrap_or("").to_owned();
        Answer::status(if failed.lock().unwrap().insert(code) {
            500
        } else {
            204
        })
    });
    let (_dir, dead) = dead_letter_file();
    let seen = Arc::new(Mutex::new(0usize));
    let calls = seen.clone();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,0s").max_in_flight(4))
            .dead_letter_path(&dead)
            .observer(
                move |_: &deskhook_transports::delivery::AttemptRecord<'_>| {
                    *calls.lock().unwrap() += 1;
                    panic!("the application's observer has a bug");
                },
            ),
    );
    let user = deskhook::sample::user();
    for i in 0..20 {
        dispatcher.emit(Action::Comment, &ticket(&format!("P{}", i % 4)), &user);
    }
    guard.flush(WAIT).unwrap();
    let stats = &sink.stats()[0];
    assert_eq!((stats.delivered, stats.dead_lettered), (20, 0), "{stats:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        24,
        "every attempt was shown to the observer"
    );
    // Each ticket's events in their order, the failed first ones sent again first.
    let mut by_ticket: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in receiver.requests().iter().filter(|r| r.status == 204) {
        let sequence = r.header("x-deskhook-sequence").unwrap().to_owned();
        let code = r.json()["ticket"]["code"].as_str().unwrap().to_owned();
        by_ticket.entry(code).or_default().push(sequence);
    }
    assert_eq!(by_ticket.len(), 4);
    for sequences in by_ticket.values() {
        assert_eq!(sequences, &["1", "2", "3", "4", "5"], "{by_ticket:?}");
    }
}

for_both_transports!(
    a_stuck_endpoint_delays_neither_the_other_nor_the_caller,
    an_observer_that_panics_stops_no_delivery
);
