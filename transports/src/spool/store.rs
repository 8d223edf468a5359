//! The spool's SQLite side: the schema, the group-committing writer thread, and the reads
//! the engine and the command line make.

use std::collections::VecDeque;
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

use super::{Durability, Settings, Spool, SpoolStats, Synchronous, damaged};
use crate::delivery::{DeadLetter, Job, Loaded, Receipt, ReceiptState, RowRange, Store, StoredJob};
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
        // One transaction: a crash leaves either nothing or the whole schema.
        conn.execute_batch(&format!(
            "BEGIN; PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA} COMMIT;"
        ))?;
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
            "INSERT INTO events (id, endpoint, action, ticket, content_type, body, accepted_at) \
             SELECT id, endpoint, action, ticket, content_type, body, ?1 FROM dead_letters \
             WHERE endpoint = ?2 ORDER BY row",
            params![now, endpoint],
        )?;
        tx.execute("DELETE FROM dead_letters WHERE endpoint = ?1", [endpoint])?;
    }
    tx.commit()?;
    Ok(moved)
}

/// What the writer thread is asked to do.
enum Op {
    Append {
        jobs: Vec<(usize, Job)>,
        receipt: Pending,
    },
    Attempted {
        row: i64,
        attempts: u32,
        next_at: i64,
        last_status: Option<u16>,
        last_error: Option<String>,
    },
    Delivered(i64),
    /// Moves the endpoint's rows in `(after, through]` (of one ticket, if given) to the dead
    /// letters.
    DeadRange {
        endpoint: usize,
        after: i64,
        through: i64,
        ticket: Option<String>,
        reason: String,
    },
    Dead {
        row: Option<i64>,
        letter: DeadLetter,
        content_type: &'static str,
    },
}

use crate::delivery::CommitListener as Listener;

/// A receipt the writer holds until it settles it. Dropped unsettled (the writer panicked,
/// or the op never reached it), it settles with an error, so that no `emit` waits forever.
struct Pending {
    state: Arc<ReceiptState>,
    dir: Arc<Path>,
}

impl Pending {
    fn settle(&self, outcome: Result<(), Error>) {
        let _ = self.state.settle(outcome);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let error = Error::Spool {
            path: self.dir.to_path_buf(),
            message: "the spool's writer stopped before the event was written; it was not \
                      accepted"
                .to_owned(),
        };
        let message = error.to_string();
        if self.state.settle(Err(error)) {
            // Nobody else may hear of it (an emit with a receipt it dropped).
            log::error!(target: "deskhook", "event(s) dropped: {message}");
        }
    }
}

/// What the writer thread and the engine share.
struct Core {
    dir: Arc<Path>,
    db: PathBuf,
    settings: Settings,
    names: Vec<String>,
    /// The endpoints' URLs (cut to their origin), for dead letters written here.
    urls: Vec<String>,
    /// Per endpoint: the last row committed, and rows committed in all.
    committed: Vec<(AtomicI64, AtomicU64)>,
    uncommitted: AtomicUsize,
    /// Appends wait here while [`MAX_UNCOMMITTED`] jobs wait for the writer.
    room: (Mutex<()>, std::sync::Condvar),
    used: AtomicU64,
    /// Transactions written, for tests of group commit.
    commits: AtomicU64,
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
    pub(super) fn start(
        spool: Spool,
        endpoints: Vec<(String, String)>,
    ) -> Result<SpoolStore, Error> {
        let (names, urls): (Vec<String>, Vec<String>) = endpoints.into_iter().unzip();
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
            dir: dir.into(),
            db,
            settings,
            names,
            urls,
            committed,
            uncommitted: AtomicUsize::new(0),
            room: (Mutex::new(()), std::sync::Condvar::new()),
            used: AtomicU64::new(used),
            commits: AtomicU64::new(0),
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
                    path: core.dir.to_path_buf(),
                    message: format!("cannot start the writer thread: {e}"),
                })?
        };
        Ok(SpoolStore {
            core,
            ops: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// A row of `events` as a job, or why it cannot be one.
    fn decode(&self, r: &rusqlite::Row<'_>) -> Result<StoredJob, String> {
        let text = |i: usize| r.get::<_, String>(i).map_err(|e| e.to_string());
        let row: i64 = r.get(0).map_err(|e| e.to_string())?;
        let id_text = text(1)?;
        let id: EventId = id_text
            .parse()
            .map_err(|e| format!("bad event id '{id_text}': {e}"))?;
        // Spools written before other formats hold plain action names, which read as Zenlix
        // event types.
        let type_text = text(2)?;
        let event_type = EventType::from_wire(&type_text)
            .ok_or_else(|| format!("unknown event type '{type_text}'"))?;
        let next_at: i64 = r.get(7).map_err(|e| e.to_string())?;
        let due = (!self.core.settings.ignore_backoff && next_at > 0)
            .then(|| UNIX_EPOCH + std::time::Duration::from_millis(next_at.unsigned_abs()));
        let job = Job {
            id,
            id_text: id_text.into(),
            event_type,
            key: text(3)?.into(),
            body: Bytes::from(r.get::<_, Vec<u8>>(5).map_err(|e| e.to_string())?),
            content_type: static_content_type(&text(4)?),
            seq: 0,
            order: row.unsigned_abs(),
            attempts: r.get(6).map_err(|e| format!("bad attempts: {e}"))?,
            last_status: r.get(8).map_err(|e| format!("bad last_status: {e}"))?,
            last_error: r.get(9).map_err(|e| e.to_string())?,
            row: Some(row),
        };
        Ok((job, due))
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
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        // The last reference can go on the writer itself (through the commit listener):
        // it then ends by itself once the channel is closed.
        if let Some(writer) = writer
            && writer.thread().id() != std::thread::current().id()
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
            receipt: Pending {
                state: receipt.clone(),
                dir: self.core.dir.clone(),
            },
        };
        if ops.as_ref().is_none_or(|tx| tx.send(op).is_err()) {
            self.core.uncommitted.fetch_sub(n, Ordering::AcqRel);
            let error = Error::Spool {
                path: self.core.dir.to_path_buf(),
                message: "the spool is closed (the sink was shut down); the event was not \
                          accepted"
                    .to_owned(),
            };
            log::error!(target: "deskhook", "{n} event(s) dropped: {error}");
            if let Some(listener) = self.core.listener.get() {
                let dropped: Vec<(usize, u64)> = endpoints.iter().map(|i| (*i, 1)).collect();
                listener(&[], &dropped);
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

    fn load(&self, index: usize, range: RowRange<'_>, limit: usize) -> Result<Loaded, Error> {
        let name = &self.core.names[index];
        let conn = self.core.reader.lock().unwrap_or_else(|p| p.into_inner());
        let db = &self.core.db;
        let mut stmt = conn
            .prepare_cached(
                "SELECT row, id, action, ticket, content_type, body, attempts, next_at, \
                 last_status, last_error FROM events WHERE endpoint = ?1 AND row > ?2 \
                 AND (?4 IS NULL OR row <= ?4) AND (?5 IS NULL OR ticket = ?5) \
                 ORDER BY row LIMIT ?3",
            )
            .map_err(|e| damaged(db, &e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(params![
                name,
                range.after,
                limit,
                range.through,
                range.ticket
            ])
            .map_err(|e| damaged(db, &e))?;
        let mut loaded = Loaded {
            jobs: Vec::new(),
            through: range.after,
            rows: 0,
            bad: 0,
        };
        while let Some(r) = rows.next().map_err(|e| damaged(db, &e))? {
            let row: i64 = r.get(0).map_err(|e| damaged(db, &e))?;
            loaded.through = row;
            loaded.rows += 1;
            match self.decode(r) {
                Ok(job) => loaded.jobs.push(job),
                Err(why) => {
                    // One unreadable row must not stop the rows behind it.
                    log::error!(
                        target: "deskhook",
                        "spool {}: row {row} cannot be read ({why}); it goes to the dead letters",
                        self.core.db.display()
                    );
                    loaded.bad += 1;
                    self.send(Op::DeadRange {
                        endpoint: index,
                        after: row - 1,
                        through: row,
                        ticket: None,
                        reason: format!("unreadable spool row: {why}"),
                    });
                }
            }
        }
        Ok(loaded)
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

    fn dead_range(&self, index: usize, range: RowRange<'_>, reason: &str) {
        self.send(Op::DeadRange {
            endpoint: index,
            after: range.after,
            through: range.through.unwrap_or(i64::MAX),
            ticket: range.ticket.map(str::to_owned),
            reason: reason.to_owned(),
        });
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
    let max_batch = core.settings.max_batch;
    // Appends not written yet, in the order they came.
    let mut waiting: VecDeque<Op> = VecDeque::new();
    let mut last_batch = 1;
    loop {
        let mut updates = Vec::new();
        let sort = |op: Op, waiting: &mut VecDeque<Op>, updates: &mut Vec<Op>| match op {
            Op::Append { .. } => waiting.push_back(op),
            other => updates.push(other),
        };
        if waiting.is_empty() {
            match ops.recv() {
                Ok(op) => sort(op, &mut waiting, &mut updates),
                Err(_) => break,
            }
        }
        // Everything that arrived meanwhile. Outcomes go into this transaction, ahead of
        // appends still waiting (the row an outcome is about is always committed already):
        // a delivery is on record after one commit, however far emits are ahead.
        while let Ok(op) = ops.try_recv() {
            sort(op, &mut waiting, &mut updates);
        }
        // Emits came concurrently last time: give the others a moment to arrive.
        let target = last_batch.min(max_batch);
        if last_batch > 1 && !waiting.is_empty() && waiting.len() < target {
            let deadline = Instant::now() + core.settings.max_wait;
            while waiting.len() < target {
                match ops.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(op) => sort(op, &mut waiting, &mut updates),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let take = waiting.len().min(max_batch);
        if take > 0 {
            last_batch = take;
        }
        let mut batch: Vec<Op> = waiting.drain(..take).collect();
        batch.extend(updates);
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
                apply(core, &tx, op)?;
            }
        }
        tx.commit()
    })();
    let total: usize = appends.iter().map(|(jobs, _)| jobs.len()).sum();
    if result.is_ok() {
        core.commits.fetch_add(1, Ordering::Relaxed);
        // Deletes make room too: the limit is checked against what is in use now.
        if let Ok(used) = used_bytes(conn) {
            core.used.store(used, Ordering::Release);
        }
    }
    let mut touched: Vec<usize> = Vec::new();
    let mut dropped: Vec<(usize, u64)> = Vec::new();
    match result {
        Ok(()) if !full => {
            for done in &rows {
                for (index, row) in done {
                    let (last, n) = &core.committed[*index];
                    last.fetch_max(*row, Ordering::AcqRel);
                    n.fetch_add(1, Ordering::AcqRel);
                    touched.push(*index);
                }
            }
            core.committed_jobs(total);
            // Receipts first: an `emit` waiting for its commit need not wait for workers.
            for (_, receipt) in &appends {
                receipt.settle(Ok(()));
            }
        }
        outcome => {
            let error = || match &outcome {
                Err(e) => damaged(&core.db, e),
                Ok(()) => Error::SpoolFull {
                    path: core.dir.to_path_buf(),
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
                for op in &updates {
                    if let Op::Dead {
                        row: None, letter, ..
                    } = op
                    {
                        // Not in `events`: this record is all that is left of it.
                        log::error!(
                            target: "deskhook",
                            "dead letter not written; it follows: {}",
                            serde_json::to_string(letter).unwrap_or_default()
                        );
                    }
                }
            }
            if total > 0 {
                log::error!(target: "deskhook", "{total} event(s) dropped: {}", error());
            }
            core.committed_jobs(total);
            for (jobs, _) in &appends {
                for (index, _) in jobs {
                    match dropped.iter_mut().find(|(i, _)| i == index) {
                        Some((_, n)) => *n += 1,
                        None => dropped.push((*index, 1)),
                    }
                }
            }
            // Counted before the receipts tell: stats agree with what `emit` returned.
            if let Some(listener) = core.listener.get() {
                listener(&[], &dropped);
            }
            for (_, receipt) in &appends {
                receipt.settle(Err(error()));
            }
            return;
        }
    }
    touched.sort_unstable();
    touched.dedup();
    if let Some(listener) = core.listener.get() {
        listener(&touched, &dropped);
    }
}

/// One update inside the writer's transaction.
fn apply(core: &Core, tx: &rusqlite::Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
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
        Op::DeadRange {
            endpoint,
            after,
            through,
            ticket,
            reason,
        } => {
            let name = &core.names[*endpoint];
            tx.prepare_cached(
                "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
                 attempts, last_status, last_error, reason, failed_at, body) \
                 SELECT id, endpoint, ?4, action, ticket, content_type, attempts, last_status, \
                 last_error, ?5, ?6, body FROM events \
                 WHERE endpoint = ?1 AND row > ?2 AND row <= ?3 \
                 AND (?7 IS NULL OR ticket = ?7) ORDER BY row",
            )?
            .execute(params![
                name,
                after,
                through,
                core.urls[*endpoint],
                reason,
                format!("{:.3}", jiff::Timestamp::now()),
                ticket
            ])?;
            tx.prepare_cached(
                "DELETE FROM events WHERE endpoint = ?1 AND row > ?2 AND row <= ?3 \
                 AND (?4 IS NULL OR ticket = ?4)",
            )?
            .execute(params![name, after, through, ticket])
            .map(drop)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, max_batch: usize) -> SpoolStore {
        let spool = Spool::builder(dir).max_batch(max_batch).open().unwrap();
        SpoolStore::start(
            spool,
            vec![("crm".to_owned(), "http://127.0.0.1/".to_owned())],
        )
        .unwrap()
    }

    /// Eight threads append 50 events each, one at a time, waiting for each commit.
    fn commits_for_concurrent_emits(store: &SpoolStore) -> u64 {
        std::thread::scope(|scope| {
            for t in 0..8 {
                scope.spawn(move || {
                    for i in 0..50 {
                        let job = Job::for_test(&format!("T{t}"), i);
                        store
                            .append(vec![(0, job)])
                            .wait(std::time::Duration::from_secs(30))
                            .unwrap();
                    }
                });
            }
        });
        store.core.commits.load(Ordering::Relaxed)
    }

    #[test]
    fn concurrent_emits_share_commits_and_rows_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1024);
        let commits = commits_for_concurrent_emits(&store);
        assert!(commits < 300, "{commits} transactions for 400 events");
        assert_eq!(store.committed(0).1, 400);
        let jobs = store.load(0, RowRange::after(0), 1000).unwrap().jobs;
        assert_eq!(jobs.len(), 400);
        // Per ticket, rows come back in the order each thread appended them.
        for t in 0..8 {
            let key = format!("T{t}");
            let orders: Vec<u64> = jobs
                .iter()
                .filter(|(job, _)| *job.key == *key)
                .map(|(job, _)| job.order)
                .collect();
            assert!(orders.windows(2).all(|w| w[0] < w[1]), "{key}: {orders:?}");
            assert_eq!(orders.len(), 50);
        }
    }

    #[test]
    fn a_receipt_the_writer_drops_unsettled_reports_an_error() {
        let state = Arc::new(ReceiptState::default());
        let receipt = Receipt::new(state.clone());
        drop(Pending {
            state,
            dir: Path::new("/spool").into(),
        });
        let err = receipt
            .wait(std::time::Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("writer stopped"), "{err}");
    }

    #[test]
    fn an_unreadable_row_goes_to_the_dead_letters_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1024);
        let jobs = (1..=3).map(|i| (0, Job::for_test("A", i))).collect();
        store
            .append(jobs)
            .wait(std::time::Duration::from_secs(30))
            .unwrap();
        let writer = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
        writer
            .execute("UPDATE events SET action = 'teleport' WHERE row = 2", [])
            .unwrap();
        let loaded = store.load(0, RowRange::after(0), 10).unwrap();
        assert_eq!((loaded.rows, loaded.bad, loaded.through), (3, 1, 3));
        let rows: Vec<i64> = loaded.jobs.iter().map(|(j, _)| j.row.unwrap()).collect();
        assert_eq!(rows, [1, 3]);
        store.close();
        let letters = dead_letters(&writer).unwrap();
        assert_eq!(letters.len(), 1);
        assert!(
            letters[0].reason.contains("unknown event type 'teleport'"),
            "{letters:?}"
        );
        assert_eq!(letters[0].url, "http://127.0.0.1/");
    }

    #[test]
    fn a_batch_of_one_commits_each_event_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1);
        assert_eq!(commits_for_concurrent_emits(&store), 400);
    }

    #[test]
    fn outcomes_are_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1024);
        let receipt = store.append(vec![
            (0, Job::for_test("A", 1)),
            (0, Job::for_test("A", 2)),
            (0, Job::for_test("B", 3)),
        ]);
        receipt.wait(std::time::Duration::from_secs(30)).unwrap();
        let jobs = store.load(0, RowRange::after(0), 10).unwrap().jobs;
        let (mut first, _) = jobs[0].clone();
        first.attempts = 2;
        first.last_status = Some(503);
        let due = SystemTime::now() + std::time::Duration::from_secs(60);
        store.attempted(&first, due);
        store.delivered(jobs[1].0.row.unwrap());
        store.close();
        let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
        let rows: Vec<(u32, Option<u16>, i64)> = conn
            .prepare("SELECT attempts, last_status, next_at FROM events ORDER BY row")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 2, "the delivered row is gone");
        assert_eq!((rows[0].0, rows[0].1), (2, Some(503)));
        assert!(
            (rows[0].2 - unix_ms(due)).abs() < 2,
            "next attempt kept to the ms"
        );
        assert_eq!((rows[1].0, rows[1].2), (0, 0));
    }
}
