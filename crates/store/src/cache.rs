//! A node-local cache of the two lookups every authenticated request makes before its own work:
//! whom an API key acts for ([`IdentityStore::caller_by_key_hash`]), and what that caller may do
//! in a project ([`ProjectStore::project_for`]). Without it each `PATCH /analytics` costs two
//! database reads besides its write.
//!
//! # What it remembers
//!
//! - Only positive answers. An unknown key or an invisible project is looked up every time, so
//!   that a new key, user, project or membership works at once, whoever made it.
//! - A project answer is kept by (user, project) together with the organisation roles of the
//!   caller it was computed for, and is given only to a caller with the same ones.
//! - OAuth2 access tokens are not cached: [`OAuthStore::session_caller`] is asked every time, so
//!   that revoking a session, reusing a refresh token or deleting the user refuses the token at
//!   once without this cache having to follow sessions.
//! - Entries live for `ttl` ([`CachedStore::new`]); zero turns the cache off. Each kind holds at
//!   most [`MAX_ENTRIES`]; past that it starts again empty, so memory stays small whatever the
//!   traffic (only valid credentials can fill it).
//!
//! # What makes it forget
//!
//! Every write through this node that can take a right away or change what a caller may do
//! empties the whole cache once the write has returned, successful or not (a failure may still
//! have committed). A lookup that began before the emptying never stores its answer: a
//! generation counter tells. So a change made through this node acts on this node's very next
//! request. These are, by method:
//!
//! | method | empties | why |
//! | --- | --- | --- |
//! | `revoke_api_key` | yes | the key must stop working |
//! | `delete_user` | yes | the user's keys and memberships go with them |
//! | `update_project` | yes | the remembered project carries the settings a request applies (masking, collection, retention) |
//! | `delete_project` | yes | the project and its memberships go |
//! | `set_member` | yes | a member's roles change, up or down |
//! | `remove_member` | yes | the member loses the project |
//! | `bootstrap`, `create_organisation`, `create_user`, `create_api_key`, `create_project`, `create_oauth_client` | no | they only add rows; nothing remembered is about them, and absent answers are never remembered |
//! | `start_session`, `rotate_refresh_token`, `revoke_session`, `revoke_refresh_token` | no | sessions are not cached (see above) |
//! | `signing_key` | no | the token signing key, asked once at start |
//! | `insert_messages`, `delete_transcript` | no | messages and sessions, not rights |
//! | `insert_records`, `update_records`, `create_task`, `erase_batch`, `finish_task`, `purge_expired_records`, `purge_expired_pending_updates` | no | records and tasks, not rights |
//! | `close` | no | the store stops |
//!
//! No store method changes a user's organisation roles or deletes an organisation; one that is
//! added must empty the cache. Every method of the store traits is forwarded explicitly (none
//! relies on a default), so a new one does not compile here until it is considered.
//!
//! # Several nodes
//!
//! Changes made elsewhere (another parley node on the same PostgreSQL, an operator command such
//! as `parley keys revoke`, or a tool writing to the database) are seen when an entry expires,
//! after at most `ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
// Tokio's clock is the monotonic clock, except that tests may pause and advance it to see
// entries expire without waiting.
use tokio::time::Instant;

use parley_core::conversations::ConversationCursor;
use parley_core::goal::{Change, Goal};
use parley_core::goal_event::GoalEvent;
use parley_core::insights::{Item, ReportQuery};
use parley_core::{
    Caller, ConversationPage, ConversationQuery, ConversationSummary, Cursor, EscalationWrite, ExecutedStep, Message,
    ObjectId, OrgRole, Project, ProjectAccess, ProjectRole, RatingScale, Record, RecordFilter, RecordPage, RecordQuery,
    RecordUpdate, SortKey, Task, Value,
};
use parley_odata::{EntityType, Query};
use time::OffsetDateTime;

use crate::error::StoreResult;
use crate::model::{
    ApiKeyInfo, Bootstrap, IngestCounts, Member, MemberChange, NewApiKey, NewRefreshToken, NewUser, OAuthClient,
    Organisation, RefreshOutcome, TokenSession, UpdateOutcome, User, UserDeletion,
};
use crate::odata::ODataRead;
use crate::traits::{
    ConversationStore, GoalStore, IdentityStore, InsightStore, LifecycleStore, OAuthStore, ODataStore, ProjectStore,
    RecordStore, Store,
};

/// The most entries of each kind (callers by key, project answers) kept; storing one more
/// starts that kind again empty.
pub const MAX_ENTRIES: usize = 10_000;

/// A store that answers key and project lookups from memory for up to `ttl`.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Duration,
    state: Mutex<State>,
    /// Lookups answered from memory, and those that went to the database, by kind.
    hits: [std::sync::atomic::AtomicU64; 2],
    misses: [std::sync::atomic::AtomicU64; 2],
}

/// The kinds of lookup, as [`crate::traits::CacheTelemetry`] counts them.
const CALLERS: usize = 0;
const PROJECTS: usize = 1;

#[derive(Default)]
struct State {
    /// Bumped by every emptying; a lookup stores its answer only if it is unchanged since the
    /// lookup began.
    generation: u64,
    /// By the SHA-256 of the key's secret.
    callers: Remembered<[u8; 32], Caller>,
    /// By (user, project).
    projects: Remembered<(ObjectId, ObjectId), ProjectEntry>,
}

/// A remembered project answer, with the organisation roles of the caller it was computed for.
struct ProjectEntry {
    roles: Vec<OrgRole>,
    project: Project,
    access: ProjectAccess,
}

/// Answers of one kind, each with when it was looked up; at most [`MAX_ENTRIES`].
struct Remembered<K, V> {
    entries: HashMap<K, (V, Instant)>,
}

impl<K, V> Default for Remembered<K, V> {
    fn default() -> Self {
        Remembered { entries: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq, V> Remembered<K, V> {
    /// The answer for `key` if it was looked up less than `ttl` ago.
    fn fresh(&self, key: &K, ttl: Duration) -> Option<&V> {
        self.entries.get(key).filter(|(_, at)| at.elapsed() < ttl).map(|(value, _)| value)
    }

    /// Remembers `value` from now; a full table starts again empty first.
    fn remember(&mut self, key: K, value: V) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key, (value, Instant::now()));
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}

impl CachedStore {
    /// Wraps `inner`; a `ttl` of zero gives a store that remembers nothing.
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        CachedStore {
            inner,
            ttl,
            state: Mutex::new(State::default()),
            hits: Default::default(),
            misses: Default::default(),
        }
    }

    /// Counts a lookup of `kind`, answered from memory (`hit`) or not.
    fn counted(&self, kind: usize, hit: bool) {
        let counters = if hit { &self.hits } else { &self.misses };
        counters[kind].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds no invariant a panic could break halfway; a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets everything and makes the lookups in flight forget their answers.
    fn invalidate(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.callers.clear();
        state.projects.clear();
    }

    /// Runs a write that can take a right away, then forgets everything, whatever its outcome,
    /// and also when the caller stops waiting: a request dropped halfway (its client gone, its
    /// time up) may leave a write that still commits.
    async fn invalidating<T>(&self, write: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let _forget = ForgetOnDrop(self);
        write.await
    }
}

/// Empties the cache when dropped, however the future holding it ends.
struct ForgetOnDrop<'a>(&'a CachedStore);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
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
            if let Some(caller) = state.callers.fresh(&secret_hash, self.ttl) {
                self.counted(CALLERS, true);
                return Ok(Some(caller.clone()));
            }
            state.generation
        };
        self.counted(CALLERS, false);
        let found = self.inner.caller_by_key_hash(secret_hash).await?;
        if let Some(caller) = &found {
            let mut state = self.state();
            if state.generation == generation {
                state.callers.remember(secret_hash, caller.clone());
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
        self.invalidating(self.inner.revoke_api_key(user_id, key_id)).await
    }

    async fn api_key_owner(&self, key_id: ObjectId) -> StoreResult<Option<ObjectId>> {
        self.inner.api_key_owner(key_id).await
    }

    async fn create_organisation(&self, organisation: Organisation, admin: NewUser, key: NewApiKey) -> StoreResult<()> {
        self.inner.create_organisation(organisation, admin, key).await
    }

    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>> {
        self.inner.list_organisations().await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<()> {
        self.inner.create_user(user).await
    }

    async fn user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<User>> {
        self.inner.user(organisation, id).await
    }

    async fn list_users(&self, organisation: ObjectId, skip: u64, limit: u32) -> StoreResult<(Vec<User>, u64)> {
        self.inner.list_users(organisation, skip, limit).await
    }

    async fn people_by_email(&self, email: &str) -> StoreResult<Vec<(User, Option<String>)>> {
        self.inner.people_by_email(email).await
    }

    async fn set_password(&self, organisation: ObjectId, id: ObjectId, password_hash: String) -> StoreResult<bool> {
        self.inner.set_password(organisation, id, password_hash).await
    }

    async fn delete_user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<UserDeletion> {
        self.invalidating(self.inner.delete_user(organisation, id)).await
    }
}

#[async_trait]
impl OAuthStore for CachedStore {
    async fn signing_key(&self, candidate: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.inner.signing_key(candidate).await
    }

    async fn oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        self.inner.oauth_client(id).await
    }

    async fn create_oauth_client(&self, client: OAuthClient, service_user: NewUser) -> StoreResult<()> {
        self.inner.create_oauth_client(client, service_user).await
    }

    async fn start_session(&self, session: TokenSession, refresh: Option<NewRefreshToken>) -> StoreResult<()> {
        self.inner.start_session(session, refresh).await
    }

    async fn rotate_refresh_token(
        &self,
        presented: [u8; 32],
        successor: NewRefreshToken,
        now: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        self.inner.rotate_refresh_token(presented, successor, now).await
    }

    async fn session_caller(&self, session: ObjectId, user_id: ObjectId) -> StoreResult<Option<Caller>> {
        self.inner.session_caller(session, user_id).await
    }

    async fn revoke_session(&self, session: ObjectId) -> StoreResult<bool> {
        self.inner.revoke_session(session).await
    }

    async fn revoke_refresh_token(&self, presented: [u8; 32]) -> StoreResult<bool> {
        self.inner.revoke_refresh_token(presented).await
    }
}

#[async_trait]
impl GoalStore for CachedStore {
    async fn create_goal(&self, goal: Goal) -> StoreResult<()> {
        self.inner.create_goal(goal).await
    }

    async fn change_goal(
        &self,
        project: ObjectId,
        id: ObjectId,
        change: Change,
        by: ObjectId,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Goal>> {
        self.inner.change_goal(project, id, change, by, now).await
    }

    async fn goals(&self, project: ObjectId, id: Option<ObjectId>) -> StoreResult<Vec<Goal>> {
        self.inner.goals(project, id).await
    }

    async fn delete_goal(&self, project: ObjectId, id: ObjectId) -> StoreResult<bool> {
        self.inner.delete_goal(project, id).await
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
            if let Some(entry) = state.projects.fresh(&key, self.ttl)
                && entry.roles == caller.org_roles
                && entry.project.organisation == caller.organisation
            {
                self.counted(PROJECTS, true);
                return Ok(Some((entry.project.clone(), entry.access)));
            }
            state.generation
        };
        self.counted(PROJECTS, false);
        let found = self.inner.project_for(caller, id).await?;
        if let Some((project, access)) = &found {
            let mut state = self.state();
            if state.generation == generation {
                let entry = ProjectEntry { roles: caller.org_roles.clone(), project: project.clone(), access: *access };
                state.projects.remember(key, entry);
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
        self.invalidating(self.inner.update_project(project)).await
    }

    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool> {
        self.invalidating(self.inner.delete_project(organisation, id)).await
    }

    async fn set_member(
        &self,
        project: &Project,
        user_id: ObjectId,
        roles: Vec<ProjectRole>,
    ) -> StoreResult<MemberChange> {
        self.invalidating(self.inner.set_member(project, user_id, roles)).await
    }

    async fn remove_member(&self, project_id: ObjectId, user_id: ObjectId) -> StoreResult<bool> {
        self.invalidating(self.inner.remove_member(project_id, user_id)).await
    }

    async fn list_members(&self, project_id: ObjectId) -> StoreResult<Vec<Member>> {
        self.inner.list_members(project_id).await
    }
}

#[async_trait]
impl RecordStore for CachedStore {
    async fn insert_records(&self, records: Vec<Record>, now: OffsetDateTime) -> StoreResult<IngestCounts> {
        self.inner.insert_records(records, now).await
    }

    async fn update_records(
        &self,
        update: RecordUpdate,
        now: OffsetDateTime,
        defer_until: Option<OffsetDateTime>,
    ) -> StoreResult<UpdateOutcome> {
        self.inner.update_records(update, now, defer_until).await
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
impl ConversationStore for CachedStore {
    async fn insert_messages(&self, messages: Vec<Message>) -> StoreResult<IngestCounts> {
        self.inner.insert_messages(messages).await
    }

    async fn insert_steps(&self, steps: Vec<ExecutedStep>) -> StoreResult<IngestCounts> {
        self.inner.insert_steps(steps).await
    }

    async fn insert_escalations(&self, writes: Vec<EscalationWrite>) -> StoreResult<IngestCounts> {
        self.inner.insert_escalations(writes).await
    }

    async fn insert_goal_events(&self, events: Vec<GoalEvent>) -> StoreResult<IngestCounts> {
        self.inner.insert_goal_events(events).await
    }

    async fn fetch_conversations(
        &self,
        query: &ConversationQuery,
        after: Option<&ConversationCursor>,
        backwards: bool,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<ConversationSummary>> {
        self.inner.fetch_conversations(query, after, backwards, offset, limit).await
    }

    async fn count_conversations(&self, query: &ConversationQuery) -> StoreResult<u64> {
        self.inner.count_conversations(query).await
    }

    async fn transcript(&self, project: ObjectId, session: &str) -> StoreResult<Vec<Message>> {
        self.inner.transcript(project, session).await
    }

    async fn delete_transcript(&self, project: ObjectId, session: &str) -> StoreResult<u64> {
        self.inner.delete_transcript(project, session).await
    }

    async fn list_conversations(&self, query: &ConversationQuery) -> StoreResult<ConversationPage> {
        self.inner.list_conversations(query).await
    }
}

#[async_trait]
impl LifecycleStore for CachedStore {
    async fn create_task(&self, task: Task) -> StoreResult<()> {
        self.inner.create_task(task).await
    }

    async fn get_task(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<Task>> {
        self.inner.get_task(organisation, id).await
    }

    async fn next_task(&self) -> StoreResult<Option<Task>> {
        self.inner.next_task().await
    }

    async fn erase_batch(&self, task: &Task, limit: u32, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.erase_batch(task, limit, now).await
    }

    async fn finish_task(&self, task: &Task, failure: Option<String>, now: OffsetDateTime) -> StoreResult<()> {
        self.inner.finish_task(task, failure, now).await
    }

    async fn all_project_ids(&self) -> StoreResult<Vec<ObjectId>> {
        self.inner.all_project_ids().await
    }

    async fn purge_expired_records(&self, project: ObjectId, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        self.inner.purge_expired_records(project, now, limit).await
    }

    async fn purge_expired_pending_updates(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.purge_expired_pending_updates(now).await
    }
}

#[async_trait]
impl ODataStore for CachedStore {
    async fn odata_rows(&self, read: ODataRead<'_>) -> StoreResult<Vec<Vec<Value>>> {
        self.inner.odata_rows(read).await
    }

    async fn odata_count(&self, entity: &EntityType, query: &Query, projects: &[ObjectId]) -> StoreResult<u64> {
        self.inner.odata_count(entity, query, projects).await
    }
}

#[async_trait]
impl InsightStore for CachedStore {
    async fn report(
        &self,
        query: &ReportQuery,
        scales: &[(ObjectId, RatingScale)],
        as_of: OffsetDateTime,
    ) -> StoreResult<Vec<Item>> {
        self.inner.report(query, scales, as_of).await
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

    fn telemetry(&self) -> crate::traits::Telemetry {
        let load = |counters: &[std::sync::atomic::AtomicU64; 2], kind: usize| {
            counters[kind].load(std::sync::atomic::Ordering::Relaxed)
        };
        let cache = crate::traits::CacheTelemetry {
            caller_hits: load(&self.hits, CALLERS),
            caller_misses: load(&self.misses, CALLERS),
            project_hits: load(&self.hits, PROJECTS),
            project_misses: load(&self.misses, PROJECTS),
        };
        crate::traits::Telemetry { cache: Some(cache), ..self.inner.telemetry() }
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
