//! `POST /new/v2.0/analytics/records` (docs/contract/rest.md §2).

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{
    Engine, RECORD_FIELD_NAMES, assert_holds_sent_fields, assert_invalid, assert_problem, content_type, full_record,
    on_both_engines, record, spawn_app_on,
};

const PATH: &str = "/new/v2.0/analytics/records";

fn parse_time(text: &Json) -> OffsetDateTime {
    OffsetDateTime::parse(text.as_str().expect("a time string"), &Rfc3339).expect("an RFC 3339 time")
}

fn is_object_id(value: &Json) -> bool {
    value.as_str().is_some_and(|t| t.len() == 24 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

async fn a_json_array_is_stored_and_readable_at_once(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let sent: Vec<Json> = (1..=3).map(|i| full_record(&project, &format!("input-{i}"))).collect();

    let response = app.ingest(&sent).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"inserted": 3, "duplicates": 0, "dropped": 0}));

    let page = app.list(&project, &[]).await;
    assert_eq!(page["total"], 3);
    for original in &sent {
        let stored = app.record_by_input(&project, original["inputId"].as_str().expect("an inputId")).await;
        assert_holds_sent_fields(&stored, original);
        assert!(is_object_id(&stored["id"]), "{}", stored["id"]);
        assert!(stored["organisation"].as_str().is_some_and(|o| !o.is_empty()));
        assert!(stored["expiresAt"].is_string() && stored["updatedAt"].is_string());
        let keys: Vec<&str> = stored.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, RECORD_FIELD_NAMES);
        assert_eq!(app.get_record(stored["id"].as_str().expect("an id")).await, stored);
    }
}

async fn ndjson_is_stored(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let sent = [full_record(&project, "n1"), record(&project, "c", "s", "n2"), record(&project, "c", "s", "n3")];
    let body: String = sent.iter().map(|r| format!("{r}\n")).collect();

    let response = app
        .request(Method::POST, PATH)
        .header("Content-Type", "application/x-ndjson")
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
        .expect("the request is answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"inserted": 3, "duplicates": 0, "dropped": 0}));

    assert_eq!(app.list(&project, &[]).await["total"], 3);
    for original in &sent {
        let stored = app.record_by_input(&project, original["inputId"].as_str().expect("an inputId")).await;
        assert_holds_sent_fields(&stored, original);
    }
}

async fn the_answer_follows_the_accept_header(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let response = app
        .request(Method::POST, PATH)
        .json(&[record(&project, "c", "s", "i1")])
        .send()
        .await
        .expect("the request is answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(content_type(&response), "application/hal+json");
    let body: Json = response.json().await.expect("JSON");
    assert_eq!(body["inserted"], 1);
    assert_eq!(body["duplicates"], 0);
    assert_eq!(body["dropped"], 0);
    assert_eq!(body["_links"]["self"]["href"], PATH);
}

async fn a_batch_sent_again_is_counted_as_duplicates_and_stored_once(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let batch: Vec<Json> = (1..=4).map(|i| record(&project, "c", "s", &format!("i{i}"))).collect();
    app.ingest_new(&batch).await;
    let first = app.records(&project, None).await;

    let response = app.ingest(&batch).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"inserted": 0, "duplicates": 4, "dropped": 0}));

    let mut changed = batch.clone();
    changed[0]["custom1"] = json!("second version");
    changed.push(record(&project, "c", "s", "i5"));
    let response = app.ingest(&changed).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"inserted": 1, "duplicates": 4, "dropped": 0}));

    let now = app.records(&project, None).await;
    assert_eq!(now.len(), 5);
    assert_eq!(now[..4], first[..], "the stored records are kept as first ingested");
    assert_eq!(app.list(&project, &[]).await["total"], 5);
}

async fn one_invalid_record_refuses_the_whole_batch(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "existing")]).await;
    let mut batch: Vec<Json> = (0..6).map(|i| record(&project, "c", "s", &format!("i{i}"))).collect();
    batch[3]["rating"] = json!("excellent");

    let body = assert_invalid(app.ingest(&batch).await, 1005, PATH, "rating").await;
    assert_eq!(body["details"]["index"], 3);
    let records = app.records(&project, None).await;
    assert_eq!(records.len(), 1, "nothing of a refused batch is stored: {records:?}");
    assert_eq!(records[0]["inputId"], "existing");

    let mut batch: Vec<Json> = (0..3).map(|i| record(&project, "c", "s", &format!("j{i}"))).collect();
    batch[1]["intnet"] = json!("typo");
    let body = assert_invalid(app.ingest(&batch).await, 1005, PATH, "intnet").await;
    assert_eq!(body["details"]["index"], 1);

    let mut batch: Vec<Json> = (0..3).map(|i| record(&project, "c", "s", &format!("k{i}"))).collect();
    batch[2].as_object_mut().expect("an object").remove("inputId");
    let response = app.ingest(&batch).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Json = response.json().await.expect("JSON");
    assert_eq!(body["code"], 1000, "a missing field is 1000, as for every route: {body}");
    assert_eq!(body["details"]["index"], 2);
    assert_eq!(body["details"]["field"], "inputId");

    assert_eq!(app.list(&project, &[]).await["total"], 1);
}

async fn a_record_of_an_unknown_project_refuses_the_batch(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let batch = [record(&project, "c", "s", "i0"), record("5f0c6bc4ad4f8b0011b2e0e1", "c", "s", "i1")];
    let body = assert_problem(app.ingest(&batch).await, 404, 1002, PATH).await;
    assert_eq!(body["details"]["index"], 1);
    assert_eq!(app.list(&project, &[]).await["total"], 0);
}

async fn more_than_10000_records_are_too_many(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let batch: Vec<Json> = (0..10_001).map(|i| record(&project, "c", "s", &format!("i{i}"))).collect();
    assert_problem(app.ingest(&batch).await, 413, 413, PATH).await;
    assert_eq!(app.list(&project, &[]).await["total"], 0);
}

async fn exactly_10000_records_are_accepted(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let batch: Vec<Json> = (0..10_000).map(|i| record(&project, "c", "s", &format!("i{i}"))).collect();
    app.ingest_new(&batch).await;
    assert_eq!(app.list(&project, &[("limit", "1")]).await["total"], 10_000);
}

async fn the_timestamp_defaults_to_the_time_of_ingest(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let before = OffsetDateTime::now_utc().replace_millisecond(0).expect("a time");
    app.ingest_new(&[record(&project, "c", "s", "now"), full_record(&project, "given")]).await;
    let after = OffsetDateTime::now_utc();

    let stored = app.record_by_input(&project, "now").await;
    let timestamp = parse_time(&stored["timestamp"]);
    assert!(before <= timestamp && timestamp <= after, "{timestamp} is not the time of ingest");
    assert_eq!(app.record_by_input(&project, "given").await["timestamp"], "2024-05-01T12:00:00.123Z");
}

async fn server_set_fields_are_set_by_parley(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let mut sent = record(&project, "c", "s", "i1");
    sent["id"] = json!("5f0c6bc4ad4f8b0011b2e0e1");
    sent["organisation"] = json!("someone else");
    sent["updatedAt"] = json!("2001-01-01T00:00:00.000Z");
    sent["expiresAt"] = json!("2001-01-01T00:00:00.000Z");
    app.ingest_new(&[sent]).await;

    let stored = app.record_by_input(&project, "i1").await;
    assert!(is_object_id(&stored["id"]));
    assert_ne!(stored["id"], "5f0c6bc4ad4f8b0011b2e0e1");
    assert_ne!(stored["organisation"], "someone else");
    let updated = parse_time(&stored["updatedAt"]);
    let expires = parse_time(&stored["expiresAt"]);
    assert!(updated.year() >= 2025, "{updated}");
    assert_eq!((expires - updated).whole_days(), 365, "the default retention is 365 days");
}

async fn a_project_that_does_not_collect_drops_records(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project_with(json!({"name": "quiet", "settings": {"collectAnalytics": false}})).await;
    let project = project["_id"].as_str().expect("an _id");
    let batch = [record(project, "c", "s", "i1"), record(project, "c", "s", "i2")];
    let response = app.ingest(&batch).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Json>().await.expect("JSON"), json!({"inserted": 0, "duplicates": 0, "dropped": 2}));
    assert_eq!(app.list(project, &[]).await["total"], 0);
}

on_both_engines!(
    a_json_array_is_stored_and_readable_at_once,
    ndjson_is_stored,
    the_answer_follows_the_accept_header,
    a_batch_sent_again_is_counted_as_duplicates_and_stored_once,
    one_invalid_record_refuses_the_whole_batch,
    a_record_of_an_unknown_project_refuses_the_batch,
    more_than_10000_records_are_too_many,
    exactly_10000_records_are_accepted,
    the_timestamp_defaults_to_the_time_of_ingest,
    server_set_fields_are_set_by_parley,
    a_project_that_does_not_collect_drops_records,
);
