//! What stands in front of the handlers: the token (when the console asks for one), the
//! refusal of cross-site requests that change state, and the forms' CSRF token.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::Problem;
use crate::pages::{self, Form};

/// The cookie of the forms' CSRF token.
const CSRF_COOKIE: &str = "deskhook_csrf";
/// The cookie of a session opened at `/login`.
const SESSION_COOKIE: &str = "deskhook_session";
/// Sessions kept at most (the oldest are forgotten first).
const MAX_SESSIONS: usize = 10_000;
/// A session unused this long ends.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after its login, used or not (the cookie's Max-Age too).
const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The path the console is mounted at (`""` at the root, `/admin/webhooks` nested there), so
/// that its links and redirects work wherever the helpdesk nests it; and, for a person who
/// logged in at `/login`, the CSRF token of the page's "Log out" form.
#[derive(Clone, Debug)]
pub(crate) struct Base(pub(crate) String, pub(crate) Option<String>);

impl Base {
    /// Where the console is mounted, from a request to it as the console's router sees it.
    fn of(uri: &axum::http::Uri, extensions: &axum::http::Extensions) -> Base {
        let inner = uri.path();
        let outer = extensions
            .get::<OriginalUri>()
            .map_or(inner, |original| original.0.path());
        let base = if inner == "/" {
            outer.trim_end_matches('/')
        } else {
            outer.strip_suffix(inner).unwrap_or("")
        };
        Base(base.to_owned(), None)
    }

    /// The console's `path` (which starts with `/`) as a link.
    pub(crate) fn at(&self, path: &str) -> String {
        // Nested, the console's root is the mount path itself (`/admin/hooks`, not
        // `/admin/hooks/`, which the helpdesk's router may not route).
        match path.strip_prefix('/') {
            Some(rest) if !self.0.is_empty() && (rest.is_empty() || rest.starts_with('?')) => {
                format!("{}{rest}", self.0)
            }
            _ => format!("{}{path}", self.0),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Base, Self::Rejection> {
        // Set by the console's outermost layer (inside a nested router the path is shorter).
        Ok(parts
            .extensions
            .get::<Base>()
            .cloned()
            .unwrap_or_else(|| Base::of(&parts.uri, &parts.extensions)))
    }
}

/// The CSRF token of this request's forms (from its cookie, or new).
#[derive(Clone, Debug)]
pub(crate) struct CsrfToken(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<CsrfToken, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .unwrap_or_else(|| CsrfToken(String::new())))
    }
}

/// Sessions opened at `/login`, newest last: (id, opened, last used).
#[derive(Default)]
struct Sessions(Mutex<VecDeque<(String, Instant, Instant)>>);

// Not derived: a session's id opens the console as the token does.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.0.lock().map_or(0, |sessions| sessions.len());
        f.debug_struct("Sessions").field("open", &open).finish()
    }
}

impl Sessions {
    fn open(&self) -> Result<String, Problem> {
        let id = random_token()?;
        let now = Instant::now();
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|(_, opened, used)| live(now, *opened, *used));
        if sessions.len() >= MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back((id.clone(), now, now));
        Ok(id)
    }

    /// Whether `id` is a live session; using it keeps it from going idle.
    fn knows(&self, id: &str) -> bool {
        // Not the shape of an id `open` makes: no session, and not compared with each of
        // them under the lock (a cookie of 400 KB against 10,000 sessions).
        if !token_shaped(id) {
            return false;
        }
        let now = Instant::now();
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.iter_mut().find(|(known, _, _)| same(known, id)) {
            Some((_, opened, used)) if live(now, *opened, *used) => {
                *used = now;
                true
            }
            _ => false,
        }
    }

    fn close(&self, id: &str) {
        if !token_shaped(id) {
            return;
        }
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|(known, _, _)| !same(known, id));
    }
}

/// Whether a session opened at `opened` and last used at `used` is still live at `now`.
fn live(now: Instant, opened: Instant, used: Instant) -> bool {
    now.duration_since(opened) < SESSION_LIFETIME && now.duration_since(used) < SESSION_IDLE
}

/// Longest body of `POST /login` (the form token, the token, and the page to go back to)
/// read: anyone can send it.
const MAX_LOGIN_FORM: usize = 16 * 1024;

/// What the token check needs.
struct Auth {
    token: String,
    sessions: Sessions,
}

// Not derived: the token is the console's key.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &"<set>")
            .field("sessions", &self.sessions)
            .finish()
    }
}

/// `inner` behind the guards: the names it answers for (if checked), the token (if any),
/// `/login` and `/logout`, the cross-site check and the CSRF cookie.
pub(crate) fn wrap(
    inner: Router,
    token: Option<String>,
    hosts: Option<crate::AllowedHosts>,
) -> Router {
    let guarded = guard_token(inner, token);
    match hosts {
        Some(hosts) => guarded.layer(middleware::from_fn_with_state(
            Arc::new(hosts),
            crate::hosts::only_ours,
        )),
        None => guarded,
    }
}

/// `inner` behind the token (if any), `/login` and `/logout`, the cross-site check and the
/// CSRF cookie.
fn guard_token(inner: Router, token: Option<String>) -> Router {
    let router = inner.layer(middleware::from_fn(same_site_only));
    match token {
        None => router.layer(middleware::from_fn(csrf_cookie)),
        Some(token) => {
            let auth = Arc::new(Auth {
                token,
                sessions: Sessions::default(),
            });
            let login = Router::new()
                .route("/login", get(login_page).post(log_in))
                .route("/logout", post(log_out))
                .with_state(auth.clone())
                .layer(middleware::from_fn(same_site_only))
                // Before the token is checked, a body is read up to a login form's size
                // only, not a page's form's (256 KiB) or axum's default (2 MB).
                .layer(axum::extract::DefaultBodyLimit::max(MAX_LOGIN_FORM))
                .layer(axum::Extension(pages::FormLimit(MAX_LOGIN_FORM)));
            router
                .layer(middleware::from_fn_with_state(auth, require_token))
                .merge(login)
                .layer(middleware::from_fn(csrf_cookie))
        }
    }
}

/// Refuses what a browser says comes from another site when it would change state, and API
/// calls that change state without a JSON body or a bearer token (a cross-site form can
/// send neither).
async fn same_site_only(request: Request, next: Next) -> Response {
    if matches!(request.method(), &Method::GET | &Method::HEAD) {
        return next.run(request).await;
    }
    let headers = request.headers();
    // A browser that says where a request comes from is believed: behind a TLS proxy that
    // rewrites Host (nginx's default), Origin never matches Host. Without it (an older
    // browser), Origin must name this host, as the client or a proxy sent it.
    // `same-site` is not enough: a sibling subdomain (a tenant's page) is same-site, gets the
    // SameSite cookies and can set a parent-domain CSRF cookie; it must show an Origin of
    // this host like any other request.
    // Over HTTPS (as the TLS proxy says), a page served over plain HTTP on the same host
    // is another origin: whoever can write into such traffic could post from it.
    let https = forwarded_https(headers);
    let foreign = |origin: &str| {
        let ours = |name: &str| {
            header_text(headers, name).is_some_and(|host| origin_host(origin) == Some(host))
        };
        origin == "null"
            || (https && !origin.starts_with("https://"))
            || !(ours(header::HOST.as_str()) || ours("x-forwarded-host"))
    };
    let origin = header_text(headers, header::ORIGIN.as_str());
    let cross_site = match header_text(headers, "sec-fetch-site") {
        Some("same-origin" | "none") => false,
        Some("cross-site") => true,
        // `same-site` (or a value to come) must show an Origin of this host.
        Some(_) => origin.is_none_or(foreign),
        // No word from the browser (an older one, a script): an Origin it sends must be ours.
        None => origin.is_some_and(foreign),
    };
    if cross_site {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "this request comes from another site; the console changes nothing for other sites",
        )
        .into_response();
    }
    let api = request.uri().path().starts_with("/api/");
    // A bearer token, not any Authorization (a browser adds Basic credentials by itself).
    let bearer = header_text(headers, header::AUTHORIZATION.as_str())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if api
        && !bearer
        && !header_text(headers, header::CONTENT_TYPE.as_str())
            // Neither is a type a form or a simple cross-site request can send.
            .is_some_and(|t| {
                t.starts_with("application/json") || t.starts_with("application/merge-patch+json")
            })
    {
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/json (with a JSON body, or {} when there is \
             none) or Authorization: Bearer <token> with requests that change something",
        )
        .into_response();
    }
    next.run(request).await
}

/// The host (and port) of an `Origin` header.
fn origin_host(origin: &str) -> Option<&str> {
    origin.split_once("://").map(|(_, host)| host)
}

/// `"; Secure"` for a cookie set in answer to a request that came over HTTPS (through the
/// TLS proxy `deskhook serve` asks for: `X-Forwarded-Proto`, or an `https` Origin), so that
/// it never travels in the clear, nor is replaced by one set over plain HTTP.
fn secure_if_https(headers: &HeaderMap) -> &'static str {
    let https = forwarded_https(headers)
        || header_text(headers, header::ORIGIN.as_str()).is_some_and(|o| o.starts_with("https://"));
    if https { "; Secure" } else { "" }
}

/// Makes sure the browser has a CSRF cookie, and gives the handlers its token.
///
/// The cookie is `SameSite=Lax`, not `Strict`: a link to the console followed from another
/// site (a mail, a chat) would come without a `Strict` one, and the new token set in answer
/// would fail the forms of every other open tab of the console. A cross-site POST comes
/// without a `Lax` cookie too, and [`same_site_only`] refuses it first.
async fn csrf_cookie(mut request: Request, next: Next) -> Response {
    let known = cookies(request.headers(), CSRF_COOKIE)
        .find(|t| token_shaped(t))
        .map(str::to_owned);
    let (token, fresh) = match known {
        Some(token) => (token, false),
        None => match random_token() {
            Ok(token) => (token, true),
            Err(problem) => return problem.into_response(),
        },
    };
    let base = Base::of(request.uri(), request.extensions());
    let path = if base.0.is_empty() {
        "/".to_owned()
    } else {
        base.0.clone()
    };
    let secure = secure_if_https(request.headers());
    request.extensions_mut().insert(CsrfToken(token.clone()));
    request.extensions_mut().insert(base);
    let mut response = next.run(request).await;
    if fresh
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={token}; Path={path}; HttpOnly; SameSite=Lax{secure}"
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether a form's CSRF field matches the cookie: one the console set (a token's shape),
/// whichever of the cookies of that name it is, so that one planted beside it (`x`, from a
/// sibling subdomain) neither blocks the forms nor passes for a forged field.
pub(crate) fn form_is_ours(headers: &HeaderMap, form: &Form) -> bool {
    let Some(field) = form.get("csrf") else {
        return false;
    };
    cookies(headers, CSRF_COOKIE).any(|cookie| token_shaped(cookie) && same(cookie, field))
}

/// Whether the browser says the request comes from a page of this origin
/// (`Sec-Fetch-Site: same-origin`): a refused form is then shown again with what was typed,
/// which a page of another site must not be able to have the console show.
pub(crate) fn from_this_origin(headers: &HeaderMap) -> bool {
    header_text(headers, "sec-fetch-site") == Some("same-origin")
}

/// Lets a request through with the token or a session; otherwise sends people to `/login`
/// and scripts a 401.
async fn require_token(
    axum::extract::State(auth): axum::extract::State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if crate::pages::ASSETS.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let bearer = check_bearer(headers, &auth.token) == Some(true);
    let session = cookies(headers, SESSION_COOKIE).any(|id| auth.sessions.knows(id));
    if session {
        // Pages then offer to log out.
        let csrf = request.extensions().get::<CsrfToken>().map(|t| t.0.clone());
        if let Some(base) = request.extensions_mut().get_mut::<Base>() {
            base.1 = csrf;
        }
    }
    if bearer || session {
        return next.run(request).await;
    }
    // A page's form posted once the session ended (a form filled in over a long pause): the
    // person goes to the login, and back to the page the form was on, not to a JSON
    // problem. What the form held is not saved.
    let form_post = request.method() == Method::POST
        && header_text(request.headers(), header::CONTENT_TYPE.as_str())
            .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    let base = request
        .extensions()
        .get::<Base>()
        .cloned()
        .unwrap_or_else(|| Base::of(request.uri(), request.extensions()));
    if form_post && !path.starts_with("/api/") {
        let back = header_text(request.headers(), header::REFERER.as_str())
            .and_then(|referer| referer.parse::<axum::http::Uri>().ok())
            .and_then(|uri| uri.path_and_query().map(|p| p.as_str().to_owned()))
            .filter(|path| local_path(path))
            .unwrap_or_else(|| base.at("/"));
        let next_page: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
        return Redirect::to(&base.at(&format!("/login?next={next_page}&expired=1")))
            .into_response();
    }
    if path.starts_with("/api/") || request.method() != Method::GET {
        let mut response = Problem::new(
            StatusCode::UNAUTHORIZED,
            "this needs the console's token: send Authorization: Bearer <token>, or log in at \
             /login",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"deskhook\""),
        );
        return response;
    }
    let here = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().to_string(), |o| o.0.to_string());
    let next_page: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&base.at(&format!("/login?next={next_page}"))).into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
    /// Set when a form was posted after the session ended.
    expired: Option<String>,
}

async fn login_page(
    base: Base,
    csrf: CsrfToken,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    let expired = query.expired.is_some().then_some(
        "Your session ended, and what the form held was not saved: log in, then send it again.",
    );
    pages::login(&base, &csrf, query.next.as_deref(), expired).into_response()
}

async fn log_in(
    axum::extract::State(auth): axum::extract::State<Arc<Auth>>,
    base: Base,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let next_page = form.get("next").filter(|n| local_path(n)).unwrap_or("");
    if !form_is_ours(&headers, &form) {
        return pages::login(
            &base,
            &csrf,
            Some(next_page),
            Some("The form expired; try again."),
        )
        .into_response();
    }
    if !form.get("token").is_some_and(|t| is_token(t, &auth.token)) {
        wrong_token("from the login form");
        let mut response = pages::login(
            &base,
            &csrf,
            Some(next_page),
            Some("That is not the token. It is in the file or the environment variable deskhook serve was given (--token-file, or --token-env)."),
        )
        .into_response();
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    // The sessions this browser had end: a log out must end them all (it ends those the
    // browser sends then).
    for id in cookies(&headers, SESSION_COOKIE) {
        auth.sessions.close(id);
    }
    let session = match auth.sessions.open() {
        Ok(session) => session,
        Err(problem) => return problem.into_response(),
    };
    let path = if base.0.is_empty() { "/" } else { &base.0 };
    let to = if next_page.is_empty() {
        base.at("/")
    } else {
        next_page.to_owned()
    };
    let mut response = Redirect::to(&to).into_response();
    // Secure when the browser came over HTTPS (through the TLS proxy serve asks for), so
    // that the cookie never travels in the clear.
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        secure_if_https(&headers)
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn log_out(
    axum::extract::State(auth): axum::extract::State<Arc<Auth>>,
    base: Base,
    headers: HeaderMap,
) -> Response {
    // The session ends whatever the form's token: a stale page's "Log out" must not leave
    // it open on the server while the browser forgets it (a cross-site form never gets
    // here: see `same_site_only`).
    for id in cookies(&headers, SESSION_COOKIE) {
        auth.sessions.close(id);
    }
    let path = if base.0.is_empty() { "/" } else { &base.0 };
    let mut response = Redirect::to(&base.at("/login")).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether `path` is a path of this site (not `//host`, not a scheme), safe to redirect to.
/// Control characters and whitespace are refused too: browsers drop a tab or a line break
/// from a URL, so `/\t/evil.example` would become `//evil.example`.
fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The value of the cookie `name` (the first sent: see [`cookies`]).
#[cfg(test)]
fn cookie<'a>(headers: &'a HeaderMap, name: &'a str) -> Option<&'a str> {
    cookies(headers, name).next()
}

/// Every value sent for the cookie `name`: a browser sends several of one name when they
/// were set for different paths or domains, one planted by a sibling subdomain (for a
/// parent domain, a longer path) first.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request came over HTTPS, as the TLS proxy in front says
/// (`X-Forwarded-Proto`, its first item: a chain of proxies appends theirs).
fn forwarded_https(headers: &HeaderMap) -> bool {
    header_text(headers, "x-forwarded-proto").is_some_and(|proto| {
        proto
            .split(',')
            .next()
            .is_some_and(|first| first.trim().eq_ignore_ascii_case("https"))
    })
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `headers` carry `Authorization: Bearer <token>`: `None` without a bearer token,
/// `Some(false)` with another one. The comparison takes a time that does not depend on where
/// the two differ. What `deskhook serve` checks before `/v1/events` and `/metrics`.
///
/// A wrong token is logged (a warning under the `deskhook` target, at most one a minute,
/// with how many came since): someone may be guessing.
pub fn check_bearer(headers: &HeaderMap, token: &str) -> Option<bool> {
    check_bearer_among(headers, &[token]).map(|matched| matched.is_some())
}

/// [`check_bearer`] against several tokens (each with powers of its own, such as an
/// ingest-only one): `None` without a bearer token, `Some(None)` with one that is none of
/// them (logged as [`check_bearer`] logs it), `Some(Some(i))` with `tokens[i]`.
pub fn check_bearer_among(headers: &HeaderMap, tokens: &[&str]) -> Option<Option<usize>> {
    let given = bearer_of(headers)?;
    // Every one compared, so that the time taken does not say which one came close.
    let matched = tokens.iter().enumerate().fold(None, |found, (i, token)| {
        found.or(is_token(given, token).then_some(i))
    });
    if matched.is_none() {
        wrong_token("as a bearer token");
    }
    Some(matched)
}

/// Whether the request's bearer token is `token`, compared as [`check_bearer`] does, and
/// nothing logged: to tell a token of lesser powers (an ingest-only one) where it does not
/// belong, before the console takes the request.
pub fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    bearer_of(headers).is_some_and(|given| is_token(given, token))
}

/// The request's bearer token, if it sent one.
fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    header_text(headers, header::AUTHORIZATION.as_str())
        // The scheme is case-insensitive (RFC 9110), as `same_site_only` reads it.
        .and_then(|h| {
            h.get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                .map(|_| &h[7..])
        })
}

/// Notes a wrong token (`what`: how it came): logged at most once a minute with how many
/// came since, never its value.
fn wrong_token(what: &str) {
    static WRONG: deskhook::Seldom = deskhook::Seldom::new();
    if let Some(since) = WRONG.due() {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "console: {since} request(s) with a wrong token since the last such line (this \
             one {what}); someone may be guessing it (see the console's Security docs)"
        );
    }
}

/// Whether `given` (white space around it aside) is `token`; never for a blank token.
fn is_token(given: &str, token: &str) -> bool {
    !token.is_empty() && same(given.trim(), token)
}

/// Compares two secrets in a time that depends neither on where they differ nor on the
/// secret's length: their keyed hashes (keys random per process) are compared first, so a
/// wrong guess of any length costs only its own hashing; equal hashes are then confirmed
/// byte by byte.
pub(crate) fn same(a: &str, b: &str) -> bool {
    use std::hash::BuildHasher as _;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(std::collections::hash_map::RandomState::new);
    if keys.hash_one(a) != keys.hash_one(b) {
        return false;
    }
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `value` has the shape of what [`random_token`] makes: 64 hex digits.
fn token_shaped(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 32 random bytes in hex, from the operating system's generator (if it fails there is no
/// safe token to give: a 500).
pub(crate) fn random_token() -> Result<String, Problem> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Problem::internal(format!(
            "the operating system's random generator failed: {e}"
        ))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_only() {
        assert!(local_path("/endpoints/crm"));
        assert!(!local_path("//evil.example/x"));
        assert!(!local_path("https://evil.example/"));
        assert!(!local_path("/\\evil.example"));
        assert!(!local_path("/\t/evil.example"));
        assert!(!local_path("/\n/evil.example"));
        assert!(!local_path("/ /evil.example"));
    }

    #[test]
    fn debug_shows_neither_the_token_nor_a_session() {
        let auth = Auth {
            token: "s3cret-token".into(),
            sessions: Sessions::default(),
        };
        let id = auth.sessions.open().unwrap();
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(!shown.contains(&id), "{shown}");
        assert!(shown.contains("open: 1"), "{shown}");
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let opened = Instant::now();
        let later = |d: Duration| opened + d;
        assert!(live(opened, opened, opened));
        // Used an hour ago, opened a day ago: live.
        let day = Duration::from_secs(24 * 3600);
        assert!(live(
            later(day),
            opened,
            later(day - Duration::from_secs(3600))
        ));
        // Idle past SESSION_IDLE.
        assert!(!live(later(SESSION_IDLE), opened, opened));
        // Used a minute ago, but opened SESSION_LIFETIME ago.
        let end = later(SESSION_LIFETIME);
        assert!(!live(end, opened, end - Duration::from_secs(60)));
    }

    #[test]
    fn cookies_and_comparisons() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; deskhook_csrf=xyz"),
        );
        assert_eq!(cookie(&headers, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert_eq!(origin_host("http://127.0.0.1:8089"), Some("127.0.0.1:8089"));
    }

    /// A cookie planted beside the console's (a sibling subdomain's, for a parent domain
    /// and a longer path, which the browser sends first) neither blocks the forms nor
    /// passes for a forged field.
    #[test]
    fn a_planted_csrf_cookie_neither_blocks_a_form_nor_passes_for_one() {
        let token = "ab".repeat(32);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("deskhook_csrf=x; deskhook_csrf={token}")).unwrap(),
        );
        let form = |csrf: &str| crate::pages::Form::for_test(&[("csrf", csrf)]);
        assert!(form_is_ours(&headers, &form(&token)));
        assert!(!form_is_ours(&headers, &form("x")), "not a token's shape");
        assert!(!form_is_ours(&headers, &form(&"cd".repeat(32))));
    }

    #[test]
    fn https_is_what_the_first_proxy_says_in_any_case() {
        let says = |proto: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-proto", HeaderValue::from_str(proto).unwrap());
            forwarded_https(&headers)
        };
        assert!(says("https") && says("HTTPS") && says("https, http"));
        assert!(!says("http") && !says("http, https"));
        assert!(!forwarded_https(&HeaderMap::new()));
    }
}
