//! `deskhook.toml`: endpoints, delivery settings and the file log in one file.
//!
//! ```toml
//! [delivery]
//! queue_capacity = 10000          # events waiting per endpoint
//! overflow = "drop-newest"        # or "drop-oldest", "block" (100ms), { block = "250ms" }
//! dead_letter_path = "/var/lib/helpdesk/dead-letters.jsonl"
//! breaker = { failures = 10, cool_down = "30s" } # failures in a row pause an endpoint (0: off)
//! retry_after_max = "1h"
//! shutdown_timeout = "5s"
//! max_payload = 1048576           # bytes
//! max_in_flight = 1024            # requests in flight over all endpoints
//! max_threads = 256               # worker threads of the blocking transport, at most
//! thread_idle_timeout = "10s"     # an idle worker thread ends after this (one stays)
//! worker_nice = 10                # delivery threads this far below the app's priority (0: same)
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
//! rest_after = "10s"              # rows of what cannot go for this long wait on disk only
//! dead_letter_retention = "30d"   # dead letters older than this are deleted
//!
//! [file_log]
//! path = "/var/log/helpdesk/events.jsonl"
//! flush = "every-event"           # or "never", or an interval such as "1s"
//! rotate_bytes = 16777216
//! keep = 5
//! mode = 0o640                     # a new file's permissions; 0o600 by default
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
//! # template_max_output = 1048576          # bytes a render may have; 256 KiB by default
//! secrets = ["whsk_…"]            # ed25519: receivers verify with the whpk_ key alone
//! ```
//!
//! Templates are described in [`template`](crate::template).
//!
//! Paths (`dead_letter_path`, `ca_file`, `template_file`, a spool's and a file log's) are
//! read as given: a relative one is relative to the process's working directory, not to
//! the file's (a service manager often starts a daemon in `/`). Give absolute paths; an
//! error about a relative one names the directory it was looked for in.
//!
//! Each table is the settings struct of what it configures, and that struct's documentation
//! is the reference of its keys and defaults: `[delivery]` is [`DeliveryConfig`], `[spool]`
//! is `spool::SpoolConfig`, `[file_log]` is `file::FileLogConfig`, and each `[[endpoint]]`
//! is [`EndpointSpec`].
//!
//! Unknown keys (with a "did you mean", and the new form of a key of an earlier version),
//! bad URLs, unknown actions and event types, bad durations, short secrets, settings that
//! cannot work (a zero queue) and missing environment variables are refused with the file,
//! line and column.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::delivery::{DeliveryConfig, Endpoint, EndpointSpec, SinkBuilder, SpecError};
use crate::error::Error;

/// A parsed `deskhook.toml`.
pub struct Config {
    path: PathBuf,
    text: String,
    file: ConfigFile,
}

/// The file's path and its settings, not its text (which may hold secrets in the clear).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The file's tables: each is the settings struct of what it configures, so that a key is
/// defined once, in that struct.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    delivery: Option<Spanned<DeliveryConfig>>,
    #[cfg(feature = "file")]
    file_log: Option<Spanned<crate::file::FileLogConfig>>,
    // Accepted without the feature, as the file may serve builds with it.
    #[cfg(not(feature = "file"))]
    #[allow(dead_code)]
    file_log: Option<Spanned<toml::Value>>,
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<Spanned<EndpointSpec>>,
    #[cfg(feature = "spool")]
    spool: Option<Spanned<crate::spool::SpoolConfig>>,
    #[cfg(not(feature = "spool"))]
    spool: Option<Spanned<toml::Value>>,
}

/// Keys of earlier versions, and what to write instead.
const RENAMED_KEYS: &[(&str, &str)] = &[
    (
        "block_timeout",
        "block_timeout is now part of overflow: write overflow = { block = \"100ms\" }",
    ),
    (
        "breaker_failures",
        "breaker_failures is now breaker = { failures = 10, cool_down = \"30s\" }",
    ),
    (
        "breaker_cool_down",
        "breaker_cool_down is now breaker = { failures = 10, cool_down = \"30s\" }",
    ),
];

/// Whether `key`'s values are credentials: an endpoint's
/// [`CREDENTIAL_FIELDS`](EndpointSpec::CREDENTIAL_FIELDS), and the `secret` of a secrets
/// entry.
fn is_credential_key(key: &str) -> bool {
    key == "secret" || EndpointSpec::CREDENTIAL_FIELDS.contains(&key)
}

/// `message` with every value under a credential key (see [`is_credential_key`]) of `text`
/// left out: serde
/// repeats a value of the wrong type, so `secrets = "whsec_…"` (without its brackets)
/// would print the secret, into a terminal or a CI log, and so would a key of digits
/// written without quotes.
fn without_credentials(mut message: String, text: &str) -> String {
    /// Each credential as serde quotes it, and what replaces it.
    fn credentials(value: &toml::Value, under_key: bool, out: &mut Vec<(String, &str)>) {
        match value {
            // Escaped, in double quotes.
            toml::Value::String(text) if under_key && !text.is_empty() => {
                out.push((format!("{text:?}"), "\"(hidden)\""));
            }
            // In backquotes: integer `918273645546`.
            toml::Value::Integer(n) if under_key => out.push((format!("`{n}`"), "`(hidden)`")),
            // serde writes a float without a fraction with one: `918273645546.0`.
            toml::Value::Float(n) if under_key => {
                let plain = n.to_string();
                if n.is_finite() && !plain.contains('.') {
                    out.push((format!("`{plain}.0`"), "`(hidden)`"));
                }
                out.push((format!("`{plain}`"), "`(hidden)`"));
            }
            toml::Value::Array(items) => items.iter().for_each(|v| credentials(v, under_key, out)),
            toml::Value::Table(table) => table.iter().for_each(|(key, v)| {
                credentials(v, under_key || is_credential_key(key), out);
            }),
            _ => {}
        }
    }
    // A type error is in well-formed TOML; a syntax error quotes no value.
    let Ok(table) = text.parse::<toml::Table>() else {
        return message;
    };
    let mut found = Vec::new();
    credentials(&toml::Value::Table(table), false, &mut found);
    for (credential, hidden) in found {
        // Only as serde quotes it, so that a short value ("1", "a") does not garble the
        // rest of the message.
        message = message.replace(&credential, hidden);
    }
    message
}

/// A deserialization error's message, with a hint when it is about an unknown field: the new
/// form of a key an earlier version had, or a "did you mean" for a misspelt one. Other
/// messages come back as they are. The errors of [`Config`] have it already; this is for
/// settings read another way, such as an [`EndpointSpec`] from the admin API's JSON or a
/// command line.
///
/// # Examples
///
/// ```
/// use deskhook_transports::config::hint_unknown_field;
///
/// let message = "unknown field `urll`, expected `name` or `url`";
/// assert!(hint_unknown_field(message).ends_with("(did you mean `url`?)"));
/// ```
pub fn hint_unknown_field(message: &str) -> String {
    let message = message.trim_end();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    if let Some((_, hint)) = RENAMED_KEYS.iter().find(|(old, _)| *old == key) {
        return (*hint).to_owned();
    }
    let closest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::levenshtein(key, known), known))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    match closest {
        Some((_, known)) => format!("{message} (did you mean `{known}`?)"),
        None => message.to_owned(),
    }
}

/// The hint for a list's table written with single brackets (`[endpoint]` for
/// `[[endpoint]]`), which TOML reads as one table where a list of them is expected; `at`
/// is the text from where the error points.
fn list_hint(message: &str, at: &str) -> Option<String> {
    if !message.starts_with("invalid type: map, expected a sequence") {
        return None;
    }
    let header = at.lines().next()?.trim();
    let name = header.strip_prefix('[')?.strip_suffix(']')?;
    (!name.starts_with('[')).then(|| format!(" (write [[{name}]]: each one is an entry of a list)"))
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
    /// [`Error::Read`] when it cannot be read; [`Error::ConfigFile`] with the position of the
    /// first problem.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
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
            let start = e.span().map_or(0, |s| s.start);
            let (line, column) = line_column(text, start);
            let mut message = hint_unknown_field(e.message());
            if let Some(hint) = list_hint(&message, &text[start.min(text.len())..]) {
                message.push_str(&hint);
            }
            Error::ConfigFile {
                path: path.clone(),
                line,
                column,
                message: without_credentials(message, text),
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
    /// [`Error::ConfigFile`] for a setting that cannot work (a zero queue, …), at its key.
    pub fn delivery_config(&self) -> Result<DeliveryConfig, Error> {
        let Some(section) = &self.file.delivery else {
            return Ok(DeliveryConfig::default());
        };
        let config = section.get_ref().clone();
        config.check().map_err(|(key, message)| {
            // The key inside [delivery]: an [[endpoint]] may have a key of the same name.
            let at = self.key_in(section.span(), key).unwrap_or(section.span());
            self.error_at(at, message)
        })?;
        Ok(config)
    }

    /// The endpoints, with secrets from the environment resolved and every setting checked.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] naming the position of the endpoint or key at fault: a bad URL,
    /// a URL the SSRF guard refuses, a missing or invalid environment secret, a bad CIDR, a
    /// name given to two endpoints.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        self.endpoints_with(|_| {})
    }

    /// The endpoints as [`endpoints`](Config::endpoints) gives them, each first changed by
    /// `adjust`: how a command line's overrides (say `--allow-private`) apply to a file's
    /// endpoints before they are checked, so that a literal private address the override
    /// allows is not refused.
    ///
    /// # Errors
    ///
    /// As [`Config::endpoints`].
    pub fn endpoints_with(
        &self,
        mut adjust: impl FnMut(&mut EndpointSpec),
    ) -> Result<Vec<Endpoint>, Error> {
        let mut names = std::collections::HashSet::new();
        self.file
            .endpoints
            .iter()
            .map(|e| {
                let mut spec = e.get_ref().clone();
                adjust(&mut spec);
                // Refused here, where the second can be pointed at, rather than by the sink.
                if !names.insert(spec.name.clone()) {
                    let at = self.key_in(e.span(), "name").unwrap_or(e.span());
                    return Err(self.error_at(
                        at,
                        format!(
                            "endpoint '{}' is named twice: each endpoint needs a name of its \
                             own (rename this one)",
                            spec.name
                        ),
                    ));
                }
                self.endpoint(&spec, e.span())
            })
            .collect()
    }

    /// The endpoint of the `[[endpoint]]` table at `span`. Every setting at fault is told:
    /// the error is the first's, and its message goes on with a line per other, each at its
    /// own place (`t.toml:5:11: …`).
    fn endpoint(&self, spec: &EndpointSpec, span: Range<usize>) -> Result<Endpoint, Error> {
        spec.to_endpoint().map_err(|e| {
            // A problem of one setting points at its key; the others at the table.
            let at = |e: &SpecError| {
                e.field()
                    .and_then(|field| {
                        self.key_in(span.clone(), field).or_else(|| {
                            // `workers` is the old name of `max_in_flight`.
                            (field == "max_in_flight")
                                .then(|| self.key_in(span.clone(), "workers"))
                                .flatten()
                        })
                    })
                    .unwrap_or(span.clone())
            };
            let mut message = e.to_string();
            for other in e.others() {
                let (line, column) = line_column(&self.text, at(other).start);
                message.push_str(&format!(
                    "\n{}:{line}:{column}: {other}",
                    self.path.display()
                ));
            }
            self.error_at(at(&e), message)
        })
    }

    /// Where the value of `key` stands in the table serde read at `table` (`[delivery]`, an
    /// inline `delivery = { … }`, an `[[endpoint]]`), if it has the key: found in the
    /// document's structure, so that a key of the same name elsewhere (in another table, in
    /// a template's text) is never taken for it.
    fn key_in(&self, table: Range<usize>, key: &str) -> Option<Range<usize>> {
        use toml::de::{DeTable, DeValue};
        /// The table spanning `span` among `value` and what it holds.
        fn table_at<'a, 'i>(
            value: &'a Spanned<DeValue<'i>>,
            span: &Range<usize>,
        ) -> Option<&'a DeTable<'i>> {
            match value.get_ref() {
                DeValue::Table(table) if value.span() == *span => Some(table),
                DeValue::Table(table) => table.values().find_map(|v| table_at(v, span)),
                DeValue::Array(items) => items.iter().find_map(|v| table_at(v, span)),
                _ => None,
            }
        }
        let document = DeTable::parse(&self.text).ok()?;
        let document = Spanned::new(document.span(), DeValue::Table(document.into_inner()));
        let found = table_at(&document, &table)?;
        found
            .iter()
            .find(|(name, _)| name.get_ref() == key)
            .map(|(_, value)| value.span())
    }

    /// A [`SinkBuilder`] with every endpoint and the delivery settings; finish it with
    /// `.build()` (blocking transport) or `.build_async()` (async transport). With a
    /// `[spool]` section, the spool is opened here: its directory is made if missing and its
    /// lock taken, for as long as the builder or its sink lives.
    ///
    /// # Errors
    ///
    /// As [`Config::endpoints`] and [`Config::delivery_config`]; with a `[spool]`, as
    /// [`Config::spool`] and [`SpoolBuilder::open`](crate::spool::SpoolBuilder::open)
    /// ([`Error::SpoolLocked`] while another process, or another `Spool` of this one, has
    /// it open). [`Error::ConfigFile`] for a `[spool]` without the feature `spool`.
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
    /// [`Error::ConfigFile`] for a setting that cannot work (no `dir`, a zero size), at its
    /// key.
    #[cfg(feature = "spool")]
    pub fn spool(&self) -> Result<Option<crate::spool::SpoolBuilder>, Error> {
        let Some(section) = &self.file.spool else {
            return Ok(None);
        };
        let config = section.get_ref().clone();
        config.check().map_err(|(key, message)| {
            let at = self.key_in(section.span(), key).unwrap_or(section.span());
            self.error_at(at, message)
        })?;
        Ok(Some(config.builder()))
    }

    /// The `[file_log]` sink, if the file has one.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigFile`] (with the line and column) for a missing `path`, or a zero
    /// interval or rotation size; what [`crate::file::FileSinkBuilder::build`] returns for a
    /// file that cannot be opened.
    #[cfg(feature = "file")]
    pub fn file_sink(&self) -> Result<Option<crate::file::FileSink>, Error> {
        let Some(section) = &self.file.file_log else {
            return Ok(None);
        };
        let config = section.get_ref().clone();
        config.check().map_err(|(key, message)| {
            let at = self.key_in(section.span(), key).unwrap_or(section.span());
            self.error_at(at, message)
        })?;
        config.builder().build().map(Some)
    }
}

#[cfg(test)]
mod tests;
