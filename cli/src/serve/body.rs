//! An event's body as `POST /v1/events` takes it: read within its limits of size and time,
//! and refused, saying how to send it, when it is a form or text not in UTF-8.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use deskhook_console::Problem;

/// Refuses a form (curl -F), whose body cannot be an event's JSON. Any other type is read
/// as JSON, since curl -d sends x-www-form-urlencoded.
pub(super) fn refuse_forms(kind: &str) -> Result<(), Problem> {
    let media = kind.split(';').next().unwrap_or("").trim();
    if media
        .get(..10)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("multipart/"))
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type '{kind}' is a form; send the event's JSON as the body \
                 (curl --data-binary @event.json -H 'Content-Type: application/json')"
            ),
        ));
    }
    Ok(())
}

/// Refuses a body that is not UTF-8 text (JSON's encoding), naming the charset its
/// Content-Type gives and how to convert it. The label alone decides nothing: many senders
/// label UTF-8 JSON ISO-8859-1 or US-ASCII.
pub(super) fn not_utf8(kind: Option<&str>, body: &[u8]) -> Result<(), Problem> {
    let Err(bad) = std::str::from_utf8(body) else {
        return Ok(());
    };
    let at = bad.valid_up_to();
    let charset = kind
        .into_iter()
        .flat_map(|kind| kind.split(';').skip(1))
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|charset| !charset.is_empty())
        // Labelled UTF-8 and not: the label is wrong, not the charset unsupported.
        .filter(|charset| {
            !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8")
        });
    Err(match charset {
        Some(charset) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body is {charset} (its Content-Type says so), and an event's JSON is \
                 read as UTF-8; send it in UTF-8 (iconv -f {charset} -t UTF-8)"
            ),
        ),
        None => Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not UTF-8 text (byte {at} is not, whatever its Content-Type \
                 says); send the event's JSON in UTF-8, converted from the charset it was \
                 written in (iconv -f <that charset> -t UTF-8)"
            ),
        ),
    })
}

/// How many times `--body-timeout` an event's whole body may take: one that keeps sending
/// a byte now and then, each within the timeout, would hold its place for ever.
const BODY_TIMEOUTS_IN_ALL: u32 = 4;

/// Reads at most `limit` bytes of `body`; more is a 413, and a body that goes `idle`
/// without a byte arriving, or takes [`BODY_TIMEOUTS_IN_ALL`] times that in all, is a 408.
pub(super) async fn read_body(body: Body, limit: usize, idle: Duration) -> Result<Bytes, Problem> {
    use http_body_util::BodyExt as _;
    // A Content-Length past the limit is refused before a byte is read.
    let announced =
        usize::try_from(axum::body::HttpBody::size_hint(&body).lower()).unwrap_or(usize::MAX);
    if announced > limit {
        return Err(too_large(limit));
    }
    let mut body = http_body_util::Limited::new(body, limit);
    // Room for what is announced, at most 64 KiB up front (it grows as bytes come): 1,024
    // requests at once must not hold 1,024 × max_payload before a byte came.
    let mut read = Vec::with_capacity(announced.min(64 * 1024));
    let started = tokio::time::Instant::now();
    let whole = started + idle.saturating_mul(BODY_TIMEOUTS_IN_ALL);
    loop {
        let next = tokio::time::Instant::now() + idle;
        let frame = tokio::time::timeout_at(next.min(whole), body.frame())
            .await
            .map_err(|_| {
                let what = if next <= whole {
                    format!(
                        "stopped arriving ({} bytes came, then nothing for {})",
                        read.len(),
                        deskhook::policy::format_duration(idle)
                    )
                } else {
                    format!(
                        "came too slowly ({} bytes in {}, {BODY_TIMEOUTS_IN_ALL} times \
                         --body-timeout)",
                        read.len(),
                        deskhook::policy::format_duration(whole - started)
                    )
                };
                Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the event's body {what}; nothing was accepted: send it again"),
                )
            })?;
        match frame {
            None => return Ok(Bytes::from(read)),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read.extend_from_slice(data);
                }
            }
            Some(Err(e)) => return Err(unreadable(&*e, limit)),
        }
    }
}

/// The problem of a body that could not be read: 413 past `limit`, else 400.
fn unreadable(e: &(dyn std::error::Error + 'static), limit: usize) -> Problem {
    let mut cause = Some(e);
    let mut too_large = false;
    while let Some(error) = cause {
        too_large |= error.is::<http_body_util::LengthLimitError>();
        cause = error.source();
    }
    if too_large {
        self::too_large(limit)
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {e}"),
        )
    }
}

/// The 413 of a body past `limit`.
fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is larger than {limit} bytes; raise max_payload in [delivery] of the \
             config if events this large are expected"
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_in_any_case_and_bodies_not_in_utf8_are_refused_with_the_fix() {
        for kind in ["application/json", "application/x-www-form-urlencoded"] {
            assert!(super::refuse_forms(kind).is_ok(), "{kind}");
        }
        for kind in [
            "multipart/form-data; boundary=x",
            "Multipart/Form-Data; boundary=x",
        ] {
            let problem = super::refuse_forms(kind).unwrap_err();
            assert_eq!(
                problem.status_code(),
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE
            );
            assert!(problem.detail.contains("is a form"), "{}", problem.detail);
        }
        // UTF-8 passes whatever its label says; text that is not UTF-8 is named by its label.
        let utf8 = "{\"ticket\": \"Привет\"}".as_bytes();
        let cp1251 = b"{\"ticket\": \"\xcf\xf0\xe8\"}";
        for kind in [
            None,
            Some("application/json; charset=ISO-8859-1"),
            Some("text/plain; charset=us-ascii"),
        ] {
            assert!(super::not_utf8(kind, utf8).is_ok(), "{kind:?}");
        }
        let labelled = super::not_utf8(Some("application/json; Charset=\"windows-1251\""), cp1251)
            .unwrap_err();
        assert_eq!(
            labelled.status_code(),
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert!(
            labelled.detail.contains("iconv -f windows-1251 -t UTF-8"),
            "{}",
            labelled.detail
        );
        // Labelled UTF-8 (or nothing) and not: a 400 that names the first byte at fault.
        for kind in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=\"UTF8\"",
        ] {
            let unlabelled = super::not_utf8(Some(kind), cp1251).unwrap_err();
            assert_eq!(
                unlabelled.status_code(),
                axum::http::StatusCode::BAD_REQUEST
            );
            assert!(
                unlabelled.detail.contains("not UTF-8 text (byte 12 is not"),
                "{}",
                unlabelled.detail
            );
        }
    }
}
