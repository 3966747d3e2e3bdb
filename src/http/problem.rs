//! Errors as RFC 9457 `application/problem+json`, mapped in this one place from the
//! service's and the store's errors. A client's mistake is a 4xx naming what was wrong;
//! a store outage a quick 503 with `Retry-After`; nothing panics.
//!
//! A validation failure is a 400, as amoCRM answers it: footfall's `errors`
//! (`[{field, message}]`) and, beside them, amoCRM's `validation-errors`
//! (`[{request_id, errors: [{code, path, detail}]}]`, one group per item of the request),
//! which amoCRM client libraries read and show.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::validation::FieldError;
use crate::service;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
    /// The `request_id` each item of the request was sent with (by index), for
    /// `validation-errors`; an item without one is named by its index.
    pub request_ids: Vec<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(rename = "validation-errors", skip_serializing_if = "Vec::is_empty")]
    validation_errors: Vec<ValidationGroup<'a>>,
}

/// amoCRM's errors of one item of a request (`request_id`: the one it was sent with, or
/// its index).
#[derive(Serialize)]
struct ValidationGroup<'a> {
    request_id: String,
    errors: Vec<ValidationError<'a>>,
}

#[derive(Serialize)]
struct ValidationError<'a> {
    code: &'static str,
    path: &'a str,
    detail: &'a str,
}

/// Groups footfall's field errors as amoCRM's `validation-errors`: `[1].name` is
/// `request_id` "1" (or the one item 1 was sent with), `path` "name"; a field outside
/// any item belongs to request "0".
fn validation_groups<'a>(
    errors: &'a [FieldError],
    request_ids: &[String],
) -> Vec<ValidationGroup<'a>> {
    let mut groups: Vec<ValidationGroup<'_>> = Vec::new();
    for e in errors {
        let (index, path) = split_item(&e.field);
        let request_id = match index {
            Some(index) => index
                .parse::<usize>()
                .ok()
                .and_then(|i| request_ids.get(i))
                .map_or(index, String::as_str),
            None => "0",
        };
        let code = if e.message == "is required" {
            "NotBlank"
        } else if e.message.starts_with("invalid type") {
            "InvalidType"
        } else {
            "InvalidValue"
        };
        let error = ValidationError {
            code,
            path,
            detail: &e.message,
        };
        match groups.iter_mut().find(|g| g.request_id == request_id) {
            Some(g) => g.errors.push(error),
            None => groups.push(ValidationGroup {
                request_id: request_id.to_owned(),
                errors: vec![error],
            }),
        }
    }
    groups
}

/// `[3].a.b` → (Some("3"), "a.b"); `a.b` → (None, "a.b").
fn split_item(field: &str) -> (Option<&str>, &str) {
    field
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .filter(|(index, _)| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
        .map_or((None, field), |(index, path)| {
            (Some(index), path.strip_prefix('.').unwrap_or(path))
        })
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            request_ids: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// A validation failure naming each field: a 400, as amoCRM answers one.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    /// Names a batch's items in `validation-errors` by the `request_id` each was sent
    /// with (`request_ids[i]`, as `api::request_ids` reads them).
    pub fn of_items(mut self, request_ids: &[String]) -> Self {
        self.request_ids = request_ids.to_vec();
        self
    }

    /// A request whose write no replica confirmed in time (`store::durability`): a 503
    /// that says which retries find the write done, and which would make it again.
    pub fn unconfirmed() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the write was made, but no replica confirmed it in time. Sent again, a \
                 form (or /leads/unsorted/forms) folds into it and an accept or an \
                 erasure answers 404 (it was done); a lead, contact or note created \
                 through /leads, /leads/complex, /contacts or /notes, or a page view, \
                 would be made again: look it up before sending it again",
            )
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// A 429 naming the limit that refused (a quota, or an instance's flood guard), so
    /// that a client and an operator can tell them apart.
    pub fn too_many_requests(wait_secs: u64, limit: &str) -> Self {
        Self {
            retry_after: Some(wait_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests ({limit}); slow down and retry later"),
            )
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Body {
            kind: "about:blank",
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            validation_errors: validation_groups(&self.errors, &self.request_ids),
        };
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        match serde_json::to_string(&body) {
            Ok(json) => response.body(json),
            // Strings and numbers always serialise; answer the status alone if not.
            Err(_) => response.body(format!(r#"{{"status":{}}}"#, self.status.as_u16())),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(message) => {
                tracing::warn!(error = %message, "store unavailable");
                Self {
                    retry_after: Some(1),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store is unavailable; retry shortly",
                    )
                }
            }
            StoreError::Corrupt(message) => {
                tracing::error!(error = %message, "corrupt data in the store");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored data could not be read",
                )
            }
        }
    }
}

impl From<service::Error> for Problem {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        match e {
            E::NotFound(m) => Self::not_found(m),
            E::BadRequest(m) => Self::bad_request(m),
            E::Invalid(errors) => Self::invalid(errors),
            E::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, m),
            E::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            E::OverQuota(refused) => Self::too_many_requests(
                crate::service::quotas::retry_after_secs(&refused),
                &match refused.scope() {
                    "unsorted" => "the account's Unsorted is full".to_owned(),
                    scope => format!("quota: {} per {scope}", refused.kind().code()),
                },
            ),
            E::Store(e) => e.into(),
        }
    }
}

/// Answers routes that do not exist, and methods a route does not take, in the same shape.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, Problem> {
    Err(Problem::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_are_grouped_by_item_as_amocrm_does() {
        let errors = vec![
            FieldError::new("[1].name", "is required"),
            FieldError::new("[1].price", "invalid type: string, expected u64"),
            FieldError::new("filter[foo]", "is not a parameter of this list"),
        ];
        let groups = validation_groups(&errors, &[]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].request_id, "1");
        assert_eq!(groups[0].errors[0].path, "name");
        assert_eq!(groups[0].errors[0].code, "NotBlank");
        assert_eq!(groups[0].errors[1].code, "InvalidType");
        assert_eq!(groups[1].request_id, "0");
        assert_eq!(groups[1].errors[0].path, "filter[foo]");
        // Items sent with request ids are named by them.
        let named = validation_groups(&errors, &["a".into(), "site-1".into()]);
        assert_eq!(named[0].request_id, "site-1");
        assert_eq!(named[1].request_id, "0", "outside any item");
    }
}
