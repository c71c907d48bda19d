//! The storage interfaces, split by role. Every engine implements all of them; the server holds
//! one `Arc<dyn Store>` chosen from the database URL.

use async_trait::async_trait;
use parley_core::{
    Caller, Cursor, ObjectId, PageStart, Project, ProjectAccess, Record, RecordFilter, RecordPage, RecordQuery,
    RecordUpdate, SortKey, Value,
};
use parley_odata::{EntityType, Query};
use time::OffsetDateTime;

use crate::error::StoreResult;
use crate::model::{ApiKeyInfo, Bootstrap, IngestCounts, NewApiKey};
use crate::odata::ODataRead;

/// Users, organisations and API keys.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Creates the first organisation, its admin and the admin's key, unless an organisation
    /// exists already. Returns whether it created them.
    async fn bootstrap(&self, bootstrap: Bootstrap) -> StoreResult<bool>;
    /// The caller an API key acts for, by the SHA-256 of its secret.
    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>>;
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo>;
    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>>;
    /// Revokes one of the user's keys at once; false when the user has no such key.
    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool>;
}

/// Projects and membership.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    async fn create_project(&self, project: Project) -> StoreResult<()>;
    /// The project and the caller's access to it; `None` when it does not exist or the caller may
    /// not see it, which callers must not tell apart.
    async fn project_for(&self, caller: &Caller, id: ObjectId) -> StoreResult<Option<(Project, ProjectAccess)>>;
    /// The projects the caller may see, by creation, and how many there are.
    async fn list_projects(&self, caller: &Caller, skip: u64, limit: u32) -> StoreResult<(Vec<Project>, u64)>;
    /// The ids of every project the caller may see.
    async fn visible_project_ids(&self, caller: &Caller) -> StoreResult<Vec<ObjectId>>;
    async fn update_project(&self, project: Project) -> StoreResult<()>;
    /// Deletes the project, its memberships and its records.
    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool>;
}

/// Analytics records.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Inserts stamped records in one transaction, skipping any whose `(projectId, inputId)`
    /// exists; durable when it returns.
    async fn insert_records(&self, records: Vec<Record>) -> StoreResult<IngestCounts>;
    /// Applies an update to every matching record atomically; returns how many matched.
    async fn update_records(&self, update: RecordUpdate, now: OffsetDateTime) -> StoreResult<u64>;
    /// Records matching `filter` in `sort` order, strictly after `after` when given.
    async fn fetch_records(
        &self,
        filter: &RecordFilter,
        sort: &[SortKey],
        after: Option<&Cursor>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<Record>>;
    async fn count_records(&self, filter: &RecordFilter) -> StoreResult<u64>;
    /// One record by id, among the given projects.
    async fn get_record(&self, projects: &[ObjectId], id: ObjectId) -> StoreResult<Option<Record>>;

    /// One page of a list query, with the cursors of its neighbours.
    async fn list_records(&self, query: &RecordQuery) -> StoreResult<RecordPage> {
        let limit = query.limit as usize;
        let (items, next, previous) = match &query.start {
            PageStart::Offset(skip) => {
                let mut rows = self.fetch_records(&query.filter, &query.sort, None, *skip, query.limit + 1).await?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                let previous = (*skip > 0).then(|| rows.first()).flatten();
                let next = more.then(|| rows.last()).flatten();
                let cursors = (next.map(|r| Cursor::at(r, &query.sort)), previous.map(|r| Cursor::at(r, &query.sort)));
                (rows, cursors.0, cursors.1)
            }
            PageStart::After(cursor) => {
                let mut rows = self.fetch_records(&query.filter, &query.sort, Some(cursor), 0, query.limit + 1).await?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                let next = more.then(|| rows.last()).flatten().map(|r| Cursor::at(r, &query.sort));
                let previous = rows.first().map(|r| Cursor::at(r, &query.sort));
                (rows, next, previous)
            }
            PageStart::Before(cursor) => {
                let reversed: Vec<SortKey> =
                    query.sort.iter().map(|k| SortKey { descending: !k.descending, ..*k }).collect();
                let mut rows = self.fetch_records(&query.filter, &reversed, Some(cursor), 0, query.limit + 1).await?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                rows.reverse();
                let previous = more.then(|| rows.first()).flatten().map(|r| Cursor::at(r, &query.sort));
                let next = rows.last().map(|r| Cursor::at(r, &query.sort));
                (rows, next, previous)
            }
        };
        let total = self.count_records(&query.filter).await?;
        Ok(RecordPage {
            items,
            total,
            next: next.map(|c| c.encode(&query.sort)),
            previous: previous.map(|c| c.encode(&query.sort)),
        })
    }
}

/// Reads of the OData endpoint: a typed query tree over an entity set, restricted to the
/// projects the caller may read.
#[async_trait]
pub trait ODataStore: Send + Sync {
    /// One page of rows: the values of `read.columns`, in order, for each row.
    async fn odata_rows(&self, read: ODataRead<'_>) -> StoreResult<Vec<Vec<Value>>>;
    /// How many rows the query selects, ignoring `$top`, `$skip` and the skip token.
    async fn odata_count(&self, entity: &EntityType, query: &Query, projects: &[ObjectId]) -> StoreResult<u64>;
}

/// Everything a parley node needs from its database.
#[async_trait]
pub trait Store: IdentityStore + ProjectStore + RecordStore + ODataStore {
    /// Whether the database answers and its schema is current.
    async fn ready(&self) -> StoreResult<()>;
    /// Which engine this is, for logs.
    fn engine(&self) -> &'static str;
}
