//! Run-time action switches: turn actions, or event types of any format, on and off for every
//! dispatcher at once.
//!
//! One atomic word holds the switches; reading it is what a switched-off emit costs. This
//! module does not subscribe sinks: a sink's own subscription is set on the
//! [`Dispatcher`](crate::Dispatcher).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::action::{Action, ActionSet};
use crate::event_type::{EventType, EventTypeSet};

/// The [`EventTypeSet`] bits of the event types switched on.
static ENABLED: AtomicU32 = AtomicU32::new(EventTypeSet::all().bits());

/// Switches `action` on or off for every dispatcher, at run time. All actions start on.
///
/// An action that is off costs `emit` a compare and an atomic load.
pub fn set_action_enabled(action: Action, enabled: bool) {
    set_event_type_enabled(EventType::Zenlix(action), enabled);
}

/// Sets which Zenlix actions are on, at run time, for every dispatcher; the other formats'
/// event types stay as they are.
pub fn set_enabled_actions(actions: impl Into<ActionSet>) {
    let actions = actions.into();
    // The closure always returns Some, so the update cannot fail.
    let _ = ENABLED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some(EventTypeSet::from_bits(bits).with_actions(actions).bits())
    });
}

/// The actions that are on: compiled in and not switched off.
pub fn enabled_actions() -> ActionSet {
    enabled_event_types().actions()
}

/// Whether `action` is compiled in and switched on.
#[inline]
pub fn is_action_enabled(action: Action) -> bool {
    is_event_type_enabled(EventType::Zenlix(action))
}

/// Switches an event type of any format on or off for every dispatcher, at run time. All
/// event types start on.
///
/// ```
/// use deskhook::EventType;
///
/// let typing: EventType = "iqchannels.typing".parse()?;
/// deskhook::set_event_type_enabled(typing, false);
/// assert!(!deskhook::is_event_type_enabled(typing));
/// deskhook::set_event_type_enabled(typing, true);
/// # Ok::<(), deskhook::Error>(())
/// ```
pub fn set_event_type_enabled(event_type: EventType, enabled: bool) {
    let bit = EventTypeSet::only(event_type).bits();
    if enabled {
        ENABLED.fetch_or(bit, Ordering::Relaxed);
    } else {
        ENABLED.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Sets which event types, of every format, are on, at run time, for every dispatcher.
pub fn set_enabled_event_types(event_types: impl Into<EventTypeSet>) {
    ENABLED.store(event_types.into().bits(), Ordering::Relaxed);
}

/// The event types that are on: compiled in and not switched off.
pub fn enabled_event_types() -> EventTypeSet {
    EventTypeSet::from_bits(ENABLED.load(Ordering::Relaxed) & EventTypeSet::compiled_in().bits())
}

/// Whether `event_type` is compiled in and switched on.
#[inline]
pub fn is_event_type_enabled(event_type: EventType) -> bool {
    event_type.is_compiled_in()
        && EventTypeSet::from_bits(ENABLED.load(Ordering::Relaxed)).contains(event_type)
}
