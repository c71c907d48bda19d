//! Extractors that turn raw request parts into typed values, rejecting in the error format of
//! rest.md §8 instead of the framework's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ErrorCode};

/// The largest JSON body of an ordinary request: 60 KiB.
pub const JSON_LIMIT: usize = 60 * 1024;
/// The largest ingest body: 16 MiB.
pub const INGEST_LIMIT: usize = 16 * 1024 * 1024;

/// The media type of a request body, lower-cased, without parameters; `None` when absent.
fn media_type(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Reads the body, refusing more than `limit` bytes with 413 before reading it when the length
/// is announced, and while reading otherwise.
async fn read_body(request: Request, limit: usize) -> Result<(Parts, Bytes), ApiError> {
    let (parts, body) = request.into_parts();
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    };
    let announced = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    Ok((parts, bytes))
}

/// A JSON body of at most [`JSON_LIMIT`] bytes, parsed but not yet typed (the domain types it).
/// An empty body is "Missing payload" (400, code 1000); a body with another media type is 415.
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, JSON_LIMIT).await?;
        if let Some(media) = media_type(&parts).filter(|m| !is_json(m)) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("The body must be application/json, not '{media}'."),
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON text; blank text is a missing payload.
fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::missing_payload());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let mut error = ApiError::new(
            ErrorCode::Invalid,
            format!("Validation failed. The body is not valid JSON: {e} (line {}, column {}).", e.line(), e.column()),
        );
        error.details.insert("field".into(), "body".into());
        error
    })
}

/// The records of an ingest request: a JSON array, or NDJSON (one record per line).
pub struct IngestBody(pub Vec<serde_json::Value>);

/// The most records one ingest request may carry.
pub const INGEST_MAX_RECORDS: usize = 10_000;

impl<S: Send + Sync> FromRequest<S> for IngestBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, INGEST_LIMIT).await?;
        let records = match media_type(&parts).as_deref() {
            Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => parse_ndjson(&bytes)?,
            None => parse_array(&bytes)?,
            Some(media) if is_json(media) => parse_array(&bytes)?,
            Some(media) => {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("The body must be application/json or application/x-ndjson, not '{media}'."),
                ));
            }
        };
        if records.len() > INGEST_MAX_RECORDS {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("A request may carry at most {INGEST_MAX_RECORDS} records; this one has {}.", records.len()),
            ));
        }
        Ok(IngestBody(records))
    }
}

fn parse_array(bytes: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    match parse_json(bytes)? {
        serde_json::Value::Array(records) => Ok(records),
        _ => Err(ApiError::from(parley_core::Error::invalid("body", "must be a JSON array of records"))),
    }
}

fn parse_ndjson(bytes: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut records = Vec::new();
    for (line_number, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice(line).map_err(|e| {
            let mut error = ApiError::new(
                ErrorCode::Invalid,
                format!("Validation failed. Line {} is not valid JSON: {e}.", line_number + 1),
            );
            error.details.insert("index".into(), records.len().into());
            error.details.insert("line".into(), (line_number + 1).into());
            error
        })?;
        records.push(record);
    }
    if records.is_empty() {
        return Err(ApiError::missing_payload());
    }
    Ok(records)
}

/// A query string typed by serde, rejecting with code 1005.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(QueryParams).map_err(|e| {
            ApiError::new(ErrorCode::Invalid, format!("Validation failed. The query string is invalid: {e}."))
        })
    }
}

/// A path parameter that must be an id; a malformed one reads as "not found", like an unknown one.
pub struct PathId(pub parley_core::ObjectId);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(text) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("resource"))?;
        parley_core::ObjectId::parse(&text).map(PathId).map_err(|_| ApiError::not_found("resource"))
    }
}
