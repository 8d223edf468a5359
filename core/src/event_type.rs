// Event types of every format deskhook sends, and sets of them. The module is private: the
// naming rules are documented on `EventType`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::action::Action;
use crate::action::ParseActionError;
use crate::formats::{iqchannels, usedesk};
use crate::receive::Format;

/// The type of an event deskhook can send, in any format.
///
/// It is `Copy` and small; [`as_str`](EventType::as_str) gives its name (`create`,
/// `usedesk.comment_created`, `iqchannels.delete-messages`) and parsing reads the name back,
/// in any ASCII case, with a suggestion when it is misspelt. `zenlix.create` is read as
/// `create`.
///
/// A Zenlix event type is its action and keeps its short name (`create`, `comment`, …); the
/// other formats' types are named with the format in front: `usedesk.comment_created`,
/// `iqchannels.message_created`. These names are what `X-Deskhook-Action` carries, what the
/// file log, the spool and the dead letters store, and what `actions = [...]` in
/// `deskhook.toml` lists. `usedesk.*`, `iqchannels.*` and `zenlix.*` name a whole format, `*`
/// everything.
///
/// ```
/// use deskhook::{Action, EventType, EventTypeSet};
///
/// let t: EventType = "usedesk.comment_created".parse().unwrap();
/// assert_eq!(t.as_str(), "usedesk.comment_created");
/// assert_eq!("create".parse::<EventType>().unwrap(), EventType::Zenlix(Action::Create));
///
/// let set: EventTypeSet = "create, iqchannels.*".parse().unwrap();
/// assert!(set.contains(EventType::Zenlix(Action::Create)));
/// assert!(set.contains("iqchannels.typing".parse::<EventType>().unwrap()));
/// assert!(!set.contains(t));
/// assert_eq!(set.to_string(), "create,iqchannels.*");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventType {
    /// A Zenlix event: its action.
    Zenlix(Action),
    /// A Usedesk event.
    Usedesk(usedesk::EventKind),
    /// An iQChannels event of one of the nine documented types.
    IqChannels(iqchannels::EventKind),
}

/// The names, in the order of [`EventType::ALL`].
const NAMES: [&str; 25] = [
    "create",
    "refer",
    "lock",
    "unlock",
    "ok",
    "unok",
    "waitok",
    "approve",
    "delete",
    "restore",
    "comment",
    "edit",
    "usedesk.ticket_created",
    "usedesk.ticket_changed",
    "usedesk.comment_created",
    "usedesk.rating",
    "iqchannels.chat_created",
    "iqchannels.ticket_assigned",
    "iqchannels.typing",
    "iqchannels.message_created",
    "iqchannels.message_received",
    "iqchannels.message_read",
    "iqchannels.message_listened",
    "iqchannels.delete-messages",
    "iqchannels.chat_closed",
];

const USEDESK_FIRST: usize = Action::ALL.len();
const IQCHANNELS_FIRST: usize = USEDESK_FIRST + usedesk::EventKind::ALL.len();

impl EventType {
    /// Every event type: the twelve Zenlix actions, the four Usedesk types, the nine
    /// iQChannels types.
    pub const ALL: [EventType; 25] = {
        let mut all = [EventType::Zenlix(Action::Create); 25];
        let mut i = 0;
        while i < Action::ALL.len() {
            all[i] = EventType::Zenlix(Action::ALL[i]);
            i += 1;
        }
        let mut j = 0;
        while j < usedesk::EventKind::ALL.len() {
            all[USEDESK_FIRST + j] = EventType::Usedesk(usedesk::EventKind::ALL[j]);
            j += 1;
        }
        let mut k = 0;
        while k < iqchannels::EventKind::ALL.len() {
            all[IQCHANNELS_FIRST + k] = EventType::IqChannels(iqchannels::EventKind::ALL[k]);
            k += 1;
        }
        all
    };

    /// The event type's position in [`EventType::ALL`], its bit in an [`EventTypeSet`]. A
    /// Zenlix action keeps its [`Action::index`].
    pub const fn index(self) -> usize {
        match self {
            EventType::Zenlix(action) => action.index(),
            EventType::Usedesk(kind) => USEDESK_FIRST + kind as usize,
            EventType::IqChannels(kind) => IQCHANNELS_FIRST + kind as usize,
        }
    }

    /// The name: the action for Zenlix (`create`), the format and the type for the others
    /// (`usedesk.comment_created`, `iqchannels.message_created`). `X-Deskhook-Action` carries
    /// it.
    pub const fn as_str(self) -> &'static str {
        NAMES[self.index()]
    }

    /// The name without the format: `create`, `comment_created`, `message_created`; what the
    /// body itself calls the event.
    pub const fn local_name(self) -> &'static str {
        match self {
            EventType::Zenlix(action) => action.as_str(),
            EventType::Usedesk(kind) => kind.as_str(),
            EventType::IqChannels(kind) => kind.as_str(),
        }
    }

    /// The format of the event's body.
    pub const fn format(self) -> Format {
        match self {
            EventType::Zenlix(_) => Format::Zenlix,
            EventType::Usedesk(_) => Format::Usedesk,
            EventType::IqChannels(_) => Format::IqChannels,
        }
    }

    /// The `Content-Type` of the event's body (`application/json; charset=utf-8` for
    /// iQChannels, `application/json` otherwise).
    pub fn content_type(self) -> &'static str {
        self.format().content_type()
    }

    /// The Zenlix action, for a Zenlix event.
    pub const fn zenlix_action(self) -> Option<Action> {
        match self {
            EventType::Zenlix(action) => Some(action),
            _ => None,
        }
    }

    /// The Zenlix action closest in meaning, for code that knows only actions (such as
    /// [`Emitted::action`](crate::sink::Emitted::action)). For Zenlix events it is the action
    /// itself; for the others:
    ///
    /// | Event type | Action |
    /// |---|---|
    /// | `usedesk.ticket_created`, `iqchannels.chat_created` | `create` |
    /// | `usedesk.ticket_changed`, `iqchannels.delete-messages` | `edit` |
    /// | `usedesk.comment_created`, `iqchannels.message_*`, `iqchannels.typing` | `comment` |
    /// | `usedesk.rating` | `approve` |
    /// | `iqchannels.ticket_assigned` | `refer` |
    /// | `iqchannels.chat_closed` | `ok` |
    ///
    /// Use [`EventType`] itself to tell the formats apart.
    pub const fn action(self) -> Action {
        use iqchannels::EventKind as Iq;
        use usedesk::EventKind as Ud;
        match self {
            EventType::Zenlix(action) => action,
            EventType::Usedesk(Ud::TicketCreated) | EventType::IqChannels(Iq::ChatCreated) => {
                Action::Create
            }
            EventType::Usedesk(Ud::TicketChanged) | EventType::IqChannels(Iq::DeleteMessages) => {
                Action::Edit
            }
            EventType::Usedesk(Ud::CommentCreated)
            | EventType::IqChannels(
                Iq::Typing
                | Iq::MessageCreated
                | Iq::MessageReceived
                | Iq::MessageRead
                | Iq::MessageListened,
            ) => Action::Comment,
            EventType::Usedesk(Ud::Rating) => Action::Approve,
            EventType::IqChannels(Iq::TicketAssigned) => Action::Refer,
            EventType::IqChannels(Iq::ChatClosed) => Action::Ok,
        }
    }

    /// Whether the event type is compiled in: a Zenlix action through its `action-*` cargo
    /// feature; the other formats always are.
    pub const fn is_compiled_in(self) -> bool {
        match self {
            EventType::Zenlix(action) => action.is_compiled_in(),
            _ => true,
        }
    }

    /// Parses an exact name as [`as_str`](EventType::as_str) writes it (and the aliases
    /// `aprrove` and `zenlix.<action>`), without case folding or suggestions: how stored
    /// names (spool, dead letters) are read back. Returns `None` for anything else.
    pub fn from_wire(s: &str) -> Option<EventType> {
        if let Some(action) = Action::from_wire(s.strip_prefix("zenlix.").unwrap_or(s)) {
            return Some(EventType::Zenlix(action));
        }
        NAMES
            .iter()
            .position(|name| *name == s)
            .map(|i| EventType::ALL[i])
    }
}

impl From<Action> for EventType {
    fn from(action: Action) -> Self {
        EventType::Zenlix(action)
    }
}

impl From<usedesk::EventKind> for EventType {
    fn from(kind: usedesk::EventKind) -> Self {
        EventType::Usedesk(kind)
    }
}

impl From<iqchannels::EventKind> for EventType {
    fn from(kind: iqchannels::EventKind) -> Self {
        EventType::IqChannels(kind)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ParseEventTypeError;

    /// Parses a name in any ASCII case, surrounding white space ignored.
    ///
    /// # Errors
    ///
    /// [`ParseEventTypeError`] names the input and, when one is close, the event type that
    /// was probably meant.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        EventType::from_wire(&wanted).ok_or_else(|| ParseEventTypeError::new(s))
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A name that is not an event type.
///
/// Its `Display` names the input and suggests the closest event type when there is one. A
/// name without a format (no `.`) reads as a Zenlix action and gets the action error's words:
/// `unknown action 'aprove' (did you mean 'approve'?)`, `unknown action 'comment_created'
/// (did you mean 'usedesk.comment_created'?)`; a name with a format gets `unknown event type
/// 'usedesk.coment_created' (did you mean 'usedesk.comment_created'?)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEventTypeError {
    input: String,
    suggestion: Option<EventType>,
}

impl ParseEventTypeError {
    pub(crate) fn new(input: &str) -> ParseEventTypeError {
        let (kept, short) = crate::action::kept_input(input);
        ParseEventTypeError {
            suggestion: short.then(|| suggest(input)).flatten(),
            input: kept,
        }
    }

    /// The string that failed to parse (its first 64 characters and `…`, when longer), with
    /// control and bidirectional characters escaped (`\n`, `\u{202e}`).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The event type that was probably meant, if one is close enough.
    pub fn suggestion(&self) -> Option<EventType> {
        self.suggestion
    }
}

fn suggest(input: &str) -> Option<EventType> {
    let wanted = input.trim().to_ascii_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let Some((prefix, rest)) = wanted.split_once('.') else {
        // A vendor type named without its format: `comment_created`.
        let vendor = EventType::ALL[USEDESK_FIRST..]
            .iter()
            .find(|t| t.local_name() == wanted || t.local_name().replace('-', "_") == wanted);
        return match vendor {
            Some(t) => Some(*t),
            None => crate::action::suggest_action(input).map(EventType::Zenlix),
        };
    };
    if prefix == "zenlix" {
        return crate::action::suggest_action(rest).map(EventType::Zenlix);
    }
    EventType::ALL[USEDESK_FIRST..]
        .iter()
        .map(|t| (strsim::damerau_levenshtein(&wanted, t.as_str()), *t))
        .chain(
            // The right type under the wrong format: `usedesk.message_created`.
            EventType::ALL[USEDESK_FIRST..]
                .iter()
                .filter(|t| t.local_name() == rest)
                .map(|t| (1, *t)),
        )
        .filter(|(distance, t)| *distance <= 2.max(t.local_name().len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, t)| t)
}

impl fmt::Display for ParseEventTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let formatted = self.input.contains('.');
        match (formatted, self.suggestion) {
            (false, None) => ParseActionError::new(&self.input).fmt(f),
            (false, Some(t)) => write!(f, "unknown action '{}' (did you mean '{t}'?)", self.input),
            (true, Some(t)) => write!(
                f,
                "unknown event type '{}' (did you mean '{t}'?)",
                self.input
            ),
            (true, None) => {
                write!(f, "unknown event type '{}' (expected one of ", self.input)?;
                for (i, name) in NAMES[USEDESK_FIRST..].iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(name)?;
                }
                f.write_str(", a Zenlix action, or a format followed by .*)")
            }
        }
    }
}

impl std::error::Error for ParseEventTypeError {}

/// A set of [`EventType`]s: what a sink or an endpoint subscribes to, or which event types
/// are switched on.
///
/// It is the one set type of deskhook. It is a 25-bit mask, `Copy`, and checks membership with one
/// `and`. Bits 0 to 11 are the Zenlix actions; an [`Action`], an [`EventType`] and arrays of
/// either convert into it, and the methods that take one event type take an `Action` too.
///
/// ```
/// use deskhook::{Action, EventType, EventTypeSet};
/// use deskhook::formats::Format;
/// use deskhook::formats::usedesk::EventKind;
///
/// let set = EventTypeSet::from([Action::Create, Action::Ok])
///     .with(EventType::Usedesk(EventKind::Rating));
/// assert_eq!(set.to_string(), "create,ok,usedesk.rating");
/// assert_eq!(set.actions().count(), 2);
/// assert!(set.contains(Action::Ok));
/// assert!(EventTypeSet::format(Format::Usedesk).contains(EventKind::Rating));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventTypeSet(u32);

impl EventTypeSet {
    const MASK: u32 = (1 << EventType::ALL.len()) - 1;

    /// Every event type of every format.
    pub const fn all() -> EventTypeSet {
        EventTypeSet(Self::MASK)
    }

    /// No event type.
    pub const fn empty() -> EventTypeSet {
        EventTypeSet(0)
    }

    /// Every event type of `format`.
    pub const fn format(format: Format) -> EventTypeSet {
        let (first, len) = match format {
            Format::Zenlix => (0, Action::ALL.len()),
            Format::Usedesk => (USEDESK_FIRST, usedesk::EventKind::ALL.len()),
            Format::IqChannels => (IQCHANNELS_FIRST, iqchannels::EventKind::ALL.len()),
        };
        EventTypeSet(((1 << len) - 1) << first)
    }

    /// The event types compiled in: the actions of the `action-*` cargo features, and every
    /// type of the other formats.
    pub const fn compiled_in() -> EventTypeSet {
        EventTypeSet((Self::MASK & !EventTypeSet::format(Format::Zenlix).0) | compiled_in_actions())
    }

    /// A set holding one event type.
    pub const fn only(event_type: EventType) -> EventTypeSet {
        EventTypeSet(1 << event_type.index())
    }

    /// Whether `event_type` (an [`EventType`] or an [`Action`]) is in the set.
    pub fn contains(self, event_type: impl Into<EventType>) -> bool {
        self.has(event_type.into())
    }

    /// [`contains`](Self::contains) for `const` contexts.
    pub const fn has(self, event_type: EventType) -> bool {
        self.0 & (1 << event_type.index()) != 0
    }

    /// This set with `event_type` added.
    #[must_use]
    pub const fn with(self, event_type: EventType) -> EventTypeSet {
        EventTypeSet(self.0 | (1 << event_type.index()))
    }

    /// This set with `event_type` removed.
    #[must_use]
    pub const fn without(self, event_type: EventType) -> EventTypeSet {
        EventTypeSet(self.0 & !(1 << event_type.index()))
    }

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: EventTypeSet) -> EventTypeSet {
        EventTypeSet(self.0 | other.0)
    }

    /// Adds `event_type` (an [`EventType`] or an [`Action`]) to the set.
    pub fn insert(&mut self, event_type: impl Into<EventType>) {
        *self = self.with(event_type.into());
    }

    /// Removes `event_type` (an [`EventType`] or an [`Action`]) from the set.
    pub fn remove(&mut self, event_type: impl Into<EventType>) {
        *self = self.without(event_type.into());
    }

    /// The event types of `self` that are not in `other`.
    #[must_use]
    pub const fn difference(self, other: EventTypeSet) -> EventTypeSet {
        EventTypeSet(self.0 & !other.0)
    }

    /// Whether the set holds no event type.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the set holds every event type.
    pub const fn is_all(self) -> bool {
        self.0 == Self::MASK
    }

    /// The number of event types in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The Zenlix actions in the set, in the order of [`Action::ALL`].
    pub fn actions(self) -> impl Iterator<Item = Action> {
        Action::ALL
            .into_iter()
            .filter(move |a| self.has(EventType::Zenlix(*a)))
    }

    /// The event types in the set, in the order of [`EventType::ALL`].
    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL.into_iter().filter(move |t| self.has(*t))
    }

    /// The raw bit mask, bit `i` for `EventType::ALL[i]`.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A set from a raw bit mask; bits above the 25th are ignored.
    pub const fn from_bits(bits: u32) -> EventTypeSet {
        EventTypeSet(bits & Self::MASK)
    }
}

/// The bits of the Zenlix actions compiled in through the `action-*` cargo features.
const fn compiled_in_actions() -> u32 {
    let mut bits = 0;
    let mut i = 0;
    while i < Action::ALL.len() {
        if Action::ALL[i].is_compiled_in() {
            bits |= 1 << i;
        }
        i += 1;
    }
    bits
}

impl FromIterator<EventType> for EventTypeSet {
    fn from_iter<I: IntoIterator<Item = EventType>>(iter: I) -> Self {
        iter.into_iter()
            .fold(EventTypeSet::empty(), EventTypeSet::with)
    }
}

impl FromIterator<Action> for EventTypeSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        iter.into_iter().map(EventType::Zenlix).collect()
    }
}

impl From<EventType> for EventTypeSet {
    fn from(event_type: EventType) -> Self {
        EventTypeSet::only(event_type)
    }
}

impl From<Action> for EventTypeSet {
    fn from(action: Action) -> Self {
        EventTypeSet::only(EventType::Zenlix(action))
    }
}

impl<const N: usize> From<[Action; N]> for EventTypeSet {
    fn from(actions: [Action; N]) -> Self {
        actions.into_iter().collect()
    }
}

impl<const N: usize> From<[EventType; N]> for EventTypeSet {
    fn from(event_types: [EventType; N]) -> Self {
        event_types.into_iter().collect()
    }
}

impl fmt::Debug for EventTypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(EventType::as_str))
            .finish()
    }
}

/// The parts of a set's text: a whole format as `format.*`, else each name.
fn parts(set: EventTypeSet) -> Vec<&'static str> {
    let mut parts = Vec::new();
    for (format, wildcard) in [
        (Format::Zenlix, "zenlix.*"),
        (Format::Usedesk, "usedesk.*"),
        (Format::IqChannels, "iqchannels.*"),
    ] {
        let whole = EventTypeSet::format(format);
        if set.0 & whole.0 == whole.0 {
            parts.push(wildcard);
        } else {
            parts.extend(EventTypeSet(set.0 & whole.0).iter().map(EventType::as_str));
        }
    }
    parts
}

impl fmt::Display for EventTypeSet {
    /// `*` for every event type, otherwise names separated by commas, with `format.*` for a
    /// whole format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("*");
        }
        f.write_str(&parts(*self).join(","))
    }
}

/// Parses one element of a set: a name, `format.*` or `*`.
fn parse_part(part: &str) -> Result<EventTypeSet, ParseEventTypeError> {
    match part.trim().to_ascii_lowercase().as_str() {
        "*" => Ok(EventTypeSet::all()),
        "zenlix.*" => Ok(EventTypeSet::format(Format::Zenlix)),
        "usedesk.*" => Ok(EventTypeSet::format(Format::Usedesk)),
        "iqchannels.*" => Ok(EventTypeSet::format(Format::IqChannels)),
        _ => part.parse::<EventType>().map(EventTypeSet::only),
    }
}

impl FromStr for EventTypeSet {
    type Err = ParseEventTypeError;

    /// Parses `*` (everything), an empty string (nothing), or names and `format.*` separated
    /// by commas.
    ///
    /// # Errors
    ///
    /// The first name that is not an event type, with a suggestion.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .try_fold(EventTypeSet::empty(), |set, part| {
                parse_part(part).map(|p| set.union(p))
            })
    }
}

impl Serialize for EventTypeSet {
    /// `"*"` for everything, otherwise a list of names (`format.*` for a whole format).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_all() {
            serializer.serialize_str("*")
        } else {
            serializer.collect_seq(parts(*self))
        }
    }
}

impl<'de> Deserialize<'de> for EventTypeSet {
    /// Accepts `"*"`, a comma-separated string, or a list of names and `format.*`. An error
    /// names the bad name (with a suggestion), so a configuration file can point at it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> serde::de::Visitor<'de> for SetVisitor {
            type Value = EventTypeSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"*\", a list of event type names, or names separated by commas")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventTypeSet, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<EventTypeSet, A::Error> {
                let mut set = EventTypeSet::empty();
                while let Some(part) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    set = set.union(parse_part(&part).map_err(serde::de::Error::custom)?);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_any(SetVisitor)
    }
}

#[cfg(test)]
#[path = "event_type_tests.rs"]
mod tests;
