//! Endpoints added, changed, paused, resumed and removed while events flow; bad input for
//! every call; reading the registry back, whole or a page at a time.

use std::time::Duration;

use deskhook::{Action, Secret};
use deskhook_tests::{
    Answer, Received, Receiver, Transport, WAIT, dead_letter_file, for_both_transports, start,
    ticket,
};
use deskhook_transports::delivery::{
    DeliveryGuard, DeliverySink, Endpoint, EndpointPage, EndpointQuery, EndpointState, Removed,
    Upserted, read_dead_letters,
};
use deskhook_transports::http_blocking::HttpSink;

use super::{at, by_path, holding, wait_in_flight};

fn a_new_endpoint_gets_the_events_emitted_after_it_is_added(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(t, HttpSink::builder().dead_letter_path(&dead));
    let user = deskhook::sample::user();
    assert!(sink.endpoints().is_empty());
    dispatcher.emit(Action::Create, &ticket("BEFORE"), &user);
    let endpoints = sink.endpoints();
    assert_eq!(
        endpoints.upsert(at("crm", &receiver)).unwrap(),
        Upserted::Added
    );
    dispatcher.emit(Action::Create, &ticket("AFTER"), &user);
    guard.flush(WAIT).unwrap();
    assert_eq!(by_path(&receiver.wait_for(1))["/crm"], ["AFTER"]);
    assert_eq!(receiver.count(), 1);
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints.upsert(at("crm", &receiver)).unwrap(),
        Upserted::Unchanged
    );
    let info = endpoints.get("crm").unwrap();
    assert_eq!(info.stats.delivered, 1);
    assert_eq!(info.state, EndpointState::Active);
    assert!(info.url.starts_with("http://127.0.0.1:") && info.url.ends_with("/…"));
}

fn a_change_applies_to_queued_events_from_their_next_attempt(t: Transport) {
    let (old_receiver, release) = holding(|_| 204);
    let new_receiver = Receiver::ok();
    let (old_secret, new_secret) = (Secret::generate().unwrap(), Secret::generate().unwrap());
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                at("crm", &old_receiver)
                    .secret(old_secret.clone())
                    .max_in_flight(1),
            )
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for _ in 0..3 {
        dispatcher.emit(Action::Comment, &ticket("T1"), &user);
    }
    wait_in_flight(&sink, 1);
    let changed = at("crm", &new_receiver)
        .secret(new_secret.clone())
        .max_in_flight(1);
    assert_eq!(sink.endpoints().upsert(changed).unwrap(), Upserted::Updated);
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();

    // The attempt in flight finished with the old URL and secret; the queued events went to
    // the new URL, signed with the new secret, in order, with their own ids.
    let old = old_receiver.wait_for(1);
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].header("x-deskhook-sequence"), Some("1"));
    let verify = |r: &Received, secret: &Secret| {
        deskhook::signature::verify(&r.headers, &r.body, std::slice::from_ref(secret), WAIT).is_ok()
    };
    assert!(verify(&old[0], &old_secret));
    let mut new = new_receiver.wait_for(2);
    new.sort_by_key(|r| r.index);
    let sequences: Vec<&str> = new
        .iter()
        .map(|r| r.header("x-deskhook-sequence").unwrap())
        .collect();
    assert_eq!(sequences, ["2", "3"]);
    for request in &new {
        assert!(verify(request, &new_secret) && !verify(request, &old_secret));
        assert_eq!(request.path, "/crm");
    }
    let ids: std::collections::BTreeSet<&str> = old
        .iter()
        .chain(&new)
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(sink.endpoints().get("crm").unwrap().stats.delivered, 3);
}

fn pause_keeps_queueing_and_resume_sends_in_order(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", &receiver))
            .dead_letter_path(&dead),
    );
    let endpoints = sink.endpoints();
    endpoints.pause("crm").unwrap();
    let user = deskhook::sample::user();
    for i in 0..6 {
        dispatcher.emit(Action::ALL[i], &ticket(["P1", "P2"][i % 2]), &user);
    }
    // The flush sees that nothing can go before its deadline and stops waiting.
    let waited = guard.flush(WAIT).unwrap_err().to_string();
    assert!(
        waited.starts_with("6 event(s) queued for endpoints that cannot send within 10s"),
        "{waited}"
    );
    let info = endpoints.get("crm").unwrap();
    assert_eq!((info.state, info.stats.queued), (EndpointState::Paused, 6));
    assert_eq!(receiver.count(), 0);
    endpoints.resume("crm").unwrap();
    guard.flush(WAIT).unwrap();
    let paths = by_path(&receiver.wait_for(6));
    let mut codes = paths["/crm"].clone();
    codes.sort();
    assert_eq!(codes, ["P1", "P1", "P1", "P2", "P2", "P2"]);
    // Each ticket's events arrived in the order they were emitted.
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.index);
    for code in ["P1", "P2"] {
        let sequences: Vec<&str> = requests
            .iter()
            .filter(|r| r.json()["ticket"]["code"] == code)
            .map(|r| r.header("x-deskhook-sequence").unwrap())
            .collect();
        assert_eq!(sequences, ["1", "2", "3"], "{code}");
    }
    assert_eq!(endpoints.get("crm").unwrap().state, EndpointState::Active);
}

fn a_410_dead_letters_the_tickets_events_in_order(t: Transport) {
    // The first request is held until the other events are queued behind it, then gone.
    let (receiver, release) = holding(|_| 410);
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", &receiver))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for action in [Action::Create, Action::Lock, Action::Ok] {
        dispatcher.emit(action, &ticket("O1"), &user);
    }
    wait_in_flight(&sink, 1);
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    let actions: Vec<&str> = letters.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(actions, ["create", "lock", "ok"], "in the ticket's order");
}

/// A sink whose endpoint "crm" on `receiver` retries an hour after a first attempt, given two
/// events of one ticket: returns once the first event's attempt failed and its retry waits
/// (the second waits behind it).
fn waiting_for_a_retry(
    t: Transport,
    receiver: &Receiver,
    dead: &std::path::Path,
) -> (DeliverySink, DeliveryGuard) {
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", receiver).retry("0s,1h".parse().unwrap()))
            .dead_letter_path(dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("R1"), &user);
    dispatcher.emit(Action::Comment, &ticket("R1"), &user);
    receiver.wait_for(1);
    let deadline = std::time::Instant::now() + WAIT;
    while sink.endpoints().get("crm").unwrap().stats.retried == 0 {
        assert!(std::time::Instant::now() < deadline, "never retried");
        std::thread::sleep(Duration::from_millis(1));
    }
    (sink, guard)
}

fn resume_sends_what_waits_for_a_retry_at_once(t: Transport) {
    // 500 to the first request, then 204: the retry is an hour away.
    let receiver = Receiver::start(|_, n| Answer::status(if n == 0 { 500 } else { 204 }));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard) = waiting_for_a_retry(t, &receiver, &dead);
    let endpoints = sink.endpoints();
    assert!(
        guard.flush(Duration::from_millis(20)).is_err(),
        "an hour to wait"
    );
    // The operator fixed the receiver: resume sends the ticket's events now, in order.
    endpoints.resume("crm").unwrap();
    guard.flush(WAIT).unwrap();
    let mut requests = receiver.wait_for(3);
    requests.sort_by_key(|r| r.index);
    let sent: Vec<(&str, u16)> = requests
        .iter()
        .map(|r| (r.header("x-deskhook-sequence").unwrap(), r.status))
        .collect();
    assert_eq!(sent, [("1", 500), ("1", 204), ("2", 204)]);
}

fn a_new_url_ends_the_old_ones_hold_and_retry_waits(t: Transport) {
    // The old receiver is down: 503, come back in an hour; the next retry is an hour away.
    let down = Receiver::start(|_, _| Answer::status(503).header("Retry-After", "3600"));
    let up = Receiver::start(|_, _| Answer::status(204));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard) = waiting_for_a_retry(t, &down, &dead);
    let endpoints = sink.endpoints();
    // Another setting changes nothing of the waits: the receiver is the same.
    endpoints
        .upsert(
            at("crm", &down)
                .retry("0s,1h".parse().unwrap())
                .timeout(Duration::from_secs(4)),
        )
        .unwrap();
    assert!(
        guard.flush(Duration::from_millis(20)).is_err(),
        "an hour to wait"
    );
    // A new URL is another receiver: the old one's hold and waits end.
    let moved = endpoints
        .upsert(at("crm", &up).retry("0s,1h".parse().unwrap()))
        .unwrap();
    assert_eq!(moved, Upserted::Updated);
    guard.flush(WAIT).unwrap();
    let mut requests = up.wait_for(2);
    requests.sort_by_key(|r| r.index);
    let sent: Vec<&str> = requests
        .iter()
        .map(|r| r.header("x-deskhook-sequence").unwrap())
        .collect();
    assert_eq!(sent, ["1", "2"]);
    assert_eq!(down.requests().len(), 1);
    assert_eq!(read_dead_letters(&dead).unwrap().len(), 0);
}

/// A sink whose endpoint "crm" on `receiver` answered an event of ticket G1 with a 410,
/// which disabled it.
fn disabled_by_a_410(
    t: Transport,
    receiver: &Receiver,
    dead: &std::path::Path,
) -> (DeliverySink, DeliveryGuard, deskhook::Dispatcher) {
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", receiver))
            .dead_letter_path(dead),
    );
    dispatcher.emit(Action::Create, &ticket("G1"), &deskhook::sample::user());
    guard.flush(WAIT).unwrap();
    let state = sink.endpoints().get("crm").unwrap().state;
    assert_eq!(state, EndpointState::Disabled);
    (sink, guard, dispatcher)
}

fn a_new_url_re_enables_an_endpoint_the_old_ones_410_disabled(t: Transport) {
    let gone = Receiver::start(|_, _| Answer::status(410));
    let new = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = disabled_by_a_410(t, &gone, &dead);
    let user = deskhook::sample::user();
    let endpoints = sink.endpoints();
    // Another setting leaves it disabled: the receiver is the same.
    endpoints
        .upsert(at("crm", &gone).timeout(Duration::from_secs(4)))
        .unwrap();
    assert_eq!(endpoints.get("crm").unwrap().state, EndpointState::Disabled);
    // The old receiver's 410 says nothing of a new one.
    endpoints.upsert(at("crm", &new)).unwrap();
    assert_eq!(endpoints.get("crm").unwrap().state, EndpointState::Active);
    dispatcher.emit(Action::Create, &ticket("G2"), &user);
    guard.flush(WAIT).unwrap();
    assert_eq!(by_path(&new.wait_for(1))["/crm"], ["G2"]);
    let letters = read_dead_letters(&dead).unwrap();
    let tickets: Vec<&str> = letters.iter().map(|l| l.ticket.as_str()).collect();
    assert_eq!(tickets, ["G1"]);
}

fn resume_re_enables_an_endpoint_a_410_disabled(t: Transport) {
    let receiver = Receiver::start(|_, n| Answer::status(if n == 0 { 410 } else { 204 }));
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = disabled_by_a_410(t, &receiver, &dead);
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("G2"), &user);
    let endpoints = sink.endpoints();
    // A replay to it now is refused, and writes no second letter.
    guard.flush(WAIT).unwrap();
    let first = read_dead_letters(&dead).unwrap().remove(0);
    let refused = sink.redeliver(&first).unwrap_err().to_string();
    assert!(
        refused.contains("is disabled (it answered 410 Gone)"),
        "{refused}"
    );
    // So is a test event, which would only be dead-lettered.
    let refused = endpoints.send_test("crm").unwrap_err().to_string();
    assert!(
        refused.contains("is disabled (it answered 410 Gone)"),
        "{refused}"
    );
    endpoints.resume("crm").unwrap();
    assert_eq!(endpoints.get("crm").unwrap().state, EndpointState::Active);
    dispatcher.emit(Action::Create, &ticket("G3"), &user);
    guard.flush(WAIT).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    let reasons: Vec<(&str, &str)> = letters
        .iter()
        .map(|l| (l.ticket.as_str(), l.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("G1", "410 Gone: the endpoint asked to stop; it is disabled"),
            ("G2", "endpoint disabled after 410 Gone")
        ]
    );
    assert_eq!(by_path(&receiver.wait_for(2))["/crm"], ["G1", "G3"]);
}

fn remove_dead_letters_the_queue_and_lets_the_attempt_in_flight_finish(t: Transport) {
    // The first request is held, then answered 503 (a failure that would be retried).
    let (receiver, release) = holding(|n| if n == 0 { 503 } else { 204 });
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("crm", &receiver).max_in_flight(1))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for _ in 0..4 {
        dispatcher.emit(Action::Edit, &ticket("R1"), &user);
    }
    wait_in_flight(&sink, 1);
    let endpoints = sink.endpoints();
    let removed = endpoints.remove("crm").unwrap();
    assert_eq!((removed.dead_lettered, removed.in_flight), (3, 1));
    assert!(endpoints.get("crm").is_err());
    // Not routed anywhere now.
    dispatcher.emit(Action::Edit, &ticket("R1"), &user);
    release.send(()).unwrap();
    guard.flush(WAIT).unwrap();
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 4, "{letters:?}");
    assert!(letters.iter().all(|l| l.reason == "endpoint removed"));
    assert_eq!(receiver.wait_for(1).len(), 1);

    // Added again under the same name: it starts clean.
    assert_eq!(
        endpoints.upsert(at("crm", &receiver)).unwrap(),
        Upserted::Added
    );
    dispatcher.emit(Action::Edit, &ticket("R1"), &user);
    for _ in 0..3 {
        let _ = release.send(());
    }
    guard.flush(WAIT).unwrap();
    let again = receiver.wait_for(2);
    let last = again.iter().max_by_key(|r| r.index).unwrap();
    assert_eq!(last.header("x-deskhook-sequence"), Some("1"));
    let info = endpoints.get("crm").unwrap();
    assert_eq!((info.stats.delivered, info.stats.dead_lettered), (1, 0));
}

fn unknown_names_and_bad_endpoints_change_nothing(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("acme-crm", &receiver).tenant("acme"))
            .dead_letter_path(&dead),
    );
    let endpoints = sink.endpoints();
    let typo = "no endpoint is named 'acme-cmr' (did you mean 'acme-crm'?)";
    assert_eq!(endpoints.pause("acme-cmr").unwrap_err().to_string(), typo);
    assert_eq!(endpoints.resume("acme-cmr").unwrap_err().to_string(), typo);
    assert_eq!(endpoints.remove("acme-cmr").unwrap_err().to_string(), typo);
    assert_eq!(endpoints.get("acme-cmr").unwrap_err().to_string(), typo);
    assert_eq!(
        endpoints.get("zzz").unwrap_err().to_string(),
        "no endpoint is named 'zzz'"
    );
    let before = endpoints.get("acme-crm").unwrap();
    let base = || Endpoint::new("acme-crm", "https://crm.example.com/hooks").unwrap();
    let refusals = [
        // The SSRF guard: an IP literal on loopback without allow_private.
        (
            Endpoint::new("acme-crm", "http://127.0.0.1:9/").unwrap(),
            "refusing to connect to 127.0.0.1 (loopback)",
        ),
        (
            Endpoint::new("acme-crm", "ftp://crm.example.com/").unwrap(),
            "invalid endpoint URL",
        ),
        (
            Endpoint::new("acme-crm", "http://crm.example.com/")
                .unwrap()
                .https_only(true),
            "invalid endpoint URL",
        ),
        (base().tenant(""), "endpoint 'acme-crm': invalid tenant ''"),
        (
            base().max_in_flight(0),
            "endpoint 'acme-crm': max_in_flight is 0",
        ),
        (
            base().hub_signature(true),
            "endpoint 'acme-crm': hub_signature needs a whsec_ secret",
        ),
        (
            base().header("webhook-id", "x"),
            "endpoint 'acme-crm': header 'webhook-id' is set by deskhook",
        ),
        (
            base().retry("5s".parse().unwrap()),
            "endpoint 'acme-crm': the retry schedule starts with 5s",
        ),
    ];
    for (endpoint, expected) in refusals {
        let err = endpoints.upsert(endpoint).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }
    let rate = Endpoint::new("acme-crm", "https://crm.example.com/")
        .unwrap()
        .rate_limit(0, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(
        rate.starts_with("endpoint 'acme-crm': invalid configuration: a rate limit of 0"),
        "{rate}"
    );
    let after = endpoints.get("acme-crm").unwrap();
    assert_eq!((after.url, after.tenant), (before.url, before.tenant));
    assert_eq!(endpoints.len(), 1);
    // An add that must not replace refuses a name in use; an update of a name no longer in
    // use does not bring it back (another operator removed it meanwhile).
    let mut spec = deskhook_transports::delivery::EndpointSpec::new("acme-crm", &receiver.url);
    spec.allow_private = true;
    let err = endpoints.add_spec(&spec).unwrap_err().to_string();
    assert!(err.contains("already named 'acme-crm'"), "{err}");
    assert_eq!(
        endpoints.get("acme-crm").unwrap().tenant.as_deref(),
        Some("acme")
    );
    spec.name = "gone".into();
    let err = endpoints.update_spec(&spec).unwrap_err().to_string();
    assert!(err.contains("no endpoint is named 'gone'"), "{err}");
    assert!(endpoints.get("gone").is_err());
    endpoints.add_spec(&spec).unwrap();
    assert_eq!(endpoints.len(), 2);
    // Two changes made on one read (two operators, an If-Match): the first is saved, the
    // second refused.
    let read = endpoints.get("gone").unwrap();
    spec.max_in_flight = Some(3);
    endpoints.update_spec_if_unchanged(&spec, &read).unwrap();
    spec.max_in_flight = Some(4);
    let err = endpoints
        .update_spec_if_unchanged(&spec, &read)
        .unwrap_err();
    assert!(
        matches!(
            err.error(),
            deskhook_transports::Error::EndpointChanged { .. }
        ),
        "{err}"
    );
    assert_eq!(endpoints.get("gone").unwrap().max_in_flight, 3);
    guard.flush(WAIT).unwrap();
}

fn settings_read_back_and_sent_again_keep_their_credentials(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(t, HttpSink::builder().dead_letter_path(&dead));
    let endpoints = sink.endpoints();
    let mut spec = deskhook_transports::delivery::EndpointSpec::new("crm", &receiver.url);
    spec.allow_private = true;
    spec.headers = Some([("Authorization".to_owned(), "Bearer t0ken".to_owned())].into());
    spec.template =
        Some(r#"{"key": {{ vars.key|tojson }}, "chat": {{ vars.chat_id|tojson }}}"#.into());
    spec.template_vars = Some(
        [("key", "k3y-value"), ("chat_id", "-100123")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    endpoints.add_spec(&spec).unwrap();
    // As the console's API shows them (header values, variables but the chat and the URL
    // hidden), one setting changed, and sent back.
    let mut shown = endpoints.get("crm").unwrap().spec.unwrap().spec;
    assert_eq!(shown.headers.as_ref().unwrap()["Authorization"], "…");
    let vars = shown.template_vars.as_ref().unwrap();
    assert_eq!((&*vars["key"], &*vars["chat_id"]), ("…", "-100123"));
    shown.max_in_flight = Some(2);
    endpoints.update_spec(&shown).unwrap();
    dispatcher.emit(Action::Create, &ticket("T1"), &deskhook::sample::user());
    guard.flush(WAIT).unwrap();
    let got = receiver.wait_for(1);
    assert_eq!(got[0].header("authorization"), Some("Bearer t0ken"));
    assert_eq!(
        got[0].json(),
        serde_json::json!({"key": "k3y-value", "chat": "-100123"})
    );
    // Refused, on the variables, saying `says`.
    let refused_vars = |spec: &deskhook_transports::delivery::EndpointSpec, says: &str| {
        let refused = endpoints.update_spec(spec).unwrap_err();
        assert_eq!(refused.field(), Some("template_vars"), "{refused}");
        assert!(refused.to_string().contains(says), "{refused}");
        refused
    };
    // To another origin, a hidden variable is not carried along unseen.
    let other = Receiver::ok();
    let mut moved = endpoints.get("crm").unwrap().spec.unwrap().spec;
    moved.url.clone_from(&other.url);
    // The headers given again (none): only the variable is left to carry.
    moved.headers = Some(std::collections::BTreeMap::new());
    refused_vars(&moved, "template variables shown as '…'");
    // Nor to another path of the same origin, which on a shared host is another receiver.
    let mut other_path = endpoints.get("crm").unwrap().spec.unwrap().spec;
    other_path.url = format!("{}other-hook", receiver.url);
    other_path.headers = Some(std::collections::BTreeMap::new());
    let refused = refused_vars(&other_path, "the URL's path changes");
    assert!(!refused.to_string().contains("other-hook"), "{refused}");
    // Nor into another template, which could test its value.
    let mut rewritten = endpoints.get("crm").unwrap().spec.unwrap().spec;
    rewritten.template = Some(r#"{"key": {{ (vars.key[0] == "k")|tojson }}}"#.into());
    refused_vars(&rewritten, "not carried to another template");
    // Nor to the same template as another content type, whose check would quote the output
    // near where it is not JSON.
    let mut retyped = endpoints.get("crm").unwrap().spec.unwrap().spec;
    retyped.template_content_type = Some("text/plain".to_owned());
    refused_vars(&retyped, "not carried to another template");
    // Without a template, the variables are what is wrong, whatever their values.
    let mut untemplated = endpoints.get("crm").unwrap().spec.unwrap().spec;
    untemplated.template = None;
    refused_vars(&untemplated, "applies only with a template");
    assert_eq!(
        endpoints
            .get("crm")
            .unwrap()
            .spec
            .unwrap()
            .spec
            .max_in_flight,
        Some(2)
    );
    // With the variable given again, the template changes.
    let vars = rewritten.template_vars.as_mut().unwrap();
    vars.insert("key".to_owned(), "other".to_owned());
    endpoints.update_spec(&rewritten).unwrap();
    dispatcher.emit(Action::Create, &ticket("T2"), &deskhook::sample::user());
    guard.flush(WAIT).unwrap();
    assert_eq!(
        receiver.wait_for(2)[1].json(),
        serde_json::json!({"key": false})
    );
}

fn replace_all_makes_the_registry_equal_the_set(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, _dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("a", &receiver))
            .endpoint(at("b", &receiver))
            .endpoint(at("c", &receiver))
            .dead_letter_path(&dead),
    );
    let endpoints = sink.endpoints();
    let changed_b = at("b", &receiver).tenant("acme");
    let report = endpoints
        .replace_all([at("a", &receiver), changed_b, at("d", &receiver)])
        .unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (
            vec!["d".to_owned()],
            vec!["b".to_owned()],
            vec!["c".to_owned()],
            1
        )
    );
    assert_eq!(endpoints.names(), ["a", "b", "d"]);
    assert_eq!(endpoints.get("b").unwrap().tenant.as_deref(), Some("acme"));
    // A set that cannot work changes nothing.
    let twice = endpoints
        .replace_all([at("a", &receiver), at("a", &receiver)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        twice,
        "endpoint 'a': the name is given twice; names must be unique"
    );
    let bad = endpoints
        .replace_all([at("a", &receiver), at("e", &receiver).max_in_flight(0)])
        .unwrap_err()
        .to_string();
    assert!(bad.starts_with("endpoint 'e': max_in_flight is 0"), "{bad}");
    assert_eq!(endpoints.names(), ["a", "b", "d"]);
    assert_eq!(endpoints.list().len(), 3);
    guard.flush(WAIT).unwrap();
}

fn every_call_is_safe_while_events_flow(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(at("base", &receiver))
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    let tenants = ["t0", "t1", "t2", "t3"];
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..400 {
                let code = format!("C{}", i % 20);
                match tenants.get(i % 5) {
                    Some(tenant) => {
                        dispatcher
                            .for_tenant(tenant)
                            .emit(Action::Comment, &ticket(&code), &user)
                    }
                    None => dispatcher.emit(Action::Comment, &ticket(&code), &user),
                }
            }
        });
        let endpoints = sink.endpoints();
        for round in 0..20 {
            let name = format!("x{}", round % 8);
            let tenant = tenants[round % tenants.len()];
            endpoints
                .upsert(at(&name, &receiver).tenant(tenant))
                .unwrap();
            if round % 3 == 0 {
                endpoints.pause(&name).unwrap();
                endpoints.resume(&name).unwrap();
            }
            if round % 4 == 0 {
                let _: Removed = endpoints.remove(&name).unwrap();
            }
            let _ = endpoints.list();
        }
    });
    // Whatever was queued for an endpoint was delivered or dead-lettered: nothing is left
    // outstanding, nothing was lost without a trace.
    guard.flush(WAIT).unwrap();
    let delivered: u64 = sink.stats().iter().map(|s| s.delivered).sum();
    assert!(
        delivered >= 400 / 5,
        "the untenanted base endpoint got every event"
    );
    assert_eq!(sink.endpoints().get("base").unwrap().stats.delivered, 400);
}

fn pages_search_filter_and_follow_the_cursor(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, _guard, _dispatcher) = start(t, HttpSink::builder().dead_letter_path(&dead));
    let endpoints = sink.endpoints();
    for i in 0..25 {
        let tenant = if i % 2 == 0 { "acme" } else { "Globex" };
        endpoints
            .upsert(at(&format!("ep-{i:02}"), &receiver).tenant(tenant))
            .unwrap();
    }
    endpoints.pause("ep-03").unwrap();
    let names = |page: &EndpointPage| -> Vec<String> {
        page.items.iter().map(|e| e.name.clone()).collect()
    };
    // Every page of `query`, following the cursor: the names, and each page's remaining.
    let all_pages = |mut query: EndpointQuery| {
        let (mut seen, mut remaining) = (Vec::new(), Vec::new());
        loop {
            let page = endpoints.page(&query);
            remaining.push(page.remaining);
            seen.extend(names(&page));
            match page.next {
                Some(next) => query.after = Some(next),
                None => return (seen, remaining),
            }
        }
    };
    // Pages of 10 by name: 10, 10, 5, and the cursor ends.
    let (seen, remaining) = all_pages(EndpointQuery {
        limit: 10,
        ..EndpointQuery::new()
    });
    assert_eq!(remaining, [25, 15, 5]);
    assert_eq!(seen, endpoints.names());
    // A tenant's pages (read from the tenant's endpoints, not every name): in order too.
    let (seen, remaining) = all_pages(EndpointQuery {
        limit: 5,
        tenant: Some("acme".into()),
        ..EndpointQuery::new()
    });
    assert_eq!(remaining, [13, 8, 3]);
    let acme: Vec<String> = (0..25).step_by(2).map(|i| format!("ep-{i:02}")).collect();
    assert_eq!(seen, acme);
    // Search ignores case and looks at the tenant too; filters combine.
    let globex = endpoints.page(&EndpointQuery {
        search: Some("GLOBEX".into()),
        ..EndpointQuery::new()
    });
    assert_eq!(globex.remaining, 12);
    let one = endpoints.page(&EndpointQuery {
        search: Some("ep-1".into()),
        tenant: Some("acme".into()),
        ..EndpointQuery::new()
    });
    assert_eq!(names(&one), ["ep-10", "ep-12", "ep-14", "ep-16", "ep-18"]);
    let paused = endpoints.page(&EndpointQuery {
        state: Some(EndpointState::Paused),
        ..EndpointQuery::new()
    });
    assert_eq!(names(&paused), ["ep-03"]);
    assert_eq!(paused.next, None);
    // The same counts in one walk.
    assert_eq!(
        endpoints.count_by_state(),
        [
            (EndpointState::Active, 24),
            (EndpointState::Paused, 1),
            (EndpointState::Disabled, 0),
            (EndpointState::BreakerOpen, 0),
        ]
    );
    // A tenant with a small share of the endpoints has its own read: its endpoints added
    // out of order, one removed and added again (which reorders the tenant's list), and a
    // cursor naming another tenant's endpoint, or one removed.
    for i in [31, 27, 29, 25] {
        endpoints
            .upsert(at(&format!("ep-{i:02}"), &receiver).tenant("initech"))
            .unwrap();
    }
    for i in 32..60 {
        endpoints
            .upsert(at(&format!("ep-{i:02}"), &receiver).tenant("Globex"))
            .unwrap();
    }
    endpoints.remove("ep-27").unwrap();
    endpoints
        .upsert(at("ep-27", &receiver).tenant("initech"))
        .unwrap();
    let initech = |after: Option<&str>| {
        names(&endpoints.page(&EndpointQuery {
            tenant: Some("initech".into()),
            after: after.map(str::to_owned),
            ..EndpointQuery::new()
        }))
    };
    assert_eq!(initech(None), ["ep-25", "ep-27", "ep-29", "ep-31"]);
    assert_eq!(initech(Some("ep-26")), ["ep-27", "ep-29", "ep-31"]);
    endpoints.remove("ep-29").unwrap();
    assert_eq!(initech(Some("ep-29")), ["ep-31"]);
}

for_both_transports!(
    a_new_endpoint_gets_the_events_emitted_after_it_is_added,
    a_change_applies_to_queued_events_from_their_next_attempt,
    pause_keeps_queueing_and_resume_sends_in_order,
    a_410_dead_letters_the_tickets_events_in_order,
    resume_sends_what_waits_for_a_retry_at_once,
    a_new_url_ends_the_old_ones_hold_and_retry_waits,
    a_new_url_re_enables_an_endpoint_the_old_ones_410_disabled,
    resume_re_enables_an_endpoint_a_410_disabled,
    remove_dead_letters_the_queue_and_lets_the_attempt_in_flight_finish,
    unknown_names_and_bad_endpoints_change_nothing,
    settings_read_back_and_sent_again_keep_their_credentials,
    replace_all_makes_the_registry_equal_the_set,
    every_call_is_safe_while_events_flow,
    pages_search_filter_and_follow_the_cursor,
);
