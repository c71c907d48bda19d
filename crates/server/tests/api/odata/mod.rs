//! The OData endpoint (docs/contract/odata.md): its documents, every query option, paging, errors and access, on
//! `Analytics` and on the `Conversations` and `Sessions` sets, a property test that no query string gets a server
//! error, and a real OData client.

mod client;
mod collections;
mod conversation_rows;
mod expressions;
mod formats;
mod fuzz;
mod queries;

use reqwest::Response;
use serde_json::Value as Json;

use crate::helpers::{Engine, TestApp, record, spawn_app_with};

/// A server on `engine` without rate limits: these tests send many requests.
async fn spawn_unlimited(engine: Engine) -> TestApp {
    spawn_app_with(engine, |config| config.rate_limit_per_minute = 0).await
}

impl TestApp {
    /// A GET with `key` in the `apikey` header, where OData clients send it.
    async fn odata_get_as(&self, key: &str, path: &str) -> Response {
        let request = self.client.get(self.url(path)).header("apikey", key);
        request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// A GET as the admin, the key in the `apikey` header.
    async fn odata_get(&self, path: &str) -> Response {
        self.odata_get_as(&self.api_key, path).await
    }

    /// A GET of an OData answer, which must be 200 JSON.
    async fn odata_json(&self, path: &str) -> Json {
        let response = self.odata_get(path).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }
}

/// A record of `project` numbered `n`; `fields` add to or override the defaults.
fn numbered_record(project: &str, n: usize, fields: Json) -> Json {
    let mut record = record(project, &format!("c{}", n % 7), &format!("s{}", n % 11), &format!("i{n:05}"));
    for (name, value) in fields.as_object().unwrap() {
        record[name] = value.clone();
    }
    record
}

/// Percent-encodes everything but unreserved characters, as careful clients do.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks an OData error answer (the error format of docs/contract/odata.md, and nothing else in
/// the body) and returns its `error` object.
async fn odata_error(response: reqwest::Response, status: u16) -> Json {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json;odata.metadata=minimal");
    assert_eq!(response.headers()["odata-version"], "4.0");
    let body: Json = response.json().await.unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{body}");
    let error = body["error"].clone();
    assert!(error["code"].is_string() && error["message"].is_string(), "{body}");
    error
}
