//! What the registry tells of its endpoints: an endpoint's settings, state and counters
//! ([`EndpointInfo`]), and what an upsert, a removal or a replacement of them did.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deskhook::EventTypeSet;
use deskhook::policy::RetrySchedule;

use super::super::spec::secret_hint;
use super::super::{EndpointState, EndpointStats, Lane, RateLimit, RedactedSpec, lock};

/// What [`Endpoints::upsert`](super::Endpoints::upsert) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upserted {
    /// A new endpoint: it receives the events emitted from now on.
    Added,
    /// An endpoint of that name changed: the new settings apply from its next attempt.
    Updated,
    /// An endpoint of that name had the same settings already.
    Unchanged,
}

/// What [`Endpoints::remove`](super::Endpoints::remove) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removed {
    /// Events it had queued or waiting for a retry, let go to the dead letters. Those the
    /// dead-letter file could not take are not among them: they are logged whole and
    /// counted as dropped instead.
    pub dead_lettered: usize,
    /// Attempts in flight, which finish (a failure goes to the dead letters).
    pub in_flight: usize,
}

/// What [`Endpoints::replace_all`](super::Endpoints::replace_all) did, by endpoint name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplaceReport {
    /// Endpoints that were not registered.
    pub added: Vec<String>,
    /// Endpoints whose settings changed.
    pub updated: Vec<String>,
    /// Endpoints that were registered and are not in the new set.
    pub removed: Vec<String>,
    /// Endpoints that were registered with the same settings.
    pub unchanged: usize,
}

/// An endpoint's settings (without its secrets) and its state and counters, from
/// [`Endpoints::get`](super::Endpoints::get) and [`Endpoints::list`](super::Endpoints::list).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// Its name.
    pub name: String,
    /// Its tenant, if it has one.
    pub tenant: Option<String>,
    /// Its URL cut to its origin (paths and queries often carry tokens).
    pub url: String,
    /// The event types it receives.
    pub event_types: EventTypeSet,
    /// The last 4 characters of each signing secret, to tell them apart.
    pub secret_hints: Vec<String>,
    /// The names of its custom headers (their values are left out: they often hold
    /// credentials).
    pub headers: Vec<String>,
    /// Its retry schedule.
    pub retry: RetrySchedule,
    /// Its limit for a whole attempt.
    pub timeout: Duration,
    /// Its limit for connecting.
    pub connect_timeout: Duration,
    /// Its requests in flight at most.
    pub max_in_flight: usize,
    /// Its rate limit, if it has one.
    pub rate_limit: Option<RateLimit>,
    /// Whether it is paused, disabled by a 410, held by its breaker, or active.
    pub state: EndpointState,
    /// When its last attempt ended, and the HTTP status it got (`None` without a response).
    pub last_attempt: Option<(SystemTime, Option<u16>)>,
    /// The settings it was made from, secrets and header values left out, when it was made
    /// from an [`EndpointSpec`](crate::delivery::EndpointSpec) (`deskhook.toml`, the admin API).
    pub spec: Option<RedactedSpec>,
    /// Its counters.
    pub stats: EndpointStats,
    /// The settings read, for [`Endpoints::update_spec_if_unchanged`](super::Endpoints::update_spec_if_unchanged).
    pub(super) read: Read,
}

/// The settings an [`EndpointInfo`] was read from: weak, so that a snapshot kept by the
/// caller keeps neither secrets nor a removed endpoint's connections alive (a live `Weak`
/// keeps the address from being reused, so a pointer comparison stays sound).
#[derive(Clone)]
pub(super) struct Read(pub(super) std::sync::Weak<super::super::Route>);

impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The route holds secrets: nothing of it is shown.
        f.write_str("Read")
    }
}

/// The URL of `endpoint` as it was given (its spec's, when made from one).
pub(super) fn own_url(endpoint: &super::super::Endpoint) -> String {
    endpoint
        .spec
        .as_ref()
        .map_or_else(|| endpoint.url.to_string(), |s| s.url.clone())
}

impl EndpointInfo {
    /// Whether `url` is the endpoint's URL as read: its own, or the form [`url`](Self::url)
    /// shows, which an update takes for its own. `None` once the settings read were replaced
    /// or removed (and no longer in use): an update on them then fails as
    /// [`Endpoints::update_spec_if_unchanged`](super::Endpoints::update_spec_if_unchanged) says.
    pub fn keeps_url(&self, url: &str) -> Option<bool> {
        self.read.0.upgrade().map(|route| {
            let own = own_url(&route.endpoint);
            url == own || url == super::super::redact_url(&own)
        })
    }

    /// A digest of every setting the endpoint was made from, the ones this snapshot leaves
    /// out included (secrets, header values, the URL's path and query), to tell whether they
    /// changed since another snapshot: an `ETag`, a form's hidden version. Keyed with a key
    /// drawn at random once per process, so that it tells nothing of the values (and differs
    /// from one process to the next). For an endpoint registered in code (not made from an
    /// [`EndpointSpec`](crate::delivery::EndpointSpec)), of its settings the spec format
    /// says (its whole URL, tenant, event types, retry schedule, timeouts, limits, headers).
    /// `None` once changed or removed since this was read and not in use any more. Costs
    /// one serialization of the settings.
    pub fn settings_digest(&self) -> Option<u64> {
        use std::hash::{BuildHasher as _, Hasher};
        /// Feeds what is written to the hasher: no buffer holds the secrets.
        struct Feed<H>(H);
        impl<H: Hasher> std::io::Write for Feed<H> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.write(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        let route = self.read.0.upgrade()?;
        let mut feed = Feed(KEY.get_or_init(std::hash::RandomState::new).build_hasher());
        let e = &route.endpoint;
        match e.spec.as_deref() {
            Some(spec) => serde_json::to_writer(&mut feed, spec).ok()?,
            None => {
                use std::io::Write as _;
                writeln!(
                    feed,
                    "{}\n{:?}\n{:?}\n{}\n{:?}\n{:?}\n{}\n{:?}",
                    e.url,
                    e.tenant,
                    e.actions,
                    e.retry,
                    e.timeout,
                    e.connect_timeout,
                    route.max_in_flight,
                    e.rate_limit
                )
                .ok()?;
                for (name, value) in &e.headers {
                    writeln!(feed, "{name}: {value}").ok()?;
                }
            }
        }
        Some(feed.0.finish())
    }

    pub(super) fn of(lane: &Lane) -> EndpointInfo {
        EndpointInfo::of_route(lane, lane.route())
    }

    /// `lane` with the settings of `route` (those a change just installed, which a change
    /// made since may have replaced already).
    pub(super) fn of_route(lane: &Lane, route: Arc<super::super::Route>) -> EndpointInfo {
        let stats = lane.stats(None);
        let last_attempt = lock(&lane.state).last_attempt;
        let e = &route.endpoint;
        EndpointInfo {
            name: e.name.clone(),
            tenant: e.tenant.clone(),
            url: route.url.clone(),
            event_types: e.actions,
            secret_hints: e
                .secrets
                .iter()
                .map(|(secret, _)| secret_hint(secret))
                .collect(),
            headers: e.headers.iter().map(|(k, _)| k.clone()).collect(),
            retry: e.retry.clone(),
            timeout: e.timeout,
            connect_timeout: e.connect_timeout,
            max_in_flight: route.max_in_flight,
            rate_limit: e.rate_limit,
            state: stats.state,
            last_attempt,
            spec: e.spec.as_ref().map(|spec| spec.redacted()),
            stats,
            read: Read(Arc::downgrade(&route)),
        }
    }
}

/// An endpoint's secrets as settings (for the spec a spool keeps).
pub(super) fn secret_specs(
    secrets: &[(deskhook::Secret, Option<SystemTime>)],
) -> Vec<super::super::SecretSpec> {
    secrets
        .iter()
        .map(|(secret, expires)| super::super::SecretSpec {
            secret: secret.clone(),
            expires: *expires,
        })
        .collect()
}

/// Gives `spec` (an update) the secrets of the endpoint it changes where it gives none: the
/// literal ones as they were given (`stored`, the settings it was made from, else
/// `secrets`, those it signs with), and the variable's name unless `spec` names one
/// (settings read back give the name, never the secrets).
pub(super) fn keep_secrets(
    spec: &mut super::super::EndpointSpec,
    stored: Option<&super::super::EndpointSpec>,
    secrets: &[(deskhook::Secret, Option<SystemTime>)],
) {
    if spec.secrets.is_some() {
        return;
    }
    match stored {
        Some(stored) => {
            spec.secrets.clone_from(&stored.secrets);
            if spec.secret_env.is_none() {
                spec.secret_env.clone_from(&stored.secret_env);
            }
        }
        None => spec.secrets = Some(secret_specs(secrets)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{EndpointSpec, SecretSpec};

    #[test]
    fn an_update_keeps_the_secrets_it_leaves_out() {
        let secret = deskhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let literal = Some(vec![SecretSpec {
            secret: secret.clone(),
            expires: None,
        }]);
        let env = || Some("CRM_SECRET".to_owned());
        let mut stored = EndpointSpec::new("crm", "https://crm.example.com/hooks");
        stored.secrets.clone_from(&literal);
        stored.secret_env = env();
        let kept = |update: EndpointSpec| {
            let mut update = update;
            keep_secrets(&mut update, Some(&stored), &[]);
            (update.secrets, update.secret_env)
        };
        let mut update = EndpointSpec::new("crm", "https://crm.example.com/hooks");
        // Neither given: both kept.
        assert_eq!(kept(update.clone()), (literal.clone(), env()));
        // The variable given back as read (the secrets are never shown): the secrets kept.
        update.secret_env = env();
        assert_eq!(kept(update.clone()), (literal.clone(), env()));
        // Another variable: it replaces the old one; the secrets stay.
        update.secret_env = Some("OTHER".to_owned());
        assert_eq!(
            kept(update.clone()),
            (literal.clone(), Some("OTHER".to_owned()))
        );
        // An empty list takes the secrets away.
        update.secrets = Some(Vec::new());
        update.secret_env = None;
        assert_eq!(kept(update.clone()), (Some(Vec::new()), None));
        // An endpoint made in code: the secrets it signs with.
        let mut coded = EndpointSpec::new("crm", "https://crm.example.com/hooks");
        keep_secrets(&mut coded, None, &[(secret, None)]);
        assert_eq!(coded.secrets, literal);
    }
}
