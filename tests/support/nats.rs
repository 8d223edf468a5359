//! A `nats-server` with JetStream for the NATS tests: started on a free loopback port with a
//! temporary store directory, stopped (killed and waited for) when dropped; and a reader that
//! takes messages out of a stream with a pull consumer.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deskhook_transports::nats::async_nats;
use deskhook_transports::nats::async_nats::jetstream;
use futures_util::StreamExt;

/// `nats-server` on PATH, else where Debian puts it (/usr/sbin is not on every user's PATH).
fn binary() -> &'static str {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("nats-server").is_file())
    });
    if !on_path && Path::new("/usr/sbin/nats-server").is_file() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}

/// How long a server may take to accept connections.
const START_WAIT: Duration = Duration::from_secs(20);

/// How long a cluster may take to elect its JetStream meta leader. Longer than a server's
/// start: in `.ci/run` the NATS tests run at once on two cores, and a 3-node nats-server
/// 2.15 cluster once took more than 20 s to elect there (it elects in a second or two on
/// an idle machine). Only a cluster that never forms waits this long.
const ELECTION_WAIT: Duration = Duration::from_secs(60);

/// A running `nats-server -js` on 127.0.0.1.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
    /// More arguments (a cluster node's name, cluster port and routes).
    extra: Vec<String>,
}

impl NatsServer {
    /// Starts a server with JetStream on a free loopback port and a fresh store directory,
    /// and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When `nats-server` is not installed (the message says how to install it) or does not
    /// start.
    pub fn start() -> NatsServer {
        NatsServer::start_with(free_port(), Vec::new())
    }

    /// As [`NatsServer::start`] on `port`, with more arguments.
    fn start_with(port: u16, extra: Vec<String>) -> NatsServer {
        let store = tempfile::tempdir().expect("a temporary directory");
        let mut server = NatsServer {
            port,
            store,
            child: None,
            extra,
        };
        server.spawn();
        server
    }

    /// As [`NatsServer::start`], with `config` as its configuration file (the settings the
    /// command line does not give: `authorization`, …).
    pub fn start_configured(config: &str) -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            store: tempfile::tempdir().expect("a temporary directory"),
            child: None,
            extra: Vec::new(),
        };
        let path = server.config_path();
        std::fs::write(&path, server.with_jetstream(config))
            .expect("the configuration file is written");
        server.extra = vec!["-c".to_owned(), path.display().to_string()];
        server.spawn();
        server
    }

    /// Replaces the configuration file of a server started with
    /// [`NatsServer::start_configured`] and has the server reload it (`--signal reload`);
    /// returns once its log says it did.
    ///
    /// # Panics
    ///
    /// When the server is not running or does not reload within `START_WAIT`.
    pub fn reconfigure(&self, config: &str) {
        let reloaded = || {
            std::fs::read_to_string(self.log_path())
                .unwrap_or_default()
                .matches("Reloaded server configuration")
                .count()
        };
        let before = reloaded();
        std::fs::write(self.config_path(), self.with_jetstream(config))
            .expect("the configuration file is written");
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new(binary())
            .arg("--signal")
            .arg(format!("reload={pid}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("nats-server --signal runs");
        assert!(status.success(), "nats-server --signal reload: {status}");
        let deadline = Instant::now() + START_WAIT;
        while reloaded() == before {
            assert!(
                Instant::now() < deadline,
                "nats-server did not reload its configuration within {START_WAIT:?}:\n{}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn config_path(&self) -> PathBuf {
        self.store.path().join("nats-server.conf")
    }

    /// `config` with JetStream on, in the store directory: a reloaded configuration without
    /// it would turn JetStream off, and nats-server cannot reload one that the command line
    /// gives.
    fn with_jetstream(&self, config: &str) -> String {
        let store = self.store.path().join("jetstream");
        format!(
            "{config}\njetstream {{\n  store_dir: {:?}\n}}\n",
            store.display().to_string()
        )
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server (SIGKILL) and waits for it to exit; the store directory stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().join("nats-server.log")
    }

    fn spawn(&mut self) {
        let store = self.store.path().join("jetstream");
        let mut command = Command::new(binary());
        command
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
        // A configuration file names the store directory itself (see `with_jetstream`).
        if !self.config_path().exists() {
            command.arg("--store_dir").arg(&store);
        }
        let spawned = command
            .arg("-l")
            .arg(self.log_path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "nats-server is not installed, and the NATS tests need it: install it with \
                 `apt-get install nats-server` (Debian/Ubuntu; .ci/run does this) or put a \
                 nats-server binary (2.9 or later) on PATH"
            ),
            Err(e) => panic!("cannot start nats-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + START_WAIT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                panic!(
                    "nats-server exited with {status} on port {}:\n{log}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not accept connections on port {} within {START_WAIT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A JetStream cluster of nats-server processes on 127.0.0.1 (each with its own client and
/// cluster port, routes to the others), stopped when dropped.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes, in order.
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` nodes and waits until the cluster can make a stream replicated `n` times
    /// (its JetStream meta leader is elected).
    pub fn start(n: usize) -> NatsCluster {
        let clients: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n)
            .map(|i| {
                let others: Vec<String> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| format!("nats://127.0.0.1:{}", routes[j]))
                    .collect();
                NatsServer::start_with(
                    clients[i],
                    vec![
                        "-n".into(),
                        format!("node{i}"),
                        "--cluster_name".into(),
                        "deskhook".into(),
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{}", routes[i]),
                        "--routes".into(),
                        others.join(","),
                    ],
                )
            })
            .collect();
        let cluster = NatsCluster { nodes };
        cluster.wait_ready(n);
        cluster
    }

    /// Every node's URL, comma-separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn wait_ready(&self, replicas: usize) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let urls = self.urls();
        let deadline = Instant::now() + ELECTION_WAIT;
        runtime.block_on(async {
            loop {
                let made = async {
                    let js = deskhook_transports::nats::connect(
                        &urls,
                        async_nats::ConnectOptions::new(),
                        Duration::from_secs(2),
                    )
                    .await
                    .ok()?;
                    js.create_stream(jetstream::stream::Config {
                        name: "CLUSTER_READY".into(),
                        subjects: vec!["cluster-ready.>".into()],
                        num_replicas: replicas,
                        storage: jetstream::stream::StorageType::Memory,
                        ..Default::default()
                    })
                    .await
                    .ok()?;
                    js.delete_stream("CLUSTER_READY").await.ok()
                }
                .await;
                if made.is_some() {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the nats-server cluster did not elect a JetStream leader within {ELECTION_WAIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

/// Waits (at most 20 s) until the stream `name`, seen from `url`, has a leader and all its
/// replicas current: after a node dies the others elect one, and a consumer made before
/// that times out.
pub async fn wait_for_stream_leader(url: &str, name: &str) {
    let deadline = Instant::now() + START_WAIT;
    loop {
        let settled = async {
            let js = context(url).await;
            let mut stream = js.get_stream(name).await.ok()?;
            let info = stream.info().await.ok()?;
            let cluster = info.cluster.as_ref()?;
            cluster.leader.as_ref()?;
            Some(())
        }
        .await;
        if settled.is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stream {name} has no leader after {START_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A port nothing listens on right now, for a server to listen on soon after.
///
/// Taken below the kernel's ephemeral range when it starts high enough (Linux: 32768):
/// a port there is never handed out for an outgoing connection's own end or for a bind to
/// port 0, which the tests do all the time in parallel, so it stays free until the server
/// binds it. A port from the ephemeral range could be taken meanwhile (a cluster node then
/// failed with "address already in use" on its route port). Ports are tried in turn from a
/// place that depends on the process, so that two calls in one process never give the same
/// port (until every port below the range was given).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    /// Where the ports taken here start.
    const LOWEST: u32 = 20_000;
    static TRIED: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    if let Some(span) = ephemeral_low
        .checked_sub(LOWEST)
        .filter(|span| *span >= 1_000)
    {
        let start = std::process::id() % span;
        for _ in 0..span {
            let tried = TRIED.fetch_add(1, Ordering::Relaxed);
            let Ok(port) = u16::try_from(LOWEST + (start + tried) % span) else {
                break;
            };
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address").port()
}

/// One message read back from the stream.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// Its subject.
    pub subject: String,
    /// Its headers (name, value), as published.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl StoredMessage {
    /// The message of `subject`, `headers` and `body`, as a test reads it.
    fn new(subject: &str, headers: Option<&async_nats::HeaderMap>, body: &[u8]) -> StoredMessage {
        let headers = headers
            .into_iter()
            .flat_map(|map| map.iter())
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |v| (name.to_string(), v.as_str().to_owned()))
            })
            .collect();
        StoredMessage {
            subject: subject.to_owned(),
            headers,
            body: body.to_vec(),
        }
    }

    /// A header's value, by exact name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A JetStream context on `url` for the test itself.
pub async fn context(url: &str) -> jetstream::Context {
    deskhook_transports::nats::connect(
        url,
        async_nats::ConnectOptions::new(),
        Duration::from_secs(5),
    )
    .await
    .expect("the test connects to nats-server")
}

/// Takes every message out of `stream` with a pull consumer (acknowledging each, which
/// removes it from a work-queue stream): as many as the stream held when called, each
/// waited for up to 20 s, then more while the next comes within `idle`; or until a pull
/// fails. Making the consumer is tried again for up to 20 s. For one server: a cluster's
/// test reads with [`read_stream`], which neither makes nor deletes a consumer.
pub async fn drain_stream(url: &str, stream: &str, idle: Duration) -> Vec<StoredMessage> {
    let js = context(url).await;
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    // What the stream holds is waited for as long as a start may take; only then does a
    // pause of `idle` end the pass (a busy machine can be slower than `idle` to deliver
    // the first message).
    let held = stream.info().await.map_or(0, |info| info.state.messages);
    let deadline = Instant::now() + START_WAIT;
    let consumer = loop {
        let made = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("deskhook-test".to_owned()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await;
        match made {
            Ok(consumer) => break consumer,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("a pull consumer: {e:?}"),
        }
    };
    let mut messages = consumer.messages().await.expect("a message stream");
    let mut out = Vec::new();
    loop {
        let wait = if (out.len() as u64) < held {
            START_WAIT.max(idle)
        } else {
            idle
        };
        let Ok(Some(message)) = tokio::time::timeout(wait, messages.next()).await else {
            break;
        };
        // A pull that failed (a heartbeat missed on a busy machine): the drain ends here,
        // and the caller's count of what it read says what it missed.
        let Ok(message) = message else {
            break;
        };
        out.push(StoredMessage::new(
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        ));
        message.ack().await.expect("the ack reaches the server");
    }
    // What the server delivered to this pass but it did not read waits out the consumer's
    // ack wait (30 s) before it is delivered again: the consumer goes, and on the
    // work-queue stream the next pass's consumer starts at the first unacknowledged message.
    drop(messages);
    let deadline = Instant::now() + START_WAIT;
    loop {
        match stream.delete_consumer("deskhook-test").await {
            Ok(_) => break,
            Err(e)
                if matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(ref js)
                if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) =>
            {
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("deleting the drain's consumer: {e:?}"),
        }
    }
    out
}

/// Every message `stream` holds now, in the stream's order, read one by one by sequence
/// from the stream's leader, leaving the stream as it was: no consumer, no acknowledgement.
///
/// What a test on a cluster reads: a consumer made and deleted on a replicated work-queue
/// stream can take unacknowledged messages with it on some nats-server releases
/// (nats-io/nats-server#5612), which a drain by consumer then reports as lost. A read the
/// cluster does not answer (its leaders still moving after a node died) is tried again for
/// up to 20 s.
pub async fn read_stream(url: &str, stream: &str) -> Vec<StoredMessage> {
    use jetstream::stream::RawMessageErrorKind;
    let js = context(url).await;
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let state = &stream.info().await.expect("the stream's info").state;
    let sequences = state.first_sequence..=state.last_sequence;
    let mut out = Vec::new();
    for sequence in sequences {
        let deadline = Instant::now() + START_WAIT;
        loop {
            match stream.get_raw_message(sequence).await {
                Ok(message) => {
                    out.push(StoredMessage::new(
                        &message.subject,
                        Some(&message.headers),
                        &message.payload,
                    ));
                    break;
                }
                // Taken out of the stream (acknowledged, or deleted).
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("reading message {sequence} of the stream: {e}"),
            }
        }
    }
    out
}

/// Runs `work` to its end on a runtime of its own (a test's thread has none).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// The keys of the KV bucket `bucket` now.
pub async fn kv_keys(url: &str, bucket: &str) -> Vec<String> {
    use futures_util::StreamExt as _;
    let bucket = context(url)
        .await
        .get_key_value(bucket)
        .await
        .expect("the bucket exists");
    let keys = bucket.keys().await.expect("its keys");
    keys.map(|key| key.expect("a key")).collect().await
}

/// How many messages `stream` holds now.
pub async fn stream_len(url: &str, stream: &str) -> u64 {
    let js = context(url).await;
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    stream
        .info()
        .await
        .expect("the stream's info")
        .state
        .messages
}

/// The state of every consumer of `stream`, one line each (name, filter, messages left for
/// it, delivered and not acknowledged, pull requests waiting, last delivered and
/// acknowledged stream sequence), and the stream's message count: what a test prints when
/// deliveries stop, to tell a stream that is empty from consumers that do not deliver.
pub async fn consumers_report(url: &str, stream: &str) -> String {
    use futures_util::StreamExt as _;
    let js = context(url).await;
    let Ok(mut found) = js.get_stream(stream).await else {
        return format!("stream {stream}: not found");
    };
    let (messages, first, last) = found.info().await.map_or((0, 0, 0), |i| {
        (
            i.state.messages,
            i.state.first_sequence,
            i.state.last_sequence,
        )
    });
    let mut lines = vec![format!(
        "stream {stream}: {messages} message(s), sequences {first} to {last}"
    )];
    // The first few messages still held: which subjects (partitions) they are on.
    let mut shown = 0;
    for seq in first..=last {
        if shown == 8 || messages == 0 {
            break;
        }
        if let Ok(message) = found.get_raw_message(seq).await {
            // What a look for its partition's first message finds (`<prefix>.*.*.<n>`).
            let tokens: Vec<&str> = message.subject.split('.').collect();
            let partition = format!(
                "{}.*.*.{}",
                tokens.first().unwrap_or(&""),
                tokens.last().unwrap_or(&"")
            );
            let first = found
                .get_first_raw_message_by_subject(&partition, 1)
                .await
                .map_or_else(|e| e.to_string(), |m| m.sequence.to_string());
            lines.push(format!(
                "  held: sequence {seq} on {} (first found on {partition}: {first})",
                message.subject
            ));
            shown += 1;
        }
    }
    let mut consumers = found.consumers();
    while let Some(info) = consumers.next().await {
        match info {
            Ok(c) => lines.push(format!(
                "consumer {} ({}): pending {}, ack pending {}, waiting pulls {}, delivered {}, \
                 ack floor {}",
                c.name,
                c.config.filter_subject,
                c.num_pending,
                c.num_ack_pending,
                c.num_waiting,
                c.delivered.stream_sequence,
                c.ack_floor.stream_sequence
            )),
            Err(e) => lines.push(format!("listing consumers: {e}")),
        }
    }
    lines.join("\n")
}

/// A relay running on a runtime of its own, as `deskhook relay` runs it, until
/// [`stop`](RunningRelay::stop).
#[derive(Debug)]
pub struct RunningRelay {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<
        Result<deskhook_transports::relay::RelayReport, deskhook_transports::Error>,
    >,
}

impl RunningRelay {
    /// Starts `relay` on a thread with a multi-threaded runtime.
    pub fn start(relay: deskhook_transports::relay::Relay) -> RunningRelay {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(relay.run(async {
                    let _ = stopped.await;
                }))
        });
        RunningRelay { stop, thread }
    }

    /// Stops the relay and waits for its report.
    ///
    /// # Panics
    ///
    /// When the relay failed.
    pub fn stop(self) -> deskhook_transports::relay::RelayReport {
        self.begin_stop().wait()
    }

    /// Waits up to `within` for the relay to end by itself (not told to stop), and gives
    /// what it returned.
    ///
    /// # Panics
    ///
    /// When it is still running after `within` (it is then told to stop).
    pub fn ended_by_itself(
        self,
        within: Duration,
    ) -> Result<deskhook_transports::relay::RelayReport, deskhook_transports::Error> {
        let deadline = std::time::Instant::now() + within;
        while !self.thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                let report = self.stop();
                panic!("the relay did not end by itself within {within:?}: {report:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.thread.join().expect("the relay's thread")
    }

    /// Tells the relay to stop, without waiting for it: it finishes what it has in
    /// delivery (its grace) meanwhile.
    pub fn begin_stop(self) -> StoppingRelay {
        let _ = self.stop.send(());
        StoppingRelay {
            thread: self.thread,
        }
    }
}

/// A relay told to stop ([`RunningRelay::begin_stop`]).
#[derive(Debug)]
pub struct StoppingRelay {
    thread: std::thread::JoinHandle<
        Result<deskhook_transports::relay::RelayReport, deskhook_transports::Error>,
    >,
}

impl StoppingRelay {
    /// Waits for the relay's report.
    ///
    /// # Panics
    ///
    /// When the relay failed.
    pub fn wait(self) -> deskhook_transports::relay::RelayReport {
        self.thread
            .join()
            .expect("the relay's thread")
            .expect("the relay ran")
    }
}

/// Publishes `events` events of ticket `code` through a `NatsSink` to the default stream,
/// numbered 0, 1, … in their subjects, and waits until JetStream has them all.
///
/// # Panics
///
/// When the publisher cannot start or the events are not all published within 20 s.
pub fn publish_numbered(server: &NatsServer, code: &str, events: usize, dead: &Path) {
    use deskhook_transports::nats::{NatsSink, StreamSettings};
    let (publisher, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new())
        .require_server(true)
        .dead_letter_path(dead)
        .build()
        .expect("the publisher starts");
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("nats", publisher)
        .build();
    let user = deskhook::sample::user();
    for n in 0..events {
        let mut ticket = crate::ticket(code);
        ticket.subject = n.to_string();
        dispatcher.emit(deskhook::Action::Comment, &ticket, &user);
    }
    guard.flush(Duration::from_secs(20)).expect("all published");
}

/// Publishes `per_ticket` events of each of `tickets` in turn ([`emit_in_turn`](crate::emit_in_turn):
/// numbered 0, 1, … in their subjects) through a `NatsSink` to a stream of `partitions`
/// partitions, and waits until JetStream has them all. They are published one at a time,
/// so the stream holds them in that turn too: with more in flight, only each ticket's
/// order is kept, and a relay's window could fill with a few tickets' events.
///
/// # Panics
///
/// When the publisher cannot start or the events are not all published within 20 s.
pub fn publish_in_turn(
    server: &NatsServer,
    partitions: u32,
    (tickets, per_ticket): (&[&str], usize),
    dead: &Path,
) {
    use deskhook_transports::nats::{NatsSink, StreamSettings};
    let (publisher, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new().partitions(partitions))
        .require_server(true)
        .max_in_flight(1)
        .dead_letter_path(dead)
        .build()
        .expect("the publisher starts");
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("nats", publisher)
        .build();
    crate::emit_in_turn(&dispatcher, tickets, per_ticket);
    guard.flush(Duration::from_secs(20)).expect("all published");
}

/// The numbers of the events [`publish_numbered`] made that `receiver` has, in the order
/// they arrived.
///
/// # Panics
///
/// When a request's body has no numbered subject.
pub fn numbers(receiver: &crate::Receiver) -> Vec<usize> {
    receiver
        .requests()
        .iter()
        .map(|r| {
            r.json()["ticket"]["subject"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("a numbered subject")
        })
        .collect()
}
