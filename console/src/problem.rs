//! RFC 9457 problem details: what the API answers when a request cannot be done.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskhook_transports::Error;
use deskhook_transports::delivery::SpecError;
use serde::Serialize;

/// A problem document (`application/problem+json`, RFC 9457): the status, a title, what
/// was wrong and how to fix it, and the field at fault when there is one.
///
/// ```json
/// {"type": "about:blank", "title": "Bad Request", "status": 400,
///  "detail": "endpoint 'crm': retry '5x' is not a duration …", "field": "retry"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, and how to fix it.
    pub detail: String,
    /// The field of the request at fault (`url`, `retry`, `secret`…), when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// A 400 naming `field`.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem {
            field: Some(field.into()),
            ..Problem::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    /// A 500: something the console could not do that is not the request's fault.
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// The status as a [`StatusCode`].
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<Error> for Problem {
    fn from(error: Error) -> Problem {
        let status = match &error {
            Error::UnknownEndpoint { .. } => StatusCode::NOT_FOUND,
            Error::EndpointExists { .. } | Error::EndpointChanged { .. } => StatusCode::CONFLICT,
            Error::InvalidUrl { .. }
            | Error::InvalidEndpoint { .. }
            | Error::Refused(_)
            | Error::Config(_) => StatusCode::BAD_REQUEST,
            Error::SpoolFull { .. } | Error::NotQueued(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem::new(status, error.to_string())
    }
}

impl From<SpecError> for Problem {
    fn from(error: SpecError) -> Problem {
        let field = error.field().map(str::to_owned);
        Problem {
            field,
            ..Problem::from(error.into_error())
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            self.status_code(),
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
