//! Health endpoints (docs/contract/operations.md): no credentials needed.

use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::helpers::{content_type, spawn_app};

#[tokio::test]
async fn live_answers_ok() {
    let app = spawn_app().await;
    for path in ["/health/live", "/new/v2.0/health/live", "/v2.0/health/live"] {
        let response = app.anonymous(Method::GET, path).send().await.expect("an answer");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(content_type(&response), "application/json");
        assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"status": "ok"}), "{path}");
    }
}

#[tokio::test]
async fn ready_answers_ready() {
    let app = spawn_app().await;
    for path in ["/health/ready", "/new/v2.0/health/ready", "/v2.0/health/ready"] {
        let response = app.anonymous(Method::GET, path).send().await.expect("an answer");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(content_type(&response), "application/json");
        let body: Json = response.json().await.expect("JSON");
        assert_eq!(body["status"], "ready", "{path}: {body}");
    }
}
