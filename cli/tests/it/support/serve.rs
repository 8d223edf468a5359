//! `deskhook serve` as the tests run it: the daemon on 127.0.0.1 with a token, a receiver
//! that can be switched from failing to answering, events and configurations. Shared by the
//! `serve*` test files.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook_tests::{Answer, Receiver};
use serde_json::Value;

use super::{Running, WAIT, request};

pub(crate) const TOKEN: &str = "test-token-0123456789abcdef";

/// A receiver that answers 503 until it is switched up, then 204, and remembers the
/// webhook-ids it answered 204.
pub(crate) struct Switchable {
    pub(crate) receiver: Receiver,
    pub(crate) up: Arc<AtomicBool>,
    pub(crate) delivered: Arc<Mutex<HashSet<String>>>,
}

impl Switchable {
    pub(crate) fn start(down_status: u16) -> Switchable {
        let up = Arc::new(AtomicBool::new(false));
        let delivered: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (flag, seen) = (up.clone(), delivered.clone());
        let receiver = Receiver::start(move |request, _| {
            if flag.load(Ordering::SeqCst) {
                let id = request.header("webhook-id").unwrap_or_default().to_owned();
                seen.lock().unwrap().insert(id);
                Answer::status(204)
            } else {
                Answer::status(down_status).body(r#"{"error": "the CRM's database is down"}"#)
            }
        });
        Switchable {
            receiver,
            up,
            delivered,
        }
    }

    pub(crate) fn delivered(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }

    /// Waits until `n` events were delivered.
    pub(crate) fn wait_delivered(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.delivered() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.delivered(), n, "events delivered");
    }
}

/// `deskhook serve` on 127.0.0.1 and a free port.
pub(crate) struct Serve {
    pub(crate) process: Running,
    pub(crate) addr: String,
    /// Its second line: where it listens and keeps things.
    pub(crate) banner: String,
}

impl Serve {
    pub(crate) fn start(config: &Path, spool: Option<&Path>) -> Serve {
        Serve::start_with(config, spool, &[])
    }

    /// [`Serve::start`] with `extra` arguments.
    pub(crate) fn start_with(config: &Path, spool: Option<&Path>, extra: &[&str]) -> Serve {
        Serve::start_with_env(config, spool, extra, &[])
    }

    /// [`Serve::start`] without a spool and with `ingest` as its ingest token (in
    /// `HELPDESK_TOKEN`, named by `--ingest-token-env`).
    pub(crate) fn with_ingest_token(config: &Path, ingest: &str) -> Serve {
        Serve::start_with_env(
            config,
            None,
            &["--ingest-token-env", "HELPDESK_TOKEN"],
            &[("HELPDESK_TOKEN", ingest)],
        )
    }

    /// [`Serve::start_with`] with `env` variables besides its token.
    pub(crate) fn start_with_env(
        config: &Path,
        spool: Option<&Path>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        let mut args = vec![
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ];
        if !extra.contains(&"--grace") {
            args.extend(["--grace", "100ms"]);
        }
        if let Some(spool) = spool {
            // With a spool, a runtime of one worker thread; without, one per core: both run.
            args.extend(["--spool", spool.to_str().unwrap(), "--threads", "1"]);
        }
        args.extend_from_slice(extra);
        let mut env = env.to_vec();
        env.push(("DESKHOOK_TOKEN", TOKEN));
        let process = Running::spawn_with(&args, &env);
        let first = process.line();
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        let banner = process.line();
        assert!(banner.starts_with("loopback only"), "{banner}");
        Serve {
            process,
            addr,
            banner,
        }
    }

    /// Sends it `signal` (`-TERM`, `-HUP`) with kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.process.pid().to_string()])
            .status();
        assert!(sent.unwrap().success(), "kill {signal}");
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let auth = format!("Bearer {TOKEN}");
        let mut all = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        all.extend_from_slice(headers);
        let (status, body) = request(&self.addr, method, path, &all, body.as_bytes());
        let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (status, json)
    }

    /// POSTs an event the way a PHP helpdesk's curl would.
    pub(crate) fn post_event(&self, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.call("POST", "/v1/events", headers, body)
    }
}

/// The JSON of a Zenlix `create` event for ticket `code`.
pub(crate) fn zenlix_event(code: &str) -> String {
    zenlix_action(deskhook::Action::Create, code)
}

/// The JSON of a Zenlix event of `action` for ticket `code`.
pub(crate) fn zenlix_action(action: deskhook::Action, code: &str) -> String {
    let mut ticket = deskhook::sample::ticket();
    ticket.code = code.to_owned();
    let user = deskhook::sample::user();
    String::from_utf8(
        deskhook::EventRef::new(action, &ticket, &user)
            .to_json()
            .unwrap(),
    )
    .unwrap()
}

/// A deskhook.toml in `dir`: its own dead letters, `sections` (TOML tables), and one
/// endpoint, `crm`, to `url`.
pub(crate) fn crm_config(dir: &Path, sections: &str, url: &str) -> std::path::PathBuf {
    let text = format!(
        "[delivery]\ndead_letter_path = {:?}\n\n{sections}[[endpoint]]\nname = \"crm\"\n\
         url = \"{url}\"\nallow_private = true\n",
        dir.join("dead.jsonl"),
    );
    write_config(dir, &text)
}

/// Writes `text` as the deskhook.toml of `dir`; its path.
pub(crate) fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("deskhook.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A deskhook.toml in `dir` with no endpoint, its dead letters in `dir`.
pub(crate) fn no_endpoint_config(dir: &Path) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[delivery]\ndead_letter_path = {:?}\n",
            dir.join("dead.jsonl")
        ),
    )
}
