//! The endpoint forms: create, edit, rotate, refuse with the field named, pick a payload;
//! an endpoint whose name is a path of the console.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_forms_create_edit_rotate_and_refuse_with_the_field_named() {
    let receiver = Receiver::ok();
    let c = console(router);
    let page = send(
        &c.app,
        Request::get("/new-endpoint").body(Body::empty()).unwrap(),
    )
    .await;
    let token = page.cookie_value();

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
    // Nor the URL's path (paths carry tokens): its origin, which saved as it is keeps the URL.
    let shown = deskhook_transports::delivery::redact_url(&receiver.url);
    assert!(
        edit.body.contains(&format!("value=\"{shown}\"")) && !edit.body.contains(&receiver.url),
        "{}",
        edit.body
    );
    let saved = send(
        &c.app,
        form(
            "/endpoints/crm/edit",
            &token,
            &[
                ("url", &shown),
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
    // A form opened before that change (its hidden version) is refused, not saved over it.
    let old_version = edit
        .body
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let stale = send(
        &c.app,
        form(
            "/endpoints/crm/edit",
            &token,
            &[
                ("url", &shown),
                ("retry", "0s,5ms"),
                ("allow_private", "on"),
                ("version", &old_version),
            ],
        ),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale
            .body
            .contains("was changed since this form was opened (by someone else"),
        "{}",
        stale.body
    );
    assert_eq!(
        c.sink.endpoints().get("crm").unwrap().retry.to_string(),
        "0s,1ms"
    );

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
    assert_eq!(got[0].path, "/hook", "the URL kept its path");
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .matches("v1,")
            .count(),
        2
    );
    // A test event for a paused endpoint is queued, and the page says so.
    send(&c.app, form("/endpoints/crm/pause", &token, &[])).await;
    let queued = send(&c.app, form("/endpoints/crm/test", &token, &[])).await;
    assert_eq!(
        queued.headers[header::LOCATION],
        "/endpoints/crm?done=tested_paused"
    );
    let deleted = send(&c.app, form("/endpoints/crm/delete", &token, &[])).await;
    assert_eq!(deleted.headers[header::LOCATION], "/?done=deleted");
    assert!(c.sink.endpoints().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_form_picks_a_payload_preset_with_its_variables() {
    let receiver = Receiver::ok();
    let c = console(router);
    let token = FORM_TOKEN;
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
        form("/endpoints", token, &fields("chat_id=-100123\r\nlang=ru")),
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
    assert!(
        edit.body.contains(">chat_id=-100123\nlang=ru<"),
        "one per line: {}",
        edit.body
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edit_form_keeps_what_it_cannot_show_and_leaves_code_endpoints_alone() {
    let receiver = Receiver::ok();
    let c = console(router);
    // `form` sends the token as its cookie and its field, as a browser would.
    let token = FORM_TOKEN;
    // Settings from a file (deskhook.toml, the API) that the form has no field for.
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("crm.json.j2");
    std::fs::write(&template, r#"{"code": {{ ticket.code|tojson }}}"#).unwrap();
    let mut spec = deskhook_transports::delivery::EndpointSpec::new("crm", &receiver.url);
    spec.allow_private = true;
    spec.template_file = Some(template.clone());
    c.sink.endpoints().upsert_spec(&spec).unwrap();
    // The form says where its template comes from, though it cannot show it.
    let page = page(&c.app, "/endpoints/crm/edit").await;
    assert!(
        page.body
            .contains("Its template is read from the file <code>")
            && page.body.contains("crm.json.j2"),
        "{}",
        page.body
    );
    let shown = deskhook_transports::delivery::redact_url(&receiver.url);
    let saved = send(
        &c.app,
        form(
            "/endpoints/crm/edit",
            token,
            &[("url", &shown), ("retry", "0s"), ("allow_private", "on")],
        ),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let kept = c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;
    assert_eq!(kept.template_file.as_deref(), Some(template.as_path()));
    assert_eq!(kept.retry.unwrap().to_string(), "0s");

    // An endpoint the application registered in code has no settings here to edit: no
    // Edit button, and the form is refused rather than replacing them all.
    let code = deskhook_transports::delivery::Endpoint::new("code", &receiver.url)
        .unwrap()
        .allow_private(true);
    c.sink.endpoints().upsert(code).unwrap();
    let page = send(
        &c.app,
        Request::get("/endpoints/code").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(!page.body.contains("/endpoints/code/edit"), "{}", page.body);
    let refused = send(
        &c.app,
        form("/endpoints/code/edit", token, &[("url", &shown)]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("registered by the application"),
        "{}",
        refused.body
    );
    let info = c.sink.endpoints().get("code").unwrap();
    assert_eq!(info.url, shown);
    assert!(info.spec.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_named_new_has_a_page_beside_the_new_endpoint_form() {
    let receiver = Receiver::ok();
    let c = console(router);
    c.sink
        .endpoints()
        .upsert_spec(&serde_json::from_value(endpoint_json("new", &receiver)).unwrap())
        .unwrap();
    let get = |path: &str| {
        let app = c.app.clone();
        let request = Request::get(path).body(Body::empty()).unwrap();
        async move { send(&app, request).await }
    };
    let list = get("/").await;
    assert!(
        list.body.contains(r#"href="/endpoints/new""#),
        "{}",
        list.body
    );
    let page = get("/endpoints/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("action=\"/endpoints/new/pause\""),
        "{}",
        page.body
    );
    // A form's address typed or bookmarked: a page that says so, not an empty 405.
    let typed = get("/endpoints/new/pause").await;
    assert_eq!(typed.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        typed.body.contains("does not take a GET request") && typed.body.contains("<main>"),
        "{}",
        typed.body
    );
    // The form to add one is outside /endpoints/.
    assert!(
        list.body.contains(r#"href="/new-endpoint""#),
        "{}",
        list.body
    );
    let form = get("/new-endpoint").await;
    assert!(form.body.contains("Add an endpoint"), "{}", form.body);
    // "." and ".." cannot be names: they would mean the folder and its parent in a URL.
    let refused = api(
        &c.app,
        Method::POST,
        "/api/v1/endpoints",
        Some(endpoint_json("..", &receiver)),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["field"], "name", "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_list_refuses_a_state_it_does_not_know_rather_than_ignore_it() {
    let c = console(router);
    let refused = send(
        &c.app,
        Request::get("/?state=brekaer_open")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("state 'brekaer_open' is not one of"),
        "{}",
        refused.body
    );
    let listed = send(
        &c.app,
        Request::get("/?state=breaker_open")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
}

/// The endpoints page's pager keeps the filters, "« First" as "Next »" does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_pager_keeps_its_filters_both_ways() {
    let receiver = Receiver::ok();
    let c = console(router);
    for n in 0..60 {
        let mut spec =
            deskhook_transports::delivery::EndpointSpec::new(format!("ep-{n:02}"), &receiver.url);
        spec.allow_private = true;
        spec.tenant = Some(if n < 55 { "acme" } else { "globex" }.to_owned());
        c.sink.endpoints().upsert_spec(&spec).unwrap();
    }
    let first = page(&c.app, "/?tenant=acme").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        !first.body.contains("« First"),
        "no first link on the first page"
    );
    let next = first
        .body
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/?after="))
        .expect("a link to the next page")
        .replace("&amp;", "&");
    assert!(next.ends_with("&tenant=acme"), "{next}");
    let second = page(&c.app, &next).await;
    assert!(second.body.contains("ep-54"), "{}", second.body);
    assert!(
        !second.body.contains("ep-55"),
        "another tenant's: {}",
        second.body
    );
    assert!(
        second
            .body
            .contains("<a href=\"/?tenant=acme\">« First</a>"),
        "{}",
        second.body
    );
}

/// An edit keeps the content type of a template of one's own while it stays one's own, and
/// its largest output while there is a template, drops them with the template, and gives
/// template variables back as they were, commas and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_keeps_a_templates_content_type_and_variables_with_commas() {
    let receiver = Receiver::ok();
    let c = console(router);
    let token = FORM_TOKEN;
    let mut spec = deskhook_transports::delivery::EndpointSpec::new("crm", &receiver.url);
    spec.allow_private = true;
    spec.template = Some("Ticket {{ ticket.code }}".to_owned());
    spec.template_content_type = Some("text/plain".to_owned());
    spec.template_max_output = Some(1 << 20);
    spec.template_vars = Some(
        [("greeting", "Hi, team"), ("lang", "ru")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    c.sink.endpoints().upsert_spec(&spec).unwrap();
    let shown = deskhook_transports::delivery::redact_url(&receiver.url);
    let saved_spec = || c.sink.endpoints().get("crm").unwrap().spec.unwrap().spec;

    // A variable may be a credential: shown as "…" unless it is one the presets read.
    let page = page(&c.app, "/endpoints/crm/edit").await;
    assert!(page.body.contains(">greeting=…\nlang=ru<"), "{}", page.body);
    let edit = |template_preset: &'static str, template: &'static str, vars: &'static str| {
        form(
            "/endpoints/crm/edit",
            token,
            &[
                ("url", shown.as_str()),
                ("allow_private", "on"),
                ("template_preset", template_preset),
                ("template", template),
                ("template_vars", vars),
            ],
        )
    };
    // The text edited, the variables sent back as shown: refused, as a new template could
    // test a hidden value; given again, saved, still text/plain.
    let template = "{{ vars.greeting }}: {{ event.ticket.code }}";
    let refused = send(&c.app, edit("custom", template, "greeting=…\nlang=ru")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("not carried to another template"),
        "{}",
        refused.body
    );
    let saved = send(
        &c.app,
        edit("custom", template, "greeting=Hi, team\nlang=ru"),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let now = saved_spec();
    assert_eq!(now.template.as_deref(), Some(template));
    assert_eq!(now.template_content_type.as_deref(), Some("text/plain"));
    assert_eq!(now.template_max_output, Some(1 << 20));
    let greeting = |n: usize| {
        c.sink.endpoints().send_test("crm").unwrap();
        let got = receiver.wait_for(n);
        String::from_utf8(got[n - 1].body.clone()).unwrap()
    };
    assert!(greeting(1).starts_with("Hi, team: "));
    // The same template, the variables sent back as shown: the hidden one keeps its value
    // (as a test event shows).
    let saved = send(&c.app, edit("custom", template, "greeting=…\nlang=ru")).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(greeting(2).starts_with("Hi, team: "));
    // A value with commas is taken whole.
    let saved = send(&c.app, edit("custom", template, "greeting=Hello, all")).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(greeting(3).starts_with("Hello, all: "));
    // No template any more: the content type and the largest output go with it, and the
    // save is not refused.
    let saved = send(&c.app, edit("", "", "")).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let now = saved_spec();
    assert_eq!((now.template, now.template_content_type), (None, None));
    assert_eq!(now.template_max_output, None);
    // A preset with a content type of the configuration's keeps it while it stays.
    let mut slack = saved_spec();
    slack.url.clone_from(&receiver.url);
    slack.template = Some("slack".to_owned());
    slack.template_content_type = Some("application/json; charset=utf-8".to_owned());
    c.sink.endpoints().upsert_spec(&slack).unwrap();
    let saved = send(&c.app, edit("slack", "", "")).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        saved_spec().template_content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_form_neither_repeats_a_credential_nor_drops_a_template() {
    let receiver = Receiver::ok();
    let c = console(router);
    let token = FORM_TOKEN;
    let base = [
        ("name", "crm"),
        ("url", receiver.url.as_str()),
        ("retry", "0s"),
        ("allow_private", "on"),
    ];
    let post = |extra: &'static [(&'static str, &'static str)]| {
        let fields: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
        form("/endpoints", token, &fields)
    };
    // A header or a variable without its separator: the line is named by its number, its
    // text (a token) is not in the page.
    for (field, extra) in [
        (
            "headers",
            &[("headers", "X-Id: 1\nAuthorization Bearer s3cr3t-value")][..],
        ),
        (
            "template_vars",
            &[
                ("template_preset", "telegram"),
                ("template_vars", "chat_id=1\nbot_token s3cr3t-value"),
            ][..],
        ),
    ] {
        let refused = send(&c.app, post(extra)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{field}");
        let alert = refused
            .body
            .split("role=\"alert\">")
            .nth(1)
            .and_then(|rest| rest.split("</p>").next())
            .unwrap_or_else(|| panic!("{field}: no alert in {}", refused.body));
        assert!(alert.contains(" 2 has no "), "{field}: {alert}");
        assert!(!alert.contains("s3cr3t-value"), "{field}: {alert}");
    }
    // The headers box is never filled back in.
    let refused = send(
        &c.app,
        post(&[("headers", "Authorization Bearer s3cr3t-value")]),
    )
    .await;
    assert!(!refused.body.contains("s3cr3t-value"), "{}", refused.body);
    // Refused for another field, a secret and headers typed are asked for again (they are
    // not shown back, and a save without them would make an endpoint that sends neither).
    let refused = send(
        &c.app,
        post(&[
            ("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("headers", "Authorization: Bearer s3cr3t-value"),
            ("timeout", "5x"),
        ]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    for asked in ["Type the secret again", "Type the headers again"] {
        assert!(refused.body.contains(asked), "{asked}: {}", refused.body);
    }
    assert!(!refused.body.contains("s3cr3t-value") && !refused.body.contains("MfKQ9r8G"));
    // A form without this browser's token (its cookie gone with a restart): refused, and,
    // from a page of this origin, shown again with what was typed, under the token the
    // browser has now.
    let foreign = || {
        let mut foreign = post(&[("tenant", "acme")]);
        foreign.headers_mut().insert(
            axum::http::header::COOKIE,
            "deskhook_csrf=another-browser".parse().unwrap(),
        );
        foreign
    };
    let refused = send(&c.app, foreign()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        !refused.body.contains(r#"value="acme""#),
        "not said to come from this origin: a bare refusal"
    );
    let mut same_origin = foreign();
    same_origin
        .headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    let refused = send(&c.app, same_origin).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .body
            .contains("check the values below and save again")
            && refused.body.contains(r#"value="acme""#)
            && refused.body.contains(r#"name="csrf" value=""#)
            && !refused.body.contains(&format!(r#"value="{FORM_TOKEN}""#)),
        "{}",
        refused.body
    );
    // A template written under "The event's JSON": refused, not silently dropped.
    let refused = send(
        &c.app,
        post(&[
            ("template_preset", ""),
            ("template", r#"{"text": "{{ subject }}"}"#),
        ]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("A template of my own"),
        "{}",
        refused.body
    );
    assert!(c.sink.endpoints().is_empty());
}
