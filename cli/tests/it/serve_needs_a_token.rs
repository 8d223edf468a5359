//! `deskhook serve` refuses to start without a usable token, and says what is wrong with
//! the one it found: not set, too short, a placeholder, not UTF-8 text, or not sendable in
//! a header; takes it from a file with --token-file (the environment's then unused); and
//! refuses a --body-timeout or a --header-timeout of zero, a --listen that is not an
//! address (with `listen --addr`'s likewise), and one in use.

use std::process::{Command, Stdio};

#[test]
fn serve_without_a_usable_token_says_what_is_wrong_with_it() {
    use std::os::unix::ffi::OsStrExt as _;
    let short = std::ffi::OsStr::new("short");
    let not_text = std::ffi::OsStr::from_bytes(b"\xff\xfe-0123456789abcdef0123");
    // What `head -c 64 /dev/urandom | base64` gives: a line break after 76 characters.
    let wrapped = format!("{}\n{}", "A".repeat(76), "B".repeat(12));
    let accented = "jeton-secret-de-l'équipe";
    for (value, says) in [
        (None, "(it is not set)"),
        (Some(short), "(it is too short)"),
        (
            Some(std::ffi::OsStr::new("abcdabcdabcdabcdabcd")),
            "(it has fewer than 5 different characters, as a placeholder does)",
        ),
        (Some(not_text), "(it is not UTF-8 text)"),
        (
            Some(std::ffi::OsStr::new(&wrapped)),
            "(it holds a space, a line break",
        ),
        (
            Some(std::ffi::OsStr::new(accented)),
            "(it holds a space, a line break",
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_deskhook"));
        command
            // The token is checked first: the file need not exist.
            .args([
                "serve",
                "--config",
                "deskhook.toml",
                "--listen",
                "127.0.0.1:0",
            ])
            .env_remove("DESKHOOK_TOKEN")
            .stdin(Stdio::null());
        if let Some(value) = value {
            command.env("DESKHOOK_TOKEN", value);
        }
        let output = command.output().expect("deskhook runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("environment variable DESKHOOK_TOKEN {says}")),
            "{stderr}"
        );
    }
}

#[test]
fn serve_refuses_timeouts_of_zero() {
    for (flag, says) in [
        (
            "--body-timeout",
            "--body-timeout 0s would answer every event 408",
        ),
        (
            "--header-timeout",
            "--header-timeout 0s would close every connection before its request came",
        ),
        (
            "--metrics-forget",
            "--metrics-forget 0s would drop every counter and histogram at each scrape",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args([
                "serve",
                "--config",
                "deskhook.toml",
                "--listen",
                "127.0.0.1:0",
                flag,
                "0s",
            ])
            .env("DESKHOOK_TOKEN", "a-token-long-enough-for-serve")
            .stdin(Stdio::null())
            .output()
            .expect("deskhook runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn an_address_to_listen_on_that_is_not_one_is_said_with_its_form() {
    let form = "give IP:PORT, such as 127.0.0.1:8089 (no http://; port 0 for a free one)";
    for (args, says) in [
        (
            ["serve", "--listen", "127.0.0.1"],
            "'127.0.0.1' is not an address to listen on",
        ),
        (
            ["listen", "--addr", "http://127.0.0.1:8080/"],
            "--addr http://127.0.0.1:8080/: invalid port value",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args(args)
            .env("DESKHOOK_TOKEN", "a-token-long-enough-for-serve")
            .stdin(Stdio::null())
            .output()
            .expect("deskhook runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(stderr.contains(form), "{args:?}: {stderr}");
    }
}

#[test]
fn serve_on_an_address_in_use_says_so_and_what_to_give() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deskhook.toml");
    std::fs::write(&config, "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["serve", "--listen", &addr, "--config"])
        .arg(&config)
        .env("DESKHOOK_TOKEN", "a-token-long-enough-for-serve")
        .stdin(Stdio::null())
        .output()
        .expect("deskhook runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}"))
            && stderr.contains("give another address with --listen"),
        "{stderr}"
    );
}

#[test]
fn serve_takes_its_token_from_a_file_and_says_what_is_wrong_with_one() {
    use crate::support::serve::{Serve, TOKEN};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deskhook.toml");
    std::fs::write(&config, "").unwrap();
    let file = dir.path().join("token");
    let path = file.to_str().unwrap();
    let refused = |contents: Option<&str>| {
        match contents {
            Some(contents) => std::fs::write(&file, contents).unwrap(),
            None => {
                let _ = std::fs::remove_file(&file);
            }
        }
        let output = Command::new(env!("CARGO_BIN_EXE_deskhook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--token-file", path])
            .arg("--config")
            .arg(&config)
            .env("DESKHOOK_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .output()
            .expect("deskhook runs");
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let short = refused(Some("short\n"));
    assert!(
        short.contains(&format!("in the file {path} (it is too short)"))
            && short.contains("write it there"),
        "{short}"
    );
    let long = refused(Some(&"a".repeat(5000)));
    assert!(long.contains("is longer than a token"), "{long}");
    let blank = refused(Some(" \n\n"));
    assert!(blank.contains("(it is empty)"), "{blank}");
    let missing = refused(None);
    assert!(
        missing.contains(&format!("cannot read the token from the file {path}")),
        "{missing}"
    );
    // A good one, with its line break: the file's token is the one asked for, not the
    // environment's.
    let theirs = "token-from-a-file-0123456789";
    std::fs::write(&file, format!("{theirs}\n")).unwrap();
    let serve = Serve::start_with(&config, None, &["--token-file", path]);
    let (status, _) = serve.call("GET", "/api/v1/endpoints", &[], "");
    assert_eq!(status, 401, "the environment's token is not used");
    let (status, body) = crate::support::request(
        &serve.addr,
        "GET",
        "/api/v1/endpoints",
        &[("Authorization", &format!("Bearer {theirs}"))],
        b"",
    );
    assert_eq!(status, 200, "{body}");
}
