//! Webhook formats of other helpdesks: [Usedesk](usedesk) and [iQChannels](iqchannels).
//!
//! The Zenlix format, deskhook's default, is the crate's [`Event`](crate::Event); these
//! modules model what other helpdesks send. deskhook sends and receives all three:
//!
//! | Format | Model | Event types | Ordering key | `Content-Type` |
//! |---|---|---|---|---|
//! | Zenlix | [`Event`](crate::Event), [`EventRef`](crate::EventRef) | the twelve actions: `create`, …, `edit` | ticket code | `application/json` |
//! | Usedesk | [`usedesk::Event`] | `usedesk.ticket_created`, `usedesk.ticket_changed`, `usedesk.comment_created`, `usedesk.rating` | ticket id | `application/json` |
//! | iQChannels | [`iqchannels::Event`] | `iqchannels.chat_created`, `.ticket_assigned`, `.typing`, `.message_created`, `.message_received`, `.message_read`, `.message_listened`, `.delete-messages`, `.chat_closed` | chat id | `application/json; charset=utf-8` |
//!
//! # Sending
//!
//! [`emit_webhook`](crate::emit_webhook()) takes an event of any format and sends it
//! through the same dispatcher, subscriptions, switches, per-key ordering, signing, spool
//! and transports as [`emit`](crate::emit()). The body is the event serialized compactly (a
//! parsed event is written back as it came); `X-Deskhook-Action` carries the event type's
//! name, and the file log, the spool and the dead letters store that name.
//!
//! Sinks and endpoints subscribe to event types of every format by name (see
//! [`EventType`](crate::EventType)); a typo gets a suggestion: `unknown event type
//! 'usedesk.coment_created' (did you mean 'usedesk.comment_created'?)`. An iQChannels
//! `ChatEvent.Type` this version does not know ([`iqchannels::EventType::Other`]) has no
//! name to subscribe to: `emit_webhook` drops it, counts it in the dispatcher's `dropped`
//! and logs it at warn, as it does a Zenlix event whose action is not one of the twelve.
//!
//! # Receiving
//!
//! [`receive`](crate::receive()) checks the signature, tells the format from the body's
//! top-level keys (or is told it: [`Format`]), parses it, and checks a Usedesk channel
//! secret when given one, so that one receiver takes all three.
//!
//! Every model type serializes and deserializes. A parsed body written back gives the same
//! JSON data with the same keys in the same order: keys the model does not know are kept in
//! each type's `extra`, and each value remembers which keys came and in what order (its
//! [`KeyOrder`]). Fields that a sender may leave out take their type's default value when
//! missing (`""`, `0`, `None`, an empty list) and stay out when written back unless they were
//! changed. The bytes are the same when the sender wrote compact JSON as serde_json does:
//! what serde_json writes otherwise is not kept, such as escapes it does not need (`\/`,
//! `&`, and non-ASCII escaped, as PHP's `json_encode` and Go's `encoding/json` write
//! them by default) and number spellings (`1.50` comes back as `1.5`; an integer beyond
//! 64 bits, in a key the model does not know, as a float), and Usedesk's `0`/`1` flags
//! (`first`, `delivered`, `readed`) sent as `"1"` or `true` come back as `1`. A signature is
//! checked on the bytes received, never on the body written back.
//!
//! ```
//! use deskhook::formats::usedesk;
//!
//! let body = br#"{"secret":"0e8f","rating":{"id":7,"ticket_id":"2261907","rating":3}}"#;
//! let event = usedesk::Event::from_json(body)?;
//! assert_eq!(event.event_type(), "rating");
//! assert_eq!(event.ordering_key(), "2261907");
//! assert_eq!(event.to_json()?, body);
//! # Ok::<(), deskhook::Error>(())
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub mod iqchannels;
pub mod usedesk;

pub use crate::receive::Format;

/// Which keys of a JSON object came, and in what order, so that a parsed value is written
/// back as it came.
///
/// Every model type of the vendor formats has one (`key_order`). It is filled by parsing and
/// is empty for a value built in code, which then writes all its fields in the documented
/// order. It carries no data of the event: two values that differ only in their key order
/// are equal (`==` ignores it), and [`KeyOrder::default`] is the right value when building a
/// value in code.
#[derive(Clone, Default)]
pub struct KeyOrder {
    slots: Vec<u8>,
    /// Parsed, as opposed to built in code: a parsed `{}` writes back as `{}`.
    parsed: bool,
}

impl KeyOrder {
    /// The slot of a key kept in `extra`; known keys are numbered from 0 in documented order.
    pub(crate) const EXTRA: u8 = u8::MAX;

    /// The order of a value being parsed (keys are pushed as they come).
    pub(crate) fn parsing() -> KeyOrder {
        KeyOrder {
            slots: Vec::new(),
            parsed: true,
        }
    }

    pub(crate) fn slots(&self) -> &[u8] {
        &self.slots
    }

    pub(crate) fn push(&mut self, slot: u8) {
        self.slots.push(slot);
    }

    /// Makes the `nth` key kept in `extra` (from 0) the known key of `slot`: a key read as
    /// unknown that turned out to be known.
    pub(crate) fn replace_extra(&mut self, nth: usize, slot: u8) {
        if let Some(at) = self
            .slots
            .iter_mut()
            .filter(|s| **s == KeyOrder::EXTRA)
            .nth(nth)
        {
            *at = slot;
        }
    }

    /// Whether the value was built in code (or [`cleared`](Self::clear)), and so writes every
    /// field in the documented order.
    pub(crate) fn is_fresh(&self) -> bool {
        !self.parsed
    }

    /// Whether no key is recorded (a value built in code, one [`cleared`](Self::clear), or
    /// one parsed from `{}`).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// How many keys the parsed object had.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Forgets the order, so that the value is written in the documented order with every
    /// field, as if built in code.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.parsed = false;
    }
}

impl PartialEq for KeyOrder {
    /// Always true: the key order is how a value was written, not part of the value.
    fn eq(&self, _other: &KeyOrder) -> bool {
        true
    }
}

impl Eq for KeyOrder {}

impl fmt::Debug for KeyOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyOrder({} keys)", self.slots.len())
    }
}

/// How a sender wrote an [`Id`]: as a JSON number (`2261907`) or as a string of its digits
/// (`"2261907"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdForm {
    /// A JSON number.
    #[default]
    Number,
    /// A JSON string of decimal digits.
    String,
}

/// A numeric id that a sender writes sometimes as a number and sometimes as a string.
///
/// Usedesk sends `"id": "2261907"` in one webhook and `"ticket_id": 2261907` in another. An
/// `Id` accepts both, remembers the form, and is written back the way it came. Two ids are
/// equal when their numbers are, whatever their forms.
///
/// A string form must be the canonical decimal digits of the number (no sign, no leading
/// zeros, no spaces), so that writing it back gives the same text.
///
/// ```
/// use deskhook::formats::{Id, IdForm};
///
/// let a: Id = serde_json::from_str("\"2261907\"").unwrap();
/// let b: Id = serde_json::from_str("2261907").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.form(), IdForm::String);
/// assert_eq!(serde_json::to_string(&a).unwrap(), "\"2261907\"");
/// assert_eq!(serde_json::to_string(&b).unwrap(), "2261907");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Id {
    value: u64,
    form: IdForm,
}

impl Id {
    /// An id written as a JSON number.
    pub const fn number(value: u64) -> Id {
        Id {
            value,
            form: IdForm::Number,
        }
    }

    /// An id written as a JSON string of its digits.
    pub const fn string(value: u64) -> Id {
        Id {
            value,
            form: IdForm::String,
        }
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.value
    }

    /// How it is written.
    pub const fn form(self) -> IdForm {
        self.form
    }

    /// This id written in another form.
    #[must_use]
    pub const fn with_form(self, form: IdForm) -> Id {
        Id {
            value: self.value,
            form,
        }
    }
}

impl From<u64> for Id {
    fn from(value: u64) -> Self {
        Id::number(value)
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.value == other.value
    }
}

impl Eq for Id {}

impl PartialEq<u64> for Id {
    fn eq(&self, other: &u64) -> bool {
        self.value == *other
    }
}

impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Id) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Id {
    fn cmp(&self, other: &Id) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.form {
            IdForm::Number => serializer.serialize_u64(self.value),
            IdForm::String => {
                let mut digits = [0u8; 20];
                serializer.serialize_str(write_u64(self.value, &mut digits))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id: a non-negative integer, or a string of its digits")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id::number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                u64::try_from(v)
                    .map(Id::number)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                parse_canonical_u64(v)
                    .map(Id::string)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// Parses the decimal digits of a `u64` as `to_string` writes them, and nothing else.
pub(crate) fn parse_canonical_u64(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    let canonical = match bytes {
        [] => false,
        [b'0'] => true,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if canonical { s.parse().ok() } else { None }
}

/// Writes `n` in decimal into `buf` without allocating.
fn write_u64(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// A secret string inside a payload, such as Usedesk's channel `secret`: written back as it
/// came, but kept out of logs — `Debug` prints `Token(…)`, and there is no `Display`.
///
/// Compare it with [`Token::matches`], which takes the same time wherever the first
/// difference is (`==` does too, but lets two empty tokens be equal).
#[derive(Clone, Default, Eq)]
pub struct Token(String);

impl PartialEq for Token {
    /// Compares in time that depends only on the lengths, as [`Token::matches`] does.
    fn eq(&self, other: &Token) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Token {
    /// A token with this value.
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }

    /// The value. Take care not to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token equals `expected`, compared in time that depends only on the
    /// lengths. An empty `expected` matches nothing: an unset token (an environment variable
    /// read as empty) must not let a body with `"secret": ""` through.
    pub fn matches(&self, expected: &str) -> bool {
        !expected.is_empty() && constant_time_eq(self.0.as_bytes(), expected.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Token)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // subtle's: its comparison is kept from the optimizer's shortcuts throughout, not only
    // at its result.
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Parses a whole body into `T`, with the path and position of the first problem.
pub(crate) fn from_json<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T, crate::Error> {
    // A valid body is read without tracking paths; only one that fails is read again with
    // them, for the message.
    if let Ok(value) = serde_json::from_slice(json) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let value: T =
        serde_path_to_error::deserialize(&mut de).map_err(crate::Error::invalid_event)?;
    de.end().map_err(|e| crate::Error::InvalidEvent {
        path: ".".to_owned(),
        message: crate::error::clipped(e.to_string()),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_quotes_a_long_input_cut_to_its_start_and_end() {
        // A string of the wrong kind, as long as a whole body.
        let body = format!("\"{}\"", "7A".repeat(500_000));
        let error = from_json::<Id>(body.as_bytes()).unwrap_err().to_string();
        assert!(error.chars().count() < 400, "{} characters", error.len());
        assert!(error.contains("7A7A7A") && error.contains('…'), "{error}");
        assert!(error.ends_with("expected an id: a non-negative integer, or a string of its digits at line 1 column 1000002"), "{error}");
        // A map key in the path.
        let body = format!("{{\"{}\": \"x\"}}", "k".repeat(100_000));
        let error = from_json::<std::collections::HashMap<String, u64>>(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.chars().count() < 800, "{} characters", error.len());
        assert!(error.contains("expected u64"), "{error}");
    }

    #[test]
    fn ids_keep_their_form() {
        for text in ["0", "7", "2261907", "18446744073709551615"] {
            let quoted = format!("\"{text}\"");
            let id: Id = serde_json::from_str(&quoted).unwrap();
            assert_eq!(serde_json::to_string(&id).unwrap(), quoted);
            let id: Id = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&id).unwrap(), text);
        }
        for bad in [
            "\"\"", "\"007\"", "\"-1\"", "\" 1\"", "\"1x\"", "-1", "1.5", "null",
        ] {
            let err = serde_json::from_str::<Id>(bad).unwrap_err();
            assert!(err.to_string().contains("expected an id"), "{bad}: {err}");
        }
        assert_eq!(Id::string(5), Id::number(5));
        assert_eq!(Id::string(5).to_string(), "5");
    }

    #[test]
    fn tokens_stay_out_of_debug_and_compare_whole() {
        let token = Token::new("0e8f678d");
        assert_eq!(format!("{token:?}"), "Token(…)");
        assert!(token.matches("0e8f678d"));
        assert!(!token.matches("0e8f678e"));
        assert!(!token.matches("0e8f678"));
        assert!(!token.matches(""));
        assert_eq!(token, Token::new("0e8f678d"));
        assert_ne!(token, Token::new("0e8f678e"));
        assert_eq!(Token::default(), Token::new(""));
    }

    #[test]
    fn key_orders_do_not_take_part_in_equality() {
        let mut a = KeyOrder::default();
        a.push(1);
        assert_eq!(a, KeyOrder::default());
        assert_eq!(format!("{a:?}"), "KeyOrder(1 keys)");
    }
}
