//! `POST /v2.4/$batch`: several reads in one request, in the JSON format of OData 4.01
//! (`{"requests": [...]}`) or the multipart format of OData 4.0 (`multipart/mixed`). Each read is
//! answered as if sent alone, with the batch's credentials: it goes through the endpoint's own
//! routes, one after the other, in the order given. The service is read-only, so anything but
//! a GET inside a batch (a change set among them) is answered 405 in its place.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};
use tower_service::Service as _;

use parley_core::Caller;

use super::Service;
use crate::problem::{ApiError, ErrorCode, odata_error_body};
use crate::state::AppState;
use crate::telemetry::TraceId;

/// The most reads one batch holds.
pub const MAX_REQUESTS: usize = 100;
/// The largest batch body read.
const MAX_BODY: usize = 1024 * 1024;
/// The headers of the batch request that every read inside it carries: its credentials.
const CARRIED: [&str; 3] = ["authorization", "x-api-key", "apikey"];

/// One read of the batch, as the client wrote it.
struct Part {
    id: Option<String>,
    method: String,
    /// A path below the service root, an absolute path, or an absolute URL.
    url: String,
    headers: Vec<(String, String)>,
}

/// One read's answer.
struct Answer {
    id: Option<String>,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The batch itself needs valid credentials (`caller`); each read then checks its own rights.
pub async fn batch(
    _caller: Caller,
    State(state): State<AppState>,
    axum::Extension(service): axum::Extension<&'static Service>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let trace = parts.extensions.get::<TraceId>().map_or_else(String::new, |t| t.0.clone());
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(ErrorCode::PayloadTooLarge, format!("A batch is at most {} KB.", MAX_BODY / 1024))
    })?;
    let multipart = boundary_of(&content_type);
    let reads = match &multipart {
        Some(boundary) => parse_multipart(&bytes, boundary)?,
        None if content_type.to_ascii_lowercase().starts_with("application/json") => parse_json(&bytes)?,
        None => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "A batch is application/json ({\"requests\": [...]}) or multipart/mixed with a boundary.",
            ));
        }
    };
    if reads.len() > MAX_REQUESTS {
        return Err(ApiError::new(ErrorCode::Invalid, format!("A batch holds at most {MAX_REQUESTS} requests.")));
    }
    let metrics = std::sync::Arc::clone(&state.metrics);
    let mut router: Router = super::routes()
        .layer(axum::middleware::from_fn_with_state(metrics, crate::telemetry::finish))
        .with_state(state);
    let mut answers = Vec::with_capacity(reads.len());
    for read in reads {
        answers.push(answer(&mut router, service, &parts.headers, &trace, read).await);
    }
    Ok(match multipart {
        Some(_) => multipart_response(&answers),
        None => json_response(&answers),
    })
}

/// Sends one read through the endpoint's routes. A read the routes cannot take is refused in its
/// place with the endpoint's own error body, under the batch's trace id.
async fn answer(router: &mut Router, service: &Service, outer: &HeaderMap, trace: &str, read: Part) -> Answer {
    let refuse = |code: ErrorCode, message: &str| Answer {
        id: read.id.clone(),
        status: code.status(),
        headers: HeaderMap::from_iter([
            (CONTENT_TYPE, HeaderValue::from_static("application/json;odata.metadata=minimal")),
            (HeaderName::from_static("odata-version"), HeaderValue::from_static("4.0")),
        ]),
        body: serde_json::to_vec(&odata_error_body(&ApiError::new(code, message), trace)).unwrap_or_default(),
    };
    if !read.method.eq_ignore_ascii_case("GET") {
        return refuse(ErrorCode::MethodNotAllowed, "The OData endpoint is read-only: a batch holds only GETs.");
    }
    // Spaces are written as they are in JSON batches more often than not.
    let url = read.url.trim().replace(' ', "%20");
    let Some(path) = path_of(service.root, &url) else {
        return refuse(ErrorCode::Invalid, "The request's URL is not an address of this service.");
    };
    // The batch's credentials and `Accept`, then the read's own headers, which win.
    let mut headers = HeaderMap::new();
    for name in CARRIED.iter().copied().chain([ACCEPT.as_str()]) {
        if let Some(value) = outer.get(name) {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    for (name, value) in &read.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    }
    let Ok(mut request) = Request::builder().method(Method::GET).uri(&path).body(Body::empty()) else {
        return refuse(ErrorCode::Invalid, "The request's URL is not valid.");
    };
    *request.headers_mut() = headers;
    let response = match router.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
    Answer { id: read.id, status: parts.status, headers: parts.headers, body }
}

/// The path a read addresses: relative to the service root, an absolute path, or an absolute
/// URL whose path is below the root; `None` for anything else.
fn path_of(root: &str, url: &str) -> Option<String> {
    let url = url.trim();
    let path = match url.split_once("://") {
        Some((_, rest)) => format!("/{}", rest.split_once('/')?.1),
        None if url.starts_with('/') => url.to_owned(),
        None => format!("{root}/{url}"),
    };
    let below = path.strip_prefix(root)?;
    (below.is_empty() || below.starts_with('/') || below.starts_with('?')).then_some(path)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Invalid, message)
}

/// `{"requests": [{"id", "method", "url", "headers"}]}`.
fn parse_json(bytes: &[u8]) -> Result<Vec<Part>, ApiError> {
    let body: Json =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("The batch is not valid JSON: {e}.")))?;
    let requests = body
        .get("requests")
        .and_then(Json::as_array)
        .ok_or_else(|| invalid("A JSON batch is an object with an array 'requests'."))?;
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let text = |name: &str| request.get(name).and_then(Json::as_str).map(str::to_owned);
            let url = text("url").ok_or_else(|| invalid(format!("Request {i} of the batch has no 'url'.")))?;
            let headers = request
                .get("headers")
                .and_then(Json::as_object)
                .map(|headers| headers.iter().filter_map(|(n, v)| Some((n.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            Ok(Part { id: text("id"), method: text("method").unwrap_or_else(|| "GET".into()), url, headers })
        })
        .collect()
}

fn json_response(answers: &[Answer]) -> Response {
    let responses: Vec<Json> = answers
        .iter()
        .map(|answer| {
            let headers: Map<String, Json> = answer
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), Json::String(value.to_str().ok()?.to_owned())))
                })
                .collect();
            let is_json =
                answer.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("json"));
            let body = match serde_json::from_slice::<Json>(&answer.body) {
                Ok(json) if is_json => json,
                _ => Json::String(String::from_utf8_lossy(&answer.body).into_owned()),
            };
            let mut response = json!({"status": answer.status.as_u16(), "headers": headers, "body": body});
            if let Some(id) = &answer.id {
                response["id"] = Json::String(id.clone());
            }
            response
        })
        .collect();
    let mut response = serde_json::to_vec(&json!({"responses": responses})).unwrap_or_default().into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The `boundary` parameter of a `multipart/mixed` content type.
fn boundary_of(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    if !pieces.next()?.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    pieces.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The parts of a multipart body between `--boundary` lines.
fn parts_of<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    body.split(&delimiter)
        .skip(1)
        .take_while(|part| !part.starts_with("--"))
        .map(|part| part.trim_start_matches(['\r', '\n']))
        .collect()
}

/// A head (lines up to an empty line) and what follows it.
fn split_head(text: &str) -> (&str, &str) {
    text.split_once("\r\n\r\n").or_else(|| text.split_once("\n\n")).unwrap_or((text, ""))
}

fn header_lines(head: &str) -> Vec<(String, String)> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

/// The reads of a `multipart/mixed` batch: each part an `application/http` request. A change
/// set (a nested multipart) holds writes, which are answered 405 each.
fn parse_multipart(bytes: &[u8], boundary: &str) -> Result<Vec<Part>, ApiError> {
    let body = std::str::from_utf8(bytes).map_err(|_| invalid("A multipart batch must be UTF-8 text."))?;
    let parts = parts_of(body, boundary);
    if parts.is_empty() {
        return Err(invalid(format!("The batch has no part delimited by --{boundary}.")));
    }
    let mut reads = Vec::new();
    for part in parts {
        let (head, rest) = split_head(part);
        let headers = header_lines(head);
        let content_type = headers.iter().find(|(n, _)| n == "content-type").map_or("", |(_, v)| v.as_str());
        let id = headers.iter().find(|(n, _)| n == "content-id").map(|(_, v)| v.clone());
        if let Some(inner) = boundary_of(content_type) {
            // A change set: every request in it is a write.
            for change in parts_of(rest, &inner) {
                let (_, request) = split_head(change);
                let line = request.lines().next().unwrap_or_default();
                let (method, url) = line.split_once(' ').unwrap_or(("POST", ""));
                reads.push(Part { id: None, method: method.to_owned(), url: url.to_owned(), headers: Vec::new() });
            }
            continue;
        }
        let (request_head, _) = split_head(rest);
        let mut lines = request_head.lines();
        let line = lines.next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let (Some(method), Some(url)) = (words.next(), words.next()) else {
            return Err(invalid(format!("A part of the batch does not start with a request line: '{line}'.")));
        };
        let headers = header_lines(&lines.collect::<Vec<_>>().join("\n"));
        reads.push(Part { id, method: method.to_owned(), url: url.to_owned(), headers });
    }
    Ok(reads)
}

fn multipart_response(answers: &[Answer]) -> Response {
    let boundary = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out: Vec<u8> = Vec::new();
    for answer in answers {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n")
                .as_bytes(),
        );
        if let Some(id) = &answer.id {
            out.extend_from_slice(format!("Content-ID: {id}\r\n").as_bytes());
        }
        let reason = answer.status.canonical_reason().unwrap_or_default();
        out.extend_from_slice(format!("\r\nHTTP/1.1 {} {reason}\r\n", answer.status.as_u16()).as_bytes());
        for (name, value) in &answer.headers {
            if name != "content-length" {
                out.extend_from_slice(format!("{name}: {}\r\n", value.to_str().unwrap_or_default()).as_bytes());
            }
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", answer.body.len()).as_bytes());
        out.extend_from_slice(&answer.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut response = out.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}")) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_relative_to_the_root_or_absolute() {
        assert_eq!(path_of("/v2.4", "Analytics?$top=1").as_deref(), Some("/v2.4/Analytics?$top=1"));
        assert_eq!(path_of("/v2.4", "/v2.4/Analytics").as_deref(), Some("/v2.4/Analytics"));
        assert_eq!(path_of("/v2.4", "http://h:1/v2.4/$metadata").as_deref(), Some("/v2.4/$metadata"));
        assert_eq!(path_of("/v2.4", "/new/v2.0/analytics"), None);
        assert_eq!(path_of("/v2.4", "/v2.40/Analytics"), None);
    }

    #[test]
    fn multipart_parts_become_reads_and_change_sets_writes() {
        let body = "--b\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nGET Analytics?$top=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n\
                    --b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nPOST Analytics HTTP/1.1\r\n\r\n{}\r\n--c--\r\n\
                    --b--\r\n";
        let reads = parse_multipart(body.as_bytes(), "b").unwrap();
        assert_eq!(reads.len(), 2);
        assert_eq!(
            (reads[0].method.as_str(), reads[0].url.as_str(), reads[0].id.as_deref()),
            ("GET", "Analytics?$top=1", Some("1"))
        );
        assert_eq!(reads[0].headers, [("accept".to_owned(), "application/json".to_owned())]);
        assert_eq!(reads[1].method, "POST");
        assert!(parse_multipart(b"no parts", "b").is_err());
    }
}
