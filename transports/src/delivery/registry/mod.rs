//! The registry of endpoints: names, the tenant index that routes each event, and the
//! [`Endpoints`] handle that changes them while events flow.
//!
//! Routing an event (a worker, or the caller of `emit` where it routes at once) reads the
//! index under a read lock held for the few microseconds it takes to pick the event's
//! endpoints (those of its tenant and those without a tenant); changes take the write lock
//! for a map insertion or removal, after everything slow (checking the endpoint, making its
//! client, reading its spooled rows) is done. `emit` itself never takes it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use super::backlog::Release;
use super::history::MinuteCount;
use super::lane::Closing;
use super::{Endpoint, Engine, Lane, lock};
use crate::error::Error;

mod index;
mod info;
mod install;
mod operator;
mod page;

pub(crate) use index::{Lanes, Registry};
pub use info::{EndpointInfo, Removed, ReplaceReport, Upserted};
use info::{keep_secrets, own_url};
pub(crate) use install::Install;
pub use page::{EndpointPage, EndpointQuery};

/// The endpoints of a running sink, to change while events flow. Cheap to clone, `Send` and
/// `Sync`; every call is safe from any thread, and none makes `emit` wait. Each call first
/// routes the events emitted before it (see [How an event moves](super#how-an-event-moves)),
/// so that it sees them queued, and a removal dead-letters them.
///
/// What each change does:
///
/// - [`upsert`](Endpoints::upsert) of a new name: the endpoint receives the events emitted
///   after the call returns.
/// - [`upsert`](Endpoints::upsert) of a known name with other settings (URL, secrets,
///   headers, event types, retry schedule, timeouts, rate limit, tenant, …): they apply from
///   the endpoint's next attempt, also to the events it has queued, which keep their
///   `webhook-id` and their order per ticket. An attempt in flight finishes with the old
///   settings; if it fails and the change was to its request or receiver (URL, CA roots,
///   headers, secrets, signatures, template, address policy, tenant or event types: a 410
///   from the URL moved away from, a 401 for a secret rotated without overlap), its event
///   goes again at once with the new ones, and the failure neither disables the endpoint,
///   dead-letters the event nor moves the circuit breaker. A change of the schedule, the
///   limits or the timeouts alone leaves the failure its meaning (a `Retry-After` is
///   honoured, a `400` dead-letters), and the retry waits by the new schedule.
///   A new receiver (another URL, or other CA roots) starts afresh, as a
///   [`resume`](Endpoints::resume) does but for a pause, which stays: what the old one's
///   failures started ends, a 410's disabling, the `Retry-After` hold, an open breaker and
///   the waits of events for their next retry, and those events go now. Other changes keep
///   them: the receiver is the same.
///   Two exceptions: an endpoint moved to a tenant does not send the events of another
///   tenant (or of none) it queued before, and one whose event types were narrowed does not
///   send the queued events of a type it no longer takes: each goes to the dead letters at
///   its next attempt, with a reason saying so, and a replay of it to this endpoint is
///   refused (until the type is taken again).
/// - [`pause`](Endpoints::pause): events keep being queued (up to `queue_capacity`, or on
///   disk with a spool) and nothing is sent until [`resume`](Endpoints::resume), which also
///   re-enables an endpoint disabled by a 410, closes its breaker and makes what waits for
///   a retry due at once.
/// - [`remove`](Endpoints::remove): what the endpoint has queued or waiting for a retry goes
///   to the dead letters with the reason `endpoint removed` (counted and logged); an attempt
///   in flight finishes. A later upsert of the same name starts clean: order per ticket
///   does not carry across (its sequence numbers start again, and an attempt of the removed
///   endpoint still in flight is not waited for, so a new event of its ticket can go out at
///   the same time). To change an endpoint and keep its order, upsert it instead.
/// - A name that is not registered gets [`Error::UnknownEndpoint`], with the closest name;
///   an endpoint that cannot work is refused as a sink's builder refuses it, naming it, and
///   nothing changes.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use deskhook_transports::delivery::{Endpoint, Upserted};
/// use deskhook_transports::http_blocking::HttpSink;
///
/// let (sink, _guard) = HttpSink::builder()
///     .dead_letter_path(dir.path().join("dead-letters.jsonl"))
///     .build()?; // no endpoints yet
/// let endpoints = sink.endpoints();
/// let crm = Endpoint::new("acme-crm", "https://crm.example.com/hooks")?.tenant("acme");
/// assert_eq!(endpoints.upsert(crm)?, Upserted::Added);
/// endpoints.pause("acme-crm")?;
/// assert_eq!(endpoints.get("acme-crm")?.state.to_string(), "paused");
/// let typo = endpoints.pause("acme-cmr").unwrap_err();
/// assert_eq!(typo.to_string(), "no endpoint is named 'acme-cmr' (did you mean 'acme-crm'?)");
/// let report = endpoints.replace_all([])?;
/// assert_eq!(report.removed, ["acme-crm"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Endpoints {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("len", &self.len())
            .finish()
    }
}

impl Endpoints {
    pub(crate) fn new(engine: Arc<Engine>) -> Endpoints {
        Endpoints { engine }
    }

    /// Adds `endpoint`, or replaces the settings of the endpoint of that name.
    ///
    /// With a spool, the call returns once the change is on disk; but an endpoint made in
    /// code is not one the spool can make again (its CA roots, template or observer may be
    /// anything), so it is not registered again after a restart: its spooled events wait,
    /// kept, until the application registers it again. Register the endpoints from your own
    /// store at start ([`replace_all`](Endpoints::replace_all)), or give settings with
    /// [`upsert_spec`](Endpoints::upsert_spec), which the spool keeps and
    /// [`restore_endpoints`](super::SinkBuilder::restore_endpoints) registers again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`], [`Error::InvalidUrl`] or [`Error::Refused`] naming the
    /// endpoint and what to change, as at build; nothing changes then.
    pub fn upsert(&self, endpoint: Endpoint) -> Result<Upserted, Error> {
        let route = self.engine.route_for(endpoint)?;
        // Events emitted before go where they would have gone before.
        self.engine.route_all();
        let done = self.engine.install(route)?.0;
        self.kept();
        Ok(done)
    }

    /// Waits until a spool has the registry's last change on disk (before the change's
    /// caller, an operator, is told it is done: a crash then loses none of it).
    fn kept(&self) {
        if let Err(e) = self.engine.backlog().registry_kept() {
            log::error!(
                target: deskhook::LOG_TARGET,
                "an endpoint change is made but may not survive a restart: {e}"
            );
        }
    }

    /// [`upsert`](Endpoints::upsert) of an endpoint given as settings (the JSON of the admin
    /// API, a `deskhook.toml` table), which a spool keeps so that
    /// [`restore_endpoints`](super::SinkBuilder::restore_endpoints) registers it again after
    /// a restart.
    ///
    /// # Errors
    ///
    /// [`SpecError`](super::SpecError) naming the field at fault; nothing changes then.
    pub fn upsert_spec(&self, spec: &super::EndpointSpec) -> Result<Upserted, super::SpecError> {
        let endpoint = spec.to_endpoint()?;
        self.upsert(endpoint).map_err(super::SpecError::whole)
    }

    /// [`upsert_spec`](Endpoints::upsert_spec) where a new endpoint is added paused when
    /// `paused`, so that no event goes to it before it is resumed (one that exists keeps
    /// its state: its caller pauses or resumes it). For a relay, which has no spool to keep
    /// the pause.
    #[cfg(feature = "relay")]
    pub(crate) fn upsert_spec_paused(
        &self,
        spec: &super::EndpointSpec,
        paused: bool,
    ) -> Result<Upserted, super::SpecError> {
        let endpoint = spec.to_endpoint()?;
        let route = self
            .engine
            .route_for(endpoint)
            .map_err(super::SpecError::whole)?;
        self.engine.route_all();
        let (done, _) = self
            .engine
            .install_as(route, Install::Start { paused })
            .map_err(super::SpecError::whole)?;
        self.kept();
        Ok(done)
    }

    /// Changes the endpoint `spec.name` to `spec`, as the admin API's update does: where
    /// `spec` gives no `secrets`, the endpoint keeps its own (and its `secret_env`, unless
    /// `spec` names one; `Some(vec![])` takes the secrets away), where it gives no
    /// `headers`, its headers, and where it gives the URL as pages and API responses show
    /// it (cut to its origin, see [`EndpointSpec::redacted`](super::EndpointSpec::redacted))
    /// or a header's value as `…`, the endpoint keeps its own, since those never show them.
    /// Header values (and template variables shown as `…`) are kept only while the URL
    /// stays the same: they are often credentials, and no one sees them go to the new
    /// receiver, which on a shared host (`hooks.slack.com`) may be another path of the same
    /// origin. Returns the endpoint with the settings it made: a change made since (another
    /// operator's) is not in it, so that a version read from it (an `ETag`) is this one's.
    ///
    /// # Errors
    ///
    /// [`SpecError`](super::SpecError) naming the field at fault (`headers` when the URL
    /// changes and the headers' values are not given again), or wrapping
    /// [`Error::UnknownEndpoint`] when no endpoint has that name, or
    /// [`Error::EndpointChanged`] when it was changed or removed while this change was
    /// made (what it kept of the settings would undo that change: read them again); nothing
    /// changes then.
    pub fn update_spec(
        &self,
        spec: &super::EndpointSpec,
    ) -> Result<EndpointInfo, super::SpecError> {
        self.update_from(spec, None)
    }

    /// [`update_spec`](Endpoints::update_spec), only if the endpoint's settings are still
    /// those `read` (from [`get`](Endpoints::get) or [`list`](Endpoints::list)) shows: what
    /// an `If-Match` asks for. Checked and changed at once, so that of two changes made on
    /// the same read, one is saved and the other refused.
    ///
    /// # Errors
    ///
    /// As `update_spec`; [`Error::EndpointChanged`] when the endpoint was changed, removed
    /// or made again since `read`, or `read` is of another endpoint. Nothing changes then.
    pub fn update_spec_if_unchanged(
        &self,
        spec: &super::EndpointSpec,
        read: &EndpointInfo,
    ) -> Result<EndpointInfo, super::SpecError> {
        if read.name != spec.name {
            return Err(super::SpecError::whole(Error::EndpointChanged {
                name: spec.name.clone(),
            }));
        }
        // Gone: the endpoint's settings were replaced (and dropped) since.
        let Some(route) = read.read.0.upgrade() else {
            return Err(super::SpecError::whole(Error::EndpointChanged {
                name: spec.name.clone(),
            }));
        };
        self.update_from(spec, Some(route))
    }

    /// Changes endpoint `spec.name` if its settings are `read` (those it has now when
    /// `None`).
    fn update_from(
        &self,
        spec: &super::EndpointSpec,
        read: Option<Arc<super::Route>>,
    ) -> Result<EndpointInfo, super::SpecError> {
        let lane = self
            .engine
            .registry()
            .lane(&spec.name)
            .map_err(super::SpecError::whole)?;
        let read = read.unwrap_or_else(|| lane.route());
        let current = read.endpoint.clone();
        let mut spec = spec.clone();
        let own_url = own_url(&current);
        let shown = super::redact_url(&own_url);
        if spec.url == shown && shown != own_url {
            spec.url.clone_from(&own_url);
        }
        keep_secrets(&mut spec, current.spec.as_deref(), &current.secrets);
        // Header values and hidden template variables are often credentials, and never
        // shown: kept for the same URL only, so that a change of URL does not carry them,
        // unseen, to another receiver.
        let hidden = |v: &String| v == super::spec::HIDDEN_VALUE;
        let own_vars = current
            .spec
            .as_deref()
            .and_then(|s| s.template_vars.as_ref());
        let carried = [
            (
                "headers",
                "the headers' values",
                "the headers again with their values (or none, to send none)",
                !current.headers.is_empty()
                    && spec
                        .headers
                        .as_ref()
                        .is_none_or(|headers| headers.values().any(hidden)),
            ),
            (
                "template_vars",
                "the template variables shown as '…'",
                "those variables again with their values",
                spec.template_vars.as_ref().is_some_and(|vars| {
                    vars.iter()
                        .any(|(k, v)| hidden(v) && own_vars.is_some_and(|own| own.contains_key(k)))
                }),
            ),
        ];
        if spec.url != own_url
            && let Some((field, what, again, _)) = carried.iter().find(|c| c.3)
        {
            let moves = match (origin_of(&spec.url), origin_of(&own_url)) {
                (Some(to), Some(from)) if to != from => {
                    format!("the URL moves from {from} to {to}")
                }
                // Not shown: a path often holds a token. Another path of a shared host
                // (hooks.slack.com, discord.com) is often another receiver.
                _ => "the URL's path changes".to_owned(),
            };
            return Err(super::SpecError::at(
                field,
                Error::InvalidEndpoint {
                    name: spec.name.clone(),
                    message: format!(
                        "{moves}, and {what} are not carried to another URL: give {again}"
                    ),
                },
            ));
        }
        // Nor to another template: one written to test a hidden variable (a branch on its
        // letters, a render that fails on some values) would tell its value to whoever can
        // edit the endpoint, through the endpoint's check or the attempts' errors. Nor to
        // the same one with another content type (a text template made JSON fails its
        // check quoting the output near the error) or another max_output (dead letters
        // would tell the output's length).
        type TemplateOf<'s> = (
            &'s Option<String>,
            &'s Option<std::path::PathBuf>,
            &'s Option<String>,
            Option<usize>,
        );
        fn template_of(s: &super::EndpointSpec) -> TemplateOf<'_> {
            (
                &s.template,
                &s.template_file,
                &s.template_content_type,
                s.template_max_output,
            )
        }
        let own_template = current.spec.as_deref().map(template_of);
        // Without a template, nothing renders them: the spec's check says to remove them.
        let templated = spec.template.is_some() || spec.template_file.is_some();
        if carried[1].3 && templated && own_template != Some(template_of(&spec)) {
            return Err(super::SpecError::at(
                "template_vars",
                Error::InvalidEndpoint {
                    name: spec.name.clone(),
                    message: "the template, its content type or its max_output change, and \
                              the template variables shown as '…' are not carried to another \
                              template: give those variables again with their values"
                        .to_owned(),
                },
            ));
        }
        if spec.headers.is_none() && !current.headers.is_empty() {
            spec.headers = Some(current.headers.iter().cloned().collect());
        }
        // A header given as pages and API responses show it ("…") keeps its value: the
        // settings read back and sent again must not replace a credential with "…".
        if let Some(headers) = &mut spec.headers {
            for (name, value) in headers.iter_mut() {
                if value == super::spec::HIDDEN_VALUE
                    && let Some((_, own)) = current
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    value.clone_from(own);
                }
            }
        }
        // So does a template variable shown as "…".
        if let (Some(vars), Some(own)) = (&mut spec.template_vars, own_vars) {
            for (name, value) in vars.iter_mut() {
                if hidden(value)
                    && let Some(own) = own.get(name)
                {
                    value.clone_from(own);
                }
            }
        }
        let route = self.route_of(&spec)?;
        // The endpoint as read above, only: one removed meanwhile (another operator) stays
        // removed, one made again under its name does not get its secrets and URL, and a
        // change made meanwhile (a secret rotated) is not undone.
        let route = Arc::new(route);
        match self.engine.update(&lane, route.clone(), Some(&read)) {
            Ok(upserted) => {
                self.kept();
                // With the same settings, the endpoint keeps those read (the new ones are
                // not installed).
                let installed = match upserted {
                    Upserted::Unchanged => read,
                    _ => route,
                };
                Ok(EndpointInfo::of_route(&lane, installed))
            }
            Err(_) => Err(super::SpecError::whole(Error::EndpointChanged {
                name: spec.name.clone(),
            })),
        }
    }

    /// Adds an endpoint given as settings, as the admin API's create does: unlike
    /// [`upsert_spec`](Endpoints::upsert_spec), an endpoint of that name is an error (two
    /// operators adding the same name at once: one gets it, the other is told), not replaced.
    ///
    /// # Errors
    ///
    /// [`SpecError`](super::SpecError) naming the field at fault, or wrapping
    /// [`Error::EndpointExists`]; nothing changes then.
    pub fn add_spec(&self, spec: &super::EndpointSpec) -> Result<(), super::SpecError> {
        let route = self.route_of(spec)?;
        self.engine
            .install_as(route, Install::New)
            .map_err(super::SpecError::whole)?;
        self.kept();
        Ok(())
    }

    /// The checked route of `spec`, once the events emitted before are routed (they go
    /// where they would have gone before the change).
    fn route_of(&self, spec: &super::EndpointSpec) -> Result<super::Route, super::SpecError> {
        let route = self
            .engine
            .route_for(spec.to_endpoint()?)
            .map_err(super::SpecError::whole)?;
        self.engine.route_all();
        Ok(route)
    }

    /// Removes the endpoint `name`: what it has queued goes to the dead letters with the
    /// reason `endpoint removed`; attempts in flight finish.
    ///
    /// Returns once what it had queued is moved (or, with a spool whose writes fail, left
    /// there for the next start, as the log says). With a spool, that is written in steps of
    /// a thousand rows or 1 MiB of bodies, one per commit, between which the spool goes on
    /// taking events: a backlog of a million rows takes a thousand steps or more, and this
    /// call that long, while an `emit` waiting for its commit waits for one step at most
    /// (on the project's machine, 8 ms typically and 61 ms at the longest; the `spool_remove`
    /// benchmark). Changes of the other endpoints made meanwhile apply and return at once
    /// (each once the spool has it on disk, between two steps).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name.
    pub fn remove(&self, name: &str) -> Result<Removed, Error> {
        self.remove_from(name, None)
    }

    /// [`remove`](Endpoints::remove), only if the endpoint's settings are still those `read`
    /// (from [`get`](Endpoints::get) or [`list`](Endpoints::list)) shows: what an `If-Match`
    /// asks for. Checked and removed at once.
    ///
    /// # Errors
    ///
    /// As `remove`; [`Error::EndpointChanged`] when the endpoint was changed or made again
    /// since `read`. Nothing changes then.
    pub fn remove_if_unchanged(&self, read: &EndpointInfo) -> Result<Removed, Error> {
        let Some(route) = read.read.0.upgrade() else {
            return Err(Error::EndpointChanged {
                name: read.name.clone(),
            });
        };
        self.remove_from(&read.name, Some(&route))
    }

    /// Removes the endpoint `name`, if its settings are `read` when given.
    fn remove_from(&self, name: &str, read: Option<&Arc<super::Route>>) -> Result<Removed, Error> {
        // Events emitted before are queued for it, and dead-lettered with its queue.
        self.engine.route_all();
        let registry = self.engine.registry();
        let lane = {
            let mut index = registry.write();
            if let (Some(read), Some(lane)) = (read, index.by_name.get(name))
                && !Arc::ptr_eq(read, &lane.route())
            {
                return Err(Error::EndpointChanged {
                    name: name.to_owned(),
                });
            }
            let lane = index.by_name.remove(name);
            self.engine.pool().set_endpoints(index.by_name.len());
            if let Some(lane) = &lane {
                let route = lane.route();
                registry.retire(&route);
                let tenant = route.endpoint.tenant.clone();
                index.remove_routing(lane, tenant.as_deref());
                registry.removing(name, true);
            }
            lane
        };
        let lane = lane.ok_or_else(|| registry.unknown(name))?;
        /// Ends the removal however it ends (a panicking hook too): an upsert of the name
        /// waits for it.
        struct Over<'a>(&'a Registry, &'a str);
        impl Drop for Over<'_> {
            fn drop(&mut self) {
                self.0.removing(self.1, false);
            }
        }
        let _over = Over(registry, name);
        let removed = self
            .engine
            .close_lane(&lane, Closing::Removed, Release::Removed);
        self.kept();
        Ok(removed)
    }

    /// Stops sending to `name`; its events keep being queued. With a spool it stays paused
    /// across restarts (the spool has it on disk when this returns) until
    /// [`resume`](Endpoints::resume) or its removal, as long as each start registers it
    /// again (given to the builder, or restored by
    /// [`restore_endpoints`](super::SinkBuilder::restore_endpoints)): one a start leaves out
    /// is forgotten, pause and all.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name.
    pub fn pause(&self, name: &str) -> Result<(), Error> {
        self.on_current(name, |lane| self.engine.pause(lane))?;
        self.kept();
        log::info!(target: deskhook::LOG_TARGET, "endpoint '{name}' paused");
        Ok(())
    }

    /// Sends to `name` again after a [`pause`](Endpoints::pause), a 410 or an open breaker;
    /// its events waiting for a retry (or for a `Retry-After`) go at once, rather than at
    /// the time their schedule said.
    ///
    /// With a spool, after a 410, returns once what the endpoint had queued is moved to the
    /// dead letters (in steps, as for [`remove`](Endpoints::remove)): only then does it
    /// take events again.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name.
    pub fn resume(&self, name: &str) -> Result<(), Error> {
        self.on_current(name, |lane| self.engine.resume(lane))?;
        self.kept();
        Ok(())
    }

    /// Runs `act` on the endpoint `name` has now, until it acts (`true`): a lane found
    /// closing (removed, and perhaps added again meanwhile under the same name) is looked
    /// up again, so that a pause or resume reaches the endpoint of that name rather than
    /// one removed under it. [`Error::UnknownEndpoint`] once the name has no endpoint that
    /// takes it (removed, or the sink stopping).
    pub(crate) fn on_current(
        &self,
        name: &str,
        act: impl Fn(&Arc<Lane>) -> bool,
    ) -> Result<(), Error> {
        let mut lane = self.engine.registry().lane(name)?;
        loop {
            if act(&lane) {
                return Ok(());
            }
            match self.engine.registry().lane(name) {
                Ok(again) if !Arc::ptr_eq(&again, &lane) => lane = again,
                _ => return Err(self.engine.registry().unknown(name)),
            }
        }
    }

    /// The settings (without secrets), state and counters of `name`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name.
    pub fn get(&self, name: &str) -> Result<EndpointInfo, Error> {
        self.engine.route_all();
        Ok(EndpointInfo::of(&*self.engine.registry().lane(name)?))
    }

    /// Its deliveries and failures per minute over the last hour, oldest first (60 minutes,
    /// zeros where nothing happened).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEndpoint`] when no endpoint has that name.
    pub fn activity(&self, name: &str) -> Result<Vec<MinuteCount>, Error> {
        let lane = self.engine.registry().lane(name)?;
        let st = lock(&lane.state);
        Ok(st.minutes.last_hour(SystemTime::now()))
    }

    /// Every endpoint, by name. It reads each one's counters: with 100,000 endpoints it takes
    /// a few tens of milliseconds, and `emit` goes on meanwhile.
    pub fn list(&self) -> Vec<EndpointInfo> {
        self.engine.route_all();
        self.engine
            .registry()
            .all()
            .iter()
            .map(|lane| EndpointInfo::of(lane))
            .collect()
    }

    /// The names of every endpoint, in order.
    pub fn names(&self) -> Vec<String> {
        self.engine
            .registry()
            .read()
            .by_name
            .keys()
            .map(|name| name.to_string())
            .collect()
    }

    /// Whether an endpoint is named `name`: a look-up, without the "did you mean" that an
    /// unknown name's error compares with every name registered (which, for each of
    /// thousands of names not registered, would cost each a pass over thousands).
    #[cfg(any(feature = "relay", test))]
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.engine.registry().get(name).is_some()
    }

    /// How many endpoints are in each state (active, paused, disabled, breaker open), in
    /// one walk: each one's state is read under its lock, so with 100,000 endpoints it
    /// takes a few milliseconds (`emit` goes on meanwhile).
    pub fn count_by_state(&self) -> [(super::EndpointState, usize); 4] {
        self.engine.states()
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.engine.registry().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the registry equal `endpoints`: adds the new ones, updates the changed ones,
    /// removes the ones not given (as [`remove`](Endpoints::remove) does), and says what it
    /// did. For an application that keeps its endpoints in its own database: call it at start
    /// and whenever they change.
    ///
    /// Every endpoint is checked first: if one cannot work (or two share a name), nothing
    /// changes. Should one then fail to be installed (a spool that cannot record it, a sink
    /// stopping), those installed before it stay, nothing is removed, and the error says
    /// which: call it again once the cause is gone. Two calls at once take turns (each would otherwise remove what the other
    /// added); an `upsert` or a `remove` at the same time may land before or after it.
    ///
    /// # Errors
    ///
    /// What [`upsert`](Endpoints::upsert) returns for the first endpoint that cannot work;
    /// [`Error::InvalidEndpoint`] for a name given twice.
    pub fn replace_all(
        &self,
        endpoints: impl IntoIterator<Item = Endpoint>,
    ) -> Result<ReplaceReport, Error> {
        let _one = super::lock(&self.engine.replacing);
        let mut names = HashSet::new();
        let mut routes = Vec::new();
        for endpoint in endpoints {
            if !names.insert(endpoint.name.clone()) {
                return Err(Error::InvalidEndpoint {
                    name: endpoint.name,
                    message: "the name is given twice; names must be unique".to_owned(),
                });
            }
            routes.push(self.engine.route_for(endpoint)?);
        }
        self.engine.route_all();
        let mut report = ReplaceReport::default();
        let installed = routes.into_iter().try_for_each(|route| {
            let name = route.endpoint.name.clone();
            match self.engine.install(route)?.0 {
                Upserted::Added => report.added.push(name),
                Upserted::Updated => report.updated.push(name),
                Upserted::Unchanged => report.unchanged += 1,
            }
            Ok::<(), Error>(())
        });
        // Removals wait for the disk each; additions and updates are kept here, those made
        // before one that failed too.
        self.kept();
        installed?;
        for name in self.names() {
            if !names.contains(&name) && self.remove(&name).is_ok() {
                report.removed.push(name);
            }
        }
        Ok(report)
    }
}

/// "tenant 'acme'", or "no tenant", for messages.
pub(crate) fn tenant_words(tenant: Option<&str>) -> String {
    tenant.map_or_else(|| "no tenant".to_owned(), |t| format!("tenant '{t}'"))
}

/// `url`'s origin (scheme, host, port), when it parses.
fn origin_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|url| url.origin().ascii_serialization())
}
