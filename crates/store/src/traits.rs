//! The storage interfaces, split by role. Every engine implements all of them; the server holds
//! one `Arc<dyn Store>` chosen from the database URL.

use async_trait::async_trait;
use parley_core::conversations::{ConversationCursor, ConversationStart};
use parley_core::goal::{Change, Goal};
use parley_core::goal_event::GoalEvent;
use parley_core::insights::{Item, ReportQuery};
use parley_core::{
    Caller, ConversationPage, ConversationQuery, ConversationSummary, Cursor, EscalationWrite, ExecutedStep, Message,
    ObjectId, PageStart, Project, ProjectAccess, ProjectRole, RatingScale, Record, RecordFilter, RecordPage,
    RecordQuery, RecordUpdate, SortKey, Task, Value,
};
use parley_odata::{EntityType, Query};
use time::OffsetDateTime;

use crate::error::StoreResult;
use crate::model::{
    ApiKeyInfo, Bootstrap, IngestCounts, Member, MemberChange, NewApiKey, NewRefreshToken, NewUser, OAuthClient,
    Organisation, RefreshOutcome, TokenSession, UpdateOutcome, User, UserDeletion,
};
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
    /// The user a key belongs to, for operators who name a key by its id alone.
    async fn api_key_owner(&self, key_id: ObjectId) -> StoreResult<Option<ObjectId>>;

    /// Creates an organisation, its first admin and the admin's API key, all or nothing.
    async fn create_organisation(&self, organisation: Organisation, admin: NewUser, key: NewApiKey) -> StoreResult<()>;
    /// Every organisation, oldest first.
    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>>;
    /// Creates a user; an email already used in the organisation is a conflict
    /// (`users_organisation_email`).
    async fn create_user(&self, user: NewUser) -> StoreResult<()>;
    /// One user of an organisation.
    async fn user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<User>>;
    /// The users of an organisation by creation, and how many there are.
    async fn list_users(&self, organisation: ObjectId, skip: u64, limit: u32) -> StoreResult<(Vec<User>, u64)>;
    /// Every person (not service user) with this email, across organisations, oldest first, each
    /// with their password hash.
    async fn people_by_email(&self, email: &str) -> StoreResult<Vec<(User, Option<String>)>>;
    /// Sets a person's password hash and ends their OAuth2 sessions (their refresh tokens stop
    /// working); false when the organisation has no such person.
    async fn set_password(&self, organisation: ObjectId, id: ObjectId, password_hash: String) -> StoreResult<bool>;
    /// Deletes a user and with them their API keys, memberships, token sessions and the clients
    /// that act as them; refuses to delete an organisation's last admin.
    async fn delete_user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<UserDeletion>;
}

/// OAuth2: clients, the token signing key, token sessions and refresh tokens.
#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// The key access tokens are signed with: the stored one, or `candidate` stored now when there
    /// is none yet. Every node on the database gets the same key.
    async fn signing_key(&self, candidate: Vec<u8>) -> StoreResult<Vec<u8>>;
    async fn oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>>;
    /// Registers a confidential client with the service user it acts as, all or nothing.
    async fn create_oauth_client(&self, client: OAuthClient, service_user: NewUser) -> StoreResult<()>;
    /// Stores a new session with its first refresh token, if any, and purges expired sessions.
    async fn start_session(&self, session: TokenSession, refresh: Option<NewRefreshToken>) -> StoreResult<()>;
    /// Uses up the refresh token whose secret hashes to `presented` and stores `successor` in its
    /// session, atomically: of two requests presenting the same token, one rotates it and the
    /// other finds it reused. A reused token revokes its session.
    async fn rotate_refresh_token(
        &self,
        presented: [u8; 32],
        successor: NewRefreshToken,
        now: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome>;
    /// The caller of a session that belongs to `user_id`; `None` once it is revoked or the user
    /// is gone.
    async fn session_caller(&self, session: ObjectId, user_id: ObjectId) -> StoreResult<Option<Caller>>;
    /// Revokes a session with all its tokens; false when there was none.
    async fn revoke_session(&self, session: ObjectId) -> StoreResult<bool>;
    /// Revokes the session of a refresh token; false when the token is unknown.
    async fn revoke_refresh_token(&self, presented: [u8; 32]) -> StoreResult<bool>;
}

/// Goal definitions of a project, each at its current version.
#[async_trait]
pub trait GoalStore: Send + Sync {
    async fn create_goal(&self, goal: Goal) -> StoreResult<()>;
    /// Applies a change to the current version of a goal, making a new version; `None` when the
    /// project has no such goal. Changes of one goal take turns.
    async fn change_goal(
        &self,
        project: ObjectId,
        id: ObjectId,
        change: Change,
        by: ObjectId,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Goal>>;
    /// The project's goals by creation, or the one `id` names.
    async fn goals(&self, project: ObjectId, id: Option<ObjectId>) -> StoreResult<Vec<Goal>>;
    /// Deletes a goal with its steps and metrics; true when it existed.
    async fn delete_goal(&self, project: ObjectId, id: ObjectId) -> StoreResult<bool>;
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
    /// Deletes the project, its memberships, records, messages and sessions.
    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool>;
    /// Gives a user of the project's organisation these roles in it, replacing any they had.
    async fn set_member(
        &self,
        project: &Project,
        user_id: ObjectId,
        roles: Vec<ProjectRole>,
    ) -> StoreResult<MemberChange>;
    /// Takes a user's roles in a project away; false when they had none.
    async fn remove_member(&self, project_id: ObjectId, user_id: ObjectId) -> StoreResult<bool>;
    /// The members of a project and their roles, by user id.
    async fn list_members(&self, project_id: ObjectId) -> StoreResult<Vec<Member>>;
}

/// Analytics records.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Inserts stamped records in one transaction, skipping any whose `(projectId, inputId)`
    /// exists, and applies to each record inserted the pending updates waiting for its input that
    /// have not expired at `now`, in arrival order (those whose contact or session differ from the
    /// record's are discarded: they can never match). Durable when it returns.
    async fn insert_records(&self, records: Vec<Record>, now: OffsetDateTime) -> StoreResult<IngestCounts>;
    /// Applies an update to every matching record atomically. When nothing matches, the update
    /// names an input, no record of that input exists yet and `defer_until` is given, it is kept
    /// as a pending update until then instead, in the same transaction; an ingest of its record
    /// that runs at the same time either sees it or is seen by it.
    async fn update_records(
        &self,
        update: RecordUpdate,
        now: OffsetDateTime,
        defer_until: Option<OffsetDateTime>,
    ) -> StoreResult<UpdateOutcome>;
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

/// Conversation messages and executed steps, and the sessions parley derives from them and from
/// records.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Inserts stamped messages in one transaction, skipping any whose `(projectId, messageId)`
    /// exists, and brings the sessions they name up to date. Durable when it returns.
    async fn insert_messages(&self, messages: Vec<Message>) -> StoreResult<IngestCounts>;
    /// Inserts stamped executed steps in one transaction, skipping any whose `(projectId,
    /// executionId)` exists, and brings the step catalogue and the sessions they name up to
    /// date. Durable when it returns.
    async fn insert_steps(&self, steps: Vec<ExecutedStep>) -> StoreResult<IngestCounts>;
    /// Merges writes of escalations, in order, into what is stored, in one transaction, and
    /// brings the sessions they name up to date. `updated` counts escalations that existed and
    /// changed; a write that changed nothing is a duplicate. Durable when it returns.
    async fn insert_escalations(&self, writes: Vec<EscalationWrite>) -> StoreResult<IngestCounts>;
    /// Inserts stamped goal events in one transaction, skipping any whose `(projectId, eventId)`
    /// exists, and brings the sessions they name up to date. A goal deleted since the events were
    /// recorded under it refuses the batch ([`crate::StoreError::Stale`]). Durable when it
    /// returns.
    async fn insert_goal_events(&self, events: Vec<GoalEvent>) -> StoreResult<IngestCounts>;
    /// Sessions of the conversations index, newest last message first (oldest first when
    /// `backwards`), strictly after `after` when given.
    async fn fetch_conversations(
        &self,
        query: &ConversationQuery,
        after: Option<&ConversationCursor>,
        backwards: bool,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<ConversationSummary>>;
    /// How many sessions the index holds for the query.
    async fn count_conversations(&self, query: &ConversationQuery) -> StoreResult<u64>;
    /// The messages of a session in time order.
    async fn transcript(&self, project: ObjectId, session: &str) -> StoreResult<Vec<Message>>;
    /// Deletes a session's messages; the session stays, with no messages. Returns how many.
    async fn delete_transcript(&self, project: ObjectId, session: &str) -> StoreResult<u64>;

    /// One page of the conversations index, with the cursors of its neighbours.
    async fn list_conversations(&self, query: &ConversationQuery) -> StoreResult<ConversationPage> {
        let limit = query.limit as usize;
        let take = query.limit + 1;
        let (items, next, previous) = match &query.start {
            ConversationStart::Offset(skip) => {
                let mut rows = self.fetch_conversations(query, None, false, *skip, take).await?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                let previous = (*skip > 0).then(|| rows.first().map(ConversationSummary::cursor)).flatten();
                let next = more.then(|| rows.last().map(ConversationSummary::cursor)).flatten();
                (rows, next, previous)
            }
            ConversationStart::After(cursor) => {
                let mut rows = self.fetch_conversations(query, Some(cursor), false, 0, take).await?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                let next = more.then(|| rows.last().map(ConversationSummary::cursor)).flatten();
                (rows.clone(), next, rows.first().map(ConversationSummary::cursor))
            }
            ConversationStart::Before(cursor) => {
                let mut rows = self.fetch_conversations(query, Some(cursor), true, 0, take).await?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                rows.reverse();
                let previous = more.then(|| rows.first().map(ConversationSummary::cursor)).flatten();
                (rows.clone(), rows.last().map(ConversationSummary::cursor), previous)
            }
        };
        let total = self.count_conversations(query).await?;
        Ok(ConversationPage { items, total, next: next.map(|c| c.encode()), previous: previous.map(|c| c.encode()) })
    }
}

/// Erasure tasks and the purges that keep data no longer than it may be kept.
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    async fn create_task(&self, task: Task) -> StoreResult<()>;
    /// A task of the organisation.
    async fn get_task(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<Task>>;
    /// The oldest task that has not finished, of any organisation.
    async fn next_task(&self) -> StoreResult<Option<Task>>;
    /// One batch of an erasure task, in one transaction: deletes at most `limit` of the records
    /// and messages it matches, brings their sessions up to date (removing those with no rows
    /// left), adds them to its count and marks it running. Returns how many it deleted; fewer
    /// than `limit` means none is left. Several nodes may run batches of one task at once.
    async fn erase_batch(&self, task: &Task, limit: u32, now: OffsetDateTime) -> StoreResult<u64>;
    /// Ends a task that has not ended: `None` for success, which also deletes the pending updates
    /// the erasure matches and the sessions of its contacts that no row names any more; `Some(reason)` for failure. Either way the request is forgotten.
    async fn finish_task(&self, task: &Task, failure: Option<String>, now: OffsetDateTime) -> StoreResult<()>;
    /// The ids of every project, for the retention purge.
    async fn all_project_ids(&self) -> StoreResult<Vec<ObjectId>>;
    /// One batch of the retention purge: deletes at most `limit` of the project's records and
    /// messages whose `expiresAt` has passed at `now`, and the sessions left with no rows.
    async fn purge_expired_records(&self, project: ObjectId, now: OffsetDateTime, limit: u32) -> StoreResult<u64>;
    /// Deletes the pending updates that have expired at `now`.
    async fn purge_expired_pending_updates(&self, now: OffsetDateTime) -> StoreResult<u64>;
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

/// The Insights reports (docs/contract/insights.md), read from the rows as they are.
#[async_trait]
pub trait InsightStore: Send + Sync {
    /// The items of a report over the query's projects, each read by its rating scale; `as_of`
    /// is the time every acknowledged write counted was acknowledged by, and the end of the
    /// window of `activeSessions`.
    async fn report(
        &self,
        query: &ReportQuery,
        scales: &[(ObjectId, RatingScale)],
        as_of: OffsetDateTime,
    ) -> StoreResult<Vec<Item>>;
}

/// Everything a parley node needs from its database.
#[async_trait]
pub trait Store:
    IdentityStore
    + OAuthStore
    + ProjectStore
    + GoalStore
    + RecordStore
    + ConversationStore
    + LifecycleStore
    + ODataStore
    + InsightStore
{
    /// Whether the database answers and its schema is current.
    async fn ready(&self) -> StoreResult<()>;
    /// Which engine this is, for logs.
    fn engine(&self) -> &'static str;
    /// Finishes the writes already accepted, makes them durable and stops accepting more: later
    /// calls fail with [`StoreError::Unavailable`](crate::StoreError::Unavailable). For a clean exit.
    async fn close(&self);
    /// The engine's own figures, for monitoring.
    fn telemetry(&self) -> Telemetry {
        Telemetry::default()
    }
}

/// What a store tells about its work: the embedded writer's transactions, or the PostgreSQL
/// pool's connections, and the access cache's lookups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Telemetry {
    pub write_groups: Option<crate::sqlite::WriteStats>,
    pub pool: Option<PoolTelemetry>,
    /// The node's cache of credentials and project rights, when it has one.
    pub cache: Option<CacheTelemetry>,
}

/// Lookups of the access cache ([`crate::cache::CachedStore`]) since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTelemetry {
    /// API keys resolved from memory, and from the database.
    pub caller_hits: u64,
    pub caller_misses: u64,
    /// A caller's rights in a project, from memory and from the database.
    pub project_hits: u64,
    pub project_misses: u64,
}

/// A connection pool at one moment.
#[derive(Debug, Clone, Copy)]
pub struct PoolTelemetry {
    /// Connections open.
    pub size: usize,
    /// Of those, how many are idle.
    pub available: usize,
    pub max_size: usize,
}
