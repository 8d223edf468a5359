//! What an answer's head says (its status, `Retry-After`, how its body ends, whether its
//! connection may be kept), and what a request's head may hold: decisions on parsed bytes,
//! with no I/O.

use std::io;
use std::time::Duration;

use crate::delivery::parse_retry_after;

/// How an answer's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// It has none (`204`, `304`, or `Content-Length: 0`).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// When the server closes the connection.
    Close,
}

/// An answer's head: what the attempt needs of it, and how to read its body.
#[derive(Debug)]
pub(crate) struct Head {
    /// The final status (interim `1xx` ones skipped).
    pub(crate) status: u16,
    /// `Retry-After`, when it says something.
    pub(crate) retry_after: Option<Duration>,
    /// How to read its body.
    pub(super) framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    pub(super) keep: bool,
    /// Whether the server closes the connection after this answer (`Connection: close`, an
    /// HTTP/1.0 answer, a body read to the close): it will not read the rest of a request
    /// still being written. Not the same as `!keep`, which is also said of an answer whose
    /// framing is not trusted.
    pub(super) closes: bool,
}

/// An answer that is not valid HTTP/1.1, saying how.
pub(super) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// What the attempt needs of a final answer's head.
pub(super) fn head_of(
    status: u16,
    version: Option<u8>,
    headers: &[httparse::Header<'_>],
) -> io::Result<Head> {
    let mut retry_after = None;
    let mut length: Option<u64> = None;
    // What is wrong with the Content-Length, if anything: it matters only when it frames the
    // body (not on a 204 or 304, which end at their head, nor beside a Transfer-Encoding).
    let mut bad_length = None;
    let mut chunked = false;
    let mut encoded = false;
    // HTTP/1.0 closes after each answer unless both sides asked otherwise; we do not ask.
    let mut keep = version == Some(1);
    let mut closes = !keep;
    for header in headers {
        let name = header.name;
        // Read once per header: a list of 60,000 items is looked at once, not each time.
        let value = std::str::from_utf8(header.value).unwrap_or_default();
        if name.eq_ignore_ascii_case("content-length") {
            // Digits only (`u64::from_str` would take a sign); a list of the same number
            // is that number (RFC 9110, 8.6). The first wrong item says it all.
            for item in value.split(',') {
                let digits = item.trim();
                let parsed = digits
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| digits.parse::<u64>().ok())
                    .flatten();
                match parsed {
                    None => {
                        bad_length = Some(format!(
                            "the receiver's answer has a Content-Length that is not a number \
                             ('{}')",
                            deskhook::shown_in_log(value)
                        ));
                        break;
                    }
                    Some(parsed) if length.is_some_and(|l| l != parsed) => {
                        bad_length =
                            Some("the receiver's answer has two different Content-Lengths".into());
                        break;
                    }
                    Some(parsed) => length = Some(parsed),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            // Chunked is the last coding when it is there at all.
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            if value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
            {
                keep = false;
                closes = true;
            }
        } else if name.eq_ignore_ascii_case("retry-after") && retry_after.is_none() {
            // The first that reads, as over HTTP/2: a proxy's later one does not undo it.
            retry_after = parse_retry_after(value);
        }
    }
    let framing = if status == 204 || status == 304 {
        // Whatever its headers say (RFC 9112, 6.3); one whose headers announce a body (an
        // encoding, a wrong length, or a 204's length other than 0, which RFC 9110 forbids;
        // a 304's is the representation's) may send it all the same, to be read as the
        // next answer: its connection is not kept.
        if bad_length.is_some() || encoded || (status == 204 && length.is_some_and(|l| l > 0)) {
            keep = false;
        }
        Framing::Empty
    } else if encoded {
        // A length beside an encoding is ignored (RFC 9112, 6.3), and the connection not
        // kept: one of the two lied.
        if length.is_some() || bad_length.is_some() {
            keep = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(bad) = bad_length {
        return Err(invalid(bad));
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    if framing == Framing::Close {
        keep = false;
        closes = true;
    }
    Ok(Head {
        status,
        retry_after,
        framing,
        keep,
        closes,
    })
}

/// Whether `value` can be sent as a header's value as it is: no control character but the
/// tab, no DEL; bytes past ASCII (RFC 9110's obs-text, as UTF-8 writes them) pass, as
/// `http::HeaderValue::from_str` lets them, which ureq and the endpoint's own checks did too.
/// Every byte is looked at, with no branch per byte, so that the check runs many bytes at a
/// time.
pub(crate) fn valid_value(value: &str) -> bool {
    value.bytes().fold(true, |ok, b| {
        ok & ((b >= b' ') & (b != 0x7f) | (b == b'\t'))
    })
}
