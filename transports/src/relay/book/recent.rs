//! The memory of the events a relay acknowledged lately, and of those whose acknowledgement
//! the server never confirmed: a message handed out again after a lost acknowledgement is
//! known, and its events are not delivered after their tickets' later ones. A data structure
//! with no lock and no I/O: the book holds it under its lock.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// How many acknowledged events a relay remembers, and how many of those of unconfirmed
/// acknowledgements besides (see [`Book::pin`](super::Book::pin)).
pub(super) const RECENT: usize = 65_536;

/// The ids of the last [`RECENT`] events acknowledged, and of the last [`RECENT`] whose
/// acknowledgement the server never confirmed (pinned: see [`Book::pin`](super::Book::pin)).
#[derive(Default)]
pub(super) struct Recent {
    order: VecDeque<Arc<str>>,
    ids: HashSet<Arc<str>>,
    pinned_order: VecDeque<Arc<str>>,
    pinned: HashSet<Arc<str>>,
}

impl Recent {
    /// Remembers `id`, acknowledged.
    pub(super) fn insert(&mut self, id: Arc<str>) {
        remember(&mut self.ids, &mut self.order, id);
    }

    /// Remembers `id`, whose acknowledgement the server never confirmed.
    pub(super) fn pin(&mut self, id: Arc<str>) {
        remember(&mut self.pinned, &mut self.pinned_order, id);
    }

    /// Whether `id` is remembered, either way.
    pub(super) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id) || self.pinned.contains(id)
    }
}

/// Adds `id` to `ids`, forgetting the oldest beyond [`RECENT`].
fn remember(ids: &mut HashSet<Arc<str>>, order: &mut VecDeque<Arc<str>>, id: Arc<str>) {
    if ids.insert(id.clone()) {
        order.push_back(id);
        if order.len() > RECENT
            && let Some(old) = order.pop_front()
        {
            ids.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_are_forgotten_past_recent_and_pinned_ids_are_kept_apart() {
        let mut recent = Recent::default();
        recent.pin(Arc::from("pinned"));
        for n in 0..=RECENT {
            recent.insert(Arc::from(n.to_string()));
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
}
