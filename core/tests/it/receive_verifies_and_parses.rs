//! `receive` checks the Standard Webhooks signature and the Usedesk secret before it hands
//! out an event, and parses the format it is told.

use std::path::Path;
use std::time::Duration;

use deskhook::formats::Format;
use deskhook::formats::usedesk;
use deskhook::{Error, ReceiveOptions, Received, Secret};

const NOW: i64 = 1_700_000_000;
const USEDESK_SECRET: &str = "0e8f678d8327eb3292a28c8165957b282a1b2f8b";

fn fixture(format: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format)
        .join(name);
    std::fs::read(path).unwrap()
}

fn signed(body: &[u8], secret: &Secret, timestamp: i64) -> Vec<(String, String)> {
    let signature =
        deskhook::signature::sign("msg_1", timestamp, body, std::slice::from_ref(secret)).unwrap();
    vec![
        ("Webhook-Id".to_owned(), "msg_1".to_owned()),
        ("Webhook-Timestamp".to_owned(), timestamp.to_string()),
        ("Webhook-Signature".to_owned(), signature),
    ]
}

#[test]
fn a_signed_body_of_each_format_is_received() {
    let secret = Secret::generate().unwrap();
    let options = ReceiveOptions::new().secret(secret.clone()).now_unix(NOW);
    for (dir, name, format, event_type, key) in [
        ("zenlix", "event.json", Format::Zenlix, "action", "E3XK"),
        (
            "usedesk",
            "rating.json",
            Format::Usedesk,
            "rating",
            "2261907",
        ),
        (
            "iqchannels",
            "chat_closed.json",
            Format::IqChannels,
            "chat_closed",
            "13",
        ),
    ] {
        let body = fixture(dir, name);
        let received = deskhook::receive(&signed(&body, &secret, NOW), &body, &options).unwrap();
        assert_eq!(received.format(), format);
        assert_eq!(received.event_type(), event_type);
        assert_eq!(received.ordering_key(), key);
        assert_eq!(received.content_type(), format.content_type());
    }
}

#[test]
fn a_bad_signature_is_refused_before_parsing() {
    let secret = Secret::generate().unwrap();
    let options = ReceiveOptions::new().secret(secret.clone()).now_unix(NOW);
    let body = fixture("iqchannels", "typing.json");

    let mut headers = signed(&body, &secret, NOW);
    let mut changed = body.clone();
    changed[20] = b'9';
    let err = deskhook::receive(&headers, &changed, &options).unwrap_err();
    assert!(
        matches!(err, Error::NoMatchingSignature { secrets: 1, .. }),
        "{err}"
    );

    // Even a body that is not JSON fails on the signature first.
    let err = deskhook::receive(&headers, b"not json", &options).unwrap_err();
    assert!(err.is_signature_error(), "{err}");

    headers.retain(|(name, _)| name != "Webhook-Signature");
    let err = deskhook::receive(&headers, &body, &options).unwrap_err();
    assert!(
        matches!(err, Error::MissingHeader("webhook-signature")),
        "{err}"
    );

    let late = signed(&body, &secret, NOW - 301);
    let err = deskhook::receive(&late, &body, &options).unwrap_err();
    assert!(
        matches!(err, Error::TimestampOutOfTolerance { .. }),
        "{err}"
    );
    let wider = options.clone().tolerance(Duration::from_secs(600));
    assert!(deskhook::receive(&late, &body, &wider).is_ok());
}

#[test]
fn the_usedesk_secret_is_checked() {
    let body = fixture("usedesk", "comment_created.json");
    let headers: [(&str, &str); 0] = [];

    let options = ReceiveOptions::new().usedesk_secret(USEDESK_SECRET);
    let received = deskhook::receive(&headers, &body, &options).unwrap();
    assert_eq!(received.event_type(), "comment_created");

    let options = ReceiveOptions::new().usedesk_secret("0e8f678d8327eb3292a28c8165957b282a1b2f8c");
    let err = deskhook::receive(&headers, &body, &options).unwrap_err();
    assert!(matches!(err, Error::UsedeskSecretMismatch), "{err}");
    assert!(err.is_signature_error());
    assert_eq!(
        err.to_string(),
        "usedesk secret does not match the expected one"
    );
    assert!(!format!("{options:?}").contains("0e8f678d"));
}

#[test]
fn with_only_a_usedesk_secret_other_formats_are_refused() {
    let headers: [(&str, &str); 0] = [];
    let options = ReceiveOptions::new().usedesk_secret(USEDESK_SECRET);
    let body = fixture("iqchannels", "chat_created.json");
    let err = deskhook::receive(&headers, &body, &options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnexpectedFormat {
                expected: Format::Usedesk,
                found: Format::IqChannels
            }
        ),
        "{err}"
    );
    assert!(err.is_signature_error());
    assert_eq!(
        err.to_string(),
        "a iqchannels body cannot be authenticated here (only usedesk bodies are accepted \
         without signing secrets)"
    );

    // With signing secrets, the signature authenticates every format.
    let secret = Secret::generate().unwrap();
    let options = options.secret(secret.clone()).now_unix(NOW);
    let received = deskhook::receive(&signed(&body, &secret, NOW), &body, &options).unwrap();
    assert_eq!(received.format(), Format::IqChannels);
}

#[test]
fn one_receiver_takes_signed_senders_and_usedesk_which_does_not_sign() {
    let secret = Secret::generate().unwrap();
    let options = ReceiveOptions::new()
        .secret(secret.clone())
        .usedesk_secret(USEDESK_SECRET)
        .now_unix(NOW);
    let headers = [("content-type", "application/json")];
    let usedesk = fixture("usedesk", "comment_created.json");
    let received = deskhook::receive(&headers, &usedesk, &options).unwrap();
    assert_eq!(received.event_type(), "comment_created");

    // Unsigned, a Usedesk body needs the token: another one is refused.
    let forged = options.clone().usedesk_secret("another");
    let err = deskhook::receive(&headers, &usedesk, &forged).unwrap_err();
    assert!(matches!(err, Error::UsedeskSecretMismatch), "{err}");

    // Unsigned, any other body lacks the signature, whatever it holds.
    for body in [fixture("zenlix", "event.json"), b"not json".to_vec()] {
        let err = deskhook::receive(&headers, &body, &options).unwrap_err();
        assert!(
            matches!(err, Error::MissingHeader("webhook-signature")),
            "{err}"
        );
    }

    // Signed, every format is taken, and a signature that does not match is refused.
    let zenlix = fixture("zenlix", "event.json");
    assert!(deskhook::receive(&signed(&zenlix, &secret, NOW), &zenlix, &options).is_ok());
    let other = Secret::generate().unwrap();
    let err = deskhook::receive(&signed(&usedesk, &other, NOW), &usedesk, &options).unwrap_err();
    assert!(
        matches!(err, Error::NoMatchingSignature { secrets: 1, .. }),
        "{err}"
    );
}

/// The id to de-duplicate on is the one the signature covers, not another `webhook-id`
/// line added to a captured request; none when nothing was signed.
#[test]
fn the_verified_id_is_the_signed_one() {
    let secret = Secret::generate().unwrap();
    let options = ReceiveOptions::new()
        .secret(secret.clone())
        .usedesk_secret(USEDESK_SECRET)
        .now_unix(NOW);
    let zenlix = fixture("zenlix", "event.json");
    let mut replayed = signed(&zenlix, &secret, NOW);
    replayed.push(("Webhook-Id".to_owned(), "msg_fresh".to_owned()));
    let (received, verified) = deskhook::receive_verified(&replayed, &zenlix, &options).unwrap();
    assert_eq!(received.event_type(), "action");
    let verified = verified.expect("a signature was checked");
    assert_eq!((verified.id.as_str(), verified.timestamp), ("msg_1", NOW));
    // A Usedesk body, authenticated by its token: nothing signed.
    let usedesk = fixture("usedesk", "comment_created.json");
    let headers = [("content-type", "application/json")];
    let (_, verified) = deskhook::receive_verified(&headers, &usedesk, &options).unwrap();
    assert_eq!(verified, None);
}

#[test]
fn options_that_authenticate_nothing_refuse_unless_they_say_so() {
    let body = fixture("iqchannels", "typing.json");
    let headers: [(&str, &str); 0] = [];
    // As when the variable holding the secret was not set.
    let secret: Option<Secret> = None;
    let mut options = ReceiveOptions::new();
    if let Some(secret) = secret {
        options = options.secret(secret);
    }
    let err = deskhook::receive(&headers, &body, &options).unwrap_err();
    assert!(matches!(err, Error::NoAuthentication), "{err}");
    // The receiver's fault, not the request's: answered 500, the sender retries.
    assert!(err.is_receiver_setup_error() && !err.is_signature_error());
    assert!(
        err.to_string()
            .contains("ReceiveOptions::unauthenticated()"),
        "{err}"
    );
    let received = deskhook::receive(&headers, &body, &ReceiveOptions::unauthenticated()).unwrap();
    assert_eq!(received.event_type(), "typing");
    // Keys given to unauthenticated options are checked all the same.
    let keyed = ReceiveOptions::unauthenticated().secret(Secret::generate().unwrap());
    let err = deskhook::receive(&headers, &body, &keyed).unwrap_err();
    assert!(matches!(err, Error::MissingHeader("webhook-id")), "{err}");
}

#[test]
fn a_forced_format_is_used_without_detection() {
    let headers: [(&str, &str); 0] = [];
    // A Usedesk ticket body read as Zenlix fails in Zenlix terms.
    let body = fixture("usedesk", "ticket_created.json");
    let options = ReceiveOptions::unauthenticated().format(Format::Zenlix);
    let err = deskhook::receive(&headers, &body, &options).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid event at ticket: missing field `code`"),
        "{err}"
    );

    // A body without a telling key parses when the format is given.
    let body = br#"{"ChatEvent":{"Id":1,"Type":"typing","ChatId":2}}"#;
    let renamed = String::from_utf8_lossy(body).replace("ChatEvent", "chatevent");
    let err = deskhook::receive(
        &headers,
        renamed.as_bytes(),
        &ReceiveOptions::unauthenticated(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "unknown webhook format (top-level keys: chatevent; expected zenlix, usedesk or \
         iqchannels keys, or set the format)"
    );
    let options = ReceiveOptions::unauthenticated().format(Format::IqChannels);
    let received = deskhook::receive(&headers, body, &options).unwrap();
    let Received::IqChannels(event) = received else {
        panic!("{received:?}")
    };
    assert_eq!(event.chat_id(), 2);
}

#[test]
fn a_usedesk_body_without_a_secret_key_is_usedesk_but_invalid() {
    let headers: [(&str, &str); 0] = [];
    let body = br#"{"rating":{"ticket_id":1,"rating":3}}"#;
    assert_eq!(Format::detect(body), Some(Format::Usedesk));
    let err = deskhook::receive(&headers, body, &ReceiveOptions::unauthenticated()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid event: missing field `secret`"),
        "{err}"
    );
    let event =
        usedesk::Event::from_json(br#"{"secret":"","rating":{"ticket_id":1,"rating":3}}"#).unwrap();
    assert!(!event.secret_matches(USEDESK_SECRET));
}

#[test]
fn a_receiver_with_only_the_public_key_receives_what_an_ed25519_key_signed() {
    let signing = Secret::generate_ed25519().unwrap();
    let public = signing.public_key().unwrap();
    let body = fixture("zenlix", "event.json");
    let headers = signed(&body, &signing, NOW);
    assert!(headers[2].1.starts_with("v1a,"), "{headers:?}");
    let options = ReceiveOptions::new().secret(public).now_unix(NOW);
    let received = deskhook::receive(&headers, &body, &options).unwrap();
    assert_eq!(received.ordering_key(), "E3XK");
    // Another key pair's public key refuses it.
    let other = Secret::generate_ed25519().unwrap().public_key().unwrap();
    let options = ReceiveOptions::new().secret(other).now_unix(NOW);
    let err = deskhook::receive(&headers, &body, &options).unwrap_err();
    assert!(err.is_signature_error(), "{err}");
}

#[test]
fn text_of_the_body_quoted_in_an_error_is_escaped_to_one_line() {
    let options = ReceiveOptions::unauthenticated();
    // A key that would forge a log line of its own, and one that drives a terminal.
    let forged = br#"{"\nINFO deskhook: delivered ok": 1, "\u001b]0;x\u0007": 2}"#;
    let error = deskhook::receive(&[("", ""); 0], forged, &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains(r"\nINFO deskhook: delivered ok"), "{error}");
    assert!(error.contains(r"\u{1b}]0;x\u{7}"), "{error}");
    assert!(!error.chars().any(char::is_control), "{error:?}");
    // A value the parser quotes: a time that is none, with a bidirectional override.
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("zenlix", "event.json")).unwrap();
    event["dt"] = "2019\u{202e}-06\r\n".into();
    let body = serde_json::to_vec(&event).unwrap();
    let error = deskhook::receive(&[("", ""); 0], &body, &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains(r"2019\u{202e}-06\r\n"), "{error}");
    assert!(
        !error.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{error:?}"
    );
}

#[test]
fn a_body_that_is_no_json_says_what_it_is() {
    let options = ReceiveOptions::unauthenticated();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let none: [(&str, &str); 0] = [];
    for (headers, body, expected) in [
        (&none[..], &b""[..], "the body is empty"),
        (&none[..], b" \r\n", "the body is empty"),
        (
            &none[..],
            b"secret=0e8f&comment[id]=7&comment[message]=hi",
            "the body is form data",
        ),
        (&form[..], b"x", "the body is form data"),
        // Not plainly either: the parser says what is wrong.
        (&none[..], b"[1, 2]", "expected"),
        (&none[..], b"{\"ticket\": ", "EOF while parsing"),
    ] {
        let error = deskhook::receive(headers, body, &options)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{body:?}: {error}");
    }
    // With a format named, the same.
    let zenlix = ReceiveOptions::unauthenticated().format(Format::Zenlix);
    let error = deskhook::receive(&none, b"", &zenlix).unwrap_err();
    assert!(error.to_string().contains("the body is empty"), "{error}");
    // A receiver with a Usedesk token and signing keys: a body that is not Usedesk's JSON
    // lacks the signature it then needs (a 401), whatever it is.
    let both = ReceiveOptions::new()
        .secret(Secret::generate().unwrap())
        .usedesk_secret(USEDESK_SECRET)
        .now_unix(NOW);
    let error = deskhook::receive(&none, b"secret=0e8f&comment[id]=7", &both).unwrap_err();
    assert!(
        matches!(error, Error::MissingHeader("webhook-signature")),
        "{error}"
    );
}
