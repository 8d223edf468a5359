//! What both HTTP transports keep of an origin: where it is ([`Place`]: its host, port and
//! TLS name), and the map of the origins in use ([`Origins`]), each shared by the endpoints
//! with the same origin and connection settings. The pools themselves (what a connection is,
//! how it is made and kept) are each transport's own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Weak};

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
        let (host, name) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (Host::Ip(ip.into()), ServerName::from(IpAddr::from(ip))),
            Some(url::Host::Ipv6(ip)) => (Host::Ip(ip.into()), ServerName::from(IpAddr::from(ip))),
            Some(url::Host::Domain(domain)) => (
                Host::Name(domain.to_owned()),
                ServerName::try_from(domain.to_owned())
                    .map_err(|e| format!("'{domain}' cannot be a TLS server name: {e}"))?,
            ),
            None => return Err("the URL has no host".to_owned()),
        };
        let port = url
            .port_or_known_default()
            .ok_or("the URL has no port and its scheme no default one")?;
        let tls = match url.scheme() {
            "https" => Some((tls.ok_or("an https URL needs TLS settings")?, name)),
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

    /// Calls `f` with each origin some endpoint uses.
    pub(crate) fn each(&self, mut f: impl FnMut(&O)) {
        for origin in self.by_key.values().filter_map(Weak::upgrade) {
            f(&origin);
        }
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
