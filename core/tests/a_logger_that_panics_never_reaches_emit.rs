//! A logger that panics (a poisoned lock of its own, say) is other people's code: an emit
//! whose event is dropped, or whose sink fails, logs through it and still returns, the
//! event counted. Its own test binary: it installs the process's logger.

use std::panic::{AssertUnwindSafe, catch_unwind};

use deskhook::sink::sink_fn;
use deskhook::{Action, Dispatcher, Error, sample};

/// Panics at every record.
struct Panics;

impl log::Log for Panics {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, _: &log::Record<'_>) {
        panic!("a logger that panics")
    }

    fn flush(&self) {}
}

static PANICS: Panics = Panics;

#[test]
fn an_emit_through_a_logger_that_panics_returns_and_counts() {
    log::set_logger(&PANICS).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Trace);
    let dispatcher = Dispatcher::builder()
        .sink("failing", sink_fn(|_| Err(Error::sink("refused"))))
        .build();
    let (ticket, user) = (sample::ticket(), sample::user());
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        // An empty tenant: the event is dropped, and that is logged.
        dispatcher
            .for_tenant("")
            .emit(Action::Create, &ticket, &user);
        // The sink fails: that is logged too.
        dispatcher.emit(Action::Create, &ticket, &user);
    }));
    assert!(emitted.is_ok(), "emit panicked");
    let stats = dispatcher.stats();
    assert_eq!((stats.dropped, stats.sinks[0].failed), (1, 1));
}
