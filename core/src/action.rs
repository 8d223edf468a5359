//! The twelve ticket actions that fire a Zenlix webhook, and sets of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use parse::ParseActionError;
pub(crate) use parse::{kept_input, suggest_action};

mod parse;

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

    /// The action's position in [`Action::ALL`], used as its bit in an
    /// [`EventTypeSet`](crate::EventTypeSet).
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
}
