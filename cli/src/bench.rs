//! `deskhook bench`: emit many synthetic events through the real facade, engine and transport
//! to one endpoint (or to a JetStream stream, and from there through `deskhook relay`
//! processes to one endpoint), and report throughput and the cost of `emit` as one JSON line.

mod args;
mod fleet;
mod nats;
mod pace;
mod proc;

pub(crate) use args::Args;
use args::{SpoolSync, Transport, check_flags};
use pace::Pace;

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use deskhook::policy::RetrySchedule;
use std::sync::mpsc;

use deskhook::sink::Emitted;
use deskhook::{Action, Dispatcher, EventRef, Ticket, User};
use deskhook_transports::delivery::{
    AttemptRecord, DeliveryConfig, DeliveryGuard, DeliverySink, Endpoint, Receipt,
};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::nats::{
    DEFAULT_BATCH_CONCURRENCY, DEFAULT_CONCURRENCY, DEFAULT_PARTITIONS, NatsSink,
};
use deskhook_transports::spool::{Durability, Spool, Synchronous};
use indicatif::{ProgressBar, ProgressStyle};

/// The retry schedule of the benchmark: a lost request is tried again soon, and a receiver
/// that keeps failing does not hold the run up for long.
pub(super) const BENCH_RETRY: &str = "0s,100ms,1s";

/// How often the progress bar reads the counters.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Requests in flight at once for the HTTP transports, when --concurrency is not given.
const HTTP_CONCURRENCY: u64 = 16;

/// `--relay-workers` when not given: each relay's requests in flight, as
/// [`HTTP_CONCURRENCY`] is for the HTTP transports.
const DEFAULT_RELAY_WORKERS: u32 = 16;

/// Events delivered, and events finished for good (delivered, dead-lettered or dropped).
fn progress(sink: &DeliverySink) -> (u64, u64) {
    let t = sink.totals();
    (t.delivered, t.delivered + t.dead_lettered + t.dropped)
}

/// Percentile `p` (0–100) of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    (!sorted.is_empty()).then(|| sorted[(sorted.len() - 1) * p / 100])
}

/// A path in the temporary directory that names this run: `deskhook-bench-<pid>-<nanos>`
/// followed by `suffix`.
fn temporary_path(suffix: &str) -> PathBuf {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!(
        "deskhook-bench-{}-{stamp}{suffix}",
        std::process::id()
    ))
}

/// A new, empty file in the temporary directory for this run's dead letters.
fn temporary_dead_letter_file() -> Result<PathBuf, String> {
    let path = temporary_path(".jsonl");
    let dir = std::env::temp_dir();
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            format!(
                "cannot create a dead-letter file in '{}': {e} (set TMPDIR to a writable \
                 directory)",
                dir.display()
            )
        })?;
    Ok(path)
}

/// The ticket and user every event is made of, with the ticket's text padded so that a body
/// is about `body_size` bytes.
fn synthetic(body_size: usize) -> Result<(Ticket, User), String> {
    let user = User::new("bench@example.com", "Bench User");
    let mut ticket = Ticket::new(code(1), "Benchmark ticket");
    ticket.author = user.clone();
    ticket.target_group = "Default group".to_owned();
    // The bodies differ only in the action, its description and the code's digits, so one
    // measurement (the mean over the twelve actions) sizes them all; the padding is ASCII,
    // which JSON does not escape.
    let mut total = 0;
    for action in Action::ALL {
        total += serde_json::to_vec(&EventRef::new(action, &ticket, &user))
            .map_err(|e| format!("cannot serialize the synthetic event: {e}"))?
            .len();
    }
    let base = total / Action::ALL.len();
    ticket.text = "x".repeat(body_size.saturating_sub(base));
    Ok((ticket, user))
}

/// The ticket code of event `n`: `B0000001`, …
fn code(n: u64) -> String {
    let mut code = String::with_capacity(8);
    write_code(&mut code, n);
    code
}

/// Replaces the contents of `buf` with the ticket code of event `n`, reusing its allocation.
fn write_code(buf: &mut String, n: u64) {
    buf.clear();
    let _ = write!(buf, "B{n:07}");
}

/// How long to wait for delivery: a minute, plus a millisecond per event, plus the retry
/// schedule.
fn deadline(events: u64, retry: &RetrySchedule) -> Duration {
    Duration::from_secs(60)
        .saturating_add(Duration::from_millis(events))
        .saturating_add(crate::send::longest_delays(retry))
}

/// Seconds rounded to the microsecond, for the report.
fn rounded(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// Events per second, 0 for no time at all.
fn rate(count: u64, d: Duration) -> u64 {
    if d.is_zero() {
        0
    } else {
        (count as f64 / d.as_secs_f64()).round() as u64
    }
}

/// CPU time per delivery in µs, to a tenth.
fn per_delivery(cpu: Duration, delivered: u64) -> f64 {
    (cpu.as_secs_f64() * 1e6 / delivered as f64 * 10.0).round() / 10.0
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    check_flags(&args);
    let secrets = args.target.secrets()?;
    let template = args.template.template("bench")?;
    let retry = args.retry.clone();
    let is_nats = args.transport == Transport::Nats;
    let batch = args.batch.unwrap_or(1);
    let concurrency = args.concurrency.unwrap_or(match (is_nats, batch) {
        (true, 1) => DEFAULT_CONCURRENCY as u64,
        (true, _) => DEFAULT_BATCH_CONCURRENCY as u64,
        (false, _) => HTTP_CONCURRENCY,
    });
    let workers = usize::try_from(concurrency).map_err(|e| e.to_string())?;
    let events = args.events;
    let queue_capacity =
        usize::try_from(events).map_err(|_| format!("--events {events} is too many"))?;
    let max_payload = DeliveryConfig::default().max_payload;
    if args.body_size > max_payload {
        return Err(format!(
            "--body-size {} is over the {max_payload}-byte payload limit: every event would be \
             dead-lettered; give at most {max_payload}",
            args.body_size
        ));
    }
    let fleet = match args.endpoints {
        Some(n) => fleet::Fleet::new(
            usize::try_from(n).map_err(|e| e.to_string())?,
            args.tenants.and_then(|t| usize::try_from(t).ok()),
        ),
        None => fleet::Fleet::single(),
    };
    let asked = if is_nats {
        events
    } else {
        fleet.deliveries(events)
    };
    let deliveries = if args.paused { 0 } else { asked };
    let tickets = args.tickets.unwrap_or(events);
    let (mut ticket, user) = synthetic(args.body_size)?;
    let mut emit_ns: Vec<u64> = Vec::new();
    emit_ns
        .try_reserve_exact(queue_capacity)
        .map_err(|e| format!("--events {events} is too many: {e}"))?;

    let ca_pem = match &args.ca_file {
        Some(path) => Some((
            path.display(),
            std::fs::read(path)
                .map_err(|e| format!("--ca-file {}: cannot read it: {e}", path.display()))?,
        )),
        None => None,
    };
    // The HTTP endpoints; with nats the relays' endpoint is in their deskhook.toml.
    let endpoints = match (&args.target.url, is_nats) {
        (Some(url), false) => fleet.build(url, |name, url| {
            let endpoint = Endpoint::new(name, url)
                .map_err(|e| format!("--url: {e}"))?
                .secrets(secrets.clone())
                .retry(retry.clone())
                .allow_private(args.guard.allow_private)
                .max_in_flight(workers);
            let endpoint = match &template {
                Some(template) => endpoint.template(template.clone()),
                None => endpoint,
            };
            match &ca_pem {
                Some((path, pem)) => endpoint
                    .ca_certificates_pem(pem)
                    .map_err(|e| format!("--ca-file {path}: {e}")),
                None => Ok(endpoint),
            }
        })?,
        _ => Vec::new(),
    };
    // The stream before the relays, so that they are dropped (killed) before it is deleted.
    let nats_url = args.nats.as_deref().filter(|_| is_nats);
    let mut stream = match nats_url {
        Some(urls) => Some(nats::BenchStream::create(
            urls,
            nats::settings(args.partitions.unwrap_or(DEFAULT_PARTITIONS))
                .replicas(usize::try_from(args.replicas.unwrap_or(1)).unwrap_or(1)),
        )?),
        None => None,
    };
    let relays = match (nats_url, &stream, &args.target.url) {
        (Some(urls), Some(stream), Some(url)) if args.relays > 0 => Some(nats::Relays::start(
            args.relays,
            urls,
            stream.settings(),
            &nats::Target {
                url,
                allow_private: args.guard.allow_private,
                secrets: &args.target.secret_texts()?.0,
                retry: &retry,
                workers: args.relay_workers.unwrap_or(DEFAULT_RELAY_WORKERS),
                threads: args.relay_threads,
            },
        )?),
        _ => None,
    };
    if let (Some(_), Some(stream)) = (&relays, &mut stream) {
        // Their consumers made (in a cluster, a replicated consumer takes seconds), so that
        // the run measures delivery rather than the relays' start.
        let partitions = stream.settings().partition_count();
        stream.wait_consumers(partitions)?;
    }
    let spool = match &args.spool {
        Some(dir) => Some(
            Spool::builder(dir)
                .durability(Durability::Receipt)
                .max_batch(usize::try_from(args.spool_max_batch).unwrap_or(usize::MAX))
                .synchronous(match args.spool_sync {
                    SpoolSync::Full => Synchronous::Full,
                    SpoolSync::Normal => Synchronous::Normal,
                })
                .open()
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };

    let dead_letter_path = if args.paused {
        PathBuf::from("/dev/null")
    } else {
        temporary_dead_letter_file()?
    };
    let remove_dead_letters = || {
        if !args.paused {
            let _ = std::fs::remove_file(&dead_letter_path);
        }
    };
    let max_queued_bytes = match args.max_queued_bytes {
        Some(bytes) => usize::try_from(bytes).unwrap_or(usize::MAX),
        None => DeliveryConfig::default().max_queued_bytes,
    };
    let mut delivery = DeliveryConfig::default();
    delivery.queue_capacity = queue_capacity;
    delivery.max_queued_bytes = max_queued_bytes;
    if let Some(nice) = args.worker_nice {
        delivery.worker_nice = nice;
    }
    delivery.dead_letter_path = dead_letter_path.clone();
    delivery.max_in_flight = workers;
    delivery.max_threads = workers;
    delivery.attempt_log = args.attempt_log;
    let order = std::sync::Arc::new(fleet::OrderCheck::default());
    let rss_before = proc::proc_status("VmRSS:");
    // The async and NATS sinks are built outside any runtime, so each starts a runtime of its
    // own (one worker thread for the async sink, two for the NATS sink's) that the guard
    // shuts down. That is what an application
    // without tokio gets, and it keeps `emit` on the main thread, a plain thread like a
    // helpdesk's request handler: a runtime made here would only add a thread that blocks
    // in `emit` and in the guard's flush, and `build_async` inside it would share its
    // workers with that.
    let built: Result<(DeliverySink, DeliveryGuard), _> = match (nats_url, &stream) {
        (Some(urls), Some(stream)) => {
            let mut builder = NatsSink::builder(urls)
                .stream(stream.settings().clone())
                .config(delivery)
                .retry(retry.clone())
                .max_in_flight(workers)
                .batch(batch as usize)
                .require_server(true);
            for secret in secrets {
                builder = builder.secret(secret);
            }
            if let Some(spool) = spool {
                builder = builder.spool(spool);
            }
            builder
                .build()
                .map(|(sink, guard)| (sink.delivery().clone(), guard))
        }
        _ => {
            let seen = order.clone();
            let mut builder = HttpSink::builder()
                .config(delivery)
                .observer(move |record: &AttemptRecord<'_>| seen.see(record));
            for endpoint in endpoints {
                builder = builder.endpoint(endpoint);
            }
            if let Some(spool) = spool {
                builder = builder.spool(spool);
            }
            if args.transport == Transport::Async {
                builder.build_async()
            } else {
                builder.build()
            }
        }
    };
    let (sink, guard) = match built {
        Ok(built) => built,
        Err(e) => {
            remove_dead_letters();
            return Err(match e {
                deskhook_transports::Error::Refused(_) => format!(
                    "--url {}: {e}; pass --allow-private to send to loopback and private \
                     addresses",
                    args.target.url.as_deref().unwrap_or_default()
                ),
                other => other.to_string(),
            });
        }
    };
    let rss_endpoints = match (rss_before, proc::proc_status("VmRSS:")) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    if args.paused {
        for info in sink.endpoints().list() {
            sink.endpoints()
                .pause(&info.name)
                .map_err(|e| format!("--paused: {e}"))?;
        }
    }
    let dispatcher = Dispatcher::builder().sink("deliver", sink.clone()).build();
    if let Err(e) = deskhook::set_dispatcher(dispatcher) {
        remove_dead_letters();
        return Err(e.to_string());
    }

    let bar = ProgressBar::new(deliveries).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(if is_nats { "published" } else { "delivered" });
    let wait = args.wait.unwrap_or_else(|| deadline(deliveries, &retry));
    let done = AtomicBool::new(false);
    let threads_max = std::sync::atomic::AtomicU64::new(proc::proc_status("Threads:").unwrap_or(0));
    let spooled = args.spool.is_some();
    // `None`: event n could not be made; nothing from n on counts as durable.
    let (receipts, durability) = mpsc::channel::<(u64, Option<Receipt>)>();
    let (started, finished, flushed, durable, cpu, switches, emit_cpu, paced) =
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    bar.set_position(progress(&sink).0);
                    if let Some(threads) = proc::proc_status("Threads:") {
                        threads_max.fetch_max(threads, Ordering::Relaxed);
                    }
                    std::thread::sleep(PROGRESS_EVERY);
                }
            });
            let cpu_before = proc::cpu_time();
            let emit_cpu_before = proc::thread_cpu();
            let switches_before = proc::thread_switches();
            let started = Instant::now();
            let reporter = scope.spawn(move || report_durable(&durability, started));
            let mut pace = args.backlog.map(Pace::new);
            for n in 1..=events {
                if let Some(pacing) = &mut pace {
                    pacing.wait(|| order.settled());
                }
                write_code(&mut ticket.code, (n - 1) % tickets + 1);
                let action = Action::ALL[((n - 1) % Action::ALL.len() as u64) as usize];
                let before = Instant::now();
                if spooled {
                    // For the fleet's tenant, as the other path emits: a fleet's endpoints
                    // each have one, and take no event of none.
                    let emitted =
                        Emitted::new(EventRef::new(action, &ticket, &user)).and_then(|emitted| {
                            match fleet.tenant_of(n) {
                                Some(tenant) => emitted.with_tenant(tenant),
                                None => Ok(emitted),
                            }
                        });
                    match emitted {
                        Ok(emitted) => {
                            let _ = receipts.send((n, Some(sink.send_with_receipt(&emitted))));
                        }
                        Err(e) => {
                            eprintln!("deskhook: event {n}: {e}");
                            let _ = receipts.send((n, None));
                        }
                    }
                } else {
                    match fleet.tenant_of(n) {
                        Some(tenant) => deskhook::for_tenant(tenant).emit(action, &ticket, &user),
                        None => deskhook::emit(action, &ticket, &user),
                    }
                }
                let took = before.elapsed();
                emit_ns.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                if let Some(pacing) = &mut pace {
                    pacing.emitted += fleet.deliveries_of(n);
                }
            }
            // The pacing's sleeps are the loop's, not `emit`'s.
            let switches =
                switches_before
                    .zip(proc::thread_switches())
                    .map(|((v0, i0), (v1, i1))| {
                        let slept = pace.as_ref().map_or(0, |pacing| pacing.sleeps);
                        ((v1 - v0).saturating_sub(slept), i1 - i0)
                    });
            let emit_cpu = emit_cpu_before
                .zip(proc::thread_cpu())
                .map(|(before, after)| after.saturating_sub(before));
            drop(receipts);
            let durable = reporter.join().unwrap_or((0, None));
            let flushed = if args.paused {
                Ok(())
            } else {
                guard.flush(wait)
            };
            let finished = started.elapsed();
            // (user + system, user) over the run.
            let cpu = cpu_before.zip(proc::cpu_time()).map(|(before, after)| {
                let user = after.0.saturating_sub(before.0);
                (user + after.1.saturating_sub(before.1), user)
            });
            done.store(true, Ordering::Release);
            (
                started, finished, flushed, durable, cpu, switches, emit_cpu, pace,
            )
        });
    let (delivered, settled) = progress(&sink);
    bar.set_position(delivered);
    // Whatever is still queued or in flight goes to the dead letters.
    let _ = guard.shutdown(Duration::from_secs(1));
    let end_to_end = match (relays, &mut stream) {
        (Some(relays), Some(stream)) => {
            Some(end_to_end(relays, stream, &bar, delivered, started, wait))
        }
        _ => None,
    };
    bar.finish_and_clear();

    emit_ns.sort_unstable();
    let violations = order.violations();
    let per_sec = rate(delivered, finished);
    let mut report = serde_json::json!({
        "events": events,
        "endpoints": fleet.endpoints,
        "tenants": fleet.tenant_count(),
        "deliveries": deliveries,
        "delivered": delivered,
        "failed": deliveries - delivered.min(deliveries),
        "dropped": sink.totals().dropped,
        "seconds": rounded(finished),
        "events_per_sec": per_sec,
        "emit_ns_p50": percentile(&emit_ns, 50),
        "emit_ns_p99": percentile(&emit_ns, 99),
        "emit_waits": switches.map(|(voluntary, _)| voluntary),
        "emit_preempted": switches.map(|(_, involuntary)| involuntary),
        "rss_max_kb": proc::rss_max_kb(),
        "rss_endpoints_kb": rss_endpoints,
        "threads_max": threads_max.load(Ordering::Relaxed),
        "cpu_seconds": cpu.map(|(all, _)| rounded(all)),
        "cpu_us_per_delivery": cpu
            .filter(|_| delivered > 0)
            .map(|(all, _)| per_delivery(all, delivered)),
        "cpu_user_us_per_delivery": cpu
            .filter(|_| delivered > 0)
            .map(|(_, user)| per_delivery(user, delivered)),
        "cpu_emit_us_per_event": emit_cpu
            .filter(|_| events > 0)
            .map(|emit| per_delivery(emit, events)),
        "cpu_us_per_delivery_beside_emit": cpu
            .zip(emit_cpu)
            .filter(|_| delivered > 0)
            .map(|((all, _), emit)| per_delivery(all.saturating_sub(emit), delivered)),
        "order_violations": violations,
        "attempt_log": args.attempt_log,
        "backlog": args.backlog,
        "backlog_stalled": paced.map(|pacing| pacing.stalled),
    });
    if spooled {
        let (count, at) = durable;
        report["durable"] = count.into();
        report["durable_per_sec"] = at
            .filter(|at| !at.is_zero())
            .map(|at| rate(count, at))
            .into();
        report["spool_max_batch"] = args.spool_max_batch.into();
    }
    let relayed = match &end_to_end {
        Some(Ok(e2e)) => Some(e2e),
        _ => None,
    };
    if is_nats {
        report["publish_per_sec"] = per_sec.into();
        report["relays"] = args.relays.into();
        report["batch"] = args.batch.unwrap_or(1).into();
        report["relayed"] = relayed.map(|e2e| e2e.totals.delivered()).into();
        report["end_to_end_seconds"] = relayed.and_then(|e2e| e2e.seconds).map(rounded).into();
        report["delivered_per_sec"] = relayed
            .and_then(|e2e| Some(rate(e2e.totals.delivered(), e2e.seconds?)))
            .into();
    }
    crate::send::print_line(&report.to_string());

    let all = delivered == deliveries;
    if all {
        remove_dead_letters();
    } else {
        let why = match flushed {
            Err(e) if settled < deliveries => format!("; {e}"),
            _ => String::new(),
        };
        let dropped = sink.totals().dropped;
        let why = if dropped > 0 {
            format!(
                "{why}; {dropped} dropped (the queue or its memory budget was full: raise \
                 --max-queued-bytes)"
            )
        } else {
            why
        };
        let unit = if fleet.endpoints > 1 {
            "deliveries (event × endpoint)"
        } else {
            "event(s)"
        };
        eprintln!(
            "deskhook: {} of {deliveries} {unit} not {}{why}; dead letters: {}",
            deliveries - delivered.min(deliveries),
            if is_nats {
                "acknowledged by JetStream"
            } else {
                "delivered"
            },
            dead_letter_path.display()
        );
    }
    if violations > 0 {
        eprintln!(
            "deskhook: {violations} delivery(ies) came before an earlier event of their ticket"
        );
    }
    let relays_ok = match &end_to_end {
        None => true,
        Some(Err(e)) => {
            eprintln!("deskhook: relays: {e}");
            false
        }
        Some(Ok(e2e)) => e2e.complain(delivered, wait),
    };
    Ok(if all && relays_ok && violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the relays did with the published events.
#[derive(Debug)]
struct EndToEnd {
    /// From the first emit until the stream was seen empty; `None` when it was not empty
    /// within --wait after the publishing.
    seconds: Option<Duration>,
    /// Messages still in the stream when the waiting ended.
    left: u64,
    /// The relays' summaries, added up.
    totals: nats::RelayTotals,
    /// The relays' dead-letter file, when they wrote any.
    dead_letters: Option<PathBuf>,
}

impl EndToEnd {
    /// Says on stderr what went wrong, if anything; whether every published event was
    /// delivered by the relays.
    fn complain(&self, published: u64, wait: Duration) -> bool {
        let mut ok = true;
        if self.seconds.is_none() {
            eprintln!(
                "deskhook: {} event(s) still in the stream {} after the publishing",
                self.left,
                if wait >= Duration::from_secs(86_400) {
                    "a day or more".to_owned()
                } else {
                    deskhook::policy::format_duration(wait)
                }
            );
            ok = false;
        }
        if let Some(path) = &self.dead_letters {
            eprintln!(
                "deskhook: the relays dead-lettered {} event(s): {}",
                self.totals.dead_lettered,
                path.display()
            );
            ok = false;
        }
        if self.totals.delivered() < published {
            eprintln!(
                "deskhook: the relays delivered {} of {published} published event(s)",
                self.totals.delivered()
            );
            ok = false;
        }
        ok
    }
}

/// Waits until the stream is empty (at most `wait`), then stops the relays and reads their
/// summaries.
fn end_to_end(
    relays: nats::Relays,
    stream: &mut nats::BenchStream,
    bar: &ProgressBar,
    published: u64,
    started: Instant,
    wait: Duration,
) -> Result<EndToEnd, String> {
    bar.reset();
    bar.set_length(published);
    bar.set_message("relayed");
    // A wait no clock can add is a wait without end (a day is as good).
    let now = Instant::now();
    let until = now
        .checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(86_400));
    let drained = stream.wait_empty(until, |left| {
        bar.set_position(published.saturating_sub(left));
    });
    // Whatever happened, the relays stop here (or are killed when `stop` fails).
    let stopped = relays.stop();
    let drained = drained?;
    let (totals, dead_letters) = stopped?;
    Ok(EndToEnd {
        seconds: drained.ok().map(|at| at - started),
        left: drained.err().unwrap_or(0),
        totals,
        dead_letters,
    })
}

/// Prints `durable N` each time the events 1..N are all durable, from receipts that arrive
/// in emit order; returns the last N and when it became durable.
fn report_durable(
    receipts: &mpsc::Receiver<(u64, Option<Receipt>)>,
    started: Instant,
) -> (u64, Option<Duration>) {
    let mut durable = (0, None);
    let mut next = receipts.recv().ok();
    while let Some((n, receipt)) = next.take() {
        let outcome = match receipt {
            Some(receipt) => receipt.wait(Duration::MAX),
            None => Err(deskhook_transports::Error::Config(
                "it was not emitted".to_owned(),
            )),
        };
        if let Err(e) = outcome {
            eprintln!("deskhook: event {n} is not durable: {e}");
            break;
        }
        durable = (n, Some(started.elapsed()));
        // Take the ones already durable behind it, so that a line covers a whole commit.
        loop {
            match receipts.try_recv() {
                Ok((m, Some(r))) if r.is_durable() => durable = (m, Some(started.elapsed())),
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        crate::send::print_line(&format!("durable {}", durable.0));
        if next.is_none() {
            next = receipts.recv().ok();
        }
    }
    durable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_for_delivery_saturates_rather_than_overflow() {
        // Longer than a schedule's text takes (100 years), as code may give one.
        let long = Duration::from_secs(i64::MAX as u64);
        let huge = RetrySchedule::new([Duration::ZERO, long, long]).unwrap();
        assert_eq!(deadline(1, &huge), Duration::MAX);
        let once: RetrySchedule = "0s".parse().unwrap();
        assert_eq!(deadline(1000, &once), Duration::from_secs(61));
    }

    #[test]
    fn bodies_are_padded_to_about_the_size_asked() {
        let (mut ticket, user) = synthetic(1024).unwrap();
        for (n, action) in Action::ALL.into_iter().enumerate() {
            ticket.code = code(n as u64 + 1);
            let len = serde_json::to_vec(&EventRef::new(action, &ticket, &user))
                .unwrap()
                .len();
            assert!((1000..=1048).contains(&len), "{action}: {len} bytes");
        }
        // Smaller than the bare event: no padding at all.
        let (ticket, _) = synthetic(10).unwrap();
        assert!(ticket.text.is_empty());
    }

    #[test]
    fn codes_are_b_and_seven_digits() {
        assert_eq!(code(1), "B0000001");
        assert_eq!(code(123_456), "B0123456");
    }

    #[test]
    fn percentiles_index_the_sorted_values() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 99), Some(99));
        assert_eq!(percentile(&[], 50), None);
    }
}
