//! Tenants: the company an event belongs to, in a helpdesk that serves several.
//!
//! This module says what a valid tenant is and holds [`ForTenant`], which emits for one. It does
//! not route anything: the dispatcher hands the tenant to the sinks in
//! [`Emitted::tenant`](crate::sink::Emitted::tenant), and the transports decide which endpoints
//! receive it.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use crate::action::Action;
use crate::dispatcher::Dispatcher;
use crate::error::{Error, shorten};
use crate::global::{STATE, current, emit_to_current, with_current};
use crate::model::{Ticket, User};
use crate::webhook::WebhookEvent;

/// The longest tenant accepted, in bytes of UTF-8.
pub const MAX_TENANT_LEN: usize = 128;

/// Checks that `tenant` can name the tenant of an event: it is not empty, is at most
/// [`MAX_TENANT_LEN`] (128) bytes long and holds no control character (`\n`, `\t`, `\0`, …),
/// line or paragraph separator (U+2028, U+2029), bidirectional formatting character (U+202E
/// and the like) nor invisible one (U+200B zero width space, U+2060 word joiner, U+FEFF), so
/// that it cannot break or disguise a log line, nor look like another tenant. Any other
/// character is allowed (`/`, non-ASCII letters): deskhook encodes tenants where they go in
/// headers, and a caller that builds file names or paths from them must encode them too.
///
/// It costs one pass over the string and allocates only for the error.
///
/// ```
/// assert!(deskhook::dispatch::check_tenant("acme").is_ok());
/// assert_eq!(
///     deskhook::dispatch::check_tenant("").unwrap_err().to_string(),
///     "invalid tenant '': it is empty (give a non-empty name of at most 128 bytes)",
/// );
/// ```
///
/// # Errors
///
/// [`Error::InvalidTenant`] saying which rule `tenant` breaks; it quotes at most 64
/// characters of it, with control characters escaped.
pub fn check_tenant(tenant: &str) -> Result<(), Error> {
    if tenant.is_empty() {
        return Err(Error::InvalidTenant(format!(
            "invalid tenant '': it is empty (give a non-empty name of at most {MAX_TENANT_LEN} \
             bytes)"
        )));
    }
    if tenant.len() > MAX_TENANT_LEN {
        return Err(Error::InvalidTenant(format!(
            "invalid tenant '{}' ({} bytes): longer than {MAX_TENANT_LEN} bytes",
            shorten(tenant),
            tenant.len(),
        )));
    }
    // Printable ASCII, as most tenants are, holds none of what is refused below.
    if tenant.bytes().all(|b| matches!(b, b' '..=b'~')) {
        return Ok(());
    }
    match tenant.chars().find_map(refused) {
        Some(what) => Err(Error::InvalidTenant(format!(
            "invalid tenant '{}': it holds {what}",
            shorten(tenant),
        ))),
        None => Ok(()),
    }
}

/// What `c` is, said for an error, if a tenant may not hold it.
fn refused(c: char) -> Option<&'static str> {
    Some(match c {
        c if c.is_control() => "a control character",
        '\u{2028}' | '\u{2029}' => {
            "a line or paragraph separator (U+2028, U+2029), which some log viewers break \
             lines at"
        }
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' => {
            "an invisible character (U+200B, U+2060 or U+FEFF), which would make it look like \
             another tenant"
        }
        c if is_bidi_format(c) => {
            "a bidirectional formatting character, which would reorder what logs show"
        }
        _ => return None,
    })
}

/// Whether `c` is one of Unicode's bidirectional embeddings, overrides or isolates, which
/// reorder the text after them. (The marks, LRM, RLM and ALM, are part of right-to-left
/// names and are allowed.)
pub(crate) fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Emits the events of one tenant, from [`for_tenant`] or [`Dispatcher::for_tenant`].
///
/// Its methods are those of the facade ([`emit`](crate::emit),
/// [`emit_webhook`](crate::emit_webhook), [`emit_async`](crate::emit_async),
/// [`emit_webhook_async`](crate::emit_webhook_async)) and cost the same: an action compiled
/// out does nothing, no dispatcher is one atomic load, no subscribed sink means no
/// serialization. The only difference is that the sinks receive the event with
/// [`Emitted::tenant`](crate::sink::Emitted::tenant) set, so that endpoints of that tenant, and
/// endpoints without a tenant, receive it.
///
/// The tenant is checked with [`check_tenant`](crate::dispatch::check_tenant) when an event is about
/// to be sent. An invalid one never panics and never reaches the caller: the event is
/// dropped, counted in [`DispatcherStats::dropped`](crate::dispatch::DispatcherStats::dropped) and
/// logged at warn with the reason and the ticket.
///
/// It is a pair of references, cheap to make for each emit, and `Copy`.
///
/// ```
/// use deskhook::{Action, Dispatcher, sample};
///
/// let dispatcher = Dispatcher::builder()
///     .sink("check", deskhook::sink::sink_fn(|event| {
///         assert_eq!(event.tenant(), Some("acme"));
///         Ok(())
///     }))
///     .build();
/// let (ticket, user) = (sample::ticket(), sample::user());
/// deskhook::with_dispatcher(&dispatcher, || {
///     deskhook::for_tenant("acme").emit(Action::Create, &ticket, &user);
/// });
/// // A failed assert in the sink would count as a failure of the sink, not as sent.
/// assert_eq!(dispatcher.stats().sinks[0].sent, 1);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ForTenant<'a> {
    pub(crate) tenant: &'a str,
    /// `None`: the current dispatcher at emit time (scoped, else global), as
    /// [`emit`](crate::emit) finds it.
    pub(crate) dispatcher: Option<&'a Dispatcher>,
}

/// Emits the events of `tenant` to the current dispatcher (see [`ForTenant`]):
/// `deskhook::for_tenant("acme").emit(action, &ticket, &user)`. Making it costs nothing; the
/// tenant is checked when an event is sent.
///
/// ```
/// use deskhook::{Action, sample};
///
/// let (ticket, user) = (sample::ticket(), sample::user());
/// deskhook::for_tenant("acme").emit(Action::Create, &ticket, &user); // no dispatcher: nothing
/// ```
pub fn for_tenant(tenant: &str) -> ForTenant<'_> {
    ForTenant {
        tenant,
        dispatcher: None,
    }
}

impl<'a> ForTenant<'a> {
    /// [`emit`](crate::emit) (or [`Dispatcher::emit`]) for this tenant.
    #[inline(always)]
    pub fn emit(self, action: Action, ticket: &Ticket, initial_user: &User) {
        if !action.is_compiled_in() {
            return;
        }
        let tenant = Some(self.tenant);
        match self.dispatcher {
            Some(d) => d.emit_tenanted(action, ticket, initial_user, tenant),
            None => {
                let state = STATE.load(Ordering::Acquire);
                if state != 0 {
                    emit_to_current(state, action, ticket, initial_user, tenant);
                }
            }
        }
    }

    /// [`emit_webhook`](crate::emit_webhook) (or [`Dispatcher::emit_webhook`]) for this
    /// tenant: an event of any format.
    pub fn emit_webhook<E: WebhookEvent + ?Sized>(self, event: &E) {
        let tenant = Some(self.tenant);
        match self.dispatcher {
            Some(d) => d.emit_webhook_tenanted(event, tenant),
            None => {
                let state = STATE.load(Ordering::Acquire);
                if state != 0 {
                    with_current(state, |d| d.emit_webhook_tenanted(event, tenant));
                }
            }
        }
    }

    /// [`emit_async`](crate::emit_async) (or [`Dispatcher::emit_async`]) for this tenant:
    /// async sinks are awaited. The dispatcher is the one current when this is called.
    pub fn emit_async(
        self,
        action: Action,
        ticket: &Ticket,
        initial_user: &User,
    ) -> impl Future<Output = ()> {
        let dispatcher = if action.is_compiled_in() {
            self.resolve()
        } else {
            None
        };
        async move {
            if let Some(d) = dispatcher {
                d.emit_async_tenanted(action, ticket, initial_user, Some(self.tenant))
                    .await;
            }
        }
    }

    /// [`emit_webhook_async`](crate::emit_webhook_async) (or
    /// [`Dispatcher::emit_webhook_async`]) for this tenant. The dispatcher is the one
    /// current when this is called.
    pub fn emit_webhook_async<E: WebhookEvent + ?Sized>(
        self,
        event: &E,
    ) -> impl Future<Output = ()> {
        let dispatcher = self.resolve();
        async move {
            if let Some(d) = dispatcher {
                d.emit_webhook_async_tenanted(event, Some(self.tenant))
                    .await;
            }
        }
    }

    /// The dispatcher to send to, for the async forms, which cannot hold the scoped
    /// dispatcher's borrow across an await; taken when they are called.
    fn resolve(self) -> Option<Cow<'a, Dispatcher>> {
        match self.dispatcher {
            Some(d) => Some(Cow::Borrowed(d)),
            None => current(STATE.load(Ordering::Acquire)).map(Cow::Owned),
        }
    }
}
