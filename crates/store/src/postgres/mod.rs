//! The PostgreSQL engine, for deployments that run several parley nodes on one database (or on
//! Citus). It gives the same answers as the embedded engine for the same calls: the contract
//! suite in `tests/contract.rs` runs on both and compares them.

mod convert;
mod engine;

use std::sync::OnceLock;

use async_trait::async_trait;
use parley_core::{
    Caller, Cursor, ObjectId, OrgRole, Project, ProjectAccess, ProjectRole, ProjectSettings, RECORD_FIELDS, Record,
    RecordFilter, RecordUpdate, SortKey, Value,
};
use parley_odata::{EntityType, Query};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use self::convert::{Param, millis, record_from_row, sql_type, values_from_row};
use self::engine::{Engine, LOCK_KEY, internal, migrate, schema_version};
use crate::error::{StoreError, StoreResult};
use crate::model::{ApiKeyInfo, Bootstrap, IngestCounts, NewApiKey};
use crate::odata::ODataRead;
use crate::sql::{self, Dialect};
use crate::traits::{IdentityStore, ODataStore, ProjectStore, RecordStore, Store};

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
                StoreError::Unavailable(format!("PostgreSQL at {} went away: {reason}", engine.target()))
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
    ObjectId::parse(&text).map_err(|e| StoreError::Internal(format!("stored id '{text}': {e}")))
}

fn time_of(row: &Row, index: usize) -> StoreResult<OffsetDateTime> {
    let t: OffsetDateTime = row.try_get(index).map_err(internal)?;
    Ok(t.to_offset(time::UtcOffset::UTC))
}

const PROJECT_COLUMNS: &str = "p.id, p.organisation, p.name, p.settings, p.created_at, p.updated_at";

fn project_from_row(row: &Row) -> StoreResult<Project> {
    Ok(Project {
        id: id_of(row, 0)?,
        organisation: id_of(row, 1)?,
        name: row.try_get(2).map_err(internal)?,
        settings: row.try_get::<_, Json<ProjectSettings>>(3).map_err(internal)?.0,
        created_at: time_of(row, 4)?,
        updated_at: time_of(row, 5)?,
    })
}

/// The ingest statement: one row per element of 53 parallel arrays, so that a batch of any size
/// is one prepared statement and one round trip, and atomic as a single statement is.
fn insert_records_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let arrays: Vec<String> =
            RECORD_FIELDS.iter().enumerate().map(|(i, f)| format!("${}::{}[]", i + 1, sql_type(f.ty))).collect();
        format!(
            "INSERT INTO records ({}) SELECT * FROM unnest({}) ON CONFLICT (project_id, input_id) DO NOTHING",
            sql::record_columns(),
            arrays.join(", ")
        )
    })
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<bool> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await.map_err(internal)?;
        let exists: bool =
            tx.query_one("SELECT EXISTS (SELECT 1 FROM organisations)", &[]).await.map_err(internal)?.get(0);
        if exists {
            return Ok(false);
        }
        let now = millis(b.api_key.created_at);
        tx.execute(
            "INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)",
            &[&b.organisation_id.to_string(), &b.organisation_name, &now],
        )
        .await
        .map_err(internal)?;
        tx.execute(
            "INSERT INTO users (id, organisation, email, name, password_hash, roles, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &b.admin_id.to_string(),
                &b.organisation_id.to_string(),
                &b.admin_email,
                &"Administrator",
                &b.admin_password_hash,
                &Json(&b.admin_roles),
                &now,
            ],
        )
        .await
        .map_err(internal)?;
        insert_key(&*tx, &b.api_key).await?;
        tx.commit().await.map_err(internal)?;
        Ok(true)
    }

    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT u.id, u.organisation, u.roles FROM api_keys k JOIN users u ON u.id = k.user_id \
                 WHERE k.secret_hash = $1",
            )
            .await
            .map_err(internal)?;
        let row = client.query_opt(&statement, &[&&secret_hash[..]]).await.map_err(internal)?;
        row.map(|row| {
            Ok(Caller {
                user_id: id_of(&row, 0)?,
                organisation: id_of(&row, 1)?,
                org_roles: row.try_get::<_, Json<Vec<OrgRole>>>(2).map_err(internal)?.0,
            })
        })
        .transpose()
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo> {
        let client = self.engine.get().await?;
        insert_key(&**client, &key).await?;
        Ok(ApiKeyInfo { id: key.id, name: key.name, created_at: millis(key.created_at) })
    }

    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached("SELECT id, name, created_at FROM api_keys WHERE user_id = $1 ORDER BY created_at, id")
            .await
            .map_err(internal)?;
        let rows = client.query(&statement, &[&user_id.to_string()]).await.map_err(internal)?;
        rows.iter()
            .map(|row| {
                Ok(ApiKeyInfo {
                    id: id_of(row, 0)?,
                    name: row.try_get(1).map_err(internal)?,
                    created_at: time_of(row, 2)?,
                })
            })
            .collect()
    }

    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool> {
        let client = self.engine.get().await?;
        let statement =
            client.prepare_cached("DELETE FROM api_keys WHERE id = $1 AND user_id = $2").await.map_err(internal)?;
        let deleted =
            client.execute(&statement, &[&key_id.to_string(), &user_id.to_string()]).await.map_err(internal)?;
        Ok(deleted > 0)
    }
}

async fn insert_key(client: &impl tokio_postgres::GenericClient, key: &NewApiKey) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&key.id.to_string(), &key.user_id.to_string(), &key.name, &&key.secret_hash[..], &millis(key.created_at)],
        )
        .await
        .map(drop)
        .map_err(internal)
}

#[async_trait]
impl ProjectStore for PgStore {
    async fn create_project(&self, p: Project) -> StoreResult<()> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO projects (id, organisation, name, settings, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(internal)?;
        client
            .execute(
                &statement,
                &[
                    &p.id.to_string(),
                    &p.organisation.to_string(),
                    &p.name,
                    &Json(&p.settings),
                    &millis(p.created_at),
                    &millis(p.updated_at),
                ],
            )
            .await
            .map(drop)
            .map_err(internal)
    }

    async fn project_for(&self, caller: &Caller, id: ObjectId) -> StoreResult<Option<(Project, ProjectAccess)>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {PROJECT_COLUMNS}, m.roles FROM projects p \
                 LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $3 \
                 WHERE p.id = $1 AND p.organisation = $2"
            ))
            .await
            .map_err(internal)?;
        let row = client
            .query_opt(&statement, &[&id.to_string(), &caller.organisation.to_string(), &caller.user_id.to_string()])
            .await
            .map_err(internal)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let roles: Vec<ProjectRole> =
            row.try_get::<_, Option<Json<Vec<ProjectRole>>>>(6).map_err(internal)?.map(|r| r.0).unwrap_or_default();
        let Some(access) = caller.project_access(&roles) else {
            return Ok(None);
        };
        Ok(Some((project_from_row(&row)?, access)))
    }

    async fn list_projects(&self, caller: &Caller, skip: u64, limit: u32) -> StoreResult<(Vec<Project>, u64)> {
        let client = self.engine.get().await?;
        let org = caller.organisation.to_string();
        let user = caller.user_id.to_string();
        let (limit, skip) = (i64::from(limit), i64::try_from(skip).unwrap_or(i64::MAX));
        let (rows, total) = if caller.is_admin() {
            let list = client
                .prepare_cached(&format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.organisation = $1 \
                     ORDER BY p.created_at, p.id LIMIT $2 OFFSET $3"
                ))
                .await
                .map_err(internal)?;
            let count = client
                .prepare_cached("SELECT COUNT(*) FROM projects p WHERE p.organisation = $1")
                .await
                .map_err(internal)?;
            let rows = client.query(&list, &[&org, &limit, &skip]).await.map_err(internal)?;
            let total: i64 = client.query_one(&count, &[&org]).await.map_err(internal)?.get(0);
            (rows, total)
        } else {
            let visible = "p.organisation = $1 AND EXISTS \
                           (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = $2)";
            let list = client
                .prepare_cached(&format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects p WHERE {visible} \
                     ORDER BY p.created_at, p.id LIMIT $3 OFFSET $4"
                ))
                .await
                .map_err(internal)?;
            let count = client
                .prepare_cached(&format!("SELECT COUNT(*) FROM projects p WHERE {visible}"))
                .await
                .map_err(internal)?;
            let rows = client.query(&list, &[&org, &user, &limit, &skip]).await.map_err(internal)?;
            let total: i64 = client.query_one(&count, &[&org, &user]).await.map_err(internal)?.get(0);
            (rows, total)
        };
        let projects = rows.iter().map(project_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok((projects, total as u64))
    }

    async fn visible_project_ids(&self, caller: &Caller) -> StoreResult<Vec<ObjectId>> {
        let client = self.engine.get().await?;
        let org = caller.organisation.to_string();
        let rows = if caller.is_admin() {
            let statement =
                client.prepare_cached("SELECT id FROM projects WHERE organisation = $1").await.map_err(internal)?;
            client.query(&statement, &[&org]).await
        } else {
            let statement = client
                .prepare_cached(
                    "SELECT p.id FROM projects p JOIN project_members m ON m.project_id = p.id \
                     WHERE p.organisation = $1 AND m.user_id = $2",
                )
                .await
                .map_err(internal)?;
            client.query(&statement, &[&org, &caller.user_id.to_string()]).await
        }
        .map_err(internal)?;
        rows.iter().map(|row| id_of(row, 0)).collect()
    }

    async fn update_project(&self, p: Project) -> StoreResult<()> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE projects SET name = $3, settings = $4, updated_at = $5 WHERE id = $1 AND organisation = $2",
            )
            .await
            .map_err(internal)?;
        client
            .execute(
                &statement,
                &[&p.id.to_string(), &p.organisation.to_string(), &p.name, &Json(&p.settings), &millis(p.updated_at)],
            )
            .await
            .map(drop)
            .map_err(internal)
    }

    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let id = id.to_string();
        let deleted = tx
            .execute("DELETE FROM projects WHERE id = $1 AND organisation = $2", &[&id, &organisation.to_string()])
            .await
            .map_err(internal)?;
        if deleted > 0 {
            tx.execute("DELETE FROM records WHERE project_id = $1", &[&id]).await.map_err(internal)?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(deleted > 0)
    }
}

#[async_trait]
impl RecordStore for PgStore {
    async fn insert_records(&self, records: Vec<Record>) -> StoreResult<IngestCounts> {
        if records.is_empty() {
            return Ok(IngestCounts::default());
        }
        let columns: Vec<Vec<Param<'_>>> =
            (0..RECORD_FIELDS.len()).map(|i| records.iter().map(|r| Param(&r.values()[i])).collect()).collect();
        let client = self.engine.get().await?;
        let statement = client.prepare_cached(insert_records_sql()).await.map_err(internal)?;
        let inserted = client.execute(&statement, &refs(&columns)).await.map_err(internal)?;
        Ok(IngestCounts { inserted, duplicates: records.len() as u64 - inserted })
    }

    async fn update_records(&self, update: RecordUpdate, now: OffsetDateTime) -> StoreResult<u64> {
        let statement = sql::update_records(Dialect::Postgres, &update, now);
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let client = self.engine.get().await?;
        let prepared = client.prepare_cached(&statement.text).await.map_err(internal)?;
        client.execute(&prepared, &refs(&params)).await.map_err(internal)
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
impl ODataStore for PgStore {
    async fn odata_rows(&self, read: ODataRead<'_>) -> StoreResult<Vec<Vec<Value>>> {
        let statement = crate::odata::select(Dialect::Postgres, &read);
        let types = read.column_types();
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
        let expected = crate::migrations::POSTGRES.last().map_or(0, |m| m.version);
        let client = self.engine.get().await?;
        let version = schema_version(&client).await?;
        if version == expected {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!("schema version {version}, expected {expected}")))
        }
    }

    fn engine(&self) -> &'static str {
        "postgres"
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
        assert!(sql.ends_with("ON CONFLICT (project_id, input_id) DO NOTHING"), "{sql}");
    }
}
