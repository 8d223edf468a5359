//! Usedesk webhooks: ticket created, ticket changed, comment created, rating.
//!
//! The API channel of Usedesk POSTs to its "Redirect url", with the "JSON request" option on,
//! a body `{"secret": <channel token>, "<wrapper>": {…}}`. The wrapper names the event:
//!
//! | Wrapper | Event | [`Event::event_type`] | Model |
//! |---|---|---|---|
//! | `ticket` | a ticket was created | `ticket_created` | [`Ticket`] |
//! | `trigger` | a ticket was changed | `ticket_changed` | [`TicketChange`] |
//! | `comment` | a comment was created | `comment_created` | [`Comment`] |
//! | `rating` | the client rated the answer | `rating` | [`Rating`] |
//! | another key | an event this version does not know | the key | [`Payload::Other`] |
//!
//! A body whose one object beside `secret` is under none of the four keys is read as an
//! event this version does not know, kept and written back as it came, rather than refused:
//! a newer Usedesk event, or a rating whose wrapper's inferred name is not Usedesk's, still
//! reaches the receiver (and its `secret` can be checked). It has no [`EventKind`].
//!
//! `secret` is the token of the API channel; check it with [`Event::secret_matches`] (or give
//! it to [`ReceiveOptions::usedesk_secret`](crate::ReceiveOptions::usedesk_secret)). It is a
//! [`Token`], kept out of `Debug`.
//!
//! Ids come as numbers in some webhooks and as strings of digits in others; they are [`Id`]s,
//! which accept both and are written back as they came. Times are `YYYY-MM-DD HH:MM:SS`
//! without a zone (the account's local time), as [`DateTime`](jiff::civil::DateTime).
//!
//! The names of the rating wrapper (`rating`), of its score (`rating`) and of the comment's
//! first-comment flag (`first`) are inferred: the vendor's document lost them.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Id, KeyOrder, Token};
use crate::error::Error;

/// The `Content-Type` of Usedesk webhooks.
pub const CONTENT_TYPE: &str = "application/json";

mod model;

pub use model::*;

/// The four Usedesk event types, without their data: what a subscription names
/// (`usedesk.comment_created`, see [`EventType`](crate::EventType)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `ticket_created` (wrapper `ticket`).
    TicketCreated,
    /// `ticket_changed` (wrapper `trigger`).
    TicketChanged,
    /// `comment_created` (wrapper `comment`).
    CommentCreated,
    /// `rating` (wrapper `rating`).
    Rating,
}

impl EventKind {
    /// Every Usedesk event type, in the order of [`Payload`]'s variants.
    pub const ALL: [EventKind; 4] = [
        EventKind::TicketCreated,
        EventKind::TicketChanged,
        EventKind::CommentCreated,
        EventKind::Rating,
    ];

    /// The event type's name: `ticket_created`, `ticket_changed`, `comment_created` or
    /// `rating`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::TicketCreated => "ticket_created",
            EventKind::TicketChanged => "ticket_changed",
            EventKind::CommentCreated => "comment_created",
            EventKind::Rating => "rating",
        }
    }

    /// The kind named `name` (exactly as [`as_str`](Self::as_str) writes it), if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a Usedesk webhook reports: the object under the body's wrapper key.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// `ticket`: a ticket was created.
    TicketCreated(Ticket),
    /// `trigger`: a ticket was changed.
    TicketChanged(TicketChange),
    /// `comment`: a comment was created.
    CommentCreated(Comment),
    /// `rating`: the client rated an answer.
    Rating(Rating),
    /// An event this version does not know: a body whose one object beside `secret` is
    /// under another key (a newer Usedesk event, or a wrapper whose inferred name is not
    /// Usedesk's). Kept as it came, and written back so; it has no
    /// [`EventKind`], and [`emit_webhook`](crate::emit_webhook) drops it (counted, logged).
    Other {
        /// The wrapper key.
        wrapper: String,
        /// Its object.
        value: Map<String, Value>,
    },
}

/// The wrapper keys, in the order of [`Payload`]'s variants.
const WRAPPERS: [&str; 4] = ["ticket", "trigger", "comment", "rating"];

impl Payload {
    /// The wrapper key of the body: `ticket`, `trigger`, `comment` or `rating`, or
    /// [`Other`](Payload::Other)'s.
    pub fn wrapper(&self) -> &str {
        match self {
            Payload::TicketCreated(_) => WRAPPERS[0],
            Payload::TicketChanged(_) => WRAPPERS[1],
            Payload::CommentCreated(_) => WRAPPERS[2],
            Payload::Rating(_) => WRAPPERS[3],
            Payload::Other { wrapper, .. } => wrapper,
        }
    }

    /// The event type: `ticket_created`, `ticket_changed`, `comment_created` or `rating`;
    /// for an [`Other`](Payload::Other), its wrapper key.
    pub fn event_type(&self) -> &str {
        match self.kind() {
            Some(kind) => kind.as_str(),
            None => self.wrapper(),
        }
    }

    /// The event type as an [`EventKind`]; `None` for an [`Other`](Payload::Other).
    pub fn kind(&self) -> Option<EventKind> {
        match self {
            Payload::TicketCreated(_) => Some(EventKind::TicketCreated),
            Payload::TicketChanged(_) => Some(EventKind::TicketChanged),
            Payload::CommentCreated(_) => Some(EventKind::CommentCreated),
            Payload::Rating(_) => Some(EventKind::Rating),
            Payload::Other { .. } => None,
        }
    }

    /// The id of the ticket the event is about; for an [`Other`](Payload::Other), its
    /// `ticket_id` if it has one that reads as an id.
    pub fn ticket_id(&self) -> Option<Id> {
        match self {
            Payload::TicketCreated(ticket) => Some(ticket.id),
            Payload::TicketChanged(change) => Some(change.ticket_id),
            Payload::CommentCreated(comment) => Some(comment.ticket_id),
            Payload::Rating(rating) => Some(rating.ticket_id),
            Payload::Other { value, .. } => value
                .get("ticket_id")
                .and_then(|id| Id::deserialize(id).ok()),
        }
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload::TicketCreated(Ticket::default())
    }
}

/// A whole Usedesk webhook body: `{"secret": …, "<wrapper>": {…}}`.
///
/// ```
/// use deskhook::formats::usedesk::{Event, Payload, Sender};
///
/// let body = br#"{"secret":"0e8f","comment":{"id":5,"message":"Hi","from":"client","ticket_id":2261907}}"#;
/// let event = Event::from_json(body)?;
/// assert_eq!(event.event_type(), "comment_created");
/// assert!(event.secret_matches("0e8f"));
/// let Payload::CommentCreated(comment) = &event.payload else { unreachable!() };
/// assert_eq!(comment.from, Sender::Client);
/// assert_eq!(event.to_json()?, body);
/// # Ok::<(), deskhook::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    /// The token of the API channel that sent the webhook (sent as it is: see
    /// [`Dispatcher::emit_webhook`](crate::Dispatcher::emit_webhook) before forwarding a
    /// received one).
    pub secret: Token,
    /// The event.
    pub payload: Payload,
    /// Top-level keys this version of deskhook does not know, in the order they came.
    pub extra: Map<String, Value>,
    /// Which keys came and in what order; empty for a value built in code.
    pub key_order: KeyOrder,
}

impl Event {
    /// An event with this channel secret and payload.
    pub fn new(secret: impl Into<String>, payload: Payload) -> Event {
        Event {
            secret: Token::new(secret),
            payload,
            extra: Map::new(),
            key_order: KeyOrder::default(),
        }
    }

    /// Parses a body.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEvent`] with the path of the offending key (`comment.ticket_id`) and
    /// the line and column, for malformed JSON, a missing `secret` or payload, missing
    /// required keys and values of the wrong type.
    pub fn from_json(json: &[u8]) -> Result<Event, Error> {
        super::from_json(json)
    }

    /// Serializes the body: compact JSON, keys as they came (documented order for a value
    /// built in code).
    ///
    /// # Errors
    ///
    /// When an `extra` map (the event's or a payload's) has a key of its own fields, such as
    /// `secret` or a second payload's wrapper (`comment` beside `ticket`): it would be
    /// written twice.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(Error::Serialize)
    }

    /// The event type: `ticket_created`, `ticket_changed`, `comment_created` or `rating`;
    /// for an event this version does not know, its wrapper key.
    pub fn event_type(&self) -> &str {
        self.payload.event_type()
    }

    /// The event type as an [`EventKind`]; `None` for an event this version does not know.
    pub fn kind(&self) -> Option<EventKind> {
        self.payload.kind()
    }

    /// The id of the ticket the event is about (see [`Payload::ticket_id`]).
    pub fn ticket_id(&self) -> Option<Id> {
        self.payload.ticket_id()
    }

    /// The key that orders events: the ticket id, in decimal (empty when an event this
    /// version does not know has none).
    pub fn ordering_key(&self) -> String {
        self.ticket_id()
            .map(|id| id.to_string())
            .unwrap_or_default()
    }

    /// The `Content-Type` of the body: [`CONTENT_TYPE`].
    pub fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    /// Whether the body's `secret` is `expected`, the token of your API channel; compared in
    /// time that depends only on the lengths.
    pub fn secret_matches(&self, expected: &str) -> bool {
        self.secret.matches(expected)
    }
}

/// A seed that refuses any value with its message.
struct Refuse(String);

impl<'de> de::DeserializeSeed<'de> for Refuse {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, _deserializer: D) -> Result<(), D::Error> {
        Err(de::Error::custom(self.0))
    }
}

/// Slots of [`Event`]'s known keys in its [`KeyOrder`].
const SLOT_SECRET: u8 = 0;
const SLOT_PAYLOAD: u8 = 1;

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // A payload's wrapper in `extra` would make a second payload, which receivers refuse.
        crate::wire::check_extra::<S::Error>("Event", &["secret"], &self.extra)?;
        crate::wire::check_extra::<S::Error>("Event", &WRAPPERS, &self.extra)?;
        if let Payload::Other { wrapper, .. } = &self.payload {
            // Written so, it would not read back as itself: under `secret` or a known
            // wrapper, or beside another object (two objects cannot be told apart).
            if wrapper == "secret" || WRAPPERS.contains(&wrapper.as_str()) {
                return Err(serde::ser::Error::custom(format_args!(
                    "Payload::Other under `{wrapper}`, a key Usedesk bodies use for their own: \
                     build the payload's own variant"
                )));
            }
            if let Some((key, _)) = self.extra.iter().find(|(_, value)| value.is_object()) {
                return Err(serde::ser::Error::custom(format_args!(
                    "Payload::Other beside an object in extra (`{key}`): a body with two \
                     objects beside `secret` cannot be read back"
                )));
            }
            crate::wire::check_extra::<S::Error>("Event", &[wrapper.as_str()], &self.extra)?;
        }
        let mut map = serializer.serialize_map(None)?;
        let mut extra = self.extra.iter();
        let (mut secret_done, mut payload_done) = (false, false);
        let order = self.key_order.slots();
        let write_payload = |map: &mut S::SerializeMap| -> Result<(), S::Error> {
            let key = self.payload.wrapper();
            match &self.payload {
                Payload::TicketCreated(v) => map.serialize_entry(key, v),
                Payload::TicketChanged(v) => map.serialize_entry(key, v),
                Payload::CommentCreated(v) => map.serialize_entry(key, v),
                Payload::Rating(v) => map.serialize_entry(key, v),
                Payload::Other { value, .. } => map.serialize_entry(key, value),
            }
        };
        for &slot in order {
            match slot {
                SLOT_SECRET if !secret_done => {
                    map.serialize_entry("secret", &self.secret)?;
                    secret_done = true;
                }
                SLOT_PAYLOAD if !payload_done => {
                    write_payload(&mut map)?;
                    payload_done = true;
                }
                KeyOrder::EXTRA => {
                    if let Some((key, value)) = extra.next() {
                        map.serialize_entry(key, value)?;
                    }
                }
                _ => {}
            }
        }
        if !secret_done {
            map.serialize_entry("secret", &self.secret)?;
        }
        if !payload_done {
            write_payload(&mut map)?;
        }
        for (key, value) in extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a Usedesk event object {secret, and one of ticket, trigger, comment, \
                     rating, or one object under another key}",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                let mut secret: Option<Token> = None;
                let mut payload: Option<Payload> = None;
                let mut extra = Map::new();
                let mut key_order = KeyOrder::parsing();
                while let Some(crate::wire::Key(key)) = map.next_key()? {
                    let key = &*key;
                    if key == "secret" {
                        if secret.is_some() {
                            return Err(de::Error::duplicate_field("secret"));
                        }
                        secret = Some(map.next_value()?);
                        key_order.push(SLOT_SECRET);
                    } else if let Some(index) = WRAPPERS.iter().position(|w| *w == key) {
                        if let Some(first) = &payload {
                            // Failing inside the value puts the second wrapper in the path.
                            let message = format!(
                                "two payloads, `{}` and `{key}` (expected one of `ticket`, \
                                 `trigger`, `comment`, `rating`)",
                                first.wrapper()
                            );
                            map.next_value_seed(Refuse(message))?;
                            continue;
                        }
                        payload = Some(match index {
                            0 => Payload::TicketCreated(map.next_value()?),
                            1 => Payload::TicketChanged(map.next_value()?),
                            2 => Payload::CommentCreated(map.next_value()?),
                            _ => Payload::Rating(map.next_value()?),
                        });
                        key_order.push(SLOT_PAYLOAD);
                    } else {
                        let value: Value = map.next_value()?;
                        if extra.insert(key.to_owned(), value).is_some() {
                            return Err(de::Error::custom(format_args!(
                                "duplicate field `{}`",
                                crate::error::shorten(key)
                            )));
                        }
                        key_order.push(KeyOrder::EXTRA);
                    }
                }
                let secret = secret.ok_or_else(|| de::Error::missing_field("secret"))?;
                // None known: the one object beside `secret`, an event this version does
                // not know, if there is one and only one.
                let payload = match payload {
                    Some(payload) => payload,
                    None => other_payload(&mut extra, &mut key_order).ok_or_else(|| {
                        de::Error::custom(
                            "missing the payload: one of `ticket`, `trigger`, `comment`, \
                             `rating`, or one object under another key (an event this version \
                             does not know)",
                        )
                    })?,
                };
                Ok(Event {
                    secret,
                    payload,
                    extra,
                    key_order,
                })
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

/// The payload of a body with no known wrapper: its one object under another key, taken out
/// of `extra` (its slot in `key_order` becomes the payload's); `None` when there is not
/// exactly one.
fn other_payload(extra: &mut Map<String, Value>, key_order: &mut KeyOrder) -> Option<Payload> {
    let mut objects = extra.iter().enumerate().filter(|(_, (_, v))| v.is_object());
    let (nth, (wrapper, _)) = objects.next()?;
    if objects.next().is_some() {
        return None;
    }
    let wrapper = wrapper.clone();
    let Some(Value::Object(value)) = extra.shift_remove(&wrapper) else {
        return None;
    };
    key_order.replace_extra(nth, SLOT_PAYLOAD);
    Some(Payload::Other { wrapper, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_scores_have_labels() {
        assert_eq!(Status::from_code(5), Status::OnHold);
        assert_eq!(Status::OnHold.to_string(), "on hold");
        assert_eq!(Status::from_code(10).to_string(), "10");
        assert_eq!(Status::Mailing.code(), 9);
        assert_eq!(Score::from_code(1), Score::Poor);
        assert_eq!(ScoreId::number(Score::Good).id(), Id::number(3));
    }

    #[test]
    fn statuses_and_scores_serialize_as_their_numbers() {
        assert_eq!(serde_json::to_string(&Status::OnHold).unwrap(), "5");
        assert_eq!(serde_json::to_string(&Score::Other(7)).unwrap(), "7");
        let status: Status = serde_json::from_str("\"5\"").unwrap();
        assert_eq!(status, Status::OnHold);
        let score: Score = serde_json::from_str("3").unwrap();
        assert_eq!(score, Score::Good);
        assert!(serde_json::from_str::<Status>("\"on hold\"").is_err());
    }

    #[test]
    fn an_event_built_in_code_writes_every_field_in_documented_order() {
        let event = Event::new(
            "s",
            Payload::Rating(Rating {
                ticket_id: Id::number(9),
                rating: Some(ScoreId::number(Score::Good)),
                ..Rating::default()
            }),
        );
        let json = String::from_utf8(event.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"secret":"s","rating":{"id":0,"client_id":0,"ticket_id":9,"rating":3,"company_id":0,"ticket_comment_id":0,"comment":"","created_at":"0000-01-01 00:00:00","updated_at":"0000-01-01 00:00:00","user_id":null}}"#
        );
        assert_eq!(Event::from_json(json.as_bytes()).unwrap(), event);
    }

    #[test]
    fn an_event_this_version_does_not_know_is_kept_and_written_back_as_it_came() {
        let body = br#"{"n":1,"review":{"ticket_id":"77","stars":5},"secret":"s","tag":"x"}"#;
        let event = Event::from_json(body).unwrap();
        let Payload::Other { wrapper, value } = &event.payload else {
            panic!("{:?}", event.payload)
        };
        assert_eq!(
            (wrapper.as_str(), &value["stars"]),
            ("review", &Value::from(5))
        );
        assert_eq!((event.kind(), event.event_type()), (None, "review"));
        assert_eq!(event.ordering_key(), "77");
        assert!(event.secret_matches("s"));
        assert_eq!(event.extra.keys().collect::<Vec<_>>(), ["n", "tag"]);
        assert_eq!(event.to_json().unwrap(), body);
        assert_eq!(crate::event::WebhookEvent::event_type(&event), None);
        let refused = crate::sink::Emitted::from_webhook(&event).unwrap_err();
        assert!(refused.to_string().contains("usedesk.review"), "{refused}");
        // No ticket id: no ordering key.
        let event = Event::from_json(br#"{"secret":"s","review":{}}"#).unwrap();
        assert_eq!(event.ordering_key(), "");
        // Two objects, or none, beside the secret: which is the event cannot be told.
        for body in [
            &br#"{"secret":"s","a":{},"b":{}}"#[..],
            br#"{"secret":"s","a":1}"#,
        ] {
            let err = Event::from_json(body).unwrap_err().to_string();
            assert!(err.contains("missing the payload"), "{err}");
        }
        // Written from code, its wrapper in `extra` too would be written twice.
        let mut twice = Event::new(
            "s",
            Payload::Other {
                wrapper: "review".into(),
                value: Map::new(),
            },
        );
        twice.extra.insert("review".into(), Value::Null);
        assert!(twice.to_json().is_err());
        // Nor under a key of Usedesk's own, nor beside another object: neither reads back.
        for wrapper in ["secret", "ticket"] {
            let own = Event::new(
                "s",
                Payload::Other {
                    wrapper: wrapper.into(),
                    value: Map::new(),
                },
            );
            let err = own.to_json().unwrap_err().to_string();
            assert!(err.contains("a key Usedesk bodies use"), "{err}");
        }
        let mut beside = Event::from_json(br#"{"secret":"s","review":{}}"#).unwrap();
        beside.extra.insert("more".into(), serde_json::json!({}));
        let err = beside.to_json().unwrap_err().to_string();
        assert!(err.contains("cannot be read back"), "{err}");
    }

    #[test]
    fn fields_set_after_parsing_are_written() {
        let body = br#"{"rating":{"ticket_id":1,"rating":2,"x":1},"secret":"s"}"#;
        let mut event = Event::from_json(body).unwrap();
        assert_eq!(event.to_json().unwrap(), body);
        let Payload::Rating(rating) = &mut event.payload else {
            unreachable!()
        };
        rating.comment = "thanks".into();
        rating.extra.insert("y".into(), Value::from(2));
        assert_eq!(
            String::from_utf8(event.to_json().unwrap()).unwrap(),
            r#"{"rating":{"ticket_id":1,"rating":2,"x":1,"comment":"thanks","y":2},"secret":"s"}"#
        );
        // An extra key that is one of the fields would be written twice: refused.
        let Payload::Rating(rating) = &mut event.payload else {
            unreachable!()
        };
        rating.extra.insert("comment".into(), Value::from("other"));
        let err = event.to_json().unwrap_err().to_string();
        assert!(err.contains("Rating.extra has the key `comment`"), "{err}");
        // The same at the top: a second payload, or a second secret.
        let Payload::Rating(rating) = &mut event.payload else {
            unreachable!()
        };
        rating.extra.clear();
        for key in ["ticket", "secret"] {
            event.extra.clear();
            event.extra.insert(key.into(), Value::from(1));
            let err = event.to_json().unwrap_err().to_string();
            assert!(
                err.contains(&format!("Event.extra has the key `{key}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_payload_is_required_and_unique() {
        let err = Event::from_json(br#"{"secret":"s"}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event: missing the payload"),
            "{err}"
        );
        let err =
            Event::from_json(br#"{"secret":"s","ticket":{"id":1},"comment":{}}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event at comment: two payloads, `ticket` and `comment`"),
            "{err}"
        );
        let err = Event::from_json(br#"{"ticket":{"id":1}}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event: missing field `secret`"),
            "{err}"
        );
    }
}
