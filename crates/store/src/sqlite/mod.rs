//! The embedded SQLite engine, parley's default.

mod convert;
mod engine;
mod exec;
mod identity;

pub(crate) use self::identity::is_last_admin;

use std::path::Path;

use async_trait::async_trait;
use parley_core::field::idx;
use parley_core::value::{from_unix_millis, unix_millis};
use parley_core::{Cursor, ObjectId, Record, RecordFilter, RecordUpdate, SortKey};
use rusqlite::params;
use time::OffsetDateTime;

use self::convert::{params as bind, record_from_row};
pub use self::engine::WriteStats;
use self::engine::{Engine, internal};
use self::exec::SqliteExec;
use crate::error::{StoreError, StoreResult};
use crate::exec::{BoxFuture, run_ready};
use crate::model::{IngestCounts, UpdateOutcome, pending_update};
use crate::sql::{self, Dialect};
use crate::traits::{RecordStore, Store};

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

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
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

#[async_trait]
impl RecordStore for SqliteStore {
    async fn insert_records(&self, records: Vec<Record>, now: OffsetDateTime) -> StoreResult<IngestCounts> {
        self.engine
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(&sql::insert_record(Dialect::Sqlite)).map_err(internal)?;
                // The writer is the only one: what it sees here cannot change before it commits.
                let any_pending: bool = conn
                    .query_row("SELECT EXISTS (SELECT 1 FROM pending_updates)", [], |row| row.get(0))
                    .map_err(internal)?;
                let mut counts = IngestCounts::default();
                for record in &records {
                    match stmt.execute(bind(record.values())).map_err(internal)? {
                        0 => counts.duplicates += 1,
                        _ => {
                            counts.inserted += 1;
                            if any_pending {
                                counts.pending_applied += apply_pending_updates(conn, record, now)?;
                            }
                        }
                    }
                }
                Ok(counts)
            })
            .await
    }

    async fn update_records(
        &self,
        update: RecordUpdate,
        now: OffsetDateTime,
        defer_until: Option<OffsetDateTime>,
    ) -> StoreResult<UpdateOutcome> {
        self.engine
            .write(move |conn| {
                let statement = sql::update_records(Dialect::Sqlite, &update, now);
                let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
                let matched = stmt.execute(bind(&statement.params)).map_err(internal)? as u64;
                let (Some(input), Some(until), 0) = (&update.input_id, defer_until, matched) else {
                    return Ok(UpdateOutcome { matched, deferred: false });
                };
                let project = update.project_id.to_string();
                let exists: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM records WHERE project_id = ?1 AND input_id = ?2)")
                    .and_then(|mut stmt| stmt.query_row(params![project, input], |row| row.get(0)))
                    .map_err(internal)?;
                if exists {
                    return Ok(UpdateOutcome { matched: 0, deferred: false });
                }
                conn.prepare_cached(
                    "INSERT INTO pending_updates \
                     (project_id, input_id, seq, contact_id, session_id, properties, received_at, expires_at) \
                     SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4, ?5, ?6, ?7 FROM pending_updates \
                     WHERE project_id = ?1 AND input_id = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        project,
                        input,
                        update.contact_id,
                        update.session_id,
                        serde_json::Value::Object(update.properties()).to_string(),
                        unix_millis(now),
                        unix_millis(until)
                    ])
                })
                .map_err(internal)?;
                Ok(UpdateOutcome { matched: 0, deferred: true })
            })
            .await
    }

    async fn fetch_records(
        &self,
        filter: &RecordFilter,
        sort: &[SortKey],
        after: Option<&Cursor>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<Record>> {
        let statement = sql::select_records(Dialect::Sqlite, filter, sort, after, offset, limit);
        self.engine.read(move |conn| query_records(conn, &statement)).await
    }

    async fn count_records(&self, filter: &RecordFilter) -> StoreResult<u64> {
        let statement = sql::count_records(Dialect::Sqlite, filter);
        self.engine
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
                stmt.query_row(bind(&statement.params), |row| row.get::<_, i64>(0)).map(|n| n as u64).map_err(internal)
            })
            .await
    }

    async fn get_record(&self, projects: &[ObjectId], id: ObjectId) -> StoreResult<Option<Record>> {
        let statement = sql::select_record(Dialect::Sqlite, projects, id);
        self.engine.read(move |conn| Ok(query_records(conn, &statement)?.into_iter().next())).await
    }
}

/// Applies the unexpired pending updates of a record just inserted, oldest first, and removes
/// every pending update of its input. Returns how many changed the record.
fn apply_pending_updates(conn: &rusqlite::Connection, record: &Record, now: OffsetDateTime) -> StoreResult<u64> {
    let project_id = record.project_id();
    let input = record.get(idx::INPUT_ID).as_text().unwrap_or_default().to_owned();
    let project = project_id.to_string();
    let waiting = conn
        .prepare_cached(
            "SELECT contact_id, session_id, properties FROM pending_updates \
             WHERE project_id = ?1 AND input_id = ?2 AND expires_at > ?3 ORDER BY seq",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![project, input, unix_millis(now)], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, String>(2)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    let mut applied = 0;
    for (contact, session, properties) in waiting {
        let properties = serde_json::from_str(&properties)
            .map_err(|e| StoreError::internal(format!("a stored pending update is unreadable: {e}")))?;
        let update = pending_update(project_id, contact, session, input.clone(), properties)?;
        let statement = sql::update_records(Dialect::Sqlite, &update, now);
        let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
        applied += stmt.execute(bind(&statement.params)).map_err(internal)? as u64;
    }
    conn.prepare_cached("DELETE FROM pending_updates WHERE project_id = ?1 AND input_id = ?2")
        .and_then(|mut stmt| stmt.execute(params![project, input]))
        .map_err(internal)?;
    Ok(applied)
}

fn query_records(conn: &rusqlite::Connection, statement: &sql::Statement) -> StoreResult<Vec<Record>> {
    let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
    stmt.query_map(bind(&statement.params), record_from_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(internal)
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
