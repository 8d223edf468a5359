//! Text from outside (a ticket code, a receiver's answer, a header) as a log line or a
//! terminal shows it, and warnings said at most once a minute: shared with the
//! workspace's crates (which depend on this exact version); not part of the API.

/// Whether `c` is escaped where text from outside is shown (a log line, a terminal): a
/// control character, which could end the line or drive the terminal, the line and
/// paragraph separators (U+2028, U+2029), which some log viewers break lines at, or a
/// bidirectional embedding, override or isolate, which would reorder the rest of the line.
/// Shared with the workspace's crates; not part of the API.
#[doc(hidden)]
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || crate::tenant::is_bidi_format(c)
}

/// Text from an event (a ticket code, a type) as a log line shows it: at most 64 characters,
/// then `…`, what [`needs_escape`] escaped, so that a long or hostile value can neither fill
/// the log nor forge a line of its own. Shared with the workspace's crates (which depend on
/// this exact version); not part of the API.
#[doc(hidden)]
pub fn shown_in_log(text: &str) -> String {
    let cut = text
        .char_indices()
        .nth(crate::error::QUOTED_CHARS)
        .map_or(text, |(end, _)| &text[..end]);
    let mut out = escaped(cut);
    if cut.len() < text.len() {
        out.push('…');
    }
    out
}

/// `text` with what [`needs_escape`] names escaped: quoted in a message, it stays one line,
/// in order.
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A warning said at most once a minute, with how many times it came since: for what a
/// stranger can make happen at will (a wrong token, a request for another host), which must
/// not flood the log. Shared with the workspace's crates; not part of the API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Seldom {
    count: std::sync::atomic::AtomicU64,
    /// When it was last said, in seconds on the monotonic clock from the first `Seldom`
    /// reading of the process, plus one (0: never). Not the wall clock, which a clock set
    /// back would make silent until it caught up.
    said_at: std::sync::atomic::AtomicU64,
}

impl Seldom {
    /// None counted yet.
    pub const fn new() -> Seldom {
        Seldom {
            count: std::sync::atomic::AtomicU64::new(0),
            said_at: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts one more; when a minute has gone by since it was last said, how many came
    /// since (this one among them), to say now. A few atomic operations and a clock read.
    pub fn due(&self) -> Option<u64> {
        static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(std::time::Instant::now);
        self.due_at(base.elapsed().as_secs().saturating_add(1))
    }

    /// [`due`](Seldom::due) at `now` (seconds, as `said_at` counts them).
    fn due_at(&self, now: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        self.count.fetch_add(1, Relaxed);
        let last = self.said_at.load(Relaxed);
        ((last == 0 || now >= last.saturating_add(60))
            && self
                .said_at
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok())
        .then(|| self.count.swap(0, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seldom_warning_is_due_once_a_minute_with_the_count_since() {
        let seldom = Seldom::new();
        assert_eq!(seldom.due(), Some(1));
        assert_eq!((seldom.due(), seldom.due()), (None, None));
        // A minute later.
        let said = seldom.said_at.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(seldom.due_at(said + 59), None);
        assert_eq!(seldom.due_at(said + 60), Some(4));
        assert_eq!(seldom.due_at(said + 61), None);
        // The first is said whenever it comes, the process's first second included.
        assert_eq!(Seldom::new().due_at(1), Some(1));
    }

    #[test]
    fn text_of_an_event_is_shown_in_a_log_clipped_and_on_one_line() {
        assert_eq!(shown_in_log("E3XK"), "E3XK");
        assert_eq!(
            shown_in_log("X\n[WARN deskhook] forged"),
            "X\\n[WARN deskhook] forged"
        );
        let long = "Щ".repeat(100);
        assert_eq!(shown_in_log(&long), format!("{}…", "Щ".repeat(64)));
        // An override that would show the rest of the line reversed; right-to-left text
        // and its marks stay as they are.
        assert_eq!(shown_in_log("a\u{202E}gpj.exe"), "a\\u{202e}gpj.exe");
        assert_eq!(shown_in_log("שלום\u{200F}"), "שלום\u{200F}");
    }
}
