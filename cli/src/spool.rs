//! `deskhook drain` (deliver what a spool holds, then exit), `deskhook spool stats` and
//! `deskhook spool dead-letter`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use deskhook::policy::RetrySchedule;
use deskhook_transports::delivery::{DeliveryConfig, Endpoint};
use deskhook_transports::guard::Remedy;
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{self, Spool, SpoolStats};
use indicatif::{ProgressBar, ProgressStyle};

/// Deliver everything a spool holds, then exit.
///
/// Opens the spool (it must not be open in another process), attempts every pending event
/// at once — rows waiting for a retry do not wait — and delivers them in order per ticket
/// with the engine's usual retries, breaker and signatures, showing a progress bar on
/// stderr. It exits when the spool's rows for the chosen endpoints are gone, or when nothing
/// has moved for as long as one event's whole retry schedule.
///
/// Exit status: 0 when everything was delivered; 1 when events went to the spool's dead
/// letters (`deskhook dead-letters list --spool DIR`) or are left, those of endpoints that
/// --config does not name included (a script must not remove the spool then).
#[derive(Debug, clap::Args)]
#[command(mut_arg("url", |a| a.help(
    "Send every spooled event, whatever its endpoint, to this URL instead"
)))]
pub(crate) struct DrainArgs {
    /// The spool directory. Defaults to the [spool] dir of --config.
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// A deskhook.toml: each spooled event goes to the endpoint of its name there.
    #[arg(long, value_name = "FILE", conflicts_with = "url")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: crate::flags::Target,
    #[command(flatten)]
    guard: crate::flags::Guard,
    #[command(flatten)]
    attempts: crate::flags::Attempts,
}

/// Inspect a spool, or move the events of an endpoint that is gone to its dead letters.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Stats(StatsArgs),
    DeadLetter(DeadLetterArgs),
}

/// Move the pending events of endpoints that are gone to the spool's dead letters.
///
/// An endpoint left out of the configuration (or removed while no sink had the spool open)
/// leaves its pending events in the spool, where they wait for an endpoint of that name for
/// ever, counted against the spool's size (`deskhook spool stats` marks them "not
/// registered"). This moves them, in one transaction, to the spool's dead letters, where
/// `deskhook dead-letters list|replay --spool DIR` take them (a replay puts them back in
/// the spool for the endpoint of their name in --config), and the console or its admin API
/// deletes them. The spool must not be open elsewhere (stop the helpdesk or serve first).
/// Prints `moved N pending event(s) of 'A', 'B'` on stdout, N the total (with --dry-run,
/// one `would move N pending event(s) of 'A'` line per endpoint).
#[derive(Debug, clap::Args)]
struct DeadLetterArgs {
    #[command(flatten)]
    spool: SpoolDir,
    /// An endpoint whose pending events go (repeat for more).
    #[arg(long = "endpoint", value_name = "NAME", required = true)]
    endpoints: Vec<String>,
    /// Say how many pending events of each endpoint would move, and move none (reading the
    /// spool only, as `spool stats` does: while it is in use too).
    #[arg(long)]
    dry_run: bool,
}

/// What a spool holds: pending events (and how many are due now), the oldest, dead
/// letters, size on disk, and pending events per endpoint, marking those whose endpoint is
/// not registered in the sink that has (or last had) the spool open: they wait for it.
///
/// It reads without taking the spool's lock, so it works while the helpdesk runs.
#[derive(Debug, clap::Args)]
struct StatsArgs {
    #[command(flatten)]
    spool: SpoolDir,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The spool directory: given alone (`spool stats DIR`) or as the other commands take it
/// (`--spool DIR`).
#[derive(Debug, clap::Args)]
struct SpoolDir {
    /// The spool directory.
    #[arg(value_name = "DIR", required_unless_present = "spool")]
    dir: Option<PathBuf>,
    /// The spool directory, as drain, dead-letters and serve take it.
    #[arg(long = "spool", value_name = "DIR", conflicts_with = "dir")]
    spool: Option<PathBuf>,
}

impl SpoolDir {
    /// The directory given, either way (clap requires one, and refuses both).
    fn path(&self) -> Result<&Path, String> {
        self.dir
            .as_deref()
            .or(self.spool.as_deref())
            .ok_or_else(|| "give the spool directory: DIR or --spool DIR".to_owned())
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::Stats(args) => stats(&args),
        Command::DeadLetter(args) => dead_letter(&args),
    }
}

/// `spool dead-letter`: an endpoint with no pending event is refused (a mistyped name),
/// with those that have some; nothing moves then.
fn dead_letter(args: &DeadLetterArgs) -> Result<ExitCode, String> {
    let dir = args.spool.path()?;
    // A dry run only reads (as `spool stats`, while the spool is in use too); a move takes
    // the spool.
    let mut spool = if args.dry_run {
        None
    } else {
        Some(
            Spool::builder(dir)
                .existing(true)
                // The endpoints serve (or a helpdesk) keeps in it stay theirs.
                .keep_registry(true)
                .open()
                .map_err(|e| e.to_string())?,
        )
    };
    let stats = match &spool {
        Some(spool) => spool.stats(),
        None => spool::inspect(dir),
    }
    .map_err(|e| e.to_string())?;
    let pending: Vec<&str> = stats
        .endpoints
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    if let Some(unknown) = args
        .endpoints
        .iter()
        .find(|name| !pending.contains(&name.as_str()))
    {
        let have = if pending.is_empty() {
            "no endpoint has any".to_owned()
        } else {
            format!("those with some: {}", pending.join(", "))
        };
        return Err(format!(
            "spool {} has no pending event of endpoint '{unknown}' ({have}); nothing was moved",
            dir.display()
        ));
    }
    // Named on purpose, but said: its events would have gone out at the next start.
    let moving = if args.dry_run { "would be" } else { "are" };
    for name in &args.endpoints {
        if !stats.unregistered.contains(name) {
            eprintln!(
                "deskhook: endpoint '{name}' was registered in the sink that last had the \
                 spool open; its pending events {moving} moved all the same"
            );
        }
    }
    let Some(spool) = &mut spool else {
        for name in &args.endpoints {
            let n = stats
                .endpoints
                .iter()
                .find(|(pending, _)| pending == name)
                .map_or(0, |(_, n)| *n);
            crate::send::print_line(&format!("would move {n} pending event(s) of '{name}'"));
        }
        eprintln!("deskhook: --dry-run: nothing was moved");
        return Ok(ExitCode::SUCCESS);
    };
    let reason = "moved to the dead letters by deskhook spool dead-letter (its endpoint was gone)";
    let moved = spool
        .dead_letter_pending(&args.endpoints, reason)
        .map_err(|e| e.to_string())?;
    // The count on stdout, as --dry-run's (for scripts); the way to see them on stderr.
    let names = args
        .endpoints
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    crate::send::print_line(&format!("moved {moved} pending event(s) of {names}"));
    eprintln!(
        "deskhook: they are in the dead letters of spool {}; `deskhook dead-letters list \
         --spool {}` shows them",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn stats(args: &StatsArgs) -> Result<ExitCode, String> {
    let stats = spool::inspect(args.spool.path()?).map_err(|e| e.to_string())?;
    let oldest = stats.oldest.map(|t| format!("{t:.0}"));
    let text = if args.json {
        serde_json::json!({
            "pending": stats.pending,
            "due": stats.due,
            "oldest": oldest,
            "dead_letters": stats.dead_letters,
            "size_bytes": stats.size_bytes,
            "waiting_for_endpoint": stats.waiting_for_endpoint,
            "unregistered": stats.unregistered,
            "endpoints": stats.endpoints.iter().map(|(name, n)| (name.clone(), serde_json::Value::from(*n)))
                .collect::<serde_json::Map<_, _>>(),
        })
        .to_string()
    } else {
        let mut text = format!(
            "pending       {}\ndue now       {}\noldest        {}\ndead letters  {}\nsize on disk  {:.1} MiB",
            stats.pending,
            stats.due,
            oldest.as_deref().unwrap_or("-"),
            stats.dead_letters,
            stats.size_bytes as f64 / (1024.0 * 1024.0)
        );
        if stats.waiting_for_endpoint > 0 {
            text.push_str(&format!(
                "\nwaiting       {} for endpoints not registered (they go out once one of \
                 that name is)",
                stats.waiting_for_endpoint
            ));
        }
        for (name, n) in &stats.endpoints {
            let mark = if stats.unregistered.contains(name) {
                " (not registered)"
            } else {
                ""
            };
            text.push_str(&format!("\n  {name}  {n} pending{mark}"));
        }
        text
    };
    crate::send::print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// What `drain` needs, said when it is not given: clap's own requirements could only name
/// one of the two ways (`--config`), and `--spool` where `--config` has a [spool].
const DRAIN_NEEDS: &str = "drain needs --config FILE (each event goes to the endpoint of its \
                           name there; the spool is its [spool] unless --spool DIR), or \
                           --spool DIR and --url URL (every event goes to that URL)";

pub(crate) fn drain(args: DrainArgs) -> Result<ExitCode, String> {
    if args.config.is_none() && (args.spool.is_none() || args.target.url.is_none()) {
        crate::usage_error("drain", DRAIN_NEEDS);
    }
    args.target.check_secret_has_url("drain");
    let config = match &args.config {
        Some(path) => Some(crate::send::load_config(path)?),
        None => None,
    };
    let builder = match (&args.spool, &config) {
        (Some(dir), _) => Spool::builder(dir),
        (None, Some(config)) => match config.spool().map_err(|e| e.to_string())? {
            Some(builder) => builder,
            None => {
                crate::usage_error("drain", "--config has no [spool] section; give --spool DIR")
            }
        },
        (None, None) => crate::usage_error("drain", DRAIN_NEEDS),
    };
    let spool = builder
        .ignore_backoff(true)
        .existing(true)
        // The endpoints serve (or a helpdesk) keeps in it stay theirs.
        .keep_registry(true)
        .open()
        .map_err(|e| e.to_string())?;
    let before = spool.stats().map_err(|e| e.to_string())?;
    let (endpoints, delivery) = match (&config, &args.target.url, &args.config) {
        (Some(config), _, Some(path)) => {
            let endpoints = crate::send::config_endpoints(
                config,
                path,
                &args.attempts.retry,
                args.attempts.timeout,
                args.guard.allow_private,
            )?;
            (
                endpoints,
                config.delivery_config().map_err(|e| e.to_string())?,
            )
        }
        (_, Some(url), _) => {
            let secrets = args.target.secrets()?;
            let endpoints = before
                .endpoints
                .iter()
                .map(|(name, _)| {
                    Ok(Endpoint::new(name, url)
                        .map_err(|e| format!("--url: {e}"))?
                        .secrets(secrets.clone())
                        .retry(args.attempts.retry.clone())
                        .timeout(args.attempts.timeout)
                        .allow_private(args.guard.allow_private))
                })
                .collect::<Result<Vec<_>, String>>()?;
            (endpoints, DeliveryConfig::default())
        }
        _ => return Err("give --config FILE or --url URL".to_owned()),
    };
    run_drain(
        spool,
        endpoints,
        delivery,
        &args.attempts.retry,
        args.attempts.timeout,
        &before,
    )
}

/// Delivers what `spool` holds for `endpoints` and reports; shared with `dead-letters
/// replay --spool`.
pub(crate) fn run_drain(
    spool: Spool,
    endpoints: Vec<Endpoint>,
    delivery: DeliveryConfig,
    retry: &RetrySchedule,
    timeout: Duration,
    before: &SpoolStats,
) -> Result<ExitCode, String> {
    let dir = spool.dir().to_path_buf();
    let names: HashSet<String> = endpoints.iter().map(|e| e.name().to_owned()).collect();
    let total: u64 = pending_for(before, &names);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut builder = HttpSink::builder().config(delivery).spool(spool);
    for endpoint in endpoints {
        builder = builder.endpoint(endpoint);
    }
    let (sink, guard) = builder.build().map_err(|e| build_error(&e))?;
    // Given up when nothing has moved for one event's whole schedule.
    let stall = crate::send::deadline(retry, timeout);
    let flushed =
        crate::send::flush_while_moving(&guard, &sink, stall, |done| bar.set_position(done));
    bar.finish_and_clear();
    let delivered: u64 = sink.stats().iter().map(|s| s.delivered).sum();
    drop(sink);
    let _ = guard.shutdown(Duration::from_secs(1));

    let after = spool::inspect(&dir).map_err(|e| e.to_string())?;
    let left = pending_for(&after, &names);
    let dead = after.dead_letters.saturating_sub(before.dead_letters);
    let mut summary = format!("{delivered} of {total} event(s) delivered");
    if dead > 0 {
        summary.push_str(&format!(
            "; {dead} dead-lettered (deskhook dead-letters list --spool {})",
            dir.display()
        ));
    }
    if left > 0 {
        summary.push_str(&format!("; {left} left in the spool"));
        if let Err(e) = flushed {
            summary.push_str(&format!(" ({e})"));
        }
    }
    let others: Vec<String> = after
        .endpoints
        .iter()
        .filter(|(name, _)| !names.contains(name))
        .map(|(name, n)| format!("{n} for '{name}'"))
        .collect();
    if !others.is_empty() {
        summary.push_str(&format!(
            "; not drained (no such endpoint configured): {}",
            others.join(", ")
        ));
    }
    crate::send::print_line(&summary);
    Ok(if dead == 0 && left == 0 && others.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Pending rows of the named endpoints.
fn pending_for(stats: &SpoolStats, names: &HashSet<String>) -> u64 {
    stats
        .endpoints
        .iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(_, n)| n)
        .sum()
}

/// What `drain` says when its sink cannot be built: a refusal says what would allow the
/// address, and only one of them is a flag's to allow.
fn build_error(e: &deskhook_transports::Error) -> String {
    match e {
        deskhook_transports::Error::Refused(refusal)
            if refusal.remedy() == Remedy::AllowPrivate =>
        {
            format!("{e}; pass --allow-private to send to loopback and private addresses")
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use deskhook_transports::guard::{AddressPolicy, check_ip};

    use super::build_error;

    /// The address is checked on its own, never sent to (tests send to loopback only).
    fn refused(ip: &str, allow_private: bool) -> String {
        let policy = AddressPolicy::default().allow_private(allow_private);
        let refusal = check_ip(ip.parse().unwrap(), &policy).unwrap_err();
        build_error(&deskhook_transports::Error::Refused(refusal))
    }

    #[test]
    fn a_refused_address_is_given_the_flag_only_when_the_flag_would_allow_it() {
        // A cloud metadata address: no flag allows it.
        let metadata = refused("169.254.169.254", true);
        assert!(metadata.contains("never allowed"), "{metadata}");
        assert!(!metadata.contains("pass --allow-private"), "{metadata}");
        let loopback = refused("127.0.0.1", false);
        assert!(loopback.contains("pass --allow-private"), "{loopback}");
    }
}
