//! Dead letters: events that could not be delivered, kept in a JSON Lines file so that they
//! can be inspected and replayed (`deskhook dead-letters list|replay`).

mod backward;

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use backward::{Backward, Line};

use super::letters::{DeadLetterQuery, LetterFields, StoredLetter};
use super::{EventData, Job, Lane, now_rfc3339};
use crate::error::Error;

/// The dead-letter file used when none is configured, relative to the working directory.
pub const DEFAULT_DEAD_LETTER_PATH: &str = "deskhook-dead-letters.jsonl";

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
    /// Why the event was given up: "gave up after 8 attempts", "400 Bad Request", ….
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
/// deletion.
#[derive(Debug)]
pub(crate) struct DeadLetterLog {
    path: PathBuf,
    /// Serializes writers, so that lines never interleave.
    lock: Mutex<()>,
}

impl DeadLetterLog {
    pub(crate) fn new(path: PathBuf) -> DeadLetterLog {
        DeadLetterLog {
            path,
            lock: Mutex::new(()),
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
            std::fs::create_dir_all(parent).map_err(|source| Error::Open {
                path: self.path.clone(),
                source,
            })?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|source| Error::Open {
                path: self.path.clone(),
                source,
            })?;
        if bytes.is_empty() {
            return Ok(());
        }
        let write = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        let len = file.metadata().map_err(write)?.len();
        // A line cut short by an earlier failed write (or by another writer) ends here,
        // rather than gluing this letter to it.
        let mut last = [b'\n'];
        if len > 0 {
            file.seek(SeekFrom::End(-1)).map_err(write)?;
            file.read_exact(&mut last).map_err(write)?;
        }
        let written = if last[0] == b'\n' {
            file.write_all(bytes)
        } else {
            file.write_all(b"\n").and_then(|()| file.write_all(bytes))
        };
        if let Err(source) = written {
            // What was written of it goes, so that the file holds whole letters only.
            let _ = file.set_len(len);
            return Err(write(source));
        }
        Ok(())
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
                    log::error!(
                        target: deskhook::LOG_TARGET,
                        "dead letter {} ({} on ticket {}) for endpoint '{}' could not be \
                         written ({e}) and is dropped: {}",
                        letter.id,
                        letter.action,
                        letter.ticket,
                        letter.endpoint,
                        letter.reason
                    );
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
            log::error!(
                target: deskhook::LOG_TARGET,
                "{err}; the dead letter is not in the file and is counted as dropped; it \
                 follows whole: {}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

impl DeadLetterLog {
    /// The file as far as it was written when called, and that length; `None` when there
    /// is no file. The length is taken under the writers' lock, so that it ends after a
    /// whole letter; the file is read without it (a letter written meanwhile goes after
    /// that length, and a delete's rename leaves the open file whole), so that a large file
    /// read by the console does not hold up the workers that write letters.
    fn open_written(&self) -> Result<Option<(File, u64)>, Error> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.unreadable(source)),
        };
        let len = file.metadata().map_err(|e| self.unreadable(e))?.len();
        Ok(Some((file, len)))
    }

    fn unreadable(&self, source: std::io::Error) -> Error {
        Error::Open {
            path: self.path.clone(),
            source,
        }
    }

    fn unwritable(&self, source: std::io::Error) -> Error {
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
            .map(|line| line.map_err(|e| self.unreadable(e))))
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

    /// Rewrites the file without the letters named by `keys` (a new file renamed over the
    /// old one, so that a crash leaves one or the other); returns how many went. The file
    /// is streamed through, a line at a time, and nothing is written until a letter named
    /// is found: deleting letters already gone (a form sent twice) only reads the file.
    pub(crate) fn delete(&self, keys: &[String]) -> Result<usize, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let named = |line: &[u8]| {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            !content.trim_ascii().is_empty() && keys.contains(line_key(content).as_str())
        };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => return Err(self.unreadable(source)),
        };
        let mut lines = BufReader::new(file);
        let mut line = Vec::new();
        // Where the first letter named starts.
        let mut first = 0;
        loop {
            if !self.read_line(&mut lines, &mut line)? {
                return Ok(0);
            }
            if named(&line) {
                break;
            }
            first += line.len() as u64;
        }
        let mut temp = self.path.clone().into_os_string();
        temp.push(".rewrite");
        let temp = PathBuf::from(temp);
        let copied = File::create(&temp)
            .map_err(|e| self.unwritable(e))
            .and_then(|kept| {
                let mut kept = std::io::BufWriter::new(kept);
                // What came before the first letter named, then what follows it.
                lines
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| std::io::copy(&mut lines.by_ref().take(first), &mut kept))
                    .and_then(|_| lines.seek(SeekFrom::Start(first + line.len() as u64)))
                    .map_err(|e| self.unreadable(e))?;
                let mut gone = 1;
                while self.read_line(&mut lines, &mut line)? {
                    if named(&line) {
                        gone += 1;
                    } else {
                        kept.write_all(&line).map_err(|e| self.unwritable(e))?;
                    }
                }
                // Synced before the rename, so that a crash leaves the old file or the new
                // one whole.
                let kept = kept
                    .into_inner()
                    .map_err(|e| self.unwritable(e.into_error()))?;
                kept.sync_all().map_err(|e| self.unwritable(e))?;
                Ok(gone)
            })
            .and_then(|gone| {
                std::fs::rename(&temp, &self.path).map_err(|e| self.unwritable(e))?;
                Ok(gone)
            });
        if copied.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        copied
    }

    /// Reads the next line of `lines` into `line` (its break included); `false` at the end.
    fn read_line(&self, lines: &mut BufReader<File>, line: &mut Vec<u8>) -> Result<bool, Error> {
        line.clear();
        let read = lines.read_until(b'\n', line);
        Ok(read.map_err(|e| self.unreadable(e))? > 0)
    }
}

/// The key of a dead letter file's line: a hash of its bytes.
fn line_key(line: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    line.hash(&mut hasher);
    format!("f{:016x}", hasher.finish())
}

/// Reads every dead letter of a file.
///
/// # Errors
///
/// [`Error::Open`] when the file cannot be read; [`Error::DeadLetter`] naming the line that is
/// not a dead letter.
pub fn read_dead_letters(path: impl AsRef<Path>) -> Result<Vec<DeadLetter>, Error> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut letters = Vec::new();
    let mut lines = BufReader::new(file).lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let line = line.map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(letter) => letters.push(letter),
            // A last line cut short by a crash while it was written: skip it, say so, and
            // keep the letters before it usable.
            Err(e) if lines.peek().is_none() && e.is_eof() => log::warn!(
                target: deskhook::LOG_TARGET,
                "{}:{}: the last line is cut short ({e}); skipped",
                path.display(),
                n + 1
            ),
            Err(e) => {
                return Err(Error::DeadLetter {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","endpoint":"crm","url":"http://x/","action":"create","ticket":"T","attempts":1,"last_status":500,"last_error":null,"reason":"r","failed_at":"2026-01-01T00:00:00Z","body":{{"a":1}}}}"#
        )
    }

    /// Every letter of `log`, newest first.
    fn newest(log: &DeadLetterLog) -> Vec<StoredLetter> {
        let all = DeadLetterQuery::new();
        let letters = log.newest_first(&all).unwrap();
        letters.map(Result::unwrap).collect()
    }

    /// The ids of `log`'s letters, oldest first.
    fn ids(log: &DeadLetterLog) -> Vec<String> {
        let mut ids: Vec<String> = newest(log).into_iter().map(|s| s.letter.id).collect();
        ids.reverse();
        ids
    }

    #[test]
    fn a_last_line_cut_short_is_skipped_and_others_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let whole = letter("one");
        std::fs::write(&path, format!("{whole}\n{}", &whole[..40])).unwrap();
        let letters = read_dead_letters(&path).unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].body.get(), r#"{"a":1}"#);

        std::fs::write(&path, format!("{}\n{whole}\n", &whole[..40])).unwrap();
        let err = read_dead_letters(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:1: not a dead letter", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_pretty_printed_body_stays_on_the_letters_line() {
        let body = raw_body(b"{\n  \"a\": \"x\\ny\",\r\n  \"b\": 1\n}");
        assert_eq!(body.get(), "{   \"a\": \"x\\ny\",    \"b\": 1 }");
        // Not JSON: kept as a string, its line break escaped.
        assert_eq!(raw_body(b"not\njson").get(), "\"not\\njson\"");
    }

    #[test]
    fn letters_written_at_once_go_in_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let log = DeadLetterLog::new(path.clone());
        // About 2.5 batches' worth.
        let big = format!("{{\"text\":\"{}\"}}", "x".repeat(8 * 1024));
        let letters: Vec<DeadLetter> = (0..320)
            .map(|n| {
                let mut letter: DeadLetter = serde_json::from_str(&letter(&n.to_string())).unwrap();
                letter.body = raw_body(big.as_bytes());
                letter
            })
            .collect();
        log.write_all(&letters);
        let listed = ids(&log);
        let expected: Vec<String> = (0..320).map(|n: u32| n.to_string()).collect();
        assert_eq!(listed, expected);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() > 2 * BATCH_BYTES && text.ends_with("}\n"));
    }

    #[test]
    fn a_letter_after_a_cut_line_is_written_and_listed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let whole = letter("one");
        // Left by a write that failed midway (a full disk).
        std::fs::write(&path, format!("{whole}\n{}", &whole[..40])).unwrap();
        let log = DeadLetterLog::new(path.clone());
        let next: DeadLetter = serde_json::from_str(&letter("two")).unwrap();
        log.write(&next);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with(&format!("\n{}\n", letter("two"))), "{text}");
        let listed = ids(&log);
        assert_eq!(listed, ["one", "two"], "the cut line hides neither");
    }

    /// The ids of a file's letters listed `limit` at a time from `before`, page by page.
    fn pages(log: &DeadLetterLog, limit: usize, before: Option<u64>) -> Vec<Vec<String>> {
        let mut query = DeadLetterQuery {
            limit,
            before,
            ..DeadLetterQuery::new()
        };
        let mut pages = Vec::new();
        loop {
            let page =
                super::super::letters::page(log.newest_first(&query).unwrap(), &query).unwrap();
            pages.push(page.items.into_iter().map(|s| s.letter.id).collect());
            match page.next {
                Some(next) => query.before = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_of_a_file_larger_than_a_block_give_every_letter_once_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        // About 190 bytes a letter: 3.5 blocks, with lines across the blocks' edges.
        let text: String = (0..1200).map(|n| letter(&n.to_string()) + "\n").collect();
        assert!(text.len() > 3 * backward::BLOCK);
        std::fs::write(&path, &text).unwrap();
        let log = DeadLetterLog::new(path);
        let pages = pages(&log, 50, None);
        assert_eq!(pages.len(), 24);
        let listed: Vec<String> = pages.concat();
        let expected: Vec<String> = (0..1200).rev().map(|n: u32| n.to_string()).collect();
        assert_eq!(listed, expected);
    }

    #[test]
    fn a_cursor_made_before_a_delete_shows_no_half_letter_and_loses_none_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        // Each letter longer than the one before.
        let id = |n: usize| format!("letter-{}", "x".repeat(n));
        let text: String = (0..10).map(|n| letter(&id(n)) + "\n").collect();
        std::fs::write(&path, &text).unwrap();
        let log = DeadLetterLog::new(path.clone());
        let all = newest(&log);
        // The page of the newest four was shown; then a letter older than them is deleted,
        // and the ones after it move back: the cursor now points inside the fourth.
        let cursor = all[3].position;
        assert_eq!(log.delete(&[all[7].key.clone()]).unwrap(), 1);
        // The line the cursor cuts is left out before it is parsed, not taken for a line
        // that is not a letter.
        for line in log.lines_before(Some(cursor)).unwrap() {
            let line = line.unwrap();
            let parsed = serde_json::from_slice::<DeadLetter>(&line.bytes);
            assert!(parsed.is_ok(), "{}", String::from_utf8_lossy(&line.bytes));
        }
        let after = pages(&log, 50, Some(cursor));
        let expected: Vec<String> = [5, 4, 3, 1, 0].into_iter().map(id).collect();
        assert_eq!(after, [expected]);
        assert!(!dir.path().join("dead.jsonl.rewrite").exists());
    }

    #[test]
    #[cfg(unix)]
    fn letters_by_key_come_oldest_first_and_a_delete_of_none_rewrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let text: String = (0..6).map(|n| letter(&n.to_string()) + "\n").collect();
        std::fs::write(&path, &text).unwrap();
        let log = DeadLetterLog::new(path.clone());
        let all = newest(&log);
        let keys = [all[4].key.clone(), all[0].key.clone(), all[2].key.clone()];
        let found: Vec<String> = log
            .by_key(&keys)
            .unwrap()
            .into_iter()
            .map(|s| s.letter.id)
            .collect();
        assert_eq!(found, ["1", "3", "5"]);

        // A rewrite would be renamed over the file: another inode.
        let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let before = inode();
        assert_eq!(log.delete(&["f0000000000000000".to_owned()]).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(inode(), before);
        assert!(!dir.path().join("dead.jsonl.rewrite").exists());
        assert_eq!(log.delete(&keys).unwrap(), 3);
        assert_eq!(ids(&log), ["0", "2", "4"]);
    }

    #[test]
    fn a_filter_pages_through_its_letters_only_escaped_names_and_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        // Every third letter is for an endpoint whose name needs escapes in JSON; a line
        // that is not a letter sits among them.
        let odd = "crm \"eu\" é";
        let mut text = String::new();
        for n in 0..1500 {
            let mut letter: DeadLetter = serde_json::from_str(&letter(&n.to_string())).unwrap();
            if n % 3 == 0 {
                letter.endpoint = odd.to_owned();
                letter.tenant = Some("acme\\1".to_owned());
            }
            text.push_str(&serde_json::to_string(&letter).unwrap());
            text.push('\n');
            if n == 700 {
                text.push_str("{\"id\":\"cut short\n");
            }
        }
        std::fs::write(&path, &text).unwrap();
        let log = DeadLetterLog::new(path);
        let mut query = DeadLetterQuery {
            endpoint: Some(odd.to_owned()),
            tenant: Some("acme\\1".to_owned()),
            limit: 100,
            ..DeadLetterQuery::new()
        };
        let mut listed = Vec::new();
        loop {
            let page =
                super::super::letters::page(log.newest_first(&query).unwrap(), &query).unwrap();
            listed.extend(page.items.into_iter().map(|s| s.letter.id));
            match page.next {
                Some(next) => query.before = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (0..1500)
            .rev()
            .filter(|n: &u32| n.is_multiple_of(3))
            .map(|n| n.to_string())
            .collect();
        assert_eq!(listed, expected);
        query.before = None;
        query.tenant = Some("acme".to_owned());
        assert_eq!(log.newest_first(&query).unwrap().count(), 0);
    }
}
