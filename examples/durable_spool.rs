//! cargo run --example durable_spool
//!
//! At-least-once delivery across a restart. A helpdesk emits five events through a durable
//! spool while its endpoint (a receiver this example starts on 127.0.0.1) answers 503: each
//! `emit` returns once its event is on disk. The helpdesk "stops" with the events undelivered
//! — they stay in the spool, with their attempt counts. It "starts again" with the same spool
//! directory, the receiver is back, and the backlog is delivered in order per ticket. Offline;
//! exits by itself.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use deskhook::{Action, Dispatcher};
use deskhook_transports::delivery::{DeliveryGuard, Endpoint};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, Spool};

/// A receiver on 127.0.0.1 that answers 503 while `down` is set, else 204, and prints what
/// it takes: axum, which serves each of the sink's connections at once. It runs until the
/// returned runtime is dropped.
fn receiver(down: Arc<AtomicBool>) -> Result<(String, tokio::runtime::Runtime), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/", listener.local_addr()?);
    let app = Router::new().fallback(post(take)).with_state(down);
    runtime.spawn(async move { axum::serve(listener, app).await });
    Ok((url, runtime))
}

/// One request: 503 while the receiver is down, else printed and answered 204.
async fn take(State(down): State<Arc<AtomicBool>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    println!(
        "  receiver took {} on ticket {} (sequence {})",
        event["action"].as_str().unwrap_or("?"),
        event["ticket"]["code"].as_str().unwrap_or("?"),
        headers
            .get("x-deskhook-sequence")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    );
    StatusCode::NO_CONTENT
}

/// The helpdesk's delivery: one endpoint behind the spool in `dir`.
fn start(url: &str, dir: &std::path::Path) -> Result<(HttpSink, DeliveryGuard), Box<dyn Error>> {
    let endpoint = Endpoint::new("crm", url)?
        .allow_private(true) // the receiver is on loopback
        .retry("0s,1s,1s,1s,1s".parse()?);
    Ok(HttpSink::builder()
        .endpoint(endpoint)
        .shutdown_timeout(Duration::from_millis(300))
        .spool(Spool::open(dir)?)
        .build()?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let down = Arc::new(AtomicBool::new(true));
    let (url, receiving) = receiver(down.clone())?;
    let dir = tempfile::tempdir()?;
    let user = deskhook::sample::user();

    println!("first run: the receiver answers 503");
    let (sink, guard) = start(&url, dir.path())?;
    let dispatcher = Dispatcher::builder().sink("crm", sink.clone()).build();
    for (code, action) in [
        ("A1", Action::Create),
        ("B2", Action::Create),
        ("A1", Action::Lock),
        ("A1", Action::Comment),
        ("B2", Action::Ok),
    ] {
        let mut ticket = deskhook::sample::ticket();
        ticket.code = code.to_owned();
        dispatcher.emit(action, &ticket, &user); // returns once the event is on disk
    }
    drop((dispatcher, sink));
    let _ = guard.shutdown(Duration::from_millis(300)); // what is undelivered stays spooled
    let stats = spool::inspect(dir.path())?;
    println!("stopped with {} event(s) in the spool", stats.pending);

    println!("second run: the receiver is back");
    down.store(false, Ordering::SeqCst);
    let (sink, guard) = start(&url, dir.path())?;
    guard.flush(Duration::from_secs(10))?;
    let delivered = sink.stats()[0].delivered;
    drop(sink);
    guard.shutdown(Duration::from_secs(5))?;
    let stats = spool::inspect(dir.path())?;
    println!(
        "delivered {delivered}; {} left in the spool, {} dead letters",
        stats.pending, stats.dead_letters
    );
    drop(receiving); // the receiver stops
    if delivered != 5 || stats.pending != 0 {
        return Err("not everything was delivered".into());
    }
    Ok(())
}
