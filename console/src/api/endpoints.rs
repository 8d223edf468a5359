//! `/api/v1/endpoints`: the registry's endpoints, listed, created, changed, paused, resumed,
//! tested, given a new secret, removed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskhook_transports::delivery::{
    BreakerState, EndpointInfo, EndpointQuery, EndpointSpec, RedactedSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Params, body_json, created, ms, parse_secret, parse_state, read, read_spec, rfc3339};
use crate::guard::Base;
use crate::{Problem, State, blocking};

/// An endpoint as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// Its name.
    pub name: String,
    /// Its tenant, if it has one.
    pub tenant: Option<String>,
    /// Its URL cut to its origin.
    pub origin: String,
    /// `active`, `paused`, `disabled` (by a 410) or `breaker_open`.
    pub state: &'static str,
    /// The event types it receives.
    pub event_types: String,
    /// The last 4 characters of each signing secret.
    pub secret_hints: Vec<String>,
    /// The names of its custom headers (never their values).
    pub headers: Vec<String>,
    /// Its retry schedule.
    pub retry: String,
    /// Its limit for a whole attempt.
    pub timeout: String,
    /// Its limit for connecting.
    pub connect_timeout: String,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Its rate limit, if any.
    pub rate_limit: Option<String>,
    /// When its last attempt ended, and its status (`null` without a response).
    pub last_attempt: Option<LastAttempt>,
    /// The settings it was made from (secrets and header values left out), when it was made
    /// from settings (deskhook.toml, this API).
    pub settings: Option<RedactedSpec>,
    /// Its counters.
    pub stats: StatsView,
}

/// An endpoint's last attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LastAttempt {
    /// When it ended (RFC 3339).
    pub at: String,
    /// Its HTTP status, `null` without a response.
    pub status: Option<u16>,
}

/// An endpoint's counters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    /// Events waiting.
    pub queued: usize,
    /// Attempts under way.
    pub in_flight: usize,
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Events dropped (a full queue or memory budget).
    pub dropped: u64,
    /// Events put in the dead letters.
    pub dead_lettered: u64,
    /// Times an event waited for a rate-limit token.
    pub rate_limited: u64,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    /// Median latency of the recent attempts, in milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile, in milliseconds.
    pub latency_p99_ms: Option<f64>,
}

impl EndpointView {
    pub(super) fn of(info: EndpointInfo) -> EndpointView {
        let s = info.stats;
        EndpointView {
            state: info.state.name(),
            event_types: info.event_types.to_string(),
            secret_hints: info.secret_hints,
            headers: info.headers,
            retry: info.retry.to_string(),
            timeout: deskhook::policy::format_duration(info.timeout),
            connect_timeout: deskhook::policy::format_duration(info.connect_timeout),
            max_in_flight: info.max_in_flight,
            rate_limit: info.rate_limit.map(|r| r.to_string()),
            last_attempt: info.last_attempt.map(|(at, status)| LastAttempt {
                at: rfc3339(at),
                status,
            }),
            settings: info.spec,
            stats: StatsView {
                queued: s.queued,
                in_flight: s.in_flight,
                delivered: s.delivered,
                failed: s.failed,
                retried: s.retried,
                dropped: s.dropped,
                dead_lettered: s.dead_lettered,
                rate_limited: s.rate_limited,
                breaker: match s.breaker {
                    BreakerState::Closed => "closed",
                    BreakerState::Open => "open",
                    _ => "half_open",
                },
                latency_p50_ms: s.latency_p50.map(ms),
                latency_p99_ms: s.latency_p99.map(ms),
            },
            name: info.name,
            tenant: info.tenant,
            origin: info.url,
        }
    }
}

/// A page of endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    /// The endpoints, by name.
    pub items: Vec<EndpointView>,
    /// How many match from this page on.
    pub remaining: usize,
    /// The `after` of the next page; `null` on the last.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/endpoints", tag = "endpoints",
    params(
        ("search" = Option<String>, Query, description = "Text in the name, tenant or origin (any case)"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's"),
        ("state" = Option<String>, Query, description = "active, paused, disabled or breaker_open"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 50)"),
    ),
    responses((status = 200, body = EndpointList), (status = 400, body = Problem)))]
pub(super) async fn list_endpoints(
    Shared(state): Shared<State>,
    RawQuery(query): RawQuery,
) -> Result<Json<EndpointList>, Problem> {
    let p = Params::of(query, &["search", "tenant", "state", "after", "limit"])?;
    let query = EndpointQuery {
        search: p.text("search"),
        tenant: p.text("tenant"),
        state: p.text("state").map(|s| parse_state(&s)).transpose()?,
        after: p.text("after"),
        limit: p.limit()?,
    };
    // Off the runtime's threads: it first routes what was emitted meanwhile.
    let page = blocking(move || Ok(state.sink.endpoints().page(&query))).await?;
    Ok(Json(EndpointList {
        remaining: page.remaining,
        next: page.next,
        items: page.items.into_iter().map(EndpointView::of).collect(),
    }))
}

#[utoipa::path(post, path = "/endpoints", tag = "endpoints", request_body = EndpointSpec,
    responses((status = 201, body = EndpointView), (status = 400, body = Problem),
        (status = 409, body = Problem)))]
pub(super) async fn create_endpoint(
    Shared(state): Shared<State>,
    base: Base,
    body: Bytes,
) -> Result<Response, Problem> {
    let mut reading = read_spec(body_json(&body)?)?;
    reading.refuse_server_settings(None);
    reading.refuse_private_networks(None, state.private_networks);
    let sink = state.sink.clone();
    let view = blocking(move || {
        let spec = reading.finish_new()?;
        let endpoints = sink.endpoints();
        // Added only if the name is free, at the moment it is added: of two operators
        // creating the same name, one gets it and the other a 409.
        endpoints.add_spec(&spec).map_err(|e| match e.error() {
            deskhook_transports::Error::EndpointExists { name } => Problem {
                field: Some("name".into()),
                ..Problem::new(
                    StatusCode::CONFLICT,
                    format!(
                        "an endpoint is already named '{name}'; change it with PUT, or pick another name"
                    ),
                )
            },
            _ => Problem::from(e),
        })?;
        Ok(EndpointView::of(endpoints.get(&spec.name)?))
    })
    .await?;
    Ok(created(&base, view))
}

#[utoipa::path(get, path = "/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = EndpointView,
        headers(("ETag" = String, description = "The settings' version, for a PUT's If-Match"))),
        (status = 404, body = Problem)))]
pub(super) async fn get_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let info = blocking(move || Ok(state.sink.endpoints().get(&name)?)).await?;
    Ok(with_etag(info))
}

#[utoipa::path(put, path = "/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name"),
        ("If-Match" = Option<String>, Header,
        description = "The ETag of a GET: the update is refused (412) if the settings changed since")),
    responses((status = 200, body = EndpointView,
        headers(("ETag" = String, description = "The new settings' version"))),
        (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 412, body = Problem)))]
pub(super) async fn update_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let expected = if_match(&headers)?.map(Version::IfMatch);
    save(state, name, expected, body_json(&body)?).await
}

/// The `If-Match` of a request: `*` or the ETags it lists.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    // Dropped, it would save the change unconditionally.
    let value = value.to_str().map_err(|_| {
        Problem::field(
            "If-Match",
            "If-Match is not text; give the ETag a GET of the endpoint answered",
        )
    })?;
    Ok(Some(IfMatch::parse(value)))
}

/// An `If-Match` (RFC 9110, 13.1.1): any current version (`*`), or one of a list of ETags
/// compared strongly, so that a weak one (`W/"…"`) matches none. A tag without its quotes is
/// taken as the quoted one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum IfMatch {
    /// `*`: any version, so long as the endpoint exists.
    Any,
    /// The strong tags listed, without their quotes.
    Tags(Vec<String>),
}

impl IfMatch {
    fn parse(value: &str) -> IfMatch {
        if value.trim() == "*" {
            return IfMatch::Any;
        }
        let tags = value
            .split(',')
            .map(str::trim)
            .filter(|tag| !tag.is_empty() && !tag.starts_with("W/"))
            .map(|tag| tag.trim_matches('"').to_owned())
            .collect();
        IfMatch::Tags(tags)
    }

    /// Whether `version` (of a current endpoint) is one it asks for.
    pub(super) fn matches(&self, version: &str) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|tag| tag == version),
        }
    }
}

/// The refusal of a change with `If-Match` to an endpoint that does not exist: 412, as RFC
/// 9110 asks (no current version matches), saying how to make it.
pub(super) fn missing_for_if_match(name: &str) -> Problem {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        format!(
            "endpoint '{name}' does not exist, and If-Match asks for a version of it; nothing \
             was saved: create it with POST /api/v1/endpoints"
        ),
    )
}

/// The check of an action's `If-Match` (a DELETE, a pause, a resume, a rotation) against the
/// endpoint's version now: 412 when it changed since (or is gone); the endpoint as checked.
/// A pause, a resume and a rotation are made just after, not with it: a change in between
/// is not seen (a DELETE's and an update's checks are exact).
fn check_if_match(
    sink: &deskhook_transports::delivery::DeliverySink,
    name: &str,
    asked: Option<&IfMatch>,
) -> Result<Option<EndpointInfo>, Problem> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let read = read_for(sink, name, true)?;
    let now = super::version_of(&read);
    if asked.matches(&now) {
        return Ok(Some(read));
    }
    Err(changed_since_if_match(name, &now))
}

/// The 412 of an action whose `If-Match` does not match the endpoint's version `now`.
fn changed_since_if_match(name: &str, now: &str) -> Problem {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        format!(
            "endpoint '{name}' changed since the version of If-Match (or that version is from \
             before the console restarted: versions are the running console's); nothing was \
             done: GET it again (ETag \"{now}\") and decide on that"
        ),
    )
}

/// The endpoint `name`, or why not: [`missing_for_if_match`] when the request has an
/// `If-Match`, else the registry's error (404, with a "did you mean").
pub(super) fn read_for(
    sink: &deskhook_transports::delivery::DeliverySink,
    name: &str,
    if_match: bool,
) -> Result<EndpointInfo, Problem> {
    match sink.endpoints().get(name) {
        Err(deskhook_transports::Error::UnknownEndpoint { .. }) if if_match => {
            Err(missing_for_if_match(name))
        }
        read => Ok(read?),
    }
}

/// The version of an endpoint's settings a change is made on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Version {
    /// The client's `If-Match`: a change made since is answered 412.
    IfMatch(IfMatch),
    /// The one the server read to make the change (a PATCH's): a change made since is
    /// answered 409, to be sent again.
    Read(String),
}

/// The endpoint `info` as the answer, with its version as the `ETag` (for the next change's
/// `If-Match`).
pub(super) fn with_etag(info: EndpointInfo) -> Response {
    let etag = format!("\"{}\"", super::version_of(&info));
    let mut response = Json(EndpointView::of(info)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Saves `value` (a PUT's body, or a PATCH's merged onto the settings) as the settings of
/// the endpoint `name`, made on `expected` when given.
pub(super) async fn save(
    state: State,
    name: String,
    expected: Option<Version>,
    mut value: Value,
) -> Result<Response, Problem> {
    // Left out, the tenant stays: dropped, it would send the endpoint every tenant's events
    // (`"tenant": null` takes it away).
    let left_out = |key: &str| value.as_object().is_some_and(|map| !map.contains_key(key));
    let keep_tenant = left_out("tenant");
    // So do the event types it takes: dropped, it would get every type (`"actions": null`
    // gives it every one).
    let keep_actions = left_out("actions");
    // So do the networks it may reach: dropped, a console without the opt-in could never
    // give them back.
    let (keep_private, keep_cidrs) = (left_out("allow_private"), left_out("allow_cidrs"));
    if let Value::Object(map) = &mut value {
        // Left out, the secrets and the headers stay (never shown, they could not be sent
        // back); `null` takes them away, as in a PATCH.
        for (key, empty) in [
            ("secrets", Value::Array(Vec::new())),
            ("headers", Value::Object(Map::new())),
        ] {
            if map.get(key).is_some_and(Value::is_null) {
                map.insert(key.to_owned(), empty);
            }
        }
        match map.get("name") {
            None => {
                map.insert("name".into(), Value::from(name.clone()));
            }
            Some(given) if given.as_str() != Some(name.as_str()) => {
                return Err(Problem::field(
                    "name",
                    format!(
                        "the body names {given} but the path '{name}'; an endpoint cannot be \
                         renamed: create the new one and delete the old"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let mut reading = read_spec(value)?;
    let sink = state.sink.clone();
    let private_networks = state.private_networks;
    let with_if_match = matches!(expected, Some(Version::IfMatch(_)));
    blocking(move || {
        let read = read_for(&sink, &name, with_if_match)?;
        let Some(current) = read.spec.as_ref().map(|r| &r.spec) else {
            return Err(super::registered_in_code(&name));
        };
        let spec = &mut reading.spec;
        if keep_tenant {
            spec.tenant.clone_from(&current.tenant);
        }
        if keep_actions {
            spec.actions.clone_from(&current.actions);
        }
        if keep_private {
            spec.allow_private = current.allow_private;
        }
        if keep_cidrs {
            spec.allow_cidrs.clone_from(&current.allow_cidrs);
        }
        reading.refuse_server_settings(Some(current));
        reading.refuse_private_networks(Some(&read), private_networks);
        super::keep_server_settings(&mut reading.spec, current);
        let spec = reading.finish()?;
        let stale = |now: &str| {
            Problem::new(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "endpoint '{}' changed since the version of If-Match; nothing was saved: \
                     GET it again (ETag \"{now}\") and make the change on that",
                    spec.name
                ),
            )
        };
        let changed_meanwhile = || {
            Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "endpoint '{}' was changed by someone else while this change was \
                     checked; nothing was saved: send it again",
                    spec.name
                ),
            )
        };
        match &expected {
            Some(Version::IfMatch(asked)) if !asked.matches(&super::version_of(&read)) => {
                return Err(stale(&super::version_of(&read)));
            }
            Some(Version::Read(version)) if *version != super::version_of(&read) => {
                return Err(changed_meanwhile());
            }
            _ => {}
        }
        // Saved onto the settings checked above only: of two changes made on one version,
        // one wins, and a change made meanwhile (allow_private turned off) is not undone
        // by one checked against what it replaced.
        let if_match = matches!(expected, Some(Version::IfMatch(_)));
        // Removed meanwhile: with If-Match, no version matches (412, as for one that did
        // not exist), not "not found".
        let gone = |e: &deskhook_transports::Error| {
            if_match && matches!(e, deskhook_transports::Error::UnknownEndpoint { .. })
        };
        let saved = match sink.endpoints().update_spec_if_unchanged(&spec, &read) {
            Err(e)
                if matches!(
                    e.error(),
                    deskhook_transports::Error::EndpointChanged { .. }
                ) =>
            {
                return Err(match sink.endpoints().get(&spec.name) {
                    Ok(now) if if_match => stale(&super::version_of(&now)),
                    Ok(_) => changed_meanwhile(),
                    Err(e) if gone(&e) => missing_for_if_match(&spec.name),
                    Err(e) => e.into(),
                });
            }
            Err(e) if gone(e.error()) => return Err(missing_for_if_match(&spec.name)),
            changed => changed?,
        };
        // This change's version, not that of one saved since (an If-Match made on it would
        // pass, and undo that change unseen).
        Ok(with_etag(saved))
    })
    .await
}

/// What removing an endpoint did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RemovedView {
    /// Events it had queued, now in the dead letters.
    pub dead_lettered: usize,
    /// Attempts in flight, which finish.
    pub in_flight: usize,
}

#[utoipa::path(delete, path = "/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name"),
        ("If-Match" = Option<String>, Header,
        description = "The ETag of a GET: refused (412) if the settings changed since")),
    responses((status = 200, body = RemovedView), (status = 404, body = Problem),
        (status = 412, body = Problem)))]
pub(super) async fn delete_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RemovedView>, Problem> {
    let asked = if_match(&headers)?;
    let sink = state.sink.clone();
    blocking(move || {
        let endpoints = sink.endpoints();
        let removed = match check_if_match(&sink, &name, asked.as_ref())? {
            None => endpoints.remove(&name)?,
            // Only the version checked: one changed or removed since is not removed.
            Some(read) => endpoints.remove_if_unchanged(&read).map_err(|e| match e {
                deskhook_transports::Error::EndpointChanged { .. }
                | deskhook_transports::Error::UnknownEndpoint { .. } => {
                    match endpoints.get(&name) {
                        Ok(now) => changed_since_if_match(&name, &super::version_of(&now)),
                        Err(_) => missing_for_if_match(&name),
                    }
                }
                e => e.into(),
            })?,
        };
        Ok(Json(RemovedView {
            dead_lettered: removed.dead_lettered,
            in_flight: removed.in_flight,
        }))
    })
    .await
}

#[utoipa::path(post, path = "/endpoints/{name}/pause", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name"),
        ("If-Match" = Option<String>, Header,
        description = "The ETag of a GET: refused (412) if the settings changed since")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem),
        (status = 412, body = Problem)))]
pub(super) async fn pause_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<EndpointView>, Problem> {
    let asked = if_match(&headers)?;
    // Off the runtime: with a spool it waits for the change to be on disk.
    let sink = state.sink.clone();
    let endpoints = state.sink.endpoints();
    blocking(move || {
        check_if_match(&sink, &name, asked.as_ref())?;
        endpoints.pause(&name)?;
        Ok(Json(EndpointView::of(endpoints.get(&name)?)))
    })
    .await
}

#[utoipa::path(post, path = "/endpoints/{name}/resume", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name"),
        ("If-Match" = Option<String>, Header,
        description = "The ETag of a GET: refused (412) if the settings changed since")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem),
        (status = 412, body = Problem)))]
pub(super) async fn resume_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<EndpointView>, Problem> {
    let asked = if_match(&headers)?;
    let sink = state.sink.clone();
    let endpoints = state.sink.endpoints();
    blocking(move || {
        check_if_match(&sink, &name, asked.as_ref())?;
        endpoints.resume(&name)?;
        Ok(Json(EndpointView::of(endpoints.get(&name)?)))
    })
    .await
}

/// The test event sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestSent {
    /// Its `webhook-id`, to find its attempts.
    pub event_id: String,
}

#[utoipa::path(post, path = "/endpoints/{name}/test", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 202, body = TestSent),
        (status = 400, body = Problem,
            description = "the endpoint receives no Zenlix action, or is disabled or being removed"),
        (status = 404, body = Problem),
        (status = 503, body = Problem,
            description = "its queue, the memory budget or the spool is full: the test event was \
                not accepted; retry once the endpoint has delivered some")))]
pub(super) async fn test_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<TestSent>), Problem> {
    // It waits until the event is queued (durable, with a spool): off the runtime's threads.
    let id = blocking(move || Ok(state.sink.endpoints().send_test(&name)?)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestSent {
            event_id: id.to_string(),
        }),
    ))
}

/// A new signing secret for an endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The new secret (`whsec_…`).
    // An Option so that its absence gets the API's own problem, not serde's.
    #[schema(required = true)]
    pub secret: Option<String>,
    /// How long the old secret keeps signing too (`"24h"`; the console's default when absent).
    pub overlap: Option<String>,
}

#[utoipa::path(post, path = "/endpoints/{name}/rotate-secret", tag = "endpoints",
    request_body = Rotation,
    params(("name" = String, Path, description = "The endpoint's name"),
        ("If-Match" = Option<String>, Header,
        description = "The ETag of a GET: refused (412) if the settings changed since")),
    responses((status = 200, body = EndpointView,
        headers(("ETag" = String, description = "The new settings' version"))),
        (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 412, body = Problem)))]
pub(super) async fn rotate_secret(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let asked = if_match(&headers)?;
    let rotation: Rotation = read(&body_json(&body)?)?;
    let secret = parse_secret(rotation.secret.as_deref())?;
    let overlap = match rotation.overlap.as_deref() {
        None => state.rotation_overlap,
        Some(text) => deskhook::policy::parse_duration(text)
            .map_err(|e| Problem::field("overlap", format!("overlap: {e}")))?,
    };
    let sink = state.sink.clone();
    blocking(move || {
        check_if_match(&sink, &name, asked.as_ref())?;
        // Its new version too (the secrets' hints changed): this rotation's, whatever
        // came since.
        Ok(with_etag(
            sink.endpoints().rotate_secret(&name, secret, overlap)?,
        ))
    })
    .await
}

/// One minute of an endpoint's activity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MinuteView {
    /// The minute's start (RFC 3339).
    pub minute: String,
    /// Attempts that delivered.
    pub delivered: u32,
    /// Attempts that failed.
    pub failed: u32,
}

#[utoipa::path(get, path = "/endpoints/{name}/activity", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = Vec<MinuteView>), (status = 404, body = Problem)))]
pub(super) async fn endpoint_activity(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Json<Vec<MinuteView>>, Problem> {
    // Off the runtime's threads, as every other look at the endpoints: it takes the
    // endpoint's lock, which a worker may hold.
    let sink = state.sink.clone();
    let minutes = blocking(move || Ok(sink.endpoints().activity(&name)?)).await?;
    Ok(Json(
        minutes
            .into_iter()
            .map(|m| MinuteView {
                minute: rfc3339(m.minute),
                delivered: m.delivered,
                failed: m.failed,
            })
            .collect(),
    ))
}
