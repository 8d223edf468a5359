//! A relay run as `deskhook relay` runs it, and the publishers that feed the relay tests.

use std::path::Path;
use std::time::Duration;

use super::NatsServer;

/// A relay running on a runtime of its own, as `deskhook relay` runs it, until
/// [`stop`](RunningRelay::stop).
#[derive(Debug)]
pub struct RunningRelay {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<
        Result<deskhook_transports::relay::RelayReport, deskhook_transports::Error>,
    >,
}

impl RunningRelay {
    /// Starts `relay` on a thread with a multi-threaded runtime.
    pub fn start(relay: deskhook_transports::relay::Relay) -> RunningRelay {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(relay.run(async {
                    let _ = stopped.await;
                }))
        });
        RunningRelay { stop, thread }
    }

    /// Stops the relay and waits for its report.
    ///
    /// # Panics
    ///
    /// When the relay failed.
    pub fn stop(self) -> deskhook_transports::relay::RelayReport {
        self.begin_stop().wait()
    }

    /// Waits up to `within` for the relay to end by itself (not told to stop), and gives
    /// what it returned.
    ///
    /// # Panics
    ///
    /// When it is still running after `within` (it is then told to stop).
    pub fn ended_by_itself(
        self,
        within: Duration,
    ) -> Result<deskhook_transports::relay::RelayReport, deskhook_transports::Error> {
        let deadline = std::time::Instant::now() + within;
        while !self.thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                let report = self.stop();
                panic!("the relay did not end by itself within {within:?}: {report:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.thread.join().expect("the relay's thread")
    }

    /// Tells the relay to stop, without waiting for it: it finishes what it has in
    /// delivery (its grace) meanwhile.
    pub fn begin_stop(self) -> StoppingRelay {
        let _ = self.stop.send(());
        StoppingRelay {
            thread: self.thread,
        }
    }
}

/// A relay told to stop ([`RunningRelay::begin_stop`]).
#[derive(Debug)]
pub struct StoppingRelay {
    thread: std::thread::JoinHandle<
        Result<deskhook_transports::relay::RelayReport, deskhook_transports::Error>,
    >,
}

impl StoppingRelay {
    /// Waits for the relay's report.
    ///
    /// # Panics
    ///
    /// When the relay failed.
    pub fn wait(self) -> deskhook_transports::relay::RelayReport {
        self.thread
            .join()
            .expect("the relay's thread")
            .expect("the relay ran")
    }
}

/// Publishes `events` events of ticket `code` through a `NatsSink` to the default stream,
/// numbered 0, 1, … in their subjects, and waits until JetStream has them all.
///
/// # Panics
///
/// When the publisher cannot start or the events are not all published within 20 s.
pub fn publish_numbered(server: &NatsServer, code: &str, events: usize, dead: &Path) {
    use deskhook_transports::nats::{NatsSink, StreamSettings};
    let (publisher, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new())
        .require_server(true)
        .dead_letter_path(dead)
        .build()
        .expect("the publisher starts");
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("nats", publisher)
        .build();
    let user = deskhook::sample::user();
    for n in 0..events {
        let mut ticket = crate::ticket(code);
        ticket.subject = n.to_string();
        dispatcher.emit(deskhook::Action::Comment, &ticket, &user);
    }
    guard.flush(Duration::from_secs(20)).expect("all published");
}

/// Publishes `per_ticket` events of each of `tickets` in turn ([`emit_in_turn`](crate::emit_in_turn):
/// numbered 0, 1, … in their subjects) through a `NatsSink` to a stream of `partitions`
/// partitions, and waits until JetStream has them all. They are published one at a time,
/// so the stream holds them in that turn too: with more in flight, only each ticket's
/// order is kept, and a relay's window could fill with a few tickets' events.
///
/// # Panics
///
/// When the publisher cannot start or the events are not all published within 20 s.
pub fn publish_in_turn(
    server: &NatsServer,
    partitions: u32,
    (tickets, per_ticket): (&[&str], usize),
    dead: &Path,
) {
    use deskhook_transports::nats::{NatsSink, StreamSettings};
    let (publisher, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new().partitions(partitions))
        .require_server(true)
        .max_in_flight(1)
        .dead_letter_path(dead)
        .build()
        .expect("the publisher starts");
    let dispatcher = deskhook::Dispatcher::builder()
        .sink("nats", publisher)
        .build();
    crate::emit_in_turn(&dispatcher, tickets, per_ticket);
    guard.flush(Duration::from_secs(20)).expect("all published");
}

/// The numbers of the events [`publish_numbered`] made that `receiver` has, in the order
/// they arrived.
///
/// # Panics
///
/// When a request's body has no numbered subject.
pub fn numbers(receiver: &crate::Receiver) -> Vec<usize> {
    receiver
        .requests()
        .iter()
        .map(|r| {
            r.json()["ticket"]["subject"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("a numbered subject")
        })
        .collect()
}
