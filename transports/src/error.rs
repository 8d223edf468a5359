//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the transports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A log file could not be opened for appending. Check that its directory exists (or let
    /// the sink create it) and is writable, and that the path is not a directory.
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing to a log file failed, usually a full disk. The event was not logged.
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { path, source } => write!(
                f,
                "cannot open log file '{}' for appending: {source} (choose a path in a \
                 writable directory; it must not be a directory itself)",
                path.display()
            ),
            Error::Write { path, source } => {
                write!(f, "cannot write to log file '{}': {source}", path.display())
            }
            Error::Rotate { path, source } => {
                write!(f, "cannot rotate log file '{}': {source}", path.display())
            }
            Error::Config(message) => write!(f, "invalid configuration: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. }
            | Error::Write { source, .. }
            | Error::Rotate { source, .. } => Some(source),
            Error::Config(_) => None,
        }
    }
}
