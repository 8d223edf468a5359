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

use deskhook::{Action, Dispatcher};
use deskhook_transports::delivery::{DeliveryGuard, Endpoint};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, Spool};

/// A receiver on 127.0.0.1 that answers 503 while `down` is set, else 204, and prints what
/// it takes.
fn receiver(down: Arc<AtomicBool>) -> Result<String, Box<dyn Error>> {
    let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?;
    let url = format!("http://{}/", server.server_addr());
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let status = if down.load(Ordering::SeqCst) {
                503
            } else {
                let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                println!(
                    "  receiver took {} on ticket {} (sequence {})",
                    event["action"].as_str().unwrap_or("?"),
                    event["ticket"]["code"].as_str().unwrap_or("?"),
                    request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("x-deskhook-sequence"))
                        .map_or("-".to_owned(), |h| h.value.to_string())
                );
                204
            };
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    Ok(url)
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
    let url = receiver(down.clone())?;
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
    if delivered != 5 || stats.pending != 0 {
        return Err("not everything was delivered".into());
    }
    Ok(())
}
