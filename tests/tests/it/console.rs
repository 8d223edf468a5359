//! The console's admin API and pages, driven through its axum Router over a running sink
//! whose endpoints are loopback receivers: what an admin and a script do, and what an
//! attacker's page or a tenant's hostile name must not.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use deskhook::Action;
use deskhook_console::Console;
use deskhook_tests::{Receiver, WAIT, ticket};
use deskhook_transports::delivery::{DeliveryGuard, DeliverySink};
use deskhook_transports::http_blocking::HttpSink;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Running {
    sink: DeliverySink,
    guard: Option<DeliveryGuard>,
    app: Router,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let _ = guard.flush(Duration::from_secs(5));
        }
    }
}

/// The console's router as a helpdesk's operators get it: allowed to open endpoints to the
/// server's networks, as these tests' loopback receivers need.
fn router(sink: DeliverySink) -> Router {
    Console::new(sink).allow_private_networks(true).router()
}

fn console(make: impl FnOnce(DeliverySink) -> Router) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (sink, guard) = HttpSink::builder()
        .dead_letter_path(dir.path().join("dead.jsonl"))
        .build()
        .unwrap();
    let app = make(sink.clone());
    Running {
        sink,
        guard: Some(guard),
        app,
        _dir: dir,
    }
}

/// A response: status, headers, body.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    /// The value of the first cookie it sets (a page's CSRF cookie).
    fn cookie_value(&self) -> String {
        self.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A GET of `path`, as a browser without cookies makes it.
async fn page(app: &Router, path: &str) -> Reply {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

async fn api(app: &Router, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(app, request.body(body).unwrap()).await
}

/// A CSRF token of the shape the console makes (64 hex digits), for forms posted with a
/// cookie of the test's own.
const FORM_TOKEN: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

fn endpoint_json(name: &str, receiver: &Receiver) -> Value {
    json!({
        "name": name, "url": receiver.url, "allow_private": true, "retry": "0s",
        "secrets": [SECRET], "headers": {"Authorization": "Bearer tenant-credential"},
        "tenant": "acme",
    })
}

/// A form post with this browser's CSRF cookie and field.
fn form(path: &str, token: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let mut body = format!("csrf={token}");
    for (k, v) in fields {
        let v: String = url_encode(v);
        body.push_str(&format!("&{k}={v}"));
    }
    Request::post(path)
        .header(header::COOKIE, format!("deskhook_csrf={token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

mod api;
mod api_letters;
mod forms;
mod guard;
mod letters;
mod networks;
mod test_events;
mod updates;
