//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the transports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file (the file log, the dead letters) could not be opened. Check that its directory
    /// exists (or let the sink create it) and is writable, and that the path is not a
    /// directory.
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file could not be read (the dead letters listed, replayed or deleted; a
    /// configuration file): check that it exists and that the process may read it.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing to a file failed, usually a full disk. The event is not in the file, or not
    /// whole: a flush that failed part way keeps the rest of the buffer, and the next flush
    /// that succeeds completes the line (a file log then has the event although its send
    /// failed).
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A delete of dead letters found their file moved or replaced while it copied it (by
    /// `deskhook dead-letters replay`, which moves it away): nothing was deleted. List the
    /// letters again and delete them there.
    DeadLettersMoved {
        /// The dead-letter file.
        path: PathBuf,
    },
    /// Rotating a log file failed; the sink writes on to the current file.
    Rotate {
        /// The live file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A setting is out of range; the message says which and what to use instead.
    Config(String),
    /// An event was not queued: an endpoint's queue is full, the memory budget is spent,
    /// or the event needs more memory than the whole budget (then it went to the dead
    /// letters, with a spool). For calls that answer for one event: a test event, a replayed
    /// dead letter, [`send_with_receipt`](crate::delivery::DeliverySink::send_with_receipt).
    /// The message names the endpoint, why, and whether the event was dead-lettered. A full
    /// queue or a spent budget passes: try again once the endpoint has delivered some.
    NotQueued(String),
    /// A payload template cannot be used (it does not compile, names an unknown preset,
    /// lacks a variable its preset needs), or an event cannot be rendered with it. The
    /// message names the template, the line and column, and what to change.
    Template(String),
    /// An endpoint URL cannot be used: a scheme other than `http`/`https` (or `http` while
    /// `https_only` is set), credentials in the URL (move them to a header), or no host. Fix
    /// the URL in the configuration.
    InvalidUrl {
        /// The URL cut down to scheme, host and port (user-info, path and query may carry
        /// secrets and are left out; "/…" marks that something was).
        url: String,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// The SSRF guard refused the endpoint's address: it is loopback, private, link-local,
    /// a cloud metadata endpoint or similar. The refusal names the setting that would allow
    /// it (`allow_private` or `allow_cidrs` on the endpoint), or says that nothing can.
    #[cfg(feature = "_http")]
    Refused(crate::guard::Refusal),
    /// An endpoint's settings cannot work (no name, 0 workers, a bad header, …); the message
    /// says what to change.
    InvalidEndpoint {
        /// The endpoint's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A flush or shutdown ended with events still queued or in flight: the receiver is slow
    /// or down, or retries are scheduled past the deadline. At shutdown they are written to
    /// the dead letters (with a spool, they stay in it).
    ///
    /// A flush stops waiting before its timeout when all that is left is `held`: events for
    /// endpoints that cannot send before the deadline, so that one paused or long-dead
    /// endpoint does not make every shutdown wait its whole timeout.
    Undelivered {
        /// Events waiting.
        queued: usize,
        /// Events being attempted.
        in_flight: usize,
        /// Of the queued events, those for endpoints that could make no attempt before the
        /// deadline: paused, waiting past it for a retry, a breaker's cool-down, a
        /// receiver's `Retry-After` or a rate limit's next token, or held in a spool behind
        /// an event of a type this build does not know. Counted only when they were all
        /// that was left, nothing in flight (else 0).
        held: usize,
        /// The endpoints holding the `held` events, by name.
        held_by: Vec<String>,
        /// How long the caller allowed.
        timeout: std::time::Duration,
    },
    /// A line of a dead-letter file is not a dead letter.
    DeadLetter {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration file is invalid; the position and the message say where and what to
    /// write instead. For an endpoint with several settings at fault, the position is the
    /// first's, and the message goes on with a line for each other, at its own position.
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The spool's database could not be opened, read or written: it is damaged, not a
    /// deskhook spool, or its directory is not usable. The message names the file and says
    /// what to do.
    Spool {
        /// The spool's database file (or directory).
        path: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },
    /// Another process (or another `Spool` in this one) has the spool open. One spool
    /// directory serves one process at a time: stop the other one, or give this one a
    /// directory of its own.
    SpoolLocked {
        /// The spool directory.
        path: PathBuf,
        /// Who holds it, from the process id in the lock file: "another process (process
        /// 123)", "another process" (the file says nothing), or "this process already" with
        /// what to do about it.
        holder: String,
    },
    /// NATS could not be reached, or JetStream refused or did not answer a request, while the
    /// sink started (or a relay connected). The message says what was asked and why it failed;
    /// check the URL, that the server runs with JetStream on (`nats-server -js`) and the
    /// credentials.
    #[cfg(feature = "nats")]
    Nats {
        /// The server URL, without credentials.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The JetStream stream exists with a setting deskhook cannot work with (another
    /// retention, subjects that do not cover deskhook's, another storage, sealed). Change the
    /// stream (`nats stream edit`, or delete it and let the sink create it) or give deskhook a
    /// stream of its own (`StreamSettings::name`).
    #[cfg(feature = "nats")]
    StreamConflict {
        /// The stream's name.
        stream: String,
        /// The conflicting setting, as JetStream names it (`retention`, `subjects`, …).
        setting: &'static str,
        /// Its value in the existing stream.
        found: String,
        /// What deskhook needs.
        expected: String,
    },
    /// The spool reached its disk-usage limit; the event was not accepted. Deliver the
    /// backlog (is an endpoint down? `deskhook spool stats`, `deskhook drain`) or raise the
    /// limit (`SpoolBuilder::max_size`).
    SpoolFull {
        /// The spool directory.
        path: PathBuf,
        /// Bytes in use.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// No endpoint of the sink has this name (a registry call, a dead letter to replay).
    /// Check the name; the error suggests the closest one registered.
    UnknownEndpoint {
        /// The name asked for.
        name: String,
        /// The registered name closest to it, if one is close.
        suggestion: Option<String>,
    },
    /// An endpoint of this name exists already (an add that must not replace one: the
    /// admin API's create, the console's form). Pick another name, or change that one.
    EndpointExists {
        /// The name.
        name: String,
    },
    /// An endpoint was changed, removed or made again by someone else between reading it
    /// and changing it: nothing was changed.
    EndpointChanged {
        /// The name.
        name: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { path, source } => write!(
                f,
                "cannot open '{}' for appending: {source} (choose a path in a writable \
                 directory; it must not be a directory itself)",
                path.display()
            ),
            Error::Read { path, source } => {
                write!(f, "cannot read '{}': {source}", path.display())
            }
            Error::Write { path, source } => {
                write!(f, "cannot write to '{}': {source}", path.display())
            }
            Error::Rotate { path, source } => {
                write!(f, "cannot rotate log file '{}': {source}", path.display())
            }
            Error::DeadLettersMoved { path } => write!(
                f,
                "the dead-letter file '{}' was moved or replaced while the delete copied it (by \
                 `deskhook dead-letters replay`?); nothing was deleted: list the letters again \
                 and delete them there",
                path.display()
            ),
            Error::Config(message) => write!(f, "invalid configuration: {message}"),
            Error::Template(message) | Error::NotQueued(message) => f.write_str(message),
            Error::InvalidUrl { url, reason } => {
                write!(f, "invalid endpoint URL '{url}': {reason}")
            }
            #[cfg(feature = "_http")]
            Error::Refused(refusal) => write!(f, "{refusal}"),
            Error::InvalidEndpoint { name, message } => {
                write!(f, "endpoint '{name}': {message}")
            }
            Error::Undelivered {
                queued,
                in_flight,
                held,
                held_by,
                timeout,
            } => {
                // To the nearest millisecond: what is left of a deadline is rarely round.
                let ms = timeout.as_nanos().saturating_add(500_000) / 1_000_000;
                let timeout = deskhook::policy::format_duration(std::time::Duration::from_millis(
                    u64::try_from(ms).unwrap_or(u64::MAX),
                ));
                if *held == 0 {
                    return write!(
                        f,
                        "{queued} event(s) queued and {in_flight} in flight after waiting \
                         {timeout}"
                    );
                }
                write!(
                    f,
                    "{held} event(s) queued for endpoints that cannot send within {timeout} \
                     (paused, waiting past it for a retry, a cool-down, a Retry-After or a \
                     rate limit, or, in a spool, behind an event of a type only a newer \
                     deskhook knows): "
                )?;
                const NAMED: usize = 5;
                for (i, name) in held_by.iter().take(NAMED).enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}'{name}'")?;
                }
                if held_by.len() > NAMED {
                    write!(f, " and {} more", held_by.len() - NAMED)?;
                }
                write!(f, "; resume them, or let their retries come")
            }
            Error::DeadLetter {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: not a dead letter: {message}", path.display()),
            Error::ConfigFile {
                path,
                line,
                column,
                message,
            } => write!(f, "{}:{line}:{column}: {message}", path.display()),
            Error::Spool { path, message } => write!(f, "spool '{}': {message}", path.display()),
            Error::SpoolLocked { path, holder } => write!(
                f,
                "spool '{}' is in use by {holder}; stop it, or give this process a spool \
                 directory of its own",
                path.display()
            ),
            #[cfg(feature = "nats")]
            Error::Nats { url, message } => write!(f, "NATS at {url}: {message}"),
            #[cfg(feature = "nats")]
            Error::StreamConflict {
                stream,
                setting,
                found,
                expected,
            } => write!(
                f,
                "JetStream stream '{stream}' exists with {setting} {found}, but deskhook needs \
                 {expected}: change the stream's {setting}, delete the stream so that deskhook \
                 creates it, or give deskhook another stream name"
            ),
            Error::SpoolFull { path, used, limit } => write!(
                f,
                "spool '{}' is full ({} MiB used, limit {} MiB); the event was not accepted: \
                 deliver the backlog (see `deskhook spool stats`), replay its dead letters \
                 (`deskhook dead-letters replay --spool`) or delete them (in the console or \
                 its admin API), or raise max_size_mb",
                path.display(),
                used / (1024 * 1024),
                limit / (1024 * 1024)
            ),
            Error::EndpointExists { name } => write!(
                f,
                "an endpoint is already named '{name}'; pick another name, or change that one"
            ),
            Error::EndpointChanged { name } => write!(
                f,
                "endpoint '{name}' was changed, removed or made again since it was read; \
                 nothing was saved: read it again and make the change on that"
            ),
            Error::UnknownEndpoint { name, suggestion } => {
                write!(f, "no endpoint is named '{name}'")?;
                match suggestion {
                    Some(close) => write!(f, " (did you mean '{close}'?)"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Error {
    /// The text of the error to give as a reason inside another message: as its
    /// `Display`, without the "invalid configuration: " of [`Error::Config`].
    #[cfg(feature = "nats")]
    pub(crate) fn reason(&self) -> String {
        match self {
            Error::Config(message) => message.clone(),
            e => e.to_string(),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. }
            | Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Rotate { source, .. } => Some(source),
            Error::Config(_)
            | Error::DeadLettersMoved { .. }
            | Error::Template(_)
            | Error::NotQueued(_)
            | Error::InvalidUrl { .. }
            | Error::InvalidEndpoint { .. }
            | Error::Undelivered { .. }
            | Error::DeadLetter { .. }
            | Error::ConfigFile { .. }
            | Error::Spool { .. }
            | Error::SpoolLocked { .. }
            | Error::SpoolFull { .. }
            | Error::UnknownEndpoint { .. }
            | Error::EndpointExists { .. }
            | Error::EndpointChanged { .. } => None,
            #[cfg(feature = "nats")]
            Error::Nats { .. } | Error::StreamConflict { .. } => None,
            // Transparent: the refusal is the whole message.
            #[cfg(feature = "_http")]
            Error::Refused(_) => None,
        }
    }
}

#[cfg(feature = "_http")]
impl From<crate::guard::Refusal> for Error {
    fn from(refusal: crate::guard::Refusal) -> Self {
        Error::Refused(refusal)
    }
}

/// Where a relative `path` was looked for, for an error about it: `""` for an absolute one,
/// else ` (relative to the working directory '…')`.
#[cfg(feature = "_http")]
pub(crate) fn relative_to_cwd(path: &std::path::Path) -> String {
    if path.is_absolute() {
        return String::new();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!(
            " (relative to the working directory '{}'; give an absolute path)",
            cwd.display()
        ),
        Err(_) => " (relative to the working directory; give an absolute path)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_of_a_flush_timeout_is_said_to_the_millisecond() {
        let waited = |timeout: std::time::Duration, held: usize| {
            Error::Undelivered {
                queued: 3,
                in_flight: 0,
                held,
                held_by: vec!["crm".to_owned()],
                timeout,
            }
            .to_string()
        };
        let left = std::time::Duration::from_nanos(9_999_986_709);
        assert!(
            waited(left, 3).starts_with(
                "3 event(s) queued for endpoints that cannot send \
                                               within 10s"
            ),
            "{}",
            waited(left, 3)
        );
        let left = std::time::Duration::from_nanos(1_234_400_000);
        assert!(
            waited(left, 0).ends_with("after waiting 1234ms"),
            "{}",
            waited(left, 0)
        );
    }
}
