//! `deskhook dead-letters`: list the events that could not be delivered, and replay them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use deskhook_transports::delivery::{
    DEFAULT_DEAD_LETTER_PATH, DeadLetter, DeadLetterPage, DeadLetterQuery, MAX_PAGE, StoredLetter,
    read_dead_letter_page, read_dead_letters,
};

mod replay;
/// List the events that could not be delivered, or deliver them again.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    List(ListArgs),
    Replay(ReplayArgs),
}

/// Print one line per dead letter, newest first, then how many there are.
///
/// Each line: when it was given up (UTC), the endpoint, the action, the ticket, the attempts
/// made, the last status or error, and the reason:
///
///   2026-11-21T23:40:13.581Z  crm  create   E3XK  1 attempt(s)  500  gave up after 1 attempt(s)
///
/// The filters narrow the list as the console's do; --limit shows the newest letters only
/// and prints the --before that shows the next ones. The file is read from its end, a page
/// at a time, so a short list of a large file is quick, and memory holds a page at most.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Read the dead letters of this spool directory instead of a file (it works while the
    /// spool is in use).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "config"])]
    spool: Option<PathBuf>,
    /// The dead-letter file. Defaults to the --config's spool when it has a [spool] section
    /// (its dead letters are there), else its [delivery] dead_letter_path, else
    /// deskhook-dead-letters.jsonl in the working directory.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// A deskhook.toml, to find the dead letters (--file names them itself).
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    config: Option<PathBuf>,
    /// Only this endpoint's letters.
    #[arg(long, value_name = "NAME")]
    endpoint: Option<String>,
    /// Only this tenant's letters.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Only this event type's letters (create, usedesk.comment_created, …).
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Only this ticket's letters (its ordering key: the Zenlix code, the Usedesk ticket
    /// id, the iQChannels chat id).
    #[arg(long, value_name = "KEY")]
    ticket: Option<String>,
    /// Only the letters of this event (its webhook-id).
    #[arg(long = "id", value_name = "ID")]
    event_id: Option<String>,
    /// Show at most this many letters, the newest.
    #[arg(long, value_name = "N", value_parser = crate::flags::at_least(1))]
    limit: Option<u64>,
    /// Only letters older than this (the cursor a --limit'ed list prints at its end).
    #[arg(long, value_name = "CURSOR", value_parser = cursor)]
    before: Option<u64>,
    /// Print each letter as the JSON line it is stored as (a dead-letter file's format),
    /// and the count on stderr, so that stdout is JSON Lines only.
    #[arg(long)]
    json: bool,
}

/// Deliver the dead letters again; keep in the file only those that fail again.
///
/// Each letter goes to the endpoint of the same name in --config (at its URL there now),
/// with the same webhook-id and body, signed anew. The file is first renamed to
/// PATH.replaying; letters that fail again are appended to a new PATH as the delivery engine
/// gives them up, and PATH.replaying is deleted at the end. If the command is killed midway,
/// PATH.replaying still holds every letter of the run: running replay again picks it up
/// (with anything new in PATH) and sends them all again, those already delivered included;
/// receivers drop the duplicates by webhook-id. A sink may go on writing to PATH meanwhile.
/// One replay of a file runs at a time: it holds a lock on PATH.replaying.lock (left in
/// place, empty), and a second one stops at once.
///
/// A progress bar shows on stderr when it is a terminal; each attempt prints a line as in
/// `deskhook send`. Exits 0 if every letter was delivered (those of endpoints --config does
/// not name included, unless --endpoint chose others).
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// Replay the dead letters of this spool directory instead of a file: they go back to
    /// the spool's pending events and are delivered as `deskhook drain` does; those that
    /// fail again are dead letters of the spool again.
    #[arg(long, value_name = "DIR", conflicts_with = "file")]
    spool: Option<PathBuf>,
    /// The dead-letter file. Defaults to the --config's spool when it has a [spool] section
    /// (replayed as with --spool), else its [delivery] dead_letter_path, else
    /// deskhook-dead-letters.jsonl in the working directory.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// The deskhook.toml whose [[endpoint]]s (matched by name) and [delivery] settings to
    /// deliver with.
    #[arg(long, value_name = "FILE", required = true)]
    config: PathBuf,
    /// Replay only the letters of this endpoint (of --config); repeat it for several. The
    /// other letters stay as they are.
    #[arg(long = "endpoint", value_name = "NAME")]
    endpoints: Vec<String>,
    #[command(flatten)]
    guard: crate::flags::Guard,
    #[command(flatten)]
    attempts: crate::flags::Attempts,
}

/// The level of the log records this command shows on stderr: `warn` for `list`, which
/// says there that it left out a line of the file that is not a dead letter (a line cut
/// short, or written by hand); `error` for `replay`, whose own lines say what it did (and
/// which refuses such a file).
pub(crate) fn log_level(args: &Args) -> log::LevelFilter {
    match args.command {
        Command::List(_) => log::LevelFilter::Warn,
        Command::Replay(_) => log::LevelFilter::Error,
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::List(args) => list(args),
        Command::Replay(args) => replay::replay(args),
    }
}

/// The dead-letter file: `--file`, else the configuration's, else the default.
fn dead_letter_path(file: Option<PathBuf>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(file) = file {
        return Ok(file);
    }
    match config {
        Some(path) => {
            let config = crate::send::load_config(path)?;
            Ok(config
                .delivery_config()
                .map_err(|e| e.to_string())?
                .dead_letter_path)
        }
        None => Ok(PathBuf::from(DEFAULT_DEAD_LETTER_PATH)),
    }
}

/// Every letter of the file; none when it does not exist.
fn read_letters(path: &Path) -> Result<Vec<DeadLetter>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    read_dead_letters(path).map_err(|e| read_error(path, e))
}

/// A read of the dead-letter file at `path` that failed, said as the commands say it.
fn read_error(path: &Path, e: deskhook_transports::Error) -> String {
    match e {
        deskhook_transports::Error::Read { source, .. }
        | deskhook_transports::Error::Open { source, .. } => {
            format!(
                "cannot read dead-letter file '{}': {source}",
                path.display()
            )
        }
        other => other.to_string(),
    }
}

/// The last status or the error of a letter.
fn last_result(letter: &DeadLetter) -> String {
    match (letter.last_status, &letter.last_error) {
        (Some(status), _) => status.to_string(),
        (None, Some(error)) => error.clone(),
        (None, None) => "-".to_owned(),
    }
}

/// The spool of `config` (its `[spool]` section), when it has one: a sink with a spool keeps
/// its dead letters there, not in a file.
fn configured_spool(config: &Path) -> Result<Option<PathBuf>, String> {
    let config = crate::send::load_config(config)?;
    Ok(config
        .spool()
        .map_err(|e| e.to_string())?
        .map(|spool| spool.dir().to_path_buf()))
}

impl ListArgs {
    /// The query of the filters, `--before` and a page of `page` letters.
    fn query(&self, page: usize) -> DeadLetterQuery {
        DeadLetterQuery {
            endpoint: self.endpoint.clone(),
            tenant: self.tenant.clone(),
            event_type: self.event_type.clone(),
            event_id: self.event_id.clone(),
            ticket: self.ticket.clone(),
            before: self.before,
            limit: page,
        }
    }

    /// The filters given, as the summary names them ("" when none).
    fn filters(&self) -> String {
        let named = [
            ("endpoint", &self.endpoint),
            ("tenant", &self.tenant),
            ("type", &self.event_type),
            ("ticket", &self.ticket),
            ("id", &self.event_id),
        ];
        let given: Vec<String> = named
            .iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v:?}")))
            .collect();
        if given.is_empty() {
            String::new()
        } else {
            format!(" of {}", given.join(", "))
        }
    }
}

/// Parses `--before`: the number a `--limit`'ed list printed, said so when it is not one.
fn cursor(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| {
        "not a cursor; give the number that a --limit'ed list printed after \"--before\"".to_owned()
    })
}

fn list(mut args: ListArgs) -> Result<ExitCode, String> {
    if args.file.is_none()
        && let Some(config) = &args.config
    {
        args.spool = configured_spool(config)?;
    }
    let (place, missing, source) = match &args.spool {
        Some(dir) => (
            format!("spool {}", dir.display()),
            "",
            Source::Spool(dir.clone()),
        ),
        None => {
            let path = dead_letter_path(args.file.clone(), args.config.as_deref())?;
            let missing = file_note(&path)?;
            (path.display().to_string(), missing, Source::File(path))
        }
    };
    let mut out = std::io::stdout().lock();
    let mut shown: u64 = 0;
    let mut query = args.query(MAX_PAGE);
    // The cursor of the letters past --limit, if any.
    let mut more = None;
    loop {
        let left = args.limit.map_or(u64::MAX, |limit| limit - shown);
        query.limit = usize::try_from(left).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = source.page(&query)?;
        print_letters(&mut out, &page.items, args.json)?;
        shown += page.items.len() as u64;
        match page.next {
            Some(next) if args.limit.is_some_and(|limit| shown >= limit) => {
                more = Some(next);
                break;
            }
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    out.flush().map_err(crate::stdout_error)?;
    let mut summary = format!(
        "{shown} dead letter(s){} in {place}{missing}",
        args.filters()
    );
    if let Some(next) = more {
        summary.push_str(&format!(
            ", the newest {shown}; older ones: --before {next}"
        ));
    }
    if args.json {
        eprintln!("{summary}");
    } else {
        writeln!(out, "{summary}")
            .and_then(|()| out.flush())
            .map_err(crate::stdout_error)?;
    }
    // Letters an interrupted replay set aside are in neither list nor file: said, so that
    // they are not taken for gone.
    if let Source::File(path) = &source {
        let replaying = replay::replaying_path(path);
        let aside = read_letters(&replaying).map_or(0, |letters| letters.len());
        if aside > 0 {
            eprintln!(
                "deskhook: {aside} more dead letter(s) are in '{}', set aside by a replay that \
                 did not finish: run `deskhook dead-letters replay` again to finish it",
                replaying.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `list` reads the dead letters.
enum Source {
    File(PathBuf),
    Spool(PathBuf),
}

impl Source {
    fn page(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, String> {
        match self {
            Source::File(path) => {
                read_dead_letter_page(path, query).map_err(|e| read_error(path, e))
            }
            Source::Spool(dir) => deskhook_transports::spool::read_dead_letter_page(dir, query)
                .map_err(|e| e.to_string()),
        }
    }
}

/// Prints `letters`: a line each, their endpoints in a column as wide as the longest, or
/// each as its JSON line.
fn print_letters(out: &mut impl Write, letters: &[StoredLetter], json: bool) -> Result<(), String> {
    let width = letters
        .iter()
        .map(|l| l.letter.endpoint.len())
        .max()
        .unwrap_or(0);
    for StoredLetter { letter, .. } in letters {
        if json {
            // Made first, so that a closed stdout is told as such (`stdout_error`).
            let line = serde_json::to_string(letter).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(crate::stdout_error)?;
            continue;
        }
        // A letter's fields come from the event and from the receiver's answer.
        let line = format!(
            "{}  {:<width$}  {:<8} {}  {} attempt(s)  {}  {}",
            letter.failed_at,
            letter.endpoint,
            letter.action,
            letter.ticket,
            letter.attempts,
            last_result(letter),
            letter.reason
        );
        writeln!(out, "{}", crate::printable(&line)).map_err(crate::stdout_error)?;
    }
    Ok(())
}

/// What to add to "no dead letters in PATH" when the file is not there: a file not there yet
/// is a sink that has not dead-lettered anything, said so; a folder not there is a path
/// mistyped, an error.
fn file_note(path: &Path) -> Result<&'static str, String> {
    if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(format!(
            "no folder '{}' for the dead-letter file '{}': check the path",
            folder.display(),
            path.display()
        ));
    }
    Ok(if path.exists() {
        ""
    } else {
        " (the file does not exist)"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_that_is_not_one_says_where_cursors_come_from() {
        assert_eq!(cursor("1732912345678"), Ok(1_732_912_345_678));
        let err = cursor("2026-12-01").unwrap_err();
        assert!(err.contains("a --limit'ed list printed"), "{err}");
    }
}
