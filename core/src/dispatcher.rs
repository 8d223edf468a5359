//! The dispatcher, which fans events out to sinks; the global facade around it is in
//! `global.rs`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::action::Action;
use crate::error::Error;
use crate::event_type::{EventType, EventTypeSet};
use crate::log_text::shown_in_log;
use crate::model::{EventRef, Ticket, User};
use crate::sink::{AsyncEventSink, Emitted, EventSink, unknown_type_name};
use crate::switch::is_enabled;
use crate::tenant::{ForTenant, check_tenant};
use crate::webhook::{WebhookEvent, WebhookRef};

/// The `log` target of every record deskhook writes.
pub const LOG_TARGET: &str = "deskhook";

enum SinkKind {
    Blocking(Box<dyn EventSink>),
    Async(Box<dyn AsyncEventSink>),
}

struct Route {
    name: String,
    sink: SinkKind,
    /// An [`EventTypeSet`]'s bits.
    subscription: AtomicU32,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl Route {
    fn wants(&self, event_type: EventType) -> bool {
        self.subscription().contains(event_type)
    }

    fn subscription(&self) -> EventTypeSet {
        EventTypeSet::from_bits(self.subscription.load(Ordering::Relaxed))
    }

    fn record(
        &self,
        emitted: &Emitted<'_>,
        result: Result<Result<(), Error>, Box<dyn Any + Send>>,
    ) {
        let failure = match result {
            Ok(Ok(())) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(err)) => Ok(err),
            Err(panic) => Err(panic),
        };
        self.failed.fetch_add(1, Ordering::Relaxed);
        let ticket = shown_in_log(emitted.ordering_key());
        // The error, the panic's payload and the logger are other people's code: a `Display`
        // or a `Drop` of theirs that panics must not reach the caller of `emit` either. The
        // text is made (and the error dropped) first, then logged once.
        let made = catch_unwind(AssertUnwindSafe(|| {
            let err = match failure {
                Ok(err) => err.with_sink_name(&self.name),
                Err(panic) => Error::Sink {
                    sink: self.name.clone(),
                    source: format!("panicked: {}", panic_message(&panic)).into(),
                },
            };
            (not_taken_level(&err), err.to_string())
        }));
        let (level, text) = made.unwrap_or_else(|panic| {
            // Its drop could panic again.
            std::mem::forget(panic);
            (
                log::Level::Error,
                format!(
                    "sink '{}' failed, and its error panicked as it was shown",
                    self.name
                ),
            )
        });
        guarded(|| {
            log::log!(
                target: LOG_TARGET,
                level,
                "event {} ({} on ticket {ticket}) not taken: {text}",
                emitted.id(),
                emitted.event_type(),
            );
        });
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
            Err(panic) => {
                let message = panic_message(&panic).to_owned();
                // Its drop could panic again.
                std::mem::forget(panic);
                Err(Error::Sink {
                    sink: self.name.clone(),
                    source: format!("panicked in flush: {message}").into(),
                })
            }
        }
    }
}

/// Runs `log`, a log line of an emit's: the logger (and what the line shows: a
/// `WebhookEvent` of the caller's) is other people's code, and a panic of theirs must not
/// reach the caller of `emit`, which never panics. Its payload is forgotten, not dropped
/// (its drop could panic again).
fn guarded(log: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(log)) {
        std::mem::forget(panic);
    }
}

/// The sinks an async emit has not reached yet: if its future is dropped before it ends (a
/// client that hung up, a timeout around it), each is counted as failed and logged, rather
/// than never hearing of the event unseen. `next` is the first route not reached.
struct Unsent<'d> {
    routes: &'d [Route],
    next: usize,
    event_type: EventType,
    id: crate::sink::EventId,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        for route in self.routes.iter().skip(self.next) {
            if route.wants(self.event_type) {
                route.failed.fetch_add(1, Ordering::Relaxed);
                guarded(|| {
                    log::warn!(
                        target: LOG_TARGET,
                        "event {} ({}) not taken by sink '{}': the emit was cancelled before \
                         it reached it (its future was dropped)",
                        self.id,
                        self.event_type,
                        route.name
                    );
                });
            }
        }
    }
}

/// How loud a sink's refusal is logged: at warn, unless the sink logged it already.
fn not_taken_level(err: &Error) -> log::Level {
    if err.is_logged() {
        log::Level::Debug
    } else {
        log::Level::Warn
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
}

/// Fans each event out to its sinks, each with its own subscription.
///
/// Events of every format go through it: Zenlix events with [`emit`](Dispatcher::emit) and
/// its siblings, any format with [`emit_webhook`](Dispatcher::emit_webhook). A sink subscribes
/// to event types ([`EventTypeSet`]); a set of Zenlix actions converts into one.
///
/// The event is serialized once, and only when at least one sink subscribes to its type.
/// Sinks are called in the order they were added. A sink's error is logged (target
/// `deskhook`, level warn) and counted in [`stats`](Dispatcher::stats); it never reaches the
/// caller and never stops the other sinks.
///
/// A `Dispatcher` is a handle: cloning it is a reference-count increment, and clones share
/// sinks, subscriptions and counters.
///
/// ```
/// use deskhook::{Action, Dispatcher, Ticket, User};
/// use deskhook::sink::NopSink;
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

    /// A dispatcher with no sinks: events go nowhere, as with [`NopSink`](crate::sink::NopSink).
    pub fn none() -> Dispatcher {
        Dispatcher::builder().build()
    }

    fn wanted(&self, event_type: EventType) -> bool {
        is_enabled(event_type) && self.inner.routes.iter().any(|r| r.wants(event_type))
    }

    /// Emits an event for `action` with the default description and `dt` now.
    ///
    /// Costs nothing more than a few atomic loads when no sink subscribes to `action` or the
    /// action is switched off; otherwise one serialization and one call per subscribed sink.
    pub fn emit(&self, action: Action, ticket: &Ticket, initial_user: &User) {
        self.emit_tenanted(action, ticket, initial_user, None);
    }

    /// [`emit`](Dispatcher::emit) for `tenant`, or for no tenant when `None`.
    #[inline]
    pub(crate) fn emit_tenanted(
        &self,
        action: Action,
        ticket: &Ticket,
        initial_user: &User,
        tenant: Option<&str>,
    ) {
        let event_type = EventType::Zenlix(action);
        if self.wanted(event_type) {
            let event = EventRef::new(action, ticket, initial_user);
            self.dispatch(WebhookRef::Zenlix(event), event_type, tenant);
        }
    }

    /// Emits the events of `tenant` (see [`ForTenant`]): the sinks receive them with
    /// [`Emitted::tenant`] set.
    ///
    /// ```
    /// use deskhook::{Action, Dispatcher, sample};
    /// use deskhook::sink::NopSink;
    ///
    /// let dispatcher = Dispatcher::builder().sink("all", NopSink).build();
    /// let (ticket, user) = (sample::ticket(), sample::user());
    /// dispatcher.for_tenant("acme").emit(Action::Create, &ticket, &user);
    /// assert_eq!(dispatcher.stats().sinks[0].sent, 1);
    /// ```
    pub fn for_tenant<'a>(&'a self, tenant: &'a str) -> ForTenant<'a> {
        ForTenant {
            tenant,
            dispatcher: Some(self),
        }
    }

    /// Emits an event of any format: a Zenlix [`EventRef`] or [`Event`](crate::Event), a
    /// [`usedesk::Event`](crate::formats::usedesk::Event) or an
    /// [`iqchannels::Event`](crate::formats::iqchannels::Event).
    ///
    /// It goes to the sinks subscribed to its [`EventType`], like any event: serialized
    /// once, compact, with the format's content type. An event with no type deskhook can send
    /// (a Zenlix action that is not one of the twelve, an iQChannels or Usedesk type this
    /// version does not know) is dropped, counted and logged at warn. What it costs is what
    /// [`emit`](Dispatcher::emit) costs, plus making the ordering key of the formats with
    /// numeric ids (one small allocation).
    ///
    /// A Usedesk event carries its channel's token in `secret`, as Usedesk sends it, and
    /// goes out with it: forwarding one received from Usedesk tells every endpoint
    /// subscribed to it that token, with which a receiver that authenticates Usedesk by its
    /// token would take their events. Give such an event the token of the receivers it goes
    /// to (or none) before emitting it.
    ///
    /// ```
    /// use deskhook::Dispatcher;
    /// use deskhook::sink::NopSink;
    /// use deskhook::formats::usedesk;
    ///
    /// let dispatcher = Dispatcher::builder()
    ///     .sink_for("crm", NopSink, ["usedesk.comment_created".parse::<deskhook::EventType>()?])
    ///     .build();
    /// let body = br#"{"secret":"0e8f","comment":{"id":5,"message":"Hi","ticket_id":2261907}}"#;
    /// dispatcher.emit_webhook(&usedesk::Event::from_json(body)?);
    /// assert_eq!(dispatcher.stats().sinks[0].sent, 1);
    /// # Ok::<(), deskhook::Error>(())
    /// ```
    pub fn emit_webhook<E: WebhookEvent + ?Sized>(&self, event: &E) {
        self.emit_webhook_tenanted(event, None);
    }

    pub(crate) fn emit_webhook_tenanted<E: WebhookEvent + ?Sized>(
        &self,
        event: &E,
        tenant: Option<&str>,
    ) {
        if let Some((view, event_type)) = self.webhook_view(event) {
            self.dispatch(view, event_type, tenant);
        }
    }

    /// [`emit_webhook`](Dispatcher::emit_webhook), awaiting async sinks.
    pub async fn emit_webhook_async<E: WebhookEvent + ?Sized>(&self, event: &E) {
        self.emit_webhook_async_tenanted(event, None).await;
    }

    pub(crate) async fn emit_webhook_async_tenanted<E: WebhookEvent + ?Sized>(
        &self,
        event: &E,
        tenant: Option<&str>,
    ) {
        if let Some((view, event_type)) = self.webhook_view(event) {
            self.dispatch_async(view, event_type, tenant).await;
        }
    }

    fn webhook_view<'a, E: WebhookEvent + ?Sized>(
        &self,
        event: &'a E,
    ) -> Option<(WebhookRef<'a>, EventType)> {
        let Some(event_type) = event.event_type() else {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            guarded(|| {
                // Named as it came (from another system's payload: a near type would
                // mislead).
                let name = unknown_type_name(event);
                log::warn!(
                    target: LOG_TARGET,
                    "{} event for {} dropped: its type '{}' is not one deskhook can send; a \
                     newer deskhook may know it",
                    event.format(),
                    shown_in_log(&event.ordering_key()),
                    shown_in_log(&name),
                );
            });
            return None;
        };
        // A whole event is data that came from somewhere: one whose action this build left
        // out is dropped visibly (a constant action compiled out in `emit` costs nothing).
        if !event_type.is_compiled_in() {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            guarded(|| {
                log::warn!(
                    target: LOG_TARGET,
                    "{event_type} event for {} dropped: its action is not compiled in (turn \
                     on deskhook's feature action-{event_type})",
                    shown_in_log(&event.ordering_key()),
                );
            });
            return None;
        }
        if !self.wanted(event_type) {
            return None;
        }
        event.webhook_ref().map(|view| (view, event_type))
    }

    /// Emits an event for `action`, awaiting async sinks instead of polling them to
    /// completion on this thread.
    pub async fn emit_async(&self, action: Action, ticket: &Ticket, initial_user: &User) {
        self.emit_async_tenanted(action, ticket, initial_user, None)
            .await;
    }

    pub(crate) async fn emit_async_tenanted(
        &self,
        action: Action,
        ticket: &Ticket,
        initial_user: &User,
        tenant: Option<&str>,
    ) {
        let event_type = EventType::Zenlix(action);
        if self.wanted(event_type) {
            let event = EventRef::new(action, ticket, initial_user);
            self.dispatch_async(WebhookRef::Zenlix(event), event_type, tenant)
                .await;
        }
    }

    /// Serializes the event for the sinks, or drops it (counted and logged) when `tenant` is
    /// invalid or the event cannot be serialized. The tenant is checked here, once per emit,
    /// after the checks that make an unwanted emit cheap.
    fn serialize<'a>(
        &self,
        event: WebhookRef<'a>,
        event_type: EventType,
        tenant: Option<&'a str>,
    ) -> Option<Emitted<'a>> {
        if let Some(tenant) = tenant
            && let Err(err) = check_tenant(tenant)
        {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            guarded(|| {
                log::warn!(
                    target: LOG_TARGET,
                    "{event_type} event for {} dropped: {err}",
                    shown_in_log(&event.ordering_key()),
                );
            });
            return None;
        }
        match Emitted::serialized(event, event_type, tenant) {
            Ok(emitted) => {
                self.inner.emitted.fetch_add(1, Ordering::Relaxed);
                Some(emitted)
            }
            Err(err) => {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                guarded(|| log::error!(target: LOG_TARGET, "{event_type} event dropped: {err}"));
                None
            }
        }
    }

    fn dispatch<'a>(&self, event: WebhookRef<'a>, event_type: EventType, tenant: Option<&'a str>) {
        let Some(emitted) = self.serialize(event, event_type, tenant) else {
            return;
        };
        for route in self.inner.routes.iter().filter(|r| r.wants(event_type)) {
            route.send_blocking(&emitted);
        }
    }

    async fn dispatch_async<'a>(
        &self,
        event: WebhookRef<'a>,
        event_type: EventType,
        tenant: Option<&'a str>,
    ) {
        let Some(emitted) = self.serialize(event, event_type, tenant) else {
            return;
        };
        let routes = &self.inner.routes[..];
        let mut unsent = Unsent {
            routes,
            next: 0,
            event_type,
            id: emitted.id(),
        };
        for (i, route) in routes.iter().enumerate() {
            // The sink being awaited has the event in hand (cancelled, it may have queued
            // it): only those after it are unsent.
            unsent.next = i + 1;
            if route.wants(event_type) {
                route.send_async(&emitted).await;
            }
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

    /// The event types, of every format, the sink `name` subscribes to.
    pub fn subscription(&self, name: &str) -> Option<EventTypeSet> {
        self.route(name).ok().map(Route::subscription)
    }

    /// Changes what the sink `name` subscribes to, at run time. An action or an array of
    /// actions (`[Action::Create]`) subscribes it to those actions and to nothing of the other
    /// formats; name the other formats' types in an [`EventTypeSet`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSink`] when no sink has that name.
    pub fn set_subscription(
        &self,
        name: &str,
        event_types: impl Into<EventTypeSet>,
    ) -> Result<(), Error> {
        let route = self.route(name)?;
        route
            .subscription
            .store(event_types.into().bits(), Ordering::Relaxed);
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
                    subscription: r.subscription(),
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
    /// Events dropped before reaching any sink: a whole event (`emit_webhook`) whose action
    /// is not one of the twelve or not compiled in, an event type deskhook does not know, an
    /// invalid tenant (see [`check_tenant`](crate::dispatch::check_tenant)), or a body that
    /// could not be serialized. Each is logged. (`emit` of an action compiled out does
    /// nothing at all, not even count: that is what compiling it out is for.)
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
    /// The event types, of every format, it subscribes to now.
    pub subscription: EventTypeSet,
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
    fn push(mut self, name: impl Into<String>, sink: SinkKind, types: EventTypeSet) -> Self {
        self.routes.push(Route {
            name: name.into(),
            sink,
            subscription: AtomicU32::new(types.bits()),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        self
    }

    /// Adds a blocking sink that takes every event of every format. `name` appears in logs
    /// and stats, and names the sink for [`Dispatcher::set_subscription`]: give each sink a
    /// name of its own (of two with one name, those calls reach the first added).
    #[must_use]
    pub fn sink(self, name: impl Into<String>, sink: impl EventSink + 'static) -> Self {
        self.push(
            name,
            SinkKind::Blocking(Box::new(sink)),
            EventTypeSet::all(),
        )
    }

    /// Adds a blocking sink that takes only `event_types`: Zenlix actions
    /// (`[Action::Create, Action::Ok]`) or event types of any format (an [`EventTypeSet`],
    /// `[EventType; N]`).
    #[must_use]
    pub fn sink_for(
        self,
        name: impl Into<String>,
        sink: impl EventSink + 'static,
        event_types: impl Into<EventTypeSet>,
    ) -> Self {
        self.push(name, SinkKind::Blocking(Box::new(sink)), event_types.into())
    }

    /// Adds an async sink that takes every event of every format.
    #[must_use]
    pub fn async_sink(self, name: impl Into<String>, sink: impl AsyncEventSink + 'static) -> Self {
        self.push(name, SinkKind::Async(Box::new(sink)), EventTypeSet::all())
    }

    /// Adds an async sink that takes only `event_types` (as [`sink_for`](Self::sink_for)).
    #[must_use]
    pub fn async_sink_for(
        self,
        name: impl Into<String>,
        sink: impl AsyncEventSink + 'static,
        event_types: impl Into<EventTypeSet>,
    ) -> Self {
        self.push(name, SinkKind::Async(Box::new(sink)), event_types.into())
    }

    /// The dispatcher. Two sinks of one name are logged (a warning): calls that name a
    /// sink reach the first added.
    pub fn build(self) -> Dispatcher {
        for name in twice(self.routes.iter().map(|r| r.name.as_str())) {
            log::warn!(
                target: crate::LOG_TARGET,
                "two sinks are named '{name}': set_subscription reaches the first added, and \
                 the stats show both under one name; give each sink a name of its own"
            );
        }
        Dispatcher {
            inner: Arc::new(Inner {
                routes: self.routes.into_boxed_slice(),
                emitted: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        }
    }
}

/// The names given more than once, each once, in the order of their second use.
fn twice<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    let mut again = Vec::new();
    for name in names {
        if !seen.insert(name) && !again.contains(&name) {
            again.push(name);
        }
    }
    again
}

impl fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.routes.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("DispatcherBuilder")
            .field("sinks", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_given_twice_are_found_once_each() {
        let names = ["http", "file", "http", "nats", "file", "http"];
        assert_eq!(twice(names.into_iter()), ["http", "file"]);
        assert!(twice(["http", "file"].into_iter()).is_empty());
    }

    /// An async sink written by hand (not with `async fn`) that panics making its future:
    /// counted as failed, and the other sinks go on, as for one panicking in its future (the
    /// dispatcher holds it boxed, and the box's `send` calls it from inside its future).
    #[test]
    fn an_async_sink_that_panics_before_its_future_is_counted_not_raised() {
        use crate::sink::{AsyncEventSink, NopSink};
        use std::future::Future;
        struct PanicsFirst;
        impl AsyncEventSink for PanicsFirst {
            fn send<'life0, 'life1, 'life2, 'async_trait>(
                &'life0 self,
                _event: &'life1 Emitted<'life2>,
            ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                'life2: 'async_trait,
                Self: 'async_trait,
            {
                panic!("before its future")
            }
        }
        let dispatcher = Dispatcher::builder()
            .async_sink("first", PanicsFirst)
            .sink("second", NopSink)
            .build();
        pollster::block_on(dispatcher.emit_async(
            crate::Action::Create,
            &crate::sample::ticket(),
            &crate::sample::user(),
        ));
        let stats = dispatcher.stats();
        assert_eq!((stats.sinks[0].failed, stats.sinks[1].sent), (1, 1));
    }

    #[test]
    fn a_refusal_the_sink_logged_is_not_warned_again() {
        assert_eq!(
            not_taken_level(&Error::sink_logged("queue full")),
            log::Level::Debug
        );
        assert_eq!(not_taken_level(&Error::sink("disk full")), log::Level::Warn);
    }
}
