//! The names (`Host`) a request may be for: the defence against DNS rebinding. A page of
//! another site whose name its DNS then points at the console's address is, to the browser,
//! of the same origin as the console: a console without a token of its own (nested behind
//! an allow-list of addresses, or run on a laptop's loopback) would give it every endpoint
//! and dead letter, and one with a token the login form's answers (a guessing oracle). Its
//! requests name its own host; the console's own clients name `localhost`, a loopback
//! address, or a name the application gave.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// The names requests may be for: given names (`Host` without its port, in any case) and,
/// when asked, `localhost` (and `*.localhost`) and loopback addresses. What
/// [`Console::allowed_hosts`](crate::Console::allowed_hosts) sets, and what `deskhook serve`
/// checks in front of the whole daemon.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    /// Given, lower case, without a port or an IPv6 literal's brackets.
    named: Vec<String>,
    /// `localhost` and loopback addresses too.
    loopback: bool,
}

impl AllowedHosts {
    /// The names `named` (a port or an IPv6 literal's brackets, if written, are left out),
    /// and the loopback names when `loopback`.
    pub fn new<S: AsRef<str>>(named: impl IntoIterator<Item = S>, loopback: bool) -> Self {
        AllowedHosts {
            named: named
                .into_iter()
                .map(|name| name_of(name.as_ref()).to_ascii_lowercase())
                .collect(),
            loopback,
        }
    }

    /// Whether a request whose `Host` is `host` is for these names. `None` (no `Host`, as
    /// HTTP/1.0 allows; browsers always send one) is.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        let name = name_of(host).to_ascii_lowercase();
        if self.named.contains(&name) {
            return true;
        }
        self.loopback
            && (name == "localhost"
                || name.ends_with(".localhost")
                // `::ffff:127.0.0.1`, a loopback address written as IPv6, too.
                || name
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical().is_loopback()))
    }

    /// Whether the loopback names are allowed.
    pub fn loopback(&self) -> bool {
        self.loopback
    }
}

/// The name of a `Host` value, without its port and an IPv6 literal's brackets.
fn name_of(host: &str) -> &str {
    let host = host.trim();
    // An IPv6 address without brackets (as a name given may be written) has no port.
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return host;
    }
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// The `Host` of `request` (`"?"` when it is not text), or, without one, the authority of
/// its URI (an HTTP/2 request's `:authority`): `None` only for a request that names no host
/// at all (HTTP/1.0).
pub fn host_of(request: &Request) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(value) => Some(value.to_str().unwrap_or("?")),
        // HTTP/2 says it in `:authority`, which the request's URI keeps.
        None => request
            .uri()
            .authority()
            .map(|authority| authority.as_str()),
    }
}

/// Answers `421 Misdirected Request` to a request for a name the console was not given.
pub(crate) async fn only_ours(
    State(hosts): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = host_of(&request);
    if hosts.allows(host) {
        return next.run(request).await;
    }
    misdirected(
        &hosts,
        host,
        "this console",
        "Console::allowed_hosts (or Console::any_host when a proxy in front checks them)",
    )
}

/// The `421 Misdirected Request` of a request for `host`, a name `hosts` does not allow,
/// logged (a warning at most once a minute, with how many came since): `who` answers ("this
/// daemon"), and `give` is how a name is allowed ("serve --allow-host NAME").
pub fn misdirected(hosts: &AllowedHosts, host: Option<&str>, who: &str, give: &str) -> Response {
    let shown = deskhook::shown_in_log(host.unwrap_or_default());
    static REFUSED: deskhook::Seldom = deskhook::Seldom::new();
    if let Some(since) = REFUSED.due() {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "{since} request(s) for another host refused (421) since the last such line, \
             this one for '{shown}'; the names clients and a proxy in front use are given \
             with {give}"
        );
    }
    let names = if hosts.loopback {
        "localhost, a loopback address or the names given"
    } else {
        "the names given"
    };
    Problem::new(
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "{who} answers requests for {names} only, not for '{shown}': a page of another \
             site whose name resolves to this address must not reach it. The names clients \
             and a proxy in front use are given with {give}"
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_those_given_are_allowed() {
        let hosts = AllowedHosts::new(["Helpdesk.Example"], true);
        for ours in [
            "localhost:8089",
            "LOCALHOST",
            "127.0.0.1:8089",
            "127.0.0.2",
            "[::1]:8089",
            "[::ffff:127.0.0.1]:8089",
            "api.localhost:8089",
            "helpdesk.example",
            "HELPDESK.example:443",
        ] {
            assert!(hosts.allows(Some(ours)), "{ours}");
        }
        assert!(hosts.allows(None), "an HTTP/1.0 request without Host");
        // An HTTP/2 request names its host in `:authority`, which the URI keeps.
        let h2 = axum::http::Request::get("http://evil.example/")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(host_of(&h2), Some("evil.example"));
        assert!(!hosts.allows(host_of(&h2)));
        for other in [
            "evil.example:8089",
            "127.0.0.1.evil.example",
            "10.0.0.1:8089",
            "[::2]",
            "[::ffff:10.0.0.1]",
        ] {
            assert!(!hosts.allows(Some(other)), "{other}");
        }
        let named = AllowedHosts::new(["helpdesk.example", "2001:db8::5", "[2001:db8::6]"], false);
        assert!(named.allows(Some("helpdesk.example:8089")));
        assert!(named.allows(Some("[2001:db8::5]:8089")));
        assert!(named.allows(Some("[2001:db8::6]")));
        assert!(!named.allows(Some("localhost:8089")));
    }
}
