//! A node-local cache of the two lookups every request makes before it does its work: who an API
//! key acts for, and what that caller may do in a project. Without it each `PATCH` costs two
//! database reads besides its write.
//!
//! Correctness rules:
//!
//! - Only positive answers are cached; an unknown key or an invisible project is looked up
//!   every time, so that a new key or project works at once.
//! - Every write through this node that can take a right away (revoking a key, changing or
//!   deleting a project) empties the cache once it is done. A lookup that began before the
//!   emptying never stores its answer (a generation counter tells), so a revoked key cannot
//!   be put back by a request that raced with the revocation: revocation acts at once on this
//!   node.
//! - Changes made elsewhere (another parley node on the same PostgreSQL, or a tool writing to
//!   the database directly) are seen when an entry expires, after at most `ttl`. A `ttl` of
//!   zero turns the cache off for deployments that need every node to see a revocation at
//!   once.
//!
//! New store methods that change keys, users, roles, memberships or projects must empty the
//! cache here too; every method of the store traits is forwarded explicitly, so a new one does
//! not compile until it is considered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parley_core::{
    Caller, Cursor, ObjectId, OrgRole, Project, ProjectAccess, Record, RecordFilter, RecordPage, RecordQuery,
    RecordUpdate, SortKey,
};
use time::OffsetDateTime;

use crate::error::StoreResult;
use crate::model::{ApiKeyInfo, Bootstrap, IngestCounts, NewApiKey};
use crate::traits::{IdentityStore, ProjectStore, RecordStore, Store};

/// The most entries of each kind kept; past it the cache starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// A store that answers key and project lookups from memory for up to `ttl`.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation; a lookup stores its answer only if it is unchanged.
    generation: u64,
    callers: HashMap<[u8; 32], (Caller, Instant)>,
    /// By (user, project); the entry remembers the caller's organisation roles it was computed
    /// with, and is used only for a caller with the same ones.
    projects: HashMap<(ObjectId, ObjectId), ProjectEntry>,
}

/// A cached project answer: the caller's roles it was computed with, the answer, and when.
struct ProjectEntry {
    roles: Vec<OrgRole>,
    project: Project,
    access: ProjectAccess,
    at: Instant,
}

impl CachedStore {
    /// Wraps `inner`; `ttl` zero gives a store that caches nothing.
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        CachedStore { inner, ttl, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds no invariant a panic could break halfway; a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    /// Forgets everything and makes lookups in flight forget their answers.
    fn invalidate(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.callers.clear();
        state.projects.clear();
    }
}

#[async_trait]
impl IdentityStore for CachedStore {
    async fn bootstrap(&self, bootstrap: Bootstrap) -> StoreResult<bool> {
        self.inner.bootstrap(bootstrap).await
    }

    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>> {
        if self.ttl.is_zero() {
            return self.inner.caller_by_key_hash(secret_hash).await;
        }
        let generation = {
            let state = self.state();
            if let Some((caller, at)) = state.callers.get(&secret_hash)
                && self.fresh(*at)
            {
                return Ok(Some(caller.clone()));
            }
            state.generation
        };
        let found = self.inner.caller_by_key_hash(secret_hash).await?;
        if let Some(caller) = &found {
            let mut state = self.state();
            if state.generation == generation {
                if state.callers.len() >= MAX_ENTRIES {
                    state.callers.clear();
                }
                state.callers.insert(secret_hash, (caller.clone(), Instant::now()));
            }
        }
        Ok(found)
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo> {
        self.inner.create_api_key(key).await
    }

    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>> {
        self.inner.list_api_keys(user_id).await
    }

    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool> {
        let revoked = self.inner.revoke_api_key(user_id, key_id).await;
        self.invalidate();
        revoked
    }
}

#[async_trait]
impl ProjectStore for CachedStore {
    async fn create_project(&self, project: Project) -> StoreResult<()> {
        self.inner.create_project(project).await
    }

    async fn project_for(&self, caller: &Caller, id: ObjectId) -> StoreResult<Option<(Project, ProjectAccess)>> {
        if self.ttl.is_zero() {
            return self.inner.project_for(caller, id).await;
        }
        let key = (caller.user_id, id);
        let generation = {
            let state = self.state();
            if let Some(entry) = state.projects.get(&key)
                && entry.roles == caller.org_roles
                && entry.project.organisation == caller.organisation
                && self.fresh(entry.at)
            {
                return Ok(Some((entry.project.clone(), entry.access)));
            }
            state.generation
        };
        let found = self.inner.project_for(caller, id).await?;
        if let Some((project, access)) = &found {
            let mut state = self.state();
            if state.generation == generation {
                if state.projects.len() >= MAX_ENTRIES {
                    state.projects.clear();
                }
                let entry = ProjectEntry {
                    roles: caller.org_roles.clone(),
                    project: project.clone(),
                    access: *access,
                    at: Instant::now(),
                };
                state.projects.insert(key, entry);
            }
        }
        Ok(found)
    }

    async fn list_projects(&self, caller: &Caller, skip: u64, limit: u32) -> StoreResult<(Vec<Project>, u64)> {
        self.inner.list_projects(caller, skip, limit).await
    }

    async fn visible_project_ids(&self, caller: &Caller) -> StoreResult<Vec<ObjectId>> {
        self.inner.visible_project_ids(caller).await
    }

    async fn update_project(&self, project: Project) -> StoreResult<()> {
        let updated = self.inner.update_project(project).await;
        self.invalidate();
        updated
    }

    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool> {
        let deleted = self.inner.delete_project(organisation, id).await;
        self.invalidate();
        deleted
    }
}

#[async_trait]
impl RecordStore for CachedStore {
    async fn insert_records(&self, records: Vec<Record>) -> StoreResult<IngestCounts> {
        self.inner.insert_records(records).await
    }

    async fn update_records(&self, update: RecordUpdate, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.update_records(update, now).await
    }

    async fn fetch_records(
        &self,
        filter: &RecordFilter,
        sort: &[SortKey],
        after: Option<&Cursor>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<Record>> {
        self.inner.fetch_records(filter, sort, after, offset, limit).await
    }

    async fn count_records(&self, filter: &RecordFilter) -> StoreResult<u64> {
        self.inner.count_records(filter).await
    }

    async fn get_record(&self, projects: &[ObjectId], id: ObjectId) -> StoreResult<Option<Record>> {
        self.inner.get_record(projects, id).await
    }

    async fn list_records(&self, query: &RecordQuery) -> StoreResult<RecordPage> {
        self.inner.list_records(query).await
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn ready(&self) -> StoreResult<()> {
        self.inner.ready().await
    }

    fn engine(&self) -> &'static str {
        self.inner.engine()
    }
}
