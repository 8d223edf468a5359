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
    /// Writing to a file failed, usually a full disk. The event was not written.
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
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
    /// the dead letters.
    Undelivered {
        /// Events waiting.
        queued: usize,
        /// Events being attempted.
        in_flight: usize,
        /// How long was waited.
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
    /// write instead.
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
            Error::Write { path, source } => {
                write!(f, "cannot write to '{}': {source}", path.display())
            }
            Error::Rotate { path, source } => {
                write!(f, "cannot rotate log file '{}': {source}", path.display())
            }
            Error::Config(message) => write!(f, "invalid configuration: {message}"),
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
                timeout,
            } => write!(
                f,
                "{queued} event(s) queued and {in_flight} in flight after waiting {timeout:?}"
            ),
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
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. }
            | Error::Write { source, .. }
            | Error::Rotate { source, .. } => Some(source),
            Error::Config(_)
            | Error::InvalidUrl { .. }
            | Error::InvalidEndpoint { .. }
            | Error::Undelivered { .. }
            | Error::DeadLetter { .. }
            | Error::ConfigFile { .. } => None,
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
