//! The NATS side of `deskhook bench --transport nats`: a JetStream stream of the run's own,
//! and the `deskhook relay` processes that deliver from it.
//!
//! Both clean up after themselves when dropped, on errors too: the relays are killed and
//! waited for, the stream (and the dead-letter stream the relays make) is deleted.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook::policy::RetrySchedule;
use deskhook_transports::nats::async_nats::{self, jetstream};
use deskhook_transports::nats::{StreamSettings, connect};

/// How long a JetStream request (stream info, create, delete) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a relay may take to connect and make its consumers.
const READY_WAIT: Duration = Duration::from_secs(30);

/// How often the stream's message count is read while the relays work.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// How long a stopping relay may take to finish what it delivers (`deskhook relay --grace`).
const RELAY_GRACE: Duration = Duration::from_secs(5);

/// The stream and subject prefix of this process's runs: `DESKHOOK_BENCH_<pid>` under
/// `deskhook-bench-<pid>`, apart from the `DESKHOOK` stream (`deskhook.>`) of a real
/// deployment on the same server, since two streams may not take the same subjects.
pub(super) fn settings(partitions: u32) -> StreamSettings {
    let pid = std::process::id();
    StreamSettings::new()
        .name(format!("DESKHOOK_BENCH_{pid}"))
        .subject_prefix(format!("deskhook-bench-{pid}"))
        .partitions(partitions)
}

/// A work-queue stream for one run, deleted (with its `<name>_DEAD` stream) when dropped.
pub(super) struct BenchStream {
    runtime: tokio::runtime::Runtime,
    context: jetstream::Context,
    stream: jetstream::stream::Stream,
    settings: StreamSettings,
}

impl BenchStream {
    /// Connects to `urls`, deletes what a run with the same name left behind (a run that was
    /// killed, by a process with the same id), and creates the stream afresh, so that no old
    /// message counts.
    pub(super) fn create(urls: &str, settings: StreamSettings) -> Result<BenchStream, String> {
        // A worker thread of its own keeps the connection answering the server's pings while
        // the run publishes, however long that takes.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let (context, stream) = runtime.block_on(async {
            let context = connect(urls, async_nats::ConnectOptions::new(), REQUEST_TIMEOUT)
                .await
                .map_err(|e| format!("--nats: {e}"))?;
            delete_streams(&context, &settings).await;
            let info = settings
                .ensure(&context)
                .await
                .map_err(|e| format!("--nats: {e}"))?;
            let stream = context
                .get_stream(&info.config.name)
                .await
                .map_err(|e| format!("--nats: cannot open stream '{}': {e}", info.config.name))?;
            Ok::<_, String>((context, stream))
        })?;
        Ok(BenchStream {
            runtime,
            context,
            stream,
            settings,
        })
    }

    /// The stream's settings, for the sink and the relays.
    pub(super) fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// How many messages the stream holds: published and not yet acknowledged by a relay.
    pub(super) fn messages(&mut self) -> Result<u64, String> {
        let name = self.settings.stream_name();
        let info = self.runtime.block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, self.stream.info())
                .await
                .map_err(|_| format!("no answer about stream '{name}'"))?
                .map(|info| info.state.messages)
                .map_err(|e| format!("cannot read stream '{name}': {e}"))
        })?;
        Ok(info)
    }

    /// Waits until the stream has `count` consumers (the relays' consumers of every
    /// partition), at most [`READY_WAIT`].
    pub(super) fn wait_consumers(&mut self, count: u32) -> Result<(), String> {
        let name = self.settings.stream_name().to_owned();
        let deadline = Instant::now() + READY_WAIT;
        loop {
            let found = self.runtime.block_on(async {
                tokio::time::timeout(REQUEST_TIMEOUT, self.stream.info())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map_or(0, |info| info.state.consumer_count)
            });
            if found >= count as usize {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the relays made {found} of the {count} consumers of stream '{name}' within {}",
                    secs(READY_WAIT)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the stream is empty, at most until `deadline`, calling `progress` with
    /// each count read; returns when it was seen empty, or the count left.
    pub(super) fn wait_empty(
        &mut self,
        deadline: Instant,
        mut progress: impl FnMut(u64),
    ) -> Result<Result<Instant, u64>, String> {
        loop {
            let left = self.messages()?;
            let now = Instant::now();
            progress(left);
            if left == 0 {
                return Ok(Ok(now));
            }
            if now >= deadline {
                return Ok(Err(left));
            }
            std::thread::sleep(POLL_EVERY.min(deadline - now));
        }
    }
}

impl Drop for BenchStream {
    fn drop(&mut self) {
        let (context, settings) = (&self.context, &self.settings);
        self.runtime.block_on(delete_streams(context, settings));
    }
}

/// The relays' name: their own for each run, so that each run has its own leases bucket.
fn durable(settings: &StreamSettings) -> String {
    settings.prefix().to_owned()
}

/// Deletes the stream, the relays' dead-letter stream and their leases and parked events
/// buckets, if they exist.
async fn delete_streams(context: &jetstream::Context, settings: &StreamSettings) {
    let name = settings.stream_name();
    let leases = format!("KV_{}-leases", durable(settings));
    let parked = format!("KV_{}-parked", durable(settings));
    for stream in [name.to_owned(), format!("{name}_DEAD"), leases, parked] {
        // Missing is the usual case at the start; anything else only leaves a stream behind.
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, context.delete_stream(&stream)).await;
    }
}

/// What the relays said they did when they stopped, added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct RelayTotals {
    /// Events acknowledged: delivered to the endpoint or dead-lettered.
    pub(super) acknowledged: u64,
    /// Events handed back to the stream at stop.
    pub(super) handed_back: u64,
    /// Dead letters written.
    pub(super) dead_lettered: u64,
}

impl RelayTotals {
    /// Events delivered to the endpoint (the relays' one endpoint: a dead letter is one event).
    pub(super) fn delivered(&self) -> u64 {
        self.acknowledged.saturating_sub(self.dead_lettered)
    }
}

/// Reads `deskhook relay`'s summary line: `stopped: A event(s) acknowledged (U for no
/// endpoint), H handed back, D dead letter(s), …`.
fn parse_summary(line: &str) -> Option<RelayTotals> {
    let rest = line.strip_prefix("stopped: ")?;
    let mut numbers = rest.split(", ").map(|part| {
        part.split_once(' ')
            .and_then(|(n, _)| n.parse::<u64>().ok())
    });
    Some(RelayTotals {
        acknowledged: numbers.next()??,
        handed_back: numbers.next()??,
        dead_lettered: numbers.next()??,
    })
}

/// Where the relays deliver, and how, for their deskhook.toml.
#[derive(Debug)]
pub(super) struct Target<'a> {
    pub(super) url: &'a str,
    pub(super) allow_private: bool,
    pub(super) secrets: &'a [String],
    pub(super) retry: &'a RetrySchedule,
    /// Requests in flight at once in each relay (the endpoint's `workers`).
    pub(super) workers: u32,
    /// Each relay's runtime threads (`--threads`), or one per core.
    pub(super) threads: Option<u16>,
}

/// A TOML basic string: JSON's escapes (`\"`, `\\`, `\n`, `\u0001`, …) are all TOML's too,
/// and serde_json never writes the one it has that TOML lacks (`\/`).
fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The relays' deskhook.toml: `target` as the one endpoint, with its workers, and the dead
/// letters in `dead_letters`.
fn relay_config(target: &Target<'_>, dead_letters: &Path) -> String {
    let secrets: Vec<String> = target.secrets.iter().map(|s| toml_string(s)).collect();
    format!(
        "[delivery]\ndead_letter_path = {}\n\n[[endpoint]]\nname = \"bench\"\nurl = {}\n\
         allow_private = {}\nretry = {}\nworkers = {}\nsecrets = [{}]\n",
        toml_string(&dead_letters.to_string_lossy()),
        toml_string(target.url),
        target.allow_private,
        toml_string(&target.retry.to_string()),
        target.workers,
        secrets.join(", ")
    )
}

/// One `deskhook relay` child, its stdout read line by line and its stderr kept.
struct RelayProcess {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl RelayProcess {
    fn spawn(command: &mut Command) -> Result<RelayProcess, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start deskhook relay: {e}"))?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let kept = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    kept.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Ok(RelayProcess {
            child,
            lines,
            stderr,
        })
    }

    /// The next line of stdout within `wait`; `Err` says why there is none.
    fn line(&self, wait: Duration) -> Result<String, String> {
        self.lines.recv_timeout(wait).map_err(|e| match e {
            RecvTimeoutError::Timeout => format!("said nothing within {}", secs(wait)),
            RecvTimeoutError::Disconnected => "exited".to_owned(),
        })
    }

    /// What it wrote to stderr, on one line.
    fn stderr(&self) -> String {
        let text = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        text.trim().replace('\n', "; ")
    }

    /// Asks it to stop (SIGTERM): it finishes what it delivers and prints its summary.
    fn terminate(&mut self) {
        #[cfg(unix)]
        {
            let asked = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if asked.is_ok_and(|status| status.success()) {
                return;
            }
        }
        let _ = self.child.kill();
    }
}

/// `deskhook relay` processes (this same executable) delivering from the bench's stream; any
/// still running when this is dropped are killed and waited for.
pub(super) struct Relays {
    processes: Vec<RelayProcess>,
    dir: PathBuf,
}

impl Relays {
    /// Starts `count` relays on the stream of `settings`, delivering to `target`, and waits
    /// until each says it is ready. Their deskhook.toml and dead letters go in a new
    /// directory in the temporary directory.
    pub(super) fn start(
        count: u32,
        nats: &str,
        settings: &StreamSettings,
        target: &Target<'_>,
    ) -> Result<Relays, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the deskhook executable for the relays: {e}"))?;
        let dir = super::temporary_path("-relays");
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cannot create '{}' for the relays: {e} (set TMPDIR to a writable directory)",
                dir.display()
            )
        })?;
        let mut relays = Relays {
            processes: Vec::new(),
            dir,
        };
        let config = relays.dir.join("deskhook.toml");
        let text = relay_config(target, &relays.dead_letter_path());
        write_private(&config, &text)
            .map_err(|e| format!("cannot write '{}': {e}", config.display()))?;
        for _ in 0..count {
            let process = RelayProcess::spawn(
                Command::new(&exe)
                    .arg("relay")
                    .args(["--nats", nats])
                    .arg("--config")
                    .arg(&config)
                    .args(["--stream", settings.stream_name()])
                    .args(["--subject-prefix", settings.prefix()])
                    .args(["--durable", &durable(settings)])
                    .args(["--grace", &format!("{}s", RELAY_GRACE.as_secs())])
                    .args(
                        target
                            .threads
                            .map(|threads| ["--threads".to_owned(), threads.to_string()])
                            .into_iter()
                            .flatten(),
                    ),
            )?;
            relays.processes.push(process);
        }
        // They start together; each connects and makes (or finds) its consumers.
        for (n, process) in relays.processes.iter().enumerate() {
            let ready = process.line(READY_WAIT);
            match ready {
                Ok(line) if line.starts_with("relaying from stream ") => {}
                other => {
                    let what = other.unwrap_or_else(|why| why);
                    let mut message = format!("relay {} of {count} is not ready: {what}", n + 1);
                    let stderr = process.stderr();
                    if !stderr.is_empty() {
                        message.push_str(&format!(" ({stderr})"));
                    }
                    if !target.allow_private && stderr.contains("refus") {
                        message.push_str(
                            "; pass --allow-private to deliver to loopback and private addresses",
                        );
                    }
                    return Err(message);
                }
            }
        }
        relays.wait_for_shares(settings.partition_count())?;
        Ok(relays)
    }

    /// Waits until the relays own every partition between them, none more than its share
    /// (they take and hand back partitions for a moment after they start), so that the run
    /// measures delivery rather than the sharing out.
    fn wait_for_shares(&self, partitions: u32) -> Result<(), String> {
        let count = self.processes.len();
        let share = (partitions as usize).div_ceil(count.max(1));
        let mut owned = vec![0usize; count];
        let deadline = Instant::now() + READY_WAIT;
        loop {
            for (n, process) in self.processes.iter().enumerate() {
                while let Ok(line) = process.lines.try_recv() {
                    if let Some(list) = line.strip_prefix("partitions:") {
                        owned[n] = list.split(',').filter(|p| !p.trim().is_empty()).count();
                    }
                }
            }
            if owned.iter().sum::<usize>() == partitions as usize
                && owned.iter().all(|n| *n <= share)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the relays did not share the {partitions} partitions within {} (they own \
                     {owned:?})",
                    secs(READY_WAIT)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn dead_letter_path(&self) -> PathBuf {
        self.dir.join("dead-letters.jsonl")
    }

    /// Stops every relay with SIGTERM, waits for each to exit, and adds up their summaries.
    /// Returns also the dead-letter file when the relays wrote any (it is kept).
    pub(super) fn stop(mut self) -> Result<(RelayTotals, Option<PathBuf>), String> {
        for process in &mut self.processes {
            process.terminate();
        }
        let mut totals = RelayTotals::default();
        let mut trouble = Vec::new();
        let count = self.processes.len();
        for (n, mut process) in std::mem::take(&mut self.processes).into_iter().enumerate() {
            // `line` gives up when the relay exits without a summary; the lines saying which
            // partitions it owns come first.
            let summary = loop {
                match process.line(RELAY_GRACE + READY_WAIT) {
                    Ok(line) if line.starts_with("partitions:") => {}
                    other => break other,
                }
            };
            let status = match &summary {
                Ok(_) => process.child.wait().map_err(|e| e.to_string()),
                Err(_) => {
                    let _ = process.child.kill();
                    process.child.wait().map_err(|e| e.to_string())
                }
            };
            match (summary.as_deref().map(parse_summary), status) {
                (Ok(Some(one)), Ok(status)) if status.success() => {
                    totals.acknowledged += one.acknowledged;
                    totals.handed_back += one.handed_back;
                    totals.dead_lettered += one.dead_lettered;
                }
                (summary, status) => trouble.push(format!(
                    "relay {} of {count} did not stop cleanly ({}, {}{})",
                    n + 1,
                    match summary {
                        Ok(_) => "no summary line".to_owned(),
                        Err(why) => why.clone(),
                    },
                    match status {
                        Ok(status) => status.to_string(),
                        Err(e) => e,
                    },
                    match process.stderr() {
                        stderr if stderr.is_empty() => String::new(),
                        stderr => format!("; {stderr}"),
                    }
                )),
            }
        }
        if !trouble.is_empty() {
            return Err(trouble.join("; "));
        }
        let letters = self.dead_letter_path();
        let kept = std::fs::metadata(&letters).is_ok_and(|m| m.len() > 0);
        Ok((totals, kept.then_some(letters)))
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        // The directory goes unless it holds dead letters worth reading.
        let _ = std::fs::remove_file(self.dir.join("deskhook.toml"));
        let letters = self.dead_letter_path();
        if std::fs::metadata(&letters).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&letters);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Writes a new file only its owner can read: the relays' configuration may hold secrets.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// `1.5 s`.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_read() {
        assert_eq!(
            parse_summary(
                "stopped: 120 event(s) acknowledged (0 for no endpoint), 2 handed back, 1 dead \
                 letter(s)"
            ),
            Some(RelayTotals {
                acknowledged: 120,
                handed_back: 2,
                dead_lettered: 1
            })
        );
        assert_eq!(parse_summary("relaying from stream S"), None);
        assert_eq!(parse_summary("stopped: many"), None);
    }

    #[test]
    fn the_relay_config_is_toml_with_one_endpoint() {
        let retry: RetrySchedule = "0s,100ms,1s".parse().unwrap();
        let secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()];
        let text = relay_config(
            &Target {
                url: "http://127.0.0.1:8080/a\"b",
                allow_private: true,
                secrets: &secrets,
                retry: &retry,
                workers: 16,
                threads: None,
            },
            Path::new("/tmp/x\\y/dead.jsonl"),
        );
        assert_eq!(
            text,
            "[delivery]\ndead_letter_path = \"/tmp/x\\\\y/dead.jsonl\"\n\n[[endpoint]]\n\
             name = \"bench\"\nurl = \"http://127.0.0.1:8080/a\\\"b\"\nallow_private = true\n\
             retry = \"0s,100ms,1s\"\nworkers = 16\n\
             secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n"
        );
    }

    #[test]
    fn bench_streams_stay_apart_from_deployments() {
        let settings = settings(4);
        assert!(settings.stream_name().starts_with("DESKHOOK_BENCH_"));
        assert!(settings.subjects().starts_with("deskhook-bench-"));
        assert_eq!(settings.partition_count(), 4);
        settings.validate().unwrap();
    }
}
