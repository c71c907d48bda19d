//! Stored things other than records and projects: organisations, users, memberships, API keys,
//! OAuth2 clients and tokens, the first-start bootstrap.

use parley_core::{ObjectId, OrgRole, ProjectRole, RecordUpdate};

use crate::error::{StoreError, StoreResult};
use time::OffsetDateTime;

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    pub id: ObjectId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// A new API key; only the SHA-256 of its secret is stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub name: String,
    pub secret_hash: [u8; 32],
    pub created_at: OffsetDateTime,
}

/// What the first start creates: one organisation, its admin user and an API key.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub organisation_id: ObjectId,
    pub organisation_name: String,
    pub admin_id: ObjectId,
    pub admin_email: String,
    pub admin_password_hash: Option<String>,
    pub admin_roles: Vec<OrgRole>,
    pub api_key: NewApiKey,
}

/// Ingest counts of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    pub inserted: u64,
    pub duplicates: u64,
    /// Pending updates applied to the records inserted.
    pub pending_applied: u64,
    /// Rows that existed and that the batch changed (escalations, merged by event time).
    pub updated: u64,
}

/// What an update did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// Records changed.
    pub matched: u64,
    /// Nothing matched and the update was kept as a pending update.
    pub deferred: bool,
}

/// A stored pending update as an update of its input.
pub(crate) fn pending_update(
    project_id: ObjectId,
    contact: String,
    session: Option<String>,
    input: String,
    properties: serde_json::Value,
) -> StoreResult<RecordUpdate> {
    let unreadable =
        |e: &dyn std::fmt::Display| StoreError::internal(format!("a stored pending update is unreadable: {e}"));
    let serde_json::Value::Object(properties) = properties else {
        return Err(unreadable(&"its properties are not an object"));
    };
    RecordUpdate::with_properties(project_id, contact, session, Some(input), properties).map_err(|e| unreadable(&e))
}

/// An organisation: a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Organisation {
    pub id: ObjectId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// What kind of account a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A person, who may sign in with a password.
    Person,
    /// The user an OAuth2 confidential client acts as; it never signs in with a password.
    Service,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Person => "person",
            UserKind::Service => "service",
        }
    }

    /// The kind stored as `text`; anything unknown is a person, who has no more rights.
    pub fn parse(text: &str) -> UserKind {
        if text == "service" { UserKind::Service } else { UserKind::Person }
    }
}

/// A user of one organisation. One person in several organisations has one user in each, with
/// the same email.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: ObjectId,
    pub organisation: ObjectId,
    /// Lower case; unique within the organisation.
    pub email: String,
    pub name: String,
    pub roles: Vec<OrgRole>,
    pub kind: UserKind,
    pub created_at: OffsetDateTime,
}

impl User {
    /// The caller this user is.
    pub fn caller(&self) -> parley_core::Caller {
        parley_core::Caller { user_id: self.id, organisation: self.organisation, org_roles: self.roles.clone() }
    }
}

/// A user to create, with the argon2 hash of their password when they have one.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user: User,
    pub password_hash: Option<String>,
}

/// Why a user was not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDeletion {
    Deleted,
    /// No such user in the organisation.
    NotFound,
    /// The user is the organisation's last admin; deleting them would leave it unmanageable.
    LastAdmin,
}

/// A user's roles in one project.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub user_id: ObjectId,
    pub roles: Vec<ProjectRole>,
}

/// What setting a member's roles did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Added,
    Replaced,
    /// The user does not exist in the project's organisation.
    UnknownUser,
}

/// An OAuth2 grant type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
}

/// A registered OAuth2 client.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthClient {
    /// `default` for the public client parley registers; 24 hex characters for the others.
    pub id: String,
    pub name: String,
    /// The SHA-256 of the secret of a confidential client; `None` for a public client.
    pub secret_hash: Option<[u8; 32]>,
    /// The service user a confidential client acts as.
    pub user_id: Option<ObjectId>,
    pub grants: Vec<GrantType>,
    pub created_at: OffsetDateTime,
}

/// One grant of tokens to a user through a client. Its access tokens name it; deleting it revokes
/// them and its refresh tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSession {
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub client_id: String,
    pub created_at: OffsetDateTime,
    /// When its last token expires; expired sessions are purged.
    pub expires_at: OffsetDateTime,
}

/// A refresh token to store, by the SHA-256 of its secret.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewRefreshToken {
    pub hash: [u8; 32],
    pub expires_at: OffsetDateTime,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The token was valid and is now used up; its successor is stored in the same session.
    Rotated { session: TokenSession, caller: parley_core::Caller },
    /// The token had been used before: a sign that it leaked. Its session is revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}
