//! The spool's SQLite side: the schema, the group-committing writer thread, and the reads
//! the engine and the command line make.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deskhook::{EventId, EventType};
use rusqlite::{Connection, params};
use serde_json::value::RawValue;

use super::{Durability, Settings, Spool, SpoolStats, Synchronous, damaged};
use crate::delivery::{DeadLetter, Job, Receipt, ReceiptState, Store, StoredJob};
use crate::error::Error;

/// `PRAGMA application_id` of a spool: "dskh".
const APPLICATION_ID: i64 = 0x6473_6b68;

/// The schema's version, in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

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
    last_error TEXT
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
    body BLOB NOT NULL
);
";

/// Sets the pragmas, creates the schema in a new database and checks an old one.
pub(super) fn prepare(conn: &Connection, settings: &Settings) -> rusqlite::Result<()> {
    // WAL: readers (the engine's loads, `deskhook spool stats`) never block the writer.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(target: "deskhook", "the spool's journal mode is {mode}, not WAL");
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
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        conn.execute_batch(SCHEMA)?;
    }
    check(conn)
}

/// Checks that the database is a spool of a version this build reads.
pub(super) fn check(conn: &Connection) -> rusqlite::Result<()> {
    let id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let problem = if id != APPLICATION_ID {
        Some("not a deskhook spool (another application's SQLite database)".to_owned())
    } else if version != SCHEMA_VERSION {
        Some(format!(
            "spool format {version}, but this build reads format {SCHEMA_VERSION}"
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

fn unix_ms(t: SystemTime) -> i64 {
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
        let mut stmt = conn
            .prepare("SELECT endpoint, count(*) FROM events GROUP BY endpoint ORDER BY endpoint")?;
        let endpoints = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .map(|row| row.map(|(name, n)| (name, n.unsigned_abs())))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(SpoolStats {
            pending: pending.unsigned_abs(),
            due: due.unsigned_abs(),
            oldest: oldest.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
            dead_letters: dead.unsigned_abs(),
            size_bytes: size_on_disk(db),
            endpoints,
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
fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let pages = pragma("page_count")? - pragma("freelist_count")?;
    Ok(pages.unsigned_abs() * pragma("page_size")?.unsigned_abs())
}

pub(super) fn dead_letters(conn: &Connection) -> rusqlite::Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare(
        "SELECT id, endpoint, url, action, ticket, attempts, last_status, last_error, reason, \
         failed_at, body FROM dead_letters ORDER BY row",
    )?;
    stmt.query_map([], |r| {
        let body: Vec<u8> = r.get(10)?;
        Ok(DeadLetter {
            id: r.get(0)?,
            endpoint: r.get(1)?,
            url: r.get(2)?,
            action: r.get(3)?,
            ticket: r.get(4)?,
            attempts: r.get(5)?,
            last_status: r.get(6)?,
            last_error: r.get(7)?,
            reason: r.get(8)?,
            failed_at: r.get(9)?,
            body: raw_body(&body),
        })
    })?
    .collect()
}

/// A body as JSON; anything else as a JSON string, rather than lost.
pub(crate) fn raw_body(body: &[u8]) -> Box<RawValue> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| RawValue::from_string(text.to_owned()).ok())
        .or_else(|| serde_json::value::to_raw_value(&String::from_utf8_lossy(body)).ok())
        .unwrap_or_default()
}

pub(super) fn requeue_dead_letters(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let now = unix_ms(SystemTime::now());
    let moved = tx.execute(
        "INSERT INTO events (id, endpoint, action, ticket, content_type, body, accepted_at) \
         SELECT id, endpoint, action, ticket, content_type, body, ?1 FROM dead_letters \
         ORDER BY row",
        [now],
    )?;
    tx.execute("DELETE FROM dead_letters", [])?;
    tx.commit()?;
    Ok(moved)
}

/// What the writer thread is asked to do.
enum Op {
    Append {
        jobs: Vec<(usize, Job)>,
        receipt: Arc<ReceiptState>,
    },
    Attempted {
        row: i64,
        attempts: u32,
        next_at: i64,
        last_status: Option<u16>,
        last_error: Option<String>,
    },
    Delivered(i64),
    Dead {
        row: Option<i64>,
        letter: DeadLetter,
        content_type: &'static str,
    },
}

use crate::delivery::CommitListener as Listener;

/// What the writer thread and the engine share.
struct Core {
    dir: PathBuf,
    db: PathBuf,
    settings: Settings,
    names: Vec<String>,
    /// Per endpoint: the last row committed, and rows committed in all.
    committed: Vec<(AtomicI64, AtomicU64)>,
    uncommitted: AtomicUsize,
    /// Appends wait here while [`MAX_UNCOMMITTED`] jobs wait for the writer.
    room: (Mutex<()>, std::sync::Condvar),
    used: AtomicU64,
    listener: OnceLock<Listener>,
    /// For the engine's loads.
    reader: Mutex<Connection>,
    /// Held for as long as the spool is open.
    lock: Mutex<Option<File>>,
}

/// Most jobs handed to the writer and not committed yet: past it, appends wait, so that
/// emitting faster than the disk takes cannot fill memory.
const MAX_UNCOMMITTED: usize = 8192;

impl Core {
    /// Waits while the writer is [`MAX_UNCOMMITTED`] jobs behind.
    fn wait_for_room(&self) {
        if self.uncommitted.load(Ordering::Acquire) < MAX_UNCOMMITTED {
            return;
        }
        let (lock, room) = &self.room;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        while self.uncommitted.load(Ordering::Acquire) >= MAX_UNCOMMITTED {
            guard = room
                .wait_timeout(guard, std::time::Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// `n` jobs were committed or failed: room for waiting appends.
    fn committed_jobs(&self, n: usize) {
        self.uncommitted.fetch_sub(n, Ordering::AcqRel);
        let _guard = self.room.0.lock().unwrap_or_else(|p| p.into_inner());
        self.room.1.notify_all();
    }
}

/// The spool as the delivery engine's [`Store`].
pub(crate) struct SpoolStore {
    core: Arc<Core>,
    ops: Mutex<Option<Sender<Op>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SpoolStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolStore")
            .field("dir", &self.core.dir)
            .field("endpoints", &self.core.names)
            .finish_non_exhaustive()
    }
}

impl SpoolStore {
    pub(super) fn start(spool: Spool, names: Vec<String>) -> Result<SpoolStore, Error> {
        let Spool {
            dir,
            db,
            lock,
            conn,
            settings,
        } = spool;
        let mut counts = std::collections::HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT endpoint, max(row), count(*) FROM events GROUP BY endpoint")
                .map_err(|e| damaged(&db, &e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(|e| damaged(&db, &e))?;
            for row in rows {
                let (name, max, count) = row.map_err(|e| damaged(&db, &e))?;
                counts.insert(name, (max, count.unsigned_abs()));
            }
        }
        let committed: Vec<(AtomicI64, AtomicU64)> = names
            .iter()
            .map(|name| {
                let (max, count) = counts.remove(name).unwrap_or((0, 0));
                (AtomicI64::new(max), AtomicU64::new(count))
            })
            .collect();
        let recovered: u64 = committed
            .iter()
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum();
        if recovered > 0 {
            log::info!(
                target: "deskhook",
                "spool {}: {recovered} undelivered event(s) from before, delivered again now",
                dir.display()
            );
        }
        for (name, (_, count)) in &counts {
            log::warn!(
                target: "deskhook",
                "spool {}: {count} event(s) for endpoint '{name}', which the configuration no \
                 longer has, stay in the spool (configure an endpoint of that name to deliver \
                 them)",
                dir.display()
            );
        }
        let reader = Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| damaged(&db, &e))?;
        let used = used_bytes(&conn).map_err(|e| damaged(&db, &e))?;
        let core = Arc::new(Core {
            dir,
            db,
            settings,
            names,
            committed,
            uncommitted: AtomicUsize::new(0),
            room: (Mutex::new(()), std::sync::Condvar::new()),
            used: AtomicU64::new(used),
            listener: OnceLock::new(),
            reader: Mutex::new(reader),
            lock: Mutex::new(Some(lock)),
        });
        let (tx, rx) = mpsc::channel();
        let writer = {
            let shared = core.clone();
            std::thread::Builder::new()
                .name("deskhook-spool".to_owned())
                .spawn(move || write_loop(&shared, conn, &rx))
                .map_err(|e| Error::Spool {
                    path: core.dir.clone(),
                    message: format!("cannot start the writer thread: {e}"),
                })?
        };
        Ok(SpoolStore {
            core,
            ops: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Hands an update to the writer.
    fn send(&self, op: Op) {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let sent = ops.as_ref().map(|tx| tx.send(op).map_err(drop));
        match sent {
            Some(Ok(())) => {}
            // Closed at shutdown: an attempt that ended after it.
            None => log::info!(
                target: "deskhook",
                "spool {}: an outcome after shutdown was not written (the event is delivered \
                 again after the next start; receivers de-duplicate on webhook-id)",
                self.core.dir.display()
            ),
            Some(Err(_)) => log::error!(
                target: "deskhook",
                "spool {}: the writer thread is gone; an update was not written (the event may \
                 be delivered again after a restart)",
                self.core.dir.display()
            ),
        }
    }
}

impl SpoolStore {
    /// Lets the writer finish what is queued, then releases the lock.
    fn shut(&self) {
        // Closing the channel lets the writer finish what is queued and end.
        drop(self.ops.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take()
            && writer.join().is_err()
        {
            log::error!(target: "deskhook", "the spool's writer thread panicked");
        }
        drop(
            self.core
                .lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
    }
}

impl Drop for SpoolStore {
    fn drop(&mut self) {
        self.shut();
    }
}

impl Store for SpoolStore {
    fn append(&self, jobs: Vec<(usize, Job)>) -> Receipt {
        let receipt = Arc::new(ReceiptState::default());
        if jobs.is_empty() {
            receipt.settle(Ok(()));
            return Receipt::new(receipt);
        }
        let n = jobs.len();
        let endpoints: Vec<usize> = jobs.iter().map(|(index, _)| *index).collect();
        self.core.wait_for_room();
        self.core.uncommitted.fetch_add(n, Ordering::AcqRel);
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let op = Op::Append {
            jobs,
            receipt: receipt.clone(),
        };
        if ops.as_ref().is_none_or(|tx| tx.send(op).is_err()) {
            self.core.uncommitted.fetch_sub(n, Ordering::AcqRel);
            let error = Error::Spool {
                path: self.core.dir.clone(),
                message: "the spool is closed (the sink was shut down); the event was not \
                          accepted"
                    .to_owned(),
            };
            log::error!(target: "deskhook", "{n} event(s) dropped: {error}");
            if let Some(listener) = self.core.listener.get() {
                for index in endpoints {
                    listener(index, 1);
                }
            }
            receipt.settle(Err(error));
        }
        Receipt::new(receipt)
    }

    fn waits_for_commit(&self) -> bool {
        self.core.settings.durability == Durability::Wait
    }

    fn window(&self) -> usize {
        self.core.settings.window
    }

    fn committed(&self, index: usize) -> (i64, u64) {
        self.core.committed.get(index).map_or((0, 0), |(row, n)| {
            (row.load(Ordering::Acquire), n.load(Ordering::Acquire))
        })
    }

    fn uncommitted(&self) -> usize {
        self.core.uncommitted.load(Ordering::Acquire)
    }

    fn load(&self, index: usize, after: i64, limit: usize) -> Result<Vec<StoredJob>, Error> {
        let name = &self.core.names[index];
        let conn = self.core.reader.lock().unwrap_or_else(|p| p.into_inner());
        let db = &self.core.db;
        let mut stmt = conn
            .prepare_cached(
                "SELECT row, id, action, ticket, content_type, body, attempts, next_at, \
                 last_status, last_error FROM events WHERE endpoint = ?1 AND row > ?2 \
                 ORDER BY row LIMIT ?3",
            )
            .map_err(|e| damaged(db, &e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![name, after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<u16>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                ))
            })
            .map_err(|e| damaged(db, &e))?;
        let mut jobs = Vec::new();
        for row in rows {
            let (
                row,
                id_text,
                action,
                ticket,
                content_type,
                body,
                attempts,
                next_at,
                status,
                error,
            ) = row.map_err(|e| damaged(db, &e))?;
            let id: EventId = id_text.parse().map_err(|e| {
                damaged(
                    db,
                    &format!("row {row} has a bad event id '{id_text}': {e}"),
                )
            })?;
            // Spools written before other formats hold plain action names, which read as
            // Zenlix event types.
            let event_type = EventType::from_wire(&action).ok_or_else(|| {
                damaged(
                    db,
                    &format!("row {row} has an unknown event type '{action}'"),
                )
            })?;
            let due = (!self.core.settings.ignore_backoff && next_at > 0)
                .then(|| UNIX_EPOCH + std::time::Duration::from_millis(next_at.unsigned_abs()));
            let job = Job {
                id,
                id_text: id_text.into(),
                event_type,
                key: ticket.into(),
                body: Bytes::from(body),
                content_type: static_content_type(&content_type),
                seq: 0,
                order: row.unsigned_abs(),
                attempts,
                last_status: status,
                last_error: error,
                row: Some(row),
            };
            jobs.push((job, due));
        }
        Ok(jobs)
    }

    fn attempted(&self, job: &Job, next_at: SystemTime) {
        if let Some(row) = job.row {
            self.send(Op::Attempted {
                row,
                attempts: job.attempts,
                next_at: unix_ms(next_at),
                last_status: job.last_status,
                last_error: job.last_error.clone(),
            });
        }
    }

    fn delivered(&self, row: i64) {
        self.send(Op::Delivered(row));
    }

    fn dead(&self, row: Option<i64>, letter: DeadLetter) {
        self.send(Op::Dead {
            row,
            letter,
            content_type: "application/json",
        });
    }

    fn close(&self) {
        self.shut();
    }

    fn listen(&self, listener: Listener) {
        let _ = self.core.listener.set(listener);
    }

    fn dead_letter_place(&self) -> String {
        format!("the dead letters of spool {}", self.core.dir.display())
    }
}

/// The content types a job can have, as the `&'static str` jobs hold.
fn static_content_type(text: &str) -> &'static str {
    const KNOWN: [&str; 2] = ["application/json", "application/json; charset=utf-8"];
    KNOWN
        .into_iter()
        .find(|known| *known == text)
        .unwrap_or(KNOWN[0])
}

/// The writer thread: takes what is queued, writes it in one transaction, settles the
/// receipts, and tells the engine; until the channel closes.
fn write_loop(core: &Core, mut conn: Connection, ops: &Receiver<Op>) {
    let mut last_batch = 1;
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        let mut appends = usize::from(matches!(batch[0], Op::Append { .. }));
        let max_batch = core.settings.max_batch;
        // What arrived meanwhile.
        while appends < max_batch {
            match ops.try_recv() {
                Ok(op) => {
                    appends += usize::from(matches!(op, Op::Append { .. }));
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
        // Emits came concurrently last time: give the others a moment to arrive.
        if last_batch > 1 && appends > 0 && appends < last_batch.min(max_batch) {
            let deadline = Instant::now() + core.settings.max_wait;
            while appends < last_batch.min(max_batch) {
                match ops.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(op) => {
                        appends += usize::from(matches!(op, Op::Append { .. }));
                        batch.push(op);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        if appends > 0 {
            last_batch = appends;
        }
        commit(core, &mut conn, batch);
    }
    // A clean close: fold the WAL into the database.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        log::debug!(target: "deskhook", "spool checkpoint at close: {e}");
    }
}

/// Writes one batch in one transaction.
fn commit(core: &Core, conn: &mut Connection, batch: Vec<Op>) {
    let mut appends = Vec::new();
    let mut updates = Vec::new();
    for op in batch {
        match op {
            Op::Append { jobs, receipt } => appends.push((jobs, receipt)),
            other => updates.push(other),
        }
    }
    let used = core.used.load(Ordering::Acquire);
    let full = used >= core.settings.max_size;
    let now = unix_ms(SystemTime::now());
    let mut rows: Vec<Vec<(usize, i64)>> = Vec::with_capacity(appends.len());
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, endpoint, action, ticket, content_type, body, \
                 accepted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            if !full {
                for (jobs, _) in &appends {
                    let mut done = Vec::with_capacity(jobs.len());
                    for (index, job) in jobs {
                        insert.execute(params![
                            &*job.id_text,
                            core.names[*index],
                            job.event_type.as_str(),
                            &*job.key,
                            job.content_type,
                            &job.body[..],
                            now
                        ])?;
                        done.push((*index, tx.last_insert_rowid()));
                    }
                    rows.push(done);
                }
            }
            for op in &updates {
                apply(&tx, op)?;
            }
        }
        tx.commit()
    })();
    let count = |jobs: &[(usize, Job)], index: usize| {
        jobs.iter().filter(|(i, _)| *i == index).count() as u64
    };
    let total: usize = appends.iter().map(|(jobs, _)| jobs.len()).sum();
    match result {
        Ok(()) if !full => {
            if let Ok(used) = used_bytes(conn) {
                core.used.store(used, Ordering::Release);
            }
            for done in &rows {
                for (index, row) in done {
                    let (last, n) = &core.committed[*index];
                    last.fetch_max(*row, Ordering::AcqRel);
                    n.fetch_add(1, Ordering::AcqRel);
                }
            }
            core.committed_jobs(total);
            if let Some(listener) = core.listener.get() {
                let mut touched: Vec<usize> = rows.iter().flatten().map(|(i, _)| *i).collect();
                touched.sort_unstable();
                touched.dedup();
                for index in touched {
                    listener(index, 0);
                }
            }
            for (_, receipt) in &appends {
                receipt.settle(Ok(()));
            }
        }
        outcome => {
            let error = || match &outcome {
                Err(e) => damaged(&core.db, e),
                Ok(()) => Error::SpoolFull {
                    path: core.dir.clone(),
                    used,
                    limit: core.settings.max_size,
                },
            };
            if let Err(e) = &outcome {
                log::error!(
                    target: "deskhook",
                    "spool {}: a write failed ({} update(s) lost; those events may be delivered \
                     again): {e}",
                    core.dir.display(),
                    updates.len()
                );
            }
            if total > 0 {
                log::error!(target: "deskhook", "{} event(s) dropped: {}", total, error());
            }
            core.committed_jobs(total);
            for index in 0..core.names.len() {
                let dropped: u64 = appends.iter().map(|(jobs, _)| count(jobs, index)).sum();
                if dropped > 0
                    && let Some(listener) = core.listener.get()
                {
                    listener(index, dropped);
                }
            }
            for (_, receipt) in &appends {
                receipt.settle(Err(error()));
            }
        }
    }
}

/// One update inside the writer's transaction.
fn apply(tx: &rusqlite::Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Append { .. } => Ok(()),
        Op::Attempted {
            row,
            attempts,
            next_at,
            last_status,
            last_error,
        } => tx
            .prepare_cached(
                "UPDATE events SET attempts = ?2, next_at = ?3, last_status = ?4, \
                 last_error = ?5 WHERE row = ?1",
            )?
            .execute(params![row, attempts, next_at, last_status, last_error])
            .map(drop),
        Op::Delivered(row) => tx
            .prepare_cached("DELETE FROM events WHERE row = ?1")?
            .execute([row])
            .map(drop),
        Op::Dead {
            row,
            letter,
            content_type,
        } => {
            tx.prepare_cached(
                "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
                 attempts, last_status, last_error, reason, failed_at, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                letter.id,
                letter.endpoint,
                letter.url,
                letter.action,
                letter.ticket,
                content_type,
                letter.attempts,
                letter.last_status,
                letter.last_error,
                letter.reason,
                letter.failed_at,
                letter.body.get().as_bytes()
            ])?;
            if let Some(row) = row {
                tx.prepare_cached("DELETE FROM events WHERE row = ?1")?
                    .execute([row])?;
            }
            Ok(())
        }
    }
}
