//! Project membership (docs/contract/rest.md §5).

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, assert_invalid, assert_problem, header, on_both_engines, record, spawn_app, spawn_app_on,
};

async fn members_are_added_replaced_and_removed(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let members = format!("/new/v2.0/projects/{project}/members");
    let user = app.user("").await;
    let path = format!("/new/v2.0/projects/{project}");
    assert_problem(app.with_key(Method::GET, &path, &user.api_key).send().await.unwrap(), 404, 1002, &path).await;

    let add = |roles: Json| {
        app.request(Method::POST, &members)
            .header("Accept", "application/json")
            .json(&json!({"userId": user.id, "roles": roles}))
            .send()
    };
    let response = add(json!(["basic"])).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Json = response.json().await.unwrap();
    assert_eq!(body, json!({"projectId": project, "userId": user.id, "roles": ["basic"]}));
    assert_eq!(app.with_key(Method::GET, &path, &user.api_key).send().await.unwrap().status(), StatusCode::OK);
    let rename = |key: &str| app.with_key(Method::PATCH, &path, key).json(&json!({"name": "renamed"})).send();
    assert_problem(rename(&user.api_key).await.unwrap(), 403, 403, &path).await;

    let response = add(json!(["projectAdmin"])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "replaced");
    assert_eq!(rename(&user.api_key).await.unwrap().status(), StatusCode::OK);
    let listed: Json = app.get_accepting(&members, "application/json").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([{"projectId": project, "userId": user.id, "roles": ["projectAdmin"]}]));

    // A project admin manages the project's members themselves.
    let colleague = app.user("").await;
    let response = app
        .with_key(Method::POST, &members, &user.api_key)
        .json(&json!({"userId": colleague.id, "roles": ["analytics"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let remove = format!("{members}/{}", user.id);
    assert_eq!(app.request(Method::DELETE, &remove).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(app.request(Method::DELETE, &remove).send().await.unwrap(), 404, 1002, &remove).await;
    assert_problem(app.with_key(Method::GET, &path, &user.api_key).send().await.unwrap(), 404, 1002, &path).await;
}

/// A member's project access is remembered by the node; removing the member must still refuse
/// their very next update in that project, and that update must change nothing.
async fn a_removed_member_is_refused_the_project_on_the_very_next_update(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "i")]).await;
    let user = app.user("").await;
    app.add_member(&project, &user.id, &["analytics"]).await;
    let update = |rating: u32| {
        app.with_key(Method::PATCH, "/new/v2.0/analytics", &user.api_key)
            .json(&json!({"projectId": project, "contactId": "c", "properties": {"rating": rating}}))
            .send()
    };
    for rating in [1, 2] {
        let response = update(rating).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&response, "x-matched-records").as_deref(), Some("1"));
    }

    let remove = format!("/new/v2.0/projects/{project}/members/{}", user.id);
    assert_eq!(app.request(Method::DELETE, &remove).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let body = assert_problem(update(3).await.unwrap(), 404, 1002, "/new/v2.0/analytics").await;
    assert_eq!(body["detail"], "The project was not found.");
    assert_eq!(app.record_by_input(&project, "i").await["rating"], 2, "the refused update changed the record");
    // The key itself still works: the user only lost the project.
    let response = app.with_key(Method::GET, "/new/v2.0/projects", &user.api_key).header("Accept", "application/json");
    let listed: Json = response.send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 0, "{listed}");
}

on_both_engines!(
    members_are_added_replaced_and_removed,
    a_removed_member_is_refused_the_project_on_the_very_next_update
);

#[tokio::test]
async fn bad_member_bodies_are_refused_by_field() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let members = format!("/new/v2.0/projects/{project}/members");
    let user = app.user("").await;
    let post = |body: Json| app.request(Method::POST, &members).json(&body).send();
    let cases = [
        (json!({"roles": ["basic"]}), 1000, "userId"),
        (json!({"userId": user.id}), 1000, "roles"),
        (json!({"userId": "nope", "roles": ["basic"]}), 1005, "userId"),
        (json!({"userId": 5, "roles": ["basic"]}), 1005, "userId"),
        (json!({"userId": user.id, "roles": []}), 1005, "roles"),
        (json!({"userId": user.id, "roles": ["admin"]}), 1005, "roles"),
        (json!({"userId": user.id, "roles": ["basic"], "extra": 1}), 1005, "extra"),
    ];
    for (body, code, field) in cases {
        assert_invalid(post(body).await.unwrap(), code, &members, field).await;
    }
    let unknown = post(json!({"userId": "5f0c6bc4ad4f8b0011b2e0e1", "roles": ["basic"]})).await.unwrap();
    let body = assert_problem(unknown, 404, 1002, &members).await;
    assert!(body["detail"].as_str().unwrap().contains("user"), "{body}");
    let listed: Json = app.get_accepting(&members, "application/json").await.json().await.unwrap();
    assert_eq!(listed["total"], 0, "nothing changed");
    let bad_path = format!("/new/v2.0/projects/{project}/members/not-an-id");
    assert_problem(app.request(Method::DELETE, &bad_path).send().await.unwrap(), 404, 1002, &bad_path).await;
}
