//! A ticket's events arrive once each, in order, while the relay that holds them stops (it
//! keeps its leases until it has finished, so the relay that takes over finds nothing to
//! deliver again), and when the server hands out again the messages of events waiting for
//! their ticket's earlier ones (the relay tells the server they are in delivery, and a copy
//! handed out all the same joins the event instead of queueing a second delivery).
//!
//! A stopping relay whose request outlasts its grace gives the partitions back only once that
//! request has ended, so that the relay taking over sends nothing of the ticket meanwhile.
//!
//! One ticket, numbered in its subject, so that an event delivered twice or out of turn
//! shows in the arrivals. `nats-server` runs on a free 127.0.0.1 port; the receiver is on
//! 127.0.0.1.

use std::time::{Duration, Instant};

use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, numbers, publish_numbered, stream_len,
};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::relay::Relay;

const EVENTS: usize = 12;

/// The relays' lease: long enough that a busy machine's slow renewal does not lose it (a
/// relay lets a lease go when a renewal has not answered within half of it).
const LEASE: Duration = Duration::from_secs(2);

/// Waits until the last event has arrived (60 s at most), then a little longer, for a
/// second copy that would follow.
fn wait_for_the_last(receiver: &Receiver) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !numbers(receiver).contains(&(EVENTS - 1)) {
        assert!(
            Instant::now() < deadline,
            "not all delivered: {:?}",
            numbers(receiver)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
}

/// Every event was acknowledged: none is left for a next relay to deliver again.
fn assert_stream_empty(server: &NatsServer) {
    let left = block_on(stream_len(
        &server.url(),
        StreamSettings::new().stream_name(),
    ));
    assert_eq!(left, 0, "events left in the stream");
}

fn relay(server: &NatsServer, receiver: &Receiver, dead: &std::path::Path) -> Relay {
    Relay::builder(
        server.url(),
        DeliverySink::builder()
            .endpoint(endpoint("crm", receiver, "0s,10ms"))
            .dead_letter_path(dead),
    )
    .max_pending(EVENTS)
}

#[test]
fn a_stopping_relay_keeps_its_leases_until_its_work_is_done() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    // Slow enough that the relay's work outlasts its lease three times over.
    let receiver = Receiver::start(|_, _| Answer::status(204).after(Duration::from_millis(500)));
    publish_numbered(&server, "T1", EVENTS, &dead);

    let first = RunningRelay::start(
        relay(&server, &receiver, &dead)
            .lease(LEASE)
            .grace(Duration::from_secs(20)),
    );
    receiver.wait_for(2);
    // The first relay stops with most of the ticket still to deliver; a second one,
    // started meanwhile, would take the partitions as soon as their leases ended.
    let stopping = first.begin_stop();
    let second = RunningRelay::start(relay(&server, &receiver, &dead).lease(LEASE));
    let first = stopping.wait();
    wait_for_the_last(&receiver);
    let second = second.stop();

    let arrived = numbers(&receiver);
    assert_eq!(
        arrived,
        (0..EVENTS).collect::<Vec<_>>(),
        "each event once, in order"
    );
    assert_eq!(
        (first.acknowledged, first.handed_back),
        (EVENTS as u64, 0),
        "the stopping relay finished the ticket: {first:?}"
    );
    assert_eq!(second.acknowledged, 0, "nothing was left: {second:?}");
    assert_stream_empty(&server);
}

#[test]
fn a_stopping_relay_gives_its_partitions_back_only_once_its_requests_have_ended() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    // The first request is answered after 5 s, long past the stopping relay's grace and
    // its lease; the others at once. The receiver lists requests as it answers them.
    let first_came = Arc::new(AtomicBool::new(false));
    let came = first_came.clone();
    let receiver = Receiver::start(move |_, n| {
        if n == 0 {
            came.store(true, Ordering::SeqCst);
            return Answer::status(204).after(Duration::from_secs(5));
        }
        Answer::status(204)
    });
    publish_numbered(&server, "T1", EVENTS, &dead);

    let first = RunningRelay::start(
        relay(&server, &receiver, &dead)
            .lease(LEASE)
            .grace(Duration::from_millis(100)),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !first_came.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the first request never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The first relay stops with its request on the wire; the second would take the
    // partitions as soon as they were given back, and send the ticket's events again.
    let stopping = first.begin_stop();
    let second = RunningRelay::start(relay(&server, &receiver, &dead).lease(LEASE));
    let first = stopping.wait();
    wait_for_the_last(&receiver);
    let second = second.stop();

    let answered = receiver.requests();
    assert_eq!(
        answered[0].index, 0,
        "a request came while the stopped relay's was on the wire ({first:?}, {second:?})"
    );
    let arrived = numbers(&receiver);
    assert!(arrived.is_sorted(), "in order, at least once: {arrived:?}");
    let mut once = arrived.clone();
    once.dedup();
    assert_eq!(once, (0..EVENTS).collect::<Vec<_>>(), "{arrived:?}");
    assert_stream_empty(&server);
}

#[test]
fn events_waiting_for_their_ticket_are_not_handed_out_again() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    // The first event is answered late: the ticket's others wait behind it, in the relay's
    // gate, for five times the relay's `ack_wait`.
    let receiver = Receiver::start(|_, n| {
        Answer::status(204).after(if n == 0 {
            Duration::from_millis(1500)
        } else {
            Duration::ZERO
        })
    });
    publish_numbered(&server, "T1", EVENTS, &dead);

    // The server hands out again what it hears nothing of for `ack_wait`: the relay tells
    // it of the messages whose events wait in gates too.
    let relay =
        RunningRelay::start(relay(&server, &receiver, &dead).ack_wait(Duration::from_millis(300)));
    wait_for_the_last(&receiver);
    let report = relay.stop();

    let arrived = numbers(&receiver);
    assert_eq!(
        arrived,
        (0..EVENTS).collect::<Vec<_>>(),
        "each event once, in order ({report:?})"
    );
    assert_eq!(report.acknowledged, EVENTS as u64, "{report:?}");
    assert_stream_empty(&server);
}
