//! The operator's console of deskhook: web pages and a JSON admin API over a running
//! [`DeliverySink`], as an axum [`Router`] a helpdesk nests in its own admin area.
//!
//! When a customer says "your webhook never arrived", the admin opens the console, finds the
//! endpoint, reads its attempts (what the receiver answered), fixes its settings and replays
//! the dead letter, without reading a log file.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use deskhook_transports::http_async::AsyncHttpSink;
//!
//! let (sink, _guard) = AsyncHttpSink::builder().build_async()?;
//! let console = deskhook_console::Console::new(sink)
//!     // The name the admin area is reached by (loopback names are answered too).
//!     .allowed_hosts(["helpdesk.example"]);
//! let app = axum::Router::new()
//!     // Behind the helpdesk's own authentication, like the rest of its admin area.
//!     .nest("/admin/webhooks", console.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8089").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Pages
//!
//! - `/`: the endpoints, a paginated table searchable by name, tenant and origin (a page
//!   reads only its own endpoints' counters, so 10,000 endpoints cost little more than 50).
//! - `/endpoints/{name}`: settings (secrets shown by their last 4 characters, header values
//!   never), a chart of deliveries and failures per minute for the last hour, the recent
//!   attempts with the receiver's answers, and the actions: pause, resume, send a test
//!   event, edit, rotate the secret, delete.
//! - `/new-endpoint`: the form that adds one (outside `/endpoints/`, so that every name,
//!   `new` included, has its page).
//! - `/dead-letters`: filtered by endpoint, tenant, event type and ticket; replay one, the
//!   selected, or all matching the filter (on every page, once the page is filtered: after a
//!   tenant's outage, what it missed and nothing of the others'); delete.
//! - `/events?q=…` (a `webhook-id` or a ticket; `?id=` and `?ticket=` say the same):
//!   everything that happened to one event or ticket.
//!
//! Pages are rendered on the server (maud, which escapes every value), need no build step
//! and load nothing from outside (one stylesheet and one small script, served by the
//! router). They are sent with a `Content-Security-Policy` that allows no inline script, so
//! that a value escaping its escaping still could not run.
//!
//! # The admin API
//!
//! `/api/v1`, with the same powers as the pages: see [`api`] and the OpenAPI document at
//! `/api/v1/openapi.json`. An endpoint is the JSON of the fields of `[[endpoint]]` in
//! `deskhook.toml` ([`EndpointSpec`](deskhook_transports::delivery::EndpointSpec)), read
//! and checked the same way. Errors are RFC 9457 problem documents that name the field at
//! fault, every one at once when several are (the form shows them together too).
//!
//! # Security
//!
//! - The console answers requests for `localhost` and loopback addresses, and for the
//!   names given with [`Console::allowed_hosts`]; others get `421` (DNS rebinding: a page
//!   whose name its DNS points at the console's address is, to the browser, of its origin).
//! - Authentication is the helpdesk's: nest the router behind it. For a console of its own
//!   (what `deskhook serve` does), [`Console::require_token`] asks every request for a token
//!   (a bearer header for scripts, or a cookie set by a login form for people), but those of
//!   the login form itself (`/login`, `/logout`) and of its stylesheet and script
//!   (`/assets/console.css`, `/assets/console.js`).
//! - Every state-changing request is a POST, PUT, PATCH or DELETE. Forms carry a token that
//!   must match a `SameSite=Lax` cookie (double submit; `Secure` when the request came over
//!   HTTPS, as a proxy's `X-Forwarded-Proto` says), and requests from another origin are
//!   refused: those a browser marks `Sec-Fetch-Site: same-origin` (or `none`) pass,
//!   `cross-site` ones are refused, and the others (`same-site`, or no such header and an
//!   `Origin`) must come with an `Origin` naming this host (`Host`, or a proxy's
//!   `X-Forwarded-Host`), and over HTTPS an `https` one, so a sibling subdomain, or a page
//!   of this host over plain HTTP, is refused too. A request with neither header (a
//!   script, an older browser) passes this check; the form's token, and the API's rule
//!   below, still hold for it. API calls that change state
//!   must send `Content-Type: application/json` (or, for a PATCH,
//!   `application/merge-patch+json`) or a bearer token, which a cross-site form cannot.
//! - A wrong token (a bearer header, or the login form's) is logged, a warning under the
//!   `deskhook` target at most once a minute with how many came: someone may be guessing.
//!   The console does not slow guesses down (one client's failures cannot be told from
//!   another's behind a proxy, and locking everyone out would stop the helpdesk's events
//!   too): make the token long and random, and limit failed logins at the proxy.
//!   `deskhook serve` on loopback answers only requests for `localhost`, a loopback
//!   address or a name given with `--allow-host`, as the console does.
//! - Secrets never appear in a page or an API response; nor does an endpoint's URL past its
//!   origin (paths often carry tokens); response snippets and every name that came from a
//!   tenant or a receiver are shown as text.
//! - An operator of the console cannot reach past it into the server: settings that name a
//!   file on the server (`ca_file`, `template_file`) or a variable of its environment
//!   (`secret_env`) are not taken from the API or the forms, which take the template's text
//!   and the secrets themselves; such settings come from `deskhook.toml` or the
//!   application's code, and an edit keeps them as they are. Nor can it open an endpoint
//!   to the server's loopback and private networks (`allow_private`, `allow_cidrs`) unless
//!   the console is built with [`Console::allow_private_networks`]: without it, an edit may
//!   keep what the configuration allowed, narrow it or turn it off, but not point an
//!   endpoint that keeps it at another URL.
//!
//! # Where the data comes from
//!
//! The attempts shown are the sink's attempt log: the last
//! [`attempt_log`](deskhook_transports::delivery::DeliveryConfig::attempt_log) attempts in
//! memory and, with a spool, those of the last
//! [`attempt_retention`](deskhook_transports::delivery::DeliveryConfig::attempt_retention)
//! in its database, so that the console survives a restart.
//! [`DeliverySink::attempts`], [`Endpoints::page`](deskhook_transports::delivery::Endpoints::page)
//! and [`DeliverySink::dead_letters`] are the same data for code.
//!
//! # Changes
//!
//! ## 0.1 (unreleased)
//!
//! - The console answers requests for `localhost`, loopback addresses and the names given
//!   with [`Console::allowed_hosts`], and `421` to others: without a token, a page whose
//!   name its DNS pointed at the console's address read every endpoint and dead letter.
//!   **Upgrading:** a console reached by a name is given it with `allowed_hosts`, or, when
//!   something in front checks `Host`, built with [`Console::any_host`].
//! - A replay or a delete names 1,000 keys at most (a replay of more goes by a filter).
//! - A PUT's `"secrets": null` and `"headers": null` take them away (they were kept); a
//!   PATCH's object merged where the setting has none keeps none of its `null`s (RFC
//!   7396); a PATCH with a `template` replaces a `template_file`, and one with `secrets`
//!   may take `secret_env` away with `null`; the `ETag` of a change's answer is that
//!   change's (it was read again, and could be of a change made right after); the OpenAPI
//!   document types every error answer `application/problem+json`.
//! - A CSRF or session cookie planted beside the console's (by a sibling subdomain) no
//!   longer hides it: every cookie of the name is looked at, a form's field must match one
//!   the console set, and logging in or out ends every session the browser sends. An
//!   HTTP/2 request's `:authority` is checked as `Host` is; `X-Forwarded-Proto` is read by
//!   its first item in any case; pages say `X-Frame-Options: DENY`; a replay's result page
//!   lists 10,000 letters still listed at most.
//! - A replay from the page some of whose letters could not be replayed, or are still
//!   listed though replayed, leads to a page of its result (kept 15 minutes, at
//!   `/dead-letters/replays/{id}`) that names them, with why, and forms that delete those
//!   still listed (the list's flash gave counts only).

#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use deskhook_transports::delivery::DeliverySink;

pub mod api;
mod chart;
mod guard;
mod hosts;
mod pages;
mod problem;

pub use guard::{bearer_is, check_bearer, check_bearer_among};
pub use hosts::{AllowedHosts, host_of, misdirected};
pub use problem::{FieldProblem, Problem};

/// How long the old secret keeps signing after a rotation unless
/// [`Console::rotation_overlap`] says otherwise.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);

/// The console's router over `sink`, with the defaults of [`Console::new`].
pub fn router(sink: DeliverySink) -> Router {
    Console::new(sink).router()
}

/// A console to build: the sink it shows, and its options.
pub struct Console {
    sink: DeliverySink,
    token: Option<String>,
    rotation_overlap: Duration,
    private_networks: bool,
    hosts: Option<AllowedHosts>,
}

// Not derived: the token opens the console and the API to whoever has it.
impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("sink", &self.sink)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("rotation_overlap", &self.rotation_overlap)
            .field("private_networks", &self.private_networks)
            .field("hosts", &self.hosts)
            .finish()
    }
}

impl Console {
    /// A console over `sink`: no token asked (nest it behind the helpdesk's
    /// authentication), requests for `localhost` and loopback addresses only (see
    /// [`allowed_hosts`](Console::allowed_hosts)), a rotated secret's old one signing for
    /// 24 hours.
    pub fn new(sink: DeliverySink) -> Console {
        Console {
            sink,
            token: None,
            rotation_overlap: DEFAULT_ROTATION_OVERLAP,
            private_networks: false,
            hosts: Some(AllowedHosts::new(std::iter::empty::<&str>(), true)),
        }
    }

    /// The names (`Host`, without its port) the console answers requests for, besides
    /// `localhost` and loopback addresses; a request for another gets `421 Misdirected
    /// Request`. That is the defence against DNS rebinding: a page of another site whose
    /// name its DNS points at the console's address is, to the browser, of the console's
    /// origin, and could read every endpoint and dead letter of a console without a token
    /// (and guess at a token through the login form). Give the names the helpdesk's admin
    /// area is reached by (`helpdesk.example`); behind a proxy that sets `Host` to the
    /// upstream's name, that name. Defaults to none: loopback names only.
    pub fn allowed_hosts<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Console {
        self.hosts = Some(AllowedHosts::new(names, true));
        self
    }

    /// Answers requests for any name: for a console behind a proxy, or in an application,
    /// that checks `Host` itself (as `deskhook serve` does). Defaults to off (see
    /// [`allowed_hosts`](Console::allowed_hosts)).
    pub fn any_host(mut self) -> Console {
        self.hosts = None;
        self
    }

    /// Asks every request for `token`: as `Authorization: Bearer <token>` (scripts, the
    /// API), or as the `HttpOnly`, `SameSite=Strict` cookie that the `/login` page sets
    /// when a person types it (a session, not the token: it ends after 8 hours unused or a
    /// week, at `/logout`, or when the console restarts; `Secure` when the browser came over
    /// HTTPS, as a TLS proxy's `X-Forwarded-Proto` or the form's `Origin` says). Without it,
    /// pages redirect to `/login` and the API answers 401. The token is taken without the
    /// white space around it, as given tokens are; a blank one lets nobody in (an unset
    /// environment variable read as "" must not open the console to everyone).
    pub fn require_token(mut self, token: impl Into<String>) -> Console {
        self.token = Some(token.into().trim().to_owned());
        self
    }

    /// How long an endpoint's old secret keeps signing after a rotation from the console.
    pub fn rotation_overlap(mut self, overlap: Duration) -> Console {
        self.rotation_overlap = overlap;
        self
    }

    /// Whether the API and the forms may open an endpoint to the server's own networks:
    /// set `allow_private` (loopback, private and link-local addresses) or add to
    /// `allow_cidrs`, the SSRF guard's exceptions. With them, whoever has the console could
    /// point an endpoint at a service only the server reaches, send it a test event and read
    /// the answer in the attempts. Turn it on when everyone with the console may reach those
    /// networks anyway (the server's own operators). Defaults to off: a request that sets
    /// either is refused (400, naming the field); they come from `deskhook.toml` or the
    /// application's code, and an edit may keep them as they are or narrow them, but not
    /// point an endpoint that keeps them at another URL.
    pub fn allow_private_networks(mut self, allow: bool) -> Console {
        self.private_networks = allow;
        self
    }

    /// The router: pages at `/`, the API at `/api/v1`.
    pub fn router(self) -> Router {
        let shared = Arc::new(Shared {
            sink: self.sink,
            rotation_overlap: self.rotation_overlap,
            private_networks: self.private_networks,
            replays: std::sync::Mutex::default(),
        });
        let inner = Router::new()
            .merge(pages::routes())
            .nest("/api/v1", api::routes())
            .with_state(shared);
        guard::wrap(inner, self.token, self.hosts)
    }
}

/// What every handler reads.
#[derive(Debug)]
struct Shared {
    sink: DeliverySink,
    rotation_overlap: Duration,
    /// [`Console::allow_private_networks`].
    private_networks: bool,
    /// The results of the page's replays that left letters behind, for a while.
    replays: std::sync::Mutex<pages::Replays>,
}

/// The state of the console's handlers.
type State = Arc<Shared>;

/// Runs `work` (which may wait on the spool's disk) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Problem::internal(format!("the console's task failed: {e}")))?
}

/// The README (the crate's crates.io page), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
