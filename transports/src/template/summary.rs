//! The summary every format has — `subject`, `text`, `author`, `ticket` and the user's
//! language — read from an event's body by one typed pass that skips what it does not need:
//! no tree of the whole body is built (templates that read `event` build that on their own).
//!
//! A body of an unexpected shape (a field of another type) gives an empty summary rather
//! than an error: the summary is a convenience, and the template may not need it. A body that
//! is not JSON is an error.

use std::fmt;

use deskhook::EventType;
use deskhook::formats::{iqchannels, usedesk};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What every format says of an event.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// The initial user's language, when the event carries it (Zenlix).
    pub(crate) lang: Option<String>,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) author: String,
    pub(crate) ticket: String,
}

/// Reads the summary of a body of `event_type`'s format.
pub(crate) fn read(event_type: EventType, body: &[u8]) -> Result<Summary, serde_json::Error> {
    let summary = match event_type {
        EventType::Usedesk(kind) => serde_json::from_slice(body).map(|v| usedesk(kind, v)),
        EventType::IqChannels(kind) => serde_json::from_slice(body).map(|v| iqchannels(kind, v)),
        _ => serde_json::from_slice(body).map(|v| zenlix(event_type, v)),
    };
    match summary {
        Ok(summary) => Ok(summary),
        // Valid JSON of another shape: the template may still read `event`.
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            serde_json::from_slice::<IgnoredAny>(body).map(|_| Summary::default())
        }
        Err(e) => Err(e),
    }
}

/// The summary of a Zenlix event read from the typed event itself (at emit: no parse).
pub(crate) fn of_zenlix(event: &deskhook::EventRef<'_>) -> Summary {
    let ticket = event.ticket();
    let user = event.initial_user();
    let text = match event.action() {
        deskhook::Action::Comment => ticket
            .comments
            .last()
            .map(|c| c.text.clone())
            .unwrap_or_default(),
        _ => ticket.text.clone(),
    };
    Summary {
        lang: (!user.profile.lang.is_empty()).then(|| user.profile.lang.clone()),
        // As read from the body: a blank subject is none.
        subject: first_of([&ticket.subject]),
        text,
        author: first_of([&user.profile.full_name, &user.email]),
        ticket: ticket.code.clone(),
    }
}

/// A scalar as text: a string, a number or a boolean written out; empty for null, and for a
/// list or map (skipped).
#[derive(Debug, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::default())
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

/// A field that may be `null` where an object or a list is expected (an agent's comment has
/// `"client": null`; Go's nil slice is written `null`): read as its default, where serde
/// would refuse the whole body, and the summary with it.
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// The `text` of the last element of a list of objects, reading the others without keeping
/// them.
#[derive(Debug, Default)]
struct LastText(Text);

impl<'de> Deserialize<'de> for LastText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LastText, D::Error> {
        struct LastVisitor;

        impl<'de> Visitor<'de> for LastVisitor {
            type Value = LastText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of objects with a text")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LastText, A::Error> {
                let mut last = Text::default();
                while let Some(item) = seq.next_element::<WithText>()? {
                    last = item.text;
                }
                Ok(LastText(last))
            }
        }

        deserializer.deserialize_seq(LastVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WithText {
    text: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    name: Text,
}

// Zenlix: {"ticket": {"code", "subject", "text", "comments": [{"text"}]},
//          "initial_user": {"email", "profile": {"full_name", "lang"}}}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Zenlix {
    #[serde(deserialize_with = "or_default")]
    ticket: ZenlixTicket,
    #[serde(deserialize_with = "or_default")]
    initial_user: ZenlixUser,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ZenlixTicket {
    code: Text,
    subject: Text,
    text: Text,
    #[serde(deserialize_with = "or_default")]
    comments: LastText,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ZenlixUser {
    email: Text,
    #[serde(deserialize_with = "or_default")]
    profile: ZenlixProfile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ZenlixProfile {
    full_name: Text,
    lang: Text,
}

fn zenlix(event_type: EventType, v: Zenlix) -> Summary {
    let ticket = v.ticket;
    let text = match event_type.zenlix_action() {
        Some(deskhook::Action::Comment) => ticket.comments.0.0,
        _ => ticket.text.0,
    };
    let lang = v.initial_user.profile.lang.0;
    Summary {
        lang: (!lang.is_empty()).then_some(lang),
        subject: first([ticket.subject.0]),
        text,
        author: first([v.initial_user.profile.full_name.0, v.initial_user.email.0]),
        ticket: ticket.code.0,
    }
}

/// [`first`] of borrowed texts: only the one taken is copied.
fn first_of<const N: usize>(texts: [&String; N]) -> String {
    texts
        .into_iter()
        .find(|t| !t.trim().is_empty())
        .cloned()
        .unwrap_or_default()
}

/// The first text that is not blank.
fn first<const N: usize>(texts: [String; N]) -> String {
    texts
        .into_iter()
        .find(|t| !t.trim().is_empty())
        .unwrap_or_default()
}

// Usedesk: one of "ticket", "comment", "trigger", "rating".

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Usedesk {
    #[serde(deserialize_with = "or_default")]
    ticket: UsedeskTicket,
    #[serde(deserialize_with = "or_default")]
    comment: UsedeskComment,
    #[serde(deserialize_with = "or_default")]
    trigger: UsedeskTrigger,
    #[serde(deserialize_with = "or_default")]
    rating: UsedeskRating,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsedeskTicket {
    id: Text,
    subject: Text,
    message: Text,
    email: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsedeskComment {
    ticket_id: Text,
    message: Text,
    /// `client` or `user` (an agent).
    from: Text,
    #[serde(deserialize_with = "or_default")]
    client: Named,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsedeskTrigger {
    ticket_id: Text,
    #[serde(deserialize_with = "or_default")]
    data: Vec<UsedeskChange>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsedeskChange {
    target: Text,
    value: Text,
    old_value: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsedeskRating {
    ticket_id: Text,
    rating: Text,
    comment: Text,
}

fn usedesk(kind: usedesk::EventKind, v: Usedesk) -> Summary {
    use usedesk::EventKind as Ud;
    let text = match kind {
        Ud::TicketCreated => v.ticket.message.0,
        Ud::CommentCreated => v.comment.message.0,
        Ud::Rating if v.rating.comment.0.is_empty() => format!("★ {}", v.rating.rating.0),
        Ud::Rating => format!("★ {}: {}", v.rating.rating.0, v.rating.comment.0),
        // A trigger's changes, as `status_id: 1 → 2`.
        Ud::TicketChanged => v
            .trigger
            .data
            .iter()
            .map(|c| format!("{}: {} → {}", c.target.0, c.old_value.0, c.value.0))
            .collect::<Vec<_>>()
            .join(", "),
    };
    Summary {
        lang: None,
        subject: v.ticket.subject.0,
        text,
        // A comment's client wrote it only when it is `from` the client (an agent's has
        // the ticket's client too); a trigger's client is the ticket's, not who changed it
        // (an agent known by id only, or a rule): no author.
        author: match kind {
            Ud::CommentCreated if matches!(v.comment.from.0.as_str(), "client" | "") => {
                v.comment.client.name.0
            }
            Ud::TicketCreated => v.ticket.email.0,
            _ => String::new(),
        },
        ticket: first([
            v.ticket.id.0,
            v.comment.ticket_id.0,
            v.trigger.ticket_id.0,
            v.rating.ticket_id.0,
        ]),
    }
}

// iQChannels: {"ChatEvent": {"ChatId", "MessageId", "Actor"},
//              "Rels": {"ChatMessages": [{"Id", "Text", "Payload", "FileId"}],
//                       "Files": [{"Id", "Name"}]}}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IqChannels {
    #[serde(rename = "ChatEvent")]
    #[serde(deserialize_with = "or_default")]
    chat_event: IqChatEvent,
    #[serde(rename = "Rels")]
    #[serde(deserialize_with = "or_default")]
    rels: IqRels,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IqChatEvent {
    #[serde(rename = "ChatId")]
    chat_id: Text,
    #[serde(rename = "MessageId")]
    message_id: Text,
    #[serde(rename = "Actor")]
    actor: Text,
    #[serde(rename = "ClientId")]
    client_id: Text,
    #[serde(rename = "UserId")]
    user_id: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IqRels {
    #[serde(rename = "ChatMessages")]
    #[serde(deserialize_with = "or_default")]
    chat_messages: Vec<IqMessage>,
    #[serde(rename = "Files")]
    #[serde(deserialize_with = "or_default")]
    files: Vec<IqFile>,
    #[serde(rename = "Clients", deserialize_with = "or_default")]
    clients: Vec<IqPerson>,
    #[serde(rename = "Users", deserialize_with = "or_default")]
    users: Vec<IqPerson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IqMessage {
    #[serde(rename = "Id")]
    id: Text,
    #[serde(rename = "Text")]
    text: Text,
    #[serde(rename = "Payload")]
    payload: Text,
    #[serde(rename = "FileId")]
    file_id: Text,
}

/// A client or an agent (user) of `Rels`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IqPerson {
    #[serde(rename = "Id")]
    id: Text,
    #[serde(rename = "Name")]
    name: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IqFile {
    #[serde(rename = "Id")]
    id: Text,
    #[serde(rename = "Name")]
    name: Text,
}

fn iqchannels(kind: iqchannels::EventKind, v: IqChannels) -> Summary {
    let event = v.chat_event;
    let IqRels {
        chat_messages,
        files,
        clients,
        users,
    } = v.rels;
    // Who acted, by name when `Rels` has one, else the role (`client`, `user`).
    let (people, id) = match event.actor.0.as_str() {
        "client" => (clients, &event.client_id.0),
        "user" => (users, &event.user_id.0),
        _ => (Vec::new(), &event.client_id.0),
    };
    let named = people
        .into_iter()
        .find(|p| !id.is_empty() && p.id.0 == *id)
        .map(|p| p.name.0)
        .unwrap_or_default();
    let author = first([named, event.actor.0]);
    let text = match kind {
        iqchannels::EventKind::MessageCreated if !event.message_id.0.is_empty() => {
            chat_messages
                .into_iter()
                .find(|m| m.id.0 == event.message_id.0)
                .map(|m| {
                    // A file message names its file in `Rels.Files`.
                    let file = files
                        .into_iter()
                        .find(|f| !m.file_id.0.is_empty() && f.id.0 == m.file_id.0)
                        .map(|f| f.name.0)
                        .unwrap_or_default();
                    // Else what it carries (`card`, `rating`, …): never `text`, which
                    // would read as the message.
                    let kind = if m.payload.0 == "text" {
                        String::new()
                    } else {
                        m.payload.0
                    };
                    first([m.text.0, file, kind])
                })
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    let chat = event.chat_id.0;
    Summary {
        lang: None,
        subject: if chat.is_empty() {
            String::new()
        } else {
            format!("#{chat}")
        },
        text,
        author,
        ticket: chat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, body: &str) -> Summary {
        read(EventType::from_wire(name).unwrap(), body.as_bytes()).unwrap()
    }

    #[test]
    fn each_format_reads_its_summary() {
        let zenlix = of(
            "comment",
            r#"{"ticket":{"code":"E3XK","subject":"Printer","text":"t","comments":[{"text":"a"},
                {"text":"last"}]},"initial_user":{"email":"a@x","profile":{"full_name":"","lang":"ru"}}}"#,
        );
        assert_eq!(
            (
                zenlix.subject.as_str(),
                zenlix.text.as_str(),
                zenlix.author.as_str()
            ),
            ("Printer", "last", "a@x")
        );
        assert_eq!(
            (zenlix.ticket.as_str(), zenlix.lang.as_deref()),
            ("E3XK", Some("ru"))
        );
        let changed = of(
            "usedesk.ticket_changed",
            r#"{"trigger":{"ticket_id":5,"data":[{"target":"status_id","value":"2","old_value":"1"}],
                "user_id":9087,"client":{"name":"Jon"}}}"#,
        );
        assert_eq!(changed.text, "status_id: 1 → 2");
        // The client is the ticket's, not who changed it.
        assert_eq!(
            (changed.ticket.as_str(), changed.author.as_str()),
            ("5", "")
        );
        let message = of(
            "iqchannels.message_created",
            r#"{"ChatEvent":{"ChatId":21,"MessageId":298,"Actor":"client"},
                "Rels":{"ChatMessages":[{"Id":1,"Text":"no"},{"Id":298,"Text":"","Payload":"file",
                "FileId":"f-2"}],"Files":[{"Id":"f-1","Name":"b.pdf"},{"Id":"f-2","Name":"a.pdf"}]}}"#,
        );
        assert_eq!(
            (
                message.subject.as_str(),
                message.text.as_str(),
                message.ticket.as_str()
            ),
            ("#21", "a.pdf", "21")
        );
    }

    #[test]
    fn the_author_is_who_acted() {
        let comment = |from: &str| {
            of(
                "usedesk.comment_created",
                &format!(
                    r#"{{"comment":{{"ticket_id":7,"message":"hi","from":"{from}",
                        "client":{{"name":"Jon Bon Jovi"}}}}}}"#
                ),
            )
        };
        assert_eq!(comment("client").author, "Jon Bon Jovi");
        // An agent's comment carries the ticket's client too.
        assert_eq!(comment("user").author, "");
        let message = |actor: &str| {
            of(
                "iqchannels.message_created",
                &format!(
                    r#"{{"ChatEvent":{{"ChatId":21,"Actor":"{actor}","ClientId":13,"UserId":1}},
                        "Rels":{{"Clients":[{{"Id":13,"Name":"Ann"}}],
                        "Users":[{{"Id":2,"Name":"Bob"}},{{"Id":1,"Name":"Eve"}}]}}}}"#
                ),
            )
        };
        assert_eq!(message("client").author, "Ann");
        assert_eq!(message("user").author, "Eve");
        // Without a name in `Rels`, the role.
        assert_eq!(message("system").author, "system");
    }

    /// `null` where an object or a list is expected loses that part only.
    #[test]
    fn a_null_object_or_list_is_read_as_empty() {
        let comment = of(
            "usedesk.comment_created",
            r#"{"comment":{"ticket_id":7,"message":"hi","from":"user","user_id":3,"client":null}}"#,
        );
        assert_eq!(
            (comment.text.as_str(), comment.ticket.as_str()),
            ("hi", "7")
        );
        let message = of(
            "iqchannels.message_created",
            r#"{"ChatEvent":{"ChatId":21,"MessageId":5,"Actor":"client"},
                "Rels":{"ChatMessages":[{"Id":5,"Text":"hello"}],"Files":null,"Clients":null}}"#,
        );
        assert_eq!(
            (message.text.as_str(), message.author.as_str()),
            ("hello", "client")
        );
        let zenlix = of(
            "comment",
            r#"{"ticket":{"code":"E3XK","comments":null},"initial_user":{"profile":null,"email":"a@x"}}"#,
        );
        assert_eq!(
            (zenlix.ticket.as_str(), zenlix.author.as_str()),
            ("E3XK", "a@x")
        );
    }

    #[test]
    fn a_file_message_is_summarised_by_its_files_name() {
        let message = of(
            "iqchannels.message_created",
            include_str!("../../../core/fixtures/iqchannels/message_created_operator_file.json"),
        );
        assert_eq!(message.text, "example-request.json");
        // A text message without text (its quote is elsewhere) says nothing.
        let message = of(
            "iqchannels.message_created",
            include_str!("../../../core/fixtures/iqchannels/message_created_operator_quote.json"),
        );
        assert_eq!(message.text, "");
    }

    #[test]
    fn a_typed_zenlix_event_gives_the_summary_its_body_gives() {
        let user = deskhook::sample::user();
        let mut blank = deskhook::sample::ticket();
        blank.subject = " \n\u{2028}".into();
        // A field the model does not know, whatever its name, is not the subject.
        let mut other = blank.clone();
        other.extra.insert("subj".into(), "X".into());
        for ticket in [deskhook::sample::ticket(), blank, other] {
            for action in [deskhook::Action::Create, deskhook::Action::Comment] {
                let event = deskhook::EventRef::new(action, &ticket, &user);
                let typed = of_zenlix(&event);
                let read = read(EventType::Zenlix(action), &event.to_json().unwrap()).unwrap();
                assert_eq!(format!("{typed:?}"), format!("{read:?}"));
            }
        }
    }

    #[test]
    fn another_shape_gives_an_empty_summary_and_broken_json_an_error() {
        let odd = of(
            "create",
            r#"{"ticket":{"comments":"not a list","code":[1]}}"#,
        );
        assert_eq!(odd.ticket, "");
        assert!(read(EventType::from_wire("create").unwrap(), b"{\"ticket\":").is_err());
    }
}
