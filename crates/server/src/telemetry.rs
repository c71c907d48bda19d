//! The outermost request layer: gives each request a trace id, turns every failure (ours or the
//! framework's) into a problem body in the error format, and logs one line per request.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::metrics::Metrics;
use crate::negotiate::problem_format;
use crate::problem::{ApiError, ErrorBody, ErrorCode, ProblemFormat, odata_error_body, problem_body};
use crate::represent::to_xml_document;

/// The trace id of a request, `api--<uuid v4>`.
#[derive(Debug, Clone)]
pub struct TraceId(pub String);

/// A new trace id, `api--<uuid v4>`.
pub fn new_trace_id() -> String {
    format!("api--{}", uuid::Uuid::new_v4())
}

/// Sets up logging: JSON lines when stderr is not a terminal (or when asked), text otherwise.
///
/// Lines go to stderr through [`crate::logsink`], which writes what has gathered every few
/// milliseconds and never drops a line. The returned guard writes what is left when it is
/// dropped, so `main` keeps it to the end. Fails only when the writer thread cannot start.
pub fn init_logging(format: crate::config::LogFormat) -> std::io::Result<crate::logsink::SinkGuard> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        crate::config::LogFormat::Json => true,
        crate::config::LogFormat::Text => false,
        crate::config::LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (sink, guard) = crate::logsink::start(std::io::stderr())?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    Ok(guard)
}

/// The middleware; see the module documentation.
pub async fn finish(State(metrics): State<Arc<Metrics>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let trace_id = new_trace_id();
    request.extensions_mut().insert(TraceId(trace_id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_owned);

    let mut response = next.run(request).await;

    let failure = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => Some(error),
        // A failure the framework answered on its own (an unmatched route, a wrong method, a
        // timeout): same format as ours.
        None if (response.status().is_client_error() || response.status().is_server_error())
            && !is_problem(&response) =>
        {
            let code = ErrorCode::for_status(response.status());
            Some(ApiError::new(code, code.default_detail()))
        }
        None => None,
    };
    if let Some(mut error) = failure {
        // Under the OData services every failure is an OData error, whichever layer refused.
        if crate::routes::odata::serves(&path) {
            error.body = ErrorBody::OData;
        }
        response = render_problem(response, &error, &path, &trace_id, accept.as_deref());
    }
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert("x-trace-id", value);
    }
    let status = response.status().as_u16();
    // To a tenth of a millisecond: what a reader compares, without fifteen digits of noise.
    let duration_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    let route = route.as_deref().unwrap_or(if method == Method::OPTIONS { "preflight" } else { "unmatched" });
    metrics.request(method.as_str(), route, status, started.elapsed().as_secs_f64());
    if status >= 500 {
        tracing::warn!(method = %method, route, status, duration_ms, "traceId" = %trace_id, "request");
    } else {
        tracing::info!(method = %method, route, status, duration_ms, "traceId" = %trace_id, "request");
    }
    response
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/problem+") || t.starts_with("application/json"))
}

/// Replaces the body of `response` with the problem, keeping its status and other headers.
fn render_problem(response: Response, error: &ApiError, path: &str, trace_id: &str, accept: Option<&str>) -> Response {
    let (mut parts, _) = response.into_parts();
    let (bytes, content_type) = match (error.body, problem_format(accept)) {
        (ErrorBody::OData, _) => {
            parts.headers.insert("odata-version", HeaderValue::from_static("4.0"));
            let body = odata_error_body(error, trace_id);
            (serde_json::to_vec(&body).unwrap_or_default(), "application/json;odata.metadata=minimal")
        }
        (ErrorBody::Problem, ProblemFormat::Json) => {
            (serde_json::to_vec(&problem_body(error, path, trace_id)).unwrap_or_default(), "application/problem+json")
        }
        (ErrorBody::Problem, ProblemFormat::Xml) => (
            to_xml_document(&problem_body(error, path, trace_id)).into_bytes(),
            "application/problem+xml; charset=utf-8",
        ),
    };
    parts.status = error.code.status();
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    for (name, value) in &error.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, Body::from(bytes)).into_response()
}
