//! Keyset seeks: "the rows strictly after this one, in this order", as REST cursors and OData
//! skip tokens both ask. Null is the lowest value: first ascending, last descending, as every
//! `ORDER BY` of the store puts it.

use std::borrow::Cow;

use parley_core::Value;

use crate::sql::Statement;

/// One key of the order a seek follows.
pub(crate) struct SeekKey {
    /// The expression sorted on, as SQL without parameters.
    pub expr: Cow<'static, str>,
    pub descending: bool,
    /// Whether the expression may be null. Only then does the seek test it for null.
    pub nullable: bool,
}

/// `(…)`: the condition that a row comes strictly after the row whose keys are `after`, in the
/// lexicographic order of `keys`. `bind` appends a placeholder bound to a value.
///
/// When every key runs the same way and neither a key nor a value can be null, this is one row
/// comparison, which an index on the keys serves directly; otherwise it is the expanded form
/// `k1 > v1 OR (k1 = v1 AND k2 > v2) OR …`, with null as the lowest value.
pub(crate) fn push_seek(s: &mut Statement, keys: &[SeekKey], after: &[Value], bind: impl Fn(&mut Statement, Value)) {
    let uniform = keys.iter().all(|k| k.descending == keys[0].descending);
    let never_null = keys.iter().all(|k| !k.nullable) && after.iter().all(|v| *v != Value::Null);
    if uniform && never_null && !keys.is_empty() {
        s.push("(");
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.push(&key.expr);
        }
        s.push(if keys[0].descending { ") < (" } else { ") > (" });
        for (i, value) in after.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            bind(s, value.clone());
        }
        s.push(")");
        return;
    }
    let mut disjuncts = 0;
    s.push("(");
    for (i, (key, value)) in keys.iter().zip(after).enumerate() {
        if key.descending && *value == Value::Null {
            continue; // nothing comes after null in a descending order
        }
        if disjuncts > 0 {
            s.push(" OR ");
        }
        disjuncts += 1;
        s.push("(");
        for (prior, prior_value) in keys[..i].iter().zip(after) {
            s.push(&prior.expr);
            if *prior_value == Value::Null {
                s.push(" IS NULL AND ");
            } else {
                s.push(" = ");
                bind(s, prior_value.clone());
                s.push(" AND ");
            }
        }
        match (key.descending, value) {
            (false, Value::Null) => {
                s.push(&key.expr).push(" IS NOT NULL");
            }
            (false, _) => {
                s.push(&key.expr).push(" > ");
                bind(s, value.clone());
            }
            (true, _) if key.nullable => {
                // Below the value, or null (the lowest), as one term: it follows an AND.
                s.push("(").push(&key.expr).push(" < ");
                bind(s, value.clone());
                s.push(" OR ").push(&key.expr).push(" IS NULL)");
            }
            (true, _) => {
                s.push(&key.expr).push(" < ");
                bind(s, value.clone());
            }
        }
        s.push(")");
    }
    if disjuncts == 0 {
        s.push("1 = 0");
    }
    s.push(")");
}

#[cfg(test)]
mod tests {
    use parley_core::field::idx;
    use parley_core::{Cursor, ObjectId, RecordFilter, SortKey};

    use super::*;
    use crate::sql::{Dialect, select_records};

    fn key(expr: &'static str, descending: bool, nullable: bool) -> SeekKey {
        SeekKey { expr: Cow::Borrowed(expr), descending, nullable }
    }

    fn seek(keys: &[SeekKey], after: &[Value]) -> String {
        let mut s = Statement::new(Dialect::Sqlite);
        push_seek(&mut s, keys, after, |s, value| {
            s.bind(value);
        });
        s.text
    }

    #[test]
    fn keys_that_are_never_null_and_run_one_way_compare_as_a_row() {
        let after = [Value::Integer(1), Value::Text("a".into())];
        assert_eq!(seek(&[key("t", false, false), key("id", false, false)], &after), "(t, id) > (?1, ?2)");
        assert_eq!(seek(&[key("t", true, false), key("id", true, false)], &after), "(t, id) < (?1, ?2)");
        assert_eq!(
            seek(&[key("t", true, false), key("id", false, false)], &after),
            "((t < ?1) OR (t = ?2 AND id > ?3))"
        );
    }

    #[test]
    fn null_is_the_lowest_value() {
        let after = [Value::Null, Value::Text("a".into())];
        assert_eq!(
            seek(&[key("ip", false, true), key("id", false, false)], &after),
            "((ip IS NOT NULL) OR (ip IS NULL AND id > ?1))"
        );
        assert_eq!(seek(&[key("ip", true, true), key("id", false, false)], &after), "((ip IS NULL AND id > ?1))");
        assert_eq!(seek(&[key("ip", true, true)], &[Value::Null]), "(1 = 0)");
        assert_eq!(
            seek(
                &[key("ip", true, true), key("id", false, false)],
                &[Value::Text("x".into()), Value::Text("a".into())]
            ),
            "(((ip < ?1 OR ip IS NULL)) OR (ip = ?2 AND id > ?3))"
        );
    }

    #[test]
    fn rest_cursors_seek_by_row_value_on_the_default_order() {
        let filter =
            RecordFilter { project_id: ObjectId::generate(), contact_id: None, session_id: None, from: None, to: None };
        let sort =
            [SortKey { field: idx::TIMESTAMP, descending: false }, SortKey { field: idx::ID, descending: false }];
        let cursor = Cursor { values: vec![Value::Integer(1), Value::Text("a".into())] };
        let s = select_records(Dialect::Postgres, &filter, &sort, Some(&cursor), 0, 10);
        assert!(s.text.contains("WHERE project_id = $1 AND (timestamp, id) > ($2, $3) ORDER BY"), "{}", s.text);
    }
}
