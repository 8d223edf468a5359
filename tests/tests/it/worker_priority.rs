//! The sink's own delivery threads run `worker_nice` below the thread that built the sink,
//! under `SCHED_BATCH`, read back from `/proc` (Linux): the blocking transport's workers and
//! the async sink's own runtime thread.

#![cfg(target_os = "linux")]

use deskhook_tests::dead_letter_file;
use deskhook_transports::delivery::DeliveryConfig;
use deskhook_transports::http_async::AsyncHttpSink;
use deskhook_transports::http_blocking::HttpSink;

/// The field `n` (from 1) of a `/proc/…/stat` line, counted past the name's `)`.
fn field_of(stat: &str, n: usize) -> Option<i32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(n - 3)?.parse().ok()
}

/// The nice value in a `/proc/…/stat` line: the 19th field.
fn nice_of(stat: &str) -> Option<i32> {
    field_of(stat, 19)
}

/// `SCHED_BATCH`, as the 41st field of a `/proc/…/stat` line shows it.
const SCHED_BATCH: i32 = 3;

/// The nice values and scheduling policies of this process's threads named `name` (as
/// `comm` shows it: 15 bytes).
fn nice_of_threads(name: &str) -> Vec<(i32, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name
            && let Ok(stat) = std::fs::read_to_string(task.path().join("stat"))
            && let (Some(nice), Some(policy)) = (nice_of(&stat), field_of(&stat, 41))
        {
            found.push((nice, policy));
        }
    }
    found
}

/// The nice values and policies of the threads named `name`, once one has `nice` under
/// `SCHED_BATCH` (a thread sets its own as it starts) or after 20 s (a niced thread is the
/// first a busy machine starves).
fn wait_for_thread(name: &str, nice: i32) -> Vec<(i32, i32)> {
    let mut found = nice_of_threads(name);
    for _ in 0..2000 {
        if found.contains(&(nice, SCHED_BATCH)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        found = nice_of_threads(name);
    }
    found
}

#[test]
fn delivery_threads_run_below_the_builder() {
    let base = nice_of(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()).unwrap();
    let (_dir, dead) = dead_letter_file();
    let config = |nice: u8| {
        let mut config = DeliveryConfig::default();
        config.dead_letter_path = dead.clone();
        config.worker_nice = nice;
        config
    };
    // 7 and 3: the other tests of this binary build their sinks with the default, 10.
    let (_blocking, blocking_guard) = HttpSink::builder().config(config(7)).build().unwrap();
    let (_async_sink, async_guard) = AsyncHttpSink::builder()
        .config(config(3))
        .build_async()
        .unwrap();
    let workers = wait_for_thread("deskhook-http", (base + 7).min(19));
    let runtime = wait_for_thread("deskhook-http-a", (base + 3).min(19));
    blocking_guard
        .shutdown(std::time::Duration::from_secs(20))
        .unwrap();
    async_guard
        .shutdown(std::time::Duration::from_secs(20))
        .unwrap();
    assert!(
        workers.contains(&((base + 7).min(19), SCHED_BATCH)),
        "no blocking worker at nice {} under SCHED_BATCH (builder at {base}): {workers:?}",
        base + 7
    );
    assert!(
        runtime.contains(&((base + 3).min(19), SCHED_BATCH)),
        "no async runtime thread at nice {} under SCHED_BATCH (builder at {base}): \
         {runtime:?}",
        base + 3
    );
    assert_eq!(
        nice_of(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()),
        Some(base),
        "the builder's own thread is left as it was"
    );
}

#[test]
fn the_stat_line_is_read_past_a_name_with_spaces_and_parentheses() {
    let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 5 3 0 100 1000 200";
    assert_eq!(nice_of(line), Some(5));
    let line = format!("{line} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 3 0");
    assert_eq!(field_of(&line, 41), Some(3));
}
