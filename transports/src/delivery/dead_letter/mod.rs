//! Dead letters: events that could not be delivered, kept in a JSON Lines file so that they
//! can be inspected and replayed (`deskhook dead-letters list|replay`).

mod backward;

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use backward::{Backward, Line};

use super::letters::{DeadLetterQuery, LetterFields, StoredLetter};
use super::{EventData, Job, Lane, now_rfc3339};
use crate::error::Error;

/// The dead-letter file used when none is configured, relative to the working directory.
pub const DEFAULT_DEAD_LETTER_PATH: &str = "deskhook-dead-letters.jsonl";

/// Appends `bytes`, whole JSON lines, to a dead-letter `file` opened for reading and
/// appending with [`open_dead_letters_locked`]: on a line of their own after a line cut
/// short (by an earlier failed write, or a writer killed midway), rather than glued to it;
/// and when the write fails, what was written of them is cut off again, so that the file
/// holds whole lines only.
///
/// # Errors
///
/// The file cannot be read or written (then it is as it was, if it can be cut back).
pub fn append_dead_letter_lines(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
    }
    let written = if last[0] == b'\n' {
        file.write_all(bytes)
    } else {
        file.write_all(b"\n").and_then(|()| file.write_all(bytes))
    };
    if written.is_err() {
        let _ = file.set_len(len);
    }
    written
}

/// Opens the dead-letter file at `path` with `options`, locked against the other processes
/// that write it, and still the file at `path` once locked: one moved away or replaced while
/// this waited for the lock is let go, and the path opened again. Every deskhook writer of
/// the file takes this lock (an exclusive advisory lock, `flock` on Unix) while it writes:
/// a sink appending letters, a delete rewriting the file, `deskhook dead-letters replay`
/// setting it aside and writing back. So a letter is never written into a file another
/// process has just moved away or replaced, nor cut by another's failed append. The lock
/// goes with the file.
///
/// # Errors
///
/// The file cannot be opened or locked, or keeps being replaced (16 times in a row).
pub fn open_dead_letters_locked(path: &Path, options: &OpenOptions) -> std::io::Result<File> {
    for _ in 0..16 {
        let file = options.open(path)?;
        #[cfg(test)]
        tests::between_open_and_lock();
        file.lock()?;
        if is_at(path, &file.metadata()?) {
            return Ok(file);
        }
    }
    Err(std::io::Error::other(
        "the file was moved or replaced each time it was opened (16 times); try again",
    ))
}

/// One undelivered event, as a line of the dead-letter file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The event id (`webhook-id`); a replay sends it again, so receivers can de-duplicate.
    pub id: String,
    /// The endpoint's name in the configuration.
    pub endpoint: String,
    /// The endpoint's URL at the time, cut to its origin.
    pub url: String,
    /// The event's tenant, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The action or event type.
    pub action: String,
    /// The ticket (ordering key).
    pub ticket: String,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if one came back.
    pub last_status: Option<u16>,
    /// The error of the last attempt, if it failed without a status.
    pub last_error: Option<String>,
    /// Why the event was given up: "gave up after 8 attempt(s)", "400 from the receiver (not
    /// retried)", "301 redirect (redirects are not followed; configure the final URL)", a
    /// connection's error, "endpoint removed", ….
    pub reason: String,
    /// When it was given up (RFC 3339, UTC).
    pub failed_at: String,
    /// The exact body that was (to be) sent.
    pub body: Box<RawValue>,
}

impl DeadLetter {
    /// The dead letter of `event` for `lane`, after `attempts` attempts.
    pub(crate) fn of(lane: &Lane, event: &EventData, attempts: u32, reason: &str) -> DeadLetter {
        DeadLetter {
            id: event.id_text.to_string(),
            endpoint: lane.name.to_string(),
            url: lane.route().url.clone(),
            tenant: event.tenant.as_deref().map(str::to_owned),
            action: event.event_type.to_string(),
            ticket: event.key.to_string(),
            attempts,
            last_status: None,
            last_error: None,
            reason: reason.to_owned(),
            failed_at: now_rfc3339(),
            body: raw_body(&event.body),
        }
    }

    /// The dead letter of `job` of `lane`, with what its last attempt got.
    pub(crate) fn of_job(lane: &Lane, job: &Job, reason: &str) -> DeadLetter {
        DeadLetter {
            last_status: job.last_status,
            last_error: job.last_error.as_deref().map(str::to_owned),
            ..DeadLetter::of(lane, &job.event, job.attempts, reason)
        }
    }
}

/// A body as JSON; anything else as a JSON string, rather than lost. Line breaks between a
/// JSON body's tokens (a pretty-printed body; inside its strings they are escaped) become
/// spaces, so that the letter stays one line of the file: the same JSON, byte for byte
/// as long.
pub(crate) fn raw_body(body: &[u8]) -> Box<RawValue> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| RawValue::from_string(text.to_owned()).ok())
        .map(|raw| {
            // Valid JSON: its raw line breaks are whitespace.
            match raw.get().contains(['\n', '\r']) {
                true => RawValue::from_string(raw.get().replace(['\n', '\r'], " ")).unwrap_or(raw),
                false => raw,
            }
        })
        .or_else(|| serde_json::value::to_raw_value(&String::from_utf8_lossy(body)).ok())
        .unwrap_or_default()
}

/// Letters are appended to the file in batches of about this many bytes (and the engine
/// makes the letters of a lane let go at once in batches of about this many bytes of
/// bodies).
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// The fields of a dead letter's line that a [`DeadLetterQuery`] looks at, borrowed from
/// the line when they have no escapes; the others (the body first) are skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    endpoint: Cow<'a, str>,
    #[serde(borrow, default)]
    tenant: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    ticket: Cow<'a, str>,
}

impl Head<'_> {
    fn fields(&self) -> LetterFields<'_> {
        LetterFields {
            endpoint: &self.endpoint,
            tenant: self.tenant.as_deref(),
            event_type: &self.action,
            id: &self.id,
            ticket: &self.ticket,
        }
    }
}

/// Appends dead letters to a file. The file is opened for each letter, or each batch of
/// those let go at once (they are rare), so that a file moved away meanwhile (`deskhook
/// dead-letters replay` does that) is created anew rather than written to after its
/// deletion; created with the mode the file had when last opened, so that letters kept from
/// other users (they hold the events' bodies) stay so.
#[derive(Debug)]
pub(crate) struct DeadLetterLog {
    path: PathBuf,
    /// The permission bits of the file when last opened (0 before it ever was).
    mode: AtomicU32,
    /// Serializes writers, so that lines never interleave.
    lock: Mutex<()>,
    /// Serializes deletes, which rewrite the file: the writers wait only for the end of
    /// one (see [`DeadLetterLog::delete`]).
    deleting: Mutex<()>,
}

impl DeadLetterLog {
    pub(crate) fn new(path: PathBuf) -> DeadLetterLog {
        DeadLetterLog {
            path,
            mode: AtomicU32::new(0),
            lock: Mutex::new(()),
            deleting: Mutex::new(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the file can be opened for appending (at start-up, for an early error).
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.append(b"")
    }

    fn append(&self, bytes: &[u8]) -> Result<(), Error> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| self.open_error(e))?;
        }
        let mut options = OpenOptions::new();
        options.create(true).read(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // Used only if the file is made here: the mode it had when last opened (it was
            // moved away since), else readable by its owner only, as the spool is: letters
            // hold the events' bodies.
            let mode = self.mode.load(Ordering::Relaxed);
            options.mode(if mode != 0 { mode } else { 0o600 });
        }
        let mut file =
            open_dead_letters_locked(&self.path, &options).map_err(|e| self.open_error(e))?;
        let write = |e| self.write_error(e);
        let meta = file.metadata().map_err(write)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            self.mode
                .store(meta.permissions().mode() & 0o777, Ordering::Relaxed);
        }
        append_dead_letter_lines(&mut file, bytes).map_err(write)
    }

    /// Appends one record, and says whether it is in the file. When the file cannot be
    /// written, the whole record goes to the log at error level instead, so that the event
    /// is not lost silently (the engine counts it as dropped, not dead-lettered).
    pub(crate) fn write(&self, letter: &DeadLetter) -> bool {
        self.write_all([letter]) == [true]
    }

    /// Appends `letters` in order, opening the file once for each [`BATCH_BYTES`] of them
    /// rather than once per letter (an endpoint removed, or a stop, with many queued), and
    /// says of each whether it is in the file. Those that are not go whole to the log at
    /// error level instead, as [`write`](DeadLetterLog::write) does.
    pub(crate) fn write_all<'l>(
        &self,
        letters: impl IntoIterator<Item = &'l DeadLetter>,
    ) -> Vec<bool> {
        let mut kept = Vec::new();
        let mut batch = Vec::new();
        // Where the letters of `batch` begin in `kept`.
        let mut from = 0;
        for letter in letters {
            let start = batch.len();
            match serde_json::to_writer(&mut batch, letter) {
                Ok(()) => {
                    batch.push(b'\n');
                    kept.push(true);
                }
                Err(e) => {
                    // Nothing of it is left for the next letter to be glued to.
                    batch.truncate(start);
                    kept.push(false);
                    crate::delivery::logged(|| {
                        log::error!(
                            target: deskhook::LOG_TARGET,
                            "dead letter {} ({} on ticket {}) for endpoint '{}' could not be \
                             written ({e}) and is dropped: {}",
                            letter.id,
                            letter.action,
                            super::shown(&letter.ticket),
                            letter.endpoint,
                            letter.reason
                        );
                    });
                }
            }
            if batch.len() >= BATCH_BYTES {
                self.append_or_log(&batch, &mut kept[from..]);
                batch.clear();
                from = kept.len();
            }
        }
        if !batch.is_empty() {
            self.append_or_log(&batch, &mut kept[from..]);
        }
        kept
    }

    /// Appends `lines` (whole letters, each ending in a line break), or logs each of them
    /// and marks every one of `kept` (theirs) as not kept.
    fn append_or_log(&self, lines: &[u8], kept: &mut [bool]) {
        let Err(err) = self.append(lines) else {
            return;
        };
        kept.fill(false);
        for line in lines.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            crate::delivery::logged(|| {
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "{err}; the dead letter is not in the file and is counted as dropped; it \
                     follows whole: {}",
                    String::from_utf8_lossy(line)
                );
            });
        }
    }
}

impl DeadLetterLog {
    /// The file as far as it was written when called, and that length; `None` when there
    /// is no file. The length is taken under the writers' locks (this process's, and the
    /// file's, which other processes' writers hold: see [`open_dead_letters_locked`]), so
    /// that it ends after a whole letter, not within one another process is appending, or
    /// one its failed append will cut; the file is read without them (a letter written
    /// meanwhile goes after that length, and a delete's rename leaves the open file whole),
    /// so that a large file read by the console does not hold up the workers that write
    /// letters.
    fn open_written(&self) -> Result<Option<(File, u64)>, Error> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.read_error(source)),
        };
        file.lock_shared().map_err(|e| self.read_error(e))?;
        let len = file.metadata().map(|m| m.len());
        file.unlock().map_err(|e| self.read_error(e))?;
        Ok(Some((file, len.map_err(|e| self.read_error(e))?)))
    }

    /// [`Error::Open`] of the file: it cannot be opened for appending, or made.
    fn open_error(&self, source: std::io::Error) -> Error {
        Error::Open {
            path: self.path.clone(),
            source,
        }
    }

    /// [`Error::Read`] of the file (listed, read back, or read for a delete).
    fn read_error(&self, source: std::io::Error) -> Error {
        Error::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// [`Error::Write`] of the file (or the copy a delete makes of it).
    fn write_error(&self, source: std::io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// The lines of the file before `before` (a [`StoredLetter::position`]; the whole file
    /// when `None`), newest first, read from the end a block at a time.
    fn lines_before(
        &self,
        before: Option<u64>,
    ) -> Result<impl Iterator<Item = Result<Line, Error>> + '_, Error> {
        let (file, len) = match self.open_written()? {
            Some((file, len)) => (Some(file), len),
            None => (None, 0),
        };
        // A position is the offset of its line's first byte, plus one.
        let end = before.map_or(len, |before| before.saturating_sub(1).min(len));
        Ok(file
            .into_iter()
            .flat_map(move |file| Backward::new(file, end, before.is_some()))
            .map(|line| line.map_err(|e| self.read_error(e))))
    }

    /// The letters `query` asks for, newest first from its cursor, each read and parsed
    /// only when it is reached: a page of the newest reads the end of the file only.
    pub(crate) fn newest_first<'q>(
        &'q self,
        query: &'q DeadLetterQuery,
    ) -> Result<impl Iterator<Item = Result<StoredLetter, Error>> + 'q, Error> {
        Ok(self
            .lines_before(query.before)?
            .filter_map(move |line| match line {
                Ok(line) => self.asked(&line, query).map(Ok),
                Err(e) => Some(Err(e)),
            }))
    }

    /// The letter of `line` if `query` asks for it. A filter passes over most letters: the
    /// fields it looks at are read first, borrowed from the line, and the letter is parsed
    /// and its key made only when it is asked for.
    fn asked(&self, line: &Line, query: &DeadLetterQuery) -> Option<StoredLetter> {
        if let Ok(head) = serde_json::from_slice::<Head<'_>>(&line.bytes)
            && !query.asks_for(&head.fields())
        {
            return None;
        }
        // Asked for, or not a letter (said so by `letter`).
        self.letter(line)
            .filter(|stored| query.keeps(&stored.letter))
    }

    /// The letters named by `keys`, oldest first. Reads the whole file, a block at a time,
    /// and parses only the lines it looks for.
    pub(crate) fn by_key(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error> {
        #[cfg(test)]
        tests::READS_WHOLE.with(|n| n.set(n.get() + 1));
        let keys: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut found = Vec::new();
        for line in self.lines_before(None)? {
            let line = line?;
            if keys.contains(line_key(&line.bytes).as_str()) {
                found.extend(self.letter(&line));
            }
        }
        found.reverse();
        Ok(found)
    }

    /// The letters named by `wanted` (each a key and the position a listing found it at),
    /// oldest first. Each is read where it was found, and checked to be the one named (a
    /// delete since may have moved it); those not found there are looked for in the whole
    /// file, once. A replay of many letters reads them a part at a time: by key, each part
    /// would cost a read of the whole file.
    pub(crate) fn at(&self, wanted: &[(String, u64)]) -> Result<Vec<StoredLetter>, Error> {
        let mut found = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        match File::open(&self.path) {
            Ok(file) => {
                let mut sorted: Vec<&(String, u64)> = wanted.iter().collect();
                sorted.sort_unstable_by_key(|(_, position)| *position);
                let mut lines = BufReader::new(file);
                let mut bytes = Vec::new();
                for (key, position) in sorted {
                    let start = position.saturating_sub(1);
                    lines
                        .seek(SeekFrom::Start(start))
                        .map_err(|e| self.read_error(e))?;
                    if !self.read_line(&mut lines, &mut bytes)? {
                        missing.push(key.clone());
                        continue;
                    }
                    let content = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                    if *position == 0 || line_key(content) != *key {
                        missing.push(key.clone());
                        continue;
                    }
                    let line = Line {
                        start,
                        bytes: content.to_vec(),
                    };
                    match self.letter(&line) {
                        Some(letter) => found.push(letter),
                        None => missing.push(key.clone()),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.read_error(source)),
        }
        if !missing.is_empty() {
            found.extend(self.by_key(&missing)?);
            found.sort_unstable_by_key(|stored| stored.position);
        }
        Ok(found)
    }

    /// The letter of `line`, with its key and position; `None` for a blank line, and for
    /// one that is not a letter (cut short by a full disk, written by hand), which is left
    /// in the file and out of the list, so that it hides no other letter.
    fn letter(&self, line: &Line) -> Option<StoredLetter> {
        if line.bytes.trim_ascii().is_empty() {
            return None;
        }
        match serde_json::from_slice::<DeadLetter>(&line.bytes) {
            Ok(letter) => Some(StoredLetter {
                key: line_key(&line.bytes),
                position: line.start + 1,
                letter,
            }),
            Err(e) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "{}: the line at byte {} is not a dead letter ({e}); it is left out of \
                     the list, and in the file",
                    self.path.display(),
                    line.start
                );
                None
            }
        }
    }

    /// Removes the letters named by `keys`; how many went. Nothing is written until a
    /// letter named is found: deleting letters already gone (a form sent twice) only reads
    /// the file.
    ///
    /// The file is rewritten beside and renamed over, so that a crash leaves the old file or
    /// the new one whole. The letters written before the delete began are copied and synced
    /// without the writers' lock (a file of 100,000 letters takes a while, and a worker or
    /// the router writing a letter meanwhile must not wait for it); only those written
    /// meanwhile are copied under it, before the rename. A file moved away meanwhile (by a
    /// replay in another process) is left as it is, and the delete fails saying so.
    pub(crate) fn delete(&self, keys: &[String]) -> Result<usize, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let named = |line: &[u8]| {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            !content.trim_ascii().is_empty() && keys.contains(line_key(content).as_str())
        };
        let _deleting = self.deleting.lock().unwrap_or_else(|p| p.into_inner());
        // The letters written so far: whole lines, since writers append under the lock. The
        // length is the open file's: one measured by its path could be another file's (a
        // replay renames the file away and writes a new one), and the copy would start
        // within a line, or past letters written meanwhile.
        let Some((mut file, written)) = self.open_written()? else {
            return Ok(0);
        };
        // Where the first letter named starts.
        let mut first = 0;
        {
            let mut lines = BufReader::new((&file).take(written));
            let mut line = Vec::new();
            loop {
                if !self.read_line(&mut lines, &mut line)? {
                    return Ok(0);
                }
                if named(&line) {
                    break;
                }
                first += line.len() as u64;
            }
        }
        #[cfg(test)]
        tests::REWRITES.with(|n| n.set(n.get() + 1));
        let temp = self.rewrite_path();
        // Made with the file's mode (letters hold the events' bodies: a file readable by its
        // owner only is copied so), under a name of this delete's own.
        let mut create = OpenOptions::new();
        create.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            let mode = file
                .metadata()
                .map_err(|e| self.read_error(e))?
                .permissions()
                .mode();
            create.mode(mode & 0o777);
        }
        // Not made (the name taken): nothing of this delete's to remove.
        let kept = create.open(&temp).map_err(|e| self.write_error(e))?;
        let rewritten = (|| -> Result<usize, Error> {
            let mut kept = std::io::BufWriter::new(kept);
            // What came before the first letter named, then the rest but those named.
            file.seek(SeekFrom::Start(0))
                .and_then(|_| std::io::copy(&mut (&file).take(first), &mut kept))
                .map_err(|e| self.read_error(e))?;
            let mut gone = self.copy_kept(&mut file, first, written, &named, &mut kept)?;
            let mut kept = kept
                .into_inner()
                .map_err(|e| self.write_error(e.into_error()))?;
            kept.sync_all().map_err(|e| self.write_error(e))?;
            #[cfg(test)]
            tests::between_the_copies();
            // The letters written meanwhile, under the lock until the rename (this
            // process's writers', and the file's lock for other processes': theirs wait,
            // then find the path renamed over, and open the new file).
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            file.lock().map_err(|e| self.read_error(e))?;
            let opened = file.metadata().map_err(|e| self.read_error(e))?;
            // Moved away meanwhile (a `deskhook dead-letters replay` renames it, and the
            // letters given up since are in a new file at the path): the rename would
            // put the moved letters back over the new ones.
            if !is_at(&self.path, &opened) {
                return Err(Error::DeadLettersMoved {
                    path: self.path.clone(),
                });
            }
            // Cut shorter since the first copy (another process's failed append cut back what
            // it had written, after this delete measured): the first copy holds letters that
            // were never written, or part of one.
            if opened.len() < written {
                return Err(self.read_error(std::io::Error::other(format!(
                    "the file was cut to {} bytes while a delete copied its first {written}; \
                     nothing was deleted: try again",
                    opened.len()
                ))));
            }
            gone += self.copy_kept(&mut file, written, opened.len(), &named, &mut kept)?;
            kept.sync_all().map_err(|e| self.write_error(e))?;
            // The copy gets the file's mode (letters hold the events' bodies: a file
            // made readable by its owner only stays so).
            std::fs::set_permissions(&temp, opened.permissions())
                .map_err(|e| self.write_error(e))?;
            std::fs::rename(&temp, &self.path).map_err(|e| self.write_error(e))?;
            Ok(gone)
        })();
        if rewritten.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        rewritten
    }

    /// Copies the lines of `file` between `from` and `to` to `kept`, but those `named`; how
    /// many it left out.
    fn copy_kept(
        &self,
        file: &mut File,
        from: u64,
        to: u64,
        named: &impl Fn(&[u8]) -> bool,
        kept: &mut impl Write,
    ) -> Result<usize, Error> {
        file.seek(SeekFrom::Start(from))
            .map_err(|e| self.read_error(e))?;
        let mut lines = BufReader::new(file.take(to.saturating_sub(from)));
        let mut line = Vec::new();
        let mut gone = 0;
        while self.read_line(&mut lines, &mut line)? {
            if named(&line) {
                gone += 1;
            } else {
                kept.write_all(&line).map_err(|e| self.write_error(e))?;
            }
        }
        Ok(gone)
    }

    /// The name of a delete's copy, beside the file: `<file>.rewrite-<pid>-<n>-<random>`,
    /// one per delete. Two processes deleting letters at once each copy to a file of their
    /// own: with one name, the second removed the first's copy and made its own there, and
    /// the first renamed that half-made copy over the file. Now the first rename wins and
    /// the other delete fails as for a file moved away. The random part keeps apart two
    /// processes of one pid (each container's first process is pid 1). A copy is removed
    /// when its delete fails; one of a process killed during a delete is left, and can be
    /// removed.
    fn rewrite_path(&self) -> PathBuf {
        use std::hash::BuildHasher as _;
        static DELETES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = DELETES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Seeded from the system's randomness, once a process (then stepped a hasher).
        let random = std::hash::RandomState::new().hash_one((n, std::time::SystemTime::now()));
        let mut temp = self.path.clone().into_os_string();
        temp.push(format!(
            ".rewrite-{}-{n}-{:08x}",
            std::process::id(),
            random as u32
        ));
        PathBuf::from(temp)
    }

    /// Reads the next line of `lines` into `line` (its break included); `false` at the end.
    fn read_line(&self, lines: &mut impl BufRead, line: &mut Vec<u8>) -> Result<bool, Error> {
        line.clear();
        let read = lines.read_until(b'\n', line);
        Ok(read.map_err(|e| self.read_error(e))? > 0)
    }
}

/// Whether `path` names the file whose metadata is `opened` (not one put in its place).
#[cfg(unix)]
fn is_at(path: &Path, opened: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).is_ok_and(|at| at.dev() == opened.dev() && at.ino() == opened.ino())
}

#[cfg(not(unix))]
fn is_at(path: &Path, _opened: &std::fs::Metadata) -> bool {
    path.exists()
}

/// The key of a dead letter file's line: a hash of its bytes.
fn line_key(line: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    line.hash(&mut hasher);
    format!("f{:016x}", hasher.finish())
}

/// A page of the dead letters of the file at `path`, newest first, as a running sink's
/// [`DeadLetters::list`](crate::delivery::DeadLetters::list) gives them: for a tool that
/// reads the file while its sink runs, or after it stopped. The page is read from the end
/// of the file; a filter reads the few fields it looks at of each letter it passes over. A
/// line that is not a letter is logged and left out; a file that does not exist has none.
/// It measures the file under the writers' lock ([`open_dead_letters_locked`]), waiting for
/// one writing (an append, a delete's last copy: moments): a caller holding that lock must
/// let go of it first.
///
/// # Errors
///
/// [`Error::Read`] when the file cannot be read.
pub fn read_dead_letter_page(
    path: impl AsRef<Path>,
    query: &crate::delivery::DeadLetterQuery,
) -> Result<crate::delivery::DeadLetterPage, Error> {
    let log = DeadLetterLog::new(path.as_ref().to_path_buf());
    crate::delivery::letters::page(log.newest_first(query)?, query)
}

/// Reads every dead letter of a file.
///
/// # Errors
///
/// [`Error::Read`] when the file cannot be read; [`Error::DeadLetter`] naming the line that is
/// not a dead letter.
pub fn read_dead_letters(path: impl AsRef<Path>) -> Result<Vec<DeadLetter>, Error> {
    let path = path.as_ref();
    let open_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(open_error)?);
    let mut letters = Vec::new();
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        // Bytes, not text: a line cut inside a character is a cut line, not a file that
        // cannot be read.
        if file.read_until(b'\n', &mut line).map_err(open_error)? == 0 {
            break;
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let whole = line.ends_with(b"\n");
        match serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(&line)) {
            Ok(letter) => letters.push(letter),
            // A last line cut short by a crash while it was written (writers end each
            // letter with a line break): skip it, say so, and keep the letters before it
            // usable.
            Err(e) if !whole => log::warn!(
                target: deskhook::LOG_TARGET,
                "{}:{n}: the last line is cut short ({e}); skipped",
                path.display(),
            ),
            Err(e) => {
                // A line cut short by a crash, with letters written after it: only the
                // operator can say what it was.
                let fix = if e.is_eof() || std::str::from_utf8(&line).is_err() {
                    " (cut short, by a crash while it was written?): move that line to \
                     another file, and run again"
                } else {
                    ""
                };
                return Err(Error::DeadLetter {
                    path: path.to_path_buf(),
                    line: n,
                    message: format!("{e}{fix}"),
                });
            }
        }
    }
    Ok(letters)
}

#[cfg(test)]
pub(crate) mod tests;
