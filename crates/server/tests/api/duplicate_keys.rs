//! A key sent twice in one JSON object is refused, never read as its last value: in every JSON
//! body, at any depth, with the key named (docs/contract/rest.md §8).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{TestApp, assert_invalid, record, spawn_app};

/// Sends `body` as it is written, since a client library would not send a key twice.
async fn send_raw(app: &TestApp, method: Method, path: &str, media_type: &str, body: impl Into<String>) -> Response {
    let body: String = body.into();
    app.request(method, path).header("Content-Type", media_type).body(body).send().await.expect("an answer")
}

/// The erasure that motivated the rule: `contactIds: null` after a list would erase every contact
/// of the project. It is refused, and nothing is erased.
#[tokio::test]
async fn an_erasure_with_a_key_twice_is_refused_and_erases_nothing() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "x", "s", "i1"), record(&project, "y", "s", "i2")]).await;
    let path = format!("/new/v2.0/analytics/{project}");
    let response =
        send_raw(&app, Method::DELETE, &path, "application/json", r#"{"contactIds":["x"],"contactIds":null}"#).await;
    let body = assert_invalid(response, 1005, &path, "contactIds").await;
    assert_eq!(
        body["detail"], "Validation failed. The key 'contactIds' appears twice in the body (line 1, column 32).",
        "{body}"
    );
    assert_eq!(app.records(&project, None).await.len(), 2, "nothing was erased");
}

#[tokio::test]
async fn updates_and_projects_with_a_key_twice_are_refused_naming_the_path() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "i1")]).await;
    let before = app.record_by_input(&project, "i1").await;
    let update =
        format!(r#"{{"projectId":"{project}","contactId":"c","properties":{{"rating":1,"custom1":"a","rating":5}}}}"#);
    let response = send_raw(&app, Method::PATCH, "/new/v2.0/analytics", "application/json", update).await;
    assert_invalid(response, 1005, "/new/v2.0/analytics", "properties.rating").await;
    assert_eq!(app.record_by_input(&project, "i1").await, before, "the record is unchanged");

    let response = send_raw(
        &app,
        Method::POST,
        "/new/v2.0/projects",
        "application/json",
        r#"{"name":"a","settings":{"maskIp":true},"name":"b"}"#,
    )
    .await;
    assert_invalid(response, 1005, "/new/v2.0/projects", "name").await;
}

#[tokio::test]
async fn an_ingest_with_a_key_twice_stores_nothing() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let first = record(&project, "c", "s", "i1").to_string();
    let twice = format!(r#"{{"projectId":"{project}","contactId":"c","sessionId":"s","inputId":"i2","inputId":"i3"}}"#);

    let array = format!("[{first},{twice}]");
    let response = send_raw(&app, Method::POST, "/new/v2.0/analytics/records", "application/json", array).await;
    assert_invalid(response, 1005, "/new/v2.0/analytics/records", "inputId").await;

    let ndjson = format!("{first}\n{twice}\n");
    let response = send_raw(&app, Method::POST, "/new/v2.0/analytics/records", "application/x-ndjson", ndjson).await;
    let body = assert_invalid(response, 1005, "/new/v2.0/analytics/records", "inputId").await;
    assert_eq!(body["detail"], "Validation failed. Line 2: the key 'inputId' appears twice.", "{body}");
    assert_eq!((body["details"]["line"].clone(), body["details"]["index"].clone()), (json!(2), json!(1)), "{body}");
    assert_eq!(app.stored_record_count(&project).await, 0, "the batch is refused whole");
}

#[tokio::test]
async fn an_oauth2_json_body_with_a_key_twice_is_an_invalid_request() {
    let app = spawn_app().await;
    let response = app
        .anonymous(Method::POST, "/auth/oauth2/revoke")
        .header("Content-Type", "application/json")
        .body(r#"{"token":"a","token":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Json = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "The key 'token' appears twice in the body."})
    );
}
