//! The caller's API keys (docs/contract/rest.md §5).

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, TestApp, assert_invalid, assert_problem, content_type, header, on_both_engines, record, spawn_app,
    spawn_app_on,
};

const PATH: &str = "/new/v2.0/users/me/apikeys";

async fn list_keys(app: &TestApp) -> Json {
    let response = app.get_accepting(PATH, "application/json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn a_key_is_shown_once_and_listed_without_its_secret() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, PATH)
        .header("Accept", "application/json")
        .json(&json!({"name": "reporting"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(content_type(&response), "application/json");
    let created: Json = response.json().await.expect("JSON");
    let mut keys: Vec<&str> = created.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["_id", "apiKey", "createdAt", "name"]);
    assert_eq!(created["name"], "reporting");
    let secret = created["apiKey"].as_str().expect("an apiKey");
    assert!(secret.len() >= 32, "{secret}");

    let response = app.get(PATH).header("Accept", "application/json").send().await.expect("an answer");
    let text = response.text().await.expect("text");
    assert!(!text.contains(secret), "the list shows a secret: {text}");
    assert!(!text.contains(&app.api_key), "the list shows a secret: {text}");
    let list: Json = serde_json::from_str(&text).expect("JSON");
    assert_eq!(list["total"], 2);
    let items = list["items"].as_array().expect("items");
    for item in items {
        assert!(item.get("apiKey").is_none(), "{item}");
    }
    let listed = items.iter().find(|k| k["_id"] == created["_id"]).expect("the new key is listed");
    assert_eq!(listed["name"], "reporting");
    assert_eq!(listed["createdAt"], created["createdAt"]);

    let response = app.anonymous(Method::GET, PATH).header("X-API-Key", secret).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_key_leaves_the_list() {
    let app = spawn_app().await;
    let created: Json = app
        .request(Method::POST, PATH)
        .header("Accept", "application/json")
        .json(&json!({"name": "temporary"}))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let path = format!("{PATH}/{}", created["_id"].as_str().expect("an _id"));
    let response = app.request(Method::DELETE, &path).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let list = list_keys(&app).await;
    assert_eq!(list["total"], 1);
    assert!(list["items"].as_array().expect("items").iter().all(|k| k["_id"] != created["_id"]));
    assert_problem(app.request(Method::DELETE, &path).send().await.expect("an answer"), 404, 1002, &path).await;
}

#[tokio::test]
async fn revoking_an_unknown_key_is_not_found() {
    let app = spawn_app().await;
    for id in ["5f0c6bc4ad4f8b0011b2e0e1", "not-an-id"] {
        let path = format!("{PATH}/{id}");
        let response = app.request(Method::DELETE, &path).send().await.expect("an answer");
        assert_problem(response, 404, 1002, &path).await;
    }
    assert_eq!(list_keys(&app).await["total"], 1);
}

#[tokio::test]
async fn a_key_needs_a_name() {
    let app = spawn_app().await;
    let post = |body: Json| app.request(Method::POST, PATH).json(&body).send();
    assert_invalid(post(json!({})).await.expect("an answer"), 1000, PATH, "name").await;
    assert_invalid(post(json!({"name": 7})).await.expect("an answer"), 1005, PATH, "name").await;
    assert_invalid(post(json!({"name": "k", "roles": ["admin"]})).await.expect("an answer"), 1005, PATH, "roles").await;
    let response = app.request(Method::POST, PATH).send().await.expect("an answer");
    let body = assert_problem(response, 400, 1000, PATH).await;
    assert_eq!(body["detail"], "Validation failed. Missing payload.");
    assert_eq!(list_keys(&app).await["total"], 1);
    let response = app.get(PATH).send().await.expect("an answer");
    assert!(header(&response, "x-trace-id").is_some());
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_even_right_after_use() {
    let app = spawn_app().await;
    let created: Json = app
        .request(Method::POST, PATH)
        .header("Accept", "application/json")
        .json(&json!({"name": "busy"}))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let secret = created["apiKey"].as_str().expect("an apiKey");
    // Used a few times, so that the node remembers who the key acts for.
    for _ in 0..3 {
        let response = app.anonymous(Method::GET, PATH).header("X-API-Key", secret).send().await.expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let path = format!("{PATH}/{}", created["_id"].as_str().expect("an _id"));
    let response = app.request(Method::DELETE, &path).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.anonymous(Method::GET, PATH).header("X-API-Key", secret).send().await.expect("an answer");
    assert_problem(response, 401, 401, PATH).await;
}

/// A key used for updates is remembered by the node; revoking it must still refuse the very
/// next update, and that update must change nothing.
async fn a_revoked_key_is_refused_on_the_very_next_update(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "i")]).await;
    let created: Json = app
        .request(Method::POST, PATH)
        .header("Accept", "application/json")
        .json(&json!({"name": "crm"}))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let secret = created["apiKey"].as_str().expect("an apiKey");
    let update = |rating: u32| {
        app.with_key(Method::PATCH, "/new/v2.0/analytics", secret)
            .json(&json!({"projectId": project, "contactId": "c", "properties": {"rating": rating}}))
            .send()
    };
    for rating in [1, 2] {
        let response = update(rating).await.expect("an answer");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&response, "x-matched-records").as_deref(), Some("1"));
    }

    let path = format!("{PATH}/{}", created["_id"].as_str().expect("an _id"));
    assert_eq!(app.request(Method::DELETE, &path).send().await.expect("an answer").status(), StatusCode::NO_CONTENT);
    let body = assert_problem(update(3).await.expect("an answer"), 401, 401, "/new/v2.0/analytics").await;
    assert_eq!(body["detail"], "The X-API-Key header does not hold a valid credential.");
    assert_eq!(app.record_by_input(&project, "i").await["rating"], 2, "the refused update changed the record");
}

on_both_engines!(a_revoked_key_is_refused_on_the_very_next_update);
