//! What a render writes: values as the inside of JSON strings, the filters of our own
//! (`truncate`, `entities`, and `tojson` for parts of `event`), and the compaction of a
//! JSON body.
//!
//! # The text a render makes from values
//!
//! minijinja counts no fuel for a list repeated with `*` (it is lazy: `[x] * 100000000`
//! costs nothing to make), and turns values into text whole before it counts them. So the
//! text a render makes from values (values printed, `tojson`, `string`, `pprint`) is
//! counted here against the render's room ([`RenderRoom`]), as it is made: a value printed
//! is written piece by piece, and `tojson` measures a value before it serializes it (the
//! room is the output's, and at least [`LEAST_ROOM`]: captured values count too). A
//! template that would make more fails with an error naming `max_output`, instead of
//! holding the process's memory. (minijinja's `~` and its string filters applied to such a
//! list still make its text whole: see the module docs.)

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Write as _};

use minijinja::AutoEscape;
use minijinja::value::Value;

use super::lazy;

/// Valid JSON without the whitespace between its tokens (what is inside strings is kept).
pub(super) fn compact(json: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    compact_runs(&json, |run| out.extend_from_slice(&json[run]));
    out
}

/// Appends `json` to `out` without the whitespace between its tokens (see [`compact`]).
pub(super) fn compact_into(out: &mut String, json: &str) {
    // Runs start and end next to ASCII bytes: on characters' boundaries.
    compact_runs(json.as_bytes(), |run| out.push_str(&json[run]));
}

/// Gives the runs of `json` that its compact text keeps, in order. Strings are crossed
/// with `memchr`: a body is mostly strings.
fn compact_runs(json: &[u8], mut keep: impl FnMut(std::ops::Range<usize>)) {
    let mut run = 0;
    let mut at = 0;
    while at < json.len() {
        match json[at] {
            b'"' => {
                // To the closing quote: the next quote not escaped.
                let mut end = at + 1;
                loop {
                    let rest = json.get(end..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(found) if rest[found] == b'\\' => end += found + 2,
                        Some(found) => {
                            end += found + 1;
                            break;
                        }
                        None => {
                            end = json.len();
                            break;
                        }
                    }
                }
                at = end.min(json.len());
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                if run < at {
                    keep(run..at);
                }
                at += 1;
                run = at;
            }
            _ => at += 1,
        }
    }
    if run < json.len() {
        keep(run..json.len());
    }
}

thread_local! {
    /// The bytes of text the render running on this thread may still make from values
    /// (see the module docs); `usize::MAX` outside a render.
    static ROOM_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Whether the render running on this thread was refused more.
    static RAN_OUT: Cell<bool> = const { Cell::new(false) };
}

/// The render running on this thread, and its room for the text it makes from values (see
/// the module docs): set for the render's length, and given back as it ends (or unwinds).
pub(super) struct RenderRoom {
    before: (usize, bool),
}

/// The least room a render has for the text it makes from values: a template whose body is
/// small (`max_output`) may still capture a long text to cut it (`{% set %}` then
/// `truncate`).
const LEAST_ROOM: usize = 4 << 20;

impl RenderRoom {
    /// A render whose output has `room` bytes: as many for the text it makes from values,
    /// and at least [`LEAST_ROOM`].
    pub(super) fn enter(room: usize) -> RenderRoom {
        RenderRoom {
            before: (
                ROOM_LEFT.replace(room.max(LEAST_ROOM)),
                RAN_OUT.replace(false),
            ),
        }
    }

    /// Whether the render was refused text past its room: it failed for its size, as one
    /// whose output passed the room does.
    pub(super) fn ran_out(&self) -> bool {
        RAN_OUT.get()
    }
}

impl Drop for RenderRoom {
    fn drop(&mut self) {
        ROOM_LEFT.set(self.before.0);
        RAN_OUT.set(self.before.1);
    }
}

/// Takes `n` bytes of the render's room; false (and nothing taken, the render marked as
/// having run out) when it has not that many left.
fn take_room(n: usize) -> bool {
    let mut left = ROOM_LEFT.get();
    let taken = take(&mut left, n);
    ROOM_LEFT.set(left);
    if !taken {
        RAN_OUT.set(true);
    }
    taken
}

/// The error of a render that would make more text from values than its room.
fn out_of_room(what: &str) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "{what} would make more text than this template's max_output allows: print less \
             (a list repeated with `*` prints every repetition)"
        ),
    )
}

/// Prints a value: as the inside of a JSON string in a JSON template, as text otherwise.
/// `none` prints nothing, booleans `true`/`false`, lists and maps as JSON; what the template
/// made safe itself (`tojson`, captured output) as it is. Written piece by piece, counted
/// against the render's room (see the module docs).
pub(super) fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let full = || minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "output full");
    if value.is_safe() {
        // Made by the template itself: `tojson`'s JSON, or output it captured (whose values
        // were escaped when they were printed).
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(|_| full());
    }
    let mut escaped = Escaped {
        out,
        escaping: escaping_in(state),
        counted: true,
        out_of_room: false,
    };
    match write_text(&mut escaped, value) {
        Ok(()) => Ok(()),
        Err(_) if escaped.out_of_room => Err(out_of_room("a value printed")),
        Err(Unwritten::Full) => Err(full()),
        Err(Unwritten::Serialization(e)) => Err(minijinja::Error::new(
            minijinja::ErrorKind::BadSerialization,
            e,
        )),
    }
}

/// The escaping the render's auto-escape names.
fn escaping_in(state: &minijinja::State<'_, '_>) -> Escaping {
    match state.auto_escape() {
        AutoEscape::Custom(name) if name == JSON_ESCAPE => Escaping::Json,
        AutoEscape::Custom(name) if name == MARKUP_ESCAPE => Escaping::Markup,
        AutoEscape::Custom(name) if name == FORM_ESCAPE => Escaping::Form,
        _ => Escaping::Text,
    }
}

/// Text written to `out` escaped as `escaping` says, and (when `counted`) counted against
/// the render's room: a write past it fails, and says so in `out_of_room`.
struct Escaped<'o, W: fmt::Write> {
    out: &'o mut W,
    escaping: Escaping,
    counted: bool,
    out_of_room: bool,
}

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.counted && !take_room(text.len()) {
            self.out_of_room = true;
            return Err(fmt::Error);
        }
        match self.escaping {
            Escaping::Json => write_json_string_content(self.out, text),
            Escaping::Markup => write_markup(self.out, text),
            Escaping::Form => url::form_urlencoded::byte_serialize(text.as_bytes())
                .try_for_each(|part| self.out.write_str(part)),
            Escaping::Text => self.out.write_str(text),
        }
    }
}

/// Why a value's text was not written whole.
enum Unwritten {
    /// The output took no more.
    Full,
    /// The value has no JSON (a map with keys that are not text).
    Serialization(String),
}

/// Writes the text of a value that is not safe: nothing for none and undefined,
/// `true`/`false`, lists (a list repeated with `*` too) and maps as JSON, serialized piece
/// by piece (serde stops at the first write refused, where minijinja's text of a list goes
/// through every item), the rest as text.
fn write_text(out: &mut impl fmt::Write, value: &Value) -> Result<(), Unwritten> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => Ok(()),
        ValueKind::Bool => out
            .write_str(if value.is_true() { "true" } else { "false" })
            .map_err(|_| Unwritten::Full),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            match value.downcast_object_ref::<lazy::LazyJson>() {
                Some(json) => out.write_str(json.text()).map_err(|_| Unwritten::Full),
                None => {
                    let mut bytes = Utf8Writer {
                        out,
                        tail: Vec::new(),
                        failed: false,
                    };
                    match serde_json::to_writer(&mut bytes, value) {
                        Ok(()) => Ok(()),
                        Err(_) if bytes.failed => Err(Unwritten::Full),
                        Err(e) => Err(Unwritten::Serialization(e.to_string())),
                    }
                }
            }
        }
        _ => match value.as_str() {
            Some(text) => out.write_str(text).map_err(|_| Unwritten::Full),
            None => write!(out, "{value}").map_err(|_| Unwritten::Full),
        },
    }
}

/// The bytes serde_json writes, handed to `out` as text: a character cut between two
/// writes waits in `tail` for its end.
struct Utf8Writer<'o, W: fmt::Write> {
    out: &'o mut W,
    tail: Vec<u8>,
    failed: bool,
}

impl<W: fmt::Write> std::io::Write for Utf8Writer<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let failed = |this: &mut Self| {
            this.failed = true;
            std::io::Error::other("the output took no more")
        };
        let joined;
        let bytes = if self.tail.is_empty() {
            buf
        } else {
            joined = [std::mem::take(&mut self.tail).as_slice(), buf].concat();
            joined.as_slice()
        };
        let (text, rest) = match std::str::from_utf8(bytes) {
            Ok(text) => (text, &[][..]),
            Err(e) if e.error_len().is_none() => {
                let (whole, cut) = bytes.split_at(e.valid_up_to());
                // Whole characters: valid up to there.
                (std::str::from_utf8(whole).unwrap_or_default(), cut)
            }
            // serde_json writes UTF-8 only.
            Err(e) => return Err(std::io::Error::other(e)),
        };
        if self.out.write_str(text).is_err() {
            return Err(failed(self));
        }
        self.tail.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` as entities, for HTML and XML.
fn write_markup(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.write_str(&rest[..at])?;
        out.write_str(match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        })?;
        rest = &rest[at + 1..];
    }
    out.write_str(rest)
}

/// Writes a value as a JSON template prints it (see [`format_value`]); `None` for what a
/// template does not print that way (a safe value, an undefined one: an error in a
/// template) and for a value that cannot be written. (The plan's values are parts of the
/// event: not counted against the room.)
pub(super) fn write_value(out: &mut String, value: &Value) -> Option<()> {
    if value.is_safe() || value.is_undefined() {
        return None;
    }
    let mut escaped = Escaped {
        out,
        escaping: Escaping::Json,
        counted: false,
        out_of_room: false,
    };
    write_text(&mut escaped, value).ok()
}

/// The `tojson` filter: [`tojson`], counted against the render's room, and escaped for
/// the body's type: JSON text holds `<`, `>`, `&` and `'` only inside its strings, where
/// `\u003c`… say the same, so those are written so in HTML and XML; in a form body the
/// text is percent-encoded, as any value printed there.
pub(super) fn tojson_filter(
    state: &minijinja::State<'_, '_>,
    value: Value,
    indent: Option<Value>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, minijinja::Error> {
    let json = tojson(value, indent, kwargs)?;
    let text = json.as_str().unwrap_or_default();
    let escaping = escaping_in(state);
    // Safe, it is not counted as it is printed: counted here (a form's is, as any value).
    if escaping != Escaping::Form && !take_room(text.len()) {
        return Err(out_of_room("this tojson"));
    }
    Ok(match escaping {
        Escaping::Json | Escaping::Text => json,
        Escaping::Markup => {
            let mut safe = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find(['<', '>', '&', '\'']) {
                safe.push_str(&rest[..at]);
                safe.push_str(match rest.as_bytes()[at] {
                    b'<' => "\\u003c",
                    b'>' => "\\u003e",
                    b'&' => "\\u0026",
                    _ => "\\u0027",
                });
                rest = &rest[at + 1..];
            }
            safe.push_str(rest);
            Value::from_safe_string(safe)
        }
        // Not safe: the formatter percent-encodes it.
        Escaping::Form => Value::from(text),
    })
}

/// `string`, minijinja's, within the render's room (see the module docs): a text stays as
/// it is; another value is measured first (refused when it could not fit: its text is at
/// least as long as its JSON), and its text made up to the room. (Counted when printed.)
pub(super) fn string(value: Value) -> Result<Value, minijinja::Error> {
    if value.kind() == minijinja::value::ValueKind::String {
        return Ok(value);
    }
    bounded_text("this string", &value, |out| write!(out, "{value}")).map(Value::from)
}

/// `pprint`, minijinja's, within the render's room (see [`string`]).
pub(super) fn pprint(value: &Value) -> Result<String, minijinja::Error> {
    bounded_text("this pprint", value, |out| write!(out, "{value:#?}"))
}

/// The text `write` makes of `value`, up to what is left of the render's room (not taken:
/// the text is counted when it is printed); an error naming `what` when `value` could not
/// fit (measured first: minijinja's text of a list goes through all its items, even once
/// no more is written), or its text passes the room.
fn bounded_text(
    what: &str,
    value: &Value,
    write: impl FnOnce(&mut Capped) -> fmt::Result,
) -> Result<String, minijinja::Error> {
    let room = ROOM_LEFT.get();
    let mut measured = room;
    json_fits(value, &mut measured, 0).map_err(|unfit| unfit.error(what))?;
    let mut capped = Capped {
        text: String::new(),
        left: room,
    };
    match write(&mut capped) {
        Ok(()) => Ok(capped.text),
        Err(_) if capped.left == 0 => {
            RAN_OUT.set(true);
            Err(out_of_room(what))
        }
        Err(_) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("{what}: the value cannot be written as text"),
        )),
    }
}

/// Text kept up to `left` more bytes; a write past them fails, and leaves `left` at 0.
struct Capped {
    text: String,
    left: usize,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !take(&mut self.left, text.len()) {
            self.left = 0;
            return Err(fmt::Error);
        }
        self.text.push_str(text);
        Ok(())
    }
}

/// `tojson`, minijinja's, except that a part of `event` is printed as the body has it (its
/// JSON as serialized, compact) instead of being serialized again, and that another value
/// is measured first: one whose JSON would pass the render's room is refused before it is
/// made (see the module docs).
pub(super) fn tojson(
    value: Value,
    indent: Option<Value>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, minijinja::Error> {
    if indent.is_none()
        && kwargs.args().next().is_none()
        && let Some(json) = value.downcast_object_ref::<lazy::LazyJson>()
    {
        // An object's or array's text is never empty, unless it is not UTF-8 (what the
        // index reads as empty): not JSON to print.
        let text = json.text();
        if text.is_empty() {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::BadSerialization,
                "this part of the event is not UTF-8 text",
            ));
        }
        return Ok(Value::from_safe_string(text.to_owned()));
    }
    let mut room = ROOM_LEFT.get();
    json_fits(&value, &mut room, 0).map_err(|unfit| unfit.error("this tojson"))?;
    minijinja::filters::tojson(&value, indent, kwargs)
}

/// The deepest value [`json_fits`] measures.
const DEEPEST: usize = 128;

/// Why a value's JSON cannot be made ([`json_fits`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unfit {
    /// It would pass the room.
    Room,
    /// It is nested more than [`DEEPEST`] deep.
    Depth,
}

impl Unfit {
    /// The render's error, naming `what` would have made the text; [`Unfit::Room`] marks the
    /// render as out of room.
    fn error(self, what: &str) -> minijinja::Error {
        match self {
            Unfit::Room => {
                RAN_OUT.set(true);
                out_of_room(what)
            }
            Unfit::Depth => minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("{what}: the value is nested more than {DEEPEST} deep"),
            ),
        }
    }
}

/// Whether `value`'s JSON may fit in `room` bytes, which it takes: at least as many bytes
/// as its JSON takes are counted, and the count stops as soon as they pass (a list
/// repeated a hundred million times is not walked whole). A value nested more than
/// [`DEEPEST`] deep is not measured.
pub(super) fn json_fits(value: &Value, room: &mut usize, depth: usize) -> Result<(), Unfit> {
    use minijinja::value::ValueKind;
    if depth > DEEPEST {
        return Err(Unfit::Depth);
    }
    let take = |room: &mut usize, n: usize| take(room, n).then_some(()).ok_or(Unfit::Room);
    match value.kind() {
        ValueKind::String | ValueKind::Bytes => take(room, value.len().unwrap_or(0) + 2),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            if let Some(json) = value.downcast_object_ref::<lazy::LazyJson>() {
                return take(room, json.text().len());
            }
            let Ok(items) = value.try_iter() else {
                return take(room, 2);
            };
            let map = value.kind() == ValueKind::Map;
            take(room, 2)?;
            for (n, item) in items.enumerate() {
                // A separator before all but the first, and a map's value after its key
                // and colon.
                if n > 0 {
                    take(room, 1)?;
                }
                json_fits(&item, room, depth + 1)?;
                if map {
                    let member = value.get_item(&item).unwrap_or_default();
                    take(room, 1)?;
                    json_fits(&member, room, depth + 1)?;
                }
            }
            Ok(())
        }
        _ => take(room, 1),
    }
}

/// Takes `n` bytes of `room`; false (and nothing taken) when it has not that many.
fn take(room: &mut usize, n: usize) -> bool {
    match room.checked_sub(n) {
        Some(left) => {
            *room = left;
            true
        }
        None => false,
    }
}

/// `truncate(n)`: the first `n` characters, the last one `…` when some were cut. A value
/// short enough is passed on as it is (no copy).
pub(super) fn truncate(value: Value, n: usize) -> Value {
    match value.as_str().map(|text| truncated(text, n)) {
        Some(Cow::Owned(cut)) => Value::from(cut),
        _ => value,
    }
}

/// A text filter (`change`: [`truncated`], [`with_entities`], [`made_inert`]) on `value`,
/// as the template calls it. A value the template made safe itself (output it captured,
/// already escaped for the body's type) is changed as the text it stands for: in a JSON
/// body its escapes are read, the change made, and the result escaped again, so that a
/// cut never falls inside an escape and nothing is escaped twice; in another, the change
/// is made on it as written. Either way it stays safe (escaped once).
pub(super) fn on_text(
    state: &minijinja::State<'_, '_>,
    value: Value,
    change: impl for<'t> Fn(&'t str) -> Cow<'t, str>,
) -> Value {
    let Some(text) = value.as_str() else {
        return value;
    };
    if !value.is_safe() {
        return match change(text) {
            Cow::Owned(changed) => Value::from(changed),
            Cow::Borrowed(_) => value,
        };
    }
    let json = matches!(state.auto_escape(), AutoEscape::Custom(name) if name == JSON_ESCAPE);
    if json && let Ok(plain) = serde_json::from_str::<String>(&format!("\"{text}\"")) {
        let mut escaped = String::with_capacity(text.len());
        // Writing to a String cannot fail.
        let _ = write_json_string_content(&mut escaped, &change(&plain));
        return Value::from_safe_string(escaped);
    }
    Value::from_safe_string(change(text).into_owned())
}

/// [`truncate`] on text.
pub(super) fn truncated(text: &str, n: usize) -> Cow<'_, str> {
    // A character is at least a byte: a text of at most `n` bytes has at most `n` characters.
    if text.len() <= n || text.chars().count() <= n {
        return text.into();
    }
    // At most none: not even the `…` (owned: a changed text).
    if n == 0 {
        return Cow::Owned(String::new());
    }
    let mut out: String = text.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out.into()
}

/// `entities`: `&`, `<` and `>` as HTML entities, as Slack's mrkdwn wants them. A value
/// without them is passed on as it is.
pub(super) fn entities(value: Value) -> Value {
    match value.as_str().map(with_entities) {
        Some(Cow::Owned(text)) => Value::from(text),
        _ => value,
    }
}

/// `inert`: Markdown that notifies nobody, loads nothing and hides no link, for a chat
/// that renders customers' text (Mattermost, Teams, Discord, Telegram): a word joiner
/// (U+2060) after each `@`, so that no `@all`, `@channel` or `@name` notifies; after each
/// `!` before a `[`, so that no `![](…)` image is fetched from the writer's server; and
/// after each `]` before a `(`, a `[` or a `:`, so that neither `[words](address)` nor a
/// reference link (`[words][1]` with `[1]: address`) shows words in place of where it
/// leads (an address written out stays a link, and shows where it goes). It reads the
/// same. Text without them is passed on as it is.
pub(super) fn made_inert(text: &str) -> Cow<'_, str> {
    if !any_byte(text, |b| matches!(b, b'@' | b'!' | b']')) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        let next = chars.peek();
        if c == '@'
            || (c == '!' && next == Some(&'['))
            || (c == ']' && matches!(next, Some('(' | '[' | ':')))
        {
            out.push('\u{2060}');
        }
    }
    out.into()
}

/// [`entities`] on text.
pub(super) fn with_entities(text: &str) -> Cow<'_, str> {
    if !any_byte(text, |b| matches!(b, b'&' | b'<' | b'>')) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out.into()
}

/// Whether `hit` is true of any byte of `text`: a pass without branches in its chunks, which
/// the compiler vectorizes (the long texts of tickets are mostly clean).
fn any_byte(text: &str, hit: impl Fn(u8) -> bool) -> bool {
    text.as_bytes()
        .chunks(32)
        .any(|chunk| chunk.iter().fold(false, |found, &b| found | hit(b)))
}

/// Writes `text` as the inside of a JSON string literal: `"`, `\` and control characters
/// escaped, the rest copied in runs.
pub(super) fn write_json_string_content(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    if !any_byte(text, |b| b < 0x20 || b == b'"' || b == b'\\') {
        return out.write_str(text);
    }
    let mut run = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.write_str(&text[run..i])?;
        if escaped.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(escaped)?;
        }
        run = i + 1;
    }
    out.write_str(&text[run..])
}

/// Why a render through minijinja failed.
pub(super) enum Failed {
    /// minijinja's error, and the source it was rendering.
    Render(minijinja::Error, String),
    /// It wrote more than it had room for (see [`Bounded`]).
    Over,
}

/// A render's output, refused once it would pass `room` bytes.
pub(super) struct Bounded {
    pub(super) out: Vec<u8>,
    pub(super) room: usize,
    pub(super) over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.room {
            self.over = true;
            return Err(std::io::Error::other("over the template's output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The escaping of JSON templates, for the formatter.
pub(super) const JSON_ESCAPE: &str = "json-string";

/// The name of the escaping of values in HTML and XML bodies.
pub(super) const MARKUP_ESCAPE: &str = "markup";

/// The name of the escaping of values in form bodies.
pub(super) const FORM_ESCAPE: &str = "form";

/// How printed values are escaped in a body of some content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Escaping {
    /// As the inside of a JSON string.
    Json,
    /// `&`, `<`, `>`, `"` and `'` as entities (HTML, XML).
    Markup,
    /// Percent-encoded as a form's value (`application/x-www-form-urlencoded`).
    Form,
    /// Not at all (plain text, Markdown, …).
    Text,
}

/// The escaping of a content type (any parameters): JSON for `application/json`, `…/json`
/// (`text/json`), `…/x-json` or `…+json`; markup for `text/html` and XML (`…/xml`,
/// `…+xml`); a form's for `application/x-www-form-urlencoded`; none otherwise.
pub(super) fn escaping_of(content_type: &str) -> Escaping {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.ends_with("/json") || essence.ends_with("/x-json") || essence.ends_with("+json") {
        Escaping::Json
    } else if essence == "text/html" || essence.ends_with("/xml") || essence.ends_with("+xml") {
        Escaping::Markup
    } else if essence == "application/x-www-form-urlencoded" {
        Escaping::Form
    } else {
        Escaping::Text
    }
}

/// Whether a content type is JSON (see [`escaping_of`]).
pub(super) fn is_json(content_type: &str) -> bool {
    escaping_of(content_type) == Escaping::Json
}
