//! Values between the domain and PostgreSQL: times as `timestamptz` (millisecond values, as the
//! embedded engine keeps them), JSON values and string lists as `json`, booleans as `boolean`,
//! integers as `bigint`, numbers as `double precision`.

use std::error::Error;

use bytes::BytesMut;
use parley_core::Value;
use parley_core::value::{from_unix_millis, unix_millis};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{IsNull, Json, ToSql, Type, to_sql_checked};

use crate::error::{StoreError, StoreResult};
use crate::exec::Kind;

type BoxError = Box<dyn Error + Sync + Send>;

/// One value as a bindable parameter. It accepts a parameter of any type, so that `Value::Null`
/// binds anywhere; a non-null value is written by the encoder of its own Rust type, which refuses
/// a parameter type it cannot write.
#[derive(Debug, Clone, Copy)]
pub struct Param<'a>(pub &'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(text) => encode(text, ty, out),
            Value::Integer(i) => encode(i, ty, out),
            Value::Number(n) => encode(n, ty, out),
            Value::Bool(b) => encode(b, ty, out),
            Value::Time(t) => encode(&millis(*t), ty, out),
            Value::Json(json) => encode(json, ty, out),
            Value::TextList(items) => encode(&Json(items), ty, out),
            Value::Bytes(bytes) => encode(bytes, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn encode<T: ToSql>(value: &T, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    if T::accepts(ty) {
        value.to_sql(ty, out)
    } else {
        Err(format!("a {} cannot be bound to a parameter of type {ty}", std::any::type_name::<T>()).into())
    }
}

/// A time at the precision parley stores, truncated exactly as the embedded engine truncates it.
pub fn millis(t: OffsetDateTime) -> OffsetDateTime {
    from_unix_millis(unix_millis(t)).unwrap_or(t)
}

/// Reads the values of a row whose columns have these types, in order.
pub fn values_from_row(row: &Row, types: &[Kind]) -> StoreResult<Vec<Value>> {
    types.iter().enumerate().map(|(i, ty)| value_at(row, i, *ty)).collect()
}

fn value_at(row: &Row, i: usize, ty: Kind) -> StoreResult<Value> {
    let corrupt = |e: tokio_postgres::Error| {
        let name = row.columns().get(i).map_or("?", |c| c.name());
        StoreError::internal(format!("stored value of '{name}' does not fit its type: {e}"))
    };
    let value = match ty {
        Kind::Text => row.try_get::<_, Option<String>>(i).map_err(corrupt)?.map(Value::Text),
        Kind::Time => row
            .try_get::<_, Option<OffsetDateTime>>(i)
            .map_err(corrupt)?
            .map(|t| Value::Time(t.to_offset(time::UtcOffset::UTC))),
        Kind::Json => row.try_get::<_, Option<serde_json::Value>>(i).map_err(corrupt)?.map(Value::Json),
        Kind::TextList => {
            row.try_get::<_, Option<Json<Vec<String>>>>(i).map_err(corrupt)?.map(|list| Value::TextList(list.0))
        }
        Kind::Number => row.try_get::<_, Option<f64>>(i).map_err(corrupt)?.map(Value::Number),
        Kind::Integer => row.try_get::<_, Option<i64>>(i).map_err(corrupt)?.map(Value::Integer),
        Kind::Bool => row.try_get::<_, Option<bool>>(i).map_err(corrupt)?.map(Value::Bool),
        Kind::Bytes => row.try_get::<_, Option<Vec<u8>>>(i).map_err(corrupt)?.map(Value::Bytes),
    };
    Ok(value.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &Value, ty: &Type) -> Result<(IsNull, Vec<u8>), BoxError> {
        let mut out = BytesMut::new();
        let is_null = Param(value).to_sql(ty, &mut out)?;
        Ok((is_null, out.to_vec()))
    }

    #[test]
    fn null_binds_to_any_type() {
        for ty in [Type::TEXT, Type::INT8, Type::FLOAT8, Type::BOOL, Type::TIMESTAMPTZ, Type::JSON, Type::JSONB] {
            assert!(Param::accepts(&ty));
            assert!(matches!(encoded(&Value::Null, &ty), Ok((IsNull::Yes, _))), "{ty}");
        }
    }

    #[test]
    fn values_refuse_a_parameter_of_another_type() {
        assert!(encoded(&Value::Text("x".into()), &Type::INT8).is_err());
        assert!(encoded(&Value::Integer(1), &Type::TEXT).is_err());
        assert!(encoded(&Value::Bool(true), &Type::FLOAT8).is_err());
    }

    #[test]
    fn json_is_written_as_its_text() {
        let json = serde_json::json!({"z": 1, "a": "x"});
        let (_, bytes) = encoded(&Value::Json(json), &Type::JSON).unwrap();
        assert_eq!(bytes, br#"{"z":1,"a":"x"}"#);
        let (_, bytes) = encoded(&Value::TextList(vec!["b".into(), "a".into()]), &Type::JSON).unwrap();
        assert_eq!(bytes, br#"["b","a"]"#);
    }

    #[test]
    fn times_are_truncated_to_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(millis(t).nanosecond(), 123_000_000);
    }
}
