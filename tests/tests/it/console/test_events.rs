//! A test event refused by a full queue is a 503 to retry (the queue empties as the
//! endpoint delivers), not a 400 as if the request were wrong; one the endpoint cannot take
//! at all (no Zenlix action) stays a 400.

use deskhook_transports::delivery::{DeliveryConfig, EndpointSpec};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_refused_by_a_full_queue_is_a_503_to_retry() {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let mut config = DeliveryConfig::default();
    config.queue_capacity = 1;
    config.dead_letter_path = dir.path().join("dead.jsonl");
    let (sink, guard) = HttpSink::builder().config(config).build().unwrap();
    let app = deskhook_console::router(sink.clone());
    let mut crm = EndpointSpec::new("crm", receiver.url.clone());
    crm.allow_private = true;
    sink.endpoints().upsert_spec(&crm).unwrap();
    let mut chat = EndpointSpec::new("chat", receiver.url.clone());
    chat.allow_private = true;
    chat.actions = Some("iqchannels.message_created".parse().unwrap());
    sink.endpoints().upsert_spec(&chat).unwrap();
    // Paused, it keeps what it queues: one event fills its queue of one.
    sink.endpoints().pause("crm").unwrap();
    let test = |name: &'static str| {
        let app = app.clone();
        async move {
            api(
                &app,
                Method::POST,
                &format!("/api/v1/endpoints/{name}/test"),
                Some(json!({})),
            )
            .await
        }
    };
    assert_eq!(test("crm").await.status, StatusCode::ACCEPTED);
    let full = test("crm").await;
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        full.body
    );
    assert!(full.body.contains("queue full"), "{}", full.body);
    let wrong = test("chat").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);

    sink.endpoints().resume("crm").unwrap();
    guard.flush(WAIT).unwrap();
    assert_eq!(receiver.requests().len(), 1);
}
