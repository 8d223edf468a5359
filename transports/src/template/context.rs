//! What a template sees of an event: its JSON, typed, and a summary that reads the same for
//! every format (`label`, `subject`, `text`, `author`, `ticket`), so that one chat preset
//! serves Zenlix, Usedesk and iQChannels events.
//!
//! Cost: the summary is read from the body by a typed pass that skips what it does not need
//! (no tree is built); `event` is built only when a template reads it, once per event for
//! all its endpoints. Kept with the event, it is charged to the sink's memory budget (as
//! `raw`'s copy of the body is); when the budget cannot hold it, it is not kept, and each
//! render that reads it makes it again (once per render).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use deskhook::EventType;
use deskhook::formats::{iqchannels, usedesk};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::Template;
use super::summary::{self, Summary};
use crate::delivery::budget::{Budget, Charge};

/// An event parsed once for every templated endpoint it goes to.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) event_type: EventType,
    body: Bytes,
    /// `event` and `raw`, made when a template that reads them is first rendered, and kept
    /// if `budget` holds them.
    event: OnceLock<Kept>,
    raw: OnceLock<Kept>,
    /// The sink's memory budget, for what is kept (none: kept uncharged, for a render that
    /// is not a delivery's, such as a preview).
    budget: Option<Arc<Budget>>,
    pub(crate) summary: Summary,
    /// The last bodies rendered for its endpoints, by template and variables: endpoints with
    /// the same ones share a render. Each is charged to the sink's memory budget.
    rendered: Mutex<Vec<(Template, Bytes, Charge)>>,
    /// Whether more than one templated endpoint may render it: else nothing is kept.
    shared: bool,
    /// Whether the body is known to be compact JSON (an emit's own serialization): its
    /// parts are printed whole as they are, without compacting them.
    pub(super) compact: bool,
}

/// A value an event keeps for its later renders, and its charge to the memory budget.
#[derive(Debug)]
struct Kept {
    value: Value,
    _charge: Option<Charge>,
}

/// How many renders an event keeps for sharing: endpoints with the same template usually
/// follow one another; a few different ones between them still find theirs.
const SHARED_RENDERS: usize = 8;

impl Parsed {
    /// Reads an event's JSON body.
    pub(crate) fn new(event_type: EventType, body: &Bytes) -> Result<Parsed, String> {
        let summary = summary::read(event_type, body).map_err(not_json)?;
        Ok(Parsed::with(event_type, body, summary, true))
    }

    /// The event of an emit when its endpoints have templates (`shared`: more than one).
    pub(crate) fn of_emitted(
        emitted: &deskhook::sink::Emitted<'_>,
        shared: bool,
    ) -> Result<Parsed, String> {
        Parsed::of_routed(
            emitted.event_type(),
            emitted.body(),
            Parsed::summary_of(emitted),
            shared,
        )
    }

    /// What can be read of an emit's event while the typed event is at hand: a Zenlix
    /// event's summary is taken from the typed event (no parse); other formats have none
    /// (their summary is read from the body).
    pub(crate) fn summary_of(emitted: &deskhook::sink::Emitted<'_>) -> Option<Summary> {
        match emitted.webhook() {
            deskhook::event::WebhookRef::Zenlix(event) => Some(summary::of_zenlix(event)),
            _ => None,
        }
    }

    /// An event's body with the summary [`summary_of`](Parsed::summary_of) took at its emit,
    /// or none (then it is read from the body).
    pub(crate) fn of_routed(
        event_type: EventType,
        body: &Bytes,
        summary: Option<Summary>,
        shared: bool,
    ) -> Result<Parsed, String> {
        // A summary taken at the emit comes with the emit's own body.
        let compact = summary.is_some();
        let summary = match summary {
            Some(summary) => summary,
            None => summary::read(event_type, body).map_err(not_json)?,
        };
        Ok(Parsed {
            compact,
            ..Parsed::with(event_type, body, summary, shared)
        })
    }

    fn with(event_type: EventType, body: &Bytes, summary: Summary, shared: bool) -> Parsed {
        Parsed {
            compact: false,
            event_type,
            body: body.clone(),
            event: OnceLock::new(),
            raw: OnceLock::new(),
            budget: None,
            summary,
            rendered: Mutex::new(Vec::new()),
            shared,
        }
    }

    /// Charges what it keeps for its renders (`event`, `raw`) to `budget`: a delivery's.
    pub(crate) fn charged_to(self, budget: &Arc<Budget>) -> Parsed {
        Parsed {
            budget: Some(budget.clone()),
            ..self
        }
    }

    /// The value in `cell`, or one `make` makes (with the bytes it holds): kept in `cell`
    /// for the next renders if the budget holds those bytes, else given once.
    fn kept(&self, cell: &OnceLock<Kept>, make: impl FnOnce() -> (Value, usize)) -> Value {
        if let Some(kept) = cell.get() {
            return kept.value.clone();
        }
        let (value, bytes) = make();
        let charge = match &self.budget {
            None => None,
            Some(budget) => match budget.try_charge(bytes) {
                Some(charge) => Some(charge),
                None => return value,
            },
        };
        // Made by two renders at once: one is kept, the other's charge is let go.
        cell.get_or_init(|| Kept {
            value,
            _charge: charge,
        })
        .value
        .clone()
    }

    /// The body this event rendered with `template` (the same compiled template and
    /// variables) for another endpoint, if it kept it.
    pub(crate) fn rendered(&self, template: &Template) -> Option<Bytes> {
        if !self.shared {
            return None;
        }
        let rendered = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        rendered
            .iter()
            .find(|(t, _, _)| t.ptr_eq(template))
            .map(|(_, body, _)| body.clone())
    }

    /// Keeps a body rendered with `template` for the event's other endpoints, if the
    /// memory budget holds it (else each endpoint renders its own).
    pub(crate) fn keep_rendered(&self, template: &Template, body: Bytes, budget: &Arc<Budget>) {
        if !self.shared {
            return;
        }
        let Some(charge) = budget.try_charge(body.len()) else {
            return;
        };
        let mut rendered = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if rendered.len() == SHARED_RENDERS {
            rendered.remove(0);
        }
        rendered.push((template.clone(), body, charge));
    }

    /// `event`: the body's JSON, read as the template reaches into it.
    fn event(&self) -> Value {
        self.kept(&self.event, || {
            super::lazy::LazyJson::root_sized(&self.body)
        })
    }

    /// The JSON text of the number, string, boolean or null that `path` reaches in
    /// `event`, read without indexing the body when it is not indexed yet (a template of a
    /// few fields reads a few members near its start); `None` when the index must answer
    /// (see [`scalar_at`](super::lazy::scalar_at)). The value `event` gives is this text's.
    pub(super) fn event_scalar(&self, path: &[super::plan::Step]) -> Option<&str> {
        if self.event.get().is_some() {
            return None;
        }
        super::lazy::scalar_at(&self.body, path)
    }

    /// The JSON text of the value that `path` reaches in `event` (objects and arrays
    /// included), as the index has it (see [`value_at`](super::lazy::value_at)).
    pub(super) fn event_json(&self, path: &[super::plan::Step]) -> Option<&str> {
        super::lazy::value_at(&self.body, path)
    }

    /// The JSON texts of member `key` of each item of the array that `path` reaches in
    /// `event` (see [`members_of_items`](super::lazy::members_of_items)).
    pub(super) fn event_members(&self, path: &[super::plan::Step], key: &str) -> Option<Vec<&str>> {
        super::lazy::members_of_items(&self.body, path, key)
    }

    /// `raw`: the body as text (JSON is UTF-8; anything else is replaced, not refused).
    fn raw(&self) -> Value {
        self.kept(&self.raw, || {
            let text = String::from_utf8_lossy(&self.body).into_owned();
            let bytes = text.capacity();
            (Value::from(text), bytes)
        })
    }
}

/// The error of a body that cannot be read.
fn not_json(e: serde_json::Error) -> String {
    format!("the event's body is not JSON ({e}); cannot render it")
}

/// The context of one render: the names of the [module docs](super), looked up by name as
/// the template reads them (no map is built).
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) parsed: Arc<Parsed>,
    pub(crate) vars: Value,
    pub(crate) lang_fallback: Option<Arc<str>>,
    pub(crate) id: Arc<str>,
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) made: Made,
}

/// `event` and `raw` as this render first got them: when the budget cannot keep them with
/// the event, they are made once per render, not at each lookup (a loop over the comments
/// that reads `event.ticket.code` would otherwise index the body at each turn, at no fuel).
#[derive(Debug, Default)]
pub(crate) struct Made {
    event: OnceLock<Value>,
    raw: OnceLock<Value>,
}

/// The names a template sees, for iteration and error messages.
pub(super) const NAMES: &[&str] = &[
    "event",
    "raw",
    "event_type",
    "format",
    "id",
    "tenant",
    "lang",
    "label",
    "subject",
    "text",
    "author",
    "ticket",
    "vars",
];

impl Context {
    fn lang(&self) -> &'static str {
        lang(&self.parsed.summary, self.lang_fallback.as_deref())
    }

    /// The value of a name that is always text (`subject`, `label`, `event_type`, …), as
    /// text; `None` for the other names.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        let parsed = &self.parsed;
        let summary = &parsed.summary;
        Some(match key {
            "event_type" => parsed.event_type.as_str(),
            "format" => parsed.event_type.format().as_str(),
            "id" => &self.id,
            "lang" => self.lang(),
            "label" => label(parsed.event_type, self.lang()),
            "subject" => &summary.subject,
            "text" => &summary.text,
            "author" => &summary.author,
            "ticket" => &summary.ticket,
            _ => return None,
        })
    }
}

/// `lang`: `ru` or `en`, from the event's user, else `fallback` (`vars.lang`), else `en`.
pub(crate) fn lang(summary: &Summary, fallback: Option<&str>) -> &'static str {
    summary
        .lang
        .as_deref()
        .or(fallback)
        .map_or("en", primary_language)
}

impl Object for Context {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let parsed = &self.parsed;
        Some(match key {
            "event" => self.made.event.get_or_init(|| parsed.event()).clone(),
            "raw" => self.made.raw.get_or_init(|| parsed.raw()).clone(),
            "id" => Value::from(self.id.clone()),
            "tenant" => self.tenant.clone().map_or(Value::from(()), Value::from),
            "vars" => self.vars.clone(),
            _ => Value::from(self.text(key)?),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(NAMES)
    }
}

/// `ru` for Russian (`ru`, `ru-RU`, `RU`), `en` for anything else.
fn primary_language(lang: &str) -> &'static str {
    let primary = lang.split(['-', '_']).next().unwrap_or("");
    if primary.eq_ignore_ascii_case("ru") {
        "ru"
    } else {
        "en"
    }
}

/// What happened, in `lang` (`ru`, any case or region, for Russian; English otherwise):
/// "Заявка создана", "Ticket commented", "New chat message". What templates see as `label`.
///
/// ```
/// use deskhook::EventType;
/// use deskhook_transports::template::label;
///
/// let rating = EventType::from_wire("usedesk.rating").unwrap();
/// assert_eq!(label(rating, "ru-RU"), "Заявка оценена");
/// assert_eq!(label(rating, "en"), "Ticket rated");
/// ```
pub fn label(event_type: EventType, lang: &str) -> &'static str {
    use iqchannels::EventKind as Iq;
    use usedesk::EventKind as Ud;
    let ru = primary_language(lang) == "ru";
    let (en_label, ru_label) = match event_type {
        EventType::Usedesk(kind) => match kind {
            Ud::TicketCreated => ("Ticket created", "Заявка создана"),
            Ud::TicketChanged => ("Ticket changed", "Заявка изменена"),
            Ud::CommentCreated => ("New comment", "Новый комментарий"),
            Ud::Rating => ("Ticket rated", "Заявка оценена"),
        },
        EventType::IqChannels(kind) => match kind {
            Iq::ChatCreated => ("Chat started", "Начат чат"),
            Iq::TicketAssigned => ("Chat assigned", "Чат назначен"),
            Iq::Typing => ("Typing", "Печатает"),
            Iq::MessageCreated => ("New chat message", "Новое сообщение в чате"),
            Iq::MessageReceived => ("Message received", "Сообщение получено"),
            Iq::MessageRead => ("Message read", "Сообщение прочитано"),
            Iq::MessageListened => ("Message listened to", "Сообщение прослушано"),
            Iq::DeleteMessages => ("Messages deleted", "Сообщения удалены"),
            Iq::ChatClosed => ("Chat closed", "Чат закрыт"),
        },
        other => match other.zenlix_action() {
            Some(action) => (action.label_en(), action.label_ru()),
            None => ("Ticket event", "Событие заявки"),
        },
    };
    if ru { ru_label } else { en_label }
}
