//! What an attempt's outcome means, decided by pure functions: the retry/give-up/disable
//! decision, the circuit breaker, and the jitter of retry delays.
//!
//! Nothing here locks, sleeps or does I/O; the engine calls [`decide`] with what an attempt
//! produced and applies the [`Decision`] to the endpoint's queue, counters and store.

use std::time::{Duration, Instant};

use deskhook::policy::{BreakerPolicy, RetrySchedule, Verdict};
use deskhook::sink::EventId;

use super::{AttemptOutcome, BreakerState};

/// The longest wait the engine schedules: a retry, a Retry-After or a breaker pause past it
/// is cut to it, so that no instant arithmetic can overflow.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

/// `now + d`, with `d` cut to [`MAX_DELAY`].
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_DELAY)).unwrap_or(now)
}

/// A number in [0, 1) that is random across events and attempts: the random bits of the
/// UUID v7 mixed with the attempt number (splitmix64). No RNG state, no lock.
pub(crate) fn jitter_unit(id: EventId, attempt: u32) -> f64 {
    let bits =
        id.as_uuid().as_u64_pair().1 ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut z = bits.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// What one attempt produced.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply<'a> {
    /// A response came back.
    Status {
        status: u16,
        /// `Retry-After`, as the response gave it (honoured for 429 and 503 only).
        retry_after: Option<Duration>,
    },
    /// No response.
    Error {
        message: &'a str,
        /// Timeouts and connection errors are; refusals by the SSRF guard are not.
        retryable: bool,
    },
    /// Nothing was sent: the attempt could not be made (a template that does not render,
    /// secrets all expired, an event of another tenant). Final, and it says nothing about
    /// the endpoint.
    Unsent { message: &'a str },
}

/// Where the endpoint stands when the outcome is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Registered and delivering (or paused: a pause keeps events queued).
    Open,
    /// Registered and delivering, but the attempt was made with settings replaced since
    /// (an edit while it was in flight): its failure says nothing of the new ones.
    /// `same_receiver` when the URL and CA roots stayed: its `Retry-After` still holds.
    Replaced { same_receiver: bool },
    /// Removed from the registry while the attempt was in flight.
    Removed,
    /// Disabled by an earlier 410 while the attempt was in flight.
    Disabled,
    /// The sink is shutting down; `keep` when what is undelivered stays where it is (in the
    /// spool, or with the relay that owns the engine) instead of going to the dead letters.
    Stopping { keep: bool },
}

/// What becomes of the event after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// 2xx.
    Delivered,
    /// Attempt again after `delay`; the ticket's later events wait behind it.
    Retry { delay: Duration },
    /// Given up: the event goes to the dead letters for `reason`. `disable` when the answer
    /// was 410 Gone: the endpoint is disabled and what it has queued follows.
    Dead { reason: String, disable: bool },
}

/// How the attempt moves the circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BreakerMove {
    /// The endpoint answered (2xx, or a final answer such as 400 or 410).
    Success,
    /// A retryable failure, or no answer.
    Failure,
    /// A retryable failure whose answer asked to wait this long (429 or 503 with
    /// `Retry-After`): a failure for the breaker, and the whole endpoint waits, not only the
    /// event's ticket (the lane's hold, which later outcomes cannot undo).
    Backoff(Duration),
    /// Nothing was sent: no move, but a probe that was not sent lets the next one go.
    Unsent,
}

/// Decides what an attempt's reply means for an event that has had `attempts` attempts (this
/// one included), under `retry` and `retry_after_max`; `jitter` is the event's
/// [`jitter_unit`] for the next attempt.
pub(crate) fn decide(
    reply: Reply<'_>,
    attempts: u32,
    jitter: f64,
    standing: Standing,
    retry: &RetrySchedule,
    retry_after_max: Duration,
) -> (Decision, BreakerMove) {
    let dead = |reason: String| Decision::Dead {
        reason,
        disable: false,
    };
    if let Standing::Replaced { same_receiver } = standing {
        // A 410 from a URL since moved away from must not disable the endpoint, nor its
        // 401 (a secret since rotated) dead-letter the event: the event goes again, with the
        // new settings, at once (but for the same receiver's Retry-After, below).
        if let Reply::Status { status, .. } = reply
            && Verdict::of_status(status) == Verdict::Delivered
        {
            return (Decision::Delivered, BreakerMove::Unsent);
        }
        // An attempt past the schedule already (one granted by an edit before): given up,
        // so that edits made during every attempt cannot retry an event for ever.
        if retry.delay_before(attempts).is_none() {
            return (
                dead(format!(
                    "given up after {attempts} attempts (the endpoint's settings changed \
                     during the last)"
                )),
                BreakerMove::Unsent,
            );
        }
        // The same receiver asking to wait (429, 503) still does, whatever else changed:
        // the whole endpoint waits, as for any such answer.
        if let Reply::Status {
            status,
            retry_after: Some(asked),
        } = reply
            && same_receiver
            && Verdict::honours_retry_after(status)
            && !asked.is_zero()
        {
            let delay = asked.min(retry_after_max);
            return (Decision::Retry { delay }, BreakerMove::Backoff(delay));
        }
        // Otherwise the breaker does not move: the failure says nothing of the new settings.
        return (
            Decision::Retry {
                delay: Duration::ZERO,
            },
            BreakerMove::Unsent,
        );
    }
    let (verdict, retry_after, status) = match reply {
        Reply::Status {
            status,
            retry_after,
        } => {
            let honoured = retry_after.filter(|_| Verdict::honours_retry_after(status));
            (Verdict::of_status(status), honoured, Some(status))
        }
        Reply::Error { retryable, .. } => {
            let verdict = if retryable {
                Verdict::Retry
            } else {
                Verdict::Fail
            };
            (verdict, None, None)
        }
        Reply::Unsent { message } => {
            return (dead(message.to_owned()), BreakerMove::Unsent);
        }
    };
    match verdict {
        Verdict::Delivered => (Decision::Delivered, BreakerMove::Success),
        Verdict::Retry => {
            let next = attempts.saturating_add(1);
            let decision = match (retry.jittered_delay_before(next, jitter), standing) {
                (_, Standing::Removed) => dead("endpoint removed".to_owned()),
                (_, Standing::Disabled) => dead("endpoint disabled after 410 Gone".to_owned()),
                (Some(_), Standing::Stopping { keep: false }) => {
                    dead("shut down before the next attempt".to_owned())
                }
                // (Replaced returned above.)
                (
                    Some(delay),
                    Standing::Open | Standing::Replaced { .. } | Standing::Stopping { keep: true },
                ) => {
                    let floor = retry_after.map_or(Duration::ZERO, |r| r.min(retry_after_max));
                    Decision::Retry {
                        delay: delay.max(floor).min(MAX_DELAY),
                    }
                }
                (None, _) => dead(format!("gave up after {attempts} attempt(s)")),
            };
            let moved = match retry_after.map(|r| r.min(retry_after_max)) {
                Some(wait) if !wait.is_zero() && standing == Standing::Open => {
                    BreakerMove::Backoff(wait)
                }
                _ => BreakerMove::Failure,
            };
            (decision, moved)
        }
        Verdict::Disable => (
            Decision::Dead {
                reason: "410 Gone: the endpoint asked to stop; it is disabled".to_owned(),
                disable: standing == Standing::Open,
            },
            BreakerMove::Success,
        ),
        // Fail, and a verdict a later deskhook may add: a dead letter, never a disabled
        // endpoint.
        _ => {
            let reason = match (status, reply) {
                (Some(status), _) if (300..400).contains(&status) => format!(
                    "{status} redirect (redirects are not followed; configure the final URL)"
                ),
                (Some(status), _) => format!("{status} from the receiver (not retried)"),
                (None, Reply::Error { message, .. } | Reply::Unsent { message }) => {
                    message.to_owned()
                }
                (None, Reply::Status { .. }) => String::new(),
            };
            // A response means the endpoint is up (its answer was final); no response (a
            // refusal) says nothing good about it. Either way a probe is resolved.
            let moved = if status.is_some() {
                BreakerMove::Success
            } else {
                BreakerMove::Failure
            };
            (dead(reason), moved)
        }
    }
}

/// The observer's word for a decision.
pub(crate) fn outcome_of(decision: &Decision) -> AttemptOutcome {
    match decision {
        Decision::Delivered => AttemptOutcome::Delivered,
        Decision::Retry { .. } => AttemptOutcome::Retrying,
        Decision::Dead { disable: true, .. } => AttemptOutcome::EndpointDisabled,
        Decision::Dead { .. } => AttemptOutcome::DeadLettered,
    }
}

/// An endpoint's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::Closed { failures: 0 }
    }
}

impl Breaker {
    /// Whether an attempt may start at `now`; if not, when to look again. Changes nothing.
    pub(crate) fn check(&self, now: Instant, policy: &BreakerPolicy) -> Result<(), Instant> {
        match *self {
            Breaker::Closed { .. } => Ok(()),
            Breaker::Open { until } if now < until => Err(until),
            Breaker::Open { .. } | Breaker::HalfOpen { probing: false } => Ok(()),
            Breaker::HalfOpen { probing: true } => {
                let wait =
                    (policy.cool_down / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
                Err(later(now, wait))
            }
        }
    }

    /// An attempt starts (after [`check`](Breaker::check) allowed it): an open breaker whose
    /// cool-down is over lets this one through as its probe.
    pub(crate) fn admit(&mut self) {
        if matches!(self, Breaker::Open { .. } | Breaker::HalfOpen { .. }) {
            *self = Breaker::HalfOpen { probing: true };
        }
    }

    /// Applies an attempt's outcome.
    pub(crate) fn record(&mut self, moved: BreakerMove, now: Instant, policy: &BreakerPolicy) {
        *self = match (moved, *self) {
            (BreakerMove::Unsent, Breaker::HalfOpen { .. }) => Breaker::HalfOpen { probing: false },
            (BreakerMove::Unsent, unchanged) => unchanged,
            (BreakerMove::Success, _) => Breaker::Closed { failures: 0 },
            // A Retry-After is a failure here; its wait is the lane's hold (see
            // `LaneState::hold_until`), which later outcomes cannot undo.
            _ if policy.failures == 0 => Breaker::Closed { failures: 0 },
            (BreakerMove::Failure | BreakerMove::Backoff(_), Breaker::Closed { failures })
                if failures + 1 < policy.failures =>
            {
                Breaker::Closed {
                    failures: failures + 1,
                }
            }
            (BreakerMove::Failure | BreakerMove::Backoff(_), _) => Breaker::Open {
                until: later(now, policy.cool_down),
            },
        };
    }

    /// Whether the endpoint's last attempts failed (some failures in a row, or the breaker
    /// open or probing).
    pub(crate) fn failing(&self) -> bool {
        !matches!(self, Breaker::Closed { failures: 0 })
    }

    /// The public state at `now`: an open breaker whose cool-down is over is half-open,
    /// its next attempt the probe (nothing changes it until that attempt starts).
    pub(crate) fn state_at(&self, now: Instant) -> BreakerState {
        match *self {
            Breaker::Closed { .. } => BreakerState::Closed,
            Breaker::Open { until } if now < until => BreakerState::Open,
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether it holds attempts back at `now`: open in its cool-down, or its probe under
    /// way. A half-open breaker that waits for a probe lets the next attempt go.
    pub(crate) fn holds(&self, now: Instant) -> bool {
        match *self {
            Breaker::Closed { .. } => false,
            Breaker::Open { until } => now < until,
            Breaker::HalfOpen { probing } => probing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Reply<'static> {
        Reply::Status {
            status,
            retry_after: None,
        }
    }

    const REFUSED: Reply<'static> = Reply::Error {
        message: "refusing to connect to 10.0.0.1 (private)",
        retryable: false,
    };
    const TIMEOUT: Reply<'static> = Reply::Error {
        message: "timed out",
        retryable: true,
    };

    fn retry(delay_ms: u64) -> Decision {
        Decision::Retry {
            delay: Duration::from_millis(delay_ms),
        }
    }

    fn dead(reason: &str) -> Decision {
        Decision::Dead {
            reason: reason.to_owned(),
            disable: false,
        }
    }

    #[test]
    fn decisions_table() {
        use BreakerMove::{Backoff as B, Failure as F, Success as S};
        let schedule: RetrySchedule = "0s,10ms,20ms".parse().unwrap();
        let schedule = schedule.with_jitter(0.0);
        let open = Standing::Open;
        let gone = Decision::Dead {
            reason: "410 Gone: the endpoint asked to stop; it is disabled".to_owned(),
            disable: true,
        };
        let slow_down = Reply::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(30)),
        };
        let too_long = Reply::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(7200)),
        };
        let ignored = Reply::Status {
            status: 500,
            retry_after: Some(Duration::from_secs(30)),
        };
        #[rustfmt::skip]
        let table: Vec<(Reply<'_>, u32, Standing, Decision, BreakerMove)> = vec![
            (status(200), 1, open, Decision::Delivered, S),
            (status(204), 3, Standing::Removed, Decision::Delivered, S),
            (status(500), 1, open, retry(10), F),
            (status(503), 2, open, retry(20), F),
            (status(500), 3, open, dead("gave up after 3 attempt(s)"), F),
            (status(408), 1, open, retry(10), F),
            (status(425), 1, open, retry(10), F),
            (TIMEOUT, 1, open, retry(10), F),
            (slow_down, 1, open, retry(30_000), B(Duration::from_secs(30))),
            (too_long, 1, open, retry(3_600_000), B(Duration::from_secs(3600))),
            (slow_down, 1, Standing::Stopping { keep: true }, retry(30_000), F),
            (ignored, 1, open, retry(10), F),
            (status(500), 1, Standing::Removed, dead("endpoint removed"), F),
            (status(500), 1, Standing::Disabled, dead("endpoint disabled after 410 Gone"), F),
            (status(500), 1, Standing::Stopping { keep: false }, dead("shut down before the next attempt"), F),
            (status(500), 1, Standing::Stopping { keep: true }, retry(10), F),
            (status(400), 1, open, dead("400 from the receiver (not retried)"), S),
            (status(301), 1, open, dead("301 redirect (redirects are not followed; configure the final URL)"), S),
            (REFUSED, 1, open, dead("refusing to connect to 10.0.0.1 (private)"), F),
            (status(410), 1, open, gone, S),
        ];
        for (reply, attempts, standing, decision, moved) in table {
            let got = decide(
                reply,
                attempts,
                0.5,
                standing,
                &schedule,
                Duration::from_secs(3600),
            );
            assert_eq!(
                got,
                (decision, moved),
                "{reply:?} after {attempts} in {standing:?}"
            );
        }
        // A 410 on an endpoint already removed disables nothing.
        let (decision, _) = decide(
            status(410),
            1,
            0.5,
            Standing::Removed,
            &schedule,
            Duration::ZERO,
        );
        assert!(matches!(decision, Decision::Dead { disable: false, .. }));
        assert_eq!(outcome_of(&Decision::Delivered), AttemptOutcome::Delivered);
        assert_eq!(outcome_of(&retry(1)), AttemptOutcome::Retrying);
    }

    #[test]
    fn jitter_units_spread_over_the_unit_interval() {
        let units: Vec<f64> = (0..1000).map(|_| jitter_unit(EventId::new(), 2)).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        let low = units.iter().filter(|u| **u < 0.5).count();
        assert!((350..650).contains(&low), "{low} of 1000 below 0.5");
        let id = EventId::new();
        assert_ne!(jitter_unit(id, 2), jitter_unit(id, 3));
    }

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let policy = BreakerPolicy {
            failures: 2,
            cool_down: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        let mut b = Breaker::default();
        b.record(BreakerMove::Failure, t0, &policy);
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        assert!(!b.holds(t0));
        b.record(BreakerMove::Failure, t0, &policy);
        assert_eq!(b.state_at(t0), BreakerState::Open);
        assert!(b.holds(t0));
        assert!(b.check(t0, &policy).is_err());
        let after = t0 + Duration::from_millis(100);
        // Its cool-down over, with no attempt yet (an idle endpoint): half-open, and the
        // next attempt goes.
        assert_eq!(b.state_at(after), BreakerState::HalfOpen);
        assert!(!b.holds(after));
        assert!(b.check(after, &policy).is_ok());
        b.admit();
        assert_eq!(b.state_at(after), BreakerState::HalfOpen);
        assert!(b.holds(after), "its probe under way");
        assert!(b.check(after, &policy).is_err(), "one probe at a time");
        b.record(BreakerMove::Failure, after, &policy);
        assert_eq!(b.state_at(after), BreakerState::Open);
        let much_later = after + Duration::from_millis(100);
        assert!(b.check(much_later, &policy).is_ok());
        b.admit();
        b.record(BreakerMove::Success, much_later, &policy);
        assert_eq!(b.state_at(much_later), BreakerState::Closed);
        // Off: never opens.
        let off = BreakerPolicy {
            failures: 0,
            cool_down: Duration::from_secs(1),
        };
        for _ in 0..5 {
            b.record(BreakerMove::Failure, t0, &off);
        }
        assert_eq!(b.state_at(t0), BreakerState::Closed);
    }

    /// An attempt made with settings replaced since goes again at once, but the same
    /// receiver's Retry-After still holds, and one past its schedule already is given up.
    #[test]
    fn an_attempt_across_an_edit_keeps_the_receivers_retry_after_and_its_schedules_end() {
        let schedule: RetrySchedule = "0s,5s".parse().unwrap();
        let decided = |reply, attempts, same_receiver| {
            decide(
                reply,
                attempts,
                0.5,
                Standing::Replaced { same_receiver },
                &schedule,
                Duration::from_secs(60),
            )
        };
        let busy = Reply::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(600)),
        };
        let capped = Duration::from_secs(60);
        assert_eq!(
            decided(busy, 1, true),
            (
                Decision::Retry { delay: capped },
                BreakerMove::Backoff(capped)
            )
        );
        // Another receiver did not ask.
        assert_eq!(decided(busy, 1, false), (retry(0), BreakerMove::Unsent));
        assert_eq!(
            decided(status(401), 2, true),
            (retry(0), BreakerMove::Unsent)
        );
        // Past the schedule, a Retry-After does not keep it going either.
        assert!(matches!(decided(busy, 3, true).0, Decision::Dead { .. }));
        // A Retry-After of nothing asks for no wait (as for any attempt).
        let now = Reply::Status {
            status: 503,
            retry_after: Some(Duration::ZERO),
        };
        assert_eq!(decided(now, 1, true), (retry(0), BreakerMove::Unsent));
        // The third attempt was one an edit granted already.
        let (decision, moved) = decided(status(500), 3, true);
        assert!(
            matches!(&decision, Decision::Dead { reason, disable: false }
                if reason.contains("settings changed")),
            "{decision:?}"
        );
        assert_eq!(moved, BreakerMove::Unsent);
        assert_eq!(
            decided(status(204), 3, false),
            (Decision::Delivered, BreakerMove::Unsent)
        );
    }

    #[test]
    fn an_attempt_never_sent_is_final_and_no_failure_of_the_endpoint() {
        let (decision, moved) = decide(
            Reply::Unsent {
                message: "the template did not render",
            },
            1,
            0.5,
            Standing::Open,
            &"0s,5s".parse().unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(decision, dead("the template did not render"));
        assert_eq!(moved, BreakerMove::Unsent);
        let policy = BreakerPolicy {
            failures: 1,
            cool_down: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        let mut b = Breaker::Closed { failures: 0 };
        for _ in 0..5 {
            b.record(BreakerMove::Unsent, t0, &policy);
        }
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        // A probe that was not sent lets the next one go.
        b.record(BreakerMove::Failure, t0, &policy);
        let after = t0 + Duration::from_millis(100);
        b.admit();
        assert!(b.check(after, &policy).is_err());
        b.record(BreakerMove::Unsent, after, &policy);
        assert_eq!(b.state_at(after), BreakerState::HalfOpen);
        assert!(b.check(after, &policy).is_ok());
    }
}
