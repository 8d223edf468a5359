//! A sample event: the example of the Zenlix webhook document, for tests, demos and
//! `deskhook render` without a file.

use crate::action::Action;
use crate::model::{Event, Ticket, User};

/// The example body of the Zenlix document, byte for byte (pretty-printed, its `action` and
/// `description` are the document's placeholders `"action"` and `"message"`).
pub const REFERENCE_JSON: &str = include_str!("../fixtures/zenlix/event.json");

/// The document's example as an event for `action`, with that action's default description
/// and the document's `dt`.
///
/// ```
/// let event = deskhook::sample::event(deskhook::Action::Lock);
/// assert_eq!(event.ticket.code, "E3XK");
/// assert_eq!(event.description, "Заявка заблокирована");
/// ```
pub fn event(action: Action) -> Event {
    reference().with_action(action)
}

/// The ticket of the document's example (`E3XK`, 22 comments, 24 history entries).
pub fn ticket() -> Ticket {
    reference().ticket
}

/// The initial user of the document's example (`test111@zenlix.com`, language `ru`).
pub fn user() -> User {
    reference().initial_user
}

fn reference() -> Event {
    // The fixture is part of the crate and checked by its tests; parsing it cannot fail.
    Event::from_json(REFERENCE_JSON.as_bytes())
        .unwrap_or_else(|e| unreachable!("the bundled reference event does not parse: {e}"))
}
