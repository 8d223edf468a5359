use deskhook::EventType;

use super::output::{compact, entities, truncate};
use super::*;

mod escaping;
mod plan;
mod presets;

const ZENLIX: &[u8] = br#"{"ticket":{"code":"E3XK","subject":"Printer","text":"It smokes",
    "comments":[{"text":"first"},{"text":"last one"}]},
    "initial_user":{"email":"a@example.com","profile":{"full_name":"Anna","lang":"ru"}},
    "action":"create","description":"x","dt":"2019-06-11 11:24:18"}"#;

fn create() -> EventType {
    EventType::from_wire("create").unwrap()
}

fn render(template: &str, body: &[u8]) -> Result<String, Error> {
    Template::inline(template)?.render(create(), "evt-1", None, body)
}

impl Template {
    /// Whether it renders by a plan, without minijinja.
    fn has_plan(&self) -> bool {
        (self.compiled.by_construction.as_ref()).is_some_and(|b| b.plan.is_some())
    }

    /// Whether its plan renders `body` itself (without handing it to minijinja).
    fn plan_renders(&self, body: &[u8]) -> bool {
        self.plan_render(body).is_some()
    }

    /// Its plan's render of `body`, if the plan renders it itself.
    fn plan_render(&self, body: &[u8]) -> Option<String> {
        let parsed = context::Parsed::new(create(), &bytes::Bytes::copy_from_slice(body));
        self.plan_render_in(parsed.unwrap(), "e", None)
    }

    /// Its plan's render of `parsed` with this id and tenant, if the plan renders it itself.
    pub(super) fn plan_render_in(
        &self,
        parsed: context::Parsed,
        id: &str,
        tenant: Option<&str>,
    ) -> Option<String> {
        let by_construction = self.compiled.by_construction.as_ref();
        let plan = by_construction.and_then(|b| b.plan.as_ref())?;
        let context = context::Context {
            parsed: Arc::new(parsed),
            vars: self.vars.value.clone(),
            lang_fallback: self.vars.lang.clone(),
            id: id.into(),
            tenant: tenant.map(Into::into),
            made: context::Made::default(),
        };
        plan.render(&Arc::new(context), self.max_output)
    }
}

fn message(result: Result<String, Error>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn tojson_prints_a_whole_value() {
    let out = render(r#"{"t": {{ event.ticket.comments|tojson }}}"#, ZENLIX).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["t"][1]["text"], "last one");
}

#[test]
fn the_summary_reads_each_format() {
    let out = render(
        "{{ label }}|{{ subject }}|{{ text }}|{{ author }}|{{ ticket }}|{{ lang }}|{{ format }}",
        ZENLIX,
    );
    // Not JSON: refused as a body of the default content type.
    assert!(message(out).contains("not JSON"));
    let text = Template::inline(
        "{{ label }}|{{ subject }}|{{ text }}|{{ author }}|{{ ticket }}|{{ lang }}|{{ format }}",
    )
    .unwrap()
    .content_type("text/plain")
    .unwrap();
    let comment = EventType::from_wire("comment").unwrap();
    assert_eq!(
        text.render(comment, "e", None, ZENLIX).unwrap(),
        "Заявка прокомментирована|Printer|last one|Anna|E3XK|ru|zenlix"
    );
    let rating = EventType::from_wire("usedesk.rating").unwrap();
    let body = br#"{"rating":{"ticket_id":2261907,"rating":3,"comment":"ok"}}"#;
    assert_eq!(
        text.clone()
            .var("lang", "ru")
            .render(rating, "e", None, body)
            .unwrap(),
        "Заявка оценена||★ 3: ok||2261907|ru|usedesk"
    );
    assert_eq!(
        text.render(rating, "e", None, body).unwrap(),
        "Ticket rated||★ 3: ok||2261907|en|usedesk"
    );
}

#[test]
fn an_undefined_variable_names_its_line_and_expression() {
    let err = message(render("{\n\"a\": \"{{ event.ticket.subjet }}\"}", ZENLIX));
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("event.ticket.subjet"), "{err}");
    assert!(err.contains("undefined"), "{err}");
}

#[test]
fn an_undefined_field_read_outside_event_is_pointed_under_it() {
    for (template, hint) in [
        (
            r#"{"a": "{{ ticket.code }}"}"#,
            "(in `ticket.code`); `ticket` is text, and the event's own fields are under `event` \
             (`event.ticket.code`?)",
        ),
        (
            r#"{"a": "{{ author.name }}"}"#,
            "`author` is text, and the event's own fields are under `event` \
             (`event.author.name`?)",
        ),
    ] {
        let err = message(render(template, ZENLIX));
        assert!(err.contains(hint), "{template}: {err}");
    }
    // A name the template does not see is refused when it is made, pointed there too.
    let err = Template::inline(r#"{"a": "{{ initial_user.login }}"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "unknown name 'initial_user' (the event's fields are under `event`: \
             `event.initial_user`?); a template sees event, raw,"
        ),
        "{err}"
    );
    // Under `event` or `vars`, nothing is added to the undefined member.
    for template in [
        r#"{"a": "{{ event.ticket.subjet }}"}"#,
        r#"{"a": "{{ vars.chat_id }}"}"#,
    ] {
        let err = message(render(template, ZENLIX));
        assert!(
            err.ends_with('`') || err.ends_with(")"),
            "{template}: {err}"
        );
        assert!(!err.contains("are under"), "{template}: {err}");
    }
}

#[test]
fn a_template_that_does_not_compile_says_where() {
    let err = Template::inline("{\"a\": \"{{ subject }\"}")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("inline template: line 1, column"), "{err}");
    let err = Template::inline("ok\n{% if x %}").unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn escaping_cannot_be_switched_off() {
    for source in [
        "{% autoescape false %}{{ subject }}{% endautoescape %}",
        "x\n  {%- autoescape false %}{{ subject }}{% endautoescape %}",
    ] {
        let err = Template::inline(source).unwrap_err().to_string();
        assert!(err.contains("autoescape"), "{err}");
    }
    // Refused when the template is made, not at each event.
    for filter in ["safe", "escape", "e"] {
        let source = format!(r#"{{"a": "{{{{ subject|{filter} }}}}"}}"#);
        let err = Template::inline(&source).unwrap_err().to_string();
        assert!(err.contains("unknown filter"), "{err}");
    }
}

/// Mistakes every render would fail on are refused when the template is made, with where
/// they are: the endpoint would otherwise dead-letter each event.
#[test]
fn a_name_or_filter_no_render_has_is_refused_when_the_template_is_made() {
    for (source, says) in [
        (
            r#"{"a": "{{ subjet }}"}"#,
            "line 1, column 11: unknown name 'subjet' (did you mean 'subject'?)",
        ),
        (
            "{% if tenant %}{{ tenant }}{% endif %}\n{{ autor }}",
            "line 2, column 4: unknown name 'autor' (did you mean 'author'?)",
        ),
        // It could be made to hold itself, which would overflow the stack when printed.
        (
            r#"{% set ns = namespace() %}{% set ns.me = ns %}{"a": "{{ ns }}"}"#,
            "line 1, column 13: namespace() is not offered",
        ),
        (
            r#"{"a": "{{ subject|truncate(10, true) }}"}"#,
            "too many arguments",
        ),
        (r#"{"a": "{{ subject|urlencode }}"}"#, "unknown filter"),
        (r#"{"a": {{ subject is mapping2 }}}"#, "unknown test"),
        (r#"{"a": {{ lipsum() }}}"#, "unknown name 'lipsum'"),
        // The same letters in a key, or as an attribute, are not where it is used.
        (
            r#"{"title": "{{ event.titl }} {{ titl }}"}"#,
            "line 1, column 32: unknown name 'titl'",
        ),
    ] {
        let err = Template::inline(source).unwrap_err().to_string();
        assert!(err.contains(says), "{source}: {err}");
    }
    // Names a render has: the event's, loop variables, globals, and variables set later.
    for source in [
        r#"{"a": [{% for c in event.ticket.comments %}{{ loop.index }}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        r#"{% set n = 2 %}{"a": {{ n }}, "r": {{ range(2)|list|tojson }}}"#,
        r#"{"chat": "{{ vars.chat_id }}", "t": "{{ event.ticket.no_such_field|default('') }}"}"#,
    ] {
        Template::inline(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    }
}

#[test]
fn a_template_cannot_loop_forever_or_grow_without_end() {
    let err = message(render(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        ZENLIX,
    ));
    assert!(err.contains("fuel"), "{err}");
    // Doubling a string: the fuel pays for the bytes made, not only the steps.
    let doubling = format!("{{% set s = raw %}}{}", "{% set s = s ~ s %}".repeat(40));
    let err = message(render(&doubling, ZENLIX));
    assert!(err.contains("fuel"), "{err}");
    let err = message(render(r#"{{ "x" * 100000000 }}"#, ZENLIX));
    assert!(err.contains("fuel"), "{err}");
}

#[test]
fn the_output_has_a_limit() {
    let template = Template::inline("{% for c in event.ticket.comments %}{{ raw }}{% endfor %}")
        .unwrap()
        .content_type("text/plain")
        .unwrap()
        .max_output(300);
    let err = template
        .render(create(), "e", None, ZENLIX)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than its max_output of 300"), "{err}");
}

#[test]
fn a_json_template_must_render_json() {
    let err = message(render(r#"{"a": {{ subject }}}"#, ZENLIX));
    assert!(err.contains("not JSON"), "{err}");
    assert!(err.contains("|tojson"), "{err}");
}

#[test]
fn the_trial_render_at_creation_stops_at_the_output_room() {
    // Some 10 MB of output before a mistake: the trial render stops at the room a render
    // has (256 KiB for text) rather than make it all at each upsert; the mistake is the
    // events' to find (they fail for the size first).
    let big = "{% for i in range(4000) %}{{ raw }}{% endfor %}{{ subject|nofilter }}";
    let made = Template::inline(big)
        .and_then(|t| t.content_type("text/plain"))
        .map(|_| ());
    assert!(made.is_ok(), "{made:?}");
    // Within the room, the same mistake is found at creation.
    let small = "{% for i in range(2) %}{{ raw }}{% endfor %}{{ subject|nofilter }}";
    let refused = Template::inline(small).and_then(|t| t.content_type("text/plain"));
    assert!(message(refused.map(|_| String::new())).contains("nofilter"));
}

#[test]
fn the_source_has_a_limit() {
    let big = "x".repeat(MAX_SOURCE + 1);
    assert_eq!(
        Template::inline(&big).unwrap_err().to_string(),
        "inline template: it has more than 65536 bytes, the most a template may have"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.j2");
    // Cut in the middle of a character at the limit: refused for its size, not its UTF-8.
    std::fs::write(&file, format!("{}ж", "x".repeat(MAX_SOURCE - 1))).unwrap();
    let refused = Template::file(&file).unwrap_err().to_string();
    assert!(refused.ends_with("it has more than 65536 bytes, the most a template may have"));
    std::fs::write(&file, b"{\"a\": \"\xff\"}").unwrap();
    let refused = Template::file(&file).unwrap_err().to_string();
    assert!(refused.contains("invalid utf-8 sequence"), "{refused}");
    // A file that never ends is read no further than the limit.
    #[cfg(unix)]
    assert!(
        Template::file("/dev/zero")
            .unwrap_err()
            .to_string()
            .contains("it has more than 65536 bytes")
    );
}

#[test]
fn control_characters_are_escaped_in_json_strings() {
    let template = Template::inline(r#"{"a": "{{ event.t }}"}"#).unwrap();
    let body = "{\"t\": \"q\\\" b\\\\ \\u0001 \\t\\r\\n end ж\"}";
    let out = template
        .render(create(), "e", None, body.as_bytes())
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["a"], "q\" b\\ \u{1} \t\r\n end ж");
}

#[test]
fn json_is_compacted_outside_strings_only() {
    let out = compact(
        br#" { "a b" : [ 1 , "x \" y\n" ] ,
        "c":	true } "#
            .to_vec(),
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"a b":[1,"x \" y\n"],"c":true}"#
    );
    // Escapes at the end of a string, and text that is not JSON: no panic.
    let out = compact(br#"[ "\\" , "\"" , "a\\\"b" ]"#.to_vec());
    assert_eq!(String::from_utf8(out).unwrap(), r#"["\\","\"","a\\\"b"]"#);
    for broken in [&b"\"abc"[..], b"\"ab\\", b"\"\\", b"  ["] {
        compact(broken.to_vec());
    }
}

#[test]
fn filters_of_our_own() {
    let text = |v: Value| v.as_str().unwrap().to_owned();
    assert_eq!(text(truncate("abcdef".into(), 4)), "abc…");
    assert_eq!(text(truncate("abc".into(), 4)), "abc");
    assert_eq!(text(truncate("жжж".into(), 3)), "жжж");
    assert_eq!(text(truncate("жжжжж".into(), 3)), "жж…");
    assert_eq!(
        text(truncate("abc".into(), 0)),
        "",
        "at most none: not even the …"
    );
    assert_eq!(text(entities("<a> & b".into())), "&lt;a&gt; &amp; b");
    assert_eq!(text(entities("plain".into())), "plain");
    assert_eq!(text(entities("Жж<&>ж>".into())), "Жж&lt;&amp;&gt;ж&gt;");
    assert_eq!(text(entities(">".into())), "&gt;");
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
}

#[test]
fn what_an_event_keeps_for_its_renders_is_charged_and_let_go_with_it() {
    use crate::delivery::budget::Budget;
    let id: std::sync::Arc<str> = "evt-1".into();
    let body = bytes::Bytes::from_static(ZENLIX);
    // `raw` is a copy of the body; a loop over `event` reads its index.
    let template = Template::inline(
        r#"{"n": {{ raw|length }}, "keys": "{% for k in event.ticket %}{{ k }} {% endfor %}"}"#,
    )
    .unwrap();
    let budget = Budget::new(usize::MAX);
    let parsed = std::sync::Arc::new(Parsed::new(create(), &body).unwrap().charged_to(&budget));
    let out = template.render_parsed(&parsed, &id, None).unwrap();
    let held = budget.used();
    assert!(
        held > ZENLIX.len(),
        "the copy and the index are charged: {held}"
    );
    // The next render (another endpoint, a retry) reuses them.
    assert_eq!(template.render_parsed(&parsed, &id, None).unwrap(), out);
    assert_eq!(budget.used(), held);
    drop(parsed);
    assert_eq!(budget.used(), 0, "let go with the event");
    // Without room they are not kept: each render makes them again, and renders the same.
    let spent = Budget::new(0);
    let parsed = std::sync::Arc::new(Parsed::new(create(), &body).unwrap().charged_to(&spent));
    assert_eq!(template.render_parsed(&parsed, &id, None).unwrap(), out);
    assert_eq!(template.render_parsed(&parsed, &id, None).unwrap(), out);
    assert_eq!(spent.used(), 0);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#""keys":"code subject text comments ""#),
        "{text}"
    );
    // Made once per render, however often the render reads it.
    let loop_over = Template::inline(
        "{% for c in event.ticket.comments %}{{ event.ticket.code }}{{ raw|length }} {% endfor %}",
    )
    .unwrap()
    .content_type("text/plain")
    .unwrap();
    let made = || super::lazy::ROOTS_MADE.with(std::cell::Cell::get);
    let before = made();
    let out = loop_over.render_parsed(&parsed, &id, None).unwrap();
    assert_eq!(made() - before, 1);
    assert!(String::from_utf8(out).unwrap().starts_with("E3XK"));
}

#[test]
fn endpoints_with_the_same_preset_and_variables_share_one_render_per_event() {
    let parsed =
        std::sync::Arc::new(Parsed::new(create(), &bytes::Bytes::from_static(ZENLIX)).unwrap());
    let id: std::sync::Arc<str> = "evt-1".into();
    let a = Template::preset("slack").unwrap();
    let b = Template::preset("slack").unwrap();
    assert!(a.ptr_eq(&b), "a preset is compiled once");
    let budget = crate::delivery::budget::Budget::new(usize::MAX);
    let first = a.render_shared(&parsed, &id, None, &budget).unwrap();
    let second = b.render_shared(&parsed, &id, None, &budget).unwrap();
    assert_eq!(first.as_ptr(), second.as_ptr(), "one render, shared");
    // Other variables, or a template compiled apart: a render of their own.
    let other_vars = Template::preset("slack").unwrap().var("lang", "en");
    let third = other_vars
        .render_shared(&parsed, &id, None, &budget)
        .unwrap();
    assert_ne!(first.as_ptr(), third.as_ptr());
    let inline = Template::inline(Template::preset("slack").unwrap().text()).unwrap();
    let fourth = inline.render_shared(&parsed, &id, None, &budget).unwrap();
    assert_ne!(first.as_ptr(), fourth.as_ptr());
    assert_eq!(first, fourth, "the same text renders the same body");
    // What is kept for other endpoints is charged to the memory budget: with none left,
    // each endpoint renders its own.
    let spent = crate::delivery::budget::Budget::new(0);
    let parsed =
        std::sync::Arc::new(Parsed::new(create(), &bytes::Bytes::from_static(ZENLIX)).unwrap());
    let first = a.render_shared(&parsed, &id, None, &spent).unwrap();
    let second = b.render_shared(&parsed, &id, None, &spent).unwrap();
    assert_ne!(
        first.as_ptr(),
        second.as_ptr(),
        "nothing kept without budget"
    );
    assert_eq!(first, second);
    assert_eq!(spent.used(), 0);
    let kept = budget.used();
    let again = a.render_shared(&parsed, &id, None, &budget).unwrap();
    assert_eq!(
        budget.used(),
        kept + again.len(),
        "a kept render is charged"
    );
}

#[test]
fn event_is_read_as_the_template_reaches_into_it() {
    let body = br#"{"ticket":{"code":"E3XK","n":7,"ok":true,"none":null,"ratio":0.5,
        "comments":[{"text":"first","tags":["a","b"]},{"text":"last \"one\""}],
        "esc\"aped":"k"},"list":[[1,2],[]]}"#;
    let text = |template: &str| {
        Template::inline(template)
            .unwrap()
            .content_type("text/plain")
            .unwrap()
            .render(create(), "e", None, body)
            .unwrap()
    };
    assert_eq!(
        text(
            "{{ event.ticket.code }}|{{ event.ticket.n + 1 }}|{{ event.ticket.ok }}|{{ event.ticket.none is none }}|{{ event.ticket.ratio * 2 }}"
        ),
        "E3XK|8|true|true|1.0"
    );
    assert_eq!(
        text(
            "{{ event.ticket.comments|length }}|{{ event.ticket.comments[1].text }}|{{ event.ticket.comments|map(attribute='text')|join(',') }}|{{ event.ticket.comments[0].tags|last }}"
        ),
        "2|last \"one\"|first,last \"one\"|b"
    );
    assert_eq!(
        text(
            "{% for k in event.ticket %}{{ k }} {% endfor %}|{{ event.ticket['esc\"aped'] }}|{{ event.list[0]|sum }}|{{ event.list[1]|length }}"
        ),
        "code n ok none ratio comments esc\"aped |k|3|0"
    );
    assert_eq!(
        text("{{ event.ticket.missing is defined }}|{{ event.ticket.comments[5] is defined }}"),
        "false|false"
    );
    // A part of the event is printed as the body has it, and the same through tojson.
    assert_eq!(
        text("{{ event.ticket.comments[0] }}|{{ event.list|tojson }}"),
        r#"{"text":"first","tags":["a","b"]}|[[1,2],[]]"#
    );
    // Strict: an undefined member is an error.
    let err = Template::inline(r#"{"a": "{{ event.ticket.nope.deeper }}"}"#)
        .unwrap()
        .render(create(), "e", None, body)
        .unwrap_err()
        .to_string();
    assert!(err.contains("undefined"), "{err}");
    // In a JSON template, the whole event goes through tojson as it is, and a part printed
    // inside a string is escaped.
    let out = render(
        r#"{"event": {{ event|tojson }}, "t": "{{ event.ticket.comments[1] }}"}"#,
        body,
    )
    .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let original: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(parsed["event"], original);
    assert_eq!(parsed["t"], r#"{"text":"last \"one\""}"#);
}

/// A template that renders through minijinja is costly until a render says otherwise: its
/// first render could take up to its fuel, on the async transport's delivery thread. A
/// plan or a preset is cheap from the start.
#[cfg(feature = "_async")]
#[test]
fn a_minijinja_template_counts_as_costly_until_it_has_rendered() {
    let looped = Template::inline(
        r#"{"n": [{% for i in range(3) %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
    )
    .unwrap();
    assert!(!looped.has_plan());
    assert!(looped.costly_to_render(), "never measured");
    // (A render of this debug build would be timed, and slow: a quick one is told.)
    looped.took(std::time::Duration::from_micros(1));
    assert!(!looped.costly_to_render(), "measured quick");
    let planned = Template::inline(r#"{"s": "{{ subject }}"}"#).unwrap();
    assert!(planned.has_plan() && !planned.costly_to_render());
    assert!(!Template::preset("slack").unwrap().costly_to_render());
}

/// A render is stopped as soon as it passes what it may write, not after it has made
/// tens of megabytes (what the fuel allows) to be measured.
#[test]
fn a_render_is_stopped_when_it_passes_its_output_limit() {
    // Measured whole, it would have run out of fuel first, at about 64 MB.
    let loop_raw =
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ raw }}{% endfor %}{% endfor %}";
    let text = Template::inline(loop_raw)
        .unwrap()
        .content_type("text/plain")
        .unwrap();
    // JSON is compacted after: its layout has room (16 times the limit and a MiB), and
    // then it is stopped too.
    let json = Template::inline(&format!("[\"{loop_raw}\"]")).unwrap();
    for template in [text, json] {
        let err = (template.max_output(1000))
            .render(create(), "e", None, ZENLIX)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rendered more than its max_output of 1000 bytes"),
            "{err}"
        );
    }
}

/// A list repeated with `*` costs minijinja no fuel (it is lazy): printed, or made text by
/// `tojson`, `string` or `pprint`, it is refused as its text passes the render's room, not
/// made whole first (a hundred million repetitions would hold gigabytes). `debug()`, which
/// prints the whole context, is not offered.
#[test]
fn a_list_repeated_a_hundred_million_times_is_refused_as_its_text_is_made() {
    let json = r#"{"a": "{{ ['x' * 100] * 100000000 }}"}"#;
    let text = ["{{ [1] * 100000000 }}", "{{ ([1] * 100000000)|string }}"];
    let filtered = [
        "{{ ([1] * 100000000)|tojson }}",
        "{{ ([1] * 100000000)|pprint }}",
    ];
    for (template, content_type) in std::iter::once((json, "application/json"))
        .chain(text.into_iter().chain(filtered).map(|t| (t, "text/plain")))
    {
        let err = Template::inline(template)
            .unwrap()
            .content_type(content_type)
            .unwrap()
            .render(create(), "e", None, ZENLIX)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rendered more than its max_output of 262144 bytes"),
            "{template}: {err}"
        );
    }
    let err = message(render("{{ debug() }}", ZENLIX));
    assert!(err.contains("debug"), "{err}");
}

/// `json_fits` counts at least as many bytes as the JSON takes, and no more: a value whose
/// JSON just fits the room fits.
#[test]
fn a_value_whose_json_just_fits_fits() {
    use super::output::json_fits;
    let json = r#"[[1],[1],{"a":"b"}]"#;
    let value: Value = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&value).unwrap(), json);
    assert_eq!(json_fits(&value, &mut json.len(), 0), Ok(()));
    assert_eq!(
        json_fits(&value, &mut (json.len() - 10), 0),
        Err(super::output::Unfit::Room)
    );
    // Too deep to measure is said as such, not as too long.
    let deep = (0..200).fold(Value::from(1), |inner, _| Value::from(vec![inner]));
    let mut room = usize::MAX;
    assert_eq!(
        json_fits(&deep, &mut room, 0),
        Err(super::output::Unfit::Depth)
    );
}

/// A template for a small body may capture a long text to cut it: what it makes from values
/// has a room of its own, at least a few MiB, whatever its `max_output`.
#[test]
fn a_small_body_may_capture_a_long_text_to_cut_it() {
    let long = "x".repeat(5000);
    let body = format!(r#"{{"ticket":{{"code":"E3XK","subject":"{long}"}}}}"#);
    let template = Template::inline("{% set s %}{{ subject }}{% endset %}{{ s|truncate(20) }}")
        .unwrap()
        .content_type("text/plain")
        .unwrap()
        .max_output(100);
    let out = template
        .render(create(), "e", None, body.as_bytes())
        .unwrap();
    assert_eq!(out.chars().count(), 20);
}
