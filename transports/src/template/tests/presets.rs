//! The chat presets: found by name, JSON only, their Rust renderers against their
//! templates, and what each platform's markup must not do (mention, link, load).

use super::*;

#[test]
fn presets_are_found_by_name_with_a_suggestion() {
    assert_eq!(
        Template::preset("Slack").unwrap().source(),
        &TemplateSource::Preset("slack")
    );
    let err = Template::preset("slak").unwrap_err().to_string();
    assert!(err.contains("did you mean 'slack'?"), "{err}");
    // A long text without tags, taken for a preset's name: shortened and escaped.
    let text = format!("{{\"text\":\n{}}}", "x".repeat(1000));
    let err = Template::named_or_inline(&text).unwrap_err().to_string();
    assert!(err.starts_with("unknown preset '{\"text\":\\n"), "{err}");
    assert!(err.len() < 400, "{err}");
    let telegram = Template::preset("telegram").unwrap();
    assert!(
        telegram
            .check()
            .unwrap_err()
            .contains("template_vars.chat_id")
    );
    assert!(telegram.var("chat_id", "-100123").check().is_ok());
}

#[test]
fn a_preset_takes_json_content_types_only() {
    // Its values are escaped as JSON under any JSON type, `text/json` too.
    let preset = Template::preset("discord").unwrap();
    let json = preset.clone().content_type("text/json").unwrap();
    let mut body: serde_json::Value = serde_json::from_slice(ZENLIX).unwrap();
    body["ticket"]["subject"] = r#"x","embeds":[],"z":""#.into();
    let out = json
        .render(create(), "e", None, &serde_json::to_vec(&body).unwrap())
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["embeds"][0]["title"], r#"x","embeds":[],"z":""#);
    // Under another type they would go unescaped: refused, and said why.
    let err = preset.content_type("text/plain").unwrap_err().to_string();
    assert!(err.contains("the preset 'discord' writes JSON"), "{err}");
}

#[test]
fn each_preset_in_rust_writes_what_its_template_renders() {
    // Past every preset's truncation, with what Slack's `entities` and the JSON escaping
    // change, and empty and blank fields.
    let long = |unit: &str, n: usize| unit.repeat(n);
    let edge = serde_json::json!({
        "ticket": {
            "code": "<&7>",
            "subject": long("a <b> & \"c\" ж\t", 40),
            "text": long("line\n> quoted & <tag>\r\u{1}", 300),
            "comments": [{"text": long("c\n", 2000)}],
        },
        "initial_user": {"profile": {"full_name": long("Анна & <Bob> ", 12), "lang": "ru-RU"}},
    });
    let edge = serde_json::to_vec(&edge).unwrap();
    let blank = br#"{"ticket":{"code":"","subject":"  spaced \" {{ x }} }, {\n","text":""},
        "initial_user":{"profile":{"full_name":"  ","lang":"en"}}}"#;
    let bodies: [(&str, &[u8]); 6] = [
        ("create", ZENLIX),
        ("create", &edge),
        ("comment", &edge),
        ("lock", blank),
        (
            "usedesk.rating",
            br#"{"rating":{"ticket_id":2261907,"rating":3,"comment":"ok"}}"#,
        ),
        ("iqchannels.typing", br#"{}"#),
    ];
    for preset in PRESETS {
        let native = Template::preset(preset.name)
            .unwrap()
            .var("chat_id", "-1 \"0");
        let written = Template::inline(preset.source)
            .unwrap()
            .var("chat_id", "-1 \"0");
        for (event_type, body) in bodies {
            let event_type = EventType::from_wire(event_type).unwrap();
            let fast = native.render(event_type, "e", Some("t"), body).unwrap();
            let checked = written.render(event_type, "e", Some("t"), body).unwrap();
            assert_eq!(fast, checked, "{} for {event_type}", preset.name);
        }
    }
}

/// Slack refuses (400) a section over 3000 characters: a text of many lines, each quoted
/// with a '>', stays within it, by the preset in Rust and by its template alike.
#[test]
fn the_slack_section_stays_within_3000_characters_whatever_the_text() {
    let mut body: serde_json::Value = serde_json::from_slice(ZENLIX).unwrap();
    body["ticket"]["subject"] = "s".repeat(400).into();
    body["ticket"]["text"] = "\n".repeat(2000).into();
    let body = serde_json::to_vec(&body).unwrap();
    let preset = Template::preset("slack").unwrap();
    let inline = Template::inline(preset.text()).unwrap();
    for template in [preset, inline] {
        let out = template.render(create(), "e", None, &body).unwrap();
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        let section = out["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            section.chars().count() <= 3000,
            "{}",
            section.chars().count()
        );
        assert!(section.ends_with('…'), "cut, not refused");
    }
}

/// Mattermost renders its text as Markdown: a customer's `@all` notifies nobody and an
/// image in a subject loads nothing, by the preset in Rust and by its template alike.
#[test]
fn the_mattermost_preset_mentions_nobody_and_loads_no_image() {
    let mut body: serde_json::Value = serde_json::from_slice(ZENLIX).unwrap();
    body["ticket"]["subject"] = "@all look ![x](https://tracker.example/t.png)".into();
    body["ticket"]["text"] = "ping @channel, mail a@b.example!".into();
    let body = serde_json::to_vec(&body).unwrap();
    let preset = Template::preset("mattermost").unwrap();
    let inline = Template::inline(preset.text()).unwrap();
    for template in [preset, inline] {
        let out = template.render(create(), "e", None, &body).unwrap();
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        let text = out["text"].as_str().unwrap();
        assert!(
            !text.contains("@all") && !text.contains("@channel"),
            "{text}"
        );
        assert!(!text.contains("!["), "{text}");
        assert!(text.contains("@\u{2060}all look !\u{2060}[x]"), "{text}");
        assert!(text.contains("b.example!"), "a lone '!' stays: {text}");
    }
}

/// Teams renders a TextBlock's text and a fact's value as Markdown: a customer's
/// `[words](address)` shows as written, not as a link whose words hide its address, by the
/// preset in Rust and by its template alike.
#[test]
fn the_teams_preset_shows_no_link_in_place_of_its_address() {
    let mut body: serde_json::Value = serde_json::from_slice(ZENLIX).unwrap();
    body["ticket"]["subject"] = "[Your invoice](https://phish.example/x)".into();
    body["ticket"]["text"] = "see [here](https://phish.example/y) or https://ok.example".into();
    let body = serde_json::to_vec(&body).unwrap();
    let preset = Template::preset("teams").unwrap();
    let inline = Template::inline(preset.text()).unwrap();
    for template in [preset, inline] {
        let out = template.render(create(), "e", None, &body).unwrap();
        // Its strings as they are, escapes read.
        let out = serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .to_string();
        assert!(!out.contains("]("), "{out}");
        assert!(
            out.contains("[Your invoice]\u{2060}(https://phish.example/x)"),
            "{out}"
        );
        assert!(out.contains("or https://ok.example"), "{out}");
    }
}

/// The chats that read customers' text as Markdown, or find mentions in it (Mattermost,
/// Teams, Discord, Telegram): no link, inline or by reference, shows words in place of its
/// address, and no mention notifies, by each preset in Rust and by its template alike.
#[test]
fn the_markdown_presets_show_no_hidden_link_and_notify_nobody() {
    let mut body: serde_json::Value = serde_json::from_slice(ZENLIX).unwrap();
    body["ticket"]["subject"] = "[Your invoice][1] for @cfo".into();
    body["ticket"]["text"] =
        "pay [here](https://phish.example/y)\n\n[1]: https://phish.example/x".into();
    let body = serde_json::to_vec(&body).unwrap();
    for name in ["mattermost", "teams", "discord", "telegram"] {
        let preset = Template::preset(name).unwrap().var("chat_id", "-100");
        let inline = Template::inline(preset.text())
            .unwrap()
            .var("chat_id", "-100");
        for template in [preset, inline] {
            let out = template.render(create(), "e", None, &body).unwrap();
            // Its strings as they are, escapes read.
            let out = serde_json::from_str::<serde_json::Value>(&out)
                .unwrap()
                .to_string();
            for hidden in ["](", "][", "]:", "@cfo"] {
                assert!(!out.contains(hidden), "{name}: {hidden}: {out}");
            }
            assert!(out.contains("[Your invoice]\u{2060}[1]"), "{name}: {out}");
        }
    }
}
