//! A bare HTTP/1.1 sender on tokio, for `benches/throughput.sh`: what the async transport's
//! runtime costs per request without an HTTP library. One current-thread runtime, N kept
//! connections, each sending the same prebuilt POST (head and body in one buffer) and
//! reading the answer's head with `httparse`, until the time is up. Next to wrk (C) and
//! rewrk (hyper's `client::conn`) in the same run, it tells what tokio costs and what hyper
//! adds: the reference for a request path that builds no request object per attempt.
//!
//! ```sh
//! cargo bench -p deskhook-transports --features http-async --bench h1_bare -- \
//!     --url http://127.0.0.1:18080/ --concurrency 16 --body-size 1024 --seconds 10
//! ```
//!
//! Prints one JSON line: `requests`, `events_per_sec` and `cpu_us_per_delivery` (user +
//! system time of the process from /proc/self/stat, divided by the requests). Loopback only:
//! any other host is refused. It understands the answers a benchmark server gives (a
//! `Content-Length` body or none, `Connection: close`); a chunked answer is an error.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The settings, from the command line.
struct Args {
    addr: SocketAddr,
    host: String,
    path: String,
    concurrency: usize,
    body_size: usize,
    seconds: u64,
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(|args| run(&args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("h1_bare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings from `argv`, or what is wrong with them.
fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut url, mut concurrency, mut body_size, mut seconds) = (None, 16, 1024, 10);
    // `cargo bench` passes `--bench` to a harness-less bench; it means nothing here.
    while let Some(flag) = argv.next() {
        if flag == "--bench" {
            continue;
        }
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number, not '{v}'"))
        };
        match flag.as_str() {
            "--url" => url = Some(value),
            "--concurrency" => concurrency = number(&value)?.clamp(1, 4096) as usize,
            "--body-size" => body_size = number(&value)? as usize,
            "--seconds" => seconds = number(&value)?.max(1),
            _ => {
                return Err(format!(
                    "unknown option {flag}; the options are --url, --concurrency, --body-size \
                     and --seconds"
                ));
            }
        }
    }
    let url = url.ok_or("give --url http://127.0.0.1:PORT/")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}' is not an http:// URL (TLS is not supported here)"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (name, port) = host
        .rsplit_once(':')
        .ok_or_else(|| format!("'{url}' has no port"))?;
    let ip = match name {
        "127.0.0.1" | "localhost" => "127.0.0.1",
        "[::1]" => "::1",
        _ => {
            return Err(format!(
                "'{name}' is not loopback: only 127.0.0.1, localhost and [::1]"
            ));
        }
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port number"))?;
    Ok(Args {
        addr: SocketAddr::new(ip.parse().map_err(|e| format!("{e}"))?, port),
        host: host.to_owned(),
        path: if path.is_empty() { "/" } else { path }.to_owned(),
        concurrency,
        body_size,
        seconds,
    })
}

/// Sends for `args.seconds` over `args.concurrency` connections: the JSON line to print.
fn run(args: &Args) -> Result<String, String> {
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        args.path, args.host, args.body_size
    )
    .into_bytes();
    request.resize(request.len() + args.body_size, b'x');
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let cpu_before = cpu_ticks()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let requests = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(connection(args.addr, request.clone(), deadline)))
            .collect();
        let mut requests = 0;
        for task in tasks {
            requests += task
                .await
                .map_err(|e| format!("a connection task failed: {e}"))??;
        }
        Ok::<u64, String>(requests)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks()? - cpu_before) as f64 / 100.0;
    Ok(format!(
        "{{\"requests\":{requests},\"events_per_sec\":{:.0},\"cpu_us_per_delivery\":{:.1}}}",
        requests as f64 / elapsed,
        cpu * 1e6 / requests.max(1) as f64
    ))
}

/// One connection's requests until `deadline`: how many got a 2xx answer.
async fn connection(addr: SocketAddr, request: Vec<u8>, deadline: Instant) -> Result<u64, String> {
    let connect = || async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok::<_, String>(stream)
    };
    let mut stream = connect().await?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut done = 0;
    while Instant::now() < deadline {
        write_all(&stream, &request).await?;
        let mut filled = 0;
        let (head, body, close) = loop {
            filled += read(&stream, &mut buf[filled..]).await?;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(head)) => {
                    let code = response.code.unwrap_or(0);
                    if !(200..300).contains(&code) {
                        return Err(format!("the server answered {code}"));
                    }
                    let (body, close) = framing(response.headers)?;
                    break (head, if code == 204 { 0 } else { body }, close);
                }
                Ok(httparse::Status::Partial) if filled < buf.len() => {}
                Ok(httparse::Status::Partial) => {
                    return Err("an answer's head is over 16 KiB".into());
                }
                Err(e) => return Err(format!("an answer is not HTTP/1.1: {e}")),
            }
        };
        // The rest of the body, read and dropped.
        let mut left = (head + body).saturating_sub(filled);
        while left > 0 {
            let n = buf.len().min(left);
            left -= read(&stream, &mut buf[..n]).await?;
        }
        done += 1;
        if close {
            stream = connect().await?;
        }
    }
    Ok(done)
}

/// The body's length and whether the server closes the connection after it.
fn framing(headers: &[httparse::Header<'_>]) -> Result<(usize, bool), String> {
    let (mut length, mut close) = (0, false);
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("an answer's Content-Length is not a number")?;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("a chunked answer: this sender reads Content-Length bodies only".into());
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = header.value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok((length, close))
}

/// Writes all of `bytes`, waiting while the socket is full.
async fn write_all(stream: &tokio::net::TcpStream, mut bytes: &[u8]) -> Result<(), String> {
    while !bytes.is_empty() {
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stream
                    .writable()
                    .await
                    .map_err(|e| format!("write failed: {e}"))?;
            }
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(())
}

/// Reads what has come (at least one byte), waiting while nothing has; the end of the
/// connection is an error (no answer is complete without its bytes).
async fn read(stream: &tokio::net::TcpStream, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match stream.try_read(buf) {
            Ok(0) => return Err("the server closed the connection mid-answer".into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stream
                    .readable()
                    .await
                    .map_err(|e| format!("read failed: {e}"))?;
            }
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// User + system time of this process so far, in ticks of 1/100 s (USER_HZ).
fn cpu_ticks() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("cannot read /proc/self/stat (Linux only): {e}"))?;
    // The fields after the command's closing parenthesis; utime and stime are the 12th and
    // 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err("cannot read the CPU time from /proc/self/stat".into()),
    }
}
