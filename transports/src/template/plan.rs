//! A template JSON by construction whose variables a plan can print (see `shape`), rendered
//! without minijinja: its text as written, compacted, and each variable looked up through
//! the same context and values as the template's, printed by the same formatter and
//! filters. A member of `event` is read from the body in one pass that stops at it
//! (`lazy::value_at`), instead of indexing the whole body; a whole part of `event` is its
//! text in the body, as the template's `tojson` prints it. The output is compact as it is
//! written. Whatever the plan cannot print as the template would — a name or member that is
//! undefined, a value made safe — hands the render to minijinja, which prints it or says
//! what is wrong, with the line. So does a render that could reach a limit: more output
//! than the template's `max_output`, or more than half the fuel minijinja would let it
//! use, counted generously (every byte read or written as if it were a printed object's,
//! which minijinja charges most for). A plan stops one piece past `max_output` at most
//! (each piece is read within the fuel), never sends more, and never answers where
//! minijinja would run out of fuel.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::{Object, Value};

use super::FUEL;
use super::context::Context;
use super::lazy::LazyJson;
use super::output::{
    compact_into, entities, tojson, truncate, truncated, with_entities, write_json_string_content,
    write_value,
};

/// The pieces of a template, in order.
pub(super) struct Plan {
    pieces: Vec<Piece>,
    /// The length of its last output, which the next one is sized for (a part of the event
    /// makes a long output, grown in many steps otherwise).
    last_len: AtomicUsize,
}

/// Text, a variable to print inside a string, or a whole value.
pub(super) enum Piece {
    /// Text written as it is.
    Text(String),
    /// `{{ name.path|filters }}`.
    Value {
        /// The context's name.
        name: String,
        /// The members read from it.
        path: Vec<Step>,
        /// The filters it goes through.
        filters: Vec<Filter>,
    },
    /// `{{ event.path|…|tojson }}`: a whole value, as its text in the body (see
    /// `shape::json_piece`).
    Json {
        /// The members read from `event`.
        path: Vec<Step>,
        /// `map(attribute="…")`: each item's member, into a list.
        attribute: Option<String>,
    },
}

/// A member read from a value.
pub(super) enum Step {
    /// `.name`.
    Attr(String),
    /// `[n]`.
    Index(i64),
}

/// A filter a plan applies.
pub(super) enum Filter {
    /// `truncate(n)`.
    Truncate(usize),
    /// `entities`.
    Entities,
    /// `lower`: minijinja's, `to_lowercase` of a string.
    Lower,
    /// `upper`: minijinja's, `to_uppercase` of a string.
    Upper,
}

/// `text` through `filter`: the same text when it changes nothing.
fn filtered<'a>(text: Cow<'a, str>, filter: &Filter) -> Cow<'a, str> {
    let changed = match filter {
        Filter::Truncate(n) => truncated(&text, *n),
        Filter::Entities => with_entities(&text),
        Filter::Lower => Cow::Owned(text.to_lowercase()),
        Filter::Upper => Cow::Owned(text.to_uppercase()),
    };
    match changed {
        Cow::Owned(changed) => Cow::Owned(changed),
        Cow::Borrowed(_) => text,
    }
}

impl Plan {
    /// The plan of these pieces (empty texts dropped).
    pub(super) fn new(pieces: Vec<Piece>) -> Plan {
        let pieces = pieces
            .into_iter()
            .filter(|piece| !matches!(piece, Piece::Text(text) if text.is_empty()))
            .collect();
        Plan {
            pieces,
            last_len: AtomicUsize::new(0),
        }
    }

    /// The render in `context`, or `None` when minijinja must render it (a variable that is
    /// undefined or safe, or a render that would write more than `limit` bytes or use more
    /// than [`BUDGET`] fuel).
    pub(super) fn render(&self, context: &Arc<Context>, limit: usize) -> Option<String> {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed).max(256) + 64);
        let mut fuel = Fuel(0);
        for piece in &self.pieces {
            let before = out.len();
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value {
                    name,
                    path,
                    filters,
                } => {
                    // The summary's texts are printed as they are, without making values
                    // (what the filters and the formatter do to a string value).
                    if path.is_empty()
                        && let Some(text) = context.text(name)
                    {
                        print_text(&mut out, &mut fuel, text, filters)?;
                    } else if name == "event"
                        && let Some(json) = context.parsed.event_scalar(path)
                    {
                        // A string without escapes is its text between the quotes.
                        match json.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                            Some(text) if !text.contains('\\') => {
                                print_text(&mut out, &mut fuel, text, filters)?
                            }
                            _ => {
                                let value = serde_json::from_str(json).ok()?;
                                print_value(&mut out, &mut fuel, value, filters)?
                            }
                        }
                    } else {
                        let mut value = context.get_value_by_str(name)?;
                        for step in path {
                            value = match step {
                                Step::Attr(member) => value.get_attr(member).ok()?,
                                Step::Index(n) => value.get_item(&Value::from(*n)).ok()?,
                            };
                            if value.is_undefined() {
                                return None;
                            }
                        }
                        print_value(&mut out, &mut fuel, value, filters)?;
                    }
                }
                Piece::Json { path, attribute } => {
                    let parsed = &context.parsed;
                    match attribute {
                        Some(attribute) => {
                            let members = parsed.event_members(path, attribute)?;
                            fuel.spend(members.iter().map(|m| m.len() + 16).sum(), 1)?;
                            print_members(&mut out, &members)?;
                        }
                        None => {
                            let json = parsed.event_json(path)?;
                            fuel.spend(json.len(), 1)?;
                            print_json(&mut out, json, parsed.compact)?;
                        }
                    }
                }
            }
            fuel.spend(out.len() - before, 0)?;
            if out.len() > limit {
                return None;
            }
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        // After a long output, a short one: not kept (queued for a retry) in a buffer sized
        // for the long one.
        if out.capacity() > 2 * out.len() + 256 {
            out.shrink_to_fit();
        }
        Some(out)
    }
}

/// Prints `text` through `filters` as a string value would be (without making one),
/// spending its fuel.
fn print_text(out: &mut String, fuel: &mut Fuel, text: &str, filters: &[Filter]) -> Option<()> {
    fuel.spend(text.len(), filters.len())?;
    let mut text = Cow::Borrowed(text);
    for filter in filters {
        text = filtered(text, filter);
    }
    write_json_string_content(out, &text).ok()
}

/// Prints the value whose text in the body is `json` as `tojson` prints it, compact: an
/// object's or an array's text as it is (the template's `tojson` prints a part of `event`
/// so; compacted unless the body is known to be `compact`), a scalar through `tojson`.
fn print_json(out: &mut String, json: &str, compact: bool) -> Option<()> {
    if json.starts_with(['{', '[']) {
        match compact {
            true => out.push_str(json),
            false => compact_into(out, json),
        }
        return Some(());
    }
    print_tojson(out, serde_json::from_str(json).ok()?)
}

/// Prints the list of these members' values (their JSON texts) as `map(attribute=…)|list|
/// tojson` prints it.
fn print_members(out: &mut String, members: &[&str]) -> Option<()> {
    let values = members
        .iter()
        .map(|member| serde_json::from_str::<Value>(member).ok());
    print_tojson(out, Value::from(values.collect::<Option<Vec<Value>>>()?))
}

/// Prints `value` through the template's `tojson`, compact.
fn print_tojson(out: &mut String, value: Value) -> Option<()> {
    let kwargs = minijinja::value::Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
    compact_into(out, tojson(value, None, kwargs).ok()?.as_str()?);
    Some(())
}

/// Prints `value` through `filters`, spending its fuel.
fn print_value(out: &mut String, fuel: &mut Fuel, value: Value, filters: &[Filter]) -> Option<()> {
    fuel.spend(size(&value), filters.len())?;
    let mut value = value;
    for filter in filters {
        value = match filter {
            Filter::Truncate(n) => truncate(value, *n),
            Filter::Entities => entities(value),
            // minijinja's lower and upper write any other value out first ("none" for
            // none): left to it.
            Filter::Lower => Value::from(value.as_str()?.to_lowercase()),
            Filter::Upper => Value::from(value.as_str()?.to_uppercase()),
        };
    }
    write_value(out, &value)
}

/// The fuel a plan may use before it leaves the render to minijinja: half of a render's.
const BUDGET: u64 = FUEL / 2;

/// The fuel a plan has used, counted generously: 8 for each step, and every byte read or
/// written at the 16 units a printed object's byte costs minijinja (64 units make a fuel).
struct Fuel(u64);

impl Fuel {
    /// Spends the fuel of `bytes` read through `filters` filters (or written); `None` past
    /// [`BUDGET`].
    fn spend(&mut self, bytes: usize, filters: usize) -> Option<()> {
        let units = (bytes as u64).saturating_mul(16 * (filters as u64 + 1));
        self.0 = self.0.saturating_add(8 + units / 64);
        (self.0 <= BUDGET).then_some(())
    }
}

/// The bytes of a value's text, to count its fuel before filtering it.
fn size(value: &Value) -> usize {
    match (value.as_str(), value.downcast_object_ref::<LazyJson>()) {
        (Some(text), _) => text.len(),
        (None, Some(json)) => json.text().len(),
        (None, None) => 16,
    }
}
