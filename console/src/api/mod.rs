//! The admin API under `/api/v1`: the console's powers as JSON, described by the OpenAPI
//! document at `/api/v1/openapi.json` (generated from these handlers and types).
//!
//! | | |
//! |---|---|
//! | `GET /endpoints?search=&tenant=&state=&after=&limit=` | a page of endpoints, by name (cursor `after`) |
//! | `POST /endpoints` | create one: the JSON of a `[[endpoint]]` table of `deskhook.toml` |
//! | `GET /endpoints/{name}` | its settings (secrets by their last 4 characters), state, counters |
//! | `PUT /endpoints/{name}` | replace its settings: send the GET's `settings` back with the change; a field left out takes its default, but absent `secrets` and `headers` keep the current ones (the headers only while the URL stays the same: with another, give them again, else 400; `null` takes them away), and so do the fields whose default would widen what it receives or reaches: absent `actions` (`"actions": null` subscribes it to every event type), `tenant` (`"tenant": null` takes it away), `allow_private` and `allow_cidrs`; and `ca_file` and `template_file` (with its `template_content_type`: see below); with `If-Match` (the `ETag` of a GET or of the last change's answer; a list of them, compared strongly as RFC 9110 says, or `*`), only if unchanged since (else 412, also for an endpoint that does not exist); the answer has the new `ETag`; 409 when another change came while this one was checked (send it again), or for an endpoint registered by the application's code (change it there) |
//! | `PATCH /endpoints/{name}` | change only the settings the body names (`{"timeout": "5s"}`), as a JSON merge patch (RFC 7396) of the GET's `settings`, saved as a PUT of the result would be; `null` takes a setting away (but `ca_file`, `template_file` and `secret_env`, which no request could set again: a `template` replaces `template_file`, and `secrets` with `"secret_env": null` replace the variable); `If-Match` as for PUT |
//! | `DELETE /endpoints/{name}` | remove it; its queue goes to the dead letters; with `If-Match`, only if unchanged since (else 412, nothing done) |
//! | `POST /endpoints/{name}/pause`, `/resume`, `/test` | pause, resume (`If-Match` as for DELETE, but checked just before the action rather than with it: a change saved in between is not seen), send a test event |
//! | `POST /endpoints/{name}/rotate-secret` | `{"secret": "whsec_…", "overlap": "24h"}`; `If-Match` as for a pause; the answer has the new `ETag` |
//! | `GET /endpoints/{name}/activity` | deliveries and failures per minute, last hour |
//! | `GET /attempts?endpoint=&tenant=&event_id=&ticket=&status=&since=&until=&before=&limit=` | the attempt log, newest first |
//! | `GET /dead-letters?endpoint=&tenant=&event_type=&event_id=&ticket=&before=&limit=` | dead letters, newest first |
//! | `POST /dead-letters/replay` | `{"keys": […]}`, or a filter: every letter matching all of `endpoint`, `tenant`, `event_type`, `event_id`, `ticket` given (`{"tenant": "acme"}`) |
//! | `POST /dead-letters/delete` | `{"keys": […]}` |
//! | `GET /stats` | totals over every endpoint |
//!
//! A list refuses a query parameter it does not take (400, with a "did you mean"), one given
//! twice, and a `since` not before its `until`: a misspelt filter would otherwise show
//! everything, or nothing, without a word. Requests that change
//! something send `Content-Type: application/json` (`application/merge-patch+json` too, for
//! a PATCH) or a bearer token: see the crate's security notes. An endpoint's `url` is shown cut to its origin
//! (`https://hooks.slack.com/…`); sent back as it is in an update, it keeps the endpoint's
//! URL. Header values, and template variables other than `chat_id` and `lang`, are shown
//! as `…` (they may be credentials); sent back so, each keeps its value while the URL
//! stays the same (and a variable, while the template stays the same). The settings that name something of the server's own, `ca_file` and
//! `template_file` (files it reads) and `secret_env` (a variable of its environment), are
//! refused when a request sets or changes them: whoever can call the API could otherwise have
//! the server read any file it can and send it to a URL of theirs. They belong to
//! `deskhook.toml` or the application's code; the API takes the template's text
//! (`template`) and the secrets themselves (`secrets`), and an update may send those settings
//! back as they are. So are `allow_private` turned on and a CIDR added to `allow_cidrs`,
//! which open the endpoint to the server's own networks, unless the console is built with
//! [`Console::allow_private_networks`](crate::Console::allow_private_networks) (`deskhook
//! serve --console-allow-private`). A GET's `settings` may be sent back whole: its
//! `secret_hints` are ignored. Errors are
//! [`Problem`] documents naming the field at fault:
//!
//! ```text
//! POST /api/v1/endpoints  {"name": "crm", "url": "ftp://crm.example.com"}
//! 400 {"type":"about:blank","title":"Bad Request","status":400,
//!      "detail":"endpoint 'crm': …","field":"url"}
//! ```
//!
//! Endpoint settings are refused with every field at fault at once: `detail` and `field`
//! are the first's, and `errors` lists them all (`[{"field": "timeout", "detail": …}, …]`).
//! A setting whose check depends on a field at fault is left for the next request
//! (`rate_burst` while `rate_limit` does not read). An update's settings are checked
//! whole by its save, once it has what the update keeps: fields that do not read are told
//! first.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deskhook::Secret;
use deskhook_transports::delivery::{EndpointInfo, EndpointSpec, EndpointState, RedactedSpec};
use serde_json::Value;
use utoipa::OpenApi;

use crate::guard::Base;
use crate::{FieldProblem, Problem, State};

mod endpoints;
mod log;
mod patch;
mod settings;

use endpoints::*;
pub use endpoints::{
    EndpointList, EndpointView, LastAttempt, MinuteView, RemovedView, Rotation, StatsView, TestSent,
};
use log::*;
pub use log::{
    AttemptList, AttemptView, DeletedView, LetterList, LetterSelection, LetterView, ReplayFailure,
    ReplayedView, StatsTotals,
};
pub(crate) use log::{MAX_KEYS, within_key_limit};
use patch::*;
pub(crate) use settings::{SpecReading, keep_server_settings, read_spec};

/// The API's routes (nested at `/api/v1`).
pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/endpoints/{name}",
            get(get_endpoint)
                .put(update_endpoint)
                .patch(patch_endpoint)
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
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(problem_bodies))
        .layer(axum::middleware::map_response(not_kept))
}

/// The longest request body the API reads: far more than an endpoint's settings with its
/// CA certificates and a payload template, or a thousand dead letters' keys.
pub const MAX_BODY: usize = 1 << 20;

/// Answers are not kept by caches (they show the settings of endpoints, and a browser's
/// cache would keep what a cookie's session read) nor sniffed as another type.
async fn not_kept(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Errors that axum answers in plain text (a path that is not UTF-8, a body over the limit,
/// a method the route does not take) as problem documents, like every other error of the
/// API; their `Allow`, `Retry-After` and `WWW-Authenticate` headers stay. For
/// `axum::middleware::map_response` on routes of one's own (`deskhook serve`'s
/// `/v1/events`).
pub async fn problem_bodies(response: axum::response::Response) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse as _;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    // axum's own (the API's body limit), not a 413 of a route of one's own.
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE
        && detail.contains("length limit exceeded")
    {
        format!(
            "the request body is over {MAX_BODY} bytes, the most the API reads: send less (fewer \
             dead letters' keys at a time)"
        )
    } else if detail.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        detail
    };
    let mut problem = Problem::new(status, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
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
        patch_endpoint,
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
    components(schemas(Problem, FieldProblem, EndpointSpec, RedactedSpec)),
    modifiers(&Guarded, &UpdateBody)
)]
pub struct ApiDoc;

/// What the console's guard adds to every operation (see the crate's security notes): the
/// bearer token, needed when the console has one, and the answers of the guard itself.
struct Guarded;

impl utoipa::Modify for Guarded {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                utoipa::openapi::security::SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "The console's token (`deskhook serve`'s `DESKHOOK_TOKEN`, \
                         `Console::require_token`): needed only when the console has one.",
                        ))
                        .build(),
                ),
            );
        // Either: no token (a console without one), or the bearer token.
        doc.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        let every = [(
            "401",
            "The console has a token, and the request has neither it (`Authorization: \
             Bearer <token>`) nor a login session.",
        )];
        let changes = [
            (
                "403",
                "The browser says the request comes from another site.",
            ),
            (
                "415",
                "A request that changes something without `Content-Type: application/json` \
                 (or `application/merge-patch+json`) or a bearer token.",
            ),
        ];
        for item in doc.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (operation, changing) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                // Every error answer is a problem document (the operations' own say
                // `application/json`, `#[utoipa::path]`'s default).
                for (status, answer) in &mut operation.responses.responses {
                    if let (Some(b'4' | b'5'), utoipa::openapi::RefOr::T(answer)) =
                        (status.as_bytes().first(), answer)
                        && let Some(content) = answer.content.shift_remove("application/json")
                    {
                        answer
                            .content
                            .insert("application/problem+json".to_owned(), content);
                    }
                }
                let answers = every.iter().chain(changes.iter().filter(|_| changing));
                for (status, description) in answers {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

/// The body of `PUT /endpoints/{name}`: an `EndpointSpec` whose `name` may be left out (the
/// path gives it; another name is refused), as `EndpointUpdate`.
struct UpdateBody;

impl utoipa::Modify for UpdateBody {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::request_body::RequestBodyBuilder;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Schema};
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(spec))) = components.schemas.get("EndpointSpec") else {
            return;
        };
        let mut update = spec.clone();
        update.required.retain(|field| field != "name");
        update.description = Some(
            "An endpoint's settings for a PUT: those of EndpointSpec, `name` left out or the \
             path's (another name is refused: create the endpoint anew to rename it). They \
             replace the current ones: a field left out takes its default, but for `secrets`, \
             `headers`, `actions`, `tenant`, `allow_private` and `allow_cidrs`, which keep \
             their current values (`null` takes `secrets`, `headers`, `actions` or `tenant` away)."
                .to_owned(),
        );
        components.schemas.insert(
            "EndpointUpdate".to_owned(),
            RefOr::T(Schema::Object(update)),
        );
        if let Some(put) = doc
            .paths
            .paths
            .get_mut("/endpoints/{name}")
            .and_then(|item| item.put.as_mut())
        {
            put.request_body = Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("EndpointUpdate")))
                            .build(),
                    )
                    .required(Some(Required::True))
                    .build(),
            );
        }
    }
}

/// A state from its API name.
pub(crate) fn parse_state(text: &str) -> Result<EndpointState, Problem> {
    EndpointState::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = EndpointState::ALL.iter().map(|s| s.name()).collect();
        Problem::field(
            "state",
            format!("state '{text}' is not one of {}", names.join(", ")),
        )
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

/// A query string's fields, read one by one so that a bad one is named.
struct Params(Vec<(String, String)>);

impl Params {
    /// The fields of `query`, which may be those of `known` only: a misspelt filter would
    /// otherwise be ignored, and the list show everything (or nothing) without a word.
    fn of(query: Option<String>, known: &[&str]) -> Result<Params, Problem> {
        let fields: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        if let Some((unknown, _)) = fields.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            let hint = known
                .iter()
                .map(|k| (strsim::levenshtein(unknown, k), *k))
                .filter(|(distance, _)| *distance <= 2)
                .min()
                .map(|(_, k)| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            return Err(Problem::field(
                unknown.clone(),
                format!(
                    "unknown query parameter '{unknown}'{hint}; this list takes {}",
                    known.join(", ")
                ),
            ));
        }
        // Each filter takes one value: of two, one would be ignored without a word.
        if let Some((twice, _)) = (fields.iter().enumerate())
            .find(|(at, (k, _))| fields[..*at].iter().any(|(earlier, _)| earlier == k))
            .map(|(_, field)| field)
        {
            return Err(Problem::field(
                twice.clone(),
                format!(
                    "query parameter '{twice}' is given more than once; give it once (each \
                     filter takes one value)"
                ),
            ));
        }
        Ok(Params(
            fields.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        ))
    }

    /// The times `since` and `until`, refused when they leave no time between them.
    fn window(&self) -> Result<(Option<SystemTime>, Option<SystemTime>), Problem> {
        let (since, until) = (self.time("since")?, self.time("until")?);
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(Problem::field(
                "until",
                format!(
                    "until ({}) is not after since ({}): no time is between them; give an \
                     until later than since",
                    rfc3339(until),
                    rfc3339(since)
                ),
            ));
        }
        Ok((since, until))
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

/// The version of an endpoint's settings: a hash of their JSON as the console and the API
/// show them (secrets by their hints) and of the digest of those they do not show (header
/// values, secrets, the URL past its origin: see
/// [`EndpointInfo::settings_digest`](deskhook_transports::delivery::EndpointInfo::settings_digest)).
/// An edit made from an older version is refused (the form's hidden field, the API's
/// `If-Match` against the `ETag` of a GET), so that two operators do not undo each other's
/// change unseen.
pub(crate) fn version_of(info: &EndpointInfo) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&info.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    info.secret_hints.hash(&mut hasher);
    info.headers.hash(&mut hasher);
    info.settings_digest().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The refusal of an edit of an endpoint the application's code registered (its settings
/// are the code's, with what the spec format cannot say: CA roots, a template, a tenant):
/// the console and the API may pause, resume, test and delete it.
pub(crate) fn registered_in_code(name: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        format!(
            "endpoint '{name}' was registered by the application's code, not from settings: \
             change it there (here it can be paused, resumed, tested and deleted)"
        ),
    )
}

/// Reads `value` as a `T`, naming the field at fault when it cannot.
fn read<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner =
            deskhook_transports::config::hint_unknown_field(&error.into_inner().to_string());
        // The setting at fault: the first step of the path; at the top, an unknown or a
        // missing field is an error of the settings themselves: name the field.
        let top = path
            .split(['.', '['])
            .next()
            .filter(|p| !p.is_empty() && *p != "?")
            .map(str::to_owned);
        let nested = top.is_some();
        let field = top
            .or_else(|| {
                ["unknown field `", "missing field `"]
                    .iter()
                    .find_map(|prefix| inner.strip_prefix(prefix))
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        if field.is_empty() {
            Problem::new(StatusCode::BAD_REQUEST, inner)
        } else if EndpointSpec::CREDENTIAL_FIELDS.contains(&field.as_str()) {
            // serde quotes a value of the wrong type: say what was expected, not what came.
            let expected = inner
                .rsplit_once(", expected ")
                .map(|(_, expected)| format!(": expected {expected}"))
                .unwrap_or_default();
            Problem::field(
                field.clone(),
                format!(
                    "{field}: not a valid value (not repeated here: it may be a \
                     credential){expected}"
                ),
            )
        } else {
            // Inside a setting, where in it (`template_vars.lang`).
            let at = if nested { &path } else { &field };
            Problem::field(field.clone(), format!("{at}: {inner}"))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The problem of reading `settings` (a valid endpoint's name and URL, and more).
    fn problem(more: Value) -> Problem {
        let mut settings = json!({"name": "crm", "url": "https://crm.example.com/hook"});
        if let (Value::Object(settings), Value::Object(more)) = (&mut settings, more) {
            settings.extend(more);
        }
        read::<EndpointSpec>(&settings).expect_err("the settings do not read")
    }

    #[test]
    fn a_field_at_fault_inside_a_setting_names_the_setting() {
        // At the top, the unknown field itself.
        let top = problem(json!({"retires": 3}));
        assert_eq!(top.field.as_deref(), Some("retires"), "{top:?}");
        // Inside a setting, the setting (the secrets': a credential, not repeated).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let inside = problem(json!({"secrets": [{"secret": secret, "expiry": "2030-01-01"}]}));
        assert_eq!(inside.field.as_deref(), Some("secrets"), "{inside:?}");
        assert!(!inside.detail.contains(secret), "{inside:?}");
        let missing = problem(json!({"secrets": [{"expires": "2030-01-01T00:00:00Z"}]}));
        assert_eq!(missing.field.as_deref(), Some("secrets"), "{missing:?}");
        // Where in it, when it is not a credential.
        let wrong = problem(json!({"actions": ["create", 3]}));
        assert_eq!(wrong.field.as_deref(), Some("actions"), "{wrong:?}");
        assert!(wrong.detail.starts_with("actions[1]: "), "{wrong:?}");
    }
}
