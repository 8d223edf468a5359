//! The daemon's HTTP/1.1 connections: accepted, served and closed here rather than by
//! `axum::serve`, which gives hyper no timer and so no timeout on a request's head. Without
//! one, a client that opens a connection and sends half a request line holds it for as long
//! as it likes, and a thousand such clients hold a thousand sockets. The connections open at
//! once are capped too: past the cap, new ones wait in the kernel's backlog, so that clients
//! cannot take the file descriptors that deliveries and the spool need.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The limits on the daemon's connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// How long a request's head may take to arrive (`--header-timeout`).
    pub(super) header_timeout: Duration,
    /// Connections open at once at most (`--max-connections`).
    pub(super) max_connections: usize,
}

/// How often, at most, serve says that it is at its cap of connections.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `app` on the connections `listener` accepts until `stop` completes, then accepts
/// no more, tells each open connection to close after the request it is on, and returns
/// once all have closed (the caller bounds that wait).
///
/// A request's head (its request line and headers) must arrive within
/// `limits.header_timeout`, or the connection is closed without an answer; a keep-alive
/// connection waiting for its next request is closed after as long (hyper starts the timer
/// when it begins to read a head). With `limits.max_connections` open, none is accepted
/// until one closes (a warning says so, once a minute at most).
pub(super) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Each connection's task holds a receiver of `open`: all gone is all closed.
    let (open, open_rx) = watch::channel(());
    let (stopping, stopping_rx) = watch::channel(false);
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let mut warned: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        let place = match places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY) {
                    warned = Some(Instant::now());
                    log::warn!(
                        target: deskhook::LOG_TARGET,
                        "serve: {} connections are open, as many as --max-connections \
                         allows; new ones wait until one closes (clients that keep idle \
                         connections open, or a proxy's pool, may need a higher limit)",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    place = places.clone().acquire_owned() => match place {
                        Ok(place) => place,
                        // Never closed.
                        Err(_) => break,
                    },
                    () = &mut stop => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let mut stopping = stopping_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            // Its errors are the client's: a reset, a malformed or late head.
            let served = tokio::select! {
                _ = connection.as_mut() => true,
                _ = stopping.wait_for(|stopping| *stopping) => false,
            };
            if !served {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
            drop(open);
            drop(place);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(open_rx);
    open.closed().await;
}

/// An error from `accept`: a connection that went before it was taken is nothing; anything
/// else (out of file descriptors, most often) is logged, and accepting waits a second for
/// some to free, as `axum::serve` and hyper 0.14's server do.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    log::error!(
        target: deskhook::LOG_TARGET,
        "serve: cannot accept a connection: {e}; trying again in a second (if the process is \
         out of file descriptors, raise its limit: ulimit -n)"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    /// The answer to [`REQUEST`], read up to its body ("ok").
    async fn answer(stream: &mut TcpStream) -> String {
        let mut came = Vec::new();
        let read = async {
            while !came.ends_with(b"\r\n\r\nok") {
                let mut buf = [0u8; 512];
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&came));
                came.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no answer in 10 s");
        String::from_utf8(came).unwrap()
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_waits_for_one_to_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let limits = Limits {
            header_timeout: Duration::from_secs(30),
            max_connections: 1,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_connections(listener, app, limits, async {
            let _ = stopped.await;
        }));

        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(REQUEST).await.unwrap();
        assert!(answer(&mut first).await.starts_with("HTTP/1.1 200"));
        // The first stays open (keep-alive): the kernel takes the second, serve does not.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(REQUEST).await.unwrap();
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(200), second.read(&mut byte)).await;
        assert!(early.is_err(), "served past the cap: {early:?}");
        drop(first);
        assert!(answer(&mut second).await.starts_with("HTTP/1.1 200"));

        stop.send(()).unwrap();
        drop(second);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serve_connections did not return")
            .unwrap();
    }
}
