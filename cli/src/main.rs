//! `deskhook`: render the exact body of an event, read a file log.
//!
//! Each subcommand lives in a file of its own; they report failures as an error message on
//! stderr and exit 1 (clap exits 2 for bad arguments).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod render;
mod tail;

/// Send helpdesk ticket events as webhooks: tools for the people who wire them up.
#[derive(Debug, Parser)]
#[command(name = "deskhook", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Render(render::Args),
    Tail(tail::Args),
}

/// What a subcommand reports when stdout was closed under it (`deskhook tail f | head`):
/// not a failure, so `main` exits quietly.
const STDOUT_CLOSED: &str = "stdout closed";

/// The message for a failed write to stdout.
fn stdout_error(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.to_owned()
    } else {
        format!("cannot write to stdout: {e}")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Tail(args) => tail::run(args),
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
