//! `PATCH /new/v2.0/analytics` (docs/contract/rest.md §1).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, RECORD_FIELD_NAMES, TestApp, assert_invalid, assert_problem, full_record, header, on_both_engines, record,
    same_json, spawn_app_on,
};

const PATH: &str = "/new/v2.0/analytics";

/// The `properties` of the published example request.
fn published_properties() -> Json {
    json!({
        "state": "state",
        "mode": "mode",
        "userType": "user userType",
        "channel": "channel",
        "flowLanguage": "new flowLanguage",
        "intent": "new intent",
        "intentFlow": "new intentFlow",
        "intentScore": 0,
        "flowName": "new flowName",
        "inHandoverRequest": false,
        "inHandoverConversation": false,
        "localeName": "new localeName",
        "rating": 9,
        "ratingComment": "new ratingComment",
        "entrypointType": "new entrypointType",
        "endpointName": "new endpointName",
        "endpointUrlToken": "new endpointUrlToken",
        "handoverEscalations": 2,
        "snapshotName": "new snapshotName",
        "slots": "new slots",
        "custom1": "new custom1",
        "custom2": "new custom2",
        "custom3": "new custom3",
        "custom4": "new custom4",
        "custom5": "new custom5",
        "custom6": "new custom6",
        "custom7": "new custom7",
        "custom8": "new custom8",
        "custom9": "new custom9",
        "custom10": "new custom10"
    })
}

/// Asserts a successful update that matched `matched` records.
async fn assert_updated(response: reqwest::Response, matched: u64) {
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "x-matched-records").as_deref(), Some(matched.to_string().as_str()));
    assert_eq!(header(&response, "x-update-deferred"), None);
    assert!(response.bytes().await.expect("a body").is_empty());
}

async fn the_published_request_updates_every_property(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let sent = full_record(&project, "input-1");
    app.ingest_new(std::slice::from_ref(&sent)).await;
    let before = app.record_by_input(&project, "input-1").await;
    let properties = published_properties();
    assert_eq!(properties.as_object().map(|p| p.len()), Some(30));
    let body = json!({
        "contactId": sent["contactId"],
        "projectId": project,
        "sessionId": sent["sessionId"],
        "inputId": "input-1",
        "properties": properties,
    });

    let response = app
        .client
        .patch(app.url("/new/v2.0/analytics?api_key="))
        .header("Authorization", format!("Bearer {}", app.api_key))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &app.api_key)
        .body(body.to_string())
        .send()
        .await
        .expect("the request is answered");
    assert_updated(response, 1).await;

    let after = app.get_record(before["id"].as_str().expect("an id")).await;
    for (name, value) in properties.as_object().expect("an object") {
        assert!(same_json(&after[name], value), "{name}: stored {} but sent {value}", after[name]);
    }
    for name in RECORD_FIELD_NAMES {
        if properties.get(name).is_none() && name != "updatedAt" {
            assert_eq!(after[name], before[name], "{name} must not change");
        }
    }
}

/// Records of one contact across two sessions, another contact, and the same contact in another
/// project. Returns the two project ids.
async fn contact_fixture(app: &TestApp) -> (String, String) {
    let project = app.create_project().await;
    let other_project = app.create_project().await;
    app.ingest_new(&[
        record(&project, "c1", "s1", "i1"),
        record(&project, "c1", "s1", "i2"),
        record(&project, "c1", "s2", "i3"),
        record(&project, "c2", "s1", "i4"),
        record(&other_project, "c1", "s1", "i5"),
    ])
    .await;
    (project, other_project)
}

/// The value of `field` of each record of the projects, by inputId.
async fn values_of(app: &TestApp, projects: &[&str], field: &str) -> Vec<(String, Json)> {
    let mut values = Vec::new();
    for project in projects {
        for record in app.records(project, None).await {
            values.push((record["inputId"].as_str().expect("an inputId").to_owned(), record[field].clone()));
        }
    }
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values
}

fn expected(pairs: &[(&str, Json)]) -> Vec<(String, Json)> {
    pairs.iter().map(|(input, value)| ((*input).to_owned(), value.clone())).collect()
}

async fn without_a_session_every_record_of_the_contact_changes(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, other) = contact_fixture(&app).await;
    let response = app.patch(&json!({"projectId": project, "contactId": "c1", "properties": {"custom1": "all"}})).await;
    assert_updated(response, 3).await;
    let all = json!("all");
    assert_eq!(
        values_of(&app, &[&project, &other], "custom1").await,
        expected(&[("i1", all.clone()), ("i2", all.clone()), ("i3", all), ("i4", Json::Null), ("i5", Json::Null)])
    );
}

async fn a_session_narrows_the_update_to_that_session(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, other) = contact_fixture(&app).await;
    let response = app
        .patch(&json!({"projectId": project, "contactId": "c1", "sessionId": "s1", "properties": {"custom2": "s1"}}))
        .await;
    assert_updated(response, 2).await;
    let s1 = json!("s1");
    assert_eq!(
        values_of(&app, &[&project, &other], "custom2").await,
        expected(&[("i1", s1.clone()), ("i2", s1), ("i3", Json::Null), ("i4", Json::Null), ("i5", Json::Null)])
    );
}

async fn an_input_narrows_the_update_to_that_input(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, other) = contact_fixture(&app).await;
    let response = app
        .patch(&json!({
            "projectId": project, "contactId": "c1", "sessionId": "s1", "inputId": "i2",
            "properties": {"custom3": "only i2"}
        }))
        .await;
    assert_updated(response, 1).await;
    let response = app
        .patch(&json!({"projectId": project, "contactId": "c1", "inputId": "i3", "properties": {"custom3": "only i3"}}))
        .await;
    assert_updated(response, 1).await;
    assert_eq!(
        values_of(&app, &[&project, &other], "custom3").await,
        expected(&[
            ("i1", Json::Null),
            ("i2", json!("only i2")),
            ("i3", json!("only i3")),
            ("i4", Json::Null),
            ("i5", Json::Null)
        ])
    );
}

async fn only_the_named_properties_change(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let sent = full_record(&project, "input-1");
    app.ingest_new(std::slice::from_ref(&sent)).await;
    let before = app.record_by_input(&project, "input-1").await;
    // updatedAt has millisecond resolution; let the clock move past the ingest.
    tokio::time::sleep(Duration::from_millis(5)).await;

    let response = app
        .patch(&json!({
            "projectId": project, "contactId": sent["contactId"],
            "properties": {"rating": -1, "custom2": "changed", "trackedGoals": ["renewal"]}
        }))
        .await;
    assert_updated(response, 1).await;

    let after = app.get_record(before["id"].as_str().expect("an id")).await;
    for name in RECORD_FIELD_NAMES {
        match name {
            "rating" => assert!(same_json(&after[name], &json!(-1)), "{}", after[name]),
            "custom2" => assert_eq!(after[name], "changed"),
            "trackedGoals" => assert_eq!(after[name], json!(["renewal"])),
            "updatedAt" => {
                let (old, new) = (before[name].as_str().expect("a time"), after[name].as_str().expect("a time"));
                assert!(new > old, "updatedAt {new} must be later than {old}");
            }
            _ => assert_eq!(after[name], before[name], "{name} must not change"),
        }
    }
    assert_eq!(after["timestamp"], "2024-05-01T12:00:00.123Z");
}

async fn null_clears_a_property(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let sent = full_record(&project, "input-1");
    app.ingest_new(std::slice::from_ref(&sent)).await;
    let cleared =
        ["custom1", "trackedGoals", "rating", "slots", "inHandoverConversation", "handoverEscalations", "intent"];
    let properties: serde_json::Map<String, Json> = cleared.iter().map(|n| ((*n).to_owned(), Json::Null)).collect();

    let response =
        app.patch(&json!({"projectId": project, "contactId": sent["contactId"], "properties": properties})).await;
    assert_updated(response, 1).await;

    let after = app.record_by_input(&project, "input-1").await;
    for name in cleared {
        assert_eq!(after[name], Json::Null, "{name} is cleared");
        assert_ne!(sent[name], Json::Null, "{name} was set before");
    }
    assert_eq!(after["custom2"], "c2");
    assert_eq!(after["intentFlow"], "Booking");
}

async fn an_update_that_matches_nothing_answers_zero(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, other) = contact_fixture(&app).await;
    let before = values_of(&app, &[&project, &other], "custom1").await;

    let response =
        app.patch(&json!({"projectId": project, "contactId": "nobody", "properties": {"custom1": "x"}})).await;
    assert_updated(response, 0).await;
    let response = app
        .patch(&json!({"projectId": project, "contactId": "c1", "sessionId": "s9", "properties": {"custom1": "x"}}))
        .await;
    assert_updated(response, 0).await;
    let response = app
        .patch(&json!({"projectId": project, "contactId": "c2", "sessionId": "s2", "properties": {"custom1": "x"}}))
        .await;
    assert_updated(response, 0).await;

    assert_eq!(values_of(&app, &[&project, &other], "custom1").await, before);
}

/// A project with one full record; returns the project and the record as stored.
async fn stored_record(app: &TestApp) -> (String, Json) {
    let project = app.create_project().await;
    app.ingest_new(&[full_record(&project, "input-1")]).await;
    let stored = app.record_by_input(&project, "input-1").await;
    (project, stored)
}

async fn assert_unchanged(app: &TestApp, stored: &Json) {
    let now = app.get_record(stored["id"].as_str().expect("an id")).await;
    assert_eq!(&now, stored, "a refused update must leave the record as it was");
}

async fn an_empty_or_absent_body_is_a_missing_payload(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let cases = [
        app.request(Method::PATCH, PATH).header("Content-Type", "application/json").body(""),
        app.request(Method::PATCH, PATH).header("Content-Type", "application/json").body("  \n"),
        app.request(Method::PATCH, PATH),
    ];
    for request in cases {
        let response = request.send().await.expect("the request is answered");
        let body = assert_problem(response, 400, 1000, PATH).await;
        assert_eq!(body["detail"], "Validation failed. Missing payload.");
        assert_eq!(body["details"], json!({}));
    }
}

async fn a_missing_argument_is_named(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, stored) = stored_record(&app).await;
    let complete = json!({"projectId": project, "contactId": stored["contactId"], "properties": {"rating": 3}});
    for field in ["projectId", "contactId", "properties"] {
        let mut body = complete.clone();
        body.as_object_mut().expect("an object").remove(field);
        assert_invalid(app.patch(&body).await, 1000, PATH, field).await;
        let mut body = complete.clone();
        body[field] = Json::Null;
        assert_invalid(app.patch(&body).await, 1000, PATH, field).await;
    }
    let body = json!({"projectId": project, "contactId": stored["contactId"], "properties": {}});
    assert_invalid(app.patch(&body).await, 1000, PATH, "properties").await;
    assert_unchanged(&app, &stored).await;
}

async fn an_invalid_argument_is_named(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, stored) = stored_record(&app).await;
    let contact = stored["contactId"].clone();
    let with = |properties: Json| json!({"projectId": project, "contactId": contact, "properties": properties});
    let cases: Vec<(Json, &str)> = vec![
        (json!({"projectId": "xyz", "contactId": contact, "properties": {"rating": 1}}), "projectId"),
        (json!({"projectId": project.to_uppercase(), "contactId": contact, "properties": {"rating": 1}}), "projectId"),
        (json!({"projectId": 5, "contactId": contact, "properties": {"rating": 1}}), "projectId"),
        (json!({"projectId": project, "contactId": 5, "properties": {"rating": 1}}), "contactId"),
        (json!({"projectId": project, "contactId": contact, "sessionId": 5, "properties": {"rating": 1}}), "sessionId"),
        (json!({"projectId": project, "contactId": contact, "properties": "rating"}), "properties"),
        (json!({"projectId": project, "contactId": contact, "colour": "red", "properties": {"rating": 1}}), "colour"),
        (with(json!({"ratting": 1})), "properties.ratting"),
        (with(json!({"inputText": "x"})), "properties.inputText"),
        (with(json!({"timestamp": "2024-05-01T12:00:00.000Z"})), "properties.timestamp"),
        (with(json!({"id": "5f0c6bc4ad4f8b0011b2e0e1"})), "properties.id"),
        (with(json!({"updatedAt": "2024-05-01T12:00:00.000Z"})), "properties.updatedAt"),
        (with(json!({"state": 5})), "properties.state"),
        (with(json!({"custom4": true})), "properties.custom4"),
        (with(json!({"rating": "high"})), "properties.rating"),
        (with(json!({"intentScore": "0.5"})), "properties.intentScore"),
        (with(json!({"handoverEscalations": 1.5})), "properties.handoverEscalations"),
        (with(json!({"handoverEscalations": "2"})), "properties.handoverEscalations"),
        (with(json!({"inHandoverRequest": "false"})), "properties.inHandoverRequest"),
        (with(json!({"inHandoverConversation": 1})), "properties.inHandoverConversation"),
        (with(json!({"trackedGoals": "goal"})), "properties.trackedGoals"),
        (with(json!({"trackedGoals": ["goal", 1]})), "properties.trackedGoals"),
        (with(json!({"custom1": "x".repeat(1025)})), "properties.custom1"),
        (with(json!({"ratingComment": "é".repeat(1025)})), "properties.ratingComment"),
    ];
    for (body, field) in cases {
        assert_invalid(app.patch(&body).await, 1005, PATH, field).await;
    }
    let longest = with(json!({"custom1": "x".repeat(1024)}));
    assert_updated(app.patch(&longest).await, 1).await;
    assert_eq!(app.record_by_input(&project, "input-1").await["custom1"], "x".repeat(1024));
}

async fn a_body_that_is_not_a_json_object_is_refused(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, stored) = stored_record(&app).await;
    let as_array = json!([{"projectId": project, "contactId": stored["contactId"], "properties": {"rating": 2}}]);
    for text in ["{not json", "{\"projectId\": ", &as_array.to_string(), "\"text\"", "42"] {
        let response = app
            .request(Method::PATCH, PATH)
            .header("Content-Type", "application/json")
            .body(text.to_owned())
            .send()
            .await
            .expect("the request is answered");
        assert_invalid(response, 1005, PATH, "body").await;
    }
    assert_unchanged(&app, &stored).await;
}

async fn a_body_over_60_kib_is_too_large(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, stored) = stored_record(&app).await;
    let padded = |size: usize| {
        json!({
            "projectId": project, "contactId": stored["contactId"],
            "properties": {"rating": 4}, "padding": "p".repeat(size)
        })
    };
    let over = padded(61 * 1024);
    let response = app.patch(&over).await;
    let body = assert_problem(response, 413, 413, PATH).await;
    assert_eq!(body["details"], json!({}));

    let under = padded(58_000);
    assert!(under.to_string().len() < 60_000);
    assert_invalid(app.patch(&under).await, 1005, PATH, "padding").await;
    assert_unchanged(&app, &stored).await;
}

async fn an_unknown_project_is_not_found(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (_, stored) = stored_record(&app).await;
    let body =
        json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "contactId": stored["contactId"], "properties": {"rating": 2}});
    assert_problem(app.patch(&body).await, 404, 1002, PATH).await;
    assert_unchanged(&app, &stored).await;
}

async fn a_refused_update_changes_nothing(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let (project, stored) = stored_record(&app).await;
    let body = json!({
        "projectId": project, "contactId": stored["contactId"],
        "properties": {"rating": 5, "custom1": "changed", "custom2": 12}
    });
    assert_invalid(app.patch(&body).await, 1005, PATH, "properties.custom2").await;
    assert_unchanged(&app, &stored).await;
}

on_both_engines!(
    the_published_request_updates_every_property,
    without_a_session_every_record_of_the_contact_changes,
    a_session_narrows_the_update_to_that_session,
    an_input_narrows_the_update_to_that_input,
    only_the_named_properties_change,
    null_clears_a_property,
    an_update_that_matches_nothing_answers_zero,
    an_empty_or_absent_body_is_a_missing_payload,
    a_missing_argument_is_named,
    an_invalid_argument_is_named,
    a_body_that_is_not_a_json_object_is_refused,
    a_body_over_60_kib_is_too_large,
    an_unknown_project_is_not_found,
    a_refused_update_changes_nothing,
);
