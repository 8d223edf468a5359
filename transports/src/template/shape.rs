//! The shape of a JSON template, read once when it is compiled: whether every value it
//! prints lands inside a JSON string literal, so that what it renders is JSON by
//! construction, as the presets' is.
//!
//! Such a template (a CRM's fields: `{"title": "{{ subject }}", "status":
//! "{{ event.ticket.status|upper }}"}`) is rendered from a copy of its source without the
//! whitespace between its JSON tokens, and its output is sent as it comes: neither parsed
//! again to check it nor compacted, which together cost about as much as the render itself.
//!
//! The reading is deliberately narrow. A template qualifies only when it has no tags
//! (`{% … %}`) and no comments, its text with every `{{ … }}` left out is JSON, and each
//! `{{ … }}` sits inside a string of that text (not right after a backslash) and is a
//! variable (`subject`, `event.ticket.comments[0].text`) through filters that cannot make
//! safe text (`default`, `lower`, `upper`, `trim`, `title`, `capitalize`, `replace`,
//! `truncate`, `entities`), with numbers and plain quoted strings as arguments. The
//! formatter escapes every value that is not safe as the inside of a JSON string, so each
//! such value keeps the string it is in a string. Between tokens, where a JSON value goes,
//! a `{{ … }}` may print a whole value: a variable through any filters, the last of them
//! `tojson` without arguments (`{"data": {{ event|tojson }}}`), which writes one JSON
//! value; the text must then be JSON with a value in its place. Such a template's output is
//! still compacted (minijinja's `tojson` writes `, ` and `: `, and a relayed body may have
//! whitespace), but not parsed again. Any other template is checked and compacted
//! after each render, as before.
//!
//! When, besides, no `{{ … }}` trims whitespace (`{{-`, `-}}`), each inside a string passes
//! its value through `truncate(n)`, `entities`, `lower`, `upper` and `default(x)` only, and each whole value is a part of
//! `event` through `default([])` and `map(attribute="name")|list` into `tojson` (a CRM's
//! copy of the event, the list of its comments' texts), the template is also read into a
//! [`Plan`]: its text and the values it prints, rendered without minijinja.

use super::plan::{Filter, Piece, Plan, Step};

/// The filters a value may pass through: none of them returns safe text from a value that
/// is not, and the context has no safe values.
const FILTERS: &[&str] = &[
    "default",
    "lower",
    "upper",
    "trim",
    "title",
    "capitalize",
    "replace",
    "truncate",
    "entities",
];

/// What the reading of a template JSON by construction gives.
pub(super) struct Shape {
    /// Its source without the whitespace between its JSON tokens.
    pub(super) compact: String,
    /// Its plan, when every variable it prints is one a plan can print.
    pub(super) plan: Option<Plan>,
    /// Whether it prints whole values with `tojson`, whose text may have whitespace: its
    /// output is compacted.
    pub(super) whole_values: bool,
}

/// `text` without the whitespace between its JSON tokens, when it renders JSON by
/// construction (see the module docs); `None` otherwise.
#[cfg(test)]
pub(super) fn compacted(text: &str) -> Option<String> {
    read(text).map(|shape| shape.compact)
}

/// The [`Shape`] of `text`, when it renders JSON by construction (see the module docs);
/// `None` otherwise.
pub(super) fn read(text: &str) -> Option<Shape> {
    if text.contains("{%") || text.contains("{#") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut skeleton = String::with_capacity(text.len());
    let mut lexer = Lexer::Outside;
    let mut rest = text;
    let mut pieces = Some(Vec::new());
    let mut literal_start = 0;
    let mut whole_values = false;
    loop {
        let (literal, expression) = match rest.find("{{") {
            Some(at) => (&rest[..at], Some(&rest[at..])),
            None => (rest, None),
        };
        for c in literal.chars() {
            if lexer.keeps(c) {
                out.push(c);
                skeleton.push(c);
            }
        }
        if let Some(pieces) = &mut pieces {
            pieces.push(Piece::Text(out[literal_start..].to_owned()));
        }
        let Some(expression) = expression else { break };
        let variable = match lexer {
            Lexer::InString => variable(expression)?,
            Lexer::Outside => {
                // A value of its own: `null` stands for it, spaced so that it cannot run
                // into a neighbouring token.
                skeleton.push_str(" null ");
                whole_values = true;
                whole_value(expression)?
            }
            _ => return None,
        };
        out.push_str(&expression[..variable.length]);
        literal_start = out.len();
        pieces = pieces.zip(variable.piece).map(|(mut pieces, piece)| {
            pieces.push(piece);
            pieces
        });
        rest = &expression[variable.length..];
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&skeleton).ok()?;
    Some(Shape {
        compact: out,
        plan: pieces.map(Plan::new),
        whole_values,
    })
}

/// Where the JSON lexer is in a template's literal text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lexer {
    /// Between tokens.
    Outside,
    /// Inside a string.
    InString,
    /// Right after a backslash inside a string.
    Escape,
    /// Inside a `\u` escape, with that many hex digits to come.
    Unicode(u8),
}

impl Lexer {
    /// Moves past `c`: whether it is kept (whitespace between tokens is not).
    fn keeps(&mut self, c: char) -> bool {
        let (next, kept) = match *self {
            Lexer::Outside => match c {
                ' ' | '\t' | '\n' | '\r' => (Lexer::Outside, false),
                '"' => (Lexer::InString, true),
                _ => (Lexer::Outside, true),
            },
            Lexer::InString => match c {
                '"' => (Lexer::Outside, true),
                '\\' => (Lexer::Escape, true),
                _ => (Lexer::InString, true),
            },
            Lexer::Escape if c == 'u' => (Lexer::Unicode(4), true),
            Lexer::Escape | Lexer::Unicode(0 | 1) => (Lexer::InString, true),
            Lexer::Unicode(n) => (Lexer::Unicode(n - 1), true),
        };
        *self = next;
        kept
    }
}

/// A `{{ … }}` that prints a variable through [`FILTERS`] only.
struct Variable {
    /// Its length in the source.
    length: usize,
    /// It as a plan prints it, when a plan can.
    piece: Option<Piece>,
}

/// The `{{ … }}` that `text` starts with, when it prints a variable through [`FILTERS`]
/// only.
fn variable(text: &str) -> Option<Variable> {
    let mut p = Parser { text, at: 2 };
    let mut plain = !p.eat('-');
    let (name, path) = path(&mut p)?;
    let mut filters = Vec::new();
    while p.eat('|') {
        p.space();
        let filter = p.identifier()?;
        if !FILTERS.contains(&filter) {
            return None;
        }
        p.space();
        let mut numbers = Vec::new();
        let mut strings = 0;
        if p.eat('(') {
            loop {
                p.space();
                match p.number() {
                    Some(number) => numbers.push(number.parse::<usize>().ok()),
                    None => {
                        p.string()?;
                        strings += 1;
                    }
                }
                p.space();
                if !p.eat(',') {
                    break;
                }
            }
            p.expect(')')?;
            p.space();
        }
        // What a plan does for the filter (`Some(None)`: nothing), when it can.
        let planned = match (filter, numbers.as_slice(), strings) {
            ("truncate", [Some(n)], 0) => Some(Some(Filter::Truncate(*n))),
            ("entities", [], 0) => Some(Some(Filter::Entities)),
            ("lower", [], 0) => Some(Some(Filter::Lower)),
            ("upper", [], 0) => Some(Some(Filter::Upper)),
            // `default(x)` gives the value itself when it is defined, and a plan prints
            // only defined values (it hands undefined ones to minijinja).
            ("default", [], 0 | 1) | ("default", [Some(_)], 0) => Some(None),
            _ => None,
        };
        plain &= planned.is_some();
        filters.extend(planned.flatten());
    }
    plain &= !p.eat('-');
    p.expect('}')?;
    p.expect('}')?;
    Some(Variable {
        length: p.at,
        piece: plain.then_some(Piece::Value {
            name,
            path,
            filters,
        }),
    })
}

/// The `{{ … }}` that `text` starts with, when it prints a variable through filters the last
/// of which is `tojson`: one JSON value.
fn whole_value(text: &str) -> Option<Variable> {
    let mut p = Parser { text, at: 2 };
    let mut plain = !p.eat('-');
    let (name, path) = path(&mut p)?;
    // Each filter with its arguments' text; the last must be `tojson` without arguments
    // (`tojson(indent=2)` is JSON too, but not compact).
    let mut filters = Vec::new();
    while p.eat('|') {
        let filter = p.identifier()?;
        p.space();
        let arguments = if p.eat('(') {
            let start = p.at;
            p.arguments()?;
            let arguments = &p.text[start..p.at - 1];
            p.space();
            Some(arguments.trim())
        } else {
            None
        };
        filters.push((filter, arguments));
    }
    if filters.pop() != Some(("tojson", None)) {
        return None;
    }
    plain &= !p.eat('-');
    p.expect('}')?;
    p.expect('}')?;
    Some(Variable {
        length: p.at,
        piece: plain.then(|| json_piece(name, path, &filters)).flatten(),
    })
}

/// A whole value a plan prints: a part of `event` through `default([])` (nothing to do
/// where the part is there; minijinja renders the rest), and `map(attribute="name")` over an
/// array's objects followed or not by `list`, into `tojson`.
fn json_piece(name: String, path: Vec<Step>, filters: &[(&str, Option<&str>)]) -> Option<Piece> {
    if name != "event" {
        return None;
    }
    let mut attribute = None;
    for filter in filters {
        match filter {
            ("default", Some("[]")) if attribute.is_none() => {}
            ("map", Some(arguments)) if attribute.is_none() => {
                let quoted = arguments.strip_prefix("attribute")?.trim_start();
                let quoted = quoted.strip_prefix('=')?.trim_start();
                let name = quoted
                    .strip_prefix('"')
                    .and_then(|q| q.strip_suffix('"'))
                    .or_else(|| quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')))?;
                // A name, not a number or a dotted path (which minijinja reads as items and
                // members).
                let mut bytes = name.bytes();
                let first = bytes
                    .next()
                    .filter(|b| *b == b'_' || b.is_ascii_alphabetic());
                if first.is_none() || !bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric()) {
                    return None;
                }
                attribute = Some(name.to_owned());
            }
            // `list` of what `map` made changes nothing; of a part of `event` it makes a
            // list that `tojson` writes again (escaped, numbers rewritten): not its text.
            ("list", None) if attribute.is_some() => {}
            _ => return None,
        }
    }
    Some(Piece::Json { path, attribute })
}

/// A variable: a name of the context and the members read from it (`event.ticket`,
/// `comments[0]`).
fn path(p: &mut Parser<'_>) -> Option<(String, Vec<Step>)> {
    let name = p.identifier()?.to_owned();
    let mut path = Vec::new();
    loop {
        p.space();
        if p.eat('.') {
            p.space();
            path.push(Step::Attr(p.identifier()?.to_owned()));
        } else if p.eat('[') {
            p.space();
            path.push(Step::Index(p.number()?.parse().ok()?));
            p.space();
            p.expect(']')?;
        } else {
            break;
        }
    }
    Some((name, path))
}

/// A cursor over an expression's text.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c as u8);
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: char) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    /// Consumes bytes while `accept` holds; what it consumed, when not empty.
    fn take(&mut self, accept: impl Fn(usize, u8) -> bool) -> Option<&'a str> {
        let start = self.at;
        while self.peek().is_some_and(|b| accept(self.at - start, b)) {
            self.at += 1;
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }

    fn identifier(&mut self) -> Option<&'a str> {
        self.space();
        self.take(|i, b| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
    }

    fn number(&mut self) -> Option<&'a str> {
        self.take(|_, b| b.is_ascii_digit())
    }

    /// Past the arguments of a call whose `(` was read, to its `)`: anything but `{` and
    /// `}` (which could end the expression), strings with escapes crossed whole.
    fn arguments(&mut self) -> Option<()> {
        let mut depth = 1;
        while depth > 0 {
            match self.peek()? {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b'{' | b'}' => return None,
                quote @ (b'"' | b'\'') => {
                    self.at += 1;
                    while self.peek()? != quote {
                        self.at += if self.peek()? == b'\\' { 2 } else { 1 };
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        Some(())
    }

    /// A quoted string without escapes or line breaks.
    fn string(&mut self) -> Option<()> {
        let quote = self.peek().filter(|q| matches!(q, b'"' | b'\''))?;
        self.at += 1;
        self.take(|_, b| b != quote && b != b'\\' && b != b'\n');
        self.expect(quote as char)
    }
}
