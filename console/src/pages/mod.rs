//! The pages: rendered on the server with maud (every value escaped), one stylesheet and
//! one small script served from here, forms that post back with a CSRF token.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

use crate::guard::{Base, CsrfToken};
use crate::{Problem, State};

mod endpoints;
mod letters;

pub(crate) use letters::Replays;

/// The pages' routes.
pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/", get(endpoints::list))
        .route("/new-endpoint", get(endpoints::new_form))
        .route("/endpoints", post(endpoints::create))
        .route("/endpoints/{name}", get(endpoints::show))
        .route(
            "/endpoints/{name}/edit",
            get(endpoints::edit_form).post(endpoints::update),
        )
        .route("/endpoints/{name}/{action}", post(endpoints::act))
        .route("/dead-letters", get(letters::list))
        .route("/dead-letters/{action}", post(letters::act))
        .route(
            "/dead-letters/replays/{id}",
            get(letters::replay_result_page),
        )
        .route("/events", get(letters::event))
        .route(ASSETS[0], get(stylesheet))
        .route(ASSETS[1], get(script))
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_such_path)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
}

/// A page's address asked with a method it does not take (a form's address typed or
/// bookmarked, most often): a page saying so, where axum answers an empty 405.
async fn wrong_method(base: Base, request: Request) -> Response {
    let problem = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "this address does not take a {} request (a form's address, typed or \
             bookmarked?); go back and use the console's links and buttons",
            request.method()
        ),
    );
    error_page(&base, &problem).into_response()
}

/// The stylesheet's and the script's paths: the login page needs them, so they are served
/// without the token (nothing else under `/assets/` is).
pub(crate) const ASSETS: [&str; 2] = ["/assets/console.css", "/assets/console.js"];

/// A path the console has nothing at: a page saying so, or a problem document under
/// `/api/` (the API's own paths have one of their own). Behind the token like the pages, so
/// that a visitor without it learns nothing of which paths exist.
async fn no_such_path(base: Base, request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "no such API path; the API is under /api/v1, and the document at \
             /api/v1/openapi.json lists its paths",
        )
        .into_response();
    }
    let problem = Problem::new(
        StatusCode::NOT_FOUND,
        "the console has no page at this address; follow its links from the endpoints",
    );
    error_page(&base, &problem).into_response()
}

/// What every page sends: no inline script may run, no framing, no sniffing.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page as a response, with its security headers.
pub(crate) struct Page {
    status: StatusCode,
    markup: Markup,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.markup.into_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        // The CSP's frame-ancestors says it too, for browsers that read it.
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A page's `<head>`: its title, the stylesheet and the script.
fn head(base: &Base, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · deskhook" }
            link rel="stylesheet" href=(base.at("/assets/console.css"));
            script src=(base.at("/assets/console.js")) defer {}
        }
    }
}

/// The frame of every page: title, navigation, the flash message, the body.
pub(crate) fn layout(base: &Base, title: &str, flash: Option<&str>, body: Markup) -> Page {
    Page {
        status: StatusCode::OK,
        markup: html! {
            (DOCTYPE)
            html lang="en" {
                (head(base, title))
                body {
                    header.top {
                        a.brand href=(base.at("/")) { "deskhook" }
                        nav {
                            a href=(base.at("/")) { "Endpoints" }
                            a href=(base.at("/dead-letters")) { "Dead letters" }
                            form.lookup method="get" action=(base.at("/events")) {
                                input type="search" name="q" placeholder="webhook-id or ticket"
                                    aria-label="Find an event by webhook-id or ticket";
                            }
                            @if let Some(csrf) = &base.1 {
                                form.logout method="post" action=(base.at("/logout")) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                    main {
                        @if let Some(flash) = flash {
                            p.flash role="status" { (flash) }
                        }
                        (body)
                    }
                }
            }
        },
    }
}

/// An error as a page.
pub(crate) fn error_page(base: &Base, problem: &Problem) -> Page {
    let mut page = layout(
        base,
        &problem.title,
        None,
        html! {
            h1 { (problem.title) }
            p.error { (problem.detail) }
            p { a href=(base.at("/")) { "Back to the endpoints" } }
        },
    );
    page.status = problem.status_code();
    page
}

/// The login page of a console that asks for a token.
pub(crate) fn login(
    base: &Base,
    csrf: &CsrfToken,
    next: Option<&str>,
    error: Option<&str>,
) -> Page {
    Page {
        status: StatusCode::OK,
        markup: html! {
            (DOCTYPE)
            html lang="en" {
                (head(base, "Log in"))
                body.login {
                    main {
                        h1 { "deskhook" }
                        form method="post" action=(base.at("/login")) {
                            input type="hidden" name="csrf" value=(csrf.0);
                            input type="hidden" name="next" value=(next.unwrap_or(""));
                            label for="token" { "Token" }
                            input #token type="password" name="token" autocomplete="current-password" required autofocus;
                            @if let Some(error) = error {
                                p.error role="alert" { (error) }
                            } @else {
                                p.hint { "The token the console was given: for deskhook serve, the value of DESKHOOK_TOKEN (or of the variable its --token-env names, or what its --token-file holds)." }
                            }
                            button type="submit" { "Log in" }
                        }
                    }
                }
            }
        },
    }
}

/// A form's fields, as sent (a field may come more than once: check boxes).
#[derive(Default)]
pub(crate) struct Form(Vec<(String, String)>);

// Not derived: a form's values may be the console's token, a secret, header values.
impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Form {
    /// A form of these fields, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(fields: &[(&str, &str)]) -> Form {
        Form(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, if not empty.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A page's query string, read as `T`; one that does not read (`?before=abc`) gets the
/// error page saying what is wrong, not a bare 400.
pub(crate) struct PageQuery<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequestParts<S> for PageQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<PageQuery<T>, Response> {
        let why = match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(query)) => return Ok(PageQuery(query)),
            Err(rejection) => rejection.body_text(),
        };
        let base = Base::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let problem = Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the address's query cannot be read ({why}); follow a link of the console or \
                 drop the part after '?'"
            ),
        );
        Err(error_page(&base, &problem).into_response())
    }
}

/// Longest form body read.
pub(crate) const MAX_FORM: usize = 256 * 1024;

/// The longest form body a route reads, when not [`MAX_FORM`]: set by its router as a
/// request extension, beside its body limit, so that a form over it is told the right one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FormLimit(pub(crate) usize);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Form, Response> {
        use axum::extract::FromRequestParts as _;
        let (mut parts, body) = request.into_parts();
        let Ok(base) = Base::from_request_parts(&mut parts, state).await;
        let limit = parts
            .extensions
            .get::<FormLimit>()
            .map_or(MAX_FORM, |l| l.0);
        let request = Request::from_parts(parts, body);
        // Read up to the route's body limit, no further; a form that does not come whole
        // gets a page that says why, as every page's error does.
        let bytes = match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => bytes,
            Err(rejection) => {
                let problem = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the form is over {} KiB, the most the console reads",
                            limit / 1024
                        ),
                    )
                } else {
                    Problem::new(
                        rejection.status(),
                        format!("the form could not be read: {}", rejection.body_text()),
                    )
                };
                return Err(error_page(&base, &problem).into_response());
            }
        };
        Ok(Form(
            form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// A form's hidden CSRF field.
pub(crate) fn csrf_field(csrf: &CsrfToken) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf.0); }
}

/// The refusal of a form that does not carry this browser's CSRF token (`None`: it does).
pub(crate) fn foreign_form(base: &Base, headers: &HeaderMap, form: &Form) -> Option<Response> {
    (!crate::guard::form_is_ours(headers, form))
        .then(|| error_page(base, &foreign_problem()).into_response())
}

/// Why a form without this browser's CSRF token is refused (its cookie gone with a
/// browser's restart, most often).
fn foreign_problem() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "the form's token does not match this browser's (a browser restarted since the page \
         was loaded, say); reload the page and try again",
    )
}

/// Why an endpoint form shown again with what was typed was refused (said otherwise than
/// [`foreign_form`]'s: a reload would post the old token again).
pub(crate) fn foreign_form_problem() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "nothing was saved: the form's token did not match this browser's (a browser \
         restarted since the page was loaded, say); check the values below and save again",
    )
}

/// A time as `2026-11-29 14:03:07 UTC`: said, as an operator compares it with the
/// helpdesk's logs, which may be in local time.
pub(crate) fn time(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A duration as `12 ms` or `1.2 s`.
pub(crate) fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// A number with thin groups: `12 345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// `n` things, as [`count`] writes the number: `1 endpoint`, `12 345 endpoints` (`noun` is
/// the singular; its plural adds an `s`).
pub(crate) fn counted(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", count(n), if n == 1 { "" } else { "s" })
}

/// The path of endpoint `name`'s page. Every name has one: the form that adds an endpoint
/// is at `/new-endpoint`, outside `/endpoints/`, so that an endpoint named `new` is not
/// hidden behind it.
pub(crate) fn endpoint_path(name: &str) -> String {
    format!("/endpoints/{}", enc(name))
}

/// A path segment or query value, percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`).
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The CSS class of an HTTP status (or none).
pub(crate) fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "ok",
        Some(400..=499) => "warn",
        Some(_) => "bad",
        None => "bad",
    }
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Private: the response may carry this browser's CSRF cookie, which a shared
            // cache must not hand to others.
            (header::CACHE_CONTROL, "private, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_forms_debug_names_its_fields_only() {
        let form = super::Form(vec![
            ("token".into(), "s3cret-token".into()),
            (
                "secret".into(),
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            ),
        ]);
        assert_eq!(format!("{form:?}"), r#"["token", "secret"]"#);
    }
}
