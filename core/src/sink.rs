//! Sinks: where emitted events go.
//!
//! A sink gets an [`Emitted`]: the typed event (borrowed from the caller of `emit`), its
//! serialized body (shared, serialized once however many sinks there are) and its id. A sink
//! that keeps the event past the call (a queue, a worker) keeps the body and the id, which are
//! cheap to clone; the typed view borrows the caller's ticket and lives only for the call.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::action::Action;
use crate::error::Error;
use crate::event_type::{EventType, ParseEventTypeError};
use crate::model::EventRef;
use crate::receive::Format;
use crate::tenant::check_tenant;
use crate::webhook::{WebhookEvent, WebhookRef};

/// The attribute macro for implementing [`AsyncEventSink`], re-exported from `async-trait`.
pub use async_trait::async_trait;

pub use crate::error::BoxError;

/// The id of one emitted event: a UUID v7, so ids sort by time. It is the `webhook-id` a
/// receiver de-duplicates on, and stays the same across retries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(uuid::Uuid);

impl EventId {
    /// A new id for an event emitted now.
    pub fn new() -> EventId {
        // `now_v7` draws from the thread's random generator, which a thread-local destructor
        // emitting an event may outlive (a panic there would abort the process): then the
        // random bits come from the operating system, and a process-wide count keeps ids
        // distinct should it fail. (Such an id sorts by its millisecond only, not after an
        // id made earlier in the same millisecond.)
        static FALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        match std::panic::catch_unwind(uuid::Uuid::now_v7) {
            Ok(id) => EventId(id),
            Err(_) => {
                let mut random = [0u8; 10];
                if getrandom::fill(&mut random).is_err() {
                    let n = FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    random[2..].copy_from_slice(&n.to_be_bytes());
                }
                let millis = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                EventId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
            }
        }
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl From<uuid::Uuid> for EventId {
    fn from(uuid: uuid::Uuid) -> Self {
        EventId(uuid)
    }
}

impl std::str::FromStr for EventId {
    type Err = uuid::Error;

    /// Parses the hyphenated form that `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(EventId)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// One emitted event as a sink receives it, in any format.
///
/// [`event_type`](Emitted::event_type) says which format and type it is; sinks that care
/// only about bytes use [`body`](Emitted::body), [`content_type`](Emitted::content_type),
/// [`id`](Emitted::id) and [`ordering_key`](Emitted::ordering_key), which every format has.
/// The typed event is [`webhook`](Emitted::webhook) (any format) or
/// [`event`](Emitted::event) (a Zenlix event only). [`tenant`](Emitted::tenant) says which
/// company the event belongs to, when it was emitted for one.
#[derive(Clone)]
pub struct Emitted<'a> {
    id: EventId,
    timestamp: jiff::Timestamp,
    event: WebhookRef<'a>,
    event_type: EventType,
    key: Cow<'a, str>,
    body: Bytes,
    /// Always passes [`check_tenant`].
    tenant: Option<Cow<'a, str>>,
}

/// The body's length only: its bytes hold what the typed event keeps out of logs (a Usedesk
/// channel's `secret`), which the event's own `Debug` redacts.
impl std::fmt::Debug for Emitted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitted")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("event_type", &self.event_type)
            .field("key", &self.key)
            .field("tenant", &self.tenant)
            .field("body_len", &self.body.len())
            .field("event", &self.event)
            .finish()
    }
}

/// Scratch buffers larger than this are given back after use, not kept for the next body.
const SCRATCH_KEEP: usize = 1 << 20;

/// The JSON body of `event`, in an allocation of its exact size.
///
/// It is written into a buffer the thread keeps, then copied once: the body's size is known
/// only once it is written, a buffer grown as it is written keeps up to half its capacity
/// unused, and sonic-rs (the vendor formats) reserves room for the worst case of escaping
/// (six bytes per byte of a string) before each string.
fn body_of(event: &WebhookRef<'_>) -> Result<Bytes, Error> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let fresh = || {
        let mut buf = Vec::new();
        write_json(&mut buf, event)?;
        Ok(Bytes::from(buf))
    };
    SCRATCH
        .try_with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                let body = write_json(&mut buf, event).map(|()| Bytes::copy_from_slice(&buf));
                if buf.capacity() > SCRATCH_KEEP {
                    *buf = Vec::new();
                }
                body
            }
            // Only if serializing an event emitted another on this thread.
            Err(_) => fresh(),
        })
        // In a thread-local destructor that runs after the buffer is gone.
        .unwrap_or_else(|_| fresh())
}

/// Writes `event` as JSON, the bytes serde_json would write, faster: a Zenlix event with the
/// model's own writer (constant keys, strings tested for escapes many bytes at a time); the vendor
/// formats with sonic-rs, and should it refuse a value, serde_json writes it or says why it
/// cannot.
fn write_json(buf: &mut Vec<u8>, event: &WebhookRef<'_>) -> Result<(), Error> {
    if let WebhookRef::Zenlix(event) = event {
        use crate::wire::json::WriteJson;
        return event.write_json(buf).map_err(Error::Serialize);
    }
    if sonic_rs::to_writer(&mut *buf, event).is_err() {
        buf.clear();
        serde_json::to_writer(&mut *buf, event).map_err(Error::Serialize)?;
    }
    Ok(())
}

impl<'a> Emitted<'a> {
    /// Serializes a Zenlix `event` and gives it a new id: what the dispatcher does once per
    /// emit.
    ///
    /// # Errors
    ///
    /// As [`EventRef::to_json`].
    pub fn new(event: EventRef<'a>) -> Result<Emitted<'a>, Error> {
        let event_type = EventType::Zenlix(event.action());
        Emitted::serialized(WebhookRef::Zenlix(event), event_type, None)
    }

    /// Serializes an event of any format and gives it a new id.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEventType`] when the event has no type deskhook can send (see
    /// [`WebhookEvent::event_type`]); [`Error::Serialize`] as for `new`.
    pub fn from_webhook<E: WebhookEvent + ?Sized>(event: &'a E) -> Result<Emitted<'a>, Error> {
        let (Some(event_type), Some(view)) = (event.event_type(), event.webhook_ref()) else {
            return Err(Error::UnknownEventType(ParseEventTypeError::new(&format!(
                "{}.{}",
                event.format(),
                unknown_type_name(event)
            ))));
        };
        Emitted::serialized(view, event_type, None)
    }

    /// The same event for `tenant`: endpoints of that tenant receive it (see
    /// [`tenant`](Emitted::tenant)). The body and the id stay the same.
    ///
    /// ```
    /// use deskhook::{Action, EventRef, sample};
    /// use deskhook::sink::Emitted;
    ///
    /// let (ticket, user) = (sample::ticket(), sample::user());
    /// let event = Emitted::new(EventRef::new(Action::Create, &ticket, &user))?;
    /// assert_eq!(event.with_tenant("acme")?.tenant(), Some("acme"));
    /// # Ok::<(), deskhook::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTenant`] when `tenant` is empty, longer than
    /// [`MAX_TENANT_LEN`](crate::dispatch::MAX_TENANT_LEN) bytes, or holds a character that
    /// would break or disguise a log line (see [`check_tenant`]).
    pub fn with_tenant(self, tenant: impl Into<Cow<'a, str>>) -> Result<Emitted<'a>, Error> {
        let tenant = tenant.into();
        check_tenant(&tenant)?;
        Ok(Emitted {
            tenant: Some(tenant),
            ..self
        })
    }

    /// As `from_webhook`, with the event's type known. `tenant` must have passed
    /// [`check_tenant`] already.
    pub(crate) fn serialized(
        event: WebhookRef<'a>,
        event_type: EventType,
        tenant: Option<&'a str>,
    ) -> Result<Emitted<'a>, Error> {
        let body = body_of(&event)?;
        Ok(Emitted {
            id: EventId::new(),
            timestamp: jiff::Timestamp::now(),
            key: event.ordering_key(),
            event,
            event_type,
            body,
            tenant: tenant.map(Cow::Borrowed),
        })
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// When the event was emitted (UTC).
    pub fn timestamp(&self) -> jiff::Timestamp {
        self.timestamp
    }

    /// The event's type: its format and name (`create`, `usedesk.comment_created`, …).
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The body's format.
    pub fn format(&self) -> Format {
        self.event_type.format()
    }

    /// The Zenlix action. For the other formats it is the action closest in meaning
    /// ([`EventType::action`]: `usedesk.comment_created` is `comment`, …), so that code
    /// written for actions keeps working; use [`event_type`](Emitted::event_type) to tell
    /// the formats apart.
    pub fn action(&self) -> Action {
        self.event_type.action()
    }

    /// The typed Zenlix event, or `None` for the other formats (see
    /// [`webhook`](Emitted::webhook)).
    pub fn event(&self) -> Option<&EventRef<'a>> {
        self.event.zenlix()
    }

    /// The typed event, of any format.
    pub fn webhook(&self) -> &WebhookRef<'a> {
        &self.event
    }

    /// The tenant the event belongs to, set by
    /// [`for_tenant(..).emit(..)`](crate::for_tenant): endpoints of that tenant receive it,
    /// endpoints without a tenant receive every event. `None` for events emitted without one.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The key that orders delivery: events with the same key are delivered in emit order.
    /// The Zenlix ticket code, the Usedesk ticket id, the iQChannels chat id.
    pub fn ordering_key(&self) -> &str {
        &self.key
    }

    /// The serialized body, exactly as it is sent. Cloning it is a reference-count increment.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body's content type: `application/json`, or `application/json; charset=utf-8`
    /// for iQChannels.
    pub fn content_type(&self) -> &'static str {
        self.event_type.content_type()
    }
}

/// The type an event without a known type has on the wire, for messages.
pub(crate) fn unknown_type_name<E: WebhookEvent + ?Sized>(event: &E) -> String {
    match event.format() {
        Format::IqChannels => serde_json::to_value(event)
            .ok()
            .and_then(|v| v["ChatEvent"]["Type"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        Format::Usedesk => event
            .webhook_ref()
            .and_then(|r| Some(r.usedesk()?.event_type().to_owned()))
            .unwrap_or_default(),
        _ => serde_json::to_value(event)
            .ok()
            .and_then(|v| v["action"].as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

/// A blocking sink: it takes each event on the thread that called `emit`.
///
/// `send` runs on the helpdesk's own thread, so a sink that does I/O that can be slow should
/// hand the event to a worker (keep `body()` and `id()`) and return. An error is logged and
/// counted by the dispatcher; it never reaches the caller of `emit` and never stops other
/// sinks. A panic in `send` is caught and treated the same way.
///
/// ```
/// use deskhook::sink::{Emitted, EventSink};
/// use deskhook::Error;
/// use std::sync::Mutex;
///
/// #[derive(Debug, Default)]
/// struct Collect(Mutex<Vec<String>>);
///
/// impl EventSink for Collect {
///     fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
///         let line = format!("{} {}", event.action(), event.ordering_key());
///         self.0.lock().map_err(|_| Error::sink("poisoned"))?.push(line);
///         Ok(())
///     }
/// }
/// ```
pub trait EventSink: Send + Sync {
    /// Takes one event.
    ///
    /// # Errors
    ///
    /// Any failure, usually wrapped with [`Error::sink`]. The dispatcher counts it in the
    /// sink's `failed` and logs it at warn; a sink that logs its refusals itself returns
    /// them as [`Error::sink_logged`], which the dispatcher logs at debug only.
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error>;

    /// Writes out what the sink buffers, waiting at most `timeout`. Defaults to nothing.
    ///
    /// # Errors
    ///
    /// What could not be written by the deadline.
    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let _ = timeout;
        Ok(())
    }
}

impl<T: EventSink + ?Sized> EventSink for &T {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (**self).send(event)
    }
    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout)
    }
}

impl<T: EventSink + ?Sized> EventSink for Box<T> {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (**self).send(event)
    }
    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout)
    }
}

impl<T: EventSink + ?Sized> EventSink for Arc<T> {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (**self).send(event)
    }
    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout)
    }
}

/// An async sink, for sinks that live on an async runtime.
///
/// The dispatcher awaits it from [`emit_async`](crate::emit_async); from the blocking
/// [`emit`](crate::emit) it polls the future to completion on the calling thread. Make `send`
/// quick either way (hand the event to a task), so that `emit` never waits on the network.
///
/// ```
/// use deskhook::sink::{AsyncEventSink, Emitted};
/// use deskhook::Error;
///
/// #[derive(Debug)]
/// struct Print;
///
/// #[deskhook::sink::async_trait]
/// impl AsyncEventSink for Print {
///     async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
///         println!("{} {}", event.id(), event.action());
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait AsyncEventSink: Send + Sync {
    /// Takes one event.
    ///
    /// # Errors
    ///
    /// Any failure, usually wrapped with [`Error::sink`]. The dispatcher counts it in the
    /// sink's `failed` and logs it at warn; a sink that logs its refusals itself returns
    /// them as [`Error::sink_logged`], which the dispatcher logs at debug only.
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error>;

    /// Writes out what the sink buffers, waiting at most `timeout`. Defaults to nothing.
    ///
    /// # Errors
    ///
    /// What could not be written by the deadline.
    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let _ = timeout;
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: AsyncEventSink + ?Sized> AsyncEventSink for &T {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (**self).send(event).await
    }
    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout).await
    }
}

#[async_trait::async_trait]
impl<T: AsyncEventSink + ?Sized> AsyncEventSink for Box<T> {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (**self).send(event).await
    }
    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout).await
    }
}

#[async_trait::async_trait]
impl<T: AsyncEventSink + ?Sized> AsyncEventSink for Arc<T> {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (**self).send(event).await
    }
    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout).await
    }
}

/// A sink that does nothing: what a dispatcher without sinks amounts to.
#[derive(Clone, Copy, Debug, Default)]
pub struct NopSink;

impl EventSink for NopSink {
    fn send(&self, _event: &Emitted<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl AsyncEventSink for NopSink {
    async fn send(&self, _event: &Emitted<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// A blocking sink made of a closure; see [`sink_fn`].
#[derive(Clone)]
pub struct SinkFn<F>(F);

impl<F> fmt::Debug for SinkFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkFn")
    }
}

impl<F> EventSink for SinkFn<F>
where
    F: Fn(&Emitted<'_>) -> Result<(), Error> + Send + Sync,
{
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        (self.0)(event)
    }
}

/// Makes a blocking sink of a closure.
///
/// ```
/// let sink = deskhook::sink::sink_fn(|event| {
///     println!("{} {}", event.action(), event.ordering_key());
///     Ok(())
/// });
/// let dispatcher = deskhook::Dispatcher::builder().sink("print", sink).build();
/// # drop(dispatcher);
/// ```
pub fn sink_fn<F>(f: F) -> SinkFn<F>
where
    F: Fn(&Emitted<'_>) -> Result<(), Error> + Send + Sync,
{
    SinkFn(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emitted_events_debug_keeps_a_usedesk_channels_secret_out() {
        let body = br#"{"secret":"0e8f678d91","comment":{"id":5,"message":"Hi","from":"client","ticket_id":2261907}}"#;
        let event = crate::formats::usedesk::Event::from_json(body).expect("an event");
        let emitted = Emitted::from_webhook(&event).expect("emitted");
        let shown = format!("{emitted:?}");
        assert!(!shown.contains("0e8f678d91"), "{shown}");
        assert!(
            shown.contains("Token(…)") && shown.contains(&format!("body_len: {}", body.len())),
            "{shown}"
        );
    }
}
