//! Reading request bodies: one size limit checked before and while reading, one JSON
//! parser whose errors name the offending field. Every endpoint reads its whole body
//! (which also keeps HTTP keep-alive working).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::domain::validation::FieldError;

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {limit} bytes"),
    )
}

/// How long a whole request body may take to arrive (`limits.body_timeout_ms`), kept in
/// app data. A body that trickles in a byte at a time would otherwise hold a worker's
/// connection for as long as its sender likes.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// Used when the app data has none (the default of `limits.body_timeout_ms`).
const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the whole body, refusing more than `limit` bytes, and answering 408 when it has
/// not all arrived within the body timeout. The request's store budget starts once it has:
/// the time a client takes to send its body is not the store's.
pub async fn read_body<S>(
    req: &HttpRequest,
    payload: &mut S,
    limit: usize,
) -> Result<Bytes, Problem>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let timeout = req
        .app_data::<BodyTimeout>()
        .map_or(DEFAULT_BODY_TIMEOUT, |t| t.0);
    let body = tokio::time::timeout(timeout, read_body_unbounded(req, payload, limit))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} ms", timeout.as_millis()),
            )
        })??;
    crate::store::budget::restart();
    Ok(body)
}

async fn read_body_unbounded<S>(
    req: &HttpRequest,
    payload: &mut S,
    limit: usize,
) -> Result<Bytes, Problem>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let read_error = |e| Problem::bad_request(format!("the body could not be read: {e}"));
    // A small body usually arrives in one chunk: it is the body, with no copy.
    let first = match payload.next().await {
        None => return Ok(Bytes::new()),
        Some(chunk) => chunk.map_err(read_error)?,
    };
    if first.len() > limit {
        return Err(too_large(limit));
    }
    if declared == Some(first.len()) {
        return Ok(first);
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(512).min(limit));
    body.extend_from_slice(&first);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(read_error)?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses JSON; an error names the field (`settings.message`) and what was wrong. Anything
/// but whitespace after the value is refused, as `serde_json::from_slice` does. Good
/// bodies take the plain parser; only a bad one is parsed again to find the field's path.
pub fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Problem> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("the body is empty; JSON was expected"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Problem::bad_request(format!("the body is not valid JSON: {inner}"))
        } else if path.is_empty() || path == "." {
            Problem::invalid(vec![FieldError::new("body", inner.to_string())])
        } else {
            Problem::invalid(vec![FieldError::new(path, inner.to_string())])
        }
    })?;
    de.end()
        .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The media type of a request, lower case, without parameters.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    let raw = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        raw.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// A JSON body of the management API (`application/json`, or no content type).
pub struct ApiJson<T>(pub T);

/// A JSON body the endpoint can do without: none (or only whitespace) is `None`; one
/// that is there is held to the same rules as `ApiJson`.
pub struct OptionalApiJson<T>(pub Option<T>);

/// The API's body limit, kept in app data.
#[derive(Clone, Copy)]
pub struct ApiBodyLimit(pub usize);

/// Reads an API body; one that is there must be `application/json` (or untyped).
async fn api_body(req: &HttpRequest, payload: &mut Payload) -> Result<Bytes, Problem> {
    let limit = req.app_data::<ApiBodyLimit>().map_or(256 * 1024, |l| l.0);
    let body = read_body(req, payload, limit).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(body);
    }
    match media_type(req).as_deref() {
        None | Some("application/json") => Ok(body),
        Some(other) => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {other} is not accepted; send application/json"),
        )),
    }
}

/// Reads the API body, then makes the extractor's value of it.
fn extract<R: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    make: fn(Bytes) -> Result<R, Problem>,
) -> Pin<Box<dyn Future<Output = Result<R, Problem>>>> {
    let req = req.clone();
    let mut payload = payload.take();
    Box::pin(async move { make(api_body(&req, &mut payload).await?) })
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |body| parse_json(&body).map(ApiJson))
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalApiJson<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |body| {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalApiJson(None));
            }
            parse_json(&body).map(|v| OptionalApiJson(Some(v)))
        })
    }
}
