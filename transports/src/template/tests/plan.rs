//! A template JSON by construction, and its plan: which templates have one, and that
//! they render what minijinja renders, limits and errors included.

use super::*;

#[test]
fn a_template_that_prints_values_only_inside_strings_is_json_by_construction() {
    let fields = "{\n  \"title\": \"{{ subject }}\",\t\"what\" : \"{{- label|upper }} by {{ author|default('nobody')|truncate(20) -}}\",\n  \"n\": [1, true, null, {\"deep\": \"{{ event.ticket.comments[1].text|replace(\"o\", '}}') }}\"}],\n  \"k\": \"\\u00e9 \\\" {{ event_type }}\"\n}\n";
    assert_eq!(
        shape::compacted(fields).as_deref(),
        Some(
            "{\"title\":\"{{ subject }}\",\"what\":\"{{- label|upper }} by {{ author|default('nobody')|truncate(20) -}}\",\"n\":[1,true,null,{\"deep\":\"{{ event.ticket.comments[1].text|replace(\"o\", '}}') }}\"}],\"k\":\"\\u00e9 \\\" {{ event_type }}\"}"
        )
    );
    // A whole value where a value goes: through any filters, the last one tojson.
    let whole = "{\"data\": {{ event|tojson }},\n \"c\": {{- event.ticket.comments|default([])|map(attribute=\"te)x(t\")|list|tojson }} }";
    assert_eq!(
        shape::compacted(whole).as_deref(),
        Some(
            "{\"data\":{{ event|tojson }},\"c\":{{- event.ticket.comments|default([])|map(attribute=\"te)x(t\")|list|tojson }}}"
        )
    );
    // Each of these could print something that is not a string's inside, or is not JSON
    // with its values left out: checked after each render instead.
    for checked in [
        r#"[1{{ event|tojson }}]"#,
        r#"[{{ event|tojson }}{{ event|tojson }}]"#,
        r#"{ {{ subject|tojson }}: 1}"#,
        r#"{"a": {{ subject|tojson|upper }}}"#,
        r#"{"a": {{ subject|tojson(indent=2) }}}"#,
        r#"{"a": {{ subject ~ text|tojson }}}"#,
        r#"{"a": {{ subject|f({'k': 1})|tojson }}}"#,
        r#"{"a": {{ subject|default('\''|tojson }}}"#,
        r#"{"a": "{{ subject|tojson }}"}"#,
        r#"{"a": {{ subject }}}"#,
        r#"{"a": "\{{ subject }}"}"#,
        r#"{"a": "\u00{{ subject }}"}"#,
        r#"{"a": "{{ subject ~ '\"' }}"}"#,
        r#"{"a": "{{ subject|join(',') }}"}"#,
        r#"{"a": "{{ range(3) }}"}"#,
        r#"{"a": "{{ subject|default('a\'b') }}"}"#,
        r#"{"a": "{% if subject %}x{% endif %}"}"#,
        r#"{"a": "{{ subject }}"{# note #}}"#,
        r#"{"a": "{{ subject }}",}"#,
        r#"{"a": "{{ subject }}"#,
        r#""{{ subject }}" "{{ text }}""#,
    ] {
        assert_eq!(shape::compacted(checked), None, "{checked}");
    }
}

#[test]
fn a_template_json_by_construction_renders_what_the_checked_path_renders() {
    let hostile = serde_json::json!({
        "ticket": {
            "code": "}\"{",
            "subject": "\"}, \"admin\": true, \"x\": \"\\\n {{ x }} {% y %} </script> \u{1} ж 🦀",
            "text": "a\\\"b\u{7f}\u{2028}",
            "comments": [{"text": "first"}, {"text": "\\u0041 \"o\""}, {"text": "<b>&'</b>", "n": 1}],
            "n": 7, "ok": true, "none": null, "ratio": 0.5, "big": 1e300,
        },
        "initial_user": {"profile": {"full_name": "  \t ", "lang": "ru"}},
    });
    // As a relayed body may come: with whitespace between its tokens.
    let pretty = serde_json::to_vec_pretty(&hostile).unwrap();
    let hostile = serde_json::to_vec(&hostile).unwrap();
    let templates = [
        r#"{"title": "{{ subject }}", "by": "{{ author|default('nobody')|title }}"}"#,
        r#"{"type": "{{ event_type }}", "data": {{ event|tojson }}, "c": {{ event.ticket.comments|default([])|map(attribute="text")|list|tojson }}, "s": [{{ subject|tojson }}, {{ vars|tojson }}, {{ event.ticket.code|tojson }}]}"#,
        "{\n  \"t\": \"{{ label|upper }}: {{ subject|truncate(12) }}\",\n  \"x\": \"  {{- text|entities -}}  \",\n  \"c\": [\"{{ event.ticket.comments[1].text|replace('o', '\"') }}\", 3]\n}\n",
        r#"["{{ event.ticket }}", "{{ event.ticket.comments }}", "{{ ticket|lower|title|capitalize|trim }}"]"#,
        // Rendered by a plan, without minijinja:
        r#"{"t": "{{ subject }} / {{ event.ticket.comments[1].text }} / {{ event.ticket }}"}"#,
        "{\"n\": \"{{ event.ticket.code|truncate(2) }}{{ text|entities|truncate(5) }}{{ subject|entities|truncate(60) }}{{ author|truncate(3) }}\",\n \"v\": \"{{ vars.x }}{{ vars.x|entities }}\", \"e\": \"{{ event.ticket.comments[0] }}\"}",
        r#"{"i": "{{ id }}{{ tenant }}{{ lang }}{{ label }}{{ event_type }}{{ format }}{{ author }}{{ ticket }}", "c": "{{ subject|upper }}{{ author|default('x')|lower }}{{ event.ticket.code|lower|upper }}{{ event.ticket.comments[1].text|default(3)|upper }}"}"#,
        r#"["{{ event.ticket.n }}", "{{ event.ticket.ok }}", "{{ event.ticket.none }}", "{{ event.ticket.ratio }}", "{{ event.ticket.big }}", "{{ event.ticket.n|upper }}", "{{ event.ticket.none|lower }}"]"#,
        // A plan that hands the render to minijinja: a global, not a name of the context.
        r#"{"r": "{{ range }}"}"#,
        // Whole values by a plan: parts of the event as the body has them, scalars and
        // lists of members through tojson.
        r#"{"data": {{ event|tojson }}, "t": {{ event.ticket|tojson }}, "c": {{ event.ticket.comments|default([])|map(attribute="text")|list|tojson }}, "code": {{ event.ticket.code|tojson }}, "one": {{ event.ticket.comments[1]|tojson }}}"#,
        r#"[{{ event.ticket.n|tojson }}, {{ event.ticket.big|tojson }}, {{ event.ticket.none|tojson }}, {{ event.ticket.ratio|tojson }}, "{{ subject }}"]"#,
        // Handed to minijinja: members that are missing or not in every item, a list of
        // an object's keys.
        r#"[{{ event.ticket.nope|default([])|map(attribute='text')|list|tojson }}]"#,
        r#"[{{ event.ticket.comments|map(attribute='n')|tojson }}]"#,
        r#"[{{ event.ticket.code|default([])|map(attribute='text')|list|tojson }}]"#,
    ];
    for (i, source) in templates.into_iter().enumerate() {
        let fast = Template::inline(source).unwrap().var("x", "<a \"b\">");
        assert!(fast.compiled.by_construction.is_some(), "{source}");
        assert_eq!(fast.has_plan(), i >= 4, "{source}");
        // Whole values: the plan renders the first two itself, and hands the others on.
        if i >= 9 {
            assert_eq!(fast.plan_renders(&hostile), i < 11, "{source}");
        }
        // A comment keeps the same render on the checked path.
        let checked = Template::inline(&format!("{source}{{# checked #}}"))
            .unwrap()
            .var("x", "<a \"b\">");
        assert!(checked.compiled.by_construction.is_none());
        for body in [ZENLIX, &hostile, &pretty] {
            for tenant in [None, Some("acme \"1\"")] {
                let out = fast.render(create(), "e\\1", tenant, body);
                let expected = checked.render(create(), "e\\1", tenant, body);
                if body == ZENLIX && source.contains("event.ticket.n }}") {
                    // Members that body does not have: undefined, the same error.
                    assert_eq!(
                        out.map_err(|e| e.to_string()).unwrap_err(),
                        expected.unwrap_err().to_string()
                    );
                    continue;
                }
                let out = out.unwrap();
                serde_json::from_str::<serde::de::IgnoredAny>(&out).unwrap();
                assert_eq!(out, expected.unwrap(), "{source}");
            }
        }
    }
    // A part of the event that is not UTF-8 is not printed as JSON: an error, never a body
    // that is not JSON.
    let broken = b"{\"a\": {\"b\": \"\xff\"}, \"ticket\": {\"code\": \"1\"}}";
    let err = message(render(r#"{"x": {{ event.a|tojson }}}"#, broken));
    assert!(
        err.contains("not UTF-8") || err.contains("not JSON"),
        "{err}"
    );
    // An error names the line and the expression of the source as written.
    let err = message(render(
        "{\n  \"a\": \"{{ subject }}\",\n  \"b\": \"{{ event.ticket.nope }}\"\n}",
        ZENLIX,
    ));
    assert!(
        err.contains("line 3") && err.contains("event.ticket.nope"),
        "{err}"
    );
}

#[test]
fn a_plan_leaves_a_render_that_could_reach_a_limit_to_minijinja() {
    // Each is rendered by a plan and the same on the checked path, which minijinja renders:
    // the same result, whether it is the body, "out of fuel" or "more than max_output".
    let body = |subject: String, ticket: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({
            "ticket": ticket.as_object().unwrap().clone().into_iter()
                .chain([("subject".to_owned(), subject.into())]).collect::<serde_json::Map<_, _>>(),
            "initial_user": {"profile": {"lang": "en"}},
        }))
        .unwrap()
    };
    let repeated = |piece: &str, n: usize| format!("[{}]", vec![piece; n].join(","));
    let cases = [
        // Filters read more than the fuel allows, though the output is small.
        (
            repeated(r#""{{ subject|truncate(50) }}""#, 40),
            body("x".repeat(2_000_000), serde_json::json!({"code": "1"})),
            DEFAULT_MAX_OUTPUT,
        ),
        // More output than the fuel allows, under a raised max_output.
        (
            repeated(r#""{{ event.ticket.list }}""#, 40),
            body(
                "s".into(),
                serde_json::json!({"code": "1", "list": vec![12_345_678; 12_000]}),
            ),
            64 << 20,
        ),
        // More output than max_output.
        (
            repeated(r#""{{ subject }}""#, 100),
            body("y".repeat(20_000), serde_json::json!({"code": "1"})),
            DEFAULT_MAX_OUTPUT,
        ),
        // The limit is on the body as sent: compact.
        (
            format!(r#"{{"a":{}"{{{{ subject }}}}"}}"#, " ".repeat(200)),
            body("hi".into(), serde_json::json!({"code": "1"})),
            50,
        ),
        // Within every limit.
        (
            repeated(r#""{{ subject|truncate(5) }}""#, 40),
            body("z".repeat(2_000), serde_json::json!({"code": "1"})),
            DEFAULT_MAX_OUTPUT,
        ),
    ];
    for (i, (source, body, max_output)) in cases.into_iter().enumerate() {
        let fast = Template::inline(&source).unwrap().max_output(max_output);
        assert!(fast.has_plan(), "{source}");
        let checked = Template::inline(&format!("{source}{{# checked #}}"))
            .unwrap()
            .max_output(max_output);
        let shown = |r: Result<String, Error>| r.map(|out| out.len()).map_err(|e| e.to_string());
        assert_eq!(
            shown(fast.render(create(), "e", None, &body)),
            shown(checked.render(create(), "e", None, &body)),
            "{source}"
        );
        assert_eq!(
            fast.render(create(), "e", None, &body).is_ok(),
            i >= 3,
            "{source}"
        );
    }
}

#[test]
fn a_plan_prints_whole_parts_of_the_event_and_lists_of_their_members() {
    for (source, planned) in [
        (r#"{"a": {{ event|tojson }}}"#, true),
        (r#"{"a": {{ event.ticket.comments[0] | tojson }}}"#, true),
        (
            r#"{"a": {{ event.x|default([])|map(attribute="t")|list|tojson }}}"#,
            true,
        ),
        (
            r#"{"a": {{ event.x|map( attribute = 't_1' )|tojson }}}"#,
            true,
        ),
        // `list` of a part of `event` makes a list that tojson writes again.
        (r#"{"a": {{ event.x|list|tojson }}}"#, false),
        (
            r#"{"a": {{ event.x|list|map(attribute="t")|tojson }}}"#,
            false,
        ),
        // Handed to minijinja whole: another name, a trimmed tag, other filters or
        // arguments, a member that minijinja reads as an item or a path.
        (r#"{"a": {{ subject|tojson }}}"#, false),
        (r#"{"a": {{- event|tojson }}}"#, false),
        (r#"{"a": {{ event|tojson -}}}"#, false),
        (r#"{"a": {{ event|default([], true)|tojson }}}"#, false),
        (r#"{"a": {{ event|default({})|tojson }}}"#, false),
        (r#"{"a": {{ event|list|default([])|tojson }}}"#, false),
        (r#"{"a": {{ event|map(attribute="a.b")|tojson }}}"#, false),
        (r#"{"a": {{ event|map(attribute="1")|tojson }}}"#, false),
        (r#"{"a": {{ event|map(attribute=ticket)|tojson }}}"#, false),
        (r#"{"a": {{ event|map("upper")|tojson }}}"#, false),
        (
            r#"{"a": {{ event|map(attribute="t")|map(attribute="u")|tojson }}}"#,
            false,
        ),
        (
            r#"{"a": {{ event|map(attribute="t", default="")|tojson }}}"#,
            false,
        ),
        (r#"{"a": {{ event|first|tojson }}}"#, false),
    ] {
        let template = Template::inline(source).unwrap();
        assert_eq!(template.has_plan(), planned, "{source}");
    }
    // An emitted event's body is compact: its parts are printed as they are, the same
    // bytes as minijinja's render.
    let crm = r#"{"id": "{{ ticket }}", "c": {{ event.ticket.comments|default([])|map(attribute="text")|list|tojson }}, "t": {{ event.ticket|tojson }}, "e": {{ event|tojson }}}"#;
    let fast = Template::inline(crm).unwrap();
    let checked = Template::inline(&format!("{crm}{{# checked #}}")).unwrap();
    assert!(fast.has_plan() && !checked.has_plan());
    let event = deskhook::Event::new(
        deskhook::Action::Comment,
        deskhook::sample::ticket(),
        deskhook::sample::user(),
    );
    let emitted = deskhook::sink::Emitted::new(event.as_event_ref().unwrap()).unwrap();
    let out = fast.render_emitted(&emitted).unwrap();
    assert_eq!(out, checked.render_emitted(&emitted).unwrap());
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["e"], serde_json::to_value(&event).unwrap());
}

#[test]
fn rendering_says_the_fastest_way_a_template_renders() {
    let text = Template::inline("{{ subject }}")
        .unwrap()
        .content_type("text/plain")
        .unwrap();
    for (template, rendering) in [
        (Template::preset("slack").unwrap(), Rendering::Preset),
        (
            Template::inline(r#"{"t": "{{ subject|entities }}", "c": {{ event.ticket.comments|map(attribute="text")|list|tojson }}}"#).unwrap(),
            Rendering::Direct,
        ),
        (
            Template::inline(r#"{"t": "{{ subject|lower }}", "v": {{ vars|tojson }}}"#).unwrap(),
            Rendering::JsonByConstruction,
        ),
        (
            Template::inline(r#"{"t": "{% for c in event.ticket.comments %}{{ c.text }}{% endfor %}"}"#)
                .unwrap(),
            Rendering::Checked,
        ),
        (text, Rendering::Text),
    ] {
        assert_eq!(template.rendering(), rendering, "{}", template.text());
        assert!(!rendering.explain().is_empty());
    }
}
