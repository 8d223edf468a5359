//! The operator's data: every attempt is in the attempt log (in memory, and with a spool in
//! its database across a restart), each endpoint counts its minutes, and endpoints made from
//! settings are kept by the spool and registered again at the next start.

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Answer, Receiver, Transport, for_both_transports, start, ticket};
use deskhook_transports::delivery::{
    AttemptOutcome, AttemptQuery, DeliverySink, EndpointSpec, StatusFilter,
};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::Spool;

fn spec(name: &str, receiver: &Receiver) -> EndpointSpec {
    let mut spec = EndpointSpec::new(name, receiver.url.clone());
    spec.allow_private = true;
    spec.retry = Some("0s,10ms".parse().unwrap());
    spec.tenant = None;
    spec
}

fn emit(dispatcher: &deskhook::Dispatcher, code: &str) {
    dispatcher.emit(Action::Comment, &ticket(code), &deskhook::sample::user());
}

fn all(
    sink: &DeliverySink,
    query: AttemptQuery,
) -> Vec<deskhook_transports::delivery::AttemptEntry> {
    sink.attempts(&query).expect("the attempt log reads").items
}

fn every_attempt_is_in_the_log_newest_first(t: Transport) {
    // The first attempt of each event gets a 503, the second a 204.
    let receiver = Receiver::start(|_, n| {
        if n % 2 == 0 {
            Answer::status(503).body("<b>down</b> for maintenance")
        } else {
            Answer::status(204)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder().dead_letter_path(dir.path().join("dead.jsonl")),
    );
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    emit(&dispatcher, "T-1");
    guard.flush(Duration::from_secs(10)).unwrap();
    emit(&dispatcher, "T-2");
    guard.flush(Duration::from_secs(10)).unwrap();

    let log = all(&sink, AttemptQuery::new());
    let shape: Vec<(String, u32, Option<u16>, AttemptOutcome)> = log
        .iter()
        .map(|e| (e.ticket.to_string(), e.attempt, e.status, e.outcome))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("T-2".into(), 2, Some(204), AttemptOutcome::Delivered),
            ("T-2".into(), 1, Some(503), AttemptOutcome::Retrying),
            ("T-1".into(), 2, Some(204), AttemptOutcome::Delivered),
            ("T-1".into(), 1, Some(503), AttemptOutcome::Retrying),
        ]
    );
    assert_eq!(&*log[3].response, b"<b>down</b> for maintenance");
    assert!(log[3].next_attempt.is_some());
    assert!(log.windows(2).all(|w| w[0].seq > w[1].seq));

    // Filters and paging.
    let failed = all(
        &sink,
        AttemptQuery {
            status: Some(StatusFilter::Failed),
            ..AttemptQuery::new()
        },
    );
    assert_eq!(failed.len(), 2);
    let of_t1 = all(
        &sink,
        AttemptQuery {
            event_id: Some(log[3].event_id.to_string()),
            ..AttemptQuery::new()
        },
    );
    assert_eq!(of_t1.len(), 2);
    assert!(of_t1.iter().all(|e| &*e.ticket == "T-1"));
    let first = sink
        .attempts(&AttemptQuery {
            limit: 3,
            ..AttemptQuery::new()
        })
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = sink
        .attempts(&AttemptQuery {
            limit: 3,
            before: first.next,
            ..AttemptQuery::new()
        })
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next, None);
    assert_eq!(
        all(
            &sink,
            AttemptQuery {
                endpoint: Some("elsewhere".into()),
                ..AttemptQuery::new()
            }
        ),
        vec![]
    );

    // The endpoint's minutes and last status.
    let minutes = sink.endpoints().activity("crm").unwrap();
    assert_eq!(minutes.len(), 60);
    let (delivered, failed): (u32, u32) = minutes
        .iter()
        .fold((0, 0), |(d, f), m| (d + m.delivered, f + m.failed));
    assert_eq!((delivered, failed), (2, 2));
    let info = sink.endpoints().get("crm").unwrap();
    assert_eq!(info.last_attempt.map(|(_, status)| status), Some(Some(204)));
    assert!(info.spec.is_some(), "made from settings");
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

fn the_log_can_be_off(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let builder = HttpSink::builder()
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .attempt_log(0);
    let (sink, guard, dispatcher) = start(t, builder);
    sink.endpoints()
        .upsert_spec(&spec("crm", &receiver))
        .unwrap();
    emit(&dispatcher, "T-1");
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.count(), 1);
    assert!(all(&sink, AttemptQuery::new()).is_empty());
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

fn with_a_spool_attempts_and_endpoints_outlive_a_restart(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    {
        let (sink, guard, dispatcher) = start(
            t,
            HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
        );
        // Added while the helpdesk runs, as the admin API does; one made in code is not
        // kept (the code makes it again).
        sink.endpoints()
            .upsert_spec(&spec("crm", &receiver))
            .unwrap();
        let mut chat = spec("chat", &receiver);
        chat.tenant = Some("acme".into());
        chat.secrets = Some(vec![
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                .parse::<deskhook::Secret>()
                .unwrap()
                .into(),
        ]);
        sink.endpoints().upsert_spec(&chat).unwrap();
        sink.endpoints()
            .upsert(deskhook_tests::endpoint("in-code", &receiver, "0s"))
            .unwrap();
        sink.endpoints()
            .upsert_spec(&spec("gone", &receiver))
            .unwrap();
        sink.endpoints().remove("gone").unwrap();
        emit(&dispatcher, "T-1");
        dispatcher.for_tenant("acme").emit(
            Action::Create,
            &ticket("T-2"),
            &deskhook::sample::user(),
        );
        guard.flush(Duration::from_secs(10)).unwrap();
        assert_eq!(
            receiver.count(),
            5,
            "T-1 to crm and in-code, T-2 (acme) to those and chat"
        );
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    // Not restored: the registry starts with the builder's endpoints only.
    {
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
        );
        assert_eq!(sink.endpoints().len(), 0);
        // The attempt log is read from the spool's database.
        let log = all(&sink, AttemptQuery::new());
        assert_eq!(log.len(), 5, "{log:?}");
        let of_acme = all(
            &sink,
            AttemptQuery {
                tenant: Some("acme".into()),
                ..AttemptQuery::new()
            },
        );
        assert_eq!(
            of_acme.len(),
            3,
            "the event of tenant acme went to 3 endpoints"
        );
        let chat = all(
            &sink,
            AttemptQuery {
                endpoint: Some("chat".into()),
                ..AttemptQuery::new()
            },
        );
        assert_eq!(chat.len(), 1);
        assert_eq!(chat[0].tenant.as_deref(), Some("acme"));
        assert_eq!(chat[0].status, Some(204));
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    // That start listed no endpoint: the kept ones are those of the run before it.
    // Register them again and run once more, restoring.
    {
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder()
                .spool(Spool::open(dir.path()).unwrap())
                .restore_endpoints(true),
        );
        assert_eq!(sink.endpoints().names(), Vec::<String>::new());
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
}

fn restored_endpoints_come_back_and_the_builders_win(t: Transport) {
    let receiver = Receiver::ok();
    let other = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    {
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
        );
        sink.endpoints()
            .upsert_spec(&spec("crm", &receiver))
            .unwrap();
        let mut chat = spec("chat", &receiver);
        chat.tenant = Some("acme".into());
        sink.endpoints().upsert_spec(&chat).unwrap();
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .spool(Spool::open(dir.path()).unwrap())
            .restore_endpoints(true)
            // The builder's "crm" (another URL) wins over the kept one.
            .endpoint(spec("crm", &other).to_endpoint().unwrap()),
    );
    assert_eq!(sink.endpoints().names(), vec!["chat", "crm"]);
    assert_eq!(
        sink.endpoints().get("chat").unwrap().tenant.as_deref(),
        Some("acme")
    );
    emit(&dispatcher, "T-1");
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!((receiver.count(), other.count()), (0, 1));
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A kept endpoint that cannot be made at a start (its CA file moved away) is not lost: it
/// stays in the spool, and comes back at the next start that can make it.
fn an_endpoint_that_cannot_be_restored_stays_for_the_next_start(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let moved = dir.path().join("ca.pem.moved");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let spool = dir.path().join("spool");
    let names_after_start = |restore: bool| {
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder()
                .spool(Spool::open(&spool).unwrap())
                .restore_endpoints(restore),
        );
        let names = sink.endpoints().names();
        guard.shutdown(Duration::from_secs(5)).unwrap();
        names
    };
    {
        let (sink, guard, _dispatcher) =
            start(t, HttpSink::builder().spool(Spool::open(&spool).unwrap()));
        let mut vault = spec("vault", &receiver);
        vault.ca_file = Some(ca.clone());
        sink.endpoints().upsert_spec(&vault).unwrap();
        sink.endpoints()
            .upsert_spec(&spec("crm", &receiver))
            .unwrap();
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    std::fs::rename(&ca, &moved).unwrap();
    assert_eq!(names_after_start(true), vec!["crm"]);
    std::fs::rename(&moved, &ca).unwrap();
    assert_eq!(names_after_start(true), vec!["crm", "vault"]);
    // A start that does not restore keeps nothing of last time for the next.
    assert!(names_after_start(false).is_empty());
    assert!(names_after_start(true).is_empty());
}

/// An endpoint change is on disk when the call returns: what an operator was told is done
/// survives a crash right after.
fn an_endpoint_change_is_on_disk_when_the_call_returns(t: Transport) {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
    );
    let db = dir.path().join(deskhook_transports::spool::DATABASE_FILE);
    let kept = || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT count(*) FROM endpoints WHERE spec IS NOT NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    let endpoints = sink.endpoints();
    endpoints.add_spec(&spec("crm", &receiver)).unwrap();
    assert_eq!(kept(), 1);
    endpoints.remove("crm").unwrap();
    assert_eq!(kept(), 0);
    // Added by a replacement of the whole set: on disk when it returns too.
    let set = [spec("crm", &receiver), spec("chat", &receiver)];
    let set = set.iter().map(|s| s.to_endpoint().unwrap());
    endpoints.replace_all(set).unwrap();
    assert_eq!(kept(), 2);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

/// A tool that opens the spool of a helpdesk that is down (`deskhook drain`) leaves the
/// endpoints it keeps as they were, whichever endpoints the tool itself registers.
fn a_tool_that_keeps_the_registry_leaves_the_kept_endpoints_alone(t: Transport) {
    let receiver = Receiver::ok();
    let other = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    {
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder().spool(Spool::open(dir.path()).unwrap()),
        );
        for name in ["crm", "audit"] {
            sink.endpoints()
                .upsert_spec(&spec(name, &receiver))
                .unwrap();
        }
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    {
        // The tool's own "crm" (another URL, no stored settings); "audit" it leaves out.
        let spool = Spool::builder(dir.path())
            .existing(true)
            .keep_registry(true)
            .open()
            .unwrap();
        let (sink, guard, _dispatcher) = start(
            t,
            HttpSink::builder()
                .spool(spool)
                .endpoint(spec("crm", &other).to_endpoint().unwrap()),
        );
        assert_eq!(sink.endpoints().names(), vec!["crm"]);
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .spool(Spool::open(dir.path()).unwrap())
            .restore_endpoints(true),
    );
    assert_eq!(sink.endpoints().names(), vec!["audit", "crm"]);
    emit(&dispatcher, "T-1");
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!((receiver.count(), other.count()), (2, 0), "crm's own URL");
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

for_both_transports!(
    an_endpoint_change_is_on_disk_when_the_call_returns,
    a_tool_that_keeps_the_registry_leaves_the_kept_endpoints_alone,
    an_endpoint_that_cannot_be_restored_stays_for_the_next_start,
    every_attempt_is_in_the_log_newest_first,
    the_log_can_be_off,
    with_a_spool_attempts_and_endpoints_outlive_a_restart,
    restored_endpoints_come_back_and_the_builders_win,
);
