//! `deskhook.toml`: endpoints, delivery settings and the file log in one file.
//!
//! ```toml
//! [delivery]
//! queue_capacity = 10000          # events waiting per endpoint
//! overflow = "drop-newest"        # or "drop-oldest", or "block" (with block_timeout)
//! block_timeout = "100ms"
//! dead_letter_path = "/var/lib/helpdesk/dead-letters.jsonl"
//! breaker_failures = 10           # failures in a row that pause an endpoint (0: off)
//! breaker_cool_down = "30s"
//! retry_after_max = "1h"
//! shutdown_timeout = "5s"
//! max_payload = 1048576           # bytes
//! max_in_flight = 1024            # requests in flight over all endpoints
//! max_threads = 256               # worker threads of the blocking transport, at most
//! thread_idle_timeout = "10s"     # an idle worker thread ends after this (one stays)
//! max_queued_bytes = 268435456    # memory for queued events over all endpoints
//! attempt_log = 10000             # attempts kept for the console (0: none, nor in a spool)
//! attempt_retention = "7d"        # with a spool, how long its database keeps attempts
//! attempt_max_rows = 1000000      # with a spool, the most attempts its database keeps
//! metrics_per_endpoint = false    # an `endpoint` label on the metrics (feature `metrics`)
//!
//! [spool]                         # a durable outbox (feature `spool`); see deskhook_transports::spool
//! dir = "/var/lib/helpdesk/deskhook-spool"
//! synchronous = "full"            # or "normal"
//! durability = "wait"             # or "receipt"
//! max_wait = "2ms"
//! max_batch = 1024
//! max_size_mb = 1024
//! memory_window = 1000
//!
//! [file_log]
//! path = "/var/log/helpdesk/events.jsonl"
//! flush = "every-event"           # or "never", or an interval such as "1s"
//! rotate_bytes = 16777216
//! keep = 5
//!
//! [[endpoint]]
//! name = "crm"
//! url = "https://crm.example.com/hooks/helpdesk"
//! secret_env = "CRM_WEBHOOK_SECRET"   # or: secrets = ["whsec_…"]; during a rotation:
//! # secrets = ["whsec_new…", { secret = "whsec_old…", expires = "2026-12-01T00:00:00Z" }]
//! actions = ["create", "ok", "approve"] # or "*"; other formats: "usedesk.comment_created", "iqchannels.*"
//! headers = { Authorization = "Bearer …" }
//! timeout = "15s"
//! connect_timeout = "5s"
//! retry = "0s,5s,5m,30m,2h,5h,10h,10h"
//! allow_private = false
//! allow_cidrs = ["10.20.0.0/16"]
//! hub_signature = false
//! https_only = true
//! max_in_flight = 4               # requests in flight to this endpoint at most
//! tenant = "acme"                 # receives only the events emitted for tenant "acme"
//! rate_limit = "50/s"             # or "300/m", "5/10s"; waits hold no worker
//! rate_burst = 100                # defaults to the rate's count
//! ca_file = "/etc/helpdesk/internal-ca.pem" # trust only this CA for this endpoint
//!
//! [[endpoint]]
//! name = "support-chat"
//! url = "https://api.telegram.org/bot<token>/sendMessage"
//! template = "telegram"           # a preset: slack, teams, mattermost, discord, telegram;
//! # or a template's text: template = '{"text": "{{ label }}: {{ subject }}"}';
//! # or template_file = "/etc/helpdesk/crm.json.j2"
//! template_vars = { chat_id = "-1001234567890", lang = "ru" }
//! # template_content_type = "text/plain"   # application/json by default
//! secrets = ["whsk_…"]            # ed25519: receivers verify with the whpk_ key alone
//! ```
//!
//! Templates are described in [`template`](crate::template).
//!
//! Unknown keys, bad URLs, unknown actions and event types (with a "did you mean"), bad
//! durations, short secrets and missing environment variables are refused with the file, line
//! and column.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deskhook::policy::{BreakerPolicy, OverflowPolicy, deserialize_duration};
use serde::Deserialize;
use toml::Spanned;

use crate::delivery::{DeliveryConfig, Endpoint, EndpointSpec, SinkBuilder};
use crate::error::Error;

/// A parsed `deskhook.toml`.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    text: String,
    file: ConfigFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    delivery: DeliverySection,
    #[serde(default)]
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    file_log: Option<FileLogSection>,
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<Spanned<EndpointSpec>>,
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    spool: Option<Spanned<SpoolSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
struct SpoolSection {
    dir: PathBuf,
    synchronous: Option<Spanned<String>>,
    durability: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "optional_duration")]
    max_wait: Option<Duration>,
    max_batch: Option<usize>,
    max_size_mb: Option<u64>,
    memory_window: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliverySection {
    queue_capacity: Option<usize>,
    overflow: Option<Spanned<String>>,
    block_timeout: Option<Spanned<String>>,
    dead_letter_path: Option<PathBuf>,
    breaker_failures: Option<u32>,
    #[serde(default, deserialize_with = "optional_duration")]
    breaker_cool_down: Option<Duration>,
    #[serde(default, deserialize_with = "optional_duration")]
    retry_after_max: Option<Duration>,
    #[serde(default, deserialize_with = "optional_duration")]
    shutdown_timeout: Option<Duration>,
    max_payload: Option<usize>,
    max_in_flight: Option<usize>,
    max_threads: Option<usize>,
    #[serde(default, deserialize_with = "optional_duration")]
    thread_idle_timeout: Option<Duration>,
    max_queued_bytes: Option<usize>,
    attempt_log: Option<usize>,
    #[serde(default, deserialize_with = "optional_duration")]
    attempt_retention: Option<Duration>,
    attempt_max_rows: Option<u64>,
    metrics_per_endpoint: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "file"), allow(dead_code))]
struct FileLogSection {
    path: PathBuf,
    flush: Option<Spanned<String>>,
    rotate_bytes: Option<u64>,
    #[serde(default = "default_keep")]
    keep: usize,
}

fn default_keep() -> usize {
    5
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize_duration(d).map(Some)
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Config {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when it cannot be read; [`Error::ConfigFile`] with the position of the
    /// first problem.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in messages.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] with the position of the first problem.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref().to_path_buf();
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
            Error::ConfigFile {
                path: path.clone(),
                line,
                column,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        let config = Config {
            path,
            text: text.to_owned(),
            file,
        };
        config.delivery_config()?;
        Ok(config)
    }

    /// Where `key = …` first stands in the text (for keys whose value carries no span).
    fn key_span(&self, key: &str) -> Range<usize> {
        let at = self
            .text
            .match_indices(key)
            .map(|(i, _)| i)
            .find(|&i| {
                let line_start = self.text[..i].rfind('\n').map_or(0, |n| n + 1);
                self.text[line_start..i].trim().is_empty()
            })
            .unwrap_or(0);
        at..at + key.len()
    }

    fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let (line, column) = line_column(&self.text, span.start);
        Error::ConfigFile {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The `[delivery]` settings over the defaults.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] for an unknown overflow policy.
    pub fn delivery_config(&self) -> Result<DeliveryConfig, Error> {
        let d = &self.file.delivery;
        let mut config = DeliveryConfig::default();
        if let Some(capacity) = d.queue_capacity {
            if capacity == 0 {
                return Err(self.error_at(
                    self.key_span("queue_capacity"),
                    "queue_capacity = 0 would drop every event; give the number of events that \
                     may wait per endpoint, e.g. 10000",
                ));
            }
            config.queue_capacity = capacity;
        }
        let block_timeout = match &d.block_timeout {
            None => None,
            Some(text) => {
                if d.overflow.as_ref().map(|o| o.get_ref().as_str()) != Some("block") {
                    return Err(self.error_at(
                        text.span(),
                        "block_timeout applies only with overflow = \"block\"; set that too, \
                         or remove block_timeout",
                    ));
                }
                let timeout = deskhook::policy::parse_duration(text.get_ref())
                    .map_err(|e| self.error_at(text.span(), e))?;
                Some(timeout)
            }
        };
        if let Some(overflow) = &d.overflow {
            config.overflow = match overflow.get_ref().as_str() {
                "drop-newest" => OverflowPolicy::DropNewest,
                "drop-oldest" => OverflowPolicy::DropOldest,
                "block" => OverflowPolicy::Block {
                    timeout: block_timeout.unwrap_or(Duration::from_millis(100)),
                },
                other => {
                    return Err(self.error_at(
                        overflow.span(),
                        format!(
                            "unknown overflow policy '{other}' (write \"drop-newest\", \
                             \"drop-oldest\" or \"block\")"
                        ),
                    ));
                }
            };
        }
        if let Some(path) = &d.dead_letter_path {
            config.dead_letter_path = path.clone();
        }
        config.breaker = BreakerPolicy {
            failures: d.breaker_failures.unwrap_or(config.breaker.failures),
            cool_down: d.breaker_cool_down.unwrap_or(config.breaker.cool_down),
        };
        if let Some(max) = d.retry_after_max {
            config.retry_after_max = max;
        }
        if let Some(timeout) = d.shutdown_timeout {
            config.shutdown_timeout = timeout;
        }
        if let Some(max) = d.max_payload {
            if max == 0 {
                return Err(self.error_at(
                    self.key_span("max_payload"),
                    "max_payload = 0 would refuse every event; give a size in bytes, e.g. \
                     1048576",
                ));
            }
            config.max_payload = max;
        }
        for (key, value) in [
            ("max_in_flight", d.max_in_flight),
            ("max_threads", d.max_threads),
            ("max_queued_bytes", d.max_queued_bytes),
        ] {
            if value == Some(0) {
                return Err(self.error_at(
                    self.key_span(key),
                    format!("{key} = 0 cannot work; give at least 1 (or leave it out)"),
                ));
            }
        }
        config.max_in_flight = d.max_in_flight.unwrap_or(config.max_in_flight);
        config.max_threads = d.max_threads.unwrap_or(config.max_threads);
        config.max_queued_bytes = d.max_queued_bytes.unwrap_or(config.max_queued_bytes);
        config.thread_idle_timeout = d.thread_idle_timeout.unwrap_or(config.thread_idle_timeout);
        if d.attempt_max_rows == Some(0) {
            return Err(self.error_at(
                self.key_span("attempt_max_rows"),
                "attempt_max_rows = 0 would keep no attempt in the spool; to keep none at all \
                 write attempt_log = 0",
            ));
        }
        config.attempt_log = d.attempt_log.unwrap_or(config.attempt_log);
        config.attempt_retention = d.attempt_retention.unwrap_or(config.attempt_retention);
        config.attempt_max_rows = d.attempt_max_rows.unwrap_or(config.attempt_max_rows);
        config.metrics_per_endpoint = d
            .metrics_per_endpoint
            .unwrap_or(config.metrics_per_endpoint);
        Ok(config)
    }

    /// The endpoints, with secrets from the environment resolved and every setting checked.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] naming the position of the endpoint or key at fault: a bad URL,
    /// a URL the SSRF guard refuses, a missing or invalid environment secret, a bad CIDR.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        self.file
            .endpoints
            .iter()
            .map(|e| self.endpoint(e.get_ref(), e.span()))
            .collect()
    }

    fn endpoint(&self, spec: &EndpointSpec, span: Range<usize>) -> Result<Endpoint, Error> {
        spec.to_endpoint().map_err(|e| {
            // A problem of one setting points at its key; the others at the table.
            let at = e
                .field()
                .and_then(|field| {
                    self.key_in(span.clone(), field).or_else(|| {
                        // `workers` is the old name of `max_in_flight`.
                        (field == "max_in_flight")
                            .then(|| self.key_in(span.clone(), "workers"))
                            .flatten()
                    })
                })
                .unwrap_or(span.clone());
            self.error_at(at, e.to_string())
        })
    }

    /// Where the value of `key = …` stands inside `table` (an `[[endpoint]]`'s span), if it
    /// does.
    fn key_in(&self, table: Range<usize>, key: &str) -> Option<Range<usize>> {
        // The span of an array-of-tables entry is its header; its keys run to the next header.
        let body_end = self.text[table.end..]
            .match_indices("\n[")
            .next()
            .map_or(self.text.len(), |(i, _)| table.end + i + 1);
        let table = table.start..body_end;
        let text = self.text.get(table.clone())?;
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix(key)
                && let Some(value) = rest.trim_start().strip_prefix('=')
            {
                // Point at the value, where the problem is.
                let value = value.trim_start();
                let at = table.start + offset + (line.len() - value.len());
                return Some(at..at + value.trim_end().len());
            }
            offset += line.len();
        }
        None
    }

    /// A [`SinkBuilder`] with every endpoint and the delivery settings; finish it with
    /// `.build()` (blocking transport) or `.build_async()` (async transport).
    ///
    /// # Errors
    ///
    /// As [`Config::endpoints`] and [`Config::delivery_config`].
    pub fn http_sink_builder(&self) -> Result<SinkBuilder, Error> {
        let mut builder = SinkBuilder::new().config(self.delivery_config()?);
        for endpoint in self.endpoints()? {
            builder = builder.endpoint(endpoint);
        }
        #[cfg(feature = "spool")]
        if let Some(spool) = self.spool()? {
            builder = builder.spool(spool.open()?);
        }
        #[cfg(not(feature = "spool"))]
        if let Some(section) = &self.file.spool {
            return Err(self.error_at(
                section.span(),
                "[spool] needs deskhook-transports' feature \"spool\"; enable it, or remove \
                 the section",
            ));
        }
        Ok(builder)
    }

    /// The `[spool]` settings as a builder (not opened yet), if the file has the section.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] for an unknown `synchronous` or `durability`, or a zero size.
    #[cfg(feature = "spool")]
    pub fn spool(&self) -> Result<Option<crate::spool::SpoolBuilder>, Error> {
        use crate::spool::{Durability, Spool, Synchronous};
        let Some(section) = &self.file.spool else {
            return Ok(None);
        };
        let section = section.get_ref();
        let mut builder = Spool::builder(&section.dir);
        if let Some(value) = &section.synchronous {
            builder = builder.synchronous(match value.get_ref().as_str() {
                "full" => Synchronous::Full,
                "normal" => Synchronous::Normal,
                other => {
                    return Err(self.error_at(
                        value.span(),
                        format!("unknown synchronous '{other}' (write \"full\" or \"normal\")"),
                    ));
                }
            });
        }
        if let Some(value) = &section.durability {
            builder = builder.durability(match value.get_ref().as_str() {
                "wait" => Durability::Wait,
                "receipt" => Durability::Receipt,
                other => {
                    return Err(self.error_at(
                        value.span(),
                        format!("unknown durability '{other}' (write \"wait\" or \"receipt\")"),
                    ));
                }
            });
        }
        if let Some(wait) = section.max_wait {
            builder = builder.max_wait(wait);
        }
        for (key, value) in [
            ("max_batch", section.max_batch),
            ("memory_window", section.memory_window),
        ] {
            if value == Some(0) {
                return Err(self.error_at(
                    self.key_span(key),
                    format!("{key} = 0 cannot work; give at least 1 (or leave it out)"),
                ));
            }
        }
        if let Some(batch) = section.max_batch {
            builder = builder.max_batch(batch);
        }
        if let Some(window) = section.memory_window {
            builder = builder.memory_window(window);
        }
        if let Some(mb) = section.max_size_mb {
            if mb == 0 {
                return Err(self.error_at(
                    self.key_span("max_size_mb"),
                    "max_size_mb = 0 would refuse every event; give the disk budget in MiB, e.g. \
                     1024",
                ));
            }
            builder = builder.max_size(mb.saturating_mul(1024 * 1024));
        }
        Ok(Some(builder))
    }

    /// The `[file_log]` sink, if the file has one.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] for a bad `flush`; what [`crate::file::FileSinkBuilder::build`]
    /// returns when the file cannot be opened.
    #[cfg(feature = "file")]
    pub fn file_sink(&self) -> Result<Option<crate::file::FileSink>, Error> {
        use crate::file::{FileSink, FlushPolicy};
        let Some(section) = &self.file.file_log else {
            return Ok(None);
        };
        let mut builder = FileSink::builder(&section.path);
        if let Some(flush) = &section.flush {
            let policy = match flush.get_ref().as_str() {
                "every-event" => FlushPolicy::EveryEvent,
                "never" => FlushPolicy::Never,
                other => {
                    FlushPolicy::Interval(deskhook::policy::parse_duration(other).map_err(|e| {
                        self.error_at(
                            flush.span(),
                            format!("{e}; or write \"every-event\" or \"never\""),
                        )
                    })?)
                }
            };
            builder = builder.flush(policy);
        }
        if let Some(bytes) = section.rotate_bytes {
            builder = builder.rotate(bytes, section.keep);
        }
        builder.build().map(Some)
    }
}

#[cfg(test)]
mod tests;
