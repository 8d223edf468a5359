//! The dead-letter file: writing, listing from its end, paging, deleting.

use super::*;

thread_local! {
    /// Whole reads of the file by key (`by_key`) on this thread.
    pub(crate) static READS_WHOLE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Rewrites of the file (a `delete` that found a letter to take out) on this thread.
    pub(crate) static REWRITES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

thread_local! {
    /// Run by a delete on this thread between its two copies (see `between_the_copies`).
    static BETWEEN: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        std::cell::RefCell::new(None);
}

/// Called by `DeadLetterLog::delete` after it copied the letters written before it began,
/// before it takes the writers' lock for those written meanwhile.
pub(super) fn between_the_copies() {
    if let Some(hook) = BETWEEN.take() {
        hook();
    }
}

thread_local! {
    /// Run by `open_dead_letters_locked` on this thread between its open and its lock.
    static BEFORE_LOCK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        std::cell::RefCell::new(None);
}

/// Called by `open_dead_letters_locked` once it opened the file, before it locks it: where
/// another process's writer would be waiting for the lock.
pub(super) fn between_open_and_lock() {
    if let Some(hook) = BEFORE_LOCK.take() {
        hook();
    }
}

/// Another process moves the file away (`deskhook dead-letters replay`) while a letter's
/// writer waits for its lock: the letter goes to the new file at the path, not into the
/// one moved away (which the replay has read already, and removes).
#[test]
fn a_letter_waiting_for_the_lock_follows_a_file_moved_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let moved = dir.path().join("dead.jsonl.replaying");
    let log = DeadLetterLog::new(path.clone());
    let first: DeadLetter = serde_json::from_str(&letter("first")).unwrap();
    let second: DeadLetter = serde_json::from_str(&letter("second")).unwrap();
    assert!(log.write(&first));
    // The other process holds the lock (a second open file, as flock counts them), moves
    // the file and lets go, all while the writer waits.
    let held = open_dead_letters_locked(&path, OpenOptions::new().read(true)).unwrap();
    let (from, to) = (path.clone(), moved.clone());
    BEFORE_LOCK.set(Some(Box::new(move || {
        std::fs::rename(&from, &to).unwrap();
        drop(held);
    })));
    assert!(log.write(&second));
    let ids_in = |path: &Path| -> Vec<String> {
        read_dead_letters(path)
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect()
    };
    assert_eq!(ids_in(&moved), ["first"]);
    assert_eq!(ids_in(&path), ["second"]);
}

fn letter(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","endpoint":"crm","url":"http://x/","action":"create","ticket":"T","attempts":1,"last_status":500,"last_error":null,"reason":"r","failed_at":"2026-01-01T00:00:00Z","body":{{"a":1}}}}"#
    )
}

/// A file in `dir` of six letters, "0" to "5": its path and text, its log, and its letters
/// newest first.
fn six_letters(dir: &Path) -> (PathBuf, String, DeadLetterLog, Vec<StoredLetter>) {
    let path = dir.join("dead.jsonl");
    let text: String = (0..6).map(|n| letter(&n.to_string()) + "\n").collect();
    std::fs::write(&path, &text).unwrap();
    let log = DeadLetterLog::new(path.clone());
    let all = newest(&log);
    (path, text, log, all)
}

/// Every letter of `log`, newest first.
fn newest(log: &DeadLetterLog) -> Vec<StoredLetter> {
    let all = DeadLetterQuery::new();
    let letters = log.newest_first(&all).unwrap();
    letters.map(Result::unwrap).collect()
}

/// The ids of `log`'s letters, oldest first.
fn ids(log: &DeadLetterLog) -> Vec<String> {
    let mut ids: Vec<String> = newest(log).into_iter().map(|s| s.letter.id).collect();
    ids.reverse();
    ids
}

#[test]
fn a_last_line_cut_short_is_skipped_and_others_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let whole = letter("one");
    std::fs::write(&path, format!("{whole}\n{}", &whole[..40])).unwrap();
    let letters = read_dead_letters(&path).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body.get(), r#"{"a":1}"#);

    std::fs::write(&path, format!("{}\n{whole}\n", &whole[..40])).unwrap();
    let err = read_dead_letters(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:1: not a dead letter", path.display())),
        "{err}"
    );
    assert!(
        err.ends_with("move that line to another file, and run again"),
        "{err}"
    );
    std::fs::write(&path, format!("[1]\n{whole}\n")).unwrap();
    let err = read_dead_letters(&path).unwrap_err().to_string();
    assert!(!err.contains("cut short"), "{err}");

    // Cut inside a character (a Cyrillic body's): the last line is cut short all the same;
    // before others, the line is named.
    let cyrillic = whole.replace(r#"{"a":1}"#, r#"{"a":"Заявка"}"#);
    let cut = &cyrillic.as_bytes()[..cyrillic.find('я').unwrap() + 1];
    let mut bytes = format!("{whole}\n").into_bytes();
    bytes.extend_from_slice(cut);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_dead_letters(&path).unwrap().len(), 1);
    bytes.extend_from_slice(format!("\n{whole}\n").as_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = read_dead_letters(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:2: not a dead letter", path.display())),
        "{err}"
    );
    assert!(err.contains("cut short"), "{err}");
}

#[test]
fn a_pretty_printed_body_stays_on_the_letters_line() {
    let body = raw_body(b"{\n  \"a\": \"x\\ny\",\r\n  \"b\": 1\n}");
    assert_eq!(body.get(), "{   \"a\": \"x\\ny\",    \"b\": 1 }");
    // Not JSON: kept as a string, its line break escaped.
    assert_eq!(raw_body(b"not\njson").get(), "\"not\\njson\"");
}

#[test]
fn letters_written_at_once_go_in_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let log = DeadLetterLog::new(path.clone());
    // About 2.5 batches' worth.
    let big = format!("{{\"text\":\"{}\"}}", "x".repeat(8 * 1024));
    let letters: Vec<DeadLetter> = (0..320)
        .map(|n| {
            let mut letter: DeadLetter = serde_json::from_str(&letter(&n.to_string())).unwrap();
            letter.body = raw_body(big.as_bytes());
            letter
        })
        .collect();
    log.write_all(&letters);
    let listed = ids(&log);
    let expected: Vec<String> = (0..320).map(|n: u32| n.to_string()).collect();
    assert_eq!(listed, expected);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.len() > 2 * BATCH_BYTES && text.ends_with("}\n"));
}

#[test]
fn a_letter_after_a_cut_line_is_written_and_listed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let whole = letter("one");
    // Left by a write that failed midway (a full disk).
    std::fs::write(&path, format!("{whole}\n{}", &whole[..40])).unwrap();
    let log = DeadLetterLog::new(path.clone());
    let next: DeadLetter = serde_json::from_str(&letter("two")).unwrap();
    log.write(&next);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with(&format!("\n{}\n", letter("two"))), "{text}");
    let listed = ids(&log);
    assert_eq!(listed, ["one", "two"], "the cut line hides neither");
}

/// The ids of a file's letters listed `limit` at a time from `before`, page by page.
fn pages(log: &DeadLetterLog, limit: usize, before: Option<u64>) -> Vec<Vec<String>> {
    let mut query = DeadLetterQuery {
        limit,
        before,
        ..DeadLetterQuery::new()
    };
    let mut pages = Vec::new();
    loop {
        let page = super::super::letters::page(log.newest_first(&query).unwrap(), &query).unwrap();
        pages.push(page.items.into_iter().map(|s| s.letter.id).collect());
        match page.next {
            Some(next) => query.before = Some(next),
            None => return pages,
        }
    }
}

#[test]
fn pages_of_a_file_larger_than_a_block_give_every_letter_once_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    // About 190 bytes a letter: 3.5 blocks, with lines across the blocks' edges.
    let text: String = (0..1200).map(|n| letter(&n.to_string()) + "\n").collect();
    assert!(text.len() > 3 * backward::BLOCK);
    std::fs::write(&path, &text).unwrap();
    let log = DeadLetterLog::new(path);
    let pages = pages(&log, 50, None);
    assert_eq!(pages.len(), 24);
    let listed: Vec<String> = pages.concat();
    let expected: Vec<String> = (0..1200).rev().map(|n: u32| n.to_string()).collect();
    assert_eq!(listed, expected);
}

#[test]
fn a_cursor_made_before_a_delete_shows_no_half_letter_and_loses_none_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    // Each letter longer than the one before.
    let id = |n: usize| format!("letter-{}", "x".repeat(n));
    let text: String = (0..10).map(|n| letter(&id(n)) + "\n").collect();
    std::fs::write(&path, &text).unwrap();
    let log = DeadLetterLog::new(path.clone());
    let all = newest(&log);
    // The page of the newest four was shown; then a letter older than them is deleted,
    // and the ones after it move back: the cursor now points inside the fourth.
    let cursor = all[3].position;
    assert_eq!(log.delete(&[all[7].key.clone()]).unwrap(), 1);
    // The line the cursor cuts is left out before it is parsed, not taken for a line
    // that is not a letter.
    for line in log.lines_before(Some(cursor)).unwrap() {
        let line = line.unwrap();
        let parsed = serde_json::from_slice::<DeadLetter>(&line.bytes);
        assert!(parsed.is_ok(), "{}", String::from_utf8_lossy(&line.bytes));
    }
    let after = pages(&log, 50, Some(cursor));
    let expected: Vec<String> = [5, 4, 3, 1, 0].into_iter().map(id).collect();
    assert_eq!(after, [expected]);
    assert_eq!(copies(dir.path()), Vec::<String>::new());
}

#[test]
#[cfg(unix)]
fn letters_by_key_come_oldest_first_and_a_delete_of_none_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text, log, all) = six_letters(dir.path());
    let keys = [all[4].key.clone(), all[0].key.clone(), all[2].key.clone()];
    let found: Vec<String> = log
        .by_key(&keys)
        .unwrap()
        .into_iter()
        .map(|s| s.letter.id)
        .collect();
    assert_eq!(found, ["1", "3", "5"]);

    // A rewrite would be renamed over the file: another inode.
    let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let before = inode();
    assert_eq!(log.delete(&["f0000000000000000".to_owned()]).unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(inode(), before);
    assert_eq!(copies(dir.path()), Vec::<String>::new());
    assert_eq!(log.delete(&keys).unwrap(), 3);
    assert_eq!(ids(&log), ["0", "2", "4"]);
}

#[test]
fn a_filter_pages_through_its_letters_only_escaped_names_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    // Every third letter is for an endpoint whose name needs escapes in JSON; a line
    // that is not a letter sits among them.
    let odd = "crm \"eu\" é";
    let mut text = String::new();
    for n in 0..1500 {
        let mut letter: DeadLetter = serde_json::from_str(&letter(&n.to_string())).unwrap();
        if n % 3 == 0 {
            letter.endpoint = odd.to_owned();
            letter.tenant = Some("acme\\1".to_owned());
        }
        text.push_str(&serde_json::to_string(&letter).unwrap());
        text.push('\n');
        if n == 700 {
            text.push_str("{\"id\":\"cut short\n");
        }
    }
    std::fs::write(&path, &text).unwrap();
    let log = DeadLetterLog::new(path);
    let mut query = DeadLetterQuery {
        endpoint: Some(odd.to_owned()),
        tenant: Some("acme\\1".to_owned()),
        limit: 100,
        ..DeadLetterQuery::new()
    };
    let mut listed = Vec::new();
    loop {
        let page = super::super::letters::page(log.newest_first(&query).unwrap(), &query).unwrap();
        listed.extend(page.items.into_iter().map(|s| s.letter.id));
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..1500)
        .rev()
        .filter(|n: &u32| n.is_multiple_of(3))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(listed, expected);
    query.before = None;
    query.tenant = Some("acme".to_owned());
    assert_eq!(log.newest_first(&query).unwrap().count(), 0);
}

#[test]
fn a_delete_lets_letters_be_written_while_it_copies_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    std::fs::write(
        &path,
        format!("{}\n{}\n{}\n", letter("a"), letter("b"), letter("c")),
    )
    .unwrap();
    let log = std::sync::Arc::new(DeadLetterLog::new(path.clone()));
    let b = newest(&log)
        .into_iter()
        .find(|s| s.letter.id == "b")
        .unwrap()
        .key;
    let writer = log.clone();
    BETWEEN.set(Some(Box::new(move || {
        // A worker or the router writing a letter while the delete copies: the writers'
        // lock is free (were it held, this would wait for ever).
        assert!(
            writer.lock.try_lock().is_ok(),
            "the writers wait for the whole copy"
        );
        writer
            .append(format!("{}\n", letter("d")).as_bytes())
            .unwrap();
    })));
    assert_eq!(log.delete(&[b]).unwrap(), 1);
    assert!(BETWEEN.take().is_none(), "the delete copied in two steps");
    assert_eq!(ids(&log), ["a", "c", "d"]);
    assert_eq!(copies(dir.path()), Vec::<String>::new());
}

/// A file cut shorter while a delete copies it (another process's append that failed,
/// cut back after the delete measured the file): the delete stops, and the file is left
/// as it is, rather than replaced by a copy holding what was never written.
#[test]
fn a_delete_stops_when_the_file_is_cut_shorter_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    std::fs::write(
        &path,
        format!("{}\n{}\n{}\n", letter("a"), letter("b"), letter("c")),
    )
    .unwrap();
    let log = DeadLetterLog::new(path.clone());
    let a = newest(&log)
        .into_iter()
        .find(|s| s.letter.id == "a")
        .unwrap()
        .key;
    let cut = format!("{}\n", letter("a")).len() as u64;
    let at = path.clone();
    BETWEEN.set(Some(Box::new(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&at)
            .unwrap()
            .set_len(cut)
            .unwrap();
    })));
    let err = log.delete(&[a]).unwrap_err();
    assert!(err.to_string().contains("nothing was deleted"), "{err}");
    assert_eq!(ids(&log), ["a"], "the file as the cut left it");
    assert_eq!(copies(dir.path()), Vec::<String>::new());
}

#[test]
fn a_delete_leaves_a_file_moved_away_meanwhile_and_the_new_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let moved = dir.path().join("dead.jsonl.replaying");
    std::fs::write(&path, format!("{}\n{}\n", letter("a"), letter("b"))).unwrap();
    let log = std::sync::Arc::new(DeadLetterLog::new(path.clone()));
    let a = newest(&log)
        .into_iter()
        .find(|s| s.letter.id == "a")
        .unwrap()
        .key;
    let writer = log.clone();
    let (from, to) = (path.clone(), moved.clone());
    BETWEEN.set(Some(Box::new(move || {
        // `deskhook dead-letters replay` sets the file aside, and a letter is given up
        // into a new one.
        std::fs::rename(&from, &to).unwrap();
        writer
            .append(format!("{}\n", letter("c")).as_bytes())
            .unwrap();
    })));
    let err = log.delete(&[a]).unwrap_err();
    assert!(
        matches!(err, crate::Error::DeadLettersMoved { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("moved or replaced while the delete"),
        "{err}"
    );
    assert_eq!(ids(&log), ["c"]);
    let set_aside = std::fs::read_to_string(&moved).unwrap();
    assert_eq!(set_aside.lines().count(), 2);
    assert_eq!(copies(dir.path()), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn a_delete_keeps_the_files_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    std::fs::write(&path, format!("{}\n{}\n", letter("a"), letter("b"))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = DeadLetterLog::new(path.clone());
    let a = newest(&log)
        .into_iter()
        .find(|s| s.letter.id == "a")
        .unwrap()
        .key;
    // So does its copy, from the start: it holds every letter's body while it is made.
    let copy_mode = std::sync::Arc::new(std::sync::Mutex::new(0));
    let seen = copy_mode.clone();
    let folder = dir.path().to_path_buf();
    BETWEEN.set(Some(Box::new(move || {
        let [copy] = &copies(&folder)[..] else {
            panic!("one copy while the delete runs: {:?}", copies(&folder))
        };
        let copy = folder.join(copy);
        *seen.lock().unwrap() = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    })));
    assert_eq!(log.delete(&[a]).unwrap(), 1);
    assert_eq!(*copy_mode.lock().unwrap(), 0o600);
    assert_eq!(ids(&log), ["b"]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[cfg(unix)]
#[test]
fn a_new_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    DeadLetterLog::new(path.clone()).check().unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[cfg(unix)]
#[test]
fn a_file_moved_away_is_made_again_with_its_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    std::fs::write(&path, format!("{}\n", letter("a"))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = DeadLetterLog::new(path.clone());
    log.check().unwrap();
    // What `deskhook dead-letters replay` does: the file goes, the next letter makes it.
    std::fs::rename(&path, dir.path().join("dead.jsonl.replaying")).unwrap();
    let b: DeadLetter = serde_json::from_str(&letter("b")).unwrap();
    assert!(log.write(&b));
    assert_eq!(ids(&log), ["b"]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Letters asked for where a listing found them are read there, oldest first; those a
/// delete moved since (or that are gone) are looked for in the whole file, once.
#[test]
fn letters_read_where_they_were_found_or_else_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, log, all) = six_letters(dir.path());
    let at = |n: usize| (all[n].key.clone(), all[n].position);
    let read = |wanted: &[(String, u64)]| -> (Vec<String>, usize) {
        let before = READS_WHOLE.get();
        let found = log.at(wanted).unwrap();
        let ids = found.into_iter().map(|s| s.letter.id).collect();
        (ids, READS_WHOLE.get() - before)
    };
    // Newest first in `all`: index 0 is letter "5".
    assert_eq!(
        read(&[at(0), at(4), at(2)]),
        (vec!["1".into(), "3".into(), "5".into()], 0)
    );
    // "0" deleted: the others moved up, and are found by key.
    log.delete(&[all[5].key.clone()]).unwrap();
    assert_eq!(read(&[at(1), at(3)]), (vec!["2".into(), "4".into()], 1));
    // Gone: nothing, after one look.
    assert_eq!(read(&[at(5)]), (Vec::new(), 1));
}

#[test]
fn a_page_ends_once_its_bodies_reach_the_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    // Five letters of 3 MiB bodies: a page of 50 holds three (9 MiB, past 8 MiB), the
    // next page the other two; every letter once.
    let big = "x".repeat(3 << 20);
    let text: String = (0..5)
        .map(|n| letter(&n.to_string()).replace(r#"{"a":1}"#, &format!(r#""{big}""#)) + "\n")
        .collect();
    std::fs::write(&path, &text).unwrap();
    let log = DeadLetterLog::new(path);
    assert_eq!(pages(&log, 50, None), [vec!["4", "3", "2"], vec!["1", "0"]]);
    // A letter larger than the budget is a page of its own.
    std::fs::write(
        dir.path().join("dead.jsonl"),
        letter("huge").replace(r#"{"a":1}"#, &format!(r#""{}""#, "y".repeat(9 << 20))) + "\n",
    )
    .unwrap();
    let log = DeadLetterLog::new(dir.path().join("dead.jsonl"));
    assert_eq!(pages(&log, 50, None), [vec!["huge"]]);
}

/// What `deskhook dead-letters replay` appends with: never glued to a cut line.
#[test]
fn lines_appended_after_a_cut_line_start_a_line_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    std::fs::write(&path, b"{\"id\":\"cut").unwrap();
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    let mut file = open_dead_letters_locked(&path, &options).unwrap();
    append_dead_letter_lines(&mut file, b"{\"id\":\"b\"}\n").unwrap();
    append_dead_letter_lines(&mut file, b"{\"id\":\"c\"}\n").unwrap();
    drop(file);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"id\":\"cut\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
    );
}

/// A file that cannot be read is said as such, not as one that cannot be appended to.
#[test]
fn a_file_that_cannot_be_read_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be: it opens, and a read fails.
    let err = read_dead_letters(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot read '{}': ", dir.path().display())),
        "{text}"
    );
}

/// The names of the delete copies in `folder` (`dead.jsonl.rewrite-…`).
fn copies(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".rewrite"))
        .collect();
    names.sort();
    names
}

#[test]
fn two_deletes_at_once_from_two_processes_lose_no_letter() {
    // Two logs of one file: two processes (each with its own lock between its deletes).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let lines: String = ["a", "b", "c"]
        .map(|id| format!("{}\n", letter(id)))
        .concat();
    std::fs::write(&path, lines).unwrap();
    let (first, second) = (
        DeadLetterLog::new(path.clone()),
        DeadLetterLog::new(path.clone()),
    );
    let key = |id: &str| {
        let stored = newest(&first).into_iter().find(|s| s.letter.id == id);
        stored.unwrap().key
    };
    let (a, b) = (key("a"), key("b"));
    let (first_copied, wait_for_first) = std::sync::mpsc::channel();
    let (second_copied, wait_for_second) = std::sync::mpsc::channel();
    let (first_done, wait_for_first_done) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        // The first has copied, and waits while the second begins and copies too; the
        // first renames its copy while the second waits, then the second goes on.
        let first = scope.spawn(|| {
            BETWEEN.set(Some(Box::new(move || {
                first_copied.send(()).unwrap();
                wait_for_second.recv().unwrap();
            })));
            let deleted = first.delete(&[a]);
            first_done.send(()).unwrap();
            deleted
        });
        wait_for_first.recv().unwrap();
        let second = scope.spawn(|| {
            BETWEEN.set(Some(Box::new(move || {
                second_copied.send(()).unwrap();
                wait_for_first_done.recv().unwrap();
            })));
            second.delete(&[b])
        });
        assert_eq!(first.join().unwrap().unwrap(), 1);
        let err = second.join().unwrap().unwrap_err();
        assert!(
            matches!(err, crate::Error::DeadLettersMoved { .. }),
            "{err}"
        );
    });
    // The first delete's copy is the file; the second's delete is undone, not half done.
    assert_eq!(ids(&first), ["b", "c"]);
    assert_eq!(copies(dir.path()), Vec::<String>::new());
}
