//! Run-time switches: turn event types (Zenlix actions, or the other formats' types) on and
//! off for every dispatcher at once.
//!
//! One atomic word holds the switches; reading it is what a switched-off emit costs. This
//! module does not subscribe sinks: a sink's own subscription is set on the
//! [`Dispatcher`](crate::Dispatcher).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::event_type::{EventType, EventTypeSet};

/// The [`EventTypeSet`] bits of the event types switched on.
static ENABLED: AtomicU32 = AtomicU32::new(EventTypeSet::all().bits());

/// Switches `event_types` on or off for every dispatcher, at run time: one [`Action`], one
/// [`EventType`], an array of them or an [`EventTypeSet`]. The others stay as they are. All
/// event types start on; one that is off costs `emit` a compare and an atomic load.
///
/// ```
/// use deskhook::{Action, EventType};
///
/// deskhook::set_enabled(Action::Edit, false);
/// assert!(!deskhook::is_enabled(Action::Edit));
/// let typing: EventType = "iqchannels.typing".parse()?;
/// deskhook::set_enabled([Action::Edit.into(), typing], true);
/// assert!(deskhook::is_enabled(typing));
/// # Ok::<(), deskhook::Error>(())
/// ```
///
/// [`Action`]: crate::Action
pub fn set_enabled(event_types: impl Into<EventTypeSet>, on: bool) {
    let bits = event_types.into().bits();
    if on {
        ENABLED.fetch_or(bits, Ordering::Relaxed);
    } else {
        ENABLED.fetch_and(!bits, Ordering::Relaxed);
    }
}

/// Makes `event_types` exactly the ones switched on, in one atomic store, and returns the
/// set that was on before (as [`enabled`] read it: compiled in and switched on).
///
/// ```
/// use deskhook::{Action, EventTypeSet};
///
/// let before = deskhook::replace_enabled([Action::Create, Action::Comment]);
/// assert!(!deskhook::is_enabled(Action::Edit));
/// deskhook::replace_enabled(before);
/// ```
pub fn replace_enabled(event_types: impl Into<EventTypeSet>) -> EventTypeSet {
    let before = ENABLED.swap(event_types.into().bits(), Ordering::Relaxed);
    EventTypeSet::from_bits(before & EventTypeSet::compiled_in().bits())
}

/// The event types that are on: compiled in and not switched off.
pub fn enabled() -> EventTypeSet {
    EventTypeSet::from_bits(ENABLED.load(Ordering::Relaxed) & EventTypeSet::compiled_in().bits())
}

/// Whether `event_type` (an [`EventType`] or an [`Action`](crate::Action)) is compiled in
/// and switched on.
#[inline]
pub fn is_enabled(event_type: impl Into<EventType>) -> bool {
    let event_type = event_type.into();
    event_type.is_compiled_in()
        && EventTypeSet::from_bits(ENABLED.load(Ordering::Relaxed)).has(event_type)
}
