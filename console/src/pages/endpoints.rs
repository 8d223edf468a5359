//! The endpoints table, an endpoint's page, its forms and its actions.

use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use deskhook_transports::delivery::{
    AttemptEntry, AttemptQuery, EndpointInfo, EndpointQuery, EndpointState,
};
use deskhook_transports::template::PRESETS;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Form, Page, count, csrf_field, enc, error_page, foreign_form, layout, millis, status_class,
    time,
};
use crate::api::{parse_spec, parse_state};
use crate::guard::{Base, CsrfToken};
use crate::{Problem, State, blocking, chart};

/// What the endpoints table is asked for.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    q: Option<String>,
    tenant: Option<String>,
    state: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// The message after an action, by its code in `?done=`.
fn flash(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Endpoint created.",
        "updated" => "Settings saved; they apply from the next attempt.",
        "paused" => "Paused: events are queued and nothing is sent until you resume.",
        "resumed" => "Resumed.",
        "tested" => "A test event is on its way; its attempts appear below.",
        "deleted" => "Endpoint deleted; what it had queued went to the dead letters.",
        "rotated" => "New secret in place; the old one keeps signing during the overlap.",
        _ => return None,
    })
}

pub(crate) async fn list(
    Shared(state): Shared<State>,
    base: Base,
    Query(query): Query<ListQuery>,
) -> Response {
    let endpoint_query = EndpointQuery {
        search: query.q.clone().filter(|q| !q.trim().is_empty()),
        tenant: query.tenant.clone().filter(|t| !t.is_empty()),
        state: query
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| parse_state(s).ok()),
        after: query.after.clone().filter(|a| !a.is_empty()),
        limit: 50,
    };
    let sink = state.sink.clone();
    let page = sink.endpoints().page(&endpoint_query);
    let total = sink.endpoints().len();
    let link_next = page.next.as_ref().map(|next| {
        let mut link = format!("/?after={}", enc(next));
        for (key, value) in [
            ("q", &query.q),
            ("tenant", &query.tenant),
            ("state", &query.state),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                link.push_str(&format!("&{key}={}", enc(value)));
            }
        }
        base.at(&link)
    });
    let chosen = query.state.as_deref().unwrap_or("");
    layout(
        &base,
        "Endpoints",
        flash(query.done.as_deref()),
        html! {
            div.heading {
                h1 { "Endpoints" }
                a.button href=(base.at("/endpoints/new")) { "Add an endpoint" }
            }
            form.filters method="get" action=(base.at("/")) {
                input type="search" name="q" value=(query.q.as_deref().unwrap_or(""))
                    placeholder="name, tenant or host" aria-label="Search";
                input type="text" name="tenant" value=(query.tenant.as_deref().unwrap_or(""))
                    placeholder="tenant" aria-label="Tenant";
                select name="state" aria-label="State" {
                    option value="" selected[chosen.is_empty()] { "any state" }
                    @for s in ["active", "paused", "disabled", "breaker_open"] {
                        option value=(s) selected[chosen == s] { (s.replace('_', " ")) }
                    }
                }
                button type="submit" { "Search" }
            }
            p.summary {
                (count(page.remaining as u64)) " matching"
                @if endpoint_query.after.is_some() { " from here on" }
                " · " (count(total as u64)) " endpoints in all"
            }
            @if page.items.is_empty() {
                p.empty { "No endpoint matches." }
            } @else {
                table.endpoints {
                    thead { tr {
                        th { "Name" } th { "Tenant" } th { "Origin" } th { "State" }
                        th.num { "Delivered" } th.num { "Failed" } th.num { "Retrying" }
                        th.num { "Dead" } th.num { "p50" } th.num { "p99" } th { "Last" }
                    } }
                    tbody {
                        @for e in &page.items { (row(&base, e)) }
                    }
                }
            }
            nav.pager {
                @if endpoint_query.after.is_some() {
                    a href=(base.at("/")) { "« First" }
                }
                @if let Some(next) = link_next {
                    a href=(next) { "Next »" }
                }
            }
        },
    )
    .into_response()
}

fn row(base: &Base, e: &EndpointInfo) -> Markup {
    let s = &e.stats;
    html! {
        tr {
            td { a href=(base.at(&format!("/endpoints/{}", enc(&e.name)))) { (e.name) } }
            td { (e.tenant.as_deref().unwrap_or("—")) }
            td.origin { (e.url) }
            td { (state_badge(e.state)) }
            td.num { (count(s.delivered)) }
            td.num { (count(s.failed)) }
            td.num { (count((s.queued + s.in_flight) as u64)) }
            td.num { (count(s.dead_lettered)) }
            td.num { (s.latency_p50.map(millis).unwrap_or_default()) }
            td.num { (s.latency_p99.map(millis).unwrap_or_default()) }
            td { (last_status(e)) }
        }
    }
}

fn last_status(e: &EndpointInfo) -> Markup {
    html! {
        @match e.last_attempt {
            Some((at, status)) => span.(status_class(status)) title=(time(at)) {
                (status.map_or_else(|| "no response".to_owned(), |s| s.to_string()))
            },
            None => span.quiet { "—" },
        }
    }
}

fn state_badge(state: EndpointState) -> Markup {
    let class = match state {
        EndpointState::Active => "ok",
        EndpointState::Paused => "warn",
        _ => "bad",
    };
    html! { span.badge.(class) { (state) } }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShowQuery {
    done: Option<String>,
}

pub(crate) async fn show(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    Path(name): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    let sink = state.sink.clone();
    let lookup = name.clone();
    let found = blocking(move || {
        let info = sink.endpoints().get(&lookup)?;
        let activity = sink.endpoints().activity(&lookup)?;
        let attempts = sink.attempts(&AttemptQuery {
            endpoint: Some(lookup),
            limit: 50,
            ..AttemptQuery::new()
        })?;
        Ok((info, activity, attempts))
    })
    .await;
    let (info, activity, attempts) = match found {
        Ok(found) => found,
        Err(problem) => return error_page(&base, &problem).into_response(),
    };
    let here = base.at(&format!("/endpoints/{}", enc(&name)));
    let s = &info.stats;
    layout(
        &base,
        &name,
        flash(query.done.as_deref()),
        html! {
            div.heading {
                h1 { (info.name) " " (state_badge(info.state)) }
            }
            div.actions {
                @if info.state == EndpointState::Active || info.state == EndpointState::BreakerOpen {
                    (action_button(&here, "pause", "Pause", &csrf, None))
                } @else {
                    (action_button(&here, "resume", "Resume", &csrf, None))
                }
                (action_button(&here, "test", "Send a test event", &csrf, None))
                a.button href=(format!("{here}/edit")) { "Edit" }
                (action_button(&here, "delete", "Delete", &csrf,
                    Some("Delete this endpoint? What it has queued goes to the dead letters.")))
            }
            section.stats {
                (stat("Delivered", count(s.delivered)))
                (stat("Failed attempts", count(s.failed)))
                (stat("Retries", count(s.retried)))
                (stat("Queued", count(s.queued as u64)))
                (stat("In flight", count(s.in_flight as u64)))
                (stat("Dead letters", count(s.dead_lettered)))
                (stat("Dropped", count(s.dropped)))
                (stat("p50", s.latency_p50.map(millis).unwrap_or_else(|| "—".into())))
                (stat("p99", s.latency_p99.map(millis).unwrap_or_else(|| "—".into())))
            }
            section {
                h2 { "Last hour" }
                (chart::minutes(&activity.iter().map(|m| chart::Minute {
                    minute: m.minute,
                    delivered: m.delivered,
                    failed: m.failed,
                }).collect::<Vec<_>>()))
            }
            section {
                h2 { "Recent attempts" }
                (attempts_table(&base, &attempts.items, false))
                p { a href=(base.at(&format!("/dead-letters?endpoint={}", enc(&name)))) { "Dead letters of this endpoint" } }
            }
            section {
                h2 { "Settings" }
                (settings(&info))
            }
            section {
                h2 { "Rotate the signing secret" }
                p.hint { "Give the receiver the new secret first. Both secrets sign every request until the overlap ends, so nothing is refused while the receiver switches." }
                form.rotate method="post" action=(format!("{here}/rotate")) {
                    (csrf_field(&csrf))
                    label for="secret" { "New secret" }
                    input #secret type="text" name="secret" placeholder="whsec_…" autocomplete="off" spellcheck="false" required;
                    button type="button" data-generate-secret="secret" { "Generate" }
                    button type="submit" { "Rotate" }
                }
            }
        },
    )
    .into_response()
}

fn stat(label: &str, value: String) -> Markup {
    html! { div.stat { span.label { (label) } span.value { (value) } } }
}

/// A one-button form posting `action`.
fn action_button(
    here: &str,
    action: &str,
    label: &str,
    csrf: &CsrfToken,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(format!("{here}/{action}")) data-confirm=[confirm] {
            (csrf_field(csrf))
            button type="submit" name="do" value=(action) { (label) }
        }
    }
}

/// A table of attempts; with `endpoints`, a column naming each one's endpoint.
pub(crate) fn attempts_table(base: &Base, items: &[AttemptEntry], endpoints: bool) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No attempts recorded." }
        } @else {
            table.attempts {
                thead { tr {
                    th { "Time" }
                    @if endpoints { th { "Endpoint" } }
                    th { "Event" } th { "Ticket" } th.num { "Attempt" } th { "Result" }
                    th.num { "Took" } th { "Response" }
                } }
                tbody {
                    @for a in items {
                        tr {
                            td { (time(a.at)) }
                            @if endpoints {
                                td { a href=(base.at(&format!("/endpoints/{}", enc(&a.endpoint)))) { (a.endpoint) } }
                            }
                            td { a href=(base.at(&format!("/events?q={}", enc(&a.event_id)))) title=(a.event_id) { (a.event_type.as_str()) } }
                            td { a href=(base.at(&format!("/events?q={}", enc(&a.ticket)))) { (a.ticket) } }
                            td.num { (a.attempt) }
                            td {
                                span.(status_class(a.status)) {
                                    @match (a.status, &a.error) {
                                        (Some(status), _) => (status),
                                        (None, Some(error)) => (error),
                                        (None, None) => "no response",
                                    }
                                }
                                @if let Some(next) = a.next_attempt {
                                    " " span.quiet { "next " (time(next)) }
                                }
                            }
                            td.num { (millis(a.duration)) }
                            td { @if !a.response.is_empty() {
                                pre.snippet { (String::from_utf8_lossy(&a.response)) }
                            } }
                        }
                    }
                }
            }
        }
    }
}

fn settings(info: &EndpointInfo) -> Markup {
    let url = info
        .spec
        .as_ref()
        .map_or(info.url.as_str(), |s| s.spec.url.as_str());
    html! {
        dl.settings {
            dt { "URL" } dd.origin { (url) }
            dt { "Tenant" } dd { (info.tenant.as_deref().unwrap_or("— (every tenant's events)")) }
            dt { "Events" } dd { (info.event_types.to_string()) }
            dt { "Secrets" } dd {
                @if info.secret_hints.is_empty() { "none (requests are not signed)" }
                @for hint in &info.secret_hints { code { "…" (hint) } " " }
            }
            dt { "Headers" } dd {
                @if info.headers.is_empty() { "none" }
                @for h in &info.headers { code { (h) } " " }
            }
            dt { "Retry" } dd { (info.retry.to_string()) }
            dt { "Timeout" } dd { (millis(info.timeout)) " (connect " (millis(info.connect_timeout)) ")" }
            dt { "In flight at most" } dd { (info.max_in_flight) }
            dt { "Rate limit" } dd { (info.rate_limit.map_or_else(|| "none".to_owned(), |r| r.to_string())) }
            dt { "Breaker" } dd { (format!("{:?}", info.stats.breaker)) }
        }
    }
}

pub(crate) async fn new_form(base: Base, csrf: CsrfToken) -> Response {
    form_page(&base, &csrf, None, &FormValues::default(), None).into_response()
}

pub(crate) async fn edit_form(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    Path(name): Path<String>,
) -> Response {
    match state.sink.endpoints().get(&name) {
        Ok(info) => {
            form_page(&base, &csrf, Some(&name), &FormValues::of(&info), None).into_response()
        }
        Err(e) => error_page(&base, &Problem::from(e)).into_response(),
    }
}

/// The fields of the endpoint form, as text.
#[derive(Debug, Default)]
struct FormValues {
    name: String,
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
    /// `name=value` pairs, comma-separated.
    template_vars: String,
}

impl FormValues {
    fn of(info: &EndpointInfo) -> FormValues {
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
                        .join(", ")
                })
                .unwrap_or_default(),
        }
    }

    fn from_form(form: &Form) -> FormValues {
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
        }
    }
}

/// The template choice that shows the text area.
const CUSTOM: &str = "custom";

/// Whether `text` names a preset.
fn is_preset(text: &str) -> bool {
    PRESETS
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case(text.trim()))
}

/// The endpoint form (new when `editing` is `None`), with the problem of the last try.
fn form_page(
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
    let wrong = problem.and_then(|p| p.field.as_deref());
    let field = |label: &str, name: &'static str, value: &str, hint: &str| {
        html! {
            div.field.invalid[wrong == Some(name)] {
                label for=(name) { (label) }
                input id=(name) type="text" name=(name) value=(value) spellcheck="false"
                    aria-invalid=[(wrong == Some(name)).then_some("true")];
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
                p.error role="alert" { (problem.detail) }
            }
            form.endpoint method="post" action=(action) {
                (csrf_field(csrf))
                @if editing.is_some() {
                    input type="hidden" name="name" value=(v.name);
                } @else {
                    (field("Name", "name", &v.name, "Unique; letters, digits, - _ . :"))
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
                div.field.invalid[wrong == Some("secrets")] {
                    label for="secret" { @if editing.is_some() { "New secret (empty: keep the current ones)" } @else { "Secret" } }
                    input #secret type="text" name="secret" placeholder="whsec_… or an ed25519 whsk_…" autocomplete="off" spellcheck="false";
                    button type="button" data-generate-secret="secret" { "Generate" }
                }
                div.field.invalid[wrong == Some("headers")] {
                    label for="headers" { @if editing.is_some() { "Headers (empty: keep the current ones)" } @else { "Headers" } }
                    textarea #headers name="headers" rows="3" placeholder="Authorization: Bearer …" spellcheck="false" {}
                    small { "One per line, Name: value" }
                }
                @if editing.is_some() {
                    label.check { input type="checkbox" name="clear_headers"; " Remove the custom headers" }
                }
                div.field.invalid[wrong == Some("template")] {
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
                }
                (field("Template variables", "template_vars", &v.template_vars, "Comma-separated name=value: chat_id=-1001234567890 for Telegram, lang=ru"))
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
/// way.
fn form_json(form: &Form, editing: bool) -> Result<serde_json::Value, Problem> {
    use serde_json::{Map, Value};
    let mut spec = Map::new();
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
            let n: u64 = value.parse().map_err(|_| {
                Problem::field(
                    key,
                    format!("{key} '{value}' is not a whole number; write one such as 4"),
                )
            })?;
            put(key, Value::from(n));
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
        (Some(CUSTOM), None) => {
            return Err(Problem::field(
                "template",
                "a template of your own needs its text; write it, or pick a preset".to_owned(),
            ));
        }
        (Some(preset), _) => put("template", Value::from(preset)),
        (None, _) => {}
    }
    if let Some(text) = form.text("template_vars") {
        let mut vars = Map::new();
        for pair in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                Problem::field(
                    "template_vars",
                    format!("template variable '{pair}' has no '='; write name=value"),
                )
            })?;
            vars.insert(name.trim().to_owned(), Value::from(value.trim()));
        }
        put("template_vars", Value::Object(vars));
    }
    if let Some(text) = form.text("headers") {
        let mut headers = Map::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                Problem::field(
                    "headers",
                    format!("header line '{line}' has no ':'; write Name: value"),
                )
            })?;
            headers.insert(name.trim().to_owned(), Value::from(value.trim()));
        }
        put("headers", Value::Object(headers));
    } else if editing && form.get("clear_headers").is_some() {
        put("headers", Value::Object(Map::new()));
    }
    Ok(Value::Object(spec))
}

pub(crate) async fn create(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Response {
    if let Some(refused) = foreign_form(&base, &headers, &form) {
        return refused;
    }
    let sink = state.sink.clone();
    let saved = match form_json(&form, false).and_then(parse_spec) {
        Ok(spec) => {
            let name = spec.name.clone();
            blocking(move || {
                if sink.endpoints().get(&spec.name).is_ok() {
                    return Err(Problem::field(
                        "name",
                        format!("an endpoint is already named '{}'; pick another name, or edit that one", spec.name),
                    ));
                }
                sink.endpoints().upsert_spec(&spec)?;
                Ok(name)
            })
            .await
        }
        Err(problem) => Err(problem),
    };
    match saved {
        Ok(name) => Redirect::to(&base.at(&format!("/endpoints/{}?done=created", enc(&name))))
            .into_response(),
        Err(problem) => form_page(
            &base,
            &csrf,
            None,
            &FormValues::from_form(&form),
            Some(&problem),
        )
        .into_response(),
    }
}

pub(crate) async fn update(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Form,
) -> Response {
    if let Some(refused) = foreign_form(&base, &headers, &form) {
        return refused;
    }
    let sink = state.sink.clone();
    // The endpoint is the path's (the form's hidden name is only what the browser shows).
    let spec = form_json(&form, true).and_then(|mut json| {
        json["name"] = serde_json::Value::from(name.as_str());
        parse_spec(json)
    });
    let saved = match spec {
        Ok(spec) => blocking(move || Ok(sink.endpoints().update_spec(&spec)?)).await,
        Err(problem) => Err(problem),
    };
    match saved {
        Ok(()) => Redirect::to(&base.at(&format!("/endpoints/{}?done=updated", enc(&name))))
            .into_response(),
        Err(problem) => {
            let mut values = FormValues::from_form(&form);
            values.name = name.clone();
            form_page(&base, &csrf, Some(&name), &values, Some(&problem)).into_response()
        }
    }
}

/// Pause, resume, test, delete, rotate.
pub(crate) async fn act(
    Shared(state): Shared<State>,
    base: Base,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(refused) = foreign_form(&base, &headers, &form) {
        return refused;
    }
    let sink = state.sink.clone();
    let overlap = state.rotation_overlap;
    let secret = form.text("secret").map(str::to_owned);
    let target = name.clone();
    let done = blocking(move || {
        let endpoints = sink.endpoints();
        Ok(match action.as_str() {
            "pause" => endpoints.pause(&target).map(|()| "paused")?,
            "resume" => endpoints.resume(&target).map(|()| "resumed")?,
            "test" => endpoints.send_test(&target).map(|_| "tested")?,
            "delete" => endpoints.remove(&target).map(|_| "deleted")?,
            "rotate" => {
                let secret = crate::api::parse_secret(secret.as_deref())?;
                endpoints
                    .rotate_secret(&target, secret, overlap)
                    .map(|()| "rotated")?
            }
            other => {
                return Err(Problem::new(
                    axum::http::StatusCode::NOT_FOUND,
                    format!("there is no action '{other}'; pause, resume, test, delete or rotate"),
                ));
            }
        })
    })
    .await;
    match done {
        Ok("deleted") => Redirect::to(&base.at("/?done=deleted")).into_response(),
        Ok(done) => Redirect::to(&base.at(&format!("/endpoints/{}?done={done}", enc(&name))))
            .into_response(),
        Err(problem) => error_page(&base, &problem).into_response(),
    }
}
