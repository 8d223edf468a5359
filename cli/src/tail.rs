//! `deskhook tail`: print a file log one line per event.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;

/// Print a deskhook file log one line per event: time, action, ticket code, subject.
///
/// Control characters in codes and subjects are escaped. Without --json, a line that is not
/// a log line is reported on stderr with its number and skipped; the command then exits 1
/// at the end (without --follow). A dead-letter file is refused at its first line, pointing
/// to `deskhook dead-letters list`.
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
    /// How often to look for new lines with --follow, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, hide = true)]
    poll_ms: u64,
}

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
    path: PathBuf,
    reader: BufReader<File>,
    pos: u64,
    line_no: u64,
    bad_lines: u64,
    json: bool,
    tz: jiff::tz::TimeZone,
}

fn open(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| format!("cannot open log file '{}': {e}", path.display()))
}

impl Tail {
    /// Prints every complete line there is; a partial last line is left for later when
    /// `follow` is set.
    fn drain(&mut self, out: &mut impl Write, follow: bool) -> Result<(), String> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| format!("cannot read '{}': {e}", self.path.display()))?;
            if n == 0 {
                return Ok(());
            }
            if follow && buf.last() != Some(&b'\n') {
                // A line still being written: read it again when it is whole.
                self.reader
                    .seek(SeekFrom::Start(self.pos))
                    .map_err(|e| format!("cannot read '{}': {e}", self.path.display()))?;
                return Ok(());
            }
            self.pos += n as u64;
            self.line_no += 1;
            if self.line_no == 1 && !self.json && is_dead_letter(trim_newline(&buf)) {
                return Err(format!(
                    "'{}' is a dead-letter file, not a file log: `deskhook dead-letters list \
                     --file {0}` lists it",
                    self.path.display()
                ));
            }
            self.print(&buf, out).map_err(crate::stdout_error)?;
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
                    self.path.display(),
                    self.line_no
                );
                Ok(())
            }
        }
    }

    /// Whether the file at the path is no longer the one being read, or was truncated.
    fn rotated(&self) -> bool {
        let Ok(now) = std::fs::metadata(&self.path) else {
            return false; // between the rename and the new file: look again later
        };
        let Ok(ours) = self.reader.get_ref().metadata() else {
            return true;
        };
        now.len() < self.pos || !same_file(&now, &ours)
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.reader = BufReader::new(open(&self.path)?);
        self.pos = 0;
        self.line_no = 0;
        Ok(())
    }

    /// The files rotated after the one being read and before the one now at the path, oldest
    /// first: when two rotations came within one poll, the file read is now `PATH.k` and
    /// `PATH.k-1` … `PATH.1` came between. None when it is not among the numbered files
    /// (removed, or renamed by another scheme).
    fn rotated_since(&self) -> Vec<PathBuf> {
        let Ok(ours) = self.reader.get_ref().metadata() else {
            return Vec::new();
        };
        let numbered = |n: usize| {
            let mut name = self.path.clone().into_os_string();
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

    /// Follows a rotation: finishes the file read (lines written before the rename are
    /// still there), prints the files rotated since, then opens the one at the path.
    fn follow_rotation(&mut self, out: &mut impl Write) -> Result<(), String> {
        self.drain(out, false)?;
        let followed = self.path.clone();
        for between in self.rotated_since() {
            self.path = between;
            self.reopen()?;
            self.drain(out, false)?;
        }
        self.path = followed;
        self.reopen()
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
        reader: BufReader::new(open(&args.file)?),
        path: args.file,
        pos: 0,
        line_no: 0,
        bad_lines: 0,
        json: args.json,
        tz: jiff::tz::TimeZone::system(),
    };
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
    loop {
        std::thread::sleep(poll);
        if tail.rotated() {
            tail.follow_rotation(&mut out)?;
        }
        tail.drain(&mut out, true)?;
        out.flush().map_err(crate::stdout_error)?;
    }
}
