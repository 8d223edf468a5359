//! A `nats-server` with JetStream for the NATS tests: started on a free loopback port with a
//! temporary store directory, stopped (killed and waited for) when dropped; a 3-node cluster
//! of them; readers of what a stream holds (`stream.rs`); and relays and publishers for the
//! tests (`relay.rs`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deskhook_transports::nats::async_nats;
use deskhook_transports::nats::async_nats::jetstream;

mod relay;
mod stream;

pub use relay::{RunningRelay, StoppingRelay, numbers, publish_in_turn, publish_numbered};
pub use stream::{StoredMessage, consumers_report, drain_stream, kv_keys, read_stream, stream_len};

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

/// Runs `work` to its end on a runtime of its own (a test's thread has none).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}
