//! An endpoint that keeps failing does not stop the partitions it shares with the others:
//! the relay parks what it holds up (in the KV bucket `deskhook-relay-parked`) and
//! acknowledges the messages, so the partition's window of outstanding messages stays open.
//! The next owner of a partition delivers the parked events, each ticket in order, only to
//! the endpoints still waiting for them; a relay that hands a partition back withdraws its
//! parked events rather than wait for their retries. What the failing endpoint's full queue
//! cannot take is dead-lettered, whatever the configured overflow, so that no event goes
//! unseen.
//!
//! Two receivers: `live` answers 204, `failing` 503 until the test heals it, with its next
//! retry an hour away. `nats-server` runs on a free 127.0.0.1 port; the receivers are on
//! 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deskhook::policy::{BreakerPolicy, OverflowPolicy};
use deskhook_tests::nats::{
    NatsServer, RunningRelay, block_on, kv_keys, publish_in_turn, stream_len,
};
use deskhook_tests::{Answer, Received, Receiver, dead_letter_file, endpoint};
use deskhook_transports::delivery::{AttemptOutcome, AttemptRecord, DeliveryConfig, DeliverySink};
use deskhook_transports::nats::async_nats::jetstream;
use deskhook_transports::nats::partition_of;
use deskhook_transports::relay::Relay;

const TICKETS: [&str; 6] = ["T0", "T1", "T2", "T3", "T4", "T5"];
const PER_TICKET: usize = 7;
const EVENTS: usize = TICKETS.len() * PER_TICKET;

/// The receivers, the NATS server and the dead-letter file of one test.
struct Setup {
    server: NatsServer,
    live: Receiver,
    failing: Receiver,
    healed: Arc<AtomicBool>,
    dead: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// Publishes the events to a stream of `partitions` partitions.
    fn start(partitions: u32) -> Setup {
        let server = NatsServer::start();
        let (dir, dead) = dead_letter_file();
        let healed = Arc::new(AtomicBool::new(false));
        let failing = Receiver::start({
            let healed = healed.clone();
            move |_, _| {
                Answer::status(if healed.load(Ordering::SeqCst) {
                    204
                } else {
                    503
                })
            }
        });
        publish_in_turn(&server, partitions, (&TICKETS, PER_TICKET), &dead);
        Setup {
            server,
            live: Receiver::ok(),
            failing,
            healed,
            dead,
            _dir: dir,
        }
    }

    /// A relay delivering to both receivers, taking at most 4 messages of a partition at a
    /// time and parking after 50 ms.
    fn relay(&self) -> Relay {
        Relay::builder(
            self.server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("live", &self.live, "0s"))
                .endpoint(endpoint("failing", &self.failing, "0s,1h"))
                .dead_letter_path(&self.dead),
        )
        .max_pending(4)
        .park_after(Duration::from_millis(50))
        .grace(Duration::from_millis(100))
    }

    /// Waits until `done` holds, checking every 10 ms, for 30 s at most.
    fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "still waiting for {what}; live has {}, failing {}",
                self.live.count(),
                self.failing.count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Messages left in the stream.
    fn stream_len(&self) -> u64 {
        block_on(stream_len(&self.server.url(), "DESKHOOK"))
    }

    /// What `deskhook parked` shows, by endpoint.
    fn parked_summary(&self) -> Vec<deskhook_transports::relay::ParkedEndpoint> {
        block_on(async {
            let context = deskhook_tests::nats::context(&self.server.url()).await;
            let summary = deskhook_transports::relay::parked(&context, "deskhook-relay")
                .await
                .expect("the parked bucket");
            assert_eq!(summary.unreadable, Vec::<String>::new());
            summary.endpoints
        })
    }

    /// Entries left in the parked bucket.
    /// How many entries are left in the parked bucket: the messages of its stream, which a
    /// removed entry leaves with no marker. Not its keys listed: async-nats lists them
    /// through a consumer whose pending count goes stale while entries go, and a list found
    /// empty with dozens left once stopped a relay early.
    fn parked_left(&self) -> usize {
        let left = block_on(stream_len(&self.server.url(), "KV_deskhook-relay-parked"));
        usize::try_from(left).expect("a count")
    }

    /// The keys of the entries left in the parked bucket (`<partition>.…`).
    fn parked_keys(&self) -> Vec<String> {
        block_on(kv_keys(&self.server.url(), "deskhook-relay-parked"))
    }
}

/// (ticket, number) of each request, in arrival order.
fn arrivals(requests: &[Received]) -> Vec<(String, usize)> {
    requests
        .iter()
        .map(|r| {
            let body = r.json();
            let code = body["ticket"]["code"].as_str().expect("a code").to_owned();
            let n = body["ticket"]["subject"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("a number");
            (code, n)
        })
        .collect()
}

/// Asserts that each ticket of `tickets` arrived exactly once per event, in order.
fn once_in_order(arrived: &[(String, usize)], tickets: &[&str]) {
    for ticket in tickets {
        let numbers: Vec<usize> = arrived
            .iter()
            .filter(|(t, _)| t == ticket)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            numbers,
            (0..PER_TICKET).collect::<Vec<_>>(),
            "ticket {ticket}: {arrived:?}"
        );
    }
    assert_eq!(arrived.len(), tickets.len() * PER_TICKET, "{arrived:?}");
}

#[test]
fn a_failing_endpoint_does_not_stop_its_partition_and_the_next_relay_delivers_what_it_parked() {
    let setup = Setup::start(1);
    let first = RunningRelay::start(setup.relay());
    // With 4 messages outstanding at most, all of them held by `failing`, `live` gets the
    // rest only because they are parked; and every message leaves the stream.
    setup.wait_until("live to have everything and the stream to empty", || {
        setup.live.count() == EVENTS && setup.stream_len() == 0
    });
    let report = first.stop();
    assert!(report.parked >= (EVENTS / 4) as u64, "{report:?}");
    assert_eq!(
        report.acknowledged, 0,
        "none finished with `failing`: {report:?}"
    );
    assert_eq!(report.handed_back as usize, EVENTS, "{report:?}");
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    let failed = setup.failing.count();
    assert!(failed > 0, "`failing` was attempted");
    // Nothing finished with the endpoints its entries name: they were not written again.
    let keys = setup.parked_keys();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.ends_with(".0")),
        "{keys:?}"
    );

    setup.healed.store(true, Ordering::SeqCst);
    let second = RunningRelay::start(setup.relay());
    setup.wait_until("failing to have everything", || {
        setup.failing.count() == failed + EVENTS
    });
    // The entries go as their events finish.
    setup.wait_until("the parked entries to go", || setup.parked_left() == 0);
    let report = second.stop();
    assert_eq!(report.acknowledged as usize, EVENTS, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    once_in_order(&arrivals(&setup.failing.requests()[failed..]), &TICKETS);
    // The parked entries named only `failing`: `live` got nothing twice.
    once_in_order(&arrivals(&setup.live.requests()), &TICKETS);
    // Removed entries leave nothing behind in the bucket's stream (no delete markers).
    assert_eq!(
        block_on(stream_len(&setup.server.url(), "KV_deskhook-relay-parked")),
        0
    );
}

/// An endpoint that fails too, then recovers while the first relay still runs, and takes
/// the parked events from it (its retries come every 200 ms): each one it takes is kept,
/// and counted once the relay has its answer.
struct Late {
    receiver: Receiver,
    healed: Arc<AtomicBool>,
    taken: Arc<std::sync::Mutex<Vec<Received>>>,
    delivered: Arc<AtomicUsize>,
}

impl Late {
    fn start() -> Late {
        let healed = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let receiver = Receiver::start({
            let (healed, taken) = (healed.clone(), taken.clone());
            move |request, _| {
                if !healed.load(Ordering::SeqCst) {
                    return Answer::status(503);
                }
                taken.lock().expect("taken").push(request.clone());
                Answer::status(204)
            }
        });
        Late {
            receiver,
            healed,
            taken,
            delivered: Arc::default(),
        }
    }

    /// Whether the relays have the answers to every event it took: a relay stopped before
    /// would leave the last ones to the next owner, `late` among their endpoints.
    fn took_all(&self) -> bool {
        self.delivered.load(Ordering::SeqCst) >= EVENTS
    }

    /// The events it took.
    fn taken(&self) -> Vec<Received> {
        self.taken.lock().expect("taken").clone()
    }

    /// Asserts that it took each event once, each ticket in order.
    fn took_each_once(&self, reports: &[deskhook_transports::relay::RelayReport]) {
        assert_eq!(
            self.taken().len(),
            EVENTS,
            "`late` got nothing twice: {reports:?}"
        );
        once_in_order(&arrivals(&self.taken()), &TICKETS);
    }
}

impl Setup {
    /// A relay delivering to `late` and `failing`, parking after 50 ms.
    fn relay_with(&self, late: &Late) -> Relay {
        let retries = format!("0s{}", ",200ms".repeat(100));
        Relay::builder(
            self.server.url(),
            DeliverySink::builder()
                // No breaker: its cool-down (30 s) would hold `late` up once it recovers.
                .breaker(BreakerPolicy {
                    failures: 0,
                    cool_down: Duration::from_secs(30),
                })
                .endpoint(endpoint("late", &late.receiver, &retries))
                .endpoint(endpoint("failing", &self.failing, "0s,1h"))
                .dead_letter_path(&self.dead)
                .observer({
                    let delivered = late.delivered.clone();
                    move |record: &AttemptRecord<'_>| {
                        if record.endpoint == "late" && record.outcome == AttemptOutcome::Delivered
                        {
                            delivered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }),
        )
        .max_pending(4)
        .park_after(Duration::from_millis(50))
        .grace(Duration::from_millis(100))
    }

    /// Starts a relay with `late`, waits until everything is parked, heals `late` and
    /// waits until it took every event.
    fn parked_then_late_took_all(&self, late: &Late, relay: Relay) -> RunningRelay {
        let running = RunningRelay::start(relay);
        self.wait_until("everything parked and the stream empty", || {
            self.stream_len() == 0
        });
        late.healed.store(true, Ordering::SeqCst);
        self.wait_until("late to take everything", || late.took_all());
        running
    }

    /// Heals `failing` and runs a relay with `late` until `failing` has every parked event
    /// (each ticket once, in order) and the entries went; returns its report.
    fn failing_takes_the_parked(&self, late: &Late) -> deskhook_transports::relay::RelayReport {
        self.healed.store(true, Ordering::SeqCst);
        let failed = self.failing.count();
        let relay = RunningRelay::start(self.relay_with(late));
        self.wait_until("failing to have everything", || {
            self.failing.count() == failed + EVENTS
        });
        self.wait_until("the parked entries to go", || self.parked_left() == 0);
        let report = relay.stop();
        once_in_order(&arrivals(&self.failing.requests()[failed..]), &TICKETS);
        report
    }

    /// Heals `failing` and starts a second relay (`relay`): the first hands it one of the
    /// two partitions, with its parked entries. Waits until the second delivered the moved
    /// tickets' events to `failing` and their entries went. Returns the second relay, the
    /// moved tickets and what `failing` had before.
    fn hand_back_to_a_second(&self, relay: Relay) -> (RunningRelay, Vec<&'static str>, usize) {
        // The first relay's next retries of `failing` are an hour away.
        self.healed.store(true, Ordering::SeqCst);
        let failed = self.failing.count();
        let owned = Arc::new(std::sync::Mutex::new(Vec::new()));
        let second = RunningRelay::start(relay.on_partitions({
            let owned = owned.clone();
            move |now: &[u32]| *owned.lock().expect("owned") = now.to_vec()
        }));
        self.wait_until("the second relay to own a partition", || {
            owned.lock().expect("owned").len() == 1
        });
        let taken = owned.lock().expect("owned")[0];
        let moved: Vec<&str> = TICKETS
            .iter()
            .copied()
            .filter(|t| partition_of(t, 2) == taken)
            .collect();
        assert!(!moved.is_empty(), "some tickets are in partition {taken}");
        self.wait_until("the moved tickets' events at `failing`", || {
            self.failing.count() == failed + moved.len() * PER_TICKET
        });
        // Their entries go as they finish.
        let of_taken = format!("{taken}.");
        self.wait_until("the moved partition's entries to go", || {
            !self.parked_keys().iter().any(|k| k.starts_with(&of_taken))
        });
        (second, moved, failed)
    }
}

#[test]
fn an_endpoint_that_recovered_meanwhile_does_not_get_its_parked_events_again() {
    let setup = Setup::start(1);
    let late = Late::start();
    let first = setup.parked_then_late_took_all(&late, setup.relay_with(&late));
    let parked_before = setup.parked_summary();
    // The first relay stops; the next one delivers the parked events to `failing` alone.
    let first = first.stop();
    assert!(first.parked > 0, "{first:?}");
    // Its entries were written again (parts numbered after the first ones), naming
    // `failing` alone, and saying when they were first parked.
    let keys = setup.parked_keys();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| !k.ends_with(".0")),
        "{keys:?}"
    );
    let parked_after = setup.parked_summary();
    assert_eq!(parked_after.len(), 1, "{parked_after:?}");
    assert_eq!(parked_after[0].endpoint, "failing");
    let failing_before = parked_before.iter().find(|p| p.endpoint == "failing");
    assert_eq!(
        failing_before.and_then(|p| p.oldest),
        parked_after[0].oldest,
        "{parked_before:?}"
    );
    let second = setup.failing_takes_the_parked(&late);
    late.took_each_once(&[first, second]);
}

#[test]
fn an_endpoint_that_recovered_while_the_next_relay_held_its_parked_events_gets_nothing_again() {
    let setup = Setup::start(1);
    let late = Late::start();
    // The first relay parks everything for both failing endpoints, and stops.
    let first = RunningRelay::start(setup.relay_with(&late));
    setup.wait_until("everything parked and the stream empty", || {
        setup.stream_len() == 0
    });
    let first = first.stop();
    let sorted_keys = || {
        let mut keys = setup.parked_keys();
        keys.sort_unstable();
        keys
    };
    let keys = sorted_keys();
    assert!(!keys.is_empty(), "{first:?}");
    // The second reads the entries back; `late` recovers and takes every event from it.
    let second = RunningRelay::start(setup.relay_with(&late));
    late.healed.store(true, Ordering::SeqCst);
    setup.wait_until("late to take everything", || late.took_all());
    let second = second.stop();
    // The entries it read back were replaced in place, naming `failing` alone.
    assert_eq!(sorted_keys(), keys);
    let parked = setup.parked_summary();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(
        (parked[0].endpoint.as_str(), parked[0].events as usize),
        ("failing", EVENTS)
    );
    // The third delivers them to `failing` alone.
    let third = setup.failing_takes_the_parked(&late);
    late.took_each_once(&[first, second, third]);
}

#[test]
fn an_endpoint_that_recovered_meanwhile_gets_nothing_again_after_a_hand_back() {
    let setup = Setup::start(2);
    let late = Late::start();
    let first = setup.parked_then_late_took_all(&late, setup.relay_with(&late));
    // A second relay joins: the first hands it a partition, with its parked entries.
    let (second, moved, failed) = setup.hand_back_to_a_second(setup.relay_with(&late));
    let reports = [second.stop(), first.stop()];
    once_in_order(&arrivals(&setup.failing.requests()[failed..]), &moved);
    late.took_each_once(&reports);
}

#[test]
fn a_relay_hands_a_partition_back_without_waiting_for_its_parked_events() {
    let setup = Setup::start(2);
    let first = RunningRelay::start(setup.relay());
    setup.wait_until("live to have everything and the stream to empty", || {
        setup.live.count() == EVENTS && setup.stream_len() == 0
    });
    // `failing` heals; a second relay joins: the first hands it a partition, withdrawing
    // its parked events at once.
    let (second, moved, failed) = setup.hand_back_to_a_second(setup.relay());
    // The second relay stops first: were the first to stop first, the second would take its
    // partition too, and deliver that one's parked events as well.
    let second = second.stop();
    let first = first.stop();
    once_in_order(&arrivals(&setup.failing.requests()[failed..]), &moved);
    assert_eq!(
        second.acknowledged as usize,
        moved.len() * PER_TICKET,
        "{second:?}"
    );
    let reports = [first, second];
    assert_eq!(
        setup.live.count(),
        EVENTS,
        "`live` got nothing twice: {reports:?}"
    );
}

#[test]
fn a_hand_back_waits_for_what_it_cannot_park_only_its_grace() {
    let setup = Setup::start(2);
    // A parked bucket that refuses every entry (as one full, or with values limited, does).
    // Its stream made as a bucket's (`create_key_value` first asks for the account's info,
    // whose answer async-nats once failed to read under the load of the whole suite).
    block_on(async {
        deskhook_tests::nats::context(&setup.server.url())
            .await
            .create_stream(jetstream::stream::Config {
                name: "KV_deskhook-relay-parked".to_owned(),
                subjects: vec!["$KV.deskhook-relay-parked.>".to_owned()],
                max_messages_per_subject: 1,
                max_message_size: 64,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .expect("the parked bucket's stream");
    });
    let first = RunningRelay::start(setup.relay());
    // The first relay has all it may take of both partitions (each ticket's first event,
    // its next ones gated behind it), none of it parked.
    setup.wait_until("each ticket's first event at both receivers", || {
        setup.live.count() == TICKETS.len() && setup.failing.count() == TICKETS.len()
    });
    // A second relay joins: the first hands it a partition once its grace (100 ms) is
    // over, leaving what is outstanding in the stream, and the second delivers it.
    let (second, moved, failed) = setup.hand_back_to_a_second(setup.relay());
    let second = second.stop();
    let first = first.stop();
    once_in_order(&arrivals(&setup.failing.requests()[failed..]), &moved);
    assert_eq!(first.parked, 0, "{first:?}");
    assert!(first.handed_back >= 4, "{first:?}");
    assert_eq!(second.dead_lettered, 0, "{second:?}");
}

#[test]
fn a_failing_endpoints_full_queue_dead_letters_what_it_cannot_take() {
    let setup = Setup::start(1);
    // Dropping the oldest would drop parked events without a word: the relay dead-letters
    // the newest instead.
    let mut config = DeliveryConfig::default();
    config.queue_capacity = 8;
    config.overflow = OverflowPolicy::DropOldest;
    let relay = RunningRelay::start(
        Relay::builder(
            setup.server.url(),
            DeliverySink::builder()
                .config(config)
                .endpoint(endpoint("failing", &setup.failing, "0s,1h"))
                .dead_letter_path(&setup.dead),
        )
        .max_pending(4)
        .park_after(Duration::from_millis(50))
        .grace(Duration::from_millis(100)),
    );
    setup.wait_until("the stream to empty", || setup.stream_len() == 0);
    let report = relay.stop();
    // At most 8 wait in the queue, and 16 may be in flight: the rest is dead-lettered.
    assert!(
        report.dead_lettered as usize >= EVENTS - 8 - 16,
        "{report:?}"
    );
    assert_eq!(
        (report.dead_lettered + report.handed_back) as usize,
        EVENTS,
        "each event dead-lettered, or parked and left for the next owner: {report:?}"
    );
    let letters = std::fs::read_to_string(&setup.dead).expect("the dead letters");
    assert_eq!(letters.lines().count() as u64, report.dead_lettered);
}

/// Copies every entry of the parked bucket under the key a later tenure of the same
/// partition would have written it under: what a relay whose lease was lost while it
/// parked leaves once it takes the partition again and parks the same messages again.
fn park_each_entry_twice(setup: &Setup) {
    let keys = setup.parked_keys();
    block_on(async {
        let context = deskhook_tests::nats::context(&setup.server.url()).await;
        let bucket = context
            .get_key_value("deskhook-relay-parked")
            .await
            .expect("the parked bucket");
        for key in keys {
            let value = bucket.get(&key).await.unwrap().expect("the entry");
            // `<partition>.<sequence>.<revision>.<part>`, under a later revision.
            let parts: Vec<&str> = key.split('.').collect();
            let revision: u64 = parts[2].parse().unwrap();
            let again = format!("{}.{}.{}.{}", parts[0], parts[1], revision + 1000, parts[3]);
            bucket.put(&again, value).await.unwrap();
        }
    });
}

/// What a first relay parked for `failing` (run until `live` has everything), then changed
/// by `meanwhile`, taken by a relay without `failing`: its report once the entries are gone.
fn parked_for_a_gone_endpoint(
    setup: &Setup,
    meanwhile: impl FnOnce(&Setup),
) -> deskhook_transports::relay::RelayReport {
    let first = RunningRelay::start(setup.relay());
    setup.wait_until("live to have everything and the stream to empty", || {
        setup.live.count() == EVENTS && setup.stream_len() == 0
    });
    let first = first.stop();
    // What the second relay is to take: every event, parked once (a flaky failure once
    // found fewer letters than events, and the first relay's report said nothing then).
    let lettered = std::fs::read_to_string(&setup.dead).map_or(0, |t| t.lines().count());
    assert_eq!(lettered, 0, "the first relay dead-lettered: {first:?}");
    assert!(
        setup.parked_left() >= EVENTS,
        "{} parked: {first:?}",
        setup.parked_left()
    );
    meanwhile(setup);
    let second = RunningRelay::start(
        Relay::builder(
            setup.server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("live", &setup.live, "0s"))
                .dead_letter_path(&setup.dead),
        )
        .max_pending(4),
    );
    setup.wait_until("the parked entries to go", || setup.parked_left() == 0);
    second.stop()
}

#[test]
fn a_parked_event_in_two_entries_is_dead_lettered_once_for_a_gone_endpoint() {
    let setup = Setup::start(1);
    let report = parked_for_a_gone_endpoint(&setup, |setup| {
        park_each_entry_twice(setup);
        assert_eq!(setup.parked_left(), 2 * EVENTS);
    });
    // Each event once, its copy known as such (before: two letters of each).
    assert_eq!(
        (
            report.dead_lettered as usize,
            report.acknowledged as usize,
            report.duplicates as usize
        ),
        (EVENTS, EVENTS, EVENTS),
        "{report:?}"
    );
    let letters = std::fs::read_to_string(&setup.dead).expect("the dead letters");
    assert_eq!(letters.lines().count(), EVENTS);
    assert_eq!(setup.live.count(), EVENTS);
}

#[test]
fn a_parked_event_whose_endpoint_is_gone_is_dead_lettered_by_the_next_relay() {
    let setup = Setup::start(1);
    // The next relay has no `failing` endpoint: what was parked for it is dead-lettered,
    // with the reason, and `live` gets nothing again.
    let report = parked_for_a_gone_endpoint(&setup, |_| {});
    assert_eq!(report.dead_lettered as usize, EVENTS, "{report:?}");
    assert_eq!(report.acknowledged as usize, EVENTS, "{report:?}");
    // Dead-lettered for the endpoint it was parked for, not counted as going nowhere.
    assert_eq!(report.unrouted, 0, "{report:?}");
    let letters = std::fs::read_to_string(&setup.dead).expect("the dead letters");
    assert_eq!(letters.lines().count(), EVENTS);
    assert!(
        letters
            .lines()
            .all(|l| l.contains("\"endpoint\":\"failing\"") && l.contains("no longer takes it")),
        "{letters}"
    );
    assert_eq!(setup.live.count(), EVENTS);
}

#[test]
fn a_ticket_whose_event_keeps_failing_holds_up_only_itself() {
    let setup = Setup::start(1);
    // `picky` refuses ticket T0's events and takes the others': it is not failing, but T0's
    // later events wait behind its first, which waits an hour for its retry.
    let picky = Receiver::start(|request, _| {
        Answer::status(if request.json()["ticket"]["code"] == "T0" {
            503
        } else {
            204
        })
    });
    let relay = RunningRelay::start(
        Relay::builder(
            setup.server.url(),
            DeliverySink::builder()
                .endpoint(endpoint("picky", &picky, "0s,1h"))
                .dead_letter_path(&setup.dead),
        )
        .max_pending(4)
        .park_after(Duration::from_millis(50))
        .grace(Duration::from_millis(100)),
    );
    let others = || -> Vec<(String, usize)> {
        arrivals(&picky.requests())
            .into_iter()
            .filter(|(t, _)| t != "T0")
            .collect()
    };
    setup.wait_until("the other tickets' events and the stream to empty", || {
        others().len() == EVENTS - PER_TICKET && setup.stream_len() == 0
    });
    let report = relay.stop();
    once_in_order(&others(), &TICKETS[1..]);
    assert_eq!(
        report.acknowledged as usize,
        EVENTS - PER_TICKET,
        "{report:?}"
    );
    assert_eq!(
        report.handed_back as usize, PER_TICKET,
        "T0's events, parked: {report:?}"
    );
}

/// An entry this deskhook cannot read (a newer one's relays wrote it) is said apart, and
/// the entries it can read are listed all the same.
#[test]
fn an_entry_that_cannot_be_read_is_said_apart_from_the_list() {
    let server = NatsServer::start();
    let summary = block_on(async {
        let context = deskhook_tests::nats::context(&server.url()).await;
        // The bucket's stream as a relay makes it (async-nats' create_key_value first asks
        // for the account's limits in a shape nats-server 2.9 does not answer in).
        context
            .create_stream(jetstream::stream::Config {
                name: "KV_deskhook-relay-parked".into(),
                subjects: vec!["$KV.deskhook-relay-parked.>".into()],
                max_messages_per_subject: 1,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .expect("the bucket's stream");
        let bucket = context
            .get_key_value("deskhook-relay-parked")
            .await
            .expect("the bucket");
        bucket
            .put("3.17.1.0", "DHB9 from a later version".into())
            .await
            .expect("the entry");
        deskhook_transports::relay::parked(&context, "deskhook-relay")
            .await
            .expect("the bucket is read")
    });
    assert_eq!(summary.endpoints, Vec::new());
    assert_eq!(summary.unreadable.len(), 1, "{summary:?}");
    assert!(
        summary.unreadable[0].starts_with("entry '3.17.1.0' cannot be read ("),
        "{summary:?}"
    );
}
