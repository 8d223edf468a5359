//! The dead letters page: its filter, "Replay all matching" replaying what the filter
//! matches on every page and nothing else, and a query that does not read; an event's page
//! that says when it shows only the newest of what a ticket did; a letter's error said once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deskhook_transports::delivery::{DeadLetterQuery, EndpointSpec};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_matching_replays_the_filter_and_nothing_else() {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::start(move |_, _| {
        deskhook_tests::Answer::status(if flag.load(Ordering::SeqCst) {
            204
        } else {
            503
        })
    });
    let c = console(router);
    let mut crm = EndpointSpec::new("crm", receiver.url.clone());
    crm.allow_private = true;
    crm.retry = Some("0s".parse().unwrap());
    c.sink.endpoints().upsert_spec(&crm).unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", c.sink.clone())
        .build();
    let user = deskhook::sample::user();
    dispatcher
        .for_tenant("acme")
        .emit(Action::Create, &ticket("T-1"), &user);
    dispatcher
        .for_tenant("acme")
        .emit(Action::Comment, &ticket("T-1"), &user);
    dispatcher
        .for_tenant("globex")
        .emit(Action::Create, &ticket("T-2"), &user);
    dispatcher.emit(Action::Create, &ticket("T-3"), &user);
    c.sink.flush(WAIT).unwrap();
    let letters = |query: DeadLetterQuery| c.sink.dead_letters().list(&query).unwrap().items;
    assert_eq!(letters(DeadLetterQuery::new()).len(), 4);

    // Unfiltered, the page offers no replay of everything; filtered, it carries the filter.
    let all = send(
        &c.app,
        Request::get("/dead-letters").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(!all.body.contains("Replay all matching"), "{}", all.body);
    // Times as the other pages write them, the letter's own in the title.
    let failed_at = letters(DeadLetterQuery::new())[0].letter.failed_at.clone();
    let shown = format!(
        r#"<td title="{failed_at}">{} UTC</td>"#,
        failed_at[..19].replace('T', " ")
    );
    assert!(all.body.contains(&shown), "{shown}: {}", all.body);
    let page = send(
        &c.app,
        Request::get("/dead-letters?tenant=acme")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(page.body.contains("Replay all matching"), "{}", page.body);
    assert!(
        page.body
            .contains(r#"<input type="hidden" name="tenant" value="acme">"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Replay every dead letter of tenant acme")
    );
    let token = page.cookie_value();

    // Without a filter, refused with what to do.
    let refused = send(
        &c.app,
        form("/dead-letters/replay", &token, &[("which", "matching")]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("needs a filter"), "{}", refused.body);

    let failed_attempts = receiver.count();
    up.store(true, Ordering::SeqCst);
    let done = send(
        &c.app,
        form(
            "/dead-letters/replay",
            &token,
            &[("tenant", "acme"), ("which", "matching")],
        ),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        done.headers[header::LOCATION],
        "/dead-letters?tenant=acme&done=replayed&n=2",
        "back to the filtered page"
    );
    c.sink.flush(WAIT).unwrap();
    let replayed = receiver.requests().split_off(failed_attempts);
    assert_eq!(
        replayed.len(),
        2,
        "acme's two letters, nothing of globex or no tenant"
    );
    assert!(
        replayed.iter().all(|r| r.json()["ticket"]["code"] == "T-1"),
        "{replayed:?}"
    );
    let left: Vec<String> = letters(DeadLetterQuery::new())
        .into_iter()
        .map(|s| s.letter.ticket)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&"T-1".to_owned()), "{left:?}");

    // The letters of an endpoint removed since stay, without a link to its page, gone.
    let linked = |body: &str| body.contains(r#"<a href="/endpoints/crm">crm</a>"#);
    assert!(linked(&page.body), "{}", page.body);
    // (Its page gives its timeouts in the units deskhook.toml takes.)
    let shown = super::page(&c.app, "/endpoints/crm").await;
    assert!(shown.body.contains("15s (connect 5s)"), "{}", shown.body);
    // Its attempts' times say their zone.
    assert!(shown.body.contains(" UTC</td>"), "{}", shown.body);
    c.sink.endpoints().remove("crm").unwrap();
    let after = send(
        &c.app,
        Request::get("/dead-letters").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        after
            .body
            .contains(r#"<span title="removed since">crm</span>"#),
        "{}",
        after.body
    );
    assert!(!linked(&after.body), "{}", after.body);

    // Replayed, the letters of the endpoint removed stay, and the page says which and why
    // (not a count on the list, where they look like the others).
    let crm_keys: Vec<String> = letters(DeadLetterQuery::new())
        .into_iter()
        .filter(|s| s.letter.endpoint == "crm")
        .map(|s| s.key)
        .collect();
    assert!(!crm_keys.is_empty());
    let fields: Vec<(&str, &str)> = crm_keys.iter().map(|k| ("key", k.as_str())).collect();
    let replay = send(&c.app, form("/dead-letters/replay", &token, &fields)).await;
    // Answered with a redirect to the result (reloading it must not replay again).
    assert_eq!(replay.status, StatusCode::SEE_OTHER, "{}", replay.body);
    let at = replay.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(at.starts_with("/dead-letters/replays/"), "{at}");
    let result = super::page(&c.app, &at).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    let again = super::page(&c.app, &at).await;
    assert_eq!(again.status, StatusCode::OK, "shown again: {}", again.body);
    assert!(again.body.contains(&crm_keys[0]), "{}", again.body);
    let gone = super::page(&c.app, "/dead-letters/replays/0123").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.body.contains("no longer kept"), "{}", gone.body);
    assert!(
        result.body.contains("0 dead letters replayed."),
        "{}",
        result.body
    );
    assert!(
        result.body.contains(" not replayed</h2>"),
        "{}",
        result.body
    );
    assert!(result.body.contains(&crm_keys[0]), "{}", result.body);
    assert!(result.body.contains("crm"), "the reason: {}", result.body);
    assert!(!result.body.contains("still listed"), "{}", result.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_does_not_read_gets_a_page_that_says_so() {
    let c = console(router);
    let page = send(
        &c.app,
        Request::get("/dead-letters?before=yesterday")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    assert!(
        page.body.contains("the address&#39;s query cannot be read")
            || page.body.contains("the address's query cannot be read"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("before"),
        "names the field: {}",
        page.body
    );
    assert!(page.body.contains("Back to the endpoints"), "{}", page.body);
}

/// The event page for `q` (a webhook-id or a ticket).
async fn event_page(c: &Running, q: &str) -> Reply {
    send(
        &c.app,
        Request::get(format!("/events?q={q}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// A console whose endpoint "crm" sends to `receiver`, and a dispatcher that sends to it.
fn crm_console(receiver: &Receiver) -> (Running, deskhook::Dispatcher) {
    let c = console(router);
    let mut crm = EndpointSpec::new("crm", receiver.url.clone());
    crm.allow_private = true;
    c.sink.endpoints().upsert_spec(&crm).unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", c.sink.clone())
        .build();
    (c, dispatcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_with_more_attempts_than_its_page_shows_says_so() {
    let receiver = Receiver::ok();
    let (c, dispatcher) = crm_console(&receiver);
    let user = deskhook::sample::user();
    for _ in 0..501 {
        dispatcher.emit(Action::Comment, &ticket("T-busy"), &user);
    }
    dispatcher.emit(Action::Comment, &ticket("T-calm"), &user);
    c.sink.flush(WAIT).unwrap();
    let busy = event_page(&c, "T-busy").await;
    assert_eq!(busy.status, StatusCode::OK);
    assert!(
        busy.body.contains("only the newest are shown"),
        "{}",
        busy.body
    );
    let calm = event_page(&c, "T-calm").await;
    assert!(!calm.body.contains("only the newest"), "{}", calm.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_with_more_dead_letters_than_its_page_shows_links_to_them_all() {
    let receiver = Receiver::start(|_, _| deskhook_tests::Answer::status(400));
    let (c, dispatcher) = crm_console(&receiver);
    let user = deskhook::sample::user();
    for _ in 0..51 {
        dispatcher.emit(Action::Comment, &ticket("T-many"), &user);
    }
    dispatcher.emit(Action::Comment, &ticket("T-one"), &user);
    c.sink.flush(WAIT).unwrap();
    let many = event_page(&c, "T-many").await;
    assert!(
        many.body
            .contains(r#"<a href="/dead-letters?ticket=T-many">all the ticket's dead letters</a>"#),
        "{}",
        many.body
    );
    // The dead letters page filtered by a ticket lists its letters alone.
    let one = send(
        &c.app,
        Request::get("/dead-letters?ticket=T-one")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(one.body.matches(r#"href="/events?q=T-one""#).count(), 1);
    assert!(!one.body.contains("q=T-many"), "{}", one.body);
    assert!(one.body.contains("Replay all matching"), "{}", one.body);
    assert!(
        one.body
            .contains(r#"<input type="hidden" name="ticket" value="T-one">"#),
        "{}",
        one.body
    );
    // A replay from the event's page lands on its ticket's letters, not on all of them.
    let event = event_page(&c, "T-one").await;
    assert!(
        event
            .body
            .contains(r#"<input type="hidden" name="ticket" value="T-one">"#),
        "{}",
        event.body
    );
}

/// A letter whose last attempt got no answer but an error that is also its reason (a
/// refusal before sending) shows the text once, in Reason; Last says "error" (the text in
/// its title). No request is made: the guard refuses the address.
/// A console whose endpoint "crm" refused one event of ticket T-1 (a name is judged when
/// resolved: `localhost` is refused at the attempt, and no request is made), and its
/// letter.
fn one_letter_refused() -> (Running, deskhook_transports::delivery::DeadLetter) {
    let c = console(router);
    let mut crm = EndpointSpec::new("crm", "http://localhost:9/hook");
    crm.retry = Some("0s".parse().unwrap());
    c.sink.endpoints().upsert_spec(&crm).unwrap();
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("http", c.sink.clone())
        .build();
    dispatcher.emit(Action::Create, &ticket("T-1"), &deskhook::sample::user());
    c.sink.flush(WAIT).unwrap();
    let letter = c
        .sink
        .dead_letters()
        .list(&DeadLetterQuery::new())
        .unwrap()
        .items
        .remove(0)
        .letter;
    (c, letter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_error_that_is_the_reason_is_written_once() {
    let (c, letter) = one_letter_refused();
    assert_eq!(letter.last_error.as_deref(), Some(&letter.reason[..]));
    let page = send(
        &c.app,
        Request::get("/dead-letters").body(Body::empty()).unwrap(),
    )
    .await;
    let reason = letter.reason.replace('\'', "&#39;");
    assert_eq!(
        page.body.matches(&format!(">{reason}<")).count(),
        1,
        "{}",
        page.body
    );
    assert!(page.body.contains(">error</span>"), "{}", page.body);
    // Each row's controls say which letter they are for, to a screen reader too.
    for control in ["Select", "Replay"] {
        let label = format!(
            r#"aria-label="{control} the {} of {} for {}""#,
            letter.action, letter.ticket, letter.endpoint
        );
        assert!(page.body.contains(&label), "{label}: {}", page.body);
    }
}

/// An event whose attempts have left the log is found by its dead letter, and its page
/// says "Event", not "Ticket".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_found_by_its_letter_alone_is_called_an_event() {
    let (c, mut letter) = one_letter_refused();
    // A letter of an event the attempt log has not seen: another process's, or one whose
    // attempts are gone.
    letter.id = "01939f0a-0000-7000-8000-000000000001".to_owned();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(c._dir.path().join("dead.jsonl"))
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        format!("{}\n", serde_json::to_string(&letter).unwrap()).as_bytes(),
    )
    .unwrap();
    let found = event_page(&c, &letter.id).await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains("Event <code>"), "{}", found.body);
    assert!(found.body.contains("1 dead letter"), "{}", found.body);
    // A ticket is a ticket.
    let ticket = event_page(&c, "T-1").await;
    assert!(ticket.body.contains("Ticket <code>"), "{}", ticket.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_how_long_a_spool_keeps_its_letters() {
    // A dead-letter file keeps them until they are deleted: nothing said.
    let file = console(router);
    assert_eq!(file.sink.dead_letters().retention(), None);
    let page = send(
        &file.app,
        Request::get("/dead-letters").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        !page.body.contains("dead_letter_retention"),
        "{}",
        page.body
    );
    // A spool deletes them after its retention.
    let dir = tempfile::tempdir().unwrap();
    let fortnight = std::time::Duration::from_secs(14 * 24 * 3600);
    let spool = deskhook_transports::spool::Spool::builder(dir.path())
        .dead_letter_retention(fortnight)
        .open()
        .unwrap();
    let (sink, guard) = HttpSink::builder().spool(spool).build().unwrap();
    assert_eq!(sink.dead_letters().retention(), Some(fortnight));
    let page = send(
        &router(sink),
        Request::get("/dead-letters").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        page.body.contains("Each is deleted 14d after it failed"),
        "{}",
        page.body
    );
    guard.shutdown(WAIT).unwrap();
}
