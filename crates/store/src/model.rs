//! Stored things other than records and projects: users, API keys, the first-start bootstrap.

use parley_core::{ObjectId, OrgRole, RecordUpdate};

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
        |e: &dyn std::fmt::Display| StoreError::Internal(format!("a stored pending update is unreadable: {e}"));
    let serde_json::Value::Object(properties) = properties else {
        return Err(unreadable(&"its properties are not an object"));
    };
    RecordUpdate::with_properties(project_id, contact, session, Some(input), properties).map_err(|e| unreadable(&e))
}
