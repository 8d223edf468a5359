//! The console's and API's request bodies end when they stop arriving: the events' route
//! reads its bodies with its own wait (and answers 408), but the console reads through
//! axum's extractors, which wait for ever. Without this, a client that sends a head with a
//! `Content-Length` and then nothing holds a connection (a file descriptor) as long as it
//! likes, and `POST /login` reads its form before any token is checked.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt as _;

/// Wraps the request's body so that a wait of `idle` for its next bytes ends it with an
/// error (which the extractor reading it answers 400, and the connection closes).
pub(super) async fn end_stalled_bodies(
    State(idle): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let chunks =
        futures_util::stream::unfold(Some(body.into_data_stream()), move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new(Stalled(idle))), None)),
            }
        });
    next.run(Request::from_parts(parts, Body::from_stream(chunks)))
        .await
}

/// A body that went `.0` without a byte.
#[derive(Debug)]
struct Stalled(Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request's body stopped arriving (nothing for {}, --body-timeout): send it again",
            deskhook::policy::format_duration(self.0)
        )
    }
}

impl std::error::Error for Stalled {}
