//! cargo run --example multi_tenant
//!
//! A multi-tenant helpdesk whose companies manage their own webhooks while it runs. The sink
//! starts with no endpoints; the companies' settings pages add theirs (each belongs to its
//! tenant), and the helpdesk's own audit hook (no tenant, subscribed to create and delete)
//! takes those events of every company. Events emitted for a company go to its endpoints
//! only. Then one company pauses its hook (its events wait) and resumes it, one moves its
//! hook to another URL (queued events follow it), and one deletes its hook (what it had
//! queued goes to the dead letters). At the end, the registry as a settings page would list
//! it, and the receiver's count per path. Everything goes to a receiver this example starts
//! on 127.0.0.1. Offline; exits by itself.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use deskhook::{Action, Dispatcher, Ticket, User};
use deskhook_transports::delivery::{Endpoint, read_dead_letters};
use deskhook_transports::http_blocking::HttpSink;

/// Requests received, per path.
type Seen = Arc<Mutex<BTreeMap<String, usize>>>;

/// A receiver on 127.0.0.1 that reads each request, answers 204 and counts the requests per
/// path. It runs until the returned runtime is dropped.
///
/// The sink opens a connection per request in flight (up to five here) and keeps them open,
/// so the receiver must serve any number of connections at once. axum does (a task per connection); tiny_http
/// 0.12 does not reliably: when several connections arrive together, its pool can leave one
/// unread while the others stay open, and that request hangs until the sink's attempt timeout.
fn receiver(seen: Seen) -> Result<(String, tokio::runtime::Runtime), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Router::new().fallback(post(count)).with_state(seen);
    runtime.spawn(async move { axum::serve(listener, app).await });
    Ok((base, runtime))
}

/// Every `POST`: the body is read in full (the `Bytes` extractor), then counted and answered.
async fn count(State(seen): State<Seen>, uri: Uri, _body: Bytes) -> StatusCode {
    *seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(uri.path().to_owned())
        .or_default() += 1;
    StatusCode::NO_CONTENT
}

/// A company's webhook, as its settings page would save it.
fn hook(name: &str, tenant: &str, url: &str) -> Result<Endpoint, Box<dyn Error>> {
    Ok(Endpoint::new(name, url)?
        .tenant(tenant)
        .allow_private(true) // the receiver is on loopback
        .retry("0s,100ms".parse()?))
}

fn main() -> Result<(), Box<dyn Error>> {
    let seen = Seen::default();
    // Dropped last, after the sink has shut down.
    let (base, _receiver) = receiver(seen.clone())?;
    let dir = tempfile::tempdir()?;
    let dead_letters = dir.path().join("dead-letters.jsonl");

    // The helpdesk starts with no endpoints.
    let (sink, guard) = HttpSink::builder()
        .dead_letter_path(&dead_letters)
        .build()?;
    let dispatcher = Dispatcher::builder().sink("webhooks", sink.clone()).build();
    let endpoints = sink.endpoints();

    // The settings pages add endpoints while the helpdesk runs.
    endpoints.upsert(hook("acme-crm", "acme", &format!("{base}/acme/crm"))?)?;
    endpoints.upsert(hook("acme-chat", "acme", &format!("{base}/acme/chat"))?)?;
    endpoints.upsert(hook("globex-crm", "globex", &format!("{base}/globex/crm"))?)?;
    endpoints.upsert(
        Endpoint::new("audit", &format!("{base}/audit"))?
            .allow_private(true)
            .actions([Action::Create, Action::Delete]),
    )?;
    println!("{} endpoints registered", endpoints.len());

    let user = User::new("anna@example.com", "Anna");
    let emit = |tenant: &str, action: Action, code: &str| {
        dispatcher
            .for_tenant(tenant)
            .emit(action, &Ticket::new(code, "Printer jammed"), &user);
    };
    emit("acme", Action::Create, "A-1"); // acme-crm, acme-chat, audit
    emit("globex", Action::Create, "G-1"); // globex-crm, audit
    emit("acme", Action::Comment, "A-1"); // acme-crm, acme-chat
    guard.flush(Duration::from_secs(5))?;

    // acme pauses its CRM hook: its events wait, nothing is sent.
    endpoints.pause("acme-crm")?;
    emit("acme", Action::Lock, "A-1");
    emit("acme", Action::Ok, "A-1");
    let paused = endpoints.get("acme-crm")?;
    println!(
        "acme-crm is {} with {} event(s) queued",
        paused.state, paused.stats.queued
    );
    // ... and moves it to a new URL while they wait: they follow it, in order.
    endpoints.upsert(hook("acme-crm", "acme", &format!("{base}/acme/crm-v2"))?)?;
    endpoints.resume("acme-crm")?;

    // globex deletes its hook with an event still queued behind a pause.
    endpoints.pause("globex-crm")?;
    emit("globex", Action::Edit, "G-1");
    let removed = endpoints.remove("globex-crm")?;
    println!(
        "globex-crm removed: {} queued event(s) moved to the dead letters",
        removed.dead_lettered
    );
    guard.flush(Duration::from_secs(5))?;

    println!("\nthe registry, as a settings page lists it:");
    for info in endpoints.list() {
        println!(
            "  {:<10} tenant {:<7} {:<26} {:<7} delivered {}",
            info.name,
            info.tenant.as_deref().unwrap_or("-"),
            info.url,
            info.state.to_string(),
            info.stats.delivered
        );
    }
    println!("\nthe receiver got:");
    for (path, count) in seen.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("  {path:<18} {count}");
    }
    let letters = read_dead_letters(&dead_letters)?;
    for letter in &letters {
        println!(
            "dead letter: {} on ticket {} for '{}' (tenant {}): {}",
            letter.action,
            letter.ticket,
            letter.endpoint,
            letter.tenant.as_deref().unwrap_or("-"),
            letter.reason
        );
    }
    guard.shutdown(Duration::from_secs(5))?;

    // Each company got its own events, the moved hook its last two, the audit hook every
    // company's creates.
    let got: Vec<(String, usize)> = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(path, count)| (path.clone(), *count))
        .collect();
    let expected = [
        ("/acme/chat", 4),
        ("/acme/crm", 2),
        ("/acme/crm-v2", 2),
        ("/audit", 2),
        ("/globex/crm", 1),
    ];
    let dead: Vec<&str> = letters.iter().map(|l| l.endpoint.as_str()).collect();
    if got.iter().map(|(p, n)| (p.as_str(), *n)).ne(expected) || dead != ["globex-crm"] {
        return Err(
            format!("expected {expected:?} and one letter of globex-crm, got {got:?}").into(),
        );
    }
    Ok(())
}
