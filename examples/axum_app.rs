//! cargo run --example axum_app
//!
//! A helpdesk built on axum: its handlers update a ticket and call `deskhook::emit`, which only
//! queues; the async transport delivers on the application's own tokio runtime, signed, to a
//! receiver this example also runs (an axum server on 127.0.0.1 that verifies each
//! signature). Offline; exits by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use deskhook::event::Status;
use deskhook::{Action, Dispatcher, Secret, Ticket, User};
use deskhook_transports::delivery::Endpoint;
use deskhook_transports::http_async::AsyncHttpSink;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------------
// The helpdesk: tickets in memory, a handler per action.

#[derive(Clone)]
struct Helpdesk {
    tickets: Arc<Mutex<HashMap<String, Ticket>>>,
    agent: User,
}

/// `POST /tickets/{code}/{action}`: applies the action and emits it.
async fn act(
    State(desk): State<Helpdesk>,
    Path((code, action)): Path<(String, String)>,
) -> Result<String, (StatusCode, String)> {
    let action: Action = action
        .parse()
        .map_err(|e: deskhook::event::ParseActionError| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut tickets = desk.tickets.lock().map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ticket store poisoned".to_owned(),
        )
    })?;
    let ticket = tickets
        .get_mut(&code)
        .ok_or((StatusCode::NOT_FOUND, format!("no ticket {code}")))?;
    match action {
        Action::Lock => {
            ticket.status = Status::Lock;
            ticket.target_user = vec![desk.agent.clone()];
        }
        Action::Ok => ticket.status = Status::Success,
        Action::Comment => ticket
            .comments
            .push(deskhook::event::Comment::new(desk.agent.clone(), "On it.")),
        _ => {}
    }
    // Queues only: the request is answered without waiting for any webhook.
    deskhook::emit(action, ticket, &desk.agent);
    Ok(format!("{code}: {action} done\n"))
}

// ---------------------------------------------------------------------------------------------
// The receiving side: what an integrator runs.

#[derive(Clone)]
struct Inbox {
    secret: Secret,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // The request's own headers (deskhook's `http` feature).
    let verdict = match deskhook::signature::verify(
        &headers,
        &body,
        std::slice::from_ref(&inbox.secret),
        deskhook::signature::DEFAULT_TOLERANCE,
    ) {
        Ok(_) => "verified".to_owned(),
        Err(e) => format!("REFUSED: {e}"),
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    let line = format!(
        "{verdict:<9} {:<8} seq {}",
        header("x-deskhook-action"),
        header("x-deskhook-sequence")
    );
    if let Ok(mut seen) = inbox.seen.lock() {
        seen.push(line);
    }
    if verdict == "verified" {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let secret = Secret::generate()?;

    // The receiver, on loopback.
    let inbox = Inbox {
        secret: secret.clone(),
        seen: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}/hooks", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(
        axum::serve(
            listener,
            Router::new()
                .route("/hooks", post(receive))
                .with_state(inbox.clone()),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .into_future(),
    );

    // deskhook, delivering on this runtime.
    let (http, delivery) = AsyncHttpSink::builder()
        .endpoint(
            Endpoint::new("integrations", &receiver_url)?
                .secret(secret)
                .allow_private(true), // the receiver is on loopback
        )
        .dead_letter_path(dir.path().join("dead-letters.jsonl"))
        .build_async()?;
    deskhook::set_dispatcher(Dispatcher::builder().sink("http", http.clone()).build())?;

    // The helpdesk app, called in-process (tower's oneshot) as a browser would call it.
    let author = User::new("boris@example.com", "Boris Ivanov").with_lang("ru");
    let mut ticket = Ticket::new("AX1", "VPN does not connect");
    ticket.author = author.clone();
    ticket.client = vec![author];
    let desk = Helpdesk {
        tickets: Arc::new(Mutex::new(HashMap::from([("AX1".to_owned(), ticket)]))),
        agent: User::new("anna@example.com", "Anna Petrova"),
    };
    let app = Router::new()
        .route("/tickets/{code}/{action}", post(act))
        .with_state(desk);
    for action in ["lock", "comment", "ok", "aprove"] {
        let request = Request::post(format!("/tickets/AX1/{action}")).body(Body::empty())?;
        let response = app.clone().oneshot(request).await?;
        let status = response.status();
        let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await?;
        println!(
            "POST /tickets/AX1/{action:<8} -> {status} {}",
            String::from_utf8_lossy(&text).trim()
        );
    }

    delivery.shutdown_async(Duration::from_secs(5)).await?;
    let _ = stop.send(());
    receiver.await??;

    let seen = inbox.seen.lock().map_err(|_| "inbox poisoned")?.clone();
    println!("\nThe receiver got:");
    for line in &seen {
        println!("  {line}");
    }
    let stats = &http.stats()[0];
    println!(
        "endpoint {}: delivered {}, dead letters {}",
        stats.name, stats.delivered, stats.dead_lettered
    );
    if seen.len() != 3 || seen.iter().any(|l| !l.starts_with("verified")) {
        return Err("the receiver did not verify the three events".into());
    }
    Ok(())
}
