//! Events that fail go to the dead-letter file; `deskhook dead-letters replay` delivers them
//! again with the same webhook-id, leaving only what failed again (`list` shows them too:
//! see dead_letters_are_listed.rs).

use std::path::{Path, PathBuf};

use deskhook_transports::delivery::read_dead_letters;

use crate::support::dead_letters::{dead_letters, only_letter, write_config};
use crate::support::{Listen, SECRET, deskhook_in, text};

/// Runs `dead-letters replay --config CONFIG` in `dir`.
fn replay(dir: &Path, config: &Path) -> std::process::Output {
    replay_with(dir, config, &[])
}

/// [`replay`] with more arguments.
fn replay_with(dir: &Path, config: &Path, more: &[&str]) -> std::process::Output {
    let mut args = vec![
        "dead-letters",
        "replay",
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    deskhook_in(dir, &args)
}

/// [`replay`], the configuration's endpoint "crm" now a receiver that verifies: the
/// receiver, and what the replay printed.
fn replay_to_a_receiver(dir: &Path, config: &Path, dead: &Path) -> (Listen, std::process::Output) {
    let listen = Listen::start(&["--secret", SECRET]);
    write_config(config, &listen.url, dead);
    (listen, replay(dir, config))
}

#[test]
fn list_shows_each_letter_and_replay_delivers_them_with_the_same_id() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,comment");
    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 2);

    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--config", config.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    // Newest first.
    for (line, action) in lines.iter().zip(["comment", "create"]) {
        let fields: Vec<&str> = line.split("  ").collect();
        assert!(fields[0].ends_with('Z'), "failed_at in UTC: {line}");
        assert_eq!(fields[1], "crm", "{line}");
        assert_eq!(fields[2].trim(), action, "{line}");
        assert!(
            line.ends_with("  E3XK  1 attempt(s)  500  gave up after 1 attempt(s)"),
            "{line}"
        );
    }
    assert_eq!(lines[2], format!("2 dead letter(s) in {}", dead.display()));
    // --file reads the same.
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--file", dead.to_str().unwrap()],
    );
    assert_eq!(text(&out.stdout), stdout);
    // A line that is not a letter is left out of the list, and said so on stderr.
    let mixed = tmp.path().join("mixed.jsonl");
    let mut bytes = std::fs::read(&dead).unwrap();
    bytes.extend_from_slice(b"hello\n");
    std::fs::write(&mixed, bytes).unwrap();
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--file", mixed.to_str().unwrap()],
    );
    assert!(
        text(&out.stdout).ends_with(&format!("2 dead letter(s) in {}\n", mixed.display())),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is not a dead letter"), "{stderr}");
    assert!(stderr.contains("left out of the list"), "{stderr}");

    // The receiver is back, at another address.
    let (listen, out) = replay_to_a_receiver(tmp.path(), &config, &dead);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with("2 of 2 dead letter(s) delivered\n"),
        "{stdout}"
    );
    for (line, letter) in listen.lines(2).iter().zip(&letters) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], "verified", "{line}");
        assert_eq!(fields[1], letter.action, "{line}");
        assert_eq!(fields[2], "E3XK", "{line}");
        assert_eq!(fields[3], "seq", "{line}");
        assert_eq!(fields[5], letter.id, "the same webhook-id: {line}");
    }
    assert_eq!(std::fs::read(&dead).unwrap(), b"", "nothing failed again");
    assert!(!tmp.path().join("dead.jsonl.replaying").exists());
    #[cfg(unix)]
    assert!(
        !tmp.path().join("dead.jsonl.replaying.lock").exists(),
        "the lock's file goes with the replay"
    );

    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--config", config.to_str().unwrap()],
    );
    assert_eq!(
        text(&out.stdout),
        format!("0 dead letter(s) in {}\n", dead.display())
    );
}

/// The letters of one ticket go one after the other: a replay waits for as long as they
/// move, not for one letter's schedule (2.3 s here, where 30 letters take 3 s).
#[test]
fn a_replay_waits_while_the_letters_of_a_ticket_go_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create");
    let letter = only_letter(&dead);
    let mut lines = String::new();
    for _ in 0..30 {
        let mut copy = letter.clone();
        copy["id"] = deskhook::sink::EventId::new().to_string().into();
        lines.push_str(&format!("{copy}\n"));
    }
    std::fs::write(&dead, lines).unwrap();
    let slow = Listen::start(&["--secret", SECRET, "--delay", "100ms"]);
    write_config(&config, &slow.url, &dead);
    let out = replay_with(
        tmp.path(),
        &config,
        &["--retry", "0s", "--timeout", "300ms"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("30 of 30 dead letter(s) delivered"),
        "{stdout}"
    );
    assert_eq!(slow.lines(30).len(), 30);
}

#[test]
fn letters_that_fail_again_stay_and_the_others_go() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "ok,edit");
    let before = read_dead_letters(&dead).unwrap();
    // Kept from other users (letters hold the events' bodies): the file the replay makes
    // anew is too.
    #[cfg(unix)]
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dead, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // Replaying to a receiver that still fails: both come back, with the same ids.
    let failing = Listen::start(&["--secret", SECRET, "--status", "503"]);
    write_config(&config, &failing.url, &dead);
    let out = replay_with(tmp.path(), &config, &["--retry", "0s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("0 of 2 dead letter(s) delivered\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("2 left in {}", dead.display())),
        "{stdout}"
    );
    failing.lines(2);
    let after = read_dead_letters(&dead).unwrap();
    let ids = |letters: &[deskhook_transports::delivery::DeadLetter]| {
        letters.iter().map(|l| l.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(after[0].last_status, Some(503));
    assert!(!tmp.path().join("dead.jsonl.replaying").exists());
    #[cfg(unix)]
    assert_eq!(mode(&dead), 0o600);
}

#[test]
fn an_interrupted_replay_is_resumed_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,lock,edit");
    let text_before = std::fs::read_to_string(&dead).unwrap();
    let lines: Vec<&str> = text_before.lines().collect();
    // As a replay killed midway leaves it: everything in PATH.replaying, and a new PATH
    // holding what failed again so far (here the first letter once more).
    let replaying = tmp.path().join("dead.jsonl.replaying");
    std::fs::write(&replaying, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    std::fs::write(&dead, format!("{}\n{}\n", lines[2], lines[0])).unwrap();
    // A list says where the letters set aside are, not only what the file holds.
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--config", config.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 more dead letter(s) are in"),
        "{}",
        text(&out.stderr)
    );

    let (listen, out) = replay_to_a_receiver(tmp.path(), &config, &dead);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("resuming an interrupted replay: 2 letter(s)"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).ends_with("3 of 3 dead letter(s) delivered\n"),
        "{}",
        text(&out.stdout)
    );
    let received = listen.lines(3);
    let mut actions: Vec<&str> = received
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(actions, ["create", "edit", "lock"]);
    assert!(listen.process.try_line().is_none());
    assert_eq!(std::fs::read(&dead).unwrap(), b"");
    assert!(!replaying.exists());
}

/// A sink of another process that opened the file just before the replay moved it aside
/// writes its letter to `PATH.replaying`: the replay moves it back to `PATH`, rather than
/// remove it with `.replaying`.
#[test]
fn a_letter_written_while_the_replay_begins_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create");
    let mut late = read_dead_letters(&dead).unwrap().remove(0);
    late.id = "01939f0a-0000-7000-8000-0000000000aa".to_owned();
    let late_line = format!("{}\n", serde_json::to_string(&late).unwrap());
    let replaying = tmp.path().join("dead.jsonl.replaying");
    // The late write lands while the replay delivers (the file is set aside by then).
    let receiver = deskhook_tests::Receiver::start({
        let replaying = replaying.clone();
        move |_, n| {
            if n == 0 {
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&replaying)
                    .expect("the replay set the file aside");
                std::io::Write::write_all(&mut file, late_line.as_bytes()).unwrap();
            }
            deskhook_tests::Answer::status(204)
        }
    });
    write_config(&config, &receiver.url, &dead);
    let out = replay(tmp.path(), &config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(receiver.count(), 1);
    assert!(
        text(&out.stderr).contains("1 dead letter(s) written to"),
        "{}",
        text(&out.stderr)
    );
    let left = read_dead_letters(&dead).unwrap();
    assert_eq!(
        left.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        [late.id.as_str()],
        "the late letter, back in the file"
    );
    assert!(!replaying.exists());
}

#[test]
fn a_resume_killed_midway_is_resumed_with_what_it_had_moved_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,lock,edit");
    let text_before = std::fs::read_to_string(&dead).unwrap();
    let lines: Vec<&str> = text_before.lines().collect();
    // A resume moves PATH aside before it reads it (a sink may be writing to PATH): killed
    // then, it leaves PATH.replaying.incoming beside PATH.replaying, and a new PATH.
    let replaying = tmp.path().join("dead.jsonl.replaying");
    let incoming = tmp.path().join("dead.jsonl.replaying.incoming");
    std::fs::write(&replaying, format!("{}\n", lines[0])).unwrap();
    std::fs::write(&incoming, format!("{}\n", lines[1])).unwrap();
    std::fs::write(&dead, format!("{}\n", lines[2])).unwrap();

    let (listen, out) = replay_to_a_receiver(tmp.path(), &config, &dead);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("3 of 3 dead letter(s) delivered\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(listen.lines(3).len(), 3);
    assert!(!replaying.exists() && !incoming.exists());
}

#[test]
fn a_second_replay_of_a_file_stops_while_the_first_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create");
    let before = std::fs::read_to_string(&dead).unwrap();
    // The first replay holds the lock (here, the test).
    let held = std::fs::File::create(tmp.path().join("dead.jsonl.replaying.lock")).unwrap();
    held.lock().unwrap();
    let (listen, out) = replay_to_a_receiver(tmp.path(), &config, &dead);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another replay of these dead letters is under way"),
        "{}",
        text(&out.stderr)
    );
    // Nothing moved, nothing sent.
    assert_eq!(std::fs::read_to_string(&dead).unwrap(), before);
    assert!(!tmp.path().join("dead.jsonl.replaying").exists());
    assert!(
        listen
            .process
            .line_within(std::time::Duration::from_millis(200))
            .is_none()
    );
    drop(held);
}

#[test]
fn letters_of_endpoints_the_configuration_does_not_name_are_said_and_fail_the_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,comment");
    // Letters of an endpoint since renamed: the configuration names only "crm".
    let renamed: String = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|line| {
            let mut letter: serde_json::Value = serde_json::from_str(line).unwrap();
            letter["endpoint"] = "old-crm".into();
            format!("{letter}\n")
        })
        .collect();
    std::fs::write(&dead, &renamed).unwrap();
    let out = replay(tmp.path(), &config);
    // Before: "no dead letters in …", and 0.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "no dead letters to replay in {}\n2 dead letter(s) of other endpoints left as they \
             were (of endpoints the configuration does not name: 2 for 'old-crm'; add them to \
             it to replay them)\n",
            dead.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&dead).unwrap(), renamed);
}

#[test]
fn letters_the_engine_refuses_to_queue_stay_in_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,ok");
    let before = read_dead_letters(&dead).unwrap();

    // The endpoint named "crm" now belongs to a tenant; the letters are of none: a replay
    // must not hand them to another tenant's endpoint, nor lose them.
    let receiver = Listen::start(&["--secret", SECRET]);
    write_config(&config, &receiver.url, &dead);
    let mut text_of_config = std::fs::read_to_string(&config).unwrap();
    text_of_config.push_str("tenant = \"globex\"\n");
    std::fs::write(&config, text_of_config).unwrap();
    let out = replay_with(tmp.path(), &config, &["--retry", "0s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("kept") && stderr.contains("tenant"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("0 of 2 dead letter(s) delivered\n"),
        "{stdout}"
    );
    let after = read_dead_letters(&dead).unwrap();
    let ids = |letters: &[deskhook_transports::delivery::DeadLetter]| {
        let mut ids: Vec<String> = letters.iter().map(|l| l.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&after), ids(&before));
    assert!(!tmp.path().join("dead.jsonl.replaying").exists());
    // Nothing was sent.
    let sent = receiver
        .process
        .line_within(std::time::Duration::from_millis(200));
    assert_eq!(sent, None);
}

#[test]
fn replay_of_one_endpoint_leaves_the_others_letters_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,comment");
    // The same two letters for "billing" too: four in all, billing's first.
    let crm = std::fs::read_to_string(&dead).unwrap();
    let billing: String = crm
        .lines()
        .map(|line| {
            let mut letter: serde_json::Value = serde_json::from_str(line).unwrap();
            letter["endpoint"] = "billing".into();
            format!("{letter}\n")
        })
        .collect();
    std::fs::write(&dead, format!("{billing}{crm}")).unwrap();
    let listen = Listen::start(&["--secret", SECRET]);
    std::fs::write(
        &config,
        format!(
            "[delivery]\ndead_letter_path = \"{}\"\n\n[[endpoint]]\nname = \"crm\"\nurl = \
             \"{url}\"\nsecrets = [\"{SECRET}\"]\nallow_private = true\n\n[[endpoint]]\n\
             name = \"billing\"\nurl = \"{url}\"\nsecrets = [\"{SECRET}\"]\n\
             allow_private = true\n",
            dead.display(),
            url = listen.url
        ),
    )
    .unwrap();
    let replay = |endpoint: &str| replay_with(tmp.path(), &config, &["--endpoint", endpoint]);

    let out = replay("nope");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "--endpoint nope: the configuration has no endpoint named 'nope' (it has: \
             billing, crm)"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&dead).unwrap(),
        format!("{billing}{crm}")
    );

    let out = replay("crm");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with(
            "2 of 2 dead letter(s) of endpoint(s) crm delivered\n2 dead letter(s) of other \
             endpoints left as they were\n"
        ),
        "{stdout}"
    );
    listen.lines(2);
    // billing's letters, byte for byte.
    assert_eq!(std::fs::read_to_string(&dead).unwrap(), billing);
    assert!(!tmp.path().join("dead.jsonl.replaying").exists());

    let out = replay("crm");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "no dead letters of endpoint(s) crm to replay in {}\n2 dead letter(s) of other \
             endpoints left as they were\n",
            dead.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&dead).unwrap(), billing);
}

/// Letters that fail again and cannot be written back (the file may not grow: a full disk)
/// are not lost with `.replaying`: it keeps those not delivered, and the replay fails
/// saying so.
#[test]
fn letters_that_cannot_be_written_back_stay_in_the_replaying_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,lock");
    let refusing = Listen::start(&["--secret", SECRET, "--status", "400"]);
    write_config(&config, &refusing.url, &dead);
    // No file may grow past 1 byte (SIGXFSZ ignored, so that a write fails with EFBIG).
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; exec prlimit --fsize=1 -- \"$0\" dead-letters replay --config \"$1\"",
            env!("CARGO_BIN_EXE_deskhook"),
            config.to_str().unwrap(),
        ])
        .env("TMPDIR", tmp.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(refusing.lines(2).len(), 2);
    let replaying = tmp.path().join("dead.jsonl.replaying");
    let kept = read_dead_letters(&replaying).unwrap_or_default();
    let written = read_dead_letters(&dead).unwrap_or_default();
    assert_eq!(
        kept.len() + written.len(),
        2,
        "both letters still on disk: {}",
        text(&out.stderr)
    );
}

#[test]
fn letters_of_usedesk_and_iqchannels_events_are_replayed_too() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let failing = Listen::start(&["--secret", SECRET, "--status", "500"]);
    let config = tmp.path().join("deskhook.toml");
    let dead = tmp.path().join("dead.jsonl");
    write_config(&config, &failing.url, &dead);
    for (format, file) in [
        ("usedesk", "usedesk/comment_created.json"),
        ("iqchannels", "iqchannels/chat_closed.json"),
    ] {
        let out = deskhook_in(
            tmp.path(),
            &[
                "send",
                "--config",
                config.to_str().unwrap(),
                "--format",
                format,
                "--event",
                fixtures.join(file).to_str().unwrap(),
                "--retry",
                "0s",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    }
    failing.lines(2);
    let letters = read_dead_letters(&dead).unwrap();
    let types: Vec<&str> = letters.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(types, ["usedesk.comment_created", "iqchannels.chat_closed"]);

    let (listen, out) = replay_to_a_receiver(tmp.path(), &config, &dead);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with("2 of 2 dead letter(s) delivered\n"),
        "{stdout}"
    );
    let mut got: Vec<String> = listen
        .lines(2)
        .iter()
        .map(|line| {
            line.split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["iqchannels.chat_closed", "usedesk.comment_created"]);
}

#[test]
fn a_letter_kept_holds_back_the_later_letters_of_its_ticket() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,ok");
    // The first grows past the max_payload the replay runs with; the second would fit.
    let file = std::fs::read_to_string(&dead).unwrap();
    let mut lines: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0]["body"]["ticket"]["text"] = serde_json::json!("x".repeat(20_000));
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&dead, file).unwrap();
    let listen = Listen::start(&["--secret", SECRET]);
    write_config(&config, &listen.url, &dead);
    let with_limit = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[delivery]\n", "[delivery]\nmax_payload = 15000\n");
    std::fs::write(&config, with_limit).unwrap();

    let out = replay(tmp.path(), &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("max_payload"), "{stderr}");
    assert!(
        stderr.contains("held behind a letter of its ticket"),
        "{stderr}"
    );
    let after = read_dead_letters(&dead).unwrap();
    let actions: Vec<&str> = after.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(actions, ["create", "ok"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("0 of 2 dead letter(s) delivered"),
        "{stdout}"
    );
    drop(listen);
}

/// A replay of a file that is not there says so (a --file mistyped, a --config of another
/// directory), and one in a folder that is not there is an error, as `list` says them.
#[test]
fn a_missing_file_or_folder_is_said() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, _dead) = dead_letters(tmp.path(), "create");
    let missing = tmp.path().join("nothing.jsonl");
    let out = replay_with(tmp.path(), &config, &["--file", missing.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "no dead letters in {} (the file does not exist)\n",
            missing.display()
        )
    );
    let nowhere = tmp.path().join("no-such-folder").join("dead.jsonl");
    let out = replay_with(tmp.path(), &config, &["--file", nowhere.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no folder '") && text(&out.stderr).contains("check the path"),
        "{}",
        text(&out.stderr)
    );
}

/// Letters of endpoints not replayed go back to the file and out of PATH.replaying before a
/// letter is sent: a replay interrupted then does not put them back in the file again at
/// its resume (they may have been deleted or replayed from the file since).
#[test]
fn letters_not_replayed_leave_the_set_aside_file_before_any_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dead) = dead_letters(tmp.path(), "create,comment");
    // The comment's letter is another endpoint's.
    let moved: String = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|line| {
            let mut letter: serde_json::Value = serde_json::from_str(line).unwrap();
            if letter["action"] == "comment" {
                letter["endpoint"] = "audit".into();
            }
            format!("{letter}\n")
        })
        .collect();
    std::fs::write(&dead, moved).unwrap();
    // "crm" takes the request and never answers: the replay waits on it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    write_config(&config, &url, &dead);
    let mut replay = crate::support::Running::spawn(&[
        "dead-letters",
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--endpoint",
        "crm",
    ]);
    let (_held, _) = silent.accept().unwrap();
    let endpoints = |path: &Path| -> Vec<String> {
        read_dead_letters(path)
            .unwrap()
            .into_iter()
            .map(|letter| letter.endpoint)
            .collect()
    };
    assert_eq!(endpoints(&tmp.path().join("dead.jsonl.replaying")), ["crm"]);
    assert_eq!(endpoints(&dead), ["audit"]);
    replay.kill();
}
