//! The SSRF guard refuses loopback (and every other non-global address) unless the endpoint
//! opts in; refused endpoints send nothing. Only loopback receivers are used, and they must
//! see zero requests.

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{
    BuildFor, Receiver, Transport, dead_letter_file, for_both_transports, start, ticket,
};
use deskhook_transports::Error;
use deskhook_transports::delivery::{Endpoint, read_dead_letters};
use deskhook_transports::http_blocking::HttpSink;

fn an_ip_literal_endpoint_is_refused_when_the_sink_is_built(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let err = HttpSink::builder()
        .endpoint(Endpoint::new("local", &receiver.url).unwrap())
        .dead_letter_path(&dead)
        .build_for(t)
        .unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("refusing to connect to 127.0.0.1 (loopback)"),
        "{text}"
    );
    assert!(text.contains("allow_private"), "{text}");
    assert_eq!(receiver.count(), 0);
}

fn a_name_that_resolves_to_loopback_is_refused_at_delivery(t: Transport) {
    let receiver = Receiver::ok();
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                Endpoint::new("named", &url)
                    .unwrap()
                    .retry("0s,5ms".parse().unwrap()),
            )
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("X1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(receiver.count(), 0, "the guard let a request through");
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 1, "a refusal is not retried");
    // The letter names the name and the kind of address, not the address: whoever reads the
    // endpoint's deliveries (a tenant, in a helpdesk) must not learn what internal names
    // resolve to.
    let reason = &letters[0].reason;
    assert!(
        reason.contains(
            "refusing to connect to localhost: it resolves to a refused address (loopback): \
             set allow_private = true"
        ),
        "{reason}"
    );
    assert!(
        !reason.contains("127.0.0.1") && !reason.contains("::1"),
        "{reason}"
    );
    assert_eq!(sink.stats()[0].retried, 0);
}

fn allowing_private_addresses_or_a_cidr_lets_the_request_through(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                Endpoint::new("private", &receiver.url)
                    .unwrap()
                    .allow_private(true),
            )
            .endpoint(
                Endpoint::new("cidr", &receiver.url)
                    .unwrap()
                    .allow_cidr("127.0.0.0/8".parse().unwrap()),
            )
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Ok, &ticket("X2"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(receiver.count(), 2);
}

fn urls_with_credentials_or_other_schemes_are_refused(t: Transport) {
    let (_dir, dead) = dead_letter_file();
    let err = HttpSink::builder()
        .endpoint(Endpoint::new("creds", "https://user:hunter2@hooks.example.com/x").unwrap())
        .dead_letter_path(&dead)
        .build_for(t)
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert!(
        !dead.exists(),
        "a refused sink leaves no dead-letter file behind"
    );
    let err = HttpSink::builder()
        .endpoint(Endpoint::new("ftp", "ftp://hooks.example.com/x").unwrap())
        .build_for(t)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let err = HttpSink::builder()
        .endpoint(
            Endpoint::new("plain", "http://hooks.example.com/x")
                .unwrap()
                .https_only(true),
        )
        .build_for(t)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
}

/// A name's connection that fails says which of its addresses, not the address: a tenant
/// reading the letter must not learn what an internal name resolves to (as for a refusal).
fn a_names_failed_connection_does_not_quote_its_address(t: Transport) {
    // Nothing listens there.
    let port = deskhook_tests::nats::free_port();
    let url = format!("http://localhost:{port}/hook");
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                Endpoint::new("named", &url)
                    .unwrap()
                    .allow_private(true)
                    .retry("0s".parse().unwrap()),
            )
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("X3"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(5)).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    let error = letters[0].last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("connection failed: localhost (address "),
        "{error}"
    );
    let letter = serde_json::to_string(&letters[0]).unwrap();
    assert!(
        !letter.contains("127.0.0.1") && !letter.contains("::1"),
        "{letter}"
    );
}

for_both_transports!(
    an_ip_literal_endpoint_is_refused_when_the_sink_is_built,
    a_name_that_resolves_to_loopback_is_refused_at_delivery,
    a_names_failed_connection_does_not_quote_its_address,
    allowing_private_addresses_or_a_cidr_lets_the_request_through,
    urls_with_credentials_or_other_schemes_are_refused
);
