//! cargo run --example axum_receiver
//!
//! The receiving side of all three formats: an axum handler that verifies the Standard
//! Webhooks signature and parses the body with `deskhook::receive`, whatever the format
//! (Zenlix, Usedesk or iQChannels), answering 401 when the signature does not check out and
//! 400 when the body is not a valid event. The example sends itself one event of each format
//! through deskhook's async transport to the handler on 127.0.0.1 (port 0), plus a forged
//! request, checks what the handler made of them and exits. Offline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use deskhook::formats::{Id, iqchannels, usedesk};
use deskhook::{Action, Dispatcher, ReceiveOptions, Received, Secret};
use deskhook_transports::delivery::Endpoint;
use deskhook_transports::http_async::AsyncHttpSink;
use tower::ServiceExt;

/// The token of the Usedesk API channel; a Usedesk body must carry it.
const USEDESK_CHANNEL_TOKEN: &str = "0e8f678d8327eb3292a28c8165957b282a1b2f8b";

// ---------------------------------------------------------------------------------------------
// The receiver: what an integrator runs.

#[derive(Clone)]
struct Inbox {
    options: ReceiveOptions,
    seen: Arc<Mutex<Vec<String>>>,
}

/// `POST /hooks`: verify, tell the format, parse; then act on the typed event.
async fn hook(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // The raw bytes are verified before anything parses them.
    // The request's own headers (deskhook's `http` feature).
    let received = match deskhook::receive(&headers, &body, &inbox.options) {
        Ok(received) => received,
        Err(e) => {
            let status = if e.is_signature_error() {
                StatusCode::UNAUTHORIZED
            } else if e.is_receiver_setup_error() {
                // No key here (a variable not set): the sender retries until there is one.
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            record(&inbox, format!("{} {e}", status.as_u16()));
            return status;
        }
    };
    let line = match &received {
        Received::Zenlix(event) => format!(
            "zenlix     {:<24} ticket {} ({})",
            event.action, event.ticket.code, event.description
        ),
        Received::Usedesk(event) => format!(
            "usedesk    {:<24} ticket {}",
            event.event_type(),
            event.ordering_key()
        ),
        Received::IqChannels(event) => format!(
            "iqchannels {:<24} chat {}",
            event.event_type(),
            event.chat_id()
        ),
        other => format!("{} {}", other.format(), other.event_type()),
    };
    record(&inbox, line);
    StatusCode::NO_CONTENT
}

fn record(inbox: &Inbox, line: String) {
    if let Ok(mut seen) = inbox.seen.lock() {
        seen.push(line);
    }
}

// ---------------------------------------------------------------------------------------------
// One event of each format, as a sender would have them.

fn usedesk_comment() -> usedesk::Event {
    let comment = usedesk::Comment {
        id: Id::number(40),
        message: "The VPN works again, thank you".to_owned(),
        from: usedesk::Sender::Client,
        ticket_id: Id::number(2261907),
        ..usedesk::Comment::default()
    };
    usedesk::Event::new(
        USEDESK_CHANNEL_TOKEN,
        usedesk::Payload::CommentCreated(comment),
    )
}

fn iqchannels_message() -> Result<iqchannels::Event, deskhook::Error> {
    iqchannels::Event::from_json(
        br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21,"MessageId":1201},"Rels":{"ChatMessages":[{"Id":1201,"ChatId":21,"Author":"client","Text":"Hello"}]}}"#,
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let secret = Secret::generate()?;

    // The receiver on loopback, port 0.
    let inbox = Inbox {
        options: ReceiveOptions::new()
            .secret(secret.clone())
            .usedesk_secret(USEDESK_CHANNEL_TOKEN),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/hooks", post(hook))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app.clone())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );

    // The sender: deskhook's async transport, signing with the shared secret.
    let (http, delivery) = AsyncHttpSink::builder()
        .endpoint(
            Endpoint::new("receiver", &url)?
                .secret(secret)
                .allow_private(true), // the receiver is on loopback
        )
        .dead_letter_path(dir.path().join("dead-letters.jsonl"))
        .build_async()?;
    let dispatcher = Dispatcher::builder()
        .async_sink("http", http.clone())
        .build();
    let zenlix = deskhook::sample::event(Action::Comment);
    let usedesk = usedesk_comment();
    let iqchannels = iqchannels_message()?;
    dispatcher.emit_webhook_async(&zenlix).await;
    dispatcher.emit_webhook_async(&usedesk).await;
    dispatcher.emit_webhook_async(&iqchannels).await;
    delivery.shutdown_async(Duration::from_secs(5)).await?;

    // A forged request: signed with another secret. Sent to the same router in-process.
    let forged_secret = Secret::generate()?;
    let body = usedesk.to_json()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let timestamp = i64::try_from(now)?;
    let signature = deskhook::signature::sign("msg_forged", timestamp, &body, &[forged_secret])?;
    let forged = Request::post("/hooks")
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(Body::from(body))?;
    let forged_status = app.oneshot(forged).await?.status();

    let _ = stop.send(());
    server.await??;

    let seen = inbox.seen.lock().map_err(|_| "inbox poisoned")?.clone();
    println!("The receiver got:");
    for line in &seen {
        println!("  {line}");
    }
    println!("forged request answered {forged_status}");

    let expected_starts = [
        "zenlix     comment",
        "usedesk    comment_created",
        "iqchannels message_created",
        "401 no signature in webhook-signature matches",
    ];
    let ok = seen.len() == expected_starts.len()
        && expected_starts
            .iter()
            .all(|start| seen.iter().any(|line| line.starts_with(start)))
        && forged_status == StatusCode::UNAUTHORIZED
        && http.stats()[0].delivered == 3;
    if !ok {
        return Err("the receiver did not see what was sent".into());
    }
    Ok(())
}
