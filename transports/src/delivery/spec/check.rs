//! The reading of an [`EndpointSpec`] into an [`Endpoint`]: every setting checked, every
//! one at fault told ([`SpecError`], [`EndpointSpec::problems`]), those whose check reads
//! another at fault left for later.

use std::fmt;

use deskhook::{EventTypeSet, Secret};

use super::{EndpointSpec, MAX_TEMPLATE_OUTPUT};
use crate::delivery::{Endpoint, RateLimit};
use crate::error::Error;
use crate::template::Template;

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
                // 10.20.30.40/8 would open all of 10.0.0.0/8, meant as one address or not.
                Ok(net) if net != net.trunc() => {
                    let host = match net.addr() {
                        std::net::IpAddr::V4(a) => format!("{a}/32"),
                        std::net::IpAddr::V6(a) => format!("{a}/128"),
                    };
                    problems.push(invalid(
                        "allow_cidrs",
                        format!(
                            "'{cidr}' has bits set past its prefix, which would open all of \
                             {}; write \"{}\" for that network, or \"{host}\" for that \
                             address alone",
                            net.trunc(),
                            net.trunc()
                        ),
                    ));
                    unread.push("allow_cidrs");
                    break;
                }
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
                    format!(
                        "cannot read ca_file '{}'{}: {e}",
                        file.display(),
                        crate::error::relative_to_cwd(file)
                    ),
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
        // The secret itself where its variable's name goes: said without repeating it.
        if !is_variable_name(var) {
            return Err(
                "secret_env holds what is not an environment variable's name (a secret \
                 itself?); give the variable's name (CRM_SECRET), or list the secret under \
                 `secrets`"
                    .to_owned(),
            );
        }
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

/// Whether `name` can name an environment variable as shells write them (letters, digits
/// and `_`, not starting with a digit) and is not a secret (`whsec_…`, `whsk_…`, `whpk_…`):
/// what `secret_env` holds.
pub(super) fn is_variable_name(name: &str) -> bool {
    let secret = ["whsec_", "whsk_", "whpk_"]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    !secret
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
