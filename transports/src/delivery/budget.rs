//! The sink-wide memory budget for queued events (`max_queued_bytes`).
//!
//! Every event held in memory is charged once for its body (shared by all its endpoints) and
//! each of its jobs for the job's own bookkeeping ([`JOB_OVERHEAD`]); the charges are
//! released when the last job lets go of them (the [`Charge`] guards are dropped), so the
//! count follows what is really held, whatever path a job leaves by. It does no I/O and
//! takes a lock only for a caller that asked to wait for room. A relay's events are charged
//! the same, but without a check: the relay's room, which reserved just that, bounds them
//! (so that a batch message bigger than the whole budget, which the room lets past it, is
//! taken too).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What one queued job costs beyond its body: the job, its place in its ticket's queue and
/// the ticket's entry, rounded up.
pub(crate) const JOB_OVERHEAD: usize = 256;

/// Bytes held by queued events, against a limit.
#[derive(Debug)]
pub(crate) struct Budget {
    max: usize,
    used: AtomicUsize,
    /// Callers waiting for room (the block overflow policy); releases wake them only when
    /// there are some.
    waiting: AtomicUsize,
    room: (Mutex<()>, Condvar),
}

/// Bytes charged to a [`Budget`]; released when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        if self.budget.waiting.load(Ordering::Acquire) > 0 {
            let _guard = self.budget.room.0.lock().unwrap_or_else(|p| p.into_inner());
            self.budget.room.1.notify_all();
        }
    }
}

impl Charge {
    /// Charges this charge's budget for more, so that it covers `bytes` in all, if they fit;
    /// `false` (and unchanged) when they do not.
    pub(crate) fn grow_to(&mut self, bytes: usize) -> bool {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|more| *more > 0) else {
            return true;
        };
        let added = self.budget.try_add(more);
        if added {
            self.bytes += more;
        }
        added
    }
}

impl Budget {
    /// A budget of `max` bytes.
    pub(crate) fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: (Mutex::new(()), Condvar::new()),
        })
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Whether `bytes` more would fit now.
    #[cfg(test)]
    pub(crate) fn fits(&self, bytes: usize) -> bool {
        self.used().saturating_add(bytes) <= self.max
    }

    /// Charges `bytes` if they fit; `None` when the budget is spent.
    pub(crate) fn try_charge(self: &Arc<Self>, bytes: usize) -> Option<Charge> {
        self.try_add(bytes).then(|| Charge {
            budget: self.clone(),
            bytes,
        })
    }

    /// Counts `bytes` more as used if they fit (the caller's charge then holds them).
    fn try_add(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(bytes).filter(|n| *n <= self.max) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Charges `bytes` whether they fit or not: for memory another bound already holds (a
    /// relay's events, which its book lets in only as room frees).
    #[cfg(feature = "relay")]
    pub(crate) fn charge_forced(self: &Arc<Self>, bytes: usize) -> Charge {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        Charge {
            budget: self.clone(),
            bytes,
        }
    }

    /// Charges `bytes`, waiting up to `timeout` for room.
    pub(crate) fn charge_within(
        self: &Arc<Self>,
        bytes: usize,
        timeout: Duration,
    ) -> Option<Charge> {
        if let Some(charge) = self.try_charge(bytes) {
            return Some(charge);
        }
        if bytes > self.max || timeout.is_zero() {
            return None;
        }
        let deadline = super::decide::later(Instant::now(), timeout);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let mut guard = self.room.0.lock().unwrap_or_else(|p| p.into_inner());
        let charge = loop {
            if let Some(charge) = self.try_charge(bytes) {
                break Some(charge);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            guard = self
                .room
                .1
                .wait_timeout(guard, left.min(Duration::from_millis(50)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(guard);
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        charge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_released_when_dropped() {
        let budget = Budget::new(1000);
        let a = budget.try_charge(600).unwrap();
        assert!(budget.try_charge(500).is_none(), "over the limit");
        let b = budget.try_charge(400).unwrap();
        assert_eq!(budget.used(), 1000);
        drop(a);
        assert_eq!(budget.used(), 400);
        assert!(budget.fits(600) && !budget.fits(601));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_charge_grows_while_it_fits_and_releases_all_it_holds() {
        let budget = Budget::new(1000);
        let mut held = budget.try_charge(300).unwrap();
        assert!(held.grow_to(800));
        assert_eq!(budget.used(), 800);
        assert!(held.grow_to(500), "already covered");
        assert!(!held.grow_to(1001), "over the limit");
        assert_eq!(budget.used(), 800, "unchanged when it does not fit");
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_waiting_charge_gets_room_when_some_is_released() {
        let budget = Budget::new(100);
        let held = budget.try_charge(100).unwrap();
        assert!(budget.charge_within(10, Duration::from_millis(1)).is_none());
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.charge_within(50, Duration::from_secs(10)).is_some())
        };
        while budget.waiting.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        drop(held);
        assert!(waiter.join().unwrap());
        assert_eq!(
            budget.used(),
            0,
            "the waiter's charge was dropped with its thread's result"
        );
        assert!(
            budget.charge_within(101, Duration::from_secs(10)).is_none(),
            "never fits"
        );
    }
}
