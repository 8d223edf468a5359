//! Connecting to NATS: server URLs (a comma-separated list; the credentials a URL carries,
//! which async-nats does not take from it itself), the JetStream context relays and tools
//! share with the sink, what a failed connect says, and the one watcher that wakes the
//! publishes waiting for the connection. See the module's *Connecting*.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::ServerAddr;
use async_nats::jetstream;

use crate::error::Error;

/// The server a context is connected to, for messages.
pub(super) fn server_url(context: &jetstream::Context) -> String {
    context.client().try_server_info().map_or_else(
        || "the server".to_owned(),
        |info| format!("{}:{}", info.host, info.port),
    )
}

/// Parses `urls`, a comma-separated list of NATS server URLs (`nats://host:4222`,
/// `tls://…`, or `host:port`), into server addresses and the list cut to schemes, hosts and
/// ports for messages (user-info is left out).
pub(super) fn parse_urls(urls: &str) -> Result<(Vec<ServerAddr>, String), Error> {
    let mut addrs = Vec::new();
    let mut shown = Vec::new();
    let parts: Vec<&str> = urls.split(',').map(str::trim).collect();
    for (at, part) in parts.iter().enumerate() {
        // Not the text: a ',' in a password cuts the list there, and the part before it
        // would show the user and the password's start.
        let addr = ServerAddr::from_str(part).map_err(|e| Error::InvalidUrl {
            url: format!("server URL {} of {}", at + 1, parts.len()),
            reason: format!(
                "{e} (give nats://host:port, tls://host:port or host:port; the list is \
                 comma-separated, so a ',' in a password is written %2C)"
            ),
        })?;
        // async-nats gives an IPv6 host without its brackets, which a URL needs.
        let host = addr.host();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        shown.push(format!("{}://{host}:{}", addr.scheme(), addr.port()));
        addrs.push(addr);
    }
    Ok((addrs, shown.join(",")))
}

/// What a failed first connection to NATS says: async-nats's error, and what to check.
pub(super) fn connect_failure(e: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as Kind;
    let check = match e.kind() {
        Kind::AuthorizationViolation | Kind::Authentication => {
            "the server refused the login: check the user and password or the token in the \
             URL, or the credentials the options give"
        }
        Kind::Tls => "check the server's certificate and the TLS options (tls:// URLs)",
        Kind::Dns => "check the host name",
        _ => "is the server running and reachable?",
    };
    format!("cannot connect: {e} ({check})")
}

/// `options` with the credentials the URLs carry (see [`url_credentials`]), which
/// async-nats does not take from a URL itself (see the module's *Connecting*).
pub(super) fn with_url_credentials(
    options: async_nats::ConnectOptions,
    addrs: &[ServerAddr],
) -> async_nats::ConnectOptions {
    match url_credentials(addrs) {
        Some((user, Some(password))) => options.user_and_password(user, password),
        Some((token, None)) => options.token(token),
        None => options,
    }
}

/// The credentials of the first URL that has any, percent-decoded: user and password
/// (`nats://user:password@host:4222`), or a token (`nats://token@host:4222`; a user with an
/// empty password, `nats://user:@host`, is read as a token too, as URLs do not keep an
/// empty password).
fn url_credentials(addrs: &[ServerAddr]) -> Option<(String, Option<String>)> {
    let decoded = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    addrs.iter().find_map(|addr| {
        let user = addr.username()?;
        Some((decoded(user), addr.password().map(decoded)))
    })
}

/// Connects to NATS and returns a JetStream context whose requests and publish acks wait at
/// most `timeout`: for relays and tools that share the sink's stream. Unlike the sink, it
/// fails at once when no server answers.
///
/// # Errors
///
/// [`Error::InvalidUrl`] for a URL that does not parse; [`Error::Nats`] when no server can be
/// reached or authentication fails.
pub async fn connect(
    urls: &str,
    options: async_nats::ConnectOptions,
    timeout: Duration,
) -> Result<jetstream::Context, Error> {
    let (addrs, shown) = parse_urls(urls)?;
    let options = with_url_credentials(options, &addrs);
    let client = options.connect(addrs).await.map_err(|e| Error::Nats {
        url: shown,
        message: connect_failure(&e),
    })?;
    Ok(jetstream::context::ContextBuilder::new()
        .timeout(timeout)
        .build(client))
}

/// The first server of a list, as the URL of the sink's endpoint (for logs and dead
/// letters).
pub(super) fn first_url(shown: &str) -> Result<url::Url, Error> {
    let first = shown.split(',').next().unwrap_or_default().trim();
    let with_scheme = if first.contains("://") {
        first.to_owned()
    } else {
        format!("nats://{first}")
    };
    url::Url::parse(&with_scheme).map_err(|e| Error::InvalidUrl {
        url: first.to_owned(),
        reason: e.to_string(),
    })
}

/// The attempts waiting for the client to connect again, woken together by one task that
/// looks every [`Reconnected::EVERY`] while any waits: with a thousand publishes waiting,
/// one wake-up per look, not one per publish.
#[derive(Default)]
pub(super) struct Reconnected {
    pub(super) notify: tokio::sync::Notify,
    /// Whether the task that looks is running.
    watching: AtomicBool,
    /// The attempts waiting: the task ends when none is left (a sink dropped while NATS is
    /// away, or a client that gave up reconnecting, keeps no task looking).
    waiting: AtomicUsize,
}

/// An attempt counted in [`Reconnected::waiting`] while it lives.
pub(super) struct Waiter<'a>(&'a Reconnected);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Reconnected {
    /// How often the client's state is looked at while an attempt waits for it.
    const EVERY: Duration = Duration::from_millis(20);

    /// Counts an attempt as waiting until the returned guard is dropped.
    pub(super) fn wait(&self) -> Waiter<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiter(self)
    }

    /// Starts the task that looks, if it is not running: it ends once the client is
    /// connected, waking every waiter, or once none waits. A waiter counts itself
    /// ([`wait`](Reconnected::wait)) before it calls this.
    pub(super) fn watch(self: &Arc<Self>, client: &async_nats::Client) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let (this, client) = (self.clone(), client.clone());
        tokio::spawn(async move {
            loop {
                if client.connection_state() == async_nats::connection::State::Connected {
                    this.watching.store(false, Ordering::SeqCst);
                    this.notify.notify_waiters();
                    return;
                }
                if this.waiting.load(Ordering::SeqCst) == 0 {
                    this.watching.store(false, Ordering::SeqCst);
                    // A waiter that came between the look and the store found the task
                    // running and started none: it is watched for again, by this task
                    // unless the waiter started one meanwhile.
                    if this.waiting.load(Ordering::SeqCst) == 0
                        || this.watching.swap(true, Ordering::SeqCst)
                    {
                        return;
                    }
                }
                tokio::time::sleep(Self::EVERY).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        let (addrs, shown) = parse_urls("nats://user:secret@127.0.0.1:4222, localhost").unwrap();
        assert_eq!(addrs.len(), 2);
        assert_eq!(shown, "nats://127.0.0.1:4222,nats://localhost:4222");
        let err = parse_urls("http://127.0.0.1:4222").unwrap_err().to_string();
        assert!(err.contains("give nats://host:port"), "{err}");
        // A ',' in a password cuts the list in two; the part before it is not shown.
        let err = parse_urls("nats://relay:pa,ss@127.0.0.1:4222")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("relay") && !err.contains(":pa"), "{err}");
        assert!(
            err.contains("server URL 1 of 2") && err.contains("written %2C"),
            "{err}"
        );
        // An IPv6 address keeps its brackets, and the sink's endpoint URL is made of it
        // (before: 'nats://::1:4222', which failed build() once it had connected).
        let (_, shown) = parse_urls("nats://[::1]:4222,nats://127.0.0.1:4223").unwrap();
        assert_eq!(shown, "nats://[::1]:4222,nats://127.0.0.1:4223");
        assert_eq!(first_url(&shown).unwrap().as_str(), "nats://[::1]:4222");
    }

    /// async-nats logs in only with what its options say: the URL's credentials are put
    /// there (percent-decoded), from the first URL that has any.
    #[test]
    fn a_urls_credentials_log_in() {
        let login = |urls: &str| url_credentials(&parse_urls(urls).unwrap().0);
        assert_eq!(login("nats://127.0.0.1:4222, localhost"), None);
        assert_eq!(
            login("nats://127.0.0.1:4222,nats://relay:p%40ss@127.0.0.1:4223"),
            Some(("relay".to_owned(), Some("p@ss".to_owned())))
        );
        assert_eq!(
            login("nats://s3cret@127.0.0.1:4222"),
            Some(("s3cret".to_owned(), None))
        );
    }
}
