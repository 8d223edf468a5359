//! The admin API under `/api/v1`: the console's powers as JSON, described by the OpenAPI
//! document at `/api/v1/openapi.json` (generated from these handlers and types).
//!
//! | | |
//! |---|---|
//! | `GET /endpoints?search=&tenant=&state=&after=&limit=` | a page of endpoints, by name (cursor `after`) |
//! | `POST /endpoints` | create one: the JSON of a `[[endpoint]]` table of `deskhook.toml` |
//! | `GET /endpoints/{name}` | its settings (secrets by their last 4 characters), state, counters |
//! | `PUT /endpoints/{name}` | change it; absent `secrets` and `headers` keep the current ones |
//! | `DELETE /endpoints/{name}` | remove it; its queue goes to the dead letters |
//! | `POST /endpoints/{name}/pause`, `/resume`, `/test` | pause, resume, send a test event |
//! | `POST /endpoints/{name}/rotate-secret` | `{"secret": "whsec_…", "overlap": "24h"}` |
//! | `GET /endpoints/{name}/activity` | deliveries and failures per minute, last hour |
//! | `GET /attempts?endpoint=&tenant=&event_id=&ticket=&status=&since=&until=&before=&limit=` | the attempt log, newest first |
//! | `GET /dead-letters?endpoint=&tenant=&event_type=&event_id=&before=&limit=` | dead letters, newest first |
//! | `POST /dead-letters/replay` | `{"keys": […]}` or `{"endpoint": "crm"}` (all of its letters) |
//! | `POST /dead-letters/delete` | `{"keys": […]}` |
//! | `GET /stats` | totals over every endpoint |
//!
//! Requests that change something send `Content-Type: application/json` (or an
//! `Authorization` header): see the crate's security notes. Errors are
//! [`Problem`] documents naming the field at fault:
//!
//! ```text
//! POST /api/v1/endpoints  {"name": "crm", "url": "ftp://crm.example.com"}
//! 400 {"type":"about:blank","title":"Bad Request","status":400,
//!      "detail":"endpoint 'crm': …","field":"url"}
//! ```

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deskhook::Secret;
use deskhook_transports::delivery::{
    AttemptEntry, AttemptOutcome, AttemptQuery, BreakerState, DeadLetterQuery, EndpointInfo,
    EndpointQuery, EndpointSpec, EndpointState, RedactedSpec, StatusFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::OpenApi;

use crate::guard::Base;
use crate::{Problem, State, blocking};

/// The API's routes (nested at `/api/v1`).
pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/endpoints/{name}",
            get(get_endpoint)
                .put(update_endpoint)
                .delete(delete_endpoint),
        )
        .route("/endpoints/{name}/pause", post(pause_endpoint))
        .route("/endpoints/{name}/resume", post(resume_endpoint))
        .route("/endpoints/{name}/test", post(test_endpoint))
        .route("/endpoints/{name}/rotate-secret", post(rotate_secret))
        .route("/endpoints/{name}/activity", get(endpoint_activity))
        .route("/attempts", get(list_attempts))
        .route("/dead-letters", get(list_dead_letters))
        .route("/dead-letters/replay", post(replay_dead_letters))
        .route("/dead-letters/delete", post(delete_dead_letters))
        .route("/stats", get(stats))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
}

/// The OpenAPI document of the admin API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "deskhook admin API",
        description = "Endpoints, attempts and dead letters of a running deskhook sink."
    ),
    paths(
        list_endpoints,
        create_endpoint,
        get_endpoint,
        update_endpoint,
        delete_endpoint,
        pause_endpoint,
        resume_endpoint,
        test_endpoint,
        rotate_secret,
        endpoint_activity,
        list_attempts,
        list_dead_letters,
        replay_dead_letters,
        delete_dead_letters,
        stats
    ),
    components(schemas(Problem, EndpointSpec, RedactedSpec))
)]
pub struct ApiDoc;

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

/// The name of a state in the API (`breaker_open`, …).
pub(crate) fn state_name(state: EndpointState) -> &'static str {
    match state {
        EndpointState::Active => "active",
        EndpointState::Paused => "paused",
        EndpointState::Disabled => "disabled",
        _ => "breaker_open",
    }
}

/// A state from its API name.
pub(crate) fn parse_state(text: &str) -> Result<EndpointState, Problem> {
    Ok(match text {
        "active" => EndpointState::Active,
        "paused" => EndpointState::Paused,
        "disabled" => EndpointState::Disabled,
        "breaker_open" => EndpointState::BreakerOpen,
        other => {
            return Err(Problem::field(
                "state",
                format!("state '{other}' is not one of active, paused, disabled, breaker_open"),
            ));
        }
    })
}

fn rfc3339(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl EndpointView {
    fn of(info: EndpointInfo) -> EndpointView {
        let s = info.stats;
        EndpointView {
            state: state_name(info.state),
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

/// A query string's fields, read one by one so that a bad one is named.
struct Params(Vec<(String, String)>);

impl Params {
    fn of(query: Option<String>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }

    fn text(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Problem> {
        self.text(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    Problem::field(name, format!("{name} '{v}' is not a whole number"))
                })
            })
            .transpose()
    }

    fn time(&self, name: &str) -> Result<Option<SystemTime>, Problem> {
        self.text(name)
            .map(|v| {
                v.parse::<jiff::Timestamp>().map(SystemTime::from).map_err(|e| {
                    Problem::field(
                        name,
                        format!("{name} '{v}' is not a time ({e}); write it like 2026-11-29T14:00:00Z"),
                    )
                })
            })
            .transpose()
    }

    fn limit(&self) -> Result<usize, Problem> {
        match self.number::<usize>("limit")? {
            Some(n @ 1..=1000) => Ok(n),
            None => Ok(0),
            Some(n) => Err(Problem::field(
                "limit",
                format!("limit {n} is out of range; ask for 1 to 1000"),
            )),
        }
    }
}

/// The JSON of a request body.
fn body_json(body: &Bytes) -> Result<Value, Problem> {
    if body.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}; send a JSON object"),
        )
    })
}

/// Reads an endpoint's JSON (the fields of a `[[endpoint]]` table), naming the field at
/// fault when it cannot.
pub(crate) fn parse_spec(value: Value) -> Result<EndpointSpec, Problem> {
    read(value)
}

/// Reads `value` as a `T`, naming the field at fault when it cannot.
fn read<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        // Unknown and missing fields are errors of the object: name the field itself.
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|prefix| inner.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        let field = named.unwrap_or_else(|| {
            path.split(['.', '['])
                .next()
                .filter(|p| !p.is_empty() && *p != "?")
                .unwrap_or("")
                .to_owned()
        });
        if field.is_empty() {
            Problem::new(StatusCode::BAD_REQUEST, inner)
        } else {
            Problem::field(field.clone(), format!("{field}: {inner}"))
        }
    })
}

/// A `whsec_…` secret the admin gave.
pub(crate) fn parse_secret(text: Option<&str>) -> Result<Secret, Problem> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Problem::field(
                "secret",
                "give the new secret (whsec_…, from `deskhook secret new` or the page's Generate \
             button); the console never makes one it would then have to show",
            )
        })?;
    Secret::parse(text).map_err(|e| Problem::field("secret", format!("secret: {e}")))
}

/// `201 Created` with the endpoint and its `Location`.
fn created(base: &Base, view: EndpointView) -> Response {
    let location = base.at(&format!(
        "/api/v1/endpoints/{}",
        crate::pages::enc(&view.name)
    ));
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response()
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
async fn list_endpoints(
    Shared(state): Shared<State>,
    RawQuery(query): RawQuery,
) -> Result<Json<EndpointList>, Problem> {
    let p = Params::of(query);
    let query = EndpointQuery {
        search: p.text("search"),
        tenant: p.text("tenant"),
        state: p.text("state").map(|s| parse_state(&s)).transpose()?,
        after: p.text("after"),
        limit: p.limit()?,
    };
    let page = state.sink.endpoints().page(&query);
    Ok(Json(EndpointList {
        remaining: page.remaining,
        next: page.next,
        items: page.items.into_iter().map(EndpointView::of).collect(),
    }))
}

#[utoipa::path(post, path = "/endpoints", tag = "endpoints", request_body = EndpointSpec,
    responses((status = 201, body = EndpointView), (status = 400, body = Problem),
        (status = 409, body = Problem)))]
async fn create_endpoint(
    Shared(state): Shared<State>,
    base: Base,
    body: Bytes,
) -> Result<Response, Problem> {
    let spec = parse_spec(body_json(&body)?)?;
    let sink = state.sink.clone();
    let view = blocking(move || {
        let endpoints = sink.endpoints();
        if endpoints.get(&spec.name).is_ok() {
            return Err(Problem {
                field: Some("name".into()),
                ..Problem::new(
                    StatusCode::CONFLICT,
                    format!(
                        "an endpoint is already named '{}'; change it with PUT, or pick another name",
                        spec.name
                    ),
                )
            });
        }
        endpoints.upsert_spec(&spec)?;
        Ok(EndpointView::of(endpoints.get(&spec.name)?))
    })
    .await?;
    Ok(created(&base, view))
}

#[utoipa::path(get, path = "/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
async fn get_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(EndpointView::of(state.sink.endpoints().get(&name)?)))
}

#[utoipa::path(put, path = "/endpoints/{name}", tag = "endpoints", request_body = EndpointSpec,
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = EndpointView), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
async fn update_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<EndpointView>, Problem> {
    let mut value = body_json(&body)?;
    if let Value::Object(map) = &mut value {
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
    let spec = parse_spec(value)?;
    let sink = state.sink.clone();
    blocking(move || {
        sink.endpoints().update_spec(&spec)?;
        Ok(Json(EndpointView::of(sink.endpoints().get(&spec.name)?)))
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
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = RemovedView), (status = 404, body = Problem)))]
async fn delete_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Json<RemovedView>, Problem> {
    let sink = state.sink.clone();
    blocking(move || {
        let removed = sink.endpoints().remove(&name)?;
        Ok(Json(RemovedView {
            dead_lettered: removed.dead_lettered,
            in_flight: removed.in_flight,
        }))
    })
    .await
}

#[utoipa::path(post, path = "/endpoints/{name}/pause", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
async fn pause_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    let endpoints = state.sink.endpoints();
    endpoints.pause(&name)?;
    Ok(Json(EndpointView::of(endpoints.get(&name)?)))
}

#[utoipa::path(post, path = "/endpoints/{name}/resume", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
async fn resume_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    let endpoints = state.sink.endpoints();
    endpoints.resume(&name)?;
    Ok(Json(EndpointView::of(endpoints.get(&name)?)))
}

/// The test event sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestSent {
    /// Its `webhook-id`, to find its attempts.
    pub event_id: String,
}

#[utoipa::path(post, path = "/endpoints/{name}/test", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 202, body = TestSent), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
async fn test_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<TestSent>), Problem> {
    let id = state.sink.endpoints().send_test(&name)?;
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
    pub secret: Option<String>,
    /// How long the old secret keeps signing too (`"24h"`; the console's default when absent).
    pub overlap: Option<String>,
}

#[utoipa::path(post, path = "/endpoints/{name}/rotate-secret", tag = "endpoints",
    request_body = Rotation,
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 200, body = EndpointView), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
async fn rotate_secret(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<EndpointView>, Problem> {
    let rotation: Rotation = read(body_json(&body)?)?;
    let secret = parse_secret(rotation.secret.as_deref())?;
    let overlap = match rotation.overlap.as_deref() {
        None => state.rotation_overlap,
        Some(text) => deskhook::policy::parse_duration(text)
            .map_err(|e| Problem::field("overlap", format!("overlap: {e}")))?,
    };
    let sink = state.sink.clone();
    blocking(move || {
        sink.endpoints().rotate_secret(&name, secret, overlap)?;
        Ok(Json(EndpointView::of(sink.endpoints().get(&name)?)))
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
async fn endpoint_activity(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
) -> Result<Json<Vec<MinuteView>>, Problem> {
    Ok(Json(
        state
            .sink
            .endpoints()
            .activity(&name)?
            .into_iter()
            .map(|m| MinuteView {
                minute: rfc3339(m.minute),
                delivered: m.delivered,
                failed: m.failed,
            })
            .collect(),
    ))
}

/// One attempt of the attempt log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// Its place in the log (cursor).
    pub seq: u64,
    /// When it ended (RFC 3339).
    pub at: String,
    /// The event's `webhook-id`.
    pub event_id: String,
    /// The endpoint.
    pub endpoint: String,
    /// The event's tenant.
    pub tenant: Option<String>,
    /// The event type.
    pub event_type: String,
    /// The ticket.
    pub ticket: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// `delivered`, `retrying`, `dead_lettered` or `endpoint_disabled`.
    pub outcome: &'static str,
    /// The HTTP status, `null` without a response.
    pub status: Option<u16>,
    /// What went wrong without a response.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// The start of the response body, as text (invalid UTF-8 replaced).
    pub response: String,
    /// When the next attempt is due (RFC 3339), if one is.
    pub next_attempt: Option<String>,
}

impl AttemptView {
    fn of(a: AttemptEntry) -> AttemptView {
        AttemptView {
            seq: a.seq,
            at: rfc3339(a.at),
            event_id: a.event_id.to_string(),
            endpoint: a.endpoint.to_string(),
            tenant: a.tenant.map(|t| t.to_string()),
            event_type: a.event_type.as_str().to_owned(),
            ticket: a.ticket.to_string(),
            attempt: a.attempt,
            outcome: match a.outcome {
                AttemptOutcome::Delivered => "delivered",
                AttemptOutcome::Retrying => "retrying",
                AttemptOutcome::DeadLettered => "dead_lettered",
                _ => "endpoint_disabled",
            },
            status: a.status,
            error: a.error,
            duration_ms: ms(a.duration),
            response: String::from_utf8_lossy(&a.response).into_owned(),
            next_attempt: a.next_attempt.map(rfc3339),
        }
    }
}

/// A page of attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptList {
    /// The attempts, newest first.
    pub items: Vec<AttemptView>,
    /// The `before` of the next page; `null` on the last.
    pub next: Option<u64>,
}

#[utoipa::path(get, path = "/attempts", tag = "attempts",
    params(
        ("endpoint" = Option<String>, Query, description = "Only this endpoint's"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's"),
        ("event_id" = Option<String>, Query, description = "Only this event's (webhook-id)"),
        ("ticket" = Option<String>, Query, description = "Only this ticket's"),
        ("status" = Option<String>, Query, description = "503, 5xx, none (no response) or failed"),
        ("since" = Option<String>, Query, description = "At or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Before this time (RFC 3339)"),
        ("before" = Option<u64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 50)"),
    ),
    responses((status = 200, body = AttemptList), (status = 400, body = Problem)))]
async fn list_attempts(
    Shared(state): Shared<State>,
    RawQuery(query): RawQuery,
) -> Result<Json<AttemptList>, Problem> {
    let p = Params::of(query);
    let query = AttemptQuery {
        endpoint: p.text("endpoint"),
        tenant: p.text("tenant"),
        event_id: p.text("event_id"),
        ticket: p.text("ticket"),
        status: p
            .text("status")
            .map(|s| {
                s.parse::<StatusFilter>()
                    .map_err(|e| Problem::field("status", e))
            })
            .transpose()?,
        since: p.time("since")?,
        until: p.time("until")?,
        before: p.number("before")?,
        limit: p.limit()?,
    };
    let sink = state.sink.clone();
    blocking(move || {
        let page = sink.attempts(&query)?;
        Ok(Json(AttemptList {
            next: page.next,
            items: page.items.into_iter().map(AttemptView::of).collect(),
        }))
    })
    .await
}

/// A dead letter and the key that names it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LetterView {
    /// What names it for replay and delete.
    pub key: String,
    /// Its place (cursor).
    pub position: u64,
    /// The letter: the event, where it was going, why it failed.
    #[schema(value_type = Object)]
    pub letter: Value,
}

/// A page of dead letters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LetterList {
    /// The letters, newest first.
    pub items: Vec<LetterView>,
    /// The `before` of the next page; `null` on the last.
    pub next: Option<u64>,
}

#[utoipa::path(get, path = "/dead-letters", tag = "dead letters",
    params(
        ("endpoint" = Option<String>, Query, description = "Only this endpoint's"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's"),
        ("event_type" = Option<String>, Query, description = "Only this event type's"),
        ("event_id" = Option<String>, Query, description = "Only this event's"),
        ("before" = Option<u64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 50)"),
    ),
    responses((status = 200, body = LetterList), (status = 400, body = Problem)))]
async fn list_dead_letters(
    Shared(state): Shared<State>,
    RawQuery(query): RawQuery,
) -> Result<Json<LetterList>, Problem> {
    let p = Params::of(query);
    let query = DeadLetterQuery {
        endpoint: p.text("endpoint"),
        tenant: p.text("tenant"),
        event_type: p.text("event_type"),
        event_id: p.text("event_id"),
        before: p.number("before")?,
        limit: p.limit()?,
    };
    let sink = state.sink.clone();
    blocking(move || {
        let page = sink.dead_letters().list(&query)?;
        let items = page
            .items
            .into_iter()
            .map(|stored| {
                Ok(LetterView {
                    key: stored.key,
                    position: stored.position,
                    letter: serde_json::to_value(&stored.letter)
                        .map_err(|e| Problem::internal(format!("a dead letter: {e}")))?,
                })
            })
            .collect::<Result<_, Problem>>()?;
        Ok(Json(LetterList {
            items,
            next: page.next,
        }))
    })
    .await
}

/// Which dead letters to replay or delete.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterSelection {
    /// The letters' keys.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Every letter of this endpoint (replay only).
    pub endpoint: Option<String>,
}

/// What a replay did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayedView {
    /// Letters queued again.
    pub replayed: usize,
    /// Letters that could not be, and why (they stay).
    pub failed: Vec<ReplayFailure>,
}

/// A letter that could not be replayed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayFailure {
    /// Its key.
    pub key: String,
    /// Why.
    pub reason: String,
}

#[utoipa::path(post, path = "/dead-letters/replay", tag = "dead letters",
    request_body = LetterSelection,
    responses((status = 200, body = ReplayedView), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
async fn replay_dead_letters(
    Shared(state): Shared<State>,
    body: Bytes,
) -> Result<Json<ReplayedView>, Problem> {
    let selection: LetterSelection = read(body_json(&body)?)?;
    let sink = state.sink.clone();
    blocking(move || {
        let letters = sink.dead_letters();
        let replayed = match (&selection.endpoint, selection.keys.is_empty()) {
            (Some(endpoint), true) => letters.replay_endpoint(endpoint)?,
            (None, false) => letters.replay(&selection.keys)?,
            _ => {
                return Err(Problem::field(
                    "keys",
                    "give either keys (the letters to replay) or endpoint (all of its letters)",
                ));
            }
        };
        Ok(Json(ReplayedView {
            replayed: replayed.replayed,
            failed: replayed
                .failed
                .into_iter()
                .map(|(key, reason)| ReplayFailure { key, reason })
                .collect(),
        }))
    })
    .await
}

/// How many letters were deleted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedView {
    /// Letters deleted (keys that named none are not counted).
    pub deleted: usize,
}

#[utoipa::path(post, path = "/dead-letters/delete", tag = "dead letters",
    request_body = LetterSelection,
    responses((status = 200, body = DeletedView), (status = 400, body = Problem)))]
async fn delete_dead_letters(
    Shared(state): Shared<State>,
    body: Bytes,
) -> Result<Json<DeletedView>, Problem> {
    let selection: LetterSelection = read(body_json(&body)?)?;
    if selection.keys.is_empty() || selection.endpoint.is_some() {
        return Err(Problem::field(
            "keys",
            "give the keys of the letters to delete (and no endpoint)",
        ));
    }
    let sink = state.sink.clone();
    blocking(move || {
        Ok(Json(DeletedView {
            deleted: sink.dead_letters().delete(&selection.keys)?,
        }))
    })
    .await
}

/// Totals over every endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsTotals {
    /// Endpoints registered.
    pub endpoints: usize,
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
    /// Events dropped.
    pub dropped: u64,
    /// Events put in the dead letters.
    pub dead_lettered: u64,
    /// Times an event waited for a rate-limit token.
    pub rate_limited: u64,
    /// Endpoints by state.
    pub states: std::collections::BTreeMap<String, usize>,
}

#[utoipa::path(get, path = "/stats", tag = "stats",
    responses((status = 200, body = StatsTotals)))]
async fn stats(Shared(state): Shared<State>) -> Json<StatsTotals> {
    let t = state.sink.totals();
    let mut states = std::collections::BTreeMap::new();
    for s in ["active", "paused", "disabled", "breaker_open"] {
        let n = state
            .sink
            .endpoints()
            .page(&EndpointQuery {
                state: parse_state(s).ok(),
                limit: 1,
                ..EndpointQuery::new()
            })
            .remaining;
        states.insert(s.to_owned(), n);
    }
    Json(StatsTotals {
        endpoints: t.endpoints,
        queued: t.queued,
        in_flight: t.in_flight,
        delivered: t.delivered,
        failed: t.failed,
        retried: t.retried,
        dropped: t.dropped,
        dead_lettered: t.dead_lettered,
        rate_limited: t.rate_limited,
        states,
    })
}

async fn openapi(base: Base) -> Response {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(base.at("/api/v1"))]);
    Json(doc).into_response()
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such API path; the document at /api/v1/openapi.json lists them",
    )
}
