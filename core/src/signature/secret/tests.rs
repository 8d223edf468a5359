//! Tests of the keys: the written forms and their errors, kinds, public keys, generation, and
//! that a secret never shows in `Debug` or an error.

use super::*;
use crate::signature::tests::{RFC8032, hex};

/// The secret of the Standard Webhooks specification's test vector.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn secret(s: &str) -> Secret {
    Secret::parse(s).unwrap()
}

/// The seed and the public key of RFC 8032's first test vector.
fn rfc_key() -> (Vec<u8>, Vec<u8>) {
    (hex(RFC8032[0].secret_key), hex(RFC8032[0].public_key))
}

/// The message of a parse error.
fn parse_error(s: &str) -> String {
    let err = Secret::parse(s).unwrap_err();
    assert!(matches!(err, Error::InvalidSecret(_)), "{err:?}");
    err.to_string()
}

#[test]
fn secrets_parse_with_the_length_and_format_rules() {
    // 24 and 64 bytes are the bounds; whitespace around is ignored.
    for len in [24, 32, 64] {
        let written = format!("whsec_{}", STANDARD.encode(vec![7u8; len]));
        let parsed = secret(&format!(" \t{written}\n"));
        assert_eq!(parsed.reveal(), written);
        assert_eq!(written.parse::<Secret>().unwrap().reveal(), written);
        assert_eq!(
            Secret::from_bytes(&vec![7u8; len]).unwrap().reveal(),
            written
        );
        // The same key without its '=' padding is the same key, written back padded.
        let unpadded = written.trim_end_matches('=');
        assert_eq!(secret(unpadded).reveal(), written, "{unpadded}");
    }
    for len in [0, 16, 23, 65, 100] {
        let err = Secret::from_bytes(&vec![7u8; len]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("secret is {len} bytes; it must be 24 to 64 bytes")),
            "{err}"
        );
        let written = format!("whsec_{}", STANDARD.encode(vec![7u8; len]));
        assert_eq!(
            Secret::parse(&written).unwrap_err().to_string(),
            err.to_string()
        );
    }
    assert_eq!(secret(SPEC_SECRET).reveal(), SPEC_SECRET);
}

#[test]
fn every_parse_error_says_what_is_wrong_and_how_to_fix_it() {
    let (seed, public) = rfc_key();
    let (_, other_public) = (hex(RFC8032[1].secret_key), hex(RFC8032[1].public_key));
    let cases = [
        (
            String::new(),
            "secret is empty; it must be 'whsec_', 'whsk_' or 'whpk_' followed by base64 \
             (generate one with `deskhook secret new` or `deskhook::Secret::generate()`, or \
             write 'whsec_' before the output of `openssl rand -base64 32`)",
        ),
        (
            "wh_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            "secret must start with 'whsec_' (HMAC), 'whsk_' (ed25519 signing key) or 'whpk_' \
             (ed25519 public key) (generate one with `deskhook secret new` or \
             `deskhook::Secret::generate()`, or write 'whsec_' before the output of \
             `openssl rand -base64 32`)",
        ),
        (
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            "secret must start with 'whsec_' (it looks like the base64 part alone: write \
             'whsec_' before it)",
        ),
        // Without its padding, as `parse` takes it after the prefix.
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned(),
            "secret must start with 'whsec_' (it looks like the base64 part alone: write \
             'whsec_' before it)",
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjU-D8ILPZIo2LaLaSw".to_owned(),
            "secret 'whsec_…' is not valid base64: the character at offset 22 is URL-safe \
             base64 ('-' or '_'); use standard base64 ('+' and '/')",
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjU!D8ILPZIo2LaLaSw".to_owned(),
            "secret 'whsec_…' is not valid base64: invalid character '!' at offset 22",
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS".to_owned(),
            "secret 'whsec_…' is not valid base64: the character at offset 36 cannot end \
             base64 (cut short?)",
        ),
        (
            // Unpadded base64 is read: what is wrong is the length, not the padding.
            "whsec_c2hvcnQ".to_owned(),
            "secret is 5 bytes; it must be 24 to 64 bytes (generate one with `deskhook secret \
             new` or `deskhook::Secret::generate()`, or write 'whsec_' before the output of \
             `openssl rand -base64 32`)",
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==".to_owned(),
            "secret 'whsec_…' is not valid base64: the character at offset 35 cannot end \
             base64 (cut short?)",
        ),
        (
            "whsec_AAAAAAAAAAAAAAAAAAAAAA==".to_owned(),
            "secret is 16 bytes; it must be 24 to 64 bytes (generate one with `deskhook secret \
             new` or `deskhook::Secret::generate()`, or write 'whsec_' before the output of \
             `openssl rand -base64 32`)",
        ),
        (
            "whsk_MfKQ9r8GKYqrTwjU-D8ILPZIo2LaLaSw".to_owned(),
            "secret 'whsk_…' is not valid base64: the character at offset 21 is URL-safe \
             base64 ('-' or '_'); use standard base64 ('+' and '/')",
        ),
        (
            written("whsk_", &[7; 48]),
            "secret 'whsk_…' is 48 bytes; an ed25519 signing key is 64 bytes (seed and public \
             key) or 32 (seed alone) (generate one with `deskhook secret new --ed25519` or \
             `deskhook::Secret::generate_ed25519()`)",
        ),
        (
            written("whsk_", &[seed.as_slice(), &other_public].concat()),
            "secret 'whsk_…' is not a key pair: its last 32 bytes are not the public key of \
             its first 32 (the seed); check that both halves come from the same key, or write \
             the seed alone",
        ),
        (
            written("whpk_", &public[..31]),
            "public key 'whpk_…' is 31 bytes; an ed25519 public key is 32 bytes",
        ),
        (
            written("whpk_", &[seed.as_slice(), &public].concat()),
            "public key 'whpk_…' is 64 bytes; an ed25519 public key is 32 bytes (is it a whsk_ \
             signing key? its public key is the last 32 bytes)",
        ),
        (
            written("whpk_", &not_a_point()),
            "public key 'whpk_…' is not an ed25519 public key (not a point on the curve); copy \
             it again from the sender",
        ),
        (
            // The neutral element, y = 1: of order 1.
            written("whpk_", &[[1].as_slice(), &[0; 31]].concat()),
            "public key 'whpk_…' is a weak ed25519 key (of small order) that no signature can \
             be checked against; ask the sender for its real public key",
        ),
    ];
    for (input, text) in cases {
        assert_eq!(parse_error(&input), text, "{input:?}");
    }
}

/// An encoding of 32 bytes that is no point of the curve: the first `y` tried that does not
/// decompress (about half of them do not).
fn not_a_point() -> [u8; 32] {
    (2..=255u8)
        .map(|y| {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            bytes
        })
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .expect("half of all y have no point")
}

#[test]
fn ed25519_keys_parse_in_both_forms_and_are_written_in_the_long_one() {
    for vector in &RFC8032 {
        let (seed, public) = (hex(vector.secret_key), hex(vector.public_key));
        let long = written("whsk_", &[seed.as_slice(), &public].concat());
        let whpk = written("whpk_", &public);
        for input in [long.clone(), written("whsk_", &seed), format!(" {long}\n")] {
            let key = secret(&input);
            assert_eq!(key.kind(), SecretKind::Ed25519);
            assert!(key.can_sign());
            assert_eq!(key.reveal(), long);
            assert_eq!(key.public_key().unwrap().reveal(), whpk);
        }
        let public_key = secret(&whpk);
        assert_eq!(public_key.kind(), SecretKind::Ed25519Public);
        assert!(!public_key.can_sign());
        assert_eq!(public_key.reveal(), whpk);
        assert_eq!(public_key.public_key().unwrap().reveal(), whpk);
        assert_eq!(format!("{public_key:?}"), format!("Secret({whpk})"));
    }
    let hmac = secret(SPEC_SECRET);
    assert_eq!(hmac.kind(), SecretKind::Hmac);
    assert!(hmac.can_sign());
    assert!(hmac.public_key().is_none());
}

#[test]
fn a_signing_key_whose_halves_differ_is_refused() {
    let (seed, public) = rfc_key();
    let mut flipped = public.clone();
    flipped[31] ^= 0x01;
    for public_half in [
        flipped,
        hex(RFC8032[1].public_key),
        vec![0; 32],
        not_a_point().to_vec(),
    ] {
        let err = parse_error(&written("whsk_", &[seed.as_slice(), &public_half].concat()));
        assert!(
            err.starts_with("secret 'whsk_…' is not a key pair"),
            "{err}"
        );
    }
    // The seed with its own public key passes.
    secret(&written("whsk_", &[seed, public].concat()));
}

#[test]
fn keys_of_the_wrong_length_are_refused_with_the_length_found() {
    for len in [0, 16, 31, 33, 63, 65, 96] {
        let err = parse_error(&written("whsk_", &vec![7; len]));
        assert!(
            err.starts_with(&format!(
                "secret 'whsk_…' is {len} bytes; an ed25519 signing key is 64 bytes"
            )),
            "{err}"
        );
    }
    for len in [0, 16, 31, 33, 64] {
        let err = parse_error(&written("whpk_", &vec![7; len]));
        assert!(
            err.starts_with(&format!(
                "public key 'whpk_…' is {len} bytes; an ed25519 public key is 32 bytes"
            )),
            "{err}"
        );
    }
}

#[test]
fn a_secret_never_shows_in_debug_or_errors() {
    let spec = secret(SPEC_SECRET);
    assert_eq!(format!("{spec:?}"), "Secret(whsec_…)");
    assert_eq!(format!("{:?}", [spec]), "[Secret(whsec_…)]");
    let (seed, public) = rfc_key();
    let signing = secret(&written("whsk_", &seed));
    assert_eq!(format!("{signing:?}"), "Secret(whsk_…)");
    let seed_base64 = STANDARD.encode(&seed);
    let public_base64 = STANDARD.encode(&public);
    assert!(!format!("{:?}", signing.public_key()).contains(&seed_base64[..8]));
    assert!(format!("{:?}", signing.public_key()).contains(&public_base64));

    let value = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let bad = [
        value.to_owned(),
        format!("whsec{value}"),
        format!("WHSEC_{value}"),
        format!("whsec_{value}x"),
        format!("whsec_{value}=x"),
        format!("whsec_{}", &value[..30]),
        format!("whsec_{}-", &value[..31]),
        format!("whsec_{}é", &value[..31]),
        format!("whsec_{}", &value[..20]),
        format!("whsec_{value}{value}{value}"),
        format!("whsec_{}", STANDARD.encode([1u8; 65])),
        format!("whsk_{value}"),
        format!("whsk_{value}x"),
        format!("whsk_{}", &value[..30]),
        format!("WHSK_{value}"),
        format!("whpk_{value}"),
    ];
    for input in &bad {
        let err = Secret::parse(input).unwrap_err();
        assert!(matches!(err, Error::InvalidSecret(_)));
        for text in [err.to_string(), format!("{err:?}")] {
            for leak in [&value[..8], &value[10..18], &value[24..]] {
                assert!(!text.contains(leak), "{input:?} leaks in {text:?}");
            }
            assert!(!text.contains("AQEBAQEB"), "{input:?} leaks in {text:?}");
        }
        // The same through serde, as from a configuration file.
        let json = serde_json::to_string(input).unwrap();
        let err = serde_json::from_str::<Secret>(&json)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("secret") || err.starts_with("public key"),
            "{err}"
        );
        assert!(!err.contains(&value[..8]), "{err}");
    }
    // Nor does the seed of a signing key that is not a key pair.
    let mismatched = written("whsk_", &[seed.as_slice(), &[9; 32]].concat());
    let err = Secret::parse(&mismatched).unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(&seed_base64[..8]), "{text}");
    }
}

#[test]
fn secrets_deserialize_from_configuration() {
    #[derive(Debug, serde::Deserialize)]
    struct Config {
        secrets: Vec<Secret>,
    }
    let (seed, public) = rfc_key();
    let (whsk, whpk) = (written("whsk_", &seed), written("whpk_", &public));
    let config: Config = serde_json::from_str(&format!(
        r#"{{"secrets": ["{SPEC_SECRET}", " {SPEC_SECRET} ", "{whsk}", "{whpk}"]}}"#
    ))
    .unwrap();
    let kinds: Vec<SecretKind> = config.secrets.iter().map(Secret::kind).collect();
    assert_eq!(
        kinds,
        [
            SecretKind::Hmac,
            SecretKind::Hmac,
            SecretKind::Ed25519,
            SecretKind::Ed25519Public
        ]
    );
    assert_eq!(config.secrets[1].reveal(), SPEC_SECRET);
    assert_eq!(config.secrets[3].reveal(), whpk);
    let err = serde_json::from_str::<Config>(r#"{"secrets": [42]}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a webhook key ('whsec_', 'whsk_' or 'whpk_' followed by base64)"),
        "{err}"
    );
}

#[test]
fn generated_keys_are_random_and_written_back_as_parsed() {
    let a = Secret::generate().unwrap();
    let b = Secret::generate().unwrap();
    assert!(matches!(a.key(), Key::Hmac(key) if key.len() == 32));
    assert_eq!(a.reveal().len(), "whsec_".len() + 44);
    assert_ne!(a.reveal(), b.reveal());
    assert_eq!(secret(&a.reveal()).reveal(), a.reveal());

    let a = Secret::generate_ed25519().unwrap();
    let b = Secret::generate_ed25519().unwrap();
    assert_eq!(a.kind(), SecretKind::Ed25519);
    assert_eq!(a.reveal().len(), "whsk_".len() + 88);
    assert_eq!(a.public_key().unwrap().reveal().len(), "whpk_".len() + 44);
    assert_ne!(a.reveal(), b.reveal());
    assert_ne!(
        a.public_key().unwrap().reveal(),
        b.public_key().unwrap().reveal()
    );
    let again = secret(&a.reveal());
    assert_eq!(again.reveal(), a.reveal());
    assert_eq!(
        again.public_key().unwrap().reveal(),
        a.public_key().unwrap().reveal()
    );
}
