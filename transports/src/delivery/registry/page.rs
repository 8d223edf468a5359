//! A page of the registry's endpoints: search, filters and a name cursor, reading only the
//! page's counters (what the console's endpoints table and the admin API's list show).

use std::sync::Arc;

use super::{EndpointInfo, Endpoints};
use crate::delivery::{EndpointState, Lane, lock};

/// Which endpoints an [`Endpoints::page`] lists. Build it with `..EndpointQuery::new()` for
/// the fields left open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointQuery {
    /// Only endpoints whose name, tenant or URL's origin contains this text (ignoring case).
    pub search: Option<String>,
    /// Only this tenant's endpoints.
    pub tenant: Option<String>,
    /// Only endpoints in this state.
    pub state: Option<EndpointState>,
    /// Only endpoints named after this one (the `next` of the previous page).
    pub after: Option<String>,
    /// At most this many (1 to 1,000; 50 when 0).
    pub limit: usize,
}

impl EndpointQuery {
    /// Every endpoint, 50 at a time.
    pub fn new() -> EndpointQuery {
        EndpointQuery::default()
    }

    /// The page size asked for, within 1 to 1,000.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 50,
            n => n.min(crate::delivery::MAX_PAGE),
        }
    }
}

/// A page of endpoints by name, and where the next one starts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EndpointPage {
    /// The endpoints of the page.
    pub items: Vec<EndpointInfo>,
    /// How many endpoints match from this page on (this page's included).
    pub remaining: usize,
    /// Pass it as [`EndpointQuery::after`] for the next page; `None` on the last.
    pub next: Option<String>,
}

impl Endpoints {
    /// A page of endpoints, by name, that match `query` (a search, a tenant, a state), and
    /// how many match in all. Only the page's endpoints have their counters read, so a page
    /// of 50 out of 100,000 endpoints costs a walk of the names, not 100,000 percentiles; a
    /// tenant's page, a walk of that tenant's endpoints (unless it has over a quarter of
    /// them all).
    pub fn page(&self, query: &EndpointQuery) -> EndpointPage {
        self.engine.route_all();
        use std::ops::Bound;
        let limit = query.page_size();
        let needle = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        // Read without the lane's lock.
        let keeps = |lane: &Lane| {
            let route = lane.route();
            let tenant = route.endpoint.tenant.as_deref();
            query.tenant.as_deref().is_none_or(|t| tenant == Some(t))
                && needle.as_deref().is_none_or(|needle| {
                    contains_folded(&route.endpoint.name, needle)
                        || contains_folded(&route.url, needle)
                        || tenant.is_some_and(|t| contains_folded(t, needle))
                })
        };
        let (lanes, total, next) = {
            let index = self.engine.registry().read();
            let start = match query.after.as_deref() {
                Some(after) => Bound::Excluded(after),
                None => Bound::Unbounded,
            };
            // A tenant's page walks that tenant's endpoints (a few), sorted, not every name;
            // a tenant with a good share of them all, the names in order.
            let few = |tenant: &str| index.of_tenant(tenant).len() * 4 <= index.by_name.len();
            let candidates: Box<dyn Iterator<Item = &Arc<Lane>>> = match query.tenant.as_deref() {
                Some(tenant) if few(tenant) => {
                    let mut of: Vec<&Arc<Lane>> = index
                        .of_tenant(tenant)
                        .iter()
                        .filter(|lane| query.after.as_deref().is_none_or(|a| &*lane.name > a))
                        .collect();
                    of.sort_unstable_by(|a, b| a.name.cmp(&b.name));
                    Box::new(of.into_iter())
                }
                _ => Box::new(
                    index
                        .by_name
                        .range::<str, _>((start, Bound::Unbounded))
                        .map(|(_, lane)| lane),
                ),
            };
            match query.state {
                None => paged(candidates.filter(|lane| keeps(lane)), limit),
                // A lane's state is read under its lock, which a worker may hold across a
                // spool's read: not while the registry's read lock is held (an upsert
                // waiting behind it would hold up every emit's routing). The candidates
                // are copied out first.
                Some(state) => {
                    let candidates: Vec<Arc<Lane>> =
                        candidates.filter(|lane| keeps(lane)).cloned().collect();
                    drop(index);
                    #[cfg(test)]
                    crate::delivery::engine::tests::out_of_the_read_lock();
                    let in_state = |lane: &&Arc<Lane>| lock(&lane.state).public_state() == state;
                    paged(candidates.iter().filter(in_state), limit)
                }
            }
        };
        EndpointPage {
            items: lanes.iter().map(|lane| EndpointInfo::of(lane)).collect(),
            remaining: total,
            next,
        }
    }
}

/// The first `limit` of `lanes` (in order), how many there are in all, and the name a next
/// page starts after (when there are more).
fn paged<'a>(
    lanes: impl Iterator<Item = &'a Arc<Lane>>,
    limit: usize,
) -> (Vec<Arc<Lane>>, usize, Option<String>) {
    let mut total = 0;
    let mut page = Vec::with_capacity(limit);
    let mut next = None;
    for lane in lanes {
        total += 1;
        if page.len() < limit {
            page.push(lane.clone());
        } else if next.is_none() {
            next = page
                .last()
                .map(|l: &Arc<Lane>| l.route().endpoint.name.clone());
        }
    }
    (page, total, next)
}

/// Whether `haystack` contains `needle` (already lower case), ignoring ASCII and Unicode case.
fn contains_folded(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let Some(&first) = needle.as_bytes().first() else {
            return true;
        };
        // Compare a window only where its first byte matches: most do not.
        haystack.as_bytes().windows(needle.len()).any(|w| {
            w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(needle.as_bytes())
        })
    } else {
        haystack.to_lowercase().contains(needle)
    }
}
