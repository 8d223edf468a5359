use super::*;

fn spec() -> EndpointSpec {
    let mut spec = EndpointSpec::new("crm", "https://crm.example.com/hooks");
    spec.secrets = Some(vec![
        deskhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap()
            .into(),
    ]);
    spec.headers = Some(BTreeMap::from([(
        "Authorization".into(),
        // Long enough that the sealed text (random base64) cannot hold it by chance.
        "Bearer t0k-3c9e1f7a".into(),
    )]));
    spec.tenant = Some("acme".into());
    spec
}

#[test]
fn secrets_and_header_values_are_sealed_and_opened_with_the_key() {
    let key = SecretsKey::generate().unwrap();
    let record = record_of(&spec(), true, Some(&key)).unwrap();
    let text = String::from_utf8(record.clone()).unwrap();
    assert!(
        !text.contains("MfKQ9r8G") && !text.contains("t0k-3c9e1f7a"),
        "{text}"
    );
    assert!(text.contains("\"tenant\":\"acme\""), "{text}");
    // The URL is sealed but for its origin, and the record says so by its layout.
    assert!(!text.contains("/hooks"), "{text}");
    assert!(
        text.contains("\"url\":\"https://crm.example.com\"") && text.contains("\"layout\":3"),
        "{text}"
    );
    let back = read_record("crm", &record, 7, Some(&key), Trust::Sealed).unwrap();
    assert_eq!(back.spec, spec());
    assert!(back.paused);
    assert_eq!((back.revision, back.layout), (7, LAYOUT));
    // Another key, no key, another endpoint's name: refused, naming the endpoint.
    let other = SecretsKey::generate().unwrap();
    for err in [
        read_record("crm", &record, 7, Some(&other), Trust::Sealed).unwrap_err(),
        read_record("crm", &record, 7, None, Trust::Sealed).unwrap_err(),
    ] {
        assert!(err.to_string().contains("endpoint 'crm'"), "{err}");
    }
    assert!(read_record("erp", &record, 7, Some(&key), Trust::Sealed).is_err());
}

#[test]
fn a_record_sealed_with_a_previous_key_opens_with_it_and_says_so() {
    let (old, new) = (
        SecretsKey::generate().unwrap(),
        SecretsKey::generate().unwrap(),
    );
    let record = record_of(&spec(), false, Some(&old)).unwrap();
    let rotating = Keys {
        current: Some(new.clone()),
        previous: vec![SecretsKey::generate().unwrap(), old.clone()],
    };
    let back = rotating.read("crm", &record, 4, Trust::Sealed).unwrap();
    assert!(back.previous_key);
    assert_eq!(back.spec, spec());
    // With the current key alone it does not open, and the error is the current key's.
    let err = read_record("crm", &record, 4, Some(&new), Trust::Sealed).unwrap_err();
    assert!(err.to_string().contains("sealed with another key"), "{err}");
    // Sealed with the current key: not marked.
    let record = record_of(&spec(), false, Some(&new)).unwrap();
    assert!(
        !rotating
            .read("crm", &record, 5, Trust::Sealed)
            .unwrap()
            .previous_key
    );
    // Previous keys without a current one open nothing.
    let none = Keys {
        current: None,
        previous: vec![old],
    };
    let err = none.read("crm", &record, 5, Trust::Lenient).unwrap_err();
    assert!(
        err.to_string().contains("no secrets key was given"),
        "{err}"
    );
}

#[test]
fn previous_keys_are_read_comma_separated() {
    let (a, b) = (
        SecretsKey::generate().unwrap(),
        SecretsKey::generate().unwrap(),
    );
    let name = "DESKHOOK_SECRETS_KEY_PREVIOUS";
    let text = format!(" {} ,{},", a.to_base64(), b.to_base64());
    let keys = SecretsKey::parse_list(&text, name).unwrap();
    assert_eq!(
        keys.iter().map(SecretsKey::to_base64).collect::<Vec<_>>(),
        [a.to_base64(), b.to_base64()]
    );
    let err = SecretsKey::parse_list(&format!("{},nope", a.to_base64()), name)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "invalid configuration: {name}, key 2: the secrets key is 3 bytes; it must be \
             32 (make one with `deskhook endpoints new-key`)"
        )
    );
    assert!(!err.contains("nope"), "{err}");
    assert!(SecretsKey::parse_list(" ", name).unwrap().is_empty());
}

#[test]
fn a_chat_preset_is_known_however_it_is_written() {
    let mut chat = spec();
    chat.secrets = None;
    chat.headers = None;
    for name in ["slack", "Slack", " TEAMS "] {
        chat.template = Some(name.into());
        let err = record_of(&chat, false, None).unwrap_err().to_string();
        assert!(err.contains("preset"), "{name}: {err}");
    }
    chat.template = Some("{{ event.action }}".into());
    record_of(&chat, false, None).unwrap();
}

#[test]
fn a_record_naming_another_endpoint_or_with_an_open_url_in_layout_2_is_refused() {
    let mut plain = spec();
    plain.secrets = None;
    plain.headers = None;
    // Written under another key's name.
    let record = record_of(&plain, false, None).unwrap();
    let err = read_record("erp", &record, 1, None, Trust::Sealed)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("endpoint 'erp'") && err.contains("names itself 'crm'"),
        "{err}"
    );
    // Layout 2 says the URL is sealed: in the open, it could have been changed unseen.
    let forged = String::from_utf8(record)
        .unwrap()
        .replace("\"layout\":1", "\"layout\":2");
    let err = read_record("crm", forged.as_bytes(), 1, None, Trust::Sealed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("without sealed settings"), "{err}");
}

#[test]
fn secrets_without_a_key_are_refused_and_plain_endpoints_need_none() {
    let err = record_of(&spec(), false, None).unwrap_err().to_string();
    assert!(
        err.contains(SECRETS_KEY_ENV) && err.contains("secret_env"),
        "{err}"
    );
    let mut plain = spec();
    plain.secrets = None;
    plain.headers = None;
    plain.secret_env = Some("CRM_SECRET".into());
    let record = record_of(&plain, false, None).unwrap();
    assert_eq!(
        read_record("crm", &record, 1, None, Trust::Sealed)
            .unwrap()
            .spec,
        plain
    );
}

#[test]
fn a_newer_layout_is_refused_with_what_to_do() {
    let err = read_record(
        "crm",
        br#"{"layout": 4, "spec": {}}"#,
        1,
        None,
        Trust::Sealed,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("layout 4") && err.contains("upgrade deskhook"),
        "{err}"
    );
}

#[test]
fn a_chat_webhook_url_and_template_variables_are_sealed_and_need_a_key() {
    let mut chat = EndpointSpec::new("ops", "https://hooks.slack.com/services/T0/B0/XyZ-5d2e8b4c");
    chat.template = Some("slack".into());
    chat.template_vars = Some(BTreeMap::from([("lang".into(), "en".into())]));
    let err = record_of(&chat, false, None).unwrap_err().to_string();
    assert!(
        err.contains("endpoint 'ops'") && err.contains("slack") && err.contains(SECRETS_KEY_ENV),
        "{err}"
    );
    assert!(
        !err.contains("  "),
        "one sentence, no runs of blanks: {err}"
    );
    let key = SecretsKey::generate().unwrap();
    let record = record_of(&chat, false, Some(&key)).unwrap();
    let text = String::from_utf8(record.clone()).unwrap();
    assert!(
        !text.contains("XyZ-5d2e8b4c") && !text.contains("\"lang\""),
        "{text}"
    );
    assert!(text.contains("https://hooks.slack.com"), "{text}");
    assert_eq!(
        read_record("ops", &record, 3, Some(&key), Trust::Sealed)
            .unwrap()
            .spec,
        chat
    );
    let err = read_record("ops", &record, 3, None, Trust::Sealed)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("endpoint 'ops'") && err.contains("URL"),
        "{err}"
    );
}

#[test]
fn settings_changed_in_the_bucket_without_the_key_are_refused() {
    let key = SecretsKey::generate().unwrap();
    let record = String::from_utf8(record_of(&spec(), false, Some(&key)).unwrap()).unwrap();
    // Moved to another tenant, or given every event type, by whoever can write to the
    // bucket but has no key.
    for (from, to) in [
        ("\"tenant\":\"acme\"", "\"tenant\":\"globex\""),
        (
            "\"name\":\"crm\"",
            "\"name\":\"crm\",\"actions\":[\"create\"]",
        ),
    ] {
        assert!(record.contains(from), "{record}");
        let forged = record.replace(from, to);
        let err = read_record("crm", forged.as_bytes(), 1, Some(&key), Trust::Sealed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("endpoint 'crm'")
                && err.contains("changed in the bucket without the key")
                && err.contains("deskhook endpoints add --replace name=crm"),
            "{err}"
        );
    }
    // Nor paused (or resumed) behind the operators' backs.
    let paused = record.replace("\"paused\":false", "\"paused\":true");
    assert!(read_record("crm", paused.as_bytes(), 1, Some(&key), Trust::Sealed).is_err());
}

#[test]
fn with_a_key_older_layouts_are_refused_when_sealed_records_are_required() {
    // Layout 2: sealed under the name alone, so its settings could be anyone's; layout 1:
    // nothing sealed at all. A reader that requires sealed records believes neither; the
    // lenient one (the default, and reseal's) reads both, as they were written.
    let key = SecretsKey::generate().unwrap();
    let sealed = key
        .seal(
            "crm",
            b"crm",
            br#"{"secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],"url":"https://crm.example.com/hooks"}"#,
        )
        .unwrap();
    let layout_2 = format!(
        r#"{{"layout":2,"paused":false,"spec":{{"name":"crm","url":"https://crm.example.com","tenant":"acme"}},"sealed":"{sealed}"}}"#
    );
    let layout_1 = r#"{"layout":1,"paused":false,"spec":{"name":"crm","url":"https://crm.example.com/hooks"}}"#;
    for (record, why) in [
        (layout_2.as_str(), "does not bind its settings"),
        (layout_1, "has nothing sealed"),
    ] {
        let err = read_record("crm", record.as_bytes(), 1, Some(&key), Trust::Sealed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(why) && err.contains("deskhook endpoints reseal"),
            "{err}"
        );
        let back = read_record("crm", record.as_bytes(), 1, Some(&key), Trust::Lenient).unwrap();
        assert_eq!(back.spec.url, "https://crm.example.com/hooks");
    }
    let back = read_record("crm", layout_2.as_bytes(), 1, Some(&key), Trust::Lenient).unwrap();
    assert_eq!(
        back.layout, 2,
        "said, for the operator's list (reseal, not rekey)"
    );
    assert_eq!(back.spec.tenant.as_deref(), Some("acme"));
    assert_eq!(back.spec.secrets.map(|s| s.len()), Some(1));
    // Without a key (nothing sealed anywhere), layout 1 reads as it always did.
    let back = read_record("crm", layout_1.as_bytes(), 1, None, Trust::Sealed).unwrap();
    assert_eq!(back.spec.url, "https://crm.example.com/hooks");
}

/// Layout 1 sealed secrets and header values under the endpoint's name alone, its URL in
/// the open: anyone who can write to the bucket could point them at a URL of theirs. A
/// reader with the key refuses such a record; reseal reads it, to be checked and sealed by
/// name.
#[test]
fn a_layout_1_seal_is_not_sent_to_a_url_in_the_open() {
    let key = SecretsKey::generate().unwrap();
    let sealed = key
        .seal(
            "crm",
            b"crm",
            br#"{"headers":{"Authorization":"Bearer t0k"}}"#,
        )
        .unwrap();
    let forged = format!(
        r#"{{"layout":1,"paused":false,"spec":{{"name":"crm","url":"https://evil.example/"}},"sealed":"{sealed}"}}"#
    );
    let err = read_record("crm", forged.as_bytes(), 4, Some(&key), Trust::Lenient)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sends its sealed secrets and header values to a URL in the open")
            && err.contains("deskhook endpoints reseal crm@4"),
        "{err}"
    );
    let read = read_record("crm", forged.as_bytes(), 4, Some(&key), Trust::ToReseal).unwrap();
    assert_eq!(read.spec.url, "https://evil.example/");
    assert!(seals_for_an_open_url(forged.as_bytes()));
    let plain = r#"{"layout":1,"paused":false,"spec":{"name":"crm","url":"https://crm.example.com/hooks"}}"#;
    assert!(!seals_for_an_open_url(plain.as_bytes()));
    assert!(!seals_for_an_open_url(
        &record_of(&spec(), false, Some(&key)).unwrap()
    ));
}

#[test]
fn an_older_record_naming_the_readers_files_environment_or_networks_is_refused() {
    let key = SecretsKey::generate().unwrap();
    for (setting, value) in [
        ("template_file", r#""/proc/self/environ""#),
        ("ca_file", r#""/etc/ssl/private/ca.pem""#),
        ("secret_env", r#""DESKHOOK_SECRETS_KEY""#),
        ("allow_private", "true"),
        ("allow_cidrs", r#"["10.0.0.0/8"]"#),
    ] {
        let head = r#"{"layout":1,"paused":false,"spec":{"name":"x","url":"https://x.example/""#;
        let record = format!(r#"{head},"{setting}":{value}}}}}"#);
        let err = read_record("x", record.as_bytes(), 1, Some(&key), Trust::Lenient)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "sets {setting}, which reaches into the reader's own"
            )),
            "{err}"
        );
        // The operator can still look at it, and seal it once checked.
        let back = read_record("x", record.as_bytes(), 1, Some(&key), Trust::ToReseal).unwrap();
        assert_eq!(back.spec.url, "https://x.example/");
        // A reader without a key believes the bucket whole, as it always did.
        assert!(read_record("x", record.as_bytes(), 1, None, Trust::Lenient).is_ok());
    }
}

#[test]
fn keys_carry_any_name() {
    for name in ["crm", "<img src=x>", "acme/crm.v2", "ü"] {
        let key = key_of(name);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(name_of(&key).as_deref(), Some(name));
    }
}

#[test]
fn keys_parse_from_base64_of_32_bytes() {
    let key = SecretsKey::generate().unwrap();
    assert_eq!(SecretsKey::parse(&key.to_base64()).unwrap().0, key.0);
    assert!(
        SecretsKey::parse("c2hvcnQ=")
            .unwrap_err()
            .to_string()
            .contains("32")
    );
    assert!(format!("{key:?}").contains('…'));
}

#[test]
fn the_json_sealed_is_written_into_a_buffer_of_its_size() {
    let value = serde_json::json!({
        "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "headers": [["Authorization", "Bearer ".repeat(100)]],
    });
    let json = sealed_json(&value).unwrap();
    assert_eq!(*json, serde_json::to_vec(&value).unwrap());
    assert_eq!(json.capacity(), json.len(), "never grown");
}

#[test]
fn a_check_names_every_setting_at_fault_a_line_each() {
    let mut bad = spec();
    bad.retry = Some("5s,1m".parse().unwrap());
    bad.max_in_flight = Some(0);
    let text = crate::endpoint_store::EndpointStore::check(&bad)
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("retry: endpoint 'crm': the retry schedule starts with 5s"));
    assert!(lines[1].starts_with("max_in_flight: endpoint 'crm': max_in_flight is 0"));
    bad.max_in_flight = None;
    let one = crate::endpoint_store::EndpointStore::check(&bad)
        .unwrap_err()
        .to_string();
    assert_eq!(one.lines().count(), 1, "{one}");
}
