//! Stored things other than records and projects: users, API keys, the first-start bootstrap.

use parley_core::{ObjectId, OrgRole};
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
}
