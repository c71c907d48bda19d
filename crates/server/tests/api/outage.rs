//! The database going away while parley serves (docs/contract/operations.md, "Storage"; docs/contract/rest.md §8 code 503).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parley_store::testing::{Proxy, postgres_address, with_address};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::{Engine, TestApp, assert_problem, record, spawn_app_with};

/// A server on PostgreSQL reached through a proxy the test can cut, with the address the proxy
/// forwards to (to start another on the same port); `None` without a PostgreSQL to test on.
async fn behind_a_proxy(
    adjust: impl FnOnce(&mut parley_server::Config),
) -> Option<(TestApp, Proxy, std::net::SocketAddr)> {
    let Some(Engine::Postgres { admin_url }) = Engine::postgres() else { return None };
    let target = postgres_address(&admin_url).await;
    let proxy = Proxy::start(0, target).await;
    let through_proxy = with_address(&admin_url, &format!("127.0.0.1:{}", proxy.port));
    let app = spawn_app_with(Engine::Postgres { admin_url: through_proxy }, adjust).await;
    Some((app, proxy, target))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_parley_recovers_by_itself() {
    let Some((app, proxy, target)) = behind_a_proxy(|_| {}).await else { return };
    let port = proxy.port;
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

/// The database goes away in the middle of concurrent ingest and comes back: while it is gone
/// writes answer 503 (or are cut off with their connection); once it is back they succeed again
/// without a restart; and every write that was acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_load_loses_no_acknowledged_write() {
    let Some((app, proxy, target)) = behind_a_proxy(|c| c.rate_limit_per_minute = 0).await else { return };
    let port = proxy.port;
    let project = app.create_project().await;

    let phase = Arc::new(AtomicUsize::new(0)); // 0 before, 1 while down, 2 after
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, url, key, project, phase) = (
                app.client.clone(),
                app.url("/new/v2.0/analytics/records"),
                app.api_key.clone(),
                project.clone(),
                Arc::clone(&phase),
            );
            tokio::spawn(async move {
                let (mut acknowledged, mut refused, mut after) = (Vec::new(), 0, 0);
                for n in 0.. {
                    let id = format!("w{w}-{n}");
                    let sent = client
                        .post(&url)
                        .header("X-API-Key", &key)
                        .json(&json!([record(&project, &format!("c{w}"), "s", &id)]))
                        .send()
                        .await;
                    match sent.map(|r| r.status()) {
                        Ok(StatusCode::CREATED) => {
                            acknowledged.push(id);
                            if phase.load(Ordering::SeqCst) == 2 {
                                after += 1;
                                if after == 20 {
                                    return (acknowledged, refused);
                                }
                            }
                        }
                        Ok(StatusCode::SERVICE_UNAVAILABLE) | Err(_) => {
                            refused += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        Ok(other) => panic!("an ingest answered {other}"),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    phase.store(1, Ordering::SeqCst);
    proxy.cut().await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let response = app.get("/health/ready").send().await.expect("an answer");
    assert_problem(response, 503, 503, "/health/ready").await;
    let restored = Proxy::start(port, target).await;
    phase.store(2, Ordering::SeqCst);

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for writer in writers {
        let (acked, failed) = writer.await.unwrap();
        acknowledged.extend(acked);
        refused += failed;
    }
    assert!(refused > 0, "the outage refused some writes");
    let stored: std::collections::BTreeSet<String> =
        app.records(&project, None).await.iter().map(|record| record["inputId"].as_str().unwrap().to_owned()).collect();
    let missing: Vec<_> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but not stored: {missing:?}");

    drop(app);
    restored.cut().await;
}
