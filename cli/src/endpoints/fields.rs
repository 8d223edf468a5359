//! The fields of `deskhook endpoints add` and `update`: FIELD=VALUE, read as an endpoint
//! with the words deskhook.toml uses, and `secrets=-`, `url=-` or `headers=-` read from
//! standard input.

use deskhook_transports::delivery::EndpointSpec;

/// The fields whose value `-` is read from standard input: each can be a credential (a
/// secret; a chat webhook's URL, whose path is its token; an `Authorization` header).
const FROM_STDIN: [&str; 3] = ["secrets", "url", "headers"];

/// `secrets=-`, `url=-` or `headers=-` among `fields` (one of them: standard input is read
/// once): the value read from `stdin` instead, so that it is in no process list, shell
/// history or CI log. Secrets come one per line, the URL on one line, headers one per
/// line as `Name: value`.
pub(super) fn values_from_stdin(
    fields: &mut [String],
    stdin: impl std::io::BufRead,
) -> Result<(), String> {
    let key_from_stdin = |field: &String| {
        field.split_once('=').and_then(|(key, value)| {
            let key = key.trim();
            (FROM_STDIN.contains(&key) && value.trim() == "-").then(|| key.to_owned())
        })
    };
    let mut named = fields.iter().filter_map(key_from_stdin);
    let (Some(key), second) = (named.next(), named.next()) else {
        return Ok(());
    };
    if let Some(second) = second {
        return Err(format!(
            "{key}=- and {second}=-: standard input can give one field; give the other on \
             the command line, or in a second command (`update`)"
        ));
    }
    // The lines that are not blank, with their numbers (for a header's error).
    let mut lines = Vec::new();
    let mut numbers = Vec::new();
    for (n, line) in stdin.lines().enumerate() {
        let line = line.map_err(|e| format!("{key}=-: cannot read standard input: {e}"))?;
        if !line.trim().is_empty() {
            lines.push(line.trim().to_owned());
            numbers.push(n + 1);
        }
    }
    let value = match key.as_str() {
        _ if lines.is_empty() => {
            return Err(format!(
                "{key}=-: nothing came on standard input; give {}",
                match key.as_str() {
                    "secrets" => {
                        "one secret per line (`deskhook secret new | deskhook endpoints ... \
                         secrets=-`)"
                    }
                    "url" => "the URL on one line",
                    _ => "one header per line, as 'Name: value'",
                }
            ));
        }
        "secrets" => toml::Value::Array(lines.into_iter().map(toml::Value::String).collect()),
        "url" if lines.len() > 1 => {
            return Err(format!(
                "url=-: {} lines came on standard input; give the URL alone, on one line",
                lines.len()
            ));
        }
        "url" => toml::Value::String(lines.swap_remove(0)),
        _ => {
            let mut headers = toml::Table::new();
            for (n, line) in numbers.iter().zip(&lines) {
                let Some((name, value)) = line.split_once(':') else {
                    return Err(format!(
                        "headers=-: line {n} of standard input is not 'Name: value' (its value \
                         is not repeated here)"
                    ));
                };
                headers.insert(name.trim().to_owned(), value.trim().into());
            }
            toml::Value::Table(headers)
        }
    };
    if let Some(field) = fields
        .iter_mut()
        .find(|field| key_from_stdin(field).is_some())
    {
        *field = format!("{key}={value}");
    }
    Ok(())
}

/// `table` read as an endpoint, or why it cannot be (the deserializer's words).
fn read(table: toml::Table) -> Result<EndpointSpec, String> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())
}

/// An endpoint with only `key` set to `value` (and a name and a URL), read: whether that
/// value is one the field takes.
fn alone(key: &str, value: toml::Value) -> Result<EndpointSpec, String> {
    let mut alone = toml::Table::new();
    alone.insert("name".into(), "x".into());
    alone.insert("url".into(), "https://x.example".into());
    alone.insert(key.to_owned(), value);
    read(alone)
}

/// `current` with `fields` (FIELD=VALUE, the value TOML or else a string) set, and those
/// given as FIELD= removed, read as an endpoint with the words deskhook.toml uses.
pub(super) fn spec_of(mut current: toml::Table, fields: &[String]) -> Result<EndpointSpec, String> {
    let mut given = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        // Not repeated: it may be a secret mistyped (`secrets:whsec_…`).
        let (key, text) = field.split_once('=').ok_or_else(|| {
            format!(
                "field {} of {} has no '=': give FIELD=VALUE (such as \
                 url=https://crm.example.com/hooks)",
                i + 1,
                fields.len()
            )
        })?;
        // The name deskhook.toml also takes for a field, as records store it.
        let key = match key.trim() {
            "workers" => "max_in_flight",
            key => key,
        };
        // FIELD= (nothing after the '='): the field goes back to its default.
        if text.trim().is_empty() {
            if matches!(key, "name" | "url") {
                return Err(format!(
                    "{key}: an endpoint always has one; give {key}=VALUE to change it"
                ));
            }
            if current.remove(key).is_none() {
                let mut set: Vec<&str> = current.keys().map(String::as_str).collect();
                set.sort_unstable();
                return Err(format!(
                    "{key}: not set on this endpoint, so there is nothing to remove (set: {})",
                    set.join(", ")
                ));
            }
            // Without them an endpoint takes more than before: say so.
            match key {
                "actions" => eprintln!(
                    "deskhook: actions removed: the endpoint now receives every event type"
                ),
                "tenant" => eprintln!(
                    "deskhook: tenant removed: the endpoint now receives every tenant's events"
                ),
                _ => {}
            }
            continue;
        }
        let as_text = || toml::Value::String(text.to_owned());
        let mut value = match toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
        {
            // A text field given what TOML reads as a number or a boolean (tenant=2024,
            // name=404): the text as written.
            Some(value)
                if !value.is_str()
                    && alone(key, value.clone()).is_err()
                    && alone(key, as_text()).is_ok() =>
            {
                as_text()
            }
            Some(value) => value,
            None => as_text(),
        };
        // One secret needs no brackets.
        if key == "secrets" && value.is_str() {
            value = toml::Value::Array(vec![value]);
        }
        given.push((key.to_owned(), value.clone()));
        current.insert(key.to_owned(), value);
    }
    read(current).map_err(|message| {
        // Name the field at fault: the first given one that fails on its own.
        given
            .iter()
            .find_map(|(key, value)| {
                alone(key, value.clone()).err().map(|e| {
                    let said = if key == "secrets"
                        && let Err(e) = crate::parse_secrets_from("secrets", &texts_of(value))
                    {
                        // Secret::parse's words, which never repeat the secret.
                        e
                    } else if EndpointSpec::CREDENTIAL_FIELDS.contains(&key.as_str()) {
                        secret_error(key, &e)
                    } else if e.contains(key.as_str()) {
                        deskhook_transports::config::hint_unknown_field(&e)
                    } else {
                        format!("{key}: {e}")
                    };
                    if e.contains("expected a string") {
                        format!(
                            "{said}; put text that TOML reads as a number or a boolean in \
                             quotes (such as headers='{{X-Chat = \"-100123\"}}')"
                        )
                    } else {
                        said
                    }
                })
            })
            .unwrap_or_else(|| hidden(message, &given))
    })
}

/// The error of a [`EndpointSpec::CREDENTIAL_FIELDS`] field, without serde's words about the value, which
/// may repeat it: only what was expected, when serde says.
fn secret_error(key: &str, error: &str) -> String {
    let expected = error
        .rsplit_once(", expected ")
        .map(|(_, expected)| format!(": expected {expected}"))
        .unwrap_or_default();
    format!("{key}: not a valid value (not repeated here: it may be a credential){expected}")
}

/// The text values in `value`, its arrays' and tables' included.
fn texts_of(value: &toml::Value) -> Vec<String> {
    fn texts(value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::String(text) => out.push(text.clone()),
            toml::Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
            toml::Value::Table(table) => table.values().for_each(|v| texts(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    texts(value, &mut out);
    out
}

/// `message` with the text values given to [`EndpointSpec::CREDENTIAL_FIELDS`] left out where
/// serde quotes them (it repeats a value of the wrong type: `secrets={…}` would print the
/// secret).
fn hidden(mut message: String, given: &[(String, toml::Value)]) -> String {
    let secret: Vec<String> = given
        .iter()
        .filter(|(k, _)| EndpointSpec::CREDENTIAL_FIELDS.contains(&k.as_str()))
        .flat_map(|(_, value)| texts_of(value))
        .collect();
    for text in secret.into_iter().filter(|t| !t.is_empty()) {
        // As serde quotes it (escaped, in double quotes): only there, so that a short value
        // ("1", "a") does not garble the rest of the message.
        message = message.replace(&format!("{text:?}"), "\"(hidden)\"");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_toml_values_or_strings() {
        let spec = spec_of(
            toml::Table::new(),
            &[
                "name=crm".into(),
                "url=https://crm.example.com/hooks?a=b".into(),
                r#"actions=["create", "ok"]"#.into(),
                "allow_private=true".into(),
                "max_in_flight=4".into(),
                "retry=0s,5s".into(),
            ],
        )
        .unwrap();
        assert_eq!(spec.url, "https://crm.example.com/hooks?a=b");
        assert!(spec.allow_private);
        assert_eq!(spec.max_in_flight, Some(4));
        assert_eq!(spec.retry.clone().unwrap().to_string(), "0s,5s");
        let err = spec_of(toml::Table::new(), &["name=x".into(), "colour=red".into()]).unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
        // A field without '=' is not repeated: it may be a secret mistyped.
        let err = spec_of(toml::Table::new(), &["secrets:whsec_abc".into()]).unwrap_err();
        assert!(
            err.starts_with("field 1 of 1 has no '='") && !err.contains("whsec"),
            "{err}"
        );
        // Text that TOML reads as a number or a boolean, for a text field: the text.
        let texts = spec_of(
            toml::Table::new(),
            &[
                "name=404".into(),
                "url=https://x.example".into(),
                "tenant=2024".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            (&texts.name[..], texts.tenant.as_deref()),
            ("404", Some("2024"))
        );
        // Inside a table it cannot be told: the error says to quote it.
        let current = toml::Table::try_from(&texts).unwrap();
        let err = spec_of(current, &["headers={X-Chat = -100123}".into()]).unwrap_err();
        assert!(
            err.starts_with("headers: ") && err.contains("in quotes"),
            "{err}"
        );
        // FIELD= removes a field; name and url cannot go.
        let mut current = toml::Table::try_from(&spec).unwrap();
        current.insert("tenant".into(), "acme".into());
        let cleared = spec_of(
            current.clone(),
            &["tenant=".into(), "max_in_flight=".into()],
        )
        .unwrap();
        assert_eq!((cleared.tenant, cleared.max_in_flight), (None, None));
        assert_eq!(cleared.url, spec.url);
        let err = spec_of(current.clone(), &["url=".into()]).unwrap_err();
        assert!(err.starts_with("url: an endpoint always has one"), "{err}");
        // Removing what is not set (a misspelt field) says so, rather than do nothing.
        let err = spec_of(current, &["tennant=".into()]).unwrap_err();
        assert!(
            err.starts_with("tennant: not set on this endpoint") && err.contains("tenant"),
            "{err}"
        );
    }

    #[test]
    fn secrets_come_from_standard_input_with_secrets_dash() {
        let one = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let two = "whsec_4wvgYZ6rbeEftf/nqM2HvZeMJowC0XzL2gZeCDz8OSA=";
        let mut fields: Vec<String> = vec![
            "name=crm".into(),
            "url=https://crm.example.com/hooks".into(),
            "secrets=-".into(),
        ];
        let stdin = format!("{one}\n\n  {two}  \n");
        values_from_stdin(&mut fields, stdin.as_bytes()).unwrap();
        let spec = spec_of(toml::Table::new(), &fields).unwrap();
        assert_eq!(spec.secrets.map(|s| s.len()), Some(2));
        // Nothing on standard input: said, not an endpoint without secrets.
        let mut fields: Vec<String> = vec!["secrets=-".into()];
        let err = values_from_stdin(&mut fields, &b""[..]).unwrap_err();
        assert!(
            err.starts_with("secrets=-: nothing came on standard input"),
            "{err}"
        );
        // Without secrets=-, standard input is not read.
        let mut fields: Vec<String> = vec!["secrets=whsec_x".into()];
        values_from_stdin(&mut fields, &b"whsec_other\n"[..]).unwrap();
        assert_eq!(fields, ["secrets=whsec_x"]);
    }

    /// A chat webhook's URL (its path is its token) and an Authorization header come from
    /// standard input too; one field at a time.
    #[test]
    fn a_url_or_headers_come_from_standard_input_with_a_dash() {
        let read = |fields: &[&str], stdin: &str| {
            let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            values_from_stdin(&mut fields, stdin.as_bytes())
                .and_then(|()| spec_of(toml::Table::new(), &fields))
        };
        let spec = read(
            &["name=chat", "url=-"],
            "\nhttps://chat.example/hooks/T0K3N\n",
        )
        .unwrap();
        assert_eq!(spec.url, "https://chat.example/hooks/T0K3N");
        let spec = read(
            &["name=crm", "url=https://crm.example", "headers=-"],
            "Authorization: Bearer abc\nX-Team:  desk \n",
        )
        .unwrap();
        let headers = spec.headers.unwrap();
        assert_eq!(headers["Authorization"], "Bearer abc");
        assert_eq!(headers["X-Team"], "desk");

        let err = read(
            &["name=crm", "url=https://crm.example", "headers=-"],
            "\nBearer abc\n",
        )
        .unwrap_err();
        assert!(
            err.contains("line 2 of standard input is not 'Name: value'"),
            "{err}"
        );
        assert!(!err.contains("abc"), "{err}");
        let err = read(
            &["name=chat", "url=-"],
            "https://a.example\nhttps://b.example\n",
        )
        .unwrap_err();
        assert!(err.contains("give the URL alone"), "{err}");
        let err = read(&["name=chat", "url=-", "secrets=-"], "x\n").unwrap_err();
        assert!(
            err.starts_with("url=- and secrets=-: standard input can give one field"),
            "{err}"
        );
        // Another field's '-' is its value.
        let spec = read(&["name=crm", "url=https://crm.example", "tenant=-"], "").unwrap();
        assert_eq!(spec.tenant.as_deref(), Some("-"));
    }

    #[test]
    fn one_secret_needs_no_brackets_and_errors_never_repeat_secrets() {
        let base = [
            "name=crm".to_owned(),
            "url=https://crm.example.com".to_owned(),
        ];
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let one = [&base[..], &[format!("secrets={secret}")]].concat();
        let spec = spec_of(toml::Table::new(), &one).unwrap();
        assert_eq!(spec.secrets.map(|s| s.len()), Some(1));
        // Values serde would repeat: a string where another type goes, escaped or not.
        let quoted = "sk_live_\\\"MfKQ9r8G\\\"é";
        for bad in [
            format!("template_vars=\"{secret}\""),
            format!("headers=\"{quoted}\""),
            format!("secrets=[{{a = \"{secret}\"}}]"),
        ] {
            let fields = [&base[..], std::slice::from_ref(&bad)].concat();
            let err = spec_of(toml::Table::new(), &fields).unwrap_err();
            assert!(
                !err.contains("MfKQ9r8G") && err.contains("not repeated here"),
                "{bad}: {err}"
            );
        }
        // The fallback for an error no field makes alone: the values given to secret
        // fields are cut out where serde quotes them, and only there.
        let given = [(
            "headers".to_owned(),
            toml::Value::Array(vec!["tok\"en".into(), "a".into()]),
        )];
        let message = hidden(r#"bad "tok\"en" and "a", a token"#.to_owned(), &given);
        assert_eq!(message, r#"bad "(hidden)" and "(hidden)", a token"#);
    }
}
