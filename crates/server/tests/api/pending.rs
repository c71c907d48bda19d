//! Pending updates (docs/contract/rest.md §1): an update that names an input and matches nothing waits for
//! that record.

use std::time::Duration;

use parley_store::testing::{eventually, sqlite_connection};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{Engine, on_both_engines, record, spawn_app, spawn_app_with};

fn update(project: &str, contact: &str, input: Option<&str>, properties: Json) -> Json {
    let mut body = json!({"projectId": project, "contactId": contact, "properties": properties});
    if let Some(input) = input {
        body["inputId"] = json!(input);
    }
    body
}

/// The headers of an update's answer: matched records, and whether it was deferred.
fn outcome(response: &Response) -> (u64, bool) {
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let matched = response.headers()["x-matched-records"].to_str().unwrap().parse().unwrap();
    let deferred = match response.headers().get("x-update-deferred") {
        None => false,
        Some(value) => {
            assert_eq!(value, "true");
            true
        }
    };
    (matched, deferred)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_before_its_record_is_kept_and_applied_on_ingest() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let early = update(&project, "c1", Some("i1"), json!({"custom1": "from the CRM", "rating": 9, "slots": "x"}));
    assert_eq!(outcome(&app.patch(&early).await), (0, true));
    assert_eq!(app.find_record(&project, "i1").await, None, "nothing is created by the update itself");

    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    let stored = app.record_by_input(&project, "i1").await;
    assert_eq!(
        (&stored["custom1"], &stored["rating"], &stored["slots"]),
        (&json!("from the CRM"), &json!(9), &json!("x"))
    );
    assert_eq!(stored["updatedAt"], stored["timestamp"], "stamped at ingest, like the record");

    let after = update(&project, "c1", Some("i1"), json!({"custom1": "later"}));
    assert_eq!(outcome(&app.patch(&after).await), (1, false), "applied at once, no deferral header");
    assert_eq!(app.record_by_input(&project, "i1").await["custom1"], json!("later"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_pending_updates_apply_in_arrival_order() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let updates = [
        json!({"custom1": "first", "custom2": "first", "intent": "a"}),
        json!({"custom1": "second", "intent": null}),
        json!({"custom3": "third", "custom2": "third"}),
    ];
    for properties in updates {
        assert_eq!(outcome(&app.patch(&update(&project, "c1", Some("i1"), properties)).await), (0, true));
    }
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    let stored = app.record_by_input(&project, "i1").await;
    assert_eq!(stored["custom1"], json!("second"));
    assert_eq!(stored["custom2"], json!("third"));
    assert_eq!(stored["custom3"], json!("third"));
    assert_eq!(stored["intent"], Json::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_updates_that_could_still_match_are_kept() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let quiet = app.create_project_with_settings(json!({"collectAnalytics": false})).await;
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    let cases = [
        ("no input named", update(&project, "c9", None, json!({"custom1": "x"}))),
        ("the input's record exists for another contact", update(&project, "c2", Some("i1"), json!({"custom1": "x"}))),
        ("the project drops its records", update(&quiet, "c1", Some("i1"), json!({"custom1": "x"}))),
    ];
    for (case, body) in cases {
        assert_eq!(outcome(&app.patch(&body).await), (0, false), "{case}");
    }
    app.ingest(&[record(&quiet, "c1", "s1", "i1")]).await;
    let db = sqlite_connection(&app.db_path());
    let pending: i64 = db.query_row("SELECT COUNT(*) FROM pending_updates", [], |row| row.get(0)).unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_window_keeps_no_pending_updates() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.pending_update_window_secs = 0).await;
    let project = app.create_project().await;
    assert_eq!(outcome(&app.patch(&update(&project, "c1", Some("i1"), json!({"custom1": "x"}))).await), (0, false));
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    assert_eq!(app.record_by_input(&project, "i1").await["custom1"], Json::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_pending_update_is_purged_and_never_applied() {
    let app = spawn_app_with(Engine::Sqlite, |config| {
        config.pending_update_window_secs = 1;
        config.retention_interval_secs = 1;
    })
    .await;
    let project = app.create_project().await;
    assert_eq!(outcome(&app.patch(&update(&project, "c1", Some("i1"), json!({"custom1": "x"}))).await), (0, true));
    let db = sqlite_connection(&app.db_path());
    eventually(Duration::from_secs(10), || async {
        let left: i64 = db.query_row("SELECT COUNT(*) FROM pending_updates", [], |row| row.get(0)).unwrap();
        (left == 0).then_some(())
    })
    .await;
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    assert_eq!(app.record_by_input(&project, "i1").await["custom1"], Json::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_updates_survive_a_restart() {
    let mut app = spawn_app().await;
    let project = app.create_project().await;
    assert_eq!(outcome(&app.patch(&update(&project, "c1", Some("i1"), json!({"custom5": "kept"}))).await), (0, true));
    app.restart().await;
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    assert_eq!(app.record_by_input(&project, "i1").await["custom5"], json!("kept"));
}

on_both_engines!(racing_updates_are_never_lost);

/// Updates and the ingest of their records sent at the same moment, many times: whichever
/// arrives first, the update is never lost.
async fn racing_updates_are_never_lost(engine: Engine) {
    // More connections than a test node has by default, so that more of the racing requests run
    // at once.
    let app = spawn_app_with(engine, |config| config.database_pool_size = 8).await;
    let project = app.create_project().await;
    const ROUNDS: usize = 25;
    const PAIRS: usize = 8;
    for round in 0..ROUNDS {
        let mut racers = Vec::new();
        for pair in 0..PAIRS {
            let input = format!("i{round}-{pair}");
            let body = update(&project, "c1", Some(&input), json!({"custom1": input}));
            let patch = app.request(Method::PATCH, "/new/v2.0/analytics").json(&body).send();
            let ingest = app
                .request(Method::POST, "/new/v2.0/analytics/records")
                .json(&json!([record(&project, "c1", "s1", &input)]))
                .send();
            racers.push(tokio::spawn(patch));
            racers.push(tokio::spawn(ingest));
        }
        for racer in racers {
            let status = racer.await.unwrap().unwrap().status();
            assert!(status.is_success(), "{status}");
        }
    }
    let records = app.records(&project, Some("c1")).await;
    assert_eq!(records.len(), ROUNDS * PAIRS);
    let lost: Vec<&Json> = records.iter().filter(|r| r["custom1"] != r["inputId"]).map(|r| &r["inputId"]).collect();
    assert!(lost.is_empty(), "updates lost for {lost:?}");
}
