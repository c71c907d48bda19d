//! parley's storage: the interfaces the service needs, split by role, one implementation per
//! engine, the SQL they share, and the schema migrations of each engine.

mod error;
pub mod migrations;
mod model;
pub mod sql;
pub mod sqlite;
mod traits;

use std::path::Path;
use std::sync::Arc;

pub use error::{StoreError, StoreResult};
pub use model::{ApiKeyInfo, Bootstrap, IngestCounts, NewApiKey};
pub use traits::{IdentityStore, ProjectStore, RecordStore, Store};

/// Opens the store a database URL names: `sqlite://PATH` (or a bare path) for the embedded engine.
pub fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        return Ok(Arc::new(sqlite::SqliteStore::open(Path::new(path))?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::Unavailable("this build has no PostgreSQL engine yet".into()));
    }
    Err(StoreError::Internal(format!("unsupported database URL '{url}': use sqlite://PATH")))
}
