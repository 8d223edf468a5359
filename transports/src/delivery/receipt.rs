//! [`Receipt`]: the promise that an accepted event will be on disk.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;

#[derive(Debug, Default)]
struct Slot {
    outcome: Option<Result<(), Error>>,
    /// The tasks awaiting it: one per clone awaited in a task of its own.
    wakers: Vec<Waker>,
}

/// The shared state of one receipt: settled once by the spool's writer.
#[derive(Debug, Default)]
pub(crate) struct ReceiptState {
    slot: Mutex<Slot>,
    settled: Condvar,
}

impl ReceiptState {
    /// Whether the receipt is settled already.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn is_settled(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .outcome
            .is_some()
    }

    /// Settles the receipt; later calls are ignored. Returns whether this call settled it.
    pub(crate) fn settle(&self, outcome: Result<(), Error>) -> bool {
        let wakers = {
            let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
            if slot.outcome.is_some() {
                return false;
            }
            slot.outcome = Some(outcome);
            std::mem::take(&mut slot.wakers)
        };
        self.settled.notify_all();
        for waker in wakers {
            waker.wake();
        }
        true
    }
}

/// Says when an event accepted by a spooled sink is durable: on disk (committed and synced)
/// and so delivered after any crash or restart.
///
/// Returned by `send_with_receipt` on the HTTP sinks; wait for it with
/// [`wait`](Receipt::wait), or `.await` it (it is a `Future`, usable on any runtime). Dropping
/// it changes nothing: the event is spooled either way. The receipts of events that were
/// written settle in the order the events were accepted; one that could not be written (too
/// large, the spool full or closed) settles with its error at once.
#[derive(Clone, Debug)]
#[must_use = "a receipt does nothing unless waited for; drop it if durability need not be known"]
pub struct Receipt {
    state: Arc<ReceiptState>,
    /// The endpoints the event was queued for.
    endpoints: usize,
}

impl Receipt {
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn new(state: Arc<ReceiptState>) -> Receipt {
        Receipt {
            state,
            endpoints: 0,
        }
    }

    /// A receipt that is settled already.
    pub(crate) fn settled(outcome: Result<(), Error>) -> Receipt {
        let state = Arc::new(ReceiptState::default());
        let _ = state.settle(outcome);
        Receipt {
            state,
            endpoints: 0,
        }
    }

    /// This receipt, for an event queued for `endpoints` endpoints.
    pub(crate) fn for_endpoints(self, endpoints: usize) -> Receipt {
        Receipt { endpoints, ..self }
    }

    /// How many endpoints the event was queued for, as it was routed (those of its tenant
    /// and those without one, that receive its type): 0 when none takes it (it is accepted,
    /// and nothing is kept) or when it was refused.
    pub fn endpoints(&self) -> usize {
        self.endpoints
    }

    /// Whether the event is durable now (`false` while pending or when it failed).
    pub fn is_durable(&self) -> bool {
        matches!(self.lock().outcome, Some(Ok(())))
    }

    /// Blocks until the event is durable, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::SpoolFull`] or [`Error::Spool`] when the event could not be written (it was
    /// not accepted, and is counted and logged as dropped); [`Error::Undelivered`] when
    /// `timeout` passed first (the event may still become durable).
    pub fn wait(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now().checked_add(timeout);
        let mut slot = self.lock();
        loop {
            if let Some(outcome) = &slot.outcome {
                return clone_outcome(outcome);
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Err(Error::Undelivered {
                    queued: 1,
                    in_flight: 0,
                    held: 0,
                    held_by: Vec::new(),
                    timeout,
                });
            }
            slot = self
                .state
                .settled
                .wait_timeout(slot, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.state.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `Error` is not `Clone` (it holds `io::Error`s); the outcomes a receipt holds never do.
fn clone_outcome(outcome: &Result<(), Error>) -> Result<(), Error> {
    match outcome {
        Ok(()) => Ok(()),
        Err(Error::SpoolFull { path, used, limit }) => Err(Error::SpoolFull {
            path: path.clone(),
            used: *used,
            limit: *limit,
        }),
        Err(Error::Spool { path, message }) => Err(Error::Spool {
            path: path.clone(),
            message: message.clone(),
        }),
        Err(Error::NotQueued(message)) => Err(Error::NotQueued(message.clone())),
        Err(Error::Config(message)) => Err(Error::Config(message.clone())),
        Err(other) => Err(Error::Config(other.to_string())),
    }
}

impl Future for Receipt {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.lock();
        match &slot.outcome {
            Some(outcome) => Poll::Ready(clone_outcome(outcome)),
            None => {
                // A task polling again is not listed twice; clones awaited in other tasks
                // are each woken.
                if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    slot.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_settles_once_and_wakes_waiters() {
        let state = Arc::new(ReceiptState::default());
        let receipt = Receipt::new(state.clone());
        assert!(!receipt.is_durable());
        assert!(matches!(
            receipt.wait(Duration::from_millis(1)),
            Err(Error::Undelivered { .. })
        ));
        let waiter = {
            let receipt = receipt.clone();
            std::thread::spawn(move || receipt.wait(Duration::from_secs(60)))
        };
        assert!(state.settle(Ok(())));
        assert!(!state.settle(Err(Error::Config("ignored".into()))));
        assert!(waiter.join().unwrap().is_ok());
        assert!(receipt.is_durable());
        assert!(pollster::block_on(receipt).is_ok());
    }

    #[test]
    fn clones_awaited_in_two_tasks_are_both_woken() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let state = Arc::new(ReceiptState::default());
        let mut first = Receipt::new(state.clone());
        let mut second = first.clone();
        let counts: Vec<Arc<Count>> = (0..2)
            .map(|_| Arc::new(Count(std::sync::atomic::AtomicUsize::new(0))))
            .collect();
        for (receipt, count) in [(&mut first, &counts[0]), (&mut second, &counts[1])] {
            let waker = Waker::from(count.clone());
            let mut cx = Context::from_waker(&waker);
            // Polled twice by its task: listed once.
            assert!(Pin::new(&mut *receipt).poll(&mut cx).is_pending());
            assert!(Pin::new(&mut *receipt).poll(&mut cx).is_pending());
        }
        assert!(state.settle(Ok(())));
        let woken: Vec<usize> = counts
            .iter()
            .map(|c| c.0.load(std::sync::atomic::Ordering::SeqCst))
            .collect();
        assert_eq!(woken, [1, 1]);
    }
}
