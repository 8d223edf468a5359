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
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deskhook::ReceiveOptions;
use deskhook::formats::Format;
use deskhook::sink::Emitted;
use deskhook_console::{Console, Problem};
use deskhook_transports::delivery::DeliverySink;
use deskhook_transports::http_async::AsyncHttpSink;
use deskhook_transports::spool::Spool;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use keys::{Claim, Claimed, Keys};

mod keys;

/// Run the delivery engine as a daemon: accept events over HTTP, deliver them, and serve
/// the console; stop on SIGTERM or SIGINT (SIGHUP is logged and ignored).
///
/// POST /v1/events takes an event's JSON as its body (Zenlix, Usedesk or iQChannels, told
/// from its keys or named by a Deskhook-Format header), with Authorization: Bearer TOKEN,
/// an optional Deskhook-Tenant header (the company it belongs to) and an optional
/// Idempotency-Key (a retried request with the same key is accepted once). It answers 202
/// with the event's id once the event is accepted: with a spool, once it is on disk.
///
/// The console is at /, the admin API at /api/v1 (its OpenAPI document at
/// /api/v1/openapi.json), Prometheus text at /metrics, and /healthz answers 200 while the
/// daemon runs. Everything but /healthz needs the token: as a bearer header, or (for the
/// pages) typed once in the login form.
///
/// With a spool, accepted events survive a crash (kill -9 included), and so do endpoints
/// added through the console or the API: at start the spool's endpoints are registered
/// again, then those of --config (which win by name).
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
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// The environment variable holding the token (at least 16 characters).
    #[arg(long, value_name = "NAME", default_value = "DESKHOOK_TOKEN")]
    token_env: String,
    /// How long a stopping daemon lets deliveries under way finish (with a spool, what is
    /// left stays on disk for the next start).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = deskhook::policy::parse_duration)]
    grace: Duration,
    /// Worker threads of the daemon's runtime, 1 to 1024 (one per core when not given).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
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
  404  an unknown endpoint in the API
  409  the same Idempotency-Key is being accepted right now (Retry-After: 1: a client
       that hung up is accepted all the same, and its retry gets that answer); in the
       API, a name in use, or an endpoint changed by someone else meanwhile
  412  in the API, an If-Match whose version is no longer the endpoint's
  413  a body over max_payload, as received or as deskhook sends it (every field written)
  415  a multipart body (send the event's JSON as the body; a form's is read as JSON)
  422  another body under an Idempotency-Key already used
  503  nothing kept the event: every endpoint's queue or the memory budget is full,
       or the spool; or 1,024 events are being accepted at once (with Retry-After)

Idempotency keys are per tenant; the last 100,000 are kept, in memory only (a restart
forgets them); a key's event is told by its body and the format it is read as (named or
told from its keys), and a retry gets the first answer again. A key being accepted is
never forgotten (with 100,000 of them at once, a new key gets a 503). A [file_log] in
--config gets one line per event handed to delivery. The login form's session is an
HttpOnly, SameSite=Strict cookie (Secure behind a TLS proxy that sets
X-Forwarded-Proto) that ends after 8 hours unused or a week.

A session (examples/serve_from_curl.sh runs a whole one offline):
  export DESKHOOK_TOKEN=\"$(head -c 24 /dev/urandom | base64)\"
  deskhook serve --config deskhook.toml --spool /var/lib/helpdesk/deskhook-spool
  curl -H \"Authorization: Bearer $DESKHOOK_TOKEN\" -H 'Deskhook-Tenant: acme' \\
       -H 'Idempotency-Key: ticket-E3XK-create' --data-binary @event.json \\
       http://127.0.0.1:8089/v1/events

At start it prints `listening on http://ADDR/` and a line saying who can reach it (loopback
only unless --listen says otherwise; put a TLS proxy in front), how many endpoints it has
and where the console, the API, events and metrics are.";

/// The buckets of `deskhook_attempt_duration_seconds` on /metrics: 5 ms to a minute.
const ATTEMPT_SECONDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// Shortest token accepted.
const MIN_TOKEN: usize = 16;

/// Refusals listed in a 202 at most.
const REFUSALS_SHOWN: usize = 16;

/// Longest Idempotency-Key.
const MAX_KEY: usize = 255;

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
    let token = std::env::var(&args.token_env).unwrap_or_default();
    if token.trim().len() < MIN_TOKEN {
        return Err(format!(
            "serve needs a token of at least {MIN_TOKEN} characters in the environment \
             variable {} (it {}); make one with `head -c 32 /dev/urandom | base64`, export it, \
             and send it as Authorization: Bearer <token>",
            args.token_env,
            if token.is_empty() {
                "is not set"
            } else {
                "is too short"
            }
        ));
    }
    let config = crate::send::load_config(&args.config)?;
    let delivery = config.delivery_config().map_err(|e| e.to_string())?;
    let max_body = delivery.max_payload;
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
    let file = config.file_sink().map_err(|e| e.to_string())?;
    if let Some(spool) = spool {
        builder = builder.spool(spool).restore_endpoints(true);
    }
    let metrics = PrometheusBuilder::new()
        // A histogram (summable across serve instances), not the exporter's default summary.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("deskhook_attempt_duration_seconds".into()),
            &ATTEMPT_SECONDS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;

    let runtime = crate::relay::daemon_runtime(args.threads)?;
    runtime.block_on(async move {
        let stop = crate::relay::stop_signal()?;
        #[cfg(unix)]
        ignore_hangups()?;
        let (sink, guard) = builder.build_async().map_err(|e| e.to_string())?;
        let daemon = Arc::new(Daemon {
            accepting: Arc::new(tokio::sync::Semaphore::new(MAX_ACCEPTING as usize)),
            sink: sink.clone(),
            token: token.trim().to_owned(),
            durable,
            max_body,
            metrics,
            keys: Mutex::default(),
            file,
        });
        let app = app(
            daemon.clone(),
            Console::new(sink.clone()).require_token(token.trim()),
        );
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        crate::send::print_line(&format!("listening on http://{addr}/"));
        crate::send::print_line(&format!(
            "{}; {} endpoint(s){}; console at /, API at /api/v1, events at POST /v1/events, \
             metrics at /metrics",
            if addr.ip().is_loopback() {
                "loopback only: other machines cannot reach it (--listen 0.0.0.0:8089 to open it, behind a TLS proxy)".to_owned()
            } else {
                format!("open to the network on {addr}: put a TLS proxy in front, tokens travel in the clear here")
            },
            sink.endpoints().len(),
            if durable { ", events and endpoints kept in the spool" } else { ", no spool: events in memory only" },
        ));
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| format!("the server failed: {e}"))?;
        // Events whose clients hung up may still be on their way in (see `accept_event`).
        let started = tokio::time::Instant::now();
        let _ = tokio::time::timeout(
            args.grace,
            daemon.accepting.acquire_many(MAX_ACCEPTING),
        )
        .await;
        let grace = args.grace.saturating_sub(started.elapsed());
        let flushed = sink.flush_async(grace).await;
        let totals = sink.totals();
        crate::send::print_line(&format!(
            "stopped: {} delivered, {} dead letter(s), {} dropped, {} left {}",
            totals.delivered,
            totals.dead_lettered,
            totals.dropped,
            totals.queued + totals.in_flight,
            if durable { "in the spool" } else { "undelivered" }
        ));
        drop(guard);
        match flushed {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(_) if durable => Ok(ExitCode::SUCCESS),
            Err(e) => Err(e.to_string()),
        }
    })
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
    token: String,
    durable: bool,
    max_body: usize,
    metrics: PrometheusHandle,
    keys: Mutex<Keys>,
    /// The configuration's `[file_log]`: each accepted event's line.
    file: Option<deskhook_transports::file::FileSink>,
}

/// The daemon's router: events, metrics and health next to the console.
fn app(daemon: Arc<Daemon>, console: Console) -> Router {
    let own = Router::new()
        .route("/v1/events", post(accept_event))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn_with_state(daemon.clone(), bearer_only))
        .route("/healthz", get(|| async { "ok\n" }))
        // A wrong method (GET /v1/events) is a problem document too, with its Allow.
        .layer(middleware::map_response(
            deskhook_console::api::problem_bodies,
        ))
        .with_state(daemon);
    own.merge(console.router())
}

/// Lets a request through with `Authorization: Bearer <token>` only: no cookie, so that no
/// other site can make a logged-in browser post events.
async fn bearer_only(State(daemon): State<Arc<Daemon>>, request: Request, next: Next) -> Response {
    let given = deskhook_console::check_bearer(request.headers(), &daemon.token);
    if given == Some(true) {
        return next.run(request).await;
    }
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        if given.is_some() {
            "the bearer token is not the daemon's; it is in the environment variable serve was \
             given (--token-env, DESKHOOK_TOKEN by default)"
        } else {
            "send the daemon's token as Authorization: Bearer <token>"
        },
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"deskhook\""),
    );
    response
}

async fn render_metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    // The spool's depth is a query of its database: off the runtime's threads, which
    // deliver.
    let gauges = {
        let daemon = daemon.clone();
        tokio::task::spawn_blocking(move || daemon.sink.record_gauges()).await
    };
    match gauges {
        Ok(Ok(())) => {}
        // Every other metric still: an incident is when they matter most.
        Ok(Err(e)) => {
            log::warn!(target: deskhook::LOG_TARGET, "/metrics: cannot read the spool's depth: {e}");
        }
        Err(e) => {
            return Problem::internal(format!("the metrics task failed: {e}")).into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        daemon.metrics.render(),
    )
        .into_response()
}

/// Writes an event's file-log line when dropped armed: the request was dropped while its
/// spool commit was awaited.
struct PendingLine<'a> {
    daemon: &'a Daemon,
    emitted: &'a deskhook::sink::Emitted<'a>,
    armed: bool,
}

impl Drop for PendingLine<'_> {
    fn drop(&mut self) {
        if self.armed {
            log_line(self.daemon, self.emitted);
        }
    }
}

/// The configuration's `[file_log]` line of an event handed to delivery.
fn log_line(daemon: &Daemon, emitted: &deskhook::sink::Emitted<'_>) {
    if let Some(file) = &daemon.file
        && let Err(e) = deskhook::sink::EventSink::send(file, emitted)
    {
        log::warn!(target: deskhook::LOG_TARGET, "file log: {e}");
    }
}

/// The value of header `name` (as it is written in the docs), trimmed: UTF-8 text, given
/// once.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Problem> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::field(
            name,
            format!("{name} is given more than once; give it once"),
        ));
    }
    std::str::from_utf8(value.as_bytes())
        .map(|text| Some(text.trim()))
        .map_err(|_| {
            Problem::field(
                name,
                format!("{name} is not UTF-8 text; send the value as UTF-8"),
            )
        })
}

/// The format a `Deskhook-Format` header names.
fn format_named(name: &str) -> Result<Format, Problem> {
    match name.to_ascii_lowercase().as_str() {
        "zenlix" => Ok(Format::Zenlix),
        "usedesk" => Ok(Format::Usedesk),
        "iqchannels" => Ok(Format::IqChannels),
        _ => Err(Problem::field(
            "Deskhook-Format",
            format!("Deskhook-Format '{name}' is not zenlix, usedesk or iqchannels"),
        )),
    }
}

/// `POST /v1/events`. Run as a task of its own, to its end: a client that hangs up makes
/// axum drop this handler, and an event on its way into the spool would lose its
/// Idempotency-Key's answer (the retry would send it again, under another id).
async fn accept_event(State(daemon): State<Arc<Daemon>>, request: Request) -> Response {
    let Ok(permit) = daemon.accepting.clone().try_acquire_owned() else {
        return retry_soon(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_ACCEPTING} events are being accepted at once; retry in a moment"),
        ));
    };
    let accepting = tokio::spawn(async move {
        let _permit = permit;
        accept(&daemon, request).await
    });
    match accepting.await {
        Ok(Ok(response)) => response,
        Ok(Err(problem)) => problem.into_response(),
        Err(e) => {
            log::error!(target: deskhook::LOG_TARGET, "serve: an event's request failed: {e}");
            retry_soon(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the event's request failed (see the daemon's log); retry it",
            ))
        }
    }
}

/// `problem` with `Retry-After: 1`.
fn retry_soon(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn accept(daemon: &Daemon, request: Request) -> Result<Response, Problem> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    // The body is read as JSON whatever the Content-Type says (curl -d sends
    // x-www-form-urlencoded), except a multipart form (curl -F), which cannot be an event.
    if let Some(kind) = header_text(headers, "Content-Type")?
        && kind.starts_with("multipart/")
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type '{kind}' is a form; send the event's JSON as the body \
                 (curl --data-binary @event.json -H 'Content-Type: application/json')"
            ),
        ));
    }
    let body = read_body(body, daemon.max_body).await?;
    let mut options = ReceiveOptions::new();
    if let Some(name) = header_text(headers, "Deskhook-Format")? {
        options = options.format(format_named(name)?);
    }
    let tenant = match header_text(headers, "Deskhook-Tenant")? {
        // What an unset shell variable sends: not the same as no tenant.
        Some("") => {
            return Err(Problem::field(
                "Deskhook-Tenant",
                "Deskhook-Tenant is empty; give the tenant, or leave the header out for an \
                 event of no tenant",
            ));
        }
        tenant => tenant,
    };
    let key = header_text(headers, "Idempotency-Key")?
        .map(|key| {
            if key.is_empty() || key.len() > MAX_KEY {
                Err(Problem::field(
                    "Idempotency-Key",
                    format!("Idempotency-Key must be 1 to {MAX_KEY} characters"),
                ))
            } else {
                Ok((tenant.unwrap_or("").to_owned(), key.to_owned()))
            }
        })
        .transpose()?;
    let received = deskhook::receive(&[("", ""); 0], &body, &options).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not an event deskhook knows (Zenlix, Usedesk or iQChannels JSON): {e}"
            ),
        )
    })?;
    let emitted = Emitted::from_webhook(&received).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the event cannot be sent: {e}"),
        )
    })?;
    let emitted = match tenant {
        Some(tenant) => emitted
            .with_tenant(tenant)
            .map_err(|e| Problem::field("Deskhook-Tenant", format!("Deskhook-Tenant: {e}")))?,
        None => emitted,
    };
    // Checked here, before anything is queued: deskhook writes every field of the event,
    // so the body it sends can be larger than the one received.
    if emitted.body().len() > daemon.max_body {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the event is {} bytes as deskhook sends it (every field written), over \
                 max_payload ({} bytes); send a smaller event, or raise max_payload in \
                 [delivery] of the config",
                emitted.body().len(),
                daemon.max_body
            ),
        ));
    }
    // To tell a retried request from another event under the same key: the bytes, and the
    // format they were read as (named or not).
    let digest = key.as_ref().map_or([0; 32], |_| {
        keys::digest(&received.format().to_string(), &body)
    });
    if let Some(key) = &key {
        let claim = daemon
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .claim(key, digest);
        match claim {
            Claim::New => {}
            Claim::Again(reply) => {
                // The first answer again, refusals included.
                let mut reply = (*reply).clone();
                with_event(&mut reply, &emitted);
                reply["replayed_key"] = serde_json::Value::Bool(true);
                return Ok((StatusCode::ACCEPTED, axum::Json(reply)).into_response());
            }
            Claim::Refused(problem) => {
                // Being accepted now: a retry in a moment is answered.
                let passing = [StatusCode::CONFLICT, StatusCode::SERVICE_UNAVAILABLE]
                    .map(|status| status.as_u16())
                    .contains(&problem.status);
                return Ok(if passing {
                    retry_soon(problem)
                } else {
                    problem.into_response()
                });
            }
        }
    }
    // Should this end before it says what became of the event (a panic, the runtime shutting
    // down: a client that hangs up does not stop it, see `accept_event`), the key is
    // forgotten (a retry sends the event again, at least once) rather than left 'being
    // accepted' for good.
    let mut claimed = Claimed {
        keys: &daemon.keys,
        key: key.as_ref(),
    };
    // What it goes to as it is routed: an event no endpoint takes is accepted, not kept.
    let mut endpoints = daemon.sink.endpoints_for(&emitted);
    let (outcome, refused) = if daemon.durable {
        // A spool far behind would make the send wait for its writer: awaited here, so
        // that the runtime's threads (the console, /metrics) keep answering meanwhile.
        daemon.sink.room().await;
        // It still waits when other senders took the room meanwhile.
        let receipt = blocking(|| daemon.sink.send_with_receipt(&emitted));
        // The line once the commit is done; or, if this ends during the await (the runtime
        // shutting down), then (the event is on its way into the spool).
        let mut pending = PendingLine {
            daemon,
            emitted: &emitted,
            armed: true,
        };
        let committed = receipt.await;
        pending.armed = false;
        if committed.is_ok() {
            log_line(daemon, &emitted);
        }
        (committed.map_err(|e| e.to_string()), Vec::new())
    } else {
        // Routed now, so that an event nothing kept (a full queue, the memory budget) is a
        // 503 the client retries, not a drop; one that some endpoints took is accepted,
        // naming those that did not: sent again, it would reach the others twice, under
        // another id. (It waits under the block overflow policy.)
        let routed = blocking(|| daemon.sink.route_now(&emitted));
        endpoints = routed.queued.len() + routed.refused.len();
        if routed.lost() {
            let reasons: Vec<&str> = routed.refused.iter().map(|r| r.reason.as_str()).collect();
            (Err(reasons.join("; ")), Vec::new())
        } else {
            log_line(daemon, &emitted);
            (Ok(()), routed.refused)
        }
    };
    claimed.key = None;
    let mut keys = daemon.keys.lock().unwrap_or_else(|e| e.into_inner());
    match outcome {
        Ok(()) => {
            let mut reply = accepted_reply(&emitted, (endpoints, daemon.durable));
            if !refused.is_empty() {
                // At most REFUSALS_SHOWN (each key keeps its answer), and how many in all.
                reply["refused"] = refused
                    .iter()
                    .take(REFUSALS_SHOWN)
                    .map(|r| {
                        serde_json::json!({
                            "endpoint": r.endpoint,
                            "reason": r.reason,
                            "dead_lettered": r.dead_lettered,
                        })
                    })
                    .collect();
                reply["refused_total"] = refused.len().into();
            }
            if let Some(key) = &key {
                // A retry that lost this answer gets the same, made of what is kept here
                // and of its own body (the same bytes: the digest says so).
                let mut kept = reply.clone();
                if let Some(fields) = kept.as_object_mut() {
                    for field in ["event_type", "ticket", "tenant"] {
                        fields.remove(field);
                    }
                }
                keys.accepted(key, digest, Arc::new(kept));
            }
            Ok((StatusCode::ACCEPTED, axum::Json(reply)).into_response())
        }
        Err(error) => {
            if let Some(key) = &key {
                keys.forget(key);
            }
            let mut response = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the event was not accepted: {error}; retry later"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            Ok(response)
        }
    }
}

/// Reads at most `limit` bytes of `body`; more is a 413.
async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Problem> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut too_large = false;
        while let Some(error) = cause {
            too_large |= error.is::<http_body_util::LengthLimitError>();
            cause = error.source();
        }
        if too_large {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {limit} bytes; raise max_payload in [delivery] of the \
                     config if events this large are expected"
                ),
            )
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            )
        }
    })
}

/// The body of `202 Accepted`: the event's id, and how many endpoints take it (an event no
/// endpoint takes is not kept, so it is not durable either).
fn accepted_reply(emitted: &Emitted<'_>, (endpoints, durable): (usize, bool)) -> serde_json::Value {
    let mut reply = serde_json::json!({
        "id": emitted.id().to_string(),
        "endpoints": endpoints,
        "durable": durable && endpoints > 0,
        "replayed_key": false,
    });
    with_event(&mut reply, emitted);
    reply
}

/// Sets the fields of a 202 that the event's body gives (a key keeps its answer without
/// them: the ticket can be as long as the body).
fn with_event(reply: &mut serde_json::Value, emitted: &Emitted<'_>) {
    reply["event_type"] = emitted.event_type().as_str().into();
    reply["ticket"] = emitted.ordering_key().into();
    reply["tenant"] = emitted.tenant().into();
}

/// Runs `work`, which may block (a full queue under the block overflow policy, a spool's
/// commit), without holding up the other tasks of a multi-thread runtime's worker.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that hangs up as its event is committed (axum drops the handler) does not
    /// make the retry of its request a second event: the key keeps its answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_whose_client_hangs_up_keeps_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = deskhook_transports::delivery::Endpoint::new("crm", "http://127.0.0.1:9/")
            .unwrap()
            .allow_private(true);
        let (sink, guard) = DeliverySink::builder()
            .endpoint(endpoint)
            .spool(Spool::open(dir.path()).unwrap())
            .dead_letter_path(dir.path().join("dead.jsonl"))
            .build_async()
            .unwrap();
        sink.endpoints().pause("crm").unwrap();
        let daemon = Arc::new(Daemon {
            accepting: Arc::new(tokio::sync::Semaphore::new(MAX_ACCEPTING as usize)),
            sink: sink.clone(),
            token: "t".repeat(MIN_TOKEN),
            durable: true,
            max_body: 1 << 20,
            metrics: PrometheusBuilder::new().build_recorder().handle(),
            keys: Mutex::default(),
            file: None,
        });
        let mut ticket = deskhook::sample::ticket();
        ticket.code = "K-1".to_owned();
        let body =
            deskhook::EventRef::new(deskhook::Action::Create, &ticket, &deskhook::sample::user())
                .to_json()
                .unwrap();
        let request = || {
            axum::http::Request::post("/v1/events")
                .header("Idempotency-Key", "k-1")
                .body(axum::body::Body::from(body.clone()))
                .unwrap()
        };

        // Polled once, then dropped: the client is gone.
        {
            let handler = accept_event(State(daemon.clone()), request());
            let mut handler = std::pin::pin!(handler);
            let waker = std::task::Waker::noop();
            let polled = handler
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker));
            assert!(polled.is_pending(), "the request ended in its first poll");
        }
        // Its retry, once the first has its event queued (its key claimed before): 409
        // while that one is being accepted, then its answer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while sink.totals().queued == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first event never came"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let reply = loop {
            let response = accept_event(State(daemon.clone()), request()).await;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let reply: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if status == StatusCode::CONFLICT && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
            assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
            break reply;
        };
        assert_eq!(reply["replayed_key"], true, "{reply}");
        assert_eq!(sink.totals().queued, 1, "one event, not two");
        // The paused endpoint's event stays in the spool.
        let _ = guard
            .shutdown_async(std::time::Duration::from_millis(100))
            .await;
    }

    #[test]
    fn formats_by_name() {
        assert_eq!(format_named("Usedesk").unwrap(), Format::Usedesk);
        assert_eq!(
            format_named("x").unwrap_err().field.as_deref(),
            Some("Deskhook-Format")
        );
    }
}
