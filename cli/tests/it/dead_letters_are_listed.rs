//! `deskhook dead-letters list` shows the dead letters a failing receiver left, one line
//! each (what others wrote escaped) or as JSON, filtered and paged.

use crate::support::dead_letters::{dead_letters, only_letter};
use crate::support::{deskhook_in, text};

#[test]
fn list_escapes_what_would_drive_the_terminal_and_says_a_folder_is_not_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (_config, dead) = dead_letters(tmp.path(), "create");
    // A ticket code and a receiver's answer as a sender or a receiver may make them.
    let mut letter = only_letter(&dead);
    letter["ticket"] = "E3\u{1b}[2J\u{202E}".into();
    letter["reason"] = "\u{1b}]0;title\u{7}".into();
    std::fs::write(&dead, format!("{letter}\n")).unwrap();
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--file", dead.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("E3\\u{1b}[2J\\u{202e}") && stdout.contains("\\u{1b}]0;title\\u{7}"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(['\u{1b}', '\u{7}', '\u{202E}']),
        "{stdout}"
    );

    let typo = tmp.path().join("no-such-folder").join("dead.jsonl");
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--file", typo.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no folder") && text(&out.stderr).contains("check the path"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn list_filters_pages_and_prints_the_letters_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dead) = dead_letters(tmp.path(), "create");
    let letter = only_letter(&dead);
    // Five letters, oldest first: (endpoint, ticket, tenant).
    let made = [
        ("crm", "A1", None),
        ("billing", "A1", Some("acme")),
        ("crm", "A2", None),
        ("crm", "A1", None),
        ("billing", "A2", None),
    ];
    let mut file = String::new();
    for (n, (endpoint, ticket, tenant)) in made.iter().enumerate() {
        let mut letter = letter.clone();
        letter["endpoint"] = (*endpoint).into();
        letter["ticket"] = (*ticket).into();
        letter["tenant"] = (*tenant).into();
        letter["reason"] = format!("letter {n}").into();
        file.push_str(&format!("{letter}\n"));
    }
    let path = tmp.path().join("five.jsonl");
    std::fs::write(&path, file).unwrap();
    let list = |args: &[&str]| {
        let mut all = vec!["dead-letters", "list", "--file", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = deskhook_in(tmp.path(), &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    // Which letters a listing shows (by the n of "letter n"), and its last line.
    let shown = |stdout: &str| -> (Vec<usize>, String) {
        let lines: Vec<&str> = stdout.lines().collect();
        let (summary, letters) = lines.split_last().unwrap();
        let ns = letters
            .iter()
            .map(|line| line.rsplit("letter ").next().unwrap().parse().unwrap())
            .collect();
        (ns, (*summary).to_owned())
    };
    let place = path.display();

    let (ns, summary) = shown(&list(&["--endpoint", "crm"]).0);
    assert_eq!(ns, [3, 2, 0]);
    assert_eq!(
        summary,
        format!("3 dead letter(s) of endpoint \"crm\" in {place}")
    );
    let (ns, summary) = shown(&list(&["--tenant", "acme"]).0);
    assert_eq!(
        (ns, summary),
        (
            vec![1],
            format!("1 dead letter(s) of tenant \"acme\" in {place}")
        )
    );
    let (ns, _) = shown(&list(&["--endpoint", "billing", "--ticket", "A2"]).0);
    assert_eq!(ns, [4]);

    // Two at a time, each page naming the cursor of the next.
    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut args = vec!["--limit", "2"];
        if let Some(before) = &before {
            args.extend(["--before", before.as_str()]);
        }
        let (ns, summary) = shown(&list(&args).0);
        pages.push(ns);
        match summary.split_once("; older ones: --before ") {
            Some((_, next)) => before = Some(next.to_owned()),
            None => break,
        }
        assert!(pages.len() < 5, "paging ends: {pages:?}");
    }
    assert_eq!(pages, [vec![4, 3], vec![2, 1], vec![0]]);

    // --json: the letters as stored, newest first; the count on stderr.
    let (stdout, stderr) = list(&["--ticket", "A2", "--json"]);
    let letters: Vec<deskhook_transports::delivery::DeadLetter> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert_eq!(reasons, ["letter 4", "letter 2"]);
    assert_eq!(
        stderr,
        format!("2 dead letter(s) of ticket \"A2\" in {place}\n")
    );

    let out = deskhook_in(tmp.path(), &["dead-letters", "list", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--limit"),
        "{}",
        text(&out.stderr)
    );
}
