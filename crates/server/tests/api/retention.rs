//! Retention (docs/contract/operations.md, "Data protection"): `expiresAt` is stamped from the project's
//! `retentionDays` at write time, and a background task deletes expired records.

use std::time::Duration;

use parley_store::testing::{eventually, sqlite_connection};
use serde_json::{Value as Json, json};

use crate::helpers::{Engine, record, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_purged_in_the_background() {
    let app = spawn_app_with(Engine::Sqlite, |config| {
        config.retention_interval_secs = 1;
        config.delete_batch_size = 2;
    })
    .await;
    let project = app.create_project_with_settings(json!({"retentionDays": 1})).await;
    let forever = app.create_project_with_settings(json!({"retentionDays": 0})).await;
    let batch: Vec<Json> = (0..5).map(|i| record(&project, "c1", "s1", &format!("i{i}"))).collect();
    app.ingest_new(&batch).await;
    app.ingest_new(&[record(&forever, "c1", "s1", "f1")]).await;

    let stamped = app.record_by_input(&project, "i0").await;
    let day = time::Duration::days(1);
    let written = parley_core::value::parse_time(stamped["updatedAt"].as_str().unwrap()).unwrap();
    let expires = parley_core::value::parse_time(stamped["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!(expires - written, day, "expiresAt is the write time plus the retention");
    assert_eq!(app.record_by_input(&forever, "f1").await["expiresAt"], Json::Null);

    // A day cannot pass in a test: move the expiry of four records into the past, in the file.
    let past = parley_core::value::unix_millis(parley_core::value::now()) - 1;
    let moved = sqlite_connection(&app.db_path())
        .execute(
            "UPDATE records SET expires_at = ?1 WHERE project_id = ?2 AND input_id <> 'i4'",
            rusqlite::params![past, project],
        )
        .unwrap();
    assert_eq!(moved, 4);
    let left = eventually(Duration::from_secs(15), || async {
        let left = app.records(&project, None).await;
        (left.len() == 1).then_some(left)
    })
    .await;
    assert_eq!(left[0]["inputId"], json!("i4"));
    assert_eq!(app.records(&forever, None).await.len(), 1);
}
