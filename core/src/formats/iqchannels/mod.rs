//! iQChannels webhooks: a chat event and the objects it refers to.
//!
//! Each webhook is a POST with `Content-Type: application/json; charset=utf-8`
//! ([`CONTENT_TYPE`]) and the body `{"ChatEvent": {…}, "Rels": {…}}`: the [`ChatEvent`], and
//! in [`Rels`] lists of the channels, chats, messages, clients, projects, users and files it
//! refers to by id. Keys are PascalCase, as the vendor writes them; times are Unix epoch
//! milliseconds ([`Millis`]).
//!
//! The event types are [`EventType`]'s: `chat_created`, `ticket_assigned`, `typing`,
//! `message_created`, `message_received`, `message_read`, `message_listened`,
//! `delete-messages` (hyphenated) and `chat_closed`; any other is kept as
//! [`EventType::Other`].
//!
//! The vendor's examples come from three generations of the API with different field sets.
//! Fields the model knows but a body lacks take their default (`0`, `""`, `false`, `None`, an
//! empty list, JSON `null`) and are not written back; objects the documentation shows only as
//! `null` or does not describe (`IQChat`, `VK`, `License`, `Totals`, `Permissions`, …) are
//! kept as JSON.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::wire::{wire_enum, wire_object};

mod model;

pub use model::*;

/// The `Content-Type` of iQChannels webhooks.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A time in Unix epoch milliseconds (UTC), as iQChannels writes every time.
///
/// ```
/// use deskhook::formats::iqchannels::Millis;
///
/// let t = Millis(1542902705511);
/// assert_eq!(t.to_timestamp().unwrap().to_string(), "2018-11-22T16:05:05.511Z");
/// assert!(Millis::GO_ZERO.is_unset());
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// `0001-01-01T00:00:00Z`, Go's zero time, which the vendor sends for "not set".
    pub const GO_ZERO: Millis = Millis(-62_135_596_800_000);

    /// The time as a [`jiff::Timestamp`], or `None` when it is outside jiff's range (years
    /// -9999 to 9999).
    pub fn to_timestamp(self) -> Option<Timestamp> {
        Timestamp::from_millisecond(self.0).ok()
    }

    /// Whether this is Go's zero time, the vendor's "not set".
    pub fn is_unset(self) -> bool {
        self == Millis::GO_ZERO
    }
}

impl From<Timestamp> for Millis {
    /// The timestamp's milliseconds; finer digits are dropped.
    fn from(timestamp: Timestamp) -> Self {
        Millis(timestamp.as_millisecond())
    }
}

wire_enum! {
    /// What happened (`ChatEvent.Type`).
    #[derive(Default)]
    pub enum EventType {
        /// `chat_created`: a client opened a chat (a new ticket).
        ChatCreated => "chat_created",
        /// `ticket_assigned`: the chat's ticket was assigned to an operator.
        TicketAssigned => "ticket_assigned",
        /// `typing`: someone is typing (transitive: not stored, `Id` 0).
        Typing => "typing",
        /// `message_created`: a message was sent.
        #[default]
        MessageCreated => "message_created",
        /// `message_received`: a message was delivered.
        MessageReceived => "message_received",
        /// `message_read`: a message was read.
        MessageRead => "message_read",
        /// `message_listened`: a voice message was listened to.
        MessageListened => "message_listened",
        /// `delete-messages` (with a hyphen): messages were deleted.
        DeleteMessages => "delete-messages",
        /// `chat_closed`: the chat's ticket was closed.
        ChatClosed => "chat_closed",
    }
}

/// The nine iQChannels event types deskhook knows, without [`EventType::Other`]: what a
/// subscription names (`iqchannels.message_created`, see [`crate::EventType`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `chat_created`
    ChatCreated,
    /// `ticket_assigned`
    TicketAssigned,
    /// `typing`
    Typing,
    /// `message_created`
    MessageCreated,
    /// `message_received`
    MessageReceived,
    /// `message_read`
    MessageRead,
    /// `message_listened`
    MessageListened,
    /// `delete-messages` (with a hyphen)
    DeleteMessages,
    /// `chat_closed`
    ChatClosed,
}

impl EventKind {
    /// Every kind, in the order of [`EventType`]'s variants.
    pub const ALL: [EventKind; 9] = [
        EventKind::ChatCreated,
        EventKind::TicketAssigned,
        EventKind::Typing,
        EventKind::MessageCreated,
        EventKind::MessageReceived,
        EventKind::MessageRead,
        EventKind::MessageListened,
        EventKind::DeleteMessages,
        EventKind::ChatClosed,
    ];

    /// The wire string (`ChatEvent.Type`): `message_created`, `delete-messages`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::ChatCreated => "chat_created",
            EventKind::TicketAssigned => "ticket_assigned",
            EventKind::Typing => "typing",
            EventKind::MessageCreated => "message_created",
            EventKind::MessageReceived => "message_received",
            EventKind::MessageRead => "message_read",
            EventKind::MessageListened => "message_listened",
            EventKind::DeleteMessages => "delete-messages",
            EventKind::ChatClosed => "chat_closed",
        }
    }

    /// The kind with this wire string, if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl From<EventKind> for EventType {
    fn from(kind: EventKind) -> Self {
        EventType::from_wire(kind.as_str())
    }
}

impl EventType {
    /// The kind, or `None` for [`EventType::Other`] (and for an `Other` holding a known
    /// name, which parsing never makes).
    pub fn kind(&self) -> Option<EventKind> {
        match self {
            EventType::Other(_) => None,
            known => EventKind::from_name(known.as_str()),
        }
    }
}

wire_object! {
    /// A whole iQChannels webhook body: `{"ChatEvent": {…}, "Rels": {…}}`.
    ///
    /// ```
    /// use deskhook::formats::iqchannels::{Event, EventType};
    ///
    /// let body = br#"{"ChatEvent":{"Id":608,"Type":"message_created","ChatId":21,"MessageId":300},"Rels":{"ChatMessages":[{"Id":300,"Text":"Hello"}]}}"#;
    /// let event = Event::from_json(body)?;
    /// assert_eq!(event.chat_event.kind, EventType::MessageCreated);
    /// assert_eq!(event.ordering_key(), "21");
    /// assert_eq!(event.message().unwrap().text, "Hello");
    /// assert_eq!(event.to_json()?, body);
    /// # Ok::<(), deskhook::Error>(())
    /// ```
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Event, expecting "an iQChannels event object {ChatEvent, Rels}" {
        /// The event.
        pub chat_event: ChatEvent => "ChatEvent", plain, required;
        /// The objects it refers to.
        pub rels: Rels => "Rels", plain, default;
    }
}

impl Event {
    /// Parses a body.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEvent`] with the path of the offending key (`Rels.Chats[0].Id`) and
    /// the line and column, for malformed JSON, missing required keys and values of the
    /// wrong type.
    pub fn from_json(json: &[u8]) -> Result<Event, Error> {
        super::from_json(json)
    }

    /// Serializes the body: compact JSON, keys as they came (documented order for a value
    /// built in code).
    ///
    /// # Errors
    ///
    /// When an `extra` map was given a key that is one of its type's own fields (set by
    /// hand: a parsed body never has one); the message names it.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(Error::Serialize)
    }

    /// The event type as sent: `message_created`, `delete-messages`, …
    pub fn event_type(&self) -> &str {
        self.chat_event.kind.as_str()
    }

    /// The chat the event belongs to.
    pub fn chat_id(&self) -> i64 {
        self.chat_event.chat_id
    }

    /// The key that orders events: the chat id, in decimal.
    pub fn ordering_key(&self) -> String {
        self.chat_id().to_string()
    }

    /// The `Content-Type` of the body: [`CONTENT_TYPE`].
    pub fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    /// The event's chat, from `Rels`.
    pub fn chat(&self) -> Option<&Chat> {
        self.rels
            .chats
            .iter()
            .find(|c| c.id == self.chat_event.chat_id)
    }

    /// The event's message (`MessageId`), from `Rels`.
    pub fn message(&self) -> Option<&ChatMessage> {
        let id = self.chat_event.message_id?;
        self.rels.chat_messages.iter().find(|m| m.id == id)
    }

    /// The client who acted, or the chat's client, from `Rels`.
    pub fn client(&self) -> Option<&Client> {
        let id = self.chat_event.client_id?;
        self.rels.clients.iter().find(|c| c.id == id)
    }

    /// The operator who acted, from `Rels`.
    pub fn user(&self) -> Option<&User> {
        let id = self.chat_event.user_id?;
        self.rels.users.iter().find(|u| u.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_to_timestamps() {
        assert_eq!(
            Millis::GO_ZERO.to_timestamp().unwrap().to_string(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(Millis(i64::MAX).to_timestamp(), None);
        let now = Timestamp::from_millisecond(1_682_678_682_613).unwrap();
        assert_eq!(Millis::from(now), Millis(1_682_678_682_613));
    }

    #[test]
    fn unknown_event_types_are_kept() {
        let body = br#"{"ChatEvent":{"Id":1,"Type":"chat_opened","ChatId":2}}"#;
        let event = Event::from_json(body).unwrap();
        assert_eq!(
            event.chat_event.kind,
            EventType::Other("chat_opened".into())
        );
        assert_eq!(event.event_type(), "chat_opened");
        assert_eq!(event.to_json().unwrap(), body);
    }

    #[test]
    fn an_event_built_in_code_round_trips() {
        let event = Event {
            chat_event: ChatEvent {
                id: 5,
                kind: EventType::DeleteMessages,
                chat_id: 7,
                ..ChatEvent::default()
            },
            ..Event::default()
        };
        let json = event.to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.starts_with(
                r#"{"ChatEvent":{"Id":5,"Type":"delete-messages","ChatId":7,"MessageId":null,"#
            ),
            "{text}"
        );
        assert!(text.ends_with(r#""Files":[]}}"#), "{text}");
        let back = Event::from_json(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.to_json().unwrap(), json);
    }
}
