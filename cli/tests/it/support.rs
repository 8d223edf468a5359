//! Shared pieces of the CLI tests: running `deskhook` to completion, running `deskhook
//! listen` as a child whose stdout lines are read with a timeout, and a raw loopback HTTP
//! client; `deskhook serve` as the tests run it ([`serve`]), and dead letters to list and
//! replay ([`dead_letters`]).
//!
//! Every child is killed and waited for when its handle is dropped. Everything talks to
//! 127.0.0.1 only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) mod dead_letters;
pub(crate) mod serve;

/// How long a test waits for a line from a child before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The secret of the Standard Webhooks specification's example.
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Another valid secret (32 bytes of 0x07).
pub(crate) const OTHER_SECRET: &str = "whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// Runs `deskhook` with `args` to completion, with `TMPDIR` set to `tmp` so that anything
/// it puts in the temporary directory lands in the test's own.
pub(crate) fn deskhook_in(tmp: &Path, args: &[&str]) -> Output {
    deskhook_with_env(tmp, args, &[])
}

/// As [`deskhook_in`], with more environment variables.
pub(crate) fn deskhook_with_env(tmp: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(args)
        .env("TMPDIR", tmp)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the deskhook binary runs")
}

/// Writes `dir/deskhook.toml` with one endpoint, `crm`, at `url` (loopback allowed), its
/// dead letters in `dir/dead.jsonl`; returns its path.
pub(crate) fn one_endpoint_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("deskhook.toml");
    std::fs::write(
        &path,
        format!(
            "[delivery]\ndead_letter_path = {:?}\n\n[[endpoint]]\nname = \"crm\"\n\
             url = \"{url}\"\nallow_private = true\n",
            dir.join("dead.jsonl"),
        ),
    )
    .expect("the configuration is written");
    path
}

/// A `deskhook` run to completion: its exit status and output.
pub(crate) struct Run {
    pub(crate) status: std::process::ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `deskhook` with `args` (TMPDIR = `tmp`), reading its output as it comes; fails the
/// test (and kills the child) when it runs longer than `limit`.
pub(crate) fn deskhook_bounded(tmp: &Path, args: &[&str], limit: Duration) -> Run {
    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the deskhook binary starts");
    let mut child = KillOnDrop(child);
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.0.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.0.stderr.take().expect("piped stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("the child can be waited for") {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "deskhook {args:?} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}

/// The one JSON line of a run's stdout, checked to have exactly `keys`, in that order.
pub(crate) fn one_json_line(run: &Run, keys: &[&str]) -> serde_json::Value {
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one line on stdout: {:?}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let value: serde_json::Value = serde_json::from_str(lines[0]).expect("the line is JSON");
    let found: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(found, keys);
    value
}

/// The text of an output stream.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `deskhook` process, killed and waited for on drop.
pub(crate) struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `deskhook` with `args`, reading its stdout line by line and its stderr whole.
    pub(crate) fn spawn(args: &[&str]) -> Running {
        Running::spawn_with(args, &[])
    }

    /// As [`Running::spawn`], with environment variables set.
    pub(crate) fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the deskhook binary starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running {
            child,
            lines,
            stderr,
        }
    }

    /// The next line of stdout; fails the test after [`WAIT`].
    pub(crate) fn line(&self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => panic!(
                "no line from deskhook within {WAIT:?} ({e}); its stderr: {}",
                self.stderr()
            ),
        }
    }

    /// The next line of stdout that is not a relay's `partitions: …` (those come whenever
    /// the relays share the partitions anew).
    pub(crate) fn said(&self) -> String {
        loop {
            let line = self.line();
            if !line.starts_with("partitions:") {
                return line;
            }
        }
    }

    /// Reads stdout until a `partitions: …` line says the relay owns exactly `count`.
    pub(crate) fn owns(&self, count: usize) {
        self.owns_within(count, WAIT * 6);
    }

    /// [`owns`](Running::owns) within `limit`: relays with long leases share the
    /// partitions anew once per turn of their leases, several seconds apart on a loaded
    /// machine.
    pub(crate) fn owns_within(&self, count: usize, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "deskhook did not own {count} partition(s) within {limit:?} ({e}); its \
                     stderr: {}",
                    self.stderr()
                ),
            };
            if let Some(owned) = line.strip_prefix("partitions:") {
                let owned = owned.trim();
                let n = if owned.is_empty() {
                    0
                } else {
                    owned.split(',').count()
                };
                if n == count {
                    return;
                }
            }
        }
    }

    /// The next `n` lines of stdout.
    pub(crate) fn lines(&self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.line()).collect()
    }

    /// The next line of stdout, or `None` after `wait` (for a test that says more than
    /// [`line`](Running::line) when none comes).
    pub(crate) fn line_within(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// A line already printed, if there is one (no waiting).
    pub(crate) fn try_line(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit.
    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("the process can be waited for")
    }

    /// Waits for the process to exit, at most `limit`; `None` if it is still running then.
    pub(crate) fn wait_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the process can be waited for")
            {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its stderr once it contains `needle`, or as it is after [`WAIT`]: stderr is read by a
    /// thread of its own, so what the process wrote before it answered may not be here yet.
    pub(crate) fn stderr_with(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let stderr = self.stderr();
            if stderr.contains(needle) || std::time::Instant::now() > deadline {
                return stderr;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `deskhook listen --addr 127.0.0.1:0` with more arguments, started and ready.
pub(crate) struct Listen {
    /// `http://127.0.0.1:PORT/`, from its first line.
    pub(crate) url: String,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    pub(crate) process: Running,
}

impl Listen {
    pub(crate) fn start(args: &[&str]) -> Listen {
        let mut all = vec!["listen", "--addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let process = Running::spawn(&all);
        // With --json, stdout is the bodies only: the first line goes to stderr.
        let first = if args.contains(&"--json") {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                if let Some(line) = process
                    .stderr()
                    .lines()
                    .find(|l| l.starts_with("listening on "))
                {
                    break line.to_owned();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no 'listening on' from listen --json"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        } else {
            process.line()
        };
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(!url.ends_with(":0/"), "the real port is printed: {url}");
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Listen { url, addr, process }
    }

    /// The next line it prints.
    pub(crate) fn line(&self) -> String {
        self.process.line()
    }

    /// The next `n` lines it prints.
    pub(crate) fn lines(&self, n: usize) -> Vec<String> {
        self.process.lines(n)
    }
}

/// POSTs `body` with `headers` to `addr` (`127.0.0.1:PORT`) and returns the status code.
pub(crate) fn post(addr: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    request(addr, "POST", "/", headers, body).0
}

/// Sends one HTTP/1.1 request to `addr` (`127.0.0.1:PORT`) and returns the status code and
/// the body (whole: the connection closes after it).
pub(crate) fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the loopback listener");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status.parse().unwrap(), body)
}

/// A new secrets key from `deskhook endpoints new-key`.
pub(crate) fn new_secrets_key() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["endpoints", "new-key"])
        .output()
        .expect("deskhook runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).trim().to_owned()
}

/// What `deskhook listen --json` received from relays: each body names its event as
/// (ticket code, its number within the ticket: the ticket's subject).
pub(crate) struct Arrivals {
    /// Every body, in arrival order.
    pub(crate) lines: Vec<String>,
    distinct: std::collections::HashSet<(String, usize)>,
}

impl Arrivals {
    pub(crate) fn new() -> Arrivals {
        Arrivals {
            lines: Vec::new(),
            distinct: std::collections::HashSet::new(),
        }
    }

    fn parse(line: &str) -> (String, usize) {
        let body: serde_json::Value = serde_json::from_str(line).expect("a JSON body");
        let code = body["ticket"]["code"].as_str().expect("a code").to_owned();
        let n = body["ticket"]["subject"]
            .as_str()
            .expect("a subject")
            .parse()
            .expect("a number");
        (code, n)
    }

    /// Reads from `listen` until `events` distinct events arrived (fails after `limit`).
    pub(crate) fn until(&mut self, listen: &Listen, events: usize, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.distinct.len() < events {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {events} events arrived within {limit:?}",
                self.distinct.len()
            );
            if let Ok(line) = listen
                .process
                .lines
                .recv_timeout(Duration::from_millis(100))
            {
                self.distinct.insert(Arrivals::parse(&line));
                self.lines.push(line);
            }
        }
    }

    /// Takes what else has arrived by now.
    pub(crate) fn rest(&mut self, listen: &Listen) {
        while let Some(line) = listen.process.try_line() {
            self.distinct.insert(Arrivals::parse(&line));
            self.lines.push(line);
        }
    }

    /// Checks that every one of `tickets` tickets received `per_ticket` events and that each
    /// ticket's events first arrived in the order they were published (0, 1, 2, …); returns
    /// how many arrivals repeated an event already received.
    pub(crate) fn check_order(&self, tickets: usize, per_ticket: usize) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut next: std::collections::HashMap<String, usize> = Default::default();
        for line in &self.lines {
            let event = Arrivals::parse(line);
            if !seen.insert(event.clone()) {
                continue;
            }
            let (ticket, n) = event;
            let expected = next.entry(ticket.clone()).or_default();
            assert_eq!(
                n, *expected,
                "ticket {ticket}: {n} arrived before {expected}"
            );
            *expected += 1;
        }
        assert_eq!(next.len(), tickets, "every ticket");
        assert!(next.values().all(|n| *n == per_ticket), "every event");
        self.lines.len() - seen.len()
    }
}
