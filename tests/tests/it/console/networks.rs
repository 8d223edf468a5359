//! A console not allowed to open endpoints to the server's own networks refuses a request
//! that would, from the API and from the forms alike; what the configuration opened stays
//! open through an edit, and may be narrowed, but not pointed at another URL.

use super::*;
use deskhook_transports::delivery::{EndpointSpec, redact_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_opens_no_endpoint_to_the_servers_networks_unless_allowed() {
    let receiver = Receiver::ok();
    let c = console(deskhook_console::router);
    let app = &c.app;

    for (body, field) in [
        (
            json!({"name": "crm", "url": receiver.url, "allow_private": true}),
            "allow_private",
        ),
        (
            json!({"name": "crm", "url": receiver.url, "allow_cidrs": ["127.0.0.0/8"]}),
            "allow_cidrs",
        ),
    ] {
        let refused = api(app, Method::POST, "/api/v1/endpoints", Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        let problem = refused.json();
        assert_eq!(problem["field"], field);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("--console-allow-private"), "{detail}");
    }
    let token = FORM_TOKEN;
    let created = send(
        app,
        form(
            "/endpoints",
            token,
            &[
                ("name", "crm"),
                ("url", &receiver.url),
                ("allow_private", "on"),
            ],
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::BAD_REQUEST, "{}", created.body);
    assert!(
        created.body.contains("allow_private = true would open"),
        "{}",
        created.body
    );
    let missing = api(app, Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "nothing was created");

    // Opened by the configuration: an edit keeps it, another CIDR is refused, and turning
    // it off is any request's to make.
    // By name: the guard checks a name's addresses when it connects, so that an endpoint
    // no longer allowed private addresses can still be saved with it.
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let own_url = format!("{by_name}/crm");
    let mut spec = EndpointSpec::new("crm", &own_url);
    spec.allow_private = true;
    spec.allow_cidrs = vec!["10.20.0.0/16".to_owned()];
    c.sink.endpoints().upsert_spec(&spec).unwrap();
    let settings = api(app, Method::GET, "/api/v1/endpoints/crm", None)
        .await
        .json()["settings"]
        .clone();
    let mut kept = settings.clone();
    kept["retry"] = json!("0s,1s");
    let put = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(kept)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    // Its URL shown cut to its origin, or given whole, is the same URL.
    assert_eq!(settings["url"], redact_url(&own_url));
    let mut whole = settings.clone();
    whole["url"] = json!(own_url);
    let put = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(whole)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut wider = settings.clone();
    wider["allow_cidrs"] = json!(["10.20.0.0/16", "127.0.0.0/8"]);
    let refused = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(wider)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.json()["field"], "allow_cidrs");
    // Nor may the allowance, given for one receiver, be pointed at another.
    let mut moved = settings.clone();
    moved["url"] = json!("http://localhost:2375/containers/json");
    let refused = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(moved)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.json()["field"], "url");
    // A CIDR inside the one configured narrows it; left out, both settings stay.
    let mut inside = settings.clone();
    inside["allow_cidrs"] = json!(["10.20.1.0/24"]);
    let put = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(inside)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut left_out = settings.clone();
    let map = left_out.as_object_mut().unwrap();
    map.remove("allow_private");
    map.remove("allow_cidrs");
    let put = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(left_out)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let now = c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    assert!(now.allow_private, "{now:?}");
    assert_eq!(now.allow_cidrs, ["10.20.1.0/24"]);
    // Turned off in the same request, the URL may change.
    let mut narrower = settings;
    narrower["allow_private"] = json!(false);
    narrower["allow_cidrs"] = json!([]);
    narrower["url"] = json!(format!("{by_name}moved"));
    let put = api(app, Method::PUT, "/api/v1/endpoints/crm", Some(narrower)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let now = c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    assert!(!now.allow_private && now.allow_cidrs.is_empty(), "{now:?}");
    // Turned off, it cannot be turned on again from here.
    let reopened = send(
        app,
        form(
            "/endpoints/crm/edit",
            token,
            &[("url", &by_name), ("allow_private", "on")],
        ),
    )
    .await;
    assert_eq!(
        reopened.status,
        StatusCode::BAD_REQUEST,
        "{}",
        reopened.body
    );
    assert!(
        reopened.body.contains("allow_private = true would open"),
        "{}",
        reopened.body
    );
    let now = c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    assert!(!now.allow_private, "{now:?}");
    assert_eq!(
        receiver.count(),
        0,
        "nothing was sent to the server's network"
    );
}
