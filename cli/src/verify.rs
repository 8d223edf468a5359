//! `deskhook verify`: check the signature of a captured request.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use deskhook::policy::parse_duration;
use deskhook::signature::{HEADER_TIMESTAMP, Headers, verify_at};

/// Check the Standard Webhooks signature of a captured request.
///
/// Give the raw body (a file, or '-' for stdin) and the three headers as they arrived:
///
///   deskhook verify --secret whsec_… --header 'webhook-id: …' \
///       --header 'webhook-timestamp: …' --header 'webhook-signature: …' body.json
///
/// Prints `verified (id ID, timestamp SECONDS)` (and, given several keys, which one matched:
/// `, key 2 of the 2 given`) and exits 0, or prints why not and exits 1:
/// a missing header, a malformed or out-of-tolerance timestamp, or no signature matching any
/// secret (or the body file cannot be read). A bad flag or key (a --header not written
/// 'Name: value', a key that is not one) exits 2, so that a script can tell it from a
/// request refused.
///
/// With --hub, checks the request's X-Hub-Signature-256 instead (GitHub-style, the body
/// alone: no id, no timestamp):
///
///   deskhook verify --hub --secret whsec_… --header 'X-Hub-Signature-256: sha256=…' body.json
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A key to check against: a 'whsec_' secret or a 'whpk_' ed25519 public key; repeat to
    /// accept any of several. Or set DESKHOOK_SECRET (several keys separated by spaces),
    /// which keeps the key out of the shell's history and the process list.
    #[arg(long, value_name = "SECRET")]
    secret: Vec<String>,
    /// A header of the request, written 'Name: value'; repeat for each. webhook-id,
    /// webhook-timestamp and webhook-signature are needed; others are ignored.
    #[arg(long, value_name = "'NAME: VALUE'")]
    header: Vec<String>,
    /// How far webhook-timestamp may be from this machine's clock, either way (5m is what
    /// receivers use by default).
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    tolerance: Duration,
    /// Do not check webhook-timestamp against the clock (for old captures); the signature,
    /// which covers the timestamp, is still checked.
    #[arg(long, conflicts_with = "tolerance")]
    no_tolerance: bool,
    /// Check X-Hub-Signature-256 (HMAC-SHA256 of the body alone, with a 'whsec_' secret)
    /// instead of the Standard Webhooks headers. Another sender's text secret (GitHub's)
    /// is given as whsec_ and the base64 of its bytes (printf %s "$SECRET" | base64), if
    /// it has 24 to 64 bytes.
    #[arg(long, conflicts_with_all = ["tolerance", "no_tolerance"])]
    hub: bool,
    /// The raw body exactly as received, or '-' to read it from stdin.
    #[arg(value_name = "BODYFILE")]
    body: PathBuf,
}

/// The receiver's clock to verify `headers` at, in Unix seconds: now, or with
/// `no_tolerance` the request's own timestamp (Standard Webhooks' header, else Svix's), so
/// that the window is always met. A missing or malformed timestamp is still reported, by
/// `verify_at`, before the time is used.
pub(crate) fn clock(headers: &(impl Headers + ?Sized), no_tolerance: bool) -> i64 {
    if !no_tolerance {
        return jiff::Timestamp::now().as_second();
    }
    headers
        .header(HEADER_TIMESTAMP)
        .or_else(|| headers.header(deskhook::signature::SVIX_HEADERS[1]))
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(0)
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let secrets = crate::flags::verifying_keys(&args.secret)
        .unwrap_or_else(|e| crate::usage_error("verify", e));
    if secrets.is_empty() {
        crate::usage_error(
            "verify",
            "give the key to check against: --secret KEY, or set DESKHOOK_SECRET",
        );
    }
    let body = crate::read_input(&args.body, "the body")?;
    let headers = crate::parse_each("--header", &args.header, crate::parse_header)
        .unwrap_or_else(|e| crate::usage_error("verify", e));
    let headers = headers.as_slice();
    if args.hub {
        return verify_hub(headers, &body, &secrets);
    }
    let now = clock(headers, args.no_tolerance);
    let verified = verify_at(headers, &body, &secrets, args.tolerance, now).map_err(|e| {
        // A body saved by an editor or `echo` ends in a newline that was not received.
        let trimmed = body.trim_ascii_end();
        if trimmed.len() < body.len()
            && verify_at(headers, trimmed, &secrets, args.tolerance, now).is_ok()
        {
            format!("{e}; {TRAILING_LINE_BREAK}")
        } else if let deskhook::Error::MissingHeader(name) = &e {
            // Here, the header was not given, more likely than not sent.
            format!(
                "{e}; give the captured request's headers with --header '{name}: …' (and \
                 webhook-id, webhook-timestamp and webhook-signature each)"
            )
        } else {
            e.to_string()
        }
    })?;
    // Among several keys (a rotation), which one: the old one can go once none needs it.
    let key = match secrets.len() {
        1 => String::new(),
        n => format!(", key {} of the {n} given", verified.key_index + 1),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "verified (id {}, timestamp {}{key})",
        verified.id, verified.timestamp
    )
    .and_then(|()| out.flush())
    .map_err(crate::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}

/// What to say when a body matches once the line break at its end is taken away.
const TRAILING_LINE_BREAK: &str = "it matches the body without the line break at its end, \
     which an editor or `echo` adds: save the body exactly as it arrived (`printf '%s'`, \
     `curl -o`)";

/// `--hub`: the request's X-Hub-Signature-256 against the secrets.
fn verify_hub(
    headers: &[(String, String)],
    body: &[u8],
    secrets: &[deskhook::Secret],
) -> Result<ExitCode, String> {
    let value = headers.header("x-hub-signature-256").ok_or(
        "no X-Hub-Signature-256 header: give it with --header 'X-Hub-Signature-256: sha256=…'",
    )?;
    deskhook::signature::verify_hub_signature(value, body, secrets).map_err(|e| {
        let trimmed = body.trim_ascii_end();
        if trimmed.len() < body.len()
            && deskhook::signature::verify_hub_signature(value, trimmed, secrets).is_ok()
        {
            format!("{e}; {TRAILING_LINE_BREAK}")
        } else {
            e.to_string()
        }
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "verified (X-Hub-Signature-256)")
        .and_then(|()| out.flush())
        .map_err(crate::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}
