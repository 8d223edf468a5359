//! `deskhook listen`: a local receiver that verifies and prints what arrives.

use std::io::{Read, Write};
use std::process::ExitCode;

use deskhook::Secret;
use deskhook::signature::{DEFAULT_TOLERANCE, Headers};
use serde_json::Value;

/// The most of a request body that is read; the rest is ignored.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Receive webhooks on a local address and print one line per request.
///
/// The first line is `listening on http://ADDR/` (with the real port when --addr ends in :0).
/// Then, per request:
///
///   verified  create   E3XK  #1  0199f0c5-…
///
/// the verdict (`verified`, `bad signature (<reason>)`, or `unsigned` when no --secret is
/// set), the action (the X-Deskhook-Action header, else the body's "action"), the ticket code
/// (the body's ticket.code), the X-Deskhook-Sequence header after '#', and the webhook-id; a
/// missing value prints as '-', and a body that is not JSON adds `(body is not JSON: …)`.
/// Every request is answered --status (204), except that a bad signature is answered 401 when
/// a secret is set. Runs until interrupted.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// A secret to verify signatures with, 'whsec_' and base64; repeat to accept any of
    /// several. Requests whose webhook-signature matches none (or that lack it, or whose
    /// webhook-timestamp is more than 5 minutes off) get 401. Without one, nothing is checked.
    #[arg(long, value_name = "SECRET")]
    secret: Vec<String>,
    /// Print each body as it arrived, one per line, instead of a summary; signature failures
    /// and bodies that are not JSON are reported on stderr.
    #[arg(long)]
    json: bool,
    /// The status to answer requests with (but 401 for a bad signature). Use 500 or 503 to
    /// make senders retry, 410 to make them disable the endpoint.
    #[arg(long, value_name = "CODE", default_value_t = 204,
          value_parser = clap::value_parser!(u16).range(100..=599))]
    status: u16,
}

/// The headers of a tiny_http request, for `deskhook::signature::verify`.
struct RequestHeaders<'a>(&'a [tiny_http::Header]);

impl Headers for RequestHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// What the signature check said.
enum Verdict {
    Unsigned,
    Verified,
    Bad(String),
}

impl Verdict {
    fn of(headers: &RequestHeaders<'_>, body: &[u8], secrets: &[Secret]) -> Verdict {
        if secrets.is_empty() {
            return Verdict::Unsigned;
        }
        match deskhook::verify(headers, body, secrets, DEFAULT_TOLERANCE) {
            Ok(_) => Verdict::Verified,
            Err(e) => Verdict::Bad(e.to_string()),
        }
    }
}

/// The summary line of one request.
fn summary(verdict: &Verdict, headers: &RequestHeaders<'_>, body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<Value>(body);
    let json = parsed.as_ref().ok();
    let action = headers
        .header("x-deskhook-action")
        .map(str::to_owned)
        .or_else(|| json.and_then(|v| v["action"].as_str()).map(str::to_owned));
    let ticket = json.and_then(|v| v["ticket"]["code"].as_str());
    let dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let verdict = match verdict {
        Verdict::Unsigned => "unsigned".to_owned(),
        Verdict::Verified => "verified".to_owned(),
        Verdict::Bad(reason) => format!("bad signature ({reason})"),
    };
    let mut line = format!(
        "{verdict}  {:<8} {}  #{}  {}",
        dash(action.as_deref()),
        dash(ticket),
        dash(headers.header("x-deskhook-sequence")),
        dash(headers.header("webhook-id")),
    );
    if let Err(e) = &parsed {
        line.push_str(&format!("  (body is not JSON: {e}; {} bytes)", body.len()));
    }
    line
}

/// The body on one line: as it came when it has no line breaks, else compacted.
fn one_line(body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let value: Value = serde_json::from_slice(body)?;
    if body.contains(&b'\n') || body.contains(&b'\r') {
        serde_json::to_vec(&value)
    } else {
        Ok(body.trim_ascii().to_vec())
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let secrets = crate::parse_secrets(&args.secret)?;
    let server = tiny_http::Server::http(&args.addr).map_err(|e| {
        format!(
            "cannot listen on {}: {e} (choose another --addr, or port 0 for a free one)",
            args.addr
        )
    })?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| format!("cannot listen on {}: not an IP address", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}/")
        .and_then(|()| out.flush())
        .map_err(crate::stdout_error)?;

    for mut request in server.incoming_requests() {
        let mut body = Vec::new();
        let read = request.as_reader().take(MAX_BODY).read_to_end(&mut body);
        let headers = RequestHeaders(request.headers());
        let verdict = match read {
            Err(e) => Verdict::Bad(format!("cannot read the body: {e}")),
            Ok(_) => Verdict::of(&headers, &body, &secrets),
        };
        if args.json {
            match one_line(&body) {
                Ok(line) => out
                    .write_all(&line)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(crate::stdout_error)?,
                Err(e) => eprintln!(
                    "deskhook: {} {}: body is not JSON ({e}; {} bytes)",
                    request.method(),
                    request.url(),
                    body.len()
                ),
            }
            if let Verdict::Bad(reason) = &verdict {
                eprintln!(
                    "deskhook: bad signature ({reason}) for webhook-id {}",
                    headers.header("webhook-id").unwrap_or("-")
                );
            }
        } else {
            writeln!(out, "{}", summary(&verdict, &headers, &body)).map_err(crate::stdout_error)?;
        }
        out.flush().map_err(crate::stdout_error)?;

        let response = match verdict {
            Verdict::Bad(reason) => {
                tiny_http::Response::from_string(format!("bad signature: {reason}\n"))
                    .with_status_code(401)
                    .boxed()
            }
            Verdict::Verified | Verdict::Unsigned => {
                tiny_http::Response::empty(args.status).boxed()
            }
        };
        // A sender that hung up has its answer from the timeout; keep listening.
        let _ = request.respond(response);
    }
    Ok(ExitCode::SUCCESS)
}
