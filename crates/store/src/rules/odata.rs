//! Reads of the OData endpoint. Their statements are compiled for each dialect in
//! [`crate::odata`]; the rules run them.

use async_trait::async_trait;
use parley_core::{ObjectId, Value};
use parley_odata::{EntityType, Query};

use super::count;
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::odata::{self, ODataRead};
use crate::traits::ODataStore;

#[async_trait]
impl<E: Engine> ODataStore for E {
    async fn odata_rows(&self, read: ODataRead<'_>) -> StoreResult<Vec<Vec<Value>>> {
        // A job owns what it reads: it may outlive the borrows of this call.
        let (entity, query, projects, columns) =
            (read.entity.clone(), read.query.clone(), read.projects.to_vec(), read.columns.to_vec());
        let limit = read.limit;
        self.read(job!(|x| {
            let read = ODataRead { entity: &entity, query: &query, projects: &projects, columns: &columns, limit };
            let statement = odata::select(x.dialect(), &read);
            x.query_uncached(&statement.text, &statement.params, &read.column_kinds()).await
        }))
        .await
    }

    async fn odata_count(&self, entity: &EntityType, query: &Query, projects: &[ObjectId]) -> StoreResult<u64> {
        let (entity, query, projects) = (entity.clone(), query.clone(), projects.to_vec());
        self.read(job!(|x| {
            let statement = odata::count(x.dialect(), &entity, &query, &projects);
            let rows = x.query_uncached(&statement.text, &statement.params, &[Kind::Integer]).await?;
            count(rows.into_iter().flatten().next().ok_or_else(|| StoreError::internal("no count answered"))?)
        }))
        .await
    }
}
