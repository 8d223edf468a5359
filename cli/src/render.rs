//! `deskhook render`: print the exact body an event would have.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use deskhook::event::WebhookEvent;
use deskhook::formats::{iqchannels, usedesk};
use deskhook::sink::EventId;
use deskhook::{Action, Dispatcher, Event, EventType};
use deskhook_transports::template::Template;

/// Print the exact wire body of an event, one line per body (several with --pretty).
///
/// Zenlix (the default --format): the event of --event (or the document's example) for each
/// --action. Usedesk and iQChannels: the body in --event, parsed as that format, as deskhook
/// sends it (compact, keys in the order they came).
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
A first command: deskhook render --action all --event core/fixtures/zenlix/event.json

Exit status: 0 when every body was printed; 2 for a bad flag, such as an unknown action
(with a suggestion: unknown action 'aprove' (did you mean 'approve'?)), --action with
--format usedesk, an unknown preset or a template variable missing; 1 when the --event or
--template-file file cannot be read or parsed (naming the file, the key and the
position), or a body cannot be rendered.")]
pub(crate) struct Args {
    /// The body's format. usedesk and iqchannels need --event and take no --action or
    /// --description: the file holds the whole event.
    #[arg(long, value_enum, default_value_t = FormatArg::Zenlix)]
    format: FormatArg,
    /// The action (create, refer, lock, unlock, ok, unok, waitok, approve, delete, restore,
    /// comment, edit), or `all` for one body per action. Required for zenlix.
    #[arg(long, value_name = "ACTION")]
    action: Option<Actions>,
    /// A full Zenlix event (JSON) whose action and description are replaced (without it, the
    /// Zenlix document's example is used); with --format usedesk or iqchannels, a webhook
    /// body of that format. '-' reads it from standard input.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
    /// The description to use instead of the action's label in the initial user's language.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Indent the JSON for reading (the wire body is compact).
    #[arg(long)]
    pretty: bool,
    /// The tenant a payload template sees (`{{ tenant }}`), as `send --tenant` sends it. The
    /// format's own body has no tenant.
    #[arg(long, value_name = "TENANT", value_parser = crate::events::parse_tenant)]
    tenant: Option<String>,
    /// Say on standard error how the template renders (a preset's code, without minijinja,
    /// or through minijinja with or without a check of its output) and what would make it
    /// faster.
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    template: TemplateArgs,
}

/// The payload template flags `render` and `send` share.
#[derive(Debug, clap::Args)]
pub(crate) struct TemplateArgs {
    /// Render the body with a payload template: a preset (slack, teams, mattermost, discord,
    /// telegram) or a template's text, as `template = "…"` in deskhook.toml.
    #[arg(long, value_name = "PRESET|TEXT", conflicts_with = "template_file")]
    template: Option<String>,
    /// Render the body with the payload template in FILE.
    #[arg(long, value_name = "FILE")]
    template_file: Option<PathBuf>,
    /// A template variable, NAME=VALUE (the telegram preset's chat_id; lang). Repeat for
    /// several.
    #[arg(long, value_name = "NAME=VALUE")]
    template_var: Vec<String>,
    /// The rendered body's Content-Type (application/json by default; JSON escaping and the
    /// JSON check apply only to JSON).
    #[arg(long, value_name = "TYPE")]
    template_content_type: Option<String>,
}

/// A `--template-var`; the error does not quote it (a value may be a token).
fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err("is not NAME=VALUE (such as chat_id=-1001234567890)".to_owned()),
    }
}

impl TemplateArgs {
    /// Whether any template flag was given.
    pub(crate) fn given(&self) -> bool {
        self.template.is_some()
            || self.template_file.is_some()
            || !self.template_var.is_empty()
            || self.template_content_type.is_some()
    }

    /// The template these flags make, if they name one; its missing variables refused. A
    /// usage error shows the usage of `subcommand`, the one these flags were given to.
    pub(crate) fn template(&self, subcommand: &str) -> Result<Option<Template>, String> {
        let (template, flag) = match (&self.template, &self.template_file) {
            (Some(text), _) => (Template::named_or_inline(text), "--template"),
            (None, Some(path)) => (Template::file(path), "--template-file"),
            (None, None)
                if self.template_var.is_empty() && self.template_content_type.is_none() =>
            {
                return Ok(None);
            }
            (None, None) => crate::usage_error(
                subcommand,
                "--template-var and --template-content-type need --template or \
                 --template-file",
            ),
        };
        // The text of --template (a preset's name, or a template) is the flag's value; a
        // file's content is the file's, as the --event file's is.
        let mut template = match template {
            Ok(template) => template,
            Err(e) if self.template.is_some() => {
                crate::usage_error(subcommand, format!("{flag}: {e}"))
            }
            Err(e) => return Err(format!("{flag}: {e}")),
        };
        if let Some(content_type) = &self.template_content_type {
            template = template.content_type(content_type).unwrap_or_else(|e| {
                crate::usage_error(subcommand, format!("--template-content-type: {e}"))
            });
        }
        let vars = crate::parse_each("--template-var", &self.template_var, parse_var)
            .unwrap_or_else(|e| crate::usage_error(subcommand, e));
        for (name, value) in vars {
            template = template.var(name, value);
        }
        if let Err(e) = template.check_vars() {
            crate::usage_error(subcommand, format!("{e} (give it with --template-var)"));
        }
        Ok(Some(template))
    }
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

/// A `--format` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FormatArg {
    /// Zenlix, the format deskhook sends by default.
    Zenlix,
    /// Usedesk.
    Usedesk,
    /// iQChannels.
    Iqchannels,
}

impl FormatArg {
    fn name(self) -> &'static str {
        match self {
            FormatArg::Zenlix => "zenlix",
            FormatArg::Usedesk => "usedesk",
            FormatArg::Iqchannels => "iqchannels",
        }
    }
}

/// A whole event of another format than Zenlix, read from a file.
#[derive(Debug)]
pub(crate) enum VendorEvent {
    Usedesk(usedesk::Event),
    IqChannels(iqchannels::Event),
}

impl VendorEvent {
    /// Its type (checked when loading: it has one).
    pub(crate) fn event_type(&self) -> Option<EventType> {
        match self {
            VendorEvent::Usedesk(event) => WebhookEvent::event_type(event),
            VendorEvent::IqChannels(event) => WebhookEvent::event_type(event),
        }
    }

    /// The body as deskhook sends it, or indented.
    fn body(&self, pretty: bool) -> Result<Vec<u8>, String> {
        match (self, pretty) {
            (VendorEvent::Usedesk(event), false) => event.to_json().map_err(|e| e.to_string()),
            (VendorEvent::IqChannels(event), false) => event.to_json().map_err(|e| e.to_string()),
            (VendorEvent::Usedesk(event), true) => {
                serde_json::to_vec_pretty(event).map_err(|e| e.to_string())
            }
            (VendorEvent::IqChannels(event), true) => {
                serde_json::to_vec_pretty(event).map_err(|e| e.to_string())
            }
        }
    }

    /// Emits it to `dispatcher`, as `tenant`'s if given.
    pub(crate) fn emit(&self, dispatcher: &Dispatcher, tenant: Option<&str>) {
        match self {
            VendorEvent::Usedesk(event) => emit_as(dispatcher, tenant, event),
            VendorEvent::IqChannels(event) => emit_as(dispatcher, tenant, event),
        }
    }
}

/// Emits `event` to `dispatcher`, as `tenant`'s if given.
pub(crate) fn emit_as<E: deskhook::event::WebhookEvent>(
    dispatcher: &Dispatcher,
    tenant: Option<&str>,
    event: &E,
) {
    match tenant {
        Some(tenant) => dispatcher.for_tenant(tenant).emit_webhook(event),
        None => dispatcher.emit_webhook(event),
    }
}

/// The checks `render` and `send` share: a Usedesk or iQChannels event comes whole from
/// --event, so the Zenlix flags make no sense with it; a Zenlix event needs actions.
/// Violations exit 2, like clap's own, with the usage of `subcommand`.
pub(crate) fn check_format_flags(
    subcommand: &str,
    format: FormatArg,
    event: Option<&Path>,
    has_actions: bool,
    description: bool,
    actions_flag: &str,
) {
    let name = format.name();
    match format {
        FormatArg::Zenlix if !has_actions => crate::usage_error(
            subcommand,
            format!("the following required arguments were not provided:\n  {actions_flag}"),
        ),
        FormatArg::Zenlix => {}
        _ if event.is_none() => crate::usage_error(
            subcommand,
            format!("--format {name} needs --event FILE, a {name} webhook body"),
        ),
        _ if has_actions => crate::usage_error(
            subcommand,
            format!(
                "{actions_flag} is for zenlix events; a {name} event's type is in its --event file"
            ),
        ),
        _ if description => crate::usage_error(
            subcommand,
            format!(
                "--description is for zenlix events; a {name} event is sent as its --event file \
                 has it"
            ),
        ),
        _ => {}
    }
}

/// Reads an event file: its bytes without a byte-order mark, refused when empty.
fn read_event_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let bytes = crate::read_input(path, "the event")?;
    // Editors on Windows save a byte-order mark; JSON has no place for one.
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if json.trim_ascii().is_empty() {
        return Err(format!(
            "the event in {} is empty (it should hold {what})",
            crate::input_name(path)
        ));
    }
    Ok(json.to_vec())
}

/// The event to render or send: the full Zenlix event in `path`, or without it the Zenlix
/// document's example.
pub(crate) fn load_event(path: Option<&Path>) -> Result<Event, String> {
    match path {
        Some(path) => {
            let json = read_event_file(
                path,
                "a Zenlix event, like `deskhook render --action create --pretty` prints",
            )?;
            Event::from_json(&json).map_err(|e| format!("{}: {e}", crate::input_name(path)))
        }
        None => Ok(deskhook::sample::event(Action::Create)),
    }
}

/// A Usedesk or iQChannels event from `path`, refused when its type is not one deskhook can
/// send.
pub(crate) fn load_vendor_event(format: FormatArg, path: &Path) -> Result<VendorEvent, String> {
    let what = format!("a {} webhook body", format.name());
    let json = read_event_file(path, &what)?;
    let parsed = match format {
        FormatArg::Usedesk => usedesk::Event::from_json(&json).map(VendorEvent::Usedesk),
        FormatArg::Iqchannels | FormatArg::Zenlix => {
            iqchannels::Event::from_json(&json).map(VendorEvent::IqChannels)
        }
    };
    let event = parsed.map_err(|e| format!("{}: {e}", crate::input_name(path)))?;
    if event.event_type().is_some() {
        return Ok(event);
    }
    Err(match &event {
        VendorEvent::IqChannels(iq) => format!(
            "{}: ChatEvent.Type '{}' is not an iQChannels event type deskhook can send \
             (expected one of {})",
            crate::input_name(path),
            iq.chat_event.kind,
            iqchannels::EventKind::ALL.map(|k| k.as_str()).join(", ")
        ),
        VendorEvent::Usedesk(event) => format!(
            "{}: the event is under '{}', not a Usedesk event deskhook can send (expected \
             one of ticket, trigger, comment, rating)",
            crate::input_name(path),
            event.payload.wrapper()
        ),
    })
}

/// `body` rendered with `template` (for a new event id, of `tenant` if given), indented when
/// `pretty` and JSON.
fn templated(
    template: &Template,
    (event_type, tenant): (EventType, Option<&str>),
    body: &[u8],
    pretty: bool,
) -> Result<Vec<u8>, String> {
    let rendered = template
        .render(event_type, &EventId::new().to_string(), tenant, body)
        .map_err(|e| e.to_string())?;
    match serde_json::from_str::<serde_json::Value>(&rendered) {
        Ok(json) if pretty => serde_json::to_vec_pretty(&json).map_err(|e| e.to_string()),
        // As it goes on the wire: compact JSON, or the text as the template wrote it.
        _ => Ok(rendered.into_bytes()),
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
    check_format_flags(
        "render",
        args.format,
        args.event.as_deref(),
        args.action.is_some(),
        args.description.is_some(),
        "--action <ACTION>",
    );
    let template = args.template.template("render")?;
    if args.tenant.is_some() && template.is_none() {
        // The format's own body has no tenant: the flag would change nothing.
        crate::usage_error(
            "render",
            "--tenant is what a payload template sees; give --template or --template-file \
             with it"
                .to_owned(),
        )
    }
    if args.explain {
        let Some(template) = &template else {
            crate::usage_error(
                "render",
                "--explain needs --template or --template-file".to_owned(),
            )
        };
        eprintln!(
            "deskhook render: the {} renders {}.",
            template.source(),
            template.rendering().explain()
        );
    }
    if let (FormatArg::Usedesk | FormatArg::Iqchannels, Some(path)) = (args.format, &args.event) {
        let event = load_vendor_event(args.format, path)?;
        let body = match (&template, event.event_type()) {
            (Some(template), Some(event_type)) => {
                let of = (event_type, args.tenant.as_deref());
                templated(template, of, &event.body(false)?, args.pretty)?
            }
            _ => event.body(args.pretty)?,
        };
        let mut out = std::io::stdout().lock();
        out.write_all(&body)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(crate::stdout_error)?;
        return Ok(ExitCode::SUCCESS);
    }
    let base = load_event(args.event.as_deref())?;
    let mut out = std::io::stdout().lock();
    let actions = args.action.map(|a| a.0).unwrap_or_default();
    for action in actions {
        let event = event_for(&base, action, args.description.as_deref());
        let body = if let Some(template) = &template {
            let json = event.to_json().map_err(|e| e.to_string())?;
            let of = (EventType::Zenlix(action), args.tenant.as_deref());
            templated(template, of, &json, args.pretty)?
        } else if args.pretty {
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
