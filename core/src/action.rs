//! The twelve ticket actions that fire a Zenlix webhook, and sets of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseActionError;

/// One of the twelve ticket actions that fire a webhook, in the order of the Zenlix document.
///
/// The wire string (`Action::as_str`) is what the `action` key of the body carries.
/// Parsing accepts the wire strings in any ASCII case and the alias `aprrove` (a typo that
/// Zenlix itself uses in its notification settings) for [`Action::Approve`].
///
/// ```
/// use deskhook::Action;
///
/// let action: Action = "aprrove".parse().unwrap();
/// assert_eq!(action, Action::Approve);
/// assert_eq!(action.as_str(), "approve");
/// assert_eq!(action.label_en(), "Ticket reviewed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `create`: the ticket was created.
    Create,
    /// `refer`: the ticket was forwarded (re-assigned) to another group or user.
    Refer,
    /// `lock`: an executor took the ticket into work.
    Lock,
    /// `unlock`: the ticket was released from work.
    Unlock,
    /// `ok`: the ticket was completed.
    Ok,
    /// `unok`: the completion was cancelled; the ticket is not completed.
    Unok,
    /// `waitok`: the ticket is completed and awaits review.
    Waitok,
    /// `approve`: the review accepted the completion.
    Approve,
    /// `delete`: the ticket was deleted.
    Delete,
    /// `restore`: the ticket was restored after deletion.
    Restore,
    /// `comment`: someone commented on the ticket.
    Comment,
    /// `edit`: the ticket was edited.
    Edit,
}

impl Action {
    /// Every action, in the document's order.
    pub const ALL: [Action; 12] = [
        Action::Create,
        Action::Refer,
        Action::Lock,
        Action::Unlock,
        Action::Ok,
        Action::Unok,
        Action::Waitok,
        Action::Approve,
        Action::Delete,
        Action::Restore,
        Action::Comment,
        Action::Edit,
    ];

    /// The wire string of the action, as sent in the body's `action` key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Refer => "refer",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::Ok => "ok",
            Action::Unok => "unok",
            Action::Waitok => "waitok",
            Action::Approve => "approve",
            Action::Delete => "delete",
            Action::Restore => "restore",
            Action::Comment => "comment",
            Action::Edit => "edit",
        }
    }

    /// The Russian label of the action, as the Zenlix document lists it ("Заявка создана").
    pub const fn label_ru(self) -> &'static str {
        match self {
            Action::Create => "Заявка создана",
            Action::Refer => "Заявка переадресована",
            Action::Lock => "Заявка заблокирована",
            Action::Unlock => "Заявка разблокирована",
            Action::Ok => "Заявка выполнена",
            Action::Unok => "Заявка не выполнена",
            Action::Waitok => "Заявка ожидает проверки",
            Action::Approve => "Заявка проверена",
            Action::Delete => "Заявка удалена",
            Action::Restore => "Заявка восстановлена",
            Action::Comment => "Заявка прокомментирована",
            Action::Edit => "Заявка отредактирована",
        }
    }

    /// The English label of the action ("Ticket created").
    pub const fn label_en(self) -> &'static str {
        match self {
            Action::Create => "Ticket created",
            Action::Refer => "Ticket forwarded",
            Action::Lock => "Ticket locked",
            Action::Unlock => "Ticket unlocked",
            Action::Ok => "Ticket completed",
            Action::Unok => "Ticket not completed",
            Action::Waitok => "Ticket awaiting review",
            Action::Approve => "Ticket reviewed",
            Action::Delete => "Ticket deleted",
            Action::Restore => "Ticket restored",
            Action::Comment => "Ticket commented",
            Action::Edit => "Ticket edited",
        }
    }

    /// The label in a user's language: Russian when `lang` is `ru` (any case, with or without
    /// a region such as `ru-RU`), English otherwise.
    ///
    /// This is the default `description` of an event, taken from the initial user's
    /// `profile.lang`.
    pub fn label(self, lang: &str) -> &'static str {
        let primary = lang.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ru") {
            self.label_ru()
        } else {
            self.label_en()
        }
    }

    /// Whether this action is compiled in, through the cargo feature `action-<name>` or
    /// `all-actions`.
    ///
    /// `emit` checks this first; as a `const fn` on a constant action, the check folds away
    /// and a call for an action that is compiled out compiles to nothing.
    pub const fn is_compiled_in(self) -> bool {
        match self {
            Action::Create => cfg!(feature = "action-create"),
            Action::Refer => cfg!(feature = "action-refer"),
            Action::Lock => cfg!(feature = "action-lock"),
            Action::Unlock => cfg!(feature = "action-unlock"),
            Action::Ok => cfg!(feature = "action-ok"),
            Action::Unok => cfg!(feature = "action-unok"),
            Action::Waitok => cfg!(feature = "action-waitok"),
            Action::Approve => cfg!(feature = "action-approve"),
            Action::Delete => cfg!(feature = "action-delete"),
            Action::Restore => cfg!(feature = "action-restore"),
            Action::Comment => cfg!(feature = "action-comment"),
            Action::Edit => cfg!(feature = "action-edit"),
        }
    }

    /// The action's position in [`Action::ALL`], used as its bit in an [`ActionSet`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Parses an exact wire string (or the alias `aprrove`), without case folding or
    /// suggestions. Returns `None` for anything else.
    pub fn from_wire(s: &str) -> Option<Action> {
        if s == "aprrove" {
            return Some(Action::Approve);
        }
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ParseActionError;

    /// Parses a wire string in any ASCII case, surrounding white space ignored; `aprrove` is
    /// accepted for `approve`.
    ///
    /// # Errors
    ///
    /// [`ParseActionError`] names the input and, when one is close, the action that was
    /// probably meant.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        if let Some(action) = Action::from_wire(&wanted) {
            return Ok(action);
        }
        Err(ParseActionError::new(s))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of [`Action`]s: what a sink subscribes to, or which actions are switched on.
///
/// It is a 12-bit mask, `Copy`, and checks membership with one `and`.
///
/// ```
/// use deskhook::{Action, ActionSet};
///
/// let set = ActionSet::from_iter([Action::Create, Action::Comment]);
/// assert!(set.contains(Action::Comment));
/// assert!(!set.contains(Action::Edit));
/// assert_eq!(set.to_string(), "create,comment");
/// assert_eq!("*".parse::<ActionSet>().unwrap(), ActionSet::all());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ActionSet(u16);

impl ActionSet {
    const MASK: u16 = (1 << Action::ALL.len()) - 1;

    /// Every action.
    pub const fn all() -> ActionSet {
        ActionSet(Self::MASK)
    }

    /// No action.
    pub const fn empty() -> ActionSet {
        ActionSet(0)
    }

    /// The actions compiled in through the `action-*` cargo features.
    pub const fn compiled_in() -> ActionSet {
        let mut bits = 0u16;
        let mut i = 0;
        while i < Action::ALL.len() {
            if Action::ALL[i].is_compiled_in() {
                bits |= 1 << i;
            }
            i += 1;
        }
        ActionSet(bits)
    }

    /// A set holding one action.
    pub const fn only(action: Action) -> ActionSet {
        ActionSet(1 << action.index())
    }

    /// Whether `action` is in the set.
    pub const fn contains(self, action: Action) -> bool {
        self.0 & (1 << action.index()) != 0
    }

    /// This set with `action` added.
    #[must_use]
    pub const fn with(self, action: Action) -> ActionSet {
        ActionSet(self.0 | (1 << action.index()))
    }

    /// This set with `action` removed.
    #[must_use]
    pub const fn without(self, action: Action) -> ActionSet {
        ActionSet(self.0 & !(1 << action.index()))
    }

    /// Adds `action` to the set.
    pub fn insert(&mut self, action: Action) {
        *self = self.with(action);
    }

    /// Removes `action` from the set.
    pub fn remove(&mut self, action: Action) {
        *self = self.without(action);
    }

    /// Whether the set holds no action.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the set holds every action.
    pub const fn is_all(self) -> bool {
        self.0 == Self::MASK
    }

    /// The number of actions in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The actions in the set, in the document's order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// The raw bit mask, bit `i` for `Action::ALL[i]`.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// A set from a raw bit mask; bits above the twelfth are ignored.
    pub const fn from_bits(bits: u16) -> ActionSet {
        ActionSet(bits & Self::MASK)
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        iter.into_iter().fold(ActionSet::empty(), ActionSet::with)
    }
}

impl From<Action> for ActionSet {
    fn from(action: Action) -> Self {
        ActionSet::only(action)
    }
}

impl<const N: usize> From<[Action; N]> for ActionSet {
    fn from(actions: [Action; N]) -> Self {
        actions.into_iter().collect()
    }
}

impl fmt::Debug for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ActionSet {
    /// `*` for every action, otherwise the wire strings joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("*");
        }
        for (i, action) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ActionSet {
    type Err = ParseActionError;

    /// Parses `*` (every action), an empty string (none), or action names separated by commas.
    ///
    /// # Errors
    ///
    /// The first name that is not an action, with a suggestion.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "*" {
            return Ok(ActionSet::all());
        }
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::parse::<Action>)
            .collect()
    }
}

impl Serialize for ActionSet {
    /// `"*"` for every action, otherwise a list of wire strings.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_all() {
            serializer.serialize_str("*")
        } else {
            serializer.collect_seq(self.iter())
        }
    }
}

impl<'de> Deserialize<'de> for ActionSet {
    /// Accepts `"*"`, a comma-separated string, or a list of action names. An error names
    /// the bad action (with a suggestion), so a configuration file can point at it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> serde::de::Visitor<'de> for SetVisitor {
            type Value = ActionSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"*\", a list of action names, or names separated by commas")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ActionSet, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ActionSet, A::Error> {
                let mut set = ActionSet::empty();
                while let Some(action) = seq.next_element::<Action>()? {
                    set.insert(action);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_any(SetVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>().unwrap(), action);
            assert_eq!(Action::from_wire(action.as_str()), Some(action));
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        assert_eq!(
            Action::ALL.map(Action::index),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        );
    }

    #[test]
    fn aprrove_is_an_alias_of_approve() {
        assert_eq!("aprrove".parse::<Action>().unwrap(), Action::Approve);
        assert_eq!(Action::from_wire("aprrove"), Some(Action::Approve));
        assert_eq!(
            serde_json::from_str::<Action>("\"aprrove\"").unwrap(),
            Action::Approve
        );
        assert_eq!(" Approve ".parse::<Action>().unwrap(), Action::Approve);
        assert_eq!(Action::from_wire("Approve"), None);
    }

    #[test]
    fn labels_follow_the_language() {
        assert_eq!(Action::Create.label("ru"), "Заявка создана");
        assert_eq!(Action::Create.label("RU-ru"), "Заявка создана");
        assert_eq!(Action::Create.label("en"), "Ticket created");
        assert_eq!(Action::Create.label("de"), "Ticket created");
        assert_eq!(Action::Create.label(""), "Ticket created");
        assert_eq!(Action::Comment.label("ru"), "Заявка прокомментирована");
    }

    #[test]
    fn sets_parse_print_and_serialize() {
        let set: ActionSet = "create, ok ,edit".parse().unwrap();
        assert_eq!(
            set,
            ActionSet::from([Action::Create, Action::Ok, Action::Edit])
        );
        assert_eq!(set.len(), 3);
        assert_eq!(set.to_string(), "create,ok,edit");
        assert_eq!("".parse::<ActionSet>().unwrap(), ActionSet::empty());
        assert_eq!(ActionSet::all().to_string(), "*");
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["create","ok","edit"]"#
        );
        assert_eq!(serde_json::to_string(&ActionSet::all()).unwrap(), r#""*""#);
        let back: ActionSet = serde_json::from_str(r#"["create","ok","edit"]"#).unwrap();
        assert_eq!(back, set);
        let all: ActionSet = serde_json::from_str(r#""*""#).unwrap();
        assert!(all.is_all());
        let err = "create,aprove".parse::<ActionSet>().unwrap_err();
        assert_eq!(err.input(), "aprove");
        assert!(serde_json::from_str::<ActionSet>(r#"["nope"]"#).is_err());
    }

    #[test]
    fn set_edits() {
        let mut set = ActionSet::empty();
        assert!(set.is_empty());
        set.insert(Action::Lock);
        assert!(set.contains(Action::Lock));
        set.remove(Action::Lock);
        assert!(set.is_empty());
        assert_eq!(ActionSet::from_bits(u16::MAX), ActionSet::all());
        assert_eq!(ActionSet::all().without(Action::Edit).len(), 11);
        assert_eq!(format!("{:?}", ActionSet::only(Action::Ok)), "{Ok}");
    }
}
