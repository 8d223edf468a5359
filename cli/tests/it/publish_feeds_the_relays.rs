//! `deskhook publish` puts events into the relays' stream, as a helpdesk's NatsSink does:
//! a relay then delivers them. nats-server runs on a free 127.0.0.1 port; the receiver is
//! on 127.0.0.1.

use std::time::Duration;

use deskhook_tests::{Receiver, nats};

use crate::support::{self, Running, text};

#[test]
fn published_events_are_stored_and_a_relay_delivers_them() {
    let server = nats::NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    // The stream exists, with 4 partitions (not the 16 a new one gets): taken as it is.
    nats::publish_in_turn(&server, 4, (&[], 0), &dir.path().join("maker.dead.jsonl"));
    let out = support::deskhook_in(
        dir.path(),
        &["publish", "--nats", &url, "--action", "create,comment,ok"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (line, action) in lines.iter().zip(["create", "comment", "ok"]) {
        let expected = format!("published  {action:<8} E3XK  partition ");
        assert!(
            line.starts_with(&expected) && line.ends_with(" of 4"),
            "{line}"
        );
    }
    assert_eq!(lines[3], "3 of 3 event(s) stored in stream DESKHOOK");

    let receiver = Receiver::ok();
    let config = support::one_endpoint_config(dir.path(), &receiver.url);
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
    // Where its dead letters go, whole.
    let dead = format!(
        "relay: dead letters go to {} and to the stream DESKHOOK_DEAD",
        dir.path().join("dead.jsonl").display()
    );
    assert!(
        relay.stderr_with(&dead).contains(&dead),
        "{}",
        relay.stderr()
    );
    let got = receiver.wait_for(3);
    let actions: Vec<String> = got
        .iter()
        .map(|r| r.json()["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["create", "comment", "ok"]);
    relay.kill();
}

#[test]
fn publishing_without_a_server_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", nats::free_port());
    let run = support::deskhook_bounded(
        dir.path(),
        &["publish", "--nats", &url, "--action", "create"],
        Duration::from_secs(30),
    );
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(
        run.stderr.starts_with("deskhook: ")
            && run.stderr.contains("127.0.0.1")
            && run.stderr.contains("is the server running and reachable?"),
        "{}",
        run.stderr
    );
    // No dead-letter file is left behind in the temporary directory.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A refused login is said as one, not as a server that does not answer.
#[test]
fn a_wrong_password_is_said() {
    let server = nats::NatsServer::start_configured(
        r#"authorization { users = [ { user: "publisher", password: "right" } ] }"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().replace("nats://", "nats://publisher:wrong@");
    let run = support::deskhook_bounded(
        dir.path(),
        &["publish", "--nats", &url, "--action", "create"],
        Duration::from_secs(30),
    );
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(
        run.stderr.contains("authorization violation")
            && run.stderr.contains("the server refused the login"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong"), "{}", run.stderr);
}
