//! One receiving endpoint: where to send, which actions, how to sign, retry and guard.

use std::fmt;
use std::time::{Duration, SystemTime};

use deskhook::policy::RetrySchedule;
use deskhook::signature::SecretKind;
use deskhook::{EventTypeSet, Secret};

use super::RateLimit;
use crate::error::Error;
use crate::guard::{self, AddressPolicy};
use crate::template::Template;

/// The longest `timeout` or `connect_timeout` an endpoint may have: an attempt that waits
/// longer holds a slot for nothing, and a clock plus a far larger one overflows.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The shortest `timeout` or `connect_timeout` an endpoint may have: one shorter fails
/// nearly every attempt, on loopback too, as a timeout the endpoint is blamed for.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest name an endpoint may have, in bytes: a name is part of the console's URLs,
/// of metrics labels and of every log line and dead letter of its endpoint.
pub const NAME_MAX_BYTES: usize = 256;

/// A receiving endpoint.
///
/// ```
/// use std::time::Duration;
/// use deskhook::Action;
/// use deskhook_transports::delivery::Endpoint;
///
/// let crm = Endpoint::new("crm", "https://crm.example.com/hooks/helpdesk")?
///     .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?)
///     .actions([Action::Create, Action::Ok])
///     .header("Authorization", "Bearer token")
///     .timeout(Duration::from_secs(10))
///     .retry("0s,5s,5m".parse()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) name: String,
    pub(crate) url: url::Url,
    /// Signing secrets, each with the time it stops signing (none: it never does).
    pub(crate) secrets: Vec<(Secret, Option<SystemTime>)>,
    pub(crate) actions: EventTypeSet,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry: RetrySchedule,
    pub(crate) address_policy: AddressPolicy,
    pub(crate) hub_signature: bool,
    pub(crate) https_only: bool,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) tenant: Option<String>,
    pub(crate) rate_limit: Option<RateLimit>,
    /// The only roots trusted for this endpoint's TLS, when set (a private CA).
    pub(crate) ca_certificates: Option<Vec<rustls_pki_types::CertificateDer<'static>>>,
    /// The payload template its bodies are rendered with, if any.
    pub(crate) template: Option<Template>,
    /// The settings it was made from, when it was made from an [`EndpointSpec`]
    /// (`deskhook.toml`, the admin API): what a spool stores to register it again.
    pub(crate) spec: Option<std::sync::Arc<super::EndpointSpec>>,
}

impl Endpoint {
    /// An endpoint named `name` (used in logs, stats and dead letters; at most
    /// [`NAME_MAX_BYTES`] bytes) at `url`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when `url` is empty or does not parse, or is a URL as pages and
    /// API responses show it (cut to its origin, ending in `/…`). The rest is checked when
    /// the endpoint is registered (by the sink's `build`, or
    /// [`Endpoints::upsert`](super::Endpoints::upsert)): the scheme and `https_only`, an
    /// address the SSRF guard refuses, the name, tenant, headers and secrets.
    pub fn new(name: impl Into<String>, url: &str) -> Result<Endpoint, Error> {
        if url.ends_with("/…") || url.ends_with("/%E2%80%A6") {
            return Err(Error::InvalidUrl {
                url: redact_url(url),
                reason: "it is cut to its origin, as pages and API responses show URLs (their \
                         paths may hold tokens); give the whole URL"
                    .into(),
            });
        }
        if url.trim().is_empty() {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "it is empty; give the endpoint's URL, such as \
                         https://hooks.example.com/deskhook"
                    .into(),
            });
        }
        let parsed = url::Url::parse(url).map_err(|e| Error::InvalidUrl {
            url: redact_url(url),
            reason: match e {
                // "127.0.0.1:8080", "/hooks": what is missing is the scheme.
                url::ParseError::RelativeUrlWithoutBase => format!(
                    "it has no scheme; write http:// or https:// before it (http://{})",
                    redact_url(url.trim_start_matches('/'))
                ),
                other => other.to_string(),
            },
        })?;
        Ok(Endpoint {
            name: name.into(),
            url: parsed,
            secrets: Vec::new(),
            actions: EventTypeSet::all(),
            headers: Vec::new(),
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            retry: RetrySchedule::standard(),
            address_policy: AddressPolicy::default(),
            hub_signature: false,
            https_only: false,
            max_in_flight: None,
            tenant: None,
            rate_limit: None,
            ca_certificates: None,
            template: None,
            spec: None,
        })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The event types, of every format, it receives.
    pub fn subscribed_event_types(&self) -> EventTypeSet {
        self.actions
    }

    /// Its retry schedule.
    pub fn retry_schedule(&self) -> &RetrySchedule {
        &self.retry
    }

    /// Its limit for a whole attempt.
    pub fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    /// Adds a signing secret: a `whsec_` HMAC secret (a `v1,` entry) or a `whsk_` ed25519
    /// key (a `v1a,` entry, which receivers verify with its `whpk_` public key alone). Every
    /// secret signs, so during a rotation — or a move from HMAC to ed25519 — the old and the
    /// new both sign. A `whpk_` public key cannot sign: the endpoint is refused. Defaults to
    /// none: requests are not signed.
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push((secret, None));
        self
    }

    /// Adds a signing secret that signs until `expires`: the old secret of a rotation. Once
    /// it has expired it no longer signs; the other secrets go on.
    #[must_use]
    pub fn secret_until(mut self, secret: Secret, expires: SystemTime) -> Self {
        self.secrets.push((secret, Some(expires)));
        self
    }

    /// Replaces the signing secrets.
    #[must_use]
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        self.secrets = secrets.into_iter().map(|s| (s, None)).collect();
        self
    }

    /// The event types this endpoint receives: Zenlix actions (`[Action::Create]`, which
    /// leave out the other formats) or event types of any format (an [`EventTypeSet`], such
    /// as `"create,usedesk.comment_created,iqchannels.*".parse()?`).
    /// Defaults to every event type of every format.
    #[must_use]
    pub fn actions(mut self, actions: impl Into<EventTypeSet>) -> Self {
        self.actions = actions.into();
        self
    }

    /// Adds a header to every request. Defaults to none. A `User-Agent` replaces deskhook's
    /// own; the headers deskhook sets for the event, its signature and the connection
    /// (`Content-Type`, `Webhook-*`, `X-Deskhook-*`, `Host`, …) cannot be replaced: the
    /// sink's builder refuses the endpoint, naming the header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The limit for a whole attempt (connect, send, response), from [`MIN_TIMEOUT`] to
    /// [`MAX_TIMEOUT`]. Defaults to 15 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The limit for connecting, from [`MIN_TIMEOUT`] to [`MAX_TIMEOUT`]; the whole
    /// attempt's `timeout` bounds it too. Defaults to 5 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The retry schedule. Defaults to [`RetrySchedule::standard`] (0s, 5s, 5m, 30m, 2h, 5h,
    /// 10h, 10h with ±20% jitter).
    #[must_use]
    pub fn retry(mut self, schedule: RetrySchedule) -> Self {
        self.retry = schedule;
        self
    }

    /// Allows private, loopback, link-local and other local addresses. Defaults to `false`:
    /// only global addresses are reached. Cloud metadata addresses stay refused.
    #[must_use]
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.address_policy = self.address_policy.allow_private(allow);
        self
    }

    /// Allows the addresses of one network, such as `10.20.0.0/16`. Defaults to none.
    #[must_use]
    pub fn allow_cidr(mut self, net: ipnet::IpNet) -> Self {
        self.address_policy = self.address_policy.allow_cidr(net);
        self
    }

    /// Also sends `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body as
    /// GitHub signs it, made with one `whsec_` secret that has not expired: the one that
    /// expires first (during a rotation, the old secret, which receivers still hold), else
    /// the first given. The endpoint needs a `whsec_` secret; once none is current, its
    /// attempts fail rather than go unsigned. Defaults to `false`.
    #[must_use]
    pub fn hub_signature(mut self, on: bool) -> Self {
        self.hub_signature = on;
        self
    }

    /// Renders each event's body with `template` (a chat preset, or a template of your own;
    /// see [`template`](crate::template)) instead of sending the format's JSON. The
    /// signature covers the rendered body. Defaults to none.
    #[must_use]
    pub fn template(mut self, template: Template) -> Self {
        self.template = Some(template);
        self
    }

    /// Its payload template, if it has one.
    pub fn payload_template(&self) -> Option<&Template> {
        self.template.as_ref()
    }

    /// Refuses `http://` URLs. Defaults to `false`.
    #[must_use]
    pub fn https_only(mut self, on: bool) -> Self {
        self.https_only = on;
        self
    }

    /// Requests in flight at once for this endpoint, at most. Defaults to 4 with the
    /// blocking transport and 16 with the async one (a NATS sink has its own setting,
    /// `NatsSinkBuilder::max_in_flight`: 256, or 1024 with batches). Workers are shared
    /// by all endpoints (see [the engine's docs](super#workers)): this is a limit, not a
    /// number of threads.
    #[must_use]
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = Some(requests);
        self
    }

    /// The tenant this endpoint belongs to: it receives only the events emitted for that
    /// tenant (`deskhook::for_tenant("acme").emit(..)`). Defaults to none: the endpoint
    /// receives every event, whatever its tenant (the helpdesk's own integrations).
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sends at most `count` requests per `per`, in bursts of up to `count`; events wait
    /// their turn in the queue (holding no worker) and the waits show in the endpoint's
    /// stats (`rate_limited`). For another burst, use [`rate_limit_with`](Endpoint::rate_limit_with).
    /// Defaults to no limit.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`] when `count` or `per` is zero.
    pub fn rate_limit(self, count: u32, per: Duration) -> Result<Self, Error> {
        let limit = RateLimit::new(count, per).map_err(|e| Error::InvalidEndpoint {
            name: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(self.rate_limit_with(limit))
    }

    /// Sets a [`RateLimit`] (parsed from `"50/s"`, with a burst of its own if set).
    #[must_use]
    pub fn rate_limit_with(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Its tenant, if it has one.
    pub fn tenant_name(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Trusts only the certificate authorities in `pem` (one or more PEM certificates) for
    /// this endpoint's TLS, instead of the public roots (Mozilla's, from webpki-roots): for
    /// endpoints inside a company network with a private CA. Defaults to the public roots.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`] when `pem` holds no certificate or a malformed one.
    pub fn ca_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::InvalidEndpoint {
                name: self.name.clone(),
                message: format!("its CA certificates are not valid PEM: {e}"),
            })?;
        if certs.is_empty() {
            return Err(Error::InvalidEndpoint {
                name: self.name.clone(),
                message: "no certificate in the CA PEM (expected -----BEGIN CERTIFICATE-----)"
                    .into(),
            });
        }
        self.ca_certificates = Some(certs);
        Ok(self)
    }

    /// Checks the URL of an HTTP endpoint: scheme, credentials, and an IP-literal host
    /// against the SSRF guard.
    pub(crate) fn check_http(&self) -> Result<(), Error> {
        guard::check_url(&self.url, &self.address_policy, self.https_only)
    }

    /// Whether `other` sends to the same receiver: the same URL, trusting the same CA roots.
    /// When not, what this one's failures started (a hold, an open breaker, retry waits)
    /// says nothing of `other`.
    pub(crate) fn same_receiver(&self, other: &Endpoint) -> bool {
        self.url == other.url && self.ca_certificates == other.ca_certificates
    }

    /// Whether an attempt made under `other` would make the same request of the same
    /// receiver: the URL, CA roots, address policy, headers, secrets, signatures, template
    /// and the events it takes are the same (its schedule, limits and timeouts may differ).
    /// An attempt in flight across such a change is decided as it would have been without
    /// it: a `Retry-After` or a `400` still holds, as the receiver and its request are the
    /// same.
    pub(crate) fn same_request(&self, other: &Endpoint) -> bool {
        self.same_receiver(other)
            && self.address_policy == other.address_policy
            && self.headers == other.headers
            && self.secrets == other.secrets
            && self.hub_signature == other.hub_signature
            && self.https_only == other.https_only
            && self.tenant == other.tenant
            && self.actions == other.actions
            && self.same_template(other)
    }

    /// Whether `other` renders its bodies with the same template, or neither has one.
    fn same_template(&self, other: &Endpoint) -> bool {
        match (&self.template, &other.template) {
            (Some(a), Some(b)) => a.same(b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }

    /// Whether `other` has the same settings (an upsert of it changes nothing): the same
    /// request, and the same name, schedule, limits, timeouts and spec.
    pub(crate) fn same_settings(&self, other: &Endpoint) -> bool {
        self.same_request(other)
            && self.name == other.name
            && self.timeout == other.timeout
            && self.connect_timeout == other.connect_timeout
            && self.retry == other.retry
            && self.max_in_flight == other.max_in_flight
            && self.rate_limit == other.rate_limit
            && self.spec == other.spec
    }

    /// Checks everything that can be checked before sending, but the transport's own
    /// checks (the URL of an HTTP endpoint: [`check_http`](Endpoint::check_http)).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.check().map_err(|(_, e)| e)
    }

    /// [`validate`](Endpoint::validate), naming the setting at fault (as `deskhook.toml`
    /// and the admin API call it): the first of its [`problems`](Endpoint::problems).
    pub(crate) fn check(&self) -> Result<(), (&'static str, Error)> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }

    /// Every setting [`check`](Endpoint::check) refuses, in the order it checks them, one
    /// problem per setting at most.
    pub(crate) fn problems(&self) -> Vec<(&'static str, Error)> {
        let mut problems = Vec::new();
        let mut invalid = |field: &'static str, message: String| {
            problems.push((
                field,
                Error::InvalidEndpoint {
                    name: self.name.clone(),
                    message,
                },
            ));
        };
        if let Some(message) = self.name_problem() {
            invalid("name", message);
        }
        if let Some(first) = self.retry.delay_before(1).filter(|d| !d.is_zero()) {
            invalid(
                "retry",
                format!(
                    "the retry schedule starts with {}, but the first attempt is always made \
                     at once; start it with 0s (\"0s,{}\")",
                    deskhook::policy::format_duration(first),
                    self.retry
                ),
            );
        }
        if self.actions.is_empty() {
            invalid(
                "actions",
                "it subscribes to no event type and would receive nothing; list the event \
                 types it takes (or leave actions out for all of them), or pause it"
                    .into(),
            );
        }
        if self.max_in_flight == Some(0) {
            invalid(
                "max_in_flight",
                "max_in_flight is 0; give at least 1".into(),
            );
        }
        if let Some(tenant) = &self.tenant
            && let Err(e) = deskhook::dispatch::check_tenant(tenant)
        {
            invalid("tenant", e.to_string());
        }
        for (field, timeout, example) in [
            ("timeout", self.timeout, "15s"),
            ("connect_timeout", self.connect_timeout, "5s"),
        ] {
            if timeout < MIN_TIMEOUT {
                invalid(
                    field,
                    format!(
                        "{field} = {} is shorter than an attempt can take (at least {}); give \
                         e.g. {example}",
                        deskhook::policy::format_duration(timeout),
                        deskhook::policy::format_duration(MIN_TIMEOUT)
                    ),
                );
            } else if timeout > MAX_TIMEOUT {
                invalid(
                    field,
                    format!(
                        "{field} = {} is longer than an attempt may take ({}); give e.g. \
                         {example}",
                        deskhook::policy::format_duration(timeout),
                        deskhook::policy::format_duration(MAX_TIMEOUT)
                    ),
                );
            }
        }
        let now = std::time::SystemTime::now();
        if self.hub_signature
            && !self.secrets.iter().any(|(secret, expires)| {
                secret.kind() == SecretKind::Hmac && expires.is_none_or(|at| at > now)
            })
        {
            invalid(
                "hub_signature",
                "hub_signature needs a whsec_ secret that has not expired to sign with (it is \
                 an HMAC; ed25519 keys cannot make it)"
                    .into(),
            );
        }
        let signing = (self.secrets.iter())
            .filter(|(_, expires)| expires.is_none_or(|at| at > now))
            .count();
        if signing > deskhook::signature::MAX_SIGNATURE_ENTRIES {
            invalid(
                "secrets",
                format!(
                    "{signing} secrets sign, and a receiver reads only the first {} \
                     signatures of a request; keep at most that many (the others of a \
                     rotation can go once receivers have switched)",
                    deskhook::signature::MAX_SIGNATURE_ENTRIES
                ),
            );
        } else if let Some(position) = self
            .secrets
            .iter()
            .position(|(secret, _)| !secret.can_sign())
        {
            invalid(
                "secrets",
                format!(
                    "secret {} is a public key (whpk_): it verifies signatures but cannot make \
                     them; give the endpoint the whsk_ key it was made from, and its receivers \
                     the whpk_ key",
                    position + 1
                ),
            );
        }
        if let Some(template) = &self.template
            && let Err(message) = template.check().and_then(|()| {
                // The sample is a Zenlix `create`: what its render finds is of this
                // endpoint's events only if it takes those.
                let sampled = deskhook::EventType::Zenlix(deskhook::Action::Create);
                template.check_sample(self.actions.contains(sampled))
            })
        {
            invalid("template", message);
        }
        if let Some(message) = self.headers_problem() {
            invalid("headers", message);
        }
        problems
    }

    /// What is wrong with the name, if anything.
    fn name_problem(&self) -> Option<String> {
        if self.name.trim().is_empty() {
            return Some("the name is empty".into());
        }
        if self.name.len() > NAME_MAX_BYTES {
            return Some(format!(
                "the name is {} bytes long; at most {NAME_MAX_BYTES} (it is in the console's \
                 URLs, metrics labels and every log line of the endpoint)",
                self.name.len()
            ));
        }
        if self.name.chars().any(char::is_control) {
            return Some("the name holds a control character".into());
        }
        if matches!(self.name.as_str(), "." | "..") {
            return Some(format!(
                "'{}' cannot be a name: names are part of the console's and the admin API's \
                 URLs, where it means the folder or its parent; choose another",
                self.name
            ));
        }
        None
    }

    /// What is wrong with the first header that cannot be sent, if one cannot.
    fn headers_problem(&self) -> Option<String> {
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if !is_header_name(name) {
                return Some(format!(
                    "header name '{name}' is not a valid HTTP header name"
                ));
            }
            // Names are the same whatever their case: both would be sent.
            if let Some((first, _)) = self.headers[..i]
                .iter()
                .find(|(other, _)| other.eq_ignore_ascii_case(name))
            {
                return Some(format!(
                    "header '{name}' is given twice (as '{first}' and '{name}'; names are the \
                     same whatever their case): give it once"
                ));
            }
            let lower = name.to_ascii_lowercase();
            let reserved = lower.starts_with("webhook-")
                || lower.starts_with("x-deskhook-")
                || matches!(
                    lower.as_str(),
                    "content-type"
                        | "content-length"
                        | "host"
                        | "transfer-encoding"
                        | "x-hub-signature-256"
                        | "connection"
                );
            if reserved {
                return Some(format!(
                    "header '{name}' is set by deskhook itself and cannot be replaced (remove \
                     it from the endpoint's headers)"
                ));
            }
            // They change how the request is carried (`Expect: 100-continue` asks for an
            // answer the transport does not wait for), and HTTP/2 leaves them out.
            if matches!(
                lower.as_str(),
                "expect" | "upgrade" | "te" | "trailer" | "keep-alive" | "proxy-connection"
            ) {
                return Some(format!(
                    "header '{name}' would change how the request is carried, which deskhook \
                     decides: remove it from the endpoint's headers"
                ));
            }
            // What HTTP allows in a field value: visible characters, blanks and tabs.
            if let Some(b) = value
                .bytes()
                .find(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
            {
                return Some(format!(
                    "the value of header '{name}' holds the control character 0x{b:02x} ({}), \
                     which HTTP does not allow; remove it",
                    match b {
                        b'\r' | b'\n' => "a line break",
                        0 => "NUL",
                        _ => "not printable",
                    }
                ));
            }
        }
        None
    }
}

impl fmt::Debug for Endpoint {
    /// Secrets and header values are left out: they often hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &redact_url(self.url.as_str()))
            .field("secrets", &self.secrets.len())
            .field("actions", &self.actions)
            .field("headers", &header_names)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry.to_string())
            .field("address_policy", &self.address_policy)
            .field("hub_signature", &self.hub_signature)
            .field("https_only", &self.https_only)
            .field("max_in_flight", &self.max_in_flight)
            .field("tenant", &self.tenant)
            .field("template", &self.template)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// What endpoints share an origin's connections by: its TLS roots, SSRF policy and connect
/// timeout. Endpoints on the same origin with the same key share its connections and its
/// vetted DNS answer, whatever their attempts' timeouts (each attempt keeps its own): so
/// thousands of tenants' endpoints on one host, each with its timeout, share one pool.
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    /// `ca_certificates` (DER), or `None` for the public roots.
    pub(crate) roots: Option<Vec<Vec<u8>>>,
    pub(crate) policy: AddressPolicy,
    pub(crate) connect_timeout: std::time::Duration,
}

#[cfg(any(feature = "http-blocking", feature = "http-async"))]
impl ClientKey {
    /// The key of `endpoint`'s client.
    pub(crate) fn of(endpoint: &Endpoint) -> ClientKey {
        ClientKey {
            roots: endpoint
                .ca_certificates
                .as_ref()
                .map(|certs| certs.iter().map(|der| der.to_vec()).collect()),
            policy: endpoint.address_policy.clone(),
            connect_timeout: endpoint.connect_timeout,
        }
    }
}

/// Whether `parsed` (from `url`) has a port, given or empty, and an '@' after its
/// authority: a password that starts with digits (`admin:123/x@host`) parses so, as host
/// `admin` and port 123, whatever the slashes after the scheme.
fn port_then_at(url: &str, parsed: &url::Url) -> bool {
    // A port the parse drops (empty, or the scheme's own) shows in the text as a ':' after
    // the host (not an IPv6 literal's) in what reads as the authority.
    let written_port = || {
        let rest = url.split_once(':').map_or("", |(_, rest)| rest);
        let rest = rest.trim_start_matches(['/', '\\']);
        let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let port = host_port
            .rsplit_once(']')
            .map_or(host_port, |(_, port)| port);
        port.contains(':')
    };
    parsed[url::Position::BeforePath..].contains('@') && (parsed.port().is_some() || written_port())
}

/// The URL cut to its origin, for messages, logs and dead letters: paths and queries often
/// carry tokens (`https://hooks.example.com/services/T0/B0/secret`), user-info carries
/// passwords. A cut path shows as `/…`.
///
/// ```
/// use deskhook_transports::delivery::redact_url;
///
/// assert_eq!(redact_url("https://hooks.example.com/services/T0/B0/secret"), "https://hooks.example.com/…");
/// assert_eq!(redact_url("https://user:pass@crm.example.com/"), "https://crm.example.com/");
/// ```
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        // A password that is digits, or starts with digits and then a '/', '\', '?' or '#'
        // (`admin:123/x@host`), parses as host `admin`, port 123, with an '@' after: nothing
        // of it is shown (nor, then, of a URL with a port and a real '@' in its path or
        // query).
        Ok(parsed) if port_then_at(url, &parsed) => {
            format!("{}://…", parsed.scheme())
        }
        Ok(parsed) => {
            let origin = match parsed.origin() {
                origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
                // A scheme the URL standard gives no origin (`nats://`, the NATS sink's
                // endpoint), which would read `null`: its scheme, host and port.
                url::Origin::Opaque(_) => {
                    let host = parsed.host_str().unwrap_or_default();
                    match parsed.port() {
                        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
                        None => format!("{}://{host}", parsed.scheme()),
                    }
                }
            };
            let rest = &parsed[url::Position::BeforePath..];
            if rest.is_empty() || rest == "/" {
                format!("{origin}/")
            } else {
                format!("{origin}/…")
            }
        }
        // Unparsable (a port out of range, say): cut after what reads as its authority,
        // without user-info, as a parsed one is.
        Err(_) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let scheme = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            // User-info first (its password may hold a '/'): all up to the last '@' before
            // any query goes, even if that cuts a path: better than showing a password.
            let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
            let at = rest[..before_query].rfind('@');
            if rest.rfind('@') != at {
                // An '@' after a '?' or '#': of a password holding one of those, or of the
                // query. Either may be a secret.
                return format!("{scheme}…");
            }
            let rest = at.map_or(rest, |at| &rest[at + 1..]);
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let host = &rest[..end];
            let path = rest[end..].split(['?', '#']).next().unwrap_or_default();
            let tail = match path.trim_start_matches('/') {
                "" if path.is_empty() => "",
                "" => "/",
                _ => "/…",
            };
            format!("{scheme}{host}{tail}")
        }
    }
}

/// The bytes of an RFC 9110 token: what a header's name is made of.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'..=b'`' | b'|' | b'~');
        b += 1;
    }
    table
};

/// Whether `name` can be a header's name (an RFC 9110 token).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| TOKEN[usize::from(b)])
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
