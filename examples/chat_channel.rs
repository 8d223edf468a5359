//! cargo run --example chat_channel
//!
//! Ticket events in a team's chat: one endpoint posts each event to a Slack channel with the
//! `slack` preset, another to a Telegram chat with the `telegram` preset, and both are signed
//! with an ed25519 key, which the receiving side checks with the public key alone. The
//! "chat services" are a receiver on 127.0.0.1 (port 0) that verifies each request and
//! prints the message it would show. Offline; exits by itself.

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;

use deskhook::signature::DEFAULT_TOLERANCE;
use deskhook::{Action, Dispatcher, Secret, Ticket, User};
use deskhook_transports::delivery::Endpoint;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::template::Template;

/// A request as the chat service received it: its path, verified or not, its JSON body.
type Seen = (String, bool, serde_json::Value);

/// What the chat services received, in arrival order.
type Received = Arc<Mutex<Vec<Seen>>>;

/// The chat services: a receiver on 127.0.0.1 that holds only the sender's public key
/// (axum, which serves each of the sink's connections at once). It runs until the returned
/// runtime is dropped.
fn chat_services(
    public_key: Secret,
    seen: Received,
) -> Result<(String, tokio::runtime::Runtime), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .fallback(post(message))
        .with_state((Arc::new(public_key), seen));
    runtime.spawn(async move { axum::serve(listener, app).await });
    Ok((base, runtime))
}

/// One message: verified with the public key, kept, and answered 200 (401 if unverified).
async fn message(
    State((public_key, seen)): State<(Arc<Secret>, Received)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // The request's own headers (deskhook's `http` feature).
    let verified = deskhook::signature::verify(
        &headers,
        &body,
        std::slice::from_ref(&*public_key),
        DEFAULT_TOLERANCE,
    )
    .is_ok();
    let json = serde_json::from_slice(&body).unwrap_or_default();
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((uri.path().to_owned(), verified, json));
    if verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // The helpdesk keeps the signing key; the chat side gets the public key only.
    let signing_key = Secret::generate_ed25519()?;
    let public_key = signing_key
        .public_key()
        .ok_or("an ed25519 key has a public key")?;
    println!("public key for the receivers: {}", public_key.reveal());

    let received = Received::default();
    let (base, services) = chat_services(public_key, received.clone())?;
    let dir = tempfile::tempdir()?;
    let chat = |name: &str, path: &str, template: Template| -> Result<Endpoint, Box<dyn Error>> {
        Ok(Endpoint::new(name, &format!("{base}{path}"))?
            .allow_private(true) // the chat services are on loopback here
            .secret(signing_key.clone())
            .actions([Action::Create, Action::Comment, Action::Ok])
            .template(template))
    };
    let (sink, guard) = HttpSink::builder()
        .endpoint(chat(
            "slack",
            "/services/T000/B000/XXXX",
            Template::preset("slack")?,
        )?)
        .endpoint(chat(
            "telegram",
            "/bot123:ABC/sendMessage",
            Template::preset("telegram")?.var("chat_id", "-1001234567890"),
        )?)
        .dead_letter_path(dir.path().join("dead-letters.jsonl"))
        .build()?;
    let dispatcher = Dispatcher::builder().sink("chat", sink).build();

    let mut ticket = Ticket::new("HD-7", "The printer on the 2nd floor is on fire");
    ticket.text = "Smoke and a smell of toner. Please come quickly.".into();
    let user = User::new("anna@example.com", "Anna Petrova");
    dispatcher.emit(Action::Create, &ticket, &user);
    dispatcher.emit(Action::Ok, &ticket, &user);
    guard.flush(Duration::from_secs(10))?;

    drop(services); // the chat services stop
    let mut seen: Vec<Seen> =
        std::mem::take(&mut *received.lock().unwrap_or_else(|p| p.into_inner()));
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, verified, json) in &seen {
        let shown = if path.starts_with("/services") {
            json["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap_or_default()
        } else {
            json["text"].as_str().unwrap_or_default()
        };
        println!(
            "{path} ({}):\n  {}",
            if *verified {
                "verified with the public key"
            } else {
                "NOT VERIFIED"
            },
            shown.replace('\n', "\n  ")
        );
    }
    if seen.len() != 4 || seen.iter().any(|(_, verified, _)| !verified) {
        return Err(format!("expected 4 verified messages, got {seen:?}").into());
    }
    Ok(())
}
