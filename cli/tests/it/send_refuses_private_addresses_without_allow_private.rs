//! Without `--allow-private`, `deskhook send` refuses loopback addresses before connecting,
//! and says which flag allows them; with it, the flag applies to the endpoints of `--config`
//! too.

use std::net::TcpListener;

use crate::support::{Listen, deskhook_in, text};

/// A loopback listener that never answers; `accepted` tells whether anything connected.
struct Silent(TcpListener);

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Silent(listener)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    fn accepted(&self) -> usize {
        let mut n = 0;
        while self.0.accept().is_ok() {
            n += 1;
        }
        n
    }
}

#[test]
fn a_loopback_ip_is_refused_before_any_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let url = format!("http://127.0.0.1:{}/", silent.port());
    let out = deskhook_in(tmp.path(), &["send", "--action", "create", "--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--url {url}: refusing to send to 127.0.0.1, a loopback address; pass \
             --allow-private to send to private and loopback addresses"
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(silent.accepted(), 0);
    // No dead-letter file is left behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // A path is cut from the message, as the library cuts it: a webhook's path is often a
    // token.
    let url = format!("http://127.0.0.1:{}/hooks/T0/XyZsecretToken", silent.port());
    let out = deskhook_in(tmp.path(), &["send", "--action", "create", "--url", &url]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--url http://127.0.0.1:{}/…: refusing",
            silent.port()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("XyZsecretToken"), "{stderr}");
}

#[test]
fn a_host_name_that_resolves_to_loopback_is_refused_too() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let url = format!("http://localhost:{}/", silent.port());
    let out = deskhook_in(
        tmp.path(),
        &["send", "--action", "create", "--retry", "0s", "--url", &url],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    // The guard refuses at resolution time: the attempt fails without a connection.
    assert!(
        stdout.contains("create   cli  attempt 1  refusing to connect to "),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("pass --allow-private"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(silent.accepted(), 0);
}

#[test]
fn allow_private_reaches_a_literal_loopback_ip_in_the_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = Listen::start(&[]);
    let config = tmp.path().join("deskhook.toml");
    std::fs::write(
        &config,
        format!(
            "[[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nactions = [\"create\", \"ok\"]\n",
            listen.url
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let refused = deskhook_in(
        tmp.path(),
        &["send", "--config", config, "--action", "create"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("refusing to connect to 127.0.0.1 (loopback)"),
        "{}",
        text(&refused.stderr)
    );

    // All twelve actions to an endpoint that takes two: the ten others are not failures.
    let out = deskhook_in(
        tmp.path(),
        &[
            "send",
            "--config",
            config,
            "--allow-private",
            "--all-actions",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("2 of 2 delivered (12 event(s), 1 endpoint(s))"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "not sent: approve, comment, delete, edit, lock, refer, restore, unlock, unok, \
             waitok (no endpoint subscribes to it)"
        ),
        "{stdout}"
    );
    let received = listen.lines(2);
    assert!(
        received.iter().all(|line| line.contains("E3XK")),
        "{received:?}"
    );
}
