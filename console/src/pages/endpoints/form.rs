//! The endpoint form: its fields as text, the page, and the form read as the JSON of an
//! endpoint (the admin API's), so that a form is refused as the API refuses.

use deskhook_transports::delivery::EndpointInfo;
use deskhook_transports::template::PRESETS;
use maud::html;

use super::super::{Form, Page, csrf_field, enc, layout};
use crate::Problem;
use crate::guard::{Base, CsrfToken};

/// The fields of the endpoint form, as text.
#[derive(Debug, Default)]
pub(super) struct FormValues {
    pub(super) name: String,
    url: String,
    tenant: String,
    actions: String,
    retry: String,
    timeout: String,
    connect_timeout: String,
    rate_limit: String,
    rate_burst: String,
    max_in_flight: String,
    allow_cidrs: String,
    allow_private: bool,
    hub_signature: bool,
    https_only: bool,
    /// A preset's name, `custom`, or empty for the format's JSON.
    template_preset: String,
    /// The text of a custom template.
    template: String,
    /// `name=value` pairs, one per line.
    template_vars: String,
    /// The file its template is read from, set in `deskhook.toml` or code (the form cannot
    /// show it, and keeps it).
    template_file: String,
    /// The settings' version when the form was made (see [`crate::api::version_of`]): an
    /// edit from a form older than the settings is refused, not saved over them.
    pub(super) version: String,
    /// Whether the last try gave a secret, or headers: never shown back (each may be a
    /// credential), so a form refused for another field says to type them again.
    secret_given: bool,
    headers_given: bool,
}

impl FormValues {
    pub(super) fn of(info: &EndpointInfo) -> FormValues {
        let spec = info.spec.as_ref().map(|r| &r.spec);
        FormValues {
            name: info.name.clone(),
            url: spec.map_or_else(|| info.url.clone(), |s| s.url.clone()),
            tenant: info.tenant.clone().unwrap_or_default(),
            actions: spec
                .and_then(|s| s.actions)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            retry: spec
                .and_then(|s| s.retry.as_ref())
                .map(ToString::to_string)
                .unwrap_or_default(),
            timeout: spec
                .and_then(|s| s.timeout)
                .map(deskhook::policy::format_duration)
                .unwrap_or_default(),
            connect_timeout: spec
                .and_then(|s| s.connect_timeout)
                .map(deskhook::policy::format_duration)
                .unwrap_or_default(),
            rate_limit: spec.and_then(|s| s.rate_limit.clone()).unwrap_or_default(),
            rate_burst: spec
                .and_then(|s| s.rate_burst)
                .map(|b| b.to_string())
                .unwrap_or_default(),
            max_in_flight: spec
                .and_then(|s| s.max_in_flight)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            allow_cidrs: spec.map(|s| s.allow_cidrs.join(", ")).unwrap_or_default(),
            allow_private: spec.is_some_and(|s| s.allow_private),
            hub_signature: spec.is_some_and(|s| s.hub_signature),
            https_only: spec.is_some_and(|s| s.https_only),
            template_preset: match spec.and_then(|s| s.template.as_deref()) {
                Some(text) if is_preset(text) => text.to_ascii_lowercase(),
                Some(_) => CUSTOM.to_owned(),
                None => String::new(),
            },
            template: spec
                .and_then(|s| s.template.as_deref())
                .filter(|text| !is_preset(text))
                .unwrap_or_default()
                .to_owned(),
            template_vars: spec
                .and_then(|s| s.template_vars.as_ref())
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            template_file: spec
                .and_then(|s| s.template_file.as_ref())
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
            version: crate::api::version_of(info),
            secret_given: false,
            headers_given: false,
        }
    }

    pub(super) fn from_form(form: &Form) -> FormValues {
        let text = |k: &str| form.get(k).unwrap_or("").trim().to_owned();
        FormValues {
            name: text("name"),
            url: text("url"),
            tenant: text("tenant"),
            actions: text("actions"),
            retry: text("retry"),
            timeout: text("timeout"),
            connect_timeout: text("connect_timeout"),
            rate_limit: text("rate_limit"),
            rate_burst: text("rate_burst"),
            max_in_flight: text("max_in_flight"),
            allow_cidrs: text("allow_cidrs"),
            allow_private: form.get("allow_private").is_some(),
            hub_signature: form.get("hub_signature").is_some(),
            https_only: form.get("https_only").is_some(),
            template_preset: text("template_preset"),
            template: form.get("template").unwrap_or("").to_owned(),
            template_vars: text("template_vars"),
            // Not the form's to send: the note about it shows on the form's first load.
            template_file: String::new(),
            version: text("version"),
            secret_given: !text("secret").is_empty(),
            headers_given: !text("headers").is_empty(),
        }
    }
}

/// The template choice that shows the text area.
const CUSTOM: &str = "custom";

/// Whether `text` names a preset.
pub(super) fn is_preset(text: &str) -> bool {
    PRESETS
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case(text.trim()))
}

/// The endpoint form (new when `editing` is `None`), with the problem of the last try.
pub(super) fn form_page(
    base: &Base,
    csrf: &CsrfToken,
    editing: Option<&str>,
    v: &FormValues,
    problem: Option<&Problem>,
) -> Page {
    let (title, action) = match editing {
        Some(name) => (
            format!("Edit {name}"),
            base.at(&format!("/endpoints/{}/edit", enc(name))),
        ),
        None => ("Add an endpoint".to_owned(), base.at("/endpoints")),
    };
    let wrong = problem.map(Problem::fields).unwrap_or_default();
    let wrong = |name: &str| wrong.contains(&name);
    // Refused for whatever field: a secret or headers typed are not shown back, and would
    // be saved as none (a new endpoint) or as the current ones (an edit) unless typed again.
    let again = |given: bool| problem.is_some() && given;
    let (secret_again, headers_again) = (again(v.secret_given), again(v.headers_given));
    let field = |label: &str, name: &'static str, value: &str, hint: &str| {
        html! {
            div.field.invalid[wrong(name)] {
                label for=(name) { (label) }
                input id=(name) type="text" name=(name) value=(value) spellcheck="false"
                    aria-invalid=[wrong(name).then_some("true")];
                @if !hint.is_empty() { small { (hint) } }
            }
        }
    };
    let mut page = layout(
        base,
        &title,
        None,
        html! {
            h1 { (title) }
            @if let Some(problem) = problem {
                @if problem.errors.is_empty() {
                    p.error role="alert" { (problem.detail) }
                } @else {
                    div.error role="alert" {
                        p { (problem.errors.len()) " settings need fixing:" }
                        ul { @for error in &problem.errors { li { (error.detail) } } }
                    }
                }
            }
            form.endpoint method="post" action=(action) {
                (csrf_field(csrf))
                @if editing.is_some() {
                    input type="hidden" name="name" value=(v.name);
                    input type="hidden" name="version" value=(v.version);
                } @else {
                    (field("Name", "name", &v.name, "Unique; names it in logs, links and dead letters: crm, acme-slack"))
                }
                (field("URL", "url", &v.url, "http:// or https://"))
                (field("Tenant", "tenant", &v.tenant, "Empty: it receives every tenant's events"))
                (field("Events", "actions", &v.actions, "Comma-separated: create, comment, usedesk.*; empty for all"))
                (field("Retry schedule", "retry", &v.retry, "Empty for the default: 0s,5s,5m,30m,2h,5h,10h,10h"))
                (field("Timeout", "timeout", &v.timeout, "Such as 15s"))
                (field("Connect timeout", "connect_timeout", &v.connect_timeout, "Such as 5s"))
                (field("Rate limit", "rate_limit", &v.rate_limit, "Such as 50/s or 300/m"))
                (field("Rate burst", "rate_burst", &v.rate_burst, ""))
                (field("In flight at most", "max_in_flight", &v.max_in_flight, ""))
                (field("Allowed private networks", "allow_cidrs", &v.allow_cidrs, "Such as 10.20.0.0/16"))
                div.field.invalid[wrong("secrets") || secret_again] {
                    label for="secret" { @if editing.is_some() { "New secret (empty: keep the current ones)" } @else { "Secret" } }
                    @if editing.is_some() {
                        small.hint { "A secret given here replaces the current ones at once: a receiver still checking the old one refuses every event until it has the new one. To switch without refusals, use Rotate on the endpoint's page: both sign until the overlap ends." }
                    }
                    input #secret type="text" name="secret" placeholder="whsec_… or an ed25519 whsk_…" autocomplete="off" spellcheck="false"
                        aria-invalid=[secret_again.then_some("true")]
                        aria-describedby=[secret_again.then_some("secret-again")];
                    button type="button" data-generate-secret="secret" { "Generate" }
                    @if secret_again {
                        small #secret-again role="alert" { "Type the secret again: it is not shown back, and was not saved." }
                    }
                }
                div.field.invalid[wrong("headers") || headers_again] {
                    label for="headers" { @if editing.is_some() { "Headers (empty: keep the current ones)" } @else { "Headers" } }
                    textarea #headers name="headers" rows="3" placeholder="Authorization: Bearer …" spellcheck="false"
                        aria-invalid=[headers_again.then_some("true")]
                        aria-describedby=[headers_again.then_some("headers-again")] {}
                    small { "One per line, Name: value" }
                    @if headers_again {
                        small #headers-again role="alert" { "Type the headers again: they are not shown back (they may hold a credential), and were not saved." }
                    }
                }
                @if editing.is_some() {
                    label.check { input type="checkbox" name="clear_headers"; " Remove the custom headers" }
                }
                div.field.invalid[wrong("template")] {
                    label for="template_preset" { "Payload" }
                    select #template_preset name="template_preset" {
                        option value="" selected[v.template_preset.is_empty()] { "The event's JSON (no template)" }
                        @for preset in PRESETS {
                            option value=(preset.name) selected[v.template_preset == preset.name] { (preset.about) }
                        }
                        option value=(CUSTOM) selected[v.template_preset == CUSTOM] { "A template of my own (below)" }
                    }
                    textarea #template name="template" rows="4" spellcheck="false"
                        placeholder="{\"text\": \"{{ label }}: {{ subject }}\"}" { (v.template) }
                    small { "Jinja; values are escaped for JSON. See deskhook_transports::template for what a template sees." }
                    @if !v.template_file.is_empty() {
                        small {
                            "Its template is read from the file " code { (v.template_file) }
                            " (set in deskhook.toml or the application's code), which this form keeps unless you choose a preset or a template here."
                        }
                    }
                }
                div.field.invalid[wrong("template_vars")] {
                    label for="template_vars" { "Template variables" }
                    textarea #template_vars name="template_vars" rows="2" spellcheck="false"
                        placeholder="chat_id=-1001234567890" { (v.template_vars) }
                    small { "One per line, name=value: chat_id=-1001234567890 for Telegram, then lang=ru on the next; a value may hold commas" }
                }
                label.check { input type="checkbox" name="allow_private" checked[v.allow_private]; " Allow private and loopback addresses" }
                label.check { input type="checkbox" name="hub_signature" checked[v.hub_signature]; " Add X-Hub-Signature-256" }
                label.check { input type="checkbox" name="https_only" checked[v.https_only]; " HTTPS only" }
                button type="submit" { "Save" }
            }
        },
    );
    if let Some(problem) = problem {
        page.status = problem.status_code();
    }
    page
}

/// The form as the JSON of an endpoint (the API's), so that it is read and refused the same
/// way, and the problems of the fields that cannot be put in it (left out of it).
pub(super) fn form_json(form: &Form, editing: bool) -> (serde_json::Value, Vec<Problem>) {
    use serde_json::{Map, Value};
    let mut spec = Map::new();
    let mut problems = Vec::new();
    let mut put = |key: &str, value: Value| {
        spec.insert(key.to_owned(), value);
    };
    for key in [
        "name",
        "url",
        "tenant",
        "retry",
        "timeout",
        "connect_timeout",
        "rate_limit",
    ] {
        if let Some(value) = form.text(key) {
            put(key, Value::from(value));
        }
    }
    for key in ["rate_burst", "max_in_flight"] {
        if let Some(value) = form.text(key) {
            match value.parse::<u64>() {
                Ok(n) => put(key, Value::from(n)),
                Err(_) => problems.push(Problem::field(
                    key,
                    format!("{key} '{value}' is not a whole number; write one such as 4"),
                )),
            }
        }
    }
    let list = |text: &str| -> Vec<Value> {
        text.split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Value::from)
            .collect()
    };
    if let Some(actions) = form.text("actions") {
        put("actions", Value::from(list(actions)));
    }
    if let Some(cidrs) = form.text("allow_cidrs") {
        put("allow_cidrs", Value::from(list(cidrs)));
    }
    for key in ["allow_private", "hub_signature", "https_only"] {
        if form.get(key).is_some() {
            put(key, Value::from(true));
        }
    }
    if let Some(secret) = form.text("secret") {
        put("secrets", Value::from(vec![Value::from(secret)]));
    }
    match (form.text("template_preset"), form.text("template")) {
        (Some(CUSTOM), Some(text)) => put("template", Value::from(text)),
        (Some(CUSTOM), None) => problems.push(Problem::field(
            "template",
            "a template of your own needs its text; write it, or pick a preset".to_owned(),
        )),
        (Some(preset), _) => put("template", Value::from(preset)),
        // A new endpoint's text under "no template" was typed for nothing: say so rather
        // than drop it. (An edit shows the current text whatever is chosen: choosing no
        // template there removes it.)
        (None, Some(_)) if !editing => problems.push(Problem::field(
            "template",
            "a template's text is written but Payload is \"The event's JSON\"; choose \
             \"A template of my own\" to use it, or empty the text"
                .to_owned(),
        )),
        (None, _) => {}
    }
    if let Some(text) = form.text("template_vars") {
        // The line's text is not repeated: a variable may hold a credential.
        match pairs(var_pairs(text), '=') {
            Ok(vars) => put("template_vars", Value::Object(vars)),
            Err(n) => problems.push(Problem::field(
                "template_vars",
                format!("template variable {n} has no '='; write name=value"),
            )),
        }
    }
    if let Some(text) = form.text("headers") {
        // The line's text is not repeated: a header's value is often a credential.
        let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        match pairs(lines, ':') {
            Ok(headers) => put("headers", Value::Object(headers)),
            Err(n) => problems.push(Problem::field(
                "headers",
                format!("header {n} has no ':'; write Name: value"),
            )),
        }
    } else if editing && form.get("clear_headers").is_some() {
        put("headers", Value::Object(Map::new()));
    }
    (Value::Object(spec), problems)
}

/// `name<at>value` lines as a JSON object, or the number (from 1) of the first line
/// without `at`.
fn pairs<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    at: char,
) -> Result<serde_json::Map<String, serde_json::Value>, usize> {
    let mut map = serde_json::Map::new();
    for (n, line) in lines.into_iter().enumerate() {
        let (name, value) = line.split_once(at).ok_or(n + 1)?;
        map.insert(
            name.trim().to_owned(),
            serde_json::Value::from(value.trim()),
        );
    }
    Ok(map)
}

/// The `name=value` pairs of the template variables' text, one per line: a value may hold
/// commas and '=' ("greeting=Hi, team", "filter=status=open,priority=high").
fn var_pairs(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_variables_are_one_per_line_whatever_their_values_hold() {
        assert_eq!(
            super::var_pairs("lang=ru\n greeting=Hi, team \n\nfilter=status=open,priority=high"),
            [
                "lang=ru",
                "greeting=Hi, team",
                "filter=status=open,priority=high"
            ]
        );
        assert!(super::var_pairs(" \n ").is_empty());
    }
}
