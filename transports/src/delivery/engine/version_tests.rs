//! An endpoint's versions: the digest of its settings (an ETag), for endpoints made from
//! settings or in code, and what an update returns (see `tests` for the helpers).

use std::time::Duration;

use super::tests::{AFTER_UPDATE, endpoint, engine};
use crate::delivery::Endpoint;

/// The settings' digest (an ETag) tells a changed secret apart, and stays for the same
/// settings; it reads the secrets without a buffer of their text.
#[test]
fn the_settings_digest_changes_with_a_secret_and_only_then() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(Vec::new(), 8, &dir);
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    let spec = |secret: &str| -> crate::delivery::EndpointSpec {
        serde_json::from_value(serde_json::json!({
            "name": "crm",
            "url": "http://127.0.0.1:9/hooks",
            "secrets": [secret],
            "allow_private": true,
        }))
        .expect("a spec")
    };
    let digest = || {
        endpoints
            .get("crm")
            .expect("registered")
            .settings_digest()
            .expect("made from a spec")
    };
    endpoints
        .upsert_spec(&spec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        .expect("added");
    let first = digest();
    assert_eq!(digest(), first, "the same settings");
    endpoints
        .upsert_spec(&spec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        .expect("upserted unchanged");
    assert_eq!(digest(), first, "the same settings given again");
    endpoints
        .upsert_spec(&spec("whsec_AAAQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        .expect("updated");
    assert_ne!(digest(), first, "another secret");
}

/// An endpoint registered in code has a digest of its settings too: a version of it (an
/// ETag) changes when the code gives it another URL path, timeout or header value.
#[test]
fn the_settings_digest_of_an_endpoint_made_in_code_changes_with_its_settings() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(Vec::new(), 8, &dir);
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    let digest = |endpoint: Endpoint| {
        endpoints.upsert(endpoint).expect("upserted");
        endpoints
            .get("crm")
            .expect("registered")
            .settings_digest()
            .expect("registered now")
    };
    let crm = || endpoint("crm", Duration::from_secs(60));
    let first = digest(crm());
    assert_eq!(digest(crm()), first, "the same settings");
    let changes = [
        Endpoint::new("crm", "http://127.0.0.1:9/other")
            .expect("a URL")
            .max_in_flight(4)
            .retry(crm().retry),
        crm().timeout(Duration::from_secs(3)),
        crm().header("X-Key", "one"),
        crm().header("X-Key", "two"),
    ];
    let mut seen = vec![first];
    for changed in changes {
        let digest = digest(changed);
        assert!(!seen.contains(&digest), "{seen:?} {digest}");
        seen.push(digest);
    }
}

/// What an update returns is the endpoint as that update made it, not as a change made
/// right after it left it: a version read from it (an ETag) is this update's own.
#[test]
fn an_update_returns_the_settings_it_made_whatever_came_after() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(Vec::new(), 8, &dir);
    let endpoints = crate::delivery::Endpoints::new(engine.clone());
    let spec = |max_in_flight: usize| -> crate::delivery::EndpointSpec {
        serde_json::from_value(serde_json::json!({
            "name": "crm",
            "url": "http://127.0.0.1:9/hooks",
            "allow_private": true,
            "max_in_flight": max_in_flight,
        }))
        .expect("a spec")
    };
    endpoints.upsert_spec(&spec(1)).expect("added");
    let other = endpoints.clone();
    AFTER_UPDATE.set(Some(Box::new(move || {
        other
            .update_spec(&spec(3))
            .expect("the other operator's change");
    })));
    let mine = endpoints.update_spec(&spec(2)).expect("updated");
    assert!(AFTER_UPDATE.take().is_none(), "the other change came");
    assert_eq!(mine.max_in_flight, 2, "as this update made it");
    assert_eq!(endpoints.get("crm").expect("registered").max_in_flight, 3);
    // Its settings were replaced: no digest, so no version of it matches the current one.
    assert_eq!(mine.settings_digest(), None);
}
