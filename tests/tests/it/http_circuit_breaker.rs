//! After N failures in a row an endpoint pauses for the cool-down, then one probe decides;
//! the state shows in the stats and in the observer's records, and an endpoint left idle
//! is active again once its cool-down is over.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::Action;
use deskhook::policy::BreakerPolicy;
use deskhook_tests::{
    Answer, Receiver, Transport, dead_letter_file, endpoint, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::{AttemptRecord, BreakerState, EndpointState};
use deskhook_transports::http_blocking::HttpSink;

fn the_breaker_pauses_then_probes_then_closes(t: Transport) {
    let receiver = Receiver::start(|_, n| Answer::status(if n < 2 { 500 } else { 204 }));
    let (_dir, dead) = dead_letter_file();
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    let cool_down = Duration::from_millis(150);
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("flaky", &receiver, "0s,1ms,1ms,1ms").max_in_flight(1))
            .breaker(BreakerPolicy {
                failures: 2,
                cool_down,
            })
            .observer(move |r: &AttemptRecord<'_>| {
                seen.lock().unwrap().push((r.status, r.breaker));
            })
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("C1"), &deskhook::sample::user());
    let first_two = receiver.wait_for(2);
    dispatcher.emit(Action::Create, &ticket("C2"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();

    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.index);
    assert_eq!(requests.len(), 4);
    // The probe (third request) waits out the cool-down after the second failure.
    let pause = requests[2].at - first_two.iter().map(|r| r.at).max().unwrap();
    assert!(
        pause >= cool_down - Duration::from_millis(5),
        "probed after {pause:?}"
    );
    assert_eq!(
        *states.lock().unwrap(),
        [
            (Some(500), BreakerState::Closed),
            (Some(500), BreakerState::Open),
            (Some(204), BreakerState::Closed),
            (Some(204), BreakerState::Closed),
        ]
    );
    let stats = &sink.stats()[0];
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert_eq!(stats.delivered, 2);
}

fn an_idle_endpoint_is_active_again_once_its_cool_down_is_over(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(500));
    let (_dir, dead) = dead_letter_file();
    let cool_down = Duration::from_millis(100);
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            // One attempt: the event is dead-lettered, and the endpoint has nothing left.
            .endpoint(endpoint("flaky", &receiver, "0s"))
            .breaker(BreakerPolicy {
                failures: 1,
                cool_down,
            })
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("C1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let failed_at = receiver.requests()[0].at;
    let seen = || {
        (
            sink.endpoints().get("flaky").unwrap().state,
            sink.stats()[0].breaker,
        )
    };
    let first = seen();
    // The cool-down counts from when the attempt settled, after the receiver saw it.
    if failed_at.elapsed() < cool_down - Duration::from_millis(20) {
        assert_eq!(first, (EndpointState::BreakerOpen, BreakerState::Open));
    }
    // Nothing is attempted after: once the cool-down is over, the next event would go
    // out, as the probe.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen().0 != EndpointState::Active && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen(), (EndpointState::Active, BreakerState::HalfOpen));
    assert_eq!(receiver.requests().len(), 1, "no attempt made meanwhile");
}

for_both_transports!(
    the_breaker_pauses_then_probes_then_closes,
    an_idle_endpoint_is_active_again_once_its_cool_down_is_over
);
