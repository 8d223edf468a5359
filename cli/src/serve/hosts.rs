//! The names (`Host`) a request may be for: the defence of a daemon on loopback against DNS
//! rebinding. A page of another site whose name its DNS then points at 127.0.0.1 is, to the
//! browser, of the same origin as the daemon: it could read the login form's answers (a
//! guessing oracle for the token) and, once it has the token, use the whole API. Its
//! requests name its own host; the daemon's own clients name `localhost`, a loopback
//! address, or a name the operator gave with `--allow-host` (a TLS proxy that passes the
//! public name on).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use deskhook_console::AllowedHosts;

/// What a daemon listening on `listen` answers, with the names `allowed` (`--allow-host`):
/// those, and `localhost` and loopback addresses when it listens on loopback; `None` when it
/// answers any (it listens on other addresses and none was given: a proxy in front decides).
pub(super) fn of(listen: SocketAddr, allowed: &[String]) -> Option<AllowedHosts> {
    let loopback = listen.ip().is_loopback();
    (loopback || !allowed.is_empty()).then(|| AllowedHosts::new(allowed, loopback))
}

/// Answers `421 Misdirected Request` to a request for another name.
pub(super) async fn only_ours(
    State(hosts): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    // A health check says "ok" and nothing else: a probe through a proxy that keeps its own
    // Host (or with the machine's name, 127.0.1.1 on Debian) must not have the daemon
    // restarted for a 421.
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let host = deskhook_console::host_of(&request);
    if hosts.allows(host) {
        return next.run(request).await;
    }
    deskhook_console::misdirected(&hosts, host, "this daemon", "serve --allow-host NAME")
}

/// What the start says when the daemon answers requests for any name (`Hosts::of` gave
/// none): listening on `listen`, not loopback, with no `--allow-host`.
pub(super) fn any_host(listen: SocketAddr) -> String {
    format!(
        "serve: listening on {listen} without --allow-host: requests for any Host name are \
         answered, so a web page whose name its DNS points at this machine (DNS rebinding) \
         can reach the login form and guess at the token; give --allow-host with the names \
         clients and the proxy in front use"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_on_loopback_answers_loopback_names_and_those_given() {
        let on = |listen: &str, allowed: &[&str]| {
            let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
            of(listen.parse().unwrap(), &allowed)
        };
        let hosts = on("127.0.0.1:8089", &["Helpdesk.Example"]).expect("checked on loopback");
        for ours in ["localhost:8089", "[::1]:8089", "HELPDESK.example:443"] {
            assert!(hosts.allows(Some(ours)), "{ours}");
        }
        assert!(!hosts.allows(Some("evil.example:8089")));
        // Listening elsewhere: any name, unless names are given; the start says so.
        assert!(on("0.0.0.0:8089", &[]).is_none());
        let said = any_host("0.0.0.0:8089".parse().unwrap());
        assert!(
            said.contains("0.0.0.0:8089 without --allow-host")
                && said.contains("give --allow-host"),
            "{said}"
        );
        let named = on("0.0.0.0:8089", &["helpdesk.example"]).expect("names given");
        assert!(named.allows(Some("helpdesk.example:8089")));
        assert!(!named.allows(Some("localhost:8089")));
    }
}
