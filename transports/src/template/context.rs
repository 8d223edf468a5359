//! What a template sees of an event: its JSON, typed, and a summary that reads the same for
//! every format (`label`, `subject`, `text`, `author`, `ticket`), so that one chat preset
//! serves Zenlix, Usedesk and iQChannels events.

use std::collections::BTreeMap;

use deskhook::EventType;
use deskhook::formats::{iqchannels, usedesk};
use minijinja::value::Value;
use serde_json::Value as Json;

/// An event parsed once for every templated endpoint it goes to.
#[derive(Debug)]
pub(crate) struct Parsed {
    event_type: EventType,
    event: Value,
    raw: Value,
    /// The initial user's language, when the event carries it (Zenlix).
    lang: Option<String>,
    subject: String,
    text: String,
    author: String,
    ticket: String,
}

impl Parsed {
    /// Parses an event's JSON body.
    pub(crate) fn new(event_type: EventType, body: &[u8]) -> Result<Parsed, String> {
        let json: Json = serde_json::from_slice(body)
            .map_err(|e| format!("the event's body is not JSON ({e}); cannot render it"))?;
        let raw = String::from_utf8_lossy(body).into_owned();
        let summary = match event_type {
            EventType::Usedesk(kind) => usedesk_summary(kind, &json),
            EventType::IqChannels(kind) => iqchannels_summary(kind, &json),
            _ => zenlix_summary(event_type, &json),
        };
        Ok(Parsed {
            event_type,
            event: Value::from(minijinja::value::Serde(&json)),
            raw: Value::from(raw),
            lang: summary.lang,
            subject: summary.subject,
            text: summary.text,
            author: summary.author,
            ticket: summary.ticket,
        })
    }

    /// The context of one render, with the endpoint's variables.
    pub(crate) fn context(
        &self,
        vars: &BTreeMap<String, String>,
        id: &str,
        tenant: Option<&str>,
    ) -> Value {
        let lang = self
            .lang
            .as_deref()
            .or(vars.get("lang").map(String::as_str))
            .map_or("en", primary_language);
        minijinja::context! {
            event => self.event.clone(),
            raw => self.raw.clone(),
            event_type => self.event_type.as_str(),
            format => self.event_type.format().as_str(),
            id => id,
            tenant => tenant,
            lang => lang,
            label => label(self.event_type, lang),
            subject => self.subject.as_str(),
            text => self.text.as_str(),
            author => self.author.as_str(),
            ticket => self.ticket.as_str(),
            vars => Value::from(minijinja::value::Serde(vars)),
        }
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

struct Summary {
    lang: Option<String>,
    subject: String,
    text: String,
    author: String,
    ticket: String,
}

/// The text at `path` (a string, or a number written out), or empty.
fn text_at(json: &Json, path: &[&str]) -> String {
    let mut at = json;
    for key in path {
        match at.get(key) {
            Some(next) => at = next,
            None => return String::new(),
        }
    }
    match at {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The first of the texts at `paths` that is not empty.
fn first_text(json: &Json, paths: &[&[&str]]) -> String {
    paths
        .iter()
        .map(|path| text_at(json, path))
        .find(|t| !t.trim().is_empty())
        .unwrap_or_default()
}

fn zenlix_summary(event_type: EventType, json: &Json) -> Summary {
    let comment = || {
        json.pointer("/ticket/comments")
            .and_then(Json::as_array)
            .and_then(|comments| comments.last())
            .map(|last| text_at(last, &["text"]))
            .unwrap_or_default()
    };
    let text = match event_type.zenlix_action() {
        Some(deskhook::Action::Comment) => comment(),
        _ => text_at(json, &["ticket", "text"]),
    };
    let lang = text_at(json, &["initial_user", "profile", "lang"]);
    Summary {
        lang: (!lang.is_empty()).then_some(lang),
        subject: first_text(json, &[&["ticket", "subject"], &["ticket", "subj"]]),
        text,
        author: first_text(
            json,
            &[
                &["initial_user", "profile", "full_name"],
                &["initial_user", "email"],
            ],
        ),
        ticket: text_at(json, &["ticket", "code"]),
    }
}

fn usedesk_summary(kind: usedesk::EventKind, json: &Json) -> Summary {
    use usedesk::EventKind as Ud;
    let ticket = first_text(
        json,
        &[
            &["ticket", "id"],
            &["comment", "ticket_id"],
            &["trigger", "ticket_id"],
            &["rating", "ticket_id"],
        ],
    );
    let text = match kind {
        Ud::TicketCreated => text_at(json, &["ticket", "message"]),
        Ud::CommentCreated => text_at(json, &["comment", "message"]),
        Ud::Rating => {
            let rating = text_at(json, &["rating", "rating"]);
            let comment = text_at(json, &["rating", "comment"]);
            if comment.is_empty() {
                format!("★ {rating}")
            } else {
                format!("★ {rating}: {comment}")
            }
        }
        Ud::TicketChanged => changes(json),
    };
    Summary {
        lang: None,
        subject: first_text(json, &[&["ticket", "subject"]]),
        text,
        author: first_text(
            json,
            &[
                &["comment", "client", "name"],
                &["trigger", "client", "name"],
                &["ticket", "email"],
            ],
        ),
        ticket,
    }
}

/// A Usedesk trigger's changes, as `status_id: 1 → 2`.
fn changes(json: &Json) -> String {
    json.pointer("/trigger/data")
        .and_then(Json::as_array)
        .map(|changes| {
            changes
                .iter()
                .map(|c| {
                    format!(
                        "{}: {} → {}",
                        text_at(c, &["target"]),
                        text_at(c, &["old_value"]),
                        text_at(c, &["value"])
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn iqchannels_summary(kind: iqchannels::EventKind, json: &Json) -> Summary {
    let chat = text_at(json, &["ChatEvent", "ChatId"]);
    let message_id = json.pointer("/ChatEvent/MessageId").cloned();
    let message = json
        .pointer("/Rels/ChatMessages")
        .and_then(Json::as_array)
        .and_then(|messages| {
            messages.iter().find(|m| {
                message_id
                    .as_ref()
                    .is_some_and(|id| m.get("Id") == Some(id))
            })
        });
    let text = match (kind, message) {
        (iqchannels::EventKind::MessageCreated, Some(m)) => {
            let text = text_at(m, &["Text"]);
            if text.trim().is_empty() {
                first_text(m, &[&["File", "Name"], &["Payload"]])
            } else {
                text
            }
        }
        _ => String::new(),
    };
    Summary {
        lang: None,
        subject: if chat.is_empty() {
            String::new()
        } else {
            format!("#{chat}")
        },
        text,
        author: text_at(json, &["ChatEvent", "Actor"]),
        ticket: chat,
    }
}
