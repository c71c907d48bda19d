//! Tests of the engines themselves: migrations, reachability, an outage, and both engines giving the
//! very same answers.

use parley_core::RecordQuery;
use parley_store::testing::{Engine, PostgresDatabase, Proxy, postgres_address, postgres_client, with_address};
use parley_store::{StoreError, on_both_engines};
use serde_json::json;

use crate::fixtures::{BASE, bootstrap, create_project, filter_of, params, record};
use crate::odata::aggregates::odata_aggregate_transcript;
use crate::odata::filters::odata_filter_transcript;
use crate::odata::paging::odata_paging_transcript;
use crate::paging::{page_text, paging_transcript};
use crate::records::{update_transcript, varied_records};
use crate::{TestDb, open};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    ready_when_migrated,
);

async fn ready_when_migrated(db: &TestDb) {
    db.store.ready().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&db.store.engine()));
}

/// Both engines give byte-identical answers to the same calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_answer_alike() {
    let Some(engine) = Engine::postgres() else { return };
    let fresh = async || (TestDb::open(Engine::Sqlite).await, TestDb::open(engine.clone()).await);
    let (sqlite, postgres) = fresh().await;
    assert_eq!(paging_transcript(&sqlite).await, paging_transcript(&postgres).await);

    let (sqlite, postgres) = fresh().await;
    assert_eq!(update_transcript(&sqlite).await, update_transcript(&postgres).await);

    let (sqlite, postgres) = fresh().await;
    let mut answers = Vec::new();
    for db in [&sqlite, &postgres] {
        let org = bootstrap(db).await;
        let project = create_project(db, &org, 1).await;
        db.store.insert_records(varied_records(&project), BASE).await.unwrap();
        let query = RecordQuery::parse(params(&project, Some("timestamp:desc"), 10)).unwrap();
        answers.push(page_text(&db.store.list_records(&query).await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);

    let (sqlite, postgres) = fresh().await;
    assert_eq!(odata_filter_transcript(&sqlite).await, odata_filter_transcript(&postgres).await);
    let (sqlite, postgres) = fresh().await;
    assert_eq!(odata_paging_transcript(&sqlite).await, odata_paging_transcript(&postgres).await);
    let (sqlite, postgres) = fresh().await;
    assert_eq!(odata_aggregate_transcript(&sqlite).await, odata_aggregate_transcript(&postgres).await);
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_and_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://parley@127.0.0.1:{port}/parley");
    match parley_store::open(&url, 2).await {
        Err(StoreError::Unavailable(cause)) => {
            let message = cause.to_string();
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        Err(other) => panic!("expected unavailability, got {other:?}"),
        Ok(_) => panic!("nothing listens on port {port}"),
    }
}

/// A database that has versions 1 and 3 but not 2 (changes developed side by side land in any
/// order) gets version 2 when it is opened, although a higher version is already there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_version_below_the_highest_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parley.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(parley_store::migrations::SQLITE[0].sql).unwrap();
        conn.execute_batch(parley_store::migrations::SQLITE[2].sql).unwrap();
        conn.execute_batch(
            "CREATE TABLE parley_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
             INSERT INTO parley_migrations VALUES (1, 'initial', 0), (3, 'identity', 0);",
        )
        .unwrap();
    }
    let store = open(&format!("sqlite://{}", path.display())).await;
    store.ready().await.unwrap();
    assert!(store.oauth_client("default").await.unwrap().is_some());
    let versions: Vec<i64> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT version FROM parley_migrations ORDER BY version")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let every: Vec<i64> = parley_store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(versions, every, "every version, 2 included");
    let pending_table: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'pending_updates'", [], |row| row.get(0))
        .unwrap();
    assert_eq!(pending_table, 1, "version 2's tables exist");

    let Some(Engine::Postgres { admin_url }) = Engine::postgres() else { return };
    let database = PostgresDatabase::create(&admin_url).await;
    let client = postgres_client(database.url()).await;
    client.batch_execute(parley_store::migrations::POSTGRES[0].sql).await.unwrap();
    client.batch_execute(parley_store::migrations::POSTGRES[2].sql).await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE parley_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL);
             INSERT INTO parley_migrations VALUES (1, 'initial', now()), (3, 'identity', now());",
        )
        .await
        .unwrap();
    let pg = open(database.url()).await;
    pg.ready().await.unwrap();
    assert!(pg.oauth_client("default").await.unwrap().is_some());
    let rows = client.query("SELECT version FROM parley_migrations ORDER BY version", &[]).await.unwrap();
    let every: Vec<i64> = parley_store::migrations::POSTGRES.iter().map(|m| m.version).collect();
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), every, "every version, 2 included");
    let pending_table = client.query_one("SELECT to_regclass('pending_updates') IS NOT NULL", &[]).await.unwrap();
    assert!(pending_table.get::<_, bool>(0), "version 2's tables exist");
    drop(pg);
}

#[tokio::test]
async fn an_unknown_database_url_is_refused() {
    assert!(matches!(parley_store::open("mysql://localhost/x", 2).await, Err(StoreError::Internal(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_is_unavailable_while_gone_and_recovers_by_itself() {
    let Some(engine) = Engine::postgres() else { return };
    let db = TestDb::open(engine).await;
    let target = postgres_address(&db.url).await;

    let proxy = Proxy::start(0, target).await;
    let proxy_port = proxy.port;
    let store = open(&with_address(&db.url, &format!("127.0.0.1:{proxy_port}"))).await;
    let org = bootstrap(&db).await;
    let project = create_project(&db, &org, 1).await;
    store.insert_records(vec![record(&project, 1, json!({}))], BASE).await.unwrap();
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), 1);

    proxy.cut().await;
    for attempt in 0..3 {
        match store.count_records(&filter_of(&project)).await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("attempt {attempt} while the database is gone: {other:?}"),
        }
    }
    assert!(matches!(store.ready().await, Err(StoreError::Unavailable(_))));

    let restored = Proxy::start(proxy_port, target).await;
    store.ready().await.unwrap();
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), 1);
    store.insert_records(vec![record(&project, 2, json!({}))], BASE).await.unwrap();
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), 2);
    restored.cut().await;
}
