//! A buffered file log (`flush = "never"`) whose file will not take its lines when the sink
//! closes (the path is a link to `/dev/full`, whose writes fail with "no space left") says
//! how many event lines are lost, and which, at error level.

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
