//! The admin API's dead letters: listed, replayed and deleted, 1,000 keys at most; and the
//! limits on what a request may send, the API's and the forms'.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_deleted_through_the_api() {
    let receiver =
        Receiver::start(|_, n| deskhook_tests::Answer::status(if n < 3 { 503 } else { 204 }));
    let c = console(router);
    let created = api(
        &c.app,
        Method::POST,
        "/api/v1/endpoints",
        Some(json!({
            "name": "crm", "url": receiver.url, "allow_private": true, "retry": "0s"
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", c.sink.clone())
        .build();
    let user = deskhook::sample::user();
    for code in ["T-1", "T-2", "T-3"] {
        dispatcher.emit(Action::Comment, &ticket(code), &user);
    }
    c.sink.flush(WAIT).unwrap();
    let letters = api(
        &c.app,
        Method::GET,
        "/api/v1/dead-letters?endpoint=crm",
        None,
    )
    .await
    .json();
    let keys: Vec<String> = letters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3, "{letters}");
    assert_eq!(letters["items"][0]["letter"]["endpoint"], "crm");

    let none = api(
        &c.app,
        Method::POST,
        "/api/v1/dead-letters/replay",
        Some(json!({})),
    )
    .await;
    assert_eq!(none.json()["field"], "keys");
    // A thousand keys at most in one request (a replay reads their letters at once).
    let many: Vec<String> = (0..1001).map(|n| format!("r{n}")).collect();
    for action in ["replay", "delete"] {
        let path = format!("/api/v1/dead-letters/{action}");
        let refused = api(&c.app, Method::POST, &path, Some(json!({"keys": many}))).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{action}");
        let detail = refused.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("1001 keys given; at most 1000"), "{detail}");
    }
    let replayed = api(
        &c.app,
        Method::POST,
        "/api/v1/dead-letters/replay",
        Some(json!({"keys": [keys[0]]})),
    )
    .await
    .json();
    assert_eq!(replayed["replayed"], 1, "{replayed}");
    c.sink.flush(WAIT).unwrap();
    assert_eq!(receiver.wait_for(4).len(), 4);
    let deleted = api(
        &c.app,
        Method::POST,
        "/api/v1/dead-letters/delete",
        Some(json!({"keys": [keys[1]]})),
    )
    .await
    .json();
    assert_eq!(deleted["deleted"], 1);
    // Delete takes keys only, never a filter.
    let refused = api(
        &c.app,
        Method::POST,
        "/api/v1/dead-letters/delete",
        Some(json!({"keys": [keys[2]], "endpoint": "crm"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["field"], "keys");
    // A filter replays every letter matching all of it: no create of crm's, then its
    // comment.
    let replay = |filter: Value| {
        let app = c.app.clone();
        async move {
            api(
                &app,
                Method::POST,
                "/api/v1/dead-letters/replay",
                Some(filter),
            )
            .await
            .json()
        }
    };
    let creates = replay(json!({"endpoint": "crm", "event_type": "create"})).await;
    assert_eq!(creates["replayed"], 0, "{creates}");
    let rest = replay(json!({"endpoint": "crm", "event_type": "comment"})).await;
    assert_eq!(rest["replayed"], 1, "{rest}");
    c.sink.flush(WAIT).unwrap();
    let left = api(&c.app, Method::GET, "/api/v1/dead-letters", None)
        .await
        .json();
    assert_eq!(left["items"].as_array().unwrap().len(), 0, "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_past_their_limit_are_refused_with_the_limit_named() {
    let c = console(router);
    // The API reads 1 MiB of a body: past it, a problem document that says so.
    let keys: Vec<String> = (0..40_000).map(|n| format!("key-{n:020}")).collect();
    let big = api(
        &c.app,
        Method::POST,
        "/api/v1/dead-letters/delete",
        Some(json!({ "keys": keys })),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        big.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let detail = big.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("over 1048576 bytes"), "{detail}");
    // A page's form, 256 KiB.
    let token = FORM_TOKEN;
    let pad = "x".repeat(300 * 1024);
    let form = super::form("/endpoints", token, &[("name", "crm"), ("pad", &pad)]);
    let refused = send(&c.app, form).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        refused.body.contains("the form is over 256 KiB"),
        "{}",
        refused.body
    );
    // A page, as the form's other errors get.
    let html = refused.headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(html.starts_with("text/html"), "{html}");
    assert!(c.sink.endpoints().is_empty(), "nothing created");
    // The login form's limit is its own.
    let tokened = console(|sink| {
        deskhook_console::Console::new(sink)
            .require_token("s3cret-token")
            .router()
    });
    let pad = "x".repeat(20 * 1024);
    let login = super::form("/login", token, &[("token", "x"), ("pad", &pad)]);
    let refused = send(&tokened.app, login).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        refused.body.contains("the form is over 16 KiB"),
        "{}",
        refused.body
    );
}
