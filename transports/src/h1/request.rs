//! An HTTP/1.1 request's head: the part made once per endpoint (request line, `Host`,
//! `User-Agent` and the endpoint's own headers), and an attempt's, which adds only what
//! changes (id, timestamp, signature, sequence) and the body's length. Both transports make
//! theirs here.

use crate::delivery::{AttemptError, Endpoint};

use super::valid_value;

/// Whether requests to `endpoint` carry deskhook's `User-Agent`: unless the endpoint has its
/// own (never both).
pub(crate) fn default_user_agent(endpoint: &Endpoint) -> bool {
    !endpoint
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
}

/// The head of every request to `url` but the attempt's own headers: the request line (path
/// and query), `Host`, then the lines of `fixed` (names and values checked by the caller),
/// each line ended; an error when the URL cannot be sent.
pub(crate) fn target_head<'a>(
    url: &url::Url,
    fixed: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<u8>, String> {
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    // Both come from a parsed URL, which percent-encodes what a request line cannot hold.
    if !valid_value(path) || path.contains(' ') || !valid_value(host) {
        return Err("its URL cannot be sent".to_owned());
    }
    let mut head = Vec::with_capacity(64 + path.len() + host.len());
    for part in ["POST ", path, " HTTP/1.1\r\nhost: ", host, "\r\n"] {
        head.extend_from_slice(part.as_bytes());
    }
    for (name, value) in fixed {
        head_line(&mut head, name, value);
    }
    Ok(head)
}

/// The HTTP/1.1 head of one attempt: the target's (`target_head`), then the attempt's own
/// headers and the body's length.
pub(crate) fn attempt_head(
    target_head: &[u8],
    headers: &[(&str, &str)],
    length: usize,
) -> Result<Vec<u8>, AttemptError> {
    let mut head = Vec::with_capacity(target_head.len() + 384);
    head.extend_from_slice(target_head);
    for (name, value) in headers {
        // The names are the engine's own constants (the endpoint's headers are in the
        // target, checked when it was made): looked at in debug builds only, as this runs on
        // every attempt. The values carry the event's data and are checked.
        debug_assert!(
            crate::delivery::endpoint::is_header_name(name),
            "'{name}' is not a valid header name"
        );
        if !valid_value(value) {
            return Err(invalid_value(name));
        }
        head_line(&mut head, name, value.as_bytes());
    }
    head.extend_from_slice(b"content-length: ");
    head.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    Ok(head)
}

/// Appends the header line `name: value`.
fn head_line(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// An attempt whose header `name` has a value that cannot be sent.
pub(crate) fn invalid_value(name: &str) -> AttemptError {
    AttemptError {
        message: format!("the value of header '{name}' cannot be sent"),
        retryable: false,
    }
}
