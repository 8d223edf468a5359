//! A dead letter the disk cannot take is counted as dropped, not as dead-lettered, and an
//! event that only such a letter would have kept is reported lost (so that `deskhook serve`
//! asks its sender to send it again). `/dev/full`, which answers every write with "no space
//! left on device", is Linux's.
#![cfg(target_os = "linux")]

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, endpoint, for_both_transports, start, ticket};
use deskhook_transports::http_blocking::HttpSink;

/// Whether it is given up after an attempt, refused by a disabled endpoint, or let go with a
/// removed endpoint's queue, it goes whole to the log and is counted as dropped.
fn a_dead_letter_the_disk_cannot_take_is_counted_as_dropped(t: Transport) {
    let gone = Receiver::start(|_, _| Answer::status(410));
    let held = Receiver::ok();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("gone", &gone, "0s,10ms").max_in_flight(1))
            .endpoint(endpoint("held", &held, "0s,10ms"))
            .dead_letter_path("/dev/full"),
    );
    sink.endpoints().pause("held").unwrap();
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("F1"), &user);
    gone.wait_for(1);
    guard.flush(Duration::from_secs(5)).unwrap_err();
    dispatcher.emit(Action::Edit, &ticket("F1"), &user);
    dispatcher.emit(Action::Edit, &ticket("F2"), &user);
    let removed = sink.endpoints().remove("held").unwrap();
    assert_eq!(
        removed.dead_lettered, 0,
        "letters the file did not take are not reported moved to the dead letters"
    );
    guard.flush(Duration::from_secs(5)).unwrap();

    assert_eq!(gone.count(), 1, "nothing is sent after 410");
    assert_eq!(held.count(), 0, "the paused endpoint sent nothing");
    let stats = &sink.stats()[0];
    assert_eq!(stats.name, "gone");
    assert_eq!((stats.dead_lettered, stats.dropped), (0, 3));
    let totals = sink.totals();
    assert_eq!((totals.dead_lettered, totals.dropped), (0, 6));
}

/// An event over `max_payload` goes straight to the dead letters; when their file cannot
/// take it, `route_now` says it was dropped and that nothing kept it.
fn a_too_large_event_the_disk_cannot_take_is_lost(t: Transport) {
    let receiver = Receiver::ok();
    let (sink, _guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .max_payload(64)
            .dead_letter_path("/dev/full"),
    );
    let user = deskhook::sample::user();
    let ticket = ticket("L1");
    let event =
        deskhook::sink::Emitted::new(deskhook::EventRef::new(Action::Create, &ticket, &user))
            .unwrap();
    let routed = sink.route_now(&event);
    assert!(routed.lost(), "{routed:?}");
    assert!(!routed.refused[0].dead_lettered, "{routed:?}");
    let reason = &routed.refused[0].reason;
    assert!(
        reason.contains("event dropped: the dead-letter file could not take it")
            && reason.contains("set dead_letter_path to a file deskhook can write"),
        "{reason}"
    );
    let stats = &sink.stats()[0];
    assert_eq!((stats.dead_lettered, stats.dropped), (0, 1));
    assert_eq!(receiver.count(), 0);
}

for_both_transports!(
    a_dead_letter_the_disk_cannot_take_is_counted_as_dropped,
    a_too_large_event_the_disk_cannot_take_is_lost
);
