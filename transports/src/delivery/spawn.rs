//! Running an engine's async workers on a tokio runtime: shared by the async transports
//! (`http-async`, `nats`). One dispatcher task per sink starts a task per attempt; a task
//! that finishes takes the next attempt itself while there is one, so the tasks alive are
//! the requests in flight. Attempts that are costly to prepare are prepared on threads of
//! their own ([`Preparers`]).

use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Instant, SystemTime};

use tokio::sync::oneshot;

use super::engine::attempt::{Attempt, Next};
use super::priority::Priority;
use super::route::Prepared;
use super::{AsyncTransport, Engine, lock};
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
    let preparers = Arc::new(Preparers::default());
    loop {
        // Registered before looking, so that no wake-up is missed.
        let notified = engine.pool().notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let until = loop {
            match engine.next_attempt() {
                Next::Attempt(attempt) => {
                    tokio::spawn(run(
                        engine.clone(),
                        transport.clone(),
                        preparers.clone(),
                        attempt,
                    ));
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
async fn run<T: AsyncTransport>(
    engine: Arc<Engine>,
    transport: Arc<T>,
    preparers: Arc<Preparers>,
    attempt: Attempt,
) {
    let mut next = Some(attempt);
    while let Some(attempt) = next.take() {
        let Some((attempt, prepared)) = prepare(attempt, &preparers).await else {
            // Settled when it was dropped; the dispatcher looks for the next one.
            engine.pool().notify.notify_one();
            return;
        };
        match prepared {
            Ok(mut prepared) => {
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
                attempt.finish(result, started.elapsed());
            }
            Err(message) => attempt.refuse(message),
        }
        match engine.next_attempt() {
            Next::Attempt(attempt) => next = Some(attempt),
            Next::Wait(_) => {
                // The dispatcher may be asleep without the next retry's time (it went to
                // sleep while every slot was taken): it looks again.
                engine.pool().notify.notify_one();
            }
            Next::Stop => {}
        }
    }
}

/// The most threads that prepare costly attempts for one sink.
const MAX_PREPARERS: usize = 8;

/// An attempt prepared: itself, and its headers or why it cannot be sent.
type Ready = (Attempt, Result<Prepared, String>);

/// A costly attempt waiting for a preparer, and where its task waits for it.
struct Costly {
    attempt: Attempt,
    back: oneshot::Sender<Ready>,
}

/// The threads that prepare one dispatcher's costly attempts ([`Attempt::costly`]: a slow
/// template, an ed25519 signature, an HMAC of a large body), so that a 15 µs render or a
/// 36 µs signature does not hold up every endpoint's requests on the runtime's thread. One
/// per core but one (at least one, at most [`MAX_PREPARERS`]), started by the first costly
/// attempt (a sink with none has none) at the priority of the runtime thread that met it:
/// the sink's own runtime runs `worker_nice` below the application, while a relay's or
/// `deskhook serve`'s runtime and the application's own are left as they are, and the
/// preparers go with the threads they work for. They end once the dispatcher and its tasks
/// are gone.
///
/// Threads of their own rather than tokio's blocking pool: handing each attempt to
/// `spawn_blocking` doubled the CPU per delivery (measured: 28 → 60 µs with a CRM-shaped
/// template), while a thread that stays busy under load takes the next one from a channel.
#[derive(Default)]
struct Preparers {
    queue: OnceLock<Option<mpsc::Sender<Costly>>>,
}

impl Preparers {
    /// Where costly attempts go, their threads started at the first call, from a runtime
    /// thread (whose nice value a thread it starts takes, on Linux); `None` when no thread
    /// could start (the attempts are then prepared where they are).
    fn queue(&self) -> Option<&mpsc::Sender<Costly>> {
        self.queue
            .get_or_init(|| {
                let threads = std::thread::available_parallelism()
                    .map_or(1, std::num::NonZero::get)
                    .saturating_sub(1)
                    .clamp(1, MAX_PREPARERS);
                let (queue, taken) = mpsc::channel();
                let taken = Arc::new(Mutex::new(taken));
                let mut started = 0;
                for _ in 0..threads {
                    let taken = taken.clone();
                    let thread = std::thread::Builder::new()
                        .name("deskhook-prepare".into())
                        .spawn(move || serve(&taken));
                    match thread {
                        Ok(_) => started += 1,
                        Err(e) => log::warn!(
                            target: deskhook::LOG_TARGET,
                            "cannot start a thread to prepare attempts ({e}); the delivery \
                             thread prepares them"
                        ),
                    }
                }
                (started > 0).then_some(queue)
            })
            .as_ref()
    }
}

/// A preparer thread: prepares the attempts it takes until every sender is gone.
fn serve(taken: &Mutex<mpsc::Receiver<Costly>>) {
    loop {
        // The others wait for the lock while one waits for an attempt.
        let next = lock(taken).recv();
        let Ok(Costly { mut attempt, back }) = next else {
            return;
        };
        let prepared = attempt.prepare(SystemTime::now());
        // Its task gone (its runtime shut down), the attempt is dropped and settles as a
        // failed attempt.
        let _ = back.send((attempt, prepared));
    }
}

/// Prepares `attempt` (renders its body, signs it: see [`Attempt::prepare`]): on a
/// preparer thread when that is costly, here otherwise. `None` when the attempt was dropped
/// there (a panic while preparing): it settled itself as a failed attempt.
async fn prepare(mut attempt: Attempt, preparers: &Preparers) -> Option<Ready> {
    if attempt.costly()
        && let Some(queue) = preparers.queue()
    {
        let (back, ready) = oneshot::channel();
        match queue.send(Costly { attempt, back }) {
            Ok(()) => return ready.await.ok(),
            // Every preparer is gone (each ended in a panic): here, then.
            Err(mpsc::SendError(costly)) => attempt = costly.attempt,
        }
    }
    let prepared = attempt.prepare(SystemTime::now());
    Some((attempt, prepared))
}
