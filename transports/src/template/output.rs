//! What a render writes: values as the inside of JSON strings, the filters of our own
//! (`truncate`, `entities`, and `tojson` for parts of `event`), and the compaction of a
//! JSON body.

use std::borrow::Cow;
use std::fmt;

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

/// Prints a value: as the inside of a JSON string in a JSON template, as text otherwise.
/// `none` prints nothing, booleans `true`/`false`, lists and maps as JSON; what the template
/// made safe itself (`tojson`, captured output) as it is.
pub(super) fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.is_safe() {
        // Made by the template itself: `tojson`'s JSON, or output it captured (whose values
        // were escaped when they were printed).
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "output full"));
    }
    let Some(text) = value_text(value)? else {
        return Ok(());
    };
    let written = match state.auto_escape() {
        AutoEscape::Custom(name) if name == JSON_ESCAPE => write_json_string_content(out, &text),
        AutoEscape::Custom(name) if name == MARKUP_ESCAPE => write_markup(out, &text),
        AutoEscape::Custom(name) if name == FORM_ESCAPE => {
            url::form_urlencoded::byte_serialize(text.as_bytes())
                .try_for_each(|part| out.write_str(part))
        }
        _ => out.write_str(&text),
    };
    written.map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "output full"))
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

/// A value that is not safe as text: `None` for none and undefined, `true`/`false`, lists
/// and maps as JSON.
fn value_text(value: &Value) -> Result<Option<Cow<'_, str>>, minijinja::Error> {
    use minijinja::value::ValueKind;
    Ok(Some(match value.kind() {
        ValueKind::None | ValueKind::Undefined => return Ok(None),
        ValueKind::Bool => (if value.is_true() { "true" } else { "false" }).into(),
        ValueKind::Seq | ValueKind::Map => match value.downcast_object_ref::<lazy::LazyJson>() {
            Some(json) => json.text().into(),
            None => serde_json::to_string(value)
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
                })?
                .into(),
        },
        _ => match value.as_str() {
            Some(s) => s.into(),
            None => value.to_string().into(),
        },
    }))
}

/// Writes a value as a JSON template prints it (see [`format_value`]); `None` for what a
/// template does not print that way (a safe value, an undefined one: an error in a
/// template) and for a value that cannot be written.
pub(super) fn write_value(out: &mut String, value: &Value) -> Option<()> {
    if value.is_safe() || value.is_undefined() {
        return None;
    }
    if let Some(text) = value_text(value).ok()? {
        write_json_string_content(out, &text).ok()?;
    }
    Some(())
}

/// `tojson`, minijinja's, except that a part of `event` is printed as the body has it (its
/// JSON as serialized, compact) instead of being serialized again.
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
    minijinja::filters::tojson(&value, indent, kwargs)
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
