//! Dropping the guard delivers what is queued; a full queue follows its overflow policy and
//! counts what it drops.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use deskhook::Action;
use deskhook::policy::OverflowPolicy;
use deskhook_tests::{
    Answer, Receiver, Transport, WAIT, dead_letter_file, endpoint, for_both_transports, start,
    ticket,
};
use deskhook_transports::Error;
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::http_blocking::HttpSink;

fn dropping_the_guard_delivers_everything_queued(t: Transport) {
    let receiver = Receiver::start(|_, _| Answer::status(204).after(Duration::from_millis(2)));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(2))
            .dead_letter_path(&dead)
            .shutdown_timeout(WAIT),
    );
    let user = deskhook::sample::user();
    for i in 0..50 {
        dispatcher.emit(Action::Edit, &ticket(&format!("F{}", i % 5)), &user);
    }
    drop(guard);
    assert_eq!(receiver.count(), 50);
    assert_eq!(sink.stats()[0].delivered, 50);
    // After shutdown, events are not lost: they are dead-lettered.
    dispatcher.emit(Action::Edit, &ticket("late"), &user);
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "sink shut down");
}

/// Waits until the sink's first endpoint has an attempt in flight.
fn wait_in_flight(sink: &deskhook_transports::delivery::DeliverySink) {
    let deadline = std::time::Instant::now() + WAIT;
    while sink.stats()[0].in_flight == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first event never went out"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn shutdown_dead_letters_what_it_could_not_deliver(t: Transport) {
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let receiver = Receiver::start(move |_, _| {
        let _ = released.lock().unwrap().recv_timeout(WAIT);
        Answer::status(204)
    });
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(1))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for code in ["A", "B", "C"] {
        dispatcher.emit(Action::Create, &ticket(code), &user);
    }
    // One attempt is stuck in flight, two are queued.
    wait_in_flight(&sink);
    let err = guard.shutdown(Duration::from_millis(50)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("2 event(s) queued and 1 in flight"),
        "{err}"
    );
    let letters = read_dead_letters(&dead).unwrap();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == "undelivered at shutdown")
            .count(),
        2
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("undelivered at shutdown, while in flight"))
            .count(),
        1
    );
    release.send(()).unwrap();
    if t == Transport::Blocking {
        // The stuck attempt ends after the stop (its worker thread lives on; the async
        // transport's runtime ended with the stop): delivered, but counted once, with the
        // dead letters that reported it.
        let deadline = std::time::Instant::now() + WAIT;
        let attempts = loop {
            let page = sink
                .attempts(&deskhook_transports::delivery::AttemptQuery::new())
                .unwrap();
            if !page.items.is_empty() {
                break page.items;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the attempt never ended"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            attempts[0].delivered() && attempts[0].status == Some(204),
            "{attempts:?}"
        );
        let totals = sink.totals();
        assert_eq!(
            (totals.delivered, totals.dead_lettered),
            (0, 3),
            "{totals:?}"
        );
    }
}

/// Holds every request until released; counts how many arrived.
fn gated() -> (Receiver, mpsc::Sender<()>) {
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let receiver = Receiver::start(move |_, _| {
        let _ = released.lock().unwrap().recv_timeout(WAIT);
        Answer::status(204)
    });
    (receiver, release)
}

fn overflow_run(t: Transport, policy: OverflowPolicy) -> (Vec<String>, u64, u64) {
    let (receiver, release) = gated();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").max_in_flight(1))
            .queue_capacity(2)
            .overflow(policy)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    // The first event is taken by the only worker and held by the receiver.
    dispatcher.emit(Action::Create, &ticket("E1"), &user);
    wait_in_flight(&sink);
    for code in ["E2", "E3", "E4", "E5"] {
        dispatcher.emit(Action::Create, &ticket(code), &user);
    }
    // Events are routed to their endpoints' queues just after `emit`, where a full queue
    // drops one; reading the stats routes what is emitted, so the drops happen here.
    assert_eq!(sink.stats()[0].queued, 2);
    for _ in 0..5 {
        let _ = release.send(());
    }
    guard.flush(WAIT).unwrap();
    let codes = receiver
        .requests()
        .iter()
        .map(|r| r.json()["ticket"]["code"].as_str().unwrap().to_owned())
        .collect();
    let stats = &sink.stats()[0];
    (codes, stats.dropped, dispatcher.stats().sinks[0].failed)
}

fn drop_newest_keeps_the_first_events(t: Transport) {
    let (codes, dropped, failed) = overflow_run(t, OverflowPolicy::DropNewest);
    assert_eq!(codes, ["E1", "E2", "E3"]);
    // `emit` had handed the events over: the drops are counted by the endpoint (and
    // logged), not reported to the dispatcher.
    assert_eq!((dropped, failed), (2, 0));
}

fn drop_oldest_keeps_the_latest_events(t: Transport) {
    let (codes, dropped, failed) = overflow_run(t, OverflowPolicy::DropOldest);
    assert_eq!(codes, ["E1", "E4", "E5"]);
    // The new events were all taken; the old ones dropped are counted by the endpoint.
    assert_eq!((dropped, failed), (2, 0));
}

fn block_waits_then_drops_and_counts(t: Transport) {
    let (codes, dropped, failed) = overflow_run(
        t,
        OverflowPolicy::Block {
            timeout: Duration::from_millis(20),
        },
    );
    assert_eq!(codes, ["E1", "E2", "E3"]);
    assert_eq!((dropped, failed), (2, 2));
}

fn send_now_reports_a_full_queue_where_emit_counts_it(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, _guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .queue_capacity(1)
            .dead_letter_path(&dead),
    );
    sink.endpoints().pause("crm").unwrap();
    let user = deskhook::sample::user();
    let tickets = [ticket("N1"), ticket("N2"), ticket("N3")];
    let event = |t| {
        deskhook::sink::Emitted::new(deskhook::EventRef::new(Action::Create, t, &user)).unwrap()
    };
    sink.send_now(&event(&tickets[0])).unwrap();
    let refused = sink.send_now(&event(&tickets[1])).unwrap_err().to_string();
    assert!(
        refused.contains("endpoint 'crm': queue full (1 events, overflow drop-newest)"),
        "{refused}"
    );
    // The way of `emit`: taken, then dropped when routed, counted.
    deskhook::sink::EventSink::send(&sink, &event(&tickets[2])).unwrap();
    let stats = sink.endpoints().get("crm").unwrap().stats;
    assert_eq!((stats.queued, stats.dropped), (1, 2));
}

fn an_event_larger_than_the_whole_budget_is_named_so(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, _guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s"))
            .max_queued_bytes(1024)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    let ticket = ticket("N1");
    let event =
        deskhook::sink::Emitted::new(deskhook::EventRef::new(Action::Create, &ticket, &user))
            .unwrap();
    // The sample event is several KiB: no backlog could make room for it.
    let refused = sink.send_now(&event).unwrap_err().to_string();
    assert!(
        refused.contains("more than the sink's whole max_queued_bytes (1024)"),
        "{refused}"
    );
    assert_eq!(sink.endpoints().get("crm").unwrap().stats.dropped, 1);
}

/// A flush stops waiting when all that is left is for endpoints that cannot send before its
/// deadline: one paused, one whose retry comes in an hour, one whose breaker is open for an
/// hour. It names them, and has delivered everything else.
fn a_flush_does_not_wait_for_endpoints_that_cannot_send(t: Transport) {
    let live = Receiver::ok();
    let down = Receiver::start(|_, _| Answer::status(500));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("live", &live, "0s"))
            .endpoint(endpoint("paused", &live, "0s"))
            .endpoint(endpoint("retrying", &down, "0s,1h"))
            .endpoint(endpoint(
                "tripped",
                &down,
                "0s,10ms,10ms,10ms,10ms,10ms,10ms,10ms",
            ))
            .breaker(deskhook::policy::BreakerPolicy {
                // More than "retrying" fails (one first attempt per event).
                failures: 4,
                cool_down: Duration::from_secs(3600),
            })
            .dead_letter_path(&dead),
    );
    sink.endpoints().pause("paused").unwrap();
    let user = deskhook::sample::user();
    for code in ["H1", "H2", "H3"] {
        dispatcher.emit(Action::Create, &ticket(code), &user);
    }
    // Were it to wait for them, the flush would end at its timeout with `held` 0.
    let err = guard.flush(WAIT).unwrap_err();
    let Error::Undelivered {
        queued,
        in_flight,
        held,
        held_by,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((*queued, *in_flight, *held), (9, 0, 9), "{err}");
    assert_eq!(held_by, &["paused", "retrying", "tripped"]);
    assert!(
        err.to_string().starts_with(
            "9 event(s) queued for endpoints that cannot send within 10s (paused, waiting past \
             it for a retry, a cool-down, a Retry-After or a rate limit, or, in a spool, behind \
             an event of a type only a newer deskhook knows): 'paused', 'retrying', 'tripped'"
        ),
        "{err}"
    );
    let stats = |name: &str| sink.endpoints().get(name).unwrap().stats;
    assert_eq!(stats("live").delivered, 3);
    // The first attempt of each event failed, and its retry is an hour away.
    assert_eq!(
        (stats("retrying").failed, stats("retrying").retried),
        (3, 3)
    );
    // At least the breaker's 4 failures, then nothing for an hour.
    assert!(stats("tripped").failed >= 4, "{:?}", stats("tripped"));
    // A resume lets the paused endpoint's events go, and the flush waits for them.
    sink.endpoints().remove("retrying").unwrap();
    sink.endpoints().remove("tripped").unwrap();
    sink.endpoints().resume("paused").unwrap();
    guard.flush(WAIT).unwrap();
    assert_eq!(live.count(), 6);
}

for_both_transports!(
    a_flush_does_not_wait_for_endpoints_that_cannot_send,
    dropping_the_guard_delivers_everything_queued,
    shutdown_dead_letters_what_it_could_not_deliver,
    drop_newest_keeps_the_first_events,
    drop_oldest_keeps_the_latest_events,
    block_waits_then_drops_and_counts,
    an_event_larger_than_the_whole_budget_is_named_so,
    send_now_reports_a_full_queue_where_emit_counts_it
);
