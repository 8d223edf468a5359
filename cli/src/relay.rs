//! `deskhook relay`: deliver the events of a NATS JetStream stream to the endpoints of a
//! deskhook.toml, sharing the work with any number of other relays.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use deskhook::policy::parse_duration;
use deskhook_transports::endpoint_store::{PREVIOUS_KEYS_ENV, SECRETS_KEY_ENV};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::nats::StreamSettings;
use deskhook_transports::relay::Relay;

/// Deliver the events a NatsSink published, from the JetStream stream, to the endpoints of
/// --config (and of --endpoints-bucket); stop on SIGTERM or SIGINT.
///
/// Events are spread over the stream's partitions by ticket. Relays with the same --durable
/// share the partitions through leases in the KV bucket DURABLE-leases: each owns a fair
/// share, pulls from it continuously (up to --max-pending messages outstanding per
/// partition; a message carries one event, or a batch) and keeps each ticket's events in
/// order per endpoint. A relay acknowledges an event once
/// every subscribed endpoint delivered it or dead-lettered it (the endpoints' retry
/// schedules, breaker, SSRF guard and signing secrets apply). A new relay takes partitions
/// from the others; a relay that stops gives its partitions back at once; the partitions
/// of a relay that dies are taken over when its --lease ends, from the first event it had
/// not acknowledged (those it delivered without acknowledging arrive again, with the same
/// webhook-id).
///
/// SIGHUP re-reads --config and applies the difference to its endpoints (printing `reloaded
/// FILE: N endpoint(s)`; a file that no longer reads changes nothing).
///
/// Prints `relaying from stream S (N partitions) to M endpoint(s)` once it is ready,
/// `partitions: 0,3,7` each time the partitions it owns change, and a summary when it stops:
/// it finishes the events it is delivering within --grace, then leaves the rest to the
/// partitions' next owners.
///
/// To try relays without a helpdesk, `deskhook publish --nats URL --all-actions` puts events
/// into the stream as a helpdesk's NatsSink does.
#[derive(Debug, clap::Args)]
#[command(after_long_help = RELAY_HELP)]
pub(crate) struct Args {
    /// The NATS servers, comma-separated: nats://host:4222, tls://host:4222 or host:port;
    /// nats://user:password@host:4222 (or nats://token@host:4222) logs in. From the
    /// environment, DESKHOOK_NATS keeps credentials out of the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "DESKHOOK_NATS",
        hide_env_values = true
    )]
    nats: String,
    /// The deskhook.toml whose [[endpoint]]s and [delivery] settings to deliver with.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The name relays that share the work have in common (the prefix of their consumers and
    /// of their leases and parked events buckets). Every relay of a stream has the same: one
    /// named otherwise refuses to start while the others' consumers are on the stream.
    #[arg(long, value_name = "NAME", default_value = "deskhook-relay")]
    durable: String,
    /// The JetStream stream.
    #[arg(long, value_name = "NAME", default_value = deskhook_transports::nats::DEFAULT_STREAM)]
    stream: String,
    /// The subject prefix the events were published under.
    #[arg(long, value_name = "PREFIX", default_value = deskhook_transports::nats::DEFAULT_SUBJECT_PREFIX)]
    subject_prefix: String,
    #[command(flatten)]
    guard: crate::flags::Guard,
    /// How long the server waits without news of an event before it hands it out again (the
    /// relay sends news every third of this while it delivers); 300ms to 1h.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    ack_wait: Duration,
    /// How long a stopping relay lets the events it is delivering finish; at most 1h. The
    /// requests still on the wire then are waited for (each within its endpoint's timeout)
    /// before other relays take the partitions. Also how long a partition handed back to
    /// another relay waits for its events to finish or be parked.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    grace: Duration,
    /// How many times a partition's consumer may hand an event out (acknowledgements lost)
    /// before it is given up; at least 1.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..))]
    max_handoffs: u32,
    /// How long a partition stays with a relay that stopped renewing its lease (one that
    /// died) before another takes it over; 1s to 1h. Applies when the leases bucket is
    /// made.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    lease: Duration,
    /// How long a message may stay outstanding while its events wait for a failing endpoint;
    /// then the relay parks them (in the KV bucket DURABLE-parked) and acknowledges the
    /// message, so that the partition goes on without them (at once for a paused endpoint).
    /// While an endpoint fails, its tickets' events reach their other endpoints one per DUR/2
    /// to one per DUR. At most 24h.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    park_after: Duration,
    /// Messages each partition may have outstanding (taken and not yet acknowledged), 1 to
    /// 100000.
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=deskhook_transports::relay::MAX_PENDING as u64))]
    max_pending: usize,
    /// Log a status line every DUR (at info, on stderr): the events in delivery by partition,
    /// those acknowledged, and what the engine has queued and in flight. 100ms to 24h.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    log_status_every: Option<Duration>,
    /// Also deliver to the endpoints of this KV bucket (`deskhook endpoints --nats`), applying
    /// every change as it comes; prints `endpoints at revision N` after each. Their secrets
    /// open with the key in the environment variable --key-env names.
    /// The bucket must exist (the first `deskhook endpoints add` makes it): a misspelt name
    /// is refused, naming the buckets there are. A record this relay cannot read (sealed
    /// with another key, written by a newer deskhook) or use at all (a name or URL this
    /// build refuses) is refused, naming it, unless
    /// --leave-out-unusable; one whose settings do not work here (a ca_file or
    /// template_file missing on this machine) is held, paused, its events kept, until a
    /// change this relay can apply.
    #[arg(long, value_name = "BUCKET")]
    endpoints_bucket: Option<String>,
    /// Make the --endpoints-bucket, empty, when it does not exist: for relays started before
    /// the first endpoint is added. Until then, events are acknowledged as for no endpoint.
    #[arg(long, requires = "endpoints_bucket")]
    create_endpoints_bucket: bool,
    /// The environment variable holding the secrets key the bucket's endpoints were sealed
    /// with (as `deskhook endpoints --key-env`).
    #[arg(long, value_name = "NAME", default_value = SECRETS_KEY_ENV, requires = "endpoints_bucket")]
    key_env: String,
    /// The environment variable holding the keys a rotation of the secrets key replaces,
    /// comma-separated (as `deskhook endpoints --previous-keys-env`): records not yet sealed
    /// with the new key open with these.
    #[arg(long, value_name = "NAME", default_value = PREVIOUS_KEYS_ENV, requires = "endpoints_bucket")]
    previous_keys_env: String,
    /// Refuse the bucket's records not sealed in the current layout (written without the
    /// key, or before `deskhook endpoints reseal`): anyone who can write to the bucket could
    /// have written them. Without it they are used, with a warning naming each, but for
    /// those that set template_file, ca_file, secret_env, allow_private or allow_cidrs
    /// (what reaches into this machine's files, environment and networks). A refused record
    /// is one this relay cannot use (see --leave-out-unusable).
    #[arg(long, requires = "endpoints_bucket")]
    require_sealed: bool,
    /// Start even when the bucket has records this relay cannot read: each is logged, and
    /// its endpoint left out, its events acknowledged without delivery there. Without it
    /// the relay refuses to start, naming them.
    #[arg(long, requires = "endpoints_bucket")]
    leave_out_unusable: bool,
    /// Worker threads of the relay's runtime, 1 to 1024 (one per core when not given). On a
    /// machine shared with nats-server and other relays, 1 spends less on threads waking
    /// each other (benches/README.md measures it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
}

/// The runtime of a daemon (`deskhook relay`, `deskhook serve`): tokio's multi-threaded
/// one, with `threads` worker threads, or one per core.
pub(crate) fn daemon_runtime(threads: Option<u16>) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(usize::from(threads));
    }
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let threads = args.threads;
    if args.lease < Duration::from_secs(1) {
        crate::usage_error(
            "relay",
            format!(
                "--lease {:?} is too short: a relay renews its leases every quarter of it, so \
             give at least 1s (10s is the default)",
                args.lease
            ),
        );
    }
    let config = crate::send::load_config(&args.config)?;
    // Refused, not left out: whoever wrote it expects the events to be kept on disk.
    if config.spool().map_err(|e| e.to_string())?.is_some() {
        return Err(format!(
            "'{}' has a [spool] section, and a relay delivers without one (the stream is its \
             durable queue, and what it does not finish goes back to the stream): remove the \
             section from the relay's configuration",
            args.config.display()
        ));
    }
    let delivery = config.delivery_config().map_err(|e| e.to_string())?;
    // Said whole: relative, it is relative to a working directory a service manager chose,
    // and relays started in one directory share it.
    log::info!(
        target: deskhook::LOG_TARGET,
        "relay: dead letters go to {} and to the stream {}_DEAD",
        std::path::absolute(&delivery.dead_letter_path)
            .unwrap_or(delivery.dead_letter_path.clone())
            .display(),
        args.stream
    );
    let mut builder = HttpSink::builder().config(delivery);
    let endpoints = endpoints_of(&config, args.guard.allow_private)?;
    if endpoints.is_empty() && args.endpoints_bucket.is_none() {
        return Err(format!(
            "'{}' has no [[endpoint]]; a relay needs somewhere to deliver",
            args.config.display()
        ));
    }
    for endpoint in endpoints {
        builder = builder.endpoint(endpoint);
    }
    let relay = Relay::builder(&args.nats, builder)
        .stream(
            StreamSettings::new()
                .name(&args.stream)
                .subject_prefix(&args.subject_prefix),
        )
        .durable(&args.durable)
        .ack_wait(args.ack_wait)
        .grace(args.grace)
        .max_handoffs(args.max_handoffs)
        .lease(args.lease)
        .park_after(args.park_after)
        .max_pending(args.max_pending)
        .on_partitions(|owned| {
            let owned: Vec<String> = owned.iter().map(u32::to_string).collect();
            crate::send::print_line(&format!("partitions: {}", owned.join(",")));
        });
    let relay = match args.log_status_every {
        Some(every) => relay.log_status_every(every),
        None => relay,
    };
    let relay = match &args.endpoints_bucket {
        None => relay,
        Some(bucket) => {
            let (key, previous) =
                crate::endpoints::keys_from_env(&args.key_env, &args.previous_keys_env)?;
            if args.require_sealed && key.is_none() {
                crate::usage_error(
                    "relay",
                    format!(
                        "--require-sealed needs the secrets key (in ${}): without it nothing is \
                     sealed, so nothing could be required",
                        args.key_env
                    ),
                );
            }
            relay
                .endpoints_bucket(bucket, key)
                .create_endpoints_bucket(args.create_endpoints_bucket)
                .previous_keys(previous)
                .require_sealed(args.require_sealed)
                .leave_out_unusable(args.leave_out_unusable)
                .on_endpoints(|revision| {
                    crate::send::print_line(&format!("endpoints at revision {revision}"));
                })
        }
    };
    // SIGHUP re-reads --config and applies its endpoints (a file that no longer reads is
    // reported and changes nothing).
    #[cfg(unix)]
    let relay = {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let path = args.config.clone();
        let allow_private = args.guard.allow_private;
        let bucket = args.endpoints_bucket.is_some();
        reload_on_hangup(path, (allow_private, bucket), tx);
        relay.reloads(rx)
    };
    let relay = relay.on_ready(|ready| {
        crate::send::print_line(&format!(
            "relaying from stream {} ({} partitions) to {} endpoint(s)",
            ready.stream,
            ready.partitions,
            ready.endpoints.len()
        ));
    });
    let runtime = daemon_runtime(threads)?;
    let report = runtime.block_on(async {
        // Installed before the relay starts, so that a signal right after the ready
        // line stops it cleanly rather than killing it.
        let stop = stop_signal()?;
        relay.run(stop).await.map_err(|e| match in_flag_terms(&e) {
            Some(message) => crate::usage_error("relay", message),
            None => e.to_string(),
        })
    })?;
    crate::send::print_line(&format!(
        "stopped: {} event(s) acknowledged ({} for no endpoint), {} handed back, {} dead \
         letter(s), {} duplicate(s) acknowledged again, {} skipped message(s) stored again, {} \
         message(s) parked, {} message(s) terminated as not deskhook's",
        report.acknowledged,
        report.unrouted,
        report.handed_back,
        report.dead_lettered,
        report.duplicates,
        report.stored_again,
        report.parked,
        report.terminated
    ));
    Ok(ExitCode::SUCCESS)
}

/// A duration the relay refuses (out of its range), said with the flag that gave it rather
/// than the library's setting: `--ack-wait 10ms cannot work: …`.
fn in_flag_terms(e: &deskhook_transports::Error) -> Option<String> {
    let deskhook_transports::Error::Config(message) = e else {
        return None;
    };
    [
        ("ack_wait ", "--ack-wait "),
        ("lease ", "--lease "),
        ("grace ", "--grace "),
        ("park_after ", "--park-after "),
        ("log_status_every ", "--log-status-every "),
    ]
    .into_iter()
    .find_map(|(setting, flag)| {
        message
            .strip_prefix(setting)
            .map(|rest| format!("{flag}{rest}"))
    })
}

/// The end of `deskhook relay --help`: a cluster, and what it prints.
const RELAY_HELP: &str = "\
With a cluster, give every server; the relay moves to another when one dies:
  deskhook relay --nats nats://nats-a:4222,nats://nats-b:4222,nats://nats-c:4222 \\
      --config /etc/helpdesk/deskhook.toml

It prints:
  relaying from stream DESKHOOK (16 partitions) to 2 endpoint(s)
  partitions: 0,3,5,6,9,12,13,15
  stopped: 18342 event(s) acknowledged (12 for no endpoint), 3 handed back, 0 dead
  letter(s), 0 duplicate(s) acknowledged again, 0 skipped message(s) stored again, 0
  message(s) parked, 0 message(s) terminated as not deskhook's

Dead letters also go to the stream <stream>_DEAD (subject <prefix>-dead.<endpoint>).
--max-pending bounds the events delivered twice when a relay dies; the rules are in the
rustdoc of deskhook_transports::relay.";

/// The endpoints of `config`, with `--allow-private` applied before they are checked (so
/// that it allows a literal private IP too; without the flag the file's own setting holds).
fn endpoints_of(
    config: &deskhook_transports::config::Config,
    allow_private: bool,
) -> Result<Vec<deskhook_transports::delivery::Endpoint>, String> {
    config
        .endpoints_with(|spec| spec.allow_private |= allow_private)
        .map_err(|e| e.to_string())
}

/// A future that resolves on SIGTERM or SIGINT (Ctrl-C); the handlers are installed now.
pub(crate) fn stop_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    let mut signals = StopSignals::install()?;
    Ok(async move {
        signals.next().await;
    })
}

/// SIGTERM and SIGINT (Ctrl-C), each time they come: their handlers are installed when
/// this is made, and stay for the life of the process (a signal that comes with nothing
/// waiting for it is not lost: the next [`next`](StopSignals::next) returns at once).
pub(crate) struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers.
    pub(crate) fn install() -> Result<StopSignals, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| format!("cannot listen for {name}: {e}"))
            };
            Ok(StopSignals {
                term: listen(SignalKind::terminate(), "SIGTERM")?,
                int: listen(SignalKind::interrupt(), "SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves on the next SIGTERM or SIGINT, with the status a shell gives a command the
    /// signal ended: 143 for SIGTERM, 130 for SIGINT (128 and its number).
    pub(crate) async fn next(&mut self) -> u8 {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => 143,
            _ = self.int.recv() => 130,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            130
        }
    }
}

/// On each SIGHUP (from a thread of its own, so that the runtime is free), re-reads `path`
/// and sends its endpoints to the relay; prints `reloaded FILE: N endpoint(s)`. `options`:
/// whether private addresses are allowed, and whether the relay also has an endpoints
/// bucket (without one, a file with no endpoint is refused, as at start).
#[cfg(unix)]
fn reload_on_hangup(
    path: std::path::PathBuf,
    options: (bool, bool),
    tx: tokio::sync::mpsc::UnboundedSender<deskhook_transports::relay::Reload>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (allow_private, bucket) = options;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("deskhook: SIGHUP will not reload the config: {e}");
            return;
        }
    };
    // The handler is installed before this returns: a SIGHUP right after start reloads
    // rather than ends the relay (the signal's default action).
    let hangups = {
        let _entered = runtime.enter();
        signal(SignalKind::hangup())
    };
    let Ok(mut hangups) = hangups else {
        eprintln!("deskhook: cannot listen for SIGHUP; the config will not be reloaded");
        return;
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            while hangups.recv().await.is_some() {
                let read = crate::send::load_config(&path)
                    .and_then(|config| endpoints_of(&config, allow_private))
                    .and_then(|endpoints| {
                        if endpoints.is_empty() && !bucket {
                            Err(format!(
                                "'{}' has no [[endpoint]]; a relay needs somewhere to deliver",
                                path.display()
                            ))
                        } else {
                            Ok(endpoints)
                        }
                    });
                match read {
                    Ok(endpoints) => {
                        let n = endpoints.len();
                        let (applied, done) = tokio::sync::oneshot::channel();
                        if tx.send((endpoints, applied)).is_err() || done.await.is_err() {
                            return;
                        }
                        crate::send::print_line(&format!(
                            "reloaded {}: {n} endpoint(s)",
                            path.display()
                        ));
                    }
                    Err(e) => eprintln!("deskhook: SIGHUP: {e}; the endpoints stay as they were"),
                }
            }
        });
    });
}
