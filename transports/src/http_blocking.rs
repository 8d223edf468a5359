//! Blocking HTTP delivery over ureq: [`HttpSink`].
//!
//! Connections are kept per origin and shared by the endpoints with the same connection
//! settings (one ureq agent each). A request whose connection ends before any answer (most
//! often a kept one the server closed as the request went out: an idle timeout) is sent
//! again at once, within the same attempt, on a new connection: at least once, as every
//! attempt is.
//!
//! Each request goes out in one write (ureq hands over its head and its body apart; they
//! are held until it waits for the answer), and a connection handed straight from one
//! request to the next is checked once between them, not twice: see `benches/README.md`,
//! *Where the CPU goes*, for what that saved.
//!
//! A request's writing ends at the attempt's timeout however slowly the server takes it,
//! and over plain HTTP a refusal that comes before the server took the whole request (a
//! `413` for a large body, once the server has the head) is the attempt's answer, as on the
//! async transport, not a timeout. Over `https` such an answer is heard only once the
//! request is written or the timeout passes.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use deskhook::Dispatcher;
//! use deskhook_transports::delivery::Endpoint;
//! use deskhook_transports::http_blocking::HttpSink;
//!
//! // The secret the receiver has too (`deskhook secret new` makes one).
//! let secret = deskhook::Secret::parse(&std::env::var("CRM_WEBHOOK_SECRET")?)?;
//! let (http, _guard) = HttpSink::builder()
//!     .endpoint(Endpoint::new("crm", "https://crm.example.com/hooks")?.secret(secret))
//!     .build()?;
//! deskhook::set_dispatcher(Dispatcher::builder().sink("http", http).build())?;
//! // … the helpdesk runs and emits; dropping `_guard` at exit flushes (5 s by default).
//! # Ok(()) }
//! ```

mod kept;
mod tcp;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::delivery::engine::attempt::Next;
use crate::delivery::pool::Woke;
use crate::delivery::{
    AttemptError, ClientKey, Connector, DeliveryGuard, DeliverySink, Endpoint, Engine,
    RESPONSE_READ_LIMIT, RESPONSE_SNIPPET_BYTES, Response, SinkBuilder, Target, Transport, lock,
    parse_retry_after,
};
use crate::error::Error;
use crate::guard;

pub use crate::delivery::USER_AGENT;

/// Requests in flight per endpoint when the endpoint does not set `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// The sink of the blocking transport: a [`DeliverySink`] whose workers are threads making
/// requests with ureq. `HttpSink::builder()` starts one; `.build()` runs it.
pub type HttpSink = DeliverySink;

impl SinkBuilder {
    /// Checks the settings and the endpoints, opens the dead-letter file (or the spool), and
    /// starts the blocking transport's worker pool: one thread at first, more with demand up
    /// to `max_threads` (idle ones end after `thread_idle_timeout`), shared by every
    /// endpoint.
    ///
    /// Keep the guard for as long as events should be delivered: bind it to a name
    /// (`let (sink, _guard) = …`), not to `_`, which drops it at once and stops delivery
    /// (events emitted afterwards go to the dead letters).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`], [`Error::InvalidUrl`] or [`Error::Refused`] naming the
    /// endpoint and what to change; [`Error::Open`] when the dead-letter file cannot be
    /// opened; [`Error::Config`] for duplicate endpoint names, a setting of 0, or a thread
    /// that cannot start.
    pub fn build(self) -> Result<(HttpSink, DeliveryGuard), Error> {
        let config = &self.config;
        let slots = config.max_in_flight.min(config.max_threads);
        let connector = UreqConnector {
            idle_per_host: slots,
            agents: Mutex::default(),
        };
        let (engine, shutdown_timeout) = self.start_engine(Box::new(connector))?;
        engine.pool().set_limit(slots);
        let weak = Arc::downgrade(&engine);
        let spawn = move || {
            let weak: Weak<Engine> = weak.clone();
            std::thread::Builder::new()
                .name("deskhook-http".to_owned())
                .spawn(move || {
                    if let Some(engine) = weak.upgrade() {
                        run_thread(&engine);
                    }
                })
                .map(drop)
        };
        engine
            .pool()
            .start_threads(Box::new(spawn))
            .map_err(|e| Error::Config(format!("cannot start a delivery thread: {e}")))?;
        Ok((
            DeliverySink::new(engine.clone()),
            DeliveryGuard::new(engine, shutdown_timeout),
        ))
    }
}

/// One worker thread: attempts until the pool stops, or ends when idle too long.
fn run_thread(engine: &Arc<Engine>) {
    /// Tells the pool the thread ended, however it ends (a panic of the transport too).
    struct Exit<'a>(&'a Engine);
    impl Drop for Exit<'_> {
        fn drop(&mut self) {
            self.0.pool().exited();
        }
    }
    let _exit = Exit(engine);
    engine.priority().apply();
    loop {
        match engine.next_attempt() {
            Next::Attempt(attempt) => {
                engine.pool().busy();
                // A panic in the transport settles its attempt as a failure (the attempt's
                // drop) and leaves this thread to go on: were it to end, the thread that
                // frees a slot would be gone, and with the last one nobody would deliver.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    attempt.run(|attempt, headers| {
                        UreqTransport.post(
                            attempt.route.target.as_ref(),
                            headers,
                            attempt.job().body(),
                        )
                    });
                }));
                if ran.is_err() {
                    log::error!(
                        target: deskhook::LOG_TARGET,
                        "a delivery attempt panicked (a bug: please report it); it counts as \
                         failed and delivery goes on"
                    );
                }
            }
            Next::Wait(until) => match engine.pool().wait(until) {
                Woke::Work => {}
                Woke::Exit | Woke::Stop => return,
            },
            Next::Stop => return,
        }
    }
}

/// Makes the blocking transport's targets: one ureq agent (a connection pool per origin)
/// per [`ClientKey`], shared by every endpoint with that key, and its twin that keeps no
/// connection (for a request sent again because a kept connection ended under it).
struct UreqConnector {
    idle_per_host: usize,
    agents: Mutex<Agents>,
}

/// The agents endpoints use now, by key: held by their targets, so that an agent no endpoint
/// uses any more (its settings changed, its endpoints removed) goes with its idle
/// connections.
#[derive(Default)]
struct Agents {
    by_key: HashMap<ClientKey, Weak<KeyAgents>>,
    /// The size at which the map is next swept of agents no endpoint uses any more.
    sweep_at: usize,
}

/// The agents of one [`ClientKey`].
struct KeyAgents {
    /// Keeps connections alive between requests.
    pooled: ureq::Agent,
    /// Keeps none: each request on a new connection.
    fresh: ureq::Agent,
}

/// An endpoint as the blocking transport sends to it.
struct UreqTarget {
    agents: Arc<KeyAgents>,
    url: String,
    /// The whole attempt's timeout (the agents' own): a request sent again gets what is
    /// left of it.
    timeout: Duration,
}

impl Connector for UreqConnector {
    fn target(&self, endpoint: &Endpoint) -> Result<Target, Error> {
        endpoint.check_http()?;
        let key = ClientKey::of(endpoint);
        let timeout = key.timeout;
        let mut agents = lock(&self.agents);
        let key_agents = match agents.by_key.get(&key).and_then(Weak::upgrade) {
            Some(key_agents) => key_agents,
            None => {
                let key_agents = Arc::new(KeyAgents {
                    pooled: agent_for(&key, Some(self.idle_per_host)),
                    fresh: agent_for(&key, None),
                });
                agents.by_key.insert(key, Arc::downgrade(&key_agents));
                if agents.by_key.len() >= agents.sweep_at {
                    agents.by_key.retain(|_, agent| agent.strong_count() > 0);
                    agents.sweep_at = (agents.by_key.len() * 2).max(64);
                }
                key_agents
            }
        };
        drop(agents);
        Ok(Arc::new(UreqTarget {
            agents: key_agents,
            url: endpoint.url.to_string(),
            timeout,
        }))
    }

    fn default_max_in_flight(&self) -> usize {
        DEFAULT_MAX_IN_FLIGHT
    }
}

/// The agent of `key`: keeping up to `idle_per_host` connections per origin, or none.
fn agent_for(key: &ClientKey, idle_per_host: Option<usize>) -> ureq::Agent {
    let (per_host, all) = match idle_per_host {
        Some(idle) => (idle.max(1), idle.max(10) * 4),
        None => (0, 0),
    };
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(key.connect_timeout))
        .timeout_global(Some(key.timeout))
        .user_agent(USER_AGENT)
        .max_idle_connections_per_host(per_host)
        .max_idle_connections(all);
    if let Some(certs) = &key.roots {
        let roots = certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der).to_owned());
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::from(roots))
                .build(),
        );
    }
    // The guard's agent ignores proxies from the environment.
    guard::agent_with(key.policy.clone(), config, kept::connector())
}

struct UreqTransport;

impl Transport for UreqTransport {
    fn post(
        &self,
        target: &(dyn std::any::Any + Send + Sync),
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let Some(target) = target.downcast_ref::<UreqTarget>() else {
            return Err(AttemptError {
                message: "the endpoint was not made for the blocking transport".to_owned(),
                retryable: false,
            });
        };
        let started = Instant::now();
        let send = |agent: &ureq::Agent| {
            let mut request = agent.post(&target.url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request
        };
        kept::watch_connects();
        let mut response = match send(&target.agents.pooled).send(&body[..]) {
            // A kept connection that ended before any answer: most often one the server
            // closed as the request went out (an idle timeout). Sent again at once, on a
            // new connection, within what is left of the attempt's timeout (at least once,
            // as every attempt is: the server may have read it). A new connection that ends
            // so is the server's answer: the attempt failed. So is one that ended after the
            // first bytes of an answer: the server had the request.
            Err(ureq::Error::Io(e))
                if closed_before_answer(&e) && !kept::connected() && !kept::answered() =>
            {
                send(&target.agents.fresh)
                    .config()
                    .timeout_global(Some(target.timeout.saturating_sub(started.elapsed())))
                    .build()
                    .send(&body[..])
            }
            sent => sent,
        }
        .map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Read up to the limit (so that the connection can be kept), keeping what the
        // observer is shown; a body that cannot be read does not change what the status
        // says.
        let mut snippet = Vec::new();
        let mut reader = response.body_mut().as_reader().take(RESPONSE_READ_LIMIT);
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = reader.read(&mut chunk) {
            let room = RESPONSE_SNIPPET_BYTES.saturating_sub(snippet.len());
            snippet.extend_from_slice(&chunk[..n.min(room)]);
        }
        Ok(Response {
            status,
            retry_after,
            snippet,
        })
    }
}

/// Whether a request failed because its connection ended (closed or reset) before any
/// answer came.
fn closed_before_answer(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::UnexpectedEof || crate::delivery::connection_cut(err)
}

fn classify(err: ureq::Error) -> AttemptError {
    if let Some(refusal) = guard::refusal_of(&err) {
        return AttemptError {
            message: refusal.to_string(),
            retryable: false,
        };
    }
    let retryable = !matches!(err, ureq::Error::BadUri(_) | ureq::Error::Http(_));
    let message = match &err {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        other => other.to_string(),
    };
    AttemptError { message, retryable }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(
            parsed <= Duration::from_secs(90) && parsed >= Duration::from_secs(85),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        // More seconds than a u64 holds: the longest wait, which the engine caps.
        assert_eq!(
            parse_retry_after("99999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-5"), None);
    }

    #[test]
    fn endpoints_share_an_agent_per_key_and_an_unused_one_goes() {
        let connector = UreqConnector {
            idle_per_host: 4,
            agents: Mutex::default(),
        };
        let endpoint = |name: &str, timeout: u64| {
            Endpoint::new(name, "http://127.0.0.1:9/")
                .unwrap()
                .allow_private(true)
                .timeout(Duration::from_secs(timeout))
        };
        let agent = |target: &Target| target.downcast_ref::<UreqTarget>().unwrap().agents.clone();
        let a = connector.target(&endpoint("a", 10)).unwrap();
        let b = connector.target(&endpoint("b", 10)).unwrap();
        assert!(
            Arc::ptr_eq(&agent(&a), &agent(&b)),
            "same settings, one agent"
        );
        // Another timeout is another agent; once no target holds the first, it is gone.
        let c = connector.target(&endpoint("a", 20)).unwrap();
        assert!(!Arc::ptr_eq(&agent(&a), &agent(&c)));
        let first = Arc::downgrade(&agent(&a));
        drop((a, b));
        assert!(first.upgrade().is_none(), "the unused agent was dropped");
        lock(&connector.agents).sweep_at = 0;
        let _d = connector.target(&endpoint("d", 30)).unwrap();
        assert_eq!(lock(&connector.agents).by_key.len(), 2, "swept");
    }
}
