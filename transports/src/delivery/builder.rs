//! The builder and the shutdown guard shared by both HTTP transports.

use std::sync::Arc;
use std::time::Duration;

use deskhook::policy::{BreakerPolicy, OverflowPolicy};

use super::{Connector, DeliveryConfig, Endpoint, Engine, Observer};
use crate::error::Error;

/// Builds a sink of either HTTP transport: `HttpSink::builder()`, then `.build()` (blocking
/// transport) or `.build_async()` (async transport). The settings are the same.
pub struct SinkBuilder {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) config: DeliveryConfig,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    #[cfg(feature = "spool")]
    pub(crate) spool: Option<crate::spool::Spool>,
    /// Whether the endpoints the spool kept from the last run are registered again.
    #[cfg(feature = "spool")]
    pub(crate) restore_endpoints: bool,
    /// What a relay needs of the engine; empty otherwise.
    pub(crate) hooks: super::Hooks,
}

impl std::fmt::Debug for SinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("SinkBuilder");
        f.field("endpoints", &self.endpoints)
            .field("config", &self.config)
            .field("observer", &self.observer.is_some());
        #[cfg(feature = "spool")]
        f.field("spool", &self.spool.as_ref().map(|s| s.dir().to_path_buf()));
        f.finish()
    }
}

/// Setters for fields of [`DeliveryConfig`], on a builder whose `config_mut()` is the
/// `DeliveryConfig` it builds: one list of settings, documented once on the struct, for
/// [`SinkBuilder`] and the NATS sink's builder.
macro_rules! delivery_setters {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        #[doc = concat!(
            "Sets [`DeliveryConfig::", stringify!($field), "`](crate::delivery::DeliveryConfig::",
            stringify!($field), "), where it and its default are described."
        )]
        #[must_use]
        pub fn $field(mut self, value: $ty) -> Self {
            self.config_mut().$field = value;
            self
        }
    )*};
}
// The NATS sink's builder uses the list by path; without it only this file does.
#[cfg_attr(not(feature = "nats"), allow(unused_imports))]
pub(crate) use delivery_setters;

impl SinkBuilder {
    fn config_mut(&mut self) -> &mut DeliveryConfig {
        &mut self.config
    }

    /// Adds an endpoint: the registry's first contents (more can be added, changed and
    /// removed while the sink runs, through [`DeliverySink::endpoints`](super::DeliverySink::endpoints)).
    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Replaces all delivery settings at once.
    #[must_use]
    pub fn config(mut self, config: DeliveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets [`DeliveryConfig::dead_letter_path`].
    #[must_use]
    pub fn dead_letter_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.dead_letter_path = path.into();
        self
    }

    delivery_setters! {
        queue_capacity: usize,
        overflow: OverflowPolicy,
        breaker: BreakerPolicy,
        retry_after_max: Duration,
        shutdown_timeout: Duration,
        max_payload: usize,
        max_in_flight: usize,
        max_threads: usize,
        thread_idle_timeout: Duration,
        worker_nice: u8,
        max_queued_bytes: usize,
        attempt_log: usize,
        attempt_retention: Duration,
        attempt_max_rows: u64,
        metrics_per_endpoint: bool,
    }

    /// Receives one record per attempt. Defaults to none.
    #[must_use]
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Puts the sink behind a durable spool: every accepted event is on disk before `emit`
    /// returns (or, with [`Durability::Receipt`](crate::spool::Durability), before its
    /// receipt settles), and what is undelivered at shutdown or at a crash is delivered after
    /// the next start, once its endpoint is registered. With a spool the spool is the queue:
    /// `queue_capacity` and `overflow` no longer apply (its `max_size` does), and dead letters
    /// go to the spool's table instead of the dead-letter file. Defaults to none.
    #[cfg(feature = "spool")]
    #[must_use]
    pub fn spool(mut self, spool: crate::spool::Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    /// With a spool: registers again, at start, the endpoints that were registered when the
    /// spool was last used and were made from an [`EndpointSpec`](super::EndpointSpec)
    /// (`deskhook.toml`, the admin API, [`Endpoints::upsert_spec`](super::Endpoints::upsert_spec)),
    /// so that endpoints added while the helpdesk ran survive a restart. Endpoints given to
    /// the builder win over kept ones of the same name. One whose settings no longer work
    /// (an environment variable gone, a CA file moved) is logged and left out. Defaults to
    /// off: the registry then starts with the builder's endpoints only. Either way the spool
    /// then keeps the endpoints of this run: a run without restoring forgets the others.
    #[cfg(feature = "spool")]
    #[must_use]
    pub fn restore_endpoints(mut self, restore: bool) -> Self {
        self.restore_endpoints = restore;
        self
    }

    /// A builder with no endpoint and the default settings.
    pub(crate) fn new() -> SinkBuilder {
        SinkBuilder {
            endpoints: Vec::new(),
            config: DeliveryConfig::default(),
            observer: None,
            #[cfg(feature = "spool")]
            spool: None,
            #[cfg(feature = "spool")]
            restore_endpoints: false,
            hooks: super::Hooks::default(),
        }
    }

    /// Puts the `stored` endpoints before the builder's, but those the builder has too.
    /// One that cannot be made now (an environment variable unset, a CA file moved) stays
    /// in the spool for the next start. Returns the names of the stored endpoints whose
    /// settings the builder's replaced (logged).
    #[cfg(feature = "spool")]
    fn restore(&mut self, stored: Vec<super::EndpointSpec>) -> Vec<String> {
        let given: std::collections::HashMap<&str, Option<&super::EndpointSpec>> = self
            .endpoints
            .iter()
            .map(|e| (e.name.as_str(), e.spec.as_deref()))
            .collect();
        let mut restored = Vec::new();
        let mut replaced = Vec::new();
        for spec in stored {
            if let Some(&own) = given.get(spec.name.as_str()) {
                // Changed at run time (the console, the API), then replaced by the
                // builder's (deskhook.toml's) settings: a rotated secret comes back unseen.
                if own != Some(&spec) {
                    replaced.push(spec.name);
                }
                continue;
            }
            match spec.to_endpoint() {
                Ok(endpoint) => restored.push(endpoint),
                Err(e) => log::error!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{}' kept in the spool is not registered again: {e}; it stays \
                     in the spool, for the next start",
                    spec.name
                ),
            }
        }
        if !replaced.is_empty() {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "endpoint(s) {}: the settings kept in the spool differ from those given at \
                 start (deskhook.toml's, the code's), which win by name. If the kept ones came \
                 from a change in the console or the API, that change is undone (a rotated \
                 secret signs again): make it where the endpoint is given to keep it",
                replaced.join(", ")
            );
        }
        if !restored.is_empty() {
            log::info!(
                target: deskhook::LOG_TARGET,
                "{} endpoint(s) kept in the spool registered again",
                restored.len()
            );
        }
        restored.append(&mut self.endpoints);
        self.endpoints = restored;
        replaced
    }

    /// Checks the settings, makes the engine with the transport's `connector` (its
    /// dead-letter file opened, or its spool started) and registers the endpoints; the
    /// transport then starts the workers. Returns the engine and the shutdown timeout.
    #[cfg_attr(not(feature = "spool"), allow(unused_mut))]
    pub(crate) fn start_engine(
        mut self,
        connector: Box<dyn Connector>,
    ) -> Result<(Arc<Engine>, Duration), Error> {
        self.config.validate()?;
        super::telemetry::describe();
        let mut seen = std::collections::HashSet::new();
        for endpoint in &self.endpoints {
            if !seen.insert(endpoint.name.as_str()) {
                return Err(Error::Config(format!(
                    "two endpoints are named '{}'; names must be unique (dead letters refer to them)",
                    endpoint.name
                )));
            }
        }
        let shutdown_timeout = self.config.shutdown_timeout;
        // The endpoints the spool kept from last time that this run leaves out (those of
        // the last run's builder, and, unless they are restored, those made from settings):
        // removed from its table once this run's are registered (not before, so that a start
        // that fails, or a process killed meanwhile, loses none).
        #[cfg(feature = "spool")]
        let mut unkept: Vec<String> = Vec::new();
        // The endpoints paused when the spool was last used: they start paused.
        #[cfg(feature = "spool")]
        let mut paused: Vec<String> = Vec::new();
        #[cfg(feature = "spool")]
        let spooled = match self.spool.take() {
            Some(spool) => {
                let (backlog, kept) = spool.backlog(&self.config)?;
                let restore = self.restore_endpoints;
                unkept = kept
                    .names
                    .into_iter()
                    .filter(|(_, settings)| !(restore && *settings))
                    .map(|(name, _)| name)
                    .collect();
                if restore {
                    self.restore(kept.specs);
                }
                paused = kept.paused;
                Some(backlog)
            }
            None => None,
        };
        #[cfg(not(feature = "spool"))]
        let spooled = None;
        // The dead-letter file is checked (and created) last, so that a sink refused for a
        // bad endpoint leaves no file behind.
        let mut letters_to_check = None;
        let backlog: Box<dyn super::backlog::Backlog> = match spooled {
            Some(backlog) => backlog,
            None => {
                let path = self.config.dead_letter_path.clone();
                letters_to_check = Some(super::dead_letter::DeadLetterLog::new(path.clone()));
                Box::new(super::backlog::MemoryBacklog {
                    letters: super::dead_letter::DeadLetterLog::new(path),
                    drop_on_stop: self.hooks.drop_on_stop,
                })
            }
        };
        let engine = Arc::new(Engine::new(
            self.config,
            self.observer,
            backlog,
            self.hooks,
            connector,
        ));
        engine.backlog().bind(Arc::downgrade(&engine));
        #[cfg(feature = "spool")]
        unkept.retain(|name| !self.endpoints.iter().any(|e| e.name == *name));
        for endpoint in self.endpoints {
            let route = engine.route_for(endpoint)?;
            #[cfg(feature = "spool")]
            let kept_paused = paused.contains(&route.endpoint.name);
            #[cfg(not(feature = "spool"))]
            let kept_paused = false;
            if kept_paused {
                log::info!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{}' starts paused, as it was when the spool was last used; \
                     resume it to deliver",
                    route.endpoint.name
                );
            }
            let start = super::registry::Install::Start {
                paused: kept_paused,
            };
            engine.install_as(route, start)?;
        }
        #[cfg(feature = "spool")]
        engine.backlog().forget(&unkept);
        if let Some(letters) = letters_to_check {
            letters.check()?;
        }
        Ok((engine, shutdown_timeout))
    }
}

/// Flushes and stops delivery when dropped, waiting at most the shutdown timeout (5 s by
/// default), and a second more for the letters of attempts given up as it stops. What is
/// still undelivered then is written to the dead letters and logged — or, with a spool,
/// stays in the spool for the next start.
///
/// Dropped on a thread of a multi-threaded tokio runtime, it waits with
/// `tokio::task::block_in_place`; on a current-thread runtime it cannot wait without
/// stopping the very tasks that deliver, so it dead-letters what is left at once and says
/// so: there, call [`shutdown_async`](DeliveryGuard::shutdown_async) instead.
#[must_use = "delivery stops when the guard is dropped; keep it for the life of the program"]
pub struct DeliveryGuard {
    engine: Arc<Engine>,
    timeout: Duration,
    done: bool,
    /// A `shutdown_async` was begun: dropped before it ended (cancelled), the guard stops
    /// the engine at once rather than flush again.
    #[cfg(feature = "_async")]
    cut_short: bool,
    /// The runtime the async transport made for itself, when it was built outside one.
    #[cfg(feature = "_async")]
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for DeliveryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryGuard")
            .field("engine", &self.engine)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DeliveryGuard {
    pub(crate) fn new(engine: Arc<Engine>, timeout: Duration) -> DeliveryGuard {
        DeliveryGuard {
            engine,
            timeout,
            done: false,
            #[cfg(feature = "_async")]
            cut_short: false,
            #[cfg(feature = "_async")]
            runtime: None,
        }
    }

    /// The guard owns this runtime and shuts it down last.
    #[cfg(feature = "_async")]
    pub(crate) fn owning(mut self, runtime: tokio::runtime::Runtime) -> DeliveryGuard {
        self.runtime = Some(runtime);
        self
    }

    /// Waits until everything queued is delivered or dead-lettered, at most `timeout`;
    /// delivery goes on afterwards. It blocks the calling thread; in async code use
    /// [`flush_async`](DeliveryGuard::flush_async).
    ///
    /// # Errors
    ///
    /// [`Error::Undelivered`] with what is still queued and in flight. It comes before
    /// `timeout` when all that is left waits on endpoints that cannot send within it
    /// (paused, waiting past it for a retry, a cool-down, a `Retry-After` or a rate limit's
    /// token, or held in a spool behind an event of a type this build does not know),
    /// naming them.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush(timeout)
    }

    /// Flushes for at most `timeout`, then stops the workers; what is left goes to the dead
    /// letters (with a spool: stays in the spool, which is closed). It blocks the calling thread; in async code use
    /// [`shutdown_async`](DeliveryGuard::shutdown_async).
    ///
    /// # Errors
    ///
    /// [`Error::Undelivered`] when something was left.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), Error> {
        self.done = true;
        self.engine.shutdown(timeout)
    }

    /// [`flush`](DeliveryGuard::flush) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`flush`](DeliveryGuard::flush).
    #[cfg(feature = "_async")]
    pub async fn flush_async(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.flush_async(timeout).await
    }

    /// [`shutdown`](DeliveryGuard::shutdown) without blocking the runtime while it flushes
    /// (the stop after it may wait a moment for letters being written on other threads).
    /// Cancelled before it ends (dropped by a `select!` or a `tokio::time::timeout`), it
    /// stops the workers at once as it is dropped: what is left goes where it goes at the
    /// end of `timeout` (the dead letters, or the spool).
    ///
    /// # Errors
    ///
    /// As [`shutdown`](DeliveryGuard::shutdown).
    #[cfg(feature = "_async")]
    pub async fn shutdown_async(mut self, timeout: Duration) -> Result<(), Error> {
        self.cut_short = true;
        let flushed = self.engine.flush_async(timeout).await;
        self.done = true;
        let stopped = self.engine.shutdown(Duration::ZERO);
        flushed.and(stopped)
    }
}

impl Drop for DeliveryGuard {
    fn drop(&mut self) {
        if !self.done {
            #[cfg(feature = "_async")]
            let (own_runtime, cut_short) = (self.runtime.is_some(), self.cut_short);
            #[cfg(not(feature = "_async"))]
            let (own_runtime, cut_short) = (false, false);
            let result = if cut_short {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "shutdown_async was cancelled before it ended: delivery stops now"
                );
                self.engine.shutdown(Duration::ZERO)
            } else {
                shutdown_here(&self.engine, self.timeout, own_runtime)
            };
            if let Err(err) = result {
                log::warn!(target: deskhook::LOG_TARGET, "{err}");
            }
        }
        #[cfg(feature = "_async")]
        if let Some(runtime) = self.runtime.take() {
            // Allowed anywhere, even inside another runtime.
            runtime.shutdown_background();
        }
    }
}

/// Shuts the engine down from whatever thread the guard is dropped on. With a runtime of
/// its own, the delivery tasks run on other threads and a plain blocking wait is fine.
fn shutdown_here(engine: &Engine, timeout: Duration, own_runtime: bool) -> Result<(), Error> {
    #[cfg(feature = "_async")]
    if !own_runtime && let Ok(handle) = tokio::runtime::Handle::try_current() {
        return match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "delivery guard dropped on a current-thread runtime: it cannot wait for \
                     delivery there; what is undelivered goes to the dead letters (call \
                     shutdown_async().await instead)"
                );
                engine.shutdown(Duration::ZERO)
            }
            _ => tokio::task::block_in_place(|| engine.shutdown(timeout)),
        };
    }
    let _ = own_runtime;
    engine.shutdown(timeout)
}

#[cfg(all(test, feature = "spool"))]
mod tests {
    use super::super::EndpointSpec;

    #[test]
    fn a_stored_endpoint_the_builder_also_gives_is_replaced_and_named_if_it_differs() {
        let spec = |name: &str, url: &str| {
            let mut spec = EndpointSpec::new(name, url);
            spec.allow_private = true;
            spec
        };
        let mut builder = super::SinkBuilder::new();
        for given in [
            spec("same", "http://127.0.0.1:9/a"),
            spec("edited", "http://127.0.0.1:9/b"),
        ] {
            builder.endpoints.push(given.to_endpoint().unwrap());
        }
        let replaced = builder.restore(vec![
            spec("same", "http://127.0.0.1:9/a"),
            spec("edited", "http://127.0.0.1:9/changed-in-the-console"),
            spec("stored-only", "http://127.0.0.1:9/c"),
        ]);
        assert_eq!(replaced, ["edited"]);
        let names: Vec<&str> = builder.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["stored-only", "same", "edited"]);
        assert_eq!(
            builder.endpoints[2].spec.as_ref().unwrap().url,
            "http://127.0.0.1:9/b"
        );
    }
}
