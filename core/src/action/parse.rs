//! A string that is not an action's name: its error, and the action that was probably
//! meant (`unknown action 'aprove' (did you mean 'approve'?)`).

use std::fmt;

use crate::action::Action;
use crate::error::{QUOTED_CHARS, shorten};

/// A string that is not one of the twelve action names.
///
/// Its `Display` names the input and suggests the closest action when there is one:
/// `unknown action 'aprove' (did you mean 'approve'?)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseActionError {
    input: String,
    suggestion: Option<Action>,
}

/// Words people write for an action, mapped to the action's wire string; used only for
/// suggestions, never accepted as names.
const SYNONYMS: &[(&str, Action)] = &[
    ("new", Action::Create),
    ("created", Action::Create),
    ("forward", Action::Refer),
    ("forwarded", Action::Refer),
    ("reassign", Action::Refer),
    ("locked", Action::Lock),
    ("take", Action::Lock),
    ("unlocked", Action::Unlock),
    ("release", Action::Unlock),
    ("complete", Action::Ok),
    ("completed", Action::Ok),
    ("done", Action::Ok),
    ("success", Action::Ok),
    ("notcompleted", Action::Unok),
    ("no_ok", Action::Unok),
    ("nook", Action::Unok),
    ("review", Action::Waitok),
    ("waitsuccess", Action::Waitok),
    ("reviewed", Action::Approve),
    ("approved", Action::Approve),
    ("deleted", Action::Delete),
    ("remove", Action::Delete),
    ("restored", Action::Restore),
    ("undelete", Action::Restore),
    ("commented", Action::Comment),
    ("reply", Action::Comment),
    ("edited", Action::Edit),
    ("update", Action::Edit),
    ("updated", Action::Edit),
];

/// A string that failed to parse, as its error keeps it ([`shorten`]ed), and whether it is
/// short enough to look for what was meant: no name is as long, and a request body's
/// megabyte-long "action" must not cost a search.
pub(crate) fn kept_input(input: &str) -> (String, bool) {
    (shorten(input), input.chars().nth(QUOTED_CHARS).is_none())
}

impl ParseActionError {
    pub(crate) fn new(input: &str) -> ParseActionError {
        let (kept, short) = kept_input(input);
        ParseActionError {
            suggestion: short.then(|| suggest_action(input)).flatten(),
            input: kept,
        }
    }

    /// The string that failed to parse (its first 64 characters and `…`, when longer), with
    /// control and bidirectional characters escaped (`\n`, `\u{202e}`).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The action that was probably meant, if one is close enough.
    pub fn suggestion(&self) -> Option<Action> {
        self.suggestion
    }
}

/// The action `input` most likely means: one of the words people write for it, or the
/// name at the smallest edit distance, within a third of its length (at least 2).
pub(crate) fn suggest_action(input: &str) -> Option<Action> {
    let wanted: String = input
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if wanted.is_empty() {
        return None;
    }
    if let Some((_, action)) = SYNONYMS.iter().find(|(word, _)| *word == wanted) {
        return Some(*action);
    }
    Action::ALL
        .into_iter()
        .map(|a| (strsim::damerau_levenshtein(&wanted, a.as_str()), a))
        .filter(|(distance, a)| *distance <= 2.max(a.as_str().len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, a)| a)
}

impl fmt::Display for ParseActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown action '{}' ", self.input)?;
        match self.suggestion {
            Some(action) => write!(f, "(did you mean '{action}'?)"),
            None => {
                f.write_str("(expected one of ")?;
                for (i, action) in Action::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(action.as_str())?;
                }
                f.write_str(")")
            }
        }
    }
}

impl std::error::Error for ParseActionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_unknown_name_is_cut_in_its_error_and_not_searched() {
        let long = format!("ß{}", "x".repeat(1_000_000));
        let err = long.parse::<Action>().unwrap_err();
        assert_eq!(err.input().chars().count(), QUOTED_CHARS + 1);
        assert!(err.input().ends_with('…'));
        assert_eq!(err.suggestion(), None);
        let err = format!("usedesk.{long}")
            .parse::<crate::EventType>()
            .unwrap_err();
        assert!(err.to_string().len() < 1000, "{err}");
        // Up to the limit, kept whole.
        let name = "x".repeat(QUOTED_CHARS);
        assert_eq!(name.parse::<Action>().unwrap_err().input(), name);
    }

    #[test]
    fn a_misspelt_action_gets_a_suggestion() {
        let err = "aprove".parse::<Action>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown action 'aprove' (did you mean 'approve'?)"
        );
        assert_eq!(err.suggestion(), Some(Action::Approve));
        assert_eq!(
            "comentt".parse::<Action>().unwrap_err().suggestion(),
            Some(Action::Comment)
        );
        assert_eq!(
            "completed".parse::<Action>().unwrap_err().to_string(),
            "unknown action 'completed' (did you mean 'ok'?)"
        );
        assert_eq!(
            "Forwarded".parse::<Action>().unwrap_err().suggestion(),
            Some(Action::Refer)
        );
    }

    #[test]
    fn a_far_off_action_lists_all_names() {
        let err = "teleport".parse::<Action>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown action 'teleport' (expected one of create, refer, lock, unlock, ok, \
             unok, waitok, approve, delete, restore, comment, edit)"
        );
        assert_eq!(err.input(), "teleport");
        assert_eq!("".parse::<Action>().unwrap_err().suggestion(), None);
    }
}
