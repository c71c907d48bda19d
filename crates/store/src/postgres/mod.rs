//! The PostgreSQL engine, for deployments that run several parley nodes on one database (or on
//! Citus): a pool of connections. Its storage rules are those of `rules/`, so it gives the same
//! answers as the embedded engine for the same calls; the contract suite runs on both.

mod citus;
mod convert;
mod engine;
mod exec;

use async_trait::async_trait;

pub(crate) use self::engine::LOCK_KEY;
pub use self::engine::create_database;
use self::engine::{Engine, applied_versions, migrate};
use self::exec::PgExec;
use crate::error::{StoreError, StoreResult};
use crate::exec::BoxFuture;
use crate::traits::Store;

/// A store in one PostgreSQL database, reached through a pool of connections.
pub struct PgStore {
    engine: Engine,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names with a pool of at most `pool_size`
    /// connections, and brings its schema up to date. When the database cannot be reached the
    /// error is [`StoreError::Unavailable`], and its one-line text names the host and port.
    /// Connections are plain TCP or Unix sockets; TLS is not supported.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<PgStore> {
        let engine = Engine::new(url, pool_size)?;
        let mut client = engine.get().await?;
        migrate(&mut client, crate::migrations::POSTGRES).await.map_err(|e| match e {
            StoreError::Unavailable(reason) => {
                StoreError::unavailable(format!("PostgreSQL at {} went away: {reason}", engine.target()))
            }
            other => other,
        })?;
        Ok(PgStore { engine })
    }
}

impl crate::exec::Engine for PgStore {
    type Exec<'c> = PgExec;

    async fn read<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut PgExec) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        let mut exec = PgExec::new(self.engine.get().await?);
        let result = job(&mut exec).await;
        exec.finish().await?;
        result
    }

    async fn write<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut PgExec) -> BoxFuture<'a, StoreResult<T>> + Send + 'static,
    {
        self.read(job).await
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ready(&self) -> StoreResult<()> {
        let client = self.engine.get().await?;
        let applied = applied_versions(&client).await?;
        crate::migrations::check_applied(crate::migrations::POSTGRES, &applied)
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn telemetry(&self) -> crate::traits::Telemetry {
        crate::traits::Telemetry { write_groups: None, pool: Some(self.engine.pool_telemetry()), cache: None }
    }

    async fn close(&self) {
        self.engine.close();
    }
}
