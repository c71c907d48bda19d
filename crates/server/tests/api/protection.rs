//! Masking and collection (docs/contract/operations.md, "Data protection"): what a project's settings say must
//! not be stored never reaches the database files.

use serde_json::{Value as Json, json};

use crate::helpers::{assert_problem, record, spawn_app};

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
}

fn sensitive(project: &str, input: &str, marker: &str) -> Json {
    let mut record = record(project, "c1", "s1", input);
    record["inputText"] = json!(format!("{marker}-text"));
    record["inputData"] = json!({"card": format!("{marker}-data")});
    record["ip"] = json!(format!("{marker}-ip"));
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_values_never_reach_the_disk() {
    let app = spawn_app().await;
    let masked = app.create_project_with_settings(json!({"maskSensitive": true})).await;
    let ip_only = app.create_project_with_settings(json!({"maskIp": true})).await;
    let clear = app.create_project().await;
    app.ingest_new(&[sensitive(&masked, "i1", "SECRET7a1")]).await;
    app.ingest_new(&[sensitive(&ip_only, "i1", "IPONLY3b2")]).await;
    app.ingest_new(&[sensitive(&clear, "i1", "CLEAR9c3")]).await;

    let shown = app.record_by_input(&masked, "i1").await;
    assert_eq!(
        (&shown["inputText"], &shown["inputData"], &shown["ip"]),
        (&json!("*****"), &json!("*****"), &json!("*****"))
    );
    let shown = app.record_by_input(&ip_only, "i1").await;
    assert_eq!((&shown["inputText"], &shown["ip"]), (&json!("IPONLY3b2-text"), &json!("*****")));

    let bytes = app.on_disk();
    for control in ["CLEAR9c3-text", "CLEAR9c3-data", "CLEAR9c3-ip", "IPONLY3b2-text", "IPONLY3b2-data"] {
        assert!(contains(&bytes, control), "the check finds clear text that was meant to be stored: {control}");
    }
    for secret in ["SECRET7a1", "IPONLY3b2-ip"] {
        assert!(!contains(&bytes, secret), "{secret} is on disk");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_that_collects_nothing_stores_nothing() {
    let app = spawn_app().await;
    let quiet = app.create_project_with_settings(json!({"collectAnalytics": false})).await;
    let open = app.create_project().await;
    let response = app
        .ingest(&[
            sensitive(&quiet, "i1", "DROPPED5d4"),
            sensitive(&quiet, "i2", "DROPPED5d4"),
            sensitive(&open, "i3", "KEPT6e5"),
        ])
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    assert_eq!(response.json::<Json>().await.unwrap(), json!({"inserted": 1, "duplicates": 0, "dropped": 2}));
    let only_dropped = app.ingest(&[sensitive(&quiet, "i4", "DROPPED5d4")]).await;
    assert_eq!(only_dropped.status(), reqwest::StatusCode::OK);
    assert_eq!(only_dropped.json::<Json>().await.unwrap(), json!({"inserted": 0, "duplicates": 0, "dropped": 1}));
    assert!(app.records(&quiet, None).await.is_empty());
    let bytes = app.on_disk();
    assert!(contains(&bytes, "KEPT6e5-text"), "the check finds stored text");
    assert!(!contains(&bytes, "DROPPED5d4"));
}

/// None of the fields masking protects is editable, so an update cannot write their clear text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_cannot_write_masked_fields() {
    let app = spawn_app().await;
    let project = app.create_project_with_settings(json!({"maskSensitive": true})).await;
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    for field in ["inputText", "inputData", "ip"] {
        let body = json!({"projectId": project, "contactId": "c1", "properties": {field: "UNMASKED2f7"}});
        let refused = assert_problem(app.patch(&body).await, 400, 1005, "/new/v2.0/analytics").await;
        assert_eq!(refused["details"]["field"], json!(format!("properties.{field}")));
    }
    assert!(!contains(&app.on_disk(), "UNMASKED2f7"));
}
