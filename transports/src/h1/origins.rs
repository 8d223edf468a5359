//! What both HTTP transports keep of an origin: where it is ([`Place`]: its host, port and
//! TLS name), and the map of the origins in use ([`Origins`]), each shared by the endpoints
//! with the same origin and connection settings. The pools themselves (what a connection is,
//! how it is made and kept) are each transport's own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;

use super::tls::TlsConfigs;
use crate::delivery::ClientKey;
use crate::guard::AddressPolicy;

/// A transport's pool of one origin, made from the origin's URL and connection settings.
pub(crate) trait Pool: Sized {
    /// The pool of `url`'s origin: TLS by `tls` for `https`, connections vetted by
    /// `policy`, made within `connect_timeout`, at most `max_idle` kept.
    fn new(
        url: &url::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
        policy: AddressPolicy,
        connect_timeout: std::time::Duration,
        max_idle: usize,
    ) -> Result<Self, String>;

    /// Drops (closes) the kept connections that at `now` are unused for longer than
    /// [`IDLE_REUSE`](super::IDLE_REUSE): they would not be used again.
    fn prune_idle(&self, now: Instant);
}

/// An origin's host: an address, or a name to resolve.
pub(crate) enum Host {
    /// An IP literal, vetted at each connect.
    Ip(IpAddr),
    /// A name, looked up and its addresses vetted.
    Name(String),
}

impl Host {
    /// How an attempt's error names `addr`, the `i`th of the `n` addresses connected to: an
    /// IP literal as it is, a name's address by its place among them, not the address.
    /// Attempts and dead letters are read by whoever sees an endpoint's deliveries (a
    /// tenant), who must not learn what internal names resolve to; the address goes to a
    /// `debug` record for the operator.
    pub(crate) fn shown(&self, addr: &std::net::SocketAddr, i: usize, n: usize) -> String {
        match self {
            Host::Ip(_) => addr.to_string(),
            Host::Name(name) => {
                log::debug!(target: deskhook::LOG_TARGET, "{name}: address {} of {n} is {addr}", i + 1);
                format!("{name} (address {} of {n})", i + 1)
            }
        }
    }
}

/// The least time an address is given to connect.
const LEAST_PER_ADDRESS: std::time::Duration = std::time::Duration::from_millis(10);

/// How long the `i`th of `n` addresses may take to connect, with `left` of the connect
/// timeout: half of it, and the last all of it (at least [`LEAST_PER_ADDRESS`]). One that
/// never answers (a route that drops everything) leaves time for the others, and the first,
/// the one most likely to work, is not cut short by the number of addresses behind it (with
/// an equal split, a name with eight addresses and a 1 s timeout gave each 125 ms, less than
/// a round trip across an ocean).
pub(crate) fn address_share(i: usize, n: usize, left: std::time::Duration) -> std::time::Duration {
    let share = if i + 1 >= n { left } else { left / 2 };
    share.max(LEAST_PER_ADDRESS)
}

/// What a connect met at each address it tried, in order: for its error when none took it.
#[derive(Debug, Default)]
pub(crate) struct Met {
    errors: Vec<String>,
    /// Whether an address answered with an error (refused, no route, denied), rather than
    /// not at all.
    answered: bool,
}

impl Met {
    /// `address` (as [`Host::shown`] names it) did not answer within `within`.
    pub(crate) fn no_answer(&mut self, address: String, within: std::time::Duration) {
        self.errors
            .push(format!("{address}: no answer within {within:?}"));
    }

    /// `address` failed with `e`.
    pub(crate) fn failed(&mut self, address: String, e: &std::io::Error) {
        self.errors.push(format!("{address}: {e}"));
        self.answered = true;
    }

    /// Whether an address answered with an error rather than not at all.
    #[cfg(feature = "http-blocking")]
    pub(crate) fn answered(&self) -> bool {
        self.answered
    }

    /// The message when none of `host`'s addresses took a connection: each one's error.
    pub(crate) fn message(&self, host: &Host) -> String {
        match (&self.errors[..], host) {
            ([], Host::Name(name)) => format!("connection failed: {name} resolved to no address"),
            ([], Host::Ip(ip)) => format!("connection failed: {ip}: no address to connect to"),
            (errors, _) => format!("connection failed: {}", errors.join("; ")),
        }
    }

    /// The message when a timeout (`ended_by`, "the connect timeout (5s)") passed: `None`
    /// when no address answered (the timeout says it all), else each one's error then the
    /// timeout, so that an error that says what to fix (a refusal, a local rule) is not lost
    /// to the timeout after it.
    pub(crate) fn out_of_time(&self, host: &Host, ended_by: &str) -> Option<String> {
        self.answered
            .then(|| format!("{}; then {ended_by} passed", self.message(host)))
    }
}

/// The message of a connect whose lookup of `host` did not answer within `connect_timeout`.
pub(crate) fn unresolved(host: &Host, connect_timeout: std::time::Duration) -> String {
    match host {
        Host::Name(name) => format!(
            "cannot resolve '{name}' within {connect_timeout:?} (the endpoint's \
             connect_timeout): its DNS did not answer"
        ),
        Host::Ip(_) => format!("timed out connecting ({connect_timeout:?})"),
    }
}

/// Where an origin's connections go: its host and port, and for `https` its TLS settings and
/// the name its certificate must have.
pub(crate) struct Place {
    pub(crate) host: Host,
    pub(crate) port: u16,
    pub(crate) tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl Place {
    /// The place of `url` (checked already: `http` or `https`, with a host); `tls` is what
    /// an `https` URL is reached with.
    pub(crate) fn of(
        url: &url::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Place, String> {
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => Host::Ip(ip.into()),
            Some(url::Host::Domain(domain)) => Host::Name(domain.to_owned()),
            None => return Err("the URL has no host".to_owned()),
        };
        let port = url
            .port_or_known_default()
            .ok_or("the URL has no port and its scheme no default one")?;
        // Only a certificate's name need be a valid DNS name: `http` takes any host the URL
        // does (`foo-.internal`, say).
        let tls = match url.scheme() {
            "https" => {
                let name = match &host {
                    Host::Ip(ip) => ServerName::from(*ip),
                    Host::Name(domain) => ServerName::try_from(domain.clone()).map_err(|e| {
                        format!(
                            "'{domain}' cannot be a TLS server name ({e}): a certificate \
                             cannot name it; reach it over http, or by a name that is a \
                             valid DNS name"
                        )
                    })?,
                };
                Some((tls.ok_or("an https URL needs TLS settings")?, name))
            }
            _ => None,
        };
        Ok(Place { host, port, tls })
    }
}

/// The origins endpoints use now, by what makes connections interchangeable (the connection
/// settings and the origin: scheme, host and port). Held by the endpoints' targets, so that
/// an origin no endpoint uses any more (its settings changed, its endpoints removed) goes
/// with its idle connections.
pub(crate) struct Origins<O> {
    by_key: HashMap<(ClientKey, String), Weak<O>>,
    /// The size at which the map is next swept of origins no endpoint uses any more.
    sweep_at: usize,
}

impl<O> Default for Origins<O> {
    fn default() -> Self {
        Origins {
            by_key: HashMap::new(),
            sweep_at: 0,
        }
    }
}

impl<O> Origins<O> {
    /// The pool of `url`'s origin under `key`, made (TLS from `tls`, at most `max_idle`
    /// connections kept) if no endpoint uses it yet.
    pub(crate) fn pool(
        &mut self,
        key: &ClientKey,
        url: &url::Url,
        tls: &TlsConfigs,
        max_idle: usize,
    ) -> Result<Arc<O>, String>
    where
        O: Pool,
    {
        let map_key = (key.clone(), url[..url::Position::BeforePath].to_owned());
        if let Some(origin) = self.by_key.get(&map_key).and_then(Weak::upgrade) {
            return Ok(origin);
        }
        let tls = match url.scheme() {
            "https" => Some(tls.get(&key.roots)?),
            _ => None,
        };
        let origin = Arc::new(O::new(
            url,
            tls,
            key.policy.clone(),
            key.connect_timeout,
            max_idle,
        )?);
        self.by_key.insert(map_key, Arc::downgrade(&origin));
        if self.by_key.len() >= self.sweep_at {
            self.by_key.retain(|_, origin| origin.strong_count() > 0);
            self.sweep_at = (self.by_key.len() * 2).max(64);
        }
        Ok(origin)
    }

    /// Each origin some endpoint uses: taken under the map's lock, visited after it, so that
    /// closing their sockets holds up no endpoint change.
    pub(crate) fn live(&self) -> Vec<Arc<O>> {
        self.by_key.values().filter_map(Weak::upgrade).collect()
    }

    /// How many origins the map holds, used or not yet swept.
    #[cfg(all(test, feature = "http-blocking"))]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Has the next origin made sweep the map.
    #[cfg(all(test, feature = "http-blocking"))]
    pub(crate) fn sweep_next(&mut self) {
        self.sweep_at = 0;
    }
}

/// Closes, every [`IDLE_REUSE`](super::IDLE_REUSE), the kept connections of every origin
/// that are unused for longer. A kept connection is otherwise dropped only by its origin's
/// next request: an endpoint gone quiet would keep its last burst's sockets (up to its
/// `max_in_flight`) for as long as it stays quiet, and thousands of quiet endpoints would
/// take the process's file descriptors. One thread per sink (`deskhook-idle`), asleep in
/// between; it ends when [`stop`](Sweeper::stop) is called (the sink shuts down, or its
/// connector is dropped) or its origins are gone.
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    stopped: Mutex<bool>,
    wake: Condvar,
    /// Its thread, for tests to see it end.
    #[cfg(test)]
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Sweeper {
    /// Starts sweeping `origins` every `every`. Without a thread (the system has none to
    /// give), nothing is swept: connections are then closed by their origins' requests, as
    /// before, and that is logged.
    pub(crate) fn start<O: Pool + Send + Sync + 'static>(
        origins: &Arc<Mutex<Origins<O>>>,
        every: Duration,
    ) -> Arc<Sweeper> {
        let sweeper = Arc::new(Sweeper::default());
        let (origins, running) = (Arc::downgrade(origins), sweeper.clone());
        let started = std::thread::Builder::new()
            .name("deskhook-idle".to_owned())
            .spawn(move || running.run(&origins, every));
        #[cfg(test)]
        let started = started.map(|thread| {
            *crate::delivery::lock(&sweeper.thread) = Some(thread);
        });
        if let Err(e) = started {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "cannot start the thread that closes idle connections ({e}); each origin's \
                 are closed by its next request instead"
            );
        }
        sweeper
    }

    fn run<O: Pool>(&self, origins: &Weak<Mutex<Origins<O>>>, every: Duration) {
        let mut stopped = crate::delivery::lock(&self.stopped);
        loop {
            stopped = self
                .wake
                .wait_timeout_while(stopped, every, |stopped| !*stopped)
                .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
            if *stopped {
                return;
            }
            drop(stopped);
            let Some(origins) = origins.upgrade() else {
                return;
            };
            let live = crate::delivery::lock(&origins).live();
            drop(origins);
            let now = Instant::now();
            for origin in live {
                origin.prune_idle(now);
            }
            stopped = crate::delivery::lock(&self.stopped);
        }
    }

    /// Ends the sweeping thread (at once, if it sleeps).
    pub(crate) fn stop(&self) {
        *crate::delivery::lock(&self.stopped) = true;
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::delivery::Endpoint;

    /// A pool that counts its sweeps.
    struct Counted(Arc<AtomicUsize>);

    static SWEEPS: std::sync::LazyLock<Arc<AtomicUsize>> = std::sync::LazyLock::new(Arc::default);

    impl Pool for Counted {
        fn new(
            _: &url::Url,
            _: Option<Arc<rustls::ClientConfig>>,
            _: AddressPolicy,
            _: Duration,
            _: usize,
        ) -> Result<Self, String> {
            Ok(Counted(SWEEPS.clone()))
        }

        fn prune_idle(&self, _: Instant) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
    }

    #[test]
    fn the_sweeper_prunes_every_origin_in_use_until_stopped() {
        let origins = Arc::new(Mutex::new(Origins::<Counted>::default()));
        let tls = TlsConfigs::new(&[b"http/1.1"]);
        let endpoint = Endpoint::new("a", "http://127.0.0.1:9/").unwrap();
        let key = ClientKey::of(&endpoint);
        let used = crate::delivery::lock(&origins)
            .pool(&key, &endpoint.url, &tls, 1)
            .unwrap();
        let sweeper = Sweeper::start(&origins, Duration::from_millis(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        while SWEEPS.load(Ordering::Acquire) < 2 {
            assert!(Instant::now() < deadline, "no sweep");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Stopped, its thread ends (at once: it sleeps for 5 ms at most here, but the
        // stop wakes it) and sweeps no more.
        sweeper.stop();
        let thread = crate::delivery::lock(&sweeper.thread)
            .take()
            .expect("a thread");
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "the thread goes on");
            std::thread::sleep(Duration::from_millis(1));
        }
        let swept = SWEEPS.load(Ordering::Acquire);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(SWEEPS.load(Ordering::Acquire), swept);
        drop(used);
    }

    #[test]
    fn only_an_https_host_must_be_a_certificate_name() {
        let url = |text: &str| url::Url::parse(text).unwrap();
        let tls = || Some(Arc::new(super::super::tls::tls_config(None, &[]).unwrap()));
        let place = Place::of(&url("http://foo-.internal:8080/hook"), None).unwrap();
        assert!(matches!(&place.host, Host::Name(name) if name == "foo-.internal"));
        assert_eq!(place.port, 8080);
        assert!(place.tls.is_none());
        let refused = Place::of(&url("https://foo-.internal/hook"), tls())
            .err()
            .unwrap();
        assert!(
            refused.contains("'foo-.internal' cannot be a TLS server name"),
            "{refused}"
        );
        assert!(refused.contains("reach it over http"), "{refused}");
        let place = Place::of(&url("https://[::1]/hook"), tls()).unwrap();
        assert_eq!(place.port, 443);
        let (_, name) = place.tls.unwrap();
        assert_eq!(
            name,
            ServerName::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn each_address_has_half_of_what_is_left_and_the_last_all() {
        let secs = Duration::from_secs;
        assert_eq!(address_share(0, 8, secs(1)), Duration::from_millis(500));
        assert_eq!(address_share(6, 8, secs(1)), Duration::from_millis(500));
        assert_eq!(address_share(7, 8, secs(1)), secs(1));
        assert_eq!(address_share(0, 1, secs(5)), secs(5));
        assert_eq!(address_share(0, 2, Duration::ZERO), LEAST_PER_ADDRESS);
    }

    #[test]
    fn a_failed_connect_says_what_each_address_met() {
        let host = Host::Name("hooks.example".into());
        let at = |i: usize| format!("hooks.example (address {i} of 2)");
        let mut met = Met::default();
        assert_eq!(
            met.message(&host),
            "connection failed: hooks.example resolved to no address"
        );
        met.no_answer(at(1), Duration::from_millis(2500));
        // Only silence: the timeout says it all.
        assert_eq!(met.out_of_time(&host, "the connect timeout (5s)"), None);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        met.failed(at(2), &denied);
        assert_eq!(
            met.message(&host),
            "connection failed: hooks.example (address 1 of 2): no answer within 2.5s; \
             hooks.example (address 2 of 2): permission denied"
        );
        let late = met.out_of_time(&host, "the connect timeout (5s)").unwrap();
        assert!(late.starts_with(&met.message(&host)), "{late}");
        assert!(
            late.ends_with("then the connect timeout (5s) passed"),
            "{late}"
        );
    }

    #[test]
    fn the_sweeper_ends_when_its_origins_are_gone() {
        let origins = Arc::new(Mutex::new(Origins::<Counted>::default()));
        let sweeper = Sweeper::start(&origins, Duration::from_millis(5));
        drop(origins);
        let thread = crate::delivery::lock(&sweeper.thread)
            .take()
            .expect("a thread");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "the thread goes on");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
