//! `deskhook render`: print the exact body an event would have.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use deskhook::{Action, Event};

/// Print the exact wire body of an event, one line per body.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The action (create, refer, lock, unlock, ok, unok, waitok, approve, delete, restore,
    /// comment, edit), or `all` for one body per action.
    #[arg(long, value_name = "ACTION")]
    action: Actions,
    /// A full Zenlix event (JSON) whose action and description are replaced. Without it, the
    /// Zenlix document's example is used.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
    /// The description to use instead of the action's label in the initial user's language.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Indent the JSON for reading (the wire body is compact).
    #[arg(long)]
    pretty: bool,
}

#[derive(Clone, Debug)]
struct Actions(Vec<Action>);

impl FromStr for Actions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("all") {
            return Ok(Actions(Action::ALL.to_vec()));
        }
        s.parse::<Action>()
            .map(|a| Actions(vec![a]))
            .map_err(|e| format!("{e}; or 'all' for every action"))
    }
}

/// The event to render or send: the full Zenlix event in `path`, or without it the Zenlix
/// document's example.
pub(crate) fn load_event(path: Option<&Path>) -> Result<Event, String> {
    match path {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read event file '{}': {e}", path.display()))?;
            // Editors on Windows save a byte-order mark; JSON has no place for one.
            let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            if json.trim_ascii().is_empty() {
                return Err(format!(
                    "event file '{}' is empty (it should hold a Zenlix event, like `deskhook \
                     render --action create --pretty` prints)",
                    path.display()
                ));
            }
            Event::from_json(json).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => Ok(deskhook::sample::event(Action::Create)),
    }
}

/// `base` for `action`: its `action` replaced and its `description` set to `description`, or
/// without it to the action's label in the initial user's language. Everything else (`dt`,
/// unknown keys) is kept, so `render` prints the exact body that `send` sends.
pub(crate) fn event_for(base: &Event, action: Action, description: Option<&str>) -> Event {
    let mut event = base.clone().with_action(action);
    if let Some(description) = description {
        description.clone_into(&mut event.description);
    }
    event
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let base = load_event(args.event.as_deref())?;
    let mut out = std::io::stdout().lock();
    for action in args.action.0 {
        let event = event_for(&base, action, args.description.as_deref());
        let body = if args.pretty {
            serde_json::to_vec_pretty(&event).map_err(|e| e.to_string())?
        } else {
            event.to_json().map_err(|e| e.to_string())?
        };
        out.write_all(&body)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(crate::stdout_error)?;
    }
    out.flush().map_err(crate::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}
