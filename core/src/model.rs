//! The Zenlix event model: the body that every webhook carries.
//!
//! [`Event`] owns its data and is what receivers parse; [`EventRef`] borrows the ticket and
//! the user and is what [`emit`](crate::emit) builds, so emitting never clones a ticket. Both
//! serialize to the same bytes, in the documented key order:
//!
//! ```json
//! {"ticket":{…},"initial_user":{…},"action":"create","description":"Ticket created","dt":"2019-06-11 11:24:18"}
//! ```

use std::borrow::Cow;
use std::fmt;

use jiff::civil::DateTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::action::Action;
use crate::error::Error;
use crate::wire::{wire_enum, wire_struct};

/// The current local time, whole seconds: the default `dt` of an event and `created_at` of a
/// new ticket.
///
/// Uses the system time zone (`TZ`, else `/etc/localtime`); jiff caches it, so this is a
/// clock read and a table look-up.
pub fn now_local() -> DateTime {
    let dt = jiff::Zoned::now().datetime();
    dt.with().subsec_nanosecond(0).build().unwrap_or(dt)
}

wire_enum! {
    /// A ticket's priority (`ticket.prio`).
    #[derive(Default)]
    pub enum Priority {
        /// `low`
        Low => "low",
        /// `normal`
        #[default]
        Normal => "normal",
        /// `high`
        High => "high",
    }
}

wire_enum! {
    /// A ticket's status (`ticket.status`).
    #[derive(Default)]
    pub enum Status {
        /// `free`: open and not taken into work.
        #[default]
        Free => "free",
        /// `lock`: taken into work by an executor.
        Lock => "lock",
        /// `waitsuccess`: completed and awaiting review.
        WaitSuccess => "waitsuccess",
        /// `success`: done.
        Success => "success",
        /// `arch`: archived.
        Arch => "arch",
    }
}

wire_enum! {
    /// What a ticket history entry records (`ticket.logs[].action`). It has more values than
    /// [`Action`]: steps of tickets with several executors, archiving, rejected reviews.
    #[derive(Default)]
    pub enum LogAction {
        /// `create`
        #[default]
        Create => "create",
        /// `refer`
        Refer => "refer",
        /// `comment`
        Comment => "comment",
        /// `lock`
        Lock => "lock",
        /// `lockNext`: one of several executors took the ticket.
        LockNext => "lockNext",
        /// `unlock`
        Unlock => "unlock",
        /// `ok`
        Ok => "ok",
        /// `unok`
        Unok => "unok",
        /// `unokNext`: one of several executors cancelled their completion.
        UnokNext => "unokNext",
        /// `arch`: moved to the archive.
        Arch => "arch",
        /// `edit`
        Edit => "edit",
        /// `delete`
        Delete => "delete",
        /// `restore`
        Restore => "restore",
        /// `waitok`
        Waitok => "waitok",
        /// `approve`
        Approve => "approve",
        /// `noapprove`: the review rejected the completion.
        NoApprove => "noapprove",
    }
}

impl From<Action> for LogAction {
    fn from(action: Action) -> Self {
        LogAction::from_wire(action.as_str())
    }
}

wire_struct! {
    /// A user's profile (`profile`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Profile, expecting "a profile object {full_name, lang}" {
        /// Display name.
        pub full_name: String => "full_name", plain, required;
        /// Language of the user interface and notifications, ISO 639-1 (`ru`, `en`). It
        /// chooses the language of an event's default `description`.
        pub lang: String => "lang", plain, required;
    }
}

wire_struct! {
    /// A user's contacts (`contacts`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Contacts, expecting "a contacts object {email}" {
        /// Contact e-mail; may differ from the login e-mail.
        pub email: String => "email", plain, required;
    }
}

wire_struct! {
    /// A helpdesk user: requester, watcher, executor, author, or the initial user of an event.
    ///
    /// ```
    /// let user = deskhook::User::new("anna@example.com", "Anna Petrova").with_lang("ru");
    /// assert_eq!(user.contacts.email, "anna@example.com");
    /// ```
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct User, expecting "a user object {email, profile, contacts}" {
        /// Login e-mail.
        pub email: String => "email", plain, required;
        /// Name and language.
        pub profile: Profile => "profile", plain, required;
        /// Contact details.
        pub contacts: Contacts => "contacts", plain, required;
    }
}

impl User {
    /// A user with this login e-mail (also the contact e-mail), display name and language
    /// `en`.
    pub fn new(email: impl Into<String>, full_name: impl Into<String>) -> User {
        let email = email.into();
        User {
            contacts: Contacts {
                email: email.clone(),
                extra: Map::new(),
            },
            profile: Profile {
                full_name: full_name.into(),
                lang: "en".to_owned(),
                extra: Map::new(),
            },
            email,
            extra: Map::new(),
        }
    }

    /// This user with another language (ISO 639-1, such as `ru`). Defaults to `en`.
    #[must_use]
    pub fn with_lang(mut self, lang: impl Into<String>) -> User {
        self.profile.lang = lang.into();
        self
    }

    /// This user with a contact e-mail other than the login e-mail. Defaults to the login
    /// e-mail.
    #[must_use]
    pub fn with_contact_email(mut self, email: impl Into<String>) -> User {
        self.contacts.email = email.into();
        self
    }
}

wire_struct! {
    /// A comment on a ticket (`ticket.comments[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Comment, expecting "a comment object {author, text}" {
        /// Who wrote it.
        pub author: User => "author", plain, required;
        /// The text.
        pub text: String => "text", plain, required;
    }
}

impl Comment {
    /// A comment by `author`.
    pub fn new(author: User, text: impl Into<String>) -> Comment {
        Comment {
            author,
            text: text.into(),
            extra: Map::new(),
        }
    }
}

wire_struct! {
    /// One entry of a ticket's history (`ticket.logs[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct LogEntry, expecting "a log entry object {author, action, dt}" {
        /// Who did it.
        pub author: User => "author", plain, required;
        /// What was done.
        pub action: LogAction => "action", plain, required;
        /// When, in the helpdesk's local time.
        pub dt: DateTime => "dt", time, required;
    }
}

impl LogEntry {
    /// A history entry.
    pub fn new(author: User, action: impl Into<LogAction>, dt: DateTime) -> LogEntry {
        LogEntry {
            author,
            action: action.into(),
            dt,
            extra: Map::new(),
        }
    }
}

wire_struct! {
    /// A ticket as the webhook shows it: a snapshot after the action.
    ///
    /// Every field is public; build one with [`Ticket::new`] and struct update syntax:
    ///
    /// ```
    /// use deskhook::event::{Priority, Status};
    /// use deskhook::{Ticket, User};
    ///
    /// let author = User::new("anna@example.com", "Anna Petrova");
    /// let ticket = Ticket {
    ///     prio: Priority::High,
    ///     status: Status::Lock,
    ///     text: "The printer on floor 3 is jammed.".into(),
    ///     client: vec![author.clone()],
    ///     author,
    ///     ..Ticket::new("E3XK", "Printer jammed")
    /// };
    /// assert_eq!(ticket.code, "E3XK");
    /// ```
    #[derive(Clone, Debug, PartialEq)]
    pub struct Ticket, expecting "a ticket object" {
        /// Short public code, used in URLs (`/ticket/<code>`). Events of one ticket are
        /// delivered in order; this code is the ticket's key.
        pub code: String => "code", plain, required;
        /// Priority.
        pub prio: Priority => "prio", plain, required;
        /// Status after the action.
        pub status: Status => "status", plain, required;
        /// Body; may hold `\r\n` and HTML.
        pub text: String => "text", plain, required;
        /// Subject.
        pub subject: String => "subject", plain, required;
        /// Tags separated by commas, such as `from_mail`. See [`Ticket::tag_list`].
        pub tags: String => "tags", plain, required;
        /// Random hash used in the client's URL of the ticket.
        pub urlhash: String => "urlhash", plain, required;
        /// Creation time, local.
        pub created_at: DateTime => "created_at", time, required;
        /// Whether completion must be reviewed (`waitok` / `approve`). Sent as the string
        /// `"true"` or `"false"`.
        pub inspect_after_ok: bool => "inspect_after_ok", str_bool, required;
        /// Whether each executor completes individually. Sent as `"true"` or `"false"`.
        pub individual_ok: bool => "individual_ok", str_bool, required;
        /// Deadline, local; `null` when there is none.
        pub deadline_time: Option<DateTime> => "deadline_time", opt_time, default;
        /// SLA data; the document does not show its elements, so they are kept as JSON.
        pub sla: Vec<Value> => "sla", plain, default;
        /// Requesters.
        pub client: Vec<User> => "client", plain, default;
        /// Custom fields; the document does not show their shape, so they are kept as JSON.
        pub fields: Vec<Value> => "fields", plain, default;
        /// Watchers.
        pub watched: Vec<User> => "watched", plain, default;
        /// Comments, oldest first.
        pub comments: Vec<Comment> => "comments", plain, default;
        /// Who created the ticket.
        pub author: User => "author", plain, required;
        /// Name of the group (department) the ticket is for.
        pub target_group: String => "target_group", plain, required;
        /// Executors.
        pub target_user: Vec<User> => "target_user", plain, default;
        /// History, oldest first.
        pub logs: Vec<LogEntry> => "logs", plain, default;
    }
}

impl Ticket {
    /// A ticket with this code and subject, created now, normal priority, status `free`, and
    /// every other field empty.
    pub fn new(code: impl Into<String>, subject: impl Into<String>) -> Ticket {
        Ticket {
            code: code.into(),
            subject: subject.into(),
            created_at: now_local(),
            ..Ticket::default()
        }
    }

    /// The tags, split at commas and trimmed, empty ones skipped.
    pub fn tag_list(&self) -> impl Iterator<Item = &str> {
        self.tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

impl Default for Ticket {
    /// An empty ticket created at 1970-01-01 00:00:00; prefer [`Ticket::new`], which stamps
    /// the current time.
    fn default() -> Self {
        Ticket {
            code: String::new(),
            prio: Priority::Normal,
            status: Status::Free,
            text: String::new(),
            subject: String::new(),
            tags: String::new(),
            urlhash: String::new(),
            created_at: jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0),
            inspect_after_ok: false,
            individual_ok: false,
            deadline_time: None,
            sla: Vec::new(),
            client: Vec::new(),
            fields: Vec::new(),
            watched: Vec::new(),
            comments: Vec::new(),
            author: User::default(),
            target_group: String::new(),
            target_user: Vec::new(),
            logs: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// The `action` of a received event: one of the twelve, or a string this version does not
/// know (a newer sender's, or the placeholder `"action"` of the Zenlix document's example).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActionName {
    /// One of the twelve actions; `aprrove` on the wire reads as [`Action::Approve`].
    Known(Action),
    /// Any other string, kept as it came.
    Other(String),
}

impl ActionName {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            ActionName::Known(action) => action.as_str(),
            ActionName::Other(s) => s,
        }
    }

    /// The action, when it is one of the twelve.
    pub fn action(&self) -> Option<Action> {
        match self {
            ActionName::Known(action) => Some(*action),
            ActionName::Other(_) => None,
        }
    }
}

impl From<Action> for ActionName {
    fn from(action: Action) -> Self {
        ActionName::Known(action)
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for ActionName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl crate::wire::json::WriteJson for ActionName {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        crate::wire::json::write_str(out, self.as_str());
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(deserializer)?;
        Ok(match Action::from_wire(&s) {
            Some(action) => ActionName::Known(action),
            None => ActionName::Other(s.into_owned()),
        })
    }
}

wire_struct! {
    /// A whole webhook body, owned: what a receiver parses, or what a helpdesk builds when it
    /// sets `description` or `dt` itself (see [`emit_webhook`](crate::emit_webhook())).
    ///
    /// ```
    /// use deskhook::{Action, Event, Ticket, User};
    ///
    /// let user = User::new("anna@example.com", "Anna Petrova").with_lang("ru");
    /// let event = Event::new(Action::Lock, Ticket::new("E3XK", "Printer jammed"), user);
    /// assert_eq!(event.description, "Заявка заблокирована");
    ///
    /// let body = event.to_json().unwrap();
    /// let back = Event::from_json(&body).unwrap();
    /// assert_eq!(back, event);
    /// ```
    ///
    /// # The wire format
    ///
    /// Every event has exactly the shape of the Zenlix document's example
    /// (`core/fixtures/zenlix/event.json` in the repository):
    ///
    /// - Keys in the documented order; compact JSON on the wire.
    /// - `inspect_after_ok` and `individual_ok` are the strings `"true"` and `"false"` (Zenlix
    ///   keeps them in a MySQL enum); JSON booleans are accepted on input.
    /// - Times are `YYYY-MM-DD HH:MM:SS`, the helpdesk's local time with no zone ([`DateTime`]).
    ///   `deadline_time` is `null` when absent; on input MySQL's zero date and `""` mean absent.
    /// - `description` defaults to the action's label in the initial user's `profile.lang`
    ///   (Russian for `ru`, English otherwise); `dt` defaults to now.
    /// - Keys the model does not know are kept in `extra`, in their order, and written back after
    ///   the known ones; `sla` and `fields`, whose elements the document does not show, are JSON
    ///   values. Unknown `prio`, `status` and log-action strings are kept as `Other(..)`, an
    ///   unknown top-level `action` as [`ActionName::Other`].
    /// - [`Event::from_json`] errors name the key and the position: `invalid event at
    ///   ticket.logs[3].dt: invalid time 'yesterday': expected YYYY-MM-DD HH:MM:SS … at line 1
    ///   column 5210`.
    ///
    /// # Actions
    ///
    /// | Wire string | English label | Russian label |
    /// |---|---|---|
    /// | `create` | Ticket created | Заявка создана |
    /// | `refer` | Ticket forwarded | Заявка переадресована |
    /// | `lock` | Ticket locked | Заявка заблокирована |
    /// | `unlock` | Ticket unlocked | Заявка разблокирована |
    /// | `ok` | Ticket completed | Заявка выполнена |
    /// | `unok` | Ticket not completed | Заявка не выполнена |
    /// | `waitok` | Ticket awaiting review | Заявка ожидает проверки |
    /// | `approve` | Ticket reviewed | Заявка проверена |
    /// | `delete` | Ticket deleted | Заявка удалена |
    /// | `restore` | Ticket restored | Заявка восстановлена |
    /// | `comment` | Ticket commented | Заявка прокомментирована |
    /// | `edit` | Ticket edited | Заявка отредактирована |
    ///
    /// Parsing an [`Action`] from text (`"Create".parse()`, a setting) accepts any ASCII case
    /// and `aprrove` (Zenlix's spelling in its notification settings) for `approve`; a bad
    /// name gets a suggestion: `unknown action 'aprove' (did you mean 'approve'?)`,
    /// `unknown action 'completed' (did you mean 'ok'?)`. A body's `action` is read as
    /// Zenlix writes it, in lowercase: any other name, `Create` too, is kept as
    /// [`ActionName::Other`] and written back as it came.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Event, expecting "a Zenlix event object {ticket, initial_user, action, description, dt}" {
        /// The ticket after the action.
        pub ticket: Ticket => "ticket", plain, required;
        /// Who performed the action.
        pub initial_user: User => "initial_user", plain, required;
        /// Which action fired the webhook.
        pub action: ActionName => "action", plain, required;
        /// Human-readable text of the action; by default the action's label in the initial
        /// user's language.
        pub description: String => "description", plain, required;
        /// When the event was generated, local time.
        pub dt: DateTime => "dt", time, required;
    }
}

impl Event {
    /// An event for `action` with the default description (the label in the initial user's
    /// language) and `dt` now.
    pub fn new(action: Action, ticket: Ticket, initial_user: User) -> Event {
        Event {
            description: action.label(&initial_user.profile.lang).to_owned(),
            ticket,
            initial_user,
            action: ActionName::Known(action),
            dt: now_local(),
            extra: Map::new(),
        }
    }

    /// Parses a body.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEvent`] with the path of the offending key (`ticket.logs[3].dt`) and
    /// the line and column, for malformed JSON, missing required keys and values of the wrong
    /// type.
    pub fn from_json(json: &[u8]) -> Result<Event, Error> {
        // A valid body is read without tracking paths (about a third faster); only a body
        // that fails is read again with them, for the message.
        if let Ok(event) = serde_json::from_slice(json) {
            return Ok(event);
        }
        let mut de = serde_json::Deserializer::from_slice(json);
        let event: Event =
            serde_path_to_error::deserialize(&mut de).map_err(Error::invalid_event)?;
        de.end().map_err(|e| Error::InvalidEvent {
            path: ".".to_owned(),
            message: e.to_string(),
        })?;
        Ok(event)
    }

    /// Serializes the body exactly as it is sent: compact JSON, documented key order, then
    /// any unknown keys.
    ///
    /// # Errors
    ///
    /// When an `extra` map (the event's, the ticket's, the user's…) has a key of its own
    /// fields: it would be written twice.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(Error::Serialize)
    }

    /// This event with another action and that action's default description.
    #[must_use]
    pub fn with_action(mut self, action: Action) -> Event {
        self.action = ActionName::Known(action);
        self.description = action.label(&self.initial_user.profile.lang).to_owned();
        self
    }

    /// A borrowed view for emitting, or `None` when the action is not one of the twelve.
    pub fn as_event_ref(&self) -> Option<EventRef<'_>> {
        Some(EventRef {
            action: self.action.action()?,
            ticket: &self.ticket,
            initial_user: &self.initial_user,
            description: Cow::Borrowed(&self.description),
            dt: self.dt,
            extra: Some(&self.extra).filter(|m| !m.is_empty()),
        })
    }
}

/// An event that borrows its ticket and initial user: what [`emit`](crate::emit) builds and
/// what a sink reads as the typed event.
///
/// It serializes to the same bytes as the equivalent [`Event`].
#[derive(Clone, Debug)]
pub struct EventRef<'a> {
    action: Action,
    ticket: &'a Ticket,
    initial_user: &'a User,
    description: Cow<'a, str>,
    dt: DateTime,
    extra: Option<&'a Map<String, Value>>,
}

impl<'a> EventRef<'a> {
    /// An event for `action` with the default description and `dt` now.
    pub fn new(action: Action, ticket: &'a Ticket, initial_user: &'a User) -> EventRef<'a> {
        EventRef {
            action,
            ticket,
            initial_user,
            description: Cow::Borrowed(action.label(&initial_user.profile.lang)),
            dt: now_local(),
            extra: None,
        }
    }

    /// This event with another description. Defaults to the action's label in the initial
    /// user's language.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<Cow<'a, str>>) -> EventRef<'a> {
        self.description = description.into();
        self
    }

    /// This event with another time. Defaults to now, local.
    #[must_use]
    pub fn with_dt(mut self, dt: DateTime) -> EventRef<'a> {
        self.dt = dt;
        self
    }

    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The ticket.
    pub fn ticket(&self) -> &'a Ticket {
        self.ticket
    }

    /// The user who performed the action.
    pub fn initial_user(&self) -> &'a User {
        self.initial_user
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// When the event was generated.
    pub fn dt(&self) -> DateTime {
        self.dt
    }

    /// An owned copy; this clones the ticket and the user.
    pub fn to_event(&self) -> Event {
        Event {
            ticket: self.ticket.clone(),
            initial_user: self.initial_user.clone(),
            action: ActionName::Known(self.action),
            description: self.description.clone().into_owned(),
            dt: self.dt,
            extra: self.extra.cloned().unwrap_or_default(),
        }
    }

    /// Serializes the body exactly as it is sent.
    ///
    /// # Errors
    ///
    /// As [`Event::to_json`].
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(Error::Serialize)
    }
}

/// The keys of a Zenlix event's own fields, which its `extra` must not repeat.
const EVENT_KEYS: [&str; 5] = ["ticket", "initial_user", "action", "description", "dt"];

impl Serialize for EventRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Some(extra) = self.extra {
            crate::wire::check_extra::<S::Error>("Event", &EVENT_KEYS, extra)?;
        }
        let extra = self.extra.into_iter().flatten();
        let mut map = serializer.serialize_map(Some(5 + self.extra.map_or(0, Map::len)))?;
        map.serialize_entry("ticket", self.ticket)?;
        map.serialize_entry("initial_user", self.initial_user)?;
        map.serialize_entry("action", self.action.as_str())?;
        map.serialize_entry("description", &*self.description)?;
        map.serialize_entry("dt", &crate::wire::time::Ser(&self.dt))?;
        for (key, value) in extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl crate::wire::json::WriteJson for EventRef<'_> {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        use crate::wire::json::{close_with_extra, write_str, write_time};
        let empty = Map::new();
        let extra = self.extra.unwrap_or(&empty);
        crate::wire::check_extra::<serde_json::Error>("Event", &EVENT_KEYS, extra)?;
        out.extend_from_slice(b"{\"ticket\":");
        self.ticket.write_json(out)?;
        out.extend_from_slice(b",\"initial_user\":");
        self.initial_user.write_json(out)?;
        out.extend_from_slice(b",\"action\":");
        write_str(out, self.action.as_str());
        out.extend_from_slice(b",\"description\":");
        write_str(out, &self.description);
        out.extend_from_slice(b",\"dt\":");
        write_time(out, self.dt);
        close_with_extra(out, false, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_event_ref_serialize_alike() {
        let user = User::new("a@example.com", "A").with_lang("ru");
        let ticket = Ticket::new("T1", "Subject");
        let event = Event::new(Action::Edit, ticket.clone(), user.clone());
        let by_ref = EventRef::new(Action::Edit, &ticket, &user).with_dt(event.dt);
        assert_eq!(event.to_json().unwrap(), by_ref.to_json().unwrap());
        assert_eq!(by_ref.to_event(), event);
        assert_eq!(
            event.as_event_ref().unwrap().to_json().unwrap(),
            event.to_json().unwrap()
        );
    }

    #[test]
    fn an_extra_key_that_is_a_field_is_refused_not_written_twice() {
        let user = User::new("a@example.com", "A");
        let mut ticket = Ticket::new("T1", "Subject");
        ticket
            .extra
            .insert("subject".into(), serde_json::json!("other"));
        let event = Event::new(Action::Create, ticket.clone(), user.clone());
        let err = event.to_json().unwrap_err().to_string();
        assert!(
            err.contains("Ticket.extra has the key `subject`") && err.contains("set the field"),
            "{err}"
        );
        // What an emit serializes: the same error, from the model's own writer.
        let emitted = crate::sink::Emitted::new(EventRef::new(Action::Create, &ticket, &user));
        let err = emitted.err().unwrap().to_string();
        assert!(err.contains("Ticket.extra has the key `subject`"), "{err}");
        // The event's own extra map, on the path `emit` takes (EventRef) as on Event's.
        ticket.extra.clear();
        let mut event = Event::new(Action::Create, ticket.clone(), user.clone());
        event
            .extra
            .insert("action".into(), serde_json::json!("delete"));
        let by_ref = event.as_event_ref().unwrap();
        let err = by_ref.to_json().unwrap_err().to_string();
        assert!(err.contains("Event.extra has the key `action`"), "{err}");
        let err = crate::sink::Emitted::new(by_ref).err().unwrap().to_string();
        assert!(err.contains("Event.extra has the key `action`"), "{err}");
        // Another key is kept, after the fields.
        ticket.extra.insert("sla_id".into(), serde_json::json!(7));
        let body = Event::new(Action::Create, ticket, user).to_json().unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(r#""sla_id":7"#), "{text}");
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        assert_eq!(Status::from_wire("frozen"), Status::Other("frozen".into()));
        assert_eq!(Status::from_wire("frozen").as_str(), "frozen");
        assert_eq!(Priority::from_wire("high"), Priority::High);
        assert_eq!(LogAction::from(Action::Approve), LogAction::Approve);
    }

    #[test]
    fn tags_split_at_commas() {
        let ticket = Ticket {
            tags: "from_mail, vip,,".into(),
            ..Ticket::new("T", "S")
        };
        assert_eq!(ticket.tag_list().collect::<Vec<_>>(), ["from_mail", "vip"]);
    }

    #[test]
    fn missing_and_mistyped_keys_are_named() {
        let err = Event::from_json(br#"{"ticket": {"code": 5}}"#).unwrap_err();
        assert!(err.to_string().starts_with("invalid event at ticket.code: invalid type: integer `5`, expected a string at line 1 column 21"), "{err}");
        let err =
            Event::from_json(br#"{"initial_user": {"email": "a", "profile": {"full_name": "A"}}}"#)
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event at initial_user.profile: missing field `lang`"),
            "{err}"
        );
        let err = Event::from_json(br#"{"ticket": "#).unwrap_err();
        assert!(err.to_string().contains("EOF"), "{err}");
        // Where no key is at fault, no meaningless "at ?".
        let err = Event::from_json(b"{").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event: EOF while parsing"),
            "{err}"
        );
        let trailing = format!("{} x", crate::sample::REFERENCE_JSON);
        let err = Event::from_json(trailing.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event: trailing characters"),
            "{err}"
        );
    }
}
