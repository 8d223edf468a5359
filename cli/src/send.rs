//! `deskhook send`: deliver events through the real delivery engine and report each attempt.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::ArgGroup;
use deskhook::policy::RetrySchedule;
use deskhook::{Dispatcher, EventType, EventTypeSet};
use deskhook_transports::config::Config;
use deskhook_transports::delivery::{
    AttemptOutcome, AttemptRecord, DeliveryConfig, Endpoint, EndpointStats,
};
use deskhook_transports::guard::Remedy;
use deskhook_transports::http_blocking::HttpSink;

/// What is added to the deadline beyond the schedule and the timeouts.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Deliver events for real, print one line per attempt, wait for the outcome.
///
/// The body is exactly what `deskhook render` prints for the same --format, --action, --event
/// and --description. With --format usedesk or iqchannels, the --event file is sent once, as
/// that format (its own Content-Type, X-Deskhook-Action: usedesk.comment_created, …). It goes through the delivery engine and blocking transport a helpdesk uses
/// (signing, SSRF guard, retries, dead letters), to the --url (as an endpoint named "cli") or
/// to the [[endpoint]]s of --config. Each attempt prints a line:
///
///   create   cli  attempt 1  204  3 ms
///
/// (action, endpoint, attempt, status or error, duration, and what happens next when it
/// failed), then a summary. The command waits at most the sum of the retry delays (with
/// jitter) plus one --timeout per attempt plus 2 s, times the number of events (they share
/// one ticket, so an endpoint takes them one after the other); what is not delivered by then
/// is dead-lettered. Exits 0 only if every event reached every endpoint. Ctrl-C (or
/// SIGTERM) ends the wait: what is left is dead-lettered, the summary printed, and the exit
/// status is 130 (143 after SIGTERM).
///
/// Dead letters go to the --config's [delivery] dead_letter_path, or else to a new file in
/// the temporary directory ($TMPDIR), which is removed when nothing failed; its path is
/// printed when something did.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("to").args(["url", "config"]).required(true).multiple(true)))]
#[command(mut_arg("tenant", |a| a.help(
    "Send the events as this tenant's: they go to the --config's endpoints of this tenant and \
     to those of none. Without it the events are of no tenant, and an endpoint of a tenant, \
     which would receive none of them, is refused"
)))]
#[command(mut_arg("url", |a| a.help(
    "Where to POST the events (http or https). With --config, this one endpoint replaces the \
     file's [[endpoint]]s and only [delivery] is taken from the file"
)))]
pub(crate) struct Args {
    #[command(flatten)]
    events: crate::events::EventArgs,
    #[command(flatten)]
    target: crate::flags::Target,
    /// A deskhook.toml. Its [delivery] settings apply (dead_letter_path, queue, breaker, …);
    /// without --url its [[endpoint]]s are where the events go, each receiving the actions it
    /// subscribes to.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    guard: crate::flags::Guard,
    #[command(flatten)]
    attempts: crate::flags::Attempts,
    /// A header added to every request, written 'Name: value'. Repeat for several. Only with
    /// --url.
    #[arg(long, value_name = "'NAME: VALUE'")]
    header: Vec<String>,
    /// The payload template (only with --url: endpoints of --config have their own).
    #[command(flatten)]
    template: crate::render::TemplateArgs,
}

/// Loads a configuration file; errors read `FILE:LINE:COL: message`.
pub(crate) fn load_config(path: &Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| match e {
        deskhook_transports::Error::Read { source, .. } => {
            format!("cannot read config file '{}': {source}", path.display())
        }
        other => other.to_string(),
    })
}

/// Whether the configuration file at `path` (read already) sets `[delivery]
/// dead_letter_path`: a path set to the default's name is set all the same.
fn sets_dead_letter_path(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|file| {
            file.get("delivery")?
                .as_table()
                .map(|d| d.contains_key("dead_letter_path"))
        })
        .unwrap_or(false)
}

/// The endpoints of a configuration with the command line's schedule, timeout and (when
/// given) `--allow-private` applied.
pub(crate) fn config_endpoints(
    config: &Config,
    path: &Path,
    retry: &RetrySchedule,
    timeout: Duration,
    allow_private: bool,
) -> Result<Vec<Endpoint>, String> {
    // Applied to the file's settings before they are checked, so that `--allow-private`
    // allows a literal private address too; `false` leaves the file's own setting.
    let endpoints = config
        .endpoints_with(|spec| {
            spec.allow_private |= allow_private;
            spec.retry = Some(retry.clone());
            spec.timeout = Some(timeout);
        })
        .map_err(|e| e.to_string())?;
    if endpoints.is_empty() {
        return Err(format!(
            "'{}' has no [[endpoint]]; add one, or give --url",
            path.display()
        ));
    }
    Ok(endpoints)
}

/// How long to wait for one event: every retry delay at its longest jitter, one timeout per
/// attempt, and a margin.
pub(crate) fn deadline(retry: &RetrySchedule, timeout: Duration) -> Duration {
    longest_delays(retry)
        .saturating_add(timeout.saturating_mul(retry.attempts()))
        .saturating_add(DEADLINE_MARGIN)
}

/// How often [`flush_while_moving`] looks at how far the deliveries got.
const MOVED_EVERY: Duration = Duration::from_millis(200);

/// Waits for what `sink` (of `guard`) has queued for as long as it moves: gives up once no
/// event has finished (delivered, dead-lettered or dropped) for `stall`, one event's whole
/// schedule, rather than after a fixed time, which would cut a long queue short however
/// well it went. `seen` is told how many have finished at each look.
pub(crate) fn flush_while_moving(
    guard: &deskhook_transports::delivery::DeliveryGuard,
    sink: &HttpSink,
    stall: Duration,
    mut seen: impl FnMut(u64),
) -> Result<(), deskhook_transports::Error> {
    let finished = || {
        let totals = sink.totals();
        totals.delivered + totals.dead_lettered + totals.dropped
    };
    let (mut last, mut moved_at) = (None, std::time::Instant::now());
    loop {
        let looked = std::time::Instant::now();
        let flushed = guard.flush(MOVED_EVERY);
        if let Err(deskhook_transports::Error::Undelivered { held, .. }) = &flushed
            && *held > 0
        {
            // Nothing can go before the flush's deadline (a retry, a cool-down later): it
            // said so at once, so the rest of the period is waited out rather than spun.
            std::thread::sleep(MOVED_EVERY.saturating_sub(looked.elapsed()));
        }
        let done = finished();
        seen(done);
        if flushed.is_ok() {
            return Ok(());
        }
        if last != Some(done) {
            (last, moved_at) = (Some(done), std::time::Instant::now());
        } else if moved_at.elapsed() > stall {
            return flushed;
        }
    }
}

/// Every retry delay of `retry` at its longest jitter, added up (at most `Duration::MAX`).
pub(crate) fn longest_delays(retry: &RetrySchedule) -> Duration {
    let delays = retry
        .delays()
        .iter()
        .fold(Duration::ZERO, |sum, d| sum.saturating_add(*d));
    Duration::try_from_secs_f64(delays.as_secs_f64() * (1.0 + retry.jitter()))
        .unwrap_or(Duration::MAX)
}

/// One attempt as a line: `create   cli  attempt 1  204  3 ms`, and what happens next when it
/// failed.
pub(crate) fn attempt_line(record: &AttemptRecord<'_>, endpoint_width: usize) -> String {
    let result = match (record.status, record.error) {
        // What a receiver that verifies signatures answers to a bad one.
        (Some(401), _) => {
            "401 (a wrong or missing secret, or the body changed on the way?)".to_owned()
        }
        (Some(status), _) => status.to_string(),
        // It may quote what the receiver sent (a bad header's value).
        (None, Some(error)) => crate::printable(error).into_owned(),
        (None, None) => "no response".to_owned(),
    };
    let mut line = format!(
        "{:<8} {:<endpoint_width$}  attempt {}  {result}  {} ms",
        record.event_type,
        record.endpoint,
        record.attempt,
        record.duration.as_millis()
    );
    match record.outcome {
        AttemptOutcome::Delivered => {}
        AttemptOutcome::Retrying => match record.next_attempt {
            Some(at) => {
                let wait = at
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                line.push_str(&format!("  retrying in {:.1} s", wait.as_secs_f64()));
            }
            None => line.push_str("  retrying"),
        },
        AttemptOutcome::DeadLettered => line.push_str("  dead-lettered"),
        AttemptOutcome::EndpointDisabled => {
            line.push_str("  endpoint disabled (410 Gone), dead-lettered");
        }
        _ => {}
    }
    line
}

/// Writes a line to stdout from a delivery thread, or a summary whose command's exit status
/// already says how it went (a closed or full stdout loses only the line).
pub(crate) fn print_line(line: &str) {
    let _ = print_out(line);
}

/// Writes a line that is the command's product (a key, a listing, JSON for a script): a
/// write that fails is the command's failure (a full disk under `> key`), but for a closed
/// stdout, which ends the command quietly.
pub(crate) fn print_out(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(crate::stdout_error)
}

/// What the observer saw, for the summary.
#[derive(Debug, Default)]
struct Seen {
    /// Event types for which some attempt was made.
    attempted: BTreeSet<EventType>,
    /// Whether some attempt was refused by the SSRF guard.
    refused: bool,
}

/// Where dead letters go, and whether the file is ours to remove.
#[derive(Debug)]
struct DeadLetterFile {
    path: PathBuf,
    temporary: bool,
}

/// A new, empty file in the temporary directory for this run's dead letters.
pub(crate) fn temporary_dead_letter_file() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir();
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    for n in 0..100u32 {
        let path = dir.join(format!(
            "deskhook-send-{}-{stamp}-{n}.jsonl",
            std::process::id()
        ));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "cannot create a dead-letter file in '{}': {e} (set TMPDIR to a writable \
                     directory, or set [delivery] dead_letter_path in a --config)",
                    dir.display()
                ));
            }
        }
    }
    Err(format!(
        "cannot create a dead-letter file in '{}': too many files of the same name",
        dir.display()
    ))
}

/// The message for an endpoint that cannot be built, in command-line terms for `--url`.
fn build_error(e: deskhook_transports::Error, url: Option<&str>) -> String {
    let Some(url) = url else {
        return e.to_string();
    };
    match &e {
        deskhook_transports::Error::Refused(refusal) => {
            let addr = match refusal.embedded() {
                Some(v4) => format!("{} ({v4})", refusal.addr()),
                None => refusal.addr().to_string(),
            };
            let remedy = match refusal.remedy() {
                Remedy::AllowPrivate => {
                    "pass --allow-private to send to private and loopback addresses"
                }
                Remedy::AllowCidrs => {
                    "the command line cannot allow it: use a --config whose endpoint lists it \
                     in allow_cidrs"
                }
                _ => "it can never be allowed",
            };
            // Cut to its origin, as the library's messages are: a webhook's path is often a
            // token.
            format!(
                "--url {}: refusing to send to {addr}, a {} address; {remedy}",
                deskhook_transports::delivery::redact_url(url),
                refusal.reason()
            )
        }
        deskhook_transports::Error::InvalidUrl { .. } => format!("--url: {e}"),
        _ => e.to_string(),
    }
}

/// Sums the counters of every endpoint.
fn totals(stats: &[EndpointStats]) -> (u64, u64, u64) {
    stats.iter().fold((0, 0, 0), |(d, l, x), s| {
        (d + s.delivered, l + s.dead_lettered, x + s.dropped)
    })
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    args.events.check("send");
    args.target.check_secret_has_url("send");
    if !args.header.is_empty() && args.target.url.is_none() {
        crate::usage_error(
            "send",
            "--header is for the endpoint at --url; the endpoints of --config have their own: \
             set `headers` in their [[endpoint]] tables",
        );
    }
    let secrets = args.target.secrets()?;
    let template = args.template.template("send")?;
    if template.is_some() && args.target.url.is_none() {
        crate::usage_error(
            "send",
            "--template needs --url: endpoints of --config have their own",
        );
    }
    let events = args.events.events()?;
    let event_types = events.event_types();

    let config = args.config.as_deref().map(load_config).transpose()?;
    let mut delivery = match &config {
        Some(config) => config.delivery_config().map_err(|e| e.to_string())?,
        None => {
            let mut delivery = DeliveryConfig::default();
            // A handful of events from a prompt: pausing the endpoint after failures would
            // only make the command wait longer.
            delivery.breaker.failures = 0;
            delivery
        }
    };
    // Every event of this command waits in the queue at once: nothing may be dropped.
    delivery.queue_capacity = delivery.queue_capacity.max(event_types.len());

    let endpoints = match (&args.target.url, &config, &args.config) {
        (Some(url), _, _) => {
            let mut endpoint = Endpoint::new("cli", url)
                .map_err(|e| build_error(e, Some(url)))?
                .secrets(secrets)
                .retry(args.attempts.retry.clone())
                .timeout(args.attempts.timeout)
                .allow_private(args.guard.allow_private);
            let headers = crate::parse_each("--header", &args.header, crate::parse_header)
                .unwrap_or_else(|e| crate::usage_error("send", e));
            for (name, value) in headers {
                endpoint = endpoint.header(name, value);
            }
            if let Some(template) = template {
                endpoint = endpoint.template(template);
            }
            vec![endpoint]
        }
        (None, Some(config), Some(path)) => config_endpoints(
            config,
            path,
            &args.attempts.retry,
            args.attempts.timeout,
            args.guard.allow_private,
        )?,
        _ => return Err("give --url, or a --config with [[endpoint]]s".to_owned()),
    };
    // An event goes to the endpoints of its tenant and to those of none: one of another
    // tenant would receive nothing, and its silence would read as success.
    if let Some(other) = endpoints.iter().find(|e| {
        e.tenant_name()
            .is_some_and(|t| Some(t) != args.events.tenant.as_deref())
    }) {
        let tenant = other.tenant_name().unwrap_or_default();
        return Err(format!(
            "endpoint '{}' belongs to tenant '{tenant}', and the events are {}: it would \
             receive none of them (give --tenant {tenant}, or a --config without it)",
            other.name(),
            args.events
                .tenant
                .as_deref()
                .map_or_else(|| "of no tenant".to_owned(), |t| format!("of tenant '{t}'")),
        ));
    }
    let width = endpoints.iter().map(|e| e.name().len()).max().unwrap_or(0);

    // Dead letters: the configured file, else a temporary one.
    let configured = args.config.as_deref().is_some_and(sets_dead_letter_path);
    let dead_letters = if configured {
        DeadLetterFile {
            path: delivery.dead_letter_path.clone(),
            temporary: false,
        }
    } else {
        DeadLetterFile {
            path: temporary_dead_letter_file()?,
            temporary: true,
        }
    };
    delivery.dead_letter_path = dead_letters.path.clone();
    let remove_temporary = || {
        if dead_letters.temporary {
            let _ = std::fs::remove_file(&dead_letters.path);
        }
    };

    let seen = Arc::new(Mutex::new(Seen::default()));
    let observer = {
        let seen = seen.clone();
        move |record: &AttemptRecord<'_>| {
            print_line(&attempt_line(record, width));
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.attempted.insert(record.event_type);
            // Refused by the guard where allow_private would allow it (its remedy says so);
            // one never allowed, or only in allow_cidrs, says so itself.
            if record.error.is_some_and(|e| {
                e.starts_with("refusing to connect") && e.contains("set allow_private = true")
            }) {
                seen.refused = true;
            }
        }
    };
    // What the endpoints subscribe to: an event type none of them takes is not a failure.
    let subscribed = endpoints.iter().fold(EventTypeSet::empty(), |set, e| {
        set.union(e.subscribed_event_types())
    });
    let mut builder = HttpSink::builder().config(delivery).observer(observer);
    for endpoint in endpoints {
        builder = builder.endpoint(endpoint);
    }
    let (sink, guard) = match builder.build() {
        Ok(built) => built,
        Err(e) => {
            remove_temporary();
            return Err(build_error(e, args.target.url.as_deref()));
        }
    };

    let waiting = match Waiting::start() {
        Ok(waiting) => waiting,
        Err(e) => {
            remove_temporary();
            return Err(e);
        }
    };
    let dispatcher = Dispatcher::builder().sink("http", sink.clone()).build();
    events.emit(&dispatcher, args.events.tenant.as_deref());
    // The events are of one ticket: each endpoint takes them one after the other, each
    // with its whole schedule.
    let wait = deadline(&args.attempts.retry, args.attempts.timeout)
        .saturating_mul(u32::try_from(event_types.len().max(1)).unwrap_or(u32::MAX));
    let started = std::time::Instant::now();
    let (flushed, interrupted) = waiting.flush(&sink, wait);
    // What is left now goes to the dead letters: after a signal, what the wait did not
    // deliver.
    let finished = flushed.and(guard.shutdown(Duration::ZERO));
    // What it waited, not what it would have: a shutdown ends early when what is left waits
    // past its deadline (a Retry-After of an hour).
    let waited = started.elapsed().min(wait);

    let stats = sink.stats();
    let (delivered, dead_lettered, dropped) = totals(&stats);
    let total = delivered + dead_lettered + dropped;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let names = |wanted: bool| -> Vec<&str> {
        event_types
            .iter()
            .filter(|t| !seen.attempted.contains(t) && subscribed.contains(**t) == wanted)
            .map(|t| t.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let (not_attempted, unsubscribed) = (names(true), names(false));

    let mut summary = format!(
        "{delivered} of {total} delivered ({} event(s), {} endpoint(s))",
        event_types.len(),
        stats.len()
    );
    if dead_lettered > 0 {
        summary.push_str(&format!(", {dead_lettered} dead-lettered"));
    }
    if dropped > 0 {
        summary.push_str(&format!(", {dropped} dropped (queue full)"));
    }
    if interrupted.is_some() {
        summary.push_str(&format!(
            "; interrupted after {:.1} s",
            waited.as_secs_f64()
        ));
    } else if finished.is_err() {
        summary.push_str(&format!(
            "; stopped waiting after {:.1} s",
            waited.as_secs_f64()
        ));
    }
    if !unsubscribed.is_empty() {
        summary.push_str(&format!(
            "\nnot sent: {} (no endpoint subscribes to it)",
            unsubscribed.join(", ")
        ));
    }
    if !not_attempted.is_empty() {
        summary.push_str(&format!(
            "\nno attempt for: {} ({})",
            not_attempted.join(", "),
            if interrupted.is_some() {
                "interrupted before an attempt ended"
            } else if finished.is_err() {
                "still waiting behind the ticket's earlier events"
            } else {
                "refused before sending"
            }
        ));
    }
    if dead_lettered > 0 {
        summary.push_str(&format!(
            "\ndead letters: {} (see them with: deskhook dead-letters list --file {})",
            dead_letters.path.display(),
            dead_letters.path.display()
        ));
    } else {
        remove_temporary();
    }
    // The exit status tells whether the events were delivered, even when stdout is closed.
    print_line(&summary);
    if seen.refused && !args.guard.allow_private {
        eprintln!(
            "deskhook: the SSRF guard refused an address; pass --allow-private to send to \
             private and loopback addresses"
        );
    }
    let ok = total > 0 && delivered == total && not_attempted.is_empty() && finished.is_ok();
    Ok(if let Some(status) = interrupted {
        // What a shell says of a command the signal ended.
        ExitCode::from(status)
    } else if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The wait for delivery, which Ctrl-C (SIGINT) or SIGTERM ends early: it stops the
/// waiting rather than the process, and the caller then dead-letters what is left and prints
/// its summary. The handlers are installed when this is made, before the events are emitted,
/// so that a signal at any point after that is a stop, not the process's end.
struct Waiting {
    runtime: tokio::runtime::Runtime,
    signals: crate::relay::StopSignals,
}

impl Waiting {
    /// Installs the signal handlers (on a runtime of one thread, which the wait runs on).
    fn start() -> Result<Waiting, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime that waits for delivery: {e}"))?;
        let signals = {
            let _entered = runtime.enter();
            crate::relay::StopSignals::install()?
        };
        Ok(Waiting { runtime, signals })
    }

    /// Waits up to `wait` for `sink` to deliver what it holds, or for a signal. Returns the
    /// flush's outcome and, when a signal ended it, the exit status it calls for.
    fn flush(
        mut self,
        sink: &HttpSink,
        wait: Duration,
    ) -> (Result<(), deskhook_transports::Error>, Option<u8>) {
        self.runtime.block_on(async {
            tokio::select! {
                flushed = sink.flush_async(wait) => (flushed, None),
                status = self.signals.next() => (Ok(()), Some(status)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use deskhook::policy::parse_duration;

    use super::*;

    #[test]
    fn a_dead_letter_path_set_to_the_defaults_name_is_set_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deskhook.toml");
        for (text, set) in [
            (
                "[delivery]\ndead_letter_path = \"deskhook-dead-letters.jsonl\"\n",
                true,
            ),
            ("[delivery]\nshutdown_timeout = \"1s\"\n", false),
            ("", false),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(sets_dead_letter_path(&path), set, "{text}");
        }
    }

    #[test]
    fn the_deadline_covers_the_longest_jitter_and_every_timeout() {
        let retry: RetrySchedule = crate::flags::CLI_RETRY.parse().unwrap();
        let timeout = parse_duration(crate::flags::CLI_TIMEOUT).unwrap();
        // 6 s of delays at +20%, three attempts of 15 s, 2 s of margin.
        assert_eq!(deadline(&retry, timeout), Duration::from_millis(54_200));
        let once: RetrySchedule = "0s".parse().unwrap();
        assert_eq!(
            deadline(&once, Duration::from_secs(1)),
            Duration::from_secs(3)
        );
    }
}
