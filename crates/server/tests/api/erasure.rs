//! Erasure (docs/contract/rest.md §4): `DELETE /analytics/{projectId}` queues a task that deletes in batches;
//! `GET /tasks/{taskId}` follows it.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use parley_store::testing::sqlite_connection;

use crate::helpers::{Engine, assert_problem, erase, finished, record, spawn_app, spawn_app_with, task};

fn at(minute: u32) -> String {
    format!("2024-05-01T12:{minute:02}:00.000Z")
}

fn timed(project: &str, contact: &str, input: &str, minute: u32) -> Json {
    let mut record = record(project, contact, "s1", input);
    record["timestamp"] = json!(at(minute));
    record["inputText"] = json!(format!("text of {input}"));
    record
}

fn inputs(records: &[Json]) -> Vec<&str> {
    let mut inputs: Vec<&str> = records.iter().map(|r| r["inputId"].as_str().unwrap()).collect();
    inputs.sort();
    inputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_records_are_gone_from_every_read_path() {
    let app = spawn_app().await;
    let (project, other) = (app.create_project().await, app.create_project().await);
    let mut records: Vec<Json> =
        (0..10).map(|m| timed(&project, ["a", "b"][m as usize % 2], &format!("i{m}"), m)).collect();
    records.push(timed(&other, "a", "elsewhere", 3));
    app.ingest_new(&records).await;
    let doomed = app.record_by_input(&project, "i4").await;

    // Contact a's records are i0, i2, i4, i6, i8; between minutes 2 and 6 inclusive: i2, i4, i6.
    let body = json!({"contactIds": ["a", "nobody"], "timestampStart": at(2), "timestampEnd": at(6)});
    let queued = erase(&app, &project, body).await;
    let id = queued["_id"].as_str().unwrap();
    assert_eq!(queued["projectId"], json!(project));
    assert!(queued.get("contactIds").is_none(), "the task does not show the contacts back");
    let done = finished(&app, id).await;
    assert_eq!(done["status"], json!("done"), "{done}");
    assert_eq!(done["deleted"], json!(3));
    assert!(done["startedAt"].is_string() && done["finishedAt"].is_string(), "{done}");

    let left = app.records(&project, None).await;
    assert_eq!(inputs(&left), ["i0", "i1", "i3", "i5", "i7", "i8", "i9"]);
    assert_eq!(inputs(&app.records(&project, Some("a")).await), ["i0", "i8"]);
    let one = format!("/new/v2.0/analytics/{}", doomed["id"].as_str().unwrap());
    assert_problem(app.get(&one).send().await.unwrap(), 404, 1002, &one).await;
    assert_eq!(inputs(&app.records(&other, None).await), ["elsewhere"], "other projects are untouched");

    // The same under the other prefix, for every contact.
    let response = app
        .request(Method::DELETE, &format!("/v2.0/analytics/{project}"))
        .json(&json!({"contactIds": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/v2.0/tasks/"));
    let everyone: Json = response.json().await.unwrap();
    let done = finished(&app, everyone["_id"].as_str().unwrap()).await;
    assert_eq!(done["deleted"], json!(7));
    assert!(app.records(&project, None).await.is_empty());
    assert_eq!(app.records(&other, None).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_requests_are_validated() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "a", "s1", "i1")]).await;
    let path = format!("/new/v2.0/analytics/{project}");
    let empty = app.request(Method::DELETE, &path).send().await.unwrap();
    let refused = assert_problem(empty, 400, 1000, &path).await;
    assert_eq!(refused["detail"], json!("Validation failed. Missing payload."));
    let not_json = app
        .request(Method::DELETE, &path)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, 400, 1005, &path).await;
    let cases = [
        (json!({}), 1000, "contactIds"),
        (json!({"timestampStart": at(1)}), 1000, "contactIds"),
        (json!({"contactIds": "a"}), 1005, "contactIds"),
        (json!({"contactIds": []}), 1005, "contactIds"),
        (json!({"contactIds": [7]}), 1005, "contactIds"),
        (json!({"contactIds": null, "timestampStart": "last week"}), 1005, "timestampStart"),
        (json!({"contactIds": null, "timestampEnd": 1714564800}), 1005, "timestampEnd"),
        (json!({"contactIds": null, "timestampStart": at(5), "timestampEnd": at(4)}), 1005, "timestampStart"),
        (json!({"contactIds": null, "contacts": ["a"]}), 1005, "contacts"),
        (json!(["a"]), 1005, "body"),
    ];
    for (body, code, field) in cases {
        let response = app.request(Method::DELETE, &path).json(&body).send().await.unwrap();
        let refused = assert_problem(response, 400, code, &path).await;
        assert_eq!(refused["details"]["field"], json!(field), "{body}");
    }
    assert_eq!(app.records(&project, None).await.len(), 1, "a refused request deletes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_needs_write_access_in_the_project() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "a", "s1", "i1")]).await;
    let body = json!({"contactIds": ["a"]});
    let as_key = |key: &str, path: &str| app.with_key(Method::DELETE, path, key).json(&body).send();
    let path = format!("/new/v2.0/analytics/{project}");
    let reader = app.user("").await;
    app.add_member(&project, &reader.id, &["basic"]).await;
    assert_problem(as_key(&reader.api_key, &path).await.unwrap(), 403, 403, &path).await;
    let stranger = app.user("").await;
    assert_problem(as_key(&stranger.api_key, &path).await.unwrap(), 404, 1002, &path).await;
    for unknown in ["/new/v2.0/analytics/5f0c6bc4ad4f8b0011b2e0e1", "/new/v2.0/analytics/not-an-id"] {
        assert_problem(as_key(&app.api_key, unknown).await.unwrap(), 404, 1002, unknown).await;
    }
    let anonymous = app.anonymous(Method::DELETE, &path).json(&body).send().await.unwrap();
    assert_problem(anonymous, 401, 401, &path).await;
    assert_eq!(app.records(&project, None).await.len(), 1);

    let analyst = app.user("").await;
    app.add_member(&project, &analyst.id, &["analytics"]).await;
    let response = as_key(&analyst.api_key, &path).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let task: Json = response.json().await.unwrap();
    let id = task["_id"].as_str().unwrap();
    assert_eq!(finished(&app, id).await["deleted"], json!(1));

    // A task is visible to whoever may see its project, and to no one else.
    let get = |key: &str, path: &str| app.with_key(Method::GET, path, key).send();
    let path = format!("/new/v2.0/tasks/{id}");
    assert_eq!(get(&reader.api_key, &path).await.unwrap().status(), StatusCode::OK);
    assert_problem(get(&stranger.api_key, &path).await.unwrap(), 404, 1002, &path).await;
    for unknown in ["/new/v2.0/tasks/5f0c6bc4ad4f8b0011b2e0e1", "/new/v2.0/tasks/nope"] {
        assert_problem(get(&app.api_key, unknown).await.unwrap(), 404, 1002, unknown).await;
    }
}

/// With batches of 10, a PATCH answered between two looks at a task that both show it unfinished
/// was committed while the erasure was under way: the erasure does not hold the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_runs_in_batches_beside_other_writes() {
    const RECORDS: usize = 2000;
    // Unlimited requests: the loop below writes as fast as it can for as long as the erasure runs.
    let app = spawn_app_with(Engine::Sqlite, |config| {
        config.delete_batch_size = 10;
        config.rate_limit_per_minute = 0;
    })
    .await;
    let project = app.create_project().await;
    for chunk in 0..RECORDS / 1000 {
        let batch: Vec<Json> = (0..1000).map(|i| record(&project, "doomed", "s1", &format!("i{chunk}-{i}"))).collect();
        app.ingest_new(&batch).await;
    }
    app.ingest_new(&[record(&project, "kept", "s1", "k1")]).await;
    let queued = erase(&app, &project, json!({"contactIds": ["doomed"]})).await;
    let id = queued["_id"].as_str().unwrap();
    let mut interleaved = 0;
    let mut writes = 0;
    loop {
        let before = task(&app, id).await;
        writes += 1;
        let patch = json!({"projectId": project, "contactId": "kept", "properties": {"custom1": writes.to_string()}});
        assert_eq!(app.patch(&patch).await.status(), StatusCode::NO_CONTENT);
        let after = task(&app, id).await;
        if after["status"] == json!("done") {
            assert_eq!(after["deleted"], json!(RECORDS));
            break;
        }
        let deleted = |t: &Json| t["deleted"].as_u64().unwrap();
        if before["status"] == json!("running") && deleted(&before) > 0 && deleted(&after) < RECORDS as u64 {
            interleaved += 1;
        }
        assert!(writes < 100_000, "the erasure does not end");
    }
    assert!(interleaved > 0, "no update was committed while the erasure ran");
    let kept = app.records(&project, None).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["custom1"], json!(writes.to_string()));
}

/// Erased text does not linger in the database files once the server has stopped cleanly: freed
/// space is zeroed and the write-ahead log is folded in and emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_text_is_not_left_on_disk() {
    let mut app = spawn_app().await;
    let project = app.create_project().await;
    let mut doomed = record(&project, "subject-7f3e", "s1", "i1");
    doomed["inputText"] = json!("ERASE-ME-4c1d9a");
    let mut kept = record(&project, "other", "s1", "i2");
    kept["inputText"] = json!("KEEP-ME-88b2e0");
    app.ingest_new(&[doomed, kept]).await;
    let queued = erase(&app, &project, json!({"contactIds": ["subject-7f3e"]})).await;
    assert_eq!(finished(&app, queued["_id"].as_str().unwrap()).await["deleted"], json!(1));
    app.stop().await;

    let bytes = app.on_disk();
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("KEEP-ME-88b2e0"), "the check reads the text of records that were kept");
    assert!(!contains("ERASE-ME-4c1d9a"));
    assert!(!contains("subject-7f3e"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_document_describes_erasure_and_tasks() {
    let app = spawn_app().await;
    let document: Json = app.anonymous(Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
    let paths = &document["paths"];
    let record_or_project = &paths["/new/v2.0/analytics/{id}"];
    assert!(record_or_project["get"].is_object() && record_or_project["delete"].is_object(), "{record_or_project}");
    assert!(record_or_project["delete"]["responses"]["202"].is_object());
    assert!(paths["/new/v2.0/tasks/{taskId}"]["get"].is_object());
    assert!(paths["/new/v2.0/analytics"]["patch"]["responses"]["204"]["headers"]["X-Update-Deferred"].is_object());
}

/// A deletion the database refuses ends the task in `error`, with a reason fit for the client,
/// and deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_erasure_ends_in_error() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "a", "s1", "i1"), record(&project, "a", "s1", "i2")]).await;
    sqlite_connection(&app.db_path())
        .execute_batch(
            "CREATE TRIGGER refuse_deletes BEFORE DELETE ON records BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    let queued = erase(&app, &project, json!({"contactIds": ["a"]})).await;
    let failed = finished(&app, queued["_id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], json!("error"), "{failed}");
    assert_eq!(failed["deleted"], json!(0));
    let reason = failed["error"].as_str().unwrap();
    assert!(reason.contains("send the request again"), "{reason}");
    assert!(!reason.contains("injected"), "no internals in the reason: {reason}");
    assert_eq!(app.records(&project, None).await.len(), 2);
}
