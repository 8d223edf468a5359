//! The engine's registry: endpoints by name, the tenant index that routes each event, and
//! the names whose removal is under way (see the [module docs](super)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
use std::time::Instant;

use deskhook::EventType;
use smallvec::SmallVec;

use super::super::{Lane, Route, lock};
use crate::delivery::lane::LaneState;
use crate::error::Error;

/// Endpoints by name, and by tenant for routing.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(super) by_name: BTreeMap<Arc<str>, Arc<Lane>>,
    /// Endpoints without a tenant: they receive every event.
    untenanted: LaneList,
    /// The endpoints of each tenant, inline when there are at most two (the common case):
    /// routing an event then reads no list apart from the map's entry.
    by_tenant: HashMap<Arc<str>, LaneList>,
}

/// The endpoints without a tenant, or of one tenant.
type LaneList = SmallVec<[Arc<Lane>; 2]>;

/// The endpoints an event goes to: inline up to four, so that routing allocates nothing in
/// the common case.
pub(crate) type Lanes = SmallVec<[Arc<Lane>; 4]>;

impl Index {
    /// The list a lane with `tenant` lives in.
    pub(super) fn insert_routing(&mut self, lane: &Arc<Lane>, tenant: Option<&str>) {
        match tenant {
            None => push_indexed(&mut self.untenanted, lane),
            Some(tenant) => push_indexed(self.by_tenant.entry(tenant.into()).or_default(), lane),
        }
    }

    /// The endpoints an event of `tenant` and `event_type` goes to: those without a tenant
    /// and those of its tenant, that receive its type.
    fn routed<'a>(
        &'a self,
        tenant: Option<&str>,
        event_type: EventType,
    ) -> impl Iterator<Item = &'a Arc<Lane>> {
        let of_tenant = tenant
            .and_then(|t| self.by_tenant.get(t))
            .map_or(&[][..], |lanes| lanes.as_slice());
        self.untenanted
            .iter()
            .chain(of_tenant)
            .filter(move |lane| lane.subscribed(event_type))
    }

    /// The endpoints of `tenant`, in no order.
    pub(super) fn of_tenant(&self, tenant: &str) -> &[Arc<Lane>] {
        self.by_tenant
            .get(tenant)
            .map_or(&[][..], |lanes| lanes.as_slice())
    }

    pub(super) fn remove_routing(&mut self, lane: &Arc<Lane>, tenant: Option<&str>) {
        match tenant {
            None => remove_indexed(&mut self.untenanted, lane),
            Some(tenant) => {
                if let Some(list) = self.by_tenant.get_mut(tenant) {
                    remove_indexed(list, lane);
                    if list.is_empty() {
                        self.by_tenant.remove(tenant);
                    }
                }
            }
        }
    }
}

/// Appends `lane` to `list`, noting its place in it.
fn push_indexed(list: &mut LaneList, lane: &Arc<Lane>) {
    lane.index_pos.store(list.len(), Ordering::Release);
    list.push(lane.clone());
}

/// Takes `lane` out of `list` by its noted place (the last one fills the gap).
fn remove_indexed(list: &mut LaneList, lane: &Arc<Lane>) {
    let pos = lane.index_pos.load(Ordering::Acquire);
    if list.get(pos).is_some_and(|l| Arc::ptr_eq(l, lane)) {
        list.swap_remove(pos);
        if let Some(moved) = list.get(pos) {
            moved.index_pos.store(pos, Ordering::Release);
        }
    }
}

/// The engine's registry.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    index: RwLock<Index>,
    /// Names whose removal is under way (their queue being let go), and a wake-up for
    /// upserts of them waiting for it to finish.
    removing: (Mutex<HashSet<Arc<str>>>, Condvar),
    /// Held by a secret's rotation: two at once would take turns undoing each other's
    /// write (each reads again when another changed the endpoint), which under load could
    /// outlast any number of tries.
    pub(super) rotating: Mutex<()>,
    /// When the last attempt begun under settings since replaced or removed ends at the
    /// latest (their timeout after they went): a relay's wait for attempts under way is
    /// bounded by it, with the current settings' timeouts.
    retired_until: Mutex<Option<Instant>>,
}

impl Registry {
    /// Notes that attempts may still run under `route`, which is being replaced or removed:
    /// until its timeout from now at the latest.
    pub(super) fn retire(&self, route: &Route) {
        // A timeout is at most MAX_TIMEOUT (an hour), which any clock adds.
        let Some(until) = Instant::now().checked_add(route.endpoint.attempt_timeout()) else {
            return;
        };
        let mut retired = lock(&self.retired_until);
        *retired = Some(retired.map_or(until, |t| t.max(until)));
    }

    /// How long attempts begun under settings [`retire`](Self::retire)d may still run: zero
    /// once the last of their timeouts has passed.
    #[cfg(feature = "relay")]
    pub(crate) fn retired_left(&self) -> std::time::Duration {
        lock(&self.retired_until)
            .map(|until| until.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the removal of `name` as under way, or over.
    pub(super) fn removing(&self, name: &str, under_way: bool) {
        let mut removing = lock(&self.removing.0);
        if under_way {
            removing.insert(name.into());
        } else {
            removing.remove(name);
            self.removing.1.notify_all();
        }
    }

    /// Whether a removal of `name` is under way.
    pub(super) fn is_removing(&self, name: &str) -> bool {
        lock(&self.removing.0).contains(name)
    }

    /// Waits until no removal of `name` is under way.
    pub(super) fn wait_removed(&self, name: &str) {
        let mut removing = lock(&self.removing.0);
        while removing.contains(name) {
            removing = self
                .removing
                .1
                .wait(removing)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The endpoints an event of `event_type` for `tenant` goes to.
    pub(crate) fn route(&self, tenant: Option<&str>, event_type: EventType) -> Lanes {
        self.read().routed(tenant, event_type).cloned().collect()
    }

    /// How many endpoints an event of `event_type` for `tenant` goes to ([`route`]'s length,
    /// without the copy).
    ///
    /// [`route`]: Self::route
    pub(crate) fn routed_count(&self, tenant: Option<&str>, event_type: EventType) -> usize {
        self.read().routed(tenant, event_type).count()
    }

    /// The endpoint named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Lane>> {
        self.read().by_name.get(name).cloned()
    }

    /// Calls `f` with every endpoint, by name, under the read lock (no copy of the list).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<Lane>)) {
        for lane in self.read().by_name.values() {
            f(lane);
        }
    }

    /// Calls `f` with every endpoint and its state (under the lane's lock). The registry's
    /// read lock is never held while waiting for a lane's: a worker may hold that across a
    /// spool's read, and a writer (an upsert) waiting behind this reader would hold up every
    /// emit's routing meanwhile. A lane found locked is looked at after the walk, out of
    /// the read lock (it may have been removed by then).
    pub(crate) fn for_each_state(&self, mut f: impl FnMut(&Arc<Lane>, &LaneState)) {
        let mut busy = Vec::new();
        for lane in self.read().by_name.values() {
            match lane.state.try_lock() {
                Ok(st) => f(lane, &st),
                Err(TryLockError::Poisoned(p)) => f(lane, &p.into_inner()),
                Err(TryLockError::WouldBlock) => busy.push(lane.clone()),
            }
        }
        #[cfg(test)]
        crate::delivery::engine::tests::out_of_the_read_lock();
        for lane in busy {
            f(&lane, &lock(&lane.state));
        }
    }

    /// Every endpoint, by name.
    pub(crate) fn all(&self) -> Vec<Arc<Lane>> {
        self.read().by_name.values().cloned().collect()
    }

    /// How many endpoints there are.
    pub(crate) fn len(&self) -> usize {
        self.read().by_name.len()
    }

    /// The error for a name that is not registered, with the closest one. The names are
    /// compared once copied, outside the lock: with thousands of endpoints that takes a
    /// while, and an update waiting for the lock would hold up every emit meanwhile. A name
    /// longer than any endpoint can have is no one's misspelling, and not compared.
    pub(crate) fn unknown(&self, name: &str) -> Error {
        let known: Vec<Arc<str>> = if name.len() <= crate::delivery::NAME_MAX_BYTES {
            self.read().by_name.keys().cloned().collect()
        } else {
            Vec::new()
        };
        let suggestion = known
            .iter()
            .map(|known| (strsim::jaro_winkler(name, known), known))
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, known)| known.to_string());
        Error::UnknownEndpoint {
            name: name.to_owned(),
            suggestion,
        }
    }

    /// The lane named `name`, or the error naming it.
    pub(super) fn lane(&self, name: &str) -> Result<Arc<Lane>, Error> {
        self.get(name).ok_or_else(|| self.unknown(name))
    }
}
