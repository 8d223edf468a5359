//! The spool's database: its schema (created, checked, migrated), and the reads and edits
//! the command line makes without a running sink (`spool stats`, `dead-letters`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use super::{Settings, SpoolStats, Synchronous, damaged};
use crate::delivery::{
    AttemptEntry, AttemptOutcome, AttemptPage, AttemptQuery, DeadLetter, DeadLetterPage,
    DeadLetterQuery, EndpointSpec, StatusFilter, StoredLetter,
};
use crate::error::Error;

/// `PRAGMA application_id` of a spool: "dskh".
const APPLICATION_ID: i64 = 0x6473_6b68;

/// The schema's version, in `PRAGMA user_version`. Version 1 had no tenants and no
/// registry, version 2 no attempt log and no endpoint settings; older versions are migrated
/// when opened for writing, and read as they are otherwise. A column added where an earlier
/// build of the same version still reads and writes the table (`endpoints.paused`) does not
/// change the version: the table gets it when opened for writing.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    action TEXT NOT NULL,
    ticket TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    accepted_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    tenant TEXT
);
CREATE INDEX IF NOT EXISTS events_by_endpoint ON events (endpoint, row);
CREATE TABLE IF NOT EXISTS dead_letters (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    url TEXT NOT NULL,
    action TEXT NOT NULL,
    ticket TEXT NOT NULL,
    content_type TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    body BLOB NOT NULL,
    tenant TEXT
);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    tenant TEXT,
    url TEXT NOT NULL,
    spec TEXT,
    paused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    tenant TEXT,
    event_type TEXT NOT NULL,
    ticket TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    duration_us INTEGER NOT NULL,
    response BLOB NOT NULL,
    next_at INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_by_endpoint ON attempts (endpoint, seq);
CREATE INDEX IF NOT EXISTS attempts_by_event ON attempts (event_id);
CREATE INDEX IF NOT EXISTS attempts_by_ticket ON attempts (ticket);
CREATE INDEX IF NOT EXISTS attempts_by_at ON attempts (at);
";

/// Indexes of the dead letters for the console's filters (an endpoint's, a tenant's, one
/// event's, one ticket's letters), so that a page of them does not scan a table that an
/// endpoint down for weeks has filled, and by age for their retention. Made when a spool is
/// opened for writing, for spools made before them too (an index does not change the
/// format: earlier builds keep it up).
const LETTER_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS dead_letters_by_endpoint ON dead_letters (endpoint, row);
CREATE INDEX IF NOT EXISTS dead_letters_by_tenant ON dead_letters (tenant, row);
CREATE INDEX IF NOT EXISTS dead_letters_by_event ON dead_letters (id);
CREATE INDEX IF NOT EXISTS dead_letters_by_ticket ON dead_letters (ticket);
CREATE INDEX IF NOT EXISTS dead_letters_by_age ON dead_letters (failed_at);
";

/// The attempt log's index for a tenant's attempts (a tenant's page of its deliveries, the
/// admin API's `?tenant=`), newest first: without it such a page walks the log from its
/// newest row until it has found a page, a million rows for a tenant seldom in it. Made as
/// [`LETTER_INDEXES`] are, for spools made before it too.
const ATTEMPT_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS attempts_by_tenant ON attempts (tenant, seq);
";

/// From version 1: tenants on events and dead letters, and the registry's table.
const MIGRATE_FROM_1: &str = "
ALTER TABLE events ADD COLUMN tenant TEXT;
ALTER TABLE dead_letters ADD COLUMN tenant TEXT;
CREATE TABLE IF NOT EXISTS endpoints (name TEXT PRIMARY KEY, tenant TEXT, url TEXT NOT NULL);
";

/// From version 2: the endpoints' settings, and the attempt log (created by `SCHEMA`).
const MIGRATE_FROM_2: &str = "
ALTER TABLE endpoints ADD COLUMN spec TEXT;
";

/// Which endpoints are paused: added to a version 3 spool made before it (an earlier build
/// leaves it as it finds it).
const ADD_PAUSED: &str = "ALTER TABLE endpoints ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;";

/// Bytes of write-ahead log kept after a checkpoint (`PRAGMA journal_size_limit`).
pub(super) const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Sets the pragmas, creates the schema in a new database, migrates an old one, and checks
/// it.
pub(super) fn prepare(conn: &Connection, settings: &Settings) -> rusqlite::Result<()> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables > 0 && application_id(conn)? != APPLICATION_ID {
        // Not a spool: refused by `check` before anything of it is changed (the journal
        // mode is kept in the file).
        return check(conn);
    }
    // WAL: readers (the engine's loads, `deskhook spool stats`) never block the writer.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(target: deskhook::LOG_TARGET, "the spool's journal mode is {mode}, not WAL");
    }
    let sync = match settings.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // A reader that holds a checkpoint back (a long page of the console) lets the log grow;
    // once a checkpoint has gone through, the log is cut back to this instead of keeping the
    // largest size it ever reached.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if tables == 0 {
        // One transaction: a crash leaves either nothing or the whole schema.
        conn.execute_batch(&format!(
            "BEGIN; PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA} COMMIT;"
        ))?;
    } else if application_id(conn)? == APPLICATION_ID {
        let steps = match version(conn)? {
            1 => format!("{MIGRATE_FROM_1} {MIGRATE_FROM_2}"),
            2 => MIGRATE_FROM_2.to_owned(),
            _ => String::new(),
        };
        if !steps.is_empty() {
            // `SCHEMA` then creates what is new (its statements are IF NOT EXISTS).
            conn.execute_batch(&format!(
                "BEGIN; {steps} {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
        }
        if version(conn)? == SCHEMA_VERSION && !has_paused(conn)? {
            conn.execute_batch(ADD_PAUSED)?;
        }
    }
    if version(conn)? == SCHEMA_VERSION {
        conn.execute_batch(LETTER_INDEXES)?;
        conn.execute_batch(ATTEMPT_INDEXES)?;
    }
    check(conn)
}

fn application_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA application_id", [], |r| r.get(0))
}

/// What [`check`] says of a spool of a format this build does not read.
pub(super) const NEWER_FORMAT: &str = "but this build reads formats";

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Checks that the database is a spool of a version this build reads.
pub(super) fn check(conn: &Connection) -> rusqlite::Result<()> {
    let (id, version) = (application_id(conn)?, version(conn)?);
    let problem = if id != APPLICATION_ID {
        Some("not a deskhook spool (another application's SQLite database)".to_owned())
    } else if version < 1 {
        // No deskhook writes such a format: damaged, not newer.
        Some(format!("spool format {version}, which no deskhook writes"))
    } else if version > SCHEMA_VERSION {
        Some(format!(
            "spool format {version}, {NEWER_FORMAT} 1 to {SCHEMA_VERSION}"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            Some(problem),
        )),
        None => Ok(()),
    }
}

pub(super) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn stats(conn: &Connection, db: &Path) -> Result<SpoolStats, Error> {
    let read = || -> rusqlite::Result<SpoolStats> {
        // One read transaction: the counts are of one commit, and add up while the
        // helpdesk writes (rolled back when dropped: nothing is written).
        let tx = conn.unchecked_transaction()?;
        let conn: &Connection = &tx;
        let now = unix_ms(SystemTime::now());
        let (pending, due, oldest): (i64, i64, Option<i64>) = conn.query_row(
            "SELECT count(*), coalesce(sum(next_at <= ?1), 0), min(accepted_at) FROM events",
            [now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let dead: i64 = conn.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?;
        // A spool of format 1 (read without migrating) has no registry: nothing is known to
        // be registered.
        let registry = version(conn)? >= 2;
        let query = if registry {
            "SELECT e.endpoint, count(*), r.name IS NOT NULL FROM events e \
             LEFT JOIN endpoints r ON r.name = e.endpoint GROUP BY e.endpoint ORDER BY e.endpoint"
        } else {
            "SELECT endpoint, count(*), 0 FROM events GROUP BY endpoint ORDER BY endpoint"
        };
        let mut stmt = conn.prepare(query)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?.unsigned_abs(),
                    r.get::<_, bool>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let waiting = rows
            .iter()
            .filter(|(_, _, registered)| !registered)
            .map(|(_, n, _)| n)
            .sum();
        let registered: i64 = if registry {
            conn.query_row("SELECT count(*) FROM endpoints", [], |r| r.get(0))?
        } else {
            0
        };
        Ok(SpoolStats {
            pending: pending.unsigned_abs(),
            due: due.unsigned_abs(),
            oldest: oldest.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
            dead_letters: dead.unsigned_abs(),
            size_bytes: size_on_disk(db),
            waiting_for_endpoint: waiting,
            registered: registered.unsigned_abs(),
            unregistered: rows
                .iter()
                .filter(|(_, _, registered)| !registered)
                .map(|(name, _, _)| name.clone())
                .collect(),
            endpoints: rows.into_iter().map(|(name, n, _)| (name, n)).collect(),
        })
    };
    read().map_err(|e| damaged(db, &e))
}

/// The database and its WAL, in bytes.
fn size_on_disk(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).ok()
        })
        .map(|m| m.len())
        .sum()
}

/// Bytes the database's pages hold (free pages not counted).
pub(super) fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let pages = pragma("page_count")? - pragma("freelist_count")?;
    Ok(pages.unsigned_abs() * pragma("page_size")?.unsigned_abs())
}

pub(super) fn dead_letters(conn: &Connection) -> rusqlite::Result<Vec<DeadLetter>> {
    Ok(stored_letters(conn, "1 = 1", &[], None)?
        .into_iter()
        .map(|s| s.letter)
        .collect())
}

/// Dead letters whose rows match `filter` (SQL over `dead_letters`, with `args` as ?1…),
/// oldest first, at most `limit`; newest first when a limit is given.
fn stored_letters(
    conn: &Connection,
    filter: &str,
    args: &[rusqlite::types::Value],
    limit: Option<usize>,
) -> rusqlite::Result<Vec<StoredLetter>> {
    each_stored_letter(conn, filter, args, limit, |letters| letters.collect())?
}

/// What `take` makes of the dead letters [`stored_letters`] finds, read as it goes: so that
/// it may stop early.
fn each_stored_letter<T>(
    conn: &Connection,
    filter: &str,
    args: &[rusqlite::types::Value],
    limit: Option<usize>,
    take: impl FnOnce(&mut dyn Iterator<Item = rusqlite::Result<StoredLetter>>) -> T,
) -> rusqlite::Result<T> {
    let tenant = if version(conn)? >= 2 {
        "tenant"
    } else {
        "NULL"
    };
    let order = match limit {
        Some(n) => format!("ORDER BY row DESC LIMIT {n}"),
        None => "ORDER BY row".to_owned(),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT id, endpoint, url, action, ticket, attempts, last_status, last_error, reason, \
         failed_at, body, {tenant}, row FROM dead_letters WHERE {filter} {order}"
    ))?;
    let mut letters = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        let body: Vec<u8> = r.get(10)?;
        let row: i64 = r.get(12)?;
        Ok(StoredLetter {
            key: format!("r{row}"),
            position: row.unsigned_abs(),
            letter: DeadLetter {
                id: r.get(0)?,
                endpoint: r.get(1)?,
                url: r.get(2)?,
                tenant: r.get(11)?,
                action: r.get(3)?,
                ticket: r.get(4)?,
                attempts: r.get(5)?,
                last_status: r.get(6)?,
                last_error: r.get(7)?,
                reason: r.get(8)?,
                failed_at: r.get(9)?,
                body: crate::delivery::raw_body(&body),
            },
        })
    })?;
    Ok(take(&mut letters))
}

/// The dead letters `query` asks for, newest first.
pub(super) fn letters(
    conn: &Connection,
    query: &DeadLetterQuery,
) -> rusqlite::Result<DeadLetterPage> {
    let (filter, args) = letters_filter(query);
    let size = query.page_size();
    each_stored_letter(conn, &filter, &args, Some(size + 1), |letters| {
        crate::delivery::letters::page(letters, query)
    })?
}

/// The SQL condition over `dead_letters` of `query`, and its arguments (?1…).
fn letters_filter(query: &DeadLetterQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut filter = String::from("1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut add = |column: &str, value: Value| {
        args.push(value);
        filter.push_str(&format!(" AND {column} ?{}", args.len()));
    };
    if let Some(endpoint) = &query.endpoint {
        add("endpoint =", Value::Text(endpoint.clone()));
    }
    if let Some(tenant) = &query.tenant {
        add("tenant =", Value::Text(tenant.clone()));
    }
    if let Some(event_type) = &query.event_type {
        add("action =", Value::Text(event_type.clone()));
    }
    if let Some(id) = &query.event_id {
        add("id =", Value::Text(id.clone()));
    }
    if let Some(ticket) = &query.ticket {
        add("ticket =", Value::Text(ticket.clone()));
    }
    if let Some(before) = query.before {
        add(
            "row <",
            Value::Integer(i64::try_from(before).unwrap_or(i64::MAX)),
        );
    }
    (filter, args)
}

/// The rows named by dead letter keys (`r<row>`); other keys name none.
pub(super) fn letter_rows(keys: &[String]) -> Vec<i64> {
    keys.iter()
        .filter_map(|k| k.strip_prefix('r')?.parse().ok())
        .collect()
}

/// The dead letters of `rows`, oldest first.
pub(super) fn letters_of_rows(
    conn: &Connection,
    rows: &[i64],
) -> rusqlite::Result<Vec<StoredLetter>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let list = rows
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    stored_letters(conn, &format!("row IN ({list})"), &[], None)
}

/// Moves the dead letters of `endpoints` that each may take as it is now (see
/// [`replayable`](crate::delivery::letters::replayable)) back into the queue, in the order
/// their events were emitted (by id, a UUID v7), which is their tickets' order even where
/// the letters were not written in it. A letter kept holds back the later letters of its
/// ticket and endpoint (queued, they would go out before it). One transaction: all of it,
/// or nothing.
pub(super) fn requeue_dead_letters(
    conn: &mut Connection,
    endpoints: &[crate::delivery::Endpoint],
    max_payload: usize,
) -> rusqlite::Result<super::Requeued> {
    use crate::delivery::letters::{LetterHead, replayable};
    let tx = conn.transaction()?;
    let now = unix_ms(SystemTime::now());
    let mut done = super::Requeued::default();
    for endpoint in endpoints {
        type Head = (i64, String, String, Option<String>, i64, String);
        let heads: Vec<Head> = tx
            .prepare(
                "SELECT row, id, action, tenant, length(CAST(body AS BLOB)), ticket \
                 FROM dead_letters WHERE endpoint = ?1 ORDER BY id, row",
            )?
            .query_map([endpoint.name()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // The first letter kept of each ticket, by ticket.
        let mut held: std::collections::HashMap<String, String> = Default::default();
        for (row, id, action, tenant, size, ticket) in heads {
            if let Some(first) = held.get(&ticket) {
                let why = format!(
                    "held behind dead letter {first} of the same ticket and endpoint, which \
                     was not replayed: replay them together once it can be"
                );
                done.kept.push((id, why));
                continue;
            }
            let head = LetterHead {
                id: &id,
                action: &action,
                tenant: tenant.as_deref(),
                size: usize::try_from(size).unwrap_or(usize::MAX),
            };
            if let Err(why) = replayable(endpoint, &head, max_payload) {
                held.insert(ticket, id.clone());
                done.kept.push((id, why));
                continue;
            }
            tx.execute(
                "INSERT INTO events (id, endpoint, action, ticket, content_type, body, \
                 accepted_at, tenant) SELECT id, endpoint, action, ticket, content_type, body, \
                 ?1, tenant FROM dead_letters WHERE row = ?2",
                params![now, row],
            )?;
            tx.execute("DELETE FROM dead_letters WHERE row = ?1", [row])?;
            done.moved += 1;
        }
    }
    tx.commit()?;
    Ok(done)
}

/// Moves every pending event of `endpoints` to the dead letters with `reason`, in their
/// rows' order; how many moved. One transaction: all of it, or nothing.
pub(super) fn dead_letter_pending(
    conn: &mut Connection,
    endpoints: &[String],
    reason: &str,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let failed_at = crate::delivery::now_rfc3339();
    let mut moved = 0;
    for endpoint in endpoints {
        // The URL as the registry's table last knew it (cut to its origin), if it did.
        tx.execute(
            "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
             attempts, last_status, last_error, reason, failed_at, body, tenant) \
             SELECT id, endpoint, coalesce((SELECT url FROM endpoints WHERE name = ?1), ''), \
             action, ticket, content_type, attempts, last_status, last_error, ?2, ?3, body, \
             tenant FROM events WHERE endpoint = ?1 ORDER BY row",
            params![endpoint, reason, failed_at],
        )?;
        moved += tx.execute("DELETE FROM events WHERE endpoint = ?1", [endpoint])?;
    }
    tx.commit()?;
    Ok(moved)
}

/// Every endpoint the registry's table lists, each with whether its settings are kept (an
/// endpoint made from settings at run time) or not (one the application gave its builder).
pub(super) fn kept_endpoints(conn: &Connection) -> rusqlite::Result<Vec<(String, bool)>> {
    let version = version(conn)?;
    if version < 2 {
        return Ok(Vec::new());
    }
    let query = if version < 3 {
        "SELECT name, 0 FROM endpoints"
    } else {
        "SELECT name, spec IS NOT NULL FROM endpoints"
    };
    conn.prepare(query)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Whether the registry's table has its `paused` column (see [`ADD_PAUSED`]).
fn has_paused(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info('endpoints') WHERE name = 'paused'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The endpoints the registry's table lists as paused.
pub(super) fn paused_endpoints(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    if !has_paused(conn)? {
        return Ok(Vec::new());
    }
    conn.prepare("SELECT name FROM endpoints WHERE paused != 0 ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// The settings of the endpoints the registry's table lists, those that have some; a row
/// whose settings do not read is logged and left out.
pub(super) fn stored_endpoints(conn: &Connection) -> rusqlite::Result<Vec<EndpointSpec>> {
    if version(conn)? < 3 {
        return Ok(Vec::new());
    }
    let mut stmt =
        conn.prepare("SELECT name, spec FROM endpoints WHERE spec IS NOT NULL ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, json)| match serde_json::from_str(&json) {
            Ok(spec) => Some(spec),
            Err(e) => {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{name}': its stored settings do not read ({e}); it is not \
                     registered again"
                );
                None
            }
        })
        .collect())
}

fn outcome_text(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retrying => "retrying",
        AttemptOutcome::DeadLettered => "dead_lettered",
        AttemptOutcome::EndpointDisabled => "endpoint_disabled",
    }
}

fn outcome_of(text: &str) -> AttemptOutcome {
    match text {
        "delivered" => AttemptOutcome::Delivered,
        "retrying" => AttemptOutcome::Retrying,
        "endpoint_disabled" => AttemptOutcome::EndpointDisabled,
        _ => AttemptOutcome::DeadLettered,
    }
}

/// Writes one attempt of the attempt log.
pub(super) fn insert_attempt(
    tx: &rusqlite::Transaction<'_>,
    e: &AttemptEntry,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO attempts (at, event_id, endpoint, tenant, event_type, ticket, attempt, \
         outcome, status, error, duration_us, response, next_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        unix_ms(e.at),
        e.event_id,
        &*e.endpoint,
        e.tenant.as_deref(),
        e.event_type.as_str(),
        &*e.ticket,
        e.attempt,
        outcome_text(e.outcome),
        e.status,
        e.error,
        i64::try_from(e.duration.as_micros()).unwrap_or(i64::MAX),
        &e.response[..],
        e.next_attempt.map(unix_ms)
    ])
    .map(drop)
}

fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_millis(ms.unsigned_abs())
}

/// The attempts `query` asks for, newest first.
pub(super) fn attempts(conn: &Connection, query: &AttemptQuery) -> rusqlite::Result<AttemptPage> {
    if version(conn)? < 3 {
        return Ok(AttemptPage::default());
    }
    let mut sql = String::from(
        "SELECT seq, at, event_id, endpoint, tenant, event_type, ticket, attempt, outcome, \
         status, error, duration_us, response, next_at FROM attempts WHERE 1 = 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut filter = |sql_part: &str, value: rusqlite::types::Value| {
        args.push(value);
        sql.push_str(&format!(" AND {sql_part} ?{}", args.len()));
    };
    use rusqlite::types::Value;
    if let Some(endpoint) = &query.endpoint {
        filter("endpoint =", Value::Text(endpoint.clone()));
    }
    if let Some(tenant) = &query.tenant {
        filter("tenant =", Value::Text(tenant.clone()));
    }
    if let Some(id) = &query.event_id {
        filter("event_id =", Value::Text(id.clone()));
    }
    if let Some(ticket) = &query.ticket {
        filter("ticket =", Value::Text(ticket.clone()));
    }
    if let Some(since) = query.since {
        filter("at >=", Value::Integer(unix_ms(since)));
    }
    if let Some(until) = query.until {
        filter("at <", Value::Integer(unix_ms(until)));
    }
    if let Some(before) = query.before {
        filter(
            "seq <",
            Value::Integer(i64::try_from(before).unwrap_or(i64::MAX)),
        );
    }
    match query.status {
        Some(StatusFilter::Code(code)) => filter("status =", Value::Integer(code.into())),
        Some(StatusFilter::Class(class)) => {
            filter("status / 100 =", Value::Integer(class.into()));
        }
        Some(StatusFilter::NoResponse) => sql.push_str(" AND status IS NULL"),
        Some(StatusFilter::Failed) => sql.push_str(" AND outcome != 'delivered'"),
        None => {}
    }
    let size = query.page_size();
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", size + 1));
    let mut stmt = conn.prepare(&sql)?;
    let mut items = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            let event_type: String = r.get(5)?;
            Ok(AttemptEntry {
                seq: r.get::<_, i64>(0)?.unsigned_abs(),
                at: time_of(r.get(1)?),
                event_id: r.get::<_, String>(2)?.into(),
                endpoint: r.get::<_, String>(3)?.into(),
                tenant: r.get::<_, Option<String>>(4)?.map(Into::into),
                event_type: event_type.parse().map_err(
                    |e: deskhook::event::ParseEventTypeError| {
                        rusqlite::Error::FromSqlConversionFailure(
                            5,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    },
                )?,
                ticket: r.get::<_, String>(6)?.into(),
                attempt: r.get(7)?,
                outcome: outcome_of(&r.get::<_, String>(8)?),
                status: r.get(9)?,
                error: r.get(10)?,
                duration: std::time::Duration::from_micros(r.get::<_, i64>(11)?.unsigned_abs()),
                response: r.get::<_, Vec<u8>>(12)?.into_boxed_slice(),
                next_attempt: r.get::<_, Option<i64>>(13)?.map(time_of),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = if items.len() > size {
        items.truncate(size);
        items.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AttemptPage { items, next })
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
