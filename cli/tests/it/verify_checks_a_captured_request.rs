//! `deskhook verify` checks a captured request: the signature always, the timestamp window
//! unless `--no-tolerance`.

use std::path::Path;
use std::time::Duration;

use deskhook::Secret;

use crate::support::{OTHER_SECRET, SECRET, deskhook_in, text};

/// A timestamp long past (the specification's example).
const OLD: i64 = 1_614_265_330;
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const BODY: &[u8] = br#"{"action":"create","ticket":{"code":"E3XK"}}"#;

/// The three headers of a request signed with `SECRET` at `timestamp`, as `--header` values.
fn headers(timestamp: i64) -> Vec<String> {
    let secret = Secret::parse(SECRET).unwrap();
    let signature = deskhook::signature::sign(ID, timestamp, BODY, &[secret]).unwrap();
    vec![
        format!("webhook-id: {ID}"),
        format!("Webhook-Timestamp: {timestamp}"),
        format!("webhook-signature: {signature}"),
    ]
}

fn verify(dir: &Path, secret: &str, headers: &[String], extra: &[&str]) -> std::process::Output {
    let body = dir.join("body.json");
    std::fs::write(&body, BODY).unwrap();
    let mut args = vec!["verify", "--secret", secret];
    for header in headers {
        args.extend(["--header", header.as_str()]);
    }
    args.extend_from_slice(extra);
    args.push(body.to_str().unwrap());
    deskhook_in(dir, &args)
}

#[test]
fn an_old_capture_passes_with_no_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verify(tmp.path(), SECRET, &headers(OLD), &["--no-tolerance"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("verified (id {ID}, timestamp {OLD})\n")
    );
}

#[test]
fn a_recent_capture_passes_within_the_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().as_second();
    let out = verify(tmp.path(), SECRET, &headers(now - 10), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_wrong_secret_fails_with_the_library_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verify(tmp.path(), OTHER_SECRET, &headers(OLD), &["--no-tolerance"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "deskhook: no signature in webhook-signature matches the 1 whsec_ secret(s) (another \
         key signed it, or the body, webhook-id or webhook-timestamp changed in transit: \
         verify the bytes received)\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_header_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut headers = headers(OLD);
    headers.pop();
    let out = verify(tmp.path(), SECRET, &headers, &["--no-tolerance"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "deskhook: missing header 'webhook-signature': the sender does not sign with Standard \
         Webhooks, or something on the way dropped the header; give the captured request's \
         headers with --header 'webhook-signature: …' (and webhook-id, webhook-timestamp and \
         webhook-signature each)\n"
    );
    // A --header not written 'Name: value' is the caller's mistake, which exits 2.
    let mut headers = self::headers(OLD);
    headers[0] = headers[0].replace(": ", " ");
    let out = verify(tmp.path(), SECRET, &headers, &["--no-tolerance"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--header (number 1 of 3): is not a header"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_old_timestamp_fails_the_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verify(tmp.path(), SECRET, &headers(OLD), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        // The number of seconds depends on the clock.
        stderr.contains(&format!("deskhook: webhook-timestamp {OLD} is ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            " s in the past, beyond the 300 s tolerance (check the clocks, or widen the tolerance)"
        ),
        "{stderr}"
    );

    // A wider tolerance accepts it.
    let now = jiff::Timestamp::now().as_second();
    let age = Duration::from_secs((now - OLD + 3600) as u64);
    let wide = format!("{}s", age.as_secs());
    let out = verify(tmp.path(), SECRET, &headers(OLD), &["--tolerance", &wide]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn tolerance_and_no_tolerance_exclude_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verify(
        tmp.path(),
        SECRET,
        &headers(OLD),
        &["--no-tolerance", "--tolerance", "1m"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_secret_may_come_from_the_environment_and_is_not_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let body = tmp.path().join("body.json");
    std::fs::write(&body, BODY).unwrap();
    let mut args = vec!["verify".to_owned(), "--no-tolerance".to_owned()];
    for header in headers(OLD) {
        args.extend(["--header".to_owned(), header]);
    }
    args.push(body.to_str().unwrap().to_owned());
    // Two keys, space-separated: the second one signed, and the output says so.
    let run = |args: &[String]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args(args)
            .env("DESKHOOK_SECRET", format!("{OTHER_SECRET} {SECRET}"))
            .output()
            .unwrap()
    };
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("verified (id {ID}, timestamp {OLD}, key 2 of the 2 given)\n")
    );
    let help = run(&["verify".to_owned(), "--help".to_owned()]);
    let shown = text(&help.stdout);
    assert!(shown.contains("DESKHOOK_SECRET"), "{shown}");
    assert!(!shown.contains(&SECRET[6..]), "{shown}");
}

#[test]
fn a_bad_key_from_the_environment_is_named_as_the_variable_and_none_at_all_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let body = tmp.path().join("body.json");
    std::fs::write(&body, BODY).unwrap();
    let body = body.to_str().unwrap();
    let out = crate::support::deskhook_with_env(
        tmp.path(),
        &["verify", "--no-tolerance", body],
        &[("DESKHOOK_SECRET", "whsec_c2hvcnQgc2VjcmV0")],
    );
    // A bad key is the caller's mistake (2), not a request refused (1).
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DESKHOOK_SECRET: secret is 12 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("--secret"), "{stderr}");
    // Set but empty (a `$(cat missing-file)`): refused, not read as "check nothing".
    let out = crate::support::deskhook_with_env(
        tmp.path(),
        &["verify", "--no-tolerance", body],
        &[("DESKHOOK_SECRET", " ")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("DESKHOOK_SECRET is set but holds no key"),
        "{}",
        text(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["verify", "--no-tolerance", body])
        .env_remove("DESKHOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("give the key to check against: --secret KEY, or set DESKHOOK_SECRET"),
        "{stderr}"
    );
}

#[test]
fn a_private_signing_key_verifies_with_a_warning_that_names_its_public_key() {
    let tmp = tempfile::tempdir().unwrap();
    let signing = Secret::generate_ed25519().unwrap();
    let public = signing.public_key().unwrap().reveal();
    let signature =
        deskhook::signature::sign(ID, OLD, BODY, std::slice::from_ref(&signing)).unwrap();
    let headers = [
        format!("webhook-id: {ID}"),
        format!("webhook-timestamp: {OLD}"),
        format!("webhook-signature: {signature}"),
    ];
    let out = verify(tmp.path(), &signing.reveal(), &headers, &["--no-tolerance"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: --secret: a 'whsk_' key is the sender's private signing key; a receiver \
             needs only its public key, which verifies and cannot sign: {public}"
        )),
        "{stderr}"
    );
    // The public key itself: no warning.
    let out = verify(tmp.path(), &public, &headers, &["--no-tolerance"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn a_body_saved_with_a_line_break_at_its_end_is_said_to_have_one() {
    let tmp = tempfile::tempdir().unwrap();
    let body = tmp.path().join("body.json");
    let mut saved = BODY.to_vec();
    saved.push(b'\n');
    std::fs::write(&body, saved).unwrap();
    let mut args = vec!["verify", "--secret", SECRET, "--no-tolerance"];
    let headers = headers(OLD);
    for header in &headers {
        args.extend(["--header", header.as_str()]);
    }
    args.push(body.to_str().unwrap());
    let out = deskhook_in(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("it matches the body without the line break at its end"),
        "{stderr}"
    );
    // A body that is wrong otherwise gets no such hint.
    std::fs::write(&body, b"{}\n").unwrap();
    let out = deskhook_in(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).contains("line break"));
}

#[test]
fn hub_checks_an_x_hub_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = Secret::parse(SECRET).unwrap();
    let value = deskhook::signature::hub_signature(&secret, BODY).unwrap();
    let header = vec![format!("X-Hub-Signature-256: {value}")];
    let out = verify(tmp.path(), SECRET, &header, &["--hub"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "verified (X-Hub-Signature-256)\n");
    // Another secret; no such header.
    let out = verify(tmp.path(), OTHER_SECRET, &header, &["--hub"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("matches none of the 1 whsec_ secret"),
        "{}",
        text(&out.stderr)
    );
    let out = verify(tmp.path(), SECRET, &headers(OLD), &["--hub"]);
    assert!(
        text(&out.stderr).contains("no X-Hub-Signature-256 header"),
        "{}",
        text(&out.stderr)
    );
    // A body saved with a line break at its end is said to have one here too.
    let body = tmp.path().join("saved.json");
    std::fs::write(&body, [BODY, b"\n"].concat()).unwrap();
    let header = format!("X-Hub-Signature-256: {value}");
    let args = ["verify", "--secret", SECRET, "--hub", "--header", &header];
    let out = deskhook_in(tmp.path(), &[&args[..], &[body.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("it matches the body without the line break at its end"),
        "{}",
        text(&out.stderr)
    );
}
