//! Putting a checked route into the registry: a new lane, or new settings for the lane of
//! that name, with the races against removals and other installs settled under the
//! registry's write lock.

use std::sync::Arc;

use super::super::backlog::{Registration, Release};
use super::super::lane::Closing;
use super::super::{Engine, Lane, Route};
use super::Upserted;
use crate::error::Error;

/// What [`Engine::install_as`] may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Install {
    /// Add the endpoint, or change the one of that name.
    Upsert,
    /// Add it; one of that name is an error.
    New,
    /// As `Upsert`, added `paused` when new: at the sink's start when the spool kept it so,
    /// or a relay's endpoint that its bucket has paused.
    Start { paused: bool },
}

impl Engine {
    /// Puts a checked route into the registry: a new lane, or new settings for the lane of
    /// that name. Returns what it did and the lane.
    pub(crate) fn install(&self, route: Route) -> Result<(Upserted, Arc<Lane>), Error> {
        self.install_as(route, Install::Upsert)
    }

    /// [`install`](Engine::install), that may only add (`New`).
    pub(crate) fn install_as(
        &self,
        route: Route,
        mode: Install,
    ) -> Result<(Upserted, Arc<Lane>), Error> {
        let name = route.endpoint.name.clone();
        let mut route = Arc::new(route);
        loop {
            if self.stopping() {
                return Err(Error::Config(format!(
                    "endpoint '{name}' cannot be added: the sink is shut down"
                )));
            }
            // A removal of this name under way finishes first, so that the new endpoint
            // never takes what the old one let go of.
            self.registry().wait_removed(&name);
            if let Some(lane) = self.registry().get(&name) {
                if mode == Install::New {
                    return Err(Error::EndpointExists { name });
                }
                match self.update(&lane, route, None) {
                    Ok(done) => return Ok((done, lane)),
                    // Removed meanwhile: add it anew.
                    Err(back) => {
                        route = back;
                        continue;
                    }
                }
            }
            // Slow work (the spool's count of rows waiting) before the write lock.
            let rows = self.backlog().attach(&name)?;
            let waiting = rows.committed().1;
            let lane = Arc::new(Lane::new(Arc::clone(&route), rows));
            let paused = matches!(mode, Install::Start { paused: true });
            {
                let mut st = super::super::lock(&lane.state);
                if paused {
                    st.paused = true;
                    lane.update_held(&st);
                }
                // Only the queue in memory drops its oldest (a spool refuses when full).
                if self.config().overflow == deskhook::policy::OverflowPolicy::DropOldest
                    && !self.backlog().durable()
                {
                    st.schedule.track_oldest();
                }
            }
            let tenant = route.endpoint.tenant.clone();
            {
                let mut index = self.registry().write();
                if index.by_name.contains_key(name.as_str()) || self.registry().is_removing(&name) {
                    // Added (or being removed) by another thread meanwhile: look again.
                    continue;
                }
                index.by_name.insert(lane.name.clone(), lane.clone());
                index.insert_routing(&lane, tenant.as_deref());
                self.pool().set_endpoints(index.by_name.len());
                // Under the write lock, so that a pause of the new lane (which looks it up
                // first) is written after it, not overwritten by it.
                self.backlog()
                    .registered(&name, Some(Registration::of(&route, Some(paused))));
            }
            if self.stopping() {
                // Stopped while this one was added: it stops too (its events are not lost).
                self.close_lane(
                    &lane,
                    Closing::Stopping,
                    Release::Stopping("sink shut down"),
                );
            }
            self.adopt(&lane, waiting);
            log::info!(target: deskhook::LOG_TARGET, "endpoint '{name}' added ({})", route.url);
            return Ok((Upserted::Added, lane));
        }
    }

    /// New settings for an existing lane; the route comes back when the lane was removed
    /// meanwhile, or, given the settings `read` that `route` was made from, when they
    /// changed since (a read-modify-write that would undo another's change).
    pub(super) fn update(
        &self,
        lane: &Arc<Lane>,
        route: Arc<Route>,
        read: Option<&Arc<Route>>,
    ) -> Result<Upserted, Arc<Route>> {
        let after = route.endpoint.tenant.clone();
        let url = route.url.clone();
        let moved = {
            // Under the write lock, so that two updates (or an update and a removal) of the
            // same endpoint cannot both change its place in the tenant index.
            let mut index = self.registry().write();
            let current = index.by_name.get(&*lane.name);
            if !current.is_some_and(|l| Arc::ptr_eq(l, lane)) {
                return Err(route);
            }
            let old = lane.route();
            if read.is_some_and(|read| !Arc::ptr_eq(read, &old)) {
                return Err(route);
            }
            if old.endpoint.same_settings(&route.endpoint) {
                return Ok(Upserted::Unchanged);
            }
            let before = old.endpoint.tenant.clone();
            lane.set_route(route.clone());
            self.registry().retire(&old);
            if before != after {
                index.remove_routing(lane, before.as_deref());
                index.insert_routing(lane, after.as_deref());
            }
            // Under the write lock, as an add's: a removal that comes next is written
            // after it, not undone by it (the endpoint would come back at the next start).
            self.backlog()
                .registered(&lane.name, Some(Registration::of(&route, None)));
            !old.endpoint.same_receiver(&route.endpoint)
        };
        lane.route_changed();
        #[cfg(test)]
        crate::delivery::engine::tests::after_update();
        log::info!(target: deskhook::LOG_TARGET, "endpoint '{}' updated ({url})", lane.name);
        if moved {
            // Another receiver: what the old one's failures started ends (as a resume's).
            if let Some(hurried @ 1..) = self.new_receiver(lane) {
                log::info!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{}' has a new receiver; the retries of {hurried} ticket(s) go now",
                    lane.name
                );
            }
        } else {
            // A higher limit or another rate may let it go now.
            self.pool().push(lane);
        }
        Ok(Upserted::Updated)
    }
}
