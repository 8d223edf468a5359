//! The NATS sink's tests: subjects, partitions, ticket encoding and JetStream's answers.

use super::settings::subject_covers;
use super::*;
use async_nats::jetstream::stream;

#[test]
fn a_message_id_still_being_stored_or_a_full_queue_is_tried_again() {
    let answer = |json: &str| {
        let api: jetstream::Error = serde_json::from_str(json).unwrap();
        api_refusal(&api).1
    };
    assert!(answer(
        r#"{"code":409,"err_code":10158,"description":"duplicate message id is in process"}"#
    ));
    assert!(answer(
        r#"{"code":429,"err_code":10167,"description":"too many requests"}"#
    ));
    assert!(answer(
        r#"{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}"#
    ));
    // Final: the stream refuses this message whatever comes later.
    assert!(!answer(
        r#"{"code":400,"err_code":10054,"description":"maximum message size exceeded"}"#
    ));
}

#[test]
fn subjects_cover_deskhook_s_only_when_every_one_matches() {
    let ours = "deskhook.*.*";
    for filter in [">", "deskhook.>", "deskhook.*.*", "deskhook.*.>", "*.*.*"] {
        assert!(subject_covers(filter, ours), "{filter}");
    }
    for filter in [
        "deskhook",
        "deskhook.*",
        "deskhook.zenlix.*",
        "deskhook.*.*.*",
        "other.>",
        "deskhook.*.create",
    ] {
        assert!(!subject_covers(filter, ours), "{filter}");
    }
}

#[test]
fn tickets_survive_the_header_encoding() {
    for ticket in [
        "E3XK",
        "50%",
        "a b",
        "line\r\nbreak",
        "Заявка 7",
        "%zz",
        "acme\u{a0}",
        "\u{3000}x\u{2028}",
    ] {
        let encoded = encode_ticket(ticket);
        assert!(!encoded.contains(char::is_whitespace), "{encoded}");
        assert_eq!(decode_ticket(&encoded), ticket);
    }
    assert_eq!(encode_ticket("a\nb"), "a%0Ab");
    assert_eq!(decode_ticket("50%"), "50%");
}

#[test]
fn the_subject_comes_from_the_action_header() {
    let settings = StreamSettings::new();
    let headers = [
        ("webhook-id", "x"),
        ("x-deskhook-action", "create"),
        ("x-deskhook-ticket", "E3XK"),
    ];
    let partition = partition_of("E3XK", DEFAULT_PARTITIONS);
    assert_eq!(
        subject_for(&settings, &headers).unwrap(),
        format!("deskhook.zenlix.create.{partition}")
    );
    let vendor = [
        ("webhook-id", "x"),
        ("x-deskhook-action", "usedesk.comment_created"),
        ("x-deskhook-ticket", "E3XK"),
    ];
    assert_eq!(
        subject_for(&settings, &vendor).unwrap(),
        format!("deskhook.usedesk.comment_created.{partition}")
    );
    // Stable: relays on other machines and versions must agree.
    assert_eq!(partition_of("E3XK", 16), partition_of("E3XK", 16));
    assert_eq!(partition_of("", 16), 0xcbf2_9ce4_8422_2325_u64 as u32 % 16);
    assert_eq!(partition_of("anything", 1), 0);
    let err = settings.subject("zenlix", "a.b").unwrap_err().to_string();
    assert!(
        err.contains("'a.b' cannot be a NATS subject token"),
        "{err}"
    );
    assert!(subject_for(&settings, &[("webhook-id", "x")]).is_err());
}

#[test]
fn bad_names_and_prefixes_are_refused_with_the_setting() {
    let err = StreamSettings::new().name("a.b").validate().unwrap_err();
    assert!(err.to_string().contains("stream name 'a.b'"), "{err}");
    for prefix in ["", "a..b", "a.>", "a b", "a.*"] {
        let err = StreamSettings::new()
            .subject_prefix(prefix)
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("subject prefix"),
            "{prefix}: {err}"
        );
    }
    assert!(
        StreamSettings::new()
            .subject_prefix("acme.helpdesk")
            .validate()
            .is_ok()
    );
}

#[test]
fn conflicts_name_the_setting() {
    let settings = StreamSettings::new();
    let mut found = settings.stream_config();
    assert!(settings.check(&found).is_ok());
    found.retention = stream::RetentionPolicy::Limits;
    let err = settings.check(&found).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "JetStream stream 'DESKHOOK' exists with retention 'limits', but deskhook needs \
             'workqueue'"
        ),
        "{err}"
    );
    let mut found = settings.stream_config();
    found.subjects = vec!["other.>".into()];
    let err = settings.check(&found).unwrap_err().to_string();
    assert!(err.contains("subjects [\"other.>\"]"), "{err}");
    let mut found = settings.stream_config();
    found.storage = stream::StorageType::Memory;
    let err = settings.check(&found).unwrap_err().to_string();
    assert!(err.contains("storage 'memory'"), "{err}");
}
