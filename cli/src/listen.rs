//! `deskhook listen`: a local receiver that verifies and prints what arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskhook::formats::Format;
use deskhook::policy::parse_duration;
use deskhook::signature::Headers;
use deskhook::{ReceiveOptions, Received, Secret};

use crate::printable;
use serde_json::Value;

/// The largest request body accepted; a larger one is answered 413.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The largest body read as a whole event for its summary (a sink's default limit).
const RECEIVED_WHOLE: usize = 1024 * 1024;

/// Receive webhooks on a local address and print one line per request.
///
/// The first line is `listening on http://ADDR/` (with the real port when --addr ends in :0;
/// on stderr with --json, so that stdout is JSON Lines).
/// Then, per request:
///
///   verified  create   E3XK  seq 1  0199f0c5-…
///
/// the verdict (`verified`, `bad signature (<reason>)`, or `unsigned` when no --secret is
/// set), the event type (from the body, which the signature covers: the Zenlix "action",
/// `usedesk.comment_created`, `iqchannels.message_created`, …; else the X-Deskhook-Action
/// header), the ticket (the
/// Zenlix ticket.code, the Usedesk ticket id, the iQChannels chat id), the
/// X-Deskhook-Sequence header after 'seq' (the event's number on its ticket), and the
/// webhook-id; a missing value prints as '-',
/// and a body that is not JSON (or not UTF-8) adds `(body is not JSON: …)`. The format is
/// told from the body's keys, as `deskhook::receive` does (a body over 1 MiB is read for its
/// Zenlix action and ticket code only).
/// Every request is answered --status (204), except that a bad signature is answered 401 when
/// a secret is set, a body over 16 MiB 413, a request head that cannot be read 400, a
/// chunked body 501, and a connection the receiver has no resources for 503; a sender that
/// sends `Expect: 100-continue` (HTTP/1.1) is told to go on first. --delay holds each answer
/// back. Runs until interrupted.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The address to listen on; port 0 picks a free port. Also --listen, as serve names it.
    #[arg(
        long,
        alias = "listen",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    addr: String,
    /// A key to verify signatures with: a 'whsec_' secret, or the 'whpk_' public key of a
    /// sender that signs with ed25519 (`deskhook secret new --ed25519`); repeat to accept any
    /// of several. Requests whose webhook-signature matches none (or that lack it, or whose
    /// webhook-timestamp is further off than --tolerance) get 401. Without one, nothing is checked.
    /// Or set DESKHOOK_SECRET (several keys separated by spaces), which keeps the key out of
    /// the shell's history and the process list.
    #[arg(long, value_name = "SECRET")]
    secret: Vec<String>,
    /// Print each body as it arrived, one per line (JSON Lines), instead of a summary;
    /// signature failures and bodies that are not JSON are reported on stderr, and a body
    /// whose signature fails is not printed.
    #[arg(long)]
    json: bool,
    /// The status to answer requests with (but 401 for a bad signature). Use 500 or 503 to
    /// make senders retry, 410 to make them disable the endpoint. From 200 to 599: a 1xx is
    /// not an answer, and a sender would wait for the real one until its timeout.
    #[arg(long, value_name = "CODE", default_value_t = 204,
          value_parser = answer_status)]
    status: u16,
    /// Answer each request this long after it arrived (`5ms`, `2s`): a stand-in for a slow
    /// endpoint, to see how senders wait, time out, or spread their work. Each connection is
    /// served by a thread of its own (up to 512 at once; more wait to be accepted), so the
    /// delay applies to every connection at once.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    delay: Option<Duration>,
    /// How far webhook-timestamp may be from this machine's clock, either way (5m is what
    /// receivers use by default).
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    tolerance: Duration,
    /// Do not check webhook-timestamp against the clock (to send old captures to it again);
    /// the signature, which covers the timestamp, is still checked.
    #[arg(long, conflicts_with = "tolerance")]
    no_tolerance: bool,
}

/// What the signature check said.
enum Verdict {
    Unsigned,
    Verified,
    Bad(String),
}

impl Verdict {
    fn of(headers: &RequestHeaders, body: &[u8], secrets: &[Secret], args: &Args) -> Verdict {
        if secrets.is_empty() {
            return Verdict::Unsigned;
        }
        let now = crate::verify::clock(headers, args.no_tolerance);
        match deskhook::signature::verify_at(headers, body, secrets, args.tolerance, now) {
            Ok(_) => Verdict::Verified,
            Err(e) => Verdict::Bad(e.to_string()),
        }
    }
}

/// What a partial Zenlix body still says: its "action" and ticket code. Read without
/// building the rest of the body (serde skips the other keys).
#[derive(Default, serde::Deserialize)]
struct Partial {
    action: Option<Value>,
    ticket: Option<PartialTicket>,
}

#[derive(serde::Deserialize)]
struct PartialTicket {
    code: Option<Value>,
}

/// Parses `--status`: a status a sender takes for an answer. A 1xx is not one (a sender would
/// wait for the real answer until its timeout).
fn answer_status(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(status @ 200..=599) => Ok(status),
        Ok(status) => Err(format!(
            "{status} is not in 200..=599, the statuses a sender takes for an answer; give \
             one such as 204 or 503"
        )),
        Err(_) => Err("give an HTTP status from 200 to 599, such as 204 or 503".to_owned()),
    }
}

/// The summary line of one request.
fn summary(verdict: &Verdict, headers: &RequestHeaders, body: &[u8]) -> String {
    let valid = checked_json(body);
    // A whole event of a known format names its type and ticket; a partial Zenlix body still
    // has its "action" and ticket code. A body over what a sink sends by default is read
    // only for those two: as an event, the fields it does not know would be built as
    // values, ten times its size.
    let received = (body.len() <= RECEIVED_WHOLE)
        .then(|| deskhook::receive(headers, body, &ReceiveOptions::unauthenticated()).ok())
        .flatten();
    let partial = match (&received, &valid) {
        (None, Ok(_)) => serde_json::from_slice::<Partial>(body).unwrap_or_default(),
        _ => Partial::default(),
    };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    // From the body first: the signature covers it, not the X-Deskhook-Action header.
    let action = received
        .as_ref()
        .map(|r| match r.format() {
            Format::Zenlix => r.event_type().to_owned(),
            other => format!("{other}.{}", r.event_type()),
        })
        .or_else(|| text(partial.action))
        .or_else(|| headers.header("x-deskhook-action").map(str::to_owned));
    let ticket = received
        .as_ref()
        .map(Received::ordering_key)
        .or_else(|| text(partial.ticket.and_then(|t| t.code)));
    // Every field is the sender's: no control character reaches the terminal.
    let shown = |v: Option<&str>| printable(v.unwrap_or("-")).into_owned();
    let verdict = match verdict {
        Verdict::Unsigned => "unsigned".to_owned(),
        Verdict::Verified => "verified".to_owned(),
        Verdict::Bad(reason) => format!("bad signature ({})", printable(reason)),
    };
    let mut line = format!(
        "{verdict}  {:<8} {}  seq {}  {}",
        shown(action.as_deref()),
        shown(ticket.as_deref()),
        shown(headers.header("x-deskhook-sequence")),
        shown(headers.header("webhook-id")),
    );
    if let Err(e) = &valid {
        line.push_str(&format!("  (body is not JSON: {e}; {} bytes)", body.len()));
    }
    line
}

/// Whether `body` is JSON, checked without building it (a body of 16 MiB of `[0,0,…]`
/// would take ten times that as values): its syntax, and that it is UTF-8, which the
/// syntax check does not look at inside strings (JSON text is UTF-8: a Latin-1 `é` or a
/// lone 8-bit control byte is not JSON, and would not be printed as a JSON Line).
fn checked_json(body: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| e.to_string())?;
    std::str::from_utf8(body).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    Ok(())
}

/// The body on one line, byte for byte as it came but for the whitespace between its
/// tokens (line breaks and indentation), which is taken out: numbers, escapes and
/// duplicate keys stay as the sender signed them.
fn one_line(body: &[u8]) -> Result<Vec<u8>, String> {
    checked_json(body)?;
    let body = body.trim_ascii();
    if !body.contains(&b'\n') && !body.contains(&b'\r') {
        return Ok(body.to_vec());
    }
    // Valid JSON: outside strings, whitespace is only between tokens.
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            out.push(b);
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    Ok(out)
}

/// Request headers: lower-case names and values (bytes that are not UTF-8 replaced).
type RequestHeaders = Vec<(String, String)>;

/// One request as read off a connection.
struct Request {
    method: String,
    path: String,
    headers: RequestHeaders,
    body: Vec<u8>,
}

/// What reading a request gave.
enum ReadOutcome {
    Request(Request),
    /// The body is larger than [`MAX_BODY`]: answered 413, connection closed.
    TooLarge(Request, u64),
    /// Something this small server does not speak (chunked bodies): answered, then closed.
    Unsupported(Request, &'static str),
    /// A request it cannot read safely (a line or a head too long, a `Content-Length` that
    /// is not one number): answered 400, then closed.
    Bad(&'static str),
    Closed,
}

/// The longest line of a request head read, and the most lines.
const MAX_LINE: u64 = 16 * 1024;
const MAX_HEADERS: usize = 100;

/// How long a request may take to arrive whole, idle time before it included: a client
/// that sends a byte now and then cannot hold its connection (and thread) for ever.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes the next reads of `reader` end by `deadline`; `false` when it has passed.
fn until(reader: &BufReader<TcpStream>, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    !left.is_zero() && reader.get_ref().set_read_timeout(Some(left)).is_ok()
}

/// One line of the head, by `deadline`: `Err` when it is longer than [`MAX_LINE`], `None`
/// when the connection ended (or the deadline passed).
fn read_line(reader: &mut BufReader<TcpStream>, deadline: Instant) -> Result<Option<String>, ()> {
    if !until(reader, deadline) {
        return Ok(None);
    }
    let mut raw = Vec::new();
    match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut raw) {
        Ok(0) | Err(_) => Ok(None),
        Ok(_) if !raw.ends_with(b"\n") && raw.len() as u64 >= MAX_LINE => Err(()),
        Ok(_) => Ok(Some(String::from_utf8_lossy(&raw).trim_end().to_owned())),
    }
}

/// One request, read whole by `deadline`.
fn read_request(reader: &mut BufReader<TcpStream>, deadline: Instant) -> ReadOutcome {
    let too_long = "a line of the request head is over 16 KiB";
    let line = match read_line(reader, deadline) {
        Ok(Some(line)) => line,
        Ok(None) => return ReadOutcome::Closed,
        Err(()) => return ReadOutcome::Bad(too_long),
    };
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    // An HTTP/1.0 sender is never told 100 Continue (RFC 9110, 10.1.1).
    let http_1_1 = parts.next() == Some("HTTP/1.1");
    let mut headers = Vec::new();
    loop {
        let header = match read_line(reader, deadline) {
            Ok(Some(header)) => header,
            Ok(None) => return ReadOutcome::Closed,
            Err(()) => return ReadOutcome::Bad(too_long),
        };
        if header.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return ReadOutcome::Bad("the request has over 100 headers");
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && !v.eq_ignore_ascii_case("identity"))
    {
        return ReadOutcome::Unsupported(
            request,
            "chunked bodies are not supported; send Content-Length",
        );
    }
    // Every Content-Length (a proxy may join two into "12, 12") must be the same number:
    // read otherwise, a body would be taken for the next request.
    let mut lengths = request
        .headers
        .iter()
        .filter(|(k, _)| k == "content-length")
        .flat_map(|(_, v)| v.split(','))
        .map(|v| v.trim().parse::<u64>());
    let length = match lengths.next() {
        None => 0,
        Some(Ok(first)) if lengths.all(|other| other == Ok(first)) => first,
        Some(_) => return ReadOutcome::Bad("Content-Length is not one number"),
    };
    if length > MAX_BODY {
        return ReadOutcome::TooLarge(request, length);
    }
    // A sender that waits to be told to send its body (curl does, for large ones) is told
    // at once rather than after its own timeout (RFC 9110, 10.1.1).
    let expects_continue = request
        .headers
        .iter()
        .any(|(k, v)| k == "expect" && v.eq_ignore_ascii_case("100-continue"));
    if expects_continue
        && http_1_1
        && length > 0
        && reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .is_err()
    {
        return ReadOutcome::Closed;
    }
    let mut request = request;
    // Grown as the bytes come: a Content-Length alone reserves nothing.
    let mut body = Vec::with_capacity(length.min(64 * 1024) as usize);
    let mut chunk = [0u8; 16 * 1024];
    while (body.len() as u64) < length {
        let want = chunk.len().min((length - body.len() as u64) as usize);
        match until(reader, deadline).then(|| reader.read(&mut chunk[..want])) {
            Some(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => return ReadOutcome::Closed,
        }
    }
    request.body = body;
    ReadOutcome::Request(request)
}

fn respond(writer: &mut TcpStream, status: u16, body: &str, close: bool) -> bool {
    let reason = match status {
        200..=299 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        413 => "Payload Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let connection = if close { "close" } else { "keep-alive" };
    // A 204 has no body, nor a length (RFC 9110, 8.6).
    let length = if status == 204 {
        String::new()
    } else {
        format!(
            "content-length: {}\r\ncontent-type: text/plain\r\n",
            body.len()
        )
    };
    let head = format!("HTTP/1.1 {status} {reason}\r\n{length}connection: {connection}\r\n\r\n");
    writer
        .write_all(head.as_bytes())
        .and_then(|()| writer.write_all(body.as_bytes()))
        .is_ok()
}

/// How long, and how many bytes, [`linger`] reads and throws away.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 4 * MAX_BODY;

/// After an answer sent before the request was read whole: says no more is coming, then
/// reads what the sender still sends (for a while) and throws it away, as nginx's lingering
/// close does. Closed with unread bytes, the connection would be reset, and a sender still
/// writing its body would get the reset instead of the answer.
fn linger(reader: &mut BufReader<TcpStream>, writer: &TcpStream) {
    if writer.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut rest = reader.by_ref().take(LINGER_BYTES);
    let mut chunk = [0u8; 16 * 1024];
    while until(rest.get_ref(), deadline) {
        match rest.read(&mut chunk) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Prints a line (or the raw body), whole, or ends the process when stdout is gone.
fn print(out: &Mutex<std::io::Stdout>, bytes: &[u8]) {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    let written = out
        .write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        let message = crate::stdout_error(e);
        if message == crate::STDOUT_CLOSED {
            std::process::exit(0);
        }
        eprintln!("deskhook: {message}");
        std::process::exit(1);
    }
}

/// Serves one connection: requests one after another (HTTP/1.1 keep-alive).
fn serve(
    stream: TcpStream,
    args: Arc<Args>,
    secrets: Arc<Vec<Secret>>,
    out: Arc<Mutex<std::io::Stdout>>,
) {
    let mut writer = stream;
    let read_half = match writer.try_clone() {
        Ok(read_half) => read_half,
        Err(e) => {
            eprintln!("deskhook: cannot serve a connection: {e}; answered 503");
            respond(&mut writer, 503, "the receiver is out of resources\n", true);
            return;
        }
    };
    let mut reader = BufReader::new(read_half);
    loop {
        let request = match read_request(&mut reader, Instant::now() + READ_TIMEOUT) {
            ReadOutcome::Closed => return,
            ReadOutcome::TooLarge(request, length) => {
                eprintln!(
                    "deskhook: {} {}: body of {length} bytes is over the {} MiB limit; answered 413",
                    printable(&request.method),
                    printable(&request.path),
                    MAX_BODY / (1024 * 1024)
                );
                respond(&mut writer, 413, "body too large\n", true);
                linger(&mut reader, &writer);
                return;
            }
            ReadOutcome::Bad(why) => {
                eprintln!("deskhook: {why}; answered 400");
                respond(&mut writer, 400, &format!("{why}\n"), true);
                linger(&mut reader, &writer);
                return;
            }
            ReadOutcome::Unsupported(request, why) => {
                eprintln!(
                    "deskhook: {} {}: {why}; answered 501",
                    printable(&request.method),
                    printable(&request.path)
                );
                respond(&mut writer, 501, &format!("{why}\n"), true);
                linger(&mut reader, &writer);
                return;
            }
            ReadOutcome::Request(request) => request,
        };
        let verdict = Verdict::of(&request.headers, &request.body, &secrets, &args);
        if args.json {
            // What a pipe reads is what the sender signed: a forged body stays off stdout.
            if let Verdict::Bad(reason) = &verdict {
                eprintln!(
                    "deskhook: bad signature ({}) for webhook-id {}; body not printed",
                    printable(reason),
                    printable(request.headers.header("webhook-id").unwrap_or("-"))
                );
            } else {
                match one_line(&request.body) {
                    Ok(line) => print(&out, &line),
                    Err(e) => eprintln!(
                        "deskhook: {} {}: body is not JSON ({e}; {} bytes)",
                        printable(&request.method),
                        printable(&request.path),
                        request.body.len()
                    ),
                }
            }
        } else {
            print(
                &out,
                summary(&verdict, &request.headers, &request.body).as_bytes(),
            );
        }
        let close = request
            .headers
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if let Some(delay) = args.delay {
            std::thread::sleep(delay);
        }
        let answered = match &verdict {
            Verdict::Bad(reason) => respond(
                &mut writer,
                401,
                &format!("bad signature: {reason}\n"),
                close,
            ),
            Verdict::Verified | Verdict::Unsigned => respond(&mut writer, args.status, "", close),
        };
        // A sender that hung up has its answer from its timeout; the next one reconnects.
        if !answered || close {
            return;
        }
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let secrets = Arc::new(crate::flags::verifying_keys(&args.secret)?);
    let listener = TcpListener::bind(&args.addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            // Not an address ("invalid port value" for a URL): say the form.
            format!("--addr {}: {e}; {}", args.addr, crate::ADDR_FORM)
        } else {
            format!(
                "cannot listen on {}: {e} (choose another --addr, or port 0 for a free one)",
                args.addr
            )
        }
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let listening = format!("listening on http://{addr}/");
    if args.json {
        eprintln!("{listening}");
    } else {
        print(&out, listening.as_bytes());
    }
    let args = Arc::new(args);
    let open = Arc::new(Connections::default());
    // A thread per connection: senders keep a few connections open (keep-alive) and send on
    // all of them at once. Up to MAX_CONNECTIONS: the others wait to be accepted, so that
    // the bodies held at once are at most MAX_CONNECTIONS × MAX_BODY (what a sender that
    // means harm can make listen hold; it listens on loopback unless told otherwise).
    loop {
        open.wait_for_room();
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most often: said once a minute, and waited on
                // rather than tried again at once (the connection waits in the backlog).
                static FAILED: deskhook::Seldom = deskhook::Seldom::new();
                if let Some(times) = FAILED.due() {
                    eprintln!(
                        "deskhook: cannot accept a connection ({times} time(s) in the last \
                         minute): {e}; raise the open files limit (ulimit -n) if it says too \
                         many open files"
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (args, secrets, out) = (args.clone(), secrets.clone(), out.clone());
        let slot = Slot::take(&open);
        // To answer with when no thread can be made for it (the process's limit reached).
        let spare = stream.try_clone().ok();
        let spawned = std::thread::Builder::new().spawn(move || {
            let _slot = slot;
            serve(stream, args, secrets, out);
        });
        if let Err(e) = spawned {
            eprintln!("deskhook: cannot start a thread for a connection: {e}; answered 503");
            if let Some(mut spare) = spare {
                respond(&mut spare, 503, "the receiver is out of resources\n", true);
            }
        }
    }
}

/// The most connections served at once.
const MAX_CONNECTIONS: usize = 512;

/// How many connections are served now.
#[derive(Default)]
struct Connections {
    open: Mutex<usize>,
    closed: std::sync::Condvar,
}

impl Connections {
    fn wait_for_room(&self) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        drop(
            self.closed
                .wait_while(open, |open| *open >= MAX_CONNECTIONS)
                .unwrap_or_else(|p| p.into_inner()),
        );
    }
}

/// One connection served, counted until it is dropped (its thread ends, or panics).
struct Slot(Arc<Connections>);

impl Slot {
    fn take(connections: &Arc<Connections>) -> Slot {
        *connections.open.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Slot(connections.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.open.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.0.closed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_an_answer_or_says_which_are() {
        assert_eq!(answer_status("503"), Ok(503));
        assert!(
            answer_status("100")
                .unwrap_err()
                .starts_with("100 is not in 200..=599")
        );
        for bad in ["7x", "-1", ""] {
            assert_eq!(
                answer_status(bad),
                Err("give an HTTP status from 200 to 599, such as 204 or 503".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_body_on_several_lines_is_printed_as_the_sender_wrote_it_less_the_layout() {
        let body = b"{\n  \"n\": 123456789012345678901234567890,\n  \"z\": -0,\n  \"a\": 1,\n  \"a\": \"x \\\" y\\\\\",\n  \"e\": \"\\u00e9\"\n}\n";
        let line = one_line(body).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"n":123456789012345678901234567890,"z":-0,"a":1,"a":"x \" y\\","e":"\u00e9"}"#
        );
        // On one line already: as it came.
        assert_eq!(one_line(b"{\"a\": 1} ").unwrap(), b"{\"a\": 1}");
        assert!(one_line(b"{\"a\":\n").is_err());
        // JSON's syntax inside a string, but not UTF-8: an 8-bit control byte, Latin-1.
        for (body, at) in [
            (&b"{\"a\": \"\x9b2J\"}"[..], 7),
            (b"{\"a\": \"caf\xe9\"}", 10),
        ] {
            assert_eq!(
                one_line(body).unwrap_err(),
                format!("not UTF-8 at byte {at}")
            );
        }
    }

    #[test]
    fn the_senders_control_characters_do_not_reach_the_terminal() {
        let headers: RequestHeaders = vec![
            ("webhook-id".to_owned(), "msg\u{1b}]0;owned\u{7}".to_owned()),
            ("x-deskhook-sequence".to_owned(), "1".to_owned()),
        ];
        let body = br#"{"action":"\u001b[2J","ticket":{"code":"T\u0007"}}"#;
        let line = summary(&Verdict::Unsigned, &headers, body);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains(r"\u{1b}[2J") && line.contains(r"T\u{7}"),
            "{line}"
        );
    }

    /// A client that trickles its request a byte at a time is cut at the request's
    /// deadline, whatever the pace of its bytes.
    #[test]
    fn a_request_trickled_past_its_deadline_is_cut() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let mut client = TcpStream::connect(addr).unwrap();
            let head = b"POST / HTTP/1.1\r\ncontent-length: 1000\r\n\r\n";
            if client.write_all(head).is_err() {
                return;
            }
            // Until the server closes: at most 1,000 bytes, 10 s.
            for _ in 0..1000 {
                if client.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let outcome = read_request(&mut reader, Instant::now() + Duration::from_millis(100));
        assert!(matches!(outcome, ReadOutcome::Closed));
        drop(reader);
        sender.join().unwrap();
    }

    #[test]
    fn a_partial_body_still_names_its_action_and_ticket() {
        let headers: RequestHeaders = Vec::new();
        let line = summary(
            &Verdict::Unsigned,
            &headers,
            br#"{"action":"create","ticket":{"code":"E3XK","subj":1},"big":[0,0,0]}"#,
        );
        assert!(
            line.starts_with("unsigned  create   E3XK  seq -  -"),
            "{line}"
        );
        let line = summary(&Verdict::Unsigned, &headers, b"not json");
        assert!(line.contains("(body is not JSON: "), "{line}");
        // Over what is read as a whole event: named all the same, from those two fields.
        let big = format!(
            r#"{{"action":"edit","ticket":{{"code":"B1"}},"pad":[{}0]}}"#,
            "0,".repeat(RECEIVED_WHOLE)
        );
        let line = summary(&Verdict::Unsigned, &headers, big.as_bytes());
        assert!(
            line.starts_with("unsigned  edit     B1  seq -  -"),
            "{line}"
        );
    }
}
