//! Send helpdesk ticket events to the outside world as webhooks.
//!
//! A helpdesk calls [`emit`] when a ticket is created, forwarded, locked, unlocked, completed,
//! not completed, sent for review, reviewed, deleted, restored, commented or edited. deskhook
//! renders the documented Zenlix JSON once and hands it to every sink subscribed to that
//! action: a JSON Lines log, an HTTP endpoint, or a sink of your own. Like the `log` crate,
//! this crate is the facade; the sinks that move bytes live in `deskhook-transports`.
//!
//! # Usage in libraries
//!
//! A library that is part of a helpdesk depends on `deskhook` alone, with
//! `default-features = false` so that the application decides which actions are compiled in,
//! and calls [`emit`]:
//!
//! ```
//! use deskhook::{Action, Ticket, User};
//!
//! fn take_into_work(ticket: &mut Ticket, executor: &User) {
//!     ticket.status = deskhook::Status::Lock;
//!     deskhook::emit(Action::Lock, ticket, executor);
//! }
//! # take_into_work(&mut Ticket::new("E3XK", "Printer jammed"), &User::default());
//! ```
//!
//! Before the application sets a dispatcher, `emit` is one atomic load and does nothing.
//!
//! # Usage in the application
//!
//! The application builds a [`Dispatcher`] with its sinks, each with the actions it
//! subscribes to, and sets it once at start-up:
//!
//! ```
//! use deskhook::{Action, Dispatcher};
//!
//! let audit = deskhook::sink_fn(|event| {
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
//! # Emitting other formats
//!
//! [`emit_webhook`] (and [`Dispatcher::emit_webhook`]) sends an event of any format that
//! implements [`WebhookEvent`]: the Zenlix [`EventRef`] and [`Event`], a
//! [`formats::usedesk::Event`] or a [`formats::iqchannels::Event`]. Sinks and endpoints
//! subscribe to [`EventType`]s: the Zenlix actions by their names (`create`), the others as
//! `usedesk.comment_created`, `iqchannels.message_created` (sets of them are
//! [`EventTypeSet`]s, which `[Action::Create]` and an [`ActionSet`] convert into).
//!
//! # Tenants
//!
//! A helpdesk that serves several companies emits each event for the company it belongs to,
//! its tenant: a non-empty name of at most [`MAX_TENANT_LEN`] (128) bytes with no control
//! character ([`check_tenant`]). [`for_tenant`] (or [`Dispatcher::for_tenant`]) emits for
//! one, with the same methods and costs as the untenanted forms:
//!
//! ```
//! use deskhook::{Action, sample};
//!
//! let (ticket, user) = (sample::ticket(), sample::user());
//! deskhook::for_tenant("acme").emit(Action::Comment, &ticket, &user);
//! ```
//!
//! Sinks read the tenant from [`Emitted::tenant`] (`None` for an event emitted without one).
//! In `deskhook-transports`, an endpoint with a tenant receives only that tenant's events,
//! an endpoint without one receives every event, and an event without a tenant goes only to
//! the endpoints without one. An event for an invalid tenant is dropped, counted and logged
//! at warn; `emit` still never fails or panics.
//!
//! # Implementing a sink
//!
//! Implement [`EventSink`] (called on the emitting thread) or [`AsyncEventSink`], or wrap a
//! closure with [`sink_fn`]. A sink receives an [`Emitted`]: the typed event, the body bytes
//! (serialized once for all sinks), the event id and the tenant, if any. Errors and panics of a sink are logged
//! and counted by the dispatcher and never reach the caller of `emit`.
//!
//! # Receiving webhooks
//!
//! The receiving side uses the same crate: [`verify`] checks the Standard Webhooks signature
//! of a request (constant-time, with a tolerance for the timestamp) and [`Event::from_json`]
//! parses the body into types, keeping the keys it does not know:
//!
//! ```
//! use std::time::Duration;
//! use deskhook::{Event, Secret};
//!
//! # let secret = Secret::generate().unwrap();
//! # let body = deskhook::sample::event(deskhook::Action::Ok).to_json().unwrap();
//! # let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
//! # let signature = deskhook::sign("msg_1", ts, &body, std::slice::from_ref(&secret)).unwrap();
//! # let ts = ts.to_string();
//! let headers = [
//!     ("webhook-id", "msg_1"),
//!     ("webhook-timestamp", ts.as_str()),
//!     ("webhook-signature", signature.as_str()),
//! ];
//! deskhook::verify(&headers, &body, &[secret], Duration::from_secs(300))?;
//! let event = Event::from_json(&body)?;
//! assert_eq!(event.ticket.code, "E3XK");
//! # Ok::<(), deskhook::Error>(())
//! ```
//!
//! ## Any format: `receive`
//!
//! Besides Zenlix, deskhook reads the webhooks of two other helpdesks, modelled in
//! [`formats`]: [Usedesk](formats::usedesk) (ticket created, ticket changed, comment created,
//! rating) and [iQChannels](formats::iqchannels) (a `ChatEvent` and its `Rels`). [`receive`]
//! does the whole job for a request: it checks the signature when given secrets, tells the
//! format from the body's keys (or is told it), parses, and checks a Usedesk channel secret
//! when given one. Every model keeps the keys it does not know and their order, so a parsed
//! body written back is the same JSON.
//!
//! ```
//! use deskhook::{ReceiveOptions, Received, Secret};
//!
//! # let secret = Secret::generate().unwrap();
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
//! let body = br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21},"Rels":{}}"#;
//! # let signature = deskhook::sign("msg_2", now, body, std::slice::from_ref(&secret)).unwrap();
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
//! # Crate feature flags
//!
//! - `all-actions` (default): every `action-*` feature below.
//! - `action-create`, `action-refer`, `action-lock`, `action-unlock`, `action-ok`,
//!   `action-unok`, `action-waitok`, `action-approve`, `action-delete`, `action-restore`,
//!   `action-comment`, `action-edit`: compile that action in. A call of [`emit`] with a
//!   constant action that is compiled out compiles to nothing. The features are additive:
//!   libraries set `default-features = false` and the application turns on what it sends.
//!
//! None of them pulls in a dependency.
//!
//! # Log levels
//!
//! Records go to the `log` crate under the target `deskhook` ([`LOG_TARGET`]):
//!
//! - `error`: an event could not be serialized and was dropped.
//! - `warn`: a sink failed or panicked; an event was dropped (unknown or compiled-out action,
//!   invalid tenant).
//!
//! The transports in `deskhook-transports` log under the same target (delivery failures, dead
//! letters, disabled endpoints).
//!
//! `emit` itself logs nothing on success, so a busy helpdesk pays nothing for logging.

pub mod action;
mod dispatch;
mod error;
pub mod event;
pub mod event_type;
pub mod formats;
pub mod policy;
mod receive;
pub mod sample;
pub mod signature;
mod sink;
mod switch;
mod tenant;
mod webhook;
mod wire;

pub use action::{Action, ActionSet};
pub use dispatch::{
    DEFAULT_FLUSH_TIMEOUT, Dispatcher, DispatcherBuilder, DispatcherStats, LOG_TARGET, ScopedGuard,
    SinkStats, dispatcher, emit, emit_async, emit_event, emit_event_async, emit_ref, emit_webhook,
    emit_webhook_async, flush, flush_within, set_dispatcher, set_scoped, with_dispatcher,
};
pub use error::{BoxError, Error, ParseActionError};
pub use event::{
    ActionName, Comment, Contacts, Event, EventRef, LogAction, LogEntry, Priority, Profile, Status,
    Ticket, User, now_local,
};
pub use event_type::{EventType, EventTypeSet, ParseEventTypeError};
pub use receive::{Format, ReceiveOptions, Received, receive};
pub use signature::{Secret, sign, verify};
pub use sink::{AsyncEventSink, Emitted, EventId, EventSink, NopSink, SinkFn, sink_fn};
pub use switch::{
    enabled_actions, enabled_event_types, is_action_enabled, is_event_type_enabled,
    set_action_enabled, set_enabled_actions, set_enabled_event_types, set_event_type_enabled,
};
pub use tenant::{ForTenant, MAX_TENANT_LEN, check_tenant, for_tenant};
pub use webhook::{WebhookEvent, WebhookRef};

/// The attribute macro for implementing [`AsyncEventSink`], re-exported from `async-trait`.
pub use async_trait::async_trait;

/// The civil (zone-less) date-time type of every timestamp in the model, re-exported from
/// `jiff`.
pub use jiff::civil::DateTime;
