//! Values escaped for the body's content type: inside JSON strings, as entities in HTML
//! and XML, percent-encoded in forms, as they are in plain text; filters on captured
//! output; and where a body that is not JSON went wrong.

use super::*;

/// `text` rendered as a template for a body of `content_type`, for an event of `body`.
fn rendered_as(text: &str, content_type: &str, body: &[u8]) -> String {
    Template::inline(text)
        .unwrap()
        .content_type(content_type)
        .unwrap()
        .render(create(), "e", None, body)
        .unwrap()
}

#[test]
fn values_are_escaped_inside_json_strings() {
    let body = br#"{"ticket":{"code":"1","subject":"\"}, \"admin\": true, \"x\": \"\\\n"},
        "initial_user":{"profile":{"lang":"en"}}}"#;
    let out = render(r#"{"text": "{{ subject }}"}"#, body).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed.as_object().unwrap().len(), 1, "{out}");
    assert_eq!(parsed["text"], "\"}, \"admin\": true, \"x\": \"\\\n");
}

#[test]
fn values_are_escaped_for_html_xml_and_forms_and_x_json_is_json() {
    let body =
        br#"{"ticket":{"code":"E3XK","subject":"<img src=x onerror=\"a('b')\"> & x&role=admin"}}"#;
    let with = |text: &str, content_type: &str| rendered_as(text, content_type, body);
    assert_eq!(
        with("<p>{{ subject }}</p>", "text/html; charset=utf-8"),
        "<p>&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt; &amp; x&amp;role=admin</p>"
    );
    assert!(with("<s>{{ subject }}</s>", "application/atom+xml").starts_with("<s>&lt;img"));
    assert_eq!(
        with(
            "ticket={{ ticket }}&subject={{ subject }}",
            "application/x-www-form-urlencoded"
        ),
        "ticket=E3XK&subject=%3Cimg+src%3Dx+onerror%3D%22a%28%27b%27%29%22%3E+%26+x%26role%3Dadmin"
    );
    // A JSON type by another name is JSON: escaped as a string's inside, and checked.
    assert_eq!(
        with(r#"{"s": "{{ subject }}"}"#, "application/x-json"),
        r#"{"s":"<img src=x onerror=\"a('b')\"> & x&role=admin"}"#
    );
    assert_eq!(
        with("{{ subject }}", "text/plain"),
        r#"<img src=x onerror="a('b')"> & x&role=admin"#,
        "plain text as it is"
    );
}

/// `tojson`'s JSON in an HTML or XML body has `<`, `>`, `&` and `'` as `\u` escapes (they
/// are inside its strings), and in a form body it is percent-encoded: a part of `event` as
/// much as a value the template made.
#[test]
fn tojson_is_escaped_for_html_and_forms() {
    let body = br#"{"ticket":{"code":"E3XK","subject":"</pre><img src=x> x&admin=true"}}"#;
    let with = |text: &str, content_type: &str| rendered_as(text, content_type, body);
    for template in [
        "<pre>{{ event.ticket|tojson }}</pre>",
        "<pre>{{ {'s': subject}|tojson }}</pre>",
    ] {
        let html = with(template, "text/html");
        assert!(
            html.contains(r"\u003c/pre\u003e\u003cimg") && html.contains(r"x\u0026admin"),
            "{html}"
        );
        assert_eq!(
            html.matches('<').count(),
            2,
            "only the template's own tags: {html}"
        );
    }
    for template in [
        "data={{ event.ticket|tojson }}",
        "data={{ {'s': subject}|tojson }}",
    ] {
        let form = with(template, "application/x-www-form-urlencoded");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs.len(), 1, "one field: {form}");
        let data: serde_json::Value = serde_json::from_str(&pairs[0].1).unwrap();
        assert!(
            data.to_string().contains("x&admin=true"),
            "the JSON whole, decoded: {data}"
        );
    }
}

#[test]
fn a_plain_text_template_prints_values_as_they_are() {
    let template = Template::inline("{{ subject }} \"{{ event.ticket.code }}\"")
        .unwrap()
        .content_type("text/plain; charset=utf-8")
        .unwrap();
    assert_eq!(
        template.render(create(), "e", None, ZENLIX).unwrap(),
        "Printer \"E3XK\""
    );
    assert!(Template::inline("x").unwrap().content_type("").is_err());
}

#[test]
fn text_filters_on_captured_output_change_the_text_and_escape_it_once() {
    let template = Template::inline(
        r#"{% set m %}{{ subject }}{% endset %}{"t": "{{ m|truncate(8) }}", "e": "{{ m|entities }}"}"#,
    )
    .unwrap();
    let with = |subject: &str| {
        let body = serde_json::json!({"ticket": {"code": "1", "subject": subject}}).to_string();
        let out = template
            .render(create(), "e", None, body.as_bytes())
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        (
            value["t"].as_str().unwrap().to_owned(),
            value["e"].as_str().unwrap().to_owned(),
        )
    };
    // Not cut, and cut: the same quotes either way, never escaped twice nor cut mid-escape.
    assert_eq!(
        with(r#"Say "hi""#),
        (r#"Say "hi""#.to_owned(), r#"Say "hi""#.to_owned())
    );
    assert_eq!(
        with(r#"Say "hi"! <b>"#),
        (
            r#"Say "hi…"#.to_owned(),
            r#"Say "hi"! &lt;b&gt;"#.to_owned()
        )
    );
    assert_eq!(with("a\\b\"").0, "a\\b\"", "backslashes and quotes");
}

#[test]
fn a_body_that_is_not_json_is_quoted_where_it_went_wrong() {
    let out = render(
        "{% for c in event.ticket.comments %}\n{\"text\": {{ c.text }}}{% endfor %}",
        ZENLIX,
    );
    let said = message(out);
    assert!(said.contains(r#"near "\n{\"text\": first}"#), "{said}");
}

/// The variables that may be credentials (an API key; not the chat or the language the
/// presets read) are not quoted in the error, wherever the quote cuts them.
#[test]
fn a_body_that_is_not_json_is_quoted_without_the_variables_values() {
    let template = Template::inline(
        r#"{"chat": "{{ vars.chat_id }}", "auth": "{{ vars.api_key }}", "p": "010101", "n": {{ event.ticket.subject }}}"#,
    )
    .unwrap()
    // A control character, escaped as the render escapes it, and a shorter value that
    // overlaps the longer one's start.
    .var("api_key", "sk_live_0123456789\"abc\u{8}")
    .var("region", "\"auth\": \"sk_")
    // Overlapping copies of one value (`0101` in `010101`).
    .var("pin", "0101")
    .var("chat_id", "-100123");
    let said = message(template.render(create(), "evt-1", None, ZENLIX));
    assert!(!said.contains("sk_live"), "{said}");
    assert!(!said.contains("0123456789"), "{said}");
    assert!(!said.contains("abc"), "{said}");
    assert!(said.contains(r#"…\", \"p\": \"…\", \"n\": "#), "{said}");
}
