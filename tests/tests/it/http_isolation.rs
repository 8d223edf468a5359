//! A slow endpoint holds up neither another endpoint nor the caller of emit.

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

for_both_transports!(a_stuck_endpoint_delays_neither_the_other_nor_the_caller);
