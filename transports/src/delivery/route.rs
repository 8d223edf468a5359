//! An endpoint's settings as the engine uses them (a [`Route`], made once per upsert), and
//! what they make of each attempt: the body rendered with the endpoint's template, and the
//! headers that change per attempt (timestamp, signatures, sequence) as [`Prepared`].

use std::sync::Arc;
use std::time::SystemTime;

use deskhook::signature::Signer;

use super::budget::Budget;
use super::{Connector, Endpoint, Job, TENANT_HEADER, TICKET_HEADER, Target};

/// The body size from which an HMAC signature is worth preparing off the delivery thread.
/// Handing an attempt to another thread and back costs about 6 µs of CPU in all: measured
/// with the async transport on two cores, signed 4 KiB bodies went 8% slower that way and
/// 10 KiB bodies 5–45% faster.
#[cfg(feature = "_async")]
pub(crate) const COSTLY_HMAC_BODY: usize = 8192;

/// An endpoint's settings as the engine uses them, made once per upsert. An attempt holds
/// the `Arc<Route>` it started with, so a change applies from the next attempt.
#[derive(Debug)]
pub(crate) struct Route {
    /// The settings as given.
    pub(crate) endpoint: Endpoint,
    /// The URL cut to its origin, for logs, stats and dead letters.
    pub(crate) url: String,
    pub(crate) max_in_flight: usize,
    /// One signer per secret, with the time it stops signing.
    pub(crate) signers: Vec<(Signer, Option<SystemTime>)>,
    /// Whether a secret is an ed25519 key (a signature costs about 36 µs: see
    /// [`Route::costly`]).
    #[cfg(feature = "_async")]
    pub(crate) asymmetric: bool,
    /// Whether requests carry the ticket and tenant headers (NATS).
    pub(crate) event_headers: bool,
    /// Whether the target holds the endpoint's own headers (attempts leave them out).
    pub(crate) endpoint_headers_in_target: bool,
    /// The transport's client and URL.
    pub(crate) target: Target,
}

impl Route {
    /// The route of a checked `endpoint`, with the transport's target.
    pub(crate) fn new(
        endpoint: Endpoint,
        connector: &dyn Connector,
    ) -> Result<Route, crate::Error> {
        let target = connector.target(&endpoint)?;
        let signers = endpoint
            .secrets
            .iter()
            .map(|(secret, expires)| {
                let signer = Signer::new(vec![secret.clone()]).map_err(|e| {
                    crate::Error::InvalidEndpoint {
                        name: endpoint.name.clone(),
                        message: e.to_string(),
                    }
                })?;
                Ok((signer, *expires))
            })
            .collect::<Result<_, crate::Error>>()?;
        Ok(Route {
            url: super::endpoint::redact_url(endpoint.url.as_str()),
            max_in_flight: endpoint
                .max_in_flight
                .unwrap_or_else(|| connector.default_max_in_flight())
                .max(1),
            signers,
            #[cfg(feature = "_async")]
            asymmetric: endpoint
                .secrets
                .iter()
                .any(|(secret, _)| secret.kind() == deskhook::signature::SecretKind::Ed25519),
            event_headers: connector.event_headers(),
            endpoint_headers_in_target: connector.endpoint_headers_in_target(),
            target,
            endpoint,
        })
    }

    /// Whether preparing `job` (see [`prepare`](Route::prepare)) costs more than handing it
    /// to another thread and back: a template still to render whose renders take long
    /// ([`Template::costly_to_render`](crate::template::Template::costly_to_render)), an
    /// ed25519 signature, or an HMAC over a body of [`COSTLY_HMAC_BODY`] bytes or more.
    /// The async transport prepares such attempts off its delivery thread.
    #[cfg(feature = "_async")]
    pub(crate) fn costly(&self, job: &Job) -> bool {
        let renders = self.endpoint.template.as_ref().is_some_and(|template| {
            template.costly_to_render()
                && !job
                    .rendered
                    .as_ref()
                    .is_some_and(|r| r.template.ptr_eq(template))
        });
        renders
            || self.asymmetric
            || (!self.signers.is_empty() && job.body().len() >= COSTLY_HMAC_BODY)
    }

    /// The headers of one attempt of `job`, at `now`, after rendering its body with the
    /// endpoint's template if it has one and the job has no body from this template yet.
    /// `Err` when the body cannot be rendered, or every signing secret has expired, or the
    /// endpoint sends `X-Hub-Signature-256` and has no current HMAC secret (a request
    /// without its signature would be refused by the receiver).
    pub(crate) fn prepare(
        &self,
        job: &mut Job,
        now: SystemTime,
        budget: &Arc<Budget>,
    ) -> Result<Prepared, String> {
        // Queued before the endpoint was moved to another tenant: not for this one's eyes.
        if let Some(owner) = &self.endpoint.tenant
            && job.event.tenant.as_deref() != Some(owner.as_str())
        {
            return Err(format!(
                "the endpoint was moved to {} after this event of {} was queued for it; \
                 not delivered to another tenant's endpoint",
                crate::delivery::registry::tenant_words(Some(owner)),
                crate::delivery::registry::tenant_words(job.event.tenant.as_deref())
            ));
        }
        // Queued before the endpoint's event types were narrowed: a replay would refuse it
        // as well.
        if !self.endpoint.actions.contains(job.event.event_type) {
            return Err(format!(
                "endpoint '{}' no longer takes '{}' events (its actions changed after this \
                 event was queued for it); not delivered: add the type back and replay it to \
                 have it sent",
                self.endpoint.name, job.event.event_type
            ));
        }
        self.render(job, budget)?;
        let job = &*job;
        let body = job.body();
        let timestamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let active = |expires: &Option<SystemTime>| expires.is_none_or(|e| now < e);
        let event = &job.event;
        let mut signature = None;
        if !self.signers.is_empty() {
            let ts = i64::try_from(timestamp).unwrap_or(i64::MAX);
            // One string, no list: this runs on every attempt.
            let mut entries = String::new();
            for (signer, _) in self.signers.iter().filter(|(_, e)| active(e)) {
                let entry = signer.sign(&event.id_text, ts, body);
                if entries.is_empty() {
                    entries = entry;
                } else {
                    entries.push(' ');
                    entries.push_str(&entry);
                }
            }
            if entries.is_empty() {
                return Err(
                    "every signing secret of the endpoint has expired; add a current \
                            secret (an unsigned request would be refused by the receiver)"
                        .to_owned(),
                );
            }
            signature = Some(entries);
        }
        let hub = match self.endpoint.hub_signature {
            true => Some(self.hub(body, active)?),
            false => None,
        };
        Ok(Prepared {
            timestamp,
            seq: job.seq,
            digits: Default::default(),
            signature,
            hub,
        })
    }
}

/// Which of `secrets` makes `X-Hub-Signature-256`: of the HMAC secrets `active`, the one
/// that expires first; of several that expire together, the last given (a rotation puts
/// the newest first, caps the old ones' expiries at the overlap's end, and puts the one
/// signing the header last of them: see `registry::operator::rotated`); else the first
/// that does not expire.
pub(crate) fn hub_secret(
    secrets: &[(deskhook::Secret, Option<SystemTime>)],
    active: impl Fn(&Option<SystemTime>) -> bool,
) -> Option<usize> {
    let expires_first = |(at, (_, expires)): &(usize, &(_, Option<SystemTime>))| {
        let order = if expires.is_some() {
            usize::MAX - at
        } else {
            *at
        };
        (expires.is_none(), *expires, order)
    };
    secrets
        .iter()
        .enumerate()
        .filter(|(_, (secret, expires))| {
            active(expires) && secret.kind() == deskhook::signature::SecretKind::Hmac
        })
        .min_by_key(expires_first)
        .map(|(at, _)| at)
}

impl Route {
    /// `X-Hub-Signature-256` of `body`: one signature, made with the HMAC secret receivers
    /// have had longest ([`hub_secret`]).
    fn hub(
        &self,
        body: &[u8],
        active: impl Fn(&Option<SystemTime>) -> bool,
    ) -> Result<String, String> {
        hub_secret(&self.endpoint.secrets, active)
            .map(|at| &self.endpoint.secrets[at])
            .and_then(|(secret, _)| deskhook::signature::hub_signature(secret, body).ok())
            .ok_or_else(|| {
                format!(
                    "endpoint '{}' sends X-Hub-Signature-256 (hub_signature), which needs an \
                     HMAC (whsec_) secret, and none of its secrets that has not expired is \
                     one; add a whsec_ secret, or turn hub_signature off (a request without \
                     it would be refused by the receiver)",
                    self.endpoint.name
                )
            })
    }

    /// Renders `job`'s body with the endpoint's template, once per job and template: a
    /// retry reuses the body, a job whose endpoint changed its template is rendered again.
    /// The render is charged to `budget` only if it waits for a retry (see
    /// [`Engine::keep_render`](super::Engine)); renders kept for other endpoints are charged
    /// when kept.
    fn render(&self, job: &mut Job, budget: &Arc<Budget>) -> Result<(), String> {
        let Some(template) = &self.endpoint.template else {
            job.rendered = None;
            return Ok(());
        };
        if job
            .rendered
            .as_ref()
            .is_some_and(|r| r.template.ptr_eq(template))
        {
            return Ok(());
        }
        let event = &job.event;
        let parsed = event
            .parsed
            .get_or_init(|| {
                crate::template::Parsed::new(event.event_type, &event.body)
                    .map(|p| Arc::new(p.charged_to(budget)))
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let body = template.render_shared(parsed, &event.id_text, event.tenant.clone(), budget)?;
        job.rendered = Some(Box::new(super::Rendered {
            template: template.clone(),
            body,
            charge: None,
        }));
        Ok(())
    }
}

/// The headers of one attempt that change per attempt.
pub(crate) struct Prepared {
    timestamp: u64,
    seq: u64,
    /// Where the timestamp and the sequence are written when the headers are made: no
    /// allocation, no formatter (this runs on every attempt).
    digits: (itoa::Buffer, itoa::Buffer),
    signature: Option<String>,
    hub: Option<String>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("timestamp", &self.timestamp)
            .field("seq", &self.seq)
            .field("signature", &self.signature)
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Every header of the attempt, borrowed from the job, the route and `self`.
    pub(crate) fn headers<'a>(
        &'a mut self,
        route: &'a Route,
        job: &'a Job,
    ) -> Vec<(&'a str, &'a str)> {
        let event = &job.event;
        let timestamp = self.digits.0.format(self.timestamp);
        let seq = self.digits.1.format(self.seq);
        let mut headers = Vec::with_capacity(9 + route.endpoint.headers.len());
        headers.push(("content-type", job.content_type()));
        headers.push(("x-deskhook-action", event.event_type.as_str()));
        headers.push(("x-deskhook-sequence", seq));
        headers.push(("webhook-id", &*event.id_text));
        headers.push(("webhook-timestamp", timestamp));
        if let Some(signature) = &self.signature {
            headers.push(("webhook-signature", signature.as_str()));
        }
        if let Some(hub) = &self.hub {
            headers.push(("x-hub-signature-256", hub.as_str()));
        }
        if route.event_headers {
            headers.push((TICKET_HEADER, &*event.key));
            if let Some(tenant) = &event.tenant {
                headers.push((TENANT_HEADER, tenant));
            }
        }
        if !route.endpoint_headers_in_target {
            headers.extend(
                route
                    .endpoint
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        headers
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
