//! The meaning OData gives a query, computed here without SQL: what the store must agree with.

use std::cmp::Ordering;

use parley_core::{Record, Value};
use parley_odata::{Arith, ArithOp, CompareOp, Expr, Function, Lambda, Operand, OrderKey};
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
    evaluate_in(expr, record, &[])
}

/// The elements of a collection property (none when absent).
fn elements(record: &Record, list: Operand) -> Vec<String> {
    let Operand::Property(p) = list else { panic!("no aggregates on records") };
    match record.get(p) {
        Value::TextList(items) => items.clone(),
        _ => Vec::new(),
    }
}

/// An expression's meaning where the lambdas' variables stand for `elements` (outermost first).
fn evaluate_in(expr: &Expr, record: &Record, elements_of: &[&str]) -> Value {
    let evaluate = |e: &Expr, record: &Record| evaluate_in(e, record, elements_of);
    let truth = |e: &Expr| evaluate(e, record) == Value::Bool(true);
    let holds = |lambda: &Lambda, item: &str| {
        let mut inner = elements_of[..lambda.depth].to_vec();
        inner.push(item);
        evaluate_in(&lambda.condition, record, &inner) == Value::Bool(true)
    };
    match expr {
        Expr::Element(depth) => Value::Text(elements_of[*depth].to_owned()),
        Expr::Any(list, None) => Value::Bool(!elements(record, *list).is_empty()),
        Expr::Any(list, Some(lambda)) => Value::Bool(elements(record, *list).iter().any(|e| holds(lambda, e))),
        Expr::All(list, lambda) => Value::Bool(elements(record, *list).iter().all(|e| holds(lambda, e))),
        Expr::Count(list) => Value::Integer(elements(record, *list).len() as i64),
        Expr::Cast(value, from, target) => parley_odata::cast::cast(&evaluate(value, record), *from, *target),
        Expr::Case(arms) => arms
            .iter()
            .find(|(condition, _)| truth(condition))
            .map_or(Value::Null, |(_, value)| evaluate(value, record)),
        Expr::Literal(value) => value.clone(),
        Expr::Column(Operand::Property(p)) => field_value(record, *p),
        Expr::Column(Operand::Aggregate(_) | Operand::Computed(_) | Operand::Branch) => {
            panic!("records have neither aggregates, computed properties nor sequences")
        }
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
            let number = |f: fn(f64) -> f64| as_number(&values[0]).map_or(Value::Null, |n| Value::Number(f(n)));
            let position = |i: usize| match values.get(i) {
                Some(Value::Integer(n)) => Some((*n).clamp(0, i64::from(i32::MAX)) as usize),
                _ => None,
            };
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
                Function::MatchesPattern => match (text(0), text(1)) {
                    (Some(a), Some(pattern)) => Value::Bool(regex::Regex::new(&pattern).unwrap().is_match(&a)),
                    _ => Value::Null,
                },
                Function::Length => text(0).map_or(Value::Null, |t| Value::Integer(t.chars().count() as i64)),
                Function::IndexOf => match (text(0), text(1)) {
                    (Some(a), Some(b)) => Value::Integer(a.find(&b).map_or(-1, |at| a[..at].chars().count() as i64)),
                    _ => Value::Null,
                },
                Function::Substring => match (text(0), position(1)) {
                    (Some(a), Some(start)) if args.len() == 2 => Value::Text(a.chars().skip(start).collect()),
                    (Some(a), Some(start)) => match position(2) {
                        Some(length) => Value::Text(a.chars().skip(start).take(length).collect()),
                        None => Value::Null,
                    },
                    _ => Value::Null,
                },
                Function::Trim => text(0).map_or(Value::Null, |t| Value::Text(t.trim_matches(' ').to_owned())),
                Function::Concat => match (text(0), text(1)) {
                    (Some(a), Some(b)) => Value::Text(a + &b),
                    _ => Value::Null,
                },
                Function::FractionalSeconds => {
                    time(0).map_or(Value::Null, |t| Value::Number(f64::from(t.millisecond()) / 1000.0))
                }
                Function::TotalOffsetMinutes => part(|_| 0),
                Function::Time => time(0).map_or(Value::Null, |t| {
                    let (h, m, sec, ms) = t.to_hms_milli();
                    Value::Integer(((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(sec)) * 1000 + i64::from(ms))
                }),
                Function::Date => time(0).map_or(Value::Null, |t| Value::Time(t.replace_time(time::Time::MIDNIGHT))),
                Function::TotalSeconds => match &values[0] {
                    Value::Integer(ms) => Value::Number(*ms as f64 / 1000.0),
                    _ => Value::Null,
                },
                Function::Round => number(f64::round),
                Function::Floor => number(f64::floor),
                Function::Ceiling => number(f64::ceil),
            }
        }
        Expr::Arith(op, kind, left, right) => arithmetic(*op, *kind, &evaluate(left, record), &evaluate(right, record)),
    }
}

/// OData's arithmetic on two values; null when either is null (or, not exercised here, when
/// the result is out of range).
fn arithmetic(op: ArithOp, kind: Arith, a: &Value, b: &Value) -> Value {
    match (kind, a, b) {
        (_, Value::Null, _) | (_, _, Value::Null) => Value::Null,
        (Arith::Integer, Value::Integer(a), Value::Integer(b)) => {
            let result = match op {
                ArithOp::Add => a.checked_add(*b),
                ArithOp::Sub => a.checked_sub(*b),
                ArithOp::Mul => a.checked_mul(*b),
                ArithOp::Div | ArithOp::DivBy => a.checked_div(*b),
                ArithOp::Mod => a.checked_rem(*b),
            };
            result.map_or(Value::Null, Value::Integer)
        }
        (Arith::Number, a, b) => {
            let (a, b) = (as_number(a).unwrap(), as_number(b).unwrap());
            Value::Number(match op {
                ArithOp::Add => a + b,
                ArithOp::Sub => a - b,
                ArithOp::Mul => a * b,
                ArithOp::Div | ArithOp::DivBy => a / b,
                ArithOp::Mod => a % b,
            })
        }
        (Arith::Shift, Value::Time(t), Value::Integer(ms)) => {
            let shift = time::Duration::milliseconds(*ms);
            Value::Time(if op == ArithOp::Sub { *t - shift } else { *t + shift })
        }
        (Arith::Between, Value::Time(a), Value::Time(b)) => Value::Integer((*a - *b).whole_milliseconds() as i64),
        other => panic!("no arithmetic for {other:?}"),
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
