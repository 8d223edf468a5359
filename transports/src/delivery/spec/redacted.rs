//! What pages and API responses show of a spec: no secrets, no header values, the URL cut
//! to its origin.

use serde::Serialize;

use super::{EndpointSpec, secret_hint};

/// What [`EndpointSpec::redacted`] shows for a header's value or a template variable's.
pub(crate) const HIDDEN_VALUE: &str = "…";

/// The template variables [`EndpointSpec::redacted`] shows: those the presets read, which
/// name a chat or a language. Any other may be a credential (a custom template's API key).
pub(crate) const SHOWN_VARS: [&str; 2] = ["chat_id", "lang"];

impl EndpointSpec {
    /// The spec with its secrets shown only by their last 4 characters, header values and
    /// template variables other than `chat_id` and `lang` shown as `…`, and its URL cut to
    /// its origin ([`redact_url`](crate::delivery::redact_url): paths often carry tokens),
    /// for pages and API responses. Given back to an update, that URL and those `…` keep
    /// the endpoint's own values (while the URL stays the same, for headers and variables).
    pub fn redacted(&self) -> RedactedSpec {
        RedactedSpec {
            spec: EndpointSpec {
                url: crate::delivery::redact_url(&self.url),
                secrets: None,
                headers: self.headers.as_ref().map(|h| {
                    h.keys()
                        .map(|k| (k.clone(), HIDDEN_VALUE.to_owned()))
                        .collect()
                }),
                template_vars: self.template_vars.as_ref().map(|vars| {
                    vars.iter()
                        .map(|(k, v)| {
                            let shown = SHOWN_VARS.contains(&k.as_str());
                            (k.clone(), if shown { v } else { HIDDEN_VALUE }.to_owned())
                        })
                        .collect()
                }),
                ..self.clone()
            },
            secret_hints: self
                .secrets
                .iter()
                .flatten()
                .map(|s| secret_hint(&s.secret))
                .collect(),
        }
    }
}

/// An [`EndpointSpec`] without its secrets and header values (see
/// [`EndpointSpec::redacted`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RedactedSpec {
    /// The settings, secrets left out, header values and template variables but `chat_id`
    /// and `lang` replaced by `…`, and the URL cut to its origin.
    #[serde(flatten)]
    pub spec: EndpointSpec,
    /// The last 4 characters of each secret, to tell them apart.
    pub secret_hints: Vec<String>,
}
