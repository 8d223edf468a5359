//! The spool's database: its schema (created, checked, migrated), and the reads and edits
//! the command line makes without a running sink (`spool stats`, `dead-letters`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use super::{Settings, SpoolStats, Synchronous, damaged};
use crate::delivery::DeadLetter;
use crate::error::Error;

/// `PRAGMA application_id` of a spool: "dskh".
const APPLICATION_ID: i64 = 0x6473_6b68;

/// The schema's version, in `PRAGMA user_version`. Version 1 had no tenants and no
/// registry; it is migrated when opened for writing, and read as it is otherwise.
const SCHEMA_VERSION: i64 = 2;

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
    url TEXT NOT NULL
);
";

/// From version 1: tenants on events and dead letters, and the registry's table.
const MIGRATE_FROM_1: &str = "
ALTER TABLE events ADD COLUMN tenant TEXT;
ALTER TABLE dead_letters ADD COLUMN tenant TEXT;
CREATE TABLE IF NOT EXISTS endpoints (name TEXT PRIMARY KEY, tenant TEXT, url TEXT NOT NULL);
";

/// Sets the pragmas, creates the schema in a new database, migrates an old one, and checks
/// it.
pub(super) fn prepare(conn: &Connection, settings: &Settings) -> rusqlite::Result<()> {
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
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        // One transaction: a crash leaves either nothing or the whole schema.
        conn.execute_batch(&format!(
            "BEGIN; PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA} COMMIT;"
        ))?;
    } else if version(conn)? == 1 && application_id(conn)? == APPLICATION_ID {
        conn.execute_batch(&format!(
            "BEGIN; {MIGRATE_FROM_1} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))?;
    }
    check(conn)
}

fn application_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA application_id", [], |r| r.get(0))
}

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Checks that the database is a spool of a version this build reads.
pub(super) fn check(conn: &Connection) -> rusqlite::Result<()> {
    let (id, version) = (application_id(conn)?, version(conn)?);
    let problem = if id != APPLICATION_ID {
        Some("not a deskhook spool (another application's SQLite database)".to_owned())
    } else if !(1..=SCHEMA_VERSION).contains(&version) {
        Some(format!(
            "spool format {version}, but this build reads formats 1 to {SCHEMA_VERSION}"
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
    let tenant = if version(conn)? >= 2 {
        "tenant"
    } else {
        "NULL"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT id, endpoint, url, action, ticket, attempts, last_status, last_error, reason, \
         failed_at, body, {tenant} FROM dead_letters ORDER BY row"
    ))?;
    stmt.query_map([], |r| {
        let body: Vec<u8> = r.get(10)?;
        Ok(DeadLetter {
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
        })
    })?
    .collect()
}

pub(super) fn requeue_dead_letters(
    conn: &mut Connection,
    endpoints: &[String],
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let now = unix_ms(SystemTime::now());
    let mut moved = 0;
    for endpoint in endpoints {
        moved += tx.execute(
            "INSERT INTO events (id, endpoint, action, ticket, content_type, body, accepted_at, \
             tenant) SELECT id, endpoint, action, ticket, content_type, body, ?1, tenant FROM \
             dead_letters WHERE endpoint = ?2 ORDER BY row",
            params![now, endpoint],
        )?;
        tx.execute("DELETE FROM dead_letters WHERE endpoint = ?1", [endpoint])?;
    }
    tx.commit()?;
    Ok(moved)
}
