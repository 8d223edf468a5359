//! Making a template: its source compiled, and refused at once for what every render
//! would fail on (an `{% autoescape %}`, a name no render has, an unknown filter).

use std::collections::BTreeMap;
use std::sync::Arc;
#[cfg(feature = "_async")]
use std::sync::atomic::AtomicU32;

use deskhook::EventType;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::context::{self, Context, Parsed};
use super::output::{format_value, pprint, string, tojson_filter};
use super::{
    ByConstruction, COMPACT, Compiled, DEFAULT_MAX_OUTPUT, Escaping, FORM_ESCAPE, FUEL,
    JSON_ESCAPE, MARKUP_ESCAPE, MAX_SOURCE, NAME, Template, TemplateSource, Vars, describe,
    escaping_of, line_column, output, preset, shape,
};
use crate::error::Error;

/// The error for a template's source over [`MAX_SOURCE`] bytes.
pub(super) fn too_long(source: &TemplateSource) -> Error {
    Error::Template(format!(
        "{source}: it has more than {MAX_SOURCE} bytes, the most a template may have"
    ))
}

impl Template {
    pub(super) fn compile(
        source: TemplateSource,
        text: String,
        content_type: &str,
        required: &'static [(&'static str, &'static str)],
    ) -> Result<Template, Error> {
        let fail = |message: String| Error::Template(format!("{source}: {message}"));
        if text.len() > MAX_SOURCE {
            return Err(too_long(&source));
        }
        if let Some(at) = autoescape_tag(&text) {
            let (line, column) = line_column(&text, at);
            return Err(fail(format!(
                "line {line}, column {column}: {{% autoescape %}} is not allowed: values are \
                 always escaped for the body's content type"
            )));
        }
        let escaping = escaping_of(content_type);
        let json = escaping == Escaping::Json;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Debug mode copies the source into every error; `describe` reads the range instead.
        env.set_debug(false);
        env.set_fuel(Some(FUEL));
        for unsafe_filter in ["safe", "escape", "e"] {
            env.remove_filter(unsafe_filter);
        }
        env.set_auto_escape_callback(move |_| match escaping {
            Escaping::Json => AutoEscape::Custom(JSON_ESCAPE.into()),
            Escaping::Markup => AutoEscape::Custom(MARKUP_ESCAPE.into()),
            Escaping::Form => AutoEscape::Custom(FORM_ESCAPE.into()),
            Escaping::Text => AutoEscape::None,
        });
        env.set_formatter(format_value);
        // Those that make text from values, counted against the render's room (see
        // `output`); `debug()` prints the whole context, uncounted: not offered.
        env.add_filter("tojson", tojson_filter);
        env.add_filter("string", string);
        env.add_filter("pprint", pprint);
        env.remove_global("debug");
        // A namespace is the one value a template can change, so it can be made to hold
        // itself (`{% set ns.me = ns %}`): printing it would recurse until the stack ran out,
        // and every render would leak it. Not offered.
        env.remove_global("namespace");
        env.add_filter(
            "truncate",
            |state: &minijinja::State<'_, '_>, value: Value, n: usize| {
                output::on_text(state, value, |text| output::truncated(text, n))
            },
        );
        env.add_filter(
            "entities",
            |state: &minijinja::State<'_, '_>, value: Value| {
                output::on_text(state, value, output::with_entities)
            },
        );
        env.add_filter("inert", |state: &minijinja::State<'_, '_>, value: Value| {
            output::on_text(state, value, output::made_inert)
        });
        let native = match &source {
            TemplateSource::Preset(name) if json => preset::native(name),
            _ => None,
        };
        env.add_template_owned(NAME, text.clone())
            .map_err(|e| fail(describe(&e, &text)))?;
        unknown_names(&env, &text).map_err(fail)?;
        let shape = if json && native.is_none() {
            shape::read(&text)
        } else {
            None
        };
        let by_construction = shape.and_then(|shape| {
            env.add_template_owned(COMPACT, shape.compact)
                .ok()
                .map(|()| ByConstruction {
                    whole_values: shape.whole_values,
                    plan: shape.plan,
                })
        });
        let template = Template {
            compiled: Arc::new(Compiled {
                source,
                text,
                content_type: content_type.to_owned(),
                json,
                native,
                by_construction,
                #[cfg(feature = "_async")]
                render_ns: AtomicU32::new(0),
                required,
                env,
            }),
            vars: Arc::new(Vars::new(BTreeMap::new())),
            max_output: DEFAULT_MAX_OUTPUT,
        };
        template.trial(false).map_err(|message| {
            Error::Template(format!("{}: {message}", template.compiled.source))
        })?;
        Ok(template)
    }

    /// Renders a sample event to find now the mistakes minijinja finds only when it
    /// renders: a filter, test or function it does not have (`|safe`, `|urlencode`), or
    /// one given the wrong arguments (`|truncate(100, true)`). Any other failure (a field
    /// the sample lacks, a variable set later) says nothing of the template and is left to
    /// the events; a mistake in a branch the sample does not take is too. With
    /// `vars_given` (the endpoint's variables are the template's, and every event renders
    /// with the same), a `vars.…` the variables lack is refused as well: each event would
    /// fail on it.
    fn trial(&self, vars_given: bool) -> Result<(), String> {
        use minijinja::ErrorKind as Kind;
        if self.compiled.native.is_some() {
            return Ok(());
        }
        let Some(parsed) = sample() else {
            return Ok(());
        };
        let context = Context {
            parsed,
            vars: self.vars.value.clone(),
            lang_fallback: None,
            id: SAMPLE_ID.into(),
            tenant: None,
            made: super::context::Made::default(),
        };
        let Ok(template) = self.compiled.env.get_template(NAME) else {
            return Ok(());
        };
        // Written where a render writes, as far as it may (an unbounded string would let a
        // template of loops make tens of megabytes at each upsert); past that, its size is
        // the events' to find.
        let mut out = output::Bounded {
            out: Vec::new(),
            room: self.room(),
            over: false,
        };
        let made = output::RenderRoom::enter(self.room());
        match template.render_captured_to(Value::from_object(context), &mut out) {
            Err(e)
                if !out.over
                    && !made.ran_out()
                    && matches!(
                        e.kind(),
                        Kind::UnknownFilter
                            | Kind::UnknownTest
                            | Kind::UnknownFunction
                            | Kind::MissingArgument
                            | Kind::TooManyArguments
                    ) =>
            {
                Err(describe(&e, &self.compiled.text))
            }
            Err(e)
                if vars_given
                    && !out.over
                    && !made.ran_out()
                    && e.kind() == Kind::UndefinedError
                    && reads_vars(&e, &self.compiled.text) =>
            {
                Err(format!(
                    "{}: template_vars has no such variable (it has {}); add it there, or \
                     test it with `is defined` or give a `|default(…)`",
                    describe(&e, &self.compiled.text),
                    if self.vars.map.is_empty() {
                        "none".to_owned()
                    } else {
                        self.vars
                            .map
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Whether an undefined value's expression is the endpoint's variables' (`vars.chat_id`,
/// `vars["chat_id"]`).
fn reads_vars(e: &minijinja::Error, text: &str) -> bool {
    e.range()
        .and_then(|range| text.get(range))
        .is_some_and(|expression| {
            let expression = expression.trim_start();
            expression.starts_with("vars.") || expression.starts_with("vars[")
        })
}

impl Template {
    /// Renders the sample event with the endpoint's variables, to refuse now a variable
    /// they lack (see [`trial`](Template::trial); only when the endpoint `takes_sample`'s
    /// kind of event, a Zenlix `create`: another kind may not take the branch that reads
    /// it) and a JSON template whose body is not JSON (a value printed without quotes or
    /// `|tojson`), each of which would send every event to the dead letters. Other failures
    /// are left to the events, as in `trial`.
    pub(crate) fn check_sample(&self, takes_sample: bool) -> Result<(), String> {
        self.trial(takes_sample)?;
        if self.compiled.native.is_some() || !self.compiled.json {
            return Ok(());
        }
        let Some(parsed) = sample() else {
            return Ok(());
        };
        match self.render_parsed(&parsed, &SAMPLE_ID.into(), None) {
            Err(message) if message.contains(super::NOT_JSON) => {
                Err(format!("{message} (rendering a sample event)"))
            }
            _ => Ok(()),
        }
    }
}

/// The id the sample event renders with.
const SAMPLE_ID: &str = "01900000-0000-7000-8000-000000000000";

/// A Zenlix `create` of the sample ticket, parsed as the engine parses events.
fn sample() -> Option<Arc<Parsed>> {
    let event = deskhook::sample::event(deskhook::Action::Create);
    let body = event.to_json().ok()?;
    Parsed::new(EventType::Zenlix(deskhook::Action::Create), &body.into())
        .ok()
        .map(Arc::new)
}

/// Where `name` is first used: as a whole word inside `{{ … }}` or `{% … %}` (the same
/// letters in the JSON around them, such as a key `"title"` for `titl`, are not it).
fn name_in_tags(text: &str, name: &str) -> Option<usize> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(open) = text[from..].find('{').map(|i| from + i) {
        let close = match bytes.get(open + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => {
                from = open + 1;
                continue;
            }
        };
        let inside = open + 2;
        let end = text[inside..]
            .find(close)
            .map_or(text.len(), |i| inside + i);
        let tag = &text[inside..end];
        let mut at = 0;
        while let Some(i) = tag[at..].find(name).map(|i| at + i) {
            let (start, stop) = (inside + i, inside + i + name.len());
            let before = start.checked_sub(1).map(|b| bytes[b]);
            if !before.is_some_and(|b| word(b) || b == b'.')
                && !bytes.get(stop).is_some_and(|&b| word(b))
            {
                return Some(start);
            }
            at = i + name.len();
        }
        from = end;
    }
    None
}

/// Refuses a name the template looks up that no render has (strict: every render would
/// fail on it), with the closest known name.
fn unknown_names(env: &Environment<'_>, text: &str) -> Result<(), String> {
    let Ok(template) = env.get_template(NAME) else {
        return Ok(());
    };
    let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
    let known = |name: &str| {
        context::NAMES.contains(&name)
            || globals.contains(&name)
            || ["loop", "self", "super", "caller", "varargs", "kwargs"].contains(&name)
    };
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !known(name))
        .collect();
    unknown.sort();
    let Some(name) = unknown.first() else {
        return Ok(());
    };
    if name == "namespace" {
        return Err(format!(
            "{}namespace() is not offered: a namespace can be made to hold itself, which no \
             render could print or free; count with `loop.index`, or with filters such as \
             `length` and `sum`",
            at_name(text, name)
        ));
    }
    let hint = context::NAMES
        .iter()
        .map(|known| (strsim::levenshtein(name, known), *known))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, known)| format!(" (did you mean '{known}'?)"))
        // Most often a field of the body, written as the body has it at its top.
        .unwrap_or_else(|| format!(" (the event's fields are under `event`: `event.{name}`?)"));
    let at = at_name(text, name);
    let mut functions = globals;
    functions.sort_unstable();
    Err(format!(
        "{at}unknown name '{name}'{hint}; a template sees {}, and the functions {}",
        context::NAMES.join(", "),
        functions.join(", ")
    ))
}

/// `line L, column C: ` where `name` is first used in `text`'s tags, or nothing.
fn at_name(text: &str, name: &str) -> String {
    name_in_tags(text, name)
        .map(|at| {
            let (line, column) = line_column(text, at);
            format!("line {line}, column {column}: ")
        })
        .unwrap_or_default()
}

/// The byte offset of a `{% autoescape … %}` tag, if the source has one.
fn autoescape_tag(text: &str) -> Option<usize> {
    text.match_indices("{%").find_map(|(at, _)| {
        let rest = text[at + 2..].trim_start_matches(['-', '+', '~']);
        rest.trim_start().starts_with("autoescape").then_some(at)
    })
}
