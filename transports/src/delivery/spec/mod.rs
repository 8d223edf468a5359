//! An endpoint as data: the fields of a `deskhook.toml` `[[endpoint]]` table, which are also
//! the JSON of an endpoint in the admin API and what a spool stores of the endpoints it
//! registered. One reading of them ([`EndpointSpec::to_endpoint`]) serves all three, so
//! that a setting means the same and is refused with the same words wherever it is written.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use deskhook::policy::{RetrySchedule, deserialize_duration, format_duration};
use deskhook::{EventTypeSet, Secret};
use serde::{Deserialize, Serialize};

use super::{Endpoint, RateLimit};
use crate::error::Error;
use crate::template::Template;

mod redacted;
mod secret;

pub(crate) use redacted::HIDDEN_VALUE;
pub use redacted::RedactedSpec;
pub use secret::SecretSpec;
pub(crate) use secret::secret_hint;
#[cfg(feature = "openapi")]
use secret::secrets_schema;

/// An endpoint's settings as written in `deskhook.toml` or sent to the admin API.
///
/// ```
/// use deskhook_transports::delivery::EndpointSpec;
///
/// let spec: EndpointSpec = serde_json::from_str(
///     r#"{"name": "crm", "url": "https://crm.example.com/hooks", "tenant": "acme",
///         "actions": ["create", "ok"], "retry": "0s,5s,5m", "rate_limit": "50/s"}"#,
/// )?;
/// let endpoint = spec.to_endpoint()?;
/// assert_eq!(endpoint.tenant_name(), Some("acme"));
///
/// let bad: EndpointSpec = serde_json::from_str(r#"{"name": "crm", "url": "not a url"}"#)?;
/// assert_eq!(bad.to_endpoint().unwrap_err().field(), Some("url"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointSpec {
    /// Its name, unique in the sink.
    pub name: String,
    /// Where it is sent: an `http` or `https` URL.
    pub url: String,
    /// Signing secrets (`whsec_…` HMAC, `whsk_…` ed25519), newest first; during a rotation the old one with an
    /// `expires` time. Absent in an update through the admin API: the secrets stay as they
    /// are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = secrets_schema))]
    pub secrets: Option<Vec<SecretSpec>>,
    /// An environment variable holding the secret(s), comma-separated. Read from the
    /// server's environment: never take it from a tenant's input (the console's API refuses
    /// it from a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// The event types it receives (`["create", "ok"]`, `"*"`, `"usedesk.*"`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = actions_schema))]
    pub actions: Option<EventTypeSet>,
    /// Headers added to every request (values often hold credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The limit for a whole attempt (`"15s"`, the default), from `"1ms"` to `"1h"`.
    #[serde(
        default,
        with = "optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15s"))]
    pub timeout: Option<Duration>,
    /// The limit for connecting (`"5s"`, the default), from `"1ms"` to `"1h"`.
    #[serde(
        default,
        with = "optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "5s"))]
    pub connect_timeout: Option<Duration>,
    /// The retry schedule (`"0s,5s,5m,30m,2h,5h,10h,10h"`): the delay before each attempt,
    /// the first `0s`, at most 1,000 attempts.
    #[serde(
        default,
        with = "optional_retry",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "0s,5s,5m,30m,2h,5h,10h,10h"))]
    pub retry: Option<RetrySchedule>,
    /// Whether private, loopback and link-local addresses are allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private: bool,
    /// Networks allowed although private (`["10.20.0.0/16"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_cidrs: Vec<String>,
    /// Whether to add `X-Hub-Signature-256`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hub_signature: bool,
    /// Whether only `https` URLs are accepted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub https_only: bool,
    /// Requests in flight to it at most (`workers` is read as the same).
    #[serde(default, alias = "workers", skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Its tenant: it then receives only that tenant's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A rate limit (`"50/s"`, `"300/m"`, `"5/10s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// The rate limit's burst (defaults to its count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_burst: Option<u32>,
    /// A PEM file of the only CAs trusted for its TLS. Read from the server's disk: never
    /// take it from a tenant's input (the console's API refuses it from a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ca_file: Option<PathBuf>,
    /// A payload template: a preset's name (`"slack"`, `"teams"`, `"mattermost"`,
    /// `"discord"`, `"telegram"`) or a template's text (with `{{` or `{%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A file holding the payload template, read when the endpoint is made. Read from the
    /// server's disk: never take it from a tenant's input (it would be sent, rendered, to
    /// the endpoint's URL; the console's API refuses it from a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub template_file: Option<PathBuf>,
    /// The template's variables (`{ chat_id = "-1001234567890" }` for Telegram, `lang`).
    /// Pages and API responses show only `chat_id` and `lang`: the others may be credentials
    /// (a custom template's key) and show as `…`, which an update may send back to keep the
    /// value while the URL and the template stay the same (a new template could
    /// test the value: give it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_vars: Option<BTreeMap<String, String>>,
    /// The rendered body's `Content-Type` (`"application/json"` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_content_type: Option<String>,
    /// The most bytes a rendered body may have ([`Template::max_output`]: 256 KiB by
    /// default, at most 64 MiB); a larger render sends the event to the dead letters. Raise
    /// it for a template that puts a large event whole into its body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_max_output: Option<usize>,
}

/// Without what may be a credential: the URL cut to its origin (chat webhooks carry their
/// token in the path), header values, template variables and the secrets (their number).
impl fmt::Debug for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |map: &Option<BTreeMap<String, String>>| {
            map.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>())
        };
        f.debug_struct("EndpointSpec")
            .field("name", &self.name)
            .field("url", &super::redact_url(&self.url))
            .field("secrets", &self.secrets.as_ref().map(Vec::len))
            .field("secret_env", &self.secret_env)
            .field("actions", &self.actions)
            .field("headers", &names(&self.headers))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("allow_private", &self.allow_private)
            .field("allow_cidrs", &self.allow_cidrs)
            .field("hub_signature", &self.hub_signature)
            .field("https_only", &self.https_only)
            .field("max_in_flight", &self.max_in_flight)
            .field("tenant", &self.tenant)
            .field("rate_limit", &self.rate_limit)
            .field("rate_burst", &self.rate_burst)
            .field("ca_file", &self.ca_file)
            .field("template", &self.template.as_ref().map(String::len))
            .field("template_file", &self.template_file)
            .field("template_vars", &names(&self.template_vars))
            .field("template_content_type", &self.template_content_type)
            .field("template_max_output", &self.template_max_output)
            .finish()
    }
}

/// The largest `template_max_output`: a render's fuel ([`crate::template::FUEL`]) stops
/// one about this large anyway.
const MAX_TEMPLATE_OUTPUT: usize = 64 << 20;

fn is_false(b: &bool) -> bool {
    !*b
}

/// The OpenAPI schema of [`EndpointSpec::actions`]: a list of event types, or one text
/// (`"*"`, `"usedesk.*"`, `"create, comment"`).
#[cfg(feature = "openapi")]
fn actions_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let name = || ObjectBuilder::new().schema_type(Type::String);
    OneOfBuilder::new()
        .item(ArrayBuilder::new().items(name()))
        .item(name())
        .examples([
            serde_json::json!(["create", "comment"]),
            serde_json::json!("usedesk.*"),
        ])
        .into()
}

mod optional_duration {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserialize_duration(d).map(Some)
    }
}

mod optional_retry {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        r: &Option<RetrySchedule>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            Some(r) => s.collect_str(r),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<RetrySchedule>, D::Error> {
        RetrySchedule::deserialize(d).map(Some)
    }
}

/// A setting of an [`EndpointSpec`] that cannot work: which one, and why.
#[derive(Debug)]
pub struct SpecError {
    field: Option<&'static str>,
    error: Error,
    /// The other settings at fault (see [`EndpointSpec::problems`]); boxed, so that the
    /// error of every call that returns one stays small.
    others: Box<[SpecError]>,
}

impl SpecError {
    pub(crate) fn at(field: &'static str, error: Error) -> SpecError {
        SpecError {
            field: Some(field),
            error,
            others: Box::default(),
        }
    }

    /// An error of the endpoint as a whole (no one field at fault).
    pub(crate) fn whole(error: Error) -> SpecError {
        SpecError {
            field: None,
            error,
            others: Box::default(),
        }
    }

    /// The first of `problems` (never empty), carrying the rest.
    fn first_of(mut problems: Vec<SpecError>) -> SpecError {
        let mut first = problems.remove(0);
        first.others = problems.into_boxed_slice();
        first
    }

    /// The other settings at fault when several are, in the order they were checked: this
    /// error is the first's. Empty when it is the only one.
    pub fn others(&self) -> &[SpecError] {
        &self.others
    }

    /// The field at fault (`"url"`, `"retry"`, …), when it is one field.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// The error itself.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error itself, owned.
    pub fn into_error(self) -> Error {
        self.error
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Settings whose check reads other settings, besides the URL's address check: not judged
/// while one of those is unread (known to be at fault, or `secret_env` whose variable
/// could not be read). One read but refused is no reason: `hub_signature` beside a
/// `whpk_` key in `secrets` is a problem of its own.
const READS: [(&str, &[&str]); 6] = [
    ("rate_burst", &["rate_limit"]),
    // A template is tried on a sample event, with its variables.
    ("template", &["template_vars"]),
    ("template_vars", &["template", "template_file"]),
    ("template_content_type", &["template", "template_file"]),
    ("template_max_output", &["template", "template_file"]),
    ("hub_signature", &["secrets", "secret_env"]),
];

impl EndpointSpec {
    /// The settings whose values are credentials (signing secrets, header values, template
    /// variables): an error about one says what was expected, never what was given (serde
    /// quotes a value of the wrong type), in a file, a command line or a request alike.
    pub const CREDENTIAL_FIELDS: [&'static str; 3] = ["secrets", "headers", "template_vars"];

    /// A spec of `name` at `url` with everything else at its default.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> EndpointSpec {
        EndpointSpec {
            name: name.into(),
            url: url.into(),
            ..EndpointSpec::default()
        }
    }

    /// The endpoint these settings make, every setting checked as `deskhook.toml`'s are:
    /// secrets from `secret_env` read from the environment, `ca_file` read from disk, the URL
    /// through the SSRF guard.
    ///
    /// # Errors
    ///
    /// [`SpecError`] naming the field at fault and saying how to fix it: the first of
    /// [`problems`](EndpointSpec::problems), carrying the others
    /// ([`SpecError::others`]).
    pub fn to_endpoint(&self) -> Result<Endpoint, SpecError> {
        self.checked(&[]).map_err(SpecError::first_of)
    }

    /// Every setting [`to_endpoint`](EndpointSpec::to_endpoint) refuses, in the order it
    /// checks them (it stops at the first), one problem per setting at most: what a form
    /// shows all at once. Empty when `to_endpoint` accepts the settings.
    ///
    /// A setting whose check reads another at fault is not judged: with a network of
    /// `allow_cidrs` that is not one, the URL is not put through the SSRF guard; without
    /// a rate that reads, `rate_burst` is not; without the secrets of `secret_env`,
    /// `hub_signature` is not.
    pub fn problems(&self) -> Vec<SpecError> {
        self.problems_besides(&[])
    }

    /// [`problems`](EndpointSpec::problems) besides those of `known`, fields known to be
    /// at fault already (a request's fields that did not read, left out of these
    /// settings): neither they nor the settings whose check reads one of them are judged.
    pub fn problems_besides(&self, known: &[&str]) -> Vec<SpecError> {
        self.checked(known).err().unwrap_or_default()
    }

    /// The endpoint, or every problem of its settings (never none) but those of `known`
    /// (see [`problems_besides`](EndpointSpec::problems_besides)).
    fn checked(&self, known: &[&str]) -> Result<Endpoint, Vec<SpecError>> {
        let mut problems = Vec::new();
        // Settings whose values are not there to be read (see `READS`).
        let mut unread = known.to_vec();
        let endpoint = match Endpoint::new(&self.name, &self.url) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                problems.push(SpecError::at("url", e));
                unread.push("url");
                // The other settings are checked on an endpoint with a URL that reads.
                match Endpoint::new(&self.name, "https://endpoint.invalid/") {
                    Ok(endpoint) => endpoint,
                    Err(e) => {
                        problems.push(SpecError::whole(e));
                        return Err(problems);
                    }
                }
            }
        };
        let mut endpoint = self.with_settings(endpoint, &mut problems, &mut unread);
        // The address check reads the networks allowed and whether only https is.
        let guarded = ["url", "allow_cidrs", "allow_private", "https_only"];
        if !guarded.iter().any(|f| unread.contains(f))
            && let Err(e) = endpoint.check_http()
        {
            problems.push(SpecError::at("url", e));
        }
        for (field, e) in endpoint.problems() {
            if !problems.iter().any(|p| p.field == Some(field)) {
                problems.push(SpecError::at(field, e));
            }
        }
        // Not judged: what is known, and what reads a setting unread.
        problems.retain(|p| {
            p.field.is_none_or(|field| {
                !known.contains(&field)
                    && !READS.iter().any(|(reader, read)| {
                        *reader == field && read.iter().any(|f| unread.contains(f))
                    })
            })
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        endpoint.spec = Some(std::sync::Arc::new(self.clone()));
        Ok(endpoint)
    }

    /// `endpoint` with these settings, but the URL's, each that cannot be had added to
    /// `problems` (and to `unread` when its value is not there for others to read).
    fn with_settings(
        &self,
        endpoint: Endpoint,
        problems: &mut Vec<SpecError>,
        unread: &mut Vec<&str>,
    ) -> Endpoint {
        let invalid = |field: &'static str, message: String| {
            SpecError::at(
                field,
                Error::InvalidEndpoint {
                    name: self.name.clone(),
                    message,
                },
            )
        };
        let mut endpoint = endpoint
            .actions(self.actions.unwrap_or_else(EventTypeSet::all))
            .allow_private(self.allow_private)
            .hub_signature(self.hub_signature)
            .https_only(self.https_only);
        for entry in self.secrets.iter().flatten() {
            endpoint = match entry.expires {
                Some(at) => endpoint.secret_until(entry.secret.clone(), at),
                None => endpoint.secret(entry.secret.clone()),
            };
        }
        if let Some(var) = &self.secret_env {
            match self.secrets_from_env(var) {
                Ok(secrets) => {
                    for secret in secrets {
                        endpoint = endpoint.secret(secret);
                    }
                }
                Err(message) => {
                    problems.push(invalid("secret_env", message));
                    unread.push("secret_env");
                }
            }
        }
        for (name, value) in self.headers.iter().flatten() {
            endpoint = endpoint.header(name, value);
        }
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if let Some(timeout) = self.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        if let Some(retry) = &self.retry {
            endpoint = endpoint.retry(retry.clone());
        }
        for cidr in &self.allow_cidrs {
            match cidr.parse::<ipnet::IpNet>() {
                Ok(net) => endpoint = endpoint.allow_cidr(net),
                Err(_) => {
                    problems.push(invalid(
                        "allow_cidrs",
                        format!(
                            "'{cidr}' is not a network; write it like \"10.20.0.0/16\" or \
                             \"fd00::/8\""
                        ),
                    ));
                    unread.push("allow_cidrs");
                    break;
                }
            }
        }
        if let Some(requests) = self.max_in_flight {
            endpoint = endpoint.max_in_flight(requests);
        }
        if let Some(tenant) = &self.tenant {
            match deskhook::dispatch::check_tenant(tenant) {
                Ok(()) => endpoint = endpoint.tenant(tenant),
                Err(e) => problems.push(invalid("tenant", e.to_string())),
            }
        }
        if let Some(limit) = self.rate(problems) {
            endpoint = endpoint.rate_limit_with(limit);
        }
        if let Some(file) = &self.ca_file {
            let read = std::fs::read(file).map_err(|e| {
                invalid(
                    "ca_file",
                    format!("cannot read ca_file '{}': {e}", file.display()),
                )
            });
            match read.and_then(|pem| {
                endpoint
                    .clone()
                    .ca_certificates_pem(&pem)
                    .map_err(|e| SpecError::at("ca_file", e))
            }) {
                Ok(with) => endpoint = with,
                Err(problem) => problems.push(problem),
            }
        }
        match self.template() {
            Ok(Some(template)) => endpoint = endpoint.template(template),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
        endpoint
    }

    /// The rate limit of `rate_limit` and `rate_burst`, if set and sound; else what is wrong
    /// added to `problems`.
    fn rate(&self, problems: &mut Vec<SpecError>) -> Option<RateLimit> {
        match (&self.rate_limit, self.rate_burst) {
            (Some(text), burst) => match text.parse::<RateLimit>() {
                Ok(limit) => match burst.map(|burst| limit.with_burst(burst)) {
                    None => Some(limit),
                    Some(Ok(with)) => Some(with),
                    Some(Err(e)) => {
                        problems.push(SpecError::at("rate_burst", e));
                        Some(limit)
                    }
                },
                Err(e) => {
                    problems.push(SpecError::at("rate_limit", e));
                    None
                }
            },
            (None, Some(_)) => {
                problems.push(SpecError::at(
                    "rate_burst",
                    Error::InvalidEndpoint {
                        name: self.name.clone(),
                        message: "rate_burst applies only with rate_limit; set that too (such \
                                  as \"50/s\"), or remove rate_burst"
                            .into(),
                    },
                ));
                None
            }
            (None, None) => None,
        }
    }

    /// The secrets in the environment variable `var` (`secret_env`), or what is wrong.
    fn secrets_from_env(&self, var: &str) -> Result<Vec<Secret>, String> {
        let value = std::env::var(var).map_err(|e| {
            let problem = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "holds bytes that are not UTF-8",
            };
            format!(
                "environment variable {var} {problem} (export it with the endpoint's whsec_ \
                 secret, or list the secret under `secrets`)"
            )
        })?;
        let secrets = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(|part| {
                part.parse::<Secret>()
                    .map_err(|e| format!("in environment variable {var}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Set but empty (a variable exported with nothing in it): signing must not be
        // turned off without a word.
        if secrets.is_empty() {
            return Err(format!(
                "environment variable {var} is empty (export it with the endpoint's whsec_ \
                 secret, or remove secret_env to send unsigned)"
            ));
        }
        Ok(secrets)
    }

    /// The payload template these settings make, if they name one.
    fn template(&self) -> Result<Option<Template>, SpecError> {
        let invalid = |field: &'static str, e: Error| {
            SpecError::at(
                field,
                Error::InvalidEndpoint {
                    name: self.name.clone(),
                    message: e.to_string(),
                },
            )
        };
        let template = match (&self.template, &self.template_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "template_file",
                    Error::Template("give either template or template_file, not both".to_owned()),
                ));
            }
            (Some(text), None) => {
                Template::named_or_inline(text).map_err(|e| invalid("template", e))?
            }
            (None, Some(path)) => Template::file(path).map_err(|e| invalid("template_file", e))?,
            (None, None) => {
                let alone = if self.template_vars.is_some() {
                    "template_vars"
                } else if self.template_content_type.is_some() {
                    "template_content_type"
                } else if self.template_max_output.is_some() {
                    "template_max_output"
                } else {
                    return Ok(None);
                };
                return Err(invalid(
                    alone,
                    Error::Template(format!(
                        "{alone} applies only with a template; set template (such as \
                         \"telegram\") or template_file, or remove {alone}"
                    )),
                ));
            }
        };
        let mut template = match &self.template_content_type {
            Some(content_type) => template
                .content_type(content_type)
                .map_err(|e| invalid("template_content_type", e))?,
            None => template,
        };
        for (name, value) in self.template_vars.iter().flatten() {
            template = template.var(name, value);
        }
        if let Some(bytes) = self.template_max_output {
            if !(1..=MAX_TEMPLATE_OUTPUT).contains(&bytes) {
                return Err(invalid(
                    "template_max_output",
                    Error::Template(format!(
                        "template_max_output = {bytes} is not a size a render can have; give \
                         from 1 to {MAX_TEMPLATE_OUTPUT} bytes (64 MiB)"
                    )),
                ));
            }
            template = template.max_output(bytes);
        }
        Ok(Some(template))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> EndpointSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn debug_shows_no_credential() {
        let spec = spec(
            r#"{"name":"chat","url":"https://hooks.slack.com/services/T0/B0/SECRETPATH",
                "secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                "headers":{"Authorization":"Bearer TOKENVALUE"},
                "template_vars":{"chat_id":"CHATVALUE"}}"#,
        );
        let shown = format!("{spec:?} {:?}", spec.redacted());
        for secret in ["SECRETPATH", "MfKQ9r8", "TOKENVALUE", "CHATVALUE"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("Authorization") && shown.contains("chat_id"),
            "{shown}"
        );
    }

    #[test]
    fn each_bad_setting_names_its_field() {
        let cases = [
            (r#"{"name":"a","url":"not a url"}"#, "url"),
            (r#"{"name":"a","url":"http://127.0.0.1/"}"#, "url"),
            (r#"{"name":"","url":"https://x.example"}"#, "name"),
            (
                r#"{"name":"a","url":"https://x.example","actions":[]}"#,
                "actions",
            ),
            (
                r#"{"name":"a","url":"https://x.example","retry":"5s,1m"}"#,
                "retry",
            ),
            (
                r#"{"name":"a","url":"https://x.example","max_in_flight":0}"#,
                "max_in_flight",
            ),
            (
                r#"{"name":"a","url":"https://x.example","tenant":""}"#,
                "tenant",
            ),
            (
                r#"{"name":"a","url":"https://x.example","rate_limit":"fast"}"#,
                "rate_limit",
            ),
            (
                r#"{"name":"a","url":"https://x.example","rate_burst":5}"#,
                "rate_burst",
            ),
            (
                r#"{"name":"a","url":"https://x.example","allow_cidrs":["ten"]}"#,
                "allow_cidrs",
            ),
            (
                r#"{"name":"a","url":"https://x.example","headers":{"Host":"x"}}"#,
                "headers",
            ),
            (
                r#"{"name":"a","url":"https://x.example","hub_signature":true}"#,
                "hub_signature",
            ),
            (
                r#"{"name":"a","url":"https://x.example","secret_env":"DESKHOOK_NO_SUCH_VAR"}"#,
                "secret_env",
            ),
            (
                r#"{"name":"a","url":"https://x.example","ca_file":"/no/such/ca.pem"}"#,
                "ca_file",
            ),
            (
                r#"{"name":"a","url":"http://x.example","https_only":true}"#,
                "url",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template":"slak"}"#,
                "template",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template":"{{ x"}"#,
                "template",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template":"telegram"}"#,
                "template",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template_vars":{"chat_id":"1"}}"#,
                "template_vars",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template_content_type":"text/plain"}"#,
                "template_content_type",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template_max_output":1048576}"#,
                "template_max_output",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template":"slack","template_max_output":0}"#,
                "template_max_output",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template":"slack","template_max_output":67108865}"#,
                "template_max_output",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template":"slack","template_file":"t.j2"}"#,
                "template_file",
            ),
            (
                r#"{"name":"a","url":"https://x.example","template_file":"/no/such/t.j2"}"#,
                "template_file",
            ),
            (
                r#"{"name":"a","url":"https://x.example","secrets":["whpk_9huTx0ehoQItaSCBrSttb6cf2qXBbUhz4kXrv+6yIBk="]}"#,
                "secrets",
            ),
        ];
        for (json, field) in cases {
            let err = spec(json).to_endpoint().unwrap_err();
            assert_eq!(err.field(), Some(field), "{json}: {err}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn problems_are_every_bad_setting_at_once_and_to_endpoint_refuses_the_first() {
        let bad = spec(
            r#"{"name":"a","url":"hooks.example.com/x","retry":"5s,1m","max_in_flight":0,
                "tenant":"","rate_limit":"fast","allow_cidrs":["ten"],
                "headers":{"Host":"x"},"template":"slak"}"#,
        );
        let fields: Vec<_> = bad.problems().iter().map(SpecError::field).collect();
        assert_eq!(
            fields,
            [
                "url",
                "allow_cidrs",
                "tenant",
                "rate_limit",
                "template",
                "retry",
                "max_in_flight",
                "headers"
            ]
            .map(Some)
        );
        let refused = bad.to_endpoint().unwrap_err();
        assert_eq!(refused.field(), Some("url"));
        let others: Vec<_> = refused.others().iter().map(SpecError::field).collect();
        assert_eq!(others, fields[1..]);

        // The guard does not judge a URL whose allowance could not be read.
        let cidr = spec(r#"{"name":"a","url":"http://10.1.2.3/","allow_cidrs":["10.1.0.0/33"]}"#);
        let fields: Vec<_> = cidr.problems().iter().map(SpecError::field).collect();
        assert_eq!(fields, [Some("allow_cidrs")]);

        // Nor hub_signature without the secrets of secret_env.
        let unsigned = spec(
            r#"{"name":"a","url":"https://x.example","hub_signature":true,
                "secret_env":"DESKHOOK_NO_SUCH_VAR"}"#,
        );
        let fields: Vec<_> = unsigned.problems().iter().map(SpecError::field).collect();
        assert_eq!(fields, [Some("secret_env")]);
        // But beside a key that reads and cannot sign, it is a problem of its own, and the
        // first, as it always was.
        let public = spec(
            r#"{"name":"a","url":"https://x.example","hub_signature":true,
                "secrets":["whpk_9huTx0ehoQItaSCBrSttb6cf2qXBbUhz4kXrv+6yIBk="]}"#,
        );
        let fields: Vec<_> = public.problems().iter().map(SpecError::field).collect();
        assert_eq!(fields, [Some("hub_signature"), Some("secrets")]);
        // Fields known to be at fault (a request's that did not read) are not judged,
        // nor what reads them.
        let burst = spec(r#"{"name":"a","url":"http://10.1.2.3/","rate_burst":5}"#);
        let fields: Vec<_> = burst.problems().iter().map(SpecError::field).collect();
        assert_eq!(fields, [Some("rate_burst"), Some("url")]);
        assert!(
            burst
                .problems_besides(&["rate_limit", "allow_cidrs"])
                .is_empty()
        );

        let good = spec(r#"{"name":"a","url":"https://x.example","retry":"0s,1m"}"#);
        assert!(good.problems().is_empty());
        assert!(good.to_endpoint().is_ok());
    }

    #[test]
    fn template_max_output_bounds_the_render() {
        let big = r#"{"name":"a","url":"https://x.example","template":"{\"e\": {{ event|tojson }}}","template_max_output":1000000}"#;
        let small = big.replace("1000000", "100");
        let event = deskhook::sample::event(deskhook::Action::Create);
        let body = serde_json::to_vec(&event).unwrap();
        let render = |json: &str| {
            let endpoint = spec(json).to_endpoint().unwrap();
            let template = endpoint.template.expect("a template");
            template.render(
                deskhook::EventType::Zenlix(deskhook::Action::Create),
                "evt-1",
                None,
                &body,
            )
        };
        assert!(render(big).is_ok());
        let err = render(&small).unwrap_err().to_string();
        assert!(err.contains("max_output of 100"), "{err}");
    }

    #[test]
    fn a_spec_goes_to_json_and_back_and_redacts_its_secrets() {
        let text = r#"{"name":"crm","url":"https://crm.example.com/h","secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expires":"2026-12-01T00:00:00Z"}],"actions":["create","ok"],"headers":{"Authorization":"Bearer t"},"timeout":"10s","retry":"0s,5s","tenant":"acme","rate_limit":"50/s","rate_burst":10,"workers":3}"#;
        let parsed = spec(text);
        assert_eq!(parsed.max_in_flight, Some(3));
        let again: EndpointSpec =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
        let endpoint = parsed.to_endpoint().unwrap();
        assert_eq!(endpoint.tenant_name(), Some("acme"));
        let shown = serde_json::to_string(&parsed.redacted()).unwrap();
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(!shown.contains("Bearer"), "{shown}");
        assert!(
            shown.contains("\"secret_hints\":[\"LaSw\",\"LaSw\"]"),
            "{shown}"
        );
        let unknown = serde_json::from_str::<EndpointSpec>(r#"{"name":"a","url":"x","urll":1}"#)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("unknown field `urll`"), "{unknown}");
    }
}
