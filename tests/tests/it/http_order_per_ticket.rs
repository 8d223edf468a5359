//! Per (endpoint, ticket), events arrive in emit order even when attempts fail and are
//! retried; X-Deskhook-Sequence counts 1, 2, … per ticket.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use deskhook_tests::{
    Answer, Receiver, Transport, dead_letter_file, emit_in_turn, endpoint, for_both_transports,
    start,
};
use deskhook_transports::http_blocking::HttpSink;

fn tickets_keep_their_order_under_injected_failures(t: Transport) {
    // Every event with an even subject fails twice (503, then 500) before it is taken: it
    // must be retried before any later event of its ticket is sent.
    let attempts: Mutex<HashMap<String, u32>> = Mutex::default();
    let receiver = Receiver::start(move |request, _| {
        let subject: usize = request.json()["ticket"]["subject"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let id = request.header("webhook-id").unwrap().to_owned();
        let mut attempts = attempts.lock().unwrap();
        let n = attempts.entry(id).or_default();
        *n += 1;
        match (subject % 2, *n) {
            (0, 1) => Answer::status(503),
            (0, 2) => Answer::status(500),
            _ => Answer::status(204),
        }
    });
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s,1ms,1ms,1ms,1ms,1ms,1ms,1ms").max_in_flight(4))
            .dead_letter_path(&dead),
    );
    let tickets = ["T1", "T2", "T3", "T4"];
    let per_ticket = 15;
    emit_in_turn(&dispatcher, &tickets, per_ticket);
    guard.flush(Duration::from_secs(20)).unwrap();

    // In order of arrival, each ticket's requests carry subjects 0, 1, 2, …: a failed one is
    // repeated (same webhook-id) before the next one is sent.
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.index);
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut delivered = 0;
    for request in &requests {
        let body = request.json();
        let code = body["ticket"]["code"].as_str().unwrap().to_owned();
        let subject: usize = body["ticket"]["subject"].as_str().unwrap().parse().unwrap();
        let seq: u64 = request
            .header("x-deskhook-sequence")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(seq, subject as u64 + 1, "sequence counts per ticket from 1");
        let expected = next.entry(code.clone()).or_default();
        assert_eq!(
            subject, *expected,
            "ticket {code} out of order at request {}",
            request.index
        );
        if request.status == 204 {
            *expected += 1;
            delivered += 1;
        }
    }
    assert_eq!(delivered, tickets.len() * per_ticket);
    let even = per_ticket.div_ceil(2);
    assert_eq!(
        requests.len(),
        tickets.len() * (per_ticket + 2 * even),
        "two retries per even event"
    );
    assert!(next.values().all(|n| *n == per_ticket));
    let stats = &sink.stats()[0];
    assert_eq!(stats.delivered as usize, tickets.len() * per_ticket);
    assert_eq!(stats.dead_lettered, 0);
}

for_both_transports!(tickets_keep_their_order_under_injected_failures);
