//! The meaning OData gives a query, computed here without SQL: what the store must agree with.

use std::cmp::Ordering;

use parley_core::{Record, Value};
use parley_odata::{CompareOp, Expr, Function, Operand, OrderKey};
use time::OffsetDateTime;

use crate::fixtures::compare_values;

/// The value of an operand as the reference evaluator sees it: JSON as its text.
fn field_value(record: &Record, p: usize) -> Value {
    match record.get(p) {
        Value::Json(json) => Value::Text(json.to_string()),
        other => other.clone(),
    }
}

pub fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// Orders two non-null values of comparable types.
pub fn order_of(a: &Value, b: &Value) -> Ordering {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => compare_values(a, b),
    }
}

/// OData's meaning of an expression for one record, independent of any SQL.
pub fn evaluate(expr: &Expr, record: &Record) -> Value {
    let truth = |e: &Expr| evaluate(e, record) == Value::Bool(true);
    match expr {
        Expr::Literal(value) => value.clone(),
        Expr::Column(Operand::Property(p)) => field_value(record, *p),
        Expr::Column(Operand::Aggregate(_)) => panic!("no aggregates on records"),
        Expr::Not(inner) => Value::Bool(!truth(inner)),
        Expr::And(items) => Value::Bool(items.iter().all(truth)),
        Expr::Or(items) => Value::Bool(items.iter().any(truth)),
        Expr::Compare(op, left, right) => {
            let (a, b) = (evaluate(left, record), evaluate(right, record));
            Value::Bool(match (op, &a, &b) {
                (CompareOp::Eq, Value::Null, _) | (CompareOp::Eq, _, Value::Null) => a == b,
                (CompareOp::Ne, Value::Null, _) | (CompareOp::Ne, _, Value::Null) => a != b,
                (_, Value::Null, _) | (_, _, Value::Null) => false,
                (CompareOp::Eq, _, _) => order_of(&a, &b).is_eq(),
                (CompareOp::Ne, _, _) => order_of(&a, &b).is_ne(),
                (CompareOp::Gt, _, _) => order_of(&a, &b).is_gt(),
                (CompareOp::Ge, _, _) => order_of(&a, &b).is_ge(),
                (CompareOp::Lt, _, _) => order_of(&a, &b).is_lt(),
                (CompareOp::Le, _, _) => order_of(&a, &b).is_le(),
            })
        }
        Expr::In(operand, values) => {
            let value = evaluate(operand, record);
            Value::Bool(values.iter().any(|v| match (v, &value) {
                (Value::Null, Value::Null) => true,
                (Value::Null, _) | (_, Value::Null) => false,
                (v, value) => order_of(v, value).is_eq(),
            }))
        }
        Expr::Call(function, args) => {
            let values: Vec<Value> = args.iter().map(|a| evaluate(a, record)).collect();
            let text = |i: usize| values[i].as_text().map(str::to_owned);
            let time = |i: usize| match &values[i] {
                Value::Time(t) => Some(t.to_offset(time::UtcOffset::UTC)),
                _ => None,
            };
            let part = |f: fn(OffsetDateTime) -> i64| time(0).map_or(Value::Null, |t| Value::Integer(f(t)));
            match function {
                Function::Contains => Value::Bool(matches!((text(0), text(1)), (Some(a), Some(b)) if a.contains(&b))),
                Function::StartsWith => {
                    Value::Bool(matches!((text(0), text(1)), (Some(a), Some(b)) if a.starts_with(&b)))
                }
                Function::EndsWith => Value::Bool(matches!((text(0), text(1)), (Some(a), Some(b)) if a.ends_with(&b))),
                Function::ToLower => text(0).map_or(Value::Null, |t| Value::Text(t.to_ascii_lowercase())),
                Function::ToUpper => text(0).map_or(Value::Null, |t| Value::Text(t.to_ascii_uppercase())),
                Function::Year => part(|t| i64::from(t.year())),
                Function::Month => part(|t| i64::from(u8::from(t.month()))),
                Function::Day => part(|t| i64::from(t.day())),
                Function::Hour => part(|t| i64::from(t.hour())),
                Function::Minute => part(|t| i64::from(t.minute())),
                Function::Second => part(|t| i64::from(t.second())),
            }
        }
    }
}

/// Sorts records by OData order keys over properties: null lowest, text by bytes.
pub fn sorted_by(records: &[Record], order: &[OrderKey]) -> Vec<Record> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| {
        order
            .iter()
            .map(|key| {
                let Operand::Property(p) = key.operand else { panic!("records have no aggregates") };
                let ordering = compare_values(a.get(p), b.get(p));
                if key.descending { ordering.reverse() } else { ordering }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    sorted
}
