//! `deskhook send` delivers through the real engine to `deskhook listen`, which verifies the
//! signatures: every action arrives verified and in order, and a wrong secret is refused.

use deskhook::Action;
use deskhook_transports::delivery::read_dead_letters;

use crate::support::{Listen, OTHER_SECRET, SECRET, deskhook_in, text};

#[test]
fn all_actions_arrive_verified_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--secret", SECRET]);
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--all-actions",
            "--allow-private",
            "--secret",
            SECRET,
            "--url",
            &listen.url,
        ],
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );

    // One attempt line per action, each answered 204, then the summary.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 13, "{stdout}");
    let mut attempted: Vec<&str> = lines[..12]
        .iter()
        .map(|line| {
            assert!(line.contains(" cli  attempt 1  204  "), "{line}");
            assert!(line.ends_with(" ms"), "{line}");
            line.split_whitespace().next().unwrap()
        })
        .collect();
    // Attempt lines come from the delivery threads; the order on the wire is checked below.
    attempted.sort_unstable();
    let mut all: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    all.sort_unstable();
    assert_eq!(attempted, all);
    assert_eq!(lines[12], "12 of 12 delivered (12 event(s), 1 endpoint(s))");

    // The receiver saw the twelve, verified, in emit order, for ticket E3XK.
    let received = listen.lines(12);
    for (n, (line, action)) in received.iter().zip(Action::ALL).enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], "verified", "{line}");
        assert_eq!(fields[1], action.as_str(), "{line}");
        assert_eq!(fields[2], "E3XK", "{line}");
        assert_eq!(fields[3..5], ["seq", &(n + 1).to_string()], "{line}");
        assert_eq!(fields[5].len(), 36, "a UUID webhook-id: {line}");
    }
    // Nothing failed, so no dead-letter file is left behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_wrong_secret_is_answered_401_and_dead_lettered_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--secret", SECRET]);
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--action",
            "lock",
            "--allow-private",
            "--secret",
            OTHER_SECRET,
            "--url",
            &listen.url,
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));

    let line = listen.line();
    assert!(
        line.starts_with(
            "bad signature (no signature in webhook-signature matches the 1 whsec_ secret(s)"
        ),
        "{line}"
    );
    assert!(line.contains("  lock     E3XK  seq 1  "), "{line}");

    // 401 is a 4xx: one attempt, then the dead letters.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(
            "lock     cli  attempt 1  401 (a wrong or missing secret, or the body changed on the \
             way?)  "
        ) && lines[0].ends_with("  dead-lettered"),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        "0 of 1 delivered (1 event(s), 1 endpoint(s)), 1 dead-lettered"
    );
    let path = lines[2]
        .strip_prefix("dead letters: ")
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        path.starts_with(tmp.path().to_str().unwrap()),
        "in $TMPDIR: {path}"
    );
    let letters = read_dead_letters(path).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].action, "lock");
    assert_eq!(letters[0].last_status, Some(401));
    assert_eq!(letters[0].reason, "401 from the receiver (not retried)");
    assert!(line.ends_with(&letters[0].id), "{line}");
}

#[test]
fn send_format_delivers_vendor_events_that_listen_reads() {
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--secret", SECRET]);
    for (format, file, event_type, key) in [
        (
            "usedesk",
            "usedesk/comment_created.json",
            "usedesk.comment_created",
            deskhook::formats::usedesk::Event::from_json(
                &std::fs::read(fixtures.join("usedesk/comment_created.json")).unwrap(),
            )
            .unwrap()
            .ordering_key(),
        ),
        (
            "iqchannels",
            "iqchannels/chat_closed.json",
            "iqchannels.chat_closed",
            deskhook::formats::iqchannels::Event::from_json(
                &std::fs::read(fixtures.join("iqchannels/chat_closed.json")).unwrap(),
            )
            .unwrap()
            .ordering_key(),
        ),
    ] {
        let path = fixtures.join(file);
        let out = deskhook_in(
            tmp.path(),
            &[
                "send",
                "--format",
                format,
                "--event",
                path.to_str().unwrap(),
                "--allow-private",
                "--secret",
                SECRET,
                "--url",
                &listen.url,
            ],
        );
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        assert!(lines[0].starts_with(event_type), "{stdout}");
        assert!(lines[0].contains(" cli  attempt 1  204  "), "{stdout}");
        assert_eq!(lines[1], "1 of 1 delivered (1 event(s), 1 endpoint(s))");

        let received = listen.lines(1);
        let fields: Vec<&str> = received[0].split_whitespace().collect();
        assert_eq!(
            fields[..5],
            ["verified", event_type, key.as_str(), "seq", "1"]
        );
    }

    // The Zenlix flags make no sense with a whole vendor event: a usage error.
    let path = fixtures.join("usedesk/rating.json");
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--format",
            "usedesk",
            "--event",
            path.to_str().unwrap(),
            "--all-actions",
            "--url",
            &listen.url,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn send_delivers_to_each_of_5000_configured_endpoints() {
    const ENDPOINTS: usize = 5000;
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&[]);
    let mut config = String::new();
    for i in 0..ENDPOINTS {
        config.push_str(&format!(
            "[[endpoint]]\nname = \"e{i}\"\nurl = \"{}e{i}\"\nallow_private = true\n",
            listen.url
        ));
    }
    let path = tmp.path().join("deskhook.toml");
    std::fs::write(&path, config).unwrap();
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--config",
            path.to_str().unwrap(),
            "--action",
            "create",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        stdout.lines().last(),
        Some("5000 of 5000 delivered (1 event(s), 5000 endpoint(s))")
    );
    let received = listen.lines(ENDPOINTS);
    assert!(
        received
            .iter()
            .all(|line| line.starts_with("unsigned  create"))
    );
}

#[test]
fn an_ed25519_key_pair_signs_a_templated_body_that_the_public_key_alone_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = deskhook_in(tmp.path(), &["secret", "new", "--ed25519"]);
    assert!(keys.status.success(), "{}", text(&keys.stderr));
    let keys = text(&keys.stdout);
    let [signing, public] = keys.lines().collect::<Vec<_>>()[..] else {
        panic!("two lines expected: {keys}");
    };
    assert!(
        signing.starts_with("whsk_") && public.starts_with("whpk_"),
        "{keys}"
    );
    // The receiver holds the public key alone; a whsec_ secret does not verify v1a.
    let listen = Listen::start(&["--json", "--secret", public]);
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--action",
            "comment",
            "--allow-private",
            "--secret",
            signing,
            "--template",
            "telegram",
            "--template-var",
            "chat_id=-100123",
            "--url",
            &listen.url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body: serde_json::Value = serde_json::from_str(&listen.line()).unwrap();
    assert_eq!(body["chat_id"], "-100123");
    let message = body["text"].as_str().unwrap();
    assert!(
        message.starts_with("Заявка прокомментирована\n"),
        "{message}"
    );

    // A public key cannot sign, and says what to give instead.
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--action",
            "comment",
            "--allow-private",
            "--secret",
            public,
            "--url",
            &listen.url,
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("whsk_"), "{}", text(&out.stderr));
}

#[test]
fn all_actions_to_a_hanging_endpoint_are_each_attempted() {
    // Each attempt times out after 250 ms, and the twelve events of one ticket go one
    // after the other: 3 s in all, longer than one event's schedule and margin (2.25 s),
    // which was all `send` waited (the last events were reported "refused before sending").
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--delay", "30s"]);
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--all-actions",
            "--allow-private",
            "--url",
            &listen.url,
            "--retry",
            "0s",
            "--timeout",
            "250ms",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("0 of 12 delivered (12 event(s), 1 endpoint(s)), 12 dead-lettered"),
        "{stdout}"
    );
    assert!(!stdout.contains("no attempt for"), "{stdout}");
}

/// An endpoint of a tenant receives only that tenant's events: `send` refuses a
/// configuration with one rather than report success without it, and with `--tenant` sends
/// the events as that tenant's, to its endpoints and to those of none.
#[test]
fn a_tenants_endpoint_needs_the_tenant_named() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&[]);
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[[endpoint]]\nname = \"all\"\nurl = \"{url}\"\nallow_private = true\n\n\
             [[endpoint]]\nname = \"acme-crm\"\nurl = \"{url}\"\nallow_private = true\n\
             tenant = \"acme\"\n",
            url = listen.url
        ),
    )
    .unwrap();
    let send = |more: &[&str]| {
        let mut args = vec![
            "send",
            "--action",
            "create",
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend(more);
        deskhook_in(tmp.path(), &args)
    };
    for more in [&[][..], &["--tenant", "other"][..]] {
        let out = send(more);
        assert_eq!(out.status.code(), Some(1), "{more:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("endpoint 'acme-crm' belongs to tenant 'acme'")
                && stderr.contains("give --tenant acme"),
            "{more:?}: {stderr}"
        );
    }
    let out = send(&["--tenant", "acme"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with("2 of 2 delivered (1 event(s), 2 endpoint(s))\n"),
        "{stdout}"
    );
    assert_eq!(listen.lines(2).len(), 2);
}

/// The secret can come from DESKHOOK_SECRET, out of the process list, for send as for
/// listen; a --config run is not disturbed by it.
#[test]
fn the_secret_can_come_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&["--secret", SECRET]);
    let out = crate::support::deskhook_with_env(
        tmp.path(),
        &[
            "send",
            "--action",
            "create",
            "--allow-private",
            "--url",
            &listen.url,
        ],
        &[("DESKHOOK_SECRET", SECRET)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = listen.lines(1).remove(0);
    assert!(line.starts_with("verified  create"), "{line}");
    // With --config (its endpoints have their own secrets): the variable is not a --secret
    // without --url.
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nallow_private = true\nsecrets = [\"{SECRET}\"]\n",
            listen.url
        ),
    )
    .unwrap();
    let out = crate::support::deskhook_with_env(
        tmp.path(),
        &[
            "send",
            "--action",
            "create",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("DESKHOOK_SECRET", SECRET)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(listen.lines(1)[0].starts_with("verified  create"));
}
