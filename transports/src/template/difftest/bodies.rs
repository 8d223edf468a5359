//! The bodies of the differential test: JSON written by hand, with repeated and escaped
//! keys, strings escaped in several ways, numbers as JSON allows them and any whitespace;
//! and the paths a template can write into them.

use super::Rng;

/// A JSON value as written by hand: keys may repeat, and each string and key says how it
/// is escaped.
#[derive(Clone, Debug)]
pub(super) enum J {
    Null,
    Bool(bool),
    Num(&'static str),
    /// Text, and how it is escaped (see [`write_str`]).
    Str(String, u8),
    Arr(Vec<J>),
    Obj(Vec<(String, u8, J)>),
}

/// Keys: names a template can write (`.name`), and a few it cannot.
pub(super) const KEYS: &[&str] = &[
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

pub(super) fn gen_text(rng: &mut Rng, max: usize) -> String {
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

pub(super) fn gen_tree(rng: &mut Rng, depth: usize) -> J {
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
pub(super) struct Ws(pub(super) [&'static str; 8]);

const SPACES: &[&str] = &["", "", "", " ", "\n  ", "\t", "\r\n", "  "];

pub(super) fn gen_ws(rng: &mut Rng) -> Ws {
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

pub(super) fn write_json(out: &mut Vec<u8>, j: &J, ws: &Ws) {
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

pub(super) fn body_of(j: &J, ws: &Ws) -> Vec<u8> {
    let mut out = ws.0[6].as_bytes().to_vec();
    write_json(&mut out, j, ws);
    out.extend_from_slice(ws.0[7].as_bytes());
    out
}

/// A JSON value read into a [`J`] (for the paths of an emitted event's body).
pub(super) fn from_serde(value: &serde_json::Value) -> J {
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
pub(super) enum S {
    A(String),
    I(usize),
}

/// What is at a path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Scalar,
    Object,
    Array,
}

/// Every path of `j` a template can write, with what is there and, for arrays, the keys
/// of their items.
pub(super) fn paths(j: &J, path: &mut Vec<S>, out: &mut Vec<(Vec<S>, Kind, Vec<String>)>) {
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
