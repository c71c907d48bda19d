//! Credentials (docs/contract/rest.md §6).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{Engine, RawResponse, TestApp, assert_problem, header, on_both_engines, spawn_app, spawn_app_on};

/// A project to read, and its path.
async fn readable(app: &TestApp) -> (String, String) {
    let project = app.create_project().await;
    let path = format!("/new/v2.0/projects/{project}");
    (project, path)
}

fn assert_raw_read(raw: &RawResponse, project: &str) {
    assert_eq!(raw.status, 200, "{}", String::from_utf8_lossy(&raw.body));
    assert_eq!(raw.json()["_id"], project);
}

async fn assert_read(response: Response, project: &str) {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Json = response.json().await.expect("JSON");
    assert_eq!(body["_id"], project);
}

/// Checks a 401 answer and returns its detail.
async fn assert_unauthorized(response: Response, instance: &str) -> String {
    assert_eq!(header(&response, "www-authenticate").as_deref(), Some("Bearer"));
    let body = assert_problem(response, 401, 401, instance).await;
    body["detail"].as_str().expect("a detail").to_owned()
}

#[tokio::test]
async fn the_api_key_header_works_in_any_spelling() {
    let app = spawn_app().await;
    let (project, path) = readable(&app).await;
    for name in ["X-API-Key", "x-api-key", "X-Api-Key", "X-API-KEY"] {
        let raw = app.raw("GET", &path, &[(name, &app.api_key), ("Accept", "application/json")], b"").await;
        assert_raw_read(&raw, &project);
    }
}

#[tokio::test]
async fn the_api_key_query_parameter_works() {
    let app = spawn_app().await;
    let (project, path) = readable(&app).await;
    let response =
        app.anonymous(Method::GET, &format!("{path}?api_key={}", app.api_key)).send().await.expect("an answer");
    assert_read(response, &project).await;
}

#[tokio::test]
async fn a_bearer_api_key_works() {
    let app = spawn_app().await;
    let (project, path) = readable(&app).await;
    let response = app
        .anonymous(Method::GET, &path)
        .header("Authorization", format!("Bearer {}", app.api_key))
        .send()
        .await
        .expect("an answer");
    assert_read(response, &project).await;
}

#[tokio::test]
async fn empty_values_count_as_absent() {
    let app = spawn_app().await;
    let (project, path) = readable(&app).await;
    let key = app.api_key.as_str();
    let with_empty_query = format!("{path}?api_key=");
    let with_key_query = format!("{path}?api_key={key}");
    let bearer = format!("Bearer {key}");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (&with_empty_query, vec![("X-API-Key", key)]),
        (&with_key_query, vec![("X-API-Key", "")]),
        (&with_empty_query, vec![("X-API-Key", ""), ("Authorization", &bearer)]),
        (&path, vec![("X-API-Key", key), ("Authorization", "")]),
        (&path, vec![("X-API-Key", key), ("Authorization", "Bearer ")]),
    ];
    for (target, headers) in cases {
        let raw = app.raw("GET", target, &headers, b"").await;
        assert_eq!(raw.status, 200, "{target} with {headers:?}: {}", String::from_utf8_lossy(&raw.body));
        assert_raw_read(&raw, &project);
    }
}

#[tokio::test]
async fn no_credential_is_unauthorized() {
    let app = spawn_app().await;
    let (_, path) = readable(&app).await;
    let response = app.anonymous(Method::GET, &path).send().await.expect("an answer");
    assert_unauthorized(response, &path).await;

    let response = app
        .anonymous(Method::GET, &format!("{path}?api_key="))
        .header("X-API-Key", "")
        .send()
        .await
        .expect("an answer");
    assert_unauthorized(response, &path).await;

    let response = app
        .anonymous(Method::PATCH, "/new/v2.0/analytics")
        .json(&json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "contactId": "c", "properties": {"rating": 1}}))
        .send()
        .await
        .expect("an answer");
    assert_unauthorized(response, "/new/v2.0/analytics").await;
}

#[tokio::test]
async fn an_invalid_header_key_is_named() {
    let app = spawn_app().await;
    let (_, path) = readable(&app).await;
    let wrong = "0".repeat(64);
    let response = app.anonymous(Method::GET, &path).header("X-API-Key", &wrong).send().await.expect("an answer");
    let detail = assert_unauthorized(response, &path).await;
    assert!(detail.contains("X-API-Key"), "{detail}");
    assert!(!detail.contains(&wrong), "the detail repeats the secret: {detail}");

    let response = app
        .anonymous(Method::GET, &format!("{path}?api_key={}", app.api_key))
        .header("X-API-Key", &wrong)
        .send()
        .await
        .expect("an answer");
    let detail = assert_unauthorized(response, &path).await;
    assert!(detail.contains("X-API-Key") && !detail.contains("api_key query"), "{detail}");
}

#[tokio::test]
async fn an_invalid_query_key_beside_a_valid_header_is_named() {
    let app = spawn_app().await;
    let (_, path) = readable(&app).await;
    let response = app.get(&format!("{path}?api_key=wrong-key")).send().await.expect("an answer");
    let detail = assert_unauthorized(response, &path).await;
    assert!(detail.contains("api_key"), "{detail}");
    assert!(!detail.contains("X-API-Key"), "{detail}");
}

#[tokio::test]
async fn an_invalid_bearer_beside_a_valid_header_is_named() {
    let app = spawn_app().await;
    let (_, path) = readable(&app).await;
    let response = app.get(&path).header("Authorization", "Bearer wrong-token").send().await.expect("an answer");
    let detail = assert_unauthorized(response, &path).await;
    assert!(detail.contains("Authorization"), "{detail}");
    assert!(!detail.contains("X-API-Key"), "{detail}");
}

/// Makes a second key for the admin and returns its id and secret.
async fn second_key(app: &TestApp) -> (String, String) {
    let response = app
        .request(Method::POST, "/new/v2.0/users/me/apikeys")
        .header("Accept", "application/json")
        .json(&json!({"name": "second"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Json = response.json().await.expect("JSON");
    (body["_id"].as_str().expect("an _id").to_owned(), body["apiKey"].as_str().expect("an apiKey").to_owned())
}

#[tokio::test]
async fn two_valid_keys_of_the_same_user_are_accepted_together() {
    let app = spawn_app().await;
    let (project, path) = readable(&app).await;
    let (_, second) = second_key(&app).await;
    assert_ne!(second, app.api_key);

    let response = app.get(&format!("{path}?api_key={second}")).send().await.expect("an answer");
    assert_read(response, &project).await;
    let response = app.get(&path).header("Authorization", format!("Bearer {second}")).send().await.expect("an answer");
    assert_read(response, &project).await;
    let response = app.anonymous(Method::GET, &path).header("X-API-Key", &second).send().await.expect("an answer");
    assert_read(response, &project).await;
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let app = spawn_app().await;
    let (project, path) = readable(&app).await;
    let (id, second) = second_key(&app).await;
    let response = app.anonymous(Method::GET, &path).header("X-API-Key", &second).send().await.expect("an answer");
    assert_read(response, &project).await;

    let revoke = format!("/new/v2.0/users/me/apikeys/{id}");
    let response = app.request(Method::DELETE, &revoke).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.expect("a body").is_empty());

    let response = app.anonymous(Method::GET, &path).header("X-API-Key", &second).send().await.expect("an answer");
    let detail = assert_unauthorized(response, &path).await;
    assert!(detail.contains("X-API-Key"), "{detail}");
    let response = app.get(&format!("{path}?api_key={second}")).send().await.expect("an answer");
    let detail = assert_unauthorized(response, &path).await;
    assert!(detail.contains("api_key"), "{detail}");

    let response = app.get(&path).send().await.expect("an answer");
    assert_read(response, &project).await;
}

/// Two nodes on one database, the second remembering keys for `access_cache_secs`: a key is
/// used on both to read a project, then revoked through the first. Returns the project and the
/// second node's answer to the key's next read.
async fn used_on_two_nodes_then_revoked_on_one(engine: Engine, access_cache_secs: u64) -> (String, Response) {
    let app = spawn_app_on(engine).await;
    let other = app.another_node(|config| config.access_cache_secs = access_cache_secs).await;
    let (project, path) = readable(&app).await;
    let (id, second) = second_key(&app).await;
    let read_on_other = || app.client.get(other.url(&path)).header("X-API-Key", &second).send();
    assert_read(read_on_other().await.expect("an answer"), &project).await;
    assert_read(app.with_key(Method::GET, &path, &second).send().await.expect("an answer"), &project).await;

    let revoke = format!("/new/v2.0/users/me/apikeys/{id}");
    assert_eq!(app.request(Method::DELETE, &revoke).send().await.expect("an answer").status(), StatusCode::NO_CONTENT);
    let detail =
        assert_unauthorized(app.with_key(Method::GET, &path, &second).send().await.expect("an answer"), &path).await;
    assert!(detail.contains("X-API-Key"), "{detail}");
    (project, read_on_other().await.expect("an answer"))
}

/// The documented bound: a node learns of a revocation made through another node only when
/// its remembered answer expires.
async fn another_node_honours_a_revoked_key_until_its_cache_expires(engine: Engine) {
    let (project, response) = used_on_two_nodes_then_revoked_on_one(engine, 3600).await;
    assert_read(response, &project).await;
}

/// With `access_cache_secs = 0` every node reads keys from the database, so a revocation through
/// one node acts on all of them at once.
async fn without_the_cache_another_node_refuses_a_revoked_key_at_once(engine: Engine) {
    let (_, response) = used_on_two_nodes_then_revoked_on_one(engine, 0).await;
    let instance = response.url().path().to_owned();
    let detail = assert_unauthorized(response, &instance).await;
    assert!(detail.contains("X-API-Key"), "{detail}");
}

on_both_engines!(
    another_node_honours_a_revoked_key_until_its_cache_expires,
    without_the_cache_another_node_refuses_a_revoked_key_at_once
);

/// Clients built for the reference product send `x-api-key` in lower case with
/// `Accept: application/json` and `Cache-Control: no-cache`.
#[tokio::test]
async fn reference_clients_requests_work_unchanged() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[crate::helpers::record(&project, "c1", "s1", "i1")]).await;
    let headers = [
        ("x-api-key", app.api_key.as_str()),
        ("Accept", "application/json"),
        ("Cache-Control", "no-cache"),
        ("Content-Type", "application/json"),
    ];
    let body = json!({"projectId": project, "contactId": "c1", "properties": {"rating": 9}}).to_string();
    let raw = app.raw("PATCH", "/new/v2.0/analytics", &headers, body.as_bytes()).await;
    assert_eq!(raw.status, 204, "{}", String::from_utf8_lossy(&raw.body));
    assert_eq!(raw.header("x-matched-records"), Some("1"));
    let raw = app.raw("GET", &format!("/new/v2.0/analytics?projectId={project}"), &headers[..3], b"").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(raw.json()["items"][0]["rating"], 9);
}
