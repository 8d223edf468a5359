//! The JSON Lines file log: one line per event.
//!
//! Each line is `{"id":…,"ts":…,"action":…,"event":{…}}`, where `event` is the exact body a
//! webhook carries (of any format), `action` its event type (`create`,
//! `usedesk.comment_created`, …), `id` the event id (the future `webhook-id`) and `ts` when it
//! was emitted, RFC 3339 in UTC. Lines from many threads never interleave: each line is written whole
//! under one lock. `deskhook tail` reads these files.
//!
//! Buffered lines ([`FlushPolicy::Interval`], [`FlushPolicy::Never`]) are written on
//! `deskhook::flush()` and when the sink is dropped. The global dispatcher is never dropped:
//! with those policies, call `deskhook::flush()` before the program exits.
//!
//! The sink can rotate its file itself (`rotate_bytes`). An outside rotator that moves the
//! file (logrotate's default `create`) is noticed within a second, and the file at the path
//! opened again: lines of that second go to the moved file. So give logrotate
//! `delaycompress`, which leaves the moved file alone until the next rotation (with
//! `compress` alone, it compresses and removes the file at once, and those lines are lost
//! with it); or `copytruncate`. A file removed from outside (`rm`) is noticed the same way,
//! and the lines of that second go with it: they are counted as sent.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use deskhook::sink::{Emitted, EventSink};

use crate::error::Error;

mod place;
use place::unlinked;
#[cfg(test)]
use place::{from_cut_line, make_room};

/// When the file log hands what it buffered to the operating system.
///
/// In `deskhook.toml` (`flush = …` in `[file_log]`): `"every-event"`, `"never"`, or an
/// interval such as `"1s"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushPolicy {
    /// After every event: a `write` system call per event; nothing is lost if the process
    /// dies. The default.
    #[default]
    EveryEvent,
    /// From a background thread every interval, and on [`EventSink::flush`] and drop. Events
    /// of the last interval are lost if the process is killed.
    Interval(Duration),
    /// Only when the buffer (64 KiB) fills, on [`EventSink::flush`] and on drop.
    Never,
}

impl<'de> serde::Deserialize<'de> for FlushPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "every-event" => Ok(FlushPolicy::EveryEvent),
            "never" => Ok(FlushPolicy::Never),
            other => match deskhook::policy::parse_duration(other) {
                Ok(every) if every < MIN_FLUSH_INTERVAL => Err(serde::de::Error::custom(format!(
                    "a flush every {other} would keep a thread flushing without rest; give \
                     at least \"{}\", or write \"every-event\"",
                    deskhook::policy::format_duration(MIN_FLUSH_INTERVAL)
                ))),
                Ok(every) => Ok(FlushPolicy::Interval(every)),
                Err(e) => Err(serde::de::Error::custom(format!(
                    "{e}; or write \"every-event\" or \"never\""
                ))),
            },
        }
    }
}

/// The shortest interval of [`FlushPolicy::Interval`]: shorter, the flushing thread would
/// hold the file's lock all the time; flush every event instead.
pub const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// The settings of a file log.
///
/// This struct is also the `[file_log]` table of `deskhook.toml`: each field is a key of the
/// same name, `path` is required there, and a key left out keeps the default given here. In
/// code, [`FileSink::builder`] starts from the defaults and its setters change these fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FileLogConfig {
    /// The live file; rotated files get `.1`, `.2`, … appended.
    pub path: PathBuf,
    /// When buffered lines are written out. Defaults to [`FlushPolicy::EveryEvent`].
    pub flush: FlushPolicy,
    /// Rotate the file when it would grow past this many bytes. Defaults to none: no
    /// rotation.
    pub rotate_bytes: Option<u64>,
    /// With rotation, how many rotated files to keep. Defaults to 5.
    pub keep: usize,
    /// The permissions a new file is made with, on Unix (`mode = 0o640` in deskhook.toml,
    /// for a log shipper in the file's group); the umask may take bits away. A file that
    /// exists keeps its own, and one made after a rotation or a move takes the mode of the
    /// file it follows. Defaults to `0o600`: the lines hold the events' bodies.
    pub mode: u32,
}

impl Default for FileLogConfig {
    fn default() -> Self {
        FileLogConfig {
            path: PathBuf::new(),
            flush: FlushPolicy::EveryEvent,
            rotate_bytes: None,
            keep: 5,
            mode: 0o600,
        }
    }
}

impl FileLogConfig {
    /// A builder with these settings, to open the log with.
    pub fn builder(self) -> FileSinkBuilder {
        FileSinkBuilder {
            config: self,
            create_dirs: true,
        }
    }

    /// Settings that cannot work, with the key that holds each (for the position of a
    /// deskhook.toml's error).
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.path.as_os_str().is_empty() {
            return Err((
                "path",
                "the file log needs its path: write path = \"/var/log/helpdesk/events.jsonl\""
                    .into(),
            ));
        }
        if let FlushPolicy::Interval(every) = self.flush
            && every < MIN_FLUSH_INTERVAL
        {
            return Err((
                "flush",
                format!(
                    "file log flush interval is {}, under {}: use FlushPolicy::EveryEvent \
                     (flush = \"every-event\" in deskhook.toml) to flush every event",
                    deskhook::policy::format_duration(every),
                    deskhook::policy::format_duration(MIN_FLUSH_INTERVAL)
                ),
            ));
        }
        if self.mode > 0o777 || self.mode & 0o200 == 0 {
            return Err((
                "mode",
                format!(
                    "file log mode {:#o} must let its owner write (0o200) and hold permission \
                     bits only (at most 0o777): give one such as 0o600 or 0o640",
                    self.mode
                ),
            ));
        }
        if self.rotate_bytes == Some(0) {
            return Err((
                "rotate_bytes",
                "file log rotation size is 0 bytes: give a size such as 16 MiB".into(),
            ));
        }
        Ok(())
    }
}

/// Size-based rotation: when a line would take the file past `max_bytes`, `events.jsonl`
/// becomes `events.jsonl.1`, `.1` becomes `.2`, and so on; the oldest beyond `keep` is
/// deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Largest size of the live file, in bytes. A single line larger than this still goes
    /// into a file of its own.
    pub max_bytes: u64,
    /// How many rotated files to keep; 0 keeps none (the live file is started afresh).
    pub keep: usize,
}

const BUFFER_BYTES: usize = 64 * 1024;

/// A sink that appends every event to a JSON Lines file.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use deskhook_transports::file::{FileSink, FlushPolicy};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("events.jsonl");
/// let log = FileSink::builder(&path)
///     .flush(FlushPolicy::EveryEvent)
///     .rotate(16 * 1024 * 1024, 5)
///     .build()?;
/// let dispatcher = deskhook::Dispatcher::builder().sink("file", log).build();
/// dispatcher.emit(deskhook::Action::Create, &deskhook::sample::ticket(), &deskhook::sample::user());
/// assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 1);
/// # Ok(()) }
/// ```
pub struct FileSink {
    shared: Arc<Shared>,
    flusher: Option<Flusher>,
}

struct Shared {
    path: PathBuf,
    policy: FlushPolicy,
    rotation: Option<Rotation>,
    /// The mode a new file is made with when it follows none ([`FileLogConfig::mode`]).
    mode: u32,
    state: Mutex<State>,
}

struct State {
    writer: BufWriter<File>,
    /// Bytes in the live file, buffered ones included.
    size: u64,
    /// Whether the buffer holds bytes not yet written out.
    dirty: bool,
    /// Whether the file may end in part of a line (a write failed midway, or it was found
    /// so at open): the next line starts on a line of its own.
    needs_newline: bool,
    /// Whether the path no longer names the file written to (a rotation moved it and could
    /// not open a new one, or it was moved or removed from outside): appends try to open the
    /// path again first, and do not rotate.
    detached: bool,
    /// When the path was last compared with the file written to (at most once a second).
    checked_at: std::time::Instant,
    /// When a rotation last failed: the next is tried a second later, not at every line
    /// (each a warning, and a rename or removal tried again).
    rotation_failed_at: Option<std::time::Instant>,
    /// Warnings made under the lock, logged once it is let go (see [`Locked`]).
    said: Vec<String>,
}

impl State {
    /// Takes the file's size again (what it holds, and what is buffered for it): a file
    /// truncated from outside is smaller than counted. Kept as counted when it cannot be
    /// read.
    fn measure(&mut self) {
        if let Ok(meta) = self.writer.get_ref().metadata() {
            self.size = meta.len() + self.writer.buffer().len() as u64;
        }
    }
}

struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl FileSink {
    /// A builder for a log at `path`.
    pub fn builder(path: impl AsRef<Path>) -> FileSinkBuilder {
        FileLogConfig {
            path: path.as_ref().to_path_buf(),
            ..FileLogConfig::default()
        }
        .builder()
    }

    /// A log at `path` with the defaults: flushed after every event, not rotated.
    ///
    /// # Errors
    ///
    /// As [`FileSinkBuilder::build`].
    pub fn new(path: impl AsRef<Path>) -> Result<FileSink, Error> {
        FileSink::builder(path).build()
    }

    /// The path of the live file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl fmt::Debug for FileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.shared.path)
            .field("policy", &self.shared.policy)
            .field("rotation", &self.shared.rotation)
            .finish()
    }
}

/// Builds a [`FileSink`]; see [`FileSink::builder`].
#[derive(Clone, Debug)]
pub struct FileSinkBuilder {
    config: FileLogConfig,
    create_dirs: bool,
}

impl FileSinkBuilder {
    /// Sets [`FileLogConfig::flush`].
    #[must_use]
    pub fn flush(mut self, policy: FlushPolicy) -> Self {
        self.config.flush = policy;
        self
    }

    /// Rotates the file when it would grow past `max_bytes`, keeping `keep` old files: sets
    /// [`FileLogConfig::rotate_bytes`] and [`FileLogConfig::keep`].
    #[must_use]
    pub fn rotate(mut self, max_bytes: u64, keep: usize) -> Self {
        self.config.rotate_bytes = Some(max_bytes);
        self.config.keep = keep;
        self
    }

    /// Sets [`FileLogConfig::mode`].
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.config.mode = mode;
        self
    }

    /// Whether missing parent directories are created. Defaults to `true`.
    #[must_use]
    pub fn create_dirs(mut self, create: bool) -> Self {
        self.create_dirs = create;
        self
    }

    /// Opens (or creates) the file for appending, and starts the flush thread for
    /// [`FlushPolicy::Interval`].
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened for appending (a missing or read-only
    /// directory, a path that is a directory); [`Error::Config`] for a zero flush interval or
    /// rotation size, or a [`mode`](FileLogConfig::mode) its owner cannot write.
    pub fn build(self) -> Result<FileSink, Error> {
        self.config
            .check()
            .map_err(|(_, message)| Error::Config(message))?;
        let FileLogConfig {
            path,
            flush: policy,
            rotate_bytes,
            keep,
            mode,
        } = self.config;
        let rotation = rotate_bytes.map(|max_bytes| Rotation { max_bytes, keep });
        if self.create_dirs
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        {
            fs::create_dir_all(parent).map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
        }
        let state = open(&path, None, mode)?;
        let shared = Arc::new(Shared {
            path,
            policy,
            rotation,
            mode,
            state: Mutex::new(state),
        });
        let flusher = match policy {
            FlushPolicy::Interval(every) => Some(spawn_flusher(Arc::downgrade(&shared), every)?),
            _ => None,
        };
        Ok(FileSink { shared, flusher })
    }
}

/// Opens `path` for appending, made if missing: with the mode of `like` (the file it
/// follows after a rotation or a move) when given, so that a log kept from other users
/// stays so, else with `mode`.
fn open(path: &Path, like: Option<&File>, mode: u32) -> Result<State, Error> {
    let open_error = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(match like.map(File::metadata) {
            Some(Ok(meta)) => meta.permissions().mode() & 0o777,
            _ => mode,
        });
    }
    #[cfg(not(unix))]
    let _ = (like, mode);
    let file = options.open(path).map_err(open_error)?;
    let size = file.metadata().map_err(open_error)?.len();
    Ok(State {
        writer: BufWriter::with_capacity(BUFFER_BYTES, file),
        size,
        dirty: false,
        needs_newline: size > 0 && !ends_in_newline(path),
        detached: false,
        checked_at: std::time::Instant::now(),
        rotation_failed_at: None,
        said: Vec::new(),
    })
}

/// How often an append compares the path with the file it writes to.
const PATH_CHECK_EVERY: Duration = Duration::from_secs(1);

impl State {
    /// A write failed: if the buffer is empty, what went out may end mid-line (a line longer
    /// than the buffer goes straight to the file), so the next line starts on a line of its
    /// own; what the buffer still holds is written, whole, later.
    fn cut_short(&mut self) {
        if self.writer.buffer().is_empty() {
            self.needs_newline = true;
        }
    }
}

/// Writes `line` straight to the file of `state` ([`FlushPolicy::EveryEvent`]: nothing is
/// buffered), after the line break a cut line needs. A line the file did not take is not
/// kept for a later write, as a buffer would keep it: its event is reported not taken, and
/// must not turn up in the file after all. What went of it is ended by a line break before
/// the next line.
fn write_through(state: &mut State, line: &[u8]) -> io::Result<()> {
    let file = state.writer.get_mut();
    if state.needs_newline {
        file.write_all(b"\n")?;
        state.size += 1;
        state.needs_newline = false;
    }
    let mut written = 0;
    while written < line.len() {
        match file.write(&line[written..]) {
            Ok(0) => {
                state.needs_newline = written > 0;
                return Err(io::ErrorKind::WriteZero.into());
            }
            Ok(n) => {
                written += n;
                state.size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                state.needs_newline = written > 0;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Whether the file at `path` ends in a line break (a crash can leave part of a line).
fn ends_in_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)
        })
        .map_or(true, |()| last[0] == b'\n')
}

fn spawn_flusher(shared: Weak<Shared>, every: Duration) -> Result<Flusher, Error> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("deskhook-file-flush".into())
        .spawn(move || {
            // A failure said once a minute, or when it changes: at a flush every 10 ms, a
            // full disk would say so a hundred times a second. The lines stay buffered.
            let mut said: Option<(String, std::time::Instant)> = None;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                match shared.flush_now() {
                    Ok(()) => said = None,
                    Err(err) => {
                        let text = err.to_string();
                        if said.as_ref().is_none_or(|(before, at)| {
                            *before != text || at.elapsed() >= Duration::from_secs(60)
                        }) {
                            // A logger's panic must not end the flushes.
                            let _ = std::panic::catch_unwind(|| {
                                log::warn!(
                                    target: deskhook::LOG_TARGET,
                                    "{text}; the lines stay buffered, and are written at the \
                                     next flush that succeeds"
                                );
                            });
                            said = Some((text, std::time::Instant::now()));
                        }
                    }
                }
            }
        })
        .map_err(|e| Error::Config(format!("cannot start the file log flush thread: {e}")))?;
    Ok(Flusher { stop, thread })
}

/// The file log's state, locked. What was said under the lock ([`State::said`]) is logged
/// once it is let go: a logger that hands warnings to a deskhook sink writing to this very
/// file would otherwise wait for the lock for ever, and every `emit` with it. A logger that
/// panics does not reach the caller either.
struct Locked<'a>(Option<MutexGuard<'a, State>>);

impl std::ops::Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.0.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.0.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let said = self
            .0
            .as_mut()
            .map(|state| std::mem::take(&mut state.said))
            .unwrap_or_default();
        drop(self.0.take());
        for text in said {
            let _ = std::panic::catch_unwind(|| {
                log::warn!(target: deskhook::LOG_TARGET, "{text}");
            });
        }
    }
}

impl Shared {
    fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock leaves at worst a partial buffer; keep logging.
        Locked(Some(
            self.state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        ))
    }

    fn write_error(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn append(&self, line: &[u8]) -> Result<(), Error> {
        let mut state = self.lock();
        // Moved or removed from outside (a log rotator): noticed within a second, and
        // followed at once; a path that will not open is tried again once a second.
        let look = state.checked_at.elapsed() >= PATH_CHECK_EVERY;
        if look {
            state.checked_at = std::time::Instant::now();
        }
        if !state.detached && look {
            state.detached = !self.still_ours(&state);
        }
        if state.detached && (look || unlinked(&state)) {
            self.reattach(&mut state)?;
        }
        if let Some(rotation) = self.rotation {
            let over = |state: &State| {
                !state.detached
                    && state.size > 0
                    && state.size + line.len() as u64 > rotation.max_bytes
                    && state
                        .rotation_failed_at
                        .is_none_or(|at| at.elapsed() >= PATH_CHECK_EVERY)
            };
            if over(&state) {
                // Truncated from outside since (logrotate's `copytruncate`)? The size it has.
                state.measure();
            }
            if over(&state)
                && let Err(err) = self.rotate(&mut state, rotation)
            {
                // With `keep = 0` the file was removed before the new one failed to open: a
                // line written on would be lost, so the append fails instead.
                if unlinked(&state) {
                    return Err(err);
                }
                state.rotation_failed_at = Some(std::time::Instant::now());
                // The event still goes into the current file; only the rotation failed.
                state.said.push(format!(
                    "{err}; writing on to the current file, and trying again in a second (the \
                     folder must let this process rename and remove files)"
                ));
            }
        }
        if self.policy == FlushPolicy::EveryEvent {
            return write_through(&mut state, line).map_err(|e| self.write_error(e));
        }
        if state.needs_newline {
            state
                .writer
                .write_all(b"\n")
                .map_err(|e| self.write_error(e))?;
            state.size += 1;
            state.needs_newline = false;
        }
        if let Err(e) = state.writer.write_all(line) {
            state.cut_short();
            return Err(self.write_error(e));
        }
        state.size += line.len() as u64;
        state.dirty = true;
        Ok(())
    }

    /// Lets go of the lines still buffered, which the file did not take as the sink closes,
    /// so that none is written after being said lost; says how many, and which.
    fn let_go_of_buffered(&self) -> String {
        let mut state = self.lock();
        let said = lost_lines(state.writer.buffer());
        // Emptied with the file kept: a buffer dropped whole would try its write again.
        if let Ok(file) = state.writer.get_ref().try_clone() {
            let kept = std::mem::replace(&mut state.writer, BufWriter::new(file));
            drop(kept.into_parts());
        }
        said
    }

    fn flush_now(&self) -> Result<(), Error> {
        let mut state = self.lock();
        // Moved or removed from outside since: the buffered lines, and the next ones, go to
        // a file at the path (first, so that none is flushed into a removed file).
        if !state.detached && !self.still_ours(&state) {
            state.detached = true;
        }
        if state.detached {
            state.checked_at = std::time::Instant::now();
            self.reattach(&mut state)?;
        }
        if state.dirty {
            if let Err(e) = state.writer.flush() {
                state.cut_short();
                return Err(self.write_error(e));
            }
            state.dirty = false;
        }
        Ok(())
    }
}

/// Writes one log line for `event` into `out`.
fn render_line(event: &Emitted<'_>, out: &mut Vec<u8>) {
    out.reserve(event.body().len() + 128);
    out.extend_from_slice(LINE_START);
    // Ids, timestamps and action names are plain ASCII: no JSON escaping needed.
    let _ = write!(out, "{}", event.id());
    out.extend_from_slice(b"\",\"ts\":\"");
    let _ = write!(out, "{:.3}", event.timestamp());
    out.extend_from_slice(b"\",\"action\":\"");
    out.extend_from_slice(event.event_type().as_str().as_bytes());
    out.extend_from_slice(b"\",\"event\":");
    out.extend_from_slice(event.body());
    out.extend_from_slice(b"}\n");
}

impl EventSink for FileSink {
    fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        let mut line = Vec::new();
        render_line(event, &mut line);
        self.shared.append(&line).map_err(deskhook::Error::sink)
    }

    fn flush(&self, _timeout: Duration) -> Result<(), deskhook::Error> {
        self.shared.flush_now().map_err(deskhook::Error::sink)
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            drop(flusher.stop);
            let _ = flusher.thread.join();
        }
        if let Err(err) = self.shared.flush_now() {
            let lost = self.shared.let_go_of_buffered();
            log::error!(target: deskhook::LOG_TARGET, "{err}; {lost}");
        }
    }
}

/// What is said of the lines `buffered` lost as a file log closes: how many, and the ids of
/// the first and the last.
fn lost_lines(buffered: &[u8]) -> String {
    // A write cut short leaves the rest of a line first: its start is in the file.
    let cut = !buffered.is_empty() && !buffered.starts_with(LINE_START);
    let whole = if cut {
        buffered
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |end| &buffered[end + 1..])
    } else {
        buffered
    };
    let (count, first, last) = buffered_ids(whole);
    let mut said = match (first, last) {
        (Some(first), Some(last)) if count > 1 => {
            format!("{count} event line(s) not written are lost (ids {first} to {last})")
        }
        (Some(first), _) => format!("{count} event line(s) not written are lost (id {first})"),
        _ => format!("{count} event line(s) not written are lost"),
    };
    if cut {
        said.push_str(", and the end of one written in part");
    }
    said
}

/// How every line of the file log starts (see [`render_line`]).
const LINE_START: &[u8] = b"{\"id\":\"";

/// How many lines `buffered` (whole lines) holds, and the ids of the first and the last.
fn buffered_ids(buffered: &[u8]) -> (usize, Option<&str>, Option<&str>) {
    fn id(line: &[u8]) -> Option<&str> {
        let rest = line.strip_prefix(LINE_START)?;
        let end = rest.iter().position(|&b| b == b'"')?;
        std::str::from_utf8(&rest[..end]).ok()
    }
    let mut lines = buffered
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty());
    let first = lines.next();
    let count = usize::from(first.is_some()) + lines.clone().count();
    (
        count,
        first.and_then(id),
        lines.next_back().or(first).and_then(id),
    )
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
