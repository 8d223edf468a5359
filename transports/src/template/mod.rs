//! Payload templates: an endpoint's body in another shape than its format's JSON — a chat
//! message for Slack, Microsoft Teams, Mattermost, Discord or Telegram, or a CRM's own JSON.
//!
//! A [`Template`] is a [preset](Template::preset) (`slack`, `teams`, `mattermost`, `discord`,
//! `telegram`) or a [Jinja](https://docs.rs/minijinja) template of your own
//! ([`Template::inline`], [`Template::file`]). An endpoint with a template
//! ([`Endpoint::template`](crate::delivery::Endpoint::template); `template`,
//! `template_file` and `template_vars` in `deskhook.toml` and the admin API) gets the
//! rendered text as its body; without one, the event's JSON as before.
//!
//! # What a template sees
//!
//! | Name | Value |
//! |---|---|
//! | `event` | the event's JSON as sent without a template, typed (`event.ticket.subject`, `event.comment.ticket_id`, `event.ChatEvent.ChatId`) |
//! | `raw` | the same JSON as text |
//! | `event_type` | `create`, `usedesk.comment_created`, `iqchannels.message_created`, … |
//! | `format` | `zenlix`, `usedesk` or `iqchannels` |
//! | `id` | the event id (`webhook-id`) |
//! | `tenant` | the event's tenant, or none |
//! | `lang` | `ru` or `en`: the initial user's language (Zenlix), else `template_vars.lang`, else `en` |
//! | `label` | what happened, in `lang`: "Заявка создана", "Ticket commented", "New chat message" |
//! | `subject` | the ticket's subject (Usedesk, Zenlix) or the chat as "#21" (iQChannels); may be empty |
//! | `text` | the ticket's text, the new comment or message (for a file, its name), or the rating; may be empty |
//! | `author` | who did it, when the event says; may be empty |
//! | `ticket` | the ticket code or id, or the chat id (what orders delivery) |
//! | `vars` | the endpoint's `template_vars` (`vars.chat_id`) |
//!
//! # Safe by construction
//!
//! - When the content type is JSON (the default), every value printed with `{{ … }}` is
//!   escaped as the inside of a JSON string: quotes, backslashes and control characters
//!   cannot end the string, so a ticket subject such as `"}, "admin": true` stays text. Write
//!   values inside quotes (`"text": "{{ subject }}"`); print a whole JSON value with
//!   `{{ event.ticket|tojson }}` (a part of `event` prints as the body has it: compact,
//!   as serialized, `<`, `>` and `&` not escaped). The rendered body must parse as JSON, or
//!   the event goes to the dead letters; it is sent compact (the template's layout is for
//!   its readers). The presets print every value inside a string, so their output is JSON
//!   by construction: they run as Rust (see Cost) and their renders are sent without a
//!   second parse. So are the renders of a template of your own that has no tags and
//!   prints only variables inside strings, through `default`, `lower`, `upper`, `trim`,
//!   `title`, `capitalize`, `replace`, `truncate` or `entities` (a CRM's fields:
//!   `"status": "{{ event.ticket.status|upper }}"`): it is rendered from a copy of its
//!   source without the whitespace between tokens, about 20% faster. A template that also
//!   prints whole values where values go, each through filters ending in `tojson`
//!   (`{"type": "{{ event_type }}", "data": {{ event|tojson }}}`), is JSON by construction
//!   too: its output is compacted but not parsed again. When, besides, its values inside
//!   strings go through `truncate`, `entities`, `lower`, `upper` and `default` only, its
//!   whole values are parts of `event` through `default([])` and
//!   `map(attribute="name")|list` only (`"comments":
//!   {{ event.ticket.comments|default([])|map(attribute="text")|list|tojson }}`), and no
//!   `{{-` trims whitespace, it renders without minijinja at all, in a fraction of the
//!   time: it reads the members it prints straight from the body, with the same formatter,
//!   filters and `tojson`; anything undefined or unusual is handed back to minijinja,
//!   which renders it or reports it. `{% autoescape %}` and the `safe` and `escape`
//!   filters are refused.
//! - In a body of another content type, values are escaped for it: in HTML and XML
//!   (`text/html`, `…/xml`, `…+xml`) `&`, `<`, `>`, `"` and `'` become entities (so
//!   `entities` is not needed there). `tojson`'s output is not escaped again: it writes
//!   `<`, `>`, `&` and `'` as `\u…` escapes, but `"` as it is, so in HTML put it in a
//!   single-quoted attribute (`data-x='{{ event|tojson }}'`) or a `<script>`, as Jinja
//!   advises. In a form (`application/x-www-form-urlencoded`) each
//!   value is percent-encoded (write `subject={{ subject }}&ticket={{ ticket }}`: a subject
//!   `x&role=admin` stays one value). Plain text and other types print values as they are.
//! - Beside minijinja's filters (`default`, `lower`, `replace`, `join`, `tojson`, …):
//!   `truncate(n)` (at most `n` characters, the last one `…`), `entities` (`&`, `<`, `>`
//!   as HTML entities, for Slack) and `inert` (Markdown whose `@` mentions notify nobody,
//!   whose `![](…)` images load nothing and whose links (`[words](address)`, or by
//!   reference: `[words][1]` and `[1]: address`) show their address: a word joiner after
//!   `@`, between `!` and `[`, and between `]` and `(`, `[` or `:`; for Mattermost, Teams,
//!   Discord and Telegram).
//! - Undefined variables are errors (`event.ticket.subjet` fails instead of printing
//!   nothing); test with `is defined` or give a `|default(…)`.
//! - No file or network access: a template cannot include or import another.
//! - Limits: the template's source at most [`MAX_SOURCE`] bytes; a render at most
//!   [`FUEL`] fuel (an instruction costs one fuel, and every 64 bytes of data made cost one —
//!   so a render does at most about a million steps and makes at most about 64 MB); the body
//!   at most [`Template::max_output`] bytes (256 KiB by default; `template_max_output` in
//!   an endpoint's settings), a render being stopped as
//!   it writes past that (past 16 times that and a MiB for JSON, whose layout is compacted
//!   away after). The text made from values (values printed, captured ones too, `tojson`,
//!   `string`, `pprint`) counts as it is made against a room of its own (the output's, and
//!   at least 4 MiB, so that a small body may still cut a long capture): a list repeated
//!   with `*`, which minijinja makes lazily for no fuel (`[x] * 100000000`), fails the
//!   render instead of being made whole. `debug()` is not offered, nor `namespace()` (the
//!   one value a template could change, it can be made to hold itself, which no render
//!   could print or free).
//! - What these limits do not bound: minijinja makes the whole text of a list for `~`
//!   (`'a' ~ list`) and for its string filters applied to one (`list|upper`), counting it
//!   only once it is made. A template that does so with a list repeated millions of times
//!   holds that much memory, on the thread that renders it (at the template's creation
//!   too, by its sample render). Let people you trust write templates, or run the process
//!   under a memory limit (systemd's `MemoryMax`).
//!
//! # Errors
//!
//! A template that does not compile is refused when it is made — at `upsert`, at config
//! load, by the admin API — with its line and column, and so is one that looks up a
//! top-level name no render has (`{{ subjet }}`, with the closest name), or, rendering a
//! sample event (as far as a render may write), uses a filter, test or function minijinja does not have or gives one the
//! wrong arguments (`|safe`, `|urlencode`, `|truncate(100, true)`). An endpoint with a JSON
//! template is refused too when, with its variables, the sample event's body is not JSON (a
//! value printed without quotes or `|tojson`). A mistake in a branch
//! the sample event does not take is found by the first event that takes it. An event that fails to render (an
//! undefined variable, the fuel or the output limit, invalid JSON) goes to the dead letters
//! with the reason, line and expression, and is counted and logged like any dead letter.
//!
//! # Cost
//!
//! A template is compiled once, when it is made. An event's summary is read once for all
//! the templated endpoints it goes to, by a typed pass over its body that builds no tree
//! (from the typed event itself for a Zenlix emit); `event` is indexed in one pass when a
//! template first reads it (where every object's and array's members are in the body; no
//! tree of values is built), a member becomes a value when read, and `event|tojson` copies
//! the body. A template rendered without minijinja (above) does not index the body: it
//! reads each member it prints in a pass that stops there. The presets run as Rust that
//! writes exactly what their templates render (the tests compare the two for every
//! event): a preset's render costs about a quarter of the event's serialization, a
//! template rendered without minijinja about half of it (a CRM's typed fields) to a
//! little more than all of it (the whole event and the comments' texts besides), and one
//! that needs minijinja a few times it. [`Template::rendering`] says which way a template
//! renders, and `deskhook render --template … --explain` says it with what would make it
//! faster. The body is rendered once per endpoint, at
//! its first attempt; retries send the same bytes, and the signature covers them. A render
//! that waits for a retry, or is kept for the event's other endpoints, is charged to the
//! sink's `max_queued_bytes`; one that does not fit is let go and made again, the same
//! bytes, at the next attempt, so a large template for an endpoint that is down costs
//! budget, not unbounded memory. A change of the endpoint's template applies from the next
//! attempt, as every change does. The async transport renders a template whose renders
//! take 4 µs or more (each template keeps a moving average) on threads of its own, so
//! that a slow template does not hold up the other endpoints' requests. `cargo bench -p
//! deskhook-transports --bench template` measures a render next to the event's
//! serialization, and `benches/templates.sh` templated delivery next to untemplated.
//!
//! ```
//! use deskhook::EventType;
//! use deskhook_transports::template::Template;
//!
//! let template = Template::inline(r#"{"text": "{{ label }}: {{ subject }}"}"#)?;
//! let body = br#"{"ticket":{"code":"E3XK","subject":"Printer \"HP\" on fire"},
//!     "initial_user":{"profile":{"lang":"en"}},"action":"create"}"#;
//! let rendered = template.render(EventType::from_wire("create").unwrap(), "id-1", None, body)?;
//! assert_eq!(rendered, r#"{"text":"Ticket created: Printer \"HP\" on fire"}"#);
//! # Ok::<(), deskhook_transports::Error>(())
//! ```

mod compile;
mod context;
mod lazy;
mod output;
mod plan;
mod preset;
mod render;
use render::{NOT_JSON, describe, line_column};

/// The name of the preset `text` names as a `template` setting (as
/// [`Template::named_or_inline`] reads it: ignoring case and spaces around), if it names one.
#[cfg(feature = "nats")]
pub(crate) fn preset_named(text: &str) -> Option<&'static str> {
    if text.contains("{{") || text.contains("{%") {
        return None;
    }
    preset::find(text).ok().map(|p| p.name)
}
mod rendering;
mod shape;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
#[cfg(feature = "_async")]
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use minijinja::Environment;
use minijinja::value::Value;

pub(crate) use context::Parsed;
pub use context::label;
use output::{Escaping, FORM_ESCAPE, JSON_ESCAPE, MARKUP_ESCAPE, escaping_of, is_json};
pub use preset::PRESETS;
pub use rendering::Rendering;
pub(crate) use summary::Summary;

use crate::error::Error;

/// The longest template source accepted, in bytes.
pub const MAX_SOURCE: usize = 64 * 1024;

/// The fuel of one render: an instruction costs one, and every 64 bytes of data the
/// template makes (output, strings, lists) cost one.
pub const FUEL: u64 = 1_000_000;

/// The default of [`Template::max_output`].
pub const DEFAULT_MAX_OUTPUT: usize = 256 * 1024;

/// The largest [`Template::max_output`]: a render's [`FUEL`] stops one about this large
/// anyway.
pub const LARGEST_OUTPUT: usize = 64 << 20;

/// How long a template's renders take, lately, for the async transport to render it off its
/// delivery thread. Handing an attempt to another thread and back costs a few µs of CPU;
/// measured on two cores (interleaved rounds), a template of typed fields rendering in
/// about 6 µs went 7–9% faster off the thread, while an HMAC of 4 KiB (about 3 µs) went 8%
/// slower.
#[cfg(feature = "_async")]
pub(crate) const COSTLY_RENDER: std::time::Duration = std::time::Duration::from_micros(4);

/// The name the compiled template has inside its environment.
const NAME: &str = "template";

/// The name of its copy without whitespace between JSON tokens, when it renders JSON by
/// construction (see `shape`).
const COMPACT: &str = "compact";

/// An endpoint's payload template, compiled: cheap to clone, shared by the attempts that use
/// it. See the [module docs](self).
#[derive(Clone)]
pub struct Template {
    compiled: Arc<Compiled>,
    vars: Arc<Vars>,
    max_output: usize,
}

/// Where a template came from, for messages and for storing it again.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateSource {
    /// A preset, by name.
    Preset(&'static str),
    /// Text given inline.
    Inline,
    /// A file, read when the template was made.
    File(std::path::PathBuf),
}

impl fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateSource::Preset(name) => write!(f, "preset '{name}'"),
            TemplateSource::Inline => f.write_str("inline template"),
            TemplateSource::File(path) => write!(f, "template file '{}'", path.display()),
        }
    }
}

struct Compiled {
    source: TemplateSource,
    text: String,
    content_type: String,
    json: bool,
    /// A JSON preset's renderer in Rust, which writes what its text renders, compacted (the
    /// tests hold the two to the same bytes for every event): JSON by construction, so its
    /// output is neither parsed again nor compacted.
    native: Option<preset::Native>,
    /// When it renders JSON by construction (see `shape`): rendered from its copy
    /// [`COMPACT`], whose output is not parsed again.
    by_construction: Option<ByConstruction>,
    /// What a render has taken lately, in nanoseconds (a moving average; 0 before the first):
    /// whether the async transport renders it off its delivery thread.
    #[cfg(feature = "_async")]
    render_ns: AtomicU32,
    /// Variables the template needs in `template_vars` (the presets'), with what they are.
    required: &'static [(&'static str, &'static str)],
    env: Environment<'static>,
}

/// How a template JSON by construction renders, besides from its copy [`COMPACT`].
struct ByConstruction {
    /// Whether it prints whole values with `tojson`: its output is compacted.
    whole_values: bool,
    /// When it prints variables a plan can print: rendered without minijinja (see `plan`).
    plan: Option<plan::Plan>,
}

impl Template {
    /// A preset by name: `slack`, `teams`, `mattermost`, `discord` or `telegram` (see
    /// [`PRESETS`]). The Telegram preset needs `chat_id` in its variables
    /// ([`var`](Template::var)).
    ///
    /// # Errors
    ///
    /// [`Error::Template`] for an unknown name, with the closest preset.
    pub fn preset(name: &str) -> Result<Template, Error> {
        // Compiled once per process: the endpoints with a preset share it, and so (with the
        // same variables) one render per event.
        static COMPILED: OnceLock<Mutex<HashMap<&'static str, Template>>> = OnceLock::new();
        let preset = preset::find(name)?;
        let mut compiled = COMPILED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(template) = compiled.get(preset.name) {
            return Ok(template.clone());
        }
        let template = Template::compile(
            TemplateSource::Preset(preset.name),
            preset.source.to_owned(),
            "application/json",
            preset.required,
        )?;
        compiled.insert(preset.name, template.clone());
        Ok(template)
    }

    /// A preset when `text` is a preset's name, else a template of your own: what
    /// `template = "…"` means in `deskhook.toml` and the admin API. Text with `{{` or `{%`
    /// is always a template.
    ///
    /// # Errors
    ///
    /// As [`preset`](Template::preset) or [`inline`](Template::inline).
    pub fn named_or_inline(text: &str) -> Result<Template, Error> {
        if text.contains("{{") || text.contains("{%") {
            Template::inline(text)
        } else {
            Template::preset(text)
        }
    }

    /// A template of your own, sent as `application/json` (see
    /// [`content_type`](Template::content_type)).
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when it does not compile, with its line and column, or when it is
    /// over [`MAX_SOURCE`] bytes or uses `{% autoescape %}`.
    pub fn inline(source: &str) -> Result<Template, Error> {
        Template::compile(
            TemplateSource::Inline,
            source.to_owned(),
            "application/json",
            &[],
        )
    }

    /// A template read from a file now.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when the file cannot be read, or as [`inline`](Template::inline).
    pub fn file(path: impl AsRef<Path>) -> Result<Template, Error> {
        use std::io::Read as _;
        let path = path.as_ref();
        let cannot_read = |e: &dyn fmt::Display| {
            Error::Template(format!(
                "cannot read template file '{}'{}: {e}",
                path.display(),
                crate::error::relative_to_cwd(path)
            ))
        };
        // No more than one byte past the limit is read: a path such as /dev/zero is refused
        // for its size, not read until the process is killed.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_SOURCE as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| cannot_read(&e))?;
        let source = TemplateSource::File(path.to_owned());
        if bytes.len() > MAX_SOURCE {
            return Err(compile::too_long(&source));
        }
        let text = String::from_utf8(bytes).map_err(|e| cannot_read(&e.utf8_error()))?;
        Template::compile(source, text, "application/json", &[])
    }

    /// The same template with another `Content-Type`. Values are escaped for JSON, and the
    /// output checked to be JSON, exactly when it is JSON (`application/json`, any
    /// `…/json` or `…+json`); a `text/plain` template prints values as they are. Defaults to
    /// `application/json`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when `content_type` is empty or not a valid header value, or is
    /// not JSON for a preset (presets write JSON: as another type, their values would go
    /// unescaped).
    pub fn content_type(self, content_type: &str) -> Result<Template, Error> {
        let content_type = content_type.trim();
        if content_type.is_empty()
            || !content_type
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(Error::Template(format!(
                "content type '{content_type}' is not a valid header value; write it like \
                 \"text/plain; charset=utf-8\""
            )));
        }
        if let TemplateSource::Preset(name) = &self.compiled.source
            && !is_json(content_type)
        {
            return Err(Error::Template(format!(
                "the preset '{name}' writes JSON, and content type '{content_type}' is not \
                 JSON (its values would go unescaped): give a JSON type such as \
                 \"application/json; charset=utf-8\", or write a template of your own"
            )));
        }
        Template::compile(
            self.compiled.source.clone(),
            self.compiled.text.clone(),
            content_type,
            self.compiled.required,
        )
        .map(|t| Template {
            vars: self.vars,
            max_output: self.max_output,
            ..t
        })
    }

    /// Sets a variable the template reads as `vars.<name>` (the Telegram preset's `chat_id`;
    /// `lang` for the language of events that do not carry their user's). Defaults to none.
    #[must_use]
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Template {
        let mut vars = self.vars.map.clone();
        vars.insert(name.into(), value.into());
        self.vars = Arc::new(Vars::new(vars));
        self
    }

    /// The most bytes a rendered body may have, as sent (a JSON body compacted); a larger one
    /// sends the event to the dead letters. From 1 to [`LARGEST_OUTPUT`] (64 MiB); an
    /// endpoint with another is refused. Defaults to 256 KiB.
    #[must_use]
    pub fn max_output(mut self, bytes: usize) -> Template {
        self.max_output = bytes;
        self
    }

    /// Where it came from.
    pub fn source(&self) -> &TemplateSource {
        &self.compiled.source
    }

    /// Its text.
    pub fn text(&self) -> &str {
        &self.compiled.text
    }

    /// The `Content-Type` of what it renders.
    pub fn body_content_type(&self) -> &str {
        &self.compiled.content_type
    }

    /// Its variables.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars.map
    }

    /// Checks that the variables the template needs are set (a preset's `chat_id`); an
    /// endpoint with the template is refused without them.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming the variable and what it is.
    pub fn check_vars(&self) -> Result<(), Error> {
        self.check().map_err(Error::Template)
    }

    /// [`check_vars`](Template::check_vars)'s message.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(1..=LARGEST_OUTPUT).contains(&self.max_output) {
            return Err(format!(
                "a template's max_output of {} bytes is not a size a render can have; give \
                 from 1 to {LARGEST_OUTPUT} bytes (64 MiB)",
                self.max_output
            ));
        }
        for (name, what) in self.compiled.required {
            if self.vars.map.get(*name).is_none_or(|v| v.trim().is_empty()) {
                return Err(format!(
                    "the {} needs template_vars.{name} ({what})",
                    self.compiled.source
                ));
            }
        }
        Ok(())
    }

    /// Whether `other` is the same template with the same settings.
    pub(crate) fn same(&self, other: &Template) -> bool {
        self.compiled.source == other.compiled.source
            && self.compiled.text == other.compiled.text
            && self.compiled.content_type == other.compiled.content_type
            && self.vars.map == other.vars.map
            && self.max_output == other.max_output
    }

    /// Whether its renders have lately taken [`COSTLY_RENDER`] or more: worth rendering off
    /// the async transport's delivery thread. A preset runs as Rust (well under a
    /// microsecond); a template of one's own takes from about a microsecond (a handful of
    /// fields, without minijinja) to tens (tags and loops through minijinja). Its renders
    /// tell; one that renders through minijinja counts as costly until the first has
    /// (a new template's first render could take up to its fuel, on the delivery thread).
    #[cfg(feature = "_async")]
    pub(crate) fn costly_to_render(&self) -> bool {
        let ns = self.compiled.render_ns.load(Ordering::Relaxed);
        if ns == 0 {
            let compiled = &self.compiled;
            let planned = (compiled.by_construction.as_ref()).is_some_and(|b| b.plan.is_some());
            return compiled.native.is_none() && !planned;
        }
        ns as u128 >= COSTLY_RENDER.as_nanos()
    }

    /// Adds a render's time to the moving average (the last eight or so weigh most). A
    /// render counts for at most twice the average: a thread preempted in the middle of a
    /// render (common when every core is busy) does not make a quick template look slow,
    /// while a template that is slow doubles the average within six renders.
    #[cfg(feature = "_async")]
    pub(crate) fn took(&self, elapsed: std::time::Duration) {
        let ns = u32::try_from(elapsed.as_nanos()).unwrap_or(u32::MAX);
        let average = &self.compiled.render_ns;
        let old = average.load(Ordering::Relaxed);
        let new = if old == 0 {
            ns
        } else {
            old - old / 8 + ns.min(old.saturating_mul(2)) / 8
        };
        average.store(new.max(1), Ordering::Relaxed);
    }

    /// Whether `other` is this very template (not a copy made by another upsert).
    pub(crate) fn ptr_eq(&self, other: &Template) -> bool {
        Arc::ptr_eq(&self.compiled, &other.compiled)
            && (Arc::ptr_eq(&self.vars, &other.vars) || self.vars.map == other.vars.map)
            && self.max_output == other.max_output
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("source", &self.compiled.source)
            .field("content_type", &self.compiled.content_type)
            .field("vars", &self.vars.map.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A template's variables, shared by its clones.
struct Vars {
    map: BTreeMap<String, String>,
    /// `map` as the template sees it (`vars`).
    value: Value,
    /// `vars.lang`, the language of events that do not carry their user's.
    lang: Option<Arc<str>>,
}

impl Vars {
    /// The values of the variables that may be credentials (all but those the presets
    /// read), as a render prints them (JSON-escaped inside quotes, and as they are): what
    /// an error quoting the output masks.
    pub(super) fn hidden(&self) -> Vec<Vec<u8>> {
        let mut hidden: Vec<Vec<u8>> = Vec::new();
        for (name, value) in &self.map {
            if value.is_empty() || crate::delivery::SHOWN_VARS.contains(&name.as_str()) {
                continue;
            }
            // Escaped as the render escapes it.
            let mut escaped = String::new();
            let _ = output::write_json_string_content(&mut escaped, value);
            for form in [value.as_str(), escaped.as_str()] {
                if !form.is_empty() && !hidden.iter().any(|h| h == form.as_bytes()) {
                    hidden.push(form.as_bytes().to_vec());
                }
            }
        }
        hidden
    }

    fn new(map: BTreeMap<String, String>) -> Vars {
        Vars {
            value: Value::from(minijinja::value::Serde(&map)),
            lang: map.get("lang").map(|lang| lang.as_str().into()),
            map,
        }
    }
}

#[cfg(test)]
mod difftest;
#[cfg(test)]
mod tests;
