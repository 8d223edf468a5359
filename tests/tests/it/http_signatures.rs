//! What the receiving side checks: the Standard Webhooks signature over the exact body, the
//! X-Hub-Signature-256, and the other headers.

use std::time::Duration;

use deskhook::{Action, Secret};
use deskhook_tests::{
    Receiver, Transport, dead_letter_file, endpoint, for_both_transports, start, ticket,
};
use deskhook_transports::http_blocking::{HttpSink, USER_AGENT};

fn the_receiver_verifies_every_signature(t: Transport) {
    let receiver = Receiver::ok();
    let old = Secret::generate().unwrap();
    let new = Secret::generate().unwrap();
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("crm", &receiver, "0s")
                    .secrets([old.clone(), new.clone()])
                    .hub_signature(true)
                    .header("Authorization", "Bearer t0ken"),
            )
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for action in Action::ALL {
        dispatcher.emit(action, &ticket("S1"), &user);
    }
    guard.flush(Duration::from_secs(10)).unwrap();

    let requests = receiver.wait_for(12);
    for (request, action) in requests.iter().zip(Action::ALL) {
        let headers: Vec<(String, String)> = request.headers.clone();
        // Either secret verifies (rotation): one v1 entry per secret.
        let by_old = deskhook::signature::verify(
            &headers,
            &request.body,
            std::slice::from_ref(&old),
            Duration::from_secs(300),
        )
        .unwrap();
        deskhook::signature::verify(
            &headers,
            &request.body,
            std::slice::from_ref(&new),
            Duration::from_secs(300),
        )
        .unwrap();
        assert_eq!(by_old.id, request.header("webhook-id").unwrap());
        assert_eq!(
            request
                .header("webhook-signature")
                .unwrap()
                .split(' ')
                .count(),
            2
        );
        assert_eq!(
            request.header("x-hub-signature-256").unwrap(),
            deskhook::signature::hub_signature(&old, &request.body).unwrap()
        );
        let other = Secret::generate().unwrap();
        assert!(
            deskhook::signature::verify(
                &headers,
                &request.body,
                &[other],
                Duration::from_secs(300)
            )
            .is_err()
        );
        let mut tampered = request.body.clone();
        tampered[10] ^= 1;
        assert!(
            deskhook::signature::verify(
                &headers,
                &tampered,
                std::slice::from_ref(&old),
                Duration::from_secs(300)
            )
            .is_err()
        );

        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("user-agent"), Some(USER_AGENT));
        assert_eq!(request.header("x-deskhook-action"), Some(action.as_str()));
        assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(request.json()["action"], action.as_str());
    }
}

fn an_endpoints_user_agent_replaces_deskhooks(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("waf", &receiver, "0s").header("User-Agent", "helpdesk/7"))
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("U1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let request = &receiver.wait_for(1)[0];
    let agents: Vec<&str> = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(agents, ["helpdesk/7"], "one User-Agent, the endpoint's");
}

/// A header value past ASCII (RFC 9110's obs-text, here UTF-8) is sent as it is, by both
/// transports, as the endpoint's checks let it be.
fn an_endpoint_header_may_hold_text_past_ascii(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("crm", &receiver, "0s").header("X-Team", "\u{c9}quipe caf\u{e9}"))
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("U2"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let request = &receiver.wait_for(1)[0];
    assert_eq!(request.header("x-team"), Some("\u{c9}quipe caf\u{e9}"));
}

fn an_expired_secret_stops_signing_and_all_expired_refuses_to_send(t: Transport) {
    use std::time::SystemTime;
    let receiver = Receiver::ok();
    let current = Secret::generate().unwrap();
    let expired = Secret::generate().unwrap();
    let still = Secret::generate().unwrap();
    let (_dir, dead) = dead_letter_file();
    let hour = Duration::from_secs(3600);
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("rotating", &receiver, "0s")
                    .secret(current.clone())
                    .secret_until(expired.clone(), SystemTime::now() - hour)
                    .secret_until(still.clone(), SystemTime::now() + hour)
                    .actions(Action::Create),
            )
            .endpoint(
                endpoint("stale", &receiver, "0s")
                    .secret_until(expired.clone(), SystemTime::now() - hour)
                    .actions(Action::Delete),
            )
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("K1"), &deskhook::sample::user());
    dispatcher.emit(Action::Delete, &ticket("K2"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();

    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        1,
        "the endpoint whose secrets all expired sends nothing"
    );
    let request = &requests[0];
    assert_eq!(
        request
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    let verify = |secret: &Secret| {
        deskhook::signature::verify(
            &request.headers,
            &request.body,
            std::slice::from_ref(secret),
            Duration::from_secs(300),
        )
    };
    assert!(verify(&current).is_ok());
    assert!(verify(&still).is_ok());
    assert!(verify(&expired).is_err());
    let letters = deskhook_transports::delivery::read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].endpoint, "stale");
    assert!(
        letters[0]
            .reason
            .starts_with("every signing secret of the endpoint has expired"),
        "{}",
        letters[0].reason
    );
}

/// `X-Hub-Signature-256` holds one signature: made with the HMAC secret that expires first,
/// which receivers still hold.
fn the_hub_signature_is_made_with_the_old_secret(t: Transport) {
    use std::time::SystemTime;
    let receiver = Receiver::ok();
    let hour = Duration::from_secs(3600);
    let (old, new) = (Secret::generate().unwrap(), Secret::generate().unwrap());
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("rotating", &receiver, "0s")
                    .secret(new.clone())
                    .secret_until(old.clone(), SystemTime::now() + hour)
                    .hub_signature(true),
            )
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("H1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("x-hub-signature-256").unwrap(),
        deskhook::signature::hub_signature(&old, &requests[0].body).unwrap(),
        "made with the old secret, which receivers hold until the overlap ends"
    );
}

for_both_transports!(
    the_hub_signature_is_made_with_the_old_secret,
    an_endpoint_header_may_hold_text_past_ascii,
    an_endpoints_user_agent_replaces_deskhooks,
    the_receiver_verifies_every_signature,
    an_expired_secret_stops_signing_and_all_expired_refuses_to_send
);

#[test]
fn a_receiver_verifies_and_receives_with_its_frameworks_header_map() {
    // deskhook's `http` feature: axum's, hyper's and reqwest's header map, as received, a
    // rotation's two signatures on two lines of one header.
    let (old, new) = (Secret::generate().unwrap(), Secret::generate().unwrap());
    let body = serde_json::to_vec(&deskhook::sample::event(Action::Create)).unwrap();
    let body = body.as_slice();
    let now = 1_700_000_000;
    let mut headers = http::HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
    for secret in [&old, &new] {
        let signature =
            deskhook::signature::sign("msg_1", now, body, std::slice::from_ref(secret)).unwrap();
        headers.append("webhook-signature", signature.parse().unwrap());
    }
    let verified = deskhook::signature::verify_at(
        &headers,
        body,
        std::slice::from_ref(&new),
        deskhook::signature::DEFAULT_TOLERANCE,
        now,
    )
    .unwrap();
    assert_eq!(verified.id, "msg_1");
    let options = deskhook::ReceiveOptions::new().secret(new).now_unix(now);
    let received = deskhook::receive(&headers, body, &options).unwrap();
    assert_eq!(received.event_type(), "create");
    // Names in any case; a line that is not visible ASCII is no value, and the next is.
    use deskhook::signature::Headers as _;
    assert_eq!(headers.header("WEBHOOK-ID"), Some("msg_1"));
    let mut lines = http::HeaderMap::new();
    lines.append("x-a", http::HeaderValue::from_bytes(b"\xff").unwrap());
    lines.append("x-a", "two".parse().unwrap());
    assert_eq!(lines.header("X-A"), Some("two"));
    assert_eq!(lines.header_values("x-a"), ["two"]);
    headers.insert(
        "webhook-id",
        http::HeaderValue::from_bytes(b"msg_\xff").unwrap(),
    );
    assert!(matches!(
        deskhook::receive(&headers, body, &options),
        Err(deskhook::Error::MissingHeader("webhook-id"))
    ));
}
