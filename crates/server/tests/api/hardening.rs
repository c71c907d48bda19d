//! Inputs a hostile or careless client sends (rest.md §8–§9): lists beyond their bound, U+0000
//! anywhere a text reaches parley, and a credential header given twice. Each is refused with a
//! clear error on both engines, and nothing is stored.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{Engine, assert_invalid, on_both_engines, spawn_app_on};

on_both_engines!(
    lists_are_bounded_at_ingest_and_update,
    nul_is_refused_wherever_text_arrives,
    a_credential_header_given_twice_is_checked_twice,
);

async fn lists_are_bounded_at_ingest_and_update(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let goals = |n: usize| Json::Array((0..n).map(|i| json!(format!("goal-{i}"))).collect());
    let path = "/new/v2.0/analytics/records";
    let record = json!([{"projectId": project, "contactId": "c", "sessionId": "s", "inputId": "i",
                         "completedGoals": goals(101)}]);
    let response = app.request(Method::POST, path).json(&record).send().await.unwrap();
    let problem = assert_invalid(response, 1005, path, "completedGoals").await;
    assert_eq!(problem["detail"], "Validation failed. 'completedGoals' must hold at most 100 items.");
    app.ingest_new(&[json!({"projectId": project, "contactId": "c", "sessionId": "s", "inputId": "i",
                            "completedGoals": goals(100)})])
        .await;
    let update = json!({"projectId": project, "contactId": "c", "properties": {"trackedGoals": goals(101)}});
    let response = app.patch(&update).await;
    assert_invalid(response, 1005, "/new/v2.0/analytics", "properties.trackedGoals").await;
    let stored = app.records(&project, None).await;
    assert_eq!((stored.len(), stored[0]["completedGoals"].as_array().unwrap().len()), (1, 100));
    assert_eq!(stored[0]["trackedGoals"], Json::Null, "the refused update changed nothing");
}

async fn nul_is_refused_wherever_text_arrives(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let bodies = [
        ("/new/v2.0/projects".to_owned(), json!({"name": "bot\u{0}"}), "name"),
        ("/new/v2.0/users".to_owned(), json!({"email": "a\u{0}@example.com", "name": "A", "roles": []}), "email"),
        (
            format!("/new/v2.0/projects/{project}/goals"),
            json!({"name": "g", "steps": [{"name": "s\u{0}"}]}),
            "steps.name",
        ),
        ("/new/v2.0/users/me/apikeys".to_owned(), json!({"name": "\u{0}"}), "name"),
    ];
    for (path, body, field) in bodies {
        let response = app.request(Method::POST, &path).json(&body).send().await.unwrap();
        let problem = assert_invalid(response, 1005, &path, field).await;
        assert!(problem["detail"].as_str().unwrap().contains("NUL character"), "{problem}");
    }
    for query in [format!("projectId={project}&contactId=c%00"), format!("projectId={project}%00")] {
        let path = format!("/new/v2.0/analytics?{query}");
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let problem: Json = response.json().await.unwrap();
        assert_eq!(problem["code"], 1005, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("NUL character"), "{problem}");
    }
    // A credential in the query that holds NUL opens nothing: 401, from the credential check.
    let path = format!("/new/v2.0/projects?api_key={}%00", app.api_key);
    let response = app.anonymous(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    let problem: Json = response.json().await.unwrap();
    assert_eq!(problem["code"], 401, "{problem}");
    // The token endpoint, before any credential is checked.
    let response = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin@localhost\u{0}"),
            ("password", "x"),
            ("client_id", "default"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Json = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_request", "{answer}");
    // Nothing of it was kept.
    let (_, projects) = crate::helpers::call(&app, Method::GET, "/new/v2.0/projects", None).await;
    assert_eq!(projects["total"], 1, "{projects}");
}

async fn a_credential_header_given_twice_is_checked_twice(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let url = app.url("/new/v2.0/projects");
    let send = |keys: [&str; 2]| app.client.get(&url).header("X-API-Key", keys[0]).header("X-API-Key", keys[1]).send();
    let response = send([&app.api_key, "not-a-key"]).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the second key is not ignored");
    let response = send(["not-a-key", &app.api_key]).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = send([&app.api_key, &app.api_key]).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the same key twice is not ambiguous");
}

/// OData's absolute links come from the node's configuration, never from the request's `Host`.
#[tokio::test]
async fn links_ignore_the_host_a_request_names() {
    let app = crate::helpers::spawn_app().await;
    let response = app
        .get("/v2.4/Analytics?$top=1")
        .header("Host", "attacker.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    let body: Json = response.json().await.unwrap();
    let context = body["@odata.context"].as_str().unwrap();
    assert_eq!(context, format!("http://{}/v2.4/$metadata#Analytics", app.addr), "{body}");

    let behind = crate::helpers::spawn_app_with(Engine::Sqlite, |config| {
        config.public_url = Some("https://analytics.example.com/".into());
    })
    .await;
    let body: Json = behind.get("/v2.4/").send().await.unwrap().json().await.unwrap();
    assert_eq!(body["@odata.context"], "https://analytics.example.com/v2.4/$metadata", "{body}");
}
