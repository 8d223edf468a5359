//! `deskhook serve`: the delivery engine as a daemon, for helpdesks not written in Rust. It
//! accepts events over HTTP, delivers them to the endpoints of a deskhook.toml (and those
//! added through its console or API), and serves the console, the admin API, Prometheus
//! metrics and a health check.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use deskhook_console::{Console, Problem};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::http_async::AsyncHttpSink;
use deskhook_transports::spool::Spool;
use metrics_exporter_prometheus::PrometheusHandle;

use keys::Keys;

mod body;
mod connections;
mod deadline;
mod events;
mod hosts;
mod kept;
mod keys;
mod labels;
mod metrics;
mod openapi;
mod token;

/// Run the delivery engine as a daemon: accept events over HTTP, deliver them, and serve
/// the console; stop on SIGTERM or SIGINT, within --grace (a second one stops at once; SIGHUP
/// is logged and ignored).
///
/// POST /v1/events takes an event's JSON as its body (Zenlix, Usedesk or iQChannels, told
/// from its keys or named by a Deskhook-Format header), with Authorization: Bearer TOKEN,
/// an optional Deskhook-Tenant header (the company it belongs to) and an optional
/// Idempotency-Key (a retried request with the same key is accepted once). It answers 202
/// with the event's id once the event is accepted: with a spool, once it is on disk.
///
/// Its OpenAPI document is at /v1/openapi.json (either token reads it). The console is at
/// /, the admin API at /api/v1 (its OpenAPI document at /api/v1/openapi.json), Prometheus
/// text at /metrics, and /healthz answers 200 while the
/// daemon takes events (503 while its spool cannot write, as on a full disk). Everything
/// but /healthz, the login form (/login, /logout) and the console's stylesheet and script
/// (/assets/) needs the token: as a bearer header, or (for the pages) typed once in the
/// login form. With --ingest-token-env (or --ingest-token-file), the helpdesk gets a token
/// of its own that may post events and nothing else.
///
/// With a spool, accepted events survive a crash (kill -9 included), and so do endpoints
/// added through the console or the API: at start the spool's endpoints are registered
/// again, then those of --config (which win by name: a console change to one of those
/// lasts until the next start, and the start warns that it undid it).
#[derive(Debug, clap::Args)]
#[command(after_long_help = SERVE_HELP)]
pub(crate) struct Args {
    /// The deskhook.toml whose [[endpoint]]s and [delivery] settings to start with (it may
    /// have no endpoint: add them in the console or the API).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The spool's directory: accepted events and the endpoint registry on disk. Instead of
    /// a [spool] section in --config.
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Where to listen. Loopback by default: give 0.0.0.0:8089 (behind a TLS proxy) for
    /// other machines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089",
          value_parser = crate::parse_listen_addr)]
    listen: SocketAddr,
    /// A name requests may be for (their Host header), besides localhost and loopback
    /// addresses on a loopback --listen: a TLS proxy in front that passes its own name on
    /// (nginx's `proxy_set_header Host $host`). Repeat for more. On loopback, a request for
    /// any other name is answered 421 (but /healthz): a page of another site whose name
    /// resolves to 127.0.0.1 (DNS rebinding) must not reach the daemon. Listening
    /// elsewhere, requests are for any name unless this is given, and then for the names
    /// given only (list 127.0.0.1 or localhost too if a client on the machine uses it).
    #[arg(long = "allow-host", value_name = "NAME", value_parser = host_name)]
    allow_hosts: Vec<String>,
    /// The environment variable holding the token (random, at least 16 bytes).
    #[arg(long, value_name = "NAME", default_value = "DESKHOOK_TOKEN")]
    token_env: String,
    /// Read the token from this file instead (spaces and line breaks around it are not part
    /// of it):
    /// systemd's LoadCredential (`$CREDENTIALS_DIRECTORY/token`), a Docker or Kubernetes
    /// secret mounted as a file.
    #[arg(long, value_name = "PATH", conflicts_with = "token_env")]
    token_file: Option<PathBuf>,
    /// An environment variable holding a second token (random, at least 16 bytes, not the
    /// first)
    /// that may post events and nothing else: give it to the helpdesk, and keep the
    /// operators' token for operators (the console, the API, /metrics). Without it, the
    /// one token does everything.
    #[arg(long, value_name = "NAME")]
    ingest_token_env: Option<String>,
    /// Read the ingest token (see --ingest-token-env) from this file instead.
    #[arg(long, value_name = "PATH", conflicts_with = "ingest_token_env")]
    ingest_token_file: Option<PathBuf>,
    /// How long a stopping daemon gives requests and deliveries under way to finish, in
    /// all: requests still open when it ends are no longer waited for (an event whose body
    /// has not arrived gets a 503), and what is left is dead-lettered (with a spool, stays
    /// on disk for the next start). A second SIGTERM or Ctrl-C ends it at once.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = deskhook::policy::parse_duration)]
    grace: Duration,
    /// How long an event's body may go without a byte arriving (and, 4 times that, how long
    /// it may take in all): the request is then answered 408 and nothing of it is
    /// accepted. A client stalled in its body holds one of the 1,024 places of events being
    /// accepted at once until then. The console's and the API's bodies (the login form's
    /// included) must arrive whole within as long of their head, or are answered 400.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = deskhook::policy::parse_duration)]
    body_timeout: Duration,
    /// How long a series of /metrics may go without a change before it is left out: with
    /// [delivery] metrics_per_endpoint, a removed endpoint's series go then (an endpoint
    /// idle as long comes back from 0 at its next attempt, which Prometheus' rate() and
    /// increase() read as a counter reset). Counters and histograms; the gauges are read
    /// at each scrape.
    #[arg(long, value_name = "DUR", default_value = "1d", value_parser = deskhook::policy::parse_duration)]
    metrics_forget: Duration,
    /// How long a request's head (its request line and headers) may take to arrive: the
    /// connection is then closed without an answer. A keep-alive connection waiting for its
    /// next request is closed after as long.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = deskhook::policy::parse_duration)]
    header_timeout: Duration,
    /// Connections open at once at most, 1 to 65536: past it, new ones wait until one
    /// closes (logged), so that clients cannot take the file descriptors the deliveries
    /// and the spool need. Keep it under the process's limit (ulimit -n). The cap is for
    /// all clients together: where clients you do not trust can connect, let the proxy in
    /// front limit each one's connections (nginx's limit_conn), or one client can hold
    /// them all.
    #[arg(long, value_name = "N", default_value = "512", value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
    /// Worker threads of the daemon's runtime, 1 to 1024 (one per core when not given).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Lets the console and the API set allow_private and allow_cidrs on endpoints, which
    /// open them to this server's loopback and private networks: whoever has the token
    /// could then reach a service only this server reaches. Without it, those come from
    /// deskhook.toml, and a request that turns them on is refused.
    #[arg(long)]
    console_allow_private: bool,
}

/// The end of `deskhook serve --help`: the answers, and a session with curl.
const SERVE_HELP: &str = "\
Answers (each error an RFC 9457 problem document; nothing is half-applied):
  202  {\"id\":\"01a2...\",\"event_type\":\"create\",\"ticket\":\"E3XK\",\"tenant\":\"acme\",
       \"endpoints\":2,\"durable\":true,...} once accepted (with a spool, once on disk;
       \"endpoints\":0 and \"durable\":false when no endpoint takes it: nothing is kept;
       without a spool, \"refused\":[{\"endpoint\",\"reason\",\"dead_lettered\"}] names the
       endpoints that did not queue it (the first 16; \"refused_total\" counts them)
       while others queued it or wrote it to the dead letters: do not send it again,
       those would get it twice)
  400  an unknown body, or a bad header or field (named; an empty Deskhook-Tenant, a
       header given twice or not UTF-8)
  401  a missing or wrong token
  403  the ingest token (--ingest-token-env/-file) anywhere but POST /v1/events and its
       description, GET /v1/openapi.json (and /healthz, which needs no token)
  404  an unknown endpoint in the API
  408  the event's body stopped arriving for --body-timeout (30 s by default), or took
       4 times that in all; nothing of it was accepted: send it again
  409  the same Idempotency-Key is being accepted right now (Retry-After: 1: a client
       that hung up is accepted all the same, and its retry gets that answer); in the
       API, a name in use, or an endpoint changed by someone else meanwhile
  412  in the API, an If-Match whose version is no longer the endpoint's
  413  a body over max_payload, as received or as deskhook sends it (every field
       written), or one that needs more memory than max_queued_bytes holds
  415  a multipart body (send the event's JSON as the body; a form's is read as JSON), a
       Content-Encoding other than identity, or a body that is not UTF-8 and whose
       Content-Type names another charset (one with none, or UTF-8, named is a 400)
  421  a request for another host than localhost, a loopback address or an
       --allow-host name, on a loopback --listen (with --allow-host, any other
       name; /healthz answers whatever the host)
  422  another body under an Idempotency-Key already used
  500  the request's task failed (a bug: see the log); retry it (with Retry-After)
  503  nothing kept the event: every endpoint's queue or the memory budget is full,
       or the spool; or 1,024 events are being accepted at once (with Retry-After).
       With overflow = drop-oldest and no spool, a full queue takes the event and
       drops its oldest one, whose 202 is then not kept: counted and logged as dropped

Idempotency keys are per tenant (two tenants' same key are two keys); the last 100,000 of
all tenants are kept (fewer when their answers take more than 64 MiB), with a spool also
on disk beside it (idempotency-keys.sqlite: a restart remembers them), else in memory
only; a key's event is told by its body and the format it is read as (named or told from
its keys), and a retry gets the first answer again. A key being accepted is never
forgotten (with 100,000 of them at once, a new key gets a 503). A [file_log] in --config
gets one line per event handed to delivery. The login form's session is an HttpOnly, SameSite=Strict cookie (Secure behind a
TLS proxy that sets X-Forwarded-Proto) that ends after 8 hours unused or a week.

A session (examples/serve_from_curl.sh runs a whole one offline):
  export DESKHOOK_TOKEN=\"$(head -c 24 /dev/urandom | base64)\"
  deskhook serve --config deskhook.toml --spool /var/lib/helpdesk/deskhook-spool
  curl -H \"Authorization: Bearer $DESKHOOK_TOKEN\" -H 'Deskhook-Tenant: acme' \\
       -H 'Idempotency-Key: ticket-E3XK-create' --data-binary @event.json \\
       http://127.0.0.1:8089/v1/events

At start it prints `listening on http://ADDR/` and a line saying who can reach it (loopback
only unless --listen says otherwise; put a TLS proxy in front), how many endpoints it has
and where the console, the API, events and metrics are.";

/// A name `--allow-host` takes: a host name or an IP address, without a port.
fn host_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let valid = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
        && !(name.contains(':')
            && !name.starts_with('[')
            && name.parse::<std::net::IpAddr>().is_err());
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "'{name}' is not a host name (give the name as the Host header says it, without \
             its port: helpdesk.example.com)"
        ))
    }
}

/// SIGHUP, which ends a process by default and reloads a relay, is logged and ignored:
/// serve's endpoints change through its API and console, and an operator's reload must not
/// end it with events in memory.
#[cfg(unix)]
fn ignore_hangups() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "SIGHUP ignored: serve's endpoints change through its API and console (restart \
                 it to read --config again; SIGTERM stops it)"
            );
        }
    });
    Ok(())
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let operators = token::TokenSource::operators(&args.token_env, args.token_file.as_deref());
    let token = token::token_in(operators)?;
    let ingest = token::TokenSource::ingest(
        args.ingest_token_env.as_deref(),
        args.ingest_token_file.as_deref(),
    );
    let ingest_token = ingest.map(token::token_in).transpose()?;
    if let Some(ingest) = ingest
        && ingest_token.as_ref() == Some(&token)
    {
        return Err(format!(
            "the ingest token (in {ingest}) is the operators' token (in {operators}): give \
             the helpdesk a token of its own, or leave the ingest token out"
        ));
    }
    for (flag, timeout, what) in [
        (
            "--body-timeout",
            args.body_timeout,
            "answer every event 408 before its body came",
        ),
        (
            "--header-timeout",
            args.header_timeout,
            "close every connection before its request came",
        ),
        (
            "--metrics-forget",
            args.metrics_forget,
            "drop every counter and histogram at each scrape",
        ),
    ] {
        if timeout.is_zero() {
            crate::usage_error(
                "serve",
                format!("{flag} 0s would {what}; give a duration such as 30s"),
            );
        }
    }
    let config = crate::send::load_config(&args.config)?;
    let delivery = config.delivery_config().map_err(|e| e.to_string())?;
    let max_body = delivery.max_payload;
    // Said whole at start: relative, it is relative to a working directory a service
    // manager chose (`/` under systemd).
    let dead_letter_file = std::path::absolute(&delivery.dead_letter_path)
        .unwrap_or(delivery.dead_letter_path.clone());
    let mut builder = AsyncHttpSink::builder().config(delivery);
    for endpoint in config.endpoints().map_err(|e| e.to_string())? {
        builder = builder.endpoint(endpoint);
    }
    let configured_spool = config.spool().map_err(|e| e.to_string())?;
    let spool = match (&args.spool, configured_spool) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "give the spool once: --spool, or the [spool] section of '{}'",
                args.config.display()
            ));
        }
        (Some(dir), None) => Some(Spool::open(dir).map_err(|e| e.to_string())?),
        (None, Some(spool)) => Some(spool.open().map_err(|e| e.to_string())?),
        (None, None) => None,
    };
    let durable = spool.is_some();
    // With a spool, the idempotency keys are kept beside it, and read back now. A file
    // that cannot be used costs the keys, not the daemon: it starts, keeping them in memory.
    let mut keys = Keys::default();
    let kept = spool.as_ref().and_then(|spool| {
        let path = spool.dir().join(kept::FILE);
        let opened = kept::KeptKeys::open(spool.dir()).and_then(|kept| {
            let read = kept.load(&mut keys)?;
            Ok((kept, read))
        });
        match opened {
            Ok((kept, (loaded, skipped))) => {
                if skipped > 0 {
                    log::warn!(
                        target: deskhook::LOG_TARGET,
                        "serve: {skipped} idempotency key(s) in {} did not read and were \
                         left out ({loaded} read)",
                        path.display()
                    );
                }
                Some(kept)
            }
            Err(e) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "serve: {e}; idempotency keys are kept in memory only (a restart \
                     forgets them): move {} away to start a new one",
                    path.display()
                );
                None
            }
        }
    });
    let file = config.file_sink().map_err(|e| e.to_string())?;
    if let Some(spool) = spool {
        builder = builder.spool(spool).restore_endpoints(true);
    }
    let metrics = metrics::install_recorder(args.metrics_forget)?;

    let runtime = crate::relay::daemon_runtime(args.threads)?;
    let served = runtime.block_on(async move {
        let signals = crate::relay::StopSignals::install()?;
        #[cfg(unix)]
        ignore_hangups()?;
        // Before the sink starts delivering what a spool holds: a port in use ends the start
        // at once, not after the sink's shutdown.
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on {}: {e} (give another address with --listen)",
                    args.listen
                )
            })?;
        let (sink, guard) = builder.build_async().map_err(|e| e.to_string())?;
        metrics::keep_up(metrics.clone());
        let daemon = Arc::new(Daemon {
            accepting: Arc::new(tokio::sync::Semaphore::new(MAX_ACCEPTING as usize)),
            sink: sink.clone(),
            token: token.clone(),
            ingest_token,
            durable,
            max_body,
            body_timeout: args.body_timeout,
            metrics,
            keys: Mutex::new(keys),
            kept,
            file,
            grace_over: tokio::sync::watch::Sender::new(false),
        });
        let app = app(
            daemon.clone(),
            // The daemon checks `Host` in front of all its routes (below).
            Console::new(sink.clone())
                .any_host()
                .require_token(&token)
                .allow_private_networks(args.console_allow_private),
        );
        let hosts = hosts::of(args.listen, &args.allow_hosts);
        let any_host = hosts.is_none();
        let app = match hosts {
            Some(hosts) => app.layer(middleware::from_fn_with_state(
                Arc::new(hosts),
                hosts::only_ours,
            )),
            None => app,
        };
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        crate::send::print_line(&format!("listening on http://{addr}/"));
        if any_host {
            log::warn!(target: deskhook::LOG_TARGET, "{}", hosts::any_host(addr));
        }
        let endpoints = match sink.endpoints().len() {
            0 => "no endpoint yet (events go nowhere until one is added in the console or the \
                  API)"
                .to_owned(),
            n => format!("{n} endpoint(s)"),
        };
        crate::send::print_line(&format!(
            "{}; {endpoints}{}; console at /, API at /api/v1, events at POST /v1/events, \
             metrics at /metrics",
            if addr.ip().is_loopback() {
                "loopback only: other machines cannot reach it (--listen 0.0.0.0:8089 to open it, behind a TLS proxy)".to_owned()
            } else {
                format!("open to the network on {addr}: put a TLS proxy in front, tokens travel in the clear here")
            },
            if durable {
                ", events, endpoints and dead letters kept in the spool".to_owned()
            } else {
                format!(
                    ", no spool: events in memory only, dead letters to {}",
                    dead_letter_file.display()
                )
            },
        ));
        let limits = connections::Limits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections as usize,
        };
        serve_until_stopped(listener, app, limits, signals, args.grace, &daemon, guard).await
    });
    // The grace is over (or a second signal cut it short): work still running on the
    // runtime's blocking threads (a replay of many letters, a rewrite of the dead-letter
    // file) is not waited for past LEFT_BEHIND, where dropping the runtime would wait for
    // it without end, deaf to signals by then.
    runtime.shutdown_timeout(LEFT_BEHIND);
    served
}

/// How long the stop waits for the runtime's blocking work once the grace is over.
const LEFT_BEHIND: Duration = Duration::from_secs(1);

/// Serves until a stop signal, then stops within `grace` in all, counted from the signal:
/// open requests get what is left of it (those still open at its end are no longer waited
/// for, and an event whose body had not arrived is answered 503), then the sink's shutdown
/// gets the rest (delivered, dead-lettered, or left in the spool). A second signal ends the
/// grace there and then. Prints the summary last.
async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: connections::Limits,
    mut signals: crate::relay::StopSignals,
    grace: Duration,
    daemon: &Daemon,
    guard: deskhook_transports::delivery::DeliveryGuard,
) -> Result<ExitCode, String> {
    // Serving, stopping (a first signal), or cut short (a second).
    let (stage, watching) = tokio::sync::watch::channel(Stage::Serving);
    tokio::spawn(async move {
        signals.next().await;
        // Said first: the summary that ends the stop comes after it.
        crate::send::print_line(&format!(
            "stopping: requests and deliveries under way get up to --grace ({}); a second \
             SIGTERM or Ctrl-C stops at once",
            deskhook::policy::format_duration(grace)
        ));
        stage.send_replace(Stage::Stopping);
        signals.next().await;
        log::warn!(
            target: deskhook::LOG_TARGET,
            "serve: a second stop signal: the grace ends now (open requests are no longer \
             waited for; what is undelivered is dead-lettered, or stays in the spool)"
        );
        // The sender goes with this task: every stage is reached.
        stage.send_replace(Stage::CutShort);
    });
    let reached = |wanted: Stage| {
        let mut watching = watching.clone();
        async move {
            let _ = watching.wait_for(|stage| *stage >= wanted).await;
        }
    };
    let server = connections::serve_connections(listener, app, limits, reached(Stage::Stopping));
    tokio::pin!(server);
    // When the stop began: at the signal, or when the server ended by itself.
    let mut started = None;
    let over = tokio::select! {
        () = &mut server => None,
        () = reached(Stage::Stopping) => {
            let now = tokio::time::Instant::now();
            started = Some(now);
            // A request still under way when it ends (a body arriving slowly, an answer
            // its client does not read) is not waited for.
            let waited = tokio::select! {
                biased;
                () = reached(Stage::CutShort) => false,
                done = tokio::time::timeout(grace, &mut server) => done.is_ok(),
            };
            Some(waited)
        }
    };
    if over == Some(false) {
        // Their body reads end now, with a 503; the connections go when the daemon exits.
        let _ = daemon.grace_over.send(true);
        log::warn!(
            target: deskhook::LOG_TARGET,
            "serve: connections still open when the grace ended are no longer waited for (a \
             client stalled in the middle of its request); an event whose body had not \
             arrived is answered 503"
        );
    }
    let started = started.unwrap_or_else(tokio::time::Instant::now);
    let left = || grace.saturating_sub(started.elapsed());
    // Events whose clients hung up may still be on their way in (see `accept_event`); the
    // slots are held to the end, so that a request that comes now gets a 503 rather than
    // an event into a sink that is stopping.
    let _slots = tokio::select! {
        biased;
        () = reached(Stage::CutShort) => None,
        slots = tokio::time::timeout(left(), daemon.accepting.acquire_many(MAX_ACCEPTING)) => {
            slots.ok()
        }
    };
    // The flush gets what is left of the grace, unless a second signal ends it; the stop
    // then lets go of what is left (to the dead letters, or in the spool).
    let flushed = tokio::select! {
        biased;
        () = reached(Stage::CutShort) => Ok(()),
        flushed = daemon.sink.flush_async(left()) => flushed,
    };
    let flushed = flushed.and(guard.shutdown_async(Duration::ZERO).await);
    // The file log's buffered lines, written now: blocking work that outlives the grace
    // may hold the daemon (and the sink in it) past the runtime's end.
    if let Some(file) = &daemon.file
        && let Err(e) =
            tokio::task::block_in_place(|| deskhook::sink::EventSink::flush(file, Duration::ZERO))
    {
        log::warn!(target: deskhook::LOG_TARGET, "file log: {e}");
    }
    // Requests still reading their bodies now get a 503, not a 202 for an event the stopped
    // sink would not take.
    let _ = daemon.grace_over.send(true);
    let totals = daemon.sink.totals();
    // Without a spool, the stop put what was left in the dead letters, attempts under way
    // included (counted there): only what is still queued is left.
    let left_over = if daemon.durable {
        totals.queued + totals.in_flight
    } else {
        totals.queued
    };
    crate::send::print_line(&format!(
        "stopped: {} delivered, {} dead letter(s), {} dropped, {} for no endpoint, {} left {}",
        totals.delivered,
        totals.dead_lettered,
        totals.dropped,
        totals.unrouted,
        left_over,
        if daemon.durable {
            "in the spool"
        } else {
            "undelivered"
        }
    ));
    match flushed {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(_) if daemon.durable => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("{e}; the stop put them in the dead letters")),
    }
}

/// How far a stop has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// No stop signal yet.
    Serving,
    /// A first stop signal: within the grace.
    Stopping,
    /// A second: the grace ends now.
    CutShort,
}

/// Events accepted at once at most (`POST /v1/events` requests under way, those whose
/// clients hung up included): past it, 503 with `Retry-After: 1`.
const MAX_ACCEPTING: u32 = 1024;

/// What the daemon's own handlers share.
struct Daemon {
    /// A permit per event request under way ([`MAX_ACCEPTING`]); all of them taken back
    /// at shutdown, before the last flush.
    accepting: Arc<tokio::sync::Semaphore>,
    sink: DeliverySink,
    /// The operators' token: everything.
    token: String,
    /// `--ingest-token-env`'s: `POST /v1/events` only.
    ingest_token: Option<String>,
    durable: bool,
    max_body: usize,
    /// `--body-timeout`: the longest wait for the next bytes of an event's body.
    body_timeout: Duration,
    metrics: PrometheusHandle,
    keys: Mutex<Keys>,
    /// With a spool, the idempotency keys on disk, beside it.
    kept: Option<kept::KeptKeys>,
    /// The configuration's `[file_log]`: each accepted event's line.
    file: Option<deskhook_transports::file::FileSink>,
    /// Set when a stop's --grace is over: an event's body still being read is then
    /// answered 503, not waited for.
    grace_over: tokio::sync::watch::Sender<bool>,
}

/// The daemon's router: events, metrics and health next to the console.
fn app(daemon: Arc<Daemon>, console: Console) -> Router {
    let body_timeout = daemon.body_timeout;
    let events = Router::new()
        .route("/v1/events", post(events::accept_event))
        .route(
            "/v1/openapi.json",
            get(|| async { axum::Json(openapi::events_document()) }),
        )
        .layer(middleware::from_fn_with_state(
            daemon.clone(),
            bearer_for_events,
        ));
    let own = Router::new()
        .route("/metrics", get(metrics::render))
        // A typo here is the daemon's to answer, not the console's (a page).
        .route("/v1/{*rest}", any(no_such_event_path))
        .layer(middleware::from_fn_with_state(daemon.clone(), bearer_only))
        .merge(events)
        .route("/healthz", get(health))
        // A wrong method (GET /v1/events) is a problem document too, with its Allow.
        .layer(middleware::map_response(
            deskhook_console::api::problem_bodies,
        ))
        .with_state(daemon.clone());
    own.merge(
        console
            .router()
            .layer(middleware::from_fn_with_state(
                body_timeout,
                deadline::end_late_bodies,
            ))
            .layer(middleware::from_fn_with_state(daemon, ingest_stays_out)),
    )
}

/// `/healthz`, without the token (a load balancer's check): 200 while the daemon takes
/// events, 503 while its spool cannot (its writes of events failed, as on a full disk, or
/// found it full, within 10 s; or its writer stopped), so that a balancer sends them to
/// another daemon meanwhile. What fails is in
/// the log (the spool logs its failed writes), not in this answer anyone may read.
async fn health(State(daemon): State<Arc<Daemon>>) -> Response {
    match daemon.sink.health() {
        Ok(()) => "ok\n".into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the spool cannot take events now (its writes fail, or its writer \
             stopped); see the daemon's log\n",
        )
            .into_response(),
    }
}

/// Lets a request through with the operators' `Authorization: Bearer <token>` only (no
/// cookie: /metrics and the /v1 paths are for programs); the ingest token gets a 403.
async fn bearer_only(State(daemon): State<Arc<Daemon>>, request: Request, next: Next) -> Response {
    let given = deskhook_console::check_bearer_among(request.headers(), &daemon.tokens());
    match given {
        Some(Some(0)) => next.run(request).await,
        Some(Some(_)) => ingest_elsewhere(),
        given => unauthorized(given.is_some(), daemon.ingest_token.is_some()),
    }
}

/// The 403 of the ingest token anywhere but `POST /v1/events`.
fn ingest_elsewhere() -> Response {
    Problem::new(
        StatusCode::FORBIDDEN,
        "the ingest token may only post events (POST /v1/events); the console, the API and \
         /metrics take the operators' token (--token-file, or --token-env: DESKHOOK_TOKEN \
         by default)",
    )
    .into_response()
}

/// Keeps the ingest token out of the console and the API with a 403 (the console, which
/// knows only the operators' token, would answer 401 and log someone guessing).
async fn ingest_stays_out(
    State(daemon): State<Arc<Daemon>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(ingest) = &daemon.ingest_token
        && deskhook_console::bearer_is(request.headers(), ingest)
    {
        return ingest_elsewhere();
    }
    next.run(request).await
}

/// Lets `POST /v1/events` through with the operators' token or the ingest token.
async fn bearer_for_events(
    State(daemon): State<Arc<Daemon>>,
    request: Request,
    next: Next,
) -> Response {
    match deskhook_console::check_bearer_among(request.headers(), &daemon.tokens()) {
        Some(Some(_)) => next.run(request).await,
        given => unauthorized(given.is_some(), daemon.ingest_token.is_some()),
    }
}

impl Daemon {
    /// The tokens it takes, the operators' first.
    fn tokens(&self) -> Vec<&str> {
        std::iter::once(self.token.as_str())
            .chain(self.ingest_token.as_deref())
            .collect()
    }
}

/// The 401 of a request without a token it takes (`wrong`: it gave another one; `ingest`:
/// the daemon has an ingest token too).
fn unauthorized(wrong: bool, ingest: bool) -> Response {
    let detail = match (wrong, ingest) {
        (false, _) => "send the daemon's token as Authorization: Bearer <token>",
        (true, false) => {
            "the bearer token is not the daemon's; it is in the file or the environment \
             variable serve was given (--token-file, or --token-env: DESKHOOK_TOKEN by default)"
        }
        (true, true) => {
            "the bearer token is not the daemon's; it is in the file or the environment \
             variable serve was given (--token-file, or --token-env: DESKHOOK_TOKEN by \
             default; or the ingest token, for events)"
        }
    };
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"deskhook\""),
    );
    response
}

/// Any other path under `/v1/`.
async fn no_such_event_path() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such path; events go to POST /v1/events",
    )
}
