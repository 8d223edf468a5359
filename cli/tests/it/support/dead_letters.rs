//! Dead letters for the tests of `deskhook dead-letters`: a configuration with one endpoint,
//! and the letters of events sent to a receiver that fails them.

use std::path::{Path, PathBuf};

use super::{Listen, SECRET, deskhook_in, text};

/// A deskhook.toml with one endpoint named "crm" at `url`, dead letters in `dead`.
pub(crate) fn write_config(path: &Path, url: &str, dead: &Path) {
    std::fs::write(
        path,
        format!(
            "[delivery]\ndead_letter_path = \"{}\"\n\n[[endpoint]]\nname = \"crm\"\nurl = \
             \"{url}\"\nsecrets = [\"{SECRET}\"]\nallow_private = true\n",
            dead.display()
        ),
    )
    .unwrap();
}

/// Sends `actions` to a receiver answering 500, with one attempt each: they all end up in
/// the dead letters. Returns the config file and the dead-letter file.
pub(crate) fn dead_letters(dir: &Path, actions: &str) -> (PathBuf, PathBuf) {
    let failing = Listen::start(&["--secret", SECRET, "--status", "500"]);
    let config = dir.join("deskhook.toml");
    let dead = dir.join("dead.jsonl");
    write_config(&config, &failing.url, &dead);
    let out = deskhook_in(
        dir,
        &[
            "send",
            "--config",
            config.to_str().unwrap(),
            "--action",
            actions,
            "--retry",
            "0s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("dead letters: {}", dead.display())),
        "{stdout}"
    );
    let count = actions.split(',').count();
    for line in failing.lines(count) {
        assert!(line.starts_with("verified  "), "{line}");
    }
    (config, dead)
}

/// The one letter of the dead-letter file `dead`, as JSON.
pub(crate) fn only_letter(dead: &Path) -> serde_json::Value {
    serde_json::from_str(std::fs::read_to_string(dead).unwrap().trim()).unwrap()
}
