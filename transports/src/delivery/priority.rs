//! The priority of the sink's own delivery threads: below the application's, so that a
//! worker woken by an event does not take the processor from the thread that emitted it.
//!
//! Measured on two cores (`deskhook bench`, blocking transport, 16 workers, 100,000 events
//! flooding nginx on loopback): with the workers at the application's priority, `emit` was
//! preempted 1,000–5,000 times per 100,000 calls and its p99 was 35–58 µs (1 KiB bodies)
//! and 110–118 µs (10 KiB); with them 10 lower, 50–340 times and 7–18 µs and 13–19 µs, at
//! the same throughput. When the application leaves processor time over, as a helpdesk
//! waiting on its users does, the workers get all of it whatever their priority.

/// The nice value the sink's delivery threads take as they start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Priority {
    /// `None`: left as the thread has it.
    nice: Option<i32>,
}

/// The highest nice value (the lowest priority), and so the largest `worker_nice`.
pub(crate) const NICE_MAX: u8 = 19;

impl Priority {
    /// `increment` below the calling thread (the one building the sink), as
    /// [`DeliveryConfig::worker_nice`](super::DeliveryConfig::worker_nice) gives it.
    pub(crate) fn below_caller(increment: u8) -> Priority {
        Priority {
            nice: Self::target(current(), increment),
        }
    }

    /// The nice value `increment` below `base`, or none to leave the threads alone.
    fn target(base: Option<i32>, increment: u8) -> Option<i32> {
        if increment == 0 {
            return None;
        }
        base.map(|base| (base + i32::from(increment)).min(i32::from(NICE_MAX)))
    }

    /// Gives the calling thread this priority (a delivery thread, as it starts). The nice
    /// value is set, not added to, so that a worker started by another worker ends where
    /// the first did. A failure changes nothing and is logged at debug level: lowering a
    /// nice value back takes a privilege, which only matters when the sink's builder ran at
    /// a lower priority than the thread that starts a worker.
    pub(crate) fn apply(self) {
        let Some(nice) = self.nice else {
            return;
        };
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
            log::debug!(
                target: deskhook::LOG_TARGET,
                "a delivery thread keeps its priority: cannot set its nice value to {nice}: {e}"
            );
        }
        #[cfg(not(target_os = "linux"))]
        let _ = nice;
    }
}

/// The calling thread's nice value, where a thread has one of its own (Linux).
fn current() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_the_base_plus_the_increment_at_most_19() {
        assert_eq!(Priority::target(Some(0), 10), Some(10));
        assert_eq!(Priority::target(Some(-5), 10), Some(5));
        assert_eq!(Priority::target(Some(15), 10), Some(19));
        assert_eq!(Priority::target(Some(3), 0), None);
        assert_eq!(Priority::target(None, 10), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_takes_its_nice_value_from_the_builder_not_from_its_starter() {
        let priority = Priority::below_caller(4);
        let base = current().unwrap();
        // A thread started by a thread that has the priority already ends at the same value.
        let seen = std::thread::spawn(move || {
            priority.apply();
            std::thread::spawn(move || {
                priority.apply();
                current()
            })
            .join()
            .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, Some((base + 4).min(i32::from(NICE_MAX))));
        assert_eq!(current(), Some(base), "the calling thread is left alone");
    }
}
