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

// --- bodies -----------------------------------------------------------------------------

/// A JSON value as written by hand: keys may repeat, and each string and key says how it
/// is escaped.
#[derive(Clone, Debug)]
enum J {
    Null,
    Bool(bool),
    Num(&'static str),
    /// Text, and how it is escaped (see [`write_str`]).
    Str(String, u8),
    Arr(Vec<J>),
    Obj(Vec<(String, u8, J)>),
}

/// Keys: names a template can write (`.name`), and a few it cannot.
const KEYS: &[&str] = &[
    "a", "b", "t", "x", "k", "n", "text", "ticket", "comments", "code", "subject", "eA", "list",
];
const ODD_KEYS: &[&str] = &["", "a b", "q\"", "0", "e\\", "ж"];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "7",
    "1.0",
    "1.5",
    "-2.5e3",
    "1e300",
    "1E2",
    "1e+2",
    "0.1",
    "1e-7",
    "5e-324",
    "2.0e0",
    "-0.0",
    "12345678901234567890",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "100000000000000000000000000000000000000000e-30",
    "1e400",
    "-1e400",
];

const FRAGMENTS: &[&str] = &[
    "a",
    "b",
    "ok",
    " ",
    "\"",
    "\\",
    "\n",
    "\r",
    "\t",
    "\u{1}",
    "\u{1f}",
    "\u{7f}",
    "<",
    ">",
    "&",
    "'",
    "ж",
    "🦀",
    "\u{2028}",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "{{ x }}",
    "/",
    "é",
    "  ",
    "\\u0041",
    "&amp;",
    "Заявка",
    "…",
];

fn gen_text(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max + 1);
    (0..n)
        .map(|_| rng.pick(FRAGMENTS))
        .collect::<Vec<_>>()
        .concat()
}

fn gen_key(rng: &mut Rng) -> (String, u8) {
    let key = if rng.chance(6) {
        rng.pick(ODD_KEYS)
    } else {
        rng.pick(KEYS)
    };
    // Mostly as serde_json writes it; sometimes escaped.
    let escape = match rng.below(10) {
        0 => 1,
        1 => 2,
        _ => 0,
    };
    (key.to_string(), escape)
}

fn gen_scalar(rng: &mut Rng) -> J {
    match rng.below(10) {
        0 => J::Null,
        1 => J::Bool(rng.chance(50)),
        2 | 3 => J::Num(rng.pick(NUMBERS)),
        _ => J::Str(gen_text(rng, 5), gen_escape(rng)),
    }
}

fn gen_escape(rng: &mut Rng) -> u8 {
    match rng.below(20) {
        0 | 1 => 1,
        2 => 2,
        3 if rng.chance(10) => 3, // not UTF-8
        _ => 0,
    }
}

fn gen_tree(rng: &mut Rng, depth: usize) -> J {
    if depth >= 4 || (depth > 0 && rng.chance(35)) {
        return gen_scalar(rng);
    }
    match rng.below(if depth == 0 { 12 } else { 10 }) {
        // An array of objects, mostly with the same member: what map(attribute=…) reads.
        0..=2 => {
            let key = rng.pick(&["text", "t", "n", "a"]);
            let n = rng.below(5);
            J::Arr(
                (0..n)
                    .map(|_| {
                        if rng.chance(8) {
                            return gen_tree(rng, depth + 1);
                        }
                        let mut members = Vec::new();
                        if rng.chance(30) {
                            let (k, e) = gen_key(rng);
                            members.push((k, e, gen_scalar(rng)));
                        }
                        if rng.chance(93) {
                            let value = if rng.chance(10) {
                                gen_tree(rng, depth + 2)
                            } else {
                                gen_scalar(rng)
                            };
                            let escape = if rng.chance(10) { 1 } else { 0 };
                            members.push((key.to_string(), escape, value));
                        }
                        if rng.chance(15) {
                            // A duplicate.
                            members.push((key.to_string(), 0, gen_scalar(rng)));
                        }
                        J::Obj(members)
                    })
                    .collect(),
            )
        }
        3..=4 => {
            let n = rng.below(5);
            J::Arr((0..n).map(|_| gen_tree(rng, depth + 1)).collect())
        }
        10 => gen_scalar(rng),
        _ => {
            let n = rng.below(6);
            let mut members: Vec<(String, u8, J)> = (0..n)
                .map(|_| {
                    let (k, e) = gen_key(rng);
                    (k, e, gen_tree(rng, depth + 1))
                })
                .collect();
            if rng.chance(15) && !members.is_empty() {
                // A duplicate of a key, perhaps written another way.
                let (k, _, _) = members[rng.below(members.len())].clone();
                let escape = rng.below(3) as u8;
                members.insert(
                    rng.below(members.len() + 1),
                    (k, escape, gen_tree(rng, depth + 1)),
                );
            }
            J::Obj(members)
        }
    }
}

/// How a body is spaced: after `{`/`[`, before `}`/`]`, before and after `:`, before and
/// after `,`; before and after the body.
struct Ws([&'static str; 8]);

const SPACES: &[&str] = &["", "", "", " ", "\n  ", "\t", "\r\n", "  "];

fn gen_ws(rng: &mut Rng) -> Ws {
    if rng.chance(40) {
        return Ws([""; 8]); // compact
    }
    let mut ws = [""; 8];
    for w in &mut ws {
        *w = rng.pick(SPACES);
    }
    Ws(ws)
}

/// Writes `s` as a JSON string: 0 as serde_json does, 1 with `\/` and `\u` for whatever is
/// not ASCII, 2 with `\u` for every character, 3 as 0 with a byte that is not UTF-8.
fn write_str(out: &mut Vec<u8>, s: &str, escape: u8) {
    match escape {
        0 | 3 => {
            let mut text = serde_json::to_string(s).unwrap().into_bytes();
            if escape == 3 {
                text.insert(text.len() - 1, 0xff);
            }
            out.extend_from_slice(&text);
        }
        _ => {
            out.push(b'"');
            for c in s.chars() {
                let mut units = [0u16; 2];
                match c {
                    '"' if escape == 1 => out.extend_from_slice(b"\\\""),
                    '\\' if escape == 1 => out.extend_from_slice(b"\\\\"),
                    '/' if escape == 1 => out.extend_from_slice(b"\\/"),
                    '\n' if escape == 1 => out.extend_from_slice(b"\\n"),
                    ' '..='~' if escape == 1 => out.push(c as u8),
                    _ => {
                        for unit in c.encode_utf16(&mut units) {
                            out.extend_from_slice(format!("\\u{unit:04X}").as_bytes());
                        }
                    }
                }
            }
            out.push(b'"');
        }
    }
}

fn write_json(out: &mut Vec<u8>, j: &J, ws: &Ws) {
    let [
        open,
        close,
        before_colon,
        after_colon,
        before_comma,
        after_comma,
        _,
        _,
    ] = ws.0;
    // Before the member or item `i`: whitespace after the opening bracket, or a comma.
    let separate = |out: &mut Vec<u8>, i: usize| {
        if i > 0 {
            out.extend_from_slice(before_comma.as_bytes());
            out.push(b',');
            out.extend_from_slice(after_comma.as_bytes());
        } else {
            out.extend_from_slice(open.as_bytes());
        }
    };
    match j {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::Num(n) => out.extend_from_slice(n.as_bytes()),
        J::Str(s, e) => write_str(out, s, *e),
        J::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                separate(out, i);
                write_json(out, item, ws);
            }
            if !items.is_empty() {
                out.extend_from_slice(close.as_bytes());
            }
            out.push(b']');
        }
        J::Obj(members) => {
            out.push(b'{');
            for (i, (key, escape, value)) in members.iter().enumerate() {
                separate(out, i);
                write_str(out, key, (*escape).min(2));
                out.extend_from_slice(before_colon.as_bytes());
                out.push(b':');
                out.extend_from_slice(after_colon.as_bytes());
                write_json(out, value, ws);
            }
            if !members.is_empty() {
                out.extend_from_slice(close.as_bytes());
            }
            out.push(b'}');
        }
    }
}

fn body_of(j: &J, ws: &Ws) -> Vec<u8> {
    let mut out = ws.0[6].as_bytes().to_vec();
    write_json(&mut out, j, ws);
    out.extend_from_slice(ws.0[7].as_bytes());
    out
}

/// A JSON value read into a [`J`] (for the paths of an emitted event's body).
fn from_serde(value: &serde_json::Value) -> J {
    match value {
        serde_json::Value::Null => J::Null,
        serde_json::Value::Bool(b) => J::Bool(*b),
        serde_json::Value::Number(_) => J::Num("1"),
        serde_json::Value::String(s) => J::Str(s.clone(), 0),
        serde_json::Value::Array(items) => J::Arr(items.iter().map(from_serde).collect()),
        serde_json::Value::Object(members) => J::Obj(
            members
                .iter()
                .map(|(k, v)| (k.clone(), 0, from_serde(v)))
                .collect(),
        ),
    }
}

/// A step of a path as written in a template.
#[derive(Clone, Debug)]
enum S {
    A(String),
    I(usize),
}

/// What is at a path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Object,
    Array,
}

/// Every path of `j` a template can write, with what is there and, for arrays, the keys
/// of their items.
fn paths(j: &J, path: &mut Vec<S>, out: &mut Vec<(Vec<S>, Kind, Vec<String>)>) {
    let identifier = |k: &str| {
        let mut b = k.bytes();
        b.next()
            .is_some_and(|c| c == b'_' || c.is_ascii_alphabetic())
            && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
    };
    match j {
        J::Obj(members) => {
            out.push((path.clone(), Kind::Object, Vec::new()));
            for (k, _, v) in members {
                if identifier(k) {
                    path.push(S::A(k.clone()));
                    paths(v, path, out);
                    path.pop();
                }
            }
        }
        J::Arr(items) => {
            let mut keys = Vec::new();
            for item in items {
                if let J::Obj(members) = item {
                    for (k, _, _) in members {
                        if identifier(k) && !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
            }
            out.push((path.clone(), Kind::Array, keys));
            for (i, item) in items.iter().enumerate() {
                path.push(S::I(i));
                paths(item, path, out);
                path.pop();
            }
        }
        _ => out.push((path.clone(), Kind::Scalar, Vec::new())),
    }
}

// --- templates --------------------------------------------------------------------------

struct Gen<'a> {
    /// Mostly what a plan renders: no other filters, names or trimmed tags.
    friendly: bool,
    rng: &'a mut Rng,
    paths: &'a [(Vec<S>, Kind, Vec<String>)],
}

impl Gen<'_> {
    fn space(&mut self) -> &'static str {
        if self.rng.chance(85) {
            ""
        } else {
            self.rng.pick(&[" ", "\n", "\t", "\r\n", "  "])
        }
    }

    fn inner_space(&mut self) -> &'static str {
        if self.rng.chance(90) {
            ""
        } else {
            self.rng.pick(&[" ", "\n", "  "])
        }
    }

    fn step_text(&mut self, step: &S) -> String {
        let (a, b) = (self.inner_space(), self.inner_space());
        match step {
            S::A(k) => format!("{a}.{b}{k}"),
            S::I(i) => format!("{a}[{b}{i}{}]", self.inner_space()),
        }
    }

    /// A path into `event`, mostly one the body has; `want` prefers what is there.
    fn event_path(&mut self, want: Option<Kind>) -> (Vec<S>, Vec<String>) {
        let candidates: Vec<usize> = (0..self.paths.len())
            .filter(|&i| want.is_none_or(|k| self.paths[i].1 == k))
            .collect();
        let (mut path, keys) = if !candidates.is_empty() && self.rng.chance(85) {
            let (p, _, keys) = &self.paths[self.rng.pick(&candidates)];
            (p.clone(), keys.clone())
        } else if !self.paths.is_empty() && self.rng.chance(70) {
            let (p, _, keys) = &self.paths[self.rng.below(self.paths.len())];
            (p.clone(), keys.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        if self.rng.chance(if self.friendly { 2 } else { 10 }) {
            path.push(if self.rng.chance(50) {
                S::A((self.rng.pick(KEYS)).to_string())
            } else {
                S::I(self.rng.below(4))
            });
        }
        if !self.friendly && self.rng.chance(5) && !path.is_empty() {
            let at = self.rng.below(path.len());
            path[at] = match &path[at] {
                S::A(_) => S::I(self.rng.below(3)),
                S::I(_) => S::A((self.rng.pick(KEYS)).to_string()),
            };
        }
        (path, keys)
    }

    /// `{{ … }}` inside a string.
    fn value(&mut self) -> String {
        let trim = if self.friendly { 0 } else { 3 };
        let open = if self.rng.chance(trim) { "{{-" } else { "{{" };
        let close = if self.rng.chance(trim) { "-}}" } else { "}}" };
        let mut expr = String::new();
        match self.rng.below(if self.friendly { 87 } else { 100 }) {
            0..=44 => {
                expr.push_str("event");
                let want = if self.rng.chance(70) {
                    Some(Kind::Scalar)
                } else {
                    None
                };
                let (path, _) = self.event_path(want);
                for step in &path {
                    let text = self.step_text(step);
                    expr.push_str(&text);
                }
            }
            45..=74 => expr.push_str(self.rng.pick(&[
                "subject",
                "text",
                "ticket",
                "label",
                "author",
                "lang",
                "id",
                "event_type",
                "format",
            ])),
            75..=79 => expr.push_str("tenant"),
            80..=86 => expr.push_str(self.rng.pick(&[
                "vars",
                "vars.x",
                "vars.lang",
                "vars.nope",
                "vars[0]",
            ])),
            87..=89 => expr.push_str("raw"),
            _ => expr.push_str(self.rng.pick(&[
                "range",
                "none",
                "loop",
                "subject.x",
                "subject[0]",
                "event_type[1]",
                "nope",
                "id[0]",
                "true",
                "namespace",
                "tenant.x",
            ])),
        }
        let n = self.rng.below(4);
        for _ in 0..n {
            let filter = match self.rng.below(if self.friendly { 11 } else { 12 }) {
                9 => (self
                    .rng
                    .pick(&["lower", "upper", "default('d')", "default(7)"]))
                .to_string(),
                0..=4 => format!(
                    "truncate({}{}{})",
                    self.inner_space(),
                    self.rng.pick(&[
                        "0",
                        "1",
                        "2",
                        "3",
                        "5",
                        "10",
                        "100",
                        "1099511627776",
                        "18446744073709551615",
                        "9223372036854775808",
                        "18446744073709551616",
                        "007"
                    ]),
                    self.inner_space()
                ),
                5..=8 | 10 => "entities".to_string(),
                _ => (self.rng.pick(&[
                    "upper",
                    "default('d')",
                    "trim",
                    "replace('a', '<')",
                    "lower",
                    "title",
                    "capitalize",
                    "truncate(3, 4)",
                ]))
                .to_string(),
            };
            let (a, b) = (self.inner_space(), self.inner_space());
            expr.push_str(&format!("{a}|{b}{filter}"));
        }
        format!(
            "{open}{}{expr}{}{close}",
            self.inner_space(),
            self.inner_space()
        )
    }

    /// `{{ … }}` where a value goes.
    fn whole(&mut self) -> String {
        let trim = if self.friendly { 0 } else { 3 };
        let open = if self.rng.chance(trim) { "{{-" } else { "{{" };
        let close = if self.rng.chance(trim) { "-}}" } else { "}}" };
        let mut expr = String::new();
        if !self.friendly && self.rng.chance(8) {
            expr.push_str(self.rng.pick(&[
                "subject",
                "vars",
                "tenant",
                "raw",
                "id",
                "event|first",
                "event.ticket|default({})",
                "event|list|default([])",
            ]));
        } else {
            expr.push_str("event");
            let want = match self.rng.below(10) {
                0..=4 => Some(Kind::Array),
                5..=6 => Some(Kind::Object),
                7..=8 => Some(Kind::Scalar),
                _ => None,
            };
            let (path, keys) = self.event_path(want);
            for step in &path {
                let text = self.step_text(step);
                expr.push_str(&text);
            }
            let sp = |g: &mut Gen<'_>| (g.inner_space(), g.inner_space());
            if self.rng.chance(35) {
                let (a, b) = sp(self);
                expr.push_str(&format!("{a}|{b}default([])"));
            }
            if self.rng.chance(45) {
                let key = if !keys.is_empty() && self.rng.chance(85) {
                    self.rng.pick(&keys).clone()
                } else {
                    (self.rng.pick(KEYS)).to_string()
                };
                let quote = if self.rng.chance(70) { '"' } else { '\'' };
                let (a, b) = sp(self);
                let (c, d) = sp(self);
                expr.push_str(&format!(
                    "{a}|{b}map({c}attribute{d}={}{quote}{key}{quote}{})",
                    self.inner_space(),
                    self.inner_space()
                ));
            }
            if self.rng.chance(40) {
                let (a, b) = sp(self);
                expr.push_str(&format!("{a}|{b}list"));
            }
        }
        let (a, b) = (self.inner_space(), self.inner_space());
        format!(
            "{open}{}{expr}{a}|{b}tojson{}{close}",
            self.inner_space(),
            self.inner_space()
        )
    }

    fn string(&mut self) -> String {
        let mut s = String::from("\"");
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            if self.rng.chance(40) {
                s.push_str(self.rng.pick(&[
                    "a", " ", "\\n", "\\\"", "\\u00e9", "ж", ":", ", ", "}}", "]", "/", "\\\\",
                    "<&>", "\\t",
                ]));
            }
            if self.rng.chance(80) {
                let value = self.value();
                s.push_str(&value);
            }
        }
        s.push('"');
        s
    }

    fn slot(&mut self, depth: usize) -> String {
        match self.rng.below(if depth > 2 { 8 } else { 10 }) {
            0..=2 => self.string(),
            3..=5 => self.whole(),
            6 => (self
                .rng
                .pick(&["1", "true", "null", "[1, \"x\"]", "{}", "-0.5e3"]))
            .to_string(),
            7 => self.string(),
            8 => {
                let n = 1 + self.rng.below(3);
                let items: Vec<String> = (0..n).map(|_| self.slot(depth + 1)).collect();
                let sep = format!("{},{}", self.space(), self.space());
                format!("[{}{}{}]", self.space(), items.join(&sep), self.space())
            }
            _ => self.object(depth + 1),
        }
    }

    fn object(&mut self, depth: usize) -> String {
        let n = 1 + self.rng.below(4);
        let mut members = Vec::new();
        for i in 0..n {
            let value = self.slot(depth);
            members.push(format!("\"k{i}\"{}:{}{value}", self.space(), self.space()));
        }
        let sep = format!("{},{}", self.space(), self.space());
        format!("{{{}{}{}}}", self.space(), members.join(&sep), self.space())
    }

    fn template(&mut self) -> String {
        let template = if self.rng.chance(85) {
            self.object(0)
        } else {
            self.slot(1)
        };
        format!("{}{template}{}", self.space(), self.space())
    }
}

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
