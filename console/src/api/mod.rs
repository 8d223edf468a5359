//! The admin API under `/api/v1`: the console's powers as JSON, described by the OpenAPI
//! document at `/api/v1/openapi.json` (generated from these handlers and types).
//!
//! | | |
//! |---|---|
//! | `GET /endpoints?search=&tenant=&state=&after=&limit=` | a page of endpoints, by name (cursor `after`) |
//! | `POST /endpoints` | create one: the JSON of a `[[endpoint]]` table of `deskhook.toml` |
//! | `GET /endpoints/{name}` | its settings (secrets by their last 4 characters), state, counters |
//! | `PUT /endpoints/{name}` | replace its settings: send the GET's `settings` back with the change; a field left out takes its default, but absent `secrets` and `headers` keep the current ones (the headers only while the URL stays the same: with another, give them again, else 400), and so do the fields whose default would widen what it receives or reaches: absent `actions` (`"actions": null` subscribes it to every event type), `tenant` (`"tenant": null` takes it away), `allow_private` and `allow_cidrs`; and `ca_file` and `template_file` (with its `template_content_type`: see below); with `If-Match` (the `ETag` of a GET), only if unchanged since (else 412); 409 when another change came while this one was checked (send it again), or for an endpoint registered by the application's code (change it there) |
//! | `PATCH /endpoints/{name}` | change only the settings the body names (`{"timeout": "5s"}`), as a JSON merge patch (RFC 7396) of the GET's `settings`, saved as a PUT of the result would be; `null` takes a setting away; `If-Match` as for PUT |
//! | `DELETE /endpoints/{name}` | remove it; its queue goes to the dead letters |
//! | `POST /endpoints/{name}/pause`, `/resume`, `/test` | pause, resume, send a test event |
//! | `POST /endpoints/{name}/rotate-secret` | `{"secret": "whsec_…", "overlap": "24h"}` |
//! | `GET /endpoints/{name}/activity` | deliveries and failures per minute, last hour |
//! | `GET /attempts?endpoint=&tenant=&event_id=&ticket=&status=&since=&until=&before=&limit=` | the attempt log, newest first |
//! | `GET /dead-letters?endpoint=&tenant=&event_type=&event_id=&ticket=&before=&limit=` | dead letters, newest first |
//! | `POST /dead-letters/replay` | `{"keys": […]}`, or a filter: every letter matching all of `endpoint`, `tenant`, `event_type`, `event_id`, `ticket` given (`{"tenant": "acme"}`) |
//! | `POST /dead-letters/delete` | `{"keys": […]}` |
//! | `GET /stats` | totals over every endpoint |
//!
//! A list refuses a query parameter it does not take (400, with a "did you mean"): a
//! misspelt filter would otherwise show everything, or nothing. Requests that change
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

use endpoints::*;
pub use endpoints::{
    EndpointList, EndpointView, LastAttempt, MinuteView, RemovedView, Rotation, StatsView, TestSent,
};
use log::*;
pub use log::{
    AttemptList, AttemptView, DeletedView, LetterList, LetterSelection, LetterView, ReplayFailure,
    ReplayedView, StatsTotals,
};
use patch::*;

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
        .layer(axum::middleware::map_response(problem_bodies))
        .layer(axum::middleware::map_response(not_kept))
}

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
    let detail = if detail.is_empty() {
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
             their current values (`null` takes `actions` or `tenant` away)."
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
        Ok(Params(
            fields.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        ))
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

/// An endpoint's settings read from a request (the fields of a `[[endpoint]]` table), with
/// every problem found so far. Each field that did not read is set aside and the others
/// read without it (`name` and `url` stand in), so that one request is told all it must
/// fix: the settings it holds are for finding the other problems, and are given back by
/// [`SpecReading::finish`] only when there is none.
#[derive(Debug)]
pub(crate) struct SpecReading {
    /// The settings that read.
    pub(crate) spec: EndpointSpec,
    problems: Vec<Problem>,
    /// The fields set aside.
    set_aside: Vec<String>,
    /// Whether the settings may be checked (not when they name a file of the server's or
    /// a variable of its environment that the request may not set: the check would read it).
    checkable: bool,
}

/// Stand-ins for the fields every endpoint has, while other fields are read.
const STAND_INS: [(&str, &str); 2] = [("name", "(unnamed)"), ("url", "https://endpoint.invalid/")];

/// The most fields of a request set aside: past them it is no endpoint's JSON (each read
/// again costs a reading of the whole request).
const MAX_SET_ASIDE: usize = 32;

/// Reads an endpoint's JSON, finding every field that does not read (a value of the wrong
/// type, a duration or an event type that is not one, an unknown field).
///
/// # Errors
///
/// A [`Problem`] when it is no endpoint's JSON at all (not an object).
pub(crate) fn read_spec(mut value: Value) -> Result<SpecReading, Problem> {
    let mut problems = Vec::new();
    let mut set_aside = Vec::new();
    // What a GET shows beside the settings, derived from the secrets: the settings read
    // back and sent again are taken as they are.
    if let Value::Object(map) = &mut value {
        map.remove("secret_hints");
        if let Some(secrets) = map.get("secrets")
            && let Err(problem) = check_secrets(secrets)
        {
            map.remove("secrets");
            set_aside.push("secrets".to_owned());
            problems.push(problem);
        }
    }
    loop {
        let problem = match read::<EndpointSpec>(&value) {
            Ok(spec) => {
                return Ok(SpecReading {
                    spec,
                    problems,
                    set_aside,
                    checkable: true,
                });
            }
            Err(problem) => problem,
        };
        let map = match (&problem.field, &mut value) {
            (Some(field), Value::Object(map))
                if !set_aside.contains(field) && set_aside.len() < MAX_SET_ASIDE =>
            {
                map
            }
            // Not a field's problem, or one a stand-in did not cure.
            _ => {
                problems.push(problem);
                return Err(Problem::several(problems).unwrap_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "the endpoint's settings do not read",
                    )
                }));
            }
        };
        let field = problem.field.clone().unwrap_or_default();
        map.remove(&field);
        if let Some((_, stand_in)) = STAND_INS.iter().find(|(name, _)| **name == field) {
            map.insert(field.clone(), Value::from(*stand_in));
        }
        set_aside.push(field);
        problems.push(problem);
    }
}

impl SpecReading {
    /// Adds the problem of a field left out of the JSON (a form's field that did not read).
    pub(crate) fn problem(&mut self, problem: Problem) {
        if let Some(field) = &problem.field {
            self.set_aside.push(field.clone());
        }
        self.problems.push(problem);
    }

    /// Adds the refusal, if any, of settings naming a file of the server's or a variable of
    /// its environment (see [`refuse_server_settings`]).
    pub(crate) fn refuse_server_settings(&mut self, current: Option<&EndpointSpec>) {
        if let Err(problem) = refuse_server_settings(&self.spec, current) {
            self.checkable = false;
            self.problems.push(problem);
        }
    }

    /// Adds the refusal, if any, of settings opening the endpoint to the server's networks
    /// (see [`refuse_private_networks`]), but one of a field set aside (its stand-in's).
    pub(crate) fn refuse_private_networks(&mut self, read: Option<&EndpointInfo>, allowed: bool) {
        if let Err(problem) = refuse_private_networks(&self.spec, read, allowed)
            && problem
                .field
                .as_ref()
                .is_none_or(|field| !self.set_aside.contains(field))
        {
            self.problems.push(problem);
        }
    }

    /// The settings, if nothing was found wrong: their own checks are then the save's
    /// ([`Endpoints::add_spec`](deskhook_transports::delivery::Endpoints::add_spec) and the
    /// updates refuse with every setting at fault, see [`Problem::several`]).
    ///
    /// # Errors
    ///
    /// One [`Problem`] listing every problem found.
    pub(crate) fn finish(self) -> Result<EndpointSpec, Problem> {
        match Problem::several(self.problems) {
            Some(problem) => Err(problem),
            None => Ok(self.spec),
        }
    }

    /// [`finish`](SpecReading::finish) for a new endpoint: when something was found wrong,
    /// the settings that read are checked as well
    /// ([`EndpointSpec::problems_besides`] those at fault), so that their problems are told
    /// at once too. (An update's settings are whole only once the save adds what it keeps:
    /// secrets, the URL shown cut, hidden values.)
    pub(crate) fn finish_new(mut self) -> Result<EndpointSpec, Problem> {
        if self.checkable && !self.problems.is_empty() {
            let known: Vec<&str> = self
                .set_aside
                .iter()
                .map(String::as_str)
                .chain(self.problems.iter().filter_map(|p| p.field.as_deref()))
                .collect();
            let found: Vec<Problem> = self
                .spec
                .problems_besides(&known)
                .into_iter()
                .map(Problem::from)
                .collect();
            self.problems.extend(found);
        }
        self.finish()
    }
}

/// Says what is wrong with a secret of `secrets` (a list of keys, or of `{"secret": …}`
/// tables) in [`deskhook::Secret::parse`]'s words, which never repeat the key: its prefix,
/// its length. The rest (a value of the wrong type) is left to [`read`], which hides it.
fn check_secrets(secrets: &Value) -> Result<(), Problem> {
    let Value::Array(items) = secrets else {
        return Ok(());
    };
    for (at, item) in items.iter().enumerate() {
        let text = match item {
            Value::String(text) => text,
            Value::Object(table) => match table.get("secret") {
                Some(Value::String(text)) => text,
                _ => continue,
            },
            _ => continue,
        };
        if let Err(e) = deskhook::Secret::parse(text) {
            let which = if items.len() > 1 {
                format!(" (number {} of {})", at + 1, items.len())
            } else {
                String::new()
            };
            return Err(Problem::field("secrets", format!("secrets{which}: {e}")));
        }
    }
    Ok(())
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

/// Keeps the settings of `current` that name something of the server's own (see
/// [`refuse_server_settings`]) when an update `spec` leaves them out: no request could set
/// them again. The template file stays while `spec` gives no template of its own, with its
/// content type unless `spec` gives one.
pub(crate) fn keep_server_settings(spec: &mut EndpointSpec, current: &EndpointSpec) {
    if spec.ca_file.is_none() {
        spec.ca_file.clone_from(&current.ca_file);
    }
    if spec.template.is_none() && spec.template_file.is_none() && current.template_file.is_some() {
        spec.template_file.clone_from(&current.template_file);
        if spec.template_content_type.is_none() {
            spec.template_content_type
                .clone_from(&current.template_content_type);
        }
    }
}

/// Refuses the settings of `spec` that name something of the server's own (see the module's
/// docs) unless `current` (the endpoint's settings, for an update) has them the same.
pub(crate) fn refuse_server_settings(
    spec: &EndpointSpec,
    current: Option<&EndpointSpec>,
) -> Result<(), Problem> {
    let named = |spec: &EndpointSpec| {
        [
            (
                "ca_file",
                spec.ca_file.as_ref().map(|p| p.display().to_string()),
            ),
            (
                "template_file",
                spec.template_file.as_ref().map(|p| p.display().to_string()),
            ),
            ("secret_env", spec.secret_env.clone()),
        ]
    };
    let now = current.map(named);
    for (at, (field, value)) in named(spec).into_iter().enumerate() {
        let Some(value) = value else { continue };
        if now
            .as_ref()
            .is_some_and(|now| now[at].1.as_deref() == Some(value.as_str()))
        {
            continue;
        }
        let (what, instead) = match field {
            "secret_env" => (
                "a variable of the server's environment",
                "give the secrets themselves in `secrets`",
            ),
            "template_file" => (
                "a file on the server",
                "send the template's text as `template`",
            ),
            _ => (
                "a file on the server",
                "set it in deskhook.toml or in the application's code",
            ),
        };
        return Err(Problem::field(
            field,
            format!(
                "{field} names {what}, which a request to the API cannot set (it would have the \
                 server read it for whoever calls the API): {instead}, or leave {field} out"
            ),
        ));
    }
    Ok(())
}

/// Refuses the settings of `spec` that open it to the server's own networks beyond what
/// `current` (the endpoint's settings, for an update) allows, unless the console may set
/// them (see [`Console::allow_private_networks`](crate::Console::allow_private_networks)):
/// `allow_private` turned on, a CIDR that is not inside one the endpoint has, or a new URL
/// for an endpoint that keeps either (it would point the allowance, given for one receiver,
/// at any service of those networks). Turning them off, or narrowing a CIDR, is a change any
/// request may make.
pub(crate) fn refuse_private_networks(
    spec: &EndpointSpec,
    read: Option<&EndpointInfo>,
    allowed: bool,
) -> Result<(), Problem> {
    if allowed {
        return Ok(());
    }
    let current = read
        .and_then(|info| info.spec.as_ref())
        .map(|saved| &saved.spec);
    let had_private = current.is_some_and(|c| c.allow_private);
    let own: Vec<ipnet::IpNet> = current
        .map(|c| {
            c.allow_cidrs
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let inside = |cidr: &String| {
        current.is_some_and(|c| c.allow_cidrs.contains(cidr))
            || cidr
                .parse::<ipnet::IpNet>()
                .is_ok_and(|net| own.iter().any(|o| o.contains(&net)))
    };
    let (field, what) = if spec.allow_private && !had_private {
        ("allow_private", "allow_private = true".to_owned())
    } else if let Some(cidr) = spec.allow_cidrs.iter().find(|cidr| !inside(cidr)) {
        ("allow_cidrs", format!("allow_cidrs {cidr}"))
    } else if let Some(read) = read
        && (spec.allow_private || !spec.allow_cidrs.is_empty())
        // Settings replaced since they were read: the save on them says so (409, 412).
        && read.keeps_url(&spec.url) == Some(false)
    {
        return Err(Problem::field(
            "url",
            "the endpoint keeps allow_private or allow_cidrs from deskhook.toml or the \
             application's code, given for the receiver at its URL, and this console cannot \
             point them at another (whoever has it could reach any service of the server's \
             networks): change the URL where they are set, or turn both off in the same \
             request, or start the console with allow_private_networks (deskhook serve \
             --console-allow-private)",
        ));
    } else {
        return Ok(());
    };
    Err(Problem::field(
        field,
        format!(
            "{what} would open the endpoint to the server's own networks, which this console \
             cannot do (whoever has it could reach a service only the server reaches): set it \
             in deskhook.toml or the application's code, or start the console with \
             allow_private_networks (deskhook serve --console-allow-private)"
        ),
    ))
}

/// Reads `value` as a `T`, naming the field at fault when it cannot.
fn read<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner =
            deskhook_transports::config::hint_unknown_field(&error.into_inner().to_string());
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
