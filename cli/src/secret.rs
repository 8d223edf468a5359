//! `deskhook secret new`: make a signing secret or an ed25519 key pair.

use std::io::Write;
use std::process::ExitCode;

use deskhook::Secret;

/// Make signing secrets.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print a new random signing secret: a 'whsec_' HMAC secret, shared by deskhook and the
    /// receivers; or with --ed25519 a key pair, the 'whsk_' signing key (line 1, for
    /// deskhook's endpoint) and the 'whpk_' public key (line 2, for the receivers: it
    /// verifies and cannot sign).
    New {
        /// Make an ed25519 key pair (Standard Webhooks v1a) instead of an HMAC secret.
        #[arg(long)]
        ed25519: bool,
    },
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let Command::New { ed25519 } = args.command;
    let secret = if ed25519 {
        Secret::generate_ed25519()
    } else {
        Secret::generate()
    }
    .map_err(|e| e.to_string())?;
    let mut lines = vec![secret.reveal()];
    if let Some(public) = secret.public_key() {
        lines.push(public.reveal());
        eprintln!(
            "line 1: the signing key (whsk_) for the endpoint's secrets — keep it secret; \
             line 2: the public key (whpk_) for the receivers (`deskhook listen --secret whpk_…`)"
        );
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}").map_err(crate::stdout_error)?;
    }
    out.flush().map_err(crate::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}
