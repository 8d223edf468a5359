//! The admin API's endpoints: created, changed, listed in pages and removed, every bad field
//! named. What an update keeps and refuses is in `updates.rs`; dead letters and the limits
//! on a request's body in `api_letters.rs`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_creates_changes_and_removes_endpoints_and_names_bad_fields() {
    let receiver = Receiver::ok();
    let c = console(router);
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
    // A short secret is said to be short, as deskhook.toml says it, and not repeated.
    let short = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(json!({"name": "x", "url": "http://127.0.0.1/",
                    "secrets": [SECRET, {"secret": "whsec_c2hvcnQgc2VjcmV0"}]})),
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    assert_eq!(short.json()["field"], "secrets");
    let detail = short.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.starts_with("secrets (number 2 of 2): secret is 12 bytes; it must be 24 to 64"),
        "{detail}"
    );
    assert!(!short.body.contains("c2hvcnQ"), "{}", short.body);
    // A misspelt field gets the "did you mean" deskhook.toml gives.
    let misspelt = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(json!({"name": "x", "url": "http://127.0.0.1/", "retyr": "5s"})),
    )
    .await;
    assert_eq!(misspelt.json()["field"], "retyr");
    let detail = misspelt.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.ends_with("(did you mean `retry`?)"), "{detail}");
    // A credential of the wrong type is not repeated (serde quotes such a value).
    for (body, field) in [
        (
            json!({"name": "x", "url": "http://127.0.0.1/", "secrets": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
            "secrets",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1/", "headers": "MfKQ9r8GKYqrTwjUPD8ILPZ"}),
            "headers",
        ),
    ] {
        let refused = api(app, Method::POST, "/api/v1/endpoints", Some(body.clone())).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        let problem = refused.json();
        assert_eq!(problem["field"], field, "{problem}");
        assert!(!refused.body.contains("MfKQ9r8G"), "{}", refused.body);
        assert!(refused.body.contains("expected"), "{}", refused.body);
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
    // What axum itself refuses (a path that is not UTF-8, a method the route does not take)
    // is a problem document too, its Allow header kept.
    let bad_path = api(app, Method::GET, "/api/v1/endpoints/%FF", None).await;
    let wrong_method = api(app, Method::DELETE, "/api/v1/stats", Some(json!({}))).await;
    for (reply, status) in [
        (&bad_path, StatusCode::BAD_REQUEST),
        (&wrong_method, StatusCode::METHOD_NOT_ALLOWED),
    ] {
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(
            reply.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            reply.body
        );
        assert!(
            reply.json()["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    assert!(wrong_method.headers.contains_key(header::ALLOW));

    // A PUT made on an older version (If-Match, the ETag of a GET) is refused, not saved
    // over a change made since.
    let read = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    let etag = read.headers[header::ETAG].to_str().unwrap().to_owned();
    let put_if = |etag: header::HeaderValue, retry: &'static str| {
        Request::put("/api/v1/endpoints/crm")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, etag)
            .body(Body::from(
                json!({"url": receiver.url, "allow_private": true, "retry": retry, "tenant": "acme"})
                    .to_string(),
            ))
            .unwrap()
    };
    // An If-Match that is not text is refused, not dropped (saving unconditionally).
    let garbled = header::HeaderValue::from_bytes(b"\"\xff\"").unwrap();
    let garbled = send(app, put_if(garbled, "0s,5ms")).await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST, "{}", garbled.body);
    assert_eq!(garbled.json()["field"], "If-Match");
    let etag = header::HeaderValue::from_str(&etag).unwrap();
    let first = send(app, put_if(etag.clone(), "0s,2ms")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let stale = send(app, put_if(etag, "0s,3ms")).await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert_eq!(
        c.sink.endpoints().get("crm").unwrap().retry.to_string(),
        "0s,2ms"
    );
    // The answer's ETag is the new version's, for the next change. If-Match is a list,
    // compared strongly (RFC 9110): one current tag in it is enough, a weak one is none.
    let now = first.headers[header::ETAG].clone();
    let read = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(read.headers[header::ETAG], now);
    let weak = format!("W/{}", now.to_str().unwrap());
    let weak = send(
        app,
        put_if(header::HeaderValue::from_str(&weak).unwrap(), "0s,3ms"),
    )
    .await;
    assert_eq!(
        weak.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        weak.body
    );
    let listed = format!("\"0000000000000000\", {}", now.to_str().unwrap());
    let listed = send(
        app,
        put_if(header::HeaderValue::from_str(&listed).unwrap(), "0s,3ms"),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_ne!(listed.headers[header::ETAG], now, "a new version");
    // With If-Match, an endpoint that does not exist is 412 (no version of it matches).
    let gone = Request::put("/api/v1/endpoints/nope")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "*")
        .body(Body::from(json!({"url": receiver.url}).to_string()))
        .unwrap();
    let gone = send(app, gone).await;
    assert_eq!(
        gone.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        gone.body
    );
    assert!(
        gone.body.contains("POST /api/v1/endpoints"),
        "{}",
        gone.body
    );

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
    // What the API reads, as a client generator would type it: a PUT may leave out the name,
    // a secret may be its text, and actions may be one text ("*").
    let schemas = &doc["components"]["schemas"];
    let required = |schema: &str| schemas[schema]["required"].as_array().unwrap().clone();
    assert!(required("EndpointSpec").contains(&json!("name")));
    assert!(!required("EndpointUpdate").contains(&json!("name")));
    assert!(required("EndpointUpdate").contains(&json!("url")));
    assert_eq!(
        doc["paths"]["/endpoints/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/EndpointUpdate"
    );
    let secret = &schemas["EndpointSpec"]["properties"]["secrets"]["items"]["oneOf"];
    assert_eq!(secret[0]["type"], "string", "{secret}");
    assert_eq!(secret[1]["required"], json!(["secret"]), "{secret}");
    let actions = &schemas["EndpointSpec"]["properties"]["actions"]["oneOf"];
    assert_eq!(
        (actions[0]["type"].clone(), actions[1]["type"].clone()),
        (json!("array"), json!("string")),
        "{actions}"
    );
    // A rotation without its secret is refused: the document says it is required.
    assert_eq!(
        doc["components"]["schemas"]["Rotation"]["required"],
        json!(["secret"]),
        "{}",
        doc["components"]["schemas"]["Rotation"]
    );
    // The guard's answers and the token are part of the contract too.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{}",
        doc["components"]
    );
    assert_eq!(doc["security"], json!([{}, {"bearer": []}]));
    let answers = |path: &str, method: &str| -> Vec<String> {
        let mut codes: Vec<String> = doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        codes.sort();
        codes
    };
    let has = |codes: &[String], code: &str| codes.iter().any(|c| c == code);
    let read = answers("/stats", "get");
    assert!(has(&read, "401") && !has(&read, "415"), "{read:?}");
    let change = answers("/endpoints/{name}", "put");
    for method in ["put", "patch"] {
        let codes = answers("/endpoints/{name}", method);
        for code in ["200", "401", "403", "415", "409", "412"] {
            assert!(
                has(&codes, code),
                "{method} /endpoints/{{name}} lacks {code}: {codes:?}"
            );
        }
    }
    // Only the test event goes to a spool that may be full.
    assert!(!has(&change, "503"), "{change:?}");
    let test = answers("/endpoints/{name}/test", "post");
    assert!(has(&test, "503") && has(&test, "415"), "{test:?}");
    // Every error answer is a problem document, as the API sends it.
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for (code, answer) in operation["responses"].as_object().unwrap() {
                let Some(content) = answer["content"].as_object() else {
                    continue;
                };
                let types: Vec<&String> = content.keys().collect();
                if code.starts_with('4') || code.starts_with('5') {
                    assert_eq!(
                        types,
                        ["application/problem+json"],
                        "{method} {path}: {code}"
                    );
                }
            }
        }
    }
    // Every operation declares the parameters its path has (client generators refuse a
    // document without them).
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let placeholders: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        for (method, operation) in operations.as_object().unwrap() {
            for name in &placeholders {
                let declared = operation["parameters"].as_array().is_some_and(|params| {
                    params
                        .iter()
                        .any(|p| p["name"] == *name && p["in"] == "path")
                });
                assert!(declared, "{method} {path} does not declare '{name}'");
            }
        }
    }
}

/// The fields named by a problem's `errors`, sorted.
fn fields_of(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    fields.sort();
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_names_every_bad_field_of_a_request_at_once() {
    let receiver = Receiver::ok();
    let c = console(router);
    let app = &c.app;
    // Fields that do not read (a duration, an event type) and settings that cannot work
    // (a URL without its scheme, a burst without a rate, a schedule that waits first).
    let refused = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(
            json!({"name": "crm", "url": "hooks.example.com/x", "timeout": "fast",
            "actions": ["creat"], "rate_burst": 5, "retry": "5s"}),
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let problem = refused.json();
    assert_eq!(
        fields_of(&problem),
        ["actions", "rate_burst", "retry", "timeout", "url"]
    );
    assert_eq!(problem["field"], problem["errors"][0]["field"], "{problem}");
    assert_eq!(
        problem["detail"], problem["errors"][0]["detail"],
        "{problem}"
    );
    let missing = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "nothing was created");
    // A rate that does not read: the burst that goes with it is not judged.
    let refused = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(
            json!({"name": "crm", "url": receiver.url, "allow_private": true,
            "rate_limit": 50, "rate_burst": 5}),
        ),
    )
    .await;
    let problem = refused.json();
    assert_eq!(problem["field"], "rate_limit", "{problem}");
    assert!(problem.get("errors").is_none(), "{problem}");

    // A request of many unknown fields is read a bounded number of times.
    let mut many = json!({"name": "crm", "url": receiver.url, "allow_private": true});
    for n in 0..200 {
        many[format!("colour{n:03}")] = json!("red");
    }
    let refused = api(app, Method::POST, "/api/v1/endpoints", Some(many)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let told = refused.json()["errors"].as_array().unwrap().len();
    assert!((2..=33).contains(&told), "{told} problems told");
    // A name that does not read: the other problems say so rather than name a stand-in.
    let refused = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(json!({"name": 5, "url": receiver.url, "allow_private": true, "timeout": "0s"})),
    )
    .await;
    assert_eq!(fields_of(&refused.json()), ["name", "timeout"]);
    assert!(
        refused.body.contains("endpoint '(unnamed)'"),
        "{}",
        refused.body
    );

    // An update's settings are checked by its save, every one at once too.
    let created = api(
        app,
        Method::POST,
        "/api/v1/endpoints",
        Some(endpoint_json("crm", &receiver)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let mut changed = endpoint_json("crm", &receiver);
    changed["url"] = json!("hooks.example.com/x");
    changed["retry"] = json!("5s");
    changed["max_in_flight"] = json!(0);
    let refused = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(changed)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        fields_of(&refused.json()),
        ["max_in_flight", "retry", "url"]
    );
    let kept = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(kept.json()["settings"]["retry"], "0s", "nothing was saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_list_in_pages_with_a_cursor() {
    let receiver = Receiver::ok();
    let c = console(router);
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
    // A misspelt filter is refused, not ignored (it would list everything, or nothing).
    for (path, field, says) in [
        (
            "/api/v1/endpoints?tenat=acme",
            "tenat",
            "unknown query parameter 'tenat' (did you mean 'tenant'?); this list takes \
             search, tenant, state, after, limit",
        ),
        (
            "/api/v1/attempts?endpoints=crm",
            "endpoints",
            "unknown query parameter 'endpoints' (did you mean 'endpoint'?)",
        ),
        (
            "/api/v1/dead-letters?foo=",
            "foo",
            "unknown query parameter 'foo'; this list takes endpoint, tenant,",
        ),
        // So is a filter given twice (one value would be ignored) and a time window with no
        // time in it (the list would be empty, for no reason it says).
        (
            "/api/v1/endpoints?tenant=acme&tenant=other",
            "tenant",
            "query parameter 'tenant' is given more than once",
        ),
        (
            "/api/v1/attempts?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "until",
            "until (2026-12-01T00:00:00Z) is not after since (2026-12-02T00:00:00Z)",
        ),
    ] {
        let refused = api(&c.app, Method::GET, path, None).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.json()["field"], field, "{path}");
        let detail = refused.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.starts_with(says), "{path}: {detail}");
    }
    let stats = api(&c.app, Method::GET, "/api/v1/stats", None).await.json();
    assert_eq!(stats["endpoints"], 7);
    assert_eq!(stats["states"]["active"], 7);
    assert_eq!(stats["unrouted"], 0, "{stats}");
}
