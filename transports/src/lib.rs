//! Sinks for [deskhook](https://docs.rs/deskhook): where emitted helpdesk events go.
//!
//! Libraries call `deskhook::emit`; the application picks its sinks here, one cargo feature
//! per medium, and hands them to a `deskhook::Dispatcher`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use deskhook_transports::file::FileSink;
//!
//! let dispatcher = deskhook::Dispatcher::builder()
//!     .sink("file", FileSink::new(dir.path().join("events.jsonl"))?)
//!     .build();
//! deskhook::set_dispatcher(dispatcher)?;
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! - `file` (default): [`file::FileSink`], the JSON Lines log. No extra dependency.
//!
//! # Log levels
//!
//! Records go to the `log` crate under the target `deskhook`: `warn` when a background flush
//! or a rotation of the file log fails (the event itself is still written or reported to
//! the dispatcher, which counts it).

mod error;
#[cfg(feature = "file")]
pub mod file;

pub use error::Error;

/// The README's Rust snippets, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
