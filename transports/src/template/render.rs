//! A template's renders: by a preset, by a plan, or by minijinja (bounded as it writes,
//! checked and compacted when its JSON is not by construction), and what their errors say.

use std::sync::Arc;

use deskhook::EventType;
use minijinja::value::Value;

use super::context::{Context, Parsed, label};
use super::output::{Bounded, Failed, compact};
use super::{ByConstruction, COMPACT, NAME, Template, context, output, preset};
use crate::error::Error;

impl Template {
    /// Renders the body an endpoint with this template would get for one event: its type,
    /// its id, its tenant and its JSON as sent without a template.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when the body is not JSON, a variable is undefined, a limit is
    /// reached, or a JSON template renders something that is not JSON. The message gives the
    /// line and the expression.
    pub fn render(
        &self,
        event_type: EventType,
        id: &str,
        tenant: Option<&str>,
        body: &[u8],
    ) -> Result<String, Error> {
        let parsed = Parsed::new(event_type, &bytes::Bytes::copy_from_slice(body))
            .map_err(Error::Template)?;
        self.render_text(parsed, id, tenant)
    }

    /// Renders the body an endpoint with this template gets for an event as an
    /// [`EventSink`](deskhook::sink::EventSink) receives it: its type, id, tenant and body,
    /// and for a Zenlix event its typed fields, read without parsing the body again (what
    /// the delivery engine does).
    ///
    /// # Errors
    ///
    /// As [`render`](Template::render).
    pub fn render_emitted(&self, emitted: &deskhook::sink::Emitted<'_>) -> Result<String, Error> {
        let parsed = Parsed::of_emitted(emitted, false).map_err(Error::Template)?;
        self.render_text(parsed, &emitted.id().to_string(), emitted.tenant())
    }

    /// `parsed` rendered, as text.
    fn render_text(&self, parsed: Parsed, id: &str, tenant: Option<&str>) -> Result<String, Error> {
        let out = self
            .render_parsed(&Arc::new(parsed), &id.into(), tenant.map(Into::into))
            .map_err(Error::Template)?;
        // The writer takes only what it was given as text.
        String::from_utf8(out).map_err(|e| Error::Template(e.to_string()))
    }

    /// The body for an event parsed once for all its endpoints: rendered, or taken from an
    /// endpoint of the same event with this very template and variables (the presets are
    /// compiled once, so many tenants' Slack endpoints cost one render per event). What is
    /// kept for the others is charged to `budget`.
    pub(crate) fn render_shared(
        &self,
        parsed: &Arc<Parsed>,
        id: &Arc<str>,
        tenant: Option<Arc<str>>,
        budget: &Arc<crate::delivery::budget::Budget>,
    ) -> Result<bytes::Bytes, String> {
        if let Some(body) = parsed.rendered(self) {
            return Ok(body);
        }
        let body = bytes::Bytes::from(self.render_parsed(parsed, id, tenant)?);
        parsed.keep_rendered(self, body.clone(), budget);
        Ok(body)
    }

    /// Renders from an event parsed once for all its endpoints.
    pub(crate) fn render_parsed(
        &self,
        parsed: &Arc<Parsed>,
        id: &Arc<str>,
        tenant: Option<Arc<str>>,
    ) -> Result<Vec<u8>, String> {
        let compiled = &self.compiled;
        if let Some(native) = compiled.native {
            self.check()?;
            let summary = &parsed.summary;
            let lang = context::lang(summary, self.vars.lang.as_deref());
            let fields = preset::Fields {
                event_type: parsed.event_type.as_str(),
                lang,
                label: label(parsed.event_type, lang),
                subject: &summary.subject,
                text: &summary.text,
                author: &summary.author,
                ticket: &summary.ticket,
                vars: &self.vars.map,
            };
            let mut out = String::with_capacity(512);
            native(&fields, &mut out);
            return self.limited(out.into_bytes());
        }
        let context = || Context {
            parsed: parsed.clone(),
            vars: self.vars.value.clone(),
            lang_fallback: self.vars.lang.clone(),
            id: id.clone(),
            tenant: tenant.clone(),
            made: context::Made::default(),
        };
        let by_construction = compiled.by_construction.as_ref();
        if let Some(plan) = by_construction.and_then(|b| b.plan.as_ref())
            && let Some(out) = plan.render(&Arc::new(context()), self.max_output)
        {
            // Not timed (two clock reads are a tenth of a small render): a plan costs
            // about what copying its output costs, which the delivery thread pays again
            // to send it; not worth a hand-off to a preparer.
            return self.limited(out.into_bytes());
        }
        // Timed for the async transport's choice of thread only.
        #[cfg(feature = "_async")]
        let started = std::time::Instant::now();
        let rendered = self.render_minijinja(by_construction, &context);
        #[cfg(feature = "_async")]
        self.took(started.elapsed());
        rendered
    }

    /// [`render_parsed`](Template::render_parsed) by minijinja.
    /// What a render may write before it is stopped: a JSON body is compacted after, so
    /// its layout (the template's own, repeated by loops) may take room the limit does not
    /// count: the limit itself is checked on what is sent. The room is ample (16 times the
    /// limit, and a MiB), so that a render stopped for it would have been refused for its
    /// size whatever its path (by construction or checked), and the paths fail alike.
    /// Stopped as it writes, a render holds no more (the fuel alone let it make about
    /// 64 MB).
    pub(super) fn room(&self) -> usize {
        if self.compiled.json {
            (self.max_output.saturating_mul(16))
                .saturating_add(1 << 20)
                .saturating_add(self.compiled.text.len())
        } else {
            self.max_output
        }
    }

    fn render_minijinja(
        &self,
        by_construction: Option<&ByConstruction>,
        context: &dyn Fn() -> Context,
    ) -> Result<Vec<u8>, String> {
        let compiled = &self.compiled;
        let room = self.room();
        let render = |name: &str| {
            let context = Value::from_object(context());
            let template = (compiled.env.get_template(name))
                .map_err(|e| Failed::Render(e, compiled.text.clone()))?;
            let mut out = Bounded {
                out: Vec::new(),
                room,
                over: false,
            };
            let made = output::RenderRoom::enter(room);
            match template.render_captured_to(context, &mut out) {
                Ok(_) => Ok(out.out),
                Err(_) if out.over || made.ran_out() => Err(Failed::Over),
                Err(e) => Err(Failed::Render(e, template.source().to_owned())),
            }
        };
        let failed = |failed: Failed| match failed {
            Failed::Render(e, text) => format!("{}: {}", compiled.source, describe(&e, &text)),
            Failed::Over => self.over_limit(),
        };
        if let Some(by_construction) = by_construction {
            return match render(COMPACT) {
                Ok(out) if by_construction.whole_values => self.limited(compact(out)),
                Ok(out) => self.limited(out),
                // Said where the source as written has it: the same render fails the same
                // way there.
                Err(Failed::Over) => Err(failed(Failed::Over)),
                Err(compact) => Err(failed(render(NAME).err().unwrap_or(compact))),
            };
        }
        let out = render(NAME).map_err(failed)?;
        if !compiled.json {
            return self.limited(out);
        }
        // Checked, and sent compact: the template's layout is for its readers. The limit is
        // on what is sent, as for a template JSON by construction (the fuel bounds what the
        // render made).
        serde_json::from_slice::<serde::de::IgnoredAny>(&out).map_err(|e| {
            format!(
                "the {} {NOT_JSON} ({e} of the output, near {}); print values inside quotes, \
                 or whole values with |tojson",
                compiled.source,
                near(&out, e.line(), e.column(), &self.vars.hidden())
            )
        })?;
        self.limited(compact(out))
    }

    /// `out`, or the error of an output over `max_output`.
    fn limited(&self, out: Vec<u8>) -> Result<Vec<u8>, String> {
        if out.len() > self.max_output {
            return Err(self.over_limit());
        }
        Ok(out)
    }

    /// The error of an output over `max_output`, measured whole or stopped as it passed
    /// (the same words either way: every path of a render says the same).
    fn over_limit(&self) -> String {
        format!(
            "the {} rendered more than its max_output of {} bytes: print less (from code, \
             Template::max_output raises the limit)",
            self.compiled.source, self.max_output
        )
    }
}

/// Some 40 bytes of `out` around line `line`, column `column` (a JSON error's, from 1),
/// quoted: the output is not kept, and its lines are not the template's once loops ran.
/// Each of `hidden` (the variables' values that may be credentials, as printed) is shown as
/// `…`, whole, wherever the 40 bytes cut it.
fn near(out: &[u8], line: usize, column: usize, hidden: &[Vec<u8>]) -> String {
    let line_start: usize = out
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let at = (line_start + column.saturating_sub(1)).min(out.len());
    // Every byte of every occurrence of a hidden value, overlapping ones too.
    let mut covered = vec![false; out.len()];
    for value in hidden.iter().filter(|v| !v.is_empty()) {
        // From each byte after a match's start (`find_iter` skips overlapping ones).
        let finder = memchr::memmem::Finder::new(value);
        let mut from = 0;
        while let Some(at) = finder.find(&out[from..]) {
            let start = from + at;
            covered[start..start + value.len()].fill(true);
            from = start + 1;
        }
    }
    // The output with each run of covered bytes shown as one `…`, and where `at` is in it
    // (at the run's `…` when the run holds it).
    let mut masked = Vec::with_capacity(out.len());
    let mut masked_at = None;
    for (i, &byte) in out.iter().enumerate() {
        let starts_run = covered[i] && (i == 0 || !covered[i - 1]);
        if i == at {
            masked_at = Some(if covered[i] && !starts_run {
                masked.len().saturating_sub("…".len())
            } else {
                masked.len()
            });
        }
        if !covered[i] {
            masked.push(byte);
        } else if starts_run {
            masked.extend_from_slice("…".as_bytes());
        }
    }
    let at = masked_at.unwrap_or(masked.len());
    let (from, to) = (at.saturating_sub(30), (at + 10).min(masked.len()));
    format!("{:?}", String::from_utf8_lossy(&masked[from..to]))
}

/// The line and column (from 1, in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A minijinja error as one line: where (line, column), what, and the expression at fault.
pub(super) fn describe(e: &minijinja::Error, text: &str) -> String {
    let what = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    match (e.range(), e.line()) {
        (Some(range), _) if range.end <= text.len() && text.is_char_boundary(range.start) => {
            let (line, column) = line_column(text, range.start);
            let expression = text.get(range.clone()).unwrap_or("").trim();
            if expression.is_empty() || expression.len() > 80 {
                format!("line {line}, column {column}: {what}")
            } else {
                let hint = match e.kind() {
                    minijinja::ErrorKind::UndefinedError => undefined_hint(expression),
                    _ => String::new(),
                };
                format!("line {line}, column {column}: {what} (in `{expression}`){hint}")
            }
        }
        (_, Some(line)) => format!("line {line}: {what}"),
        _ => what,
    }
}

/// The hint for an undefined member of a name that is text (`ticket.code`): most often a
/// field of the body read by the name it has there rather than under `event`, where it is.
/// (A name a template does not see at all is refused when the template is made.)
fn undefined_hint(expression: &str) -> String {
    let Some((root, _)) = expression.split_once(['.', '[']) else {
        return String::new();
    };
    if matches!(root, "event" | "vars") || !context::NAMES.contains(&root) {
        return String::new();
    }
    format!(
        "; `{root}` is text, and the event's own fields are under `event` (`event.{expression}`?)"
    )
}

/// What a JSON template's error says of a body that is not JSON (also how
/// [`Template::check_sample`] tells that error from the others).
pub(super) const NOT_JSON: &str = "rendered a body that is not JSON";
