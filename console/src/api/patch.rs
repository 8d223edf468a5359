//! `PATCH /api/v1/endpoints/{name}`: change some of an endpoint's settings and keep the
//! others, as a JSON merge patch (RFC 7396) of the settings a GET shows.
//!
//! The patch is merged onto the GET's `settings` (the URL cut to its origin, header values
//! and hidden template variables as `…`, no secrets), and the result is saved as a PUT of it
//! would be: so what a PUT keeps when it is sent back as shown (the URL, the headers while
//! the URL stays, the secrets) a PATCH keeps too, and a header's value is never carried to
//! another origin unless the patch gives it again. A `null` takes a setting away: its
//! default again (`"rate_limit": null`), no tenant, every event type (`"actions": null`),
//! no secret (`"secrets": null`: requests go unsigned, `secret_env` is taken away too unless
//! the patch gives one), no custom header. The settings that name something of the server's
//! own (`ca_file`, `template_file`, `secret_env`) are not taken away so (400): no request
//! could set them again.

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::body_json;
use super::endpoints::{EndpointView, IfMatch, Version, if_match, read_for, save};
use crate::{Problem, State, blocking};

#[utoipa::path(patch, path = "/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name"),
        ("If-Match" = Option<String>, Header,
        description = "The ETag of a GET: the change is refused (412) if the settings changed since")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "The settings to change, as in EndpointSpec; `null` takes one away. \
                       The others stay."),
    responses((status = 200, body = EndpointView,
        headers(("ETag" = String, description = "The new settings' version"))),
        (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 412, body = Problem)))]
pub(super) async fn patch_endpoint(
    Shared(state): Shared<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let expected = if_match(&headers)?;
    let Value::Object(patch) = body_json(&body)? else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the body is not a JSON object; send the settings to change, such as \
             {\"timeout\": \"5s\"}",
        ));
    };
    let sink = state.sink.clone();
    let asked = name.clone();
    let with_if_match = expected.is_some();
    let read = blocking(move || read_for(&sink, &asked, with_if_match)).await?;
    let version = super::version_of(&read);
    let Some(settings) = EndpointView::of(read).settings else {
        return Err(super::registered_in_code(&name));
    };
    let mut value = serde_json::to_value(&settings).map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the endpoint's settings cannot be written as JSON: {e}"),
        )
    })?;
    if let Value::Object(current) = &mut value {
        refuse_taking_server_settings(current, &patch)?;
        merge(current, patch);
    }
    save(state, name, Some(made_on(expected, version)), value).await
}

/// The version a patch made on the settings of `version` is saved on: a change saved
/// meanwhile is not undone (409, send it again; 412 with If-Match, checked against this
/// read too: checked only at the save, a `*` or a list of tags would let this patch, made
/// on the settings before, undo the change made meanwhile).
fn made_on(asked: Option<IfMatch>, version: String) -> Version {
    match asked {
        None => Version::Read(version),
        Some(asked) if asked.matches(&version) => Version::IfMatch(IfMatch::Tags(vec![version])),
        // No version matches: the save answers 412, with the version it finds.
        Some(_) => Version::IfMatch(IfMatch::Tags(Vec::new())),
    }
}

/// Refuses a `null` for a setting that names something of the server's own (`ca_file`,
/// `template_file`, `secret_env`: see the API's docs) which `settings` has: a save would
/// keep it (no request may set it again), and the change be answered 200 with nothing done.
/// But for one the patch replaces: `template_file` by a `template`, `secret_env` by
/// `secrets`.
fn refuse_taking_server_settings(
    settings: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), Problem> {
    let given = |field: &str| patch.get(field).is_some_and(|v| !v.is_null());
    for (field, instead, replaced_by) in [
        (
            "ca_file",
            "change it in deskhook.toml or in the application's code",
            None,
        ),
        (
            "template_file",
            "send a template of your own as `template` instead, or change it in deskhook.toml",
            Some("template"),
        ),
        (
            "secret_env",
            "send the secrets to sign with instead in `secrets`, \"secrets\": null to stop \
             signing, or change it in deskhook.toml",
            Some("secrets"),
        ),
    ] {
        let taken = patch.get(field).is_some_and(Value::is_null) && !replaced_by.is_some_and(given);
        if taken && settings.get(field).is_some_and(|v| !v.is_null()) {
            return Err(Problem::field(
                field,
                format!(
                    "{field} names something of the server's own, which a request to the API \
                     cannot take away (nor set again): {instead}"
                ),
            ));
        }
    }
    Ok(())
}

/// Merges `patch` onto `settings` as RFC 7396 says, but for a `null` of a setting that a
/// PUT keeps when it is left out: that one is given its empty value, which takes it away.
fn merge(settings: &mut Map<String, Value>, patch: Map<String, Value>) {
    // No secret means none from the environment either, unless the patch names a variable.
    let names_env = patch.get("secret_env").is_some_and(|env| !env.is_null());
    // A template of its own replaces the file's (a PUT with one drops the file too), and
    // the file's content type unless the patch gives one (a preset's is its own, as the
    // form has it).
    if patch.get("template").is_some_and(|t| !t.is_null())
        && settings.remove("template_file").is_some()
    {
        settings.remove("template_content_type");
    }
    for (key, value) in patch {
        if !value.is_null() {
            merge_into(settings, key, value);
            continue;
        }
        let taken_away = match key.as_str() {
            "tenant" | "actions" => Some(Value::Null),
            "allow_private" => Some(Value::Bool(false)),
            "allow_cidrs" | "secrets" => Some(Value::Array(Vec::new())),
            "headers" => Some(Value::Object(Map::new())),
            _ => None,
        };
        if key == "secrets" && !names_env {
            settings.remove("secret_env");
        }
        match taken_away {
            Some(empty) => {
                settings.insert(key, empty);
            }
            None => {
                settings.remove(&key);
            }
        }
    }
}

/// RFC 7396 inside a setting (`headers`, `template_vars`): `null` removes a member.
fn merge_nested(current: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            current.remove(&key);
        } else {
            merge_into(current, key, value);
        }
    }
}

/// Sets `map[key]` to RFC 7396's merge of `value` (not `null`) onto it, in its place: an
/// object is merged onto the member's object, or onto an empty one (its `null`s then take
/// nothing, rather than being set).
fn merge_into(map: &mut Map<String, Value>, key: String, value: Value) {
    let Value::Object(nested) = value else {
        map.insert(key, value);
        return;
    };
    match map.get_mut(&key) {
        Some(Value::Object(current)) => merge_nested(current, nested),
        Some(other) => {
            let mut merged = Map::new();
            merge_nested(&mut merged, nested);
            *other = Value::Object(merged);
        }
        None => {
            let mut merged = Map::new();
            merge_nested(&mut merged, nested);
            map.insert(key, Value::Object(merged));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn merged(settings: Value, patch: Value) -> Value {
        let (Value::Object(mut settings), Value::Object(patch)) = (settings, patch) else {
            panic!("objects");
        };
        merge(&mut settings, patch);
        Value::Object(settings)
    }

    #[test]
    fn a_patch_changes_what_it_names_and_null_takes_a_setting_away() {
        let settings = json!({
            "name": "crm", "url": "https://crm.example.com/…", "tenant": "acme",
            "actions": ["create"], "rate_limit": "5/s", "allow_private": true,
            "headers": {"Authorization": "…", "X-Team": "…"},
        });
        assert_eq!(
            merged(
                settings.clone(),
                json!({"timeout": "5s", "headers": {"X-Team": null, "X-New": "1"}})
            ),
            json!({
                "name": "crm", "url": "https://crm.example.com/…", "tenant": "acme",
                "actions": ["create"], "rate_limit": "5/s", "allow_private": true,
                "headers": {"Authorization": "…", "X-New": "1"}, "timeout": "5s",
            })
        );
        assert_eq!(
            merged(
                settings,
                json!({"tenant": null, "actions": null, "rate_limit": null,
                       "allow_private": null, "secrets": null, "headers": null})
            ),
            json!({
                "name": "crm", "url": "https://crm.example.com/…", "tenant": null,
                "actions": null, "allow_private": false, "secrets": [], "headers": {},
            })
        );
    }

    /// RFC 7396: an object is merged onto the setting's object, or onto an empty one when
    /// the setting has none, so that its `null`s take nothing rather than being set.
    #[test]
    fn an_object_merged_where_there_is_none_keeps_none_of_its_nulls() {
        assert_eq!(
            merged(
                json!({"name": "crm", "template_vars": "not an object"}),
                json!({"headers": {"X-A": "1", "X-B": null},
                       "template_vars": {"chat": {"id": "1", "thread": null}}})
            ),
            json!({"name": "crm", "template_vars": {"chat": {"id": "1"}},
                   "headers": {"X-A": "1"}})
        );
        // In place: the other headers keep their order.
        assert_eq!(
            merged(
                json!({"headers": {"X-A": "…", "X-B": {"deep": 1}, "X-C": "…"}}),
                json!({"headers": {"X-B": {"deep": null, "other": 2}}})
            )
            .to_string(),
            r#"{"headers":{"X-A":"…","X-B":{"other":2},"X-C":"…"}}"#
        );
    }

    #[test]
    fn a_patch_is_saved_on_the_version_it_was_made_on() {
        let v = || "v1".to_owned();
        assert_eq!(made_on(None, v()), Version::Read(v()));
        // `*` and a list that holds it: saved only if still that version.
        for asked in [IfMatch::Any, IfMatch::Tags(vec!["v0".into(), v()])] {
            assert_eq!(
                made_on(Some(asked), v()),
                Version::IfMatch(IfMatch::Tags(vec![v()]))
            );
        }
        assert_eq!(
            made_on(Some(IfMatch::Tags(vec!["v0".into()])), v()),
            Version::IfMatch(IfMatch::Tags(Vec::new()))
        );
    }

    #[test]
    fn a_setting_of_the_servers_own_is_not_taken_away() {
        let Value::Object(settings) = json!({"name": "crm", "ca_file": "/etc/ca.pem"}) else {
            panic!("an object");
        };
        let patch = |p: Value| match p {
            Value::Object(p) => p,
            _ => panic!("an object"),
        };
        let refused = refuse_taking_server_settings(&settings, &patch(json!({"ca_file": null})))
            .expect_err("refused");
        assert_eq!(refused.field.as_deref(), Some("ca_file"));
        // Absent, there is nothing to take: as RFC 7396 has it, a no-op.
        assert!(
            refuse_taking_server_settings(&settings, &patch(json!({"secret_env": null}))).is_ok()
        );
    }

    /// A setting of the server's own is replaced by what the patch gives instead: the
    /// template file by a template, the variable by secrets.
    #[test]
    fn a_setting_of_the_servers_own_gives_way_to_what_replaces_it() {
        let settings = json!({"name": "crm", "template_file": "/etc/crm.j2",
                              "template_content_type": "text/plain",
                              "secret_env": "CRM_SECRET"});
        let Value::Object(map) = &settings else {
            panic!("an object");
        };
        let replacing = json!({"template": "slack", "template_file": null,
                               "secrets": ["whsec_x"], "secret_env": null});
        let Value::Object(replacing) = replacing else {
            panic!("an object");
        };
        assert!(refuse_taking_server_settings(map, &replacing).is_ok());
        let alone = |field: &str| {
            let mut patch = Map::new();
            patch.insert(field.to_owned(), Value::Null);
            refuse_taking_server_settings(map, &patch)
                .expect_err("refused")
                .field
        };
        assert_eq!(alone("secret_env").as_deref(), Some("secret_env"));
        assert_eq!(alone("template_file").as_deref(), Some("template_file"));
        // A template alone is enough: the file goes, and its content type (but one the
        // patch gives).
        assert_eq!(
            merged(settings.clone(), json!({"template": "slack"})),
            json!({"name": "crm", "secret_env": "CRM_SECRET", "template": "slack"})
        );
        assert_eq!(
            merged(
                settings,
                json!({"template": "{{ event.ticket.code }}", "template_content_type": "text/csv"})
            ),
            json!({"name": "crm", "secret_env": "CRM_SECRET",
                   "template": "{{ event.ticket.code }}", "template_content_type": "text/csv"})
        );
    }

    #[test]
    fn no_secret_means_none_from_the_environment_either() {
        let settings = json!({"name": "crm", "secret_env": "CRM_SECRET"});
        assert_eq!(
            merged(settings.clone(), json!({"secrets": null})),
            json!({"name": "crm", "secrets": []})
        );
        assert_eq!(
            merged(
                settings,
                json!({"secrets": null, "secret_env": "NEW_SECRET"})
            ),
            json!({"name": "crm", "secrets": [], "secret_env": "NEW_SECRET"})
        );
    }
}
