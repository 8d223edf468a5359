//! A buffered file log (`flush = "never"`) whose file will not take its lines when the sink
//! closes (the path is a link to `/dev/full`, whose writes fail with "no space left") says
//! how many event lines are lost, and which, at error level; a rotation that fails is said
//! once a second at most.

#![cfg(target_os = "linux")]

use std::time::Duration;

use deskhook::{Action, Dispatcher, sample};
use deskhook_tests::logs::logs;
use deskhook_transports::file::{FileSink, FlushPolicy};

#[test]
fn the_lines_a_closing_file_log_could_not_write_are_counted_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lost-lines.jsonl");
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let logs = logs();
    let sink = FileSink::builder(&path)
        .flush(FlushPolicy::Never)
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder().sink("file", sink).build();
    for _ in 0..3 {
        dispatcher.emit(Action::Comment, &sample::ticket(), &sample::user());
    }
    assert!(dispatcher.flush(Duration::from_secs(1)).is_err());
    drop(dispatcher);
    let said = logs.with("lost-lines.jsonl");
    assert!(
        said.iter()
            .any(|line| line.contains("3 event line(s) not written are lost (ids ")),
        "{said:?}"
    );
}

/// A rotation that fails (the `.1` it would remove is a folder) is said once and tried again
/// a second later, not at every line; the lines go on into the current file.
#[test]
fn a_rotation_that_fails_is_said_once_not_at_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unrotated.jsonl");
    std::fs::create_dir(dir.path().join("unrotated.jsonl.1")).unwrap();
    let logs = logs();
    let sink = FileSink::builder(&path).rotate(1, 1).build().unwrap();
    let dispatcher = Dispatcher::builder().sink("file", sink).build();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        dispatcher.emit(Action::Comment, &sample::ticket(), &sample::user());
    }
    // Within the second the failure is remembered for (a stalled machine may take longer:
    // then a second try, and a second warning, is right).
    let once = started.elapsed() < Duration::from_secs(1);
    let said = logs.with("cannot rotate log file");
    let ours: Vec<&String> = said
        .iter()
        .filter(|line| line.contains("unrotated.jsonl"))
        .collect();
    assert!(ours.len() == 1 || (!once && ours.len() == 2), "{ours:?}");
    assert!(ours[0].contains("trying again in a second"), "{ours:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
}
