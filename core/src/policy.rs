//! Delivery policy: the retry schedule, how an attempt's outcome is classified, what a full
//! queue does, and the circuit breaker's settings.
//!
//! These are plain values, shared by every transport so that blocking, async and relayed
//! delivery behave alike.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a duration such as `200ms`, `5s`, `5m`, `2h`, `1h 30m`, `7d` (24-hour days) or `0`.
///
/// # Errors
///
/// A message that names the input and shows the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let trimmed = s.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let parsed: jiff::SignedDuration = match trimmed.parse() {
        Ok(parsed) => parsed,
        // Days and weeks (`7d`, `2w`) are read as 24 hours and 7 days; months and years,
        // whose length depends on the date, are not.
        Err(_) => trimmed
            .parse::<jiff::Span>()
            .ok()
            .and_then(|span| {
                span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .ok()
            })
            .ok_or_else(|| {
                format!(
                    "invalid duration '{s}' (write it like 200ms, 5s, 5m, 2h, 1h 30m or 7d; \
                     not in months or years)"
                )
            })?,
    };
    let parsed = Duration::try_from(parsed)
        .map_err(|_| format!("invalid duration '{s}': it must not be negative"))?;
    if parsed > MAX_DURATION {
        return Err(format!(
            "invalid duration '{s}': longer than {} (100 years), the longest deskhook takes",
            format_duration(MAX_DURATION)
        ));
    }
    Ok(parsed)
}

/// The longest duration [`parse_duration`] takes: 100 years of 24-hour days. A setting
/// longer than that is a slip, and what is written of it would not read back.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// Writes a duration the way [`parse_duration`] reads it: `0s`, `200ms`, `5s`, `5m`, `2h`,
/// `30d`; `500us` or `1500ns` when it is not a whole number of milliseconds, so that what
/// is written reads back the same (up to [`MAX_DURATION`]; past it, days are written as
/// hours, which the duration's parser reads however many there are).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let sub_ms = d.subsec_nanos() % 1_000_000;
    if sub_ms != 0 {
        let ns = d.as_nanos();
        if sub_ms.is_multiple_of(1_000) {
            format!("{}us", ns / 1_000)
        } else {
            format!("{ns}ns")
        }
    } else if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(86_400_000) && d <= MAX_DURATION {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// Deserializes a [`Duration`] from a string such as `"5s"` (for configuration files).
///
/// # Errors
///
/// As [`parse_duration`]; a number (`timeout = 5`) is refused with the string to write
/// instead (`"5s"`), any other value with the form a duration takes.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationText)
}

/// What [`deserialize_duration`] takes: a string, said so with its unit when a number
/// comes instead (the unit is what a number leaves unsaid).
struct DurationText;

impl DurationText {
    fn number<E: serde::de::Error>(n: impl fmt::Display) -> E {
        E::custom(format!(
            "a duration is text with its unit: write \"{n}s\" for {n} seconds, or \"{n}ms\" \
             for milliseconds"
        ))
    }
}

impl serde::de::Visitor<'_> for DurationText {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"5s\" or \"500ms\"")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
        parse_duration(s).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
        Err(Self::number(n))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
        Err(Self::number(n))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
        Err(Self::number(n))
    }
}

/// When each attempt is made: the delay before attempt 1, 2, 3, … Its length is the number
/// of attempts; after the last one fails, the event goes to the dead letters.
///
/// Every delay but a zero one gets ±`jitter` (20% by default), so that many events that
/// failed together do not retry together.
///
/// ```
/// use std::time::Duration;
/// use deskhook::policy::RetrySchedule;
///
/// let schedule: RetrySchedule = "0s,200ms,1s".parse().unwrap();
/// assert_eq!(schedule.attempts(), 3);
/// assert_eq!(schedule.delay_before(2), Some(Duration::from_millis(200)));
/// assert_eq!(schedule.delay_before(4), None);
/// assert_eq!(RetrySchedule::default().to_string(), "0s,5s,5m,30m,2h,5h,10h,10h");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl RetrySchedule {
    /// The most attempts a schedule may have (enough to try every minute for 16 hours): more
    /// would let one event, or an admin's typo, send an endpoint tens of thousands of
    /// requests, and hold as many delays in memory for every endpoint given it.
    pub const MAX_ATTEMPTS: u32 = 1000;

    /// The default: immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
    /// (8 attempts over about 27 hours), with ±20% jitter.
    pub fn standard() -> RetrySchedule {
        let s = |secs| Duration::from_secs(secs);
        RetrySchedule {
            delays: vec![
                s(0),
                s(5),
                s(300),
                s(1800),
                s(7200),
                s(18000),
                s(36000),
                s(36000),
            ],
            jitter: 0.2,
        }
    }

    /// A schedule of these delays before attempts 1, 2, …, with ±20% jitter.
    ///
    /// # Errors
    ///
    /// An empty list (there must be at least one attempt), or more than
    /// [`RetrySchedule::MAX_ATTEMPTS`] delays.
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Result<RetrySchedule, String> {
        let delays: Vec<Duration> = delays.into_iter().collect();
        if delays.is_empty() {
            return Err(
                "a retry schedule needs at least one delay (write 0s for a single \
                        immediate attempt)"
                    .into(),
            );
        }
        if delays.len() > Self::MAX_ATTEMPTS as usize {
            return Err(format!(
                "a retry schedule has at most {} attempts, and this one has {} (space the \
                 attempts out instead: the default makes 8 over about 27 hours)",
                Self::MAX_ATTEMPTS,
                delays.len()
            ));
        }
        Ok(RetrySchedule {
            delays,
            jitter: 0.2,
        })
    }

    /// This schedule with another jitter, a fraction between 0 and 1 (0 for none).
    /// Defaults to 0.2.
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> RetrySchedule {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How many attempts there are in all.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// The delays, without jitter. The first is the delay before attempt 1; the transports
    /// of this crate family require it to be zero (the first attempt is made at once).
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The delay before attempt `attempt` (1-based), without jitter; `None` past the last.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }

    /// The delay before attempt `attempt` with jitter applied: `unit` is a random number in
    /// `[0, 1)`, which maps to a factor between `1 - jitter` and `1 + jitter`.
    pub fn jittered_delay_before(&self, attempt: u32, unit: f64) -> Option<Duration> {
        let delay = self.delay_before(attempt)?;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = (1.0 + self.jitter * (2.0 * unit - 1.0)).max(0.0);
        Some(Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::standard()
    }
}

impl fmt::Display for RetrySchedule {
    /// The delays separated by commas, as [`FromStr`] reads them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.delays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&format_duration(*d))?;
        }
        Ok(())
    }
}

impl FromStr for RetrySchedule {
    type Err = String;

    /// Parses delays separated by commas: `0s,5s,5m`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let delays = s
            .split(',')
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()?;
        RetrySchedule::new(delays)
    }
}

impl<'de> Deserialize<'de> for RetrySchedule {
    /// Accepts `"0s,5s,5m"` or `["0s", "5s", "5m"]`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScheduleVisitor;
        impl<'de> serde::de::Visitor<'de> for ScheduleVisitor {
            type Value = RetrySchedule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("delays such as \"0s,5s,5m\" or [\"0s\", \"5s\", \"5m\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RetrySchedule, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RetrySchedule, A::Error> {
                let mut delays = Vec::new();
                while let Some(text) = seq.next_element::<String>()? {
                    delays.push(parse_duration(&text).map_err(serde::de::Error::custom)?);
                }
                RetrySchedule::new(delays).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(ScheduleVisitor)
    }
}

/// What to do after one attempt, from its HTTP status or transport error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 408, 425, 429, 5xx, a timeout or a connection error: try again per the schedule.
    Retry,
    /// 410 Gone: the receiver asks to stop; the endpoint is disabled.
    Disable,
    /// 3xx (redirects are never followed) and the other 4xx: give up at once; the event goes
    /// to the dead letters.
    Fail,
}

impl Verdict {
    /// Classifies an HTTP status code.
    pub fn of_status(status: u16) -> Verdict {
        match status {
            200..=299 => Verdict::Delivered,
            410 => Verdict::Disable,
            408 | 425 | 429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Fail,
        }
    }

    /// Whether a `Retry-After` header is honoured with this status (429 and 503).
    pub fn honours_retry_after(status: u16) -> bool {
        matches!(status, 429 | 503)
    }
}

/// What `emit` does when an endpoint's queue is full.
///
/// In `deskhook.toml` (`overflow = …` in `[delivery]`): `"drop-newest"`, `"drop-oldest"`,
/// `"block"` (waits [`DEFAULT_BLOCK_TIMEOUT`], 100 ms) or `{ block = "250ms" }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Wait up to `timeout` for room, then drop the new event. The caller of `emit` waits:
    /// choose it only where back-pressure on the helpdesk is wanted.
    Block {
        /// How long `emit` may wait.
        timeout: Duration,
    },
    /// Drop the new event. The default: `emit` never waits.
    #[default]
    DropNewest,
    /// Drop the oldest queued event to make room for the new one. (The delivery engine
    /// finds it with a heap of each ticket's first event, kept for endpoints of a sink with
    /// this policy only: a push per event, a pop or two per drop.)
    DropOldest,
}

/// How long `"block"` written without a timeout lets `emit` wait.
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_millis(100);

impl<'de> Deserialize<'de> for OverflowPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str =
            "\"drop-newest\", \"drop-oldest\", \"block\" or { block = \"250ms\" }";
        struct PolicyVisitor;
        impl<'de> serde::de::Visitor<'de> for PolicyVisitor {
            type Value = OverflowPolicy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OverflowPolicy, E> {
                match v {
                    "drop-newest" => Ok(OverflowPolicy::DropNewest),
                    "drop-oldest" => Ok(OverflowPolicy::DropOldest),
                    "block" => Ok(OverflowPolicy::Block {
                        timeout: DEFAULT_BLOCK_TIMEOUT,
                    }),
                    other => Err(E::custom(format!(
                        "unknown overflow policy '{other}' (write {EXPECTED})"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OverflowPolicy, A::Error> {
                use serde::de::Error as _;
                let Some(key) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(format!(
                        "an empty table (write {EXPECTED})"
                    )));
                };
                if key != "block" {
                    return Err(A::Error::custom(format!(
                        "unknown key '{key}' in the overflow policy (write {EXPECTED})"
                    )));
                }
                let timeout: String = map.next_value()?;
                let timeout = parse_duration(&timeout).map_err(A::Error::custom)?;
                if let Some(key) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "unexpected key '{key}': the overflow policy takes only block"
                    )));
                }
                Ok(OverflowPolicy::Block { timeout })
            }
        }
        deserializer.deserialize_any(PolicyVisitor)
    }
}

impl fmt::Display for OverflowPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverflowPolicy::Block { timeout } => write!(f, "block ({})", format_duration(*timeout)),
            OverflowPolicy::DropNewest => f.write_str("drop-newest"),
            OverflowPolicy::DropOldest => f.write_str("drop-oldest"),
        }
    }
}

/// Circuit breaker settings: after `failures` failed attempts in a row, an endpoint is paused
/// for `cool_down`, then one probe decides whether it resumes.
///
/// In `deskhook.toml`: `breaker = { failures = 10, cool_down = "30s" }` in `[delivery]`; a
/// key left out keeps its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that open the breaker; 0 turns the breaker off.
    pub failures: u32,
    /// How long an open breaker pauses the endpoint before one probe is sent.
    #[serde(deserialize_with = "deserialize_duration")]
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    /// 10 failures in a row, 30 s cool-down.
    fn default() -> Self {
        BreakerPolicy {
            failures: 10,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration(" 0 ").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("5 parsecs").unwrap_err(),
            "invalid duration '5 parsecs' (write it like 200ms, 5s, 5m, 2h, 1h 30m or 7d; not \
             in months or years)"
        );
        // Days and weeks are 24 hours and 7 days; months depend on the date.
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_duration("1w 12h").unwrap(),
            Duration::from_secs(7 * 86_400 + 43_200)
        );
        assert!(parse_duration("1mo").unwrap_err().contains("not in months"));
        assert!(
            parse_duration("-5s")
                .unwrap_err()
                .contains("must not be negative")
        );
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(36 * 3_600)), "36h");
        // What is written reads back the same, below a millisecond too.
        for d in [
            Duration::from_micros(500),
            Duration::from_micros(1500),
            Duration::from_nanos(1_000_000_001),
            Duration::from_nanos(7),
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::from_secs(14 * 86_400),
        ] {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{d:?} written as {text}");
        }
        assert_eq!(format_duration(Duration::from_micros(500)), "500us");
        // 100 years at most: longer is refused, not taken and then written as text that
        // does not read back.
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        assert!(
            parse_duration("175307640h")
                .unwrap_err()
                .contains("longer than 36500d (100 years)")
        );
        assert_eq!(
            format_duration(Duration::from_secs(7_304_485 * 86_400)),
            "175307640h"
        );
    }

    #[test]
    fn the_standard_schedule() {
        let s = RetrySchedule::standard();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.delay_before(1), Some(Duration::ZERO));
        assert_eq!(s.delay_before(3), Some(Duration::from_secs(300)));
        assert_eq!(s.delay_before(8), Some(Duration::from_secs(36000)));
        assert_eq!(s.delay_before(9), None);
        assert_eq!(s.delay_before(0), None);
        let back: RetrySchedule = s.to_string().parse().unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let s = RetrySchedule::standard();
        assert_eq!(
            s.jittered_delay_before(2, 0.0),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            s.jittered_delay_before(2, 1.0),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            s.jittered_delay_before(2, 0.5),
            Some(Duration::from_secs(5))
        );
        assert_eq!(s.jittered_delay_before(1, 0.9), Some(Duration::ZERO));
        let none = s.clone().with_jitter(0.0);
        assert_eq!(
            none.jittered_delay_before(2, 0.9),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn schedules_parse_from_text_and_lists() {
        let s: RetrySchedule = serde_json::from_str(r#"["0s", "10ms"]"#).unwrap();
        assert_eq!(s.delays(), [Duration::ZERO, Duration::from_millis(10)]);
        let s: RetrySchedule = serde_json::from_str(r#""0s,10ms""#).unwrap();
        assert_eq!(s.attempts(), 2);
        assert!("".parse::<RetrySchedule>().is_err());
        assert!(RetrySchedule::new([]).is_err());
    }

    #[test]
    fn schedules_have_at_most_a_thousand_attempts() {
        let thousand = vec!["1m"; 1000].join(",");
        assert_eq!(thousand.parse::<RetrySchedule>().unwrap().attempts(), 1000);
        let err = format!("{thousand},1m")
            .parse::<RetrySchedule>()
            .unwrap_err();
        assert_eq!(
            err,
            "a retry schedule has at most 1000 attempts, and this one has 1001 (space the \
             attempts out instead: the default makes 8 over about 27 hours)"
        );
        let listed = serde_json::to_string(&vec!["0s"; 1001]).unwrap();
        assert!(serde_json::from_str::<RetrySchedule>(&listed).is_err());
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(Verdict::of_status(200), Verdict::Delivered);
        assert_eq!(Verdict::of_status(204), Verdict::Delivered);
        assert_eq!(Verdict::of_status(301), Verdict::Fail);
        assert_eq!(Verdict::of_status(400), Verdict::Fail);
        assert_eq!(Verdict::of_status(404), Verdict::Fail);
        assert_eq!(Verdict::of_status(408), Verdict::Retry);
        assert_eq!(Verdict::of_status(410), Verdict::Disable);
        assert_eq!(Verdict::of_status(425), Verdict::Retry);
        assert_eq!(Verdict::of_status(429), Verdict::Retry);
        assert_eq!(Verdict::of_status(500), Verdict::Retry);
        assert_eq!(Verdict::of_status(503), Verdict::Retry);
        assert!(Verdict::honours_retry_after(429));
        assert!(Verdict::honours_retry_after(503));
        assert!(!Verdict::honours_retry_after(500));
    }
}
