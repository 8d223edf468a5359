//! deskhook's warnings and errors, kept for a test binary's tests to read: a process has one
//! logger, so the tests of a binary share this one, each looking only at the records that
//! name what it made (its ticket, its server's URL, its partition).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The records kept (their text), in order.
#[derive(Debug)]
pub struct Logs(Mutex<Vec<String>>);

impl log::Log for Logs {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == deskhook::LOG_TARGET && metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGS: Logs = Logs(Mutex::new(Vec::new()));

/// The process's logger, installed by the first call: deskhook's records at `warn` and
/// `error`.
///
/// # Panics
///
/// When another logger was installed in the process.
pub fn logs() -> &'static Logs {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGS).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
    &LOGS
}

impl Logs {
    /// The records that contain `needle`.
    pub fn with(&self, needle: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits until a record contains `needle`, 30 s at most; returns it.
    ///
    /// # Panics
    ///
    /// When none does by then.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = self.with(needle).pop() {
                return found;
            }
            assert!(Instant::now() < deadline, "no record with {needle:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
