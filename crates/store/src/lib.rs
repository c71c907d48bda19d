//! parley's storage: the interfaces the service needs, split by role (`traits`); each rule that
//! implements them, written once (`rules`) against a small executor (`exec`); the statements they
//! run (`sql`, `odata`, `seek`); one thin module per engine (`sqlite`, `postgres`) with its
//! connections, value and error conversion; and the schema migrations of each engine.

pub mod cache;
mod error;
mod exec;
pub mod migrations;
mod model;
pub mod odata;
pub mod postgres;
mod rules;
mod seek;
pub mod sql;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
mod traits;

use std::path::PathBuf;
use std::sync::Arc;

pub use cache::CachedStore;
pub use error::{Constraint, StoreError, StoreResult};
pub use model::{
    ApiKeyInfo, Bootstrap, GrantType, IngestCounts, Member, MemberChange, NewApiKey, NewRefreshToken, NewUser,
    OAuthClient, Organisation, RefreshOutcome, TokenSession, UpdateOutcome, User, UserDeletion, UserKind,
};
pub use odata::ODataRead;
pub use traits::{
    CacheTelemetry, ConversationStore, GoalStore, IdentityStore, InsightStore, LifecycleStore, OAuthStore, ODataStore,
    PoolTelemetry, ProjectStore, RecordStore, Store, Telemetry,
};

/// Opens the store a database URL names and brings its schema up to date:
///
/// - `sqlite://PATH` or `sqlite:PATH`: the embedded engine, in the file at `PATH` (created if
///   missing); `pool_size` does not apply to it.
/// - `postgres://…` or `postgresql://…`: PostgreSQL, through a pool of at most `pool_size`
///   connections. An unreachable database gives [`StoreError::Unavailable`] whose one-line text
///   names the host and port.
///
/// Any other URL is refused with [`StoreError::Internal`].
pub async fn open(url: &str, pool_size: usize) -> StoreResult<Arc<dyn Store>> {
    open_store(url, pool_size).await
}

/// Creates the PostgreSQL database `url` names unless it exists (an embedded store makes its
/// file when it opens); answers whether one was created.
pub async fn create_database(url: &str) -> StoreResult<bool> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres::create_database(url).await;
    }
    Ok(false)
}

/// The file of an embedded store's URL (`sqlite://PATH`); none for any other URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).map(PathBuf::from)
}

async fn open_store(url: &str, pool_size: usize) -> StoreResult<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(url) {
        let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path))
            .await
            .map_err(|e| StoreError::internal(format!("opening the SQLite store failed: {e}")))??;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PgStore::connect(url, pool_size).await?));
    }
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    Err(StoreError::internal(format!("unsupported database URL scheme '{scheme}': use sqlite://PATH or postgres://…")))
}
