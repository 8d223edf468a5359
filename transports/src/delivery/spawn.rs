//! Starting an engine's async workers on a tokio runtime: shared by the async transports
//! (`http-async`, `nats`).

use std::sync::Arc;

use super::{AsyncTransport, Engine};
use crate::error::Error;

/// The current runtime when there is one; otherwise a small runtime of the sink's own (two
/// worker threads named `thread_name`), which the caller hands to the guard to shut down.
#[cfg(feature = "http-async")]
pub(crate) fn runtime_here(
    thread_name: &str,
) -> Result<(tokio::runtime::Handle, Option<tokio::runtime::Runtime>), Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok((handle, None)),
        Err(_) => {
            let runtime = own_runtime(thread_name)?;
            Ok((runtime.handle().clone(), Some(runtime)))
        }
    }
}

/// A multi-threaded runtime with two worker threads named `thread_name`.
pub(crate) fn own_runtime(thread_name: &str) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(thread_name)
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start a tokio runtime: {e}")))
}

/// Spawns `route.workers` tasks per endpoint on `handle`, each running
/// [`Engine::run_worker_async`] with `transport`.
pub(crate) fn spawn_workers<T: AsyncTransport + 'static>(
    engine: &Arc<Engine>,
    transport: &Arc<T>,
    handle: &tokio::runtime::Handle,
) {
    for (index, endpoint) in engine.endpoints().iter().enumerate() {
        for _ in 0..endpoint.route.workers {
            let (engine, transport) = (engine.clone(), transport.clone());
            engine.worker_started(index);
            // Made before the task and moved into it, so that it is dropped even when the
            // runtime drops the task without ever running it: the engine then dead-letters
            // what no worker is left to deliver.
            let alive = WorkerAlive {
                engine: engine.clone(),
                index,
            };
            handle.spawn(async move {
                let _alive = alive;
                engine.run_worker_async(index, transport.as_ref()).await;
            });
        }
    }
}

/// Tells the engine when an async worker ends, however it ends.
struct WorkerAlive {
    engine: Arc<Engine>,
    index: usize,
}

impl Drop for WorkerAlive {
    fn drop(&mut self) {
        self.engine.worker_gone(self.index);
    }
}
