//! The embedded SQLite engine, parley's default.

mod convert;
mod engine;

use std::path::Path;

use async_trait::async_trait;
use parley_core::value::{from_unix_millis, unix_millis};
use parley_core::{
    Caller, Cursor, ObjectId, OrgRole, Project, ProjectAccess, ProjectRole, Record, RecordFilter, RecordUpdate, SortKey,
};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use self::convert::{params as bind, record_from_row};
pub use self::engine::WriteStats;
use self::engine::{Engine, internal};
use crate::error::{StoreError, StoreResult};
use crate::model::{ApiKeyInfo, Bootstrap, IngestCounts, NewApiKey};
use crate::sql::{self, Dialect};
use crate::traits::{IdentityStore, ProjectStore, RecordStore, Store};

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

const PROJECT_COLUMNS: &str = "p.id, p.organisation, p.name, p.settings, p.created_at, p.updated_at";

fn project_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: id_of(row.get(0)?)?,
        organisation: id_of(row.get(1)?)?,
        name: row.get(2)?,
        settings: json_of(row.get(3)?)?,
        created_at: time_of(row.get(4)?)?,
        updated_at: time_of(row.get(5)?)?,
    })
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                let exists: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM organisations)", [], |r| r.get(0)).map_err(internal)?;
                if exists {
                    return Ok(false);
                }
                let now = unix_millis(b.api_key.created_at);
                conn.execute(
                    "INSERT INTO organisations (id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![b.organisation_id.to_string(), b.organisation_name, now],
                )
                .map_err(internal)?;
                conn.execute(
                    "INSERT INTO users (id, organisation, email, name, password_hash, roles, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        b.admin_id.to_string(),
                        b.organisation_id.to_string(),
                        b.admin_email,
                        "Administrator",
                        b.admin_password_hash,
                        json_text(&b.admin_roles),
                        now
                    ],
                )
                .map_err(internal)?;
                insert_key(conn, &b.api_key)?;
                Ok(true)
            })
            .await
    }

    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT u.id, u.organisation, u.roles FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.query_row([&secret_hash[..]], |row| {
                        Ok(Caller {
                            user_id: id_of(row.get(0)?)?,
                            organisation: id_of(row.get(1)?)?,
                            org_roles: json_of::<Vec<OrgRole>>(row.get(2)?)?,
                        })
                    })
                    .optional()
                })
                .map_err(internal)
            })
            .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo> {
        self.engine
            .write(move |conn| {
                insert_key(conn, &key)?;
                Ok(ApiKeyInfo { id: key.id, name: key.name, created_at: key.created_at })
            })
            .await
    }

    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>> {
        self.engine
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, name, created_at FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id",
                    )
                    .map_err(internal)?;
                let rows = stmt
                    .query_map([user_id.to_string()], |row| {
                        Ok(ApiKeyInfo { id: id_of(row.get(0)?)?, name: row.get(1)?, created_at: time_of(row.get(2)?)? })
                    })
                    .map_err(internal)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
            })
            .await
    }

    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2",
                    params![key_id.to_string(), user_id.to_string()],
                )
                .map(|n| n > 0)
                .map_err(internal)
            })
            .await
    }
}

fn insert_key(conn: &rusqlite::Connection, key: &NewApiKey) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.id.to_string(),
            key.user_id.to_string(),
            key.name,
            &key.secret_hash[..],
            unix_millis(key.created_at)
        ],
    )
    .map(drop)
    .map_err(internal)
}

#[async_trait]
impl ProjectStore for SqliteStore {
    async fn create_project(&self, p: Project) -> StoreResult<()> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO projects (id, organisation, name, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        p.id.to_string(),
                        p.organisation.to_string(),
                        p.name,
                        json_text(&p.settings),
                        unix_millis(p.created_at),
                        unix_millis(p.updated_at)
                    ],
                )
                .map(drop)
                .map_err(internal)
            })
            .await
    }

    async fn project_for(&self, caller: &Caller, id: ObjectId) -> StoreResult<Option<(Project, ProjectAccess)>> {
        let caller = caller.clone();
        self.engine
            .read(move |conn| {
                let found = conn
                    .prepare_cached(&format!(
                        "SELECT {PROJECT_COLUMNS}, m.roles FROM projects p \
                         LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?3 \
                         WHERE p.id = ?1 AND p.organisation = ?2"
                    ))
                    .and_then(|mut stmt| {
                        stmt.query_row(
                            params![id.to_string(), caller.organisation.to_string(), caller.user_id.to_string()],
                            |row| {
                                let roles: Option<String> = row.get(6)?;
                                let roles: Vec<ProjectRole> = roles.map(json_of).transpose()?.unwrap_or_default();
                                Ok((project_from_row(row)?, roles))
                            },
                        )
                        .optional()
                    })
                    .map_err(internal)?;
                Ok(found.and_then(|(project, roles)| caller.project_access(&roles).map(|access| (project, access))))
            })
            .await
    }

    async fn list_projects(&self, caller: &Caller, skip: u64, limit: u32) -> StoreResult<(Vec<Project>, u64)> {
        let caller = caller.clone();
        self.engine
            .read(move |conn| {
                let visible = if caller.is_admin() {
                    "p.organisation = ?1"
                } else {
                    "p.organisation = ?1 AND EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = ?2)"
                };
                let org = caller.organisation.to_string();
                let user = caller.user_id.to_string();
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {PROJECT_COLUMNS} FROM projects p WHERE {visible} ORDER BY p.created_at, p.id LIMIT ?3 OFFSET ?4"
                    ))
                    .map_err(internal)?;
                let items = stmt
                    .query_map(params![org, user, limit, skip as i64], project_from_row)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(internal)?;
                let total: i64 = conn
                    .prepare_cached(&format!("SELECT COUNT(*) FROM projects p WHERE {visible} AND ?2 IS NOT NULL"))
                    .and_then(|mut stmt| stmt.query_row(params![org, user], |row| row.get(0)))
                    .map_err(internal)?;
                Ok((items, total as u64))
            })
            .await
    }

    async fn visible_project_ids(&self, caller: &Caller) -> StoreResult<Vec<ObjectId>> {
        let caller = caller.clone();
        self.engine
            .read(move |conn| {
                let sql = if caller.is_admin() {
                    "SELECT id FROM projects WHERE organisation = ?1 AND ?2 IS NOT NULL"
                } else {
                    "SELECT p.id FROM projects p JOIN project_members m ON m.project_id = p.id WHERE p.organisation = ?1 AND m.user_id = ?2"
                };
                let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
                stmt.query_map(params![caller.organisation.to_string(), caller.user_id.to_string()], |row| id_of(row.get(0)?))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(internal)
            })
            .await
    }

    async fn update_project(&self, p: Project) -> StoreResult<()> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    "UPDATE projects SET name = ?3, settings = ?4, updated_at = ?5 WHERE id = ?1 AND organisation = ?2",
                    params![
                        p.id.to_string(),
                        p.organisation.to_string(),
                        p.name,
                        json_text(&p.settings),
                        unix_millis(p.updated_at)
                    ],
                )
                .map(drop)
                .map_err(internal)
            })
            .await
    }

    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                let deleted = conn
                    .execute(
                        "DELETE FROM projects WHERE id = ?1 AND organisation = ?2",
                        params![id.to_string(), organisation.to_string()],
                    )
                    .map_err(internal)?;
                if deleted > 0 {
                    conn.execute("DELETE FROM records WHERE project_id = ?1", [id.to_string()]).map_err(internal)?;
                }
                Ok(deleted > 0)
            })
            .await
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn insert_records(&self, records: Vec<Record>) -> StoreResult<IngestCounts> {
        self.engine
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(&sql::insert_record(Dialect::Sqlite)).map_err(internal)?;
                let mut counts = IngestCounts::default();
                for record in &records {
                    match stmt.execute(bind(record.values())).map_err(internal)? {
                        0 => counts.duplicates += 1,
                        _ => counts.inserted += 1,
                    }
                }
                Ok(counts)
            })
            .await
    }

    async fn update_records(&self, update: RecordUpdate, now: OffsetDateTime) -> StoreResult<u64> {
        self.engine
            .write(move |conn| {
                let statement = sql::update_records(Dialect::Sqlite, &update, now);
                let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
                stmt.execute(bind(&statement.params)).map(|n| n as u64).map_err(internal)
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

fn query_records(conn: &rusqlite::Connection, statement: &sql::Statement) -> StoreResult<Vec<Record>> {
    let mut stmt = conn.prepare_cached(&statement.text).map_err(internal)?;
    stmt.query_map(bind(&statement.params), record_from_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(internal)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> StoreResult<()> {
        let expected = crate::migrations::SQLITE.last().map_or(0, |m| m.version);
        let version: i64 = self
            .engine
            .read(|conn| {
                conn.query_row("SELECT COALESCE(MAX(version), 0) FROM parley_migrations", [], |r| r.get(0))
                    .map_err(internal)
            })
            .await?;
        if version == expected {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!("schema version {version}, expected {expected}")))
        }
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }
}
