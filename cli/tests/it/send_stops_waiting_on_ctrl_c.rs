//! Ctrl-C during `deskhook send`'s wait stops the waiting, not the process: what was not
//! delivered is dead-lettered, the summary says so, and the exit status is 130 (143 for
//! SIGTERM, which does the same).

use std::net::TcpListener;
use std::time::Duration;

use deskhook_transports::delivery::read_dead_letters;

use crate::support::Running;

#[test]
fn ctrl_c_dead_letters_what_is_left_and_prints_the_summary() {
    stopped_by("-INT", 130);
}

#[test]
fn sigterm_does_the_same_with_the_status_of_its_own() {
    stopped_by("-TERM", 143);
}

/// Sends `signal` to a `send` waiting on a receiver that never answers, and checks it ends
/// with `code`, its event dead-lettered.
fn stopped_by(signal: &str, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    // A receiver that takes the connection and never answers: the attempt waits on it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let mut send = Running::spawn_with(
        &[
            "send",
            "--action",
            "create",
            "--allow-private",
            "--timeout",
            "60s",
            "--url",
            &url,
        ],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    // The attempt is under way once its connection is taken.
    let (_held, _) = silent.accept().unwrap();

    let interrupted = std::process::Command::new("kill")
        .args([signal, &send.pid().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = send
        .wait_within(Duration::from_secs(30))
        .expect("send ends after the signal, without waiting for the attempt's timeout");
    assert_eq!(status.code(), Some(code), "stderr: {}", send.stderr());

    let summary = send.line();
    assert!(
        summary.starts_with(
            "0 of 1 delivered (1 event(s), 1 endpoint(s)), 1 dead-lettered; interrupted after "
        ),
        "{summary}"
    );
    assert_eq!(
        send.line(),
        "no attempt for: create (interrupted before an attempt ended)"
    );
    let letters_line = send.line();
    let path = letters_line
        .strip_prefix("dead letters: ")
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("a line naming the dead letters: {letters_line}"));
    let letters = read_dead_letters(path).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].action, "create");
}
