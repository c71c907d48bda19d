//! What a storage rule runs on: an [`Executor`] that sends statements to one connection, and an
//! [`Engine`] that lends one for the length of a job. Every rule of the store is written once,
//! against these two traits, in `rules/`; each engine implements them over its own driver.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use parley_core::Value;
use parley_core::field::FieldType;

use crate::error::{StoreError, StoreResult};
use crate::sql::Dialect;

/// How a column is read back into a [`Value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Number,
    Bool,
    Time,
    Json,
    TextList,
    Bytes,
}

impl Kind {
    /// How a column of a record field is read.
    pub const fn of(ty: FieldType) -> Kind {
        match ty {
            FieldType::Id | FieldType::Text { .. } | FieldType::LongText { .. } => Kind::Text,
            FieldType::DateTime => Kind::Time,
            FieldType::Json { .. } => Kind::Json,
            FieldType::TextList => Kind::TextList,
            FieldType::Number { .. } => Kind::Number,
            FieldType::Integer { .. } => Kind::Integer,
            FieldType::Boolean => Kind::Bool,
        }
    }
}

/// A row read back, one value per requested [`Kind`].
pub type Row = Vec<Value>;

/// A future that may be sent between threads, as the PostgreSQL engine needs.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One connection, as a rule sees it. Statements are written with SQLite's `?n` placeholders and
/// bound in order; [`Dialect::text`] turns them into PostgreSQL's.
pub trait Executor: Send {
    fn dialect(&self) -> Dialect;

    /// The rows a statement answers, each column read as `kinds` says.
    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        kinds: &[Kind],
    ) -> impl Future<Output = StoreResult<Vec<Row>>> + Send;

    /// [`query`](Executor::query) for a statement that is unlikely to run again (an OData query,
    /// which varies with every request): it is prepared for this run only, so that it does not
    /// push the statements that do repeat out of the connection's cache.
    fn query_uncached(
        &mut self,
        sql: &str,
        params: &[Value],
        kinds: &[Kind],
    ) -> impl Future<Output = StoreResult<Vec<Row>>> + Send;

    /// Runs a statement; answers how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Runs a statement whose parameters are whole columns, one array each, so that a batch of
    /// rows is one statement and one round trip (`unnest` on PostgreSQL). SQLite's writer inserts
    /// row by row instead, since its statements cost no round trip.
    fn query_columns(
        &mut self,
        sql: &str,
        columns: &[Vec<&Value>],
        kinds: &[Kind],
    ) -> impl Future<Output = StoreResult<Vec<Row>>> + Send;

    /// Starts a transaction. A write on SQLite is always inside one (its writer's group), so there
    /// this does nothing; on PostgreSQL it begins one that the engine rolls back unless
    /// [`commit`](Executor::commit) is reached.
    fn begin(&mut self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Commits what [`begin`](Executor::begin) started.
    fn commit(&mut self) -> impl Future<Output = StoreResult<()>> + Send;

    /// The first row a statement answers, if any.
    fn query_opt(
        &mut self,
        sql: &str,
        params: &[Value],
        kinds: &[Kind],
    ) -> impl Future<Output = StoreResult<Option<Row>>> + Send {
        async move { Ok(self.query(sql, params, kinds).await?.into_iter().next()) }
    }

    /// The one value of a statement that answers one row of one column (a count, an `EXISTS`).
    fn scalar(&mut self, sql: &str, params: &[Value], kind: Kind) -> impl Future<Output = StoreResult<Value>> + Send {
        async move {
            let row = self.query_opt(sql, params, &[kind]).await?;
            row.and_then(|row| row.into_iter().next())
                .ok_or_else(|| StoreError::internal(format!("no value answered by: {sql}")))
        }
    }
}

/// Connections to one database. A job gets an [`Executor`] for its whole length: on SQLite a
/// read connection, or the writer inside its next group commit; on PostgreSQL a pooled
/// connection, with any transaction the job left open rolled back.
pub trait Engine: Send + Sync + 'static {
    type Exec<'c>: Executor;

    fn read<T, F>(&self, job: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut Self::Exec<'c>) -> BoxFuture<'a, StoreResult<T>> + Send + 'static;

    fn write<T, F>(&self, job: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut Self::Exec<'c>) -> BoxFuture<'a, StoreResult<T>> + Send + 'static;
}

/// Runs a job of the embedded engine to its end on the thread that holds the connection. Its
/// executor never waits, so the job is done after one poll.
pub fn run_ready<T>(job: BoxFuture<'_, StoreResult<T>>) -> StoreResult<T> {
    let mut job = job;
    match job.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::internal("a storage rule waited on the embedded engine")),
    }
}

/// `move |x| Box::pin(async move { body })`: a job for [`Engine::read`] and [`Engine::write`].
macro_rules! job {
    (|$x:ident| $body:expr) => {
        move |$x| Box::pin(async move { $body })
    };
}
pub(crate) use job;
