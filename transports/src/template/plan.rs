//! A template JSON by construction whose variables a plan can print (see `shape`), rendered
//! without minijinja: its text as written, compacted, and each variable looked up through
//! the same context and values as the template's, printed by the same formatter and
//! filters. Whatever the plan cannot print as the template would — a name or member that is
//! undefined, a value made safe — hands the render to minijinja, which prints it or says
//! what is wrong, with the line.

use std::borrow::Cow;
use std::sync::Arc;

use minijinja::value::{Object, Value};

use super::context::Context;
use super::output::{
    entities, truncate, truncated, with_entities, write_json_string_content, write_value,
};

/// The pieces of a template, in order.
pub(super) struct Plan {
    pieces: Vec<Piece>,
}

/// Text, or a variable to print.
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
}

/// `text` through `filter`: the same text when it changes nothing.
fn filtered<'a>(text: Cow<'a, str>, filter: &Filter) -> Cow<'a, str> {
    let changed = match filter {
        Filter::Truncate(n) => truncated(&text, *n),
        Filter::Entities => with_entities(&text),
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
        Plan { pieces }
    }

    /// The render in `context`, or `None` when minijinja must render it (a variable that is
    /// undefined, or safe).
    pub(super) fn render(&self, context: &Arc<Context>) -> Option<String> {
        let mut out = String::with_capacity(512);
        for piece in &self.pieces {
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
                        let mut text = Cow::Borrowed(text);
                        for filter in filters {
                            text = filtered(text, filter);
                        }
                        write_json_string_content(&mut out, &text).ok()?;
                        continue;
                    }
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
                    for filter in filters {
                        value = match filter {
                            Filter::Truncate(n) => truncate(value, *n),
                            Filter::Entities => entities(value),
                        };
                    }
                    write_value(&mut out, &value)?;
                }
            }
        }
        Some(out)
    }
}
