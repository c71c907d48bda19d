//! The PostgreSQL engine, for deployments that run several parley nodes on one database (or on
//! Citus). It gives the same answers as the embedded engine for the same calls: the contract
//! suite in `tests/contract.rs` runs on both and compares them.

mod convert;
mod engine;
mod exec;

use std::sync::OnceLock;

use async_trait::async_trait;
use parley_core::{
    Cursor, Erasure, ObjectId, RECORD_FIELDS, Record, RecordFilter, RecordUpdate, SortKey, Task, TaskStatus, Value,
};
use parley_odata::{EntityType, Query};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use self::convert::{Param, millis, record_from_row, values_from_row};
pub(crate) use self::engine::LOCK_KEY;
use self::engine::{Engine, applied_versions, internal, migrate};
use self::exec::PgExec;
use crate::error::{StoreError, StoreResult};
use crate::exec::BoxFuture;
use crate::model::{IngestCounts, UpdateOutcome, pending_update};
use crate::odata::ODataRead;
use crate::sql::{self, Dialect};
use crate::traits::{LifecycleStore, ODataStore, RecordStore, Store};

/// A store in one PostgreSQL database, reached through a pool of connections.
pub struct PgStore {
    engine: Engine,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names with a pool of at most `pool_size`
    /// connections, and brings its schema up to date. When the database cannot be reached the
    /// error is [`StoreError::Unavailable`], and its one-line text names the host and port.
    /// Connections are plain TCP or Unix sockets; TLS is not supported.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<PgStore> {
        let engine = Engine::new(url, pool_size)?;
        let mut client = engine.get().await?;
        migrate(&mut client, crate::migrations::POSTGRES).await.map_err(|e| match e {
            StoreError::Unavailable(reason) => {
                StoreError::unavailable(format!("PostgreSQL at {} went away: {reason}", engine.target()))
            }
            other => other,
        })?;
        Ok(PgStore { engine })
    }
}

/// The parameters of a statement, in order, as the driver takes them.
fn refs<T: ToSql + Sync>(params: &[T]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn id_of(row: &Row, index: usize) -> StoreResult<ObjectId> {
    let text: String = row.try_get(index).map_err(internal)?;
    ObjectId::parse(&text).map_err(|e| StoreError::internal(format!("stored id '{text}': {e}")))
}

fn time_of(row: &Row, index: usize) -> StoreResult<OffsetDateTime> {
    let t: OffsetDateTime = row.try_get(index).map_err(internal)?;
    Ok(t.to_offset(time::UtcOffset::UTC))
}

impl crate::exec::Engine for PgStore {
    type Exec<'c> = PgExec;

    async fn read<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut PgExec) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        let mut exec = PgExec::new(self.engine.get().await?);
        let result = job(&mut exec).await;
        exec.finish().await?;
        result
    }

    async fn write<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut PgExec) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        self.read(job).await
    }
}

impl PgStore {
    async fn query_records(&self, statement: &sql::Statement) -> StoreResult<Vec<Record>> {
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let client = self.engine.get().await?;
        let prepared = client.prepare_cached(&statement.text).await.map_err(internal)?;
        let rows = client.query(&prepared, &refs(&params)).await.map_err(internal)?;
        rows.iter().map(record_from_row).collect()
    }
}

const TASK_COLUMNS: &str =
    "id, organisation, project_id, created_by, status, erasure, deleted, error, created_at, started_at, finished_at";

fn task_from_row(row: &Row) -> StoreResult<Task> {
    let status: String = row.try_get(4).map_err(internal)?;
    let erasure = row.try_get::<_, Option<serde_json::Value>>(5).map_err(internal)?;
    let optional_time = |index: usize| -> StoreResult<Option<OffsetDateTime>> {
        Ok(row
            .try_get::<_, Option<OffsetDateTime>>(index)
            .map_err(internal)?
            .map(|t| t.to_offset(time::UtcOffset::UTC)))
    };
    Ok(Task {
        id: id_of(row, 0)?,
        organisation: id_of(row, 1)?,
        project_id: id_of(row, 2)?,
        created_by: id_of(row, 3)?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::internal(format!("stored task status '{status}'")))?,
        erasure: erasure
            .map(|json| Erasure::parse(json).map_err(|e| StoreError::internal(format!("stored erasure: {e}"))))
            .transpose()?,
        deleted: row.try_get::<_, i64>(6).map_err(internal)? as u64,
        error: row.try_get(7).map_err(internal)?,
        created_at: time_of(row, 8)?,
        started_at: optional_time(9)?,
        finished_at: optional_time(10)?,
    })
}

impl PgStore {
    /// Runs a statement built in [`sql`] and returns how many rows it changed.
    async fn execute(client: &impl tokio_postgres::GenericClient, statement: &sql::Statement) -> StoreResult<u64> {
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        client.execute(statement.text.as_str(), &refs(&params)).await.map_err(internal)
    }
}

#[async_trait]
impl LifecycleStore for PgStore {
    async fn create_task(&self, task: Task) -> StoreResult<()> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .await
            .map_err(internal)?;
        client
            .execute(
                &statement,
                &[
                    &task.id.to_string(),
                    &task.organisation.to_string(),
                    &task.project_id.to_string(),
                    &task.created_by.to_string(),
                    &task.status.as_str(),
                    &task.erasure.as_ref().map(|e| Json(e.to_json())),
                    &(task.deleted as i64),
                    &task.error,
                    &millis(task.created_at),
                    &task.started_at.map(millis),
                    &task.finished_at.map(millis),
                ],
            )
            .await
            .map(drop)
            .map_err(internal)
    }

    async fn get_task(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<Task>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND organisation = $2"))
            .await
            .map_err(internal)?;
        let row =
            client.query_opt(&statement, &[&id.to_string(), &organisation.to_string()]).await.map_err(internal)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn next_task(&self) -> StoreResult<Option<Task>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE status IN ('queued', 'running') ORDER BY created_at, id LIMIT 1"
            ))
            .await
            .map_err(internal)?;
        let row = client.query_opt(&statement, &[]).await.map_err(internal)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn erase_batch(&self, task: &Task, limit: u32, now: OffsetDateTime) -> StoreResult<u64> {
        let Some(erasure) = &task.erasure else { return Ok(0) };
        let statement = sql::erase_records(Dialect::Postgres, task.project_id, erasure, limit);
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let deleted = PgStore::execute(&*tx, &statement).await?;
        tx.execute(
            "UPDATE tasks SET deleted = deleted + $2, status = 'running', started_at = COALESCE(started_at, $3) \
             WHERE id = $1 AND status IN ('queued', 'running')",
            &[&task.id.to_string(), &(deleted as i64), &millis(now)],
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(deleted)
    }

    async fn finish_task(&self, task: &Task, failure: Option<String>, now: OffsetDateTime) -> StoreResult<()> {
        let status = if failure.is_some() { TaskStatus::Error } else { TaskStatus::Done };
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        if let (None, Some(erasure)) = (&failure, &task.erasure) {
            PgStore::execute(&*tx, &sql::erase_pending_updates(Dialect::Postgres, task.project_id, erasure)).await?;
        }
        tx.execute(
            "UPDATE tasks SET status = $2, error = $3, erasure = NULL, finished_at = $4, \
             started_at = COALESCE(started_at, $4) WHERE id = $1 AND status IN ('queued', 'running')",
            &[&task.id.to_string(), &status.as_str(), &failure, &millis(now)],
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)
    }

    async fn all_project_ids(&self) -> StoreResult<Vec<ObjectId>> {
        let client = self.engine.get().await?;
        let statement = client.prepare_cached("SELECT id FROM projects ORDER BY id").await.map_err(internal)?;
        let rows = client.query(&statement, &[]).await.map_err(internal)?;
        rows.iter().map(|row| id_of(row, 0)).collect()
    }

    async fn purge_expired_records(&self, project: ObjectId, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        let client = self.engine.get().await?;
        PgStore::execute(&**client, &sql::purge_expired_records(Dialect::Postgres, project, now, limit)).await
    }

    async fn purge_expired_pending_updates(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let client = self.engine.get().await?;
        let statement =
            client.prepare_cached("DELETE FROM pending_updates WHERE expires_at <= $1").await.map_err(internal)?;
        client.execute(&statement, &[&millis(now)]).await.map_err(internal)
    }
}

#[async_trait]
impl ODataStore for PgStore {
    async fn odata_rows(&self, read: ODataRead<'_>) -> StoreResult<Vec<Vec<Value>>> {
        let statement = crate::odata::select(Dialect::Postgres, &read);
        let types = read.column_kinds();
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let client = self.engine.get().await?;
        // Unnamed statements: OData queries vary too much to be worth caching.
        let rows = client.query(statement.text.as_str(), &refs(&params)).await.map_err(internal)?;
        rows.iter().map(|row| values_from_row(row, &types)).collect()
    }

    async fn odata_count(&self, entity: &EntityType, query: &Query, projects: &[ObjectId]) -> StoreResult<u64> {
        let statement = crate::odata::count(Dialect::Postgres, entity, query, projects);
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let client = self.engine.get().await?;
        let count: i64 = client.query_one(statement.text.as_str(), &refs(&params)).await.map_err(internal)?.get(0);
        Ok(count as u64)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ready(&self) -> StoreResult<()> {
        let client = self.engine.get().await?;
        let applied = applied_versions(&client).await?;
        crate::migrations::check_applied(crate::migrations::POSTGRES, &applied)
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn close(&self) {
        self.engine.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_statement_casts_every_column() {
        let sql = insert_records_sql();
        assert_eq!(sql.matches("[]").count(), RECORD_FIELDS.len());
        assert!(sql.contains("$7::timestamptz[]"), "{sql}");
        assert!(sql.contains("$9::json[]"), "{sql}");
        assert!(sql.ends_with("ON CONFLICT (project_id, input_id) DO NOTHING RETURNING project_id, input_id"), "{sql}");
    }
}
