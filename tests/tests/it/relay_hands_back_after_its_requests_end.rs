//! A relay that hands a partition back to a relay that joined gives it back only once its
//! requests still on the wire have ended, even past its grace: the next owner never sends
//! a ticket's event while this relay's request of the same ticket is still open.
//!
//! One receiver holds every request for 800 ms and notes any ticket with two requests open
//! at once; the relays' grace is 50 ms. `nats-server` runs on a free 127.0.0.1 port; the
//! receiver is on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook_tests::nats::{NatsServer, RunningRelay, publish_in_turn};
use deskhook_tests::{Answer, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::nats::partition_of;
use deskhook_transports::relay::Relay;

const TICKETS: [&str; 6] = ["T0", "T1", "T2", "T3", "T4", "T5"];
const PER_TICKET: usize = 3;
/// How long the receiver holds each request: far past the relays' grace.
const HOLD: Duration = Duration::from_millis(800);

/// The ticket code and number of a request's event.
fn event_of(body: &serde_json::Value) -> (String, usize) {
    let ticket = &body["ticket"];
    let code = ticket["code"].as_str().expect("a code").to_owned();
    let n = ticket["subject"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a number");
    (code, n)
}

/// Waits until `done` holds, checking every 10 ms, for 30 s at most.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_relay_hands_a_partition_back_only_once_its_requests_ended() {
    let server = NatsServer::start();
    let (_dir, dead) = dead_letter_file();
    publish_in_turn(&server, 2, (&TICKETS, PER_TICKET), &dead);

    // Requests open per ticket, and how many arrived while another of their ticket was
    // open.
    let open: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let receiver = Receiver::start({
        let (open, overlaps) = (open.clone(), overlaps.clone());
        move |request, _| {
            let (code, _) = event_of(&request.json());
            {
                let mut open = open.lock().expect("open");
                let n = open.entry(code.clone()).or_default();
                if *n > 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                *n += 1;
            }
            std::thread::sleep(HOLD);
            *open
                .lock()
                .expect("open")
                .get_mut(&code)
                .expect("its entry") -= 1;
            Answer::status(204)
        }
    });
    let relay = |owned: &Arc<Mutex<Vec<u32>>>| {
        let owned = owned.clone();
        Relay::builder(
            server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("slow", &receiver, "0s,10ms"))
                .dead_letter_path(&dead),
        )
        // Long enough that a busy machine's slow renewal does not lose it: a lost lease
        // lets requests overlap, as the relay's docs say.
        .lease(Duration::from_secs(3))
        .grace(Duration::from_millis(50))
        .on_partitions(move |now: &[u32]| *owned.lock().expect("owned") = now.to_vec())
    };

    let (first_owns, second_owns) = (Arc::default(), Arc::default());
    let first = RunningRelay::start(relay(&first_owns));
    // Each partition has requests open when the second relay joins, whichever it takes.
    let partitions = |codes: &mut dyn Iterator<Item = &str>| {
        let mut of: Vec<u32> = codes.map(|code| partition_of(code, 2)).collect();
        of.sort_unstable();
        of.dedup();
        of
    };
    assert_eq!(
        partitions(&mut TICKETS.into_iter()),
        [0, 1],
        "tickets of both"
    );
    wait_until(
        "the first relay to own both partitions and send in each",
        || {
            let open = open.lock().expect("open");
            first_owns.lock().expect("owned").len() == 2
                && partitions(
                    &mut open
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(c, _)| c.as_str()),
                ) == [0, 1]
        },
    );
    let second = RunningRelay::start(relay(&second_owns));
    wait_until("the second relay to take a partition", || {
        second_owns.lock().expect("owned").len() == 1
    });
    let every_event = || {
        let mut seen: Vec<(String, usize)> = receiver
            .requests()
            .iter()
            .map(|r| event_of(&r.json()))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() == TICKETS.len() * PER_TICKET
    };
    wait_until("every event at the receiver", every_event);
    let reports = [first.stop(), second.stop()];

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "a ticket's request was sent while another of it was open: {reports:?}"
    );
    // At least once, each ticket in order: a number never goes back.
    let mut by_arrival = receiver.requests();
    by_arrival.sort_by_key(|r| r.index);
    for ticket in TICKETS {
        let numbers: Vec<usize> = by_arrival
            .iter()
            .map(|r| event_of(&r.json()))
            .filter(|(code, _)| code == ticket)
            .map(|(_, n)| n)
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] <= w[1]),
            "ticket {ticket}: {numbers:?}"
        );
    }
}
