//! A relay started with --endpoints-bucket delivers to the endpoints `deskhook endpoints
//! --nats …` puts in the KV bucket, and applies each change while events flow: an endpoint
//! added (with a sealed secret), its URL changed, removed. The relay says which revision it
//! has applied, so the test waits for that instead of sleeping. A relay re-reads --config
//! on SIGHUP and applies the difference, reads records sealed with a previous key while
//! the key is rotated, refuses to start with records it cannot read, and holds an endpoint
//! whose template file it lacks until a change it can apply.
//!
//! nats-server runs on a free 127.0.0.1 port; the receiver is on 127.0.0.1. Every child
//! process is killed and waited for.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::{Receiver, nats};
use deskhook_transports::nats::NatsSink;

use crate::support::{self, Running, text};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Publishes `n` events on ticket `code`.
fn publish(url: &str, dir: &Path, code: &str, n: usize) {
    let (sink, guard) = NatsSink::builder(url)
        .require_server(true)
        .dead_letter_path(dir.join("publisher.dead.jsonl"))
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder().sink("nats", sink).build();
    let mut ticket = deskhook::sample::ticket();
    ticket.code = code.to_owned();
    for _ in 0..n {
        dispatcher.emit(Action::Comment, &ticket, &deskhook::sample::user());
    }
    guard.flush(Duration::from_secs(30)).unwrap();
}

/// `deskhook endpoints --nats URL ARGS…` with the secrets key; fails the test if it fails.
fn endpoints(url: &str, key: &str, args: &[&str]) {
    endpoints_keyed(url, Some(key), args);
}

/// `deskhook endpoints` with the secrets key, or without one.
fn endpoints_keyed(url: &str, key: Option<&str>, args: &[&str]) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deskhook"));
    command.args(["endpoints", "--nats", url]).args(args);
    match key {
        Some(key) => command.env("DESKHOOK_SECRETS_KEY", key),
        None => command.env_remove("DESKHOOK_SECRETS_KEY"),
    };
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn a_relay_applies_the_buckets_changes_while_events_flow() {
    let server = nats::NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let config = dir.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n",
            dir.path().join("dead.jsonl")
        ),
    )
    .unwrap();
    let key = support::new_secrets_key();
    // The stream exists before the relay starts (the publisher makes it); the bucket does
    // not, and the relay is told to make it.
    publish(&url, dir.path(), "T-0", 0);
    let mut relay = keyed_relay(&url, &config, &key, &["--create-endpoints-bucket"]);
    assert_eq!(relay.said(), "endpoints at revision 0");
    let ready = relay.said();
    assert!(
        ready.starts_with("relaying from stream DESKHOOK"),
        "{ready}"
    );
    assert!(ready.ends_with("to 0 endpoint(s)"), "{ready}");

    // Added: the relay applies revision 1, then delivers, signed with the sealed secret.
    let secrets = format!("secrets=[\"{SECRET}\"]");
    let first_url = format!("url={}/v1", receiver.url);
    endpoints(
        &url,
        &key,
        &[
            "add",
            "name=crm",
            &first_url,
            "allow_private=true",
            "retry=0s",
            &secrets,
        ],
    );
    assert_eq!(relay.said(), "endpoints at revision 1");
    publish(&url, dir.path(), "T-1", 5);
    let got = receiver.wait_for(5);
    assert!(
        got.iter()
            .all(|r| r.path == "/hook/v1" && r.header("webhook-signature").is_some()),
        "{got:?}"
    );

    // Its URL changed: the next events go to the new one.
    let second_url = format!("url={}/v2", receiver.url);
    endpoints(&url, &key, &["update", "crm", &second_url]);
    assert_eq!(relay.said(), "endpoints at revision 2");
    publish(&url, dir.path(), "T-1", 3);
    let got = receiver.wait_for(8);
    assert!(got[5..].iter().all(|r| r.path == "/hook/v2"), "{got:?}");

    // Removed: events are acknowledged with nowhere to go.
    endpoints(&url, &key, &["remove", "crm"]);
    assert_eq!(relay.said(), "endpoints at revision 3");
    publish(&url, dir.path(), "T-2", 2);
    // The stream is a work queue: once it is empty, the relay has acknowledged them all.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + support::WAIT;
    while runtime.block_on(nats::stream_len(&url, "DESKHOOK")) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay did not take every event"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let pid = relay.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let summary = relay.said();
    assert!(relay.wait().success(), "{summary}");
    assert!(
        summary.starts_with("stopped: 10 event(s) acknowledged"),
        "{summary}"
    );
    assert_eq!(receiver.count(), 8);

    // A relay started after the removal has applied it too: it says so, though no record
    // of that revision is left.
    let mut again = keyed_relay(&url, &config, &key, &[]);
    assert_eq!(again.said(), "endpoints at revision 3");
    signal(&again, "-TERM");
    let summary = again.said();
    assert!(again.wait().success(), "{summary}");
}

/// A relay following the endpoints bucket, its secrets key in a variable of the operator's
/// choosing, with the flags `more`.
fn keyed_relay(url: &str, config: &Path, key: &str, more: &[&str]) -> Running {
    let mut args = vec![
        "relay",
        "--nats",
        url,
        "--config",
        config.to_str().unwrap(),
        "--endpoints-bucket",
        "deskhook_endpoints",
        "--key-env",
        "HELPDESK_SECRETS_KEY",
        "--grace",
        "300ms",
    ];
    args.extend_from_slice(more);
    Running::spawn_with(&args, &[("HELPDESK_SECRETS_KEY", key)])
}

#[test]
fn a_relay_given_a_bucket_that_does_not_exist_refuses_to_start() {
    let Bed {
        server: _server,
        url,
        dir,
        receiver,
        config,
    } = bed(&[]);
    let key = support::new_secrets_key();
    add_sealed_crm(&url, &key, &receiver);
    // One letter short: it used to be made, empty, and every event acknowledged as for no
    // endpoint. The bucket is not made: a second try says the same.
    for _ in 0..2 {
        let run = support::deskhook_bounded(
            dir.path(),
            &[
                "relay",
                "--nats",
                &url,
                "--config",
                config.to_str().unwrap(),
                "--endpoints-bucket",
                "deskhook_endpoint",
            ],
            Duration::from_secs(30),
        );
        assert!(!run.status.success(), "{}", run.stdout);
        assert!(
            run.stderr.contains(
                "there is no KV bucket 'deskhook_endpoint' on these servers (did you mean \
                 'deskhook_endpoints'?)"
            ) && run.stderr.contains("--create-endpoints-bucket"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(receiver.count(), 0);
    // Refused before the relay made buckets of its own.
    let kv = nats::block_on(async {
        use futures_util::StreamExt as _;
        let js = nats::context(&url).await;
        js.stream_names()
            .map(|name| name.unwrap())
            .filter(|name| std::future::ready(name.starts_with("KV_")))
            .collect::<Vec<String>>()
            .await
    });
    assert_eq!(kv, ["KV_deskhook_endpoints"]);
}

/// What a test of a relay needs: a nats-server (`url`), a receiver, and a folder holding
/// the relay's deskhook.toml (`config`).
struct Bed {
    server: nats::NatsServer,
    url: String,
    dir: tempfile::TempDir,
    receiver: Receiver,
    config: std::path::PathBuf,
}

/// A [`Bed`] whose deskhook.toml has the endpoints `(name, path)` on its receiver.
fn bed(endpoints: &[(&str, &str)]) -> Bed {
    let server = nats::NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let config = dir.path().join("deskhook.toml");
    write_config(&config, dir.path(), &receiver, endpoints);
    Bed {
        server,
        url,
        dir,
        receiver,
        config,
    }
}

/// A deskhook.toml with the endpoints `(name, path)` on `receiver`.
fn write_config(path: &Path, dir: &Path, receiver: &Receiver, endpoints: &[(&str, &str)]) {
    let mut text = format!(
        "[delivery]\ndead_letter_path = {:?}\n",
        dir.join("dead.jsonl")
    );
    for (name, at) in endpoints {
        text.push_str(&format!(
            "\n[[endpoint]]\nname = \"{name}\"\nurl = \"{}{at}\"\nallow_private = true\n",
            receiver.url
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn signal(relay: &Running, name: &str) {
    let pid = relay.pid().to_string();
    assert!(
        Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_relay_re_reads_its_config_on_sighup() {
    let Bed {
        server: _server,
        url,
        dir,
        receiver,
        config,
    } = bed(&[("crm", "/v1")]);
    publish(&url, dir.path(), "T-0", 0);
    let mut relay = Running::spawn(&[
        "relay",
        "--nats",
        &url,
        "--config",
        config.to_str().unwrap(),
        "--grace",
        "300ms",
    ]);
    assert!(relay.said().starts_with("relaying from stream DESKHOOK"));
    publish(&url, dir.path(), "T-1", 2);
    receiver.wait_for(2);

    // crm moves, audit comes: both apply once the relay says so.
    write_config(
        &config,
        dir.path(),
        &receiver,
        &[("crm", "/v2"), ("audit", "/audit")],
    );
    signal(&relay, "-HUP");
    let reloaded = relay.said();
    assert!(reloaded.ends_with(": 2 endpoint(s)"), "{reloaded}");
    publish(&url, dir.path(), "T-1", 2);
    let got = receiver.wait_for(6);
    let mut paths: Vec<&str> = got[2..].iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["/hook/audit", "/hook/audit", "/hook/v2", "/hook/v2"]
    );

    // crm leaves the file: it is removed; a file that no longer reads changes nothing.
    write_config(&config, dir.path(), &receiver, &[("audit", "/audit")]);
    signal(&relay, "-HUP");
    assert!(relay.said().ends_with(": 1 endpoint(s)"));
    std::fs::write(&config, "[[endpoint]]\nname = \"broken\"\n").unwrap();
    signal(&relay, "-HUP");
    let log = relay.stderr_with("the endpoints stay as they were");
    assert!(log.contains("the endpoints stay as they were"), "{log}");
    // Nor does a file with no endpoint (refused at start): the relay keeps delivering
    // rather than acknowledging the stream's events undelivered.
    std::fs::write(&config, "[delivery]\n").unwrap();
    signal(&relay, "-HUP");
    let log = relay.stderr_with("has no [[endpoint]]");
    assert!(log.contains("has no [[endpoint]]"), "{log}");
    publish(&url, dir.path(), "T-2", 1);
    let got = receiver.wait_for(7);
    assert_eq!(got[6].path, "/hook/audit");
    signal(&relay, "-TERM");
    let summary = relay.said();
    assert!(relay.wait().success(), "{summary}");
    assert!(
        relay.stderr().contains("the endpoints stay as they were"),
        "{}",
        relay.stderr()
    );
    assert!(
        summary.starts_with("stopped: 5 event(s) acknowledged"),
        "{summary}"
    );
    assert_eq!(receiver.count(), 7);
}

/// The arguments of a relay following the endpoints bucket, with the flags `more`.
fn bucket_relay_args<'a>(url: &'a str, config: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "relay",
        "--nats",
        url,
        "--config",
        config.to_str().unwrap(),
        "--endpoints-bucket",
        "deskhook_endpoints",
        "--grace",
        "300ms",
    ];
    args.extend_from_slice(more);
    args
}

/// A relay following the endpoints bucket, its keys (if any) in `env` under their default
/// variables.
fn bucket_relay(url: &str, config: &Path, env: &[(&str, &str)]) -> Running {
    Running::spawn_with(&bucket_relay_args(url, config, &[]), env)
}

/// Adds the endpoint `crm` at `/hook/sealed` on `receiver`, its secret sealed with `key`.
fn add_sealed_crm(url: &str, key: &str, receiver: &Receiver) {
    let secrets = format!("secrets=[\"{SECRET}\"]");
    let sealed_url = format!("url={}/sealed", receiver.url);
    let fields = [
        "add",
        "name=crm",
        &sealed_url,
        "allow_private=true",
        &secrets,
    ];
    endpoints(url, key, &fields);
}

#[test]
fn a_relay_without_the_secrets_key_names_the_endpoint_it_cannot_use() {
    let Bed {
        server: _server,
        url,
        dir,
        receiver,
        config,
    } = bed(&[]);
    let key = support::new_secrets_key();
    let plain_url = format!("url={}/plain", receiver.url);
    add_sealed_crm(&url, &key, &receiver);
    // Stored without the key, its URL is in plain text: a relay without the key uses it.
    endpoints_keyed(
        &url,
        None,
        &["add", "name=audit", &plain_url, "allow_private=true"],
    );
    publish(&url, dir.path(), "T-0", 0);
    // It would acknowledge crm's events without delivering them: it does not start.
    let run = support::deskhook_bounded(
        dir.path(),
        &bucket_relay_args(&url, &config, &[]),
        Duration::from_secs(30),
    );
    assert!(!run.status.success(), "{}", run.stdout);
    for said in [
        "endpoints bucket 'deskhook_endpoints': this relay cannot read or use 1 of its records",
        "endpoint 'crm' has sealed settings (secrets, header values, URL) and no secrets key \
         was given: set DESKHOOK_SECRETS_KEY",
        "--leave-out-unusable",
    ] {
        assert!(run.stderr.contains(said), "{said} in {}", run.stderr);
    }
    assert_eq!(receiver.count(), 0);
    // Told to leave it out, it delivers to the other.
    let mut relay = Running::spawn_with(
        &bucket_relay_args(&url, &config, &["--leave-out-unusable"]),
        &[],
    );
    assert_eq!(relay.said(), "endpoints at revision 2");
    let ready = relay.said();
    assert!(ready.ends_with("to 1 endpoint(s)"), "{ready}");
    let needle = "endpoint 'crm' has sealed settings (secrets, header values, URL) and no";
    let log = relay.stderr_with(needle);
    assert!(log.contains(needle), "stderr: {log}");
    publish(&url, dir.path(), "T-1", 2);
    let got = receiver.wait_for(2);
    assert!(got.iter().all(|r| r.path == "/hook/plain"), "{got:?}");
    signal(&relay, "-TERM");
    assert!(relay.wait().success());
}

#[test]
fn a_relay_given_the_previous_key_delivers_while_the_key_is_rotated() {
    let Bed {
        server: _server,
        url,
        dir,
        receiver,
        config,
    } = bed(&[]);
    let (old, new) = (support::new_secrets_key(), support::new_secrets_key());
    add_sealed_crm(&url, &old, &receiver);
    publish(&url, dir.path(), "T-0", 0);
    // The new key, and the old one as a previous key: the record sealed with the old one
    // is read, with a warning that it is left to rekey.
    let mut relay = bucket_relay(
        &url,
        &config,
        &[
            ("DESKHOOK_SECRETS_KEY", new.as_str()),
            ("DESKHOOK_SECRETS_KEY_PREVIOUS", old.as_str()),
        ],
    );
    assert_eq!(relay.said(), "endpoints at revision 1");
    let ready = relay.said();
    assert!(ready.ends_with("to 1 endpoint(s)"), "{ready}");
    let needle = "endpoint 'crm': sealed with a previous secrets key";
    let log = relay.stderr_with(needle);
    assert!(log.contains(needle), "stderr: {log}");
    publish(&url, dir.path(), "T-1", 2);
    let got = receiver.wait_for(2);
    assert!(got.iter().all(|r| r.path == "/hook/sealed"), "{got:?}");
    assert!(
        got.iter().all(|r| r.header("webhook-signature").is_some()),
        "signed with the secret the old key sealed"
    );
    signal(&relay, "-TERM");
    assert!(relay.wait().success());
}

#[test]
fn a_relay_holds_an_endpoint_whose_file_is_missing_here_until_a_change_it_can_apply() {
    let Bed {
        server: _server,
        url,
        dir,
        receiver,
        config,
    } = bed(&[]);
    let template = dir.path().join("crm.json.j2");
    let held_url = format!("url={}/held", receiver.url);
    let template_file = format!("template_file={}", template.display());
    let crm = ["name=crm", &held_url, "allow_private=true", &template_file];
    // Its relays are to have the template; this one does not yet.
    endpoints_keyed(&url, None, &[&["add"][..], &crm].concat());
    publish(&url, dir.path(), "T-0", 0);
    let mut relay = bucket_relay(&url, &config, &[]);
    assert_eq!(relay.said(), "endpoints at revision 1");
    let ready = relay.said();
    assert!(ready.ends_with("to 1 endpoint(s)"), "{ready}");
    let needle = "its endpoint is paused here, its events kept, until a change this relay can";
    let log = relay.stderr_with(needle);
    assert!(log.contains("crm.json.j2"), "stderr: {log}");
    // Kept for it: acknowledged as no endpoint's, they would never come.
    publish(&url, dir.path(), "T-1", 2);
    std::fs::write(&template, r#"{"ticket": "{{ ticket }}"}"#).unwrap();
    endpoints_keyed(&url, None, &[&["add", "--replace"][..], &crm].concat());
    assert_eq!(relay.said(), "endpoints at revision 2");
    let got = receiver.wait_for(2);
    assert!(
        got.iter()
            .all(|r| r.path == "/hook/held" && r.body == br#"{"ticket":"T-1"}"#),
        "{got:?}"
    );
    signal(&relay, "-TERM");
    assert!(relay.wait().success());
}
