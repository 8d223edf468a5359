//! The dispatcher, which fans events out to sinks, and the global facade around it.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::action::{Action, ActionSet};
use crate::error::Error;
use crate::event::{Event, EventRef, Ticket, User};
use crate::sink::{AsyncEventSink, Emitted, EventSink};

/// The `log` target of every record deskhook writes.
pub const LOG_TARGET: &str = "deskhook";

/// How long [`flush`] waits for the sinks.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

enum SinkKind {
    Blocking(Box<dyn EventSink>),
    Async(Box<dyn AsyncEventSink>),
}

struct Route {
    name: String,
    sink: SinkKind,
    subscription: AtomicU16,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl Route {
    fn wants(&self, action: Action) -> bool {
        ActionSet::from_bits(self.subscription.load(Ordering::Relaxed)).contains(action)
    }

    fn record(
        &self,
        emitted: &Emitted<'_>,
        result: Result<Result<(), Error>, Box<dyn Any + Send>>,
    ) {
        let err = match result {
            Ok(Ok(())) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(err)) => err.with_sink_name(&self.name),
            Err(panic) => Error::Sink {
                sink: self.name.clone(),
                source: format!("panicked: {}", panic_message(&panic)).into(),
            },
        };
        self.failed.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            target: LOG_TARGET,
            "event {} ({} on ticket {}) not taken: {err}",
            emitted.id(),
            emitted.action(),
            emitted.ordering_key(),
        );
    }

    fn send_blocking(&self, emitted: &Emitted<'_>) {
        let result = catch_unwind(AssertUnwindSafe(|| match &self.sink {
            SinkKind::Blocking(sink) => sink.send(emitted),
            SinkKind::Async(sink) => pollster::block_on(sink.send(emitted)),
        }));
        self.record(emitted, result);
    }

    async fn send_async(&self, emitted: &Emitted<'_>) {
        let result = match &self.sink {
            SinkKind::Blocking(sink) => catch_unwind(AssertUnwindSafe(|| sink.send(emitted))),
            SinkKind::Async(sink) => CatchUnwind(sink.send(emitted)).await,
        };
        self.record(emitted, result);
    }

    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let result = catch_unwind(AssertUnwindSafe(|| match &self.sink {
            SinkKind::Blocking(sink) => sink.flush(timeout),
            SinkKind::Async(sink) => pollster::block_on(sink.flush(timeout)),
        }));
        match result {
            Ok(result) => result.map_err(|e| e.with_sink_name(&self.name)),
            Err(panic) => Err(Error::Sink {
                sink: self.name.clone(),
                source: format!("panicked in flush: {}", panic_message(&panic)).into(),
            }),
        }
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic with no message")
}

/// Polls a future inside `catch_unwind`, so that a panicking async sink is a failure of that
/// sink and not of the caller.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

struct Inner {
    routes: Box<[Route]>,
    emitted: AtomicU64,
    dropped: AtomicU64,
    /// Length of the last body serialized.
    body_size_hint: AtomicUsize,
}

/// Fans each event out to its sinks, each with its own subscription.
///
/// The event is serialized once, and only when at least one sink subscribes to its action.
/// Sinks are called in the order they were added. A sink's error is logged (target
/// `deskhook`, level warn) and counted in [`stats`](Dispatcher::stats); it never reaches the
/// caller and never stops the other sinks.
///
/// A `Dispatcher` is a handle: cloning it is a reference-count increment, and clones share
/// sinks, subscriptions and counters.
///
/// ```
/// use deskhook::{Action, ActionSet, Dispatcher, NopSink, Ticket, User};
///
/// let dispatcher = Dispatcher::builder()
///     .sink("audit", NopSink)
///     .sink_for("crm", NopSink, [Action::Create, Action::Ok])
///     .build();
///
/// let ticket = Ticket::new("E3XK", "Printer jammed");
/// let user = User::new("anna@example.com", "Anna Petrova");
/// dispatcher.emit(Action::Edit, &ticket, &user);
///
/// let stats = dispatcher.stats();
/// assert_eq!(stats.sinks[0].sent, 1); // audit takes everything
/// assert_eq!(stats.sinks[1].sent, 0); // crm does not take edits
/// ```
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    /// A builder to add sinks to.
    pub fn builder() -> DispatcherBuilder {
        DispatcherBuilder { routes: Vec::new() }
    }

    /// A dispatcher with no sinks: events go nowhere, as with [`NopSink`](crate::NopSink).
    pub fn none() -> Dispatcher {
        Dispatcher::builder().build()
    }

    fn wanted(&self, action: Action) -> bool {
        is_action_enabled(action) && self.inner.routes.iter().any(|r| r.wants(action))
    }

    /// Emits an event for `action` with the default description and `dt` now.
    ///
    /// Costs nothing more than a few atomic loads when no sink subscribes to `action` or the
    /// action is switched off; otherwise one serialization and one call per subscribed sink.
    pub fn emit(&self, action: Action, ticket: &Ticket, initial_user: &User) {
        if self.wanted(action) {
            self.dispatch(EventRef::new(action, ticket, initial_user));
        }
    }

    /// Emits a prepared event (own description or `dt`).
    pub fn emit_ref(&self, event: EventRef<'_>) {
        if self.wanted(event.action()) {
            self.dispatch(event);
        }
    }

    /// Emits an owned event. An event whose action is not one of the twelve is dropped,
    /// counted, and logged at warn.
    pub fn emit_event(&self, event: &Event) {
        if let Some(event) = self.event_ref(event) {
            self.emit_ref(event);
        }
    }

    /// Emits an event for `action`, awaiting async sinks instead of polling them to
    /// completion on this thread.
    pub async fn emit_async(&self, action: Action, ticket: &Ticket, initial_user: &User) {
        if self.wanted(action) {
            self.dispatch_async(EventRef::new(action, ticket, initial_user))
                .await;
        }
    }

    /// Emits a prepared event, awaiting async sinks.
    pub async fn emit_ref_async(&self, event: EventRef<'_>) {
        if self.wanted(event.action()) {
            self.dispatch_async(event).await;
        }
    }

    /// Emits an owned event, awaiting async sinks.
    pub async fn emit_event_async(&self, event: &Event) {
        if let Some(event) = self.event_ref(event) {
            self.emit_ref_async(event).await;
        }
    }

    fn event_ref<'a>(&self, event: &'a Event) -> Option<EventRef<'a>> {
        let found = event.as_event_ref().filter(|e| e.action().is_compiled_in());
        if found.is_none() {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                target: LOG_TARGET,
                "event for ticket {} dropped: action '{}' is not one of the actions compiled in \
                 ({})",
                event.ticket.code,
                event.action,
                ActionSet::compiled_in(),
            );
        }
        found
    }

    fn serialize<'a>(&self, event: EventRef<'a>) -> Option<Emitted<'a>> {
        self.inner.emitted.fetch_add(1, Ordering::Relaxed);
        // Start from the size of the last body (plus an eighth), so that serialization does
        // not grow the buffer from 128 bytes by doubling, copying all the way.
        let hint = self.inner.body_size_hint.load(Ordering::Relaxed);
        match Emitted::with_capacity(event, hint + hint / 8) {
            Ok(emitted) => {
                let len = emitted.body().len();
                if len != hint {
                    self.inner.body_size_hint.store(len, Ordering::Relaxed);
                }
                Some(emitted)
            }
            Err(err) => {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                log::error!(target: LOG_TARGET, "event dropped: {err}");
                None
            }
        }
    }

    fn dispatch(&self, event: EventRef<'_>) {
        let action = event.action();
        let Some(emitted) = self.serialize(event) else {
            return;
        };
        for route in self.inner.routes.iter().filter(|r| r.wants(action)) {
            route.send_blocking(&emitted);
        }
    }

    async fn dispatch_async(&self, event: EventRef<'_>) {
        let action = event.action();
        let Some(emitted) = self.serialize(event) else {
            return;
        };
        for route in self.inner.routes.iter().filter(|r| r.wants(action)) {
            route.send_async(&emitted).await;
        }
    }

    /// Flushes every sink, giving all of them together at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Flush`] listing each sink that failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let now = Instant::now();
        // A timeout too large to add (Duration::MAX for "no limit") waits a year at most.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(366 * 24 * 3600));
        let errors: Vec<Error> = self
            .inner
            .routes
            .iter()
            .filter_map(|route| {
                let left = deadline.saturating_duration_since(Instant::now());
                route.flush(left).err()
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Flush(errors))
        }
    }

    /// The actions the sink `name` subscribes to.
    pub fn subscription(&self, name: &str) -> Option<ActionSet> {
        self.route(name)
            .ok()
            .map(|r| ActionSet::from_bits(r.subscription.load(Ordering::Relaxed)))
    }

    /// Changes what the sink `name` subscribes to, at run time.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSink`] when no sink has that name.
    pub fn set_subscription(&self, name: &str, actions: impl Into<ActionSet>) -> Result<(), Error> {
        let route = self.route(name)?;
        route
            .subscription
            .store(actions.into().bits(), Ordering::Relaxed);
        Ok(())
    }

    fn route(&self, name: &str) -> Result<&Route, Error> {
        self.inner
            .routes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::UnknownSink {
                name: name.to_owned(),
                known: self.inner.routes.iter().map(|r| r.name.clone()).collect(),
            })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DispatcherStats {
        DispatcherStats {
            emitted: self.inner.emitted.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            sinks: self
                .inner
                .routes
                .iter()
                .map(|r| SinkStats {
                    name: r.name.clone(),
                    subscription: ActionSet::from_bits(r.subscription.load(Ordering::Relaxed)),
                    sent: r.sent.load(Ordering::Relaxed),
                    failed: r.failed.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::none()
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.inner.routes.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("Dispatcher").field("sinks", &names).finish()
    }
}

/// Counters of a [`Dispatcher`], from [`Dispatcher::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatcherStats {
    /// Events serialized and handed to sinks.
    pub emitted: u64,
    /// Events dropped before reaching any sink: an action that is not one of the twelve or
    /// not compiled in, or a body that could not be serialized. Each is logged.
    pub dropped: u64,
    /// One entry per sink, in the order they were added.
    pub sinks: Vec<SinkStats>,
}

/// Counters of one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// The actions it subscribes to now.
    pub subscription: ActionSet,
    /// Events the sink took.
    pub sent: u64,
    /// Events the sink failed to take (an error or a panic); each is logged.
    pub failed: u64,
}

/// Builds a [`Dispatcher`]; see [`Dispatcher::builder`].
pub struct DispatcherBuilder {
    routes: Vec<Route>,
}

impl DispatcherBuilder {
    fn push(mut self, name: impl Into<String>, sink: SinkKind, actions: ActionSet) -> Self {
        self.routes.push(Route {
            name: name.into(),
            sink,
            subscription: AtomicU16::new(actions.bits()),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        self
    }

    /// Adds a blocking sink that takes every action. `name` appears in logs and stats.
    #[must_use]
    pub fn sink(self, name: impl Into<String>, sink: impl EventSink + 'static) -> Self {
        self.push(name, SinkKind::Blocking(Box::new(sink)), ActionSet::all())
    }

    /// Adds a blocking sink that takes only `actions`.
    #[must_use]
    pub fn sink_for(
        self,
        name: impl Into<String>,
        sink: impl EventSink + 'static,
        actions: impl Into<ActionSet>,
    ) -> Self {
        self.push(name, SinkKind::Blocking(Box::new(sink)), actions.into())
    }

    /// Adds an async sink that takes every action.
    #[must_use]
    pub fn async_sink(self, name: impl Into<String>, sink: impl AsyncEventSink + 'static) -> Self {
        self.push(name, SinkKind::Async(Box::new(sink)), ActionSet::all())
    }

    /// Adds an async sink that takes only `actions`.
    #[must_use]
    pub fn async_sink_for(
        self,
        name: impl Into<String>,
        sink: impl AsyncEventSink + 'static,
        actions: impl Into<ActionSet>,
    ) -> Self {
        self.push(name, SinkKind::Async(Box::new(sink)), actions.into())
    }

    /// The dispatcher.
    pub fn build(self) -> Dispatcher {
        Dispatcher {
            inner: Arc::new(Inner {
                routes: self.routes.into_boxed_slice(),
                emitted: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                body_size_hint: AtomicUsize::new(0),
            }),
        }
    }
}

impl fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.routes.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("DispatcherBuilder")
            .field("sinks", &names)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Run-time action switches.

static ENABLED: AtomicU16 = AtomicU16::new(ActionSet::all().bits());

/// Switches `action` on or off for every dispatcher, at run time. All actions start on.
///
/// An action that is off costs `emit` a compare and an atomic load.
pub fn set_action_enabled(action: Action, enabled: bool) {
    if enabled {
        ENABLED.fetch_or(ActionSet::only(action).bits(), Ordering::Relaxed);
    } else {
        ENABLED.fetch_and(!ActionSet::only(action).bits(), Ordering::Relaxed);
    }
}

/// Sets which actions are on, at run time, for every dispatcher.
pub fn set_enabled_actions(actions: impl Into<ActionSet>) {
    ENABLED.store(actions.into().bits(), Ordering::Relaxed);
}

/// The actions that are on: compiled in and not switched off.
pub fn enabled_actions() -> ActionSet {
    ActionSet::from_bits(ENABLED.load(Ordering::Relaxed) & ActionSet::compiled_in().bits())
}

/// Whether `action` is compiled in and switched on.
#[inline]
pub fn is_action_enabled(action: Action) -> bool {
    action.is_compiled_in()
        && ActionSet::from_bits(ENABLED.load(Ordering::Relaxed)).contains(action)
}

// ---------------------------------------------------------------------------------------------
// The global facade.

static GLOBAL: OnceLock<Dispatcher> = OnceLock::new();

/// Bit 0: the global dispatcher is set. The rest: twice the number of scoped dispatchers in
/// force on any thread. Zero means `emit` has nothing to do.
static STATE: AtomicUsize = AtomicUsize::new(0);
const GLOBAL_SET: usize = 1;
const ONE_SCOPED: usize = 2;

thread_local! {
    static SCOPED: RefCell<Option<Dispatcher>> = const { RefCell::new(None) };
}

/// Sets the global dispatcher that [`emit`] sends to. Call it once, at start-up, like
/// `log::set_logger`.
///
/// # Errors
///
/// [`Error::DispatcherAlreadySet`] if it was set before; the first one stays.
pub fn set_dispatcher(dispatcher: Dispatcher) -> Result<(), Error> {
    GLOBAL
        .set(dispatcher)
        .map_err(|_| Error::DispatcherAlreadySet)?;
    STATE.fetch_or(GLOBAL_SET, Ordering::Release);
    Ok(())
}

/// The dispatcher [`emit`] sends to on this thread: the scoped one if any, else the global
/// one, else `None`.
pub fn dispatcher() -> Option<Dispatcher> {
    current(STATE.load(Ordering::Acquire))
}

fn current(state: usize) -> Option<Dispatcher> {
    if state >= ONE_SCOPED
        && let Some(scoped) = SCOPED.with(|s| s.borrow().clone())
    {
        return Some(scoped);
    }
    GLOBAL.get().cloned()
}

fn with_current<R>(state: usize, f: impl FnOnce(&Dispatcher) -> R) -> Option<R> {
    if state >= ONE_SCOPED
        && let Some(scoped) = SCOPED.with(|s| s.borrow().clone())
    {
        return Some(f(&scoped));
    }
    GLOBAL.get().map(f)
}

/// Runs `f` with `dispatcher` in place of the global one on this thread, for tests: events
/// emitted inside go to `dispatcher`, whether a global one is set or not.
///
/// ```
/// use deskhook::{Action, Dispatcher, NopSink, Ticket, User};
///
/// let dispatcher = Dispatcher::builder().sink("test", NopSink).build();
/// deskhook::with_dispatcher(&dispatcher, || {
///     deskhook::emit(Action::Create, &Ticket::new("T1", "Hello"), &User::default());
/// });
/// assert_eq!(dispatcher.stats().sinks[0].sent, 1);
/// ```
pub fn with_dispatcher<R>(dispatcher: &Dispatcher, f: impl FnOnce() -> R) -> R {
    let _guard = set_scoped(dispatcher);
    f()
}

/// Puts `dispatcher` in place of the global one on this thread until the guard is dropped;
/// the guard form of [`with_dispatcher`].
pub fn set_scoped(dispatcher: &Dispatcher) -> ScopedGuard {
    let previous = SCOPED.with(|s| s.borrow_mut().replace(dispatcher.clone()));
    STATE.fetch_add(ONE_SCOPED, Ordering::AcqRel);
    ScopedGuard {
        previous,
        _not_send: std::marker::PhantomData,
    }
}

/// Restores the previous dispatcher of this thread when dropped; from [`set_scoped`].
#[must_use = "the scoped dispatcher is removed when the guard is dropped"]
pub struct ScopedGuard {
    previous: Option<Dispatcher>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ScopedGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        SCOPED.with(|s| *s.borrow_mut() = previous);
        STATE.fetch_sub(ONE_SCOPED, Ordering::AcqRel);
    }
}

impl fmt::Debug for ScopedGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGuard").finish_non_exhaustive()
    }
}

/// Emits an event for `action` on `ticket`, performed by `initial_user`, to the current
/// dispatcher; `description` is the action's label in the user's language and `dt` is now.
///
/// It never fails, never panics and never waits on the network: sinks that deliver over the
/// network queue the event and return. What it costs:
///
/// - an action compiled out (see the `action-*` features) on a constant `action`: nothing, the
///   call compiles away;
/// - no dispatcher set: one atomic load;
/// - an action switched off, or no sink subscribed to it: a few atomic loads;
/// - otherwise one serialization of the event and one call per subscribed sink.
///
/// ```
/// use deskhook::{Action, Ticket, User};
///
/// let ticket = Ticket::new("E3XK", "Printer jammed");
/// let user = User::new("anna@example.com", "Anna Petrova");
/// deskhook::emit(Action::Create, &ticket, &user); // no dispatcher yet: does nothing
/// ```
#[inline(always)]
pub fn emit(action: Action, ticket: &Ticket, initial_user: &User) {
    if !action.is_compiled_in() {
        return;
    }
    let state = STATE.load(Ordering::Acquire);
    if state != 0 {
        emit_to_current(state, action, ticket, initial_user);
    }
}

#[inline(never)]
fn emit_to_current(state: usize, action: Action, ticket: &Ticket, initial_user: &User) {
    with_current(state, |d| d.emit(action, ticket, initial_user));
}

/// Emits a whole event with its own `description`, `dt` and extra keys. An event whose action
/// is not one of the twelve (or is compiled out) is dropped, counted and logged at warn.
///
/// ```
/// use deskhook::{Action, Event, Ticket, User};
///
/// let mut event = Event::new(Action::Comment, Ticket::new("E3XK", "Printer jammed"), User::default());
/// event.description = "Anna replied".into();
/// deskhook::emit_event(&event);
/// ```
pub fn emit_event(event: &Event) {
    let state = STATE.load(Ordering::Acquire);
    if state != 0 {
        with_current(state, |d| d.emit_event(event));
    }
}

/// Emits a prepared [`EventRef`] (own description or `dt`, no clone of the ticket).
pub fn emit_ref(event: EventRef<'_>) {
    if !event.action().is_compiled_in() {
        return;
    }
    let state = STATE.load(Ordering::Acquire);
    if state != 0 {
        with_current(state, |d| d.emit_ref(event));
    }
}

/// [`emit`] for async code: async sinks are awaited rather than polled on this thread.
pub async fn emit_async(action: Action, ticket: &Ticket, initial_user: &User) {
    if !action.is_compiled_in() {
        return;
    }
    if let Some(d) = current(STATE.load(Ordering::Acquire)) {
        d.emit_async(action, ticket, initial_user).await;
    }
}

/// [`emit_event`] for async code.
pub async fn emit_event_async(event: &Event) {
    if let Some(d) = current(STATE.load(Ordering::Acquire)) {
        d.emit_event_async(event).await;
    }
}

/// Flushes the current dispatcher's sinks, waiting at most [`DEFAULT_FLUSH_TIMEOUT`] (5 s).
/// Does nothing when no dispatcher is set.
///
/// # Errors
///
/// As [`Dispatcher::flush`].
pub fn flush() -> Result<(), Error> {
    flush_within(DEFAULT_FLUSH_TIMEOUT)
}

/// Flushes the current dispatcher's sinks, waiting at most `timeout`.
///
/// # Errors
///
/// As [`Dispatcher::flush`].
pub fn flush_within(timeout: Duration) -> Result<(), Error> {
    match dispatcher() {
        Some(d) => d.flush(timeout),
        None => Ok(()),
    }
}
