//! The spool's writer: one thread owns the database, writes what the engine hands it in
//! group commits, and tells the engine what it committed. Reads (the engine's loads) go
//! through a connection of their own.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deskhook::{EventId, EventType};
use rusqlite::{Connection, params};

use super::schema::{unix_ms, used_bytes};
use super::{Durability, Settings, Spool, damaged};
use crate::delivery::{
    DeadLetter, Engine, EventData, Job, Lane, Receipt, ReceiptState, lock, now_rfc3339,
};
use crate::error::Error;

/// A job read back, with when its next attempt is due (`None`: now).
pub(crate) type StoredJob = (Job, Option<SystemTime>);

/// Rows of one endpoint: those after `after`, up to `through` if given, of one ticket if
/// given.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowRange<'a> {
    pub(crate) after: i64,
    pub(crate) through: Option<i64>,
    pub(crate) ticket: Option<&'a str>,
}

/// What one [`SpoolStore::load`] read.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The jobs, oldest first.
    pub(crate) jobs: Vec<StoredJob>,
    /// The last row read (`after` when none was).
    pub(crate) through: i64,
    /// Rows read, the unreadable ones included.
    pub(crate) rows: u64,
    /// Rows that could not be read; they were moved to the dead letters.
    pub(crate) bad: u64,
}

/// What the writer thread is asked to do.
enum Op {
    Append {
        jobs: Vec<(Arc<Lane>, Job)>,
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
    /// Moves rows of `lane` to the dead letters: those in `range`, or (without a range)
    /// every row of it but those in `except` (in flight), then tells `done` how many.
    DeadRange {
        lane: Arc<Lane>,
        range: Option<(i64, i64, Option<String>)>,
        except: Vec<i64>,
        reason: String,
        done: Option<mpsc::SyncSender<usize>>,
    },
    Dead {
        row: Option<i64>,
        letter: DeadLetter,
    },
    /// The registry's table: `name` is registered (tenant, URL), or not.
    Register {
        name: String,
        entry: Option<(String, String)>,
    },
}

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
            log::error!(target: deskhook::LOG_TARGET, "event(s) dropped: {message}");
        }
    }
}

/// What the writer thread and the engine share.
struct Core {
    dir: Arc<Path>,
    db: PathBuf,
    settings: Settings,
    uncommitted: AtomicUsize,
    /// Appends wait here while [`MAX_UNCOMMITTED`] jobs wait for the writer.
    room: (Mutex<()>, std::sync::Condvar),
    used: AtomicU64,
    /// Transactions written, for tests of group commit.
    commits: AtomicU64,
    engine: OnceLock<Weak<Engine>>,
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

    fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.get().and_then(Weak::upgrade)
    }
}

/// The spool's database as the engine's backlog uses it.
pub(crate) struct SpoolStore {
    core: Arc<Core>,
    ops: Mutex<Option<Sender<Op>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SpoolStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolStore")
            .field("dir", &self.core.dir)
            .finish_non_exhaustive()
    }
}

impl SpoolStore {
    /// Starts the writer. The registry's table is emptied: it lists the endpoints of this
    /// run.
    pub(super) fn start(spool: Spool) -> Result<SpoolStore, Error> {
        let Spool {
            dir,
            db,
            lock,
            conn,
            settings,
        } = spool;
        let (pending, endpoints): (i64, i64) = conn
            .query_row(
                "SELECT count(*), count(DISTINCT endpoint) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| damaged(&db, &e))?;
        if pending > 0 {
            log::info!(
                target: deskhook::LOG_TARGET,
                "spool {}: {pending} undelivered event(s) from before, for {endpoints} \
                 endpoint(s); each goes out once its endpoint is registered",
                dir.display()
            );
        }
        conn.execute("DELETE FROM endpoints", [])
            .map_err(|e| damaged(&db, &e))?;
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
            uncommitted: AtomicUsize::new(0),
            room: (Mutex::new(()), std::sync::Condvar::new()),
            used: AtomicU64::new(used),
            commits: AtomicU64::new(0),
            engine: OnceLock::new(),
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

    pub(super) fn bind(&self, engine: Weak<Engine>) {
        let _ = self.core.engine.set(engine);
    }

    pub(super) fn settings(&self) -> &Settings {
        &self.core.settings
    }

    pub(super) fn dir(&self) -> &Path {
        &self.core.dir
    }

    /// Whether `emit` waits for the commit.
    pub(super) fn waits_for_commit(&self) -> bool {
        self.core.settings.durability == Durability::Wait
    }

    /// Appends jobs in one group commit. The receipt settles when they are durable.
    pub(super) fn append(&self, jobs: Vec<(Arc<Lane>, Job)>) -> Receipt {
        let receipt = Arc::new(ReceiptState::default());
        if jobs.is_empty() {
            receipt.settle(Ok(()));
            return Receipt::new(receipt);
        }
        let n = jobs.len();
        self.core.wait_for_room();
        self.core.uncommitted.fetch_add(n, Ordering::AcqRel);
        let ops = lock(&self.ops);
        let op = Op::Append {
            jobs,
            receipt: Pending {
                state: receipt.clone(),
                dir: self.core.dir.clone(),
            },
        };
        let refused = match ops.as_ref() {
            Some(tx) => tx.send(op).err().map(|mpsc::SendError(op)| op),
            None => Some(op),
        };
        drop(ops);
        if let Some(Op::Append {
            jobs,
            receipt: held,
        }) = refused
        {
            self.core.uncommitted.fetch_sub(n, Ordering::AcqRel);
            let error = Error::Spool {
                path: self.core.dir.to_path_buf(),
                message: "the spool is closed (the sink was shut down); the event was not \
                          accepted"
                    .to_owned(),
            };
            log::error!(target: deskhook::LOG_TARGET, "{n} event(s) dropped: {error}");
            report_dropped(&self.core, &jobs);
            held.settle(Err(error));
        }
        Receipt::new(receipt)
    }

    /// Rows of `name` above `floor`: the last one and how many.
    pub(super) fn counts(&self, name: &str, floor: i64) -> Result<(i64, u64), Error> {
        let conn = lock(&self.core.reader);
        conn.prepare_cached(
            "SELECT coalesce(max(row), 0), count(*) FROM events WHERE endpoint = ?1 AND row > ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![name, floor], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.unsigned_abs()))
            })
        })
        .map_err(|e| damaged(&self.core.db, &e))
    }

    /// Up to `limit` rows of `lane` in `range`, oldest first. A row that cannot be read goes
    /// to the dead letters (and is counted in [`Loaded::bad`]).
    pub(super) fn load(
        &self,
        lane: &Arc<Lane>,
        range: RowRange<'_>,
        limit: usize,
    ) -> Result<Loaded, Error> {
        let conn = lock(&self.core.reader);
        let db = &self.core.db;
        let mut stmt = conn
            .prepare_cached(
                "SELECT row, id, action, ticket, content_type, body, attempts, next_at, \
                 last_status, last_error, tenant FROM events WHERE endpoint = ?1 AND row > ?2 \
                 AND (?4 IS NULL OR row <= ?4) AND (?5 IS NULL OR ticket = ?5) \
                 ORDER BY row LIMIT ?3",
            )
            .map_err(|e| damaged(db, &e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let name: &str = &lane.name;
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
                        target: deskhook::LOG_TARGET,
                        "spool {}: row {row} cannot be read ({why}); it goes to the dead letters",
                        self.core.db.display()
                    );
                    loaded.bad += 1;
                    self.send(Op::DeadRange {
                        lane: lane.clone(),
                        range: Some((row - 1, row, None)),
                        except: Vec::new(),
                        reason: format!("unreadable spool row: {why}"),
                        done: None,
                    });
                }
            }
        }
        Ok(loaded)
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
        let event = EventData {
            id,
            id_text: id_text.into(),
            event_type,
            key: text(3)?.into(),
            body: Bytes::from(r.get::<_, Vec<u8>>(5).map_err(|e| e.to_string())?),
            content_type: static_content_type(&text(4)?),
            tenant: r
                .get::<_, Option<String>>(10)
                .map_err(|e| e.to_string())?
                .map(Into::into),
            charge: None,
        };
        let mut job = Job::new(Arc::new(event), row.unsigned_abs());
        job.attempts = r.get(6).map_err(|e| format!("bad attempts: {e}"))?;
        job.last_status = r.get(8).map_err(|e| format!("bad last_status: {e}"))?;
        job.last_error = r.get(9).map_err(|e| e.to_string())?;
        job.row = Some(row);
        Ok((job, due))
    }

    /// Hands an op to the writer.
    fn send(&self, op: Op) {
        let ops = lock(&self.ops);
        let sent = ops.as_ref().map(|tx| tx.send(op).map_err(drop));
        match sent {
            Some(Ok(())) => {}
            // Closed at shutdown: an attempt that ended after it.
            None => log::info!(
                target: deskhook::LOG_TARGET,
                "spool {}: an outcome after shutdown was not written (the event is delivered \
                 again after the next start; receivers de-duplicate on webhook-id)",
                self.core.dir.display()
            ),
            Some(Err(())) => log::error!(
                target: deskhook::LOG_TARGET,
                "spool {}: the writer thread is gone; an update was not written (the event may \
                 be delivered again after a restart)",
                self.core.dir.display()
            ),
        }
    }

    /// A failed attempt; the next is due at `next_at`.
    pub(super) fn attempted(&self, job: &Job, next_at: SystemTime) {
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

    /// Delivered: the row goes.
    pub(super) fn delivered(&self, row: i64) {
        self.send(Op::Delivered(row));
    }

    /// Moves every row of `lane` but those in `except` to the dead letters; the receiver
    /// gets how many once it is done.
    pub(super) fn dead_all(
        &self,
        lane: &Arc<Lane>,
        except: Vec<i64>,
        reason: &str,
    ) -> mpsc::Receiver<usize> {
        let (done, moved) = mpsc::sync_channel(1);
        self.send(Op::DeadRange {
            lane: lane.clone(),
            range: None,
            except,
            reason: reason.to_owned(),
            done: Some(done),
        });
        moved
    }

    /// Given up: the row (if the job has one) moves to the dead letters.
    pub(super) fn dead(&self, row: Option<i64>, letter: DeadLetter) {
        self.send(Op::Dead { row, letter });
    }

    /// The registry's table: `name` registered with (tenant, URL), or not.
    pub(super) fn register(&self, name: &str, entry: Option<(&str, &str)>) {
        self.send(Op::Register {
            name: name.to_owned(),
            entry: entry.map(|(tenant, url)| (tenant.to_owned(), url.to_owned())),
        });
    }

    /// Lets the writer finish what is queued, then releases the lock.
    pub(super) fn shut(&self) {
        // Closing the channel lets the writer finish what is queued and end.
        drop(lock(&self.ops).take());
        let writer = lock(&self.writer).take();
        // The last reference can go on the writer itself (through the engine): it then ends
        // by itself once the channel is closed.
        if let Some(writer) = writer
            && writer.thread().id() != std::thread::current().id()
            && writer.join().is_err()
        {
            log::error!(target: deskhook::LOG_TARGET, "the spool's writer thread panicked");
        }
        drop(lock(&self.core.lock).take());
    }

    /// Transactions written.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.core.commits.load(Ordering::Relaxed)
    }
}

impl Drop for SpoolStore {
    fn drop(&mut self) {
        self.shut();
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

/// Tells the engine that `jobs` could not be written (dropped).
fn report_dropped(core: &Core, jobs: &[(Arc<Lane>, Job)]) {
    for (lane, _) in jobs {
        lane.rows.pending.fetch_sub(1, Ordering::AcqRel);
    }
    if let Some(engine) = core.engine() {
        let dropped: Vec<(Arc<Lane>, usize)> = jobs.iter().map(|(l, _)| (l.clone(), 1)).collect();
        engine.on_commit(&[], &dropped, &[]);
    }
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
        log::debug!(target: deskhook::LOG_TARGET, "spool checkpoint at close: {e}");
    }
}

/// Why a lane takes no more rows: removed, or disabled by a 410. Its later appends go
/// straight to the dead letters.
fn gone(lane: &Lane) -> Option<&'static str> {
    if !lane.closed.load(Ordering::Acquire) {
        return None;
    }
    lane.release_reason()
}

/// The appends of one batch: each emit's jobs, with its receipt.
type Appends = Vec<(Vec<(Arc<Lane>, Job)>, Pending)>;

/// What one commit did, per lane.
#[derive(Default)]
struct Committed {
    /// Lanes that got rows.
    touched: Vec<Arc<Lane>>,
    /// Rows moved or written straight to the dead letters, per lane.
    dead: Vec<(Arc<Lane>, usize)>,
    /// Counts to hand to waiting `dead_all` callers.
    done: Vec<(mpsc::SyncSender<usize>, usize)>,
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
    let mut rows: Vec<(Arc<Lane>, i64)> = Vec::new();
    let mut done = Committed::default();
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        if !full {
            for (jobs, _) in &appends {
                for (lane, job) in jobs {
                    if let Some(reason) = gone(lane) {
                        let letter = letter_of(lane, job, reason);
                        insert_letter(&tx, &letter, job.event.content_type)?;
                        done.dead.push((lane.clone(), 1));
                        continue;
                    }
                    let event = &job.event;
                    tx.prepare_cached(
                        "INSERT INTO events (id, endpoint, action, ticket, content_type, body, \
                         accepted_at, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        &*event.id_text,
                        &*lane.name,
                        event.event_type.as_str(),
                        &*event.key,
                        event.content_type,
                        &event.body[..],
                        now,
                        event.tenant.as_deref()
                    ])?;
                    rows.push((lane.clone(), tx.last_insert_rowid()));
                }
            }
        }
        for op in &updates {
            apply(&tx, op, &mut done)?;
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
    match result {
        Ok(()) if !full => {
            for (lane, row) in &rows {
                lane.rows.last.fetch_max(*row, Ordering::AcqRel);
                lane.rows.count.fetch_add(1, Ordering::AcqRel);
                if !done.touched.iter().any(|l| Arc::ptr_eq(l, lane)) {
                    done.touched.push(lane.clone());
                }
            }
            for (jobs, _) in &appends {
                for (lane, _) in jobs {
                    lane.rows.pending.fetch_sub(1, Ordering::AcqRel);
                }
            }
            core.committed_jobs(total);
            // Receipts first: an `emit` waiting for its commit need not wait for workers.
            for (_, receipt) in &appends {
                receipt.settle(Ok(()));
            }
            if let Some(engine) = core.engine() {
                engine.on_commit(&done.touched, &[], &done.dead);
            }
            for (sender, moved) in done.done {
                let _ = sender.send(moved);
            }
        }
        outcome => failed(core, outcome, used, appends, &updates),
    }
}

/// A batch that could not be written: its appends are dropped (counted, logged, their
/// receipts settled with the error), its updates lost (logged; those events may be
/// delivered again).
fn failed(core: &Core, outcome: rusqlite::Result<()>, used: u64, appends: Appends, updates: &[Op]) {
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
            target: deskhook::LOG_TARGET,
            "spool {}: a write failed ({} update(s) lost; those events may be delivered \
             again): {e}",
            core.dir.display(),
            updates.len()
        );
        for op in updates {
            if let Op::Dead { row: None, letter } = op {
                // Not in `events`: this record is all that is left of it.
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "dead letter not written; it follows: {}",
                    serde_json::to_string(letter).unwrap_or_default()
                );
            }
        }
    }
    let total: usize = appends.iter().map(|(jobs, _)| jobs.len()).sum();
    if total > 0 {
        log::error!(target: deskhook::LOG_TARGET, "{total} event(s) dropped: {}", error());
    }
    core.committed_jobs(total);
    // Counted before the receipts tell: stats agree with what `emit` returned.
    for (jobs, _) in &appends {
        report_dropped(core, jobs);
    }
    for (_, receipt) in &appends {
        receipt.settle(Err(error()));
    }
    for op in updates {
        if let Op::DeadRange {
            done: Some(sender), ..
        } = op
        {
            let _ = sender.send(0);
        }
    }
}

/// The dead letter of a job whose lane is gone.
fn letter_of(lane: &Lane, job: &Job, reason: &str) -> DeadLetter {
    let event = &job.event;
    DeadLetter {
        id: event.id_text.to_string(),
        endpoint: lane.name.to_string(),
        url: lane.route().url.clone(),
        tenant: event.tenant.as_deref().map(str::to_owned),
        action: event.event_type.to_string(),
        ticket: event.key.to_string(),
        attempts: job.attempts,
        last_status: job.last_status,
        last_error: job.last_error.clone(),
        reason: reason.to_owned(),
        failed_at: now_rfc3339(),
        body: crate::delivery::raw_body(&event.body),
    }
}

fn insert_letter(
    tx: &rusqlite::Transaction<'_>,
    letter: &DeadLetter,
    content_type: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, attempts, \
         last_status, last_error, reason, failed_at, body, tenant) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
        letter.body.get().as_bytes(),
        letter.tenant
    ])
    .map(drop)
}

/// One update inside the writer's transaction.
fn apply(tx: &rusqlite::Transaction<'_>, op: &Op, done: &mut Committed) -> rusqlite::Result<()> {
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
            lane,
            range,
            except,
            reason,
            done: sender,
        } => {
            let name: &str = &lane.name;
            let (after, through, ticket) = match range {
                Some((after, through, ticket)) => (*after, *through, ticket.as_deref()),
                None => (lane.rows.floor, i64::MAX, None),
            };
            // The rows in flight stay: their attempts settle them.
            let except = serde_json::to_string(except).unwrap_or_else(|_| "[]".to_owned());
            let url = lane.route().url.clone();
            let filter = "endpoint = ?1 AND row > ?2 AND row <= ?3 \
                          AND (?4 IS NULL OR ticket = ?4) \
                          AND row NOT IN (SELECT value FROM json_each(?5))";
            tx.prepare_cached(&format!(
                "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
                 attempts, last_status, last_error, reason, failed_at, body, tenant) \
                 SELECT id, endpoint, ?6, action, ticket, content_type, attempts, last_status, \
                 last_error, ?7, ?8, body, tenant FROM events WHERE {filter} ORDER BY row"
            ))?
            .execute(params![
                name,
                after,
                through,
                ticket,
                except,
                url,
                reason,
                now_rfc3339()
            ])?;
            let moved = tx
                .prepare_cached(&format!("DELETE FROM events WHERE {filter}"))?
                .execute(params![name, after, through, ticket, except])?;
            if range.is_none() {
                // Everything on disk was let go: nothing is left to load, whatever the
                // window said.
                let mut st = lock(&lane.state);
                let (last, _) = lane.rows.committed();
                st.window.loaded_through = st.window.loaded_through.max(last);
                st.window.parked.clear();
                st.window.parked_rows = 0;
            }
            if moved > 0 {
                done.dead.push((lane.clone(), moved));
            }
            if let Some(sender) = sender {
                done.done.push((sender.clone(), moved));
            }
            Ok(())
        }
        Op::Dead { row, letter } => {
            insert_letter(tx, letter, "application/json")?;
            if let Some(row) = row {
                tx.prepare_cached("DELETE FROM events WHERE row = ?1")?
                    .execute([row])?;
            }
            Ok(())
        }
        Op::Register { name, entry } => match entry {
            Some((tenant, url)) => tx
                .prepare_cached(
                    "INSERT INTO endpoints (name, tenant, url) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET tenant = ?2, url = ?3",
                )?
                .execute(params![name, Some(tenant).filter(|t| !t.is_empty()), url])
                .map(drop),
            None => tx
                .prepare_cached("DELETE FROM endpoints WHERE name = ?1")?
                .execute([name])
                .map(drop),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::lane::lane_for_test;

    fn store(dir: &Path, max_batch: usize) -> SpoolStore {
        let spool = Spool::builder(dir).max_batch(max_batch).open().unwrap();
        SpoolStore::start(spool).unwrap()
    }

    const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

    /// Eight threads append 50 events each, one at a time, waiting for each commit.
    fn commits_for_concurrent_emits(store: &SpoolStore, lane: &Arc<Lane>) -> u64 {
        std::thread::scope(|scope| {
            for t in 0..8 {
                scope.spawn(move || {
                    for i in 0..50 {
                        let job = Job::for_test(&format!("T{t}"), i);
                        store.append(vec![(lane.clone(), job)]).wait(WAIT).unwrap();
                    }
                });
            }
        });
        store.commits()
    }

    fn all_rows(store: &SpoolStore, lane: &Arc<Lane>) -> Loaded {
        let everything = RowRange {
            after: 0,
            through: None,
            ticket: None,
        };
        store.load(lane, everything, 10_000).unwrap()
    }

    #[test]
    fn concurrent_emits_share_commits_and_rows_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1024);
        let lane = lane_for_test("crm");
        let commits = commits_for_concurrent_emits(&store, &lane);
        assert!(commits < 300, "{commits} transactions for 400 events");
        assert_eq!(lane.rows.committed().1, 400);
        let jobs = all_rows(&store, &lane).jobs;
        assert_eq!(jobs.len(), 400);
        // Per ticket, rows come back in the order each thread appended them.
        for t in 0..8 {
            let key = format!("T{t}");
            let rows: Vec<i64> = jobs
                .iter()
                .filter(|(job, _)| **job.key() == *key)
                .filter_map(|(job, _)| job.row)
                .collect();
            assert!(rows.windows(2).all(|w| w[0] < w[1]), "{key}: {rows:?}");
            assert_eq!(rows.len(), 50);
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
        let lane = lane_for_test("crm");
        let jobs = (1..=3)
            .map(|i| (lane.clone(), Job::for_test("A", i)))
            .collect();
        store.append(jobs).wait(WAIT).unwrap();
        let writer = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
        writer
            .execute("UPDATE events SET action = 'teleport' WHERE row = 2", [])
            .unwrap();
        let loaded = all_rows(&store, &lane);
        assert_eq!((loaded.rows, loaded.bad, loaded.through), (3, 1, 3));
        let rows: Vec<i64> = loaded.jobs.iter().map(|(j, _)| j.row.unwrap()).collect();
        assert_eq!(rows, [1, 3]);
        store.shut();
        let letters = super::super::schema::dead_letters(&writer).unwrap();
        assert_eq!(letters.len(), 1);
        assert!(
            letters[0].reason.contains("unknown event type 'teleport'"),
            "{letters:?}"
        );
        assert_eq!(letters[0].url, "http://127.0.0.1:9/");
    }

    #[test]
    fn a_batch_of_one_commits_each_event_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1);
        assert_eq!(
            commits_for_concurrent_emits(&store, &lane_for_test("crm")),
            400
        );
    }

    #[test]
    fn outcomes_are_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1024);
        let lane = lane_for_test("crm");
        let receipt = store.append(vec![
            (lane.clone(), Job::for_test("A", 1)),
            (lane.clone(), Job::for_test("A", 2)),
            (lane.clone(), Job::for_test("B", 3)),
        ]);
        receipt.wait(WAIT).unwrap();
        let mut jobs = all_rows(&store, &lane).jobs.into_iter();
        let (mut first, _) = jobs.next().unwrap();
        let (second, _) = jobs.next().unwrap();
        first.attempts = 2;
        first.last_status = Some(503);
        let due = SystemTime::now() + std::time::Duration::from_secs(60);
        store.attempted(&first, due);
        store.delivered(second.row.unwrap());
        store.shut();
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

    #[test]
    fn a_removed_lanes_rows_and_later_appends_go_to_the_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1024);
        let lane = lane_for_test("crm");
        let jobs = (1..=3)
            .map(|i| (lane.clone(), Job::for_test("A", i)))
            .collect();
        store.append(jobs).wait(WAIT).unwrap();
        // Row 2 is in flight: it stays for its attempt to settle.
        lane.closed.store(true, Ordering::SeqCst);
        lock(&lane.state).closing = Some(crate::delivery::lane::Closing::Removed);
        let moved = store.dead_all(&lane, vec![2], "endpoint removed");
        assert_eq!(moved.recv().unwrap(), 2);
        store
            .append(vec![(lane.clone(), Job::for_test("A", 4))])
            .wait(WAIT)
            .unwrap();
        assert_eq!(
            store.counts("crm", 0).unwrap(),
            (2, 1),
            "only the row in flight"
        );
        store.shut();
        let conn = Connection::open(dir.path().join(super::super::DATABASE_FILE)).unwrap();
        let letters = super::super::schema::dead_letters(&conn).unwrap();
        assert_eq!(letters.len(), 3);
        assert!(letters.iter().all(|l| l.reason == "endpoint removed"));
    }
}
