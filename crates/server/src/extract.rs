//! Extractors that turn raw request parts into typed values, rejecting in the error format of
//! docs/contract/rest.md §8 instead of the framework's plain text.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Visitor};
use serde_json::Value as Json;

use crate::json::JsonError;
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

/// A JSON body of at most [`JSON_LIMIT`] bytes that becomes a `T` by [`ApiJson::parse`]. An
/// empty body is "Missing payload" (400, code 1000), malformed JSON is invalid (1005), and a body
/// with another media type is 415; those answers come from the extractor. The body is typed
/// only when the handler asks, after it has checked that the caller may make the request, so
/// that a caller without the right is told so before anything about the body's shape.
pub struct ApiJson<T> {
    value: Json,
    typed_as: PhantomData<fn() -> T>,
}

impl<T: RequestBody> ApiJson<T> {
    /// The body as a `T`, or the validation problem that says why it is not one.
    pub fn parse(self) -> Result<T, ApiError> {
        T::from_json(self.value).map_err(ApiError::from)
    }
}

impl<T, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, JSON_LIMIT).await?;
        if let Some(media) = media_type(&parts).filter(|m| !is_json(m)) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("The body must be application/json, not '{media}'."),
            ));
        }
        parse_json(&bytes).map(|value| ApiJson { value, typed_as: PhantomData })
    }
}

/// What a JSON request body can be read as.
pub trait RequestBody: Sized {
    /// The body as this type, or the domain's validation error.
    fn from_json(value: Json) -> parley_core::Result<Self>;
}

/// A request body whose properties are the fields of a serde struct (`deny_unknown_fields`):
/// its derive is the one list of property names, used to refuse any other one.
pub trait WireType: DeserializeOwned {
    /// The thing the body describes, as the refusal of an unknown property names it ("a user").
    const NOUN: &'static str;
}

impl<T: WireType> RequestBody for T {
    /// A JSON object, each key one of the type's properties, then the type by serde.
    fn from_json(value: Json) -> parley_core::Result<Self> {
        let Json::Object(object) = value else {
            return Err(parley_core::Error::invalid("body", "must be a JSON object"));
        };
        let properties = property_names::<T>();
        if let Some(key) = object.keys().find(|key| !properties.contains(&key.as_str())) {
            let text = format!("is not a property of {}", T::NOUN);
            let text = parley_core::suggest::with_suggestion(text, key, properties.iter().copied());
            return Err(parley_core::Error::invalid(key, text));
        }
        serde_json::from_value(Json::Object(object)).map_err(|e| parley_core::Error::invalid("body", e))
    }
}

impl RequestBody for parley_core::RecordUpdate {
    fn from_json(value: Json) -> parley_core::Result<Self> {
        parley_core::RecordUpdate::parse(value)
    }
}

impl RequestBody for parley_core::Erasure {
    fn from_json(value: Json) -> parley_core::Result<Self> {
        parley_core::Erasure::parse(value)
    }
}

/// The field names a `Deserialize` derive of a struct expects, read by asking it to deserialize
/// from a deserializer that records them; empty for a type that is not a struct.
fn property_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// The deserializer of [`property_names`]: it keeps the fields a struct asks for, and refuses.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("only the field names were wanted"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// A property of a wire type as the client sent it: `null` is `Some(Json::Null)` and only an
/// absent property is `None` (with `#[serde(default)]`), for bodies where the two differ.
pub fn as_sent<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(deserializer).map(Some)
}

/// Parses JSON text; blank text is a missing payload.
fn parse_json(bytes: &[u8]) -> Result<Json, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::missing_payload());
    }
    crate::json::parse(bytes).map_err(|e| match e {
        JsonError::DuplicateKey { path, error: e } => {
            let mut error = ApiError::new(
                ErrorCode::Invalid,
                format!(
                    "Validation failed. The key '{path}' appears twice in the body (line {}, column {}).",
                    e.line(),
                    e.column()
                ),
            );
            error.details.insert("field".into(), path.into());
            error
        }
        JsonError::Nul { path } => {
            let mut error = ApiError::new(
                ErrorCode::Invalid,
                format!("Validation failed. '{path}' must not contain the NUL character (U+0000)."),
            );
            error.details.insert("field".into(), path.into());
            error
        }
        JsonError::Syntax(e) => {
            let hint = if looks_like_ndjson(bytes) {
                "; it looks like NDJSON (one JSON object per line): send it with Content-Type: application/x-ndjson"
            } else {
                ""
            };
            let mut error = ApiError::new(
                ErrorCode::Invalid,
                format!(
                    "Validation failed. The body is not valid JSON at line {}, column {}: {}{hint}.",
                    e.line(),
                    e.column(),
                    without_position(&e)
                ),
            );
            error.details.insert("field".into(), "body".into());
            error
        }
    })
}

/// What serde_json says is wrong, without the position it appends (said once, by the caller).
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Whether a body that is not one JSON value is several, one per line.
fn looks_like_ndjson(bytes: &[u8]) -> bool {
    let mut lines = bytes.split(|b| *b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    let first_two = [lines.next(), lines.next()];
    first_two
        .iter()
        .all(|line| line.is_some_and(|line| serde_json::from_slice::<Json>(line).is_ok_and(|v| v.is_object())))
}

/// The rows of an ingest request: a JSON array, or NDJSON (one row per line).
pub struct IngestBody {
    rows: Vec<serde_json::Value>,
    /// For NDJSON, the line (from 1) of each row.
    lines: Option<Vec<usize>>,
}

impl IngestBody {
    /// Each row as `parse` reads it. A row refused refuses the batch, naming its index (from 0)
    /// and, for NDJSON, its line (from 1) in the error's details.
    pub fn parse_rows<T>(
        self,
        parse: impl Fn(serde_json::Value) -> parley_core::Result<T>,
    ) -> Result<Vec<T>, ApiError> {
        let lines = self.lines;
        self.rows
            .into_iter()
            .enumerate()
            .map(|(index, json)| parse(json).map_err(|e| at_row(e, index, lines.as_deref())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::from)
    }

    /// The line (from 1) of each row of an NDJSON body; `None` for a JSON array.
    pub fn lines(&self) -> Option<Vec<usize>> {
        self.lines.clone()
    }
}

/// An error about one row of an ingested body, naming its index and, for NDJSON (`lines`), its
/// line.
pub fn at_row(e: parley_core::Error, index: usize, lines: Option<&[usize]>) -> parley_core::Error {
    let e = e.with_detail("index", index);
    match lines.and_then(|lines| lines.get(index)) {
        Some(line) => e.at_line(*line),
        None => e,
    }
}

/// The most records one ingest request may carry.
pub const INGEST_MAX_RECORDS: usize = 10_000;

impl<S: Send + Sync> FromRequest<S> for IngestBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, INGEST_LIMIT).await?;
        let (records, lines) = match media_type(&parts).as_deref() {
            Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => {
                let (rows, lines) = parse_ndjson(&bytes)?;
                (rows, Some(lines))
            }
            None => (parse_array(&bytes)?, None),
            Some(media) if is_json(media) => (parse_array(&bytes)?, None),
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
        Ok(IngestBody { rows: records, lines })
    }
}

fn parse_array(bytes: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    match parse_json(bytes)? {
        serde_json::Value::Array(records) => Ok(records),
        _ => Err(ApiError::from(parley_core::Error::invalid("body", "must be a JSON array of records"))),
    }
}

/// The rows of an NDJSON body and the line (from 1) of each.
fn parse_ndjson(bytes: &[u8]) -> Result<(Vec<serde_json::Value>, Vec<usize>), ApiError> {
    let mut records = Vec::new();
    let mut lines = Vec::new();
    for (line_number, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = crate::json::parse(line).map_err(|e| {
            let mut error = match e {
                JsonError::DuplicateKey { path, .. } => {
                    let mut error = ApiError::new(
                        ErrorCode::Invalid,
                        format!("Validation failed. Line {}: the key '{path}' appears twice.", line_number + 1),
                    );
                    error.details.insert("field".into(), path.into());
                    error
                }
                JsonError::Nul { path } => {
                    let mut error = ApiError::new(
                        ErrorCode::Invalid,
                        format!(
                            "Validation failed. Line {}: '{path}' must not contain the NUL character (U+0000).",
                            line_number + 1
                        ),
                    );
                    error.details.insert("field".into(), path.into());
                    error
                }
                JsonError::Syntax(e) => ApiError::new(
                    ErrorCode::Invalid,
                    format!(
                        "Validation failed. Line {} is not valid JSON at column {}: {}.",
                        line_number + 1,
                        e.column(),
                        without_position(&e)
                    ),
                ),
            };
            error.details.insert("index".into(), records.len().into());
            error.details.insert("line".into(), (line_number + 1).into());
            error
        })?;
        records.push(record);
        lines.push(line_number + 1);
    }
    if records.is_empty() {
        return Err(ApiError::missing_payload());
    }
    Ok((records, lines))
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

/// Offset paging of small collections (projects, users, keys): `?limit=&skip=`.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    limit: Option<String>,
    skip: Option<String>,
}

impl PageParams {
    /// `(skip, limit)`; limit 1..=100, default 25.
    pub fn parse(&self) -> Result<(u64, u32), parley_core::Error> {
        let limit = match &self.limit {
            None => 25,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| parley_core::Error::invalid("limit", "must be a whole number from 1 to 100"))?,
        };
        let skip = match &self.skip {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= i64::MAX as u64)
                .ok_or_else(|| parley_core::Error::invalid("skip", "must be a whole number"))?,
        };
        Ok((skip, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        count: u8,
    }

    impl WireType for Strict {
        const NOUN: &'static str = "a strict thing";
    }

    fn detail(error: parley_core::Error) -> String {
        error.to_string()
    }

    #[test]
    fn the_properties_are_the_ones_the_derive_knows() {
        assert_eq!(property_names::<Strict>(), ["count"]);
        assert!(property_names::<u8>().is_empty());
    }

    #[test]
    fn a_wire_type_refuses_other_json_unknown_properties_and_wrong_types() {
        let refused = |value| detail(Strict::from_json(value).unwrap_err());
        assert_eq!(refused(json!([1])), "Validation failed. 'body' must be a JSON object.");
        assert_eq!(
            refused(json!({"count": 1, "extra": 2})),
            "Validation failed. 'extra' is not a property of a strict thing."
        );
        assert!(
            refused(json!({"count": "many"})).starts_with("Validation failed. 'body' invalid type"),
            "{}",
            refused(json!({"count": "many"}))
        );
        assert_eq!(Strict::from_json(json!({"count": 3})).unwrap().count, 3);
    }

    mod ndjson {
        use proptest::prelude::*;

        use super::super::parse_ndjson;
        use crate::json::tests::arbitrary::value;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Values written one per line, with blank lines and CRLF endings anywhere, read back
            /// as themselves, each with its line.
            #[test]
            fn lines_read_back_with_their_numbers(
                rows in prop::collection::vec((value(), 0usize..3, any::<bool>()), 1..20),
            ) {
                let mut body = String::new();
                let mut expected = Vec::new();
                let mut line = 1;
                for (row, blanks, crlf) in &rows {
                    for _ in 0..*blanks {
                        body.push_str(if *crlf { " \r\n" } else { "\n" });
                        line += 1;
                    }
                    body.push_str(&row.to_string());
                    body.push_str(if *crlf { "\r\n" } else { "\n" });
                    expected.push(line);
                    line += 1;
                }
                let (read, lines) = parse_ndjson(body.as_bytes()).unwrap();
                prop_assert_eq!(read, rows.iter().map(|(row, _, _)| row.clone()).collect::<Vec<_>>());
                prop_assert_eq!(lines, expected);
            }

            /// Any bytes are read, refused with 1005 naming a line of the body, or, when no line
            /// holds anything, refused as a missing payload (1000); never a panic.
            #[test]
            fn any_bytes_are_read_or_refused_by_line(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                let count = bytes.split(|b| *b == b'\n').count();
                if let Err(error) = parse_ndjson(&bytes) {
                    match error.code.code() {
                        1000 => prop_assert!(bytes.iter().all(u8::is_ascii_whitespace)),
                        1005 => {
                            let line = error.details["line"].as_u64().unwrap() as usize;
                            prop_assert!((1..=count).contains(&line), "line {} of {}", line, count);
                        }
                        other => prop_assert!(false, "code {}", other),
                    }
                }
            }
        }
    }
}
