//! The PostgreSQL engine, for deployments that run several parley nodes on one database (or on
//! Citus). It gives the same answers as the embedded engine for the same calls: the contract
//! suite in `tests/contract.rs` runs on both and compares them.

mod convert;
mod engine;
mod exec;
mod identity;

use std::sync::OnceLock;

use async_trait::async_trait;
use parley_core::{Cursor, ObjectId, RECORD_FIELDS, Record, RecordFilter, RecordUpdate, SortKey};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use self::convert::{Param, millis, record_from_row, sql_type};
use self::engine::{Engine, applied_versions, internal, migrate};
use self::exec::PgExec;
use crate::error::{StoreError, StoreResult};
use crate::exec::BoxFuture;
use crate::model::{IngestCounts, UpdateOutcome, pending_update};
use crate::sql::{self, Dialect};
use crate::traits::{RecordStore, Store};

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

/// The ingest statement: one row per element of 53 parallel arrays, so that a batch of any size
/// is one prepared statement and one round trip. It returns the keys of the records inserted.
fn insert_records_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let arrays: Vec<String> =
            RECORD_FIELDS.iter().enumerate().map(|(i, f)| format!("${}::{}[]", i + 1, sql_type(f.ty))).collect();
        format!(
            "INSERT INTO records ({}) SELECT * FROM unnest({}) ON CONFLICT (project_id, input_id) DO NOTHING \
             RETURNING project_id, input_id",
            sql::record_columns(),
            arrays.join(", ")
        )
    })
}

/// The first key of the advisory locks that order pending updates against ingests. The two-key
/// form is a key space of its own, apart from the one-key lock of migrations.
const PENDING_LOCK_CLASS: i32 = 0x706e_6475;

/// The second key: one lock per project (a hash; two projects that share a lock only wait for
/// each other a little more). Ingests take it shared, so they never wait for one another; an
/// update about to become pending takes it exclusive, so that it waits for the ingests in flight
/// and the ingests that follow it see it. A lock per record would be finer, but a batch of 10 000
/// records would take 10 000 locks, more than PostgreSQL's lock table holds by default.
fn project_lock_key(project: ObjectId) -> i32 {
    // FNV-1a, 32 bits.
    let hash = project
        .to_string()
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash as i32
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

#[async_trait]
impl RecordStore for PgStore {
    async fn insert_records(&self, records: Vec<Record>, now: OffsetDateTime) -> StoreResult<IngestCounts> {
        if records.is_empty() {
            return Ok(IngestCounts::default());
        }
        let columns: Vec<Vec<Param<'_>>> =
            (0..RECORD_FIELDS.len()).map(|i| records.iter().map(|r| Param(&r.values()[i])).collect()).collect();
        let mut locks: Vec<i32> = records.iter().map(|r| project_lock_key(r.project_id())).collect();
        locks.sort_unstable();
        locks.dedup();
        let mut client = self.engine.get().await?;
        let insert = client.prepare_cached(insert_records_sql()).await.map_err(internal)?;
        let tx = client.transaction().await.map_err(internal)?;
        // In key order, so that batches of several projects cannot wait for each other in a cycle.
        tx.execute(
            "SELECT pg_advisory_xact_lock_shared($1, k) FROM unnest($2::int4[]) AS k",
            &[&PENDING_LOCK_CLASS, &locks],
        )
        .await
        .map_err(internal)?;
        let inserted = tx.query(&insert, &refs(&columns)).await.map_err(internal)?;
        let mut pending_applied = 0;
        if !inserted.is_empty() {
            let projects = inserted.iter().map(|row| row.try_get::<_, String>(0)).collect::<Result<Vec<_>, _>>();
            let inputs = inserted.iter().map(|row| row.try_get::<_, String>(1)).collect::<Result<Vec<_>, _>>();
            let (projects, inputs) = (projects.map_err(internal)?, inputs.map_err(internal)?);
            pending_applied = apply_pending_updates(&tx, &projects, &inputs, now).await?;
        }
        tx.commit().await.map_err(internal)?;
        let inserted = inserted.len() as u64;
        Ok(IngestCounts { inserted, duplicates: records.len() as u64 - inserted, pending_applied })
    }

    async fn update_records(
        &self,
        update: RecordUpdate,
        now: OffsetDateTime,
        defer_until: Option<OffsetDateTime>,
    ) -> StoreResult<UpdateOutcome> {
        let statement = sql::update_records(Dialect::Postgres, &update, now);
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let mut client = self.engine.get().await?;
        let prepared = client.prepare_cached(&statement.text).await.map_err(internal)?;
        let matched = client.execute(&prepared, &refs(&params)).await.map_err(internal)?;
        let (Some(input), Some(until), 0) = (&update.input_id, defer_until, matched) else {
            return Ok(UpdateOutcome { matched, deferred: false });
        };
        // Nothing matched. Under the project's exclusive lock, an ingest of the record is either
        // committed (and the update matches it now) or not yet past its lock (and will see the
        // pending update).
        let tx = client.transaction().await.map_err(internal)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&PENDING_LOCK_CLASS, &project_lock_key(update.project_id)],
        )
        .await
        .map_err(internal)?;
        let matched = tx.execute(&prepared, &refs(&params)).await.map_err(internal)?;
        if matched > 0 {
            tx.commit().await.map_err(internal)?;
            return Ok(UpdateOutcome { matched, deferred: false });
        }
        let project = update.project_id.to_string();
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM records WHERE project_id = $1 AND input_id = $2)",
                &[&project, input],
            )
            .await
            .map_err(internal)?
            .get(0);
        if !exists {
            tx.execute(
                "INSERT INTO pending_updates \
                 (project_id, input_id, seq, contact_id, session_id, properties, received_at, expires_at) \
                 SELECT $1::text, $2::text, COALESCE(MAX(seq), 0) + 1, $3::text, $4::text, $5::json, $6::timestamptz, \
                 $7::timestamptz FROM pending_updates WHERE project_id = $1 AND input_id = $2",
                &[
                    &project,
                    input,
                    &update.contact_id,
                    &update.session_id,
                    &Json(update.properties()),
                    &millis(now),
                    &millis(until),
                ],
            )
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(UpdateOutcome { matched: 0, deferred: !exists })
    }

    async fn fetch_records(
        &self,
        filter: &RecordFilter,
        sort: &[SortKey],
        after: Option<&Cursor>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<Record>> {
        let statement = sql::select_records(Dialect::Postgres, filter, sort, after, offset, limit);
        self.query_records(&statement).await
    }

    async fn count_records(&self, filter: &RecordFilter) -> StoreResult<u64> {
        let statement = sql::count_records(Dialect::Postgres, filter);
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let client = self.engine.get().await?;
        let prepared = client.prepare_cached(&statement.text).await.map_err(internal)?;
        let count: i64 = client.query_one(&prepared, &refs(&params)).await.map_err(internal)?.get(0);
        Ok(count as u64)
    }

    async fn get_record(&self, projects: &[ObjectId], id: ObjectId) -> StoreResult<Option<Record>> {
        let statement = sql::select_record(Dialect::Postgres, projects, id);
        Ok(self.query_records(&statement).await?.into_iter().next())
    }
}

/// Applies the unexpired pending updates of the records just inserted (given by project and
/// input), oldest first, and removes every pending update of their inputs. Returns how many
/// changed a record.
async fn apply_pending_updates(
    tx: &deadpool_postgres::Transaction<'_>,
    projects: &[String],
    inputs: &[String],
    now: OffsetDateTime,
) -> StoreResult<u64> {
    let select = tx
        .prepare_cached(
            "SELECT p.project_id, p.input_id, p.contact_id, p.session_id, p.properties, p.expires_at \
             FROM pending_updates p JOIN unnest($1::text[], $2::text[]) AS r (project_id, input_id) \
             ON p.project_id = r.project_id AND p.input_id = r.input_id ORDER BY p.project_id, p.input_id, p.seq",
        )
        .await
        .map_err(internal)?;
    let waiting = tx.query(&select, &[&projects, &inputs]).await.map_err(internal)?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let mut applied = 0;
    let (mut done_projects, mut done_inputs) = (Vec::new(), Vec::new());
    for row in &waiting {
        let project: String = row.try_get(0).map_err(internal)?;
        let input: String = row.try_get(1).map_err(internal)?;
        if time_of(row, 5)? > now {
            let update = pending_update(
                id_of(row, 0)?,
                row.try_get(2).map_err(internal)?,
                row.try_get(3).map_err(internal)?,
                input.clone(),
                row.try_get(4).map_err(internal)?,
            )?;
            let statement = sql::update_records(Dialect::Postgres, &update, now);
            let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
            let prepared = tx.prepare_cached(&statement.text).await.map_err(internal)?;
            applied += tx.execute(&prepared, &refs(&params)).await.map_err(internal)?;
        }
        done_projects.push(project);
        done_inputs.push(input);
    }
    tx.execute(
        "DELETE FROM pending_updates p USING unnest($1::text[], $2::text[]) AS r (project_id, input_id) \
         WHERE p.project_id = r.project_id AND p.input_id = r.input_id",
        &[&done_projects, &done_inputs],
    )
    .await
    .map_err(internal)?;
    Ok(applied)
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
