//! Bad flags and bad configuration files stop `deskhook send` before anything is sent, with
//! a message that names the problem.

use crate::support::{SECRET, deskhook_in, text};

#[test]
fn an_unknown_action_is_a_usage_error_with_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let out = deskhook_in(
        tmp.path(),
        &["send", "--action", "aprove", "--url", "http://127.0.0.1:9/"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown action 'aprove' (did you mean 'approve'?)"),
        "{stderr}"
    );
}

#[test]
fn an_action_or_all_actions_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    // Named in words, with send's usage (the checks are render's too).
    for (args, says) in [
        (
            &["send", "--url", "http://127.0.0.1:9/"][..],
            "--action <ACTION> or --all-actions",
        ),
        (
            &[
                "send",
                "--format",
                "usedesk",
                "--url",
                "http://127.0.0.1:9/",
            ][..],
            "--format usedesk needs --event FILE",
        ),
    ] {
        let out = deskhook_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            stderr.contains("\nUsage: deskhook send [OPTIONS]"),
            "{args:?}: {stderr}"
        );
    }
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--all-actions",
            "--action",
            "ok",
            "--url",
            "http://127.0.0.1:9/",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn flags_for_the_url_endpoint_given_with_a_config_say_where_the_setting_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        "[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    for (args, says) in [
        (
            &[
                "send", "--action", "ok", "--config", config, "--secret", SECRET,
            ][..],
            "--secret is for the endpoint at --url; the endpoints of --config sign with their \
             own: set `secrets` or `secret_env` in their [[endpoint]] tables",
        ),
        (
            &[
                "send", "--action", "ok", "--config", config, "--header", "A: b",
            ][..],
            "--header is for the endpoint at --url; the endpoints of --config have their own: \
             set `headers` in their [[endpoint]] tables",
        ),
        (
            &["drain", "--config", config, "--secret", SECRET][..],
            "--secret is for the endpoint at --url",
        ),
    ] {
        let out = deskhook_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("--url is required"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_empty_url_and_a_url_without_its_scheme_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (url, says) in [
        (
            "",
            "--url: invalid endpoint URL '': it is empty; give the endpoint's URL",
        ),
        (
            "localhost:8080",
            "--url: invalid endpoint URL 'localhost:…': scheme 'localhost' is not supported; \
             use http or https (write http://localhost:8080?)",
        ),
    ] {
        let out = deskhook_in(tmp.path(), &["send", "--action", "ok", "--url", url]);
        assert_eq!(out.status.code(), Some(1), "{url}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
}

#[test]
fn a_bad_url_and_a_short_secret_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = deskhook_in(
        tmp.path(),
        &["send", "--action", "ok", "--url", "127.0.0.1:9/hooks"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        // Its path left out, as a URL's always is in messages (it may hold a token).
        stderr.contains("--url: invalid endpoint URL '127.0.0.1:9/…': it has no scheme"),
        "{stderr}"
    );

    let short = "whsec_c2hvcnQgc2VjcmV0";
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--action",
            "ok",
            "--url",
            "http://127.0.0.1:9/",
            "--secret",
            short,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--secret: secret is 12 bytes; it must be 24 to 64 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("c2hvcnQ"),
        "the secret is not echoed: {stderr}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_with_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[delivery]\nqueue_capacty = 5\n\n[[endpoint]]\nname = \"crm\"\nurl = \
             \"http://127.0.0.1:9/\"\nsecrets = [\"{SECRET}\"]\n"
        ),
    )
    .unwrap();
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--action",
            "create",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:1: unknown field `queue_capacty`",
            config.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let missing = tmp.path().join("missing.toml");
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--action",
            "create",
            "--config",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("cannot read config file '{}'", missing.display())),
        "{}",
        text(&out.stderr)
    );
}

/// A `--retry` that does not start at once is the flag's fault, not the config file's: it
/// replaces the endpoints' own schedules.
#[test]
fn a_retry_flag_that_does_not_start_at_once_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        "[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/\"\nretry = \"0s,5s\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    for args in [
        &[
            "send", "--action", "ok", "--config", config, "--retry", "5s",
        ][..],
        &[
            "send",
            "--action",
            "ok",
            "--url",
            "http://127.0.0.1:9/",
            "--retry",
            "5s",
        ][..],
    ] {
        let out = deskhook_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("'--retry <LIST>'"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("start it with 0s (\"0s,5s\")"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("deskhook.toml:"), "{args:?}: {stderr}");
    }
}

/// A `secret_env` variable exported empty does not turn signing off: the file is refused,
/// at the key, before anything is sent.
#[test]
fn an_empty_secret_variable_is_refused_not_taken_for_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        "[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/\"\nallow_private = true\n\
         secret_env = \"DESKHOOK_TEST_CRM_SECRET\"\n",
    )
    .unwrap();
    for empty in ["", " , "] {
        let out = crate::support::deskhook_with_env(
            tmp.path(),
            &[
                "send",
                "--action",
                "create",
                "--config",
                config.to_str().unwrap(),
            ],
            &[("DESKHOOK_TEST_CRM_SECRET", empty)],
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{}:5:14: endpoint 'crm': environment variable DESKHOOK_TEST_CRM_SECRET is empty",
                config.display()
            )),
            "{empty:?}: {stderr}"
        );
    }
}

/// A bad --header or --template-var is named by its flag and place, never quoted: such
/// values carry tokens.
#[test]
fn a_bad_header_or_template_variable_is_not_echoed() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, value, said) in [
        (
            "--header",
            "Authorization Bearer tok_SECRET",
            "--header: is not a header",
        ),
        (
            "--template-var",
            "tok_SECRET",
            "--template-var: is not NAME=VALUE",
        ),
    ] {
        let mut args = vec![
            "send",
            "--action",
            "create",
            "--allow-private",
            "--url",
            "http://127.0.0.1:9/",
            flag,
            value,
        ];
        if flag == "--template-var" {
            args.extend(["--template", "slack"]);
        }
        let out = deskhook_in(tmp.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(said) && !stderr.contains("tok_SECRET"),
            "{flag}: {stderr}"
        );
    }
}
