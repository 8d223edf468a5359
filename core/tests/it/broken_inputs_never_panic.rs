//! Broken bodies run through `receive` give an error, never a panic: the corpus in
//! `tests/corpus/receive/`, every prefix of every fixture, and bodies with bytes changed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use deskhook::formats::Format;
use deskhook::{Error, ReceiveOptions, Received};

const NO_HEADERS: [(&str, &str); 0] = [];

fn option_sets() -> Vec<ReceiveOptions> {
    vec![
        ReceiveOptions::unauthenticated(),
        ReceiveOptions::unauthenticated().format(Format::Zenlix),
        ReceiveOptions::unauthenticated().format(Format::Usedesk),
        ReceiveOptions::unauthenticated().format(Format::IqChannels),
        ReceiveOptions::new().usedesk_secret("0e8f678d8327eb3292a28c8165957b282a1b2f8b"),
    ]
}

fn receive_without_panic(body: &[u8], options: &ReceiveOptions) -> Result<Received, Error> {
    match catch_unwind(AssertUnwindSafe(|| {
        deskhook::receive(&NO_HEADERS, body, options)
    })) {
        Ok(result) => result,
        Err(_) => panic!(
            "receive panicked on {:?} with {options:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    ["zenlix", "usedesk", "iqchannels"]
        .iter()
        .flat_map(|dir| files(&root.join(dir)))
        .filter(|(name, _)| name.ends_with(".json"))
        .collect()
}

#[test]
fn every_corpus_input_gives_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/receive");
    let corpus = files(&dir);
    assert!(corpus.len() >= 40, "the corpus has {} files", corpus.len());
    for (name, body) in &corpus {
        for options in option_sets() {
            let result = receive_without_panic(body, &options);
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name} was accepted"));
            let text = err.to_string();
            assert!(!text.is_empty() && text.len() < 600, "{name}: {text}");
            assert!(!text.contains('\n'), "{name}: {text}");
        }
    }
}

#[test]
fn every_prefix_of_every_fixture_gives_an_error() {
    for (name, body) in fixtures() {
        let whole = body.trim_ascii_end().len();
        for end in (0..whole).step_by(3) {
            let err = receive_without_panic(&body[..end], &ReceiveOptions::unauthenticated());
            assert!(err.is_err(), "{name} cut at {end} was accepted");
        }
    }
}

#[test]
fn changed_bytes_never_panic() {
    // A small deterministic generator, so that a failure can be reproduced.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const NASTY: &[u8] = b"{}[]\",:0-9eE.\\ntuf\x00\xff";
    for (_, body) in fixtures() {
        for _ in 0..300 {
            let mut changed = body.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % changed.len() as u64) as usize;
                changed[at] = NASTY[(next() % NASTY.len() as u64) as usize];
            }
            for options in option_sets() {
                // Some changes still give a valid event; only a panic is a failure.
                let _ = receive_without_panic(&changed, &options);
            }
        }
    }
}
