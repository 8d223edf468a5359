//! Per-endpoint rate limits: a token bucket, refilled continuously, with a burst.
//!
//! The bucket is plain data with no clock of its own: the engine passes `now`, so the
//! arithmetic is tested with made-up instants. Waiting for a token holds no worker: the
//! engine parks the endpoint until the instant [`TokenBucket::check`] gives.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::decide::later;

/// At most `count` requests per `per`, with bursts of up to `burst` (by default `count`).
///
/// Parsed from text such as `"50/s"`, `"300/m"`, `"1000/h"` or `"5/10s"` (the TOML form of
/// `rate_limit`).
///
/// ```
/// use std::time::Duration;
/// use deskhook_transports::delivery::RateLimit;
///
/// let limit: RateLimit = "50/s".parse()?;
/// assert_eq!(limit, RateLimit::new(50, Duration::from_secs(1))?);
/// assert_eq!(limit.burst(), 50);
/// assert_eq!(limit.with_burst(100)?.burst(), 100);
/// # Ok::<(), deskhook_transports::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    count: u32,
    per: Duration,
    burst: u32,
}

impl RateLimit {
    /// `count` requests per `per`, with a burst of `count`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when `count` or `per` is zero.
    pub fn new(count: u32, per: Duration) -> Result<RateLimit, crate::Error> {
        if count == 0 || per.is_zero() {
            return Err(crate::Error::Config(format!(
                "a rate limit of {count} per {} lets nothing through; give at least 1 request \
                 per a non-zero time, such as \"50/s\"",
                deskhook::policy::format_duration(per)
            )));
        }
        Ok(RateLimit {
            count,
            per,
            burst: count,
        })
    }

    /// This limit with bursts of up to `burst` requests after a quiet spell.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when `burst` is zero.
    pub fn with_burst(mut self, burst: u32) -> Result<RateLimit, crate::Error> {
        if burst == 0 {
            return Err(crate::Error::Config(
                "a rate burst of 0 lets nothing through; give at least 1".to_owned(),
            ));
        }
        self.burst = burst;
        Ok(self)
    }

    /// Requests per [`per`](RateLimit::per).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period of [`count`](RateLimit::count).
    pub fn per(&self) -> Duration {
        self.per
    }

    /// The most requests sent at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one token takes to come back.
    fn interval(&self) -> Duration {
        self.per / self.count
    }
}

impl fmt::Display for RateLimit {
    /// `50/s`, `5/10s`: the form [`FromStr`] reads (the burst is not part of it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = deskhook::policy::format_duration(self.per);
        // `1s`, `1m` and `1h` as `s`, `m` and `h`: the short forms FromStr reads (not `d` or
        // `ms`, which it reads as `1d` and `1ms`).
        let per = per
            .strip_prefix('1')
            .filter(|unit| matches!(*unit, "s" | "m" | "h"));
        match per {
            Some(unit) => write!(f, "{}/{unit}", self.count),
            None => write!(
                f,
                "{}/{}",
                self.count,
                deskhook::policy::format_duration(self.per)
            ),
        }
    }
}

impl FromStr for RateLimit {
    type Err = crate::Error;

    /// Reads `COUNT/PERIOD`: `50/s`, `300/m`, `1000/h`, `5/10s`, `20/500ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            crate::Error::Config(format!(
                "invalid rate limit '{s}': {why} (write it like \"50/s\", \"300/m\" or \"5/10s\")"
            ))
        };
        let (count, per) = s.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| bad("the count is not a whole number"))?;
        let per = per.trim();
        let per = match per {
            "s" | "sec" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => deskhook::policy::parse_duration(other).map_err(|_| bad("unknown period"))?,
        };
        RateLimit::new(count, per).map_err(|_| bad("it lets nothing through"))
    }
}

/// The tokens of one endpoint's [`RateLimit`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    /// Tokens available at `at`, in units of a millionth of a token.
    micros: u64,
    at: Instant,
}

const ONE: u64 = 1_000_000;

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn full(limit: &RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            micros: u64::from(limit.burst) * ONE,
            at: now,
        }
    }

    /// The bucket of a limit changed from `old` to `new` at `now`: the tokens it holds
    /// carried over, as many as the new burst holds at most (a change of the limit is no
    /// new burst: edited again and again, it would let through a burst at each edit).
    pub(crate) fn changed(&self, old: &RateLimit, new: &RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            micros: self
                .refilled(old, now)
                .min(u64::from(new.burst).saturating_mul(ONE)),
            at: now,
        }
    }

    /// The bucket refilled up to `now`.
    fn refilled(&self, limit: &RateLimit, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.at);
        let interval = limit.interval().as_nanos().max(1);
        let gained = elapsed.as_nanos().saturating_mul(u128::from(ONE)) / interval;
        let cap = u64::from(limit.burst) * ONE;
        u64::try_from(gained)
            .unwrap_or(u64::MAX)
            .saturating_add(self.micros)
            .min(cap)
    }

    /// Whether a token is there at `now`; if not, when the next one comes.
    pub(crate) fn check(&self, limit: &RateLimit, now: Instant) -> Result<(), Instant> {
        let micros = self.refilled(limit, now);
        if micros >= ONE {
            return Ok(());
        }
        let missing = u128::from(ONE - micros);
        let nanos = (limit.interval().as_nanos() * missing).div_ceil(u128::from(ONE));
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Err(later(now, wait))
    }

    /// Takes a token at `now` (after [`check`](TokenBucket::check) said there is one).
    pub(crate) fn take(&mut self, limit: &RateLimit, now: Instant) {
        self.micros = self.refilled(limit, now).saturating_sub(ONE);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_and_print() {
        for (text, count, per) in [
            ("50/s", 50, Duration::from_secs(1)),
            ("300/m", 300, Duration::from_secs(60)),
            ("1000/h", 1000, Duration::from_secs(3600)),
            ("5/10s", 5, Duration::from_secs(10)),
            (" 20 / 500ms ", 20, Duration::from_millis(500)),
        ] {
            let limit: RateLimit = text.parse().unwrap();
            assert_eq!(
                (limit.count(), limit.per(), limit.burst()),
                (count, per, count)
            );
        }
        assert_eq!("50/s".parse::<RateLimit>().unwrap().to_string(), "50/s");
        assert_eq!("5/10s".parse::<RateLimit>().unwrap().to_string(), "5/10s");
        assert_eq!("3/m".parse::<RateLimit>().unwrap().to_string(), "3/m");
        // A period of one day or one millisecond keeps its 1: `5/d` would not read back.
        for text in ["5/1d", "20/1ms"] {
            let limit: RateLimit = text.parse().unwrap();
            assert_eq!(limit.to_string(), text);
            assert_eq!(limit.to_string().parse::<RateLimit>().unwrap(), limit);
        }
        for (bad, why) in [
            ("50", "no '/'"),
            ("x/s", "not a whole number"),
            ("5/fortnight", "unknown period"),
            ("0/s", "lets nothing through"),
            ("5/0s", "lets nothing through"),
        ] {
            let text = bad.parse::<RateLimit>().unwrap_err().to_string();
            assert!(
                text.contains(why) && text.contains("\"50/s\""),
                "{bad}: {text}"
            );
        }
        assert!(
            RateLimit::new(1, Duration::from_secs(1))
                .unwrap()
                .with_burst(0)
                .is_err()
        );
    }

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_interval() {
        let limit = RateLimit::new(10, Duration::from_secs(1))
            .unwrap()
            .with_burst(3)
            .unwrap();
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(&limit, t0);
        for _ in 0..3 {
            assert!(bucket.check(&limit, t0).is_ok());
            bucket.take(&limit, t0);
        }
        let next = bucket.check(&limit, t0).unwrap_err();
        assert_eq!(
            next - t0,
            Duration::from_millis(100),
            "one token per 100 ms"
        );
        assert!(
            bucket
                .check(&limit, t0 + Duration::from_millis(99))
                .is_err()
        );
        let t1 = t0 + Duration::from_millis(100);
        assert!(bucket.check(&limit, t1).is_ok());
        bucket.take(&limit, t1);
        // A long quiet spell refills up to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.check(&limit, t2).is_ok());
            bucket.take(&limit, t2);
        }
        assert!(bucket.check(&limit, t2).is_err());
    }

    /// A changed limit keeps the tokens left, at most its new burst: an operator editing
    /// it (or switching to another and back) gives no new burst.
    #[test]
    fn a_changed_limit_keeps_the_tokens_left() {
        let now = Instant::now();
        let hourly: RateLimit = "100/h".parse().unwrap();
        let mut bucket = TokenBucket::full(&hourly, now);
        for _ in 0..100 {
            bucket.check(&hourly, now).unwrap();
            bucket.take(&hourly, now);
        }
        let smaller = hourly.with_burst(50).unwrap();
        let spent = bucket.changed(&hourly, &smaller, now);
        assert!(spent.check(&smaller, now).is_err(), "spent stays spent");
        let other: RateLimit = "101/h".parse().unwrap();
        let back = spent
            .changed(&smaller, &other, now)
            .changed(&other, &hourly, now);
        assert!(back.check(&hourly, now).is_err(), "and after two changes");
        // A full bucket keeps at most the new burst.
        let full = TokenBucket::full(&hourly, now).changed(&hourly, &smaller, now);
        assert_eq!(full.micros, 50 * ONE);
    }
}
