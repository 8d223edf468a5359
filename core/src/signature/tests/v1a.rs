//! Tests of `v1a` (ed25519) signatures: RFC 8032's vectors through our keys, ring (an
//! independent ed25519, BoringSSL's) against our signatures, and `v1` and `v1a` entries side by
//! side in one header.

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use super::*;

/// `prefix` and the standard base64 of `bytes`.
fn written(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}{}", STANDARD.encode(bytes))
}

/// The signing key of an RFC 8032 vector, in its short form (the seed alone).
fn rfc_signing_key(vector: &Rfc8032) -> Secret {
    secret(&written("whsk_", &hex(vector.secret_key)))
}

/// The signed content of Standard Webhooks, built the plain way.
fn content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    [format!("{id}.{timestamp}.").as_bytes(), body].concat()
}

/// The 64 bytes of a `v1a` entry.
fn v1a_signature(entry: &str) -> Vec<u8> {
    let signature = STANDARD
        .decode(entry.strip_prefix("v1a,").expect("a v1a entry"))
        .unwrap();
    assert_eq!(signature.len(), 64);
    signature
}

#[test]
fn rfc8032_vectors_sign_and_verify_through_our_keys() {
    for (n, vector) in RFC8032.iter().enumerate() {
        let test = format!("RFC 8032 TEST {}", n + 1);
        let (seed, public) = (hex(vector.secret_key), hex(vector.public_key));
        let (message, signature) = (hex(vector.message), hex(vector.signature));

        // The key as Go, libsodium and Svix write it: the seed, then the public key.
        let key = secret(&written("whsk_", &[seed.as_slice(), &public].concat()));
        let whpk = secret(&written("whpk_", &public));
        assert_eq!(key.public_key().unwrap().reveal(), whpk.reveal(), "{test}");
        let Key::Ed25519(signing) = key.key() else {
            panic!("{test}: not an ed25519 key")
        };

        // Signed as `sign` signs the content of a request.
        let mut entry = String::new();
        push_ed25519_entry(signing, &message, &mut entry);
        assert_eq!(
            entry,
            format!("v1a,{}", STANDARD.encode(&signature)),
            "{test}"
        );

        // Checked as `verify_at` checks an entry: under the public key or the signing key, and
        // for this message only.
        let encoded = &entry["v1a,".len()..];
        assert_eq!(
            ed25519_entry_matches(encoded, std::slice::from_ref(&whpk), || &message),
            Some(Some(0))
        );
        assert_eq!(
            ed25519_entry_matches(encoded, &[key], || &message),
            Some(Some(0))
        );
        assert_eq!(
            ed25519_entry_matches(encoded, &[whpk], || b"another"),
            Some(None)
        );

        // ring agrees on the vector.
        let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &public).unwrap();
        assert_eq!(pair.sign(&message).as_ref(), signature.as_slice(), "{test}");
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(&message, &signature)
            .unwrap();
    }
}

#[test]
fn ring_verifies_our_v1a_signatures_and_refuses_a_tampered_body() {
    let bodies: [&[u8]; 4] = [
        b"",
        b"{}",
        "{\"action\":\"comment\",\"description\":\"Заявка прокомментирована ✓\"}".as_bytes(),
        &[b'x'; 10 * 1024],
    ];
    for vector in &RFC8032 {
        let key = rfc_signing_key(vector);
        let public = hex(vector.public_key);
        let theirs = UnparsedPublicKey::new(&ED25519, &public);
        let pair = Ed25519KeyPair::from_seed_unchecked(&hex(vector.secret_key)).unwrap();
        for body in bodies {
            let header = sign(SPEC_ID, SPEC_TIMESTAMP, body, std::slice::from_ref(&key)).unwrap();
            let signature = v1a_signature(&header);
            let message = content(SPEC_ID, SPEC_TIMESTAMP, body);
            theirs.verify(&message, &signature).unwrap();
            // ed25519 is deterministic: ring makes the same bytes, which we accept.
            assert_eq!(pair.sign(&message).as_ref(), signature.as_slice());

            // Another body, a signature with one bit changed: ring refuses both, as we do.
            let tampered_body = [body, b" "].concat();
            let tampered = content(SPEC_ID, SPEC_TIMESTAMP, &tampered_body);
            assert!(theirs.verify(&tampered, &signature).is_err());
            let mut flipped = signature.clone();
            flipped[10] ^= 0x04;
            assert!(theirs.verify(&message, &flipped).is_err());

            let public_key = [key.public_key().unwrap()];
            let at = |header: &str, body: &[u8]| {
                let headers = headers(SPEC_ID, SPEC_TIMESTAMP, header);
                verify_at(
                    &headers,
                    body,
                    &public_key,
                    DEFAULT_TOLERANCE,
                    SPEC_TIMESTAMP,
                )
            };
            at(&header, body).unwrap();
            assert!(matches!(
                at(&header, &tampered_body),
                Err(Error::NoMatchingSignature { secrets: 1, .. })
            ));
            assert!(at(&written("v1a,", &flipped), body).is_err());
        }
    }
}

#[test]
fn both_forms_of_a_signing_key_sign_identically() {
    for vector in &RFC8032 {
        let (seed, public) = (hex(vector.secret_key), hex(vector.public_key));
        let short = secret(&written("whsk_", &seed));
        let long = secret(&written("whsk_", &[seed.as_slice(), &public].concat()));
        assert_eq!(short.reveal(), long.reveal());
        let with = |key: &Secret| {
            sign(
                SPEC_ID,
                SPEC_TIMESTAMP,
                SPEC_BODY,
                std::slice::from_ref(key),
            )
        };
        assert_eq!(with(&short).unwrap(), with(&long).unwrap());
        assert_eq!(
            Signer::new(vec![short])
                .unwrap()
                .sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            with(&long).unwrap()
        );
    }
}

#[test]
fn a_header_with_v1_and_v1a_entries_verifies_with_any_one_key() {
    let hmac = secret(SPEC_SECRET);
    let signing = rfc_signing_key(&RFC8032[0]);
    let public = signing.public_key().unwrap();
    let stranger_hmac = Secret::from_bytes(&[3; 32]).unwrap();
    let stranger_public = secret(&written("whpk_", &hex(RFC8032[1].public_key)));

    // During a move from HMAC to ed25519 the sender signs with both.
    let both = [hmac.clone(), signing.clone()];
    let header = sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, &both).unwrap();
    let (v1, v1a) = header.split_once(' ').unwrap();
    assert_eq!(v1, SPEC_SIGNATURE);
    assert_eq!(v1a.len(), ED25519_ENTRY_LEN);
    assert_eq!(
        Signer::new(both.to_vec())
            .unwrap()
            .sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
        header
    );
    let reversed = format!("{v1a} {v1}");
    for header in [header.as_str(), &reversed] {
        for keys in [
            vec![hmac.clone()],
            vec![public.clone()],
            vec![signing.clone()],
            vec![stranger_hmac.clone(), public.clone()],
            vec![stranger_public.clone(), hmac.clone()],
        ] {
            verify_spec(header, &keys, SPEC_TIMESTAMP).unwrap();
        }
        assert!(matches!(
            verify_spec(
                header,
                &[stranger_hmac.clone(), stranger_public.clone()],
                SPEC_TIMESTAMP
            ),
            Err(Error::NoMatchingSignature { secrets: 2, .. })
        ));
    }
}

#[test]
fn an_entry_verifies_only_under_keys_of_its_kind() {
    let hmac = secret(SPEC_SECRET);
    let signing = rfc_signing_key(&RFC8032[0]);
    let public = signing.public_key().unwrap();
    // An HMAC secret made of the very bytes of the ed25519 seed.
    let seed_as_hmac = Secret::from_bytes(&hex(RFC8032[0].secret_key)).unwrap();
    let v1a = sign(
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY,
        std::slice::from_ref(&signing),
    )
    .unwrap();
    let v1 = sign(
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY,
        std::slice::from_ref(&seed_as_hmac),
    )
    .unwrap();
    let no_match = |header: &str, keys: &[Secret]| {
        assert!(
            matches!(
                verify_spec(header, keys, SPEC_TIMESTAMP),
                Err(Error::NoMatchingSignature { .. })
            ),
            "{header} under {keys:?}"
        );
    };
    no_match(&v1a, &[hmac.clone(), seed_as_hmac.clone()]);
    no_match(SPEC_SIGNATURE, &[signing.clone(), public.clone()]);
    no_match(&v1, &[signing.clone(), public.clone()]);
    // Nor under the other version's label.
    let relabelled = v1a.replacen("v1a,", "v1,", 1);
    no_match(
        &relabelled,
        &[signing.clone(), public.clone(), seed_as_hmac],
    );
    let relabelled = SPEC_SIGNATURE.replacen("v1,", "v1a,", 1);
    no_match(&relabelled, &[hmac, signing, public]);
}

#[test]
fn a_public_key_cannot_sign() {
    let hmac = secret(SPEC_SECRET);
    let signing = rfc_signing_key(&RFC8032[0]);
    let public = signing.public_key().unwrap();
    let text = |n: usize, of: usize| {
        format!(
            "secret {n} of {of} is an ed25519 public key (whpk_): it verifies signatures but \
             cannot make them; give the sender the whsk_ key it was made from"
        )
    };
    let err = sign(SPEC_ID, 1, b"", &[hmac.clone(), public.clone()]).unwrap_err();
    assert!(matches!(err, Error::InvalidSecret(_)));
    assert_eq!(err.to_string(), text(2, 2));
    let err = Signer::new(vec![public.clone(), hmac.clone(), signing.clone()]).unwrap_err();
    assert_eq!(err.to_string(), text(1, 3));

    // X-Hub-Signature-256 is an HMAC: no ed25519 key makes one.
    for key in [signing, public] {
        assert_eq!(
            hub_signature(&key, b"").unwrap_err().to_string(),
            "X-Hub-Signature-256 is an HMAC and needs a whsec_ secret, not an ed25519 key; add \
             a whsec_ secret for it, or turn it off"
        );
    }
    hub_signature(&hmac, b"").unwrap();
}

#[test]
fn malformed_v1a_entries_are_skipped() {
    let signing = rfc_signing_key(&RFC8032[0]);
    let keys = [signing.clone(), signing.public_key().unwrap()];
    let good = sign(
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY,
        std::slice::from_ref(&signing),
    )
    .unwrap();
    let signature = v1a_signature(&good);
    let encoded = &good["v1a,".len()..];
    let other_time = sign(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY, &[signing]).unwrap();
    let junk = [
        "v1a".to_owned(),
        "v1a,".to_owned(),
        "v1a,!!!!".to_owned(),
        format!("v1a,{}", &encoded[..87]),
        format!("v1a,{encoded}A"),
        format!("v1a,{encoded}="),
        format!("V1A,{encoded}"),
        format!("v1b,{encoded}"),
        written("v1a,", &signature[..63]),
        written("v1a,", &[signature.as_slice(), &[0]].concat()),
        written("v1a,", &[0; 64]),
        written("v1a,", &[0xff; 64]),
        other_time,
    ];
    for entry in &junk {
        assert!(
            matches!(
                verify_spec(entry, &keys, SPEC_TIMESTAMP),
                Err(Error::NoMatchingSignature { secrets: 2, .. })
            ),
            "{entry:?}"
        );
        // A good entry after the junk still passes.
        verify_spec(&format!("{entry} {good}"), &keys, SPEC_TIMESTAMP).unwrap();
    }
}

#[test]
fn a_signer_with_both_kinds_allocates_the_exact_length() {
    let secrets = vec![
        Secret::from_bytes(&[1; 32]).unwrap(),
        rfc_signing_key(&RFC8032[0]),
        Secret::from_bytes(&[2; 64]).unwrap(),
        rfc_signing_key(&RFC8032[1]),
    ];
    let signer = Signer::new(secrets.clone()).unwrap();
    let signature = signer.sign("msg_1", -1, b"body");
    assert_eq!(
        signature.len(),
        2 * HMAC_ENTRY_LEN + 2 * ED25519_ENTRY_LEN + 3
    );
    assert_eq!(signature.capacity(), signature.len());
    assert_eq!(signature, sign("msg_1", -1, b"body", &secrets).unwrap());
    let versions: Vec<&str> = signature
        .split(' ')
        .map(|entry| entry.split_once(',').unwrap().0)
        .collect();
    assert_eq!(versions, ["v1", "v1a", "v1", "v1a"]);
    assert_eq!(format!("{signer:?}"), "Signer { secrets: 4 }");
}
