//! The console's and API's request bodies must arrive whole within `--body-timeout` of their
//! head: the events' route reads its bodies with its own wait (between bytes, and behind the
//! token), but the console reads through axum's extractors, which wait for ever, and
//! `POST /login` reads its form before any token is checked. Without a deadline, a client
//! that sends a head with a `Content-Length` and then nothing, or a byte now and then,
//! holds a connection (a file descriptor) as long as it likes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt as _;

/// Wraps the request's body so that what has not arrived `within` of now ends it with an
/// error (which the extractor reading it answers 400, and the connection closes).
pub(super) async fn end_late_bodies(
    State(within): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + within;
    let (parts, body) = request.into_parts();
    let chunks =
        futures_util::stream::unfold(Some(body.into_data_stream()), move |body| async move {
            let mut body = body?;
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new(Late(within))), None)),
            }
        });
    next.run(Request::from_parts(parts, Body::from_stream(chunks)))
        .await
}

/// A body that did not arrive whole within `.0` of its head.
#[derive(Debug)]
struct Late(Duration);

impl std::fmt::Display for Late {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request's body did not arrive whole within {} of its head (--body-timeout): \
             send it again",
            deskhook::policy::format_duration(self.0)
        )
    }
}

impl std::error::Error for Late {}
