//! The objects of Usedesk's webhooks: tickets, their changes, comments and ratings, with the
//! numeric codes they carry (statuses, priorities, scores…).

use std::fmt;

use jiff::civil::DateTime;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::super::{Id, Token};
use crate::wire::{wire_enum, wire_object};

/// Writes a numeric enum with an `Other(u64)` variant, and the field type that holds one
/// together with the form it came in.
macro_rules! coded {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal, $label:literal; )* }
        $(#[$wmeta:meta])*
        pub struct $wrapper:ident, default $default:ident, written as $form:ident;
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A number this version of deskhook does not know, kept as it came.
            Other(u64),
        }

        impl $name {
            /// The value for a number; unknown numbers become `Other`.
            pub const fn from_code(code: u64) -> $name {
                match code {
                    $( $code => $name::$variant, )*
                    other => $name::Other(other),
                }
            }

            /// The number on the wire.
            pub const fn code(self) -> u64 {
                match self {
                    $( $name::$variant => $code, )*
                    $name::Other(code) => code,
                }
            }

            /// A short English label (`on hold`), or `None` for an unknown number.
            pub const fn label(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )*
                    $name::Other(_) => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.label() {
                    Some(label) => f.pad(label),
                    None => write!(f, "{}", self.code()),
                }
            }
        }

        /// Written as its number.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u64(self.code())
            }
        }

        /// Read from its number, or a string of its digits.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Id::deserialize(deserializer).map(|id| $name::from_code(id.get()))
            }
        }

        $(#[$wmeta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $wrapper(Id);

        impl $wrapper {
            /// The value in its documented form (a string of digits for a status, a
            /// number for a score).
            pub const fn new(value: $name) -> $wrapper {
                $wrapper(Id::$form(value.code()))
            }

            /// The value.
            pub const fn get(self) -> $name {
                $name::from_code(self.0.get())
            }

            /// The number and the form it is written in.
            pub const fn id(self) -> Id {
                self.0
            }
        }

        impl Default for $wrapper {
            fn default() -> Self {
                $wrapper::new($name::$default)
            }
        }

        impl From<$name> for $wrapper {
            fn from(value: $name) -> Self {
                $wrapper::new(value)
            }
        }

        impl From<Id> for $wrapper {
            fn from(id: Id) -> Self {
                $wrapper(id)
            }
        }

        impl PartialEq<$name> for $wrapper {
            fn eq(&self, other: &$name) -> bool {
                self.get() == *other
            }
        }

        impl fmt::Display for $wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.get(), f)
            }
        }

        impl Serialize for $wrapper {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $wrapper {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Id::deserialize(deserializer).map($wrapper)
            }
        }
    };
}

coded! {
    /// A ticket status (`status_id`, `old_status`, `new_status`).
    pub enum Status {
        /// 1: open.
        Open = 1, "open";
        /// 2: completed (answered, waiting for the client).
        Completed = 2, "completed";
        /// 3: closed.
        Closed = 3, "closed";
        /// 4: deleted.
        Deleted = 4, "deleted";
        /// 5: on hold.
        OnHold = 5, "on hold";
        /// 6: pending.
        Pending = 6, "pending";
        /// 7: spam.
        Spam = 7, "spam";
        /// 8: new.
        New = 8, "new";
        /// 9: mailing.
        Mailing = 9, "mailing";
    }
    /// A ticket status as sent: the [`Status`] and the form of its number. Built from a
    /// `Status`, it is written as a string of digits (`"2"`), as the vendor's example has it;
    /// parsed, it is written back as it came.
    ///
    /// ```
    /// use deskhook::formats::usedesk::{Status, StatusId};
    ///
    /// let status: StatusId = serde_json::from_str("\"5\"").unwrap();
    /// assert_eq!(status, Status::OnHold);
    /// assert_eq!(status.to_string(), "on hold");
    /// let other: StatusId = serde_json::from_str("10").unwrap();
    /// assert_eq!(other.get(), Status::Other(10));
    /// assert_eq!(serde_json::to_string(&other).unwrap(), "10");
    /// assert_eq!(serde_json::to_string(&StatusId::new(Status::Spam)).unwrap(), "\"7\"");
    /// ```
    pub struct StatusId, default Open, written as string;
}

coded! {
    /// The client's score of an answer (`rating.rating`).
    pub enum Score {
        /// 1: poor.
        Poor = 1, "poor";
        /// 2: normal.
        Normal = 2, "normal";
        /// 3: good.
        Good = 3, "good";
    }
    /// A score as sent: the [`Score`] and the form of its number. Built from a `Score`, it is
    /// written as an integer, as the documented example has it; a string of digits is
    /// accepted and written back as it came.
    ///
    /// ```
    /// use deskhook::formats::usedesk::{Score, ScoreId};
    ///
    /// assert_eq!(serde_json::to_string(&ScoreId::from(Score::Good)).unwrap(), "3");
    /// let parsed: ScoreId = serde_json::from_str("\"1\"").unwrap();
    /// assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"1\"");
    /// ```
    pub struct ScoreId, default Normal, written as number;
}

impl ScoreId {
    /// The score written as a JSON number (as [`ScoreId::new`] writes it).
    pub const fn number(value: Score) -> ScoreId {
        ScoreId(Id::number(value.code()))
    }
}

wire_enum! {
    /// Who can see a comment (`comment.type`).
    #[derive(Default)]
    pub enum CommentType {
        /// `public`: visible to the client.
        #[default]
        Public => "public",
        /// `private`: an internal note.
        Private => "private",
    }
}

wire_enum! {
    /// Which side wrote a comment (`comment.from`).
    #[derive(Default)]
    pub enum Sender {
        /// `user`: an agent.
        User => "user",
        /// `client`: the client.
        #[default]
        Client => "client",
    }
}

wire_object! {
    /// A custom field of a ticket (`custom_fields[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct CustomField, expecting "a custom field object {id, name, value}" {
        /// Field id.
        pub id: Id => "id", plain, default;
        /// Field name.
        pub name: String => "name", plain, default;
        /// Value; `None` when `null`.
        pub value: Option<String> => "value", plain, default;
    }
}

wire_object! {
    /// A dynamic block configured in the account (`custom_blocks[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct CustomBlock, expecting "a custom block object {name, url, secret_key}" {
        /// Block name.
        pub name: String => "name", plain, default;
        /// Block URL.
        pub url: String => "url", plain, default;
        /// The block's secret token.
        pub secret_key: Token => "secret_key", plain, default;
    }
}

wire_object! {
    /// The client of a ticket (`client`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Client, expecting "a client object {id, name, avatar, note, emails, phones, additional_ids}" {
        /// Client id.
        pub id: Id => "id", plain, default;
        /// Name.
        pub name: String => "name", plain, default;
        /// Avatar URL.
        pub avatar: Option<String> => "avatar", plain, default;
        /// A note about the client.
        pub note: Option<String> => "note", plain, default;
        /// E-mail addresses. Their shape is not documented for webhooks (strings in the
        /// example, objects `{id, email, …}` in the REST API), so they are kept as JSON.
        pub emails: Vec<Value> => "emails", plain, default;
        /// Phones, kept as JSON (shape not documented).
        pub phones: Vec<Value> => "phones", plain, default;
        /// Additional client ids, kept as JSON (shape not documented).
        pub additional_ids: Vec<Value> => "additional_ids", plain, default;
    }
}

wire_object! {
    /// A created ticket (wrapper `ticket`).
    ///
    /// Usedesk writes this object's ids as strings of digits (`"id": "2261907"`, `"group":
    /// "0"`), where other webhooks have numbers: to send what it sends, build them with
    /// [`Id::string`] (`Id::from` and `Id::default` write numbers).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Ticket, expecting "a ticket object {id, status_id, subject, …}" {
        /// Ticket id: the ordering key.
        pub id: Id => "id", plain, required;
        /// Status.
        pub status_id: StatusId => "status_id", plain, default;
        /// Subject.
        pub subject: String => "subject", plain, default;
        /// The client's id.
        pub client_id: Id => "client_id", plain, default;
        /// The assigned agent's id, if any.
        pub assignee_id: Option<Id> => "assignee_id", plain, default;
        /// The assigned group's id (`0`: none).
        pub group: Id => "group", plain, default;
        /// When the ticket last changed.
        pub last_updated_at: DateTime => "last_updated_at", time, default;
        /// Channel id.
        pub channel_id: Id => "channel_id", plain, default;
        /// The address the client wrote from.
        pub email: Option<String> => "email", plain, default;
        /// When the ticket was created.
        pub published_at: DateTime => "published_at", time, default;
        /// The Usedesk account (company) the webhook comes from.
        pub company_id: Id => "company_id", plain, default;
        /// An additional (external) ticket id.
        pub additional_id: Option<String> => "additional_id", plain, default;
        /// The text of the client's first message; may hold HTML.
        pub message: String => "message", plain, default;
        /// Custom fields; sent only when the account has some.
        pub custom_fields: Vec<CustomField> => "custom_fields", plain, default;
        /// Dynamic blocks of the account.
        pub custom_blocks: Vec<CustomBlock> => "custom_blocks", plain, default;
    }
}

wire_object! {
    /// One change applied to a ticket (`trigger.data[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct FieldChange, expecting "a change object {target, value, old_value}" {
        /// The field that changed, such as `status_id`.
        pub target: String => "target", plain, default;
        /// The new value (any JSON scalar, usually a string).
        pub value: Value => "value", plain, default;
        /// The previous value, or `null`.
        pub old_value: Value => "old_value", plain, default;
    }
}

wire_object! {
    /// A changed ticket (wrapper `trigger`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct TicketChange, expecting "a ticket change object {id, trigger_id, user_id, ticket_id, data, …}" {
        /// Id of the change.
        pub id: Id => "id", plain, default;
        /// The rule (trigger) that made the change; `None` when a user did.
        pub trigger_id: Option<Id> => "trigger_id", plain, default;
        /// The user who made the change; `None` when a rule did.
        pub user_id: Option<Id> => "user_id", plain, default;
        /// Ticket id: the ordering key.
        pub ticket_id: Id => "ticket_id", plain, required;
        /// The changes.
        pub data: Vec<FieldChange> => "data", plain, default;
        /// When.
        pub changed_at: DateTime => "changed_at", time, default;
        /// The status before.
        pub old_status: Option<StatusId> => "old_status", plain, default;
        /// The status after.
        pub new_status: Option<StatusId> => "new_status", plain, default;
        /// The account id.
        pub company_id: Id => "company_id", plain, default;
        /// Custom fields.
        pub custom_fields: Vec<CustomField> => "custom_fields", plain, default;
        /// Dynamic blocks of the account.
        pub custom_blocks: Vec<CustomBlock> => "custom_blocks", plain, default;
        /// The ticket's client.
        pub client: Client => "client", plain, default;
    }
}

wire_object! {
    /// A created comment (wrapper `comment`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Comment, expecting "a comment object {id, message, type, from, …}" {
        /// Comment id.
        pub id: Id => "id", plain, default;
        /// The text; may hold HTML.
        pub message: String => "message", plain, default;
        /// Public, or a private note.
        pub kind: CommentType => "type", plain, default;
        /// Written by an agent or by the client.
        pub from: Sender => "from", plain, default;
        /// The agent who wrote it; `None` for the client.
        pub user_id: Option<Id> => "user_id", plain, default;
        /// The client who wrote it; `None` for an agent.
        pub client_id: Option<Id> => "client_id", plain, default;
        /// Ticket id: the ordering key.
        pub ticket_id: Id => "ticket_id", plain, required;
        /// Whether this is the ticket's first comment (`1`/`0` on the wire; name inferred).
        pub first: bool => "first", int_bool, default;
        /// Delivered flag (`1`/`0`; the vendor says it is not implemented).
        pub delivered: bool => "delivered", int_bool, default;
        /// Read flag (`readed`, sic; `1`/`0`; not implemented).
        pub readed: bool => "readed", int_bool, default;
        /// When it was written.
        pub published_at: DateTime => "published_at", time, default;
        /// Custom fields.
        pub custom_fields: Vec<CustomField> => "custom_fields", plain, default;
        /// The ticket's client.
        pub client: Client => "client", plain, default;
    }
}

wire_object! {
    /// A client's rating of an answer (wrapper `rating`; name inferred).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Rating, expecting "a rating object {id, client_id, ticket_id, rating, …}" {
        /// Rating id.
        pub id: Id => "id", plain, default;
        /// The client's id.
        pub client_id: Id => "client_id", plain, default;
        /// Ticket id: the ordering key.
        pub ticket_id: Id => "ticket_id", plain, required;
        /// The score: 1 poor, 2 normal, 3 good. The key's name is inferred (the vendor's
        /// page lost it), so a rating without it is read all the same: `None`, and a score
        /// under another name is kept in [`extra`](Rating::extra).
        pub rating: Option<ScoreId> => "rating", plain, default;
        /// The account id.
        pub company_id: Id => "company_id", plain, default;
        /// The comment that carries the rating.
        pub ticket_comment_id: Id => "ticket_comment_id", plain, default;
        /// The client's comment to the rating.
        pub comment: String => "comment", plain, default;
        /// When it was given.
        pub created_at: DateTime => "created_at", time, default;
        /// When it last changed.
        pub updated_at: DateTime => "updated_at", time, default;
        /// The agent (ticket executor) being rated.
        pub user_id: Option<Id> => "user_id", plain, default;
    }
}
