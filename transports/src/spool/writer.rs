//! The spool's store as the engine's backlog calls it: appends, outcomes and reads. One
//! thread owns the database and writes what it is handed in group commits (`commit`);
//! reads (the engine's loads, `load`) go through a connection of their own.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::SystemTime;

use rusqlite::{Connection, params};

use super::moving::Moving;
use super::schema::{unix_ms, used_bytes};
use super::{Durability, Settings, Spool, damaged, failing};
use crate::delivery::backlog::{LetterOwner, MoveAnswer, Registration};
use crate::delivery::{
    AttemptEntry, AttemptPage, AttemptQuery, DeadLetter, DeadLetterPage, DeadLetterQuery,
    EndpointSpec, Engine, Job, Lane, Receipt, ReceiptState, StoredLetter, lock,
};
use crate::error::Error;

use super::shared::{Append, Core, GiveWay, JobHold, WriterEnd, body_bytes};

/// How long the spool's read-only connections wait for a lock another connection holds
/// (SQLite's busy timeout) before a read fails.
const READER_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// What the writer thread is asked to do.
pub(super) enum Op {
    Append(Append),
    Attempted {
        row: i64,
        attempts: u32,
        next_at: i64,
        last_status: Option<u16>,
        last_error: Option<String>,
    },
    Delivered(i64),
    /// Moves rows of `lane` to the dead letters: those in `range`, or (without a range)
    /// every row of it but those in `except` (in flight) and those whose outcome the writer
    /// gave up ([`Core::given_up`]), then tells `done` how many. Without a range, in steps
    /// of at most [`MOVE_STEP_ROWS`](super::moving::MOVE_STEP_ROWS) rows, one per commit:
    /// `moving` is how far it went (`None` before the first step).
    DeadRange {
        lane: Arc<Lane>,
        range: Option<(i64, i64, Option<String>)>,
        except: Vec<i64>,
        reason: String,
        done: Option<mpsc::SyncSender<MoveAnswer>>,
        moving: Option<Moving>,
    },
    /// A dead letter, moving row `row` if it has one; counted for `lane` (if it has one)
    /// once committed, or as [`letter_lost`](super::again::letter_lost) says if it is given
    /// up. `hold` is let go once the letter is counted, or at its first failed write.
    Dead {
        lane: Option<Arc<Lane>>,
        hold: Option<JobHold>,
        row: Option<i64>,
        letter: DeadLetter,
    },
    /// The registry's table: `name` is registered (tenant, URL, settings as JSON), or not.
    Register {
        name: String,
        entry: Option<Entry>,
    },
    /// Endpoint `name` is paused, or no longer.
    Paused {
        name: String,
        paused: bool,
    },
    /// The rows of endpoint `name` waiting for a retry are due now (it was resumed).
    Hurry(String),
    /// One attempt for the attempt log.
    Attempt(Box<AttemptEntry>),
    /// Deletes dead letters by row, then tells `done` how many went, or why none did.
    DeleteLetters {
        rows: Vec<i64>,
        done: mpsc::SyncSender<Result<usize, Error>>,
    },
    /// Tells `done` once the updates sent before it are committed, or that some could not
    /// be (they may be written again later, or given up); with `move_of`, once the move
    /// under way of that endpoint's rows to the dead letters (in steps) has ended too.
    Written {
        done: mpsc::SyncSender<Result<(), Error>>,
        move_of: Option<Arc<str>>,
    },
}

/// A row of the registry's table to write.
#[derive(Debug)]
pub(super) struct Entry {
    /// The endpoint's tenant ("" for none).
    pub(super) tenant: String,
    /// Its URL cut to its origin.
    pub(super) url: String,
    /// The JSON of the settings it was made from, if it was.
    pub(super) spec: Option<String>,
    /// Whether it is paused, when it was just added; `None` (a change) keeps what the row
    /// says.
    pub(super) paused: Option<bool>,
}

/// The endpoints a spool's table lists from the last run: the settings of those made from
/// settings, and every name, each with whether it has settings.
pub(crate) struct Kept {
    pub(crate) specs: Vec<EndpointSpec>,
    pub(crate) names: Vec<(String, bool)>,
    /// Those that were paused: they start paused again.
    pub(crate) paused: Vec<String>,
}

/// The spool's database as the engine's backlog uses it.
pub(crate) struct SpoolStore {
    pub(super) core: Arc<Core>,
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
    /// run. Returns the settings of the endpoints it listed (those made from settings).
    pub(super) fn start(spool: Spool) -> Result<(SpoolStore, Kept), Error> {
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
        // The endpoints registered last time, with their settings when they had some. The
        // table then follows this run's registrations; the sink's builder removes those it
        // leaves out once it has registered its own.
        let stored = Kept {
            specs: super::schema::stored_endpoints(&conn).map_err(|e| damaged(&db, &e))?,
            names: super::schema::kept_endpoints(&conn).map_err(|e| damaged(&db, &e))?,
            // A tool that keeps the registry (drain, replay) delivers what it is given.
            paused: if settings.keep_registry {
                Vec::new()
            } else {
                super::schema::paused_endpoints(&conn).map_err(|e| damaged(&db, &e))?
            },
        };
        // A reader can meet a passing SQLITE_BUSY in WAL mode too (a checkpoint that
        // truncates the log, the log's index being rebuilt by another process): it waits a
        // little for it rather than fail a load (which the engine tries again a second later)
        // or a page of the console.
        let read_only = || {
            let conn = Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| damaged(&db, &e))?;
            conn.busy_timeout(READER_BUSY_TIMEOUT)
                .map_err(|e| damaged(&db, &e))?;
            Ok::<_, Error>(conn)
        };
        let (reader, browser) = (read_only()?, read_only()?);
        let used = used_bytes(&conn).map_err(|e| damaged(&db, &e))?;
        let core = Arc::new(Core {
            dir: dir.into(),
            db,
            settings,
            uncommitted: AtomicUsize::new(0),
            uncommitted_bytes: AtomicUsize::new(0),
            ended: std::sync::atomic::AtomicBool::new(false),
            failing: Mutex::default(),
            shut: std::sync::atomic::AtomicBool::new(false),
            ops: Mutex::new(None),
            room: (Mutex::new(Vec::new()), std::sync::Condvar::new()),
            used: AtomicU64::new(used),
            commits: AtomicU64::new(0),
            failed_commits: AtomicU64::new(0),
            pruned_at: std::sync::atomic::AtomicI64::new(0),
            give_way_answer: GiveWay::default(),
            given_up: Mutex::default(),
            moving: Mutex::default(),
            #[cfg(test)]
            moves_paused: std::sync::atomic::AtomicBool::new(false),
            engine: OnceLock::new(),
            reader: Mutex::new(reader),
            browser: Mutex::new(browser),
            lock: Mutex::new(Some(lock)),
        });
        let (tx, rx) = mpsc::channel();
        *crate::delivery::lock(&core.ops) = Some(tx);
        let writer = {
            let shared = core.clone();
            std::thread::Builder::new()
                .name("deskhook-spool".to_owned())
                .spawn(move || {
                    // Only once the writer has ended may another process open the spool:
                    // nothing more is written (after a panic, once the sink is gone too).
                    let _release = WriterEnd {
                        core: &shared,
                        ops: &rx,
                    };
                    super::commit::write_loop(&shared, conn, &rx);
                })
                .map_err(|e| Error::Spool {
                    path: core.dir.to_path_buf(),
                    message: format!("cannot start the writer thread: {e}"),
                })?
        };
        Ok((
            SpoolStore {
                core,
                writer: Mutex::new(Some(writer)),
            },
            stored,
        ))
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

    /// Whether an append would wait now for the writer to catch up.
    #[cfg(test)]
    pub(super) fn behind(&self) -> bool {
        self.core.behind()
    }

    /// Ready once an append would not wait for the writer to catch up.
    pub(super) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.core.poll_room(cx)
    }

    /// Whether the endpoints table is left as it is (see `SpoolBuilder::keep_registry`).
    pub(super) fn keeps_registry(&self) -> bool {
        self.core.settings.keep_registry
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
        let (n, bytes) = (jobs.len(), body_bytes(&jobs));
        self.core.wait_for_room();
        self.core.uncommitted.fetch_add(n, Ordering::AcqRel);
        self.core
            .uncommitted_bytes
            .fetch_add(bytes, Ordering::AcqRel);
        let ops = lock(&self.core.ops);
        let op = Op::Append(Append::new(&self.core, jobs, receipt.clone()));
        let refused = match ops.as_ref() {
            Some(tx) => tx.send(op).err().map(|mpsc::SendError(op)| op),
            None => Some(op),
        };
        drop(ops);
        if let Some(Op::Append(mut held)) = refused {
            self.core.committed_jobs(n, bytes);
            let error = Error::Spool {
                path: self.core.dir.to_path_buf(),
                message: "the spool is closed (the sink was shut down, or its writer stopped: \
                          see the log); the event was not accepted"
                    .to_owned(),
            };
            log::error!(target: deskhook::LOG_TARGET, "{n} event(s) dropped: {error}");
            held.refuse(&self.core, error);
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
        .map_err(|e| failing(&self.core.db, &e))
    }

    /// How many rows from `first` to `last` (of any endpoint) were left on disk when their
    /// move to the dead letters was given up: a load passes over them.
    pub(super) fn given_up_within(&self, first: i64, last: i64) -> usize {
        if first > last {
            return 0;
        }
        lock(&self.core.given_up).range(first..=last).count()
    }

    /// Moves row `row` of `lane` to the dead letters, for `reason` (the writer counts it).
    pub(super) fn dead_row(&self, lane: &Arc<Lane>, row: i64, reason: String) {
        self.send(Op::DeadRange {
            lane: lane.clone(),
            range: Some((row - 1, row, None)),
            except: Vec::new(),
            reason,
            done: None,
            moving: None,
        });
    }

    /// Hands an op to the writer, or logs that it could not.
    fn send(&self, op: Op) {
        if let Err(op) = self.try_send(op) {
            self.unsent(&op);
        }
    }

    /// Hands an op to the writer, or gives it back when the writer is gone.
    fn try_send(&self, op: Op) -> Result<(), Box<Op>> {
        let ops = lock(&self.core.ops);
        match ops.as_ref() {
            Some(tx) => tx.send(op).map_err(|unsent| Box::new(unsent.0)),
            None => Err(Box::new(op)),
        }
    }

    /// Logs `op`, which the writer did not get (see [`try_send`](SpoolStore::try_send)).
    fn unsent(&self, op: &Op) {
        let (what, then) = match op {
            Op::Append(_)
            | Op::Attempted { .. }
            | Op::Delivered(_)
            | Op::DeadRange { .. }
            | Op::Dead { .. } => (
                "an event's outcome",
                "the event may be delivered again after a restart; receivers de-duplicate on \
                 webhook-id",
            ),
            Op::Register { .. } | Op::Paused { .. } => (
                "an endpoint change",
                "the endpoint is as it was at the next start",
            ),
            Op::Attempt(_) => ("an attempt", "the attempt log lacks it"),
            Op::Hurry(_) => (
                "a resume's hurry",
                "the endpoint's retries on disk keep their schedule",
            ),
            Op::DeleteLetters { .. } | Op::Written { .. } => ("a request", "its caller is told"),
        };
        match self.core.shut.load(Ordering::Acquire) {
            // Not closed at shutdown: the thread ended on its own.
            false => {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "spool {}: the writer thread is gone; {what} was not written ({then})",
                    self.core.dir.display()
                );
            }
            // Closed at shutdown: an attempt that ended after it, most often.
            true => log::info!(
                target: deskhook::LOG_TARGET,
                "spool {}: {what} came after shutdown and was not written ({then})",
                self.core.dir.display()
            ),
        }
    }

    /// Endpoint `name` was resumed: its rows waiting for a retry on disk are due now.
    pub(super) fn hurry(&self, name: &str) {
        self.send(Op::Hurry(name.to_owned()));
    }

    /// A failed attempt; the next is due at `next_at`.
    pub(super) fn attempted(&self, job: &Job, next_at: SystemTime) {
        if let Some(row) = job.row {
            self.send(Op::Attempted {
                row,
                attempts: job.attempts,
                next_at: unix_ms(next_at),
                last_status: job.last_status,
                last_error: job.last_error.as_deref().map(str::to_owned),
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
    ) -> mpsc::Receiver<MoveAnswer> {
        let (done, moved) = mpsc::sync_channel(1);
        self.send(Op::DeadRange {
            lane: lane.clone(),
            range: None,
            except,
            reason: reason.to_owned(),
            done: Some(done),
            moving: None,
        });
        moved
    }

    /// Given up: the row (if the job has one) moves to the dead letters. The letter is
    /// counted for its owner by the writer (see [`Op::Dead`]), or here when the writer is
    /// gone.
    pub(super) fn dead(&self, owner: Option<LetterOwner>, row: Option<i64>, letter: DeadLetter) {
        let (lane, hold) = match owner {
            Some(LetterOwner { lane, job }) => {
                let hold = job.map(|job| JobHold::new(&self.core, lane.clone(), job));
                (Some(lane), hold)
            }
            None => (None, None),
        };
        let op = Op::Dead {
            lane,
            hold,
            row,
            letter,
        };
        let Err(op) = self.try_send(op) else {
            return;
        };
        if matches!(*op, Op::Dead { row: Some(_), .. }) {
            // Its row stays in the spool, for the next start.
            self.unsent(&op);
        }
        if let Op::Dead {
            lane, row, letter, ..
        } = *op
        {
            super::again::letter_lost(&self.core, lane.as_deref(), row, &letter);
        }
    }

    /// The registry's table: `name` registered (its tenant, URL and settings), or not.
    pub(super) fn register(&self, name: &str, entry: Option<Registration<'_>>) {
        self.send(Op::Register {
            name: name.to_owned(),
            entry: entry.map(|r| {
                let spec = r.spec.and_then(|spec| match serde_json::to_string(spec) {
                    Ok(json) => Some(json),
                    Err(e) => {
                        log::error!(
                            target: deskhook::LOG_TARGET,
                            "endpoint '{name}': its settings cannot be stored in the spool \
                             ({e}); it will not be registered again at the next start"
                        );
                        None
                    }
                });
                Entry {
                    tenant: r.tenant.to_owned(),
                    url: r.url.to_owned(),
                    spec,
                    paused: r.paused,
                }
            }),
        });
    }

    /// Keeps in the registry's table whether `name` is paused.
    pub(super) fn set_paused(&self, name: &str, paused: bool) {
        self.send(Op::Paused {
            name: name.to_owned(),
            paused,
        });
    }

    /// Keeps an attempt in the attempt log's table.
    pub(super) fn record_attempt(&self, entry: &AttemptEntry) {
        self.send(Op::Attempt(Box::new(entry.clone())));
    }

    /// Whether the spool takes events now (see [`Core::health`]).
    pub(super) fn health(&self) -> Result<(), Error> {
        self.core.health()
    }

    /// Rows waiting in the spool, over all endpoints.
    pub(super) fn rows(&self) -> Result<u64, Error> {
        let conn = lock(&self.core.browser);
        conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(i64::unsigned_abs)
            .map_err(|e| failing(&self.core.db, &e))
    }

    /// The dead letters `query` asks for.
    pub(super) fn letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error> {
        let conn = lock(&self.core.browser);
        super::schema::letters(&conn, query).map_err(|e| failing(&self.core.db, &e))
    }

    /// The dead letters named by `keys`.
    pub(super) fn letters_by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error> {
        let conn = lock(&self.core.browser);
        super::schema::letters_of_rows(&conn, &super::schema::letter_rows(keys))
            .map_err(|e| failing(&self.core.db, &e))
    }

    /// Deletes the dead letters named by `keys` (through the writer); how many went.
    pub(super) fn delete_letters(&self, keys: &[String]) -> Result<usize, Error> {
        let rows = super::schema::letter_rows(keys);
        if rows.is_empty() {
            return Ok(0);
        }
        self.delete_rows(rows)
    }

    /// Waits until what was sent to the writer before is committed: the steps of the moves
    /// under way but those already written are not waited for.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when some of it could not be written (the writer writes it again
    /// for a minute before it gives up), or the writer has stopped.
    pub(super) fn committed(&self) -> Result<(), Error> {
        self.written(None)
    }

    /// [`committed`](SpoolStore::committed), and the move under way of the rows of the
    /// endpoint `name` to the dead letters ended.
    pub(super) fn committed_after_move(&self, name: &str) -> Result<(), Error> {
        self.written(Some(name.into()))
    }

    fn written(&self, move_of: Option<Arc<str>>) -> Result<(), Error> {
        let (done, written) = mpsc::sync_channel(1);
        self.send(Op::Written { done, move_of });
        written.recv().unwrap_or_else(|_| {
            Err(Error::Spool {
                path: self.core.dir.to_path_buf(),
                message: "the spool's writer stopped before what was sent to it was written".into(),
            })
        })
    }

    fn delete_rows(&self, rows: Vec<i64>) -> Result<usize, Error> {
        let (done, deleted) = mpsc::sync_channel(1);
        self.send(Op::DeleteLetters { rows, done });
        deleted.recv().unwrap_or_else(|_| {
            Err(Error::Spool {
                path: self.core.dir.to_path_buf(),
                message: "the spool's writer stopped before the dead letters were deleted".into(),
            })
        })
    }

    /// The attempts `query` asks for, from the attempt log's table.
    pub(super) fn query_attempts(&self, query: &AttemptQuery) -> Result<AttemptPage, Error> {
        let conn = lock(&self.core.browser);
        super::schema::attempts(&conn, query).map_err(|e| failing(&self.core.db, &e))
    }

    /// Lets the writer finish what is queued, then releases the lock.
    pub(super) fn shut(&self) {
        // Closing the channel lets the writer finish what is queued and end.
        self.core.shut.store(true, Ordering::Release);
        drop(lock(&self.core.ops).take());
        let writer = lock(&self.writer).take();
        // The last reference can go on the writer itself (through the engine): it then ends
        // by itself once the channel is closed. The writer releases the lock as it ends.
        if let Some(writer) = writer
            && writer.thread().id() != std::thread::current().id()
            && writer.join().is_err()
        {
            log::error!(target: deskhook::LOG_TARGET, "the spool's writer thread panicked");
        }
    }

    /// Transactions written.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.core.commits.load(Ordering::Relaxed)
    }

    /// Transactions that failed.
    #[cfg(test)]
    pub(super) fn failed_commits(&self) -> u64 {
        self.core.failed_commits.load(Ordering::Relaxed)
    }
}

impl Drop for SpoolStore {
    fn drop(&mut self) {
        self.shut();
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "retention_tests.rs"]
mod retention_tests;
