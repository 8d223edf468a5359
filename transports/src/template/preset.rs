//! The presets: chat tools' incoming webhooks, each a template over the summary every
//! format has (`label`, `subject`, `text`, `author`, `ticket`).

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
    Err(Error::Template(match closest {
        Some((_, near)) => format!(
            "unknown preset '{wanted}' (did you mean '{near}'?); the presets are {}",
            names.join(", ")
        ),
        None => format!(
            "unknown preset '{wanted}'; the presets are {} (an inline template must contain \
             {{{{ or {{%)",
            names.join(", ")
        ),
    }))
}
