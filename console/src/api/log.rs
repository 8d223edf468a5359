//! `/api/v1/attempts`, `/api/v1/dead-letters` and `/api/v1/stats`: what happened to events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as Shared};
use deskhook_transports::delivery::{
    AttemptEntry, AttemptOutcome, AttemptQuery, DeadLetter, DeadLetterQuery, StatusFilter,
};
use serde::{Deserialize, Serialize};

use super::{Params, body_json, ms, read, rfc3339};
use crate::{Problem, State, blocking};

/// One attempt of the attempt log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// Its place in the log (cursor).
    pub seq: u64,
    /// When it ended (RFC 3339).
    pub at: String,
    /// The event's `webhook-id`.
    pub event_id: String,
    /// The endpoint.
    pub endpoint: String,
    /// The event's tenant.
    pub tenant: Option<String>,
    /// The event type.
    pub event_type: String,
    /// The ticket.
    pub ticket: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// `delivered`, `retrying`, `dead_lettered` or `endpoint_disabled`.
    pub outcome: &'static str,
    /// The HTTP status, `null` without a response.
    pub status: Option<u16>,
    /// What went wrong without a response.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// The start of the response body, as text (invalid UTF-8 replaced).
    pub response: String,
    /// When the next attempt is due (RFC 3339), if one is.
    pub next_attempt: Option<String>,
}

impl AttemptView {
    fn of(a: AttemptEntry) -> AttemptView {
        AttemptView {
            seq: a.seq,
            at: rfc3339(a.at),
            event_id: a.event_id.to_string(),
            endpoint: a.endpoint.to_string(),
            tenant: a.tenant.map(|t| t.to_string()),
            event_type: a.event_type.as_str().to_owned(),
            ticket: a.ticket.to_string(),
            attempt: a.attempt,
            outcome: match a.outcome {
                AttemptOutcome::Delivered => "delivered",
                AttemptOutcome::Retrying => "retrying",
                AttemptOutcome::DeadLettered => "dead_lettered",
                _ => "endpoint_disabled",
            },
            status: a.status,
            error: a.error,
            duration_ms: ms(a.duration),
            response: String::from_utf8_lossy(&a.response).into_owned(),
            next_attempt: a.next_attempt.map(rfc3339),
        }
    }
}

/// A page of attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptList {
    /// The attempts, newest first.
    pub items: Vec<AttemptView>,
    /// The `before` of the next page; `null` on the last.
    pub next: Option<u64>,
}

#[utoipa::path(get, path = "/attempts", tag = "attempts",
    params(
        ("endpoint" = Option<String>, Query, description = "Only this endpoint's"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's"),
        ("event_id" = Option<String>, Query, description = "Only this event's (webhook-id)"),
        ("ticket" = Option<String>, Query, description = "Only this ticket's"),
        ("status" = Option<String>, Query, description = "503, 5xx, none (no response) or failed"),
        ("since" = Option<String>, Query, description = "At or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Before this time (RFC 3339)"),
        ("before" = Option<u64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 50)"),
    ),
    responses((status = 200, body = AttemptList), (status = 400, body = Problem)))]
pub(super) async fn list_attempts(
    Shared(state): Shared<State>,
    RawQuery(query): RawQuery,
) -> Result<Json<AttemptList>, Problem> {
    let p = Params::of(
        query,
        &[
            "endpoint", "tenant", "event_id", "ticket", "status", "since", "until", "before",
            "limit",
        ],
    )?;
    let (since, until) = p.window()?;
    let query = AttemptQuery {
        endpoint: p.text("endpoint"),
        tenant: p.text("tenant"),
        event_id: p.text("event_id"),
        ticket: p.text("ticket"),
        status: p
            .text("status")
            .map(|s| {
                s.parse::<StatusFilter>()
                    .map_err(|e| Problem::field("status", e))
            })
            .transpose()?,
        since,
        until,
        before: p.number("before")?,
        limit: p.limit()?,
    };
    let sink = state.sink.clone();
    blocking(move || {
        let page = sink.attempts(&query)?;
        Ok(Json(AttemptList {
            next: page.next,
            items: page.items.into_iter().map(AttemptView::of).collect(),
        }))
    })
    .await
}

/// A dead letter and the key that names it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LetterView {
    /// What names it for replay and delete.
    pub key: String,
    /// Its place (cursor).
    pub position: u64,
    /// The letter: the event, where it was going, why it failed (its body as it was kept,
    /// not parsed again).
    #[schema(value_type = Object)]
    pub letter: DeadLetter,
}

/// A page of dead letters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LetterList {
    /// The letters, newest first.
    pub items: Vec<LetterView>,
    /// The `before` of the next page; `null` on the last.
    pub next: Option<u64>,
}

#[utoipa::path(get, path = "/dead-letters", tag = "dead letters",
    params(
        ("endpoint" = Option<String>, Query, description = "Only this endpoint's"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's"),
        ("event_type" = Option<String>, Query, description = "Only this event type's"),
        ("event_id" = Option<String>, Query, description = "Only this event's"),
        ("ticket" = Option<String>, Query, description = "Only this ticket's"),
        ("before" = Option<u64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 50); a page also ends once its letters' bodies reach 8 MiB (one letter at least)"),
    ),
    responses((status = 200, body = LetterList), (status = 400, body = Problem)))]
pub(super) async fn list_dead_letters(
    Shared(state): Shared<State>,
    RawQuery(query): RawQuery,
) -> Result<Json<LetterList>, Problem> {
    let p = Params::of(
        query,
        &[
            "endpoint",
            "tenant",
            "event_type",
            "event_id",
            "ticket",
            "before",
            "limit",
        ],
    )?;
    let query = DeadLetterQuery {
        endpoint: p.text("endpoint"),
        tenant: p.text("tenant"),
        event_type: p.text("event_type"),
        event_id: p.text("event_id"),
        ticket: p.text("ticket"),
        before: p.number("before")?,
        limit: p.limit()?,
    };
    let sink = state.sink.clone();
    blocking(move || {
        let page = sink.dead_letters().list(&query)?;
        let items = page
            .items
            .into_iter()
            .map(|stored| LetterView {
                key: stored.key,
                position: stored.position,
                letter: stored.letter,
            })
            .collect();
        Ok(Json(LetterList {
            items,
            next: page.next,
        }))
    })
    .await
}

/// Which dead letters to replay or delete: their keys, or (replay only) every letter
/// matching a filter of one or more of `endpoint`, `tenant`, `event_type`, `event_id` and
/// `ticket`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterSelection {
    /// The letters' keys: 1,000 at most.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Every letter of this endpoint (replay only).
    pub endpoint: Option<String>,
    /// Every letter of this tenant (replay only).
    pub tenant: Option<String>,
    /// Every letter of this event type (replay only).
    pub event_type: Option<String>,
    /// Every letter of this event, its `webhook-id` (replay only).
    pub event_id: Option<String>,
    /// Every letter of this ticket (replay only).
    pub ticket: Option<String>,
}

/// The most keys one replay or delete names: a page's most. A replay reads every letter
/// it names, bodies and all, at once (a filter's replay goes in parts); 100,000 keys fit in
/// a request's 1 MiB.
pub(crate) const MAX_KEYS: usize = 1000;

/// Refuses more than [`MAX_KEYS`] keys, saying how to replay or delete more.
pub(crate) fn within_key_limit(field: &str, keys: &[String]) -> Result<(), Problem> {
    if keys.len() <= MAX_KEYS {
        return Ok(());
    }
    Err(Problem::field(
        field,
        format!(
            "{} keys given; at most {MAX_KEYS} go in one request: send them in parts, or \
             replay every letter matching a filter (endpoint, tenant, event_type, event_id, \
             ticket), which goes in parts by itself",
            keys.len()
        ),
    ))
}

impl LetterSelection {
    /// The filter it gives, if it gives one.
    fn filter(&self) -> Option<DeadLetterQuery> {
        let query = DeadLetterQuery {
            endpoint: self.endpoint.clone(),
            tenant: self.tenant.clone(),
            event_type: self.event_type.clone(),
            event_id: self.event_id.clone(),
            ticket: self.ticket.clone(),
            ..DeadLetterQuery::new()
        };
        (query != DeadLetterQuery::new()).then_some(query)
    }
}

/// What a replay did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayedView {
    /// Letters queued again.
    pub replayed: usize,
    /// Letters that could not be, and why (they stay).
    pub failed: Vec<ReplayFailure>,
    /// The keys of letters queued again that could not be taken out of the dead letters:
    /// delete them; replaying them again would send them twice.
    pub still_listed: Vec<String>,
}

/// A letter that could not be replayed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayFailure {
    /// Its key.
    pub key: String,
    /// Why.
    pub reason: String,
}

#[utoipa::path(post, path = "/dead-letters/replay", tag = "dead letters",
    request_body = LetterSelection,
    responses((status = 200, body = ReplayedView), (status = 400, body = Problem),
        (status = 500, body = Problem,
            description = "the dead letters cannot be read or written"),
        (status = 503, body = Problem, description = "the spool is full")))]
pub(super) async fn replay_dead_letters(
    Shared(state): Shared<State>,
    body: Bytes,
) -> Result<Json<ReplayedView>, Problem> {
    let selection: LetterSelection = read(&body_json(&body)?)?;
    within_key_limit("keys", &selection.keys)?;
    let sink = state.sink.clone();
    blocking(move || {
        let letters = sink.dead_letters();
        let replayed = match (selection.filter(), selection.keys.is_empty()) {
            (Some(filter), true) => letters.replay_matching(&filter)?,
            (None, false) => letters.replay(&selection.keys)?,
            _ => {
                return Err(Problem::field(
                    "keys",
                    "give either keys (the letters to replay) or a filter (endpoint, tenant, event_type, event_id, ticket: every letter matching all of it)",
                ));
            }
        };
        Ok(Json(ReplayedView {
            replayed: replayed.replayed,
            still_listed: replayed.still_listed,
            failed: replayed
                .failed
                .into_iter()
                .map(|(key, reason)| ReplayFailure { key, reason })
                .collect(),
        }))
    })
    .await
}

/// How many letters were deleted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedView {
    /// Letters deleted (keys that named none are not counted).
    pub deleted: usize,
}

#[utoipa::path(post, path = "/dead-letters/delete", tag = "dead letters",
    request_body(content = LetterSelection,
        description = "The keys of the letters to delete; a filter is refused (400)"),
    responses((status = 200, body = DeletedView), (status = 400, body = Problem),
        (status = 409, body = Problem,
            description = "the dead-letter file was moved meanwhile, by a replay: nothing was \
                deleted; list the letters again"),
        (status = 500, body = Problem,
            description = "the dead letters cannot be read or written")))]
pub(super) async fn delete_dead_letters(
    Shared(state): Shared<State>,
    body: Bytes,
) -> Result<Json<DeletedView>, Problem> {
    let selection: LetterSelection = read(&body_json(&body)?)?;
    if selection.keys.is_empty() || selection.filter().is_some() {
        return Err(Problem::field(
            "keys",
            "give the keys of the letters to delete (and no filter: delete takes keys only)",
        ));
    }
    within_key_limit("keys", &selection.keys)?;
    let sink = state.sink.clone();
    blocking(move || {
        Ok(Json(DeletedView {
            deleted: sink.dead_letters().delete(&selection.keys)?,
        }))
    })
    .await
}

/// Totals over every endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsTotals {
    /// Endpoints registered.
    pub endpoints: usize,
    /// Events waiting.
    pub queued: usize,
    /// Attempts under way.
    pub in_flight: usize,
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Events dropped.
    pub dropped: u64,
    /// Events put in the dead letters.
    pub dead_lettered: u64,
    /// Times an event waited for a rate-limit token.
    pub rate_limited: u64,
    /// Events that went to no endpoint (none registered for their tenant and type).
    pub unrouted: u64,
    /// Endpoints by state.
    pub states: std::collections::BTreeMap<String, usize>,
}

#[utoipa::path(get, path = "/stats", tag = "stats",
    responses((status = 200, body = StatsTotals)))]
pub(super) async fn stats(Shared(state): Shared<State>) -> Result<Json<StatsTotals>, Problem> {
    // Off the runtime's threads: each count first routes what was emitted meanwhile.
    blocking(move || Ok(totals(&state))).await.map(Json)
}

fn totals(state: &State) -> StatsTotals {
    let t = state.sink.totals();
    // One walk of the endpoints, not one per state.
    let states = state
        .sink
        .endpoints()
        .count_by_state()
        .into_iter()
        .map(|(s, n)| (s.name().to_owned(), n))
        .collect();
    StatsTotals {
        endpoints: t.endpoints,
        queued: t.queued,
        in_flight: t.in_flight,
        delivered: t.delivered,
        failed: t.failed,
        retried: t.retried,
        dropped: t.dropped,
        dead_lettered: t.dead_lettered,
        rate_limited: t.rate_limited,
        unrouted: t.unrouted,
        states,
    }
}
