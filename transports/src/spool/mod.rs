//! The durable spool: an SQLite outbox in front of the HTTP transports and the NATS sink, so
//! that an event `emit` accepted is delivered after any crash or restart (feature `spool`).
//!
//! ```no_run
//! use deskhook_transports::delivery::Endpoint;
//! use deskhook_transports::http_blocking::HttpSink;
//! use deskhook_transports::spool::Spool;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spool = Spool::open("/var/lib/helpdesk/deskhook")?;
//! let (sink, _guard) = HttpSink::builder()
//!     .endpoint(Endpoint::new("crm", "https://crm.example.com/hooks/helpdesk")?)
//!     .spool(spool)
//!     .build()?;
//! deskhook::set_dispatcher(deskhook::Dispatcher::builder().sink("crm", sink).build())?;
//! // From here, `emit` returns once the event is on disk.
//! # Ok(()) }
//! ```
//!
//! # What it keeps
//!
//! One SQLite database in the directory ([`DATABASE_FILE`], in WAL mode, synced on every
//! commit unless [`Synchronous::Normal`]), with one row per event and endpoint: the event
//! id, endpoint, action, ticket, body, attempts made, when the next attempt is due and the
//! last outcome. A row goes when its event is delivered, or moves to the spool's dead-letter
//! table when it is given up (a sink with a spool writes no dead-letter file). The delivery
//! engine holds only a window of each endpoint's rows in memory (1000 by default, at most an
//! eighth of it per ticket; rows held back behind a retry do not count, up to twice the
//! window) and reads the next ones as it goes, so memory stays flat whatever the backlog, and
//! tickets that keep failing cannot hold up the others. What cannot go for
//! [`rest_after`](SpoolConfig::rest_after) (10 s) or more lets go of its rows in memory,
//! which are read back when it can: a ticket whose next attempt is that far off (a retry,
//! or a row read with its retry time), and every ticket with nothing in flight of an
//! endpoint whose breaker is open (or a receiver's `Retry-After` holds it) that long, or
//! that is paused; while its breaker is half-open, an endpoint reads back a ticket or two,
//! for its probe. So endpoints dead for weeks keep next to nothing of the sink's memory
//! budget (`max_queued_bytes`) — their attempts in flight, the events queued behind those
//! in the same tickets, and retries due sooner than `rest_after` — and cannot take it from
//! the others, however many they are. An endpoint's `queue_capacity` and
//! the overflow policy do not apply: the spool is the queue, bounded on disk by its size
//! limit, past which a new event is refused with [`Error::SpoolFull`] (counted as dropped
//! and logged; the dispatcher counts the failure, and a receipt reports it).
//!
//! # Group commit
//!
//! One writer thread owns the database. Events that arrive while it syncs are written
//! together in the next transaction, with one fsync; when the previous batch showed that
//! emits come concurrently, it also waits up to `max_wait` (2 ms by default) for the batch to
//! fill. [`Durability::Wait`] (the default) makes `emit` return when its event is committed;
//! [`Durability::Receipt`] returns at once, and `send_with_receipt` gives a [`Receipt`] to
//! wait on. Emits wait when the writer falls 8192 events behind (each endpoint's copy
//! counted, its body too: an event for 64 endpoints counts 64), or 64 MiB of bodies: a
//! blocking `emit` on its
//! thread, an async one (`emit_async`, or `DeliverySink::room` before `send_with_receipt`)
//! as a task woken when the writer catches up (rarely, several tasks that saw the same room
//! race for it, and the ones that lose wait for the next commit on their thread).
//!
//! A transaction that fails (a full disk, an I/O error) refuses its new events (each
//! counted as dropped and its emit or receipt told), after trying them on their own when
//! it also held outcomes. Its outcomes (a delivery, a retry, a dead letter, a change of the
//! endpoints) are written again, ahead of later ones, at most every 100 ms, until they are
//! (at most 100 000 of them and 64 MiB of dead letters are kept; past that the oldest are
//! given up, logged); after a minute of failures each is tried alone, and one that still
//! fails is given up and logged (its event may be delivered again after the next start,
//! then after its ticket's later events delivered meanwhile), so that one that can never be
//! written holds up the others no longer than that. If the writer thread itself ends (a
//! panic), the events it had not written are counted as dropped, and what else it had
//! queued and not taken (outcomes, endpoint changes) is logged with its count; the spool
//! stays locked until the sink is dropped (its lanes go on delivering what they read, and
//! another process would deliver the same rows at once). A dead-letter
//! move or delete whose caller waits is answered at once (a delete tried on its own
//! first; a removed endpoint's move waits for the outcomes written again, below).
//!
//! Dead letters are kept for [`SpoolConfig::dead_letter_retention`] (30 days by default):
//! older ones are deleted, the count logged, so that letters of an endpoint dead for weeks
//! do not fill the spool until it refuses new events.
//!
//! A dead letter counts (`dead_lettered`, `deskhook_dead_letters_total`) once its
//! transaction is committed, and its event stays outstanding until then: a flush returns
//! with the letter listable and counted. A flush does not wait past the letter's first
//! failed write; the letter is then written again as above, and counted when it is. Given
//! up, a letter whose event has a row leaves the row in the spool (its event is delivered
//! after the next start) and is not counted; one without (an event over `max_payload`) is
//! logged whole at error level and counted as dropped.
//!
//! # After a crash
//!
//! Opening the spool again finds the rows left: they are delivered in order per ticket,
//! with their attempt counts and due times. An event that was in flight at the crash is
//! sent again (receivers de-duplicate on `webhook-id`). `X-Deskhook-Sequence` numbers start
//! again at 1 per ticket, as after any restart. Shutting down (the guard) leaves what is
//! undelivered in the spool rather than in the dead letters. A spool of an earlier format is
//! migrated when opened.
//!
//! A row this build cannot read goes to the dead letters, but one of an event type it does
//! not know (written by a newer deskhook that was rolled back) is not its to end: it stays
//! in the spool, its ticket's later events wait behind it (logged, an error at most once a
//! minute), and the other tickets go; a flush that has only them left says so at once
//! ([`Error::Undelivered`], naming the endpoint). The deskhook that wrote it delivers them,
//! in order.
//!
//! # Endpoints change
//!
//! Rows belong to an endpoint by name. After a restart, the rows of an endpoint that is not
//! registered yet wait (`deskhook spool stats` counts them as waiting for their endpoint)
//! and go out once an endpoint of that name is upserted; removing an endpoint (or its 410)
//! moves its rows to the dead letters, a thousand rows or 1 MiB of bodies per commit,
//! between which events are taken, and the other endpoints' changes written, as before (a
//! resume of an endpoint after its 410 returns once its own move is over). While
//! outcomes are written again (above), the steps wait for them to be written or given up
//! (a minute at most), then go on, each in a transaction of its own: a step that fails
//! ends the move, its rows left for the next start, as the log says. Those of an endpoint that is gone for good
//! (left out of the configuration) move there with [`Spool::dead_letter_pending`] (`deskhook spool
//! dead-letter DIR --endpoint NAME`), while no sink has the spool open. Pausing one keeps
//! its rows on disk. The spool keeps a table of the
//! endpoints registered in the sink that has it open (names, tenants, URLs cut to their
//! origin), for `spool stats`, and the whole settings of those made from settings (the
//! console, the admin API: what `restore_endpoints` registers again), their secrets and
//! header values in the clear, like `deskhook.toml`. The spool creates its directory
//! readable by its owner only (0700) and its database likewise (0600; SQLite gives the
//! write-ahead log the same): events hold helpdesk data as well. Whether an endpoint is
//! paused is kept too: one paused when the spool was last used starts paused when it is
//! registered at the start (restored, or given to the builder again), until it is resumed;
//! one removed, then added again, is not.
//!
//! # Opening, configuring, inspecting
//!
//! One process at a time: a second `open` of the same directory fails with
//! [`Error::SpoolLocked`], naming the process id in the holder's [`LOCK_FILE`]; a file that
//! is damaged or not a spool fails with [`Error::Spool`], naming it. [`inspect`] (what
//! `deskhook spool stats` prints) and [`read_dead_letters`] read without the lock, while the
//! helpdesk runs.
//!
//! `deskhook.toml` can carry a [`SpoolConfig`] in a `[spool]` table (see
//! [`config`](crate::config)), and `Config::http_sink_builder` then opens it.
//! `examples/durable_spool.rs` shows a backlog surviving a restart.

mod again;
mod apply;
mod backlog;
mod commit;
mod config;
mod load;
mod lock;
mod moving;
mod room;
mod schema;
mod shared;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::delivery::DeadLetter;
pub use crate::delivery::Receipt;
use crate::error::Error;
pub use config::{
    DEFAULT_DEAD_LETTER_RETENTION, DEFAULT_REST_AFTER, Durability, MAX_WAIT_LIMIT, SpoolConfig,
    Synchronous,
};
pub(crate) use lock::SpoolLock;
use lock::take_lock;

/// The database file inside the spool directory.
pub const DATABASE_FILE: &str = "spool.sqlite3";

/// The lock file inside the spool directory; it holds the process id of its owner.
pub const LOCK_FILE: &str = "spool.lock";

/// Opens a spool with a [`SpoolConfig`]; from [`Spool::builder`] or [`SpoolConfig::builder`].
#[derive(Clone, Debug)]
pub struct SpoolBuilder {
    config: SpoolConfig,
    ignore_backoff: bool,
    existing: bool,
    keep_registry: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) synchronous: Synchronous,
    pub(crate) durability: Durability,
    pub(crate) max_wait: Duration,
    pub(crate) max_batch: usize,
    pub(crate) max_size: u64,
    pub(crate) window: usize,
    /// What cannot go for this long lets go of its rows in memory.
    pub(crate) rest_after: Duration,
    pub(crate) ignore_backoff: bool,
    /// The endpoints table is another process's: neither written nor pruned.
    pub(crate) keep_registry: bool,
    /// How long the attempt log's rows are kept (set by the sink from its config).
    pub(crate) attempt_retention: Duration,
    /// The most attempt log rows kept.
    pub(crate) attempt_max_rows: u64,
    /// How long dead letters are kept.
    pub(crate) dead_letter_retention: Duration,
}

impl SpoolBuilder {
    /// Sets [`SpoolConfig::synchronous`].
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.config.synchronous = synchronous;
        self
    }

    /// Sets [`SpoolConfig::durability`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// Sets [`SpoolConfig::max_wait`].
    #[must_use]
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.config.max_wait = wait;
        self
    }

    /// Sets [`SpoolConfig::max_batch`] (at least 1).
    #[must_use]
    pub fn max_batch(mut self, emits: usize) -> Self {
        self.config.max_batch = emits.max(1);
        self
    }

    /// Sets [`SpoolConfig::max_size`], in bytes.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.config.max_size = bytes;
        self
    }

    /// Sets [`SpoolConfig::rest_after`].
    #[must_use]
    pub fn rest_after(mut self, wait: Duration) -> Self {
        self.config.rest_after = wait;
        self
    }

    /// Sets [`SpoolConfig::memory_window`] (at least 1).
    #[must_use]
    pub fn memory_window(mut self, rows: usize) -> Self {
        self.config.memory_window = rows.max(1);
        self
    }

    /// Sets [`SpoolConfig::dead_letter_retention`]; [`open`](Self::open) refuses zero.
    #[must_use]
    pub fn dead_letter_retention(mut self, retention: Duration) -> Self {
        self.config.dead_letter_retention = retention;
        self
    }

    /// Attempts rows that wait for a retry at once instead of when they are due (what
    /// `deskhook drain` does). Defaults to false.
    #[must_use]
    pub fn ignore_backoff(mut self, ignore: bool) -> Self {
        self.ignore_backoff = ignore;
        self
    }

    /// The directory it opens.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Opens only a spool that exists: [`open`](SpoolBuilder::open) then fails when the
    /// directory has no spool, rather than making a new, empty one (what a tool working on
    /// a spool wants: a mistyped path is an error, not "0 events"). Defaults to false.
    #[must_use]
    pub fn existing(mut self, existing: bool) -> Self {
        self.existing = existing;
        self
    }

    /// Leaves the endpoints the spool keeps as they are: the sink's own endpoints are not
    /// stored in it, and those it keeps that the sink leaves out are not forgotten. For a
    /// tool that works on the spool of a helpdesk or `deskhook serve` that is not running
    /// (`deskhook drain`, `dead-letters replay --spool`), so that their endpoints, and
    /// those added at run time, are registered again at their next start. The tool's own
    /// endpoints start unpaused, whatever the spool kept: it delivers what it is given.
    /// Defaults to false.
    #[must_use]
    pub fn keep_registry(mut self, keep: bool) -> Self {
        self.keep_registry = keep;
        self
    }

    /// Opens (or creates) the spool and takes its lock.
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] for settings that cannot work, named: an empty directory path, a
    ///   zero size, a batch wait over its limit.
    /// - [`Error::Spool`] when [`existing`](SpoolBuilder::existing) is set and there is no
    ///   spool in the directory.
    /// - [`Error::SpoolLocked`] when another process (or another `Spool` of this one) has it
    ///   open; [`Error::Spool`] when the directory cannot be created or the database is
    ///   damaged or not a spool.
    pub fn open(self) -> Result<Spool, Error> {
        self.config
            .check()
            .map_err(|(_, message)| Error::Config(message))?;
        let db = self.config.dir.join(DATABASE_FILE);
        if self.existing && !db.is_file() {
            return Err(no_spool(&self.config.dir, db));
        }
        let defaults = crate::delivery::DeliveryConfig::default();
        let c = self.config;
        let settings = Settings {
            synchronous: c.synchronous,
            durability: c.durability,
            max_wait: c.max_wait,
            max_batch: c.max_batch,
            max_size: c.max_size,
            window: c.memory_window,
            rest_after: c.rest_after,
            ignore_backoff: self.ignore_backoff,
            keep_registry: self.keep_registry,
            attempt_retention: defaults.attempt_retention,
            attempt_max_rows: defaults.attempt_max_rows,
            dead_letter_retention: c.dead_letter_retention,
        };
        Spool::open_with(c.dir, settings)
    }
}

/// An open spool: hand it to `SinkBuilder::spool`. It also answers questions about its
/// content ([`stats`](Spool::stats), [`dead_letters`](Spool::dead_letters)).
#[derive(Debug)]
pub struct Spool {
    pub(crate) dir: PathBuf,
    pub(crate) db: PathBuf,
    pub(crate) lock: SpoolLock,
    pub(crate) conn: Connection,
    pub(crate) settings: Settings,
}

/// What a spool holds, from [`Spool::stats`] or [`inspect`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStats {
    /// Rows waiting for delivery (one per event and endpoint).
    pub pending: u64,
    /// Of those, rows due now (not waiting for a retry).
    pub due: u64,
    /// When the oldest pending row was accepted.
    pub oldest: Option<jiff::Timestamp>,
    /// Rows in the dead-letter table.
    pub dead_letters: u64,
    /// Bytes on disk: the database with its WAL.
    pub size_bytes: u64,
    /// Of the pending rows, those whose endpoint is not registered (in the sink that has the
    /// spool open, or had it last): they wait until an endpoint of that name is registered.
    pub waiting_for_endpoint: u64,
    /// Endpoints registered in that sink.
    pub registered: u64,
    /// The names, among [`endpoints`](SpoolStats::endpoints), of those not registered.
    pub unregistered: Vec<String>,
    /// Pending rows per endpoint name, by name.
    pub endpoints: Vec<(String, u64)>,
}

impl Spool {
    /// A builder for a spool in `dir`, with the default settings.
    pub fn builder(dir: impl Into<PathBuf>) -> SpoolBuilder {
        SpoolConfig {
            dir: dir.into(),
            ..SpoolConfig::default()
        }
        .builder()
    }

    /// Opens (or creates) the spool in `dir` with the default settings.
    ///
    /// # Errors
    ///
    /// As [`SpoolBuilder::open`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Spool, Error> {
        Spool::builder(dir).open()
    }

    fn open_with(dir: PathBuf, settings: Settings) -> Result<Spool, Error> {
        let made = !dir.exists();
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| Error::Spool {
            path: dir.clone(),
            message: if dir.is_file() {
                // The database file given for its directory, or any file: named, as the
                // readers name it (`no_spool`).
                format!(
                    "'{}' is a file, and a spool is a directory: give the directory that \
                     holds {DATABASE_FILE}, or one to make",
                    dir.display()
                )
            } else {
                format!("cannot create the spool directory: {e}")
            },
        })?;
        let lock = take_lock(&dir)?;
        let db = dir.join(DATABASE_FILE);
        if made || !db.exists() {
            // Made here, before SQLite opens it, so that it is never readable by others.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&db).map_err(|e| Error::Spool {
                path: db.clone(),
                message: format!("cannot create the spool's database: {e}"),
            })?;
        }
        let conn = Connection::open(&db).map_err(|e| damaged(&db, &e))?;
        schema::prepare(&conn, &settings).map_err(|e| damaged(&db, &e))?;
        Ok(Spool {
            dir,
            db,
            lock,
            conn,
            settings,
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the spool holds now.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when the database cannot be read.
    pub fn stats(&self) -> Result<SpoolStats, Error> {
        schema::stats(&self.conn, &self.db)
    }

    /// Every dead letter in the spool, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when the database cannot be read.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, Error> {
        schema::dead_letters(&self.conn).map_err(|e| damaged(&self.db, &e))
    }

    /// Moves the dead letters of `endpoints` back to the pending rows (attempts from 0,
    /// behind the rows already pending, in the order their events were emitted), to be
    /// delivered by the next sink built on this spool. Letters of other endpoints stay, and
    /// so do those an endpoint cannot take as it is now, as a running sink's
    /// [`DeadLetters::replay`](crate::delivery::DeadLetters::replay) refuses them: of
    /// another tenant (the endpoint was made again for one), of an event type it no longer
    /// takes, or over `max_payload`; and the later letters of a ticket and endpoint whose
    /// letter stays, which queued would go out before it.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when the database cannot be written; nothing moved then.
    pub fn requeue_dead_letters(
        &mut self,
        endpoints: &[crate::delivery::Endpoint],
        max_payload: usize,
    ) -> Result<Requeued, Error> {
        schema::requeue_dead_letters(&mut self.conn, endpoints, max_payload)
            .map_err(|e| damaged(&self.db, &e))
    }

    /// Moves every pending event of `endpoints` to the dead letters, with `reason`: for the
    /// events of an endpoint that is gone (left out of the configuration, or removed while
    /// no sink had the spool open), which would otherwise wait in the spool for ever,
    /// counted against its size. From there they can be listed, replayed to another
    /// endpoint's URL, or deleted (`deskhook dead-letters … --spool`). Returns how many
    /// moved. What `deskhook spool dead-letter` does.
    ///
    /// # Errors
    ///
    /// [`Error::Spool`] when the database cannot be written; nothing moved then.
    pub fn dead_letter_pending(
        &mut self,
        endpoints: &[String],
        reason: &str,
    ) -> Result<usize, Error> {
        schema::dead_letter_pending(&mut self.conn, endpoints, reason)
            .map_err(|e| damaged(&self.db, &e))
    }

    /// The spool as the engine's backlog, keeping attempts as `config` says, and the
    /// settings of the endpoints registered when it was last used.
    pub(crate) fn backlog(
        mut self,
        config: &crate::delivery::DeliveryConfig,
    ) -> Result<(Box<dyn crate::delivery::backlog::Backlog>, writer::Kept), Error> {
        self.settings.attempt_retention = config.attempt_retention;
        self.settings.attempt_max_rows = config.attempt_max_rows;
        let (store, stored) = writer::SpoolStore::start(self)?;
        Ok((Box::new(backlog::SpoolBacklog::new(store)), stored))
    }
}

/// What [`Spool::requeue_dead_letters`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Requeued {
    /// Letters moved back to the pending rows.
    pub moved: usize,
    /// Letters that stay, each its event id and why.
    pub kept: Vec<(String, String)>,
}

/// What the spool in `dir` holds, read without taking its lock: it works while a helpdesk
/// has the spool open (`deskhook spool stats`).
///
/// # Errors
///
/// [`Error::Spool`] when there is no spool there, or it cannot be read.
pub fn inspect(dir: impl AsRef<Path>) -> Result<SpoolStats, Error> {
    let db = read_only(dir.as_ref())?;
    schema::stats(&db.0, &db.1)
}

/// The dead letters of the spool in `dir`, read without taking its lock.
///
/// # Errors
///
/// As [`inspect`].
pub fn read_dead_letters(dir: impl AsRef<Path>) -> Result<Vec<DeadLetter>, Error> {
    let (conn, path) = read_only(dir.as_ref())?;
    schema::dead_letters(&conn).map_err(|e| damaged(&path, &e))
}

/// A page of the dead letters of the spool in `dir`, newest first, as a running sink's
/// [`DeadLetters::list`](crate::delivery::DeadLetters::list) gives them; read without taking
/// the spool's lock.
///
/// # Errors
///
/// As [`inspect`].
pub fn read_dead_letter_page(
    dir: impl AsRef<Path>,
    query: &crate::delivery::DeadLetterQuery,
) -> Result<crate::delivery::DeadLetterPage, Error> {
    let (conn, path) = read_only(dir.as_ref())?;
    schema::letters(&conn, query).map_err(|e| damaged(&path, &e))
}

/// The error for a spool directory `dir` without the database `db`: a path to the database
/// itself (or to any file) is a common slip, and is named.
fn no_spool(dir: &Path, db: PathBuf) -> Error {
    let message = if dir.is_file() {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        format!(
            "no spool here: '{}' is a file, and a spool is a directory; give the directory \
             that holds {DATABASE_FILE} (such as '{}')",
            dir.display(),
            parent.display()
        )
    } else {
        "no spool here (the file does not exist); check the directory".to_owned()
    };
    Error::Spool { path: db, message }
}

/// How long a read from outside the sink ([`inspect`], the dead-letter readers: what
/// `deskhook spool stats` and `dead-letters list --spool` use) waits for a lock the running
/// sink holds, such as the checkpoint it makes when it closes, before it fails as busy.
const OUTSIDE_READ_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn read_only(dir: &Path) -> Result<(Connection, PathBuf), Error> {
    let db = dir.join(DATABASE_FILE);
    if !db.is_file() {
        return Err(no_spool(dir, db));
    }
    let conn = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| damaged(&db, &e))?;
    conn.busy_timeout(OUTSIDE_READ_BUSY_TIMEOUT)
        .map_err(|e| damaged(&db, &e))?;
    schema::check(&conn).map_err(|e| damaged(&db, &e))?;
    Ok((conn, db))
}

/// The error for a database that cannot be opened or read at start, with what to do about
/// it: a full disk, a spool that cannot be written or opened, or one of a newer format are
/// not damaged, and moving them aside would strand their undelivered events.
pub(crate) fn damaged(path: &Path, err: &rusqlite::Error) -> Error {
    let advice = known_cause(err).unwrap_or(
        "if the file is damaged or not a deskhook spool, move it aside (its undelivered \
         events would stay in it) and start again with an empty directory",
    );
    Error::Spool {
        path: path.to_path_buf(),
        message: format!("{err}; {advice}"),
    }
}

/// The error for a read or write of a spool in use that failed. Unlike [`damaged`], it never
/// advises moving the spool aside: the sink has it open, and what it holds is still to be
/// delivered.
pub(crate) fn failing(path: &Path, err: &rusqlite::Error) -> Error {
    let advice = known_cause(err).unwrap_or(
        "the events stay in the spool; check the disk it is on (free space, I/O errors in \
         the system log)",
    );
    Error::Spool {
        path: path.to_path_buf(),
        message: format!("{err}; {advice}"),
    }
}

/// What to do about `err` when its cause is known from its code.
fn known_cause(err: &rusqlite::Error) -> Option<&'static str> {
    use rusqlite::ErrorCode;
    Some(match err.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => {
            "the disk is full: free some space (the spool is intact) and try again"
        }
        Some(ErrorCode::ReadOnly) => {
            "the spool cannot be written: give the process write access to its directory and \
             files"
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            "the spool cannot be opened: check that its directory exists and that the process \
             may read and write it"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "the database is busy: another connection holds it (another process, or the \
             spool's own writer at a checkpoint); try again, or stop the process that holds it"
        }
        _ if err.to_string().contains(schema::NEWER_FORMAT) => {
            "it was written by a newer deskhook: run that version (or a later one) on it"
        }
        _ => return None,
    })
}
