//! The PostgreSQL engine's [`Executor`]: prepared statements on one pooled connection.

use deadpool_postgres::Object;
use parley_core::Value;
use tokio_postgres::types::ToSql;

use super::convert::{Param, values_from_row};
use crate::error::StoreResult;
use crate::exec::{Executor, Kind, Row};
use crate::sql::Dialect;

/// One pooled connection, held for a job, and whether the job left a transaction open.
pub struct PgExec {
    client: Object,
    open_transaction: bool,
}

impl PgExec {
    pub fn new(client: Object) -> Self {
        PgExec { client, open_transaction: false }
    }

    /// Rolls back a transaction the job began and did not commit (it failed halfway), so that the
    /// connection goes back to the pool clean.
    pub async fn finish(mut self) -> StoreResult<()> {
        if self.open_transaction {
            self.client.batch_execute("ROLLBACK").await?;
            self.open_transaction = false;
        }
        Ok(())
    }
}

fn refs<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Executor for PgExec {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn query(&mut self, sql: &str, values: &[Value], kinds: &[Kind]) -> StoreResult<Vec<Row>> {
        let statement = self.client.prepare_cached(sql).await?;
        let params: Vec<Param<'_>> = values.iter().map(Param).collect();
        let rows = self.client.query(&statement, &refs(&params)).await?;
        rows.iter().map(|row| values_from_row(row, kinds)).collect()
    }

    async fn query_uncached(&mut self, sql: &str, values: &[Value], kinds: &[Kind]) -> StoreResult<Vec<Row>> {
        // An unnamed statement, replaced by the connection's next one.
        let params: Vec<Param<'_>> = values.iter().map(Param).collect();
        let rows = self.client.query(sql, &refs(&params)).await?;
        rows.iter().map(|row| values_from_row(row, kinds)).collect()
    }

    async fn execute(&mut self, sql: &str, values: &[Value]) -> StoreResult<u64> {
        let statement = self.client.prepare_cached(sql).await?;
        let params: Vec<Param<'_>> = values.iter().map(Param).collect();
        Ok(self.client.execute(&statement, &refs(&params)).await?)
    }

    async fn query_columns(&mut self, sql: &str, columns: &[Vec<&Value>], kinds: &[Kind]) -> StoreResult<Vec<Row>> {
        let statement = self.client.prepare_cached(sql).await?;
        let arrays: Vec<Vec<Param<'_>>> =
            columns.iter().map(|column| column.iter().map(|value| Param(value)).collect()).collect();
        let params: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&statement, &params).await?;
        rows.iter().map(|row| values_from_row(row, kinds)).collect()
    }

    async fn begin(&mut self) -> StoreResult<()> {
        self.client.batch_execute("BEGIN").await?;
        self.open_transaction = true;
        Ok(())
    }

    async fn commit(&mut self) -> StoreResult<()> {
        self.client.batch_execute("COMMIT").await?;
        self.open_transaction = false;
        Ok(())
    }
}
