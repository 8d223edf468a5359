//! The global facade, like `log`'s: the dispatcher `emit` sends to (set once, or scoped to a
//! thread for tests), and the free functions that emit to it and flush it.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::action::Action;
use crate::dispatcher::Dispatcher;
use crate::error::Error;
use crate::model::{Ticket, User};
use crate::webhook::WebhookEvent;

/// How long [`flush`] waits for the sinks.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

static GLOBAL: OnceLock<Dispatcher> = OnceLock::new();

/// Bit 0: the global dispatcher is set. The rest: twice the number of scoped dispatchers in
/// force on any thread. Zero means `emit` has nothing to do.
pub(crate) static STATE: AtomicUsize = AtomicUsize::new(0);
const GLOBAL_SET: usize = 1;
const ONE_SCOPED: usize = 2;

thread_local! {
    /// The scoped dispatchers of this thread, each with its guard's number; the last is in
    /// force. A guard takes out its own entry, whatever the order guards are dropped in.
    static SCOPED: RefCell<Vec<(u64, Dispatcher)>> = const { RefCell::new(Vec::new()) };
}

/// Numbers the scoped guards.
static NEXT_SCOPE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This thread's scoped dispatcher in force, if any. In a thread-local destructor that runs
/// after this thread's scoped dispatchers are gone, there is none.
fn scoped() -> Option<Dispatcher> {
    SCOPED
        .try_with(|s| s.borrow().last().map(|(_, d)| d.clone()))
        .ok()
        .flatten()
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

pub(crate) fn current(state: usize) -> Option<Dispatcher> {
    if state >= ONE_SCOPED
        && let Some(scoped) = scoped()
    {
        return Some(scoped);
    }
    GLOBAL.get().cloned()
}

pub(crate) fn with_current<R>(state: usize, f: impl FnOnce(&Dispatcher) -> R) -> Option<R> {
    if state >= ONE_SCOPED
        && let Some(scoped) = scoped()
    {
        return Some(f(&scoped));
    }
    GLOBAL.get().map(f)
}

/// Runs `f` with `dispatcher` in place of the global one on this thread, for tests: events
/// emitted inside go to `dispatcher`, whether a global one is set or not (with the async
/// forms, those whose futures are made inside).
///
/// ```
/// use deskhook::{Action, Dispatcher, Ticket, User};
/// use deskhook::sink::NopSink;
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
///
/// Guards may be dropped in any order: each takes out its own dispatcher, and the one set
/// last of those still in place is in force.
///
/// The scope is the thread's, not a task's: a guard held across an `.await` applies, while
/// its task is suspended, to the other tasks the thread runs. Hold it around synchronous
/// code, or make the async forms' futures inside it ([`emit_async`] takes its dispatcher
/// when called).
pub fn set_scoped(dispatcher: &Dispatcher) -> ScopedGuard {
    let id = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    // In a thread-local destructor after this thread's scopes are gone, nothing is set (and
    // `emit` there goes to the global dispatcher).
    let _ = SCOPED.try_with(|s| s.borrow_mut().push((id, dispatcher.clone())));
    STATE.fetch_add(ONE_SCOPED, Ordering::AcqRel);
    ScopedGuard {
        id,
        _not_send: std::marker::PhantomData,
    }
}

/// Takes its dispatcher out of this thread's scoped ones when dropped; from
/// [`set_scoped`].
#[must_use = "the scoped dispatcher is removed when the guard is dropped"]
pub struct ScopedGuard {
    id: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ScopedGuard {
    fn drop(&mut self) {
        let id = self.id;
        // Taken out under the borrow, dropped after it: the last clone of a dispatcher
        // drops its sinks, and a sink that emits as it goes must find the list free.
        let taken = SCOPED.try_with(|s| {
            let mut scoped = s.borrow_mut();
            let at = scoped.iter().position(|(own, _)| *own == id);
            at.map(|at| scoped.remove(at))
        });
        STATE.fetch_sub(ONE_SCOPED, Ordering::AcqRel);
        drop(taken);
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
        emit_to_current(state, action, ticket, initial_user, None);
    }
}

#[inline(never)]
pub(crate) fn emit_to_current(
    state: usize,
    action: Action,
    ticket: &Ticket,
    initial_user: &User,
    tenant: Option<&str>,
) {
    with_current(state, |d| {
        d.emit_tenanted(action, ticket, initial_user, tenant);
    });
}

/// Emits an event of any format to the current dispatcher: a Zenlix [`EventRef`](crate::EventRef) or
/// [`Event`](crate::Event), a [`usedesk::Event`](crate::formats::usedesk::Event) or an
/// [`iqchannels::Event`](crate::formats::iqchannels::Event). The sibling of [`emit`] for
/// every format, with the same promises: it never fails, never panics and never waits on the
/// network; with no dispatcher set it is one atomic load. See
/// [`Dispatcher::emit_webhook`].
///
/// ```
/// use deskhook::formats::iqchannels;
///
/// let body = br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21},"Rels":{}}"#;
/// let event = iqchannels::Event::from_json(body)?;
/// deskhook::emit_webhook(&event); // no dispatcher yet: does nothing
/// # Ok::<(), deskhook::Error>(())
/// ```
pub fn emit_webhook<E: WebhookEvent + ?Sized>(event: &E) {
    let state = STATE.load(Ordering::Acquire);
    if state != 0 {
        with_current(state, |d| d.emit_webhook(event));
    }
}

/// [`emit_webhook`] for async code: async sinks are awaited.
///
/// The dispatcher is the one current when this is called, not when the future is first
/// polled: a [`with_dispatcher`] around the call counts.
pub fn emit_webhook_async<E: WebhookEvent + ?Sized>(event: &E) -> impl Future<Output = ()> {
    let dispatcher = current(STATE.load(Ordering::Acquire));
    async move {
        if let Some(d) = dispatcher {
            d.emit_webhook_async(event).await;
        }
    }
}

/// [`emit`] for async code: async sinks are awaited rather than polled on this thread.
///
/// The dispatcher is the one current when this is called, not when the future is first
/// polled: a [`with_dispatcher`] around the call counts.
pub fn emit_async(
    action: Action,
    ticket: &Ticket,
    initial_user: &User,
) -> impl Future<Output = ()> {
    let dispatcher = if action.is_compiled_in() {
        current(STATE.load(Ordering::Acquire))
    } else {
        None
    };
    async move {
        if let Some(d) = dispatcher {
            d.emit_async(action, ticket, initial_user).await;
        }
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
