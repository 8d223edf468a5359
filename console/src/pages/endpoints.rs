//! The endpoints table, an endpoint's page, its forms and its actions.

use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use deskhook::policy::format_duration;
use deskhook_transports::delivery::{
    AttemptEntry, AttemptQuery, EndpointInfo, EndpointQuery, EndpointSpec, EndpointState,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Form, PageQuery, count, counted, csrf_field, enc, endpoint_path, error_page, foreign_form,
    foreign_form_problem, layout, millis, status_class, time,
};
use crate::api::{SpecReading, parse_state, read_spec};
use crate::guard::{Base, CsrfToken};
use crate::{Problem, State, blocking, chart};

mod form;

use form::{FormValues, form_json, form_page};

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
        "tested_paused" => {
            "A test event is queued; the endpoint is paused, so it goes out once you resume it."
        }
        "deleted" => "Endpoint deleted; what it had queued went to the dead letters.",
        "rotated" => "New secret in place; the old one keeps signing during the overlap.",
        _ => return None,
    })
}

pub(crate) async fn list(
    Shared(state): Shared<State>,
    base: Base,
    PageQuery(query): PageQuery<ListQuery>,
) -> Response {
    // A state the form does not offer (a link typed by hand) is said, not ignored: the
    // list would look filtered while it is not.
    let endpoint_state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match parse_state(text) {
            Ok(endpoint_state) => Some(endpoint_state),
            Err(problem) => return error_page(&base, &problem).into_response(),
        },
        None => None,
    };
    let endpoint_query = EndpointQuery {
        search: query.q.clone().filter(|q| !q.trim().is_empty()),
        tenant: query.tenant.clone().filter(|t| !t.is_empty()),
        state: endpoint_state,
        after: query.after.clone().filter(|a| !a.is_empty()),
        limit: 50,
    };
    let sink = state.sink.clone();
    // Off the runtime's threads: it first routes what was emitted meanwhile.
    let asked = endpoint_query.clone();
    let (page, total) =
        match crate::blocking(move || Ok((sink.endpoints().page(&asked), sink.endpoints().len())))
            .await
        {
            Ok(found) => found,
            Err(problem) => return error_page(&base, &problem).into_response(),
        };
    // The pager's links keep the filters.
    let mut filters = String::new();
    for (key, value) in [
        ("q", &query.q),
        ("tenant", &query.tenant),
        ("state", &query.state),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            filters.push_str(&format!("&{key}={}", enc(value)));
        }
    }
    let link_first = base.at(&match filters.strip_prefix('&') {
        Some(filters) => format!("/?{filters}"),
        None => "/".to_owned(),
    });
    let link_next = page
        .next
        .as_ref()
        .map(|next| base.at(&format!("/?after={}{filters}", enc(next))));
    let chosen = query.state.as_deref().unwrap_or("");
    layout(
        &base,
        "Endpoints",
        flash(query.done.as_deref()),
        html! {
            div.heading {
                h1 { "Endpoints" }
                a.button href=(base.at("/new-endpoint")) { "Add an endpoint" }
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
                " · " (counted(total as u64, "endpoint")) " in all"
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
                    a href=(link_first) { "« First" }
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
            td { a href=(base.at(&endpoint_path(&e.name))) { (e.name) } }
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
    PageQuery(query): PageQuery<ShowQuery>,
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
    let here = base.at(&endpoint_path(&name));
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
                // An endpoint registered in code has no settings to edit here.
                @if info.spec.is_some() {
                    a.button href=(format!("{here}/edit")) { "Edit" }
                }
                (action_button(&here, "delete", "Delete", &csrf,
                    Some("Delete this endpoint? What it has queued goes to the dead letters.")))
            }
            section.stats {
                (stat("Delivered", count(s.delivered)))
                (stat("Failed attempts", count(s.failed)))
                (stat("Retries", count(s.retried)))
                (stat("Queued", count(s.queued as u64)))
                (stat("In flight", count(s.in_flight as u64)))
                (stat("Dead-lettered since start", count(s.dead_lettered)))
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
                                td { a href=(base.at(&endpoint_path(&a.endpoint))) { (a.endpoint) } }
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
            dt { "Timeout" } dd {
                (format_duration(info.timeout)) " (connect " (format_duration(info.connect_timeout)) ")"
            }
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
    // Off the runtime's threads: it first routes what was emitted meanwhile.
    let sink = state.sink.clone();
    let lookup = name.clone();
    match crate::blocking(move || Ok(sink.endpoints().get(&lookup)?)).await {
        Ok(info) if info.spec.is_none() => {
            error_page(&base, &crate::api::registered_in_code(&name)).into_response()
        }
        Ok(info) => {
            form_page(&base, &csrf, Some(&name), &FormValues::of(&info), None).into_response()
        }
        Err(problem) => error_page(&base, &problem).into_response(),
    }
}

pub(crate) async fn create(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Response {
    if let Some(refused) = foreign_form(&base, &headers, &form) {
        // Shown again with what was typed, under this browser's token now; only for a page
        // of this origin (another site's must not have the console show its values).
        if !crate::guard::from_this_origin(&headers) {
            return refused;
        }
        let values = FormValues::from_form(&form);
        let problem = foreign_form_problem();
        return form_page(&base, &csrf, None, &values, Some(&problem)).into_response();
    }
    let sink = state.sink.clone();
    let private_networks = state.private_networks;
    let reading = read_form(&form, None).map(|mut reading| {
        reading.refuse_private_networks(None, private_networks);
        reading
    });
    let saved =
        match reading {
            Ok(reading) => {
                blocking(move || {
                    let spec = reading.finish_new()?;
                    sink.endpoints().add_spec(&spec).map_err(|e| match e.error() {
                    deskhook_transports::Error::EndpointExists { name } => Problem::field(
                        "name",
                        format!(
                            "an endpoint is already named '{name}'; pick another name, or edit \
                             that one"
                        ),
                    ),
                    _ => Problem::from(e),
                })?;
                    Ok(spec.name)
                })
                .await
            }
            Err(problem) => Err(problem),
        };
    match saved {
        Ok(name) => Redirect::to(&base.at(&format!("{}?done=created", endpoint_path(&name))))
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
        // As in `create`.
        if !crate::guard::from_this_origin(&headers) {
            return refused;
        }
        let values = FormValues::from_form(&form);
        let problem = foreign_form_problem();
        return form_page(&base, &csrf, Some(&name), &values, Some(&problem)).into_response();
    }
    let sink = state.sink.clone();
    let version = form.text("version").map(str::to_owned);
    let read = {
        let (sink, name) = (sink.clone(), name.clone());
        crate::blocking(move || Ok(sink.endpoints().get(&name)?)).await
    };
    let current = read.as_ref().map_err(Clone::clone).and_then(|info| {
        if let Some(version) = &version
            && *version != crate::api::version_of(info)
        {
            return Err(changed_meanwhile(&name));
        }
        info.spec
            .clone()
            .map(|saved| (saved.spec, info))
            .ok_or_else(|| crate::api::registered_in_code(&name))
    });
    // The endpoint is the path's (the form's hidden name is only what the browser shows).
    let reading = current.and_then(|(current, info)| {
        let mut reading = read_form(&form, Some(&name))?;
        reading.refuse_private_networks(Some(info), state.private_networks);
        keep_what_the_form_lacks(&mut reading.spec, &current);
        Ok(reading)
    });
    let changed_name = name.clone();
    let saved = match (reading, read) {
        // Checked and saved at once, against what the form was made from: of two operators
        // saving one form, the second is told.
        (Ok(reading), Ok(read)) => {
            blocking(move || {
                match sink
                    .endpoints()
                    .update_spec_if_unchanged(&reading.finish()?, &read)
                {
                    Err(e)
                        if matches!(
                            e.error(),
                            deskhook_transports::Error::EndpointChanged { .. }
                        ) =>
                    {
                        Err(changed_meanwhile(&changed_name))
                    }
                    saved => Ok(saved?),
                }
            })
            .await
        }
        (Err(problem), _) | (_, Err(problem)) => Err(problem),
    };
    match saved {
        Ok(_) => Redirect::to(&base.at(&format!("{}?done=updated", endpoint_path(&name))))
            .into_response(),
        Err(problem) => {
            let mut values = FormValues::from_form(&form);
            values.name = name.clone();
            form_page(&base, &csrf, Some(&name), &values, Some(&problem)).into_response()
        }
    }
}

/// The form read as an endpoint's settings, with the problems of every field that does not
/// read; `name` (an edit's, from the path) stands for the form's.
fn read_form(form: &Form, name: Option<&str>) -> Result<SpecReading, Problem> {
    let (mut json, problems) = form_json(form, name.is_some());
    if let Some(name) = name {
        json["name"] = serde_json::Value::from(name);
    }
    let mut reading = read_spec(json)?;
    for problem in problems {
        reading.problem(problem);
    }
    Ok(reading)
}

/// The problem of an edit made from a form older than the settings.
fn changed_meanwhile(name: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        format!(
            "endpoint '{name}' was changed since this form was opened (by someone else, or its \
             settings' version is from before the console restarted); nothing was saved: open \
             it again to see the settings as they are"
        ),
    )
}

/// Settings the form has no field for stay as they are: the CA file, the template file
/// (unless the form sets a template), as the API keeps them, the template's content
/// type while the template stays: the same, or one's own edited (its text, or a file). It
/// goes when the template goes or becomes another preset: the event's JSON has none. The
/// template's largest output stays while there is a template.
/// (Secrets the form does not give are kept by `update_spec`, literal and from the
/// environment alike.)
fn keep_what_the_form_lacks(spec: &mut EndpointSpec, current: &EndpointSpec) {
    crate::api::keep_server_settings(spec, current);
    let own = |s: &EndpointSpec| {
        s.template_file.is_some() || s.template.as_deref().is_some_and(|t| !form::is_preset(t))
    };
    let same = spec.template == current.template && spec.template_file == current.template_file;
    spec.template_content_type = if same || (own(spec) && own(current)) {
        current.template_content_type.clone()
    } else {
        None
    };
    spec.template_max_output = if spec.template.is_some() || spec.template_file.is_some() {
        current.template_max_output
    } else {
        None
    };
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
            "test" => {
                endpoints.send_test(&target)?;
                // A paused endpoint queues it, and sends it once resumed.
                match endpoints.get(&target) {
                    Ok(info) if info.state == EndpointState::Paused => "tested_paused",
                    _ => "tested",
                }
            }
            "delete" => endpoints.remove(&target).map(|_| "deleted")?,
            "rotate" => {
                let secret = crate::api::parse_secret(secret.as_deref())?;
                endpoints
                    .rotate_secret(&target, secret, overlap)
                    .map(|_| "rotated")?
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
        Ok(done) => {
            Redirect::to(&base.at(&format!("{}?done={done}", endpoint_path(&name)))).into_response()
        }
        Err(problem) => error_page(&base, &problem).into_response(),
    }
}
