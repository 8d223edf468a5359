//! The daemon's HTTP/1.1 connections: accepted, served and closed here rather than by
//! `axum::serve`, which gives hyper no timer and so no timeout on a request's head. Without
//! one, a client that opens a connection and sends half a request line holds it for as long
//! as it likes, and a thousand such clients hold a thousand sockets.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `app` on the connections `listener` accepts until `stop` completes, then accepts
/// no more, tells each open connection to close after the request it is on, and returns
/// once all have closed (the caller bounds that wait).
///
/// A request's head (its request line and headers) must arrive within `header_timeout`, or
/// the connection is closed without an answer; a keep-alive connection waiting for its next
/// request is closed after as long (hyper starts the timer when it begins to read a head).
pub(super) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    // Each connection's task holds a receiver of `open`: all gone is all closed.
    let (open, open_rx) = watch::channel(());
    let (stopping, stopping_rx) = watch::channel(false);
    tokio::pin!(stop);
    loop {
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
