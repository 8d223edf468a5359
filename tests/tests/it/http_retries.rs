//! Failed attempts are retried per the schedule with the same webhook-id; Retry-After
//! lengthens the wait up to its maximum; timeouts and refused connections retry and end in
//! the dead letters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{
    Answer, Receiver, Transport, dead_letter_file, endpoint, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::{AttemptOutcome, read_dead_letters};
use deskhook_transports::http_blocking::HttpSink;

fn two_500s_then_success_keep_the_webhook_id(t: Transport) {
    // The failures explain themselves at length; the observer sees the first 1 KiB.
    let receiver = Receiver::start(|_, n| {
        if n < 2 {
            Answer::status(500).body("x".repeat(5000))
        } else {
            Answer::status(204)
        }
    });
    let (_dir, dead) = dead_letter_file();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,10ms,10ms"))
            .dead_letter_path(&dead)
            .observer(
                move |r: &deskhook_transports::delivery::AttemptRecord<'_>| {
                    seen.lock().unwrap().push((
                        r.attempt,
                        r.status,
                        r.outcome,
                        r.next_attempt.is_some(),
                        r.response.len(),
                    ));
                },
            ),
    );
    dispatcher.emit(Action::Create, &ticket("R1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();

    let requests = receiver.wait_for(3);
    assert_eq!(requests.len(), 3);
    let id = requests[0].header("webhook-id").unwrap();
    assert!(requests.iter().all(|r| r.header("webhook-id") == Some(id)));
    assert!(
        requests
            .iter()
            .all(|r| r.header("x-deskhook-sequence") == Some("1"))
    );
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    assert_eq!(
        *outcomes.lock().unwrap(),
        [
            (1, Some(500), AttemptOutcome::Retrying, true, 1024),
            (2, Some(500), AttemptOutcome::Retrying, true, 1024),
            (3, Some(204), AttemptOutcome::Delivered, false, 0),
        ]
    );
    let stats = &sink.stats()[0];
    assert_eq!(
        (
            stats.delivered,
            stats.failed,
            stats.retried,
            stats.dead_lettered
        ),
        (1, 2, 2, 0)
    );
    assert!(stats.latency_p50.is_some());
    assert_eq!(
        std::fs::read_to_string(&dead).unwrap(),
        "",
        "nothing was dead-lettered"
    );
}

fn retry_after_lengthens_the_wait_up_to_the_maximum(t: Transport) {
    // Retry-After asks for an hour; the maximum cuts it to 150 ms. The schedule alone would
    // retry at once.
    let receiver = Receiver::start(|_, n| {
        if n == 0 {
            Answer::status(503).header("Retry-After", "3600")
        } else {
            Answer::status(204)
        }
    });
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,0s"))
            .retry_after_max(Duration::from_millis(150))
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Lock, &ticket("R2"), &deskhook::sample::user());
    let requests = receiver.wait_for(2);
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_millis(150), "retried after {gap:?}");
    assert!(
        gap < Duration::from_secs(60),
        "Retry-After was not clamped: {gap:?}"
    );
    guard.flush(Duration::from_secs(5)).unwrap();
}

fn retry_after_holds_the_whole_endpoint(t: Transport) {
    // A 429 asks the sender to slow down, not only the one ticket: another ticket's event
    // waits too (cut to 150 ms by the maximum), then goes.
    let receiver = Receiver::start(|_, n| {
        if n == 0 {
            Answer::status(429).header("Retry-After", "3600")
        } else {
            Answer::status(204)
        }
    });
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,0s"))
            .retry_after_max(Duration::from_millis(150))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Lock, &ticket("A"), &user);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.stats()[0].failed == 0 {
        assert!(std::time::Instant::now() < deadline, "no 429 settled");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Held, it shows as an open breaker would (read while the hold lasts).
    let state = sink.endpoints().get("crm").unwrap().state;
    if receiver.requests()[0].at.elapsed() < Duration::from_millis(140) {
        assert_eq!(
            state,
            deskhook_transports::delivery::EndpointState::BreakerOpen
        );
    }
    dispatcher.emit(Action::Lock, &ticket("B"), &user);
    let requests = receiver.wait_for(3);
    for later in &requests[1..] {
        let gap = later.at - requests[0].at;
        assert!(
            gap >= Duration::from_millis(150),
            "request {} went {gap:?} after the 429",
            later.index
        );
    }
    guard.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(sink.stats()[0].delivered, 2);
}

fn a_success_in_flight_does_not_end_a_retry_after_hold(t: Transport) {
    // Two tickets in flight: one gets a 429 at once, the other a 204 a moment later. The
    // 204 says nothing of the receiver's wish: a third ticket still waits out the hold.
    let receiver = Receiver::start(|_, n| match n {
        0 => Answer::status(429).header("Retry-After", "3600"),
        1 => Answer::status(204).after(Duration::from_millis(100)),
        _ => Answer::status(204),
    });
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,0s"))
            .retry_after_max(Duration::from_millis(400))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Lock, &ticket("A"), &user);
    dispatcher.emit(Action::Lock, &ticket("B"), &user);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.stats()[0].delivered == 0 || sink.stats()[0].failed == 0 {
        assert!(std::time::Instant::now() < deadline, "{:?}", sink.stats());
        std::thread::sleep(Duration::from_millis(1));
    }
    dispatcher.emit(Action::Lock, &ticket("C"), &user);
    let requests = receiver.wait_for(4);
    let first = requests[0].at;
    for later in &requests[2..] {
        let gap = later.at - first;
        assert!(
            gap >= Duration::from_millis(400),
            "request {} went {gap:?} after the 429",
            later.index
        );
    }
    guard.flush(Duration::from_secs(5)).unwrap();
}

fn a_timeout_is_retried_then_dead_lettered(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(204).after(Duration::from_millis(400)));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("slow", &receiver, "0s,10ms").timeout(Duration::from_millis(100)))
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Ok, &ticket("R3"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(letters[0].reason, "gave up after 2 attempt(s)");
    let error = letters[0].last_error.as_deref().unwrap();
    // The receiver read the request and was slow to answer: the error says so.
    assert_eq!(
        error,
        "timed out (100ms) waiting for the answer, the request written"
    );
    assert_eq!(sink.stats()[0].dead_lettered, 1);
}

fn a_refused_connection_is_retried_then_dead_lettered(t: Transport) {
    // A port that was just free, below the range other tests' receivers bind in: nothing
    // listens there.
    let port = deskhook_tests::nats::free_port();
    let (_dir, dead) = dead_letter_file();
    let closed = deskhook_transports::delivery::Endpoint::new(
        "closed",
        &format!("http://127.0.0.1:{port}/"),
    )
    .unwrap()
    .allow_private(true)
    .retry("0s,5ms,5ms".parse().unwrap());
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder().endpoint(closed).dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Edit, &ticket("R4"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].last_status, None);
    assert!(letters[0].last_error.is_some());
    assert_eq!(letters[0].ticket, "R4");
    assert_eq!(letters[0].action, "edit");
    assert_eq!(sink.stats()[0].failed, 3);
}

for_both_transports!(
    two_500s_then_success_keep_the_webhook_id,
    retry_after_lengthens_the_wait_up_to_the_maximum,
    retry_after_holds_the_whole_endpoint,
    a_success_in_flight_does_not_end_a_retry_after_hold,
    a_timeout_is_retried_then_dead_lettered,
    a_refused_connection_is_retried_then_dead_lettered
);
