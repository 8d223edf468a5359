//! `deskhook bench --endpoints N [--tenants T]`: many endpoints on one receiver, events
//! spread over them (through tenants), and the checks and readings that go with it: order
//! per endpoint and ticket, threads and memory.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use deskhook_transports::delivery::{AttemptOutcome, AttemptRecord, Endpoint};

/// How the run's events map onto its endpoints.
#[derive(Debug)]
pub(super) struct Fleet {
    /// Endpoints (N), each named `e<i>`, posting to the URL with `e<i>` appended to its path.
    pub(super) endpoints: usize,
    /// Tenants (T): endpoint `i` belongs to tenant `t<i mod T>`, event `n` to tenant
    /// `t<n mod T>`. `None`: one endpoint without a tenant, as a plain run.
    tenants: Option<Vec<String>>,
}

impl Fleet {
    /// The plain run: one endpoint named `bench` at the URL as given.
    pub(super) fn single() -> Fleet {
        Fleet {
            endpoints: 1,
            tenants: None,
        }
    }

    /// `endpoints` endpoints over `tenants` tenants (by default one tenant per endpoint, so
    /// each event goes to one endpoint, in turn).
    pub(super) fn new(endpoints: usize, tenants: Option<usize>) -> Fleet {
        let count = tenants.unwrap_or(endpoints).clamp(1, endpoints.max(1));
        Fleet {
            endpoints,
            tenants: Some((0..count).map(|t| format!("t{t}")).collect()),
        }
    }

    /// The endpoints, made by `make(name, url)` for each.
    pub(super) fn build(
        &self,
        url: &str,
        make: impl Fn(&str, &str) -> Result<Endpoint, String>,
    ) -> Result<Vec<Endpoint>, String> {
        let Some(tenants) = &self.tenants else {
            return Ok(vec![make("bench", url)?]);
        };
        let parsed = url::Url::parse(url).map_err(|e| format!("--url: {e}"))?;
        (0..self.endpoints)
            .map(|i| {
                let mut target = parsed.clone();
                let path = target.path().to_owned();
                let sep = if path.ends_with('/') { "" } else { "/" };
                target.set_path(&format!("{path}{sep}e{i}"));
                let endpoint = make(&format!("e{i}"), target.as_str())?;
                Ok(endpoint.tenant(&tenants[i % tenants.len()]))
            })
            .collect()
    }

    /// The tenant of event `n` (from 1), if the run has tenants.
    pub(super) fn tenant_of(&self, n: u64) -> Option<&str> {
        let tenants = self.tenants.as_ref()?;
        let index = usize::try_from((n - 1) % tenants.len() as u64).unwrap_or(0);
        Some(&tenants[index])
    }

    /// Tenants in the run (0 for the plain run).
    pub(super) fn tenant_count(&self) -> usize {
        self.tenants.as_ref().map_or(0, Vec::len)
    }

    /// Deliveries `events` events make: each goes to every endpoint of its tenant.
    pub(super) fn deliveries(&self, events: u64) -> u64 {
        let Some(tenants) = &self.tenants else {
            return events;
        };
        let t = tenants.len() as u64;
        let per_tenant = |k: u64| self.endpoints_of_tenant(k, t);
        let rounds = events / t;
        let whole: u64 = (0..t).map(per_tenant).sum::<u64>() * rounds;
        let rest: u64 = (0..events % t).map(per_tenant).sum();
        whole + rest
    }

    /// Deliveries event `n` (from 1) makes alone: the endpoints of its tenant.
    pub(super) fn deliveries_of(&self, n: u64) -> u64 {
        match &self.tenants {
            Some(tenants) => {
                let t = tenants.len() as u64;
                self.endpoints_of_tenant((n - 1) % t, t)
            }
            None => 1,
        }
    }

    /// Endpoints of tenant `k` of `t`: n/t, one more for k < n mod t (events go round the
    /// tenants).
    fn endpoints_of_tenant(&self, k: u64, t: u64) -> u64 {
        let n = self.endpoints as u64;
        n / t + u64::from(k < n % t)
    }
}

/// Checks that each endpoint gets each ticket's events in the order they were emitted: the
/// `X-Deskhook-Sequence` of its deliveries only goes up.
///
/// The observer only appends (a hash of the endpoint and ticket, the sequence) to one list,
/// in the order the deliveries were seen; the list is checked after the run. Looking each
/// pair up in a map as deliveries came cost the delivery thread a cache miss per delivery
/// with 10,000 endpoints (1.3% of the run's samples, against 0.7% with one endpoint), which
/// the measured figures then showed as deskhook's. The key is a 64-bit FNV-1a hash of
/// (endpoint, ticket), used as it is by the map; two pairs sharing a hash among the run's
/// few hundred thousand is a chance of about one in 10^9.
#[derive(Debug, Default)]
pub(super) struct OrderCheck {
    seen: Mutex<Vec<(u64, u64)>>,
    /// Deliveries settled for good (delivered or dead-lettered), for --backlog.
    settled: AtomicU64,
}

/// A hasher for keys that are hashes already: it keeps the `u64` it is given.
#[derive(Debug, Default)]
pub(super) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a over `parts`, each followed by a 0xff byte (which UTF-8 text never holds).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(&[0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

impl OrderCheck {
    /// Records one attempt (a delivered one; the others say nothing of order).
    pub(super) fn see(&self, record: &AttemptRecord<'_>) {
        if record.outcome != AttemptOutcome::Retrying {
            self.settled.fetch_add(1, Ordering::Relaxed);
        }
        if record.outcome != AttemptOutcome::Delivered {
            return;
        }
        let key = fnv1a(&[record.endpoint, record.ticket]);
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key, record.sequence));
    }

    /// Deliveries settled so far: delivered, or dead-lettered after their last attempt.
    pub(super) fn settled(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Deliveries that came before an earlier event of their ticket, among those recorded
    /// so far (call it once the run is over: it goes through all of them).
    pub(super) fn violations(&self) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut last: HashMap<u64, u64, BuildHasherDefault<Prehashed>> =
            HashMap::with_capacity_and_hasher(seen.len().min(1 << 20), Default::default());
        let mut violations = 0;
        for &(key, sequence) in seen.iter() {
            let before = last.entry(key).or_insert(0);
            if sequence <= *before {
                violations += 1;
            }
            *before = sequence;
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str, url: &str) -> Result<Endpoint, String> {
        Endpoint::new(name, url).map_err(|e| e.to_string())
    }

    #[test]
    fn order_keys_tell_endpoint_and_ticket_apart() {
        assert_ne!(fnv1a(&["e1", "B1"]), fnv1a(&["e1B", "1"]));
        assert_ne!(fnv1a(&["e1", "B1"]), fnv1a(&["e1", "B2"]));
        assert_eq!(fnv1a(&["e1", "B1"]), fnv1a(&["e1", "B1"]));
        let mut hasher = Prehashed::default();
        hasher.write_u64(42);
        assert_eq!(hasher.finish(), 42);
    }

    #[test]
    fn endpoints_get_their_number_in_the_path_and_a_tenant() {
        let fleet = Fleet::new(5, Some(2));
        let endpoints = fleet.build("http://127.0.0.1:8080/", ok).unwrap();
        let shown: Vec<(String, String, Option<String>)> = endpoints
            .iter()
            .map(|e| {
                (
                    e.name().to_owned(),
                    e.url().path().to_owned(),
                    e.tenant_name().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(shown[0], ("e0".into(), "/e0".into(), Some("t0".into())));
        assert_eq!(shown[3], ("e3".into(), "/e3".into(), Some("t1".into())));
        let under = Fleet::new(1, None)
            .build("http://127.0.0.1:8080/hook", ok)
            .unwrap();
        assert_eq!(under[0].url().path(), "/hook/e0");
        let single = Fleet::single()
            .build("http://127.0.0.1:8080/x", ok)
            .unwrap();
        assert_eq!((single[0].name(), single[0].url().path()), ("bench", "/x"));
        assert_eq!(single[0].tenant_name(), None);
    }

    #[test]
    fn deliveries_count_each_tenants_endpoints() {
        // 5 endpoints over 2 tenants: t0 has 3 (e0, e2, e4), t1 has 2.
        let fleet = Fleet::new(5, Some(2));
        assert_eq!(fleet.tenant_of(1), Some("t0"));
        assert_eq!(fleet.tenant_of(2), Some("t1"));
        assert_eq!(fleet.deliveries(1), 3);
        assert_eq!(fleet.deliveries(2), 5);
        assert_eq!(fleet.deliveries(5), 3 + 2 + 3 + 2 + 3);
        let one_by_one: Vec<u64> = (1..=5).map(|n| fleet.deliveries_of(n)).collect();
        assert_eq!(one_by_one, [3, 2, 3, 2, 3]);
        // One tenant per endpoint: one delivery per event.
        assert_eq!(Fleet::new(1000, None).deliveries(12_345), 12_345);
        assert_eq!(Fleet::single().deliveries(7), 7);
        assert_eq!(Fleet::single().tenant_of(1), None);
        assert_eq!(Fleet::single().deliveries_of(7), 1);
    }
}
