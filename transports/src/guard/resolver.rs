//! The ureq part of the guard: a resolver that vets what it resolves, and an agent built
//! around it.

use super::{AddressPolicy, Refusal, VETTED_ANSWER_REUSE, check_ip};

use std::collections::HashMap;
use std::io;

use ureq::config::{Config, ConfigBuilder};
use ureq::http::Uri;
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// A ureq [`Resolver`] that resolves like ureq's default resolver, then checks every resolved
/// address with [`check_ip`].
///
/// The name is refused as a whole if any address is refused; otherwise ureq connects only to
/// the addresses returned here, which are the vetted ones (the DNS rebinding defence). ureq
/// calls it for IP-literal hosts too, and again for each request and redirect hop.
///
/// A refusal comes back from the request as [`ureq::Error::Io`] carrying the [`Refusal`]
/// (Display "io: refusing to connect to …"); [`refusal_of`] digs it out.
///
/// If a proxy is configured on the agent (the [`agent`] function never does that), ureq asks
/// this resolver for the proxy's own address, which is then checked like any other, and
/// usually not for the target's, which the proxy resolves unseen.
#[derive(Debug, Default)]
pub struct GuardedResolver {
    policy: AddressPolicy,
    inner: DefaultResolver,
    /// Vetted answers by scheme, host and port: (when, addresses). The addresses carry the
    /// port, so `http://h` and `https://h` are two entries.
    cache: std::sync::Mutex<HashMap<String, (std::time::Instant, ResolvedSocketAddrs)>>,
}

/// Answers a resolver keeps at most; past it, those older than their reuse go.
const CACHED_ANSWERS: usize = 256;

impl GuardedResolver {
    /// A resolver that enforces `policy`.
    pub fn new(policy: AddressPolicy) -> Self {
        GuardedResolver {
            policy,
            inner: DefaultResolver::default(),
            cache: std::sync::Mutex::default(),
        }
    }

    /// The policy it enforces.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let refused =
            |refusal| ureq::Error::Io(io::Error::new(io::ErrorKind::PermissionDenied, refusal));
        // An IP literal needs no lookup. ureq's own resolver would still spawn a thread
        // for it whenever a timeout is set, once per request: a third of the blocking
        // transport's CPU on loopback.
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        if let Some(host) = uri.host()
            && let Ok(ip) = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
        {
            check_ip(ip, &self.policy).map_err(refused)?;
            let mut addrs = self.empty();
            addrs.push(std::net::SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!(
            "{}://{}:{port}",
            uri.scheme_str().unwrap_or(""),
            uri.host().unwrap_or("")
        );
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, addrs)) = cache.get(&key)
                && at.elapsed() < VETTED_ANSWER_REUSE
            {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        for addr in &addrs {
            check_ip(addr.ip(), &self.policy).map_err(refused)?;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHED_ANSWERS {
            cache.retain(|_, (at, _)| at.elapsed() < VETTED_ANSWER_REUSE);
            if cache.len() >= CACHED_ANSWERS {
                cache.clear();
            }
        }
        cache.insert(key, (std::time::Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// The [`Refusal`] inside a ureq error, if the guard is why the request failed.
pub fn refusal_of(err: &ureq::Error) -> Option<&Refusal> {
    match err {
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<Refusal>(),
        _ => None,
    }
}

/// Builds a ureq agent that resolves through a [`GuardedResolver`] enforcing `policy`.
///
/// The agent has no proxy: the builder's proxy is set to `None`. ureq 3 reads
/// `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` (and their lowercase forms) into every default
/// config, including [`Config::builder()`], and a proxy would resolve the target itself,
/// unchecked. A request-level config that sets a proxy again bypasses the resolver check for
/// that request; transports do not do that.
///
/// Redirects are left to `config`: ureq follows up to 10 by default, each hop's addresses
/// vetted like the first's. deskhook's transports follow none (a receiver's 3xx is a
/// failed attempt); for the same rule, give `config` `.max_redirects(0)`.
///
/// Costs what `ureq::Agent::new_with_config` costs: one connection pool, no I/O.
///
/// ```
/// use std::time::Duration;
/// use deskhook_transports::guard::{agent, AddressPolicy};
///
/// let agent = agent(
///     AddressPolicy::default(),
///     ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))),
/// );
/// assert!(agent.config().proxy().is_none());
/// ```
pub fn agent(policy: AddressPolicy, config: ConfigBuilder<AgentScope>) -> ureq::Agent {
    ureq::Agent::with_parts(
        config.proxy(None).build(),
        DefaultConnector::new(),
        GuardedResolver::new(policy),
    )
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use ureq::config::{ConfigBuilder, IpFamily};
    use ureq::typestate::AgentScope;

    use super::*;
    use ipnet::IpNet;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// A loopback receiver that counts connections and answers each with 204.
    struct Receiver {
        port: u16,
        stop: Arc<AtomicBool>,
        handle: JoinHandle<usize>,
    }

    impl Receiver {
        fn start() -> Receiver {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let stop = Arc::new(AtomicBool::new(false));
            let stop_flag = Arc::clone(&stop);
            let handle = thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut count = 0;
                while !stop_flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            count += 1;
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(5)))
                                .unwrap();
                            let mut request = Vec::new();
                            let mut buf = [0; 1024];
                            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                                match stream.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => request.extend_from_slice(&buf[..n]),
                                }
                            }
                            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                // Whatever is still queued counts too.
                while listener.accept().is_ok() {
                    count += 1;
                }
                count
            });
            Receiver { port, stop, handle }
        }

        /// Stops the receiver and returns how many connections it accepted.
        fn connections(self) -> usize {
            self.stop.store(true, Ordering::SeqCst);
            self.handle.join().unwrap()
        }
    }

    #[test]
    fn a_vetted_answer_is_kept_per_scheme_host_and_port() {
        // ureq puts the port into the addresses it resolves: an answer for http://h must
        // not serve https://h (port 80 for TLS, or plain HTTP to port 443).
        let resolver = GuardedResolver::new(AddressPolicy::default().allow_private(true));
        let config = Config::default();
        let ports = |url: &str| -> Vec<u16> {
            let uri: Uri = url.parse().unwrap();
            let addrs = resolver
                .resolve(&uri, &config, NextTimeout::default())
                .unwrap();
            addrs.iter().map(std::net::SocketAddr::port).collect()
        };
        for (url, port) in [
            ("http://localhost/a", 80),
            ("https://localhost/b", 443),
            ("http://localhost:8089/c", 8089),
            ("http://localhost/d", 80),
        ] {
            let found = ports(url);
            assert!(
                !found.is_empty() && found.iter().all(|p| *p == port),
                "{url}: {found:?}"
            );
        }
        assert_eq!(resolver.cache.lock().unwrap().len(), 3);
    }

    fn config() -> ConfigBuilder<AgentScope> {
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5)))
    }

    #[test]
    fn resolver_refuses_loopback_names_without_connecting() {
        let receiver = Receiver::start();
        let agent = agent(AddressPolicy::default(), config());
        assert!(agent.config().proxy().is_none());

        let err = agent
            .get(format!("http://localhost:{}/", receiver.port))
            .call()
            .unwrap_err();
        let refusal = refusal_of(&err).expect("a refusal");
        assert_eq!(refusal.reason(), "loopback");
        let text = err.to_string();
        assert!(text.contains("refusing to connect to "), "{text}");
        assert!(
            text.contains("(loopback): set allow_private = true or list it in allow_cidrs"),
            "{text}"
        );
        assert_eq!(receiver.connections(), 0);
    }

    #[test]
    fn resolver_checks_ip_literals_too() {
        let receiver = Receiver::start();
        let agent = agent(AddressPolicy::default(), config());
        for literal in [
            format!("http://127.0.0.1:{}/", receiver.port),
            format!("http://[::1]:{}/", receiver.port),
            format!("http://[::ffff:127.0.0.1]:{}/", receiver.port),
        ] {
            let err = agent.get(&literal).call().unwrap_err();
            let refusal = refusal_of(&err).unwrap_or_else(|| panic!("{literal}: {err}"));
            assert_eq!(refusal.reason(), "loopback", "{literal}");
        }
        assert_eq!(receiver.connections(), 0);
    }

    #[test]
    fn resolver_lets_allowed_loopback_through() {
        let receiver = Receiver::start();
        let agent = agent(AddressPolicy::default().allow_private(true), config());
        gets_through(agent, receiver);
    }

    /// `agent` reaches `receiver` by the name localhost: one request, answered 204.
    fn gets_through(agent: ureq::Agent, receiver: Receiver) {
        let response = agent
            .get(format!("http://localhost:{}/", receiver.port))
            .call()
            .unwrap();
        assert_eq!(response.status(), 204);
        drop(agent);
        assert_eq!(receiver.connections(), 1);
    }

    #[test]
    fn resolver_lets_listed_cidr_through() {
        let receiver = Receiver::start();
        // IPv4 only: if localhost also resolves to ::1, that address is not in the list and
        // would get the whole name refused.
        let agent = agent(
            AddressPolicy::default().allow_cidr(net("127.0.0.0/8")),
            config().ip_family(IpFamily::Ipv4Only),
        );
        gets_through(agent, receiver);
    }

    #[test]
    fn refusal_of_ignores_other_errors() {
        assert!(refusal_of(&ureq::Error::HostNotFound).is_none());
        let other = ureq::Error::Io(io::Error::other("boom"));
        assert!(refusal_of(&other).is_none());
    }
}
