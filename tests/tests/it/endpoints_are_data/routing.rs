//! Which endpoints an event goes to, and when: tenants, event types and rate limits,
//! changed while events flow.

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{
    Receiver, Transport, WAIT, dead_letter_file, for_both_transports, start, ticket,
};
use deskhook_transports::delivery::{BreakerState, Upserted, read_dead_letters};
use deskhook_transports::http_blocking::HttpSink;

use super::{at, by_path, holding, wait_in_flight};

fn tenants_route_events_to_their_endpoints(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("acme", &receiver).tenant("acme"))
            .endpoint(at("globex", &receiver).tenant("globex"))
            .endpoint(at("audit", &receiver))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher
        .for_tenant("acme")
        .emit(Action::Create, &ticket("A1"), &user);
    deskhook::with_dispatcher(&dispatcher, || {
        deskhook::for_tenant("globex").emit(Action::Create, &ticket("G1"), &user);
        deskhook::emit(Action::Create, &ticket("U1"), &user);
        deskhook::for_tenant("initech").emit(Action::Create, &ticket("I1"), &user);
    });
    guard.flush(WAIT).unwrap();
    let paths = by_path(&receiver.wait_for(6));
    assert_eq!(paths["/acme"], ["A1"]);
    assert_eq!(paths["/globex"], ["G1"]);
    let mut audit = paths["/audit"].clone();
    audit.sort();
    assert_eq!(audit, ["A1", "G1", "I1", "U1"]);

    // Moving an endpoint to another tenant moves its events.
    let moved = at("acme", &receiver).tenant("globex");
    assert_eq!(sink.endpoints().upsert(moved).unwrap(), Upserted::Updated);
    dispatcher
        .for_tenant("acme")
        .emit(Action::Edit, &ticket("A2"), &user);
    dispatcher
        .for_tenant("globex")
        .emit(Action::Edit, &ticket("G2"), &user);
    guard.flush(WAIT).unwrap();
    let paths = by_path(&receiver.wait_for(10));
    assert_eq!(paths["/acme"], ["A1", "G2"]);
    assert_eq!(paths["/globex"], ["G1", "G2"]);
    assert_eq!(paths["/audit"].len(), 6);
    let info = sink.endpoints().get("acme").unwrap();
    assert_eq!(info.stats.tenant.as_deref(), Some("globex"));
}

fn an_endpoint_moved_to_a_tenant_does_not_send_what_it_queued_for_another(t: Transport) {
    let (receiver, release) = holding(|_| 204);
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", &receiver).tenant("acme").max_in_flight(1))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    // More than the breaker's 10 failures: refusing them is no failure of the endpoint's.
    for n in 1..=12 {
        dispatcher
            .for_tenant("acme")
            .emit(Action::Comment, &ticket(&format!("A{n}")), &user);
    }
    wait_in_flight(&sink, 1);
    let moved = at("crm", &receiver).tenant("globex").max_in_flight(1);
    assert_eq!(sink.endpoints().upsert(moved).unwrap(), Upserted::Updated);
    dispatcher
        .for_tenant("globex")
        .emit(Action::Comment, &ticket("G1"), &user);
    release.send(()).unwrap();
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();

    // The attempt in flight finished; acme's queued events went to the dead letters, not to
    // globex's endpoint, which got globex's event.
    let paths = by_path(&receiver.wait_for(2));
    assert_eq!(paths["/crm"].len(), 2);
    assert!(paths["/crm"].contains(&"G1".to_owned()), "{paths:?}");
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 11, "{letters:?}");
    let info = sink.endpoints().get("crm").unwrap();
    assert_eq!(info.stats.breaker, BreakerState::Closed);
    for letter in &letters {
        assert_eq!(letter.tenant.as_deref(), Some("acme"));
        assert!(
            letter.reason.contains("moved to tenant 'globex'") && !letter.reason.contains("  "),
            "{}",
            letter.reason
        );
    }
    // A replay to the endpoint, now globex's, is refused too.
    assert!(sink.redeliver(&letters[0]).is_err());
    assert_eq!(receiver.count(), 2);
}

fn events_of_a_type_an_endpoint_stopped_taking_are_not_sent(t: Transport) {
    let (receiver, release) = holding(|_| 204);
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", &receiver).max_in_flight(1))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    // More than the breaker's 10 failures: refusing them is no failure of the endpoint's.
    for n in 1..=12 {
        dispatcher.emit(Action::Comment, &ticket(&format!("C{n}")), &user);
    }
    dispatcher.emit(Action::Create, &ticket("N1"), &user);
    wait_in_flight(&sink, 1);
    let narrowed = at("crm", &receiver)
        .actions(Action::Create)
        .max_in_flight(1);
    assert_eq!(
        sink.endpoints().upsert(narrowed).unwrap(),
        Upserted::Updated
    );
    release.send(()).unwrap();
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();

    // The attempt in flight finished; the other comments went to the dead letters.
    let paths = by_path(&receiver.wait_for(2));
    assert_eq!(paths["/crm"], ["C1", "N1"]);
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 11, "{letters:?}");
    for letter in &letters {
        assert!(
            letter.reason.contains("no longer takes 'comment' events"),
            "{}",
            letter.reason
        );
    }
    let info = sink.endpoints().get("crm").unwrap();
    assert_eq!(info.stats.breaker, BreakerState::Closed);
    assert_eq!(receiver.count(), 2);
}

fn rate_limited_events_wait_without_holding_a_worker(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                at("slow", &receiver)
                    .rate_limit(3, Duration::from_secs(3600))
                    .unwrap(),
            )
            .endpoint(at("fast", &receiver))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for i in 0..6 {
        dispatcher.emit(Action::Create, &ticket(&format!("S{i}")), &user);
    }
    // Both endpoints get every event: the fast one all 6, the slow one its burst of 3.
    let paths = by_path(&receiver.wait_for(9));
    assert_eq!(paths["/fast"].len(), 6);
    // The first three taken got the burst's tokens (tickets go in parallel: any order).
    let mut slow = paths["/slow"].clone();
    slow.sort();
    assert_eq!(slow, ["S0", "S1", "S2"]);
    // The next token is an hour away: the flush does not wait its whole timeout for it.
    let waited = guard.flush(WAIT).unwrap_err().to_string();
    assert!(
        waited.starts_with("3 event(s) queued for endpoints that cannot send within 10s"),
        "{waited}"
    );
    let stats = sink.endpoints().get("slow").unwrap().stats;
    assert_eq!((stats.delivered, stats.queued, stats.in_flight), (3, 3, 0));
    assert!(stats.rate_limited >= 1, "{stats:?}");
    // A higher rate applies at once.
    let faster = at("slow", &receiver)
        .rate_limit(1000, Duration::from_secs(1))
        .unwrap();
    sink.endpoints().upsert(faster).unwrap();
    guard.flush(WAIT).unwrap();
    assert_eq!(by_path(&receiver.wait_for(12))["/slow"].len(), 6);
}

for_both_transports!(
    tenants_route_events_to_their_endpoints,
    an_endpoint_moved_to_a_tenant_does_not_send_what_it_queued_for_another,
    events_of_a_type_an_endpoint_stopped_taking_are_not_sent,
    rate_limited_events_wait_without_holding_a_worker,
);
