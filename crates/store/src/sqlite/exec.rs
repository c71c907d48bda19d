//! The embedded engine's [`Executor`]: statements on one connection, cached per connection.

use parley_core::Value;
use rusqlite::Connection;

use super::convert::{params, values_from_row};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Executor, Kind, Row};
use crate::sql::Dialect;

/// One SQLite connection, borrowed for a job.
pub struct SqliteExec<'c> {
    conn: &'c mut Connection,
}

impl<'c> SqliteExec<'c> {
    pub fn new(conn: &'c mut Connection) -> Self {
        SqliteExec { conn }
    }
}

impl Executor for SqliteExec<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn query(&mut self, sql: &str, values: &[Value], kinds: &[Kind]) -> StoreResult<Vec<Row>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        let rows = statement.query_map(params(values), |row| values_from_row(row, kinds))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    async fn query_uncached(&mut self, sql: &str, values: &[Value], kinds: &[Kind]) -> StoreResult<Vec<Row>> {
        let mut statement = self.conn.prepare(sql)?;
        let rows = statement.query_map(params(values), |row| values_from_row(row, kinds))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    async fn execute(&mut self, sql: &str, values: &[Value]) -> StoreResult<u64> {
        Ok(self.conn.prepare_cached(sql)?.execute(params(values))? as u64)
    }

    async fn query_columns(&mut self, _: &str, _: &[Vec<&Value>], _: &[Kind]) -> StoreResult<Vec<Row>> {
        Err(StoreError::internal("the embedded engine binds no arrays"))
    }

    async fn begin(&mut self) -> StoreResult<()> {
        Ok(())
    }

    async fn commit(&mut self) -> StoreResult<()> {
        Ok(())
    }
}
