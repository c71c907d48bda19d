//! The database going away while parley serves (docs/contract/operations.md, "Storage"; docs/contract/rest.md §8 code 503).

use parley_store::testing::{Proxy, postgres_address, with_address};
use reqwest::StatusCode;
use serde_json::Value as Json;

use crate::helpers::{Engine, assert_problem, record, spawn_app_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_parley_recovers_by_itself() {
    let Some(Engine::Postgres { admin_url }) = Engine::postgres() else { return };
    let target = postgres_address(&admin_url).await;
    let proxy = Proxy::start(0, target).await;
    let port = proxy.port;
    let through_proxy = with_address(&admin_url, &format!("127.0.0.1:{port}"));
    let app = spawn_app_on(Engine::Postgres { admin_url: through_proxy }).await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
    assert_eq!(app.list(&project, &[]).await["total"], 1);

    proxy.cut().await;
    let list = format!("/new/v2.0/analytics?projectId={project}");
    let response = app.get(&list).header("Accept", "application/json").send().await.expect("an answer");
    let body = assert_problem(response, 503, 503, "/new/v2.0/analytics").await;
    assert!(!body["detail"].as_str().unwrap_or_default().contains("127.0.0.1"), "no internals: {body}");
    let response = app.get("/health/ready").send().await.expect("an answer");
    assert_problem(response, 503, 503, "/health/ready").await;

    let restored = Proxy::start(port, target).await;
    let response = app.get("/health/ready").send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.list(&project, &[]).await["total"], 1);
    app.ingest_new(&[record(&project, "c1", "s1", "i2")]).await;
    let listed: Json = app.list(&project, &[]).await;
    assert_eq!(listed["total"], 2);

    // The test's database is dropped through the proxy, so the server goes first.
    drop(app);
    restored.cut().await;
}
