//! `deskhook endpoints --nats …` against a real nats-server on 127.0.0.1: add, update, pause,
//! list, get, remove, with secrets sealed by the key in the environment and the same errors
//! as deskhook.toml; the key rotated; a misspelt bucket said, not made.

use std::process::Command;

use deskhook_tests::nats::NatsServer;

use crate::support::{self, text};

/// Runs `deskhook endpoints --nats URL ARGS…` with the secrets key `key` (if any); returns
/// (success, stdout, stderr).
fn endpoints(url: &str, key: Option<&str>, args: &[&str]) -> (bool, String, String) {
    rotating(url, (key, None), args)
}

/// [`endpoints`] with the keys (the key, the previous ones) of a rotation.
fn rotating(
    url: &str,
    (key, previous): (Option<&str>, Option<&str>),
    args: &[&str],
) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deskhook"));
    command.args(["endpoints", "--nats", url]).args(args);
    command.env_remove("DESKHOOK_SECRETS_KEY");
    command.env_remove("DESKHOOK_SECRETS_KEY_PREVIOUS");
    if let Some(key) = key {
        command.env("DESKHOOK_SECRETS_KEY", key);
    }
    if let Some(previous) = previous {
        command.env("DESKHOOK_SECRETS_KEY_PREVIOUS", previous);
    }
    let output = command.output().expect("deskhook runs");
    (
        output.status.success(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// A bad field of `add`, a bad bucket name and a key variable set empty are refused before
/// anything connects: the "server" is a listener that must see no connection.
#[test]
fn a_slip_in_add_or_in_the_bucket_name_is_named_before_connecting() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("nats://{}", listener.local_addr().unwrap());
    let add = ["add", "name=crm", "url=https://crm.example.com/hooks"];
    for (extra, says) in [
        (
            &["secrets=whsec_AAAA"][..],
            "secrets: secret is 3 bytes; it must be 24 to 64 bytes",
        ),
        (&["urll=https://x.example"][..], "(did you mean `url`?)"),
        (
            &["timeout=0s"][..],
            "timeout = 0s is shorter than an attempt can take",
        ),
        (
            &["--bucket", "my endpoints"][..],
            "--bucket: invalid configuration: KV bucket 'my endpoints': a bucket's name is \
             letters, digits, '-' and '_'; this one has ' '",
        ),
    ] {
        // The flag goes before the subcommand, a field after it.
        let args: Vec<&str> = if extra[0].starts_with("--") {
            extra.iter().chain(&add).copied().collect()
        } else {
            add.iter().chain(extra).copied().collect()
        };
        let (ok, _, err) = endpoints(&url, None, &args);
        assert!(!ok, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("no secrets key"), "{args:?}: {err}");
    }
    // A bucket has 1 to 5 copies; 0 is not made into 1.
    for replicas in ["0", "6"] {
        let (ok, _, err) = endpoints(&url, None, &["--replicas", replicas, "list"]);
        assert!(!ok && err.contains("not in 1..=5"), "{replicas}: {err}");
    }
    // The bucket's flags go before the subcommand or after it.
    for args in [["--bucket", "a.b", "list"], ["list", "--bucket", "a.b"]] {
        let (ok, _, err) = endpoints(&url, None, &args);
        assert!(!ok && err.contains("this one has '.'"), "{args:?}: {err}");
    }
    // Without --nats (or DESKHOOK_NATS), a usage error: status 2.
    let out = Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["endpoints", "list", "--bucket", "endpoints"])
        .env_remove("DESKHOOK_NATS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--nats URL is required"),
        "{}",
        text(&out.stderr)
    );
    // A key variable exported empty (`DESKHOOK_SECRETS_KEY=$UNSET`) is not taken for none,
    // which would write records unsealed.
    let (ok, _, err) = endpoints(&url, Some(" "), &["list"]);
    assert!(
        !ok && err.contains("DESKHOOK_SECRETS_KEY is set but empty"),
        "{err}"
    );

    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "nothing connected"
    );
}

#[test]
fn an_operator_changes_the_shared_endpoints_with_one_command_each() {
    let server = NatsServer::start();
    let url = server.url();
    let key = support::new_secrets_key();
    let key = Some(key.as_str());
    let secret = "secrets=[\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]";

    // A bucket that does not exist is said, and not made by reading it: the second look
    // finds none either (it used to make an empty one, and list nothing).
    for _ in 0..2 {
        let (ok, out, err) = endpoints(&url, key, &["--bucket", "deskhook_endpoint", "list"]);
        assert!(!ok && out.is_empty(), "{out}");
        assert!(
            err.contains("there is no KV bucket 'deskhook_endpoint' on these servers")
                && err.contains("`deskhook endpoints --bucket NAME add …`), not by reading it"),
            "{err}"
        );
    }

    // Secrets need the key; with it the endpoint is added.
    let (ok, _, err) = endpoints(
        &url,
        None,
        &["add", "name=crm", "url=https://crm.example.com/h", secret],
    );
    assert!(!ok && err.contains("DESKHOOK_SECRETS_KEY"), "{err}");
    let (ok, out, err) = endpoints(
        &url,
        key,
        &[
            "add",
            "name=crm",
            "url=https://crm.example.com/h",
            "tenant=acme",
            secret,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("added crm (revision "), "{out}");
    // An endpoint added without the key (its URL in the open) could be anyone's: readers
    // with the key warn until it is resealed.
    let (ok, _, err) = endpoints(
        &url,
        None,
        &[
            "add",
            "name=plain",
            "url=https://plain.example.com/h",
            "allow_private=true",
        ],
    );
    assert!(ok && err.contains("written unsealed"), "{err}");
    // Readers with the key refuse it: it sets allow_private, which reaches into their
    // networks, and anyone who can write to the bucket could have written it.
    let (ok, _, err) = endpoints(&url, key, &["get", "plain"]);
    assert!(
        !ok && err.contains("sets allow_private") && err.contains("reseal --dry-run"),
        "{err}"
    );
    let (ok, _, err) = endpoints(&url, None, &["reseal"]);
    assert!(!ok && err.contains("needs the secrets key"), "{err}");
    // Every setting, to check before sealing makes it trusted; nothing written.
    let (ok, out, err) = endpoints(&url, key, &["reseal", "--dry-run"]);
    assert!(
        ok && out.starts_with("would reseal plain (revision ")
            && out.contains("\"allow_private\":true")
            && out.contains("https://plain.example.com/h"),
        "{out}{err}"
    );
    let (ok, _, err) = endpoints(&url, key, &["get", "plain"]);
    assert!(!ok && err.contains("sets allow_private"), "{err}");
    // Then only what was looked at, at the revision shown: one written since is left.
    let shown: u64 = out
        .split("(revision ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        err.contains(&format!("deskhook endpoints reseal plain@{shown}")),
        "{err}"
    );
    let stale = format!("plain@{}", shown - 1);
    let (ok, _, err) = endpoints(&url, key, &["reseal", &stale]);
    assert!(!ok && err.contains("was changed after revision"), "{err}");
    let (ok, _, err) = endpoints(&url, key, &["reseal", "plain"]);
    assert!(!ok && err.contains("NAME@REVISION"), "{err}");
    // Nor all at once: it sets allow_private, and is sealed only by name.
    let (ok, _, err) = endpoints(&url, key, &["reseal"]);
    assert!(
        !ok && err.contains("sets allow_private") && err.contains(&format!("plain@{shown}")),
        "{err}"
    );
    assert!(err.contains("is sealed by name once checked"), "{err}");
    let (ok, out, err) = endpoints(&url, key, &["reseal", &format!("plain@{shown}")]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("resealed plain (revision ")
            && out.contains("https://plain.example.com/h")
            && out.contains("\"allow_private\":true"),
        "what it sealed, to check: {out}"
    );
    assert_eq!(out.lines().count(), 1, "crm is sealed already: {out}");
    let (ok, out, err) = endpoints(&url, key, &["get", "plain"]);
    assert!(
        ok && out.contains("https://plain.example.com/h"),
        "{out}{err}"
    );
    let (ok, _, err) = endpoints(&url, key, &["remove", "plain"]);
    assert!(ok, "{err}");
    // The same errors as deskhook.toml, naming the field.
    let (ok, _, err) = endpoints(
        &url,
        key,
        &["add", "name=erp", "url=https://erp.example.com", "retry=5x"],
    );
    assert!(!ok && err.contains("retry"), "{err}");
    let (ok, _, err) = endpoints(
        &url,
        key,
        &[
            "add",
            "name=erp",
            "url=https://erp.example.com",
            "colour=red",
        ],
    );
    assert!(!ok && err.contains("unknown field `colour`"), "{err}");
    let (ok, _, err) = endpoints(
        &url,
        key,
        &["add", "name=crm", "url=https://crm.example.com/h"],
    );
    assert!(!ok && err.contains("exists already"), "{err}");

    // A payload preset, refused without the variable it needs, as in deskhook.toml.
    let (ok, _, err) = endpoints(&url, key, &["update", "crm", "template=telegram"]);
    assert!(!ok && err.contains("template_vars.chat_id"), "{err}");

    // Update keeps what it is not given; pause shows in the list.
    let (ok, _, err) = endpoints(
        &url,
        key,
        &[
            "update",
            "crm",
            "retry=0s,5s",
            "template=telegram",
            "template_vars={chat_id=\"-100123\"}",
        ],
    );
    assert!(ok, "{err}");
    let (ok, paused, err) = endpoints(&url, key, &["pause", "crm"]);
    assert!(ok, "{err}");
    // Pausing it again writes nothing: the same revision.
    let revision = paused.trim().strip_prefix("paused crm (revision ").unwrap();
    let (ok, again, err) = endpoints(&url, key, &["pause", "crm"]);
    assert!(ok, "{err}");
    assert_eq!(
        again.trim(),
        format!("crm is paused already: nothing to change (revision {revision}")
    );
    let (_, list, _) = endpoints(&url, key, &["list"]);
    assert!(
        list.starts_with("crm  acme  paused  https://crm.example.com/…  1 sealed secret(s)  rev "),
        "{list}"
    );
    // --replicas that the bucket does not have is said, not ignored.
    let (ok, _, err) = endpoints(&url, key, &["--replicas", "3", "list"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("has 1 replica(s), not the 3 of --replicas"),
        "{err}"
    );
    let (_, _, err) = endpoints(&url, key, &["--replicas", "1", "list"]);
    assert!(!err.contains("replica"), "{err}");
    let (ok, get, err) = endpoints(&url, key, &["get", "crm"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(get.trim()).unwrap();
    assert_eq!(json["retry"], "0s,5s");
    assert_eq!(json["template"], "telegram");
    assert_eq!(json["template_vars"]["chat_id"], "-100123");
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["paused"], true);
    assert_eq!(json["secret_hints"], serde_json::json!(["LaSw"]));
    assert!(!get.contains("MfKQ9r8G"), "{get}");
    // Resuming a running one writes nothing either, and says so.
    let (ok, _, err) = endpoints(&url, key, &["resume", "crm"]);
    assert!(ok, "{err}");
    let (ok, again, err) = endpoints(&url, key, &["resume", "crm"]);
    assert!(ok, "{err}");
    assert!(
        again.starts_with("crm is not paused: nothing to change (revision "),
        "{again}"
    );
    // Without the key the sealed endpoint cannot be read: said, naming it.
    let (ok, _, err) = endpoints(&url, None, &["get", "crm"]);
    assert!(!ok && err.contains("endpoint 'crm'"), "{err}");

    // At a revision it is no longer at, nothing is removed.
    let (ok, _, err) = endpoints(&url, key, &["remove", "crm", "--revision", "1"]);
    assert!(
        !ok && err.contains("was changed by someone else since revision 1"),
        "{err}"
    );
    let (_, get, _) = endpoints(&url, key, &["get", "crm"]);
    let current =
        serde_json::from_str::<serde_json::Value>(get.trim()).unwrap()["revision"].to_string();
    let (ok, out, err) = endpoints(&url, key, &["remove", "crm", "--revision", &current]);
    assert!(ok && out.trim() == "removed crm", "{out}{err}");
    let (ok, _, err) = endpoints(&url, key, &["remove", "crm"]);
    assert!(!ok && err.contains("no endpoint is named 'crm'"), "{err}");
    let (_, list, _) = endpoints(&url, key, &["list"]);
    assert_eq!(list, "");
}

#[test]
fn the_secrets_key_is_rotated_without_giving_the_secrets_again() {
    let server = NatsServer::start();
    let url = server.url();
    let (old, new) = (support::new_secrets_key(), support::new_secrets_key());
    let (old, new) = (Some(old.as_str()), Some(new.as_str()));
    let secret = "secrets=[\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]";
    let (ok, _, err) = endpoints(
        &url,
        old,
        &["add", "name=crm", "url=https://crm.example.com/h", secret],
    );
    assert!(ok, "{err}");
    // The new key alone does not open it; with the old one as a previous key, it reads, and
    // the list says what is left to do.
    let (ok, _, err) = endpoints(&url, new, &["get", "crm"]);
    assert!(!ok && err.contains("sealed with another key"), "{err}");
    let (ok, list, err) = rotating(&url, (new, old), &["list"]);
    assert!(
        ok && list.contains("(sealed with a previous key: rekey)"),
        "{list}{err}"
    );
    // Previous keys without the new one are refused.
    let (ok, _, err) = rotating(&url, (None, old), &["list"]);
    assert!(
        !ok && err.contains("DESKHOOK_SECRETS_KEY_PREVIOUS"),
        "{err}"
    );
    // rekey without the old key cannot open it, and says so.
    let (ok, _, err) = endpoints(&url, new, &["rekey"]);
    assert!(
        !ok && err.contains("crm") && err.contains("could not be sealed with the new key"),
        "{err}"
    );
    let (ok, out, err) = rotating(&url, (new, old), &["rekey"]);
    assert!(
        ok && out.starts_with("rekeyed crm (revision "),
        "{out}{err}"
    );
    // Now the new key alone opens it, secrets and all, and the old one does not.
    let (ok, out, err) = endpoints(&url, new, &["get", "crm"]);
    assert!(
        ok && out.contains("LaSw") && out.contains("https://crm.example.com/h"),
        "{out}{err}"
    );
    let (ok, _, err) = endpoints(&url, old, &["get", "crm"]);
    assert!(!ok && err.contains("sealed with another key"), "{err}");
    // Nothing is left to rekey.
    let (ok, out, err) = rotating(&url, (new, old), &["rekey"]);
    assert!(ok && out.is_empty(), "{out}{err}");
}

#[test]
fn a_new_key_that_cannot_be_written_is_a_failure() {
    // stdout on a full disk (`> key`): the key is not saved, and the exit says so (it was 0).
    let full = std::fs::File::create("/dev/full").expect("/dev/full");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["endpoints", "new-key"])
        .stdout(full)
        .output()
        .expect("deskhook runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
}

/// An operator with another key than the bucket's: `add` and `add --replace` are refused
/// (add used to answer "added", and the relays could not read the record). `list` shows
/// what it can and a line for each record it cannot (it used to fail at the first), and
/// `add --replace` writes over an unreadable record in one write (a remove then an add
/// would leave the events in between to no endpoint).
#[test]
fn a_record_the_key_does_not_open_is_listed_refused_and_replaced() {
    let server = NatsServer::start();
    let url = server.url();
    let (theirs, mine) = (support::new_secrets_key(), support::new_secrets_key());
    let (theirs, mine) = (Some(theirs.as_str()), Some(mine.as_str()));
    let secret = "secrets=[\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]";
    for name in ["name=crm", "name=audit"] {
        let (ok, _, err) = endpoints(&url, theirs, &["add", name, "url=https://a.example.com/h"]);
        assert!(ok, "{err}");
    }

    let refused = |args: &[&str], records: &str| {
        let (ok, out, err) = endpoints(&url, mine, args);
        assert!(!ok && out.is_empty(), "{out}");
        assert!(
            err.contains(&format!(
                "the key in $DESKHOOK_SECRETS_KEY opens none of the bucket's {records}"
            )) && err.contains("$DESKHOOK_SECRETS_KEY_PREVIOUS"),
            "{err}"
        );
    };
    let billing = ["add", "name=billing", "url=https://b.example.com/h", secret];
    refused(&billing, "sealed records (audit, crm)");
    let replacing = [
        "add",
        "--replace",
        "name=crm",
        "url=https://c.example.com/h",
        secret,
    ];
    refused(&replacing, "other sealed records (audit)");

    // A record of a newer deskhook: unreadable here, and no sign of another key.
    deskhook_tests::nats::block_on(async {
        let js = deskhook_tests::nats::context(&url).await;
        let bucket = js.get_key_value("deskhook_endpoints").await.unwrap();
        // The key is the name, base64url: "future".
        let record = r#"{"layout":99,"spec":{"name":"future"},"sealed":"AAAA"}"#;
        bucket.put("ZnV0dXJl", record.into()).await.unwrap();
    });
    let (ok, out, err) = endpoints(&url, theirs, &["list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(!ok, "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("audit  -  active  https://a.example.com/"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("crm  -  active  https://a.example.com/"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("future  ?  unreadable  ?  ?  rev "),
        "{out}"
    );
    assert!(
        err.contains("endpoint 'future' in the bucket: record layout 99")
            && err.contains("1 of 3 record(s) could not be read (above)"),
        "{err}"
    );
    // Their key writes over it.
    let (ok, out, err) = endpoints(
        &url,
        theirs,
        &[
            "add",
            "--replace",
            "name=future",
            "url=https://f.example.com/h",
            secret,
        ],
    );
    assert!(
        ok && out.starts_with("replaced future (revision "),
        "{out}{err}"
    );
    let (ok, out, err) = endpoints(&url, theirs, &["list"]);
    assert!(ok && out.lines().count() == 3, "{out}{err}");
    assert!(
        out.contains("future  -  active  https://f.example.com/…  1 sealed secret(s)"),
        "{out}"
    );
    // Mine reads none of them: each is a line, and the reasons name the key.
    let (ok, out, err) = endpoints(&url, mine, &["list"]);
    assert!(
        !ok && out.lines().all(|l| l.contains("  ?  unreadable  ")),
        "{out}"
    );
    assert!(
        err.contains("endpoint 'audit': its sealed part does not open with this secrets key")
            && err.contains("add --replace name=audit")
            && err.contains("3 of 3 record(s) could not be read (above)"),
        "{err}"
    );
}

/// An empty bucket's list says so, on stderr (stdout stays empty for scripts).
#[test]
fn an_empty_buckets_list_says_there_is_no_endpoint() {
    let server = NatsServer::start();
    let url = server.url();
    let key = support::new_secrets_key();
    let (ok, _, err) = endpoints(
        &url,
        Some(&key),
        &["add", "name=crm", "url=https://a.example.com/h"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = endpoints(&url, Some(&key), &["remove", "crm"]);
    assert!(ok, "{err}");
    let (ok, out, err) = endpoints(&url, Some(&key), &["list"]);
    assert!(ok && out.is_empty(), "{out}");
    assert!(
        err.contains("the bucket has no endpoint; add one with `add name=… url=…`"),
        "{err}"
    );
}
