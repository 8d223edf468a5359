//! A stream that exists with settings deskhook cannot publish to fails the build with an
//! error that names the setting; a matching one is used as it is.

use std::time::Duration;

use deskhook_tests::dead_letter_file;
use deskhook_tests::nats::{NatsServer, context};
use deskhook_transports::Error;
use deskhook_transports::nats::async_nats::jetstream::stream;
use deskhook_transports::nats::{NatsSink, NatsSinkBuilder, StreamSettings};

fn create(server: &NatsServer, config: stream::Config) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        context(&server.url())
            .await
            .create_stream(config)
            .await
            .expect("the test creates its stream");
    });
}

fn build(server: &NatsServer, settings: StreamSettings) -> Result<(), Error> {
    let (_dir, dead) = dead_letter_file();
    NatsSink::builder(server.url())
        .stream(settings)
        .dead_letter_path(dead)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map(drop)
}

/// The errors the attempts of a sink said, shared with its observer.
type Said = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A builder for `server` that retries every 50 ms (a hundred times, the breaker out of the
/// way) and keeps what each attempt said in the returned list.
fn retrying(server: &NatsServer, dead: &std::path::Path) -> (NatsSinkBuilder, Said) {
    use deskhook::policy::BreakerPolicy;
    use deskhook_transports::delivery::AttemptRecord;

    let said = Said::default();
    let seen = said.clone();
    let builder = NatsSink::builder(server.url())
        .stream(StreamSettings::new())
        .retry(format!("0s{}", ",50ms".repeat(100)).parse().unwrap())
        .breaker(BreakerPolicy {
            failures: 100,
            cool_down: Duration::from_millis(50),
        })
        .dead_letter_path(dead)
        .observer(move |r: &AttemptRecord<'_>| {
            seen.lock().unwrap().extend(r.error.map(str::to_owned));
        });
    (builder, said)
}

/// Waits until an attempt said each of `what` (within `WAIT`).
fn until_said(said: &Said, what: &[&str]) {
    let deadline = std::time::Instant::now() + deskhook_tests::WAIT;
    let says = |w: &str| said.lock().unwrap().iter().any(|e| e.contains(w));
    while !what.iter().all(|w| says(w)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt said {what:?}: {:?}",
            said.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Emits one event, of ticket T1, to `sink`.
fn emit_one(sink: &NatsSink) {
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("nats", sink.clone())
        .build();
    let user = deskhook::sample::user();
    dispatcher.emit(
        deskhook::Action::Create,
        &deskhook_tests::ticket("T1"),
        &user,
    );
}

/// Deletes the stream `blocking`, then checks that the one event held back is delivered,
/// to DESKHOOK (`what` names the case).
fn delivered_once_deleted(
    (server, sink, guard): (
        &NatsServer,
        &NatsSink,
        &deskhook_transports::delivery::DeliveryGuard,
    ),
    blocking: &str,
    what: &str,
) {
    use deskhook_tests::nats::{block_on, stream_len};
    block_on(async {
        context(&server.url())
            .await
            .delete_stream(blocking)
            .await
            .unwrap();
    });
    guard
        .flush(deskhook_tests::WAIT)
        .unwrap_or_else(|e| panic!("{what}: delivered once {blocking} is gone: {e}"));
    let totals = sink.delivery().totals();
    assert_eq!((totals.delivered, totals.dead_lettered), (1, 0), "{what}");
    assert_eq!(block_on(stream_len(&server.url(), "DESKHOOK")), 1, "{what}");
}

/// deskhook's stream, made by someone else with limits retention (deskhook's is a work
/// queue).
fn limits_retention() -> stream::Config {
    stream::Config {
        name: "DESKHOOK".into(),
        subjects: vec!["deskhook.>".into()],
        retention: stream::RetentionPolicy::Limits,
        ..Default::default()
    }
}

#[test]
fn another_retention_is_refused_by_name() {
    let server = NatsServer::start();
    create(&server, limits_retention());
    let err = build(&server, StreamSettings::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StreamConflict {
                setting: "retention",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "JetStream stream 'DESKHOOK' exists with retention 'limits', but deskhook needs \
         'workqueue': change the stream's retention, delete the stream so that deskhook creates \
         it, or give deskhook another stream name"
    );
}

#[test]
fn fewer_replicas_than_asked_are_refused_by_name() {
    let server = NatsServer::start();
    // The publisher's own stream, made with one replica.
    build(&server, StreamSettings::new()).unwrap();
    let err = build(&server, StreamSettings::new().replicas(3)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StreamConflict {
                setting: "replicas",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("replicas 1, but deskhook needs 3 or more"),
        "{err}"
    );
}

#[test]
fn subjects_that_do_not_cover_deskhook_s_are_refused_by_name() {
    let server = NatsServer::start();
    create(
        &server,
        stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["deskhook.zenlix.create".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        },
    );
    let err = build(&server, StreamSettings::new().name("EVENTS")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StreamConflict {
                setting: "subjects",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("subjects [\"deskhook.zenlix.create\"], but deskhook needs a subject covering 'deskhook.>'"),
        "{err}"
    );
}

#[test]
fn subjects_taken_by_another_stream_are_reported_with_the_server_s_reason() {
    let server = NatsServer::start();
    create(
        &server,
        stream::Config {
            name: "OTHER".into(),
            subjects: vec!["deskhook.>".into()],
            ..Default::default()
        },
    );
    let err = build(&server, StreamSettings::new()).unwrap_err();
    assert!(matches!(err, Error::Nats { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("JetStream refused to create stream 'DESKHOOK' for subjects 'deskhook.>'")
            && text.contains("overlap"),
        "{text}"
    );
}

#[test]
fn a_matching_stream_is_used_and_a_wider_one_too() {
    let server = NatsServer::start();
    create(
        &server,
        stream::Config {
            name: "ALL".into(),
            subjects: vec!["acme.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        },
    );
    build(
        &server,
        StreamSettings::new()
            .name("ALL")
            .subject_prefix("acme.helpdesk"),
    )
    .expect("a stream whose subjects cover deskhook's is fine");
    // Made by hand, it did not say how many partitions it has: now it does, so that relays
    // assuming another count refuse it rather than leave partitions undelivered.
    let recorded = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut stream = context(&server.url())
            .await
            .get_stream("ALL")
            .await
            .unwrap();
        stream.info().await.unwrap().config.clone()
    });
    assert_eq!(
        deskhook_transports::nats::partitions_of(&recorded),
        Some(StreamSettings::new().partition_count())
    );
    let other = build(
        &server,
        StreamSettings::new()
            .name("ALL")
            .subject_prefix("acme.helpdesk")
            .partitions(32),
    )
    .unwrap_err();
    assert!(other.to_string().contains("partitions"), "{other}");
}

#[test]
fn without_a_server_or_with_bad_settings_the_errors_say_what_to_do() {
    // Nothing listens on this port: with require_server the build fails and says so.
    let port = deskhook_tests::nats::free_port();
    let (_dir, dead) = dead_letter_file();
    let err = NatsSink::builder(format!("nats://127.0.0.1:{port}"))
        .require_server(true)
        .connect_timeout(Duration::from_millis(300))
        .dead_letter_path(dead)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot connect: ")
            && err
                .to_string()
                .contains("(is the server running and reachable?)"),
        "{err}"
    );
    let err = NatsSink::builder("http://127.0.0.1:4222")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let err = NatsSink::builder("nats://127.0.0.1:4222")
        .stream(StreamSettings::new().subject_prefix("a.>"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("subject prefix 'a.>'"), "{err}");
}

#[test]
fn a_full_stream_that_would_delete_events_is_refused_or_mended() {
    let limited = |name: &str, description: Option<String>| stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        retention: stream::RetentionPolicy::WorkQueue,
        max_bytes: 1 << 20,
        discard: stream::DiscardPolicy::Old,
        description,
        ..Default::default()
    };
    let server = NatsServer::start();
    // Someone else's stream: refused, naming the setting.
    create(&server, limited("THEIRS", None));
    let theirs = StreamSettings::new()
        .name("THEIRS")
        .subject_prefix("theirs");
    let err = build(&server, theirs).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StreamConflict {
                setting: "discard",
                ..
            }
        ),
        "{err:?}"
    );
    // One an earlier deskhook made (its description names its partitions): mended.
    let ours = StreamSettings::new().name("OURS").subject_prefix("ours");
    create(
        &server,
        limited("OURS", ours.stream_config().description.clone()),
    );
    build(&server, ours).expect("an earlier deskhook's stream is set to discard new");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let discard = runtime.block_on(async {
        let context = context(&server.url()).await;
        let mut stream = context.get_stream("OURS").await.unwrap();
        stream.info().await.unwrap().config.discard
    });
    assert_eq!(discard, stream::DiscardPolicy::New);
}

/// A stream made over deskhook's subjects after the sink started (its own stream deleted,
/// another made by hand or by a tool) gets no event, alone or in a batch: each publish
/// names the stream it must go to, the attempt fails saying another took the subject, the
/// next ones that the stream cannot be made while the other holds the subjects (retried,
/// not dead-lettered), and once that one goes, the sink makes its stream again and the
/// event is delivered there.
#[test]
fn a_stream_made_over_its_subjects_after_the_start_gets_no_event() {
    use deskhook_tests::nats::stream_len;

    for batch in [1, 8] {
        let server = NatsServer::start();
        let (_dir, dead) = dead_letter_file();
        let (builder, errors) = retrying(&server, &dead);
        let (sink, guard) = builder
            .batch(batch)
            .build()
            .expect("the sink starts and makes its stream");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let js = context(&server.url()).await;
            js.delete_stream("DESKHOOK").await.unwrap();
            js.create_stream(stream::Config {
                name: "OTHER".into(),
                subjects: vec!["deskhook.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        });
        emit_one(&sink);
        // The publish refused, then the stream's making refused while the other holds the
        // subjects: both retried.
        until_said(
            &errors,
            &["taken by a stream other than 'DESKHOOK'", "overlap"],
        );
        let totals = sink.delivery().totals();
        assert_eq!(
            (totals.delivered, totals.dead_lettered),
            (0, 0),
            "batch {batch}"
        );
        assert_eq!(runtime.block_on(stream_len(&server.url(), "OTHER")), 0);
        delivered_once_deleted((&server, &sink, &guard), "OTHER", &format!("batch {batch}"));
    }
}

/// A stream found unlike the settings only once the sink runs (the server was away at the
/// start, and the stream was made meanwhile with another retention) holds the events back,
/// retried, rather than sending each to the dead letters; once the operator deletes it, the
/// sink makes its own and the event is delivered.
#[test]
fn a_conflicting_stream_found_while_running_holds_the_events_back() {
    let mut server = NatsServer::start();
    server.stop();
    let (_dir, dead) = dead_letter_file();
    let (builder, errors) = retrying(&server, &dead);
    let (sink, guard) = builder
        .connect_timeout(Duration::from_millis(200))
        .build()
        .expect("the sink starts without its server");
    server.restart();
    create(&server, limits_retention());
    emit_one(&sink);
    until_said(&errors, &["exists with retention 'limits'"]);
    let totals = sink.delivery().totals();
    assert_eq!((totals.delivered, totals.dead_lettered), (0, 0));
    delivered_once_deleted((&server, &sink, &guard), "DESKHOOK", "another retention");
}
