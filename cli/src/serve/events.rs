//! `POST /v1/events`: an event's request read, checked, keyed (Idempotency-Key) and handed
//! to the sink, as a task of its own that runs to its end.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskhook::ReceiveOptions;
use deskhook::formats::Format;
use deskhook::sink::Emitted;
use deskhook_console::Problem;

use super::body::{not_utf8, read_body, refuse_forms};
use super::keys::{self, Claim, Claimed};
use super::{Daemon, MAX_ACCEPTING};

/// Refusals listed in a 202 at most.
const REFUSALS_SHOWN: usize = 16;

/// Longest Idempotency-Key.
const MAX_KEY: usize = 255;

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
        log::warn!(
            target: deskhook::LOG_TARGET,
            "file log: event {} ({}) not written: {e}",
            emitted.id(),
            emitted.event_type()
        );
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
pub(super) async fn accept_event(State(daemon): State<Arc<Daemon>>, request: Request) -> Response {
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

/// What to change in a body that did not parse, when its start says (two common
/// mistakes); else nothing.
fn what_to_change(body: &[u8]) -> &'static str {
    if body.starts_with(b"\xEF\xBB\xBF") {
        "; the body starts with a byte order mark (EF BB BF, as Windows editors save UTF-8): \
         send it without one"
    } else if body.trim_ascii_start().starts_with(b"[") {
        "; the body is a JSON array: send one event per request (batches are not taken)"
    } else {
        ""
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
    let kind = header_text(headers, "Content-Type")?;
    if let Some(kind) = kind {
        refuse_forms(kind)?;
    }
    if let Some(coding) = header_text(headers, "Content-Encoding")?
        .filter(|c| !c.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding '{coding}' is not read; send the event's JSON as it is, \
                 uncompressed"
            ),
        ));
    }
    let mut grace_over = daemon.grace_over.subscribe();
    let body = tokio::select! {
        // The stop first: a body that has arrived whole when the grace is over is ready
        // too, and would otherwise win half the time.
        biased;
        _ = grace_over.wait_for(|over| *over) => {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon stopped before the event's body arrived; send it again",
            ));
        }
        body = read_body(body, daemon.max_body, daemon.body_timeout) => body?,
    };
    if body.trim_ascii().is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the body is empty; send the event's JSON (curl --data-binary @event.json)",
        ));
    }
    let mut options = ReceiveOptions::unauthenticated();
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
                    format!(
                        "Idempotency-Key must be 1 to {MAX_KEY} bytes (this one is {}); a \
                         UUID or a hash of the event fits",
                        key.len()
                    ),
                ))
            } else {
                Ok((tenant.unwrap_or("").to_owned(), key.to_owned()))
            }
        })
        .transpose()?;
    // A body that is not UTF-8 is looked for only once it failed to parse: the parse
    // already checks every string.
    let received = deskhook::receive(&[("", ""); 0], &body, &options).map_err(|e| {
        not_utf8(kind, &body).err().unwrap_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not an event deskhook knows (Zenlix, Usedesk or iQChannels \
                     JSON): {e}{}",
                    what_to_change(&body)
                ),
            )
        })
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
    // Nor could it ever be queued: the spool would dead-letter it (and the retries of a 503
    // again), the memory queues drop it.
    if let Some(reason) = daemon.sink.never_fits(&emitted) {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the event cannot be queued: {reason}"),
        ));
    }
    // To tell a retried request from another event under the same key: the bytes, and the
    // format they were read as (named or not).
    let digest = key.as_ref().map_or([0; 32], |_| {
        keys::digest(&received.format().to_string(), &body)
    });
    if let Some(key) = &key {
        let claim = lock(&daemon.keys).claim(key, digest);
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
    let endpoints;
    let (outcome, refused) = if daemon.durable {
        // A spool far behind would make the send wait for its writer: awaited here, so
        // that the runtime's threads (the console, /metrics) keep answering meanwhile.
        daemon.sink.room().await;
        // It still waits when other senders took the room meanwhile.
        let receipt = blocking(|| daemon.sink.send_with_receipt(&emitted));
        // What it went to as it was routed: an event no endpoint takes is accepted, not
        // kept.
        endpoints = receipt.endpoints();
        // The line once the commit is done; or, if this ends during the await (the runtime
        // shutting down), then (the event is on its way into the spool).
        let mut pending = PendingLine {
            daemon,
            emitted: &emitted,
            armed: true,
        };
        let committed = receipt.await;
        pending.armed = false;
        if committed.is_ok() && daemon.file.is_some() {
            // A write (and a flush, a rotation): off the runtime's task.
            blocking(|| log_line(daemon, &emitted));
        }
        (committed.map_err(|e| shortened(&e.to_string())), Vec::new())
    } else {
        // Routed now, so that an event nothing kept (a full queue, the memory budget) is a
        // 503 the client retries, not a drop; one that some endpoints took is accepted,
        // naming those that did not: sent again, it would reach the others twice, under
        // another id. (It waits under the block overflow policy.)
        // The file log's line with it, off the runtime's task too.
        let routed = blocking(|| {
            let routed = daemon.sink.route_now(&emitted);
            if !routed.lost() {
                log_line(daemon, &emitted);
            }
            routed
        });
        endpoints = routed.queued.len() + routed.refused.len();
        if routed.lost() {
            // As in a 202: a reason names the ticket, which can be as long as the body, and
            // an event can go to thousands of endpoints.
            let mut reasons: Vec<String> = routed
                .refused
                .iter()
                .take(REFUSALS_SHOWN)
                .map(|r| shortened(&r.reason))
                .collect();
            let more = routed.refused.len().saturating_sub(REFUSALS_SHOWN);
            if more > 0 {
                reasons.push(format!("and {more} more endpoint(s)"));
            }
            (Err(reasons.join("; ")), Vec::new())
        } else {
            (Ok(()), routed.refused)
        }
    };
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
                            "reason": shortened(&r.reason),
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
                // On disk first (with a spool), for a retry after a restart; the event is
                // accepted whether or not the key could be kept.
                if let Some(on_disk) = &daemon.kept
                    && let Err(e) = blocking(|| on_disk.keep(key, &digest, &kept))
                {
                    log::warn!(target: deskhook::LOG_TARGET, "serve: {e}; a retry of this event after a restart would be a second one");
                }
                claimed.key = None;
                lock(&daemon.keys).accepted(key, digest, Arc::new(kept));
            }
            Ok((StatusCode::ACCEPTED, axum::Json(reply)).into_response())
        }
        Err(error) => {
            if let Some(key) = &key {
                claimed.key = None;
                lock(&daemon.keys).forget(key);
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

/// Longest reason of a refusal in an answer: a reason names the ticket, which can be as long as
/// the body, and each Idempotency-Key keeps its answer.
const MAX_REASON: usize = 300;

/// `reason`, cut to [`MAX_REASON`] bytes (at a character's edge) with "…" when longer.
fn shortened(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_owned();
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
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

/// The daemon's idempotency keys, locked (a panic while they were held leaves them as they
/// were: each change is whole).
fn lock(keys: &std::sync::Mutex<keys::Keys>) -> std::sync::MutexGuard<'_, keys::Keys> {
    keys.lock().unwrap_or_else(|e| e.into_inner())
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
    use std::sync::Mutex;

    #[test]
    fn a_refusals_reason_is_cut_to_its_longest_at_a_characters_edge() {
        assert_eq!(super::shortened("queue full"), "queue full");
        let long = format!("queue full (create on ticket {})", "я".repeat(400));
        let cut = super::shortened(&long);
        assert!(cut.ends_with('…') && cut.len() <= super::MAX_REASON + '…'.len_utf8());
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }

    use deskhook_transports::delivery::DeliverySink;
    use deskhook_transports::spool::Spool;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::super::token::MIN_TOKEN;
    use std::time::Duration;

    use super::*;

    /// A daemon over `sink`, `durable` (it has a spool) or not, its grace `over` or not.
    fn daemon(sink: &DeliverySink, durable: bool, over: bool) -> Arc<Daemon> {
        Arc::new(Daemon {
            accepting: Arc::new(tokio::sync::Semaphore::new(MAX_ACCEPTING as usize)),
            sink: sink.clone(),
            token: "t".repeat(MIN_TOKEN),
            ingest_token: None,
            durable,
            max_body: 1 << 20,
            body_timeout: Duration::from_secs(30),
            metrics: PrometheusBuilder::new().build_recorder().handle(),
            keys: Mutex::default(),
            kept: None,
            file: None,
            grace_over: tokio::sync::watch::Sender::new(over),
        })
    }

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
        let daemon = daemon(&sink, true, false);
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
    fn a_byte_order_mark_and_an_array_are_told_what_to_change() {
        assert!(what_to_change(b"\xEF\xBB\xBF{}").contains("without one"));
        assert!(what_to_change(b" [{}]").contains("one event per request"));
        assert_eq!(what_to_change(b"{\"ticket\": 1}"), "");
    }

    /// Once the grace is over, an event's request is answered 503 even when its body has
    /// arrived whole (it would have raced the stop, and won half the time).
    #[tokio::test]
    async fn a_body_whole_when_the_grace_is_over_is_answered_503() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, guard) = DeliverySink::builder()
            .dead_letter_path(dir.path().join("dead.jsonl"))
            .build_async()
            .unwrap();
        let daemon = daemon(&sink, false, true);
        let body = deskhook::EventRef::new(
            deskhook::Action::Create,
            &deskhook::sample::ticket(),
            &deskhook::sample::user(),
        )
        .to_json()
        .unwrap();
        for _ in 0..32 {
            let request = axum::http::Request::post("/v1/events")
                .body(axum::body::Body::from(body.clone()))
                .unwrap();
            let response = accept_event(State(daemon.clone()), request).await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        let totals = sink.totals();
        assert_eq!((totals.queued, totals.unrouted), (0, 0), "nothing taken");
        let _ = guard.shutdown_async(Duration::ZERO).await;
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
