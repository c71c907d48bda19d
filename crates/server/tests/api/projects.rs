//! Projects (docs/contract/rest.md §5).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value as Json, json};

use parley_store::on_both_engines;
use parley_store::testing::Engine;

use crate::helpers::{TestApp, assert_invalid, assert_problem, content_type, header, record, spawn_app, spawn_app_on};

const PATH: &str = "/new/v2.0/projects";

fn default_settings() -> Json {
    json!({"collectAnalytics": true, "maskSensitive": false, "maskIp": false, "retentionDays": 365,
           "collectConversations": true, "transcriptRetentionDays": 0, "ratingScale": "binary"})
}

async fn json_of(response: Response, status: StatusCode) -> Json {
    assert_eq!(response.status(), status);
    assert_eq!(content_type(&response), "application/json");
    response.json().await.expect("JSON")
}

async fn read(app: &TestApp, id: &str) -> Json {
    json_of(app.get_accepting(&format!("{PATH}/{id}"), "application/json").await, StatusCode::OK).await
}

async fn patch(app: &TestApp, id: &str, body: Json) -> Response {
    app.request(Method::PATCH, &format!("{PATH}/{id}"))
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("an answer")
}

#[tokio::test]
async fn a_project_is_created_and_read_back() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, PATH)
        .header("Accept", "application/json")
        .json(&json!({"name": "Support bot"}))
        .send()
        .await
        .expect("an answer");
    let location = header(&response, "location").expect("a Location header");
    let created = json_of(response, StatusCode::CREATED).await;
    let id = created["_id"].as_str().expect("an _id");
    assert!(id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{id}");
    assert_eq!(location, format!("{PATH}/{id}"));
    assert_eq!(created["name"], "Support bot");
    assert!(created["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");
    assert_eq!(created["settings"], default_settings());

    let fetched = json_of(app.get_accepting(&location, "application/json").await, StatusCode::OK).await;
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn projects_are_listed_with_a_total() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_project().await);
    }
    let list = json_of(app.get_accepting(PATH, "application/json").await, StatusCode::OK).await;
    assert_eq!(list["total"], 3);
    let mut listed: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["_id"].as_str().expect("an _id").to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    assert!(list.get("nextCursor").is_some() && list.get("previousCursor").is_some(), "{list}");

    let page = json_of(app.get_accepting(&format!("{PATH}?limit=2"), "application/json").await, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    assert_eq!(page["total"], 3);
}

#[tokio::test]
async fn patch_renames_and_merges_settings() {
    let app = spawn_app().await;
    let id = app.create_project().await;
    let created = read(&app, &id).await;

    let renamed = json_of(patch(&app, &id, json!({"name": "Renamed"})).await, StatusCode::OK).await;
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["settings"], default_settings());
    assert_eq!(renamed["createdAt"], created["createdAt"]);

    let masked = json_of(patch(&app, &id, json!({"settings": {"maskIp": true}})).await, StatusCode::OK).await;
    assert_eq!(
        masked["settings"],
        json!({"collectAnalytics": true, "maskSensitive": false, "maskIp": true, "retentionDays": 365,
               "collectConversations": true, "transcriptRetentionDays": 0, "ratingScale": "binary"})
    );
    let shorter = json!({"settings": {"transcriptRetentionDays": 30, "collectConversations": false}});
    let shorter = json_of(patch(&app, &id, shorter).await, StatusCode::OK).await;
    assert_eq!(
        (shorter["settings"]["transcriptRetentionDays"].clone(), shorter["settings"]["collectConversations"].clone()),
        (json!(30), json!(false))
    );
    let refused = patch(&app, &id, json!({"settings": {"transcriptRetentionDays": -1}})).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let refused = patch(&app, &id, json!({"settings": {"ratingScale": "five"}})).await;
    let body = assert_invalid(refused, 1005, &format!("{PATH}/{id}"), "settings.ratingScale").await;
    assert!(body["detail"].as_str().unwrap().contains("one of binary, ten"), "{body}");
    let ten = json_of(patch(&app, &id, json!({"settings": {"ratingScale": "ten"}})).await, StatusCode::OK).await;
    assert_eq!(ten["settings"]["ratingScale"], "ten");
    assert_eq!(masked["name"], "Renamed");

    let retained = json_of(patch(&app, &id, json!({"settings": {"retentionDays": 30}})).await, StatusCode::OK).await;
    let expected = json!({"collectAnalytics": true, "maskSensitive": false, "maskIp": true, "retentionDays": 30,
                          "collectConversations": false, "transcriptRetentionDays": 30, "ratingScale": "ten"});
    assert_eq!(retained["settings"], expected);
    let stored = read(&app, &id).await;
    assert_eq!(stored["settings"], expected);
    assert_eq!(stored["name"], "Renamed");

    let mut sent = record(&id, "c", "s", "i1");
    sent["ip"] = json!("192.0.2.7");
    app.ingest_new(&[sent]).await;
    let ip = app.record_by_input(&id, "i1").await["ip"].clone();
    assert_ne!(ip, "192.0.2.7", "maskIp keeps the address out of storage");
}

#[tokio::test]
async fn bad_project_changes_are_refused() {
    let app = spawn_app().await;
    let id = app.create_project().await;
    let before = read(&app, &id).await;
    let path = format!("{PATH}/{id}");
    let cases = [
        (json!({"settings": {"colour": "blue"}}), "settings.colour"),
        (json!({"settings": {"maskIp": "yes"}}), "settings.maskIp"),
        (json!({"settings": {"retentionDays": -1}}), "settings.retentionDays"),
        (json!({"settings": "strict"}), "settings"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"owner": "me"}), "owner"),
    ];
    for (body, field) in cases {
        assert_invalid(patch(&app, &id, body).await, 1005, &path, field).await;
    }
    let nothing = assert_problem(patch(&app, &id, json!({})).await, 400, 1000, &path).await;
    assert_eq!(
        nothing["detail"], "Validation failed. Name 'name', 'settings' or a property of the project's profile.",
        "{nothing}"
    );
    assert_eq!(read(&app, &id).await, before);
}

#[tokio::test]
async fn bad_new_projects_are_refused() {
    let app = spawn_app().await;
    let post = |body: Json| app.request(Method::POST, PATH).json(&body).send();
    assert_invalid(post(json!({})).await.expect("an answer"), 1000, PATH, "name").await;
    assert_invalid(post(json!({"name": "  "})).await.expect("an answer"), 1005, PATH, "name").await;
    assert_invalid(post(json!({"name": "x".repeat(201)})).await.expect("an answer"), 1005, PATH, "name").await;
    assert_invalid(
        post(json!({"name": "x", "settings": {"nope": 1}})).await.expect("an answer"),
        1005,
        PATH,
        "settings.nope",
    )
    .await;
    let list = json_of(app.get_accepting(PATH, "application/json").await, StatusCode::OK).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn a_deleted_project_and_its_records_are_gone() {
    let app = spawn_app().await;
    let id = app.create_project().await;
    let kept = app.create_project().await;
    app.ingest_new(&[record(&id, "c", "s", "i1"), record(&kept, "c", "s", "k1")]).await;
    let record_id = app.record_by_input(&id, "i1").await["id"].as_str().expect("an id").to_owned();
    let path = format!("{PATH}/{id}");
    assert_eq!(app.stored_record_count(&id).await, 1);

    let response = app.request(Method::DELETE, &path).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.expect("a body").is_empty());

    assert_problem(app.get(&path).send().await.expect("an answer"), 404, 1002, &path).await;
    let record_path = format!("/new/v2.0/analytics/{record_id}");
    assert_problem(app.get(&record_path).send().await.expect("an answer"), 404, 1002, &record_path).await;
    let response = app.get("/new/v2.0/analytics").query(&[("projectId", &id)]).send().await.expect("an answer");
    assert_problem(response, 404, 1002, "/new/v2.0/analytics").await;
    assert_problem(app.request(Method::DELETE, &path).send().await.expect("an answer"), 404, 1002, &path).await;

    assert_eq!(app.stored_record_count(&id).await, 0, "the project's records are deleted with it");
    assert_eq!(app.stored_record_count(&kept).await, 1);
    assert_eq!(app.list(&kept, &[]).await["total"], 1);
    let list = json_of(app.get_accepting(PATH, "application/json").await, StatusCode::OK).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["_id"], kept);
}

#[tokio::test]
async fn unknown_projects_are_not_found() {
    let app = spawn_app().await;
    for id in ["5f0c6bc4ad4f8b0011b2e0e1", "nope"] {
        let path = format!("{PATH}/{id}");
        assert_problem(app.get(&path).send().await.expect("an answer"), 404, 1002, &path).await;
        assert_problem(patch(&app, id, json!({"name": "x"})).await, 404, 1002, &path).await;
        assert_problem(app.request(Method::DELETE, &path).send().await.expect("an answer"), 404, 1002, &path).await;
    }
}

#[tokio::test]
async fn masking_switched_on_applies_to_the_very_next_ingest() {
    let app = spawn_app().await;
    let id = app.create_project().await;
    let mut sent = record(&id, "c", "s", "before");
    sent["ip"] = json!("192.0.2.7");
    app.ingest_new(&[sent.clone()]).await;
    assert_eq!(app.record_by_input(&id, "before").await["ip"], "192.0.2.7");

    json_of(patch(&app, &id, json!({"settings": {"maskIp": true}})).await, StatusCode::OK).await;
    sent["inputId"] = json!("after");
    app.ingest_new(&[sent]).await;
    assert_ne!(app.record_by_input(&id, "after").await["ip"], "192.0.2.7", "the node kept the old settings");
}

on_both_engines!(projects_take_what_the_reference_sdk_sends, bad_profile_properties_are_refused);

/// `createProject({name, locale, color, handoverConfiguration})` as the reference SDK sends it: every
/// property is stored and returned, `PATCH` changes one and `null` clears one, and the others stay.
async fn projects_take_what_the_reference_sdk_sends(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let handover = json!({"provider": "none", "queues": [{"name": "first line", "weight": 2}], "note": null});
    let sent = json!({"name": "SDK bot", "locale": "en-US", "color": "#3f51b5", "handoverConfiguration": handover});
    let response = app
        .request(Method::POST, PATH)
        .header("Accept", "application/json")
        .json(&sent)
        .send()
        .await
        .expect("an answer");
    let created = json_of(response, StatusCode::CREATED).await;
    let id = created["_id"].as_str().expect("an _id").to_owned();
    let expected = json!({
        "_id": id,
        "name": "SDK bot",
        "settings": default_settings(),
        "locale": "en-US",
        "color": "#3f51b5",
        "description": null,
        "handoverConfiguration": handover,
        "createdAt": created["createdAt"],
        "lastChanged": created["createdAt"],
        "updatedAt": created["createdAt"],
    });
    assert_eq!(created, expected);
    assert_eq!(read(&app, &id).await, expected);

    let changed = json_of(
        patch(&app, &id, json!({"locale": "de-DE", "color": null, "description": "Answers billing"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["locale"], "de-DE");
    assert_eq!(changed["color"], Json::Null);
    assert_eq!(changed["description"], "Answers billing");
    assert_eq!(changed["handoverConfiguration"], handover, "what a change does not name stays");
    assert_eq!(changed["name"], "SDK bot");
    assert_eq!(changed["lastChanged"], changed["updatedAt"]);
    assert_ne!(changed["lastChanged"], created["lastChanged"]);
    assert_eq!(read(&app, &id).await, changed);

    let csv = app.get_accepting(&format!("{PATH}/{id}"), "text/csv").await.text().await.expect("CSV");
    let header = csv.lines().next().expect("a header row");
    assert_eq!(
        header,
        "_id,name,settings,locale,color,description,handoverConfiguration,createdAt,lastChanged,updatedAt"
    );
}

async fn bad_profile_properties_are_refused(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let id = app.create_project().await;
    let before = read(&app, &id).await;
    let path = format!("{PATH}/{id}");
    let cases = [
        (json!({"locale": 7}), "locale"),
        (json!({"locale": ""}), "locale"),
        (json!({"locale": "x".repeat(36)}), "locale"),
        (json!({"color": ["blue"]}), "color"),
        (json!({"description": "x".repeat(2001)}), "description"),
        (json!({"description": "a\u{0}b"}), "description"),
        (json!({"handoverConfiguration": "none"}), "handoverConfiguration"),
        (json!({"handoverConfiguration": {"x": "y".repeat(16 * 1024)}}), "handoverConfiguration"),
        (json!({"colour": "blue"}), "colour"),
    ];
    for (body, field) in cases {
        assert_invalid(patch(&app, &id, body.clone()).await, 1005, &path, field).await;
        let mut new = body;
        new["name"] = json!("refused");
        let response = app.request(Method::POST, PATH).json(&new).send().await.expect("an answer");
        assert_invalid(response, 1005, PATH, field).await;
    }
    assert_eq!(read(&app, &id).await, before, "a refused change changes nothing");
    let list = json_of(app.get_accepting(PATH, "application/json").await, StatusCode::OK).await;
    assert_eq!(list["total"], 1, "a refused project is not created");
}
