//! With the spool, a ticket whose events keep failing holds only its own: the other
//! tickets' events, spooled behind it, are delivered meanwhile, though the memory window is
//! smaller than the stuck ticket's backlog; once it recovers, its events follow in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deskhook::Action;
use deskhook::policy::BreakerPolicy;
use deskhook_tests::{Answer, Receiver, Transport, endpoint, for_both_transports, start, ticket};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::Spool;

const STUCK: usize = 40;
const OTHERS: [&str; 4] = ["B1", "B2", "B3", "B4"];
const PER_OTHER: usize = 5;

fn a_stuck_ticket_holds_up_no_other(t: Transport) {
    let stuck = Arc::new(AtomicBool::new(true));
    let receiver = {
        let stuck = stuck.clone();
        Receiver::start(move |request, _| {
            let code = request.json()["ticket"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if code == "STUCK" && stuck.load(Ordering::SeqCst) {
                Answer::status(503)
            } else {
                Answer::status(204)
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("crm", &receiver, &format!("0s{}", ",20ms".repeat(500))).max_in_flight(2),
            )
            .breaker(BreakerPolicy {
                failures: 0,
                cool_down: Duration::ZERO,
            })
            // Eight rows in memory per endpoint, four per ticket: the stuck ticket's forty
            // would fill the window five times over.
            .spool(Spool::builder(dir.path()).memory_window(8).open().unwrap()),
    );
    let user = deskhook::sample::user();
    for i in 0..STUCK {
        let mut t = ticket("STUCK");
        t.subject = i.to_string();
        dispatcher.emit(Action::Comment, &t, &user);
    }
    for i in 0..PER_OTHER {
        for code in OTHERS {
            let mut t = ticket(code);
            t.subject = i.to_string();
            dispatcher.emit(Action::Comment, &t, &user);
        }
    }

    // The others are all delivered while STUCK keeps failing.
    let others = OTHERS.len() * PER_OTHER;
    let mut delivered = 0;
    for _ in 0..1000 {
        delivered = receiver
            .requests()
            .iter()
            .filter(|r| r.status == 204)
            .count();
        if delivered == others {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(delivered, others, "the other tickets were held up");
    assert_eq!(
        sink.stats()[0].dead_lettered,
        0,
        "the others went while the stuck ticket was still being retried, not after it was \
         given up"
    );

    // STUCK recovers: its forty follow, in order.
    stuck.store(false, Ordering::SeqCst);
    guard.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(
        sink.stats()[0].delivered as usize,
        STUCK + others,
        "{:?}",
        sink.stats()
    );
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.index);
    let mut next: HashMap<String, usize> = HashMap::new();
    for request in requests.iter().filter(|r| r.status == 204) {
        let body = request.json();
        let code = body["ticket"]["code"].as_str().unwrap().to_owned();
        let n: usize = body["ticket"]["subject"].as_str().unwrap().parse().unwrap();
        let expected = next.entry(code.clone()).or_default();
        assert_eq!(n, *expected, "ticket {code} out of order");
        *expected += 1;
    }
    assert_eq!(next["STUCK"], STUCK);
    drop((dispatcher, sink));
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

for_both_transports!(a_stuck_ticket_holds_up_no_other);
