//! The priority of the sink's own delivery threads: below the application's, and under
//! `SCHED_BATCH`, so that a worker woken by an event or an answer does not take the
//! processor from the thread that emits.
//!
//! Measured on two cores (`deskhook bench`, blocking transport, 16 workers, 100,000 events
//! flooding nginx on loopback): with the workers at the application's priority, `emit` was
//! preempted 1,000–5,000 times per 100,000 calls and its p99 was 35–58 µs (1 KiB bodies)
//! and 110–118 µs (10 KiB); with them 10 lower, 50–340 times and 7–18 µs and 13–19 µs, at
//! the same throughput. The workers then grew faster (the crate's own HTTP/1.1 in place of
//! ureq), and 16 of them at nice 10 weigh more together than one thread at 0: `emit` was
//! preempted 3,000–6,000 times per 200,000 calls of 10 KiB again, with a p99 of 26–93 µs.
//! A thread under `SCHED_BATCH` keeps its share of the processor, but when it wakes it
//! waits for the running thread's slice to end or a core to be free, where a normal one may
//! preempt: with it, 370–2,000 preemptions and a p99 of 17–24 µs, at the same throughput
//! (`benches/README.md`, *Where the CPU goes*). When the application leaves processor time
//! over, as a helpdesk waiting on its users does, the workers get all of it whatever their
//! priority.

/// The nice value the sink's delivery threads take as they start, under `SCHED_BATCH`.
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

    /// Gives the calling thread this priority (a delivery thread, as it starts): its nice
    /// value, then `SCHED_BATCH` at whatever nice value it has. The nice value is set, not
    /// added to, so that a worker started by another worker ends where the first did. A
    /// failure of either is logged at debug level and leaves the other to be set: lowering a
    /// nice value back takes a privilege, which only matters when the sink's builder ran at
    /// a lower priority than the thread that starts a worker; a sandbox may refuse a policy.
    pub(crate) fn apply(self) {
        let Some(nice) = self.nice else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            if let Err(e) =
                rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice)
            {
                log::debug!(
                    target: deskhook::LOG_TARGET,
                    "a delivery thread keeps its priority: cannot set its nice value to \
                     {nice}: {e}"
                );
            }
            // At the nice value the thread has now, which the call sets again: it cannot
            // fail as a lower value could, after the policy is changed.
            let now = current().unwrap_or(nice);
            if let Err(e) = batch(now) {
                log::debug!(
                    target: deskhook::LOG_TARGET,
                    "a delivery thread may keep its scheduling policy: setting SCHED_BATCH \
                     failed: {e}"
                );
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = nice;
    }
}

/// Puts the calling thread under `SCHED_BATCH` at nice value `nice`, its own: a thread of
/// that policy woken up never preempts the one running, and waits for the scheduler's tick
/// or a free core, keeping its fair share of the processor. thread-priority sets a normal
/// policy's nice value with it (after the policy), from a priority of 0 to 99 that its own
/// rule maps to nice values: the priority given is the one that rule maps to `nice`.
#[cfg(target_os = "linux")]
fn batch(nice: i32) -> Result<(), String> {
    use thread_priority::{set_thread_priority_and_policy, thread_native_id};
    let priority = batch_priority(nice)
        .ok_or_else(|| format!("no priority of thread-priority's maps to nice {nice}"))?;
    set_thread_priority_and_policy(thread_native_id(), priority, BATCH).map_err(|e| match e {
        thread_priority::Error::OS(code) => std::io::Error::from_raw_os_error(code).to_string(),
        e => e.to_string(),
    })
}

/// `SCHED_BATCH`, as thread-priority names it.
#[cfg(target_os = "linux")]
const BATCH: thread_priority::ThreadSchedulePolicy = thread_priority::ThreadSchedulePolicy::Normal(
    thread_priority::NormalThreadSchedulePolicy::Batch,
);

/// The priority that thread-priority maps to `nice` under `SCHED_BATCH`.
#[cfg(target_os = "linux")]
fn batch_priority(nice: i32) -> Option<thread_priority::ThreadPriority> {
    (0..=99u8)
        .filter_map(|p| thread_priority::ThreadPriority::try_from(p).ok())
        .find(|p| p.to_posix(BATCH).ok() == Some(nice))
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
        let policy_before = thread_priority::thread_schedule_policy().unwrap();
        // A thread started by a thread that has the priority already ends at the same value.
        let (seen, policy) = std::thread::spawn(move || {
            priority.apply();
            std::thread::spawn(move || {
                priority.apply();
                (
                    current(),
                    thread_priority::thread_schedule_policy().unwrap(),
                )
            })
            .join()
            .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, Some((base + 4).min(i32::from(NICE_MAX))));
        assert_eq!(policy, BATCH, "the delivery thread is under SCHED_BATCH");
        assert_eq!(current(), Some(base), "the calling thread is left alone");
        assert_eq!(
            thread_priority::thread_schedule_policy().unwrap(),
            policy_before,
            "the calling thread keeps its policy"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn no_increment_leaves_the_thread_alone() {
        let (nice, policy) = std::thread::spawn(|| {
            Priority::below_caller(0).apply();
            (
                current(),
                thread_priority::thread_schedule_policy().unwrap(),
            )
        })
        .join()
        .unwrap();
        // As a thread started here has them (the test may run under any policy).
        assert_eq!(
            (nice, policy),
            (
                current(),
                thread_priority::thread_schedule_policy().unwrap()
            )
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn every_nice_value_has_a_batch_priority() {
        for nice in -20..=i32::from(NICE_MAX) {
            assert!(batch_priority(nice).is_some(), "nice {nice}");
        }
    }
}
