//! An endpoint's settings as a request gives them (the admin API's JSON, the console's
//! form read as that JSON): read with every problem found at once, and refused where they
//! would reach past the console into the server (its files, its environment, its private
//! networks). The rules are in [`super`]'s docs.

use axum::http::StatusCode;
use deskhook_transports::delivery::{EndpointInfo, EndpointSpec};
use serde_json::Value;

use super::read;
use crate::Problem;

/// An endpoint's settings read from a request (the fields of a `[[endpoint]]` table), with
/// every problem found so far. Each field that did not read is set aside and the others
/// read without it (`name` and `url` stand in), so that one request is told all it must
/// fix: the settings it holds are for finding the other problems, and are given back by
/// [`SpecReading::finish`] only when there is none.
#[derive(Debug)]
pub(crate) struct SpecReading {
    /// The settings that read.
    pub(crate) spec: EndpointSpec,
    problems: Vec<Problem>,
    /// The fields set aside.
    set_aside: Vec<String>,
    /// Whether the settings may be checked (not when they name a file of the server's or
    /// a variable of its environment that the request may not set: the check would read it).
    checkable: bool,
}

/// Stand-ins for the fields every endpoint has, while other fields are read.
const STAND_INS: [(&str, &str); 2] = [("name", "(unnamed)"), ("url", "https://endpoint.invalid/")];

/// The most fields of a request set aside: past them it is no endpoint's JSON (each read
/// again costs a reading of the whole request).
const MAX_SET_ASIDE: usize = 32;

/// Reads an endpoint's JSON, finding every field that does not read (a value of the wrong
/// type, a duration or an event type that is not one, an unknown field).
///
/// # Errors
///
/// A [`Problem`] when it is no endpoint's JSON at all (not an object).
pub(crate) fn read_spec(mut value: Value) -> Result<SpecReading, Problem> {
    let mut problems = Vec::new();
    let mut set_aside = Vec::new();
    // What a GET shows beside the settings, derived from the secrets: the settings read
    // back and sent again are taken as they are.
    if let Value::Object(map) = &mut value {
        map.remove("secret_hints");
        if let Some(secrets) = map.get("secrets")
            && let Err(problem) = check_secrets(secrets)
        {
            map.remove("secrets");
            set_aside.push("secrets".to_owned());
            problems.push(problem);
        }
    }
    loop {
        let problem = match read::<EndpointSpec>(&value) {
            Ok(spec) => {
                return Ok(SpecReading {
                    spec,
                    problems,
                    set_aside,
                    checkable: true,
                });
            }
            Err(problem) => problem,
        };
        let map = match (&problem.field, &mut value) {
            (Some(field), Value::Object(map))
                if !set_aside.contains(field) && set_aside.len() < MAX_SET_ASIDE =>
            {
                map
            }
            // Not a field's problem, or one a stand-in did not cure.
            _ => {
                problems.push(problem);
                return Err(Problem::several(problems).unwrap_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "the endpoint's settings do not read",
                    )
                }));
            }
        };
        let field = problem.field.clone().unwrap_or_default();
        map.remove(&field);
        if let Some((_, stand_in)) = STAND_INS.iter().find(|(name, _)| **name == field) {
            map.insert(field.clone(), Value::from(*stand_in));
        }
        set_aside.push(field);
        problems.push(problem);
    }
}

impl SpecReading {
    /// Adds the problem of a field left out of the JSON (a form's field that did not read).
    pub(crate) fn problem(&mut self, problem: Problem) {
        if let Some(field) = &problem.field {
            self.set_aside.push(field.clone());
        }
        self.problems.push(problem);
    }

    /// Adds the refusal, if any, of settings naming a file of the server's or a variable of
    /// its environment (see [`refuse_server_settings`]).
    pub(crate) fn refuse_server_settings(&mut self, current: Option<&EndpointSpec>) {
        if let Err(problem) = refuse_server_settings(&self.spec, current) {
            self.checkable = false;
            self.problems.push(problem);
        }
    }

    /// Adds the refusal, if any, of settings opening the endpoint to the server's networks
    /// (see [`refuse_private_networks`]), but one of a field set aside (its stand-in's).
    pub(crate) fn refuse_private_networks(&mut self, read: Option<&EndpointInfo>, allowed: bool) {
        if let Err(problem) = refuse_private_networks(&self.spec, read, allowed)
            && problem
                .field
                .as_ref()
                .is_none_or(|field| !self.set_aside.contains(field))
        {
            self.problems.push(problem);
        }
    }

    /// The settings, if nothing was found wrong: their own checks are then the save's
    /// ([`Endpoints::add_spec`](deskhook_transports::delivery::Endpoints::add_spec) and the
    /// updates refuse with every setting at fault, see [`Problem::several`]).
    ///
    /// # Errors
    ///
    /// One [`Problem`] listing every problem found.
    pub(crate) fn finish(self) -> Result<EndpointSpec, Problem> {
        match Problem::several(self.problems) {
            Some(problem) => Err(problem),
            None => Ok(self.spec),
        }
    }

    /// [`finish`](SpecReading::finish) for a new endpoint: when something was found wrong,
    /// the settings that read are checked as well
    /// ([`EndpointSpec::problems_besides`] those at fault), so that their problems are told
    /// at once too. (An update's settings are whole only once the save adds what it keeps:
    /// secrets, the URL shown cut, hidden values.)
    pub(crate) fn finish_new(mut self) -> Result<EndpointSpec, Problem> {
        if self.checkable && !self.problems.is_empty() {
            let known: Vec<&str> = self
                .set_aside
                .iter()
                .map(String::as_str)
                .chain(self.problems.iter().filter_map(|p| p.field.as_deref()))
                .collect();
            let found: Vec<Problem> = self
                .spec
                .problems_besides(&known)
                .into_iter()
                .map(Problem::from)
                .collect();
            self.problems.extend(found);
        }
        self.finish()
    }
}

/// Says what is wrong with a secret of `secrets` (a list of keys, or of `{"secret": …}`
/// tables) in [`deskhook::Secret::parse`]'s words, which never repeat the key: its prefix,
/// its length. The rest (a value of the wrong type) is left to [`read`], which hides it.
fn check_secrets(secrets: &Value) -> Result<(), Problem> {
    let Value::Array(items) = secrets else {
        return Ok(());
    };
    for (at, item) in items.iter().enumerate() {
        let text = match item {
            Value::String(text) => text,
            Value::Object(table) => match table.get("secret") {
                Some(Value::String(text)) => text,
                _ => continue,
            },
            _ => continue,
        };
        if let Err(e) = deskhook::Secret::parse(text) {
            let which = if items.len() > 1 {
                format!(" (number {} of {})", at + 1, items.len())
            } else {
                String::new()
            };
            return Err(Problem::field("secrets", format!("secrets{which}: {e}")));
        }
    }
    Ok(())
}

/// Keeps the settings of `current` that name something of the server's own (see
/// [`refuse_server_settings`]) when an update `spec` leaves them out: no request could set
/// them again. The template file stays while `spec` gives no template of its own, with its
/// content type unless `spec` gives one.
pub(crate) fn keep_server_settings(spec: &mut EndpointSpec, current: &EndpointSpec) {
    if spec.ca_file.is_none() {
        spec.ca_file.clone_from(&current.ca_file);
    }
    if spec.template.is_none() && spec.template_file.is_none() && current.template_file.is_some() {
        spec.template_file.clone_from(&current.template_file);
        if spec.template_content_type.is_none() {
            spec.template_content_type
                .clone_from(&current.template_content_type);
        }
    }
}

/// Refuses the settings of `spec` that name something of the server's own (see [`super`]'s
/// docs) unless `current` (the endpoint's settings, for an update) has them the same.
fn refuse_server_settings(
    spec: &EndpointSpec,
    current: Option<&EndpointSpec>,
) -> Result<(), Problem> {
    let named = |spec: &EndpointSpec| {
        [
            (
                "ca_file",
                spec.ca_file.as_ref().map(|p| p.display().to_string()),
            ),
            (
                "template_file",
                spec.template_file.as_ref().map(|p| p.display().to_string()),
            ),
            ("secret_env", spec.secret_env.clone()),
        ]
    };
    let now = current.map(named);
    for (at, (field, value)) in named(spec).into_iter().enumerate() {
        let Some(value) = value else { continue };
        if now
            .as_ref()
            .is_some_and(|now| now[at].1.as_deref() == Some(value.as_str()))
        {
            continue;
        }
        let (what, instead) = match field {
            "secret_env" => (
                "a variable of the server's environment",
                "give the secrets themselves in `secrets`",
            ),
            "template_file" => (
                "a file on the server",
                "send the template's text as `template`",
            ),
            _ => (
                "a file on the server",
                "set it in deskhook.toml or in the application's code",
            ),
        };
        return Err(Problem::field(
            field,
            format!(
                "{field} names {what}, which a request to the API cannot set (it would have the \
                 server read it for whoever calls the API): {instead}, or leave {field} out"
            ),
        ));
    }
    Ok(())
}

/// Refuses the settings of `spec` that open it to the server's own networks beyond what
/// `current` (the endpoint's settings, for an update) allows, unless the console may set
/// them (see [`Console::allow_private_networks`](crate::Console::allow_private_networks)):
/// `allow_private` turned on, a CIDR that is not inside one the endpoint has, or a new URL
/// for an endpoint that keeps either (it would point the allowance, given for one receiver,
/// at any service of those networks). Turning them off, or narrowing a CIDR, is a change any
/// request may make.
fn refuse_private_networks(
    spec: &EndpointSpec,
    read: Option<&EndpointInfo>,
    allowed: bool,
) -> Result<(), Problem> {
    if allowed {
        return Ok(());
    }
    let current = read
        .and_then(|info| info.spec.as_ref())
        .map(|saved| &saved.spec);
    let had_private = current.is_some_and(|c| c.allow_private);
    let own: Vec<ipnet::IpNet> = current
        .map(|c| {
            c.allow_cidrs
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let inside = |cidr: &String| {
        current.is_some_and(|c| c.allow_cidrs.contains(cidr))
            || cidr
                .parse::<ipnet::IpNet>()
                .is_ok_and(|net| own.iter().any(|o| o.contains(&net)))
    };
    let (field, what) = if spec.allow_private && !had_private {
        ("allow_private", "allow_private = true".to_owned())
    } else if let Some(cidr) = spec.allow_cidrs.iter().find(|cidr| !inside(cidr)) {
        ("allow_cidrs", format!("allow_cidrs {cidr}"))
    } else if let Some(read) = read
        && (spec.allow_private || !spec.allow_cidrs.is_empty())
        // Settings replaced since they were read: the save on them says so (409, 412).
        && read.keeps_url(&spec.url) == Some(false)
    {
        return Err(Problem::field(
            "url",
            "the endpoint keeps allow_private or allow_cidrs from deskhook.toml or the \
             application's code, given for the receiver at its URL, and this console cannot \
             point them at another (whoever has it could reach any service of the server's \
             networks): change the URL where they are set, or turn both off in the same \
             request, or start the console with allow_private_networks (deskhook serve \
             --console-allow-private)",
        ));
    } else {
        return Ok(());
    };
    Err(Problem::field(
        field,
        format!(
            "{what} would open the endpoint to the server's own networks, which this console \
             cannot do (whoever has it could reach a service only the server reaches): set it \
             in deskhook.toml or the application's code, or start the console with \
             allow_private_networks (deskhook serve --console-allow-private)"
        ),
    ))
}
