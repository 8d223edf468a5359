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
//! such value keeps the string it is in a string. Any other template is checked and
//! compacted after each render, as before.

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

/// `text` without the whitespace between its JSON tokens, when it renders JSON by
/// construction (see the module docs); `None` otherwise.
pub(super) fn compacted(text: &str) -> Option<String> {
    if text.contains("{%") || text.contains("{#") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut skeleton = String::with_capacity(text.len());
    let mut lexer = Lexer::Outside;
    let mut rest = text;
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
        let Some(expression) = expression else { break };
        if lexer != Lexer::InString {
            return None;
        }
        let length = variable(expression)?;
        out.push_str(&expression[..length]);
        rest = &expression[length..];
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&skeleton).ok()?;
    Some(out)
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

/// The length of the `{{ … }}` that `text` starts with, when it prints a variable through
/// [`FILTERS`] only.
fn variable(text: &str) -> Option<usize> {
    let mut p = Parser { text, at: 2 };
    p.eat('-');
    p.identifier()?;
    loop {
        p.space();
        if p.eat('.') {
            p.space();
            p.identifier()?;
        } else if p.eat('[') {
            p.space();
            p.number()?;
            p.space();
            p.expect(']')?;
        } else {
            break;
        }
    }
    while p.eat('|') {
        p.space();
        let filter = p.identifier()?;
        if !FILTERS.contains(&filter) {
            return None;
        }
        p.space();
        if p.eat('(') {
            loop {
                p.space();
                if p.number().is_none() {
                    p.string()?;
                }
                p.space();
                if !p.eat(',') {
                    break;
                }
            }
            p.expect(')')?;
            p.space();
        }
    }
    p.eat('-');
    p.expect('}')?;
    p.expect('}')?;
    Some(p.at)
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

    /// A quoted string without escapes or line breaks.
    fn string(&mut self) -> Option<()> {
        let quote = self.peek().filter(|q| matches!(q, b'"' | b'\''))?;
        self.at += 1;
        self.take(|_, b| b != quote && b != b'\\' && b != b'\n');
        self.expect(quote as char)
    }
}
