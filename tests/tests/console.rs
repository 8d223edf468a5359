//! The console's admin API and pages, driven through its axum Router over a running sink
//! whose endpoints are loopback receivers: what an admin and a script do, and what an
//! attacker's page or a tenant's hostile name must not.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use deskhook::Action;
use deskhook_console::Console;
use deskhook_tests::{Receiver, WAIT, ticket};
use deskhook_transports::delivery::{DeliveryGuard, DeliverySink};
use deskhook_transports::http_blocking::HttpSink;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Running {
    sink: DeliverySink,
    guard: Option<DeliveryGuard>,
    app: Router,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let _ = guard.flush(Duration::from_secs(5));
        }
    }
}

fn console(make: impl FnOnce(DeliverySink) -> Router) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard) = HttpSink::builder()
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .build()
        .unwrap();
    let app = make(sink.clone());
    Running {
        sink,
        guard: Some(guard),
        app,
        _dir: dir,
    }
}

/// A response: status, headers, body.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn api(app: &Router, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(app, request.body(body).unwrap()).await
}

fn endpoint_json(name: &str, receiver: &Receiver) -> Value {
    json!({
        "name": name, "url": receiver.url, "allow_private": true, "retry": "0s",
        "secrets": [SECRET], "headers": {"Authorization": "Bearer tenant-credential"},
        "tenant": "acme",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_creates_changes_and_removes_endpoints_and_names_bad_fields() {
    let receiver = Receiver::ok();
    let c = console(deskhook_console::router);
    let app = &c.app;

    let created = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(endpoint_json("crm", &receiver)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers[header::LOCATION], "/api/v1/endpoints/crm");
    let view = created.json();
    assert_eq!(view["state"], "active");
    assert_eq!(view["secret_hints"], json!(["LaSw"]));
    assert_eq!(view["headers"], json!(["Authorization"]));
    // Neither the secret nor a header value appears in any response.
    for path in ["/api/v1/endpoints/crm", "/api/v1/endpoints"] {
        let body = api(app, Method::GET, path, None).await.body;
        assert!(
            !body.contains("MfKQ9r8G") && !body.contains("tenant-credential"),
            "{body}"
        );
    }

    let again = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(endpoint_json("crm", &receiver)),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["field"], "name");

    // Each bad field is named, with the same words as deskhook.toml; nothing is created.
    for (body, field) in [
        (json!({"name": "x", "url": "ftp://example.com/"}), "url"),
        (
            json!({"name": "x", "url": "http://127.0.0.1/", "retry": "5x"}),
            "retry",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1/", "colour": "red"}),
            "colour",
        ),
        (json!({"name": "x"}), "url"),
        (
            json!({"name": "x", "url": "http://127.0.0.1/", "actions": ["creat"]}),
            "actions",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1/", "secrets": ["nope"]}),
            "secrets",
        ),
    ] {
        let refused = api(app, Method::POST, "/api/v1/endpoints", Some(body.clone())).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
        assert_eq!(
            refused.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let problem = refused.json();
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert_eq!(problem["status"], 400);
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    let not_json = send(
        app,
        Request::post("/api/v1/endpoints")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{nope"))
            .unwrap(),
    )
    .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.sink.endpoints().len(), 1);

    // An update without secrets or headers keeps them; a rename is refused.
    let updated = api(
        app,
        Method::PUT,
        "/api/v1/endpoints/crm",
        Some(json!({"url": receiver.url, "allow_private": true, "retry": "0s,1ms", "tenant": "acme"})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.json()["secret_hints"], json!(["LaSw"]));
    assert_eq!(updated.json()["headers"], json!(["Authorization"]));
    assert_eq!(updated.json()["retry"], "0s,1ms");
    let renamed = api(
        app,
        Method::PUT,
        "/api/v1/endpoints/crm",
        Some(json!({"name": "crm2", "url": receiver.url})),
    )
    .await;
    assert_eq!(renamed.json()["field"], "name");
    let unknown = api(
        app,
        Method::PUT,
        "/api/v1/endpoints/cr",
        Some(json!({"url": receiver.url})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.json()["detail"]
            .as_str()
            .unwrap()
            .contains("did you mean 'crm'"),
        "{}",
        unknown.body
    );

    // A test event reaches the receiver signed with the kept secret and header.
    let sent = api(
        app,
        Method::POST,
        "/api/v1/endpoints/crm/test",
        Some(json!({})),
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let event_id = sent.json()["event_id"].as_str().unwrap().to_owned();
    let got = receiver.wait_for(1);
    assert_eq!(got[0].header("webhook-id"), Some(event_id.as_str()));
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer tenant-credential")
    );
    assert!(got[0].header("webhook-signature").is_some());
    c.sink.flush(WAIT).unwrap();
    let attempts = api(
        app,
        Method::GET,
        &format!("/api/v1/attempts?event_id={event_id}"),
        None,
    )
    .await;
    let items = attempts.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["status"], 204);
    assert_eq!(items[0]["ticket"], "DESKHOOK-TEST");
    let bad_status = api(app, Method::GET, "/api/v1/attempts?status=6xx", None).await;
    assert_eq!(bad_status.json()["field"], "status");
    let bad_time = api(app, Method::GET, "/api/v1/attempts?since=yesterday", None).await;
    assert_eq!(bad_time.json()["field"], "since");

    // Pause, resume, rotate, delete.
    let paused = api(
        app,
        Method::POST,
        "/api/v1/endpoints/crm/pause",
        Some(json!({})),
    )
    .await;
    assert_eq!(paused.json()["state"], "paused");
    let resumed = api(
        app,
        Method::POST,
        "/api/v1/endpoints/crm/resume",
        Some(json!({})),
    )
    .await;
    assert_eq!(resumed.json()["state"], "active");
    let no_secret = api(
        app,
        Method::POST,
        "/api/v1/endpoints/crm/rotate-secret",
        Some(json!({})),
    )
    .await;
    assert_eq!(no_secret.json()["field"], "secret");
    let rotated = api(
        app,
        Method::POST,
        "/api/v1/endpoints/crm/rotate-secret",
        Some(json!({"secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "overlap": "1h"})),
    )
    .await;
    assert_eq!(
        rotated.json()["secret_hints"],
        json!(["b7oD", "LaSw"]),
        "{}",
        rotated.body
    );
    let removed = api(
        app,
        Method::DELETE,
        "/api/v1/endpoints/crm",
        Some(json!({})),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(
        api(app, Method::GET, "/api/v1/endpoints/crm", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let doc = api(app, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json();
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    for path in [
        "/endpoints",
        "/endpoints/{name}",
        "/attempts",
        "/dead-letters/replay",
        "/stats",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["EndpointSpec"]["properties"]["retry"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_list_in_pages_with_a_cursor() {
    let receiver = Receiver::ok();
    let c = console(deskhook_console::router);
    for i in 0..7 {
        let mut body = endpoint_json(&format!("ep-{i}"), &receiver);
        body["tenant"] = json!(if i < 3 { "acme" } else { "globex" });
        let created = api(&c.app, Method::POST, "/api/v1/endpoints", Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let mut names = Vec::new();
    let mut path = "/api/v1/endpoints?limit=3".to_owned();
    loop {
        let page = api(&c.app, Method::GET, &path, None).await.json();
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/endpoints?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        names,
        ["ep-0", "ep-1", "ep-2", "ep-3", "ep-4", "ep-5", "ep-6"]
    );
    let acme = api(&c.app, Method::GET, "/api/v1/endpoints?tenant=acme", None)
        .await
        .json();
    assert_eq!(acme["remaining"], 3);
    let limit = api(&c.app, Method::GET, "/api/v1/endpoints?limit=5000", None).await;
    assert_eq!(limit.json()["field"], "limit");
    let state = api(&c.app, Method::GET, "/api/v1/endpoints?state=sleepy", None).await;
    assert_eq!(state.json()["field"], "state");
    let stats = api(&c.app, Method::GET, "/api/v1/stats", None).await.json();
    assert_eq!(stats["endpoints"], 7);
    assert_eq!(stats["states"]["active"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_deleted_through_the_api() {
    let receiver =
        Receiver::start(|_, n| deskhook_tests::Answer::status(if n < 3 { 503 } else { 204 }));
    let c = console(deskhook_console::router);
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
    let rest = api(
        &c.app,
        Method::POST,
        "/api/v1/dead-letters/replay",
        Some(json!({"endpoint": "crm"})),
    )
    .await
    .json();
    assert_eq!(rest["replayed"], 1, "{rest}");
    c.sink.flush(WAIT).unwrap();
    let left = api(&c.app, Method::GET, "/api/v1/dead-letters", None)
        .await
        .json();
    assert_eq!(left["items"].as_array().unwrap().len(), 0, "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_forms_without_the_token_change_nothing() {
    let receiver = Receiver::ok();
    let c = console(deskhook_console::router);
    c.sink
        .endpoints()
        .upsert_spec(&serde_json::from_value(endpoint_json("crm", &receiver)).unwrap())
        .unwrap();

    // An API call as a cross-site form would send it: no JSON, no Authorization.
    let form_like = send(
        &c.app,
        Request::post("/api/v1/endpoints/crm/pause")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(form_like.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // What a browser marks as cross-site, or from another origin.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://evil.example"),
    ] {
        let refused = send(
            &c.app,
            Request::post("/api/v1/endpoints/crm/pause")
                .header(header::HOST, "127.0.0.1:8089")
                .header(header::CONTENT_TYPE, "application/json")
                .header(name, value)
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{name}");
    }
    // A page form without the CSRF token matching the cookie.
    let page = send(&c.app, Request::get("/").body(Body::empty()).unwrap()).await;
    let cookie = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let forged = send(
        &c.app,
        Request::post("/endpoints/crm/pause")
            .header(header::COOKIE, format!("deskhook_csrf={token}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("csrf=0000"))
            .unwrap(),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.sink.endpoints().get("crm").unwrap().state.to_string(),
        "active"
    );
    // With it, the form pauses the endpoint and sends the browser back to its page.
    let paused = send(
        &c.app,
        Request::post("/endpoints/crm/pause")
            .header(header::COOKIE, format!("deskhook_csrf={token}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={token}")))
            .unwrap(),
    )
    .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    assert_eq!(
        paused.headers[header::LOCATION],
        "/endpoints/crm?done=paused"
    );
    assert_eq!(
        c.sink.endpoints().get("crm").unwrap().state.to_string(),
        "paused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_what_tenants_and_receivers_wrote_and_work_nested() {
    let receiver = Receiver::start(|_, _| {
        deskhook_tests::Answer::status(500).body("<script>alert('receiver')</script>")
    });
    let c = console(|sink| Router::new().nest("/admin/hooks", Console::new(sink).router()));
    let hostile = "<img src=x onerror=alert(1)>";
    let mut spec = endpoint_json(hostile, &receiver);
    spec["retry"] = json!("0s");
    c.sink
        .endpoints()
        .upsert_spec(&serde_json::from_value(spec).unwrap())
        .unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", c.sink.clone())
        .build();
    let mut subject = ticket("T-<b>1</b>");
    subject.subject = "\"}<script>x</script>".into();
    dispatcher
        .for_tenant("acme")
        .emit(Action::Create, &subject, &deskhook::sample::user());
    c.sink.flush(WAIT).unwrap();

    let list = send(
        &c.app,
        Request::get("/admin/hooks").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(!list.body.contains("<img src=x"), "{}", list.body);
    assert!(list.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        list.body.contains(
            "href=\"/admin/hooks/endpoints/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\""
        ),
        "{}",
        list.body
    );

    let page = send(
        &c.app,
        Request::get("/admin/hooks/endpoints/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert('receiver')&lt;/script&gt;"),
        "the receiver's answer is shown as text"
    );
    assert!(page.body.contains("T-&lt;b&gt;1&lt;/b&gt;"));
    assert!(!page.body.contains("MfKQ9r8G") && !page.body.contains("tenant-credential"));
    assert!(page.body.contains("…LaSw"));
    assert!(page.body.contains("<svg"), "the chart");
    assert!(page.body.contains(
        "action=\"/admin/hooks/endpoints/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/pause\""
    ));

    let letters = send(
        &c.app,
        Request::get("/admin/hooks/dead-letters")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(letters.body.contains("T-&lt;b&gt;1&lt;/b&gt;") && !letters.body.contains("<b>1"));
    let event = send(
        &c.app,
        Request::get("/admin/hooks/events?q=T-%3Cb%3E1%3C%2Fb%3E")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        event
            .body
            .contains("1 attempts to 1 endpoints; 1 dead letters"),
        "{}",
        event.body
    );
    let css = send(
        &c.app,
        Request::get("/admin/hooks/assets/console.css")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_with_a_token_asks_scripts_and_people_for_it() {
    let c = console(|sink| Console::new(sink).require_token("s3cret-token").router());
    let anonymous = api(&c.app, Method::GET, "/api/v1/stats", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"deskhook\""
    );
    let wrong = send(
        &c.app,
        Request::get("/api/v1/stats")
            .header(header::AUTHORIZATION, "Bearer nope")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let bearer = send(
        &c.app,
        Request::get("/api/v1/stats")
            .header(header::AUTHORIZATION, "Bearer s3cret-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bearer.status, StatusCode::OK);
    let page = send(
        &c.app,
        Request::get("/dead-letters").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers[header::LOCATION],
        "/login?next=%2Fdead-letters"
    );

    let login = send(&c.app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let post = |token: &str| {
        Request::post("/login")
            .header(header::COOKIE, format!("deskhook_csrf={csrf}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "csrf={csrf}&next=%2Fdead-letters&token={token}"
            )))
            .unwrap()
    };
    let refused = send(&c.app, post("guess")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let ok = send(&c.app, post("s3cret-token")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/dead-letters");
    let session = ok.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        !session.contains("s3cret-token"),
        "the cookie is a session, not the token"
    );
    let cookie = session.split(';').next().unwrap().to_owned();
    let both = format!("{cookie}; deskhook_csrf={csrf}");
    let page = send(
        &c.app,
        Request::get("/dead-letters")
            .header(header::COOKIE, &both)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("action=\"/logout\""),
        "a person who logged in can log out"
    );

    // Logging out closes the session: the same cookie no longer opens a page.
    let out = send(
        &c.app,
        Request::post("/logout")
            .header(header::COOKIE, &both)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}")))
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers[header::LOCATION], "/login");
    let after = send(
        &c.app,
        Request::get("/dead-letters")
            .header(header::COOKIE, &both)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

/// A form post with this browser's CSRF cookie and field.
fn form(path: &str, token: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let mut body = format!("csrf={token}");
    for (k, v) in fields {
        let v: String = url_encode(v);
        body.push_str(&format!("&{k}={v}"));
    }
    Request::post(path)
        .header(header::COOKIE, format!("deskhook_csrf={token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_forms_create_edit_rotate_and_refuse_with_the_field_named() {
    let receiver = Receiver::ok();
    let c = console(deskhook_console::router);
    let page = send(
        &c.app,
        Request::get("/endpoints/new").body(Body::empty()).unwrap(),
    )
    .await;
    let token = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();

    // A bad retry schedule: the form comes back with the message, the field marked, what
    // was typed kept, and nothing created.
    let refused = send(
        &c.app,
        form(
            "/endpoints",
            &token,
            &[
                ("name", "crm"),
                ("url", &receiver.url),
                ("retry", "5x"),
                ("allow_private", "on"),
            ],
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("class=\"field invalid\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"5x\""));
    assert!(c.sink.endpoints().is_empty());

    let created = send(
        &c.app,
        form(
            "/endpoints",
            &token,
            &[
                ("name", "crm"),
                ("url", &receiver.url),
                ("tenant", "acme"),
                ("actions", "create, comment"),
                ("retry", "0s"),
                ("allow_private", "on"),
                ("secret", SECRET),
                ("headers", "Authorization: Bearer tenant-credential"),
            ],
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(
        created.headers[header::LOCATION],
        "/endpoints/crm?done=created"
    );
    let info = c.sink.endpoints().get("crm").unwrap();
    assert_eq!(info.tenant.as_deref(), Some("acme"));
    assert_eq!(info.secret_hints, ["LaSw"]);
    assert_eq!(info.headers, ["Authorization"]);

    // The edit form shows the settings, never the secret or the header's value; saving it
    // without them keeps them.
    let edit = send(
        &c.app,
        Request::get("/endpoints/crm/edit")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        edit.body.contains("value=\"create,comment\""),
        "{}",
        edit.body
    );
    assert!(!edit.body.contains("MfKQ9r8G") && !edit.body.contains("tenant-credential"));
    let saved = send(
        &c.app,
        form(
            "/endpoints/crm/edit",
            &token,
            &[
                ("url", &receiver.url),
                ("tenant", "acme"),
                ("actions", "create"),
                ("retry", "0s,1ms"),
                ("allow_private", "on"),
            ],
        ),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let info = c.sink.endpoints().get("crm").unwrap();
    assert_eq!(info.secret_hints, ["LaSw"]);
    assert_eq!(info.headers, ["Authorization"]);
    assert_eq!(info.retry.to_string(), "0s,1ms");
    assert_eq!(info.event_types.to_string(), "create");

    // Rotation takes the admin's secret; a test event goes out signed with both.
    let bad = send(
        &c.app,
        form(
            "/endpoints/crm/rotate",
            &token,
            &[("secret", "not-a-secret")],
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        !bad.body.contains("not-a-secret"),
        "a refused secret is not shown back"
    );
    let rotated = send(
        &c.app,
        form(
            "/endpoints/crm/rotate",
            &token,
            &[("secret", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")],
        ),
    )
    .await;
    assert_eq!(
        rotated.headers[header::LOCATION],
        "/endpoints/crm?done=rotated"
    );
    let tested = send(&c.app, form("/endpoints/crm/test", &token, &[])).await;
    assert_eq!(
        tested.headers[header::LOCATION],
        "/endpoints/crm?done=tested"
    );
    let got = receiver.wait_for(1);
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .matches("v1,")
            .count(),
        2
    );
    let deleted = send(&c.app, form("/endpoints/crm/delete", &token, &[])).await;
    assert_eq!(deleted.headers[header::LOCATION], "/?done=deleted");
    assert!(c.sink.endpoints().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_form_picks_a_payload_preset_with_its_variables() {
    let receiver = Receiver::ok();
    let c = console(deskhook_console::router);
    let token = "form-token";
    let fields = |vars: &'static str| {
        vec![
            ("name", "chat"),
            ("url", receiver.url.as_str()),
            ("retry", "0s"),
            ("allow_private", "on"),
            ("template_preset", "telegram"),
            ("template_vars", vars),
        ]
    };
    // The Telegram preset without its chat: refused, the field named, nothing created.
    let refused = send(&c.app, form("/endpoints", token, &fields(""))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("template_vars.chat_id"),
        "{}",
        refused.body
    );
    assert!(c.sink.endpoints().is_empty());

    let created = send(
        &c.app,
        form("/endpoints", token, &fields("chat_id=-100123, lang=ru")),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let edit = send(
        &c.app,
        Request::get("/endpoints/chat/edit")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        edit.body.contains("value=\"telegram\" selected"),
        "{}",
        edit.body
    );
    assert!(edit.body.contains("chat_id=-100123, lang=ru"));

    // The channel gets a message it can show.
    c.sink.endpoints().send_test("chat").unwrap();
    let message = receiver.wait_for(1)[0].json();
    assert_eq!(message["chat_id"], "-100123");
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .starts_with("Заявка создана"),
        "{message}"
    );

    // A template of one's own needs its text.
    let mut own = fields("");
    own[4] = ("template_preset", "custom");
    let refused = send(&c.app, form("/endpoints/chat/edit", token, &own)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("needs its text"), "{}", refused.body);
}
