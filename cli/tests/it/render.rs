//! `deskhook render` prints the exact wire body, and names the problem when it cannot.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn deskhook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(args)
        .output()
        .expect("the deskhook binary runs")
}

fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/fixtures/zenlix/event.json")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn all_actions_print_twelve_bodies_equal_to_the_reference_but_for_action_and_description() {
    let path = reference_path();
    let out = deskhook(&[
        "render",
        "--action",
        "all",
        "--event",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reference: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12);
    for (line, action) in lines.iter().zip(deskhook::Action::ALL) {
        let mut body: Value = serde_json::from_str(line).unwrap();
        assert_eq!(body["action"], action.as_str());
        assert_eq!(body["description"], action.label_ru());
        body["action"] = reference["action"].clone();
        body["description"] = reference["description"].clone();
        // Same keys in the same order, same values.
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            serde_json::to_string(&reference).unwrap()
        );
    }
}

#[test]
fn an_action_and_a_description_render_the_built_in_sample_on_one_line() {
    let out = deskhook(&[
        "render",
        "--action",
        "Approve",
        "--description",
        "Checked by QA",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["action"], "approve");
    assert_eq!(body["description"], "Checked by QA");
    assert_eq!(body["ticket"]["code"], "E3XK");
    // Compact: the exact bytes a webhook carries, one body per line.
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

#[test]
fn a_bad_action_names_the_input_and_suggests_the_closest() {
    let out = deskhook(&["render", "--action", "aprove"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown action 'aprove' (did you mean 'approve'?)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unreadable_and_invalid_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = deskhook(&[
        "render",
        "--action",
        "ok",
        "--event",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot read the event file '{}'",
            missing.display()
        )),
        "{stderr}"
    );

    let bad = dir.path().join("bad.json");
    let mut value: Value =
        serde_json::from_slice(&std::fs::read(reference_path()).unwrap()).unwrap();
    value["ticket"]["inspect_after_ok"] = Value::from(3);
    std::fs::write(&bad, value.to_string()).unwrap();
    let out = deskhook(&["render", "--action", "ok", "--event", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid event at ticket.inspect_after_ok"),
        "{stderr}"
    );
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_event_can_come_from_standard_input() {
    use std::io::Write as _;
    use std::process::Stdio;
    let run = |input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args(["render", "--action", "ok", "--event", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let reference = std::fs::read(reference_path()).unwrap();
    let out = run(&reference);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_file = deskhook(&[
        "render",
        "--action",
        "ok",
        "--event",
        reference_path().to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout), text(&from_file.stdout));
    let out = run(b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the event in standard input is empty"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_byte_order_mark_is_accepted_and_an_empty_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bom = dir.path().join("bom.json");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(reference_path()).unwrap());
    std::fs::write(&bom, bytes).unwrap();
    let out = deskhook(&["render", "--action", "ok", "--event", bom.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "\n").unwrap();
    let out = deskhook(&[
        "render",
        "--action",
        "ok",
        "--event",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is empty"),
        "{}",
        text(&out.stderr)
    );
}

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/fixtures")
        .join(path)
}

#[test]
fn vendor_formats_print_the_body_they_would_send() {
    for (format, file) in [
        ("usedesk", "usedesk/comment_created.json"),
        ("iqchannels", "iqchannels/message_created_client.json"),
    ] {
        let path = fixture(file);
        let out = deskhook(&[
            "render",
            "--format",
            format,
            "--event",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        // Compact, and the same JSON as the file, keys in the order they came.
        let written: Value = serde_json::from_str(stdout.trim_end()).unwrap();
        let original: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_string(&written).unwrap(),
            serde_json::to_string(&original).unwrap(),
            "{format}"
        );
        assert_eq!(stdout.trim_end(), serde_json::to_string(&original).unwrap());

        let pretty = deskhook(&[
            "render",
            "--format",
            format,
            "--event",
            path.to_str().unwrap(),
            "--pretty",
        ]);
        assert!(pretty.status.success());
        assert!(text(&pretty.stdout).lines().count() > 3);
    }
}

#[test]
fn vendor_formats_refuse_zenlix_flags_and_other_formats_bodies() {
    let usedesk = fixture("usedesk/rating.json");
    let usedesk = usedesk.to_str().unwrap();
    // Usage errors exit 2.
    for args in [
        &["render", "--format", "usedesk"][..],
        &[
            "render", "--format", "usedesk", "--event", usedesk, "--action", "ok",
        ],
        &[
            "render",
            "--format",
            "usedesk",
            "--event",
            usedesk,
            "--description",
            "x",
        ],
        &["render", "--format", "zendesk", "--event", usedesk],
        &["render", "--format", "zenlix"],
        // Template settings without a template.
        &[
            "render",
            "--action",
            "create",
            "--template-var",
            "chat_id=1",
        ],
    ] {
        let out = deskhook(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = deskhook(&["render", "--format", "usedesk"]);
    assert!(
        text(&out.stderr).contains("--format usedesk needs --event FILE"),
        "{}",
        text(&out.stderr)
    );
    // With the usage of the subcommand, as clap's own errors have.
    assert!(
        text(&out.stderr).contains("\nUsage: deskhook render [OPTIONS]\n"),
        "{}",
        text(&out.stderr)
    );

    // A Usedesk body read as iQChannels names the problem and the file.
    let out = deskhook(&["render", "--format", "iqchannels", "--event", usedesk]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("deskhook: "), "{stderr}");
    assert!(stderr.contains("rating.json': invalid event"), "{stderr}");

    // An iQChannels type deskhook cannot send is refused.
    let tmp = tempfile::tempdir().unwrap();
    let odd = tmp.path().join("odd.json");
    std::fs::write(
        &odd,
        br#"{"ChatEvent":{"Id":1,"Type":"message_exploded","ChatId":2},"Rels":{}}"#,
    )
    .unwrap();
    let out = deskhook(&[
        "render",
        "--format",
        "iqchannels",
        "--event",
        odd.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ChatEvent.Type 'message_exploded' is not an iQChannels"),
        "{}",
        text(&out.stderr)
    );
    // So is a Usedesk event deskhook does not know (read, but it cannot be sent).
    let review = tmp.path().join("review.json");
    std::fs::write(&review, br#"{"secret":"s","review":{"ticket_id":1}}"#).unwrap();
    let out = deskhook(&[
        "render",
        "--format",
        "usedesk",
        "--event",
        review.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the event is under 'review', not a Usedesk event"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_template_renders_each_body_on_one_line_and_its_errors_say_where() {
    let out = deskhook(&["render", "--action", "all", "--template", "slack"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12);
    for (line, action) in lines.iter().zip(deskhook::Action::ALL) {
        let body: Value = serde_json::from_str(line).unwrap();
        let fallback = body["text"].as_str().unwrap();
        assert!(fallback.starts_with(action.label_ru()), "{fallback}");
        assert_eq!(body["blocks"][0]["type"], "section");
    }

    let out = deskhook(&[
        "render",
        "--action",
        "create",
        "--template",
        "{\"a\": \"{{ ticket }}\", \"b\": \"{{ event.ticket.nope }}\"}",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 1") && stderr.contains("event.ticket.nope"),
        "{stderr}"
    );

    // A bad flag's value is a usage error (exit 2), as the help says.
    let out = deskhook(&["render", "--action", "create", "--template", "slak"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean 'slack'?"));
    let out = deskhook(&["render", "--action", "create", "--template", "telegram"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--template-var"),
        "{}",
        text(&out.stderr)
    );
    // A file's error names the flag that gave it.
    let out = deskhook(&[
        "render",
        "--action",
        "create",
        "--template-file",
        "no-such-template.j2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("deskhook: --template-file: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn explain_says_how_a_template_renders_and_what_would_make_it_faster() {
    let explained = |template: &str| {
        let out = deskhook(&[
            "render",
            "--action",
            "create",
            "--explain",
            "--template",
            template,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).lines().count(),
            1,
            "the body is printed too"
        );
        text(&out.stderr)
    };
    assert!(explained("slack").contains("the preset 'slack' renders as Rust code"));
    let direct = explained(r#"{"t": "{{ subject|truncate(20) }}", "e": {{ event|tojson }}}"#);
    assert!(direct.contains("without minijinja"), "{direct}");
    let by_construction = explained(r#"{"t": "{{ subject|title }}"}"#);
    assert!(
        by_construction.contains("JSON by construction")
            && by_construction.contains("would render without minijinja"),
        "{by_construction}"
    );
    let checked = explained(r#"{"t": {% if subject %}"{{ subject }}"{% else %}null{% endif %}}"#);
    assert!(
        checked.contains("checked to be JSON") && checked.contains("without tags"),
        "{checked}"
    );
    let out = deskhook(&["render", "--action", "create", "--explain"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--explain needs --template"));
    // A tenant changes only what a template renders.
    let out = deskhook(&["render", "--action", "create", "--tenant", "acme"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--tenant is what a payload template sees"));
}

#[test]
fn a_vendor_event_renders_with_a_template_too() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/fixtures/usedesk/comment_created.json");
    let out = deskhook(&[
        "render",
        "--format",
        "usedesk",
        "--event",
        path.to_str().unwrap(),
        "--template",
        "discord",
        "--template-var",
        "lang=ru",
        "--pretty",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["content"], "Новый комментарий");
    assert_eq!(body["embeds"][0]["description"], "New message text");
}

/// A template sees the tenant `--tenant` gives, as `send --tenant` sends it; without it,
/// none.
#[test]
fn a_template_sees_the_tenant_given() {
    let template = r#"{"tenant": {{ tenant | tojson }}}"#;
    let out = deskhook(&[
        "render",
        "--action",
        "create",
        "--tenant",
        "acme",
        "--template",
        template,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"tenant\":\"acme\"}\n");
    let out = deskhook(&["render", "--action", "create", "--template", template]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"tenant\":null}\n");
}
