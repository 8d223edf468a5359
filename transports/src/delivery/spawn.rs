//! Running an engine's async workers on a tokio runtime: shared by the async transports
//! (`http-async`, `nats`). One dispatcher task per sink starts a task per attempt; a task
//! that finishes takes the next attempt itself while there is one, so the tasks alive are
//! the requests in flight.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::engine::{Attempt, Next};
use super::priority::Priority;
use super::{AsyncTransport, AttemptError, Engine};
use crate::error::Error;

/// The current runtime when there is one; otherwise a runtime of the sink's own (one worker
/// thread named `thread_name`), which the caller hands to the guard to shut down.
///
/// One thread: the requests are I/O, and measured on two cores a second worker thread cost
/// more in wake-ups between the threads than it gave (async delivery to nginx on loopback:
/// 41k requests/s with two, 50–56k with one).
#[cfg(feature = "http-async")]
pub(crate) fn runtime_here(
    thread_name: &str,
    priority: Priority,
) -> Result<(tokio::runtime::Handle, Option<tokio::runtime::Runtime>), Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok((handle, None)),
        Err(_) => {
            let runtime = own_runtime(thread_name, 1, priority)?;
            Ok((runtime.handle().clone(), Some(runtime)))
        }
    }
}

/// A runtime with `threads` worker threads named `thread_name`, at `priority`.
pub(crate) fn own_runtime(
    thread_name: &str,
    threads: usize,
    priority: Priority,
) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(thread_name)
        .on_thread_start(move || priority.apply())
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start a tokio runtime: {e}")))
}

/// Starts the dispatcher of `engine` on `handle`, sending with `transport`.
pub(crate) fn start<T: AsyncTransport + 'static>(
    engine: &Arc<Engine>,
    transport: Arc<T>,
    handle: &tokio::runtime::Handle,
) {
    // Made before the task and moved into it, so that it is dropped even when the runtime
    // drops the task without ever running it: the engine then lets go of what no worker is
    // left to deliver.
    let gone = RuntimeGone(engine.clone());
    let engine = engine.clone();
    handle.spawn(async move {
        let _gone = gone;
        dispatch(engine, transport).await;
    });
}

/// Tells the engine when the dispatcher ends, however it ends.
struct RuntimeGone(Arc<Engine>);

impl Drop for RuntimeGone {
    fn drop(&mut self) {
        self.0.runtime_gone();
    }
}

/// Starts a task for every attempt due, and waits for more.
async fn dispatch<T: AsyncTransport + 'static>(engine: Arc<Engine>, transport: Arc<T>) {
    loop {
        // Registered before looking, so that no wake-up is missed.
        let notified = engine.pool().notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let until = loop {
            match engine.next_attempt() {
                Next::Attempt(attempt) => {
                    tokio::spawn(run(engine.clone(), transport.clone(), attempt));
                }
                Next::Wait(until) => break until,
                Next::Stop => return,
            }
        };
        match until {
            Some(at) => {
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => notified.await,
        }
    }
}

/// Makes `attempt`, then the next ones while there are some.
async fn run<T: AsyncTransport>(engine: Arc<Engine>, transport: Arc<T>, mut attempt: Attempt) {
    loop {
        let (result, took) = match attempt.prepare(SystemTime::now()) {
            Ok(prepared) => {
                let headers = prepared.headers(&attempt.route, attempt.job());
                let started = Instant::now();
                let post = transport.post(
                    attempt.route.target.as_ref(),
                    &headers,
                    attempt.job().body(),
                );
                #[cfg(feature = "tracing")]
                let result = {
                    use tracing::Instrument as _;
                    let span = super::telemetry::attempt_span(&attempt.route, attempt.job());
                    let result = post.instrument(span.clone()).await;
                    super::telemetry::attempt_ended(&span, &result);
                    result
                };
                #[cfg(not(feature = "tracing"))]
                let result = post.await;
                (result, started.elapsed())
            }
            Err(message) => (
                Err(AttemptError {
                    message,
                    retryable: false,
                }),
                Duration::ZERO,
            ),
        };
        attempt.finish(result, took);
        match engine.next_attempt() {
            Next::Attempt(next) => attempt = next,
            Next::Wait(_) => {
                // The dispatcher may be asleep without the next retry's time (it went to
                // sleep while every slot was taken): it looks again.
                engine.pool().notify.notify_one();
                return;
            }
            Next::Stop => return,
        }
    }
}
