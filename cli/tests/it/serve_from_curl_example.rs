//! `examples/serve_from_curl.sh` runs as its README line says: the daemon, an endpoint added
//! through the admin API, events posted with curl, the receiver's verified line, the attempt
//! log. Run with this test's `deskhook` (`DESKHOOK_BIN`), so that it builds nothing; in a
//! process group of its own, killed on drop with everything it started.
//!
//! Everything listens on 127.0.0.1. Needs bash and curl (installed by `.ci/run`).

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The script's process group, killed (with the daemon and the receiver it started) and
/// waited for on drop.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        if !killed.is_ok_and(|status| status.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[test]
fn the_serve_from_curl_example_delivers_what_it_posts() {
    use std::os::unix::process::CommandExt as _;
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serve_from_curl.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .env("DESKHOOK_BIN", env!("CARGO_BIN_EXE_deskhook"))
        .env("TMPDIR", tmp.path())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the example");
    let (mut stdout, mut stderr) = (
        child.stdout.take().expect("its stdout"),
        child.stderr.take().expect("its stderr"),
    );
    let script = Script(child);
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Each of its waits gives up after 20 s: it ends well within this.
    let mut script = script;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = script.0.try_wait().expect("its status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the example ran for 120 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
    assert!(status.success(), "{status}\n{out}\n{err}");
    let verified: Vec<&str> = out
        .lines()
        .filter(|line| line.starts_with("verified"))
        .collect();
    assert_eq!(verified.len(), 1, "one event, delivered once:\n{out}");
    assert!(verified[0].contains("create"), "{out}");
    assert!(
        out.contains("\"replayed_key\":true"),
        "the retry is recognised:\n{out}"
    );
    assert!(
        out.contains("\"outcome\":\"delivered\""),
        "the attempt log:\n{out}"
    );
}
