//! What an operator does to one endpoint besides changing its settings: send it a test
//! event, give it a new signing secret.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Endpoints;
use super::info::{EndpointInfo, secret_specs};
use crate::delivery::Endpoint;
use crate::error::Error;

impl Endpoints {
    /// Sends `name` a test event, to it only: the sample ticket (code `DESKHOOK-TEST`) for
    /// the first Zenlix action it receives, for its tenant, signed and retried like any
    /// other. Returns the event's id, to find its attempts.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name; [`Error::Config`] when it
    /// receives no Zenlix action (test events are Zenlix events), or is disabled (a 410) or
    /// being removed; [`Error::NotQueued`] when its queue or the memory budget is full.
    pub fn send_test(&self, name: &str) -> Result<deskhook::sink::EventId, Error> {
        let lane = self.engine.registry().lane(name)?;
        // Queued, the test event would only be dead-lettered: a letter of a made-up ticket,
        // which a replay after a resume would send to the receiver.
        if let Some(why) = lane.refusing() {
            return Err(Error::Config(format!(
                "endpoint '{name}' {why}; no test event is sent"
            )));
        }
        let route = lane.route();
        let action = route
            .endpoint
            .actions
            .iter()
            .find_map(|t| match t {
                deskhook::EventType::Zenlix(action) => Some(action),
                _ => None,
            })
            .ok_or_else(|| {
                Error::Config(format!(
                    "endpoint '{name}' receives no Zenlix action, and test events are Zenlix \
                     events; subscribe it to one (such as \"create\") to test it"
                ))
            })?;
        let mut ticket = deskhook::sample::ticket();
        ticket.code = "DESKHOOK-TEST".to_owned();
        ticket.subject = "deskhook test event".to_owned();
        let user = deskhook::sample::user();
        let mut emitted =
            deskhook::sink::Emitted::new(deskhook::EventRef::new(action, &ticket, &user))
                .map_err(|e| Error::Config(format!("the test event cannot be made: {e}")))?;
        if let Some(tenant) = &route.endpoint.tenant {
            emitted = emitted
                .with_tenant(tenant.as_str())
                .map_err(|e| Error::Config(e.to_string()))?;
        }
        let id = emitted.id();
        self.engine
            .enqueue_for(&lane, crate::delivery::EventData::of(&emitted))?;
        Ok(id)
    }

    /// Gives `name` a new signing secret. Deliveries are signed with it at once, and with
    /// the old ones too until `overlap` has passed (each request carries both signatures),
    /// so that the receiver can switch without losing a request; then the old ones stop.
    /// `X-Hub-Signature-256` (see
    /// [`hub_signature`](crate::delivery::Endpoint::hub_signature)) holds one signature: it
    /// is made with the old secret until the overlap ends, then with the new one, so a
    /// receiver checking it accepts both during the overlap, or switches when it ends.
    /// Returns the endpoint with the settings it made (a change made since is not in it).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name; [`Error::Config`] when
    /// `overlap` would keep the old secrets past the year 9999, when the endpoint would then
    /// sign with more than [`MAX_SIGNATURE_ENTRIES`](deskhook::signature::MAX_SIGNATURE_ENTRIES)
    /// secrets, or when it sends `X-Hub-Signature-256` and `secret` is not a `whsec_`
    /// secret; [`Error::EndpointChanged`]
    /// when it was removed or made again meanwhile, or kept changing.
    pub fn rotate_secret(
        &self,
        name: &str,
        secret: deskhook::Secret,
        overlap: Duration,
    ) -> Result<EndpointInfo, Error> {
        // Read, change, and write only if nobody changed the endpoint meanwhile (another
        // rotation's secret would be lost): else read again. One removed meanwhile stays
        // removed, and one made again under its name is not given this secret.
        let _turn = self
            .engine
            .registry()
            .rotating
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let lane = self.engine.registry().lane(name)?;
        for _ in 0..16 {
            let current = self.engine.registry().get(name);
            if !current.is_some_and(|l| Arc::ptr_eq(&l, &lane)) {
                return Err(Error::EndpointChanged {
                    name: name.to_owned(),
                });
            }
            let read = lane.route();
            let endpoint = rotated(&read.endpoint, secret.clone(), overlap)?;
            let route = Arc::new(self.engine.route_for(endpoint)?);
            self.engine.route_all();
            if let Ok(upserted) = self.engine.update(&lane, route.clone(), Some(&read)) {
                self.kept();
                // The secret it signs with already: the endpoint keeps the settings read.
                let installed = match upserted {
                    super::Upserted::Unchanged => read,
                    _ => route,
                };
                log::info!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{name}': new signing secret; the old one(s) sign too for {}",
                    deskhook::policy::format_duration(overlap)
                );
                return Ok(EndpointInfo::of_route(&lane, installed));
            }
        }
        Err(Error::EndpointChanged {
            name: name.to_owned(),
        })
    }
}

/// `endpoint` with `secret` first and its current secrets signing too until `overlap` has
/// passed.
fn rotated(
    endpoint: &Endpoint,
    secret: deskhook::Secret,
    overlap: Duration,
) -> Result<Endpoint, Error> {
    let mut endpoint = endpoint.clone();
    let until = SystemTime::now()
        .checked_add(overlap)
        .filter(|until| jiff::Timestamp::try_from(*until).is_ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "an overlap of {overlap:?} would keep the old secrets past the year 9999; \
                     give a shorter one"
            ))
        })?;
    if endpoint.hub_signature && secret.kind() != deskhook::signature::SecretKind::Hmac {
        return Err(Error::Config(format!(
            "endpoint '{}' sends X-Hub-Signature-256 (hub_signature), an HMAC that only a \
             whsec_ secret makes: rotating to a key of another kind would leave it unsigned \
             once the old secrets expire; rotate to a whsec_ secret, or turn hub_signature \
             off first",
            endpoint.name
        )));
    }
    let now = SystemTime::now();
    let active = |expires: &Option<SystemTime>| expires.is_none_or(|at| at > now);
    // The secret signing X-Hub-Signature-256 now goes last of the old ones: of secrets that
    // expire together, the hub signature takes the last given, so it keeps signing it
    // until the overlap ends.
    let mut old = endpoint.secrets.clone();
    if let Some(at) = crate::delivery::route::hub_secret(&old, active) {
        let hub = old.remove(at);
        old.push(hub);
    }
    let mut secrets = vec![(secret.clone(), None)];
    secrets.extend(
        old.into_iter()
            // Given again: it signs once, with no end.
            .filter(|(old, expires)| active(expires) && *old != secret)
            .map(|(old, expires)| (old, Some(expires.map_or(until, |at| at.min(until))))),
    );
    if secrets.len() > deskhook::signature::MAX_SIGNATURE_ENTRIES {
        return Err(Error::Config(format!(
            "endpoint '{}' would sign with {} secrets, and a receiver reads only the first {} \
             signatures of a request: the oldest, which receivers that have not switched yet \
             still hold, would not be read; wait until the overlaps of earlier rotations end, \
             or first drop the old secrets receivers no longer need (update the endpoint's \
             secrets)",
            endpoint.name,
            secrets.len(),
            deskhook::signature::MAX_SIGNATURE_ENTRIES
        )));
    }
    endpoint.secrets = secrets;
    if let Some(spec) = &endpoint.spec {
        // The settings kept by a spool say the same: the secrets listed, none from the
        // environment any more (the environment's is among the old ones).
        let mut spec = (**spec).clone();
        spec.secret_env = None;
        spec.secrets = Some(secret_specs(&endpoint.secrets));
        endpoint.spec = Some(Arc::new(spec));
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret signing `X-Hub-Signature-256` keeps signing it through a rotation's
    /// overlap, whatever the order of the old secrets.
    #[test]
    fn a_rotation_keeps_the_hub_signatures_secret_for_its_overlap() {
        let secret = || deskhook::Secret::generate().expect("a secret");
        let (a, b, c, d) = (secret(), secret(), secret(), secret());
        let hub = |endpoint: &Endpoint| {
            let at = crate::delivery::route::hub_secret(&endpoint.secrets, |e| {
                e.is_none_or(|at| at > SystemTime::now())
            });
            endpoint.secrets[at.expect("a hub secret")].0.clone()
        };
        let hour = Duration::from_secs(3600);
        // Two lasting secrets: the first given signs it, before and after.
        let two = Endpoint::new("e", "https://x.example/")
            .expect("a URL")
            .hub_signature(true)
            .secret(a.clone())
            .secret(b.clone());
        assert!(hub(&two) == a);
        let once = rotated(&two, c.clone(), hour).expect("rotated");
        assert!(hub(&once) == a, "the overlap keeps A");
        // Rotated again with a shorter overlap: every old expiry is then the same.
        let twice = rotated(&once, d, hour / 2).expect("rotated");
        assert!(hub(&twice) == a, "the overlap keeps A");
        assert_eq!(twice.secrets.len(), 4);
    }
}
