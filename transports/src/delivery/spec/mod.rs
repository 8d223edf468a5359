//! An endpoint as data: the fields of a `deskhook.toml` `[[endpoint]]` table, which are also
//! the JSON of an endpoint in the admin API and what a spool stores of the endpoints it
//! registered. One reading of them ([`EndpointSpec::to_endpoint`]) serves all three, so
//! that a setting means the same and is refused with the same words wherever it is written.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use deskhook::EventTypeSet;
use deskhook::policy::{RetrySchedule, deserialize_duration, format_duration};
use serde::{Deserialize, Serialize};

mod check;
mod redacted;
mod secret;

pub use check::SpecError;
pub use redacted::RedactedSpec;
pub(crate) use redacted::{HIDDEN_VALUE, SHOWN_VARS};
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
    /// Its name, unique in the sink; at most [`NAME_MAX_BYTES`](super::NAME_MAX_BYTES)
    /// bytes.
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
    /// The most bytes a rendered body may have
    /// ([`Template::max_output`](crate::template::Template::max_output): 256 KiB by default,
    /// at most 64 MiB); a larger render sends the event to the dead letters. Raise it for a
    /// template that puts a large event whole into its body.
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
            // A secret written there by mistake is not shown (see `secrets_from_env`).
            .field(
                "secret_env",
                &self.secret_env.as_deref().map(|name| {
                    if check::is_variable_name(name) {
                        name
                    } else {
                        "(not a variable's name)"
                    }
                }),
            )
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

/// The largest `template_max_output`.
const MAX_TEMPLATE_OUTPUT: usize = crate::template::LARGEST_OUTPUT;

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

    /// A secret written where its variable's name goes is refused without being repeated,
    /// and not shown by Debug either.
    #[test]
    fn a_secret_in_secret_env_is_neither_repeated_nor_shown() {
        let spec = spec(
            r#"{"name":"a","url":"https://x.example",
                "secret_env":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#,
        );
        let err = spec.to_endpoint().unwrap_err();
        assert_eq!(err.field(), Some("secret_env"), "{err}");
        let said = format!("{err} {spec:?}");
        assert!(!said.contains("MfKQ9r8"), "{said}");
        assert!(
            said.contains("not an environment variable's name"),
            "{said}"
        );
    }

    /// A network written with bits past its prefix would open the whole network: refused,
    /// with both readings offered.
    #[test]
    fn a_cidr_with_bits_past_its_prefix_is_refused_with_both_readings() {
        for (cidr, says) in [
            (
                "10.20.30.40/8",
                r#"write "10.0.0.0/8" for that network, or "10.20.30.40/32""#,
            ),
            (
                "fd00::1/8",
                r#"write "fd00::/8" for that network, or "fd00::1/128""#,
            ),
        ] {
            let json =
                format!(r#"{{"name":"a","url":"https://x.example","allow_cidrs":["{cidr}"]}}"#);
            let err = spec(&json).to_endpoint().unwrap_err();
            assert_eq!(err.field(), Some("allow_cidrs"), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        let fine = spec(r#"{"name":"a","url":"https://x.example","allow_cidrs":["10.0.0.0/8"]}"#);
        assert!(fine.to_endpoint().is_ok());
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
