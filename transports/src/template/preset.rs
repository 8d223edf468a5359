//! The presets: chat tools' incoming webhooks, each a template over the summary every
//! format has (`label`, `subject`, `text`, `author`, `ticket`).
//!
//! Each is written twice: as a template (`presets/*.json.j2`: what users read, copy and
//! adapt, and what `deskhook render` shows) and as Rust ([`native`]), which the delivery
//! engine runs. The Rust writes exactly what the template renders, compacted — the tests
//! compare the two, byte for byte, for every event of every format in both languages — at a
//! fraction of the cost: no interpreter, no second parse to check the JSON, no compaction.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::output::{made_inert as inert, truncated as truncate, with_entities as entities};
use crate::error::Error;

/// A preset: its name, what it posts to, and its template.
#[derive(Debug)]
#[non_exhaustive]
pub struct Preset {
    /// The name given as `template = "…"`.
    pub name: &'static str,
    /// What it posts to, and how to get the URL.
    pub about: &'static str,
    /// The template.
    pub source: &'static str,
    /// The variables it needs in `template_vars`, with what each is.
    pub required: &'static [(&'static str, &'static str)],
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "slack",
        about: "Slack incoming webhook (https://hooks.slack.com/services/…): a message with \
                Block Kit blocks",
        source: include_str!("presets/slack.json.j2"),
        required: &[],
    },
    Preset {
        name: "teams",
        about: "Microsoft Teams Workflows webhook (\"Post to a channel when a webhook request \
                is received\"): an Adaptive Card",
        source: include_str!("presets/teams.json.j2"),
        required: &[],
    },
    Preset {
        name: "mattermost",
        about: "Mattermost incoming webhook (https://…/hooks/…): a Markdown message",
        source: include_str!("presets/mattermost.json.j2"),
        required: &[],
    },
    Preset {
        name: "discord",
        about: "Discord channel webhook (https://discord.com/api/webhooks/…): a message with \
                an embed, mentions off",
        source: include_str!("presets/discord.json.j2"),
        required: &[],
    },
    Preset {
        name: "telegram",
        about: "Telegram Bot API sendMessage (https://api.telegram.org/bot<token>/sendMessage) \
                to the chat in template_vars.chat_id",
        source: include_str!("presets/telegram.json.j2"),
        required: &[(
            "chat_id",
            "the chat to post to: its numeric id, such as -1001234567890, or @channelname",
        )],
    },
];

/// The preset of that name (any ASCII case).
pub(crate) fn find(name: &str) -> Result<&'static Preset, Error> {
    let wanted = name.trim();
    if let Some(preset) = PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(wanted)) {
        return Ok(preset);
    }
    let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    let closest = names
        .iter()
        .map(|n| (strsim::levenshtein(n, &wanted.to_ascii_lowercase()), *n))
        .min()
        .filter(|(distance, _)| *distance <= 2);
    // Shortened and escaped: it may be a template's whole text without its tags.
    let shown = deskhook::shown_in_log(wanted);
    Err(Error::Template(match closest {
        Some((_, near)) => format!(
            "unknown preset '{shown}' (did you mean '{near}'?); the presets are {}",
            names.join(", ")
        ),
        None => format!(
            "unknown preset '{shown}'; the presets are {} (an inline template must contain \
             {{{{ or {{%)",
            names.join(", ")
        ),
    }))
}

/// What a preset prints: the names of the [module docs](super) it reads.
pub(crate) struct Fields<'a> {
    pub(crate) event_type: &'a str,
    /// `ru` or `en`.
    pub(crate) lang: &'a str,
    pub(crate) label: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) text: &'a str,
    pub(crate) author: &'a str,
    pub(crate) ticket: &'a str,
    pub(crate) vars: &'a BTreeMap<String, String>,
}

/// A preset written in Rust: appends its compact JSON body to the string.
pub(crate) type Native = fn(&Fields<'_>, &mut String);

/// The preset of that name in Rust.
pub(crate) fn native(name: &str) -> Option<Native> {
    Some(match name {
        "slack" => slack,
        "teams" => teams,
        "mattermost" => mattermost,
        "discord" => discord,
        "telegram" => telegram,
        _ => return None,
    })
}

/// `value` as the inside of a JSON string, as the templates print every value.
fn esc(out: &mut String, value: &str) {
    // Writing to a String cannot fail.
    let _ = super::output::write_json_string_content(out, value);
}

/// A value printed without a filter.
fn plain(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

/// `{{ event_type }}{% if ticket %} · {{ ticket }}{% endif %}{% if author %} · {{
/// author|truncate(100) }}{% endif %}`, the line most presets end with (`mark` is the
/// filter Slack puts on the ticket and the author).
fn footer(out: &mut String, f: &Fields<'_>, mark: fn(&str) -> Cow<'_, str>) {
    esc(out, f.event_type);
    if !f.ticket.is_empty() {
        out.push_str(" · ");
        esc(out, &mark(f.ticket));
    }
    if !f.author.is_empty() {
        out.push_str(" · ");
        esc(out, &truncate(&mark(f.author), 100));
    }
}

/// `presets/slack.json.j2`.
fn slack(f: &Fields<'_>, out: &mut String) {
    out.push_str(r#"{"text":""#);
    esc(out, f.label);
    if !f.subject.is_empty() {
        out.push_str(": ");
        esc(out, &truncate(&entities(f.subject), 150));
    }
    out.push_str(r#"","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*"#);
    esc(out, f.label);
    out.push('*');
    if !f.subject.is_empty() {
        out.push_str(r"\n");
        esc(out, &truncate(&entities(f.subject), 300));
    }
    if !f.text.is_empty() {
        out.push_str(r"\n>");
        // Quoted before it is cut: each line break adds a '>', and the section holds 3000
        // characters.
        esc(out, &truncate(&entities(f.text).replace('\n', "\n>"), 2000));
    }
    out.push_str(r#""}},{"type":"context","elements":[{"type":"mrkdwn","text":""#);
    footer(out, f, entities);
    out.push_str(r#""}]}]}"#);
}

/// `presets/teams.json.j2`.
fn teams(f: &Fields<'_>, out: &mut String) {
    let ru = f.lang == "ru";
    out.push_str(concat!(
        r#"{"type":"message","attachments":[{"#,
        r#""contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,"#,
        r#""content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","#,
        r#""type":"AdaptiveCard","version":"1.4","body":[{"type":"TextBlock","text":""#,
    ));
    esc(out, f.label);
    out.push_str(r#"","weight":"Bolder","size":"Medium","wrap":true}"#);
    // Customers' text: TextBlocks and facts render Markdown, links included.
    if !f.subject.is_empty() {
        out.push_str(r#",{"type":"TextBlock","text":""#);
        esc(out, &truncate(&inert(f.subject), 300));
        out.push_str(r#"","wrap":true}"#);
    }
    if !f.text.is_empty() {
        out.push_str(r#",{"type":"TextBlock","text":""#);
        esc(out, &truncate(&inert(f.text), 2000));
        out.push_str(r#"","wrap":true,"isSubtle":true}"#);
    }
    out.push_str(r#",{"type":"FactSet","facts":[{"title":""#);
    esc(out, if ru { "Заявка" } else { "Ticket" });
    out.push_str(r#"","value":""#);
    let ticket = inert(f.ticket);
    esc(out, if ticket.is_empty() { "—" } else { &ticket });
    out.push_str(r#""},{"title":""#);
    esc(out, if ru { "Событие" } else { "Event" });
    out.push_str(r#"","value":""#);
    esc(out, f.event_type);
    out.push_str(r#""}"#);
    if !f.author.is_empty() {
        out.push_str(r#",{"title":""#);
        esc(out, if ru { "Автор" } else { "By" });
        out.push_str(r#"","value":""#);
        esc(out, &truncate(&inert(f.author), 100));
        out.push_str(r#""}"#);
    }
    out.push_str("]}]}}]}");
}

/// `presets/mattermost.json.j2`.
fn mattermost(f: &Fields<'_>, out: &mut String) {
    out.push_str("{\"text\":\"#### ");
    esc(out, f.label);
    // Customers' text: no @-mention notifies, no image loads.
    if !f.subject.is_empty() {
        out.push_str(": ");
        esc(out, &truncate(&inert(f.subject), 300));
    }
    if !f.text.is_empty() {
        out.push_str(r"\n");
        esc(out, &truncate(&inert(f.text), 3000));
    }
    out.push_str(r"\n`");
    esc(out, f.event_type);
    out.push('`');
    // The footer without its event type, which Mattermost prints as code.
    footer(
        out,
        &Fields {
            event_type: "",
            ..*f
        },
        inert,
    );
    out.push_str(r#""}"#);
}

/// `presets/discord.json.j2`.
fn discord(f: &Fields<'_>, out: &mut String) {
    out.push_str(r#"{"content":""#);
    esc(out, f.label);
    out.push_str(r#"","embeds":[{"title":""#);
    let title = if f.subject.is_empty() {
        f.label
    } else {
        f.subject
    };
    // Customers' text: an embed's description renders Markdown, masked links included.
    esc(out, &truncate(&inert(title), 250));
    out.push_str(r#"","description":""#);
    if f.text.is_empty() {
        esc(out, f.label);
    } else {
        esc(out, &truncate(&inert(f.text), 3500));
    }
    out.push_str(r#"","footer":{"text":""#);
    footer(out, f, plain);
    out.push_str(r#""}}],"allowed_mentions":{"parse":[]}}"#);
}

/// `presets/telegram.json.j2` (its `chat_id` is checked before).
fn telegram(f: &Fields<'_>, out: &mut String) {
    out.push_str(r#"{"chat_id":""#);
    esc(out, f.vars.get("chat_id").map_or("", String::as_str));
    out.push_str(r#"","text":""#);
    esc(out, f.label);
    // Customers' text: plain, but Telegram still finds @-mentions in it, and notifies.
    if !f.subject.is_empty() {
        out.push_str(r"\n");
        esc(out, &truncate(&inert(f.subject), 300));
    }
    if !f.text.is_empty() {
        out.push_str(r"\n\n");
        esc(out, &truncate(&inert(f.text), 3000));
    }
    out.push_str(r"\n\n");
    footer(out, f, inert);
    out.push_str(r#"","link_preview_options":{"is_disabled":true}}"#);
}
