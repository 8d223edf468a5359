//! The spool's settings: `[spool]` in `deskhook.toml`, and what [`SpoolBuilder`] sets.
//!
//! [`SpoolBuilder`]: super::SpoolBuilder

use std::path::PathBuf;
use std::time::Duration;

use super::SpoolBuilder;

/// How SQLite syncs a commit to disk; `"full"` or `"normal"` in `deskhook.toml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is synced: an accepted event survives a power cut. The default.
    #[default]
    Full,
    /// Commits are synced at WAL checkpoints only: an accepted event survives the process
    /// being killed, but the last commits can be lost in a power cut or OS crash. Faster.
    Normal,
}

/// When `emit` returns on a spooled sink; `"wait"` or `"receipt"` in `deskhook.toml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Durability {
    /// Once the event is durable. The default.
    #[default]
    Wait,
    /// At once; `send_with_receipt` says when the event is durable. A failed write is
    /// counted as dropped and logged.
    Receipt,
}

/// The settings of a spool.
///
/// This struct is also the `[spool]` table of `deskhook.toml`: each field is a key of the
/// same name (durations written `"2ms"`), `dir` is required there, and a key left out keeps
/// the default given here. In code, [`Spool::builder`](super::Spool::builder) starts from
/// the defaults and its setters change these fields.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// The spool's directory; created if missing.
    pub dir: PathBuf,
    /// How commits are synced. Defaults to [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// When `emit` returns. Defaults to [`Durability::Wait`].
    pub durability: Durability,
    /// The longest the writer waits for a batch to fill once concurrent emits were seen; it
    /// bounds the latency group commit adds. Defaults to 2 ms; at most [`MAX_WAIT_LIMIT`].
    #[serde(deserialize_with = "deskhook::policy::deserialize_duration")]
    pub max_wait: Duration,
    /// Most emits written in one transaction; 1 syncs every event on its own (for
    /// comparison). Defaults to 1024.
    pub max_batch: usize,
    /// The disk-usage limit in bytes: past it, new events are refused with
    /// [`Error::SpoolFull`](crate::Error::SpoolFull). Delivered rows make room again; dead
    /// letters keep their bodies in the spool and count towards the limit until they are
    /// replayed, deleted or expire ([`dead_letter_retention`](Self::dead_letter_retention))
    /// (a full spool drops, logged whole and counted, the letters of events it never
    /// held, such as those over `max_payload`, rather than grow past the limit); the attempt
    /// log counts too, but gives way: a full spool drops its oldest attempts before it refuses
    /// an event. The pages in use are counted, not the write-ahead log (cut back to 64 MiB
    /// after each checkpoint), and a batch written together may go past the limit by its
    /// own size. Defaults to 1 GiB.
    /// In `deskhook.toml` the key is `max_size_mb`, in MiB.
    #[serde(rename = "max_size_mb", deserialize_with = "mebibytes")]
    pub max_size: u64,
    /// Most rows per endpoint held in memory, not counting those held back behind a retry
    /// (up to twice as many in all). An endpoint that cannot send for a while holds none
    /// (see the [module docs](crate::spool)). Defaults to 1000.
    pub memory_window: usize,
    /// How long what cannot go must wait for its rows in memory to be let go (read back
    /// when it can go): a ticket whose next attempt is at least this far off, and the
    /// tickets with nothing in flight of an endpoint whose breaker is open, or a receiver's
    /// `Retry-After` holds, for at least this long (a paused endpoint lets go of those at
    /// once). Shorter saves memory and reads rows more often (a ticket read back goes on
    /// from the attempts it made, written to disk yet or not). See the
    /// [module docs](crate::spool). Defaults to 10 s.
    #[serde(deserialize_with = "deskhook::policy::deserialize_duration")]
    pub rest_after: Duration,
    /// How long a dead letter is kept: older ones are deleted (at most a minute late, each
    /// deletion logged with its count), so that an endpoint dead for weeks does not fill the
    /// spool with letters until it refuses new events. Replay or export what you need
    /// within it; give a longer time (`"365d"`) to keep them longer. Defaults to 30 days.
    #[serde(deserialize_with = "deskhook::policy::deserialize_duration")]
    pub dead_letter_retention: Duration,
}

/// A size given in MiB, as bytes.
fn mebibytes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    use serde::Deserialize as _;
    Ok(u64::deserialize(deserializer)?.saturating_mul(1024 * 1024))
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::new(),
            synchronous: Synchronous::Full,
            durability: Durability::Wait,
            max_wait: Duration::from_millis(2),
            max_batch: 1024,
            max_size: 1 << 30,
            memory_window: 1000,
            rest_after: DEFAULT_REST_AFTER,
            dead_letter_retention: DEFAULT_DEAD_LETTER_RETENTION,
        }
    }
}

/// How long dead letters are kept when [`SpoolConfig::dead_letter_retention`] is not set:
/// 30 days.
pub const DEFAULT_DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long what cannot go waits before its rows in memory are let go when
/// [`SpoolConfig::rest_after`] is not set: 10 s.
pub const DEFAULT_REST_AFTER: Duration = Duration::from_secs(10);

/// The longest [`SpoolConfig::max_wait`] may be.
pub const MAX_WAIT_LIMIT: Duration = Duration::from_secs(1);

impl SpoolConfig {
    /// The first setting that cannot work: its name and what to write instead.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.dir.as_os_str().is_empty() {
            return Err((
                "dir",
                "the spool needs its directory: write dir = \"/var/lib/helpdesk/deskhook-spool\""
                    .into(),
            ));
        }
        if self.max_size == 0 {
            return Err((
                "max_size_mb",
                "max_size_mb = 0 would refuse every event; give the disk budget in MiB, e.g. 1024"
                    .into(),
            ));
        }
        if self.max_wait > MAX_WAIT_LIMIT {
            return Err((
                "max_wait",
                format!(
                    "max_wait = \"{}\" would hold every emit that long; give at most \"{}\" \
                     (the default is \"2ms\")",
                    deskhook::policy::format_duration(self.max_wait),
                    deskhook::policy::format_duration(MAX_WAIT_LIMIT)
                ),
            ));
        }
        if self.dead_letter_retention.is_zero() {
            return Err((
                "dead_letter_retention",
                "dead_letter_retention = \"0s\" would delete every dead letter as it is \
                 written; give how long to keep them, e.g. \"30d\" (the default)"
                    .into(),
            ));
        }
        for (name, value) in [
            ("max_batch", self.max_batch),
            ("memory_window", self.memory_window),
        ] {
            if value == 0 {
                return Err((
                    name,
                    format!("{name} = 0 cannot work; give at least 1 (or leave it out)"),
                ));
            }
        }
        Ok(())
    }

    /// A builder with these settings, to open the spool with.
    pub fn builder(self) -> SpoolBuilder {
        SpoolBuilder {
            config: self,
            ignore_backoff: false,
            existing: false,
            keep_registry: false,
        }
    }
}
