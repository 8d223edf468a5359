//! What pages and API responses show of a spec: no secrets, no header values, the URL cut
//! to its origin.

use serde::Serialize;

use super::{EndpointSpec, secret_hint};

/// What [`EndpointSpec::redacted`] shows for a header's value.
pub(crate) const HIDDEN_VALUE: &str = "…";

impl EndpointSpec {
    /// The spec with its secrets shown only by their last 4 characters, header values left
    /// out and its URL cut to its origin ([`redact_url`](crate::delivery::redact_url): paths often
    /// carry tokens), for pages and API responses. Given back to an update, that URL keeps
    /// the endpoint's own.
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
    /// The settings, secrets left out, header values replaced by `…` and the URL cut to its
    /// origin.
    #[serde(flatten)]
    pub spec: EndpointSpec,
    /// The last 4 characters of each secret, to tell them apart.
    pub secret_hints: Vec<String>,
}
