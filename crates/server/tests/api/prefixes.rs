//! Every route answers the same under `/new/v2.0` and `/v2.0` (docs/contract/rest.md, introduction).

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{assert_invalid, header, record, spawn_app};

#[tokio::test]
async fn both_prefixes_list_the_same_records() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "i1"), record(&project, "c", "s", "i2")]).await;
    let mut bodies = Vec::new();
    for prefix in ["/new/v2.0", "/v2.0"] {
        let path = format!("{prefix}/analytics?projectId={project}");
        let response = app.get_accepting(&path, "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Json = response.json().await.expect("JSON");
        assert_eq!(body["total"], 2);
        bodies.push(body);

        let hal: Json = app.get_accepting(&path, "application/hal+json").await.json().await.expect("JSON");
        assert_eq!(hal["_links"]["self"]["href"], path);
        let id = hal["_embedded"]["items"][0]["id"].as_str().expect("an id");
        assert_eq!(hal["_embedded"]["items"][0]["_links"]["self"]["href"], format!("{prefix}/analytics/{id}"));
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn both_prefixes_update_records() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "i1")]).await;
    for (prefix, value) in [("/v2.0", "old prefix"), ("/new/v2.0", "new prefix")] {
        let response = app
            .request(Method::PATCH, &format!("{prefix}/analytics"))
            .json(&json!({"projectId": project, "contactId": "c", "properties": {"custom1": value}}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&response, "x-matched-records").as_deref(), Some("1"));
        assert_eq!(app.record_by_input(&project, "i1").await["custom1"], value);
    }
}

#[tokio::test]
async fn both_prefixes_ingest_and_refuse_alike() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    for (prefix, input) in [("/v2.0", "old"), ("/new/v2.0", "new")] {
        let response = app
            .request(Method::POST, &format!("{prefix}/analytics/records"))
            .header("Accept", "application/json")
            .json(&[record(&project, "c", "s", input)])
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"inserted": 1, "duplicates": 0, "dropped": 0}));

        let path = format!("{prefix}/analytics");
        let response = app.get(&path).send().await.expect("an answer");
        assert_invalid(response, 1000, &path, "projectId").await;
    }
    assert_eq!(app.list(&project, &[]).await["total"], 2);
}
