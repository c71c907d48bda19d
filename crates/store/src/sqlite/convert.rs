//! Values between the domain and SQLite: times as epoch milliseconds, JSON and string lists as
//! JSON text, booleans as integers.

use parley_core::Value;
use parley_core::value::{from_unix_millis, unix_millis};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};

use crate::error::{StoreError, StoreResult};
use crate::exec::Kind;

/// The SQLite form of a value.
pub fn to_sql(value: &Value) -> ToSqlOutput<'_> {
    match value {
        Value::Null => ToSqlOutput::Owned(SqlValue::Null),
        Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        Value::Integer(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
        Value::Number(n) => ToSqlOutput::Owned(SqlValue::Real(*n)),
        Value::Bool(b) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*b))),
        Value::Time(t) => ToSqlOutput::Owned(SqlValue::Integer(unix_millis(*t))),
        Value::Json(json) => ToSqlOutput::Owned(SqlValue::Text(json.to_string())),
        Value::TextList(items) => ToSqlOutput::Owned(SqlValue::Text(serde_json::to_string(items).unwrap_or_default())),
        Value::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
    }
}

/// Binds a statement's parameters in order.
pub fn params(values: &[Value]) -> impl rusqlite::Params + '_ {
    rusqlite::params_from_iter(values.iter().map(Sql))
}

/// One value as a bindable parameter.
pub struct Sql<'a>(pub &'a Value);

impl rusqlite::ToSql for Sql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(to_sql(self.0))
    }
}

/// Reads the values of a row whose columns have these types, in order.
pub fn values_from_row(row: &rusqlite::Row<'_>, types: &[Kind]) -> rusqlite::Result<Vec<Value>> {
    types
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            let raw = row.get_ref(i)?;
            from_sql(*ty, raw).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, raw.data_type(), Box::new(e)))
        })
        .collect()
}

fn from_sql(ty: Kind, raw: ValueRef<'_>) -> StoreResult<Value> {
    let corrupt = || StoreError::internal(format!("stored value of type {:?} does not fit {ty:?}", raw.data_type()));
    Ok(match (ty, raw) {
        (_, ValueRef::Null) => Value::Null,
        (Kind::Text, ValueRef::Text(bytes)) => Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| corrupt())?),
        (Kind::Time, ValueRef::Integer(ms)) => Value::Time(from_unix_millis(ms).ok_or_else(corrupt)?),
        (Kind::Json, ValueRef::Text(bytes)) => Value::Json(serde_json::from_slice(bytes).map_err(|_| corrupt())?),
        (Kind::TextList, ValueRef::Text(bytes)) => {
            Value::TextList(serde_json::from_slice(bytes).map_err(|_| corrupt())?)
        }
        (Kind::Number, ValueRef::Real(n)) => Value::Number(n),
        (Kind::Number, ValueRef::Integer(i)) => Value::Number(i as f64),
        (Kind::Integer, ValueRef::Integer(i)) => Value::Integer(i),
        (Kind::Bool, ValueRef::Integer(i)) => Value::Bool(i != 0),
        (Kind::Bytes, ValueRef::Blob(bytes)) => Value::Bytes(bytes.to_vec()),
        _ => return Err(corrupt()),
    })
}
