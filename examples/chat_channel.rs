//! cargo run --example chat_channel
//!
//! Ticket events in a team's chat: one endpoint posts each event to a Slack channel with the
//! `slack` preset, another to a Telegram chat with the `telegram` preset, and both are signed
//! with an ed25519 key, which the receiving side checks with the public key alone. The
//! "chat services" are a receiver on 127.0.0.1 (port 0) that verifies each request and
//! prints the message it would show. Offline; exits by itself.

use std::error::Error;
use std::sync::mpsc;
use std::time::Duration;

use deskhook::signature::DEFAULT_TOLERANCE;
use deskhook::{Action, Dispatcher, Secret, Ticket, User};
use deskhook_transports::delivery::Endpoint;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::template::Template;

/// A request as the chat service received it: its path, verified or not, its JSON body.
type Seen = (String, bool, serde_json::Value);

/// The chat services: a receiver on 127.0.0.1 that holds only the sender's public key.
fn chat_services(public_key: Secret, seen: mpsc::Sender<Seen>) -> Result<String, Box<dyn Error>> {
    let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?;
    let base = format!("http://{}", server.server_addr());
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect();
            let verified = deskhook::signature::verify(
                &headers,
                &body,
                std::slice::from_ref(&public_key),
                DEFAULT_TOLERANCE,
            )
            .is_ok();
            let json = serde_json::from_slice(&body).unwrap_or_default();
            let _ = seen.send((request.url().to_owned(), verified, json));
            let _ = request.respond(tiny_http::Response::empty(if verified { 200 } else { 401 }));
        }
    });
    Ok(base)
}

fn main() -> Result<(), Box<dyn Error>> {
    // The helpdesk keeps the signing key; the chat side gets the public key only.
    let signing_key = Secret::generate_ed25519()?;
    let public_key = signing_key
        .public_key()
        .ok_or("an ed25519 key has a public key")?;
    println!("public key for the receivers: {}", public_key.reveal());

    let (tx, rx) = mpsc::channel();
    let base = chat_services(public_key, tx)?;
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

    let mut seen: Vec<Seen> = rx.try_iter().collect();
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
