//! `deskhook bench --backlog N`: the flood in a steady state. The emitting loop waits
//! between `emit` calls while N deliveries are unsettled, so the queue stays bounded and its
//! memory is reused, as in a helpdesk whose delivery keeps up.

use std::time::{Duration, Instant};

/// `--backlog`: keeps the deliveries emitted but not yet settled under a bound, by sleeping
/// between `emit` calls (never inside one).
#[derive(Debug)]
pub(super) struct Pace {
    /// At most this many unsettled deliveries before the loop waits.
    backlog: u64,
    /// Deliveries the events emitted so far make.
    pub(super) emitted: u64,
    /// Sleeps taken (each a voluntary context switch of the emitting thread).
    pub(super) sleeps: u64,
    /// Nothing settled for `stall`: pacing is off for the rest of the run.
    pub(super) stalled: bool,
    /// How long a wait goes on with nothing settling before pacing gives up.
    stall: Duration,
}

/// How long the pacing waits for a delivery to settle before it gives up pacing.
const STALL: Duration = Duration::from_secs(1);

/// The pacing's sleep: short against the time the workers take to settle half the backlog.
const PACE_SLEEP: Duration = Duration::from_micros(200);

impl Pace {
    /// Pacing for `--backlog backlog`, nothing emitted yet.
    pub(super) fn new(backlog: u64) -> Pace {
        Pace {
            backlog,
            emitted: 0,
            sleeps: 0,
            stalled: false,
            stall: STALL,
        }
    }

    /// Returns at once while fewer than `backlog` deliveries are unsettled; else sleeps until
    /// no more than half of it are, or until nothing has settled for `stall`.
    pub(super) fn wait(&mut self, settled: impl Fn() -> u64) {
        if self.stalled || self.emitted.saturating_sub(settled()) < self.backlog {
            return;
        }
        let mut last = settled();
        let mut since = Instant::now();
        while self.emitted.saturating_sub(last) > self.backlog / 2 {
            std::thread::sleep(PACE_SLEEP);
            self.sleeps += 1;
            let now = settled();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= self.stall {
                self.stalled = true;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn pacing_waits_until_half_the_backlog_is_settled() {
        let settled = AtomicU64::new(0);
        let mut pace = Pace::new(8);
        pace.emitted = 7;
        pace.wait(|| settled.load(Ordering::Relaxed));
        assert_eq!(pace.sleeps, 0, "under the backlog: no wait");
        pace.emitted = 8;
        let at_return = std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..4 {
                    std::thread::sleep(Duration::from_millis(1));
                    settled.fetch_add(1, Ordering::Relaxed);
                }
            });
            pace.wait(|| settled.load(Ordering::Relaxed));
            settled.load(Ordering::Relaxed)
        });
        // Returned once 8 − 4 = 4 (half the backlog) were unsettled, not before.
        assert_eq!(at_return, 4);
        assert!(pace.sleeps > 0 && !pace.stalled, "{pace:?}");
    }

    #[test]
    fn pacing_gives_up_when_nothing_settles() {
        let mut pace = Pace::new(2);
        pace.stall = Duration::from_millis(5);
        pace.emitted = 10;
        pace.wait(|| 0);
        assert!(pace.stalled, "{pace:?}");
        let sleeps = pace.sleeps;
        pace.emitted = 20;
        pace.wait(|| 0);
        assert_eq!(pace.sleeps, sleeps, "no more waiting once stalled");
    }
}
