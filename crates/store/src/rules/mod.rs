//! Every storage rule, written once against [`Executor`](crate::exec::Executor) and implemented
//! for every [`Engine`](crate::exec::Engine): one module per store trait. Statements are written
//! with `?n` placeholders (the dialect turns them into PostgreSQL's); where the engines truly
//! differ, the rule branches on [`Dialect`](crate::sql::Dialect) in the open.

mod conversations;
mod escalations;
mod goal_events;
mod goals;
mod identity;
mod insights;
mod lifecycle;
mod oauth;
mod odata;
mod projects;
mod records;
mod sessions;
mod steps;

use std::vec;

use std::collections::HashSet;

use parley_core::field::Field;
use parley_core::value::format_time;
use parley_core::{ObjectId, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::{StoreError, StoreResult};
use crate::exec::{Executor, Kind};
use crate::sql::{self, Dialect};

/// The values of a row read back, taken in column order.
pub(crate) struct Columns(vec::IntoIter<Value>);

impl Columns {
    pub fn new(row: Vec<Value>) -> Self {
        Columns(row.into_iter())
    }

    fn next(&mut self) -> StoreResult<Value> {
        self.0.next().ok_or_else(|| StoreError::internal("a row has fewer columns than read"))
    }

    pub fn text(&mut self) -> StoreResult<String> {
        match self.next()? {
            Value::Text(text) => Ok(text),
            other => Err(mismatch("text", &other)),
        }
    }

    pub fn opt_text(&mut self) -> StoreResult<Option<String>> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            other => Err(mismatch("text", &other)),
        }
    }

    pub fn id(&mut self) -> StoreResult<ObjectId> {
        let text = self.text()?;
        ObjectId::parse(&text).map_err(|e| StoreError::internal(format!("stored id '{text}': {e}")))
    }

    pub fn time(&mut self) -> StoreResult<OffsetDateTime> {
        self.opt_time()?.ok_or_else(|| StoreError::internal("a stored time is null"))
    }

    pub fn opt_time(&mut self) -> StoreResult<Option<OffsetDateTime>> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Time(t) => Ok(Some(t)),
            other => Err(mismatch("time", &other)),
        }
    }

    pub fn opt_number(&mut self) -> StoreResult<Option<f64>> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(Some(n)),
            other => Err(mismatch("number", &other)),
        }
    }

    pub fn number(&mut self) -> StoreResult<f64> {
        match self.next()? {
            Value::Number(n) => Ok(n),
            other => Err(mismatch("number", &other)),
        }
    }

    pub fn integer(&mut self) -> StoreResult<i64> {
        match self.next()? {
            Value::Integer(i) => Ok(i),
            other => Err(mismatch("integer", &other)),
        }
    }

    /// A JSON column read as the type it was written from.
    pub fn json<T: DeserializeOwned>(&mut self) -> StoreResult<T> {
        match self.next()? {
            Value::Json(json) => {
                serde_json::from_value(json).map_err(|e| StoreError::internal(format!("stored JSON: {e}")))
            }
            other => Err(mismatch("JSON", &other)),
        }
    }

    /// A nullable JSON column.
    pub fn opt_json<T: DeserializeOwned>(&mut self) -> StoreResult<Option<T>> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Json(json) => {
                serde_json::from_value(json).map(Some).map_err(|e| StoreError::internal(format!("stored JSON: {e}")))
            }
            other => Err(mismatch("JSON", &other)),
        }
    }

    pub fn opt_text_list(&mut self) -> StoreResult<Option<Vec<String>>> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::TextList(items) => Ok(Some(items)),
            other => Err(mismatch("a list of texts", &other)),
        }
    }

    pub fn bytes(&mut self) -> StoreResult<Vec<u8>> {
        match self.next()? {
            Value::Bytes(bytes) => Ok(bytes),
            other => Err(mismatch("bytes", &other)),
        }
    }

    pub fn opt_bytes(&mut self) -> StoreResult<Option<Vec<u8>>> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Bytes(bytes) => Ok(Some(bytes)),
            other => Err(mismatch("bytes", &other)),
        }
    }
}

fn mismatch(wanted: &str, found: &Value) -> StoreError {
    let found = match found {
        Value::Time(t) => format_time(*t),
        other => format!("{:?}", other.to_json()),
    };
    StoreError::internal(format!("a stored value is not {wanted}: {found}"))
}

/// A value bound as text.
pub(crate) fn text(value: impl ToString) -> Value {
    Value::Text(value.to_string())
}

/// A value bound as JSON.
pub(crate) fn json(value: &impl Serialize) -> StoreResult<Value> {
    serde_json::to_value(value).map(Value::Json).map_err(|e| StoreError::internal(format!("JSON of a value: {e}")))
}

/// A nullable text value.
pub(crate) fn opt_text(value: Option<impl ToString>) -> Value {
    value.map_or(Value::Null, text)
}

/// A count as the engines answer it.
pub(crate) fn count(value: Value) -> StoreResult<u64> {
    match value {
        Value::Integer(n) => Ok(n.max(0) as u64),
        other => Err(mismatch("a count", &other)),
    }
}

/// A truth value as the engines answer it (`EXISTS`).
pub(crate) fn truth(value: Value) -> StoreResult<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(mismatch("boolean", &other)),
    }
}

/// A table of client rows described by a catalogue, and the idempotency key that makes a row sent
/// again a duplicate.
pub(crate) struct RowTable {
    pub table: &'static str,
    pub fields: &'static [Field],
    /// Hidden columns that start with the value of a field (see [`sql::insert_row_copying`]).
    pub copies: &'static [(&'static str, usize)],
    /// The key's second column (after `project_id`) and its field.
    pub key_column: &'static str,
    pub key_field: usize,
    pub project_field: usize,
}

impl RowTable {
    /// Inserts the rows (values in catalogue order) whose key and id do not exist yet and answers
    /// the positions of those it inserted. A key sent twice in one batch is inserted from its
    /// first row; a row another writer inserts at the same moment is skipped (see
    /// [`sql::insert_batch`]).
    pub(crate) async fn insert_new(&self, x: &mut impl Executor, rows: &[&[Value]]) -> StoreResult<Vec<usize>> {
        match x.dialect() {
            Dialect::Sqlite => {
                let insert = sql::insert_row_copying(Dialect::Sqlite, self.table, self.fields, self.copies);
                let mut inserted = Vec::new();
                for (i, row) in rows.iter().enumerate() {
                    if x.execute(&insert, row).await? > 0 {
                        inserted.push(i);
                    }
                }
                Ok(inserted)
            }
            Dialect::Postgres => {
                let key = format!("project_id, {}", self.key_column);
                let insert = sql::insert_batch_copying(self.table, self.fields, self.copies, &key);
                let columns: Vec<Vec<&Value>> =
                    (0..self.fields.len()).map(|i| rows.iter().map(|row| &row[i]).collect()).collect();
                let answered = x.query_columns(&insert, &columns, &[Kind::Text, Kind::Text]).await?;
                let mut fresh = answered
                    .into_iter()
                    .map(|row| {
                        let mut c = Columns::new(row);
                        Ok((c.text()?, c.text()?))
                    })
                    .collect::<StoreResult<HashSet<(String, String)>>>()?;
                let key = |row: &[Value]| {
                    let text = |i: usize| row[i].as_text().unwrap_or_default().to_owned();
                    (text(self.project_field), text(self.key_field))
                };
                Ok((0..rows.len()).filter(|&i| fresh.remove(&key(rows[i]))).collect())
            }
        }
    }
}
