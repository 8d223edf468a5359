//! How the headers of a request are read: in any case and container, every line of the
//! signature header (folded or not), the first entries only, and a Svix sender's names.

use super::*;

/// The signature of the spec's message under `secret` alone.
fn sign_with(secret: &Secret) -> String {
    sign(
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY,
        std::slice::from_ref(secret),
    )
    .unwrap()
}

#[test]
fn entries_of_header_lines_a_proxy_folded_with_commas_are_read() {
    let (old, new) = (Secret::generate().unwrap(), Secret::generate().unwrap());
    // Two webhook-signature lines, folded into one (RFC 9110, 5.3), with a space or not.
    for glue in [", ", ",", " ,", ",,", " , "] {
        let folded = format!("{}{glue}{}", sign_with(&old), sign_with(&new));
        for secret in [&old, &new] {
            verify_spec(&folded, std::slice::from_ref(secret), SPEC_TIMESTAMP)
                .unwrap_or_else(|e| panic!("{folded:?}: {e}"));
        }
    }
    // A version with nothing after it is malformed, and the entries after it are read.
    let broken = format!("v1, {}", sign_with(&new));
    verify_spec(&broken, std::slice::from_ref(&new), SPEC_TIMESTAMP).unwrap();
}

#[test]
fn a_svix_senders_headers_are_read_by_their_names() {
    let secret = Secret::parse(SPEC_SECRET).unwrap();
    let svix = |names: [&str; 3]| {
        vec![
            (names[0].to_owned(), SPEC_ID.to_owned()),
            (names[1].to_owned(), SPEC_TIMESTAMP.to_string()),
            (names[2].to_owned(), sign_with(&secret)),
        ]
    };
    let verify = |headers: &[(String, String)]| {
        verify_at(
            headers,
            SPEC_BODY,
            std::slice::from_ref(&secret),
            DEFAULT_TOLERANCE,
            SPEC_TIMESTAMP,
        )
    };
    let verified = verify(&svix(["Svix-Id", "Svix-Timestamp", "Svix-Signature"])).unwrap();
    assert_eq!(verified.id, SPEC_ID);
    // The Standard Webhooks names when there is a webhook-id; a set with a part missing
    // names the part.
    let mut mixed = svix(SVIX_HEADERS);
    mixed.push((HEADER_ID.to_owned(), SPEC_ID.to_owned()));
    assert!(matches!(
        verify(&mixed),
        Err(Error::MissingHeader(HEADER_TIMESTAMP))
    ));
    let mut partial = svix(SVIX_HEADERS);
    partial.pop();
    assert!(matches!(
        verify(&partial),
        Err(Error::MissingHeader("svix-signature"))
    ));
}

#[test]
fn every_line_of_the_signature_header_is_read() {
    let (old, new) = (Secret::generate().unwrap(), Secret::generate().unwrap());
    // A rotation's two signatures on two lines, as a proxy that does not fold them passes
    // them on: a receiver that holds only the new key verifies it.
    let mut lines = headers(SPEC_ID, SPEC_TIMESTAMP, &sign_with(&old));
    lines.push(("Webhook-Signature".to_owned(), sign_with(&new)));
    for secret in [&old, &new] {
        verify_at(
            &lines,
            SPEC_BODY,
            std::slice::from_ref(secret),
            DEFAULT_TOLERANCE,
            SPEC_TIMESTAMP,
        )
        .unwrap();
    }
    // Which key matched: its place among those given, HMAC or ed25519.
    let ed = Secret::generate_ed25519().unwrap();
    let mut signed_by_ed = headers(SPEC_ID, SPEC_TIMESTAMP, &sign_with(&ed));
    signed_by_ed.push(("webhook-signature".to_owned(), sign_with(&new)));
    for (keys, place) in [
        (vec![old.clone(), new.clone()], 1),
        (vec![new.clone(), old.clone()], 0),
        (vec![old.clone(), ed.clone()], 1),
        (vec![ed.clone(), new.clone()], 0),
    ] {
        let verified = verify_at(
            &signed_by_ed,
            SPEC_BODY,
            &keys,
            DEFAULT_TOLERANCE,
            SPEC_TIMESTAMP,
        );
        assert_eq!(verified.unwrap().key_index, place);
    }
    // The entries looked at are counted across the lines.
    let stranger = Secret::generate().unwrap();
    let mut many = headers(SPEC_ID, SPEC_TIMESTAMP, &sign_with(&stranger));
    for _ in 1..MAX_SIGNATURE_ENTRIES {
        many.push(("webhook-signature".to_owned(), sign_with(&stranger)));
    }
    many.push(("webhook-signature".to_owned(), sign_with(&new)));
    let past = verify_at(
        &many,
        SPEC_BODY,
        std::slice::from_ref(&new),
        DEFAULT_TOLERANCE,
        SPEC_TIMESTAMP,
    );
    assert!(
        matches!(
            past,
            Err(Error::NoMatchingSignature {
                unread_entries: 1,
                ..
            })
        ),
        "{past:?}"
    );
    // A container that keeps one value of a name reads that one.
    let map: std::collections::HashMap<String, String> = lines.iter().cloned().collect();
    assert_eq!(map.header_values("webhook-signature").len(), 1);
}

#[test]
fn only_the_first_entries_are_looked_at() {
    let secret = Secret::generate().unwrap();
    let good = sign(
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY,
        std::slice::from_ref(&secret),
    )
    .unwrap();
    let stranger = Secret::generate().unwrap();
    let junk = sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, &[stranger]).unwrap();
    let entries = |before: usize, after: usize| {
        let mut all = vec![junk.as_str(); before];
        all.push(&good);
        all.extend(vec![junk.as_str(); after]);
        all.join(" ")
    };
    // The matching entry among the first ones passes, whatever follows it.
    verify_spec(
        &entries(MAX_SIGNATURE_ENTRIES - 1, 1000),
        std::slice::from_ref(&secret),
        SPEC_TIMESTAMP,
    )
    .unwrap();
    // Past them it is not looked at.
    assert!(matches!(
        verify_spec(
            &entries(MAX_SIGNATURE_ENTRIES, 0),
            std::slice::from_ref(&secret),
            SPEC_TIMESTAMP
        ),
        Err(Error::NoMatchingSignature { secrets: 1, .. })
    ));
}

#[test]
fn headers_are_found_in_any_case_in_every_container() {
    let signature = SPEC_SIGNATURE.to_owned();
    let timestamp = SPEC_TIMESTAMP.to_string();
    let pairs = [
        ("Webhook-Id", SPEC_ID),
        ("WEBHOOK-TIMESTAMP", timestamp.as_str()),
        ("webhook-Signature", signature.as_str()),
    ];
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let hash: HashMap<String, String> = owned.iter().cloned().collect();
    let btree: BTreeMap<String, String> = owned.iter().cloned().collect();
    let spec = [secret(SPEC_SECRET)];
    let check = |headers: &dyn Headers| {
        assert_eq!(headers.header("webhook-id"), Some(SPEC_ID));
        assert_eq!(headers.header("webhook-nope"), None);
        verify_at(headers, SPEC_BODY, &spec, DEFAULT_TOLERANCE, SPEC_TIMESTAMP).unwrap();
    };
    check(&pairs);
    check(&pairs.as_slice());
    check(&owned);
    check(&hash);
    check(&btree);
    check(&&btree);
}
