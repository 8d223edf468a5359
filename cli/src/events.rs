//! The events `send` and `publish` make from their flags: Zenlix events, one per action, or
//! one event of another format from a file, as `render` prints them.

use std::path::PathBuf;

use clap::ArgGroup;
use deskhook::{Action, Dispatcher, EventType};

/// The flags that say which events to make.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("actions").args(["action", "all_actions"])))]
pub(crate) struct EventArgs {
    /// The body's format. usedesk and iqchannels need --event and take no --action,
    /// --all-actions or --description: the file holds the whole event.
    #[arg(long, value_enum, default_value_t = crate::render::FormatArg::Zenlix)]
    format: crate::render::FormatArg,
    /// Send the events as this tenant's: they go to the endpoints of this tenant and to those
    /// of none. Without it the events are of no tenant, and reach only endpoints of none.
    #[arg(long, value_name = "TENANT", value_parser = parse_tenant)]
    pub(crate) tenant: Option<String>,
    /// The action to send: create, refer, lock, unlock, ok, unok, waitok, approve, delete,
    /// restore, comment or edit. Repeat it or separate with commas for several, sent in the
    /// order given. This or --all-actions is required for zenlix.
    #[arg(long, value_name = "ACTION", value_delimiter = ',', value_parser = parse_action)]
    action: Vec<Action>,
    /// Send all twelve actions, in the order above.
    #[arg(long)]
    all_actions: bool,
    /// A full Zenlix event (JSON) whose action and description are replaced (without it, the
    /// Zenlix document's example, ticket E3XK); with --format usedesk or iqchannels, a webhook
    /// body of that format. '-' reads it from standard input.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
    /// The description to use instead of the action's label in the initial user's language.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

impl EventArgs {
    /// Exits with `subcommand`'s usage (status 2, as clap does) when a flag does not go
    /// with --format, or a Zenlix event has no action: checked first, as clap's own are.
    pub(crate) fn check(&self, subcommand: &str) {
        crate::render::check_format_flags(
            subcommand,
            self.format,
            self.event.as_deref(),
            self.all_actions || !self.action.is_empty(),
            self.description.is_some(),
            "--action <ACTION> or --all-actions",
        );
    }

    /// The events the flags say ([`check`](EventArgs::check)ed before).
    ///
    /// # Errors
    ///
    /// When the --event file cannot be read or is not an event of its format.
    pub(crate) fn events(&self) -> Result<Events, String> {
        Ok(match (self.format, &self.event) {
            (crate::render::FormatArg::Zenlix, _) | (_, None) => {
                let actions = if self.all_actions {
                    Action::ALL.to_vec()
                } else {
                    self.action.clone()
                };
                let base = crate::render::load_event(self.event.as_deref())?;
                Events::Zenlix(
                    actions
                        .iter()
                        .map(|a| crate::render::event_for(&base, *a, self.description.as_deref()))
                        .collect(),
                )
            }
            (format, Some(path)) => {
                Events::Vendor(Box::new(crate::render::load_vendor_event(format, path)?))
            }
        })
    }
}

/// What `send` and `publish` send: Zenlix events, one per action, or one event of another
/// format.
#[derive(Debug)]
pub(crate) enum Events {
    Zenlix(Vec<deskhook::Event>),
    // Boxed: a vendor event is some 700 bytes, a list of Zenlix events 24.
    Vendor(Box<crate::render::VendorEvent>),
}

impl Events {
    /// The type of each event, in order.
    pub(crate) fn event_types(&self) -> Vec<EventType> {
        match self {
            Events::Zenlix(events) => events
                .iter()
                .filter_map(|e| e.action.action().map(EventType::Zenlix))
                .collect(),
            Events::Vendor(event) => event.event_type().into_iter().collect(),
        }
    }

    /// Emits them to `dispatcher`, as `tenant`'s if given.
    pub(crate) fn emit(&self, dispatcher: &Dispatcher, tenant: Option<&str>) {
        match self {
            Events::Zenlix(events) => events
                .iter()
                .for_each(|e| crate::render::emit_as(dispatcher, tenant, e)),
            Events::Vendor(event) => event.emit(dispatcher, tenant),
        }
    }
}

/// An action name; `all` points to --all-actions.
fn parse_action(s: &str) -> Result<Action, String> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Err("'all' is not an action here; use --all-actions to send all twelve".into());
    }
    s.parse::<Action>().map_err(|e| e.to_string())
}

/// A `--tenant`: one the engine takes (not empty, short, no control character).
pub(crate) fn parse_tenant(text: &str) -> Result<String, String> {
    deskhook::dispatch::check_tenant(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}
