//! 410 disables the endpoint, 400 dead-letters after one attempt, and redirects are never
//! followed.

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{
    Answer, Receiver, Transport, dead_letter_file, endpoint, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::http_blocking::HttpSink;

fn gone_disables_the_endpoint_and_dead_letters_the_rest(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(410));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("gone", &receiver, "0s,10ms").max_in_flight(1))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("G1"), &user);
    receiver.wait_for(1);
    guard.flush(Duration::from_secs(5)).unwrap();
    dispatcher.emit(Action::Edit, &ticket("G1"), &user);
    dispatcher.emit(Action::Edit, &ticket("G2"), &user);
    guard.flush(Duration::from_secs(5)).unwrap();

    assert_eq!(receiver.count(), 1, "nothing is sent after 410");
    let stats = &sink.stats()[0];
    assert_eq!(
        stats.state,
        deskhook_transports::delivery::EndpointState::Disabled
    );
    assert_eq!(stats.dead_lettered, 3);
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0].last_status, Some(410));
    assert!(
        letters[0].reason.starts_with("410 Gone"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[1].reason, "endpoint disabled after 410 Gone");
    assert_eq!(letters[2].reason, "endpoint disabled after 410 Gone");
    // Routed after `emit` returned: the refusal is in the dead letters, not `emit`'s result.
    assert_eq!(dispatcher.stats().sinks[0].failed, 0);
}

fn bad_request_dead_letters_after_one_attempt_with_the_exact_body(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(400));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("strict", &receiver, "0s,10ms,10ms"))
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Comment, &ticket("B1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(5)).unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].reason, "400 from the receiver (not retried)");
    assert_eq!(letters[0].id, requests[0].header("webhook-id").unwrap());
    assert_eq!(
        letters[0].body.get().as_bytes(),
        requests[0].body.as_slice()
    );
    assert_eq!(sink.stats()[0].retried, 0);
}

fn a_redirect_is_not_followed(t: Transport) {
    let target = Receiver::ok();
    let location = target.url.clone();
    let redirecting =
        Receiver::start(move |_, _| Answer::status(302).header("Location", &location));
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("moved", &redirecting, "0s,10ms"))
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Restore, &ticket("M1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(redirecting.count(), 1);
    assert_eq!(target.count(), 0, "the redirect target must see nothing");
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]
            .reason
            .starts_with("302 redirect (redirects are not followed"),
        "{}",
        letters[0].reason
    );
}

for_both_transports!(
    gone_disables_the_endpoint_and_dead_letters_the_rest,
    bad_request_dead_letters_after_one_attempt_with_the_exact_body,
    a_redirect_is_not_followed
);
