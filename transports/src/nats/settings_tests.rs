//! The stream settings' tests: subjects and partitions, what JetStream's answers mean,
//! and the checks of an existing stream (conflicts refused, the rest warned about).

use super::*;

#[test]
fn a_subject_tells_its_partition() {
    let settings = StreamSettings::new()
        .subject_prefix("acme.helpdesk")
        .partitions(4);
    let subject = settings
        .partitioned_subject("zenlix", "comment", "T1")
        .unwrap();
    assert_eq!(
        settings.partition_of_subject(&subject),
        Some(partition_of("T1", 4))
    );
    for other in [
        "acme.helpdesk.zenlix.comment.4",
        "acme.helpdesk.zenlix.comment",
        "acme.helpdesk.zenlix.comment.1.2",
        "acme.helpdeskx.zenlix.comment.1",
        "other.zenlix.comment.1",
        "acme.helpdesk.zenlix.comment.x",
    ] {
        assert_eq!(settings.partition_of_subject(other), None, "{other}");
    }
}

#[test]
fn a_cluster_without_a_leader_is_waited_for_not_given_up_on() {
    let answer = |json: &str| {
        let api: jetstream::Error = serde_json::from_str(json).unwrap();
        jetstream::context::GetStreamError::new(jetstream::context::GetStreamErrorKind::JetStream(
            api,
        ))
    };
    // Answers of a cluster in the middle of a failover.
    for failover in [
        r#"{"code":503,"err_code":10008,"description":"JetStream cluster not available"}"#,
        r#"{"code":500,"err_code":10009,"description":"JetStream cluster can not handle request"}"#,
        r#"{"code":500,"err_code":10041,"description":"general RAFT error"}"#,
    ] {
        assert!(
            matches!(
                request_trouble(
                    "reading the stream",
                    &answer(failover),
                    "nats://127.0.0.1:4222"
                ),
                Trouble::Transient(_)
            ),
            "{failover}"
        );
    }
    // A 5xx that stays: the configuration is wrong.
    let refused =
        answer(r#"{"code":500,"err_code":10052,"description":"stream configuration is invalid"}"#);
    assert!(matches!(
        request_trouble("reading the stream", &refused, "nats://127.0.0.1:4222"),
        Trouble::Fatal(_)
    ));
}

#[test]
fn a_full_stream_refuses_rather_than_deleting_undelivered_events() {
    let settings = StreamSettings::new().max_bytes(4096);
    let ours = settings.stream_config();
    assert_eq!(ours.discard, stream::DiscardPolicy::New);
    settings.check(&ours).unwrap();
    let conflict = |config: &stream::Config| match settings.check(config) {
        Err(Error::StreamConflict { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    let old = stream::Config {
        discard: stream::DiscardPolicy::Old,
        ..ours.clone()
    };
    assert_eq!(conflict(&old), "discard");
    let counted = stream::Config {
        max_bytes: -1,
        max_messages: 100,
        ..old.clone()
    };
    assert_eq!(conflict(&counted), "discard");
    // With no limit, the policy never applies.
    settings
        .check(&stream::Config {
            max_bytes: -1,
            ..old.clone()
        })
        .unwrap();
    let per_subject = stream::Config {
        max_messages_per_subject: 10,
        ..ours.clone()
    };
    assert_eq!(conflict(&per_subject), "max_msgs_per_subject");
    let unacknowledged = stream::Config {
        no_ack: true,
        ..ours
    };
    assert_eq!(conflict(&unacknowledged), "no_ack");
}

#[test]
fn an_age_limit_not_asked_for_is_warned_about() {
    let settings = StreamSettings::new();
    let ours = settings.stream_config();
    assert_eq!(settings.review(&ours).unwrap(), Vec::<String>::new());
    let aged = stream::Config {
        max_age: Duration::from_secs(3600),
        ..ours
    };
    let warnings = settings.review(&aged).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("after 1h"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("without a dead letter"),
        "{}",
        warnings[0]
    );
    // Asked for: quiet.
    let asked = settings.max_age(Duration::from_secs(3600));
    assert_eq!(asked.stream_config().max_age, aged.max_age);
    assert_eq!(asked.review(&aged).unwrap(), Vec::<String>::new());
}
