//! The baseline of the throughput benchmark: a sender that opens a NEW TCP connection for
//! every event (plain HTTP/1.1 POST with `Connection: close`), the way a naive webhook
//! sender without a connection pool works. `deskhook bench` is compared against it.
//!
//! Standard library only, so it builds on a fresh machine with nothing but Rust:
//!
//!   rustc -O --edition 2021 benches/baseline_new_connection.rs -o target/release/baseline_new_connection
//!   target/release/baseline_new_connection --url http://127.0.0.1:18080/ --events 20000 \
//!       --concurrency 16 --body-size 1024
//!
//! `C` threads share the events; each event is connect, write the request, read the response
//! to the end (the server closes), check the status is 2xx. Prints one JSON line:
//! {"events":…,"delivered":…,"failed":…,"seconds":…,"events_per_sec":…}. Only loopback URLs
//! are accepted. Exits 1 if any request failed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    host: String,
    addr: SocketAddr,
    path: String,
    events: u64,
    concurrency: u64,
    body_size: usize,
}

fn usage() -> String {
    "usage: baseline_new_connection --url http://127.0.0.1:PORT/ [--events N] \
     [--concurrency C] [--body-size BYTES]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let (mut events, mut concurrency, mut body_size) = (20_000u64, 16u64, 1024usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--events" => events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--concurrency" => {
                concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--body-size" => {
                body_size = value()?.parse().map_err(|e| format!("--body-size: {e}"))?
            }
            _ => return Err(format!("unknown argument '{flag}'\n{}", usage())),
        }
    }
    let url = url.ok_or_else(usage)?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url {url}: only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.ends_with(']'))
    {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("--url {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--url {url}: {} is not a loopback address; the baseline sends only to 127.0.0.1, \
             localhost or [::1]",
            addr.ip()
        ));
    }
    if concurrency == 0 || events == 0 {
        return Err("--events and --concurrency must be at least 1".to_owned());
    }
    Ok(Args {
        host: host.to_owned(),
        addr,
        path: path.to_owned(),
        events,
        concurrency,
        body_size,
    })
}

/// One request on a new connection; whether the answer was 2xx.
fn post_once(addr: &SocketAddr, request: &[u8], response: &mut Vec<u8>) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(addr, Duration::from_secs(5)) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    if stream.write_all(request).is_err() {
        return false;
    }
    response.clear();
    if stream.read_to_end(response).is_err() && response.is_empty() {
        return false;
    }
    // "HTTP/1.1 204 …"
    response.len() > 12 && response.starts_with(b"HTTP/1.") && response[9] == b'2'
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("baseline_new_connection: {message}");
            return ExitCode::from(2);
        }
    };
    let body = {
        // A JSON string of the requested size: "xxx…".
        let inner = args.body_size.saturating_sub(2);
        format!("\"{}\"", "x".repeat(inner))
    };
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: baseline-new-connection\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        args.path,
        args.host,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());

    let next = AtomicU64::new(0);
    let delivered = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency {
            scope.spawn(|| {
                let mut response = Vec::with_capacity(512);
                let mut ok = 0;
                while next.fetch_add(1, Ordering::Relaxed) < args.events {
                    if post_once(&args.addr, &request, &mut response) {
                        ok += 1;
                    }
                }
                delivered.fetch_add(ok, Ordering::Relaxed);
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let delivered = delivered.load(Ordering::Relaxed);
    println!(
        "{{\"events\":{},\"delivered\":{delivered},\"failed\":{},\"seconds\":{seconds:.6},\
         \"events_per_sec\":{:.0}}}",
        args.events,
        args.events - delivered,
        delivered as f64 / seconds
    );
    if delivered == args.events {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
