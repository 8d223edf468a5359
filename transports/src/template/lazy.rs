//! `event`: the body's JSON as a template reaches into it. The body is indexed in one pass
//! when the template first reads `event`: where every object's and array's members are in
//! the text (no tree of values is built, and each character is looked at once, however deep
//! the template reaches). A member is made a value when read; `tojson` and printing of a
//! part the template did not change copy its text from the body instead of serializing a
//! tree again.
//!
//! The body is JSON already checked (the event's own serialization, or the summary's read
//! of a relayed body, which checks the whole text), so the index only finds tokens. Given
//! text that is not JSON after all, it ends early and yields fewer members; it never panics.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::plan::Step;

/// A JSON object or array inside an event's body.
pub(crate) struct LazyJson {
    index: Arc<Index>,
    node: u32,
}

/// Where the containers of one body and their members are.
struct Index {
    /// The body (not copied). Each part is checked to be UTF-8 when read: a part that is
    /// not is undefined (an error where a template prints it).
    body: Bytes,
    /// Every object and array, the root first.
    nodes: Vec<Node>,
    /// The members of every container, each container's in a run of its own.
    members: Vec<Member>,
}

/// An object or an array.
struct Node {
    /// Its text in the body.
    at: Span,
    map: bool,
    /// Its members' run in [`Index::members`].
    members: Range<u32>,
}

/// A member of an object (with its key) or an array.
#[derive(Clone, Copy)]
struct Member {
    /// The key's text between its quotes, as written (empty for an item of an array).
    key: Span,
    /// The value's text.
    value: Span,
    /// The value's node when it is an object or an array.
    child: Option<u32>,
}

impl LazyJson {
    /// [`root_sized`](LazyJson::root_sized)'s value.
    #[cfg(test)]
    pub(crate) fn root(body: &Bytes) -> Value {
        LazyJson::root_sized(body).0
    }

    /// `event` for a body: the root object or array (indexed; its parts checked to be UTF-8
    /// as they are read, not the whole body first), any other JSON value as it is, or none
    /// when the body is not JSON text; and about how many bytes it holds besides the body
    /// (the index, or a value read whole), to charge to the memory budget.
    pub(crate) fn root_sized(body: &Bytes) -> (Value, usize) {
        #[cfg(test)]
        ROOTS_MADE.with(|made| made.set(made.get() + 1));
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if !matches!(first, Some(b'{' | b'[')) {
            // A string, a number, …: its copy is at most the body's size.
            return (serde_json::from_slice(body).unwrap_or_default(), body.len());
        }
        match Index::new(body.clone()) {
            Some(index) => {
                let held = index.held_bytes();
                let root = LazyJson {
                    index: Arc::new(index),
                    node: 0,
                };
                (Value::from_object(root), held)
            }
            None => (Value::from(()), 0),
        }
    }

    fn node(&self) -> &Node {
        &self.index.nodes[self.node as usize]
    }

    /// Its JSON text, as the body has it.
    pub(crate) fn text(&self) -> &str {
        self.index.text(self.node().at)
    }

    fn members(&self) -> &[Member] {
        let run = &self.node().members;
        self.index
            .members
            .get(run.start as usize..run.end as usize)
            .unwrap_or_default()
    }

    /// The value of `member`.
    fn value(&self, member: &Member) -> Value {
        match member.child {
            Some(node) => Value::from_object(LazyJson {
                index: self.index.clone(),
                node,
            }),
            None => serde_json::from_str(self.index.text(member.value)).unwrap_or_default(),
        }
    }

    /// The key of `member`, unescaped.
    fn key(&self, member: &Member) -> std::borrow::Cow<'_, str> {
        let raw = self.index.text(member.key);
        if raw.contains('\\') {
            serde_json::from_str::<String>(&format!("\"{raw}\""))
                .unwrap_or_default()
                .into()
        } else {
            raw.into()
        }
    }
}

impl Index {
    /// Indexes `body`, whose first token opens an object or an array; `None` otherwise.
    fn new(body: Bytes) -> Option<Index> {
        let (nodes, members) = scan(&body);
        (!nodes.is_empty()).then_some(Index {
            body,
            nodes,
            members,
        })
    }

    /// The bytes it holds besides the body.
    fn held_bytes(&self) -> usize {
        std::mem::size_of::<Index>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.members.capacity() * std::mem::size_of::<Member>()
    }

    fn text(&self, at: Span) -> &str {
        // Ranges start and end on tokens, which are ASCII: the parts of UTF-8 text are
        // UTF-8 (the body is JSON, our own or checked; a part that is not reads as empty
        // text, which is no JSON value).
        let part = self
            .body
            .get(at.start as usize..at.end as usize)
            .unwrap_or_default();
        std::str::from_utf8(part).unwrap_or_default()
    }
}

/// Where a part of the body is, in bytes (copied as a whole when its container closes).
#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

/// The span from `start` to `end` (offsets past `u32::MAX` saturate: no part is read there).
fn span(start: usize, end: usize) -> Span {
    let at = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    Span {
        start: at(start),
        end: at(end),
    }
}

/// A container being read.
struct Open {
    node: u32,
    /// Where its members start in the scratch list.
    first: usize,
    /// The key read for the next value (objects).
    key: Option<Span>,
    /// Whether a key comes next (objects: after `{` and `,`).
    expect_key: bool,
}

/// One pass over `text`: every container and its members. Strings are crossed with
/// `memchr` (a body is mostly strings); members gather in a scratch list while their
/// container is open and move to their run when it closes.
fn scan(text: &[u8]) -> (Vec<Node>, Vec<Member>) {
    // Sized for an event's JSON (a member every 16 bytes or so, a container every 64), so
    // that the lists do not grow as they fill.
    let mut nodes: Vec<Node> = Vec::with_capacity(text.len() / 64 + 1);
    let mut members: Vec<Member> = Vec::with_capacity(text.len() / 16 + 1);
    let mut scratch: Vec<Member> = Vec::with_capacity(32);
    let mut stack: Vec<Open> = Vec::with_capacity(8);
    let at = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            open @ (b'{' | b'[') => {
                if stack.is_empty() && !nodes.is_empty() {
                    break; // a second value after the root: not ours to read
                }
                stack.push(Open {
                    node: at(nodes.len()),
                    first: scratch.len(),
                    key: None,
                    expect_key: open == b'{',
                });
                nodes.push(Node {
                    at: span(i, i),
                    map: open == b'{',
                    members: 0..0,
                });
                i += 1;
            }
            b'}' | b']' => {
                let Some(done) = stack.pop() else { break };
                let run = at(members.len())..at(members.len() + scratch.len() - done.first);
                members.extend_from_slice(&scratch[done.first..]);
                scratch.truncate(done.first);
                let node = &mut nodes[done.node as usize];
                node.at.end = at(i + 1);
                node.members = run;
                let value = node.at;
                i += 1;
                if let Some(parent) = stack.last_mut() {
                    scratch.push(Member {
                        key: parent.key.take().unwrap_or_default(),
                        value,
                        child: Some(done.node),
                    });
                }
            }
            b'"' => {
                let end = string_end(text, i);
                let Some(parent) = stack.last_mut() else {
                    break;
                };
                if parent.expect_key {
                    parent.key = Some(span(i + 1, end.saturating_sub(1)));
                } else {
                    scratch.push(Member {
                        key: parent.key.take().unwrap_or_default(),
                        value: span(i, end),
                        child: None,
                    });
                }
                i = end;
            }
            b':' => {
                if let Some(parent) = stack.last_mut() {
                    parent.expect_key = false;
                }
                i += 1;
            }
            b',' => {
                if let Some(parent) = stack.last_mut() {
                    parent.expect_key = nodes[parent.node as usize].map;
                }
                i += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            _ => {
                // A number, true, false or null: up to the next delimiter.
                let start = i;
                while i < text.len()
                    && !matches!(text[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    i += 1;
                }
                let Some(parent) = stack.last_mut() else {
                    break;
                };
                scratch.push(Member {
                    key: parent.key.take().unwrap_or_default(),
                    value: span(start, i),
                    child: None,
                });
            }
        }
    }
    // Text cut short: what is still open ends with it.
    while let Some(done) = stack.pop() {
        let run = at(members.len())..at(members.len() + scratch.len() - done.first);
        members.extend_from_slice(&scratch[done.first..]);
        scratch.truncate(done.first);
        let node = &mut nodes[done.node as usize];
        node.at.end = at(text.len());
        node.members = run;
    }
    (nodes, members)
}

/// Where the string whose opening quote is at `start` ends (past its closing quote; the
/// end of the text when it is not closed).
fn string_end(text: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    // Keys and most values end within a few bytes: looked at one by one, before memchr's
    // setup pays.
    let short = text.len().min(at + 16);
    while at < short {
        match text[at] {
            b'"' => return at + 1,
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    loop {
        let rest = text.get(at..).unwrap_or_default();
        match memchr::memchr2(b'"', b'\\', rest) {
            Some(found) if rest[found] == b'\\' => at += found + 2,
            Some(found) => return at + found + 1,
            None => return text.len(),
        }
    }
}

/// The text of the number, string, `true`, `false` or `null` that `path` reaches in
/// `body`, read in one pass that stops there and records nothing (where the index would
/// read the whole body). Members are matched as the index matches them: keys unescaped, the
/// first of equal keys. `None` where the index must answer: the path is missing, reaches an
/// object or an array, or goes where the index reads differently (a negative item, a member
/// of a scalar, a part that is not UTF-8).
pub(super) fn scalar_at<'a>(body: &'a [u8], path: &[Step]) -> Option<&'a str> {
    value_at(body, path).filter(|text| !text.starts_with(['{', '[']))
}

/// The text of the value that `path` reaches in `body`, as [`scalar_at`] reads it, objects
/// and arrays included: what the index has as that part's text.
pub(super) fn value_at<'a>(body: &'a [u8], path: &[Step]) -> Option<&'a str> {
    let at = skip_space(body, 0);
    if path.is_empty() && matches!(body.get(at), Some(b'{' | b'[')) {
        // The root: the body is one JSON value, up to its last token.
        let end = body.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
        return std::str::from_utf8(body.get(at..end)?).ok();
    }
    let at = locate(body, path)?;
    std::str::from_utf8(body.get(at..value_end(body, at))?).ok()
}

/// Where the value that `path` reaches in `body` starts (see [`scalar_at`]).
fn locate(body: &[u8], path: &[Step]) -> Option<usize> {
    let mut at = skip_space(body, 0);
    for step in path {
        at = match (body.get(at)?, step) {
            (b'{', Step::Attr(key)) => member_at(body, at, key)?,
            (b'[', Step::Index(n)) => item_at(body, at, usize::try_from(*n).ok()?)?,
            _ => return None,
        };
    }
    body.get(at).map(|_| at)
}

/// The texts of member `key` of each item of the array that `path` reaches in `body`, as
/// the index reads them, in one pass over the array; `None` when it is not an array, or an
/// item is not an object or has no such member, or the member is an object or an array.
pub(super) fn members_of_items<'a>(
    body: &'a [u8],
    path: &[Step],
    key: &str,
) -> Option<Vec<&'a str>> {
    let open = locate(body, path)?;
    if body[open] != b'[' {
        return None;
    }
    let mut members = Vec::new();
    let mut at = skip_space(body, open + 1);
    if body.get(at)? == &b']' {
        return Some(members);
    }
    loop {
        if body.get(at)? != &b'{' {
            return None;
        }
        let member = member_at(body, at, key)?;
        if matches!(body.get(member)?, b'{' | b'[') {
            return None;
        }
        members.push(std::str::from_utf8(body.get(member..value_end(body, member))?).ok()?);
        at = skip_space(body, value_end(body, at));
        match body.get(at)? {
            b',' => at = skip_space(body, at + 1),
            b']' => return Some(members),
            _ => return None,
        }
    }
}

/// Past the whitespace from `at`.
fn skip_space(body: &[u8], mut at: usize) -> usize {
    while matches!(body.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Where the value of the object at `at` whose key is `key` starts.
fn member_at(body: &[u8], open: usize, key: &str) -> Option<usize> {
    let mut at = skip_space(body, open + 1);
    loop {
        if body.get(at)? != &b'"' {
            return None; // `}`: no such member
        }
        let key_end = string_end(body, at);
        let raw = body.get(at + 1..key_end.saturating_sub(1))?;
        at = skip_space(body, key_end);
        if body.get(at)? != &b':' {
            return None;
        }
        at = skip_space(body, at + 1);
        let matches = if raw.contains(&b'\\') {
            let raw = std::str::from_utf8(raw).unwrap_or_default();
            serde_json::from_str::<String>(&format!("\"{raw}\"")).unwrap_or_default() == key
        } else if key.is_empty() {
            std::str::from_utf8(raw).unwrap_or_default().is_empty()
        } else {
            // Text equal to a key is UTF-8: no need to check the rest.
            raw == key.as_bytes()
        };
        if matches {
            return Some(at);
        }
        at = skip_space(body, value_end(body, at));
        if body.get(at)? != &b',' {
            return None;
        }
        at = skip_space(body, at + 1);
    }
}

/// Where item `n` of the array at `open` starts.
fn item_at(body: &[u8], open: usize, n: usize) -> Option<usize> {
    let mut at = skip_space(body, open + 1);
    if body.get(at)? == &b']' {
        return None;
    }
    for _ in 0..n {
        at = skip_space(body, value_end(body, at));
        if body.get(at)? != &b',' {
            return None;
        }
        at = skip_space(body, at + 1);
    }
    Some(at)
}

/// Where the value starting at `at` ends: past a string's closing quote, past a
/// container's closing bracket, or at a scalar's delimiter. In JSON, braces pair among
/// themselves outside strings, and so do square brackets: only a container's own kind is
/// counted. (Brackets that do not pair,
/// which the body never has, may make it end elsewhere than the index; never a panic.)
fn value_end(body: &[u8], at: usize) -> usize {
    match body.get(at) {
        Some(b'"') => string_end(body, at),
        Some(&open @ (b'{' | b'[')) => {
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = body.get(i) {
                if b == b'"' {
                    i = string_end(body, i);
                    continue;
                }
                if b == open {
                    depth += 1;
                } else if b == close {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                i += 1;
            }
            body.len()
        }
        _ => {
            let mut i = at;
            while i < body.len()
                && !matches!(body[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            i
        }
    }
}

impl fmt::Debug for LazyJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl Object for LazyJson {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.node().map {
            ObjectRepr::Map
        } else {
            ObjectRepr::Seq
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let members = self.members();
        let member = if self.node().map {
            let key = key.as_str()?;
            members.iter().find(|m| self.key(m) == key)?
        } else {
            members.get(usize::try_from(key.as_i64()?).ok()?)?
        };
        Some(self.value(member))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if self.node().map {
            Enumerator::Values(
                self.members()
                    .iter()
                    .map(|m| Value::from(self.key(m).as_ref()))
                    .collect(),
            )
        } else {
            Enumerator::Seq(self.members().len())
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.members().len())
    }
}

#[cfg(test)]
#[path = "lazy_tests.rs"]
mod tests;

#[cfg(test)]
thread_local! {
    /// How many times `event` was made on this thread (its body read and indexed).
    pub(super) static ROOTS_MADE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
