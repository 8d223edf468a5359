//! Payload templates: each chat preset fits its platform's documented payload for every
//! Zenlix action and the Usedesk and iQChannels events, in Russian and English; a templated
//! endpoint gets the rendered body, signed (HMAC and ed25519) over what it got, the same
//! bytes on a retry, a new body after its template changes, and a dead letter with the reason
//! when an event cannot be rendered; renders and signatures made off the async transport's
//! delivery thread keep each ticket's order.

use std::time::Duration;

use deskhook::{Action, EventType, Secret};
use deskhook_tests::{
    Answer, Receiver, Transport, dead_letter_file, emit_in_turn, endpoint, for_both_transports,
    start, ticket,
};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::template::{PRESETS, Template, label};
use serde_json::Value;

/// Every event the presets are checked with: (type, body, the language it should read in).
fn events() -> Vec<(EventType, Vec<u8>, &'static str)> {
    let mut events = Vec::new();
    let zenlix: Value =
        serde_json::from_str(include_str!("../../../core/fixtures/zenlix/event.json")).unwrap();
    for lang in ["ru", "en"] {
        let mut event = zenlix.clone();
        event["initial_user"]["profile"]["lang"] = lang.into();
        // A subject and text that would break the body or ping a channel if not escaped.
        event["ticket"]["subject"] = r#"Printer "HP" <!channel> @everyone }, {"#.into();
        for action in Action::ALL {
            event["action"] = action.as_str().into();
            events.push((
                EventType::Zenlix(action),
                serde_json::to_vec(&event).unwrap(),
                lang,
            ));
        }
    }
    let vendor = [
        (
            "usedesk.ticket_created",
            include_str!("../../../core/fixtures/usedesk/ticket_created.json"),
        ),
        (
            "usedesk.ticket_changed",
            include_str!("../../../core/fixtures/usedesk/ticket_changed.json"),
        ),
        (
            "usedesk.comment_created",
            include_str!("../../../core/fixtures/usedesk/comment_created.json"),
        ),
        (
            "usedesk.rating",
            include_str!("../../../core/fixtures/usedesk/rating.json"),
        ),
        (
            "iqchannels.chat_created",
            include_str!("../../../core/fixtures/iqchannels/chat_created.json"),
        ),
        (
            "iqchannels.ticket_assigned",
            include_str!("../../../core/fixtures/iqchannels/ticket_assigned.json"),
        ),
        (
            "iqchannels.typing",
            include_str!("../../../core/fixtures/iqchannels/typing.json"),
        ),
        (
            "iqchannels.message_created",
            include_str!("../../../core/fixtures/iqchannels/message_created_client.json"),
        ),
        (
            "iqchannels.message_created",
            include_str!("../../../core/fixtures/iqchannels/message_created_operator_file.json"),
        ),
        (
            "iqchannels.message_received",
            include_str!("../../../core/fixtures/iqchannels/message_received.json"),
        ),
        (
            "iqchannels.message_read",
            include_str!("../../../core/fixtures/iqchannels/message_read.json"),
        ),
        (
            "iqchannels.message_listened",
            include_str!("../../../core/fixtures/iqchannels/message_listened.json"),
        ),
        (
            "iqchannels.delete-messages",
            include_str!("../../../core/fixtures/iqchannels/delete_messages.json"),
        ),
        (
            "iqchannels.chat_closed",
            include_str!("../../../core/fixtures/iqchannels/chat_closed.json"),
        ),
    ];
    for lang in ["ru", "en"] {
        for (name, body) in vendor {
            let event_type = EventType::from_wire(name).unwrap();
            events.push((event_type, body.as_bytes().to_vec(), lang));
        }
    }
    events
}

/// A string of at most `max` characters that is not empty.
fn text<'a>(value: &'a Value, what: &str, max: usize) -> &'a str {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(!s.trim().is_empty(), "{what} is empty");
    assert!(
        s.chars().count() <= max,
        "{what} has more than {max} characters"
    );
    s
}

/// Slack incoming webhook with Block Kit: `text` (the notification) and at most 50 blocks;
/// a section's text object of type mrkdwn or plain_text up to 3000 characters; a context's
/// 1 to 10 elements. mrkdwn needs &, < and > as entities (<!channel> would notify).
fn slack(body: &Value) -> String {
    let fallback = text(&body["text"], "text", 40_000);
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    let mut all = fallback.to_owned();
    for block in blocks {
        match block["type"].as_str().expect("a block's type") {
            "section" => {
                assert!(matches!(
                    block["text"]["type"].as_str(),
                    Some("mrkdwn" | "plain_text")
                ));
                all += text(&block["text"]["text"], "section text", 3000);
            }
            "context" => {
                let elements = block["elements"].as_array().expect("elements");
                assert!((1..=10).contains(&elements.len()));
                for element in elements {
                    assert_eq!(element["type"], "mrkdwn");
                    all += text(&element["text"], "context text", 3000);
                }
            }
            other => panic!("unexpected block type {other}"),
        }
    }
    assert!(!all.contains("<!channel>"), "mrkdwn not escaped: {all}");
    all
}

/// Microsoft Teams Workflows webhook: a message whose attachment is an Adaptive Card.
fn teams(body: &Value) -> String {
    assert_eq!(body["type"], "message");
    let attachments = body["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    let card = &attachments[0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let content = &card["content"];
    assert_eq!(content["type"], "AdaptiveCard");
    assert!(content["version"].as_str().is_some());
    assert!(content["$schema"].as_str().is_some());
    let mut all = String::new();
    for element in content["body"].as_array().expect("the card's body") {
        match element["type"].as_str().expect("an element's type") {
            "TextBlock" => all += text(&element["text"], "TextBlock text", 10_000),
            "FactSet" => {
                for fact in element["facts"].as_array().expect("facts") {
                    text(&fact["title"], "fact title", 200);
                    all += text(&fact["value"], "fact value", 1000);
                }
            }
            other => panic!("unexpected element type {other}"),
        }
    }
    all
}

/// Mattermost incoming webhook: `text`, Markdown, at most 16383 characters.
fn mattermost(body: &Value) -> String {
    text(&body["text"], "text", 16_383).to_owned()
}

/// Discord webhook: `content` up to 2000 characters, at most 10 embeds (title 256,
/// description 4096, footer 2048, 6000 in all), and no mentions parsed.
fn discord(body: &Value) -> String {
    let mut all = text(&body["content"], "content", 2000).to_owned();
    let embeds = body["embeds"].as_array().expect("embeds");
    assert!(embeds.len() <= 10);
    for embed in embeds {
        let title = text(&embed["title"], "title", 256);
        let description = text(&embed["description"], "description", 4096);
        let footer = text(&embed["footer"]["text"], "footer", 2048);
        assert!(
            title.chars().count() + description.chars().count() + footer.chars().count() <= 6000
        );
        all = all + title + description;
    }
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    all
}

/// Telegram Bot API sendMessage: `chat_id` and `text` of 1 to 4096 characters.
fn telegram(body: &Value) -> String {
    assert_eq!(body["chat_id"], "-1001234567890");
    assert!(
        body.get("parse_mode").is_none(),
        "plain text: nothing is read as markup"
    );
    text(&body["text"], "text", 4096).to_owned()
}

/// Checks a rendered body against a platform's documented shape; returns the text it shows.
type Check = fn(&Value) -> String;

#[test]
fn each_preset_fits_its_platform_for_every_event_in_both_languages() {
    let checks: [(&str, Check); 5] = [
        ("slack", slack),
        ("teams", teams),
        ("mattermost", mattermost),
        ("discord", discord),
        ("telegram", telegram),
    ];
    assert_eq!(PRESETS.len(), checks.len());
    let events = events();
    assert_eq!(events.len(), 2 * (12 + 14));
    for (name, check) in checks {
        for (event_type, body, lang) in &events {
            let template = Template::preset(name)
                .unwrap()
                .var("chat_id", "-1001234567890")
                .var("lang", *lang);
            let rendered = template
                .render(*event_type, "msg_1", None, body)
                .unwrap_or_else(|e| panic!("{name} {event_type}: {e}"));
            let json: Value = serde_json::from_str(&rendered)
                .unwrap_or_else(|e| panic!("{name} {event_type}: {e}: {rendered}"));
            // A preset runs as Rust: it writes what its template renders, checked and
            // compacted.
            let written = Template::inline(template.text())
                .unwrap()
                .var("chat_id", "-1001234567890")
                .var("lang", *lang)
                .render(*event_type, "msg_1", None, body)
                .unwrap();
            assert_eq!(rendered, written, "{name} {event_type}");
            let shown = check(&json);
            // The message says what happened, in the user's language.
            let label = label(*event_type, lang);
            assert!(
                shown.contains(label),
                "{name} {event_type}: {label} not in {shown}"
            );
            if let EventType::Zenlix(_) = event_type {
                // The subject arrives whole, as text.
                assert!(
                    shown.contains(r#"Printer "HP""#) || shown.contains("Printer &quot;HP"),
                    "{name} {event_type}: {shown}"
                );
            }
        }
    }
}

fn a_templated_endpoint_gets_the_rendered_body_signed_and_the_same_on_a_retry(t: Transport) {
    // The first attempt of each event fails: the retry must carry the same bytes.
    let receiver = Receiver::start(|_, n| Answer::status(if n % 2 == 0 { 500 } else { 204 }));
    let hmac = Secret::generate().unwrap();
    let ed25519 = Secret::generate_ed25519().unwrap();
    let public = ed25519.public_key().unwrap();
    let (_dir, dead) = dead_letter_file();
    let template = Template::inline(
        r#"{"text": "{{ label }}: {{ subject }}", "ticket": "{{ ticket }}", "id": "{{ id }}"}"#,
    )
    .unwrap();
    let text = Receiver::ok();
    let plain = Template::inline("{{ label }} {{ ticket }}")
        .unwrap()
        .content_type("text/plain; charset=utf-8")
        .unwrap();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("chat", &receiver, "0s,10ms")
                    .secrets([hmac.clone(), ed25519.clone()])
                    .template(template),
            )
            .endpoint(endpoint("text", &text, "0s").template(plain))
            .max_in_flight(1)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("T1"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    let requests = receiver.wait_for(2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "a retry sends the same bytes"
    );
    for request in &requests {
        let json = request.json();
        assert_eq!(json["text"], "Заявка создана: Message with attachments");
        assert_eq!(json["ticket"], "T1");
        assert_eq!(json["id"], request.header("webhook-id").unwrap());
        assert_eq!(request.header("content-type"), Some("application/json"));
        let entries: Vec<&str> = request
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .collect();
        assert!(
            entries[0].starts_with("v1,") && entries[1].starts_with("v1a,"),
            "{entries:?}"
        );
        // Each key alone verifies the rendered body; the public key is all a receiver needs.
        for key in [&hmac, &ed25519, &public] {
            deskhook::signature::verify(
                &request.headers,
                &request.body,
                std::slice::from_ref(key),
                Duration::from_secs(300),
            )
            .unwrap();
        }
    }
}

fn costly_preparations_keep_each_ticket_s_order_and_sign_what_is_sent(t: Transport) {
    // A template of one's own and an ed25519 key: the async transport renders and signs
    // these off its delivery thread, eight requests in flight. Each ticket's events still
    // arrive in order, each signed over the body it arrived with.
    let receiver = Receiver::ok();
    let key = Secret::generate_ed25519().unwrap();
    let public = key.public_key().unwrap();
    let (_dir, dead) = dead_letter_file();
    let template =
        Template::inline(r#"{"ticket": "{{ ticket }}", "n": "{{ subject }}", "id": "{{ id }}"}"#)
            .unwrap();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("crm", &receiver, "0s")
                    .secrets([key])
                    .template(template)
                    .max_in_flight(8),
            )
            .dead_letter_path(&dead),
    );
    let (tickets, per_ticket) = (["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"], 12);
    emit_in_turn(&dispatcher, &tickets, per_ticket);
    guard.flush(Duration::from_secs(20)).unwrap();
    let mut requests = receiver.wait_for(tickets.len() * per_ticket);
    requests.sort_by_key(|r| r.index);
    let mut next = std::collections::HashMap::new();
    for request in &requests {
        let json = request.json();
        let n: usize = json["n"].as_str().unwrap().parse().unwrap();
        let expected = next
            .entry(json["ticket"].as_str().unwrap().to_owned())
            .or_insert(0);
        assert_eq!(n, *expected, "{json} arrived out of its ticket's order");
        *expected += 1;
        assert_eq!(json["id"], request.header("webhook-id").unwrap());
        deskhook::signature::verify(
            &request.headers,
            &request.body,
            std::slice::from_ref(&public),
            Duration::from_secs(300),
        )
        .unwrap();
    }
    assert_eq!(receiver.count(), tickets.len() * per_ticket, "each once");
}

fn a_changed_template_renders_again_and_a_failed_render_is_a_dead_letter(t: Transport) {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                endpoint("chat", &receiver, "0s")
                    .template(Template::inline(r#"{"v": 1, "s": "{{ subject }}"}"#).unwrap()),
            )
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    sink.endpoints().pause("chat").unwrap();
    dispatcher.emit(Action::Create, &ticket("A"), &user);
    // Queued under the first template, sent under the second.
    sink.endpoints()
        .upsert(
            endpoint("chat", &receiver, "0s")
                .template(Template::inline(r#"{"v": 2, "s": "{{ subject }}"}"#).unwrap()),
        )
        .unwrap();
    sink.endpoints().resume("chat").unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.wait_for(1)[0].json()["v"], 2);

    sink.endpoints()
        .upsert(
            endpoint("chat", &receiver, "0s")
                .template(Template::inline("{\n\"s\": \"{{ event.ticket.nope }}\"}").unwrap()),
        )
        .unwrap();
    dispatcher.emit(Action::Lock, &ticket("B"), &user);
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(
        receiver.count(),
        1,
        "nothing is sent for an event that cannot be rendered"
    );
    let letters = deskhook_transports::delivery::read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1);
    let reason = &letters[0].reason;
    assert!(
        reason.contains("line 2") && reason.contains("event.ticket.nope"),
        "{reason}"
    );
    assert_eq!(sink.endpoints().get("chat").unwrap().stats.dead_lettered, 1);
}

/// A template that renders about 60 KiB (600 times 100 characters).
fn sixty_kib() -> Template {
    let hundred = "0123456789".repeat(10);
    Template::inline(&format!(
        r#"{{"pad": "{{% for i in range(600) %}}{hundred}{{% endfor %}}"}}"#
    ))
    .unwrap()
}

/// Waits until `holds` (bounded: the attempts are immediate on loopback).
fn until(what: &str, holds: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !holds() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn a_render_waiting_for_its_retry_is_charged_to_the_memory_budget(t: Transport) {
    // A receiver that is down; the retry is an hour away, so the render waits with its job.
    let receiver = Receiver::start(|_, _| Answer::status(500));
    let (_dir, dead) = dead_letter_file();
    let (sink, _guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("chat", &receiver, "0s,1h").template(sixty_kib()))
            .max_queued_bytes(100 * 1024)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Create, &ticket("T1"), &user);
    let stats = || sink.endpoints().get("chat").unwrap().stats;
    until("the first attempt to fail", || stats().retried == 1);
    assert_eq!(receiver.wait_for(1)[0].body.len(), 60_010);
    // 50 KiB more fit with the first event's body and bookkeeping (about 1 KiB), not with
    // its 60 KiB render too.
    let mut large = ticket("T2");
    large.text = "x".repeat(50 * 1024);
    dispatcher.emit(Action::Create, &large, &user);
    assert_eq!(
        stats().dropped,
        1,
        "the render counts against max_queued_bytes"
    );
}

fn a_render_the_budget_cannot_hold_is_made_again_for_the_retry(t: Transport) {
    // 40 KiB of budget: the event fits, its 60 KiB render cannot wait in it.
    let receiver = Receiver::start(|_, n| Answer::status(if n == 0 { 500 } else { 204 }));
    let (_dir, dead) = dead_letter_file();
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint("chat", &receiver, "0s,10ms").template(sixty_kib()))
            .max_queued_bytes(40 * 1024)
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Create, &ticket("T1"), &deskhook::sample::user());
    guard.flush(Duration::from_secs(10)).unwrap();
    let requests = receiver.wait_for(2);
    assert_eq!(requests[0].body.len(), 60_010);
    assert_eq!(
        requests[0].body, requests[1].body,
        "rendered again, the same bytes"
    );
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
}

#[test]
fn an_endpoint_is_refused_with_a_public_key_or_a_preset_without_its_variables() {
    let receiver = Receiver::ok();
    let (_dir, dead) = dead_letter_file();
    let (sink, _guard) = HttpSink::builder().dead_letter_path(&dead).build().unwrap();
    let public = Secret::generate_ed25519().unwrap().public_key().unwrap();
    let err = sink
        .endpoints()
        .upsert(endpoint("a", &receiver, "0s").secret(public))
        .unwrap_err()
        .to_string();
    assert!(err.contains("public key") && err.contains("whsk_"), "{err}");
    let err = sink
        .endpoints()
        .upsert(endpoint("b", &receiver, "0s").template(Template::preset("telegram").unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("endpoint 'b'") && err.contains("template_vars.chat_id"),
        "{err}"
    );
}

for_both_transports!(
    a_templated_endpoint_gets_the_rendered_body_signed_and_the_same_on_a_retry,
    costly_preparations_keep_each_ticket_s_order_and_sign_what_is_sent,
    a_changed_template_renders_again_and_a_failed_render_is_a_dead_letter,
    a_render_waiting_for_its_retry_is_charged_to_the_memory_budget,
    a_render_the_budget_cannot_hold_is_made_again_for_the_retry
);
