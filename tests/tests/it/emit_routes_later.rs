//! `emit` hands its event to the sink's router, and a worker routes it to its endpoints'
//! queues. With emitters on several threads, and stats read meanwhile (a read routes what was
//! emitted before it, on the reader's thread), every event reaches every endpoint it goes to
//! exactly once, in emit order per ticket.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use deskhook::Action;
use deskhook_tests::{
    Receiver, Transport, WAIT, dead_letter_file, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::Endpoint;
use deskhook_transports::http_blocking::HttpSink;

const EMITTERS: usize = 4;
const PER_EMITTER: usize = 300;
/// Tickets per emitter (each emitter has its own, so emit order per ticket is defined).
const TICKETS: usize = 10;

fn at(name: &str, receiver: &Receiver, tenant: Option<&str>) -> Endpoint {
    let url = format!("{}/{name}", receiver.url.trim_end_matches("/hook"));
    let endpoint = Endpoint::new(name, &url)
        .unwrap()
        .allow_private(true)
        .retry("0s".parse().unwrap());
    match tenant {
        Some(tenant) => endpoint.tenant(tenant),
        None => endpoint,
    }
}

fn every_event_is_routed_once_in_order_per_ticket(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("all", &receiver, None))
            .endpoint(at("even", &receiver, Some("even")))
            .endpoint(at("odd", &receiver, Some("odd")))
            .queue_capacity(EMITTERS * PER_EMITTER)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    let emitting = AtomicBool::new(true);
    std::thread::scope(|s| {
        let emitters: Vec<_> = (0..EMITTERS)
            .map(|e| {
                let (dispatcher, user) = (&dispatcher, &user);
                s.spawn(move || {
                    let tenant = if e % 2 == 0 { "even" } else { "odd" };
                    for i in 0..PER_EMITTER {
                        let mut t = ticket(&format!("E{e}-T{}", i % TICKETS));
                        t.subject = i.to_string();
                        dispatcher
                            .for_tenant(tenant)
                            .emit(Action::Comment, &t, user);
                    }
                })
            })
            .collect();
        // Reads route on this thread while workers route too.
        s.spawn(|| {
            while emitting.load(Ordering::Acquire) {
                let _ = sink.totals();
                let _ = sink.endpoints().get("all").unwrap();
            }
        });
        for emitter in emitters {
            emitter.join().unwrap();
        }
        emitting.store(false, Ordering::Release);
    });
    guard.flush(WAIT).unwrap();

    // Per endpoint and ticket, the subjects in the order of arrival: 0, 10, 20, … once each.
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.index);
    let mut seen: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for request in &requests {
        let body = request.json();
        let code = body["ticket"]["code"].as_str().unwrap().to_owned();
        let subject = body["ticket"]["subject"].as_str().unwrap().parse().unwrap();
        seen.entry((request.path.clone(), code))
            .or_default()
            .push(subject);
    }
    let per_ticket: Vec<usize> = (0..PER_EMITTER / TICKETS).collect();
    for ((path, code), subjects) in &seen {
        let first = subjects.first().copied().unwrap_or_default();
        let expected: Vec<usize> = per_ticket.iter().map(|k| first + k * TICKETS).collect();
        assert_eq!(subjects, &expected, "{path} {code}: emit order, once each");
    }
    let count = |path: &str| seen.keys().filter(|(p, _)| p == path).count() * PER_EMITTER / TICKETS;
    assert_eq!(
        count("/all"),
        EMITTERS * PER_EMITTER,
        "untenanted: every event"
    );
    assert_eq!(
        count("/even"),
        EMITTERS / 2 * PER_EMITTER,
        "tenant even: its own"
    );
    assert_eq!(
        count("/odd"),
        EMITTERS / 2 * PER_EMITTER,
        "tenant odd: its own"
    );
    let totals = sink.totals();
    assert_eq!(totals.delivered, 2 * (EMITTERS * PER_EMITTER) as u64);
    assert_eq!((totals.dropped, totals.dead_lettered), (0, 0));
}

/// An event no endpoint is registered for (no endpoint yet, a misspelt tenant, a type its
/// tenant's endpoints do not take) goes nowhere, and is counted as such.
fn events_no_endpoint_takes_are_counted_unrouted(t: Transport) {
    let receiver = Receiver::ok();
    // A file of its own, not the default one in the working directory (the source tree).
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(t, HttpSink::builder().dead_letter_path(&dead));
    let user = deskhook::sample::user();
    let emit = |tenant: &str, action: Action| {
        dispatcher
            .for_tenant(tenant)
            .emit(action, &ticket("U-1"), &user);
    };
    // No endpoint at all: routed at once, on the caller's thread.
    emit("acme", Action::Comment);
    assert_eq!(sink.totals().unrouted, 1);

    let acme = at("acme", &receiver, Some("acme")).actions([Action::Comment]);
    sink.endpoints().upsert(acme).unwrap();
    emit("acme", Action::Comment);
    emit("acmee", Action::Comment);
    emit("acme", Action::Lock);
    guard.flush(WAIT).unwrap();
    let totals = sink.totals();
    assert_eq!((totals.delivered, totals.unrouted), (1, 3), "{totals:?}");
    assert_eq!(receiver.requests().len(), 1);
}

for_both_transports!(
    every_event_is_routed_once_in_order_per_ticket,
    events_no_endpoint_takes_are_counted_unrouted,
);
