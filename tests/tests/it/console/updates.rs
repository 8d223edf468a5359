//! Changing an endpoint through the admin API: what a PUT or a PATCH keeps when it is left
//! out, refuses (the server's own files and variables), never carries to another origin
//! (header values), and how a change made on an older version is refused.

use super::*;

/// What names a file or an environment variable of the server is its configuration's: a
/// request to the API that sets or changes one is refused, so that whoever can call the API
/// cannot have the server read a file and send it to a URL of theirs. One sent back as the
/// endpoint has it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_settings_that_name_the_servers_files_or_environment() {
    let receiver = Receiver::ok();
    let c = console(router);
    let app = &c.app;
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.txt");
    std::fs::write(&private, "server-only-words").unwrap();
    let with = |field: &str, value: &str| {
        let mut body = endpoint_json("x", &receiver);
        body[field] = json!(value);
        if field == "template_file" {
            body["template_content_type"] = json!("text/plain");
        }
        body
    };
    let private_path = private.to_str().unwrap();
    for (field, value) in [
        ("template_file", private_path),
        ("ca_file", private_path),
        ("secret_env", "PATH"),
    ] {
        let refused = api(
            app,
            Method::POST,
            "/api/v1/endpoints",
            Some(with(field, value)),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        let problem = refused.json();
        assert_eq!(problem["field"], field, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("cannot set") && detail.contains(&format!("leave {field} out")),
            "{detail}"
        );
        assert!(
            !refused.body.contains("server-only-words"),
            "{}",
            refused.body
        );
    }
    assert_eq!(c.sink.endpoints().len(), 0, "nothing was created");

    // An endpoint whose template file the application set: sent back as it is, kept; any
    // other file, refused.
    let template = dir.path().join("crm.json.j2");
    std::fs::write(&template, r#"{"code": {{ ticket.code|tojson }}}"#).unwrap();
    let mut spec = deskhook_transports::delivery::EndpointSpec::new("crm", &receiver.url);
    spec.allow_private = true;
    spec.template_file = Some(template.clone());
    c.sink.endpoints().upsert_spec(&spec).unwrap();
    let mut body = json!({"name": "crm", "url": receiver.url, "allow_private": true,
        "retry": "0s", "template_file": template});
    let kept = api(
        app,
        Method::PUT,
        "/api/v1/endpoints/crm",
        Some(body.clone()),
    )
    .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    body["template_file"] = json!(private_path);
    body["template_content_type"] = json!("text/plain");
    let refused = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(body)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.json()["field"], "template_file");
    let now = c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    assert_eq!(now.template_file.as_deref(), Some(template.as_path()));
    assert_eq!(now.retry.unwrap().to_string(), "0s");

    // Nothing was sent anywhere: no test event, no delivery.
    assert_eq!(receiver.count(), 0);
}

/// An update that leaves out what no request could set again (a template file and its
/// content type) keeps it, as the edit form does; an endpoint the application's code
/// registered is refused, as the form refuses it, rather than stripped of what the settings
/// format cannot say (its tenant here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_update_keeps_the_servers_settings_and_leaves_coded_endpoints_alone() {
    let receiver = Receiver::ok();
    let c = console(router);
    let app = &c.app;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("crm.txt.j2");
    std::fs::write(&template, "ticket {{ ticket.code }}").unwrap();
    let mut spec = deskhook_transports::delivery::EndpointSpec::new("crm", &receiver.url);
    spec.allow_private = true;
    spec.template_file = Some(template.clone());
    spec.template_content_type = Some("text/plain".into());
    c.sink.endpoints().upsert_spec(&spec).unwrap();
    // Only what changes, as a script sends it.
    let changed = api(
        app,
        Method::PUT,
        "/api/v1/endpoints/crm",
        Some(json!({"url": receiver.url, "allow_private": true, "retry": "0s"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let now = c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    assert_eq!(now.retry.unwrap().to_string(), "0s");
    assert_eq!(now.template_file.as_deref(), Some(template.as_path()));
    assert_eq!(now.template_content_type.as_deref(), Some("text/plain"));

    c.sink
        .endpoints()
        .upsert(
            deskhook_transports::delivery::Endpoint::new("coded", &receiver.url)
                .unwrap()
                .allow_private(true)
                .tenant("acme"),
        )
        .unwrap();
    let refused = api(
        app,
        Method::PUT,
        "/api/v1/endpoints/coded",
        Some(json!({"url": receiver.url, "allow_private": true})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("registered by the application's code"),
        "{}",
        refused.body
    );
    let coded = c.sink.endpoints().get("coded").unwrap();
    assert_eq!(coded.tenant.as_deref(), Some("acme"));
    assert!(coded.spec.is_none());
}

/// A PUT that leaves out the tenant or the event types keeps them (dropped, the endpoint
/// would get every tenant's events, or every type), one that moves the URL to another
/// origin does not carry the headers' values, never shown, there, and a GET's settings go
/// back as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_update_keeps_the_tenant_and_carries_no_header_to_another_origin() {
    let (first, second) = (Receiver::ok(), Receiver::ok());
    let c = console(router);
    let app = &c.app;
    let created = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(endpoint_json("crm", &first)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let put = |body: Value| api(app, Method::PUT, "/api/v1/endpoints/crm", Some(body));
    // As shown: the URL cut to its origin.
    let spec = || c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    let redact_url = deskhook_transports::delivery::redact_url;

    let changed = put(json!({"url": first.url, "allow_private": true, "retry": "0s"})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(spec().tenant.as_deref(), Some("acme"));

    for headers in [None, Some(json!({"Authorization": "…"}))] {
        let mut body = json!({"url": second.url, "allow_private": true});
        if let Some(headers) = headers {
            body["headers"] = headers;
        }
        let refused = put(body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
        assert_eq!(refused.json()["field"], "headers", "{}", refused.body);
        assert_eq!(spec().url, redact_url(&first.url), "nothing changed");
    }
    let moved = put(json!({
        "url": second.url, "allow_private": true, "retry": "0s",
        "headers": {"Authorization": "Bearer second-credential"},
    }))
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(spec().url, redact_url(&second.url));
    assert_eq!(spec().tenant.as_deref(), Some("acme"));
    c.sink.endpoints().send_test("crm").unwrap();
    let got = second.wait_for(1);
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer second-credential")
    );
    assert_eq!(first.count(), 0);

    // The settings a GET shows go back as they are (their secret hints are ignored).
    let shown = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    let settings = shown.json()["settings"].clone();
    assert!(settings["secret_hints"].is_array(), "{settings}");
    let same = put(settings).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert_eq!(
        c.sink.endpoints().get("crm").unwrap().secret_hints,
        ["LaSw"]
    );

    let global = put(json!({"url": second.url, "allow_private": true, "tenant": null})).await;
    assert_eq!(global.status, StatusCode::OK, "{}", global.body);
    assert_eq!(spec().tenant, None);

    // So do the event types it takes: a PUT of one other setting does not widen them.
    let narrowed = put(json!({"url": second.url, "allow_private": true, "actions": ["create"]}));
    assert_eq!(narrowed.await.status, StatusCode::OK);
    let other = put(json!({"url": second.url, "allow_private": true, "timeout": "5s"})).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    let actions = |spec: deskhook_transports::delivery::EndpointSpec| {
        spec.actions.map(|a| a.iter().collect::<Vec<_>>())
    };
    assert_eq!(
        actions(spec()),
        Some(vec![deskhook::EventType::from(Action::Create)])
    );
    let every = put(json!({"url": second.url, "allow_private": true, "actions": null})).await;
    assert_eq!(every.status, StatusCode::OK, "{}", every.body);
    assert_eq!(actions(spec()), None);
}

/// Creates the endpoint `crm` for `receiver` through the API.
async fn create_crm(app: &Router, receiver: &Receiver) {
    let created = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(endpoint_json("crm", receiver)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}

/// The ETag of `crm`, from a GET.
async fn etag_of_crm(app: &Router) -> header::HeaderValue {
    let read = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    read.headers[header::ETAG].clone()
}

/// The ETag changes with every setting, those no page or response shows included (a
/// header's value, the URL's path): a PUT made from before such a change is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etag_changes_with_settings_the_api_does_not_show() {
    let receiver = Receiver::ok();
    let c = console(router);
    let app = &c.app;
    create_crm(app, &receiver).await;
    let etag = || etag_of_crm(app);
    let first = etag().await;
    let put = |body: Value, if_match: Option<header::HeaderValue>| {
        let mut request =
            Request::put("/api/v1/endpoints/crm").header(header::CONTENT_TYPE, "application/json");
        if let Some(if_match) = if_match {
            request = request.header(header::IF_MATCH, if_match);
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    let mut body = endpoint_json("crm", &receiver);
    body["headers"] = json!({"Authorization": "Bearer new-credential"});
    assert_eq!(
        send(app, put(body.clone(), None)).await.status,
        StatusCode::OK
    );
    let second = etag().await;
    assert_ne!(first, second, "a header's value changed");
    let mut stale = endpoint_json("crm", &receiver);
    stale["headers"] = json!({"Authorization": "Bearer old-credential"});
    let refused = send(app, put(stale, Some(first))).await;
    assert_eq!(
        refused.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        refused.body
    );

    body["url"] = json!(format!("{}/elsewhere", receiver.url));
    assert_eq!(send(app, put(body, None)).await.status, StatusCode::OK);
    assert_ne!(second, etag().await, "the URL's path changed");
}

/// A PUT keeps the secrets and the headers it leaves out (never shown, they could not be
/// sent back), and takes them away with `null`, as a PATCH does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_keeps_the_secrets_and_headers_it_leaves_out_and_null_takes_them_away() {
    let receiver = Receiver::ok();
    let c = console(router);
    let app = &c.app;
    create_crm(app, &receiver).await;
    let put = |body: Value| api(app, Method::PUT, "/api/v1/endpoints/crm", Some(body));
    let now = || c.sink.endpoints().get("crm").unwrap();
    let mut body = endpoint_json("crm", &receiver);
    body.as_object_mut().unwrap().remove("secrets");
    body.as_object_mut().unwrap().remove("headers");
    let kept = put(body.clone()).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(now().secret_hints, ["LaSw"]);
    assert_eq!(now().headers, ["Authorization"]);
    body["secrets"] = Value::Null;
    body["headers"] = Value::Null;
    let taken = put(body).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    assert!(now().secret_hints.is_empty(), "{:?}", now().secret_hints);
    assert!(now().headers.is_empty(), "{:?}", now().headers);
}

/// A PATCH changes the settings it names and keeps the others (a merge patch of a GET's
/// settings): the secrets, the headers' values and the whole URL stay without being sent;
/// `null` takes a setting away; a header's value does not follow the URL to another
/// origin; a change made on an older version is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_changes_what_it_names_and_keeps_the_rest() {
    let (first, second) = (Receiver::ok(), Receiver::ok());
    let c = console(router);
    let app = &c.app;
    let mut body = endpoint_json("crm", &first);
    body["actions"] = json!(["create"]);
    body["rate_limit"] = json!("5/s");
    let created = api(app, Method::POST, "/api/v1/endpoints", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let patch = |body: Value| api(app, Method::PATCH, "/api/v1/endpoints/crm", Some(body));
    let redact_url = deskhook_transports::delivery::redact_url;
    let spec = || c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;

    let patched = patch(json!({"timeout": "5s"})).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let now = spec();
    assert_eq!(now.timeout, Some(Duration::from_secs(5)));
    // Kept as a PUT of the origin shown keeps it: requests still go to the whole URL.
    assert_eq!(now.url, redact_url(&first.url));
    assert_eq!(now.tenant.as_deref(), Some("acme"));
    assert_eq!(
        now.rate_limit.map(|r| r.to_string()).as_deref(),
        Some("5/s")
    );
    assert_eq!(
        now.actions.map(|a| a.iter().collect::<Vec<_>>()),
        Some(vec![deskhook::EventType::from(Action::Create)])
    );
    assert_eq!(
        c.sink.endpoints().get("crm").unwrap().secret_hints,
        ["LaSw"]
    );
    c.sink.endpoints().send_test("crm").unwrap();
    let got = first.wait_for(1);
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer tenant-credential")
    );
    assert!(got[0].header("webhook-signature").is_some());

    // To another origin, the headers must come again: their values stay behind.
    let moved = patch(json!({"url": second.url})).await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST, "{}", moved.body);
    assert_eq!(moved.json()["field"], "headers", "{}", moved.body);
    assert_eq!(spec().url, redact_url(&first.url), "nothing changed");

    let taken = patch(json!({"rate_limit": null, "tenant": null, "secrets": null})).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    let now = spec();
    assert_eq!((now.rate_limit, now.tenant), (None, None));
    assert!(
        c.sink
            .endpoints()
            .get("crm")
            .unwrap()
            .secret_hints
            .is_empty()
    );
    assert_eq!(now.timeout, Some(Duration::from_secs(5)), "kept");

    // On an older version (If-Match), refused; a body that is not an object, refused.
    let request = Request::builder()
        .method(Method::PATCH)
        .uri("/api/v1/endpoints/crm")
        .header(header::CONTENT_TYPE, "application/merge-patch+json")
        .header(header::IF_MATCH, "\"0000000000000000\"")
        .body(Body::from(r#"{"retry": "0s,1s"}"#))
        .unwrap();
    assert_eq!(
        send(app, request).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    let listed = patch(json!(["timeout"])).await;
    assert_eq!(listed.status, StatusCode::BAD_REQUEST, "{}", listed.body);
    let missing = api(
        app,
        Method::PATCH,
        "/api/v1/endpoints/nope",
        Some(json!({})),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
}

/// A DELETE, a pause, a resume and a rotation with `If-Match` act only on the version it
/// names: on an older one, 412 and nothing done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_with_if_match_act_only_on_that_version() {
    let receiver = Receiver::ok();
    let c = console(router);
    let app = &c.app;
    create_crm(app, &receiver).await;
    let etag = || etag_of_crm(app);
    let old = etag().await;
    let mut changed = endpoint_json("crm", &receiver);
    changed["retry"] = json!("0s,1s");
    let put = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(changed)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let now = etag().await;
    let act = |method: Method, path: &'static str, tag: header::HeaderValue| {
        let body = match path {
            "/api/v1/endpoints/crm/rotate-secret" => json!({"secret": SECRET}).to_string(),
            _ => String::new(),
        };
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, tag)
            .body(Body::from(body))
            .unwrap()
    };
    for (method, path) in [
        (Method::POST, "/api/v1/endpoints/crm/pause"),
        (Method::POST, "/api/v1/endpoints/crm/resume"),
        (Method::POST, "/api/v1/endpoints/crm/rotate-secret"),
        (Method::DELETE, "/api/v1/endpoints/crm"),
    ] {
        let refused = send(app, act(method.clone(), path, old.clone())).await;
        assert_eq!(
            refused.status,
            StatusCode::PRECONDITION_FAILED,
            "{path}: {}",
            refused.body
        );
        assert!(
            refused.body.contains("nothing was done"),
            "{}",
            refused.body
        );
        assert_eq!(etag().await, now, "{path}: nothing done");
    }
    let paused = send(
        app,
        act(Method::POST, "/api/v1/endpoints/crm/pause", now.clone()),
    )
    .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert_eq!(paused.json()["state"], "paused");
    // A rotation answers with the new version: the secrets' hints changed.
    let before = etag().await;
    let rotated = send(
        app,
        act(
            Method::POST,
            "/api/v1/endpoints/crm/rotate-secret",
            before.clone(),
        ),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let now = etag().await;
    assert_eq!(rotated.headers[header::ETAG], now);
    let deleted = send(app, act(Method::DELETE, "/api/v1/endpoints/crm", now)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert!(c.sink.endpoints().is_empty());
}
