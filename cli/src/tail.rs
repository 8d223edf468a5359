//! `deskhook tail`: print a file log one line per event.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;

/// Print a deskhook file log one line per event: time, action, ticket code, subject.
///
/// Control characters in codes and subjects are escaped. Without --json, a line that is not
/// a log line is reported on stderr with its number and skipped; the command then exits 1
/// at the end (without --follow); so is a line over 64 MiB, with or without --json. A
/// dead-letter file is refused at its first line, pointing to `deskhook dead-letters list`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The log file (JSON Lines, as written by the file sink).
    file: PathBuf,
    /// Keep reading as the log grows, across rotations, until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Pass each line through unchanged instead of summarizing it.
    #[arg(long)]
    json: bool,
    /// Start with the last N lines of the file rather than its first (0: only lines written
    /// from now on, with --follow).
    #[arg(long, short = 'n', value_name = "N")]
    lines: Option<usize>,
    /// How often to look for new lines with --follow, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, hide = true)]
    poll_ms: u64,
    /// How long a file moved away by a rotator is still read with --follow, in
    /// milliseconds after its last new line (see `MOVED_IDLE`).
    #[arg(long, value_name = "MS", default_value_t = MOVED_IDLE.as_millis() as u64, hide = true)]
    moved_idle_ms: u64,
}

/// How long `tail --follow` reads a file moved away by an outside rotator after its last new
/// line: the file sink notices the move within a second, and writes to the moved file until
/// then.
const MOVED_IDLE: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
struct Line<'a> {
    ts: jiff::Timestamp,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct LineEvent {
    ticket: LineTicket,
}

#[derive(Deserialize)]
struct LineTicket {
    code: String,
    subject: String,
}

struct Tail {
    /// The file read, at the path (or one rotated between two looks).
    file: Reading,
    /// A file an outside rotator moved away, still read for lines written to it before the
    /// writer noticed, and when it last grew.
    moved: Option<(Reading, std::time::Instant)>,
    bad_lines: u64,
    json: bool,
    tz: jiff::tz::TimeZone,
    /// The longest line read ([`MAX_LINE`]); a longer one is skipped as bad.
    max_line: u64,
}

/// The longest line `tail` reads: far more than a file log's line with the largest body a
/// sink takes, so that a file that is not a log (or `/dev/zero`) cannot take all the memory.
const MAX_LINE: u64 = 64 * 1024 * 1024;

/// What [`Tail::fill_after_line_end`] found.
enum Fill {
    /// Bytes to read, or nothing to check.
    Read,
    /// Nothing after the place: the file has not grown.
    Nothing,
    /// The byte before the place no longer ends a line: the file was truncated.
    Truncated,
}

/// A file being read: its path, where the reading is, and the number of its last line.
struct Reading {
    path: PathBuf,
    reader: BufReader<File>,
    pos: u64,
    line_no: u64,
    /// Lines passed over at the start ([`Reading::start_at_last`]): the first read is line
    /// `skipped + 1`.
    skipped: u64,
    /// In a line over the longest read, which is being read past.
    skipping: bool,
}

fn open(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| format!("cannot open log file '{}': {e}", path.display()))
}

impl Reading {
    /// The file at `path`, from its start.
    fn open(path: &Path) -> Result<Reading, String> {
        Ok(Reading {
            path: path.to_path_buf(),
            reader: BufReader::new(open(path)?),
            pos: 0,
            line_no: 0,
            skipped: 0,
            skipping: false,
        })
    }

    /// Moves to the start of the file's last `n` lines (a last one still being written
    /// counts), or leaves it at its start when it has no more; the lines passed over are
    /// counted, for the numbers of bad lines. Reads the whole file once.
    fn start_at_last(&mut self, n: usize) -> Result<(), String> {
        let failed = |e: io::Error| format!("cannot read '{}': {e}", self.path.display());
        // Where each of the last `n` lines starts, and how many lines started in all.
        let mut starts = std::collections::VecDeque::with_capacity(n.min(4096) + 1);
        let (mut lines, mut pos, mut at_start) = (0u64, 0u64, true);
        // Where the last line starts: with n = 0 and a last line still being written, the
        // reading starts there, not in its middle.
        let mut last = 0u64;
        let mut chunk = vec![0u8; 64 * 1024];
        let file = self.reader.get_mut();
        file.seek(SeekFrom::Start(0)).map_err(failed)?;
        loop {
            let read = file.read(&mut chunk).map_err(failed)?;
            if read == 0 {
                break;
            }
            for (at, byte) in (pos..).zip(&chunk[..read]) {
                if at_start {
                    lines += 1;
                    last = at;
                    starts.push_back(at);
                    if starts.len() > n {
                        starts.pop_front();
                    }
                }
                at_start = *byte == b'\n';
            }
            pos += read as u64;
        }
        // Where to start, and how many lines come before it.
        let (first, skipped) = match starts.front() {
            Some(first) => (*first, lines - starts.len() as u64),
            None if at_start => (pos, lines),
            None => (last, lines - 1),
        };
        self.reader.seek(SeekFrom::Start(first)).map_err(failed)?;
        self.pos = first;
        self.skipped = skipped;
        self.line_no = self.skipped;
        Ok(())
    }
}

impl Tail {
    /// Prints every complete line there is; a partial last line is left for later when
    /// `follow` is set.
    fn drain(&mut self, out: &mut impl Write, follow: bool) -> Result<(), String> {
        let mut buf = Vec::new();
        loop {
            if self.file.skipping && !self.skip_rest()? {
                return Ok(());
            }
            if follow {
                match self.fill_after_line_end()? {
                    Fill::Read => {}
                    // Nothing more now: another read would not be checked.
                    Fill::Nothing => return Ok(()),
                    // Truncated (copytruncate) since the look: read from the start.
                    Fill::Truncated => {
                        self.reopen()?;
                        continue;
                    }
                }
            }
            buf.clear();
            // One byte more than the longest: a last line of exactly that length (no line
            // break yet) is not taken for a longer one.
            let n = (&mut self.file.reader)
                .take(self.max_line + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| format!("cannot read '{}': {e}", self.file.path.display()))?;
            if n == 0 {
                return Ok(());
            }
            if n as u64 > self.max_line && buf.last() != Some(&b'\n') {
                self.file.pos += n as u64;
                self.file.line_no += 1;
                self.bad_lines += 1;
                eprintln!(
                    "deskhook: {}:{}: a line of more than {} bytes is not a deskhook log \
                     line; skipped",
                    self.file.path.display(),
                    self.file.line_no,
                    self.max_line
                );
                self.file.skipping = true;
                continue;
            }
            if follow && buf.last() != Some(&b'\n') {
                // A line still being written: read it again when it is whole.
                self.file
                    .reader
                    .seek(SeekFrom::Start(self.file.pos))
                    .map_err(|e| format!("cannot read '{}': {e}", self.file.path.display()))?;
                return Ok(());
            }
            self.file.pos += n as u64;
            self.file.line_no += 1;
            if self.file.line_no == self.file.skipped + 1
                && !self.json
                && is_dead_letter(trim_newline(&buf))
            {
                return Err(format!(
                    "'{}' is a dead-letter file, not a file log: `deskhook dead-letters list \
                     --file {0}` lists it",
                    self.file.path.display()
                ));
            }
            self.print(&buf, out).map_err(crate::stdout_error)?;
        }
    }

    /// Reads past the rest of a line too long to read: `true` once past its end, `false`
    /// at the end of the file (the line is still being written).
    fn skip_rest(&mut self) -> Result<bool, String> {
        let mut chunk = Vec::new();
        loop {
            chunk.clear();
            let n = (&mut self.file.reader)
                .take(64 * 1024)
                .read_until(b'\n', &mut chunk)
                .map_err(|e| format!("cannot read '{}': {e}", self.file.path.display()))?;
            self.file.pos += n as u64;
            if n == 0 {
                return Ok(false);
            }
            if chunk.last() == Some(&b'\n') {
                self.file.skipping = false;
                return Ok(true);
            }
        }
    }

    fn print(&mut self, raw: &[u8], out: &mut impl Write) -> io::Result<()> {
        let text = trim_newline(raw);
        if text.is_empty() {
            return Ok(());
        }
        if self.json {
            out.write_all(text)?;
            return out.write_all(b"\n");
        }
        match serde_json::from_slice::<Line<'_>>(text).and_then(|line| {
            let (code, subject) = ticket_of(line.event)?;
            Ok((line, code, subject))
        }) {
            Ok((line, code, subject)) => {
                let time = line
                    .ts
                    .to_zoned(self.tz.clone())
                    .strftime("%Y-%m-%d %H:%M:%S");
                // Subjects come from outside (e-mail): escape control characters so that a
                // subject cannot break the line or drive the terminal.
                writeln!(
                    out,
                    "{time}  {:<8} {:<10} {}",
                    crate::printable(&line.action),
                    crate::printable(&code),
                    crate::printable(&subject)
                )
            }
            Err(e) => {
                self.bad_lines += 1;
                eprintln!(
                    "deskhook: {}:{}: not a deskhook log line ({e}); skipped",
                    self.file.path.display(),
                    self.file.line_no
                );
                Ok(())
            }
        }
    }

    /// Whether the file at the path is no longer the one being read, or was truncated.
    fn rotated(&self) -> bool {
        let Ok(now) = std::fs::metadata(&self.file.path) else {
            return false; // between the rename and the new file: look again later
        };
        let Ok(ours) = self.file.reader.get_ref().metadata() else {
            return true;
        };
        now.len() < self.file.pos || !same_file(&now, &ours) || !self.ends_a_line()
    }

    /// Fills the reader's buffer for the next line with one read from the byte before the
    /// reading's place, which must still end a line ([`ends_a_line`](Tail::ends_a_line),
    /// asked in the same read as what follows): a file truncated and written again between
    /// the look for a rotation and this read would otherwise have the middle of a new line
    /// read as a line.
    fn fill_after_line_end(&mut self) -> Result<Fill, String> {
        let pos = self.file.pos;
        if self.file.skipping || pos == 0 || !self.file.reader.buffer().is_empty() {
            return Ok(Fill::Read);
        }
        let failed = |e: io::Error| format!("cannot read '{}': {e}", self.file.path.display());
        let reader = &mut self.file.reader;
        // A seek drops what the reader holds: the fill below is one read from `pos - 1`.
        reader.seek(SeekFrom::Start(pos - 1)).map_err(failed)?;
        let filled = reader.fill_buf().map_err(failed)?;
        match (filled.first(), filled.len()) {
            (Some(b'\n'), 1) => {
                reader.consume(1);
                Ok(Fill::Nothing)
            }
            (Some(b'\n'), _) => {
                reader.consume(1);
                Ok(Fill::Read)
            }
            _ => Ok(Fill::Truncated),
        }
    }

    /// Whether the byte before the reading's place still ends a line: a file truncated
    /// (logrotate's `copytruncate`) and written past that place within one poll has other
    /// bytes there. (In a line too long to read, the place is inside it: not asked.)
    #[cfg(unix)]
    fn ends_a_line(&self) -> bool {
        use std::os::unix::fs::FileExt as _;
        if self.file.skipping {
            return true;
        }
        let Some(before) = self.file.pos.checked_sub(1) else {
            return true;
        };
        let mut byte = [0];
        self.file
            .reader
            .get_ref()
            .read_at(&mut byte, before)
            .map_or(true, |n| n == 1 && byte[0] == b'\n')
    }

    #[cfg(not(unix))]
    fn ends_a_line(&self) -> bool {
        true
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.file = Reading::open(&self.file.path)?;
        Ok(())
    }

    /// The files rotated after the one being read and before the one now at the path, oldest
    /// first: when two rotations came within one poll, the file read is now `PATH.k` and
    /// `PATH.k-1` … `PATH.1` came between. None when it is not among the numbered files
    /// (removed, or renamed by another scheme).
    fn rotated_since(&self) -> Vec<PathBuf> {
        let Ok(ours) = self.file.reader.get_ref().metadata() else {
            return Vec::new();
        };
        let numbered = |n: usize| {
            let mut name = self.file.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        for n in 1.. {
            match std::fs::metadata(numbered(n)) {
                Ok(meta) if same_file(&meta, &ours) => {
                    return (1..n).rev().map(numbered).collect();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Vec::new()
    }

    /// Follows a rotation: prints the lines of the file read (written before the rename,
    /// they are still there), opens the files rotated since and the one at the path (all at
    /// once, before any is read), then prints those rotated since and reads on at the path.
    /// A file moved away is kept and read on for a while (see [`Tail::read_moved`]):
    /// a rotator other than deskhook's own moves it while the writer may still write to it.
    fn follow_rotation(&mut self, out: &mut impl Write) -> Result<(), String> {
        let truncated = std::fs::metadata(&self.file.path)
            .ok()
            .zip(self.file.reader.get_ref().metadata().ok())
            .is_some_and(|(now, ours)| same_file(&now, &ours));
        // Truncated (copytruncate): what is at the reading's place now is new, and read
        // from the start.
        if truncated {
            return self.reopen();
        }
        // One moved before is done with: this file is newer.
        if let Some((earlier, _)) = self.moved.take() {
            let followed = std::mem::replace(&mut self.file, earlier);
            let finished = self.drain(out, false);
            self.file = followed;
            finished?;
        }
        self.drain(out, true)?;
        let between = self.rotated_since();
        let followed = self.file.path.clone();
        // Each opened at once, before any is read: a rotation while they are printed moves
        // them on, and the file at the path would then be one rotation later still.
        let opened: Vec<_> = between.iter().map(|path| Reading::open(path)).collect();
        let at_path = match Reading::open(&followed) {
            Ok(file) => file,
            // Between a rename and the new file: looked at again at the next round.
            Err(_) if std::fs::symlink_metadata(&followed).is_err() => return Ok(()),
            Err(e) => return Err(e),
        };
        let moved = std::mem::replace(&mut self.file, at_path);
        for file in opened {
            // Rotated on again meanwhile: its lines are past reading here, said.
            match file {
                Ok(file) => {
                    let at_path = std::mem::replace(&mut self.file, file);
                    let printed = self.drain(out, false);
                    self.file = at_path;
                    printed?;
                }
                Err(e) => eprintln!("deskhook: {e}; its lines are not shown"),
            }
        }
        self.moved = Some((moved, std::time::Instant::now()));
        Ok(())
    }

    /// Prints the new lines of the file an outside rotator moved away (the writer goes on
    /// writing to it until it notices); lets it go once it has had none for `idle`, its
    /// last line printed even if cut short.
    fn read_moved(&mut self, out: &mut impl Write, idle: Duration) -> Result<(), String> {
        let Some((mut moved, grew)) = self.moved.take() else {
            return Ok(());
        };
        std::mem::swap(&mut self.file, &mut moved);
        let before = self.file.pos;
        let read = self.drain(out, true);
        let (now_pos, mut grew) = (self.file.pos, grew);
        if now_pos > before {
            grew = std::time::Instant::now();
        }
        let done = grew.elapsed() >= idle;
        let finished = if done && read.is_ok() {
            self.drain(out, false)
        } else {
            read
        };
        std::mem::swap(&mut self.file, &mut moved);
        if !done {
            self.moved = Some((moved, grew));
        }
        finished
    }
}

/// Whether `line` is a dead letter (what `tail` is sometimes given by mistake: a file of
/// JSON Lines too).
fn is_dead_letter(line: &[u8]) -> bool {
    serde_json::from_slice::<Line<'_>>(line).is_err()
        && serde_json::from_slice::<deskhook_transports::delivery::DeadLetter>(line).is_ok()
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.created().ok() == b.created().ok()
}

/// The ticket code and subject of a Zenlix event; for the other formats, the ticket (or
/// chat) the event is about and `-`.
fn ticket_of(event: &serde_json::value::RawValue) -> Result<(String, String), serde_json::Error> {
    let zenlix = serde_json::from_str::<LineEvent>(event.get());
    if let Ok(LineEvent { ticket }) = zenlix {
        return Ok((ticket.code, ticket.subject));
    }
    let no_headers: Vec<(String, String)> = Vec::new();
    match deskhook::receive(
        &no_headers,
        event.get().as_bytes(),
        &deskhook::ReceiveOptions::unauthenticated(),
    ) {
        Ok(received) => Ok((received.ordering_key().to_string(), "-".to_owned())),
        // The Zenlix error says best what a line lacks.
        Err(_) => zenlix.map(|e| (e.ticket.code, e.ticket.subject)),
    }
}

fn trim_newline(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let mut tail = Tail {
        file: Reading::open(&args.file)?,
        moved: None,
        bad_lines: 0,
        json: args.json,
        tz: jiff::tz::TimeZone::system(),
        max_line: MAX_LINE,
    };
    if let Some(n) = args.lines {
        tail.file.start_at_last(n)?;
    }
    let mut out = io::stdout().lock();
    tail.drain(&mut out, args.follow)?;
    out.flush().map_err(crate::stdout_error)?;
    if !args.follow {
        return Ok(if tail.bad_lines == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let poll = Duration::from_millis(args.poll_ms.max(1));
    let moved_idle = Duration::from_millis(args.moved_idle_ms);
    loop {
        std::thread::sleep(poll);
        tail.read_moved(&mut out, moved_idle)?;
        if tail.rotated() {
            tail.follow_rotation(&mut out)?;
        }
        tail.drain(&mut out, true)?;
        out.flush().map_err(crate::stdout_error)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `start_at_last(n)` starts, and the number it gives the line there.
    fn start(text: &str, n: usize) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut reading = Reading::open(&path).unwrap();
        reading.start_at_last(n).unwrap();
        (reading.pos, reading.skipped + 1)
    }

    /// The last lines' start, a last line still being written counted as one: with n = 0
    /// too, so that following it does not read it from its middle once it is whole.
    #[test]
    fn the_last_lines_start_where_they_start() {
        assert_eq!(start("a\nbb\nccc\n", 2), (2, 2));
        assert_eq!(start("a\nbb\nccc\n", 0), (9, 4));
        assert_eq!(start("a\nbb\nccc\n", 9), (0, 1));
        assert_eq!(start("a\nbb\ncc", 1), (5, 3));
        assert_eq!(start("a\nbb\ncc", 0), (5, 3));
        assert_eq!(start("", 0), (0, 1));
        assert_eq!(start("", 3), (0, 1));
    }

    /// A tail of the file at `path`, read to its end.
    fn tail_of(path: &Path) -> Tail {
        let mut tail = Tail {
            file: Reading::open(path).unwrap(),
            moved: None,
            bad_lines: 0,
            // Lines as they are.
            json: true,
            tz: jiff::tz::TimeZone::UTC,
            max_line: MAX_LINE,
        };
        tail.drain(&mut Vec::new(), true).unwrap();
        tail
    }

    /// Output that runs `first` before its first write (a rotation as the lines print).
    struct Rotating<F: FnMut()>(Option<F>, Vec<u8>);

    impl<F: FnMut()> Write for Rotating<F> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(mut first) = self.0.take() {
                first();
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Two rotations between two looks, and a third while the files rotated between are
    /// printed: every file's lines are printed, in order (the file at the path was opened
    /// after the third, and the one it moved to `.1` never read).
    #[test]
    fn a_rotation_while_the_rotated_files_print_loses_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let numbered = |n: usize| dir.path().join(format!("log.jsonl.{n}"));
        std::fs::write(&path, "a\n").unwrap();
        let mut tail = tail_of(&path);
        std::fs::rename(&path, numbered(2)).unwrap();
        std::fs::write(numbered(1), "b\n").unwrap();
        std::fs::write(&path, "c\n").unwrap();
        let mut out = Rotating(
            Some(|| {
                std::fs::rename(numbered(2), numbered(3)).unwrap();
                std::fs::rename(numbered(1), numbered(2)).unwrap();
                std::fs::rename(&path, numbered(1)).unwrap();
                std::fs::write(&path, "d\n").unwrap();
            }),
            Vec::new(),
        );
        assert!(tail.rotated());
        tail.follow_rotation(&mut out).unwrap();
        tail.drain(&mut out, true).unwrap();
        // The next look.
        assert!(tail.rotated());
        tail.follow_rotation(&mut out).unwrap();
        tail.drain(&mut out, true).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.1), "b\nc\nd\n");
    }

    /// Between a rotation's rename and the new file, the next look waits for the file
    /// rather than fail.
    #[test]
    fn a_rotation_caught_before_its_new_file_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "a\n").unwrap();
        let mut tail = tail_of(&path);
        std::fs::rename(&path, dir.path().join("log.jsonl.1")).unwrap();
        let mut out = Vec::new();
        tail.follow_rotation(&mut out).unwrap();
        std::fs::write(&path, "b\n").unwrap();
        assert!(tail.rotated());
        tail.follow_rotation(&mut out).unwrap();
        tail.drain(&mut out, true).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "b\n");
    }

    #[test]
    fn a_line_over_the_longest_is_skipped_even_while_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        // A line of 64 bytes is read; longer ones are not.
        let longest = "z".repeat(64);
        let text = format!("a\n{longest}\n{}\nb\n{}", "x".repeat(100), "y".repeat(70));
        std::fs::write(&path, text).unwrap();
        let mut tail = Tail {
            file: Reading::open(&path).unwrap(),
            moved: None,
            bad_lines: 0,
            json: true,
            tz: jiff::tz::TimeZone::UTC,
            max_line: 64,
        };
        let mut out = Vec::new();
        tail.drain(&mut out, true).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), format!("a\n{longest}\nb\n"));
        assert_eq!(tail.bad_lines, 2);
        // Inside the long line, the file is not taken for one truncated and written again.
        assert!(!tail.rotated());
        // The end of the long line written since, then a line: that line only.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"yyy\nc\n").unwrap();
        tail.drain(&mut out, true).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("a\n{longest}\nb\nc\n")
        );
        assert_eq!((tail.bad_lines, tail.file.line_no), (2, 6));
    }
}
