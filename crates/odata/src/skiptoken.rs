//! `$skiptoken`: where a server-driven page continues. It holds the order keys' values of the
//! last row sent, so the next page starts by keyset, never by a deep offset. It names the order
//! it belongs to and is refused with another.

use base64::Engine as _;
use parley_core::Value;
use parley_core::field::FieldType;
use parley_core::value::{format_time, parse_time};
use serde_json::{Value as Json, json};

use crate::model::EntityType;
use crate::tree::Query;

fn signature(query: &Query, entity: &EntityType) -> String {
    query
        .order
        .iter()
        .map(|key| format!("{} {}", query.name(entity, key.operand), if key.descending { "desc" } else { "asc" }))
        .collect::<Vec<_>>()
        .join(",")
}

/// The token continuing after a row whose order keys have these values.
pub fn encode(query: &Query, entity: &EntityType, values: &[Value]) -> String {
    let values: Vec<Json> = values
        .iter()
        .map(|value| match value {
            Value::Time(t) => Json::String(format_time(*t)),
            other => other.to_json(),
        })
        .collect();
    let body = json!({"o": signature(query, entity), "v": values});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
}

/// The order keys' values a token holds, if it was made for this query's order.
pub fn decode(query: &Query, entity: &EntityType, token: &str) -> Option<Vec<Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let body: Json = serde_json::from_slice(&bytes).ok()?;
    if body.get("o")?.as_str()? != signature(query, entity) {
        return None;
    }
    let values = body.get("v")?.as_array()?;
    if values.len() != query.order.len() {
        return None;
    }
    query.order.iter().zip(values).map(|(key, json)| typed(query.ty(entity, key.operand), json)).collect()
}

fn typed(ty: FieldType, json: &Json) -> Option<Value> {
    if json.is_null() {
        return Some(Value::Null);
    }
    Some(match ty {
        FieldType::Id | FieldType::Text { .. } | FieldType::LongText { .. } => Value::Text(json.as_str()?.to_owned()),
        FieldType::DateTime => Value::Time(parse_time(json.as_str()?)?),
        FieldType::Number { .. } => Value::Number(json.as_f64().filter(|n| n.is_finite())?),
        FieldType::Integer { .. } => Value::Integer(json.as_i64()?),
        FieldType::Boolean => Value::Bool(json.as_bool()?),
        FieldType::Json { .. } | FieldType::TextList => return None,
    })
}
