//! `deskhook drain`, `deskhook spool stats` and `deskhook dead-letters … --spool` on a spool
//! that `deskhook bench --spool` filled while its endpoint was down. Receivers are `deskhook
//! listen` on 127.0.0.1; "down" is a loopback port where nothing listens.

use std::path::Path;

use crate::support::{Listen, deskhook_in, text};

/// A loopback URL where nothing listens: bound, then released.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

/// Fills `dir` with `n` undelivered events for endpoint `bench`.
fn fill(tmp: &Path, dir: &str, n: &str) {
    let out = deskhook_in(
        tmp,
        &[
            "bench",
            "--url",
            &closed_url(),
            "--allow-private",
            "--events",
            n,
            "--spool",
            dir,
            "--retry",
            "0s,1h",
            "--wait",
            "50ms",
        ],
    );
    assert!(!out.status.success(), "nothing can be delivered");
    assert!(
        text(&out.stdout).contains(&format!("durable {n}")),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_spool_is_inspected_drained_and_its_dead_letters_replayed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let dir_arg = dir.to_str().unwrap();
    fill(tmp.path(), dir_arg, "20");

    let out = deskhook_in(tmp.path(), &["spool", "stats", dir_arg]);
    let stats = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stats.starts_with("pending       20\n"), "{stats}");
    assert!(
        stats.contains("dead letters  0") && stats.contains("  bench  20 pending"),
        "{stats}"
    );

    // A receiver that refuses everything: all twenty go to the spool's dead letters.
    let refusing = Listen::start(&["--status", "400"]);
    let out = deskhook_in(
        tmp.path(),
        &[
            "drain",
            "--spool",
            dir_arg,
            "--url",
            &refusing.url,
            "--allow-private",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let summary = text(&out.stdout);
    assert!(
        summary.starts_with("0 of 20 event(s) delivered; 20 dead-lettered"),
        "{summary}"
    );

    // The configuration's [spool] is where its dead letters are, for list as for replay.
    let taking = Listen::start(&[]);
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[spool]\ndir = {dir_arg:?}\n\n[[endpoint]]\nname = \"bench\"\nurl = \"{}\"\nallow_private = true\n",
            taking.url
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let by_config = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--config", config_arg],
    );
    let out = deskhook_in(tmp.path(), &["dead-letters", "list", "--spool", dir_arg]);
    let list = text(&out.stdout);
    assert_eq!(text(&by_config.stdout), list);
    assert_eq!(list.lines().count(), 21, "{list}");
    assert!(
        list.contains(" B0000001  2 attempt(s)  400  "),
        "attempts carry over: {list}"
    );
    assert!(
        list.ends_with(&format!("20 dead letter(s) in spool {dir_arg}\n")),
        "{list}"
    );
    // The newest five of them, and where the next five start.
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "list", "--spool", dir_arg, "--limit", "5"],
    );
    let newest = text(&out.stdout);
    let lines: Vec<&str> = newest.lines().collect();
    assert_eq!(
        lines[..5],
        list.lines().collect::<Vec<_>>()[..5],
        "{newest}"
    );
    assert!(
        lines[5].starts_with(&format!(
            "5 dead letter(s) in spool {dir_arg}, the newest 5; older ones: --before "
        )),
        "{newest}"
    );

    // The endpoint made again for a tenant: the letters, of none, stay, each said.
    let acme = tmp.path().join("acme.toml");
    std::fs::write(
        &acme,
        std::fs::read_to_string(&config).unwrap() + "tenant = \"acme\"\n",
    )
    .unwrap();
    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "replay", "--config", acme.to_str().unwrap()],
    );
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!("0 dead letter(s) of spool {dir_arg} queued again")),
        "{said}"
    );
    assert_eq!(
        said.matches("and endpoint 'bench' now belongs to tenant 'acme'")
            .count(),
        20,
        "{said}"
    );

    // A configuration that names another endpoint: bench's letters stay, said, and the
    // replay fails (before, it said "0 queued again" and exited 0).
    let other = tmp.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("name = \"bench\"", "name = \"crm\""),
    )
    .unwrap();
    let out = deskhook_in(
        tmp.path(),
        &[
            "dead-letters",
            "replay",
            "--config",
            other.to_str().unwrap(),
        ],
    );
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "20 dead letter(s) of other endpoints left as they were (of endpoints the \
             configuration does not name: 20 for 'bench'; add them to it to replay them)"
        ),
        "{said}"
    );

    let out = deskhook_in(
        tmp.path(),
        &["dead-letters", "replay", "--config", config_arg],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "20 of 20 event(s) delivered\n");
    assert_eq!(taking.lines(20).len(), 20);

    // More undelivered events, drained through the configuration's [spool].
    fill(tmp.path(), dir_arg, "5");
    let out = deskhook_in(tmp.path(), &["drain", "--config", config_arg]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "5 of 5 event(s) delivered\n");
    let out = deskhook_in(tmp.path(), &["spool", "stats", dir_arg, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (stats["pending"].as_u64(), stats["dead_letters"].as_u64()),
        (Some(0), Some(0))
    );
    // The directory as the other commands take it, too; not both.
    let flagged = deskhook_in(
        tmp.path(),
        &["spool", "stats", "--spool", dir_arg, "--json"],
    );
    assert_eq!(text(&flagged.stdout), text(&out.stdout));
    let both = deskhook_in(tmp.path(), &["spool", "stats", dir_arg, "--spool", dir_arg]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn the_events_of_a_gone_endpoint_are_moved_to_the_spools_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let dir_arg = dir.to_str().unwrap();
    fill(tmp.path(), dir_arg, "10");

    // A mistyped name moves nothing, and says which endpoints have events.
    let out = deskhook_in(
        tmp.path(),
        &["spool", "dead-letter", dir_arg, "--endpoint", "bnech"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "spool {dir_arg} has no pending event of endpoint 'bnech' (those with some: \
             bench); nothing was moved"
        )),
        "{}",
        text(&out.stderr)
    );

    // --dry-run says what would move, and moves nothing.
    let out = deskhook_in(
        tmp.path(),
        &[
            "spool",
            "dead-letter",
            dir_arg,
            "--endpoint",
            "bench",
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "would move 10 pending event(s) of 'bench'\n"
    );
    assert!(text(&out.stderr).contains("--dry-run: nothing was moved"));

    let out = deskhook_in(
        tmp.path(),
        &["spool", "dead-letter", dir_arg, "--endpoint", "bench"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "moved 10 pending event(s) of 'bench'\n");
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!("they are in the dead letters of spool {dir_arg}")),
        "{said}"
    );
    // bench registered it: the move is said to be of an endpoint the sink knew.
    assert!(
        said.contains("endpoint 'bench' was registered in the sink that last had the spool open"),
        "{said}"
    );
    let out = deskhook_in(tmp.path(), &["spool", "stats", dir_arg, "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        (&stats["pending"], &stats["dead_letters"]),
        (&0.into(), &10.into())
    );
    let out = deskhook_in(tmp.path(), &["dead-letters", "list", "--spool", dir_arg]);
    let list = text(&out.stdout);
    assert_eq!(list.lines().count(), 11, "{list}");
}

#[test]
fn drain_fails_while_events_of_endpoints_it_was_not_given_are_left() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let dir_arg = dir.to_str().unwrap();
    fill(tmp.path(), dir_arg, "3");
    // The configuration names another endpoint than the spool's `bench`.
    let taking = Listen::start(&[]);
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[spool]\ndir = {dir_arg:?}\n\n[[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nallow_private = true\n",
            taking.url
        ),
    )
    .unwrap();
    let out = deskhook_in(tmp.path(), &["drain", "--config", config.to_str().unwrap()]);
    // Exit 1: a script that removed the spool on success would lose them (it was 0).
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "0 of 0 event(s) delivered; not drained (no such endpoint configured): 3 for 'bench'\n"
    );
}

#[test]
fn drain_names_the_remedy_the_guard_gives_for_a_refused_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let dir_arg = dir.to_str().unwrap();
    fill(tmp.path(), dir_arg, "1");
    // Refused when the endpoint is built (an address in the URL): nothing is sent. A
    // loopback one without the flag: the flag is the remedy. (That an address no flag
    // allows is not given it is the unit test of `spool::build_error`: tests send nothing
    // to any other address, not even one the guard refuses.)
    let out = deskhook_in(
        tmp.path(),
        &["drain", "--spool", dir_arg, "--url", &closed_url()],
    );
    assert_eq!(out.status.code(), Some(1));
    let loopback = text(&out.stderr);
    assert!(loopback.contains("pass --allow-private"), "{loopback}");
}

#[test]
fn drain_explains_a_missing_spool_and_a_spool_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let out = deskhook_in(
        tmp.path(),
        &["spool", "stats", tmp.path().join("none").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no spool here"),
        "{}",
        text(&out.stderr)
    );

    // Not told where to send: both ways are named (clap's own message named --config
    // alone, and --spool where --config would do).
    for args in [&["drain"][..], &["drain", "--spool", "x"][..]] {
        let out = deskhook_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("drain needs --config FILE (")
                && stderr.contains("or --spool DIR and --url URL (every event goes to that URL)"),
            "{args:?}: {stderr}"
        );
    }
    // A --config without [spool], and no --spool: a usage error too.
    let config = tmp.path().join("no-spool.toml");
    std::fs::write(&config, "[delivery]\n").unwrap();
    let out = deskhook_in(tmp.path(), &["drain", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--config has no [spool] section; give --spool DIR"),
        "{}",
        text(&out.stderr)
    );

    // drain and replay --spool on a mistyped path: an error, not a new empty spool and
    // "0 of 0 delivered".
    let none = tmp.path().join("none");
    for args in [
        &[
            "drain",
            "--spool",
            none.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9/",
            "--allow-private",
        ][..],
        &[
            "dead-letters",
            "replay",
            "--spool",
            none.to_str().unwrap(),
            "--config",
            "deskhook.toml",
        ][..],
    ] {
        let out = deskhook_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("no spool here"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!none.exists(), "{args:?} made {}", none.display());
    }

    // The database file given for its directory: the directory is named.
    let file = tmp.path().join("spool.sqlite3");
    std::fs::write(&file, b"").unwrap();
    for args in [
        &["spool", "stats", file.to_str().unwrap()][..],
        &[
            "drain",
            "--spool",
            file.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9/",
            "--allow-private",
        ][..],
    ] {
        let out = deskhook_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let expected = format!(
            "is a file, and a spool is a directory; give the directory that holds \
             spool.sqlite3 (such as '{}')",
            tmp.path().display()
        );
        assert!(
            text(&out.stderr).contains(&expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Where a spool is made if missing (bench, serve), the same slip is named too, not
    // "cannot create the spool directory: File exists".
    let file_arg = file.to_str().unwrap();
    let out = deskhook_in(
        tmp.path(),
        &[
            "bench",
            "--spool",
            file_arg,
            "--url",
            "http://127.0.0.1:9/",
            "--allow-private",
            "--events",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "'{file_arg}' is a file, and a spool is a directory: give the directory that holds \
             spool.sqlite3, or one to make"
        )),
        "{}",
        text(&out.stderr)
    );

    let dir = tmp.path().join("spool");
    let _held = deskhook_transports::spool::Spool::open(&dir).unwrap();
    let out = deskhook_in(
        tmp.path(),
        &[
            "drain",
            "--spool",
            dir.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9/",
            "--allow-private",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is in use by another process"),
        "{}",
        text(&out.stderr)
    );
}
