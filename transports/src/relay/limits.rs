//! What a relay's settings may be: the ranges of its durations and of its window, and the
//! names its durable can take; checked when it runs (and by [`parked`](super::parked)).

use std::time::Duration;

use super::Relay;
use crate::error::Error;

/// The longest `ack_wait`, `lease` and `grace` may be: the server reads durations as
/// nanoseconds in an `i64`, and a relay that waits longer for news of a message, for a
/// dead relay's partitions or for its own stop is one nobody would want.
const LONGEST: Duration = Duration::from_secs(3600);

/// The most [`Relay::max_pending`] takes: each partition's window is that many messages,
/// and the engine's queues are sized for all of the partitions' at once.
pub const MAX_PENDING: usize = 100_000;

/// The longest `park_after` and `log_status_every` may be.
const LONGEST_PARK_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The shortest `ack_wait` may be: three times the most often progress is sent.
const SHORTEST_ACK_WAIT: Duration = Duration::from_millis(300);

/// Why `durable` cannot name a relay's consumers and buckets, if it cannot: a KV bucket's
/// name takes only ASCII letters, digits, `-` and `_`.
pub(super) fn check_durable(durable: &str) -> Result<(), Error> {
    match crate::endpoint_store::bucket_name_fault(durable) {
        None => Ok(()),
        Some(fault) => Err(Error::Config(format!(
            "durable name '{}' cannot be used: it names the relays' NATS consumers and KV \
             buckets, and {fault} (the default is deskhook-relay)",
            deskhook::shown_in_log(durable)
        ))),
    }
}

impl Relay {
    /// The first duration out of its range, as an error that says what to write.
    pub(super) fn check_durations(&self) -> Result<(), Error> {
        let format = deskhook::policy::format_duration;
        if self.ack_wait < SHORTEST_ACK_WAIT {
            // Progress goes every third of it, but not more often than every 100 ms; and
            // 0 would be the server's default (30 s) there and none here.
            return Err(Error::Config(format!(
                "ack_wait {} cannot work: it is how long the server waits for news of a \
                 message, which the relay sends at most every 100ms; give at least {} (the \
                 default is 30s)",
                format(self.ack_wait),
                format(SHORTEST_ACK_WAIT)
            )));
        }
        if self.max_pending > MAX_PENDING {
            return Err(Error::Config(format!(
                "max_pending {} is more than a relay can hold outstanding per partition; give \
                 at most {MAX_PENDING} (the default is 512)",
                self.max_pending
            )));
        }
        for (name, value, longest) in [
            ("ack_wait", self.ack_wait, LONGEST),
            ("lease", self.lease, LONGEST),
            ("grace", self.grace, LONGEST),
            ("park_after", self.park_after, LONGEST_PARK_AFTER),
            (
                "log_status_every",
                self.status_every.unwrap_or_default(),
                LONGEST_PARK_AFTER,
            ),
        ] {
            if value > longest {
                return Err(Error::Config(format!(
                    "{name} {} is longer than a relay can use; give at most {}",
                    format(value),
                    format(longest)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durable_name_is_one_a_kv_bucket_can_take() {
        assert!(check_durable("deskhook-relay").is_ok());
        assert!(check_durable("Relays_2").is_ok());
        for bad in ["", "a.b", "a b", "relay>", "реле"] {
            let err = check_durable(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid configuration: durable name '")
                    && err.contains("name is letters, digits, '-' and '_'"),
                "{err}"
            );
        }
    }

    #[test]
    fn durations_out_of_range_are_refused_with_what_to_write() {
        let relay = || {
            Relay::builder(
                "nats://127.0.0.1:4222",
                crate::delivery::DeliverySink::builder(),
            )
        };
        let hour = Duration::from_secs(3600);
        assert!(
            relay()
                .ack_wait(hour)
                .lease(hour)
                .grace(hour)
                .check_durations()
                .is_ok()
        );
        let refused = [
            (relay().ack_wait(Duration::ZERO), "ack_wait 0s cannot work"),
            (
                relay().ack_wait(Duration::from_millis(299)),
                "ack_wait 299ms cannot work",
            ),
            (relay().log_status_every(Duration::MAX), "log_status_every "),
            (relay().ack_wait(Duration::MAX), "ack_wait "),
            (relay().lease(hour + Duration::from_secs(1)), "lease 3601s"),
            (relay().grace(Duration::MAX), "grace "),
            (
                relay().park_after(Duration::from_secs(86_401)),
                "park_after ",
            ),
            (
                relay().max_pending(MAX_PENDING + 1),
                "max_pending 100001 is more",
            ),
        ];
        for (relay, start) in refused {
            let err = relay.check_durations().unwrap_err().to_string();
            assert!(err.contains(start) && err.contains("give"), "{err}");
        }
    }
}
