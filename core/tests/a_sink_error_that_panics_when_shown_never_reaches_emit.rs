//! A sink's error whose `Display` panics, or a panic whose payload panics when dropped, is
//! the sink's failure: logged and counted, never a panic in the caller of `emit`. Its own
//! test binary: it installs the process's logger, which formats every record.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use deskhook::sink::sink_fn;
use deskhook::{Action, Dispatcher, Error, sample};

#[derive(Debug)]
struct ShownWithAPanic;

impl fmt::Display for ShownWithAPanic {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("a Display that panics")
    }
}

impl std::error::Error for ShownWithAPanic {}

struct DroppedWithAPanic;

impl Drop for DroppedWithAPanic {
    fn drop(&mut self) {
        panic!("a payload that panics when dropped")
    }
}

/// Formats every record, as a real logger does.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static LINES: Lines = Lines(Mutex::new(Vec::new()));

#[test]
fn the_caller_of_emit_sees_no_panic_and_the_failure_is_counted() {
    log::set_logger(&LINES).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Trace);
    let dispatcher = Dispatcher::builder()
        .sink("shown", sink_fn(|_| Err(Error::sink(ShownWithAPanic))))
        .sink(
            "dropped",
            sink_fn(|_| std::panic::panic_any(DroppedWithAPanic)),
        )
        .build();
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        dispatcher.emit(Action::Create, &sample::ticket(), &sample::user());
    }));
    assert!(emitted.is_ok(), "emit panicked");
    let stats = dispatcher.stats();
    assert_eq!(
        stats.sinks.iter().map(|s| s.failed).collect::<Vec<_>>(),
        [1, 1]
    );
    let lines = LINES.0.lock().unwrap().clone();
    for sink in ["shown", "dropped"] {
        assert!(
            lines.iter().any(|l| l.starts_with("ERROR event ")
                && l.contains(&format!(
                    "not taken: sink '{sink}' failed, and its error panicked as it was shown"
                ))),
            "{lines:#?}"
        );
    }
}
