//! The file log's tests: lines, rotation, flushing, files moved or removed from outside,
//! lines cut short.

use super::*;
use deskhook::{Action, Dispatcher, sample};

fn emit_n(sink: FileSink, n: usize) {
    let dispatcher = Dispatcher::builder().sink("file", sink).build();
    let ticket = sample::ticket();
    let user = sample::user();
    for _ in 0..n {
        dispatcher.emit(Action::Comment, &ticket, &user);
    }
}

#[test]
fn a_line_holds_id_ts_action_and_the_exact_body() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log").join("events.jsonl");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let dispatcher = Dispatcher::builder()
        .sink("file", FileSink::new(&path).unwrap())
        .sink(
            "bodies",
            deskhook::sink::sink_fn(move |e| {
                seen2
                    .lock()
                    .unwrap()
                    .push((e.id().to_string(), e.body().to_vec()));
                Ok(())
            }),
        )
        .build();
    dispatcher.emit(Action::Create, &sample::ticket(), &sample::user());
    let text = fs::read_to_string(&path).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    let (id, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(line["id"], id.as_str());
    assert_eq!(line["action"], "create");
    assert!(jiff::Timestamp::from_str(line["ts"].as_str().unwrap()).is_ok());
    let event_text = serde_json::to_vec(&line["event"]).unwrap();
    assert_eq!(event_text, body);
    assert_eq!(
        text.as_bytes()
            .windows(body.len())
            .filter(|w| *w == body.as_slice())
            .count(),
        1,
        "the body is embedded verbatim"
    );
}

use std::str::FromStr;

/// The length of one line of the sample event, written to a probe file in `dir`.
fn line_len(dir: &Path) -> u64 {
    emit_n(FileSink::new(dir.join("probe.jsonl")).unwrap(), 1);
    fs::metadata(dir.join("probe.jsonl")).unwrap().len()
}

/// A sink at `path` rotating every two lines of `line_len` bytes, two old files kept.
fn two_lines_a_file(path: &Path, line_len: u64) -> FileSink {
    FileSink::builder(path)
        .rotate(line_len * 2, 2)
        .build()
        .unwrap()
}

#[test]
fn rotation_keeps_the_configured_number_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let line_len = line_len(dir.path());
    // Two lines per file; nine lines make five files, of which the live one and two old
    // ones are kept.
    let sink = two_lines_a_file(&path, line_len);
    emit_n(sink, 9);
    let lines = |p: &Path| {
        fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert_eq!(lines(&path), 1);
    assert_eq!(lines(&dir.path().join("events.jsonl.1")), 2);
    assert_eq!(lines(&dir.path().join("events.jsonl.2")), 2);
    assert!(!dir.path().join("events.jsonl.3").exists());
}

/// A file truncated from outside (logrotate's `copytruncate`) is measured again before a
/// rotation: the nearly empty file is written on, not rotated (pushing out an old file).
#[test]
fn a_file_truncated_from_outside_is_not_rotated_for_its_old_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let line_len = line_len(dir.path());
    let sink = two_lines_a_file(&path, line_len);
    let dispatcher = Dispatcher::builder().sink("file", sink).build();
    let emit = || dispatcher.emit(Action::Comment, &sample::ticket(), &sample::user());
    emit();
    emit();
    // What copytruncate does once it copied the file.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    emit();
    assert!(
        !dir.path().join("events.jsonl.1").exists(),
        "the truncated file was not rotated"
    );
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
}

#[test]
fn a_rotation_moves_files_up_only_as_far_as_the_first_free_number() {
    let plan = |keep, taken: &[usize]| {
        let (remove, shift) = make_room(keep, |n| taken.contains(&n));
        (remove, shift.collect::<Vec<_>>())
    };
    // Every number taken: the oldest goes, the others move up.
    assert_eq!(plan(3, &[1, 2, 3]), (Some(3), vec![2, 1]));
    // The last rename failed after the others moved: `.1` is free, nothing goes.
    assert_eq!(plan(3, &[2, 3]), (None, vec![]));
    assert_eq!(plan(3, &[1, 3]), (None, vec![1]));
    assert_eq!(plan(3, &[]), (None, vec![]));
    assert_eq!(plan(1, &[1]), (Some(1), vec![]));
}

#[cfg(unix)]
#[test]
fn files_made_by_a_rotation_or_after_a_move_keep_the_files_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let sink = Arc::new(FileSink::builder(&path).rotate(1, 2).build().unwrap());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let dispatcher = Dispatcher::builder().sink("file", sink.clone()).build();
    let emit = || dispatcher.emit(Action::Ok, &sample::ticket(), &sample::user());
    emit();
    emit();
    assert!(dir.path().join("events.jsonl.1").exists());
    assert_eq!(mode(&path), 0o600, "the file a rotation made");
    // Removed from outside: the file made again is no more readable than the one before.
    fs::remove_file(&path).unwrap();
    emit();
    assert_eq!(mode(&path), 0o600, "the file made after a removal");
}

#[test]
fn rotation_with_keep_zero_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = FileSink::builder(&path).rotate(1, 0).build().unwrap();
    emit_n(sink, 3);
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    assert!(!dir.path().join("events.jsonl.1").exists());
}

#[test]
fn a_file_moved_or_removed_from_outside_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = Arc::new(FileSink::new(&path).unwrap());
    let dispatcher = Dispatcher::builder().sink("file", sink.clone()).build();
    let emit = || dispatcher.emit(Action::Ok, &sample::ticket(), &sample::user());
    emit();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    // A log rotator moves it; then someone removes the new one.
    fs::rename(&path, dir.path().join("moved.jsonl")).unwrap();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    emit();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    fs::remove_file(&path).unwrap();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    emit();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    let moved = fs::read_to_string(dir.path().join("moved.jsonl")).unwrap();
    assert_eq!(moved.lines().count(), 1);
}

/// A sink at `path` that writes only when flushed, and its dispatcher, after one event
/// (still in the buffer).
fn one_buffered_line(path: &Path) -> (Arc<FileSink>, Dispatcher) {
    let (sink, dispatcher) = one_buffered_line_unread(path);
    assert_eq!(fs::read_to_string(path).unwrap(), "", "still buffered");
    (sink, dispatcher)
}

/// As [`one_buffered_line`], for a path that cannot be read back.
fn one_buffered_line_unread(path: &Path) -> (Arc<FileSink>, Dispatcher) {
    let sink = Arc::new(
        FileSink::builder(path)
            .flush(FlushPolicy::Never)
            .build()
            .unwrap(),
    );
    let dispatcher = Dispatcher::builder().sink("file", sink.clone()).build();
    dispatcher.emit(Action::Ok, &sample::ticket(), &sample::user());
    (sink, dispatcher)
}

#[test]
fn lines_buffered_when_the_file_is_removed_go_to_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let (_sink, dispatcher) = one_buffered_line(&path);
    fs::remove_file(&path).unwrap();
    // Flushed into the removed file, it would be gone.
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
}

#[test]
fn lines_buffered_when_a_rotation_finds_the_file_removed_go_to_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let line_len = line_len(dir.path());
    let sink = Arc::new(
        FileSink::builder(&path)
            .flush(FlushPolicy::Never)
            .rotate(line_len * 2, 2)
            .build()
            .unwrap(),
    );
    let dispatcher = Dispatcher::builder().sink("file", sink.clone()).build();
    let emit = || dispatcher.emit(Action::Ok, &sample::ticket(), &sample::user());
    emit();
    emit();
    // Removed from outside with two lines buffered; the third line rotates (within the
    // second before the path is looked at): the two went into the removed file before.
    fs::remove_file(&path).unwrap();
    emit();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    let lines = |p: &Path| {
        fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert_eq!(lines(&path) + lines(&dir.path().join("events.jsonl.1")), 3);
}

/// A file moved away that will not take the buffered lines (here: the path was a link to
/// /dev/full, whose writes fail with "no space left") does not lose them: they go to the
/// new file at the path.
#[cfg(target_os = "linux")]
#[test]
fn lines_a_moved_file_will_not_take_go_to_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let (_sink, dispatcher) = one_buffered_line_unread(&path);
    dispatcher.emit(Action::Lock, &sample::ticket(), &sample::user());
    // A rotator puts a new file in the link's place.
    let fresh = dir.path().join("fresh.jsonl");
    fs::write(&fresh, "").unwrap();
    fs::rename(&fresh, &path).unwrap();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let actions: Vec<String> = text
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            line["action"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(actions, ["ok", "lock"], "{text}");
}

/// With `every-event`, a line the file did not take (the path is a link to /dev/full) is
/// reported not taken, and does not turn up later in the file a rotator puts at the path.
#[cfg(target_os = "linux")]
#[test]
fn a_line_refused_with_every_event_is_not_written_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let dispatcher = Dispatcher::builder()
        .sink("file", FileSink::new(&path).unwrap())
        .build();
    dispatcher.emit(Action::Lock, &sample::ticket(), &sample::user());
    assert_eq!(dispatcher.stats().sinks[0].failed, 1);
    let fresh = dir.path().join("fresh.jsonl");
    fs::write(&fresh, "").unwrap();
    fs::rename(&fresh, &path).unwrap();
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "");
}

/// A new file is readable by its owner only, or as configured; a file there keeps its mode.
#[cfg(unix)]
#[test]
fn a_new_file_is_made_with_the_configured_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let private = dir.path().join("private.jsonl");
    drop(FileSink::new(&private).unwrap());
    assert_eq!(mode(&private), 0o600);
    let shared = dir.path().join("shared.jsonl");
    drop(FileSink::builder(&shared).mode(0o640).build().unwrap());
    // The umask may take bits away, never add them.
    assert_eq!(mode(&shared) & !0o640, 0, "{:o}", mode(&shared));
    assert_eq!(mode(&shared) & 0o600, 0o600);
    fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
    drop(FileSink::new(&private).unwrap());
    assert_eq!(mode(&private), 0o644, "kept");
    let refused = FileSink::builder(dir.path().join("x"))
        .mode(0o1777)
        .build()
        .unwrap_err()
        .to_string();
    assert!(refused.contains("file log mode 0o1777"), "{refused}");
}

#[test]
fn the_lines_let_go_of_are_counted_and_named_by_their_ids() {
    assert_eq!(buffered_ids(b""), (0, None, None));
    let one = b"{\"id\":\"a1\",\"ts\":\"t\"}\n";
    assert_eq!(buffered_ids(one), (1, Some("a1"), Some("a1")));
    let three = b"{\"id\":\"a1\"}\n{\"id\":\"b2\"}\n{\"id\":\"c3\"}\n";
    assert_eq!(buffered_ids(three), (3, Some("a1"), Some("c3")));
    // A line that is not the sink's (cut short) is counted, not named.
    assert_eq!(
        buffered_ids(b"{\"id\":\"a1\"}\n{\"x"),
        (2, Some("a1"), None)
    );
    assert_eq!(
        lost_lines(three),
        "3 event line(s) not written are lost (ids a1 to c3)"
    );
    // The rest of a line whose start went to the file first: said apart, the others named.
    assert_eq!(
        lost_lines(b"00\"}\n{\"id\":\"b2\"}\n{\"id\":\"c3\"}\n"),
        "2 event line(s) not written are lost (ids b2 to c3), and the end of one written in part"
    );
    assert_eq!(
        lost_lines(b"00\"}\n"),
        "0 event line(s) not written are lost, and the end of one written in part"
    );
}

#[test]
fn what_a_file_did_not_take_starts_at_the_line_it_cut() {
    let buffered = b"one\ntwo\nthree\n";
    assert_eq!(from_cut_line(buffered, 0), buffered);
    assert_eq!(from_cut_line(buffered, 2), buffered);
    assert_eq!(from_cut_line(buffered, 4), b"two\nthree\n");
    assert_eq!(from_cut_line(buffered, 6), b"two\nthree\n");
    assert_eq!(from_cut_line(buffered, 8), b"three\n");
    assert_eq!(from_cut_line(buffered, buffered.len()), b"");
}

#[test]
fn a_line_cut_short_by_a_crash_is_not_glued_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    fs::write(&path, "{\"id\":\"0199").unwrap();
    emit_n(FileSink::new(&path).unwrap(), 1);
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "{\"id\":\"0199");
    assert!(
        serde_json::from_str::<serde_json::Value>(lines[1]).is_ok(),
        "{text}"
    );
}

#[test]
fn buffered_lines_are_written_on_flush_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let (sink, dispatcher) = one_buffered_line(&path);
    dispatcher.flush(Duration::from_secs(1)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    dispatcher.emit(Action::Ok, &sample::ticket(), &sample::user());
    drop(dispatcher);
    drop(sink);
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn the_interval_flusher_writes_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = FileSink::builder(&path)
        .flush(FlushPolicy::Interval(crate::file::MIN_FLUSH_INTERVAL))
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder().sink("file", sink).build();
    dispatcher.emit(Action::Ok, &sample::ticket(), &sample::user());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(&path).unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the flusher never ran"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn an_unwritable_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileSink::new(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot open '{}'", dir.path().display())),
        "{text}"
    );
    assert!(
        text.contains("choose a path in a writable directory"),
        "{text}"
    );

    let missing = dir.path().join("no").join("such").join("events.jsonl");
    let err = FileSink::builder(&missing)
        .create_dirs(false)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );

    let err = FileSink::builder(dir.path().join("x"))
        .rotate(0, 1)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: file log rotation size is 0 bytes: give a size such as 16 MiB"
    );
}
