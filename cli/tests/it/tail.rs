//! `deskhook tail` summarizes a file log, passes it through with --json, and follows it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use deskhook::{Action, Dispatcher, sample};
use deskhook_transports::file::FileSink;

fn deskhook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(args)
        .output()
        .expect("the deskhook binary runs")
}

fn write_log(path: &std::path::Path, actions: &[Action]) {
    let dispatcher = Dispatcher::builder()
        .sink("file", FileSink::new(path).unwrap())
        .build();
    for action in actions {
        dispatcher.emit(*action, &sample::ticket(), &sample::user());
    }
}

#[test]
fn each_event_is_one_summary_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Create, Action::Lock]);
    let out = deskhook(&["tail", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].ends_with("  create   E3XK       Message with attachments"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("  lock     E3XK "), "{}", lines[1]);
    // The time column: YYYY-MM-DD HH:MM:SS.
    assert_eq!(lines[0].as_bytes()[4], b'-');
    assert_eq!(lines[0].as_bytes()[13], b':');
}

#[test]
fn json_passes_lines_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Ok]);
    let out = deskhook(&["tail", "--json", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(&path).unwrap());
}

/// A dead-letter file is JSON Lines too: given one, `tail` says what it is and what reads
/// it, once, rather than a warning per line.
#[test]
fn a_dead_letter_file_is_pointed_to_dead_letters_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deskhook-dead-letters.jsonl");
    let letter = concat!(
        r#"{"id":"msg_1","endpoint":"crm","url":"https://crm.example.com","action":"create","#,
        r#""ticket":"E3XK","attempts":1,"last_status":400,"last_error":null,"#,
        r#""reason":"400 from the receiver (not retried)","failed_at":"2026-12-06T03:00:00Z","#,
        r#""body":{}}"#
    );
    std::fs::write(&path, format!("{letter}\n{letter}\n{letter}\n")).unwrap();
    let out = deskhook(&["tail", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "deskhook: '{0}' is a dead-letter file, not a file log: `deskhook dead-letters list \
             --file {0}` lists it\n",
            path.display()
        )
    );
}

#[test]
fn a_broken_line_is_reported_with_its_number_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Ok]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"id\": 1}\n");
    std::fs::write(&path, text).unwrap();
    let out = deskhook(&["tail", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{}:2: not a deskhook log line", path.display())),
        "{stderr}"
    );

    let out = deskhook(&["tail", dir.path().join("nope.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot open log file")
    );
}

/// --lines N starts at the file's last N lines: the line numbers of bad ones stay the
/// file's, and 0 prints nothing of what is there.
#[test]
fn lines_starts_at_the_last_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Create, Action::Lock, Action::Ok]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"id\": 1}\n");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let tail = |n: &str| {
        let out = deskhook(&["tail", "-n", n, path]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let actions: Vec<String> = stdout
            .lines()
            .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
            .collect();
        (actions, String::from_utf8(out.stderr).unwrap())
    };
    let (actions, stderr) = tail("3");
    assert_eq!(actions, ["lock", "ok"]);
    assert!(
        stderr.contains(&format!("{path}:4: not a deskhook log line")),
        "{stderr}"
    );
    assert_eq!(tail("100").0, ["create", "lock", "ok"]);
    let (actions, stderr) = tail("0");
    assert!(
        actions.is_empty() && stderr.is_empty(),
        "{actions:?} {stderr}"
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `deskhook tail --follow` of `path`, looking every `poll_ms`, and what gives its next
/// line (waiting at most 10 s).
fn follow(path: &std::path::Path, poll_ms: &str) -> (Killed, impl Fn() -> String) {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args(["tail", "--follow", "--poll-ms", poll_ms])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = move || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("tail printed a line")
    };
    (child, next)
}

#[test]
fn follow_prints_new_lines_and_survives_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Create]);
    let (_child, next) = follow(&path, "10");

    assert!(next().contains(" create "));
    write_log(&path, &[Action::Comment]);
    assert!(next().contains(" comment "));

    // Rotate by hand: the old file moves away and a new one starts.
    std::fs::rename(&path, dir.path().join("events.jsonl.1")).unwrap();
    write_log(&path, &[Action::Edit]);
    assert!(next().contains(" edit "));
}

#[test]
fn control_characters_in_a_subject_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let dispatcher = Dispatcher::builder()
        .sink("file", FileSink::new(&path).unwrap())
        .build();
    let mut ticket = sample::ticket();
    ticket.subject = "two\nlines \u{1b}[31mred".into();
    dispatcher.emit(Action::Create, &ticket, &sample::user());
    drop(dispatcher);
    let out = deskhook(&["tail", path.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("two\\nlines \\u{1b}[31mred"), "{stdout}");
}

#[test]
fn usedesk_and_iqchannels_events_show_their_type_and_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let dispatcher = Dispatcher::builder()
        .sink("file", FileSink::new(&path).unwrap())
        .build();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/fixtures");
    let usedesk = std::fs::read(format!("{fixtures}/usedesk/comment_created.json")).unwrap();
    let usedesk = deskhook::formats::usedesk::Event::from_json(&usedesk).unwrap();
    let chat = std::fs::read(format!("{fixtures}/iqchannels/chat_closed.json")).unwrap();
    let chat = deskhook::formats::iqchannels::Event::from_json(&chat).unwrap();
    dispatcher.emit_webhook(&usedesk);
    dispatcher.emit_webhook(&chat);
    drop(dispatcher);
    let out = deskhook(&["tail", path.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].contains("  usedesk.comment_created "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(&format!(" {} ", usedesk.ordering_key())),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("  iqchannels.chat_closed "),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(&format!(" {} ", chat.ordering_key())) && lines[1].ends_with(" -"),
        "{}",
        lines[1]
    );
}

#[test]
fn follow_prints_a_file_rotated_between_two_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let numbered = |n: u32| dir.path().join(format!("events.jsonl.{n}"));
    write_log(&path, &[Action::Create]);

    // A long poll, so that both rotations below come within one.
    let (_child, next) = follow(&path, "500");
    assert!(next().contains(" create "));

    // The file read moves to .1 and a new one gets a line; then both move up, and a third
    // file starts.
    std::fs::rename(&path, numbered(1)).unwrap();
    write_log(&path, &[Action::Comment]);
    std::fs::rename(numbered(1), numbered(2)).unwrap();
    std::fs::rename(&path, numbered(1)).unwrap();
    write_log(&path, &[Action::Edit]);

    assert!(next().contains(" comment "), "the file between was printed");
    assert!(next().contains(" edit "));
}

/// An outside rotator (logrotate's `create`) moves the file while its writer may still write
/// to it: the file sink notices within a second. Lines written to the moved file after tail
/// went on to the new one are printed too.
#[test]
fn follow_prints_lines_written_to_a_file_after_it_was_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let moved = dir.path().join("events.jsonl.1");
    write_log(&path, &[Action::Create]);
    let (_child, next) = follow(&path, "10");
    assert!(next().contains(" create "));

    std::fs::rename(&path, &moved).unwrap();
    write_log(&path, &[Action::Edit]);
    assert!(next().contains(" edit "), "tail went on to the new file");
    // The writer, not aware of the move yet, writes on to the file it has.
    write_log(&moved, &[Action::Comment]);
    assert!(next().contains(" comment "), "the moved file's late line");
}

/// logrotate's `copytruncate` empties the file, and the writer fills it past where tail
/// was within one poll: tail starts the file again from its start rather than read on from
/// the middle of a line.
#[test]
fn follow_starts_again_a_file_truncated_and_refilled_within_a_poll() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Create]);
    let (_child, next) = follow(&path, "500");
    assert!(next().contains(" create "));
    let read_to = std::fs::metadata(&path).unwrap().len() as usize;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_log(&path, &[Action::Edit, Action::Lock]);
    // Where tail was is now inside a line, not at the end of one.
    let now = std::fs::read(&path).unwrap();
    assert!(now.len() > read_to && now[read_to - 1] != b'\n');
    let line = next();
    assert!(line.contains(" edit "), "{line}");
    let line = next();
    assert!(line.contains(" lock "), "{line}");
}

/// A closed standard error (`deskhook tail f 2>&1 | head`, the reader gone) does not make a
/// diagnostic a panic: the command ends as it would, with 1 for the bad line.
#[test]
fn a_closed_standard_error_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_log(&path, &[Action::Create]);
    std::fs::write(
        &path,
        format!("{}not a line\n", std::fs::read_to_string(&path).unwrap()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .arg("tail")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
}
