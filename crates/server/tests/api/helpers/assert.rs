//! Assertions on answers: problem bodies (docs/contract/rest.md §8), trace ids, headers, JSON values.

use reqwest::Response;
use serde_json::Value as Json;

/// Whether two JSON values are equal, numbers compared by value (`9` equals `9.0`).
pub fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Asserts that every field a client sent is stored as sent (times in their canonical form).
pub fn assert_holds_sent_fields(stored: &Json, sent: &Json) {
    for (name, value) in sent.as_object().expect("an object") {
        assert!(same_json(&stored[name], value), "field {name}: stored {} but sent {value}", stored[name]);
    }
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().expect("a text header").to_owned())
}

pub fn content_type(response: &Response) -> String {
    header(response, "content-type").unwrap_or_default()
}

/// The reason phrase of a status, as the error format's `type` states it.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        other => panic!("no reason phrase known for {other}"),
    }
}

/// Asserts that `trace_id` is `api--` followed by a version 4 UUID.
pub fn assert_trace_id(trace_id: &str) {
    let uuid = trace_id.strip_prefix("api--").unwrap_or_else(|| panic!("trace id {trace_id} lacks the api-- prefix"));
    let parsed = uuid::Uuid::parse_str(uuid).unwrap_or_else(|e| panic!("trace id {trace_id}: {e}"));
    assert_eq!(parsed.get_version(), Some(uuid::Version::Random), "trace id {trace_id} is not a v4 UUID");
    assert_eq!(parsed.hyphenated().to_string(), uuid, "trace id {trace_id} is not in the hyphenated form");
}

/// Checks a problem answer completely (docs/contract/rest.md §8) and returns its body.
pub async fn assert_problem(response: Response, status: u16, code: u64, instance: &str) -> Json {
    assert_eq!(response.status().as_u16(), status, "status of {instance}");
    assert_eq!(content_type(&response), "application/problem+json");
    let trace_header = header(&response, "x-trace-id").expect("an X-Trace-Id header");
    let body: Json = response.json().await.expect("a JSON problem body");
    assert_problem_body(&body, status, code, instance, &trace_header);
    body
}

/// Checks the fields of a problem body.
pub fn assert_problem_body(body: &Json, status: u16, code: u64, instance: &str, trace_header: &str) {
    let reason = reason(status);
    assert_eq!(body["type"], reason, "{body}");
    assert_eq!(body["title"], format!("{reason} Error"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["instance"], instance, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert!(body["details"].is_object(), "{body}");
    assert_eq!(body["traceId"], trace_header, "{body}");
    assert_trace_id(trace_header);
    let keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["code", "detail", "details", "instance", "status", "title", "traceId", "type"], "{body}");
}

/// Checks a 400 problem naming `field` in its details.
/// Asserts that an ingest at `path` of `[good, bad]` is refused for `bad`'s `field` with `code`,
/// naming the row: index 1 as a JSON array, and as NDJSON with a blank line between, index 1 and
/// line 3.
pub async fn assert_row_refused(app: &super::TestApp, path: &str, good: &Json, bad: &Json, code: u64, field: &str) {
    let batch = serde_json::json!([good, bad]);
    let response = app.request(reqwest::Method::POST, path).json(&batch).send().await.unwrap();
    let problem = assert_invalid(response, code, path, field).await;
    assert_eq!(problem["details"]["index"], 1, "{problem}");
    let ndjson = format!("{good}\n\n{bad}\n");
    let response = app
        .request(reqwest::Method::POST, path)
        .header("Content-Type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    let problem = assert_invalid(response, code, path, field).await;
    assert_eq!(
        (&problem["details"]["index"], &problem["details"]["line"]),
        (&Json::from(1), &Json::from(3)),
        "{problem}"
    );
}

pub async fn assert_invalid(response: Response, code: u64, instance: &str, field: &str) -> Json {
    let body = assert_problem(response, 400, code, instance).await;
    assert_eq!(body["details"]["field"], field, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(field.rsplit('.').next().unwrap_or(field)), "the detail names {field}: {body}");
    body
}
