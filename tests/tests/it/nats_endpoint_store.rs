//! The endpoint registry in a JetStream KV bucket (`deskhook endpoints --nats …`), against
//! a real nats-server on 127.0.0.1: stored, listed, changed, paused, removed and watched with
//! revisions; secrets sealed in the bucket and opened only with the key; a record of a newer
//! layout and a missing key refused naming the endpoint.

use std::time::Duration;

use deskhook_tests::nats::NatsServer;
use deskhook_transports::delivery::EndpointSpec;
use deskhook_transports::endpoint_store::{Change, EndpointStore, SecretsKey};
use deskhook_transports::nats::async_nats;
use futures_util::StreamExt as _;

fn spec(name: &str) -> EndpointSpec {
    let mut spec = EndpointSpec::new(name, "https://crm.example.com/hooks");
    spec.secrets = Some(vec![
        deskhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap()
            .into(),
    ]);
    spec.tenant = Some("acme".into());
    spec
}

/// What only the relays read is not judged where a record is written, nor what goes with
/// it: the secrets of `secret_env` (for `hub_signature`), the template of `template_file`
/// (for its content type and size).
#[test]
fn a_check_without_the_relays_files_and_variables_judges_nothing_that_needs_them() {
    let mut hub = EndpointSpec::new("hub", "https://crm.example.com/hooks");
    hub.secret_env = Some("DESKHOOK_TEST_UNSET_SECRET".into());
    hub.hub_signature = true;
    EndpointStore::check(&hub).unwrap();
    let mut text = EndpointSpec::new("text", "https://crm.example.com/hooks");
    text.template_file = Some("/nonexistent/deskhook/template.txt".into());
    text.template_content_type = Some("text/plain".into());
    text.template_max_output = Some(1);
    EndpointStore::check(&text).unwrap();
    // What needs none of them is still judged.
    text.template_max_output = Some(0);
    let err = EndpointStore::check(&text).unwrap_err().to_string();
    assert!(err.contains("template_max_output"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_stored_sealed_watched_and_refused_when_unreadable() {
    let server = NatsServer::start();
    let context = deskhook_transports::nats::connect(
        &server.url(),
        async_nats::ConnectOptions::new(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let key = SecretsKey::generate().unwrap();
    let store = EndpointStore::open(&context, "deskhook_endpoints", 1, Some(key.clone()))
        .await
        .unwrap();
    let after = store.last_revision().await.unwrap();
    let (current, changes) = store.watch(after).await.unwrap();
    assert!(current.is_empty());
    let mut changes = Box::pin(changes);

    // Stored and read back whole; the bucket itself holds no secret in plain text.
    let first = store.put(&spec("crm"), false).await.unwrap();
    let got = store.get("crm").await.unwrap().unwrap();
    assert_eq!(got.spec, spec("crm"));
    assert_eq!(got.revision, first);
    let raw = context.get_key_value("deskhook_endpoints").await.unwrap();
    let mut keys = raw.keys().await.unwrap();
    let stored_key = keys.next().await.unwrap().unwrap();
    let bytes = raw.get(&stored_key).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("MfKQ9r8G") && text.contains("sealed"),
        "{text}"
    );

    // A bad setting is refused with the field named, and nothing is stored.
    let mut bad = spec("erp");
    bad.url = "ftp://erp.example.com".into();
    let err = store.put(&bad, false).await.unwrap_err().to_string();
    assert!(err.starts_with("invalid configuration: url:"), "{err}");
    assert!(store.get("erp").await.unwrap().is_none());

    // Paused, then removed: a watcher sees each change in order, with its revision.
    let paused = store.put(&spec("crm"), true).await.unwrap();
    assert!(store.remove("crm").await.unwrap());
    assert!(!store.remove("crm").await.unwrap());
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let change = tokio::time::timeout(deskhook_tests::WAIT, changes.next())
            .await
            .expect("the watcher sees the change")
            .unwrap()
            .unwrap();
        seen.push(change);
    }
    assert!(matches!(&seen[0], Change::Put(s) if !s.paused && s.revision == first));
    assert!(matches!(&seen[1], Change::Put(s) if s.paused && s.revision == paused));
    assert!(
        matches!(&seen[2], Change::Removed { name, revision } if name == "crm" && *revision > paused)
    );
    assert!(store.list().await.unwrap().is_empty());

    // Without the key (or with another), a sealed endpoint is refused naming it.
    store.put(&spec("crm"), false).await.unwrap();
    for other in [None, Some(SecretsKey::generate().unwrap())] {
        let blind = EndpointStore::open(&context, "deskhook_endpoints", 1, other)
            .await
            .unwrap();
        let err = blind.get("crm").await.unwrap_err().to_string();
        assert!(err.contains("endpoint 'crm'"), "{err}");
    }
    // A change made on what was read: one made in between is not undone unseen.
    let read = store.get("crm").await.unwrap().unwrap().revision;
    let changed = store.put_if(&spec("crm"), true, Some(read)).await.unwrap();
    assert!(changed > read);
    let err = store
        .put_if(&spec("crm"), false, Some(read))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("changed (or removed) by someone else") && err.contains(&read.to_string()),
        "{err}"
    );
    let err = store
        .put_if(&spec("crm"), false, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exists already"), "{err}");
    assert!(store.get("crm").await.unwrap().unwrap().paused);
    // A record of a layout this deskhook does not know is refused, saying what to do.
    raw.put(&stored_key, r#"{"layout": 9, "spec": {}}"#.into())
        .await
        .unwrap();
    let err = store.list().await.unwrap_err().to_string();
    assert!(
        err.contains("layout 9") && err.contains("upgrade deskhook"),
        "{err}"
    );
    // A watcher is told of it by name (a relay pauses the endpoint rather than go on with
    // its old settings).
    let unreadable = loop {
        let change = tokio::time::timeout(deskhook_tests::WAIT, changes.next())
            .await
            .expect("the watcher sees the change")
            .unwrap()
            .unwrap();
        if let Change::Unreadable { name, reason, .. } = change {
            break (name, reason);
        }
    };
    assert_eq!(unreadable.0, "crm");
    assert!(unreadable.1.contains("layout 9"), "{}", unreadable.1);

    // A record written without the key (layout 1, nothing sealed) could be anyone's: read
    // (with a warning) by default, refused where sealed records are required, and written
    // again, sealed, by reseal.
    let plain = r#"{"layout":1,"paused":false,"spec":{"name":"crm","url":"https://crm.example.com/hooks"}}"#;
    raw.put(&stored_key, plain.into()).await.unwrap();
    assert!(store.get("crm").await.unwrap().is_some());
    let strict = EndpointStore::open(&context, "deskhook_endpoints", 1, Some(key.clone()))
        .await
        .unwrap()
        .require_sealed(true);
    let err = strict.get("crm").await.unwrap_err().to_string();
    assert!(
        err.contains("has nothing sealed") && err.contains("deskhook endpoints reseal"),
        "{err}"
    );
    // Required without a key (one read from a variable that is not set): nothing is read,
    // rather than everything, unchecked.
    let keyless = EndpointStore::open(&context, "deskhook_endpoints", 1, None)
        .await
        .unwrap()
        .require_sealed(true);
    for err in [
        keyless.get("crm").await.unwrap_err(),
        keyless.list().await.unwrap_err(),
    ] {
        assert!(
            err.to_string()
                .contains("sealed records are required, and no secrets key is given"),
            "{err}"
        );
    }
    let resealed = store.reseal().await.unwrap();
    assert_eq!(resealed.len(), 1);
    assert!(resealed[0].1.is_ok(), "{:?}", resealed[0].1);
    let back = strict.get("crm").await.unwrap().unwrap();
    assert_eq!(back.spec.url, "https://crm.example.com/hooks");
    assert!(
        store.reseal().await.unwrap().is_empty(),
        "nothing left to reseal"
    );
    // One changed without the key cannot be read, and can still be removed.
    let record = raw.get(&stored_key).await.unwrap().unwrap();
    let forged = String::from_utf8_lossy(&record).replace("\"paused\":false", "\"paused\":true");
    raw.put(&stored_key, forged.into()).await.unwrap();
    assert!(store.get("crm").await.is_err());
    assert!(store.remove("crm").await.unwrap());
    // Files are paths on the relays' machines: not read where the record is written, so
    // that an operator can store (or pause) such an endpoint from anywhere. What goes with
    // them is still checked.
    let mut files = spec("files");
    files.ca_file = Some("/nonexistent/deskhook/ca.pem".into());
    files.template_file = Some("/nonexistent/deskhook/template.json".into());
    files.template_content_type = Some("application/json".into());
    let written = store.put(&files, true).await.unwrap();
    let got = store.get("files").await.unwrap().unwrap();
    assert_eq!(
        (got.spec, got.paused, got.revision),
        (files.clone(), true, written)
    );
    files.template = Some("slack".into());
    let err = store.put(&files, false).await.unwrap_err().to_string();
    assert!(
        err.contains("template_file") && err.contains("not both"),
        "{err}"
    );
    files.template = None;
    files.template_file = None;
    let err = store.put(&files, false).await.unwrap_err().to_string();
    assert!(err.contains("template_content_type"), "{err}");
    assert!(store.remove("files").await.unwrap());
}
