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

/// On Citus, parley lays its schema out by itself: every table that holds a project's data is
/// distributed by `project_id` and co-located with `records`, every other table is a reference
/// table, and none but parley's own bookkeeping is left on the coordinator alone. Migrating again
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citus_holds_every_table_by_project_or_as_a_reference() {
    let Some(engine) = Engine::citus() else { return };
    let database = engine.database().await.expect("a database on the cluster");
    let layout = || async {
        let store = open(database.url()).await;
        store.close().await;
        let client = postgres_client(database.url()).await;
        let rows = client
            .query(
                "SELECT c.relname::text, \
                        EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'project_id'), \
                        t.citus_table_type, t.distribution_column, \
                        t.colocation_id = (SELECT colocation_id FROM citus_tables WHERE table_name = 'records'::regclass) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN citus_tables t ON t.table_name = c.oid \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|row| {
                let (name, by_project): (String, bool) = (row.get(0), row.get(1));
                let kind: Option<String> = row.get(2);
                let column: Option<String> = row.get(3);
                let colocated: Option<bool> = row.get(4);
                (name, by_project, kind, column, colocated)
            })
            .collect::<Vec<_>>()
    };
    let first = layout().await;
    assert!(first.len() >= 12, "{first:?}");
    for (name, by_project, kind, column, colocated) in &first {
        match (name.as_str(), by_project) {
            ("parley_migrations", _) => assert_eq!(kind, &None, "{name} stays on the coordinator"),
            (_, true) => {
                assert_eq!(kind.as_deref(), Some("distributed"), "{name}");
                assert_eq!(column.as_deref(), Some("project_id"), "{name}");
                assert_eq!(colocated, &Some(true), "{name} is co-located with records");
            }
            (_, false) => assert_eq!(kind.as_deref(), Some("reference"), "{name}"),
        }
    }
    let names: Vec<&str> = first.iter().map(|t| t.0.as_str()).collect();
    for table in ["records", "pending_updates", "tasks", "projects", "users", "api_keys"] {
        assert!(names.contains(&table), "{table} in {names:?}");
    }
    assert_eq!(layout().await, first, "migrating again changes nothing");
}

/// On Citus, every statement about one project's records is routed to one shard: `EXPLAIN` on the
/// coordinator shows one task for each, never a task per shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citus_routes_each_statement_of_one_project_to_one_shard() {
    use parley_core::{Erasure, RecordUpdate, Value};
    use parley_store::sql::{self, Dialect};
    use tokio_postgres::types::ToSql;

    let Some(engine) = Engine::citus() else { return };
    let database = engine.database().await.expect("a database on the cluster");
    open(database.url()).await.close().await;
    let client = postgres_client(database.url()).await;
    let project = parley_core::ObjectId::generate();
    let update = RecordUpdate::parse(json!({
        "projectId": project.to_string(), "contactId": "c1", "inputId": "i1", "properties": { "rating": 1 }
    }))
    .unwrap();
    let filter = parley_core::RecordFilter {
        project_id: project,
        contact_id: Some("c1".into()),
        session_id: None,
        from: Some(BASE),
        to: None,
    };
    let newest_first = [
        parley_core::SortKey { field: parley_core::field::idx::TIMESTAMP, descending: true },
        parley_core::SortKey { field: parley_core::field::idx::ID, descending: true },
    ];
    let everyone = Erasure { contact_ids: None, timestamp_start: Some(BASE), timestamp_end: None };
    let some = Erasure { contact_ids: Some(vec!["c1".into(), "c2".into()]), ..everyone.clone() };
    let statements = [
        ("update", sql::update_records(Dialect::Postgres, &update, BASE)),
        ("list", sql::select_records(Dialect::Postgres, &filter, &newest_first, None, 0, 25)),
        ("count", sql::count_records(Dialect::Postgres, &filter)),
        ("erase everyone", sql::erase_rows(Dialect::Postgres, "records", false, project, &everyone, 100)),
        ("erase contacts", sql::erase_rows(Dialect::Postgres, "records", false, project, &some, 100)),
        ("erase messages", sql::erase_rows(Dialect::Postgres, "messages", false, project, &some, 100)),
        ("erase steps", sql::erase_rows(Dialect::Postgres, "executed_steps", true, project, &some, 100)),
        ("erase goal events", sql::erase_rows(Dialect::Postgres, "goal_events", true, project, &some, 100)),
        ("erase emptied sessions", sql::erase_empty_sessions(Dialect::Postgres, project, &some)),
        ("erase pending", sql::erase_pending_updates(Dialect::Postgres, project, &some)),
        ("purge", sql::purge_expired(Dialect::Postgres, "records", project, BASE, 100)),
        ("purge messages", sql::purge_expired(Dialect::Postgres, "messages", project, BASE, 100)),
        ("purge steps", sql::purge_expired(Dialect::Postgres, "executed_steps", project, BASE, 100)),
        ("purge goal events", sql::purge_expired(Dialect::Postgres, "goal_events", project, BASE, 100)),
    ];
    for (what, statement) in statements {
        let params: Vec<Box<dyn ToSql + Sync + Send>> = statement
            .params
            .iter()
            .map(|value| -> Box<dyn ToSql + Sync + Send> {
                match value {
                    Value::Text(text) => Box::new(text.clone()),
                    Value::Integer(i) => Box::new(*i),
                    Value::Number(n) => Box::new(*n),
                    Value::Bool(b) => Box::new(*b),
                    Value::Time(t) => Box::new(*t),
                    Value::Json(json) => Box::new(json.clone()),
                    other => panic!("{what}: a parameter this test does not bind: {other:?}"),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let plan = client.query_one(&format!("EXPLAIN (FORMAT JSON) {}", statement.text), &refs).await.unwrap();
        let plan: serde_json::Value = plan.get(0);
        let tasks: Vec<u64> = find_all(&plan, "Task Count");
        assert!(!tasks.is_empty(), "{what}: Citus planned it: {plan}");
        assert!(tasks.iter().all(|&n| n == 1), "{what} runs on one shard: {tasks:?}\n{}", statement.text);
    }
}

/// Every number under `key` anywhere in a JSON tree.
fn find_all(json: &serde_json::Value, key: &str) -> Vec<u64> {
    match json {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| if k == key { v.as_u64().into_iter().collect() } else { find_all(v, key) })
            .collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(|v| find_all(v, key)).collect(),
        _ => Vec::new(),
    }
}
