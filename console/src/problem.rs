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
///
/// When several fields of an endpoint's settings are at fault, `detail` and `field` are the
/// first's, and `errors` lists them all (the first too), so that they are fixed at once:
///
/// ```json
/// {"type": "about:blank", "title": "Bad Request", "status": 400,
///  "detail": "timeout: …", "field": "timeout",
///  "errors": [{"field": "timeout", "detail": "timeout: …"},
///             {"field": "url", "detail": "invalid endpoint URL …"}]}
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
    /// Every problem, when there are several (an extension member): the first is the one
    /// of `detail` and `field`. Left out when there is one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// One of several problems of a request (see [`Problem::errors`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field at fault, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What was wrong, and how to fix it.
    pub detail: String,
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
            errors: Vec::new(),
        }
    }

    /// One problem of `problems`, which are several problems of one request (all with its
    /// status): the first's, listing them all in [`errors`](Problem::errors) when there is
    /// more than one. `None` when there is none.
    pub fn several(mut problems: Vec<Problem>) -> Option<Problem> {
        if problems.len() < 2 {
            return problems.pop();
        }
        let errors = problems
            .iter()
            .map(|p| FieldProblem {
                field: p.field.clone(),
                detail: p.detail.clone(),
            })
            .collect();
        let first = problems.swap_remove(0);
        Some(Problem { errors, ..first })
    }

    /// The fields at fault: each of [`errors`](Problem::errors), or [`field`](Problem::field).
    pub fn fields(&self) -> Vec<&str> {
        if self.errors.is_empty() {
            return self.field.as_deref().into_iter().collect();
        }
        self.errors
            .iter()
            .filter_map(|e| e.field.as_deref())
            .collect()
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

impl From<&Error> for Problem {
    fn from(error: &Error) -> Problem {
        let status = match error {
            Error::UnknownEndpoint { .. } => StatusCode::NOT_FOUND,
            Error::EndpointExists { .. }
            | Error::EndpointChanged { .. }
            | Error::DeadLettersMoved { .. } => StatusCode::CONFLICT,
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

impl From<Error> for Problem {
    fn from(error: Error) -> Problem {
        Problem::from(&error)
    }
}

/// Every setting at fault: the first, and the others it carries (listed in `errors`).
impl From<SpecError> for Problem {
    fn from(error: SpecError) -> Problem {
        let one = |error: &SpecError| Problem {
            field: error.field().map(str::to_owned),
            ..Problem::from(error.error())
        };
        let all = std::iter::once(&error).chain(error.others()).map(one);
        Problem::several(all.collect()).unwrap_or_else(|| one(&error))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_status_that_says_whose_fault_they_are() {
        let table = [
            (
                Error::UnknownEndpoint {
                    name: "crm".into(),
                    suggestion: None,
                },
                404,
            ),
            (
                Error::DeadLettersMoved {
                    path: "dead.jsonl".into(),
                },
                409,
            ),
            (Error::Config("bad".into()), 400),
            (Error::NotQueued("full".into()), 503),
            (
                Error::Write {
                    path: "dead.jsonl".into(),
                    source: std::io::Error::other("disk full"),
                },
                500,
            ),
        ];
        for (error, status) in table {
            assert_eq!(Problem::from(&error).status, status, "{error}");
        }
    }
}
