//! A differential test of templates rendered by a plan (see `plan`) against the same
//! templates rendered by minijinja: each generated template JSON by construction is
//! rendered as it is (by its plan, or handed back to minijinja) and with `{# checked #}`
//! appended (minijinja, checked and compacted), and the two results must be the same
//! bytes, or the same error. Bodies are written by hand: duplicate keys, escaped keys,
//! strings escaped in several ways, numbers as JSON allows them, any whitespace between
//! tokens; events emitted typed (`render_emitted`, whose body is known to be compact)
//! too.
//!
//! `DIFFTEST_CASES` sets the number of cases (default 2000 for each test), `DIFFTEST_SEED`
//! the first seed, and `DIFFTEST_SURVEY=1` counts every discrepancy (by kind) instead of
//! failing at the first.

use std::collections::BTreeMap;
use std::sync::Arc;

use deskhook::EventType;

use super::*;

thread_local! {
    /// What the cases a plan rendered had, by feature.
    static COVERED: std::cell::RefCell<BTreeMap<&'static str, u64>> = Default::default();
}

/// splitmix64: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

mod bodies;
mod templates;

use bodies::*;
use templates::Gen;

// --- comparing ---------------------------------------------------------------------------

/// The settings of one render besides the template and the body.
struct Settings {
    event_type: EventType,
    id: String,
    tenant: Option<String>,
    vars: Vec<(&'static str, String)>,
    max_output: usize,
}

fn gen_settings(rng: &mut Rng) -> Settings {
    let event_type = EventType::from_wire(rng.pick(&[
        "create",
        "create",
        "comment",
        "usedesk.rating",
        "usedesk.ticket_created",
        "iqchannels.message_created",
    ]))
    .unwrap();
    let mut vars = Vec::new();
    if rng.chance(50) {
        vars.push(("x", gen_text(rng, 3)));
    }
    if rng.chance(30) {
        vars.push(("lang", (rng.pick(&["ru", "en", "RU-ru", ""])).to_string()));
    }
    let max_output = match rng.below(10) {
        0 => rng.below(300),
        1 => 64 << 20,
        _ => DEFAULT_MAX_OUTPUT,
    };
    Settings {
        event_type,
        id: (rng.pick(&["e", "e\\1", "id \"<&>\""])).to_string(),
        tenant: rng
            .chance(40)
            .then(|| (rng.pick(&["acme", "acme \"1\" <&>"])).to_string()),
        vars,
        max_output,
    }
}

fn with_settings(template: Template, settings: &Settings) -> Template {
    let mut template = template.max_output(settings.max_output);
    for (name, value) in &settings.vars {
        template = template.var(*name, value.clone());
    }
    template
}

/// What went wrong in one case.
struct Discrepancy {
    kind: String,
    detail: String,
}

/// The two templates of `source`: as it is, and on the checked path.
fn compile(source: &str, settings: &Settings) -> Result<Option<(Template, Template)>, Discrepancy> {
    let fast = Template::inline(source);
    let checked = Template::inline(&format!("{source}{{# checked #}}"));
    match (fast, checked) {
        (Ok(fast), Ok(checked)) => {
            if checked.compiled.by_construction.is_some() {
                return Err(Discrepancy {
                    kind: "checked template is by construction".into(),
                    detail: source.to_owned(),
                });
            }
            Ok(Some((
                with_settings(fast, settings),
                with_settings(checked, settings),
            )))
        }
        (Err(_), Err(_)) => Ok(None),
        (fast, checked) => Err(Discrepancy {
            kind: "compiles one way only".into(),
            detail: format!(
                "{source}\nfast: {:?}\nchecked: {:?}",
                fast.err(),
                checked.err()
            ),
        }),
    }
}

fn compare(
    source: &str,
    body: &[u8],
    settings: &Settings,
    planned: &mut u64,
) -> Result<(), Discrepancy> {
    let Some((fast, checked)) = compile(source, settings)? else {
        return Ok(());
    };
    let render = |t: &Template| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.render(
                settings.event_type,
                &settings.id,
                settings.tenant.as_deref(),
                body,
            )
            .map_err(|e| e.to_string())
        }));
        r.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    };
    let by_plan = Parsed::new(settings.event_type, &bytes::Bytes::copy_from_slice(body))
        .ok()
        .is_some_and(|parsed| {
            let tenant = settings.tenant.as_deref();
            (fast.plan_render_in(parsed, &settings.id, tenant)).is_some()
        });
    *planned += u64::from(by_plan);
    if by_plan {
        let body_text = String::from_utf8_lossy(body);
        let features = [
            ("map(attribute)", source.contains("map(")),
            ("|list", source.contains("list")),
            ("default([])", source.contains("default([])")),
            ("|tojson", source.contains("tojson")),
            (
                "event. inside a string",
                source.contains("\"{{") && source.contains("event"),
            ),
            ("truncate", source.contains("truncate")),
            ("entities", source.contains("entities")),
            (
                "lower or upper",
                source.contains("|lower") || source.contains("upper"),
            ),
            ("default(x)", source.contains("default('")),
            ("escaped key or string in body", body_text.contains("\\u")),
            (
                "body with whitespace",
                body_text.contains(['\n', '\t', ' ']),
            ),
        ];
        COVERED.with(|c| {
            let mut c = c.borrow_mut();
            for (name, hit) in features {
                *c.entry(name).or_insert(0) += u64::from(hit);
            }
        });
    }
    let (a, b) = (render(&fast), render(&checked));
    let shown = || {
        format!(
            "template: {source}\nbody: {}\nsettings: type {} id {:?} tenant {:?} vars {:?} \
             max_output {}\nplan rendered it: {by_plan}\nfast:    {a:?}\nchecked: {b:?}",
            String::from_utf8_lossy(body),
            settings.event_type,
            settings.id,
            settings.tenant,
            settings.vars,
            settings.max_output
        )
    };
    let kind = match (&a, &b) {
        (Err(p), _) | (_, Err(p)) => format!("panic: {p}"),
        (Ok(x), Ok(y)) if x == y => {
            if let Ok(out) = x
                && serde_json::from_str::<serde::de::IgnoredAny>(out).is_err()
            {
                "not JSON on both".into()
            } else {
                return Ok(());
            }
        }
        (Ok(Ok(_)), Ok(Ok(_))) => format!("different bytes (plan: {by_plan})"),
        (Ok(Ok(_)), Ok(Err(_))) => format!("fast Ok, checked Err (plan: {by_plan})"),
        (Ok(Err(_)), Ok(Ok(_))) => format!("fast Err, checked Ok (plan: {by_plan})"),
        (Ok(Err(_)), Ok(Err(_))) => format!("different errors (plan: {by_plan})"),
    };
    Err(Discrepancy {
        kind,
        detail: shown(),
    })
}

/// Runs `cases` cases from `seed` through `case`: fails at the first discrepancy, or (with
/// `DIFFTEST_SURVEY=1`) counts them by kind and shows the shortest of each.
fn run(name: &str, case: impl Fn(u64, &mut u64) -> Result<(), Discrepancy>) {
    let cases = env_num("DIFFTEST_CASES", 2000);
    let seed = env_num("DIFFTEST_SEED", 0x5eed);
    let survey = env_flag("DIFFTEST_SURVEY");
    let mut found: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut planned = 0;
    for i in 0..cases {
        let seed = seed.wrapping_add(i);
        if let Err(d) = case(seed, &mut planned) {
            if !survey {
                panic!("{name}, seed {seed}: {}\n{}", d.kind, d.detail);
            }
            let detail = format!("seed {seed}\n{}", d.detail);
            let entry = found.entry(d.kind).or_insert((0, detail.clone()));
            entry.0 += 1;
            if detail.len() < entry.1.len() {
                entry.1 = detail;
            }
        }
    }
    eprintln!("{name}: {cases} cases, {planned} rendered by a plan");
    COVERED.with(|c| eprintln!("  plan-rendered cases with: {:?}", c.borrow()));
    for (kind, (n, example)) in &found {
        eprintln!("=== {kind}: {n} cases; shortest:\n{example}\n");
    }
    assert!(found.is_empty(), "{name}: discrepancies (see above)");
}

/// A generated template that reads the paths `tree` has (half of the time only those).
fn template_for(rng: &mut Rng, tree: &J) -> String {
    let mut all = Vec::new();
    paths(tree, &mut Vec::new(), &mut all);
    let friendly = rng.chance(50);
    Gen {
        friendly,
        rng,
        paths: &all,
    }
    .template()
}

#[test]
fn a_plan_renders_what_minijinja_renders_for_any_body() {
    run("bodies", |seed, planned| {
        let mut rng = Rng(seed);
        let tree = gen_tree(&mut rng, 0);
        let ws = gen_ws(&mut rng);
        let body = body_of(&tree, &ws);
        let source = template_for(&mut rng, &tree);
        let settings = gen_settings(&mut rng);
        compare(&source, &body, &settings, planned)
    });
}

/// A sample ticket changed as the seed says: hostile texts, comments, custom fields and
/// unknown members of any JSON.
fn gen_event(rng: &mut Rng) -> deskhook::Event {
    let mut ticket = deskhook::sample::ticket();
    let mut user = deskhook::sample::user();
    if rng.chance(70) {
        ticket.subject = gen_text(rng, 6);
    }
    if rng.chance(50) {
        ticket.text = gen_text(rng, 6);
    }
    if rng.chance(40) {
        ticket.code = gen_text(rng, 2);
    }
    if rng.chance(30) {
        user.profile.lang = (rng.pick(&["ru", "en", "", "ru-RU"])).to_string();
    }
    if rng.chance(30) {
        user.profile.full_name = gen_text(rng, 3);
    }
    let keep = rng.below(ticket.comments.len() + 1);
    ticket.comments.truncate(keep);
    for comment in &mut ticket.comments {
        if rng.chance(50) {
            comment.text = gen_text(rng, 4);
        }
    }
    let to_serde = |rng: &mut Rng| -> serde_json::Value {
        let tree = gen_tree(rng, 1);
        let mut text = Vec::new();
        write_json(&mut text, &tree, &Ws([""; 8]));
        serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null)
    };
    for _ in 0..rng.below(3) {
        let value = to_serde(rng);
        ticket.fields.push(value);
    }
    for _ in 0..rng.below(3) {
        // Not a typed member's name: the emit refuses that (it would write the key twice).
        let key = rng
            .pick(&["a", "b", "t", "x", "k", "n", "eA", "list"])
            .to_string();
        let value = to_serde(rng);
        ticket.extra.insert(key, value);
    }
    let action = rng.pick(&[
        deskhook::Action::Create,
        deskhook::Action::Comment,
        deskhook::Action::Lock,
    ]);
    deskhook::Event::new(action, ticket, user)
}

#[test]
fn a_plan_renders_what_minijinja_renders_for_an_emitted_event() {
    run("emitted", |seed, planned| {
        let mut rng = Rng(seed);
        let event = gen_event(&mut rng);
        let event_ref = event.as_event_ref().unwrap();
        let mut emitted = deskhook::sink::Emitted::new(event_ref).unwrap();
        let tenant = rng.chance(40).then_some("acme \"1\"");
        if let Some(tenant) = tenant {
            emitted = emitted.with_tenant(tenant).unwrap();
        }
        let body = emitted.body().clone();
        let tree = from_serde(&serde_json::from_slice(&body).unwrap());
        let source = template_for(&mut rng, &tree);
        let mut settings = gen_settings(&mut rng);
        settings.event_type = emitted.event_type();
        settings.id = emitted.id().to_string();
        settings.tenant = tenant.map(str::to_owned);
        let Some((fast, checked)) = compile(&source, &settings)? else {
            return Ok(());
        };
        let by_plan = Parsed::of_emitted(&emitted, false)
            .ok()
            .is_some_and(|parsed| {
                let tenant = settings.tenant.as_deref();
                (fast.plan_render_in(parsed, &settings.id, tenant)).is_some()
            });
        *planned += u64::from(by_plan);
        let a = fast.render_emitted(&emitted).map_err(|e| e.to_string());
        let b = checked.render_emitted(&emitted).map_err(|e| e.to_string());
        // The same event from its body (not known to be compact): the same render.
        let c = fast
            .render(
                settings.event_type,
                &settings.id,
                settings.tenant.as_deref(),
                &body,
            )
            .map_err(|e| e.to_string());
        if a == b && a == c {
            return Ok(());
        }
        Err(Discrepancy {
            kind: match a == b {
                false => format!(
                    "emitted: render_emitted differs from the checked path (plan: {by_plan})"
                ),
                // The summary taken from the typed event must be the one read from its
                // body (a blank subject was kept by one and dropped by the other).
                true => format!(
                    "emitted: render_emitted differs from render of its body (plan: {by_plan})"
                ),
            },
            detail: format!(
                "template: {source}\nbody: {}\nfast:    {a:?}\nchecked: {b:?}\nbody:    {c:?}",
                String::from_utf8_lossy(&body)
            ),
        })
    });
}

/// Renders near the limits: long texts and lists, repeated pieces, and outputs around
/// `max_output`; the plan must give what minijinja gives (the body, "out of fuel" or "more
/// than max_output").
#[test]
fn a_plan_gives_what_minijinja_gives_near_the_limits() {
    let mut planned = 0;
    let mut failures = Vec::new();
    let pieces = [
        r#""{{ subject|truncate(50) }}""#,
        r#""{{ subject|entities|entities|truncate(2) }}""#,
        r#""{{ event.ticket.list }}""#,
        r#"{{ event.ticket.list|tojson }}"#,
        r#"{{ event.ticket.items|map(attribute="t")|list|tojson }}"#,
        r#"{{ event.ticket.items|map(attribute="t")|tojson }}"#,
        r#"{{ event.ticket.items|tojson }}"#,
        r#"{{ event|tojson }}"#,
        r#""{{ event.ticket.subject }}""#,
        r#""{{ raw }}""#,
        r#""{{ event.ticket.items[0].t }}{{ event.ticket.items[1].t }}""#,
    ];
    for (p, piece) in pieces.iter().enumerate() {
        // Sizes around the limits: the default max_output (256 KiB) and what the fuel
        // allows (about 64 MB made, fewer bytes read through filters).
        for &size in &[10usize, 1_000, 30_000, 300_000] {
            let body = serde_json::to_vec(&serde_json::json!({
                "ticket": {
                    "subject": "<&x".repeat(size / 3 + 1),
                    "list": vec![12_345_678; size / 9 + 1],
                    "items": (0..size / 16 + 1).map(|i| serde_json::json!({"t": i})).collect::<Vec<_>>(),
                },
            }))
            .unwrap();
            for &repeat in &[1usize, 7, 40, 300] {
                if size * repeat > 1_200_000 {
                    continue;
                }
                for &max_output in &[DEFAULT_MAX_OUTPUT, 1 << 20, 64 << 20] {
                    let source = format!("[{}]", vec![*piece; repeat].join(", "));
                    let settings = Settings {
                        event_type: EventType::from_wire("create").unwrap(),
                        id: "e".into(),
                        tenant: None,
                        vars: Vec::new(),
                        max_output,
                    };
                    if let Err(d) = compare(&source, &body, &settings, &mut planned) {
                        let detail: String = d.detail.chars().take(600).collect();
                        failures.push(format!(
                            "piece {p} size {size} repeat {repeat} max_output {max_output}: {}\n{detail}",
                            d.kind
                        ));
                    }
                }
            }
        }
    }
    eprintln!("limits: {planned} rendered by a plan");
    for failure in &failures {
        eprintln!("{failure}\n");
    }
    assert!(
        failures.is_empty(),
        "{} discrepancies near the limits",
        failures.len()
    );
}

/// The discrepancies a first version had, each as small as it gets: `|list` of an array
/// was printed as the array's text, where minijinja serializes the list it made again.
#[test]
fn list_of_an_array_is_printed_as_minijinja_prints_it() {
    let source = r#"{"a": {{ event.x|list|tojson }}}"#;
    let mut failures = Vec::new();
    for body in [
        r#"{"x": ["<b>&'"]}"#,
        r#"{"x": [{"k": 1, "k": 2}]}"#,
        r#"{"x": [{"e\u0041": 1}]}"#,
        r#"{"x": ["\u00e9\/\u001F"]}"#,
        r#"{"x": [1.0e0, 1E2, -0, 18446744073709551616]}"#,
        r#"{"x": [1e400]}"#,
        r#"{"x": [1, "a", null, true, [2], {"b": "c"}]}"#,
    ] {
        let settings = Settings {
            event_type: EventType::from_wire("create").unwrap(),
            id: "e".into(),
            tenant: None,
            vars: Vec::new(),
            max_output: DEFAULT_MAX_OUTPUT,
        };
        if let Err(d) = compare(source, body.as_bytes(), &settings, &mut 0) {
            failures.push(format!("{}\n{}", d.kind, d.detail));
        }
    }
    // An emitted event: its comments' HTML.
    let mut ticket = deskhook::sample::ticket();
    ticket.comments.truncate(1);
    ticket.comments[0].text = "<p>Tom's & Jerry's</p>".into();
    let event = deskhook::Event::new(deskhook::Action::Comment, ticket, deskhook::sample::user());
    let emitted = deskhook::sink::Emitted::new(event.as_event_ref().unwrap()).unwrap();
    let source = r#"{"c": {{ event.ticket.comments|list|tojson }}}"#;
    let fast = Template::inline(source).unwrap().render_emitted(&emitted);
    let checked = Template::inline(&format!("{source}{{# checked #}}"))
        .unwrap()
        .render_emitted(&emitted);
    let (fast, checked) = (fast.unwrap(), checked.unwrap());
    if fast != checked {
        failures.push(format!("emitted:\nfast:    {fast}\nchecked: {checked}"));
    }
    for failure in &failures {
        eprintln!("{failure}\n");
    }
    assert!(failures.is_empty(), "{} bodies differ", failures.len());
}

/// Text that is not JSON (which no body is, but a reader must not panic on it): the
/// readers without the index and the compaction end, whatever they give.
#[test]
fn the_readers_without_the_index_never_panic() {
    let cases = env_num("DIFFTEST_CASES", 2000) * 10;
    let alphabet: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b"\\",
        b" ",
        b"\n",
        b"a",
        b"t",
        b"1",
        b"-",
        b"e",
        b"\\u0041",
        b"\xff",
        "ж".as_bytes(),
        b"\"t\":",
        b"\"a\":",
        b"null",
    ];
    for seed in 0..cases {
        let mut rng = Rng(seed ^ 0x0bad_5eed);
        let n = rng.below(24);
        let mut body = Vec::new();
        for _ in 0..n {
            body.extend_from_slice(rng.pick(alphabet));
        }
        let path: Vec<plan::Step> = (0..rng.below(4))
            .map(|_| match rng.below(3) {
                0 => plan::Step::Index(rng.below(3) as i64),
                _ => plan::Step::Attr(rng.pick(&["a", "t", "eA"]).to_string()),
            })
            .collect();
        let _ = lazy::scalar_at(&body, &path);
        let _ = lazy::value_at(&body, &path);
        let _ = lazy::members_of_items(&body, &path, rng.pick(&["a", "t", "eA"]));
        let _ = output::compact(body.clone());
        let text = String::from_utf8_lossy(&body);
        let mut out = String::new();
        output::compact_into(&mut out, &text);
        // The index on the same text: no panic either.
        let event = lazy::LazyJson::root(&bytes::Bytes::from(body.clone()));
        let _ = event.get_attr("a");
    }
}

/// A small render after a large one: the plan sizes its output as the last one's, and the
/// body keeps that allocation (`Bytes::from(Vec)` keeps the capacity) while the budget is
/// charged its length only.
#[test]
fn a_small_render_does_not_hold_the_allocation_of_a_large_one() {
    let template = Template::inline(r#"{"t": "{{ event.t }}"}"#).unwrap();
    let parsed = |t: usize| {
        let body = serde_json::to_vec(&serde_json::json!({"t": "x".repeat(t)})).unwrap();
        Arc::new(
            Parsed::new(
                EventType::from_wire("create").unwrap(),
                &bytes::Bytes::from(body),
            )
            .unwrap(),
        )
    };
    let id: Arc<str> = "e".into();
    let _large = template.render_parsed(&parsed(200_000), &id, None).unwrap();
    let small = template.render_parsed(&parsed(10), &id, None).unwrap();
    assert!(
        small.capacity() <= 4 * small.len() + 1024,
        "a render of {} bytes holds {} bytes",
        small.len(),
        small.capacity()
    );
}
