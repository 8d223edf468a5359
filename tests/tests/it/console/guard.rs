//! What an attacker's page or a tenant's hostile name must not do: cross-site requests,
//! escaping, nesting under a prefix, and the token.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_forms_without_the_token_change_nothing() {
    let receiver = Receiver::ok();
    let c = console(router);
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
    // Lax: a link followed from another site (a mail, a chat) brings the cookie along, so
    // no new token is set that would fail the forms of the console's other open tabs. A
    // cross-site POST still comes without it, and the Origin check stays.
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
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
            .contains("1 attempt to 1 endpoint; 1 dead letter"),
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
    // A path it has nothing at is a page of the console, with its links under the mount.
    let typo = send(
        &c.app,
        Request::get("/admin/hooks/endpoint")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(typo.status, StatusCode::NOT_FOUND);
    assert!(
        typo.body.contains("no page at this address")
            && typo.body.contains("href=\"/admin/hooks/dead-letters\""),
        "{}",
        typo.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_token_lets_nobody_in_and_spaces_around_one_do_not_count() {
    let stats = |token: &str| {
        Request::get("/api/v1/stats")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    // An unset variable read as "": the console is shut, not open.
    for token in ["", "  "] {
        let blank = console(|sink| Console::new(sink).require_token(token).router());
        for given in ["", "  "] {
            let refused = send(&blank.app, stats(given)).await;
            assert_eq!(
                refused.status,
                StatusCode::UNAUTHORIZED,
                "{token:?}, {given:?}"
            );
        }
    }
    let padded = console(|sink| Console::new(sink).require_token(" s3cret-token\n").router());
    assert_eq!(
        send(&padded.app, stats("s3cret-token")).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_shows_in_debug_output() {
    let c = console(|sink| {
        let console = Console::new(sink).require_token("s3cret-token");
        let shown = format!("{console:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("token: Some(\"<set>\")"), "{shown}");
        let router = console.router();
        let shown = format!("{router:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        router
    });
    let stats = api(&c.app, Method::GET, "/api/v1/stats", None).await;
    assert_eq!(stats.status, StatusCode::UNAUTHORIZED);
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
    // What the API answers is not kept by caches, nor sniffed as another type.
    assert_eq!(bearer.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(bearer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // The stylesheet and the script come without the token; nothing else under /assets/.
    for (path, status) in [
        ("/assets/console.css", StatusCode::OK),
        ("/assets/console.js", StatusCode::OK),
        ("/assets/elsewhere", StatusCode::SEE_OTHER),
    ] {
        let got = send(&c.app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(got.status, status, "{path}");
    }
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
    // A page is framed by no one, whatever the browser reads of the CSP.
    let login = send(&c.app, Request::get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(login.headers[header::X_FRAME_OPTIONS], "DENY");
    // A page's form posted once the session has ended goes to the login too, and back to
    // the page it was on; a script's post gets its problem document.
    let late = send(
        &c.app,
        Request::post("/dead-letters/delete")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                header::REFERER,
                "http://127.0.0.1:8089/dead-letters?tenant=acme",
            )
            .body(Body::from("csrf=x&key=f1"))
            .unwrap(),
    )
    .await;
    assert_eq!(late.status, StatusCode::SEE_OTHER, "{}", late.body);
    assert_eq!(
        late.headers[header::LOCATION],
        "/login?next=%2Fdead-letters%3Ftenant%3Dacme&expired=1"
    );
    let told = super::page(&c.app, "/login?next=%2Fdead-letters&expired=1").await;
    assert!(told.body.contains("Your session ended"), "{}", told.body);
    let script = api(
        &c.app,
        Method::POST,
        "/dead-letters/delete",
        Some(json!({"keys": []})),
    )
    .await;
    assert_eq!(script.status, StatusCode::UNAUTHORIZED);

    let login = send(&c.app, Request::get("/login").body(Body::empty()).unwrap()).await;
    // It says where the token is before a wrong one is typed.
    assert!(
        login.body.contains("the value of DESKHOOK_TOKEN"),
        "{}",
        login.body
    );
    let csrf = login.cookie_value();
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
    // Anyone can post the form: its body is read up to a login's size only.
    let padded = send(
        &c.app,
        post(&format!("guess&pad={}", "x".repeat(20 * 1024))),
    )
    .await;
    assert_eq!(padded.status, StatusCode::PAYLOAD_TOO_LARGE);
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
    // It ends with the session (a week), and is Secure when the browser came over HTTPS
    // through a proxy (this one did not).
    assert!(
        session.contains("Max-Age=604800") && !session.contains("Secure"),
        "{session}"
    );
    let mut over_tls = post("s3cret-token");
    over_tls
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let secure = send(&c.app, over_tls).await;
    let secure = secure.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(secure.contains("; Secure"), "{secure}");
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

    // Logging out closes the session, even from a page whose form token went stale: the
    // same cookie no longer opens a page.
    let out = send(
        &c.app,
        Request::post("/logout")
            .header(header::COOKIE, &both)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("csrf=stale"))
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

/// Over HTTPS (as the TLS proxy says), the CSRF cookie is Secure, and a page of the same
/// host served over plain HTTP is another origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_csrf_cookie_is_secure_and_an_http_origin_is_foreign() {
    let receiver = Receiver::ok();
    let c = console(|sink| {
        Console::new(sink)
            .allowed_hosts(["console.example"])
            .router()
    });
    c.sink
        .endpoints()
        .upsert_spec(&serde_json::from_value(endpoint_json("crm", &receiver)).unwrap())
        .unwrap();
    let page = |https: bool| {
        let mut request = Request::get("/");
        if https {
            request = request.header("x-forwarded-proto", "https");
        }
        request.body(Body::empty()).unwrap()
    };
    let cookie = |reply: &super::Reply| {
        reply.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let plain = cookie(&send(&c.app, page(false)).await);
    assert!(!plain.contains("Secure"), "{plain}");
    let over_tls = cookie(&send(&c.app, page(true)).await);
    assert!(over_tls.ends_with("; Secure"), "{over_tls}");

    let pause = |origin: &str| {
        Request::post("/api/v1/endpoints/crm/pause")
            .header(header::HOST, "console.example")
            .header("x-forwarded-proto", "https")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap()
    };
    let refused = send(&c.app, pause("http://console.example")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let ours = send(&c.app, pause("https://console.example")).await;
    assert_eq!(ours.status, StatusCode::OK, "{}", ours.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_that_rewrites_host_same_origin_requests_go_through() {
    let receiver = Receiver::ok();
    let c = console(router);
    c.sink
        .endpoints()
        .upsert_spec(&serde_json::from_value(endpoint_json("crm", &receiver)).unwrap())
        .unwrap();
    let pause = |extra: &[(&'static str, &'static str)]| {
        let mut request = Request::post("/api/v1/endpoints/crm/pause")
            // nginx's default: Host is the upstream's, Origin the public one.
            .header(header::HOST, "127.0.0.1:8089")
            .header(header::ORIGIN, "https://helpdesk.example.com")
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.body(Body::from("{}")).unwrap()
    };
    // A browser that says same-origin is believed; so is a proxy's X-Forwarded-Host.
    for extra in [
        &[("sec-fetch-site", "same-origin")][..],
        &[("x-forwarded-host", "helpdesk.example.com")][..],
    ] {
        let ok = send(&c.app, pause(extra)).await;
        assert_eq!(ok.status, StatusCode::OK, "{extra:?}: {}", ok.body);
    }
    // Neither: refused, as before; and a sibling subdomain (same-site, another origin) is
    // no better.
    assert_eq!(send(&c.app, pause(&[])).await.status, StatusCode::FORBIDDEN);
    let sibling = send(&c.app, pause(&[("sec-fetch-site", "same-site")])).await;
    assert_eq!(sibling.status, StatusCode::FORBIDDEN);
    // Nor one that sends no Origin at all.
    let bare = Request::post("/api/v1/endpoints/crm/pause")
        .header(header::HOST, "127.0.0.1:8089")
        .header("sec-fetch-site", "same-site")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&c.app, bare).await.status, StatusCode::FORBIDDEN);

    // Basic credentials a browser adds by itself are not a bearer token: a form-like API
    // call with them is still refused.
    let basic = send(
        &c.app,
        Request::post("/api/v1/endpoints/crm/resume")
            .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(basic.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// DNS rebinding: a page of another site whose name points at the console's address sends
/// its own name as `Host`, and is answered 421 unless the console was given that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_a_name_the_console_was_not_given_are_refused() {
    let get = |path: &str, host: &str| {
        Request::get(path)
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    let c = console(router);
    for path in ["/", "/api/v1/endpoints", "/dead-letters"] {
        let refused = send(&c.app, get(path, "evil.example:8089")).await;
        assert_eq!(refused.status, StatusCode::MISDIRECTED_REQUEST, "{path}");
        assert!(
            refused.body.contains("not for 'evil.example:8089'")
                && refused.body.contains("Console::allowed_hosts"),
            "{}",
            refused.body
        );
    }
    for ours in ["127.0.0.1:8089", "localhost:8089", "[::1]:8089"] {
        let answered = send(&c.app, get("/api/v1/endpoints", ours)).await;
        assert_eq!(answered.status, StatusCode::OK, "{ours}: {}", answered.body);
    }
    // Given names are answered; any name once the application checks them itself.
    let named = console(|sink| {
        Console::new(sink)
            .allowed_hosts(["Helpdesk.Example"])
            .router()
    });
    let answered = send(&named.app, get("/api/v1/endpoints", "helpdesk.example")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    let refused = send(&named.app, get("/api/v1/endpoints", "evil.example")).await;
    assert_eq!(refused.status, StatusCode::MISDIRECTED_REQUEST);
    let any = console(|sink| Console::new(sink).any_host().router());
    let answered = send(&any.app, get("/api/v1/endpoints", "evil.example")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    // With a token, the login form is not an oracle for another site either.
    let tokened = console(|sink| Console::new(sink).require_token("s3cret-token").router());
    let login = send(&tokened.app, get("/login", "evil.example")).await;
    assert_eq!(login.status, StatusCode::MISDIRECTED_REQUEST);
}
