//! The embedded SQLite engine, parley's default: one file, a writer thread that commits in
//! groups, and read connections. Its storage rules are those of `rules/`.

pub mod backup;
mod convert;
mod engine;
mod exec;
mod functions;

use std::path::Path;

use async_trait::async_trait;

use self::engine::Engine;
pub use self::engine::{COMMIT_BUCKETS, WriteStats};
use self::exec::SqliteExec;
use crate::error::StoreResult;
use crate::exec::{BoxFuture, run_ready};
use crate::traits::Store;

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

impl crate::exec::Engine for SqliteStore {
    type Exec<'c> = SqliteExec<'c>;

    fn read<T, F>(&self, job: F) -> impl std::future::Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut SqliteExec<'c>) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        self.engine.read(move |conn| run_ready(job(&mut SqliteExec::new(conn))))
    }

    fn write<T, F>(&self, job: F) -> impl std::future::Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut SqliteExec<'c>) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        self.engine.write(move |conn| run_ready(job(&mut SqliteExec::new(conn))))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> StoreResult<()> {
        let applied = self.engine.read(|conn| engine::applied_versions(conn)).await?;
        crate::migrations::check_applied(crate::migrations::SQLITE, &applied)
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn telemetry(&self) -> crate::traits::Telemetry {
        crate::traits::Telemetry { write_groups: Some(self.engine.stats()), pool: None, cache: None }
    }

    async fn close(&self) {
        self.engine.close().await;
    }
}
