//! What a relay tells of its deliveries: a status line every so often ([`log_status`]), the
//! server told of messages still in delivery ([`keep_alive`]), and the engine's attempts told
//! to the book ([`Tracker`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Book, lock};
use crate::delivery::{AttemptOutcome, AttemptRecord, BreakerState, Observer};

impl Book {
    /// One line on what the relay has in delivery, for [`log_status`].
    fn status(&self) -> String {
        let (events, oldest, parked) = {
            let waiting = lock(&self.waiting);
            let oldest = waiting.values().map(|p| p.since.elapsed()).max();
            let parked = waiting.values().filter(|p| !p.slot).count();
            (waiting.len(), oldest.unwrap_or_default(), parked)
        };
        let partitions: Vec<String> = self
            .outstanding
            .iter()
            .enumerate()
            .filter_map(|(p, n)| {
                let n = n.load(Ordering::Acquire);
                (n > 0).then(|| format!("{p}:{n}"))
            })
            .collect();
        format!(
            "{events} event(s) in delivery, {parked} of them parked (messages by partition: {}; \
             the oldest for {} ms), {} waiting for their ticket's earlier messages, {} KiB of \
             budget free, {} acknowledged, {} taken twice, {} stored again, {} message(s) parked",
            if partitions.is_empty() {
                "none".to_owned()
            } else {
                partitions.join(" ")
            },
            oldest.as_millis(),
            self.gates.held(),
            self.budget.available_permits(),
            self.counts.acknowledged.load(Ordering::Relaxed),
            self.counts.duplicates.load(Ordering::Relaxed),
            self.counts.stored_again.load(Ordering::Relaxed),
            self.counts.parked.load(Ordering::Relaxed),
        )
    }
}

/// Logs, every `every`, what the relay has in delivery and what its engine holds.
pub(in crate::relay) async fn log_status(
    book: Arc<Book>,
    http: crate::delivery::DeliverySink,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let totals = http.totals();
        log::info!(
            target: deskhook::LOG_TARGET,
            "relay status: {}; engine: {} queued, {} in flight, {} delivered, {} failed attempt(s)",
            book.status(),
            totals.queued,
            totals.in_flight,
            totals.delivered,
            totals.failed
        );
    }
}

/// Tells the server, every `every`, which messages are still in delivery, so that a slow
/// endpoint's work is not handed out again.
pub(in crate::relay) async fn keep_alive(book: Arc<Book>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for message in book.overdue(every) {
            if let Err(e) = message
                .ack_with(async_nats::jetstream::AckKind::Progress)
                .await
            {
                log::warn!(target: deskhook::LOG_TARGET, "relay: cannot tell the server of progress: {e}");
            }
        }
    }
}

/// Tells the book of deliveries and retries (dead letters are told by the relay's
/// dead-letter hook, once published), and which endpoints are failing; then passes every
/// record on to the configured observer.
pub(in crate::relay) struct Tracker {
    pub(in crate::relay) book: Arc<Book>,
    pub(in crate::relay) inner: Option<Arc<dyn Observer>>,
}

impl Observer for Tracker {
    fn on_attempt(&self, record: &AttemptRecord<'_>) {
        let failing =
            record.outcome == AttemptOutcome::Retrying || record.breaker != BreakerState::Closed;
        if failing || record.outcome == AttemptOutcome::Delivered {
            let mut endpoints = lock(&self.book.failing);
            if failing && !endpoints.contains(record.endpoint) {
                endpoints.insert(record.endpoint.into());
            } else if !failing && !endpoints.is_empty() {
                endpoints.remove(record.endpoint);
            }
        }
        let id = record.event_id.to_string();
        match record.outcome {
            AttemptOutcome::Retrying => self.book.retrying(&id, record.endpoint),
            AttemptOutcome::Delivered => self.book.finished(&id, record.endpoint),
            // Its dead letter went to the relay's hook, which ends it with the endpoint
            // once the letter is published (see `dead`).
            _ => {}
        }
        if let Some(inner) = &self.inner {
            inner.on_attempt(record);
        }
    }
}
