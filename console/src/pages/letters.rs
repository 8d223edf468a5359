//! The dead letters page and its actions, and the page of one event or ticket.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::extract::{Path, State as Shared};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use deskhook_transports::delivery::{AttemptQuery, DeadLetterQuery, Replayed, StoredLetter};
use maud::{Markup, html};
use serde::Deserialize;

use super::endpoints::attempts_table;
use super::{
    Form, PageQuery, counted, csrf_field, enc, endpoint_path, error_page, foreign_form, layout,
    status_class,
};
use crate::guard::{Base, CsrfToken};
use crate::{Problem, State, blocking};

/// What a replay or delete did: the list's query that says so, or, after a replay some of
/// whose letters could not be replayed or are still listed, a page of its own.
enum Done {
    Query(String),
    Replayed(ReplayResult),
}

impl Done {
    /// After a replay: the list says how many went when all of them did; else the result
    /// page says which did not, and why.
    fn replayed(replayed: Replayed) -> Done {
        if replayed.failed.is_empty() && replayed.still_listed.is_empty() {
            Done::Query(format!("done=replayed&n={}", replayed.replayed))
        } else {
            Done::Replayed(ReplayResult::of(replayed))
        }
    }
}

/// What a replay's result page shows: the letters replayed, those that could not be (the
/// first [`SHOWN_FAILURES`] with why, and how many in all: a replay of a whole filter can
/// fail for thousands, and results are kept a while), and those still listed.
#[derive(Debug)]
struct ReplayResult {
    replayed: usize,
    failed: Vec<(String, String)>,
    failed_total: usize,
    /// The first [`SHOWN_STILL_LISTED`] of them, and how many in all.
    still_listed: Vec<String>,
    still_listed_total: usize,
}

impl ReplayResult {
    fn of(replayed: Replayed) -> ReplayResult {
        let failed_total = replayed.failed.len();
        let mut failed = replayed.failed;
        failed.truncate(SHOWN_FAILURES);
        let still_listed_total = replayed.still_listed.len();
        let mut still_listed = replayed.still_listed;
        still_listed.truncate(SHOWN_STILL_LISTED);
        ReplayResult {
            replayed: replayed.replayed,
            failed,
            failed_total,
            still_listed,
            still_listed_total,
        }
    }
}

/// The reasons shown at most on a replay's result page.
const SHOWN_FAILURES: usize = 200;

/// The letters still listed after a replay shown at most, in forms of as many as a delete
/// takes: a replay of a whole filter can leave hundreds of thousands, and results are kept
/// a while.
const SHOWN_STILL_LISTED: usize = 10 * crate::api::MAX_KEYS;

/// How long, and how many of, the results of replays that left letters behind are kept.
const REPLAYS_KEPT_FOR: Duration = Duration::from_secs(15 * 60);
const REPLAYS_KEPT: usize = 64;

/// The results of the page's replays that left letters behind, each under a random id, for
/// [`REPLAYS_KEPT_FOR`]: the replay's POST is answered with a redirect to its result, so
/// that reloading the result shows it again rather than sending the replay again (which
/// would send the letters still listed twice).
#[derive(Debug, Default)]
pub(crate) struct Replays(VecDeque<KeptReplay>);

/// One replay's result, kept.
#[derive(Debug)]
struct KeptReplay {
    id: String,
    at: Instant,
    filter: DeadLetterQuery,
    result: ReplayResult,
}

impl Replays {
    /// Keeps `replayed` (with the list's `filter`) under `id`, dropping those past their
    /// time, and the oldest past [`REPLAYS_KEPT`].
    fn keep(&mut self, id: String, filter: DeadLetterQuery, result: ReplayResult, now: Instant) {
        self.0
            .retain(|kept| now.duration_since(kept.at) < REPLAYS_KEPT_FOR);
        if self.0.len() >= REPLAYS_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(KeptReplay {
            id,
            at: now,
            filter,
            result,
        });
    }

    /// The result kept under `id`, if it is still kept.
    fn get(&self, id: &str, now: Instant) -> Option<(&DeadLetterQuery, &ReplayResult)> {
        // In a time that does not tell how much of an id a guess had right.
        let kept = self
            .0
            .iter()
            .find(|kept| crate::guard::same(&kept.id, id))?;
        (now.duration_since(kept.at) < REPLAYS_KEPT_FOR).then_some((&kept.filter, &kept.result))
    }
}

/// The console's kept replays (a panic while they were held left them whole).
fn kept_replays(state: &State) -> std::sync::MutexGuard<'_, Replays> {
    state.replays.lock().unwrap_or_else(|p| p.into_inner())
}

/// The result of a replay that left letters behind, kept under `id` (see [`Replays`]).
pub(crate) async fn replay_result_page(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Response {
    let replays = kept_replays(&state);
    match replays.get(&id, Instant::now()) {
        Some((filter, replayed)) => replay_result(&base, &csrf, filter, replayed).into_response(),
        None => error_page(
            &base,
            &Problem::new(
                axum::http::StatusCode::NOT_FOUND,
                format!(
                    "this replay's result is no longer kept (results are kept {}); the dead \
                     letters page shows the letters left",
                    deskhook::policy::format_duration(REPLAYS_KEPT_FOR)
                ),
            ),
        )
        .into_response(),
    }
}

/// A replay's result page, when letters could not be replayed (with why: they stay) or were
/// replayed but are still listed. On the list they would look like the others, their
/// reasons lost, and "Replay all matching" beside those still listed would send them twice:
/// here they are named, with a form that deletes those still listed. `filter` is the list's,
/// which the links and the delete go back to.
fn replay_result(
    base: &Base,
    csrf: &CsrfToken,
    filter: &DeadLetterQuery,
    replayed: &ReplayResult,
) -> super::Page {
    let back = base.at(&format!("/dead-letters?{}", filter_query(filter)));
    let back = back.trim_end_matches(['&', '?']).to_owned();
    let listed = replayed.still_listed_total;
    let failed = replayed.failed_total;
    let counted = |n: usize, noun| counted(u64::try_from(n).unwrap_or(u64::MAX), noun);
    layout(
        base,
        "Replay",
        None,
        html! {
            h1 { "Replay" }
            p { (counted(replayed.replayed, "dead letter")) " replayed." }
            @if listed > 0 {
                section {
                    h2 { (counted(listed, "letter")) " replayed but still listed" }
                    p.error {
                        "They were queued again, but could not be taken out of the dead letters "
                        "(the log says why). Delete them: replaying them again would send them twice."
                    }
                    // As many as a delete takes in one request, a form each.
                    @for keys in replayed.still_listed.chunks(crate::api::MAX_KEYS) {
                        form method="post" action=(base.at("/dead-letters/delete")) {
                            (csrf_field(csrf))
                            @for (name, value) in filter_fields(filter) {
                                input type="hidden" name=(name) value=(value);
                            }
                            @for key in keys {
                                input type="hidden" name="key" value=(key);
                            }
                            button type="submit" { "Delete these " (keys.len()) }
                        }
                    }
                    @if listed > replayed.still_listed.len() {
                        p.hint {
                            "And " (listed - replayed.still_listed.len()) " more: once these are "
                            "deleted, look for the rest in the list with the same filter."
                        }
                    }
                }
            }
            @if failed > 0 {
                section {
                    h2 { (counted(failed, "letter")) " not replayed" }
                    p.hint { "They stay in the dead letters, with the later letters of their tickets." }
                    table.failures {
                        thead { tr { th { "Letter" } th { "Why" } } }
                        tbody {
                            @for (key, reason) in &replayed.failed {
                                tr { td { code { (key) } } td { (reason) } }
                            }
                        }
                    }
                    @if failed > replayed.failed.len() {
                        p.hint { "And " (failed - replayed.failed.len()) " more, for the same kinds of reasons." }
                    }
                }
            }
            p { a href=(back) { "Back to the dead letters" } }
        },
    )
}

/// What the dead letters page is asked for.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LettersQuery {
    endpoint: Option<String>,
    tenant: Option<String>,
    event_type: Option<String>,
    ticket: Option<String>,
    before: Option<u64>,
    done: Option<String>,
    n: Option<usize>,
}

fn nonempty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

pub(crate) async fn list(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<LettersQuery>,
) -> Response {
    let letters_query = DeadLetterQuery {
        endpoint: nonempty(&query.endpoint),
        tenant: nonempty(&query.tenant),
        event_type: nonempty(&query.event_type),
        ticket: nonempty(&query.ticket),
        before: query.before,
        limit: 50,
        ..DeadLetterQuery::new()
    };
    let sink = state.sink.clone();
    let asked = letters_query.clone();
    let listed = blocking(move || {
        let retention = sink.dead_letters().retention();
        let page = sink.dead_letters().list(&asked)?;
        // The endpoints still registered: a letter of one removed since links nowhere.
        let mut registered = std::collections::HashSet::new();
        for stored in &page.items {
            let name = &stored.letter.endpoint;
            if !registered.contains(name) && sink.endpoints().get(name).is_ok() {
                registered.insert(name.clone());
            }
        }
        Ok((page, registered, retention))
    });
    let (page, registered, retention) = match listed.await {
        Ok(listed) => listed,
        Err(problem) => return error_page(&base, &problem).into_response(),
    };
    let flash = match query.done.as_deref() {
        Some("replayed") => Some(format!("{} replayed.", query.n.unwrap_or(0))),
        Some("deleted") => Some(format!("{} deleted.", query.n.unwrap_or(0))),
        _ => None,
    };
    let filters = |before: Option<u64>| {
        let mut link = format!("/dead-letters?{}", filter_query(&letters_query));
        if let Some(before) = before {
            link.push_str(&format!("before={before}"));
        }
        base.at(link.trim_end_matches(['&', '?']))
    };
    let filtered = filter_fields(&letters_query).next().is_some();
    let action = base.at("/dead-letters");
    layout(
        &base,
        "Dead letters",
        flash.as_deref(),
        html! {
            h1 { "Dead letters" }
            @if let Some(kept) = retention {
                p.hint {
                    "Each is deleted " (deskhook::policy::format_duration(kept))
                    " after it failed (the spool's dead_letter_retention): replay what you need before."
                }
            }
            form.filters method="get" action=(action) {
                input type="text" name="endpoint" value=(letters_query.endpoint.as_deref().unwrap_or(""))
                    placeholder="endpoint" aria-label="Endpoint";
                input type="text" name="tenant" value=(letters_query.tenant.as_deref().unwrap_or(""))
                    placeholder="tenant" aria-label="Tenant";
                input type="text" name="event_type" value=(letters_query.event_type.as_deref().unwrap_or(""))
                    placeholder="event type (create, usedesk.comment_created…)" aria-label="Event type";
                input type="text" name="ticket" value=(letters_query.ticket.as_deref().unwrap_or(""))
                    placeholder="ticket" aria-label="Ticket";
                button type="submit" { "Filter" }
            }
            @if page.items.is_empty() {
                p.empty { "No dead letters here." }
            } @else {
                form #letters method="post" action=(format!("{action}/replay")) {
                    (csrf_field(&csrf))
                    @for (name, value) in filter_fields(&letters_query) {
                        input type="hidden" name=(name) value=(value);
                    }
                    div.actions {
                        button type="submit" name="which" value="selected" { "Replay selected" }
                        @if filtered {
                            button type="submit" name="which" value="matching"
                                data-confirm=(format!("Replay every dead letter of {}, on every page?", filter_words(&letters_query)))
                                { "Replay all matching" }
                        }
                        button type="submit" formaction=(format!("{action}/delete")) name="which" value="selected"
                            data-confirm="Delete the selected dead letters for good?" { "Delete selected" }
                    }
                    table.letters {
                        thead { tr {
                            th { input type="checkbox" data-select-all="key" aria-label="Select all"; }
                            th { "Failed at" } th { "Endpoint" } th { "Tenant" } th { "Event" }
                            th { "Ticket" } th.num { "Attempts" } th { "Last" } th { "Reason" } th {}
                        } }
                        tbody {
                            @for stored in &page.items {
                                (letter_row(&base, stored, registered.contains(&stored.letter.endpoint)))
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if letters_query.before.is_some() { a href=(filters(None)) { "« Newest" } }
                @if let Some(next) = page.next { a href=(filters(Some(next))) { "Older »" } }
            }
        },
    )
    .into_response()
}

/// One letter's row; its endpoint is a link while `registered`.
fn letter_row(base: &Base, stored: &StoredLetter, registered: bool) -> Markup {
    let l = &stored.letter;
    html! {
        tr {
            td { input type="checkbox" name="key" value=(stored.key)
                aria-label=(format!("Select the {} of {} for {}", l.action, l.ticket, l.endpoint)); }
            // As the other pages write times; the letter's own text when it does not read.
            td title=(l.failed_at) {
                (l.failed_at.parse::<jiff::Timestamp>()
                    .map(|t| super::time(t.into()))
                    .unwrap_or_else(|_| l.failed_at.clone()))
            }
            td {
                @if registered { a href=(base.at(&endpoint_path(&l.endpoint))) { (l.endpoint) } }
                @else { span title="removed since" { (l.endpoint) } }
            }
            td { (l.tenant.as_deref().unwrap_or("—")) }
            td { a href=(base.at(&format!("/events?q={}", enc(&l.id)))) title=(l.id) { (l.action) } }
            td { a href=(base.at(&format!("/events?q={}", enc(&l.ticket)))) { (l.ticket) } }
            td.num { (l.attempts) }
            td { span.(status_class(l.last_status)) {
                @match (l.last_status, &l.last_error) {
                    (Some(status), _) => (status),
                    // Said once, in the Reason column beside it.
                    (None, Some(error)) if *error == l.reason => {
                        span title=(error) { "error" }
                    }
                    (None, Some(error)) => (error),
                    (None, None) => "—",
                }
            } }
            td { (l.reason) }
            td { button type="submit" name="key_one" value=(stored.key)
                aria-label=(format!("Replay the {} of {} for {}", l.action, l.ticket, l.endpoint)) { "Replay" } }
        }
    }
}

/// The filters the dead letters page can set, with their values where set.
fn filter_fields(query: &DeadLetterQuery) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("endpoint", &query.endpoint),
        ("tenant", &query.tenant),
        ("event_type", &query.event_type),
        ("ticket", &query.ticket),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value.as_deref()?)))
}

/// The page's filters as the start of a query string (`endpoint=crm&tenant=acme&`).
fn filter_query(query: &DeadLetterQuery) -> String {
    filter_fields(query)
        .map(|(name, value)| format!("{name}={}&", enc(value)))
        .collect()
}

/// The page's filters in words, for the confirmation of "Replay all matching".
fn filter_words(query: &DeadLetterQuery) -> String {
    filter_fields(query)
        .map(|(name, value)| format!("{} {value}", name.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replay (the selected, one, or all matching the page's filter) or delete.
pub(crate) async fn act(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(action): Path<String>,
    form: Form,
) -> Response {
    if let Some(refused) = foreign_form(&base, &headers, &form) {
        return refused;
    }
    let keys = match form.text("key_one") {
        Some(one) => vec![one.to_owned()],
        None => form.all("key"),
    };
    if let Err(problem) = crate::api::within_key_limit("key", &keys) {
        return error_page(&base, &problem).into_response();
    }
    // The page's filter, which "Replay all matching" replays and the page goes back to.
    let filter = DeadLetterQuery {
        endpoint: form.text("endpoint").map(str::to_owned),
        tenant: form.text("tenant").map(str::to_owned),
        event_type: form.text("event_type").map(str::to_owned),
        ticket: form.text("ticket").map(str::to_owned),
        ..DeadLetterQuery::new()
    };
    // "endpoint": what the page's button sent before it replayed the whole filter.
    let matching =
        matches!(form.get("which"), Some("matching" | "endpoint")) && form.get("key_one").is_none();
    let sink = state.sink.clone();
    let back_to = filter_query(&filter);
    let shown_filter = filter.clone();
    let done = blocking(move || {
        let letters = sink.dead_letters();
        match action.as_str() {
            "replay" if matching => {
                if filter_fields(&filter).next().is_none() {
                    return Err(Problem::field(
                        "endpoint",
                        "replaying all matching letters needs a filter (an endpoint, a tenant, an event type or a ticket); filter the page first",
                    ));
                }
                Ok(Done::replayed(letters.replay_matching(&filter)?))
            }
            "replay" | "delete" if keys.is_empty() => Err(Problem::field(
                "key",
                "select the dead letters first (the check boxes on the left)",
            )),
            "replay" => Ok(Done::replayed(letters.replay(&keys)?)),
            "delete" => Ok(Done::Query(format!(
                "done=deleted&n={}",
                letters.delete(&keys)?
            ))),
            other => Err(Problem::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("there is no action '{other}'; replay or delete"),
            )),
        }
    })
    .await;
    match done {
        Ok(Done::Query(done)) => {
            Redirect::to(&base.at(&format!("/dead-letters?{back_to}{done}"))).into_response()
        }
        // Shown by a GET of its own (reloading it must not send the replay again); shown
        // here only if no id could be made for it.
        Ok(Done::Replayed(replayed)) => match crate::guard::random_token() {
            Ok(id) => {
                let at = base.at(&format!("/dead-letters/replays/{id}"));
                kept_replays(&state).keep(id, shown_filter, replayed, Instant::now());
                Redirect::to(&at).into_response()
            }
            Err(_) => replay_result(&base, &csrf, &shown_filter, &replayed).into_response(),
        },
        Err(problem) => error_page(&base, &problem).into_response(),
    }
}

/// What the event page is asked for: a `webhook-id` or a ticket.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventQuery {
    #[serde(alias = "id", alias = "ticket")]
    q: Option<String>,
}

pub(crate) async fn event(
    Shared(state): Shared<State>,
    base: Base,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<EventQuery>,
) -> Response {
    let Some(q) = nonempty(&query.q) else {
        return layout(
            &base,
            "Find an event",
            None,
            html! {
                h1 { "Find an event" }
                p { "Type a webhook-id (the header every delivery carries) or a ticket in the box at the top." }
            },
        )
        .into_response();
    };
    let sink = state.sink.clone();
    let asked = q.clone();
    let found = blocking(move || {
        let by_id = sink.attempts(&AttemptQuery {
            event_id: Some(asked.clone()),
            limit: 500,
            ..AttemptQuery::new()
        })?;
        let (what, attempts) = if by_id.items.is_empty() {
            let by_ticket = sink.attempts(&AttemptQuery {
                ticket: Some(asked.clone()),
                limit: 500,
                ..AttemptQuery::new()
            })?;
            ("ticket", by_ticket)
        } else {
            ("event", by_id)
        };
        // One look at the dead letters, by the event or the ticket asked for: a letter whose
        // attempts have left the log is found all the same. A page of them, as the dead
        // letters page shows (each is read with its body).
        let mut by = DeadLetterQuery {
            limit: 50,
            ..DeadLetterQuery::new()
        };
        if what == "event" {
            by.event_id = Some(asked.clone());
        } else {
            by.ticket = Some(asked.clone());
        }
        let mut letters = sink.dead_letters().list(&by)?;
        let mut what = what;
        if letters.items.is_empty() && what == "ticket" {
            // Nothing for such a ticket: it may be an event whose attempts are gone.
            by.ticket = None;
            by.event_id = Some(asked);
            letters = sink.dead_letters().list(&by)?;
            if !letters.items.is_empty() {
                what = "event";
            }
        }
        Ok((what, attempts, letters))
    })
    .await;
    let (what, attempts, letters) = match found {
        Ok(found) => found,
        Err(problem) => return error_page(&base, &problem).into_response(),
    };
    // Only the newest of a busy ticket's: said, with where the rest are (the dead letters
    // page filtered by the ticket; each endpoint's page for its attempts).
    let (more_attempts, more_letters) = (attempts.next.is_some(), letters.next.is_some());
    let (attempts, letters) = (attempts.items, letters.items);
    let ticket = match what {
        "ticket" => Some(q.as_str()),
        _ => letters.first().map(|stored| stored.letter.ticket.as_str()),
    };
    let all_letters = ticket.map(|t| base.at(&format!("/dead-letters?ticket={}", enc(t))));
    let mut endpoints: Vec<&str> = attempts.iter().map(|a| &*a.endpoint).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    layout(
        &base,
        &q,
        None,
        html! {
            h1 { @if what == "event" { "Event " } @else { "Ticket " } code { (q) } }
            @if attempts.is_empty() && letters.is_empty() {
                p.empty { "Nothing recorded for it: no attempt in the attempt log, no dead letter. The log keeps the last attempts (and, with a spool, 7 days of them)." }
            } @else {
                p.summary {
                    (counted(attempts.len() as u64, "attempt")) " to "
                    (counted(endpoints.len() as u64, "endpoint")) "; "
                    (counted(letters.len() as u64, "dead letter"))
                    @if more_attempts || more_letters {
                        " (only the newest are shown"
                        @if more_letters { @if let Some(all) = &all_letters {
                            "; " a href=(all) { "all the ticket's dead letters" }
                        } }
                        @if more_attempts { "; each endpoint's page has more of its attempts" }
                        ")"
                    }
                }
                (attempts_table(&base, &attempts, true))
                @if !letters.is_empty() {
                    h2 { "Dead letters" }
                    form method="post" action=(base.at("/dead-letters/replay")) {
                        (csrf_field(&csrf))
                        // The list the replay lands on: this ticket's letters, not all.
                        @if let Some(first) = letters.first() {
                            input type="hidden" name="ticket" value=(first.letter.ticket);
                        }
                        table.letters {
                            thead { tr { th { "Endpoint" } th { "Event" } th { "Reason" } th {} } }
                            tbody {
                                @for stored in &letters {
                                    tr {
                                        td { (stored.letter.endpoint) }
                                        td { (stored.letter.action) " " code { (stored.letter.id) } }
                                        td { (stored.letter.reason) }
                                        td { button type="submit" name="key_one" value=(stored.key)
                                            aria-label=(format!("Replay it for {}", stored.letter.endpoint)) { "Replay" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_result_names_the_letters_still_listed_with_a_form_that_deletes_them() {
        let base = Base("/admin".to_owned(), None);
        let csrf = CsrfToken("t0ken".to_owned());
        let filter = DeadLetterQuery {
            tenant: Some("acme".to_owned()),
            ..DeadLetterQuery::new()
        };
        let mut replayed = Replayed::default();
        replayed.replayed = 3;
        replayed.still_listed = vec!["r7".to_owned(), "r9".to_owned()];
        replayed.failed = vec![("r4".to_owned(), "endpoint 'crm' is <gone>".to_owned())];
        let page = replay_result(&base, &csrf, &filter, &ReplayResult::of(replayed.clone()));
        let page = page.markup.into_string();
        for said in [
            "3 dead letters replayed.",
            "2 letters replayed but still listed",
            r#"<form method="post" action="/admin/dead-letters/delete">"#,
            r#"<input type="hidden" name="tenant" value="acme">"#,
            r#"<input type="hidden" name="key" value="r7">"#,
            r#"<input type="hidden" name="key" value="r9">"#,
            "Delete these 2",
            "1 letter not replayed",
            "endpoint 'crm' is &lt;gone&gt;",
            r#"<a href="/admin/dead-letters?tenant=acme">"#,
        ] {
            assert!(page.contains(said), "{said}: {page}");
        }
        // Kept for a while, the oldest dropped past the most kept.
        let mut kept = Replays::default();
        let start = Instant::now();
        for n in 0..=REPLAYS_KEPT {
            let result = ReplayResult::of(replayed.clone());
            kept.keep(n.to_string(), filter.clone(), result, start);
        }
        assert!(kept.get("0", start).is_none(), "the oldest past the most");
        assert_eq!(kept.get("1", start).map(|(_, r)| r.replayed), Some(3));
        // Kept, a result holds the reasons shown, and how many failed in all.
        let mut many = Replayed::default();
        many.failed = (0..SHOWN_FAILURES + 5)
            .map(|n| (format!("r{n}"), "why".to_owned()))
            .collect();
        let result = ReplayResult::of(many);
        assert_eq!(
            (result.failed.len(), result.failed_total),
            (SHOWN_FAILURES, SHOWN_FAILURES + 5)
        );
        let page = replay_result(&base, &csrf, &filter, &result)
            .markup
            .into_string();
        assert!(
            page.contains("205 letters not replayed") && page.contains("And 5 more"),
            "{page}"
        );
        assert!(
            kept.get("1", start + REPLAYS_KEPT_FOR).is_none(),
            "past its time"
        );
        // All replayed: the list says so.
        let mut all = Replayed::default();
        all.replayed = 2;
        assert!(matches!(Done::replayed(all), Done::Query(q) if q == "done=replayed&n=2"));
    }
}
