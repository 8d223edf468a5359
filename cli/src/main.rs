//! `deskhook`: render the exact body of an event, send it through the real delivery engine,
//! receive and verify webhooks locally, check a captured request, inspect and replay dead
//! letters, read a file log, drain and inspect a spool, benchmark, run NATS relays and their
//! endpoint registry, and run the `deskhook serve` daemon.
//!
//! Each subcommand lives in a file of its own; they report failures as an error message on
//! stderr and exit 1 (clap exits 2 for bad arguments).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use deskhook::Secret;

// std's eprintln!, but a closed stderr (`deskhook tail f 2>&1 | head`) is not a panic: a
// diagnostic that cannot be written is dropped. Shadows std's in every module below.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod dead_letters;
mod endpoints;
mod events;
mod flags;
mod listen;
mod parked;
mod publish;
mod relay;
mod render;
mod secret;
mod send;
mod serve;
mod spool;
mod tail;
mod verify;

/// jemalloc rather than the system's malloc: deskhook's delivery frees bodies and requests
/// on other threads and in another order than it made them (one endpoint's backlog drains
/// while the others fill), which fragments glibc's arenas: with 10,000 endpoints the async
/// transport measured 0.74–0.85× its one-endpoint throughput with glibc's malloc and
/// about 1× (0.96–1.12×) with jemalloc, which also keeps the spool's resident memory as low as glibc's
/// (benches/README.md, "Many endpoints"). Build with `--no-default-features` for the
/// system's malloc.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Send helpdesk ticket events as webhooks: tools for the people who wire them up.
#[derive(Debug, Parser)]
#[command(name = "deskhook", version, about, long_about = None, after_long_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Render(render::Args),
    Send(send::Args),
    Listen(listen::Args),
    Verify(verify::Args),
    DeadLetters(dead_letters::Args),
    Tail(tail::Args),
    Bench(bench::Args),
    Drain(spool::DrainArgs),
    Spool(spool::Args),
    Relay(relay::Args),
    Publish(publish::Args),
    Serve(serve::Args),
    Endpoints(endpoints::Args),
    Parked(parked::Args),
    Secret(secret::Args),
}

/// The end of `deskhook --help`: how to get the binary and a first session.
const AFTER_HELP: &str = "\
Install:  cargo install --locked --path cli   (from a checkout; without --locked every
          dependency is resolved again)
or run:   cargo run -q -p deskhook-cli -- <command> ...

A first try, in two terminals: a local receiver, then all twelve actions delivered to it,
signed (make a secret of your own with `deskhook secret new`):

  export DESKHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   (in both)
  deskhook listen --addr 127.0.0.1:8080
  deskhook send --all-actions --allow-private --url http://127.0.0.1:8080/

listen then prints a line per request: verified  create   E3XK  seq 1  01a2008f-...

relay and serve log to stderr at info and up; RUST_LOG changes the level (RUST_LOG=debug).";

/// What a subcommand reports when stdout was closed under it (`deskhook tail f | head`):
/// not a failure, so `main` exits quietly.
const STDOUT_CLOSED: &str = "stdout closed";

/// Exits 2 with `message`, as clap does for bad arguments, with the usage of `subcommand`:
/// for combinations of flags that clap cannot check itself (they depend on the value of
/// `--format`).
fn usage_error(subcommand: &str, message: impl std::fmt::Display) -> ! {
    let mut command = Cli::command();
    // Built, so that the subcommand's usage line reads `deskhook <subcommand> …`.
    command.build();
    match command.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(clap::error::ErrorKind::ArgumentConflict, message),
        None => command.error(clap::error::ErrorKind::ArgumentConflict, message),
    }
    .exit()
}

/// The message for a failed write to stdout.
fn stdout_error(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.to_owned()
    } else {
        format!("cannot write to stdout: {e}")
    }
}

/// Parses secrets that came from `source` (`--secret`, or the variable they were read from),
/// which an error names. Done here rather than by clap so that an invalid secret is never
/// echoed back in the error message.
fn parse_secrets_from(source: &str, values: &[String]) -> Result<Vec<Secret>, String> {
    parse_each(source, values, |value| {
        Secret::parse(value).map_err(|e| e.to_string())
    })
}

/// Reads `path`, or standard input when it is '-'; an error names `what` was read ("the
/// event": "cannot read the event file '…'", "… from standard input").
fn read_input(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {what} from standard input: {e}"))?;
        Ok(bytes)
    } else {
        std::fs::read(path)
            .map_err(|e| format!("cannot read {what} file '{}': {e}", path.display()))
    }
}

/// How an error names `path` given to [`read_input`].
fn input_name(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        format!("'{}'", path.display())
    }
}

/// What a listening address is, for an error about one.
const ADDR_FORM: &str = "give IP:PORT, such as 127.0.0.1:8089 (no http://; port 0 for a \
                         free one)";

/// Parses a listening address (`serve --listen`), saying the form it takes when `s` is not
/// one: clap's own "invalid socket address syntax" does not.
fn parse_listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not an address to listen on: {ADDR_FORM}"))
}

/// Parses a `--header` value written `Name: value`. The error does not quote it (it may
/// hold a credential).
fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(
            "is not a header (it has no ':'); write it as 'Name: value', e.g. \
             'X-Tenant: acme'"
                .to_owned(),
        );
    };
    let name = name.trim();
    if name.is_empty() {
        return Err("has no header name before the ':'".to_owned());
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Parses the values of a repeated flag (`--header`, `--template-var`) with `parse`, after
/// clap rather than by it: clap's error would quote the value, and values often hold
/// credentials. An error names the flag and which of them, never the value.
fn parse_each<T>(
    flag: &str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            parse(value).map_err(|e| {
                if values.len() == 1 {
                    format!("{flag}: {e}")
                } else {
                    format!("{flag} (number {} of {}): {e}", i + 1, values.len())
                }
            })
        })
        .collect()
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), and the bidirectional
/// overrides that would reorder the rest of the line (`\u{202e}`), for a terminal: what a
/// sender or a file wrote cannot move the cursor, change the terminal's title or disguise
/// what follows it.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(deskhook::needs_escape) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if deskhook::needs_escape(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// deskhook's log records on stderr, from `level` up unless RUST_LOG says otherwise: `info`
/// for the long-running commands (relay, serve), so that what happens while they run (an
/// endpoint left out, a dead letter, a dropped event) is seen; `warn` for `endpoints` (a
/// record that could be anyone's) and `dead-letters list` (a line that is not a letter);
/// `error` for the others, whose own lines say what they did, so that what only the log
/// tells (a dropped event, a dead letter that could not be written and is logged whole) is
/// not lost.
fn log_to_stderr(level: log::LevelFilter) {
    env_logger::Builder::new()
        .filter_module(deskhook::LOG_TARGET, level)
        .parse_env("RUST_LOG")
        .target(env_logger::Target::Stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr(match cli.command {
        Command::Relay(_) | Command::Serve(_) => log::LevelFilter::Info,
        // A record of the bucket that could be anyone's is worth a word to the operator.
        Command::Endpoints(_) => log::LevelFilter::Warn,
        Command::DeadLetters(ref args) => dead_letters::log_level(args),
        _ => log::LevelFilter::Error,
    });
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Secret(args) => secret::run(args),
        Command::Send(args) => send::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Verify(args) => verify::run(args),
        Command::DeadLetters(args) => dead_letters::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Drain(args) => spool::drain(args),
        Command::Spool(args) => spool::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Endpoints(args) => endpoints::run(args),
        Command::Parked(args) => parked::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) if message == STDOUT_CLOSED => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("deskhook: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_would_drive_or_reorder_the_terminal() {
        assert_eq!(printable("E3XK заявка"), "E3XK заявка");
        assert_eq!(
            printable("\u{1b}]0;title\u{7}\u{202E}txt.exe\n"),
            "\\u{1b}]0;title\\u{7}\\u{202e}txt.exe\\n"
        );
    }

    #[test]
    fn headers_split_at_the_first_colon() {
        assert_eq!(
            parse_header("webhook-id: msg_1").unwrap(),
            ("webhook-id".to_owned(), "msg_1".to_owned())
        );
        assert_eq!(
            parse_header("Authorization:Bearer a:b ").unwrap(),
            ("Authorization".to_owned(), "Bearer a:b".to_owned())
        );
        assert!(
            parse_header("webhook-id msg_1")
                .unwrap_err()
                .contains("write it as 'Name: value'")
        );
        assert!(parse_header(": x").unwrap_err().contains("no header name"));
    }

    #[test]
    fn secrets_are_named_by_position_and_never_quoted() {
        let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        assert_eq!(
            parse_secrets_from("--secret", std::slice::from_ref(&good))
                .unwrap()
                .len(),
            1
        );
        let bad = "whsec_c2hvcnQgc2VjcmV0".to_owned();
        let err = parse_secrets_from("--secret", &[good, bad]).unwrap_err();
        assert!(
            err.starts_with("--secret (number 2 of 2): secret is 12 bytes"),
            "{err}"
        );
        assert!(!err.contains("c2hvcnQ"), "{err}");
        // Read from the environment: the variable is named, not a flag not given.
        let err =
            parse_secrets_from("DESKHOOK_SECRET", &["whsec_c2hvcnQgc2VjcmV0".into()]).unwrap_err();
        assert!(
            err.starts_with("DESKHOOK_SECRET: secret is 12 bytes"),
            "{err}"
        );
    }
}
