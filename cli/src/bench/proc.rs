//! What the run reads of its own process from /proc (Linux): peak and current memory,
//! threads, CPU time, and the emitting thread's context switches. Each is `None` where there
//! is no /proc, and the report says null.

use std::time::Duration;

/// A number field of /proc/self/status (`VmHWM:`, `VmRSS:`, `Threads:`), `None` where there
/// is no /proc.
pub(super) fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The peak resident set size in KiB, from `VmHWM` in /proc/self/status.
pub(super) fn rss_max_kb() -> Option<u64> {
    proc_status("VmHWM:")
}

/// The context switches of the calling thread so far: (voluntary, involuntary), from
/// /proc/thread-self/status. A voluntary one is a wait (a lock, a channel, I/O); an
/// involuntary one is the scheduler giving the core to another thread. `None` where there is
/// no /proc.
pub(super) fn thread_switches() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let count = |field: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))?
            .trim()
            .parse()
            .ok()
    };
    Some((
        count("voluntary_ctxt_switches:")?,
        count("nonvoluntary_ctxt_switches:")?,
    ))
}

/// The CPU time the process has used, every thread, as (user, system): fields 14 and 15 of
/// /proc/self/stat, in clock ticks of 1/100 s (USER_HZ, 100 on Linux whatever the kernel's
/// own tick). `None` where there is no /proc.
pub(super) fn cpu_time() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((
        Duration::from_millis(user * 10),
        Duration::from_millis(system * 10),
    ))
}

/// The CPU time (user + system) the calling thread has run so far, in nanoseconds: the first
/// field of /proc/thread-self/schedstat. `None` where there is no /proc.
pub(super) fn thread_cpu() -> Option<Duration> {
    // The kernel adds a running thread's time at a tick or a switch: a yield brings it up to
    // now (200 emits run in less than a tick, and read 0 without it).
    std::thread::yield_now();
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
