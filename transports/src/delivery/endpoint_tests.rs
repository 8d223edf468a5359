//! The endpoint's tests: its checks at build, and the words of its errors.

use super::*;

fn invalid(endpoint: Endpoint) -> String {
    endpoint
        .allow_private(true)
        .validate()
        .unwrap_err()
        .to_string()
}

#[test]
fn a_url_without_its_scheme_is_told_to_add_it() {
    let err = Endpoint::new("crm", "127.0.0.1:8080")
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "it has no scheme; write http:// or https:// before it (http://127.0.0.1:8080)"
        ),
        "{err}"
    );
    // "localhost:8080" parses, as the scheme "localhost": the guard says what to write.
    let url = Endpoint::new("crm", "localhost:8080").unwrap().url;
    let policy = crate::guard::AddressPolicy::default();
    let err = crate::guard::check_url(&url, &policy, false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid endpoint URL 'localhost:…': scheme 'localhost' is not supported; use http or \
         https (write http://localhost:8080?)"
    );
}

#[test]
fn an_empty_url_is_called_empty() {
    for url in ["", "  "] {
        let err = Endpoint::new("crm", url).unwrap_err().to_string();
        assert!(
            err.ends_with(
                ": it is empty; give the endpoint's URL, such as \
                 https://hooks.example.com/deskhook"
            ),
            "{err}"
        );
    }
}

#[test]
fn a_url_as_pages_show_it_is_not_an_endpoint_url() {
    for url in [
        "https://hooks.slack.com/…",
        "https://hooks.slack.com/%E2%80%A6",
    ] {
        let err = Endpoint::new("chat", url).unwrap_err().to_string();
        assert!(err.contains("give the whole URL"), "{err}");
    }
}

#[test]
fn headers_deskhook_sets_cannot_be_replaced() {
    let base = || Endpoint::new("crm", "http://127.0.0.1:9/").unwrap();
    for name in [
        "webhook-id",
        "Webhook-Signature",
        "X-Deskhook-Sequence",
        "Content-Type",
        "host",
    ] {
        let text = invalid(base().header(name, "x"));
        assert!(text.contains("is set by deskhook itself"), "{name}: {text}");
    }
    for name in ["Expect", "upgrade", "TE", "Keep-Alive"] {
        let text = invalid(base().header(name, "x"));
        assert!(
            text.contains("how the request is carried"),
            "{name}: {text}"
        );
    }
    assert!(invalid(base().header("X-Token", "a\r\nb")).contains("line break"));
    let twice = invalid(
        base()
            .header("Authorization", "a")
            .header("authorization", "b"),
    );
    assert!(
        twice.contains("header 'authorization' is given twice (as 'Authorization' and"),
        "{twice}"
    );
    // Any control character but a tab: the blocking transport would send nothing and
    // dead-letter every event.
    for value in ["a\u{1}b", "a\u{b}b", "a\u{7f}b"] {
        let text = invalid(base().header("X-Token", value));
        assert!(
            text.contains("control character") && text.contains("remove it"),
            "{text}"
        );
    }
    assert!(
        base()
            .header("X-Token", "a\tb")
            .allow_private(true)
            .validate()
            .is_ok()
    );
    // A timeout no attempt can meet is refused; the shortest one is taken.
    for timeout in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
    ] {
        let text = invalid(base().timeout(timeout));
        assert!(text.contains("shorter than an attempt can take"), "{text}");
        let text = invalid(base().connect_timeout(timeout));
        assert!(text.contains("connect_timeout"), "{text}");
    }
    assert!(
        base()
            .timeout(MIN_TIMEOUT)
            .connect_timeout(MIN_TIMEOUT)
            .validate()
            .is_ok()
    );
    // A timeout too long to add to a clock is refused, not a panic at the first attempt.
    for timeout in [Duration::MAX, Duration::from_secs(86_400)] {
        let text = invalid(base().timeout(timeout));
        assert!(text.contains("longer than an attempt may take"), "{text}");
        let text = invalid(base().connect_timeout(timeout));
        assert!(text.contains("connect_timeout"), "{text}");
    }
    assert!(invalid(base().header("Bad Name", "x")).contains("not a valid HTTP header name"));
    assert!(
        base()
            .header("Authorization", "Bearer x")
            .allow_private(true)
            .validate()
            .is_ok()
    );
}

#[test]
fn names_schedules_limits_and_tenants_are_checked() {
    let base = || Endpoint::new("crm", "http://127.0.0.1:9/").unwrap();
    assert!(
        invalid(Endpoint::new("a\u{0}b", "http://127.0.0.1:9/").unwrap())
            .contains("control character")
    );
    let longest = "n".repeat(crate::delivery::NAME_MAX_BYTES);
    let longer = Endpoint::new(format!("{longest}é"), "http://127.0.0.1:9/").unwrap();
    let text = invalid(longer);
    assert!(
        text.contains("the name is 258 bytes long; at most 256"),
        "{text}"
    );
    let at_most = Endpoint::new(longest, "http://127.0.0.1:9/").unwrap();
    assert!(at_most.allow_private(true).validate().is_ok());
    for dots in [".", ".."] {
        let text = invalid(Endpoint::new(dots, "http://127.0.0.1:9/").unwrap());
        assert!(text.contains("cannot be a name"), "{text}");
    }
    assert!(
        Endpoint::new("...", "http://127.0.0.1:9/")
            .unwrap()
            .allow_private(true)
            .validate()
            .is_ok()
    );
    assert!(invalid(base().max_in_flight(0)).contains("max_in_flight is 0"));
    assert!(invalid(base().tenant("")).contains("invalid tenant ''"));
    assert!(invalid(base().tenant("x".repeat(129))).contains("longer than 128 bytes"));
    assert!(invalid(base().retry("5s,1m".parse().unwrap())).contains("start it with 0s"));
    assert!(invalid(base().hub_signature(true)).contains("needs a whsec_ secret"));
    let ed25519 = Secret::generate_ed25519().unwrap();
    assert!(
        invalid(base().secret(ed25519.clone()).hub_signature(true))
            .contains("needs a whsec_ secret")
    );
    let public = ed25519.public_key().unwrap();
    assert!(invalid(base().secret(public)).contains("secret 1 is a public key (whpk_)"));
    // hub_signature needs a whsec_ secret that is current.
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    let expired = base()
        .hub_signature(true)
        .secret(ed25519.clone())
        .secret_until(deskhook::Secret::generate().unwrap(), past);
    assert!(invalid(expired).contains("needs a whsec_ secret that has not expired"));
    // More than a receiver reads; those expired do not count.
    let secrets = (0..17).map(|_| deskhook::Secret::generate().unwrap());
    let text = invalid(base().secrets(secrets.clone()));
    assert!(text.contains("17 secrets sign"), "{text}");
    let mut sixteen = base().secrets(secrets.take(16));
    sixteen = sixteen.secret_until(deskhook::Secret::generate().unwrap(), past);
    assert!(sixteen.validate().is_ok());
    assert!(
        invalid(base().template(Template::preset("telegram").unwrap()))
            .contains("template_vars.chat_id")
    );
    // A JSON template whose body is not JSON, for the sample event: every event's would
    // not be either.
    let unquoted = Template::inline(r#"{"code": {{ event.ticket.code }}}"#).unwrap();
    let text = invalid(base().template(unquoted));
    assert!(
        text.contains("rendered a body that is not JSON") && text.contains("sample event"),
        "{text}"
    );
    // With the endpoint's variables: refused without the quotes a value needs, taken with.
    let bare = r#"{"chat": {{ vars.chat }}}"#;
    let template = |text: &str| Template::inline(text).unwrap().var("chat", "general");
    assert!(invalid(base().template(template(bare))).contains("not JSON"));
    for fine in [
        r#"{"code": {{ event.ticket.code|tojson }}}"#,
        r#"{"chat": "{{ vars.chat }}"}"#,
    ] {
        let endpoint = base().template(template(fine)).allow_private(true);
        assert!(endpoint.validate().is_ok(), "{fine}");
    }
    // A variable the endpoint does not have (misspelt): every event would fail on it.
    // One tested, or given a default, is fine.
    let text = invalid(base().template(template(r#"{"chat": "{{ vars.chat_id }}"}"#)));
    assert!(
        text.contains("(in `vars.chat_id`)")
            && text.contains("template_vars has no such variable (it has chat)"),
        "{text}"
    );
    for fine in [
        r#"{"chat": "{{ vars.chat_id|default('x') }}"}"#,
        r#"{"chat": "{% if vars.chat_id is defined %}{{ vars.chat_id }}{% endif %}"}"#,
    ] {
        let endpoint = base().template(template(fine)).allow_private(true);
        assert!(endpoint.validate().is_ok(), "{fine}");
    }
    // The sample is a `create`: an endpoint that takes no such event may not read what its
    // render read.
    let comments = base()
        .template(template(r#"{"chat": "{{ vars.chat_id }}"}"#))
        .actions(deskhook::EventType::Zenlix(deskhook::Action::Comment))
        .allow_private(true);
    assert!(comments.validate().is_ok());
    // A size no render can have, set in code (the config's template_max_output is
    // checked where it is read).
    for bytes in [0, crate::template::LARGEST_OUTPUT + 1] {
        let text = invalid(base().template(template(r#"{"a": 1}"#).max_output(bytes)));
        assert!(text.contains("is not a size a render can have"), "{text}");
    }
    // Not JSON by its content type: any text.
    let text = Template::inline("Ticket {{ event.ticket.code }}")
        .unwrap()
        .content_type("text/plain")
        .unwrap();
    assert!(base().template(text).allow_private(true).validate().is_ok());
}

#[test]
fn urls_are_cut_to_their_origin_for_logs() {
    assert_eq!(
        redact_url("https://hooks.example.com/services/T0/B0/secret?x=1"),
        "https://hooks.example.com/…"
    );
    assert_eq!(
        redact_url("http://127.0.0.1:8080/"),
        "http://127.0.0.1:8080/"
    );
    assert_eq!(redact_url("not a url?token=1"), "not a url");
    // A scheme with no origin in the URL standard (it read 'null/').
    assert_eq!(
        redact_url("nats://127.0.0.1:4222"),
        "nats://127.0.0.1:4222/"
    );
    assert_eq!(
        redact_url("nats://relay:pw@nats.example:4222/x"),
        "nats://nats.example:4222/…"
    );
    // A port out of range: no parse, the path cut all the same.
    assert_eq!(
        redact_url("https://me:pw@hooks.example.com:99999/services/T0/SECRET"),
        "https://hooks.example.com:99999/…"
    );
    assert_eq!(redact_url("127.0.0.1:8080"), "127.0.0.1:8080");
    assert_eq!(
        redact_url("https://user:p/ss@hooks.example.com:99999/x"),
        "https://hooks.example.com:99999/…"
    );
    // A password holding a '?' or '#' (the parse fails on a port that is its start).
    for url in [
        "https://admin:s3cr?et@hooks.example.com/",
        "https://admin:s3cr#et@hooks.example.com/",
        "https://hooks.example.com:99999/x?mail=me@example.com",
        // One that parses: host `admin`, port 123.
        "https://admin:123?x@hooks.example.com/",
        "https://admin:123#x@hooks.example.com/",
        // A '/' or '\\' after the digits: host `admin`, port 123, and the rest a path.
        "https://admin:123/x@hooks.example.com/",
        "https://admin:123\\x@hooks.example.com/",
        "https://admin:123/a/b@hooks.example.com/x",
        "https://admin:/x@hooks.example.com/",
        // Slashes after the scheme are what the parse makes of them.
        "https:admin:123/x@hooks.example.com/",
        "https:///admin:123/x@hooks.example.com/",
        "https:\\\\admin:123\\x@hooks.example.com/",
        "https:admin:/x@hooks.example.com/",
        // A user name that is an e-mail address.
        "https://me@example.com:123/x@hooks.example.com/",
        "HTTPS://ADMIN:/x@hooks.example.com/",
        // A host the parse rewrites, with a port it drops.
        "https://ad%6Din:/x@hooks.example.com/",
        "https://ädmin:443/x@hooks.example.com/",
        "https://1234:/x@hooks.example.com/",
    ] {
        assert_eq!(redact_url(url), "https://…", "{url}");
    }
    // An '@' in a query after a path is the query's (without a port to mistake).
    assert_eq!(
        redact_url("https://crm.example.com/hook?mail=me@example.com"),
        "https://crm.example.com/…"
    );
    assert_eq!(
        redact_url("https://me:pw@crm.example.com/hook?mail=me@example.com"),
        "https://crm.example.com/…"
    );
    // With a port, it cannot be told from a password's: nothing is shown.
    assert_eq!(
        redact_url("https://crm.example.com:8443/hook?mail=me@example.com"),
        "https://…"
    );
    assert_eq!(
        redact_url("http://[::1]/hook?mail=me@example.com"),
        "http://[::1]/…"
    );
}
