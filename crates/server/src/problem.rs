//! The one catalogue of error codes, the API error, and the two bodies a failure is written as:
//! the problem body of the REST API (docs/contract/rest.md §8), and the OData error body of the OData endpoint
//! (docs/contract/odata.md), which carries the same code. Handlers return [`ApiError`]; the response middleware
//! renders it, because only it knows the request path, the trace id and what the client accepts.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

/// Every error code of the contract, each tied to its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
    HeadersTooLarge,
    TooManyRequests,
    Unavailable,
    Missing,
    NotFound,
    Conflict,
    Invalid,
    Internal,
    MethodNotAllowed,
    Timeout,
    /// Valid OData that parley does not implement.
    NotImplemented,
}

impl ErrorCode {
    /// The number clients see in `code`.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotAcceptable => 406,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Missing => 1000,
            ErrorCode::NotFound => 1002,
            ErrorCode::Conflict => 1004,
            ErrorCode::Invalid => 1005,
            ErrorCode::Internal => 1008,
            ErrorCode::MethodNotAllowed => 1013,
            ErrorCode::Timeout => 8001,
            ErrorCode::NotImplemented => 501,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::Missing | ErrorCode::Invalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The code for a failure the framework produced on its own, by status.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::NOT_ACCEPTABLE => ErrorCode::NotAcceptable,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCode::Timeout,
            StatusCode::NOT_IMPLEMENTED => ErrorCode::NotImplemented,
            s if s.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::BadRequest,
        }
    }

    /// The detail used when nothing more specific is known.
    pub fn default_detail(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "The requested resource was not found.",
            ErrorCode::MethodNotAllowed => "This method is not allowed on this resource.",
            ErrorCode::PayloadTooLarge => "The request body is too large.",
            ErrorCode::Timeout => "The request took too long.",
            ErrorCode::Internal => "An internal error occurred.",
            ErrorCode::Unavailable => "The service is unavailable; try again shortly.",
            _ => "The request could not be processed.",
        }
    }
}

/// Which body a failure is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorBody {
    /// The problem body of the REST API.
    #[default]
    Problem,
    /// `{"error":{"code","message","target"}}`, for the OData endpoint.
    OData,
}

/// A failure on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub details: Box<Map<String, Json>>,
    /// Extra headers the failure needs (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Set by the routes of the OData endpoint for every failure under them.
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), details: Box::default(), headers: Vec::new(), body: ErrorBody::Problem }
    }

    /// 401 with the `WWW-Authenticate` challenge.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut error = ApiError::new(ErrorCode::Unauthorized, detail);
        error.headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        error
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("The {what} was not found."))
    }

    pub fn missing_payload() -> Self {
        ApiError::new(ErrorCode::Missing, "Validation failed. Missing payload.")
    }
}

impl From<parley_core::Error> for ApiError {
    fn from(error: parley_core::Error) -> Self {
        use parley_core::Error as E;
        match error {
            E::Missing { detail, details } => {
                ApiError { details: Box::new(details), ..ApiError::new(ErrorCode::Missing, detail) }
            }
            E::Invalid { detail, details } => {
                ApiError { details: Box::new(details), ..ApiError::new(ErrorCode::Invalid, detail) }
            }
            E::NotFound(detail) => ApiError::new(ErrorCode::NotFound, detail),
            E::Forbidden(detail) => ApiError::new(ErrorCode::Forbidden, detail),
            E::Conflict(detail) => ApiError::new(ErrorCode::Conflict, detail),
            E::Unavailable(detail) => ApiError::new(ErrorCode::Unavailable, detail),
            E::Unsupported(detail) => ApiError::new(ErrorCode::NotImplemented, detail),
            E::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(ErrorCode::Internal, ErrorCode::Internal.default_detail())
            }
        }
    }
}

impl From<parley_odata::ParseError> for ApiError {
    /// A malformed query option: invalid (1005), naming the option as the target and the
    /// byte offset of the fault in its value as the position. Valid OData that parley does not
    /// implement: 501, likewise located.
    fn from(error: parley_odata::ParseError) -> Self {
        let (code, what) = if error.unimplemented {
            (ErrorCode::NotImplemented, "Unimplemented")
        } else {
            (ErrorCode::Invalid, "Invalid")
        };
        let mut api =
            ApiError::new(code, format!("{what} {} at position {}: {}.", error.option, error.position, error.message));
        api.details.insert("target".into(), error.option.into());
        api.details.insert("position".into(), error.position.into());
        api
    }
}

impl From<parley_store::StoreError> for ApiError {
    fn from(error: parley_store::StoreError) -> Self {
        ApiError::from(parley_core::Error::from(error))
    }
}

impl IntoResponse for ApiError {
    /// An unrendered problem: the status and headers now, the body from the response middleware.
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        for (name, value) in &self.headers {
            response.headers_mut().insert(name, value.clone());
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// How a problem body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemFormat {
    Json,
    Xml,
}

/// The problem body of docs/contract/rest.md §8, as every failure of the REST API is written.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The status's reason phrase.
    r#type: &'static str,
    /// The reason phrase followed by " Error".
    title: String,
    status: u16,
    detail: String,
    /// The request path.
    instance: String,
    /// The error code of the catalogue: the status for most, 1000 to 1013 and 8001 for some.
    code: u16,
    /// `api--<uuid v4>`, also in the `X-Trace-Id` header.
    trace_id: String,
    /// The failing field (`field`), and for a batch the failing record's `index`.
    #[schema(value_type = Object)]
    details: Map<String, Json>,
}

/// The problem body of docs/contract/rest.md §8.
pub fn problem_body(error: &ApiError, instance: &str, trace_id: &str) -> Json {
    let status = error.code.status();
    let reason = status.canonical_reason().unwrap_or("Error");
    let problem = Problem {
        r#type: reason,
        title: format!("{reason} Error"),
        status: status.as_u16(),
        detail: error.detail.clone(),
        instance: instance.to_owned(),
        code: error.code.code(),
        trace_id: trace_id.to_owned(),
        details: (*error.details).clone(),
    };
    serde_json::to_value(problem).unwrap_or_default()
}

/// The problem answers of `codes` for the OpenAPI document, one per status, each naming the
/// codes it may carry.
fn problem_responses(codes: &[ErrorCode]) -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    let mut by_status: std::collections::BTreeMap<String, Vec<ErrorCode>> = Default::default();
    for code in codes {
        by_status.entry(code.status().as_u16().to_string()).or_default().push(*code);
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let reason = codes[0].status().canonical_reason().unwrap_or("Error");
            let numbers: Vec<String> = codes.iter().map(|c| c.code().to_string()).collect();
            let response = ResponseBuilder::new()
                .description(format!("{reason}: a problem with code {}", numbers.join(" or ")))
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))))
                        .build(),
                )
                .build();
            (status, RefOr::T(response))
        })
        .collect()
}

/// The failures any route of the REST API may answer, whatever it does: a bad argument, missing
/// or refused credentials, an unknown or hidden resource, an unacceptable `Accept`, limits, and
/// faults of the service.
impl IntoResponses for ApiError {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        problem_responses(&[
            ErrorCode::BadRequest,
            ErrorCode::Missing,
            ErrorCode::Invalid,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::NotAcceptable,
            ErrorCode::HeadersTooLarge,
            ErrorCode::TooManyRequests,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
            ErrorCode::Timeout,
        ])
    }
}

/// The failures of reading a request body, on top of [`ApiError`]'s: too large, or not JSON.
pub struct BodyRejection;

impl IntoResponses for BodyRejection {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        problem_responses(&[ErrorCode::PayloadTooLarge, ErrorCode::UnsupportedMediaType])
    }
}

/// The OData error body (OData JSON format, section 21): the catalogue's code as a string, the
/// detail as the message, the option or argument at fault as the target, and, as inner error,
/// the position of the fault and the trace id.
pub fn odata_error_body(error: &ApiError, trace_id: &str) -> Json {
    let mut inner = Map::new();
    if let Some(position) = error.details.get("position") {
        inner.insert("position".into(), position.clone());
    }
    inner.insert("traceId".into(), Json::String(trace_id.to_owned()));
    let mut body = Map::new();
    body.insert("code".into(), Json::String(error.code.code().to_string()));
    body.insert("message".into(), Json::String(error.detail.clone()));
    if let Some(target) = error.details.get("target").or_else(|| error.details.get("field")) {
        body.insert("target".into(), target.clone());
    }
    body.insert("innererror".into(), Json::Object(inner));
    json!({ "error": body })
}
