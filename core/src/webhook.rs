//! One way to emit any format: the [`WebhookEvent`] trait, implemented by the Zenlix
//! [`EventRef`] and [`Event`], [`usedesk::Event`] and [`iqchannels::Event`].

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use crate::event_type::EventType;
use crate::formats::{iqchannels, usedesk};
use crate::model::{Event, EventRef};
use crate::receive::Format;

/// A webhook event of any format that deskhook sends: it has a type, a key that orders
/// delivery, a body and a content type.
///
/// [`emit_webhook`](crate::emit_webhook) and [`Dispatcher::emit_webhook`](crate::Dispatcher::emit_webhook)
/// take any of them; subscriptions, switches, ordering, signing and every transport work the
/// same for all. It is implemented for the Zenlix [`EventRef`] and [`Event`],
/// [`usedesk::Event`], [`iqchannels::Event`], [`WebhookRef`] and references to them, and
/// sealed: every event type has a name that subscriptions, the spool and the dead letters can
/// read back ([`EventType`]).
///
/// ```
/// use deskhook::event::WebhookEvent;
/// use deskhook::formats::iqchannels;
///
/// let body = br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21},"Rels":{}}"#;
/// let event = iqchannels::Event::from_json(body)?;
/// assert_eq!(WebhookEvent::event_type(&event).unwrap().as_str(), "iqchannels.message_created");
/// assert_eq!(WebhookEvent::ordering_key(&event), "21");
/// assert_eq!(WebhookEvent::content_type(&event), "application/json; charset=utf-8");
/// # Ok::<(), deskhook::Error>(())
/// ```
pub trait WebhookEvent: Serialize + sealed::Sealed {
    /// The body's format.
    fn format(&self) -> Format;

    /// The event's type, or `None` when it has none that deskhook can send: a Zenlix event
    /// whose `action` is not one of the twelve, or an iQChannels or Usedesk event of a type
    /// this version does not know. Such events are dropped by the dispatcher, counted and
    /// logged.
    fn event_type(&self) -> Option<EventType>;

    /// The key that orders delivery: events with the same key reach an endpoint in emit
    /// order. The Zenlix ticket code, the Usedesk ticket id, the iQChannels chat id (empty
    /// for a Usedesk event this version does not know that has no `ticket_id`).
    fn ordering_key(&self) -> Cow<'_, str>;

    /// The body's `Content-Type`: the format's ([`Format::content_type`]).
    fn content_type(&self) -> &'static str {
        self.format().content_type()
    }
}

pub(crate) mod sealed {
    /// Keeps [`WebhookEvent`](super::WebhookEvent) to this crate's types, and gives the
    /// dispatcher a borrowed view of any of them.
    pub trait Sealed {
        /// The event as a [`WebhookRef`](super::WebhookRef); `None` exactly when the event
        /// type is `None`.
        fn webhook_ref(&self) -> Option<super::WebhookRef<'_>>;
    }
}

/// A borrowed event of any format: what a sink finds in
/// [`Emitted::webhook`](crate::sink::Emitted::webhook).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WebhookRef<'a> {
    /// A Zenlix event.
    Zenlix(EventRef<'a>),
    /// A Usedesk event.
    Usedesk(&'a usedesk::Event),
    /// An iQChannels event.
    IqChannels(&'a iqchannels::Event),
}

impl<'a> WebhookRef<'a> {
    /// The body's format.
    pub fn format(&self) -> Format {
        match self {
            WebhookRef::Zenlix(_) => Format::Zenlix,
            WebhookRef::Usedesk(_) => Format::Usedesk,
            WebhookRef::IqChannels(_) => Format::IqChannels,
        }
    }

    /// The event's type; `None` for an iQChannels or Usedesk type this version does not
    /// know.
    pub fn event_type(&self) -> Option<EventType> {
        match self {
            WebhookRef::Zenlix(event) => Some(EventType::Zenlix(event.action())),
            WebhookRef::Usedesk(event) => event.kind().map(EventType::Usedesk),
            WebhookRef::IqChannels(event) => {
                event.chat_event.kind.kind().map(EventType::IqChannels)
            }
        }
    }

    /// The key that orders delivery; see [`WebhookEvent::ordering_key`]. Borrowed for
    /// Zenlix, made for the formats with numeric ids.
    pub fn ordering_key(&self) -> Cow<'a, str> {
        match self {
            WebhookRef::Zenlix(event) => Cow::Borrowed(event.ticket().code.as_str()),
            WebhookRef::Usedesk(event) => Cow::Owned(usedesk::Event::ordering_key(event)),
            WebhookRef::IqChannels(event) => Cow::Owned(iqchannels::Event::ordering_key(event)),
        }
    }

    /// The Zenlix event, for a Zenlix event.
    pub fn zenlix(&self) -> Option<&EventRef<'a>> {
        match self {
            WebhookRef::Zenlix(event) => Some(event),
            _ => None,
        }
    }

    /// The Usedesk event, for a Usedesk event.
    pub fn usedesk(&self) -> Option<&'a usedesk::Event> {
        match self {
            WebhookRef::Usedesk(event) => Some(event),
            _ => None,
        }
    }

    /// The iQChannels event, for an iQChannels event.
    pub fn iqchannels(&self) -> Option<&'a iqchannels::Event> {
        match self {
            WebhookRef::IqChannels(event) => Some(event),
            _ => None,
        }
    }
}

impl Serialize for WebhookRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WebhookRef::Zenlix(event) => event.serialize(serializer),
            WebhookRef::Usedesk(event) => event.serialize(serializer),
            WebhookRef::IqChannels(event) => event.serialize(serializer),
        }
    }
}

impl sealed::Sealed for WebhookRef<'_> {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        WebhookRef::event_type(self).map(|_| self.clone())
    }
}

impl WebhookEvent for WebhookRef<'_> {
    fn format(&self) -> Format {
        WebhookRef::format(self)
    }
    fn event_type(&self) -> Option<EventType> {
        WebhookRef::event_type(self)
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        WebhookRef::ordering_key(self)
    }
}

impl sealed::Sealed for EventRef<'_> {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        Some(WebhookRef::Zenlix(self.clone()))
    }
}

impl WebhookEvent for EventRef<'_> {
    fn format(&self) -> Format {
        Format::Zenlix
    }
    fn event_type(&self) -> Option<EventType> {
        Some(EventType::Zenlix(self.action()))
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.ticket().code)
    }
}

impl sealed::Sealed for Event {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        self.as_event_ref().map(WebhookRef::Zenlix)
    }
}

impl WebhookEvent for Event {
    fn format(&self) -> Format {
        Format::Zenlix
    }
    fn event_type(&self) -> Option<EventType> {
        self.action.action().map(EventType::Zenlix)
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.ticket.code)
    }
}

impl sealed::Sealed for usedesk::Event {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        Some(WebhookRef::Usedesk(self))
    }
}

impl WebhookEvent for usedesk::Event {
    fn format(&self) -> Format {
        Format::Usedesk
    }
    fn event_type(&self) -> Option<EventType> {
        self.kind().map(EventType::Usedesk)
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        Cow::Owned(usedesk::Event::ordering_key(self))
    }
}

impl sealed::Sealed for iqchannels::Event {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        self.chat_event
            .kind
            .kind()
            .is_some()
            .then_some(WebhookRef::IqChannels(self))
    }
}

impl WebhookEvent for iqchannels::Event {
    fn format(&self) -> Format {
        Format::IqChannels
    }
    fn event_type(&self) -> Option<EventType> {
        self.chat_event.kind.kind().map(EventType::IqChannels)
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        Cow::Owned(iqchannels::Event::ordering_key(self))
    }
}

impl sealed::Sealed for crate::Received {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        match self {
            crate::Received::Zenlix(event) => event.webhook_ref(),
            crate::Received::Usedesk(event) => event.webhook_ref(),
            crate::Received::IqChannels(event) => event.webhook_ref(),
        }
    }
}

/// A received event serializes as its format's JSON.
impl Serialize for crate::Received {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            crate::Received::Zenlix(event) => event.serialize(serializer),
            crate::Received::Usedesk(event) => event.serialize(serializer),
            crate::Received::IqChannels(event) => event.serialize(serializer),
        }
    }
}

/// A received event of any format can be emitted again (what `deskhook serve` does with
/// the events a helpdesk posts to it).
impl WebhookEvent for crate::Received {
    fn format(&self) -> Format {
        crate::Received::format(self)
    }
    fn event_type(&self) -> Option<EventType> {
        match self {
            crate::Received::Zenlix(event) => WebhookEvent::event_type(event),
            crate::Received::Usedesk(event) => WebhookEvent::event_type(event),
            crate::Received::IqChannels(event) => WebhookEvent::event_type(event),
        }
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        match self {
            crate::Received::Zenlix(event) => WebhookEvent::ordering_key(event),
            crate::Received::Usedesk(event) => WebhookEvent::ordering_key(event),
            crate::Received::IqChannels(event) => WebhookEvent::ordering_key(event),
        }
    }
}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn webhook_ref(&self) -> Option<WebhookRef<'_>> {
        (**self).webhook_ref()
    }
}

impl<T: WebhookEvent + ?Sized> WebhookEvent for &T {
    fn format(&self) -> Format {
        (**self).format()
    }
    fn event_type(&self) -> Option<EventType> {
        (**self).event_type()
    }
    fn ordering_key(&self) -> Cow<'_, str> {
        (**self).ordering_key()
    }
    fn content_type(&self) -> &'static str {
        (**self).content_type()
    }
}
