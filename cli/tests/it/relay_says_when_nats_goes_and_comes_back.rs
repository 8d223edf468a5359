//! A relay says when it loses its connection to NATS and when it has it again (async-nats
//! reconnects by itself, silently), and no longer blames a slow leases bucket meanwhile.
//! nats-server runs on a free 127.0.0.1 port and is killed and started again on it.

use std::time::Duration;

use deskhook::{Action, Dispatcher};
use deskhook_tests::{Receiver, nats};
use deskhook_transports::nats::NatsSink;

use crate::support::{self, Running};

#[test]
fn a_relay_logs_the_connection_lost_and_found_again() {
    let mut server = nats::NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let config = support::one_endpoint_config(dir.path(), &receiver.url);
    let publish = |code: &str| {
        let (sink, guard) = NatsSink::builder(&url)
            .require_server(true)
            .dead_letter_path(dir.path().join("publisher.dead.jsonl"))
            .build()
            .unwrap();
        let dispatcher = Dispatcher::builder().sink("nats", sink).build();
        let mut ticket = deskhook::sample::ticket();
        ticket.code = code.to_owned();
        dispatcher.emit(Action::Edit, &ticket, &deskhook::sample::user());
        guard.flush(Duration::from_secs(30)).unwrap();
    };
    publish("T1");
    // A short lease, so that the relay takes the partitions at once and asks the leases
    // bucket often while the server is gone.
    let mut relay = Running::spawn(&[
        "relay",
        "--nats",
        &url,
        "--config",
        config.to_str().unwrap(),
        "--lease",
        "1s",
        "--grace",
        "300ms",
    ]);
    assert!(relay.said().starts_with("relaying from stream DESKHOOK"));
    receiver.wait_for(1);

    // What the relay says from the server's stop on: a busy machine may make an answer
    // slow before it (a 1 s lease gives each 250 ms).
    let before = relay.stderr().len();
    server.stop();
    let lost = "relay: lost the connection to NATS; reconnecting";
    let log = relay.stderr_with(lost);
    assert!(log.contains(lost), "{log}");
    assert!(
        !log[before..].contains("the leases bucket is slow to answer"),
        "{log}"
    );

    server.restart();
    let found = "relay: connected to NATS again";
    let log = relay.stderr_with(found);
    assert!(log.contains(found), "{log}");
    // And it delivers again.
    publish("T2");
    receiver.wait_for(2);
    relay.kill();
}
