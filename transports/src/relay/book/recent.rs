//! The memory of the events a relay acknowledged lately, and of those whose acknowledgement
//! the server never confirmed: a message handed out again after a lost acknowledgement is
//! known, and its events are not delivered after their tickets' later ones. A data structure
//! with no lock and no I/O: the book holds it under its lock.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many acknowledged events a relay remembers whatever their age, and how many of those
/// of unconfirmed acknowledgements besides (see [`Book::pin`](super::Book::pin)).
pub(super) const RECENT: usize = 65_536;

/// The most acknowledged events remembered however young: past it, the oldest go (about
/// 100 MiB of ids; 17 000 events a second for a minute).
pub(super) const MOST_RECENT: usize = 16 * RECENT;

/// The ids of the events acknowledged in the last `keep` (at least the last [`RECENT`], at
/// most [`MOST_RECENT`]), and of the last [`RECENT`] whose acknowledgement the server never
/// confirmed (pinned: see [`Book::pin`](super::Book::pin)).
pub(super) struct Recent {
    /// How long an acknowledged id is kept: a message whose acknowledgement was lost comes
    /// back within `ack_wait` (at once after a reconnect), so twice that.
    keep: Duration,
    /// [`RECENT`] and [`MOST_RECENT`] (smaller in tests).
    least: usize,
    most: usize,
    order: VecDeque<(Arc<str>, Instant)>,
    ids: HashSet<Arc<str>>,
    pinned_order: VecDeque<Arc<str>>,
    pinned: HashSet<Arc<str>>,
}

impl Recent {
    /// Remembering acknowledged ids for `keep`.
    pub(super) fn new(keep: Duration) -> Recent {
        Recent::bounded(keep, RECENT, MOST_RECENT)
    }

    fn bounded(keep: Duration, least: usize, most: usize) -> Recent {
        Recent {
            keep,
            least,
            most,
            order: VecDeque::new(),
            ids: HashSet::new(),
            pinned_order: VecDeque::new(),
            pinned: HashSet::new(),
        }
    }

    /// Remembers `id`, acknowledged at `now`; forgets the oldest acknowledged past
    /// [`RECENT`] that are older than `keep` (or past [`MOST_RECENT`], whatever their age).
    pub(super) fn insert(&mut self, id: Arc<str>, now: Instant) {
        if !self.ids.insert(id.clone()) {
            return;
        }
        self.order.push_back((id, now));
        while self.order.len() > self.least
            && let Some((old, at)) = self.order.front()
        {
            let young = now.saturating_duration_since(*at) < self.keep;
            if young && self.order.len() <= self.most {
                break;
            }
            self.ids.remove(old);
            self.order.pop_front();
        }
    }

    /// Remembers `id`, whose acknowledgement the server never confirmed.
    pub(super) fn pin(&mut self, id: Arc<str>) {
        if self.pinned.insert(id.clone()) {
            self.pinned_order.push_back(id);
            if self.pinned_order.len() > RECENT
                && let Some(old) = self.pinned_order.pop_front()
            {
                self.pinned.remove(&old);
            }
        }
    }

    /// Whether `id` is remembered, either way.
    pub(super) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id) || self.pinned.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_are_forgotten_past_recent_and_pinned_ids_are_kept_apart() {
        let mut recent = Recent::new(Duration::ZERO);
        let now = Instant::now();
        recent.pin(Arc::from("pinned"));
        for n in 0..=RECENT {
            recent.insert(Arc::from(n.to_string()), now);
        }
        assert!(
            !recent.contains("0"),
            "the oldest acknowledged id is forgotten"
        );
        assert!(recent.contains("1") && recent.contains(&RECENT.to_string()));
        assert!(
            recent.contains("pinned"),
            "acknowledgements do not push out pinned ids"
        );
        assert_eq!(recent.order.len(), RECENT);
    }

    #[test]
    fn ids_younger_than_keep_are_remembered_past_recent_up_to_most_recent() {
        let keep = Duration::from_secs(60);
        let (least, most) = (100, 1000);
        let mut recent = Recent::bounded(keep, least, most);
        let start = Instant::now();
        // A relay acknowledging faster than `least` events per `keep`: all are kept.
        for n in 0..2 * least {
            recent.insert(Arc::from(n.to_string()), start);
        }
        assert!(recent.contains("0"), "younger than keep");
        // Once older than keep, they go as the next come.
        let later = start + keep;
        recent.insert(Arc::from("next"), later);
        assert!(!recent.contains("0"));
        assert_eq!(recent.order.len(), least);
        // However young, no more than `most` are kept.
        for n in 0..most {
            recent.insert(Arc::from(format!("burst-{n}")), later);
        }
        assert_eq!(recent.order.len(), most);
        assert!(!recent.contains("next") && recent.contains("burst-0"));
    }
}
