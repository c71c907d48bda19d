//! The embedded SQLite engine, parley's default.

mod convert;
mod engine;
mod exec;

use std::path::Path;

use async_trait::async_trait;
use parley_core::field::idx;
use parley_core::value::{from_unix_millis, unix_millis};
use parley_core::{Cursor, Erasure, ObjectId, Record, RecordFilter, RecordUpdate, SortKey, Task, TaskStatus, Value};
use parley_odata::{EntityType, Query};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use self::convert::{params as bind, record_from_row, values_from_row};
pub use self::engine::WriteStats;
use self::engine::{Engine, internal};
use self::exec::SqliteExec;
use crate::error::{StoreError, StoreResult};
use crate::exec::{BoxFuture, run_ready};
use crate::model::{IngestCounts, UpdateOutcome, pending_update};
use crate::odata::ODataRead;
use crate::sql::{self, Dialect};
use crate::traits::{LifecycleStore, ODataStore, RecordStore, Store};

/// A store in one SQLite file.
pub struct SqliteStore {
    engine: Engine,
}

impl SqliteStore {
    /// Opens or creates the file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Ok(SqliteStore { engine: Engine::open(path)? })
    }

    /// How many transactions the writer has committed, and how many writes they held.
    pub fn write_stats(&self) -> WriteStats {
        self.engine.stats()
    }
}

fn time_of(ms: i64) -> rusqlite::Result<OffsetDateTime> {
    from_unix_millis(ms).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, ms))
}

fn id_of(text: String) -> rusqlite::Result<ObjectId> {
    ObjectId::parse(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn json_of<T: serde::de::DeserializeOwned>(text: String) -> rusqlite::Result<T> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

impl crate::exec::Engine for SqliteStore {
    type Exec<'c> = SqliteExec<'c>;

    fn read<T, F>(&self, job: F) -> impl std::future::Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut SqliteExec<'c>) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        self.engine.read(move |conn| run_ready(job(&mut SqliteExec::new(conn))))
    }

    fn write<T, F>(&self, job: F) -> impl std::future::Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut SqliteExec<'c>) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        self.engine.write(move |conn| run_ready(job(&mut SqliteExec::new(conn))))
    }
}

fn query_records(conn: &rusqlite::Connection, statement: &sql::Statement) -> StoreResult<Vec<Record>> {
    let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
    stmt.query_map(bind(&statement.params), record_from_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(internal)
}

const TASK_COLUMNS: &str =
    "id, organisation, project_id, created_by, status, erasure, deleted, error, created_at, started_at, finished_at";

fn task_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    let status: String = row.get(4)?;
    let erasure: Option<String> = row.get(5)?;
    let optional_time = |ms: Option<i64>| ms.map(time_of).transpose();
    Ok(Task {
        id: id_of(row.get(0)?)?,
        organisation: id_of(row.get(1)?)?,
        project_id: id_of(row.get(2)?)?,
        created_by: id_of(row.get(3)?)?,
        status: TaskStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, format!("status {status}").into())
        })?,
        erasure: erasure.map(|text| json_of::<serde_json::Value>(text).and_then(erasure_of)).transpose()?,
        deleted: row.get::<_, i64>(6)? as u64,
        error: row.get(7)?,
        created_at: time_of(row.get(8)?)?,
        started_at: optional_time(row.get(9)?)?,
        finished_at: optional_time(row.get(10)?)?,
    })
}

fn erasure_of(json: serde_json::Value) -> rusqlite::Result<Erasure> {
    Erasure::parse(json)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn create_task(&self, task: Task) -> StoreResult<()> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        task.id.to_string(),
                        task.organisation.to_string(),
                        task.project_id.to_string(),
                        task.created_by.to_string(),
                        task.status.as_str(),
                        task.erasure.as_ref().map(|e| e.to_json().to_string()),
                        task.deleted as i64,
                        task.error,
                        unix_millis(task.created_at),
                        task.started_at.map(unix_millis),
                        task.finished_at.map(unix_millis)
                    ],
                )
                .map(drop)
                .map_err(internal)
            })
            .await
    }

    async fn get_task(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<Task>> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND organisation = ?2"))
                    .and_then(|mut stmt| {
                        stmt.query_row(params![id.to_string(), organisation.to_string()], task_from_row).optional()
                    })
                    .map_err(internal)
            })
            .await
    }

    async fn next_task(&self) -> StoreResult<Option<Task>> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE status IN ('queued', 'running') ORDER BY created_at, id LIMIT 1"
                ))
                .and_then(|mut stmt| stmt.query_row([], task_from_row).optional())
                .map_err(internal)
            })
            .await
    }

    async fn erase_batch(&self, task: &Task, limit: u32, now: OffsetDateTime) -> StoreResult<u64> {
        let Some(erasure) = &task.erasure else { return Ok(0) };
        let statement = sql::erase_records(Dialect::Sqlite, task.project_id, erasure, limit);
        let id = task.id.to_string();
        self.engine
            .write(move |conn| {
                let deleted = conn
                    .prepare_cached(&statement.text)
                    .and_then(|mut stmt| stmt.execute(bind(&statement.params)))
                    .map_err(internal)? as u64;
                conn.prepare_cached(
                    "UPDATE tasks SET deleted = deleted + ?2, status = 'running', started_at = COALESCE(started_at, ?3) \
                     WHERE id = ?1 AND status IN ('queued', 'running')",
                )
                .and_then(|mut stmt| stmt.execute(params![id, deleted as i64, unix_millis(now)]))
                .map_err(internal)?;
                Ok(deleted)
            })
            .await
    }

    async fn finish_task(&self, task: &Task, failure: Option<String>, now: OffsetDateTime) -> StoreResult<()> {
        let pending = match (&failure, &task.erasure) {
            (None, Some(erasure)) => Some(sql::erase_pending_updates(Dialect::Sqlite, task.project_id, erasure)),
            _ => None,
        };
        let status = if failure.is_some() { TaskStatus::Error } else { TaskStatus::Done };
        let id = task.id.to_string();
        self.engine
            .write(move |conn| {
                if let Some(statement) = pending {
                    conn.prepare_cached(&statement.text)
                        .and_then(|mut stmt| stmt.execute(bind(&statement.params)))
                        .map_err(internal)?;
                }
                conn.prepare_cached(
                    "UPDATE tasks SET status = ?2, error = ?3, erasure = NULL, finished_at = ?4, \
                     started_at = COALESCE(started_at, ?4) WHERE id = ?1 AND status IN ('queued', 'running')",
                )
                .and_then(|mut stmt| stmt.execute(params![id, status.as_str(), failure, unix_millis(now)]))
                .map(drop)
                .map_err(internal)
            })
            .await
    }

    async fn all_project_ids(&self) -> StoreResult<Vec<ObjectId>> {
        self.engine
            .read(|conn| {
                conn.prepare_cached("SELECT id FROM projects ORDER BY id")
                    .and_then(|mut stmt| stmt.query_map([], |row| id_of(row.get(0)?))?.collect())
                    .map_err(internal)
            })
            .await
    }

    async fn purge_expired_records(&self, project: ObjectId, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        let statement = sql::purge_expired_records(Dialect::Sqlite, project, now, limit);
        self.engine
            .write(move |conn| {
                conn.prepare_cached(&statement.text)
                    .and_then(|mut stmt| stmt.execute(bind(&statement.params)))
                    .map(|n| n as u64)
                    .map_err(internal)
            })
            .await
    }

    async fn purge_expired_pending_updates(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM pending_updates WHERE expires_at <= ?1")
                    .and_then(|mut stmt| stmt.execute([unix_millis(now)]))
                    .map(|n| n as u64)
                    .map_err(internal)
            })
            .await
    }
}

#[async_trait]
impl ODataStore for SqliteStore {
    async fn odata_rows(&self, read: ODataRead<'_>) -> StoreResult<Vec<Vec<Value>>> {
        let statement = crate::odata::select(Dialect::Sqlite, &read);
        let types = read.column_kinds();
        self.engine
            .read(move |conn| {
                // Not cached: OData statements vary with every query and would push out the
                // statements the REST API repeats.
                let mut stmt = conn.prepare(&statement.text).map_err(internal)?;
                stmt.query_map(bind(&statement.params), |row| values_from_row(row, &types))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(internal)
            })
            .await
    }

    async fn odata_count(&self, entity: &EntityType, query: &Query, projects: &[ObjectId]) -> StoreResult<u64> {
        let statement = crate::odata::count(Dialect::Sqlite, entity, query, projects);
        self.engine
            .read(move |conn| {
                let mut stmt = conn.prepare(&statement.text).map_err(internal)?;
                stmt.query_row(bind(&statement.params), |row| row.get::<_, i64>(0)).map(|n| n as u64).map_err(internal)
            })
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> StoreResult<()> {
        let applied = self.engine.read(|conn| engine::applied_versions(conn)).await?;
        crate::migrations::check_applied(crate::migrations::SQLITE, &applied)
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.engine.close().await;
    }
}
