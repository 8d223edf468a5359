//! Send helpdesk ticket events to the outside world as webhooks.
//!
//! A helpdesk calls [`emit`] when a ticket is created, forwarded, locked, unlocked, completed,
//! not completed, sent for review, reviewed, deleted, restored, commented or edited. deskhook
//! renders the documented Zenlix JSON once and hands it to every sink subscribed to that
//! action: a JSON Lines log, an HTTP endpoint, or a sink of your own. Like the `log` crate,
//! this crate is the facade; the sinks that move bytes live in `deskhook-transports`.
//!
//! # The API at a glance
//!
//! | To | Use |
//! | --- | --- |
//! | emit a Zenlix event | [`emit`], [`emit_async`] |
//! | emit a whole [`Event`], an [`EventRef`], a Usedesk or iQChannels event | [`emit_webhook`], [`emit_webhook_async`] |
//! | emit for one tenant (company) | [`for_tenant`]`("acme").emit(…)` |
//! | send somewhere | a [`Dispatcher`] of [`sink`]s, set with [`set_dispatcher`] (tests: [`with_dispatcher`]) |
//! | wait for the sinks | [`flush`] |
//! | switch event types on and off at run time | [`set_enabled`], [`replace_enabled`], [`is_enabled`], [`enabled`] |
//! | name what to subscribe to | [`Action`], [`EventType`], [`EventTypeSet`] |
//! | receive, verify and parse a webhook | [`receive`] with [`ReceiveOptions`] ([`receive_verified`] with the signed id to de-duplicate on); lower level: [`signature`] |
//! | keys | [`Secret`] (HMAC `whsec_`, ed25519 `whsk_`/`whpk_`) |
//!
//! The rest lives in modules: [`dispatch`] (builder, counters, tenants), [`event`] (the
//! model's other types), [`formats`] (Usedesk, iQChannels), [`sink`] (writing a sink),
//! [`signature`] (Standard Webhooks signing and verifying), [`policy`] (retry schedules),
//! [`sample`] (a sample ticket for tests and demos).
//!
//! # Usage in libraries
//!
//! A library that is part of a helpdesk depends on `deskhook` alone, with
//! `default-features = false` so that the application decides which actions are compiled in,
//! and calls [`emit`]:
//!
//! ```
//! use deskhook::{Action, Ticket, User};
//! use deskhook::event::Status;
//!
//! fn take_into_work(ticket: &mut Ticket, executor: &User) {
//!     ticket.status = Status::Lock;
//!     deskhook::emit(Action::Lock, ticket, executor);
//! }
//! # take_into_work(&mut Ticket::new("E3XK", "Printer jammed"), &User::default());
//! ```
//!
//! Before the application sets a dispatcher, `emit` is one atomic load and does nothing.
//!
//! # Usage in the application
//!
//! The application builds a [`Dispatcher`] with its sinks, each with the event types it
//! subscribes to, and sets it once at start-up:
//!
//! ```
//! use deskhook::{Action, Dispatcher};
//!
//! let audit = deskhook::sink::sink_fn(|event| {
//!     println!("{} {} {}", event.id(), event.action(), event.ordering_key());
//!     Ok(())
//! });
//! let dispatcher = Dispatcher::builder()
//!     .sink("audit", audit)
//!     .build();
//! deskhook::set_dispatcher(dispatcher).expect("set once, at start-up");
//!
//! let ticket = deskhook::sample::ticket();
//! let user = deskhook::sample::user();
//! deskhook::emit(Action::Comment, &ticket, &user);
//! deskhook::flush().expect("sinks flushed");
//! ```
//!
//! Tests use [`with_dispatcher`] to send to a dispatcher of their own on one thread.
//!
//! # Emitting a whole event, or another format
//!
//! [`emit_webhook`] (and [`Dispatcher::emit_webhook`]) sends an event of any format that
//! implements [`WebhookEvent`](event::WebhookEvent): the Zenlix [`Event`] (with its own
//! `description`, `dt` and extra keys) and [`EventRef`], a [`formats::usedesk::Event`] or a
//! [`formats::iqchannels::Event`]. Sinks and endpoints subscribe to [`EventType`]s: the
//! Zenlix actions by their names (`create`), the others as `usedesk.comment_created`,
//! `iqchannels.message_created`. [`EventTypeSet`] is the one set type: an [`Action`], an
//! `EventType` and arrays of either convert into it.
//!
//! ```
//! use deskhook::{Action, Event, Ticket, User};
//!
//! let mut event = Event::new(Action::Comment, Ticket::new("E3XK", "Printer jammed"), User::default());
//! event.description = "Anna replied".into();
//! deskhook::emit_webhook(&event); // no dispatcher yet: does nothing
//! ```
//!
//! # Tenants
//!
//! A helpdesk that serves several companies emits each event for the company it belongs to,
//! its tenant: a non-empty name of at most [`MAX_TENANT_LEN`](dispatch::MAX_TENANT_LEN)
//! (128) bytes with no control character and no bidirectional formatting character
//! ([`check_tenant`](dispatch::check_tenant)).
//! [`for_tenant`] (or [`Dispatcher::for_tenant`]) emits for one, with the same methods and
//! costs as the untenanted forms:
//!
//! ```
//! use deskhook::{Action, sample};
//!
//! let (ticket, user) = (sample::ticket(), sample::user());
//! deskhook::for_tenant("acme").emit(Action::Comment, &ticket, &user);
//! ```
//!
//! Sinks read the tenant from [`Emitted::tenant`](sink::Emitted::tenant) (`None` for an
//! event emitted without one). In `deskhook-transports`, an endpoint with a tenant receives
//! only that tenant's events, an endpoint without one receives every event, and an event
//! without a tenant goes only to the endpoints without one. An event for an invalid tenant is
//! dropped, counted and logged at warn; `emit` still never fails or panics.
//!
//! # Implementing a sink
//!
//! Implement [`EventSink`](sink::EventSink) (called on the emitting thread) or
//! [`AsyncEventSink`](sink::AsyncEventSink), or wrap a closure with
//! [`sink_fn`](sink::sink_fn). A sink receives an [`Emitted`](sink::Emitted): the typed
//! event, the body bytes (serialized once for all sinks), the event id and the tenant, if
//! any. Errors and panics of a sink are logged and counted by the dispatcher and never reach
//! the caller of `emit`.
//!
//! # Receiving webhooks
//!
//! The receiving side uses the same crate. Besides Zenlix, deskhook reads the webhooks of two
//! other helpdesks, modelled in [`formats`]: [Usedesk](formats::usedesk) (ticket created,
//! ticket changed, comment created, rating) and [iQChannels](formats::iqchannels) (a
//! `ChatEvent` and its `Rels`). [`receive`] does the whole job for a request: it checks the
//! Standard Webhooks signature when given keys (constant-time, with a tolerance for the
//! timestamp), tells the format from the body's keys (or is told it), parses, and checks a
//! Usedesk channel secret when given one. Every model keeps the keys it does not know and
//! their order, so a parsed Usedesk or iQChannels body written back is the same JSON data
//! (the same bytes when the sender wrote it as serde_json does: see [`formats`]); a Zenlix
//! event is written back in its documented form (see [`Event`]).
//!
//! ```
//! use deskhook::{ReceiveOptions, Received, Secret};
//!
//! # let secret = Secret::generate().unwrap();
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
//! let body = br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21},"Rels":{}}"#;
//! # let signature = deskhook::signature::sign("msg_2", now, body, std::slice::from_ref(&secret)).unwrap();
//! # let now = now.to_string();
//! let headers = [
//!     ("webhook-id", "msg_2"),
//!     ("webhook-timestamp", now.as_str()),
//!     ("webhook-signature", signature.as_str()),
//! ];
//! let options = ReceiveOptions::new().secret(secret);
//! match deskhook::receive(&headers, body, &options)? {
//!     Received::IqChannels(event) => assert_eq!(event.chat_id(), 21),
//!     other => panic!("a {} body", other.format()),
//! }
//! # Ok::<(), deskhook::Error>(())
//! ```
//!
//! Answer a refused request with `401` when [`Error::is_signature_error`], with `500` when
//! [`Error::is_receiver_setup_error`] (no key here: the sender retries until there is one),
//! and with `400` otherwise. [`signature::verify`] checks a signature alone, and
//! [`Event::from_json`] parses a Zenlix body alone.
//!
//! # Crate feature flags
//!
//! - `all-actions` (default): every `action-*` feature below.
//! - `action-create`, `action-refer`, `action-lock`, `action-unlock`, `action-ok`,
//!   `action-unok`, `action-waitok`, `action-approve`, `action-delete`, `action-restore`,
//!   `action-comment`, `action-edit`: compile that action in. A call of [`emit`] with a
//!   constant action that is compiled out compiles to nothing. The features are additive:
//!   libraries set `default-features = false` and the application turns on what it sends.
//! - `http`: [`signature::Headers`] for `http::HeaderMap`, so that a receiver on axum, hyper
//!   or reqwest hands [`receive`] and [`signature::verify`] the request's own headers. Pulls
//!   in `http`.
//!
//! No other pulls in a dependency.
//!
//! # Log levels
//!
//! Records go to the `log` crate under the target `deskhook` ([`LOG_TARGET`]):
//!
//! - `error`: an event could not be serialized and was dropped.
//! - `warn`: a sink failed or panicked; an event was dropped (a whole event of an unknown or
//!   compiled-out action, an invalid tenant); two sinks of one dispatcher have one name (at
//!   [`DispatcherBuilder::build`](dispatch::DispatcherBuilder::build)). `emit` of a
//!   compiled-out action does nothing, silently.
//!
//! The transports in `deskhook-transports` log under the same target (delivery failures, dead
//! letters, disabled endpoints).
//!
//! `emit` itself logs nothing on success, so a busy helpdesk pays nothing for logging.
//!
//! # Changes
//!
//! ## 0.1 (unreleased): one way to emit, a small root
//!
//! Every item is exported once, and the root holds what most callers need.
//!
//! - A Usedesk body whose one object beside `secret` is under an unknown key is an event
//!   this version does not know ([`formats::usedesk::Payload::Other`]), kept and written
//!   back as it came, rather than refused for a missing payload; `kind()` and
//!   `ticket_id()` of Usedesk events and payloads return `Option`s, and `wrapper()` and
//!   `event_type()` a `&str` of the event's.
//! - A Usedesk rating's score ([`formats::usedesk::Rating::rating`]) is an `Option`: its
//!   key's name is inferred, and a rating whose score comes under another name is read,
//!   the score kept in `extra`, rather than refused. An iQChannels client's CRM `Token` is
//!   a [`formats::Token`], kept out of `Debug`.
//! - `Debug` of [`sink::Emitted`] shows the body's length, not its bytes, which hold a
//!   Usedesk channel's `secret` (the typed event's `Debug` redacts it). A tenant holding a
//!   line or paragraph separator (U+2028, U+2029) or an invisible character (U+200B,
//!   U+2060, U+FEFF) is refused, as one with a control character was.
//! - A logger that panics no longer reaches the caller of `emit` through the lines of an
//!   event dropped (an invalid tenant, a type not compiled in) or of a cancelled
//!   `emit_async`; a flush's panic payload that panics when dropped is forgotten.
//! - [`emit_async`], [`emit_webhook_async`] and their `for_tenant` forms take the
//!   dispatcher current when they are called, not when their future is first polled: a
//!   [`with_dispatcher`] around the call counts ([`replace_enabled`] likewise now returns
//!   only compiled-in event types, as [`enabled`] does).
//! - A sink's error whose `Display` or `Drop` panics, or a panic whose payload does, no
//!   longer reaches the caller of `emit`. Ticket codes in the dispatcher's log lines are
//!   clipped to 64 characters with control characters escaped, and a dropped event of an
//!   unknown type names its type.
//! - New: [`receive_verified`], [`receive`] with the `webhook-id` and timestamp the
//!   signature covers, to de-duplicate on. `verify` reads the entries of folded
//!   `webhook-signature` lines (`"v1,…, v1,…"`), and of every line of it
//!   ([`Headers::header_values`](signature::Headers::header_values), a provided method);
//!   [`Verified::key_index`](signature::Verified) says which key matched. The `http` feature
//!   implements [`Headers`](signature::Headers) for `http::HeaderMap`. A Svix-powered
//!   sender's `svix-id`, `svix-timestamp` and `svix-signature` are read when a request has
//!   no `webhook-id` ([`SVIX_HEADERS`](signature::SVIX_HEADERS)).
//! - Receiving: text of the body quoted in an error (a key, a value) is escaped to one
//!   line; an empty body, or form data, says so.
//! - `emit_event(&e)` and `emit_ref(r)` are [`emit_webhook`]`(&e)` and `emit_webhook(&r)`;
//!   `emit_event_async` is [`emit_webhook_async`]; `Dispatcher::emit_event`, `emit_ref` and
//!   `emit_ref_async` likewise.
//! - `ActionSet` is gone: [`EventTypeSet`] is the one set type, and its methods take an
//!   [`Action`] wherever they take an [`EventType`]. [`EventTypeSet::actions`] iterates the
//!   actions in a set. `Dispatcher::event_subscription` is now
//!   [`Dispatcher::subscription`], and [`SinkStats::subscription`](dispatch::SinkStats) is
//!   an `EventTypeSet` (`event_types` is gone).
//! - The eight switch functions are four: [`set_enabled`]`(types, on)`,
//!   [`replace_enabled`]`(types)`, [`is_enabled`]`(t)`, [`enabled`]`()`.
//! - Moved from the root: `DispatcherBuilder`, `DispatcherStats`, `SinkStats`,
//!   `ScopedGuard`, `set_scoped`, `dispatcher`, `flush_within`, `DEFAULT_FLUSH_TIMEOUT`,
//!   `ForTenant`, `check_tenant`, `MAX_TENANT_LEN` to [`dispatch`]; `Comment`, `Contacts`,
//!   `Profile`, `Status`, `Priority`, `LogEntry`, `LogAction`, `ActionName`, `now_local`,
//!   `DateTime`, `WebhookEvent`, `WebhookRef` and the parse errors to [`event`];
//!   `EventSink`, `AsyncEventSink`, `Emitted`, `EventId`, `NopSink`, `SinkFn`, `sink_fn`,
//!   `BoxError` and `async_trait` to [`sink`]; `sign` and `verify` to [`signature`];
//!   `Format` to [`formats`]. `signature::Secret` is [`Secret`].
//! - The parse errors of an action or an event type keep at most 64 characters of what
//!   failed to parse (then `…`), and look for what was meant only in names that short: a
//!   received body's megabyte-long `action` cost an edit-distance search over all of it and
//!   came back whole in the error.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod dispatcher;
mod error;
mod event_type;
pub mod formats;
mod global;
mod log_text;
mod model;
pub mod policy;
mod receive;
pub mod sample;
pub mod signature;
pub mod sink;
mod switch;
mod tenant;
mod webhook;
mod wire;

pub use action::Action;
pub use dispatcher::{Dispatcher, LOG_TARGET};
pub use error::Error;
pub use event_type::{EventType, EventTypeSet};
pub use global::{
    emit, emit_async, emit_webhook, emit_webhook_async, flush, set_dispatcher, with_dispatcher,
};
#[doc(hidden)]
pub use log_text::{Seldom, needs_escape, shown_in_log};
pub use model::{Event, EventRef, Ticket, User};
pub use receive::{ReceiveOptions, Received, receive, receive_verified};
pub use signature::secret::Secret;
pub use switch::{enabled, is_enabled, replace_enabled, set_enabled};
pub use tenant::for_tenant;

pub mod dispatch {
    //! The [`Dispatcher`](crate::Dispatcher)'s builder and counters, the tenant handle, and
    //! the less used parts of the global facade: the scoped guard, the current dispatcher and
    //! a flush with a timeout.

    pub use crate::dispatcher::{DispatcherBuilder, DispatcherStats, SinkStats};
    pub use crate::global::{
        DEFAULT_FLUSH_TIMEOUT, ScopedGuard, dispatcher, flush_within, set_scoped,
    };
    pub use crate::tenant::{ForTenant, MAX_TENANT_LEN, check_tenant};
}

pub mod event {
    //! The Zenlix event model beyond [`Ticket`](crate::Ticket), [`User`](crate::User),
    //! [`Event`](crate::Event) and [`EventRef`](crate::EventRef), and the trait every
    //! format's event implements for [`emit_webhook`](crate::emit_webhook).

    pub use crate::action::ParseActionError;
    pub use crate::event_type::ParseEventTypeError;
    pub use crate::model::{
        ActionName, Comment, Contacts, LogAction, LogEntry, Priority, Profile, Status, now_local,
    };
    pub use crate::webhook::{WebhookEvent, WebhookRef};

    /// The civil (zone-less) date-time type of every timestamp in the model, re-exported
    /// from `jiff`.
    pub use jiff::civil::DateTime;
}
