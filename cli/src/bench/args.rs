//! `deskhook bench`'s command line: its flags (the `--help` text), and the checks clap cannot
//! make itself.

use std::path::PathBuf;
use std::time::Duration;

use deskhook::policy::RetrySchedule;

use super::BENCH_RETRY;

/// Which transport delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// `HttpSink`: worker threads over blocking sockets (the crate's own HTTP/1.1).
    Blocking,
    /// `AsyncHttpSink`: tokio tasks over its own HTTP/1.1 (hyper for HTTP/2), on a runtime
    /// of the sink's own.
    Async,
    /// `NatsSink`: publishes to a JetStream stream (--nats); with --relays, `deskhook relay`
    /// processes deliver from it to --url.
    Nats,
}

/// Measure delivery throughput and the cost of `emit` against a receiver you run.
///
/// Emits --events synthetic Zenlix events from one thread through the global facade
/// (`deskhook::set_dispatcher`, then `deskhook::emit`) into the real delivery engine and the
/// chosen transport, POSTing each to --url. Tickets are B0000001, B0000002, … (one event
/// each by default, so they are delivered in parallel; see --tickets), actions cycle
/// through the twelve, and each body is padded to about --body-size bytes. The queue holds
/// every event, within the memory budget (--max-queued-bytes); failures are retried at
/// 0s,100ms,1s, and what still fails goes to a dead-letter file in the temporary directory
/// ($TMPDIR), whose path is printed.
///
/// A progress bar on stderr counts deliveries. At the end one JSON line goes to stdout:
///
///   {"events":…,"endpoints":…,"tenants":…,"deliveries":…,"delivered":…,"failed":…,
///    "dropped":…,"seconds":…,"events_per_sec":…,"emit_ns_p50":…,"emit_ns_p99":…,"emit_waits":…,
///    "emit_preempted":…,"rss_max_kb":…,"rss_endpoints_kb":…,"threads_max":…,
///    "cpu_seconds":…,"cpu_us_per_delivery":…,"cpu_user_us_per_delivery":…,
///    "cpu_emit_us_per_event":…,"cpu_us_per_delivery_beside_emit":…,
///    "order_violations":…,"attempt_log":…,"backlog":…,"backlog_stalled":…}
///
/// deliveries is what the events should make (events × the endpoints of their tenant);
/// delivered counts those made; failed is deliveries − delivered, and dropped those of them
/// the sink dropped for want of room (the queue or --max-queued-bytes); seconds runs from the
/// first emit to the last delivery; events_per_sec is delivered per second; emit_ns_* are
/// percentiles of the duration of each `emit` call (while delivery runs); emit_waits and
/// emit_preempted count the context switches of the emitting thread during the emits:
/// voluntary ones (it waited: a lock, a full queue; not --backlog's sleeps between emits)
/// and involuntary ones (the scheduler gave its core to another thread); rss_max_kb is the
/// peak resident set (VmHWM);
/// rss_endpoints_kb is the resident set the endpoints added when they were registered
/// (before any event); threads_max the most threads the process had; cpu_seconds the CPU
/// time (user + system, every thread) the process used from the first emit to the last
/// delivery, and cpu_us_per_delivery that per delivery made, in µs (cpu_user_us_per_delivery
/// the user part alone: deskhook's own work, without the kernel's sockets);
/// cpu_emit_us_per_event the CPU the emitting thread used per `emit` call (rendering the
/// body and queueing it, on the application's thread), and cpu_us_per_delivery_beside_emit
/// the rest of the process's CPU per delivery (the delivery side alone; the process's CPU
/// is read in ticks of 10 ms, the thread's in nanoseconds, so short runs are coarse);
/// order_violations the deliveries that came before an earlier event of their endpoint and
/// ticket (always 0); attempt_log the --attempt-log it ran with; backlog the --backlog it ran
/// with (null: every event emitted at once), and backlog_stalled whether pacing gave up
/// because nothing settled for a second (null without --backlog). The /proc readings are
/// null where /proc is not available. Exits 0 only if every delivery was made, in order.
///
/// With --spool DIR, each event goes through a durable spool in DIR first: the sink's
/// `send_with_receipt` is called directly (not the facade) so that the run knows when each
/// event is on disk, and each time that advances a line `durable N` goes to stdout, flushed
/// at once: every event 1..N is durable. The report then also has durable_per_sec (events
/// made durable per second, from the first emit to the last commit) and spool_max_batch.
/// Compare --spool-max-batch 1 (one fsync per event) with the default (group commit).
///
/// With --transport nats, the events are published through a NatsSink to a JetStream stream
/// of the run's own on the server at --nats: DESKHOOK_BENCH_<pid>, subjects
/// deskhook-bench-<pid>.>, --partitions partitions. It is deleted first if it exists (a
/// killed run of a process with the same id) and deleted at the end, so that no old message
/// counts and nothing is left on the server. delivered counts the events JetStream
/// acknowledged, and the report also has publish_per_sec: those per second, from the first
/// emit until all are acknowledged (the same as events_per_sec), and batch (--batch). With --relays N, N
/// `deskhook relay` processes are started first (this executable, with a deskhook.toml in
/// the temporary directory whose one endpoint is --url, with --relay-workers requests in
/// flight (16 by default), the --retry schedule and the --secret secrets), and the run
/// measures end to end: from the
/// first emit until the stream is empty, every event delivered to --url and acknowledged.
/// The report then has relayed (events the relays delivered to --url, from their summaries),
/// end_to_end_seconds and delivered_per_sec (relayed per end-to-end second); the relays are
/// then stopped with SIGTERM and waited for (and killed if the run fails). Without --relays
/// those three are null.
///
/// Send only to a receiver of your own: the benchmark is a flood.
#[derive(Debug, clap::Args)]
#[command(mut_arg("url", |a| a.help(
    "Where to POST the events (http or https), e.g. http://127.0.0.1:18080/. Required with the \
     HTTP transports; with --transport nats, where the relays deliver (required with --relays)"
)))]
#[command(mut_arg("secret", |a| a.help(
    "A signing secret: 'whsec_' and base64 (HMAC), or a 'whsk_' ed25519 key (`deskhook secret \
     new --ed25519`). Repeat to sign with several, as during a rotation. Without one, requests \
     go unsigned"
)))]
#[command(mut_arg("allow_private", |a| a.help(
    "Allow private, loopback and link-local addresses (127.0.0.1, localhost, 10.0.0.0/8, \
     192.168.0.0/16, …), refused by default as a guard against SSRF, whether written as IPs or \
     resolved from host names. Cloud metadata addresses stay refused"
)))]
pub(crate) struct Args {
    #[command(flatten)]
    pub(super) target: crate::flags::Target,
    /// How many events to emit.
    #[arg(long, value_name = "N", value_parser = crate::flags::at_least(1))]
    pub(super) events: u64,
    /// Requests in flight at once (the endpoint's `workers`: threads of the blocking
    /// transport, tasks of the async one, publishes awaiting their acknowledgement with
    /// nats). Defaults to 16, and to the NatsSink's defaults with nats: 256, 1024 with
    /// --batch.
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(super) concurrency: Option<u64>,
    /// The transport that delivers.
    #[arg(long, value_enum, default_value_t = Transport::Blocking)]
    pub(super) transport: Transport,
    /// The NATS server(s) to publish to with --transport nats, e.g. nats://127.0.0.1:4222
    /// (nats://user:password@host:4222 logs in).
    #[arg(long, value_name = "URL")]
    pub(super) nats: Option<String>,
    /// With --transport nats, how many `deskhook relay` processes deliver from the stream to
    /// --url while the events are published; 0 measures publishing only.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=256))]
    pub(super) relays: u32,
    /// With --transport nats and --relays, requests in flight at once in each relay (its
    /// endpoint's workers), as --concurrency is for the HTTP transports. Defaults to 16.
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(super) relay_workers: Option<u32>,
    /// With --transport nats and --relays, each relay's runtime threads (`deskhook relay
    /// --threads`); one per core when not given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(super) relay_threads: Option<u16>,
    /// With --transport nats, the partitions of the stream, shared among the relays (each
    /// owned by one relay at a time). Defaults to 16.
    #[arg(long, value_name = "P",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(deskhook_transports::nats::MAX_PARTITIONS)))]
    pub(super) partitions: Option<u32>,
    /// With --transport nats, up to B events in one stream message
    /// (`NatsSinkBuilder::batch`): batches form while a publish waits for its
    /// acknowledgement. Defaults to 1 (a message per event).
    #[arg(long, value_name = "B",
          value_parser = clap::value_parser!(u32).range(1..=i64::try_from(deskhook_transports::nats::MAX_BATCH).unwrap_or(i64::MAX)))]
    pub(super) batch: Option<u32>,
    /// With --transport nats, how many copies of the stream a cluster keeps (3 on a 3-node
    /// cluster). Defaults to 1.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u64).range(1..=5))]
    pub(super) replicas: Option<u64>,
    /// Deliver to N endpoints on the one receiver: endpoint i is named e<i> and posts to
    /// --url with e<i> appended to its path (http://127.0.0.1:8080/ gives /e0, /e1, …).
    /// Events are spread over them in turn, through tenants: endpoint i belongs to tenant
    /// t<i mod T> and event n to tenant t<n mod T>, where T is --tenants (by default N: each
    /// event goes to one endpoint). --concurrency is then the whole sink's requests in flight
    /// (and each endpoint's limit). Without --endpoints, one endpoint named bench posts to
    /// --url itself.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(super) endpoints: Option<u64>,
    /// With --endpoints, the tenants the endpoints and events are spread over; each event
    /// then goes to the N/T endpoints of its tenant.
    #[arg(long, value_name = "T", requires = "endpoints",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(super) tenants: Option<u64>,
    /// How many tickets the events cycle through (event n is on ticket n mod K); each
    /// endpoint gets a ticket's events in order, which the run checks. Defaults to one ticket
    /// per event.
    #[arg(long, value_name = "K", value_parser = crate::flags::at_least(1))]
    pub(super) tickets: Option<u64>,
    /// Register the endpoints paused: every event is queued and nothing is sent, so the run
    /// measures `emit` alone (the reference for its percentiles while delivery runs).
    /// deliveries is then 0; what is queued goes to /dev/null at the end. HTTP transports
    /// only.
    #[arg(long)]
    pub(super) paused: bool,
    /// Keep at most N deliveries waiting or in flight: once the emitted deliveries are N
    /// ahead of those settled (delivered or dead-lettered), the emitting loop sleeps, outside
    /// the timed `emit` calls, until they are N/2 ahead. The flood then runs with a queue of
    /// bounded size, as a helpdesk's does when delivery keeps up, instead of every event
    /// queued at once (100,000 events of 10 KiB are 1.2 GB of memory taken fresh from the
    /// kernel inside `emit`). Pacing stops for the rest of the run if nothing settles for a
    /// second (a receiver that fails everything). HTTP transports without --paused.
    #[arg(long, value_name = "N", value_parser = crate::flags::at_least(2))]
    pub(super) backlog: Option<u64>,
    /// The sink's memory budget for queued events (`max_queued_bytes`); what goes over it is
    /// dropped, counted and logged. Defaults to the sink's default, 256 MiB: raise it for
    /// large bodies, since the run emits faster than it delivers (100,000 events of 10 KiB
    /// take about 1.2 GB).
    #[arg(long, value_name = "BYTES", value_parser = crate::flags::at_least(1))]
    pub(super) max_queued_bytes: Option<u64>,
    /// How far below the emitting thread's priority the delivery threads run
    /// (`worker_nice`, 0 to 19, under `SCHED_BATCH` above 0; 0: the same priority and
    /// policy). Defaults to the sink's default, 10.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=19))]
    pub(super) worker_nice: Option<u8>,
    /// The approximate size of each body in bytes; the ticket's text is padded to reach it.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub(super) body_size: usize,
    #[command(flatten)]
    pub(super) guard: crate::flags::Guard,
    /// With an https --url, trust only the certificate authorities in this PEM file (a
    /// receiver with a certificate of your own making, such as benches/throughput.sh's
    /// nginx). HTTP transports only.
    #[arg(long, value_name = "PEM")]
    pub(super) ca_file: Option<PathBuf>,
    /// The delay before each attempt, separated by commas.
    #[arg(long, value_name = "LIST", default_value = BENCH_RETRY)]
    pub(super) retry: RetrySchedule,
    /// How long to wait for delivery after the last emit. Defaults to a minute, plus a
    /// millisecond per event, plus the retry schedule.
    #[arg(long, value_name = "DUR", value_parser = deskhook::policy::parse_duration)]
    pub(super) wait: Option<Duration>,
    /// Emit through a durable spool in this directory (created if needed; no other process
    /// may have it open).
    #[arg(long, value_name = "DIR")]
    pub(super) spool: Option<PathBuf>,
    /// Most emits per spool transaction; 1 syncs every event on its own.
    #[arg(long, value_name = "N", default_value_t = 1024, requires = "spool",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(super) spool_max_batch: u64,
    /// How the spool syncs a commit: full (survives power loss) or normal (survives the
    /// process being killed).
    #[arg(long, value_enum, default_value_t = SpoolSync::Full, requires = "spool")]
    pub(super) spool_sync: SpoolSync,
    /// Attempts the attempt log keeps for the console (0 turns it off, in the spool too):
    /// to measure what recording every attempt costs.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub(super) attempt_log: usize,
    /// Render every body with a payload template (blocking and async): the cost of templates.
    #[command(flatten)]
    pub(super) template: crate::render::TemplateArgs,
}

/// `--spool-sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SpoolSync {
    /// `synchronous = FULL`.
    Full,
    /// `synchronous = NORMAL`.
    Normal,
}

/// Refuses flags that do not go with the transport: exits 2, as clap does, for what clap
/// cannot check itself (it depends on the value of --transport and --relays).
pub(super) fn check_flags(args: &Args) {
    match args.transport {
        Transport::Nats => {
            if args.nats.is_none() {
                crate::usage_error(
                    "bench",
                    "--transport nats needs --nats URL, the NATS server to publish to (such as \
                     nats://127.0.0.1:4222)",
                );
            }
            if args.relays > 0 && args.target.url.is_none() {
                crate::usage_error(
                    "bench",
                    "--relays needs --url, the endpoint the relays deliver to",
                );
            }
            if args.paused {
                crate::usage_error("bench", "--paused is for --transport blocking and async");
            }
            if args.backlog.is_some() {
                crate::usage_error("bench", "--backlog is for --transport blocking and async");
            }
            if args.ca_file.is_some() {
                crate::usage_error(
                    "bench",
                    "--ca-file is for --transport blocking and async (relays read their \
                     endpoint's CA from its ca_file in deskhook.toml)",
                );
            }
            if args.template.given() {
                crate::usage_error(
                    "bench",
                    "--template is for --transport blocking and async (relays read their \
                     endpoint's template from deskhook.toml)",
                );
            }
            if args.endpoints.is_some() {
                crate::usage_error(
                    "bench",
                    "--endpoints is for --transport blocking and async (relays deliver to the \
                     one endpoint at --url)",
                );
            }
            let relay_only = [
                ("--relay-workers", args.relay_workers.is_some()),
                ("--relay-threads", args.relay_threads.is_some()),
            ];
            if args.relays == 0
                && let Some((flag, _)) = relay_only.iter().find(|(_, given)| *given)
            {
                crate::usage_error(
                    "bench",
                    format!("{flag} is for the relays: give --relays N too"),
                );
            }
            if args.relays == 0 && !args.target.secret.is_empty() {
                crate::usage_error(
                    "bench",
                    "--secret signs what relays deliver to --url: give --url and --relays N too, \
                     or leave --secret out to measure publishing only",
                );
            }
            if args.relays == 0 && args.target.url.is_some() {
                crate::usage_error(
                    "bench",
                    "with --transport nats, --url is where relays deliver: give --relays N too, \
                     or leave --url out to measure publishing only",
                );
            }
        }
        Transport::Blocking | Transport::Async => {
            if args.target.url.is_none() {
                crate::usage_error(
                    "bench",
                    "--url is required with --transport blocking and async",
                );
            }
            let nats_only = [
                ("--nats", args.nats.is_some()),
                ("--relays", args.relays > 0),
                ("--relay-workers", args.relay_workers.is_some()),
                ("--relay-threads", args.relay_threads.is_some()),
                ("--partitions", args.partitions.is_some()),
                ("--batch", args.batch.is_some()),
                ("--replicas", args.replicas.is_some()),
            ];
            if let Some((flag, _)) = nats_only.iter().find(|(_, given)| *given) {
                crate::usage_error("bench", format!("{flag} is for --transport nats"));
            }
            if args.paused && args.backlog.is_some() {
                crate::usage_error(
                    "bench",
                    "--backlog waits for deliveries to settle, and --paused makes none: give \
                     one or the other",
                );
            }
        }
    }
}
