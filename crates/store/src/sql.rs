//! Statements on records, built once for every engine: the engines differ only in how a
//! placeholder is written and how a value is bound.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;

use parley_core::field::{Field, FieldType};
use parley_core::{Cursor, Erasure, ObjectId, RECORD_FIELDS, RecordFilter, RecordUpdate, SortKey, Value};
use time::OffsetDateTime;

use crate::exec::Kind;
use crate::seek::{self, SeekKey};

/// How an engine writes placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?1, ?2, …`
    Sqlite,
    /// `$1, $2, …`
    Postgres,
}

impl Dialect {
    /// A statement written with `?n` placeholders, in this dialect's placeholders.
    pub fn text(self, sql: &str) -> std::borrow::Cow<'_, str> {
        match self {
            Dialect::Sqlite => std::borrow::Cow::Borrowed(sql),
            Dialect::Postgres => std::borrow::Cow::Owned(sql.replace('?', "$")),
        }
    }
}

/// A statement and its parameters, bound in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub text: String,
    pub params: Vec<Value>,
    dialect: Dialect,
}

impl Statement {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Statement { text: String::with_capacity(256), params: Vec::new(), dialect }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: Value) -> &mut Self {
        self.params.push(value);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => write!(self.text, "?{n}"),
            Dialect::Postgres => write!(self.text, "${n}"),
        }
        .unwrap_or_default();
        self
    }
}

/// How records' columns are read, in catalogue order.
pub fn record_types() -> &'static [Kind] {
    static KINDS: LazyLock<Vec<Kind>> = LazyLock::new(|| RECORD_FIELDS.iter().map(|f| Kind::of(f.ty)).collect());
    &KINDS
}

/// The column list of a catalogue's table, in catalogue order.
pub fn columns_of(fields: &[Field]) -> String {
    fields.iter().map(|f| f.column).collect::<Vec<_>>().join(", ")
}

/// The column list of records, in catalogue order.
pub fn record_columns() -> String {
    columns_of(RECORD_FIELDS)
}

/// `INSERT` of one row of a catalogue's table that skips it when a stored row holds its key or its
/// id (see [`insert_batch`]).
pub fn insert_row(dialect: Dialect, table: &str, fields: &[Field]) -> String {
    insert_row_copying(dialect, table, fields, &[])
}

/// [`insert_row`] that also writes each `(column, field)` of `copies`: a column the catalogue does
/// not show, which starts with the value of one of its fields.
pub fn insert_row_copying(dialect: Dialect, table: &str, fields: &[Field], copies: &[(&str, usize)]) -> String {
    let placeholder = |n: usize| match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    };
    let placeholders: Vec<String> =
        (1..=fields.len()).chain(copies.iter().map(|(_, field)| field + 1)).map(placeholder).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
        columns_with(fields, copies),
        placeholders.join(", ")
    )
}

fn columns_with(fields: &[Field], copies: &[(&str, usize)]) -> String {
    let mut columns = columns_of(fields);
    for (column, _) in copies {
        columns.push_str(", ");
        columns.push_str(column);
    }
    columns
}

/// PostgreSQL's `INSERT` of a whole batch into a catalogue's table: one row per element of
/// parallel arrays, one per field, so that a batch of any size is one prepared statement and one
/// round trip. It skips rows whose key or id a stored row (or an earlier row of the batch) holds,
/// and returns `returning` of those it inserted.
///
/// A row skipped is one sent again: the same stamped row, its id included (ids are generated when
/// a row is stamped). No conflict target is named, so that a row is skipped on either unique key,
/// and so waits for a writer inserting the same row at that moment: with a target, PostgreSQL
/// waits and skips only on the key it names and checks the other (the id's) as a plain insert
/// does, which fails the second writer with a unique violation once the first commits.
pub fn insert_batch(table: &str, fields: &[Field], returning: &str) -> String {
    insert_batch_copying(table, fields, &[], returning)
}

/// [`insert_batch`] that also writes the `copies` of [`insert_row_copying`].
pub fn insert_batch_copying(table: &str, fields: &[Field], copies: &[(&str, usize)], returning: &str) -> String {
    let arrays: Vec<String> = (0..fields.len())
        .chain(copies.iter().map(|(_, field)| *field))
        .map(|i| format!("${}::{}[]", i + 1, postgres_type(fields[i].ty)))
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({}) ON CONFLICT DO NOTHING RETURNING {returning}",
        columns_with(fields, copies),
        arrays.join(", ")
    )
}

/// `INSERT` of one record that skips it when its `(projectId, inputId)` or its id exists.
pub fn insert_record(dialect: Dialect) -> String {
    insert_row(dialect, "records", RECORD_FIELDS)
}

/// PostgreSQL's `INSERT` of a batch of records; returns the project and input of each record
/// inserted.
pub fn insert_batch_postgres() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| insert_batch("records", RECORD_FIELDS, "project_id, input_id"));
    &SQL
}

/// The PostgreSQL type of a field's column, as named in casts.
pub fn postgres_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id | FieldType::Text { .. } | FieldType::LongText { .. } => "text",
        FieldType::DateTime => "timestamptz",
        FieldType::Json { .. } | FieldType::TextList => "json",
        FieldType::Number { .. } => "float8",
        FieldType::Integer { .. } => "int8",
        FieldType::Boolean => "bool",
    }
}

/// The `UPDATE` of `PATCH /v2.0/analytics`.
pub fn update_records(dialect: Dialect, update: &RecordUpdate, now: OffsetDateTime) -> Statement {
    let mut s = Statement::new(dialect);
    s.push("UPDATE records SET ");
    for (index, value) in &update.changes {
        s.push(RECORD_FIELDS[*index].column).push(" = ").bind(value.clone()).push(", ");
    }
    s.push("updated_at = ").bind(Value::Time(now));
    s.push(" WHERE project_id = ").bind(Value::Text(update.project_id.to_string()));
    s.push(" AND contact_id = ").bind(Value::Text(update.contact_id.clone()));
    if let Some(session) = &update.session_id {
        s.push(" AND session_id = ").bind(Value::Text(session.clone()));
    }
    if let Some(input) = &update.input_id {
        s.push(" AND input_id = ").bind(Value::Text(input.clone()));
    }
    s
}

fn push_filter(s: &mut Statement, filter: &RecordFilter) {
    s.push(" WHERE project_id = ").bind(Value::Text(filter.project_id.to_string()));
    if let Some(contact) = &filter.contact_id {
        s.push(" AND contact_id = ").bind(Value::Text(contact.clone()));
    }
    if let Some(session) = &filter.session_id {
        s.push(" AND session_id = ").bind(Value::Text(session.clone()));
    }
    if let Some(from) = filter.from {
        s.push(" AND timestamp >= ").bind(Value::Time(from));
    }
    if let Some(to) = filter.to {
        s.push(" AND timestamp < ").bind(Value::Time(to));
    }
}

/// Records matching `filter`, in `sort` order (nulls sort lowest), strictly after `after`.
pub fn select_records(
    dialect: Dialect,
    filter: &RecordFilter,
    sort: &[SortKey],
    after: Option<&Cursor>,
    offset: u64,
    limit: u32,
) -> Statement {
    let mut s = Statement::new(dialect);
    s.push("SELECT ").push(&record_columns()).push(" FROM records");
    push_filter(&mut s, filter);
    if let Some(cursor) = after {
        push_seek(&mut s, sort, cursor);
    }
    s.push(" ORDER BY ");
    for (i, key) in sort.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.push(RECORD_FIELDS[key.field].column);
        s.push(if key.descending { " DESC NULLS LAST" } else { " ASC NULLS FIRST" });
    }
    s.push(" LIMIT ").bind(Value::Integer(i64::from(limit)));
    if offset > 0 {
        s.push(" OFFSET ").bind(Value::Integer(offset as i64));
    }
    s
}

/// `AND (…)`: the rows after the cursor in lexicographic order of the sort keys, where null is
/// the lowest value (first ascending, last descending).
fn push_seek(s: &mut Statement, sort: &[SortKey], cursor: &Cursor) {
    let keys: Vec<SeekKey> = sort
        .iter()
        .map(|key| {
            let field = &RECORD_FIELDS[key.field];
            SeekKey { expr: Cow::Borrowed(field.column), descending: key.descending, nullable: field.nullable() }
        })
        .collect();
    s.push(" AND ");
    seek::push_seek(s, &keys, &cursor.values, |s, value| {
        s.bind(value);
    });
}

/// The number of records matching `filter`.
pub fn count_records(dialect: Dialect, filter: &RecordFilter) -> Statement {
    let mut s = Statement::new(dialect);
    s.push("SELECT COUNT(*) FROM records");
    push_filter(&mut s, filter);
    s
}

/// One record by id among the given projects.
pub fn select_record(dialect: Dialect, projects: &[ObjectId], id: ObjectId) -> Statement {
    let mut s = Statement::new(dialect);
    s.push("SELECT ").push(&record_columns()).push(" FROM records WHERE id = ").bind(Value::Text(id.to_string()));
    s.push(" AND project_id IN (");
    for (i, project) in projects.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.bind(Value::Text(project.to_string()));
    }
    if projects.is_empty() {
        s.push("NULL");
    }
    s.push(")");
    s
}

/// One batch of an erasure in `table` (records, or a collection kept beside them): deletes at
/// most `limit` of the project's rows that `erasure` matches and returns the session of each.
/// Its timestamp bounds are inclusive.
///
/// Where a row may leave its contact out (`contact_optional`, executed steps), such a row is the
/// contact's when its session is.
pub fn erase_rows(
    dialect: Dialect,
    table: &str,
    contact_optional: bool,
    project_id: ObjectId,
    erasure: &Erasure,
    limit: u32,
) -> Statement {
    let mut s = Statement::new(dialect);
    let project = Value::Text(project_id.to_string());
    s.push("DELETE FROM ").push(table).push(" WHERE project_id = ").bind(project.clone());
    s.push(" AND id IN (SELECT id FROM ").push(table).push(" WHERE project_id = ").bind(project.clone());
    match (&erasure.contact_ids, contact_optional) {
        (Some(contacts), true) => {
            s.push(" AND (");
            push_in_list(&mut s, "contact_id", contacts);
            s.push(" OR contact_id IS NULL AND session_id IN (SELECT session_id FROM sessions WHERE project_id = ");
            s.bind(project).push(" AND ");
            push_in_list(&mut s, "contact_id", contacts);
            s.push("))");
            push_erasure(&mut s, &Erasure { contact_ids: None, ..erasure.clone() }, "timestamp");
        }
        _ => push_erasure(&mut s, erasure, "timestamp"),
    }
    s.push(" LIMIT ").bind(Value::Integer(i64::from(limit))).push(") RETURNING session_id");
    s
}

/// Deletes the pending updates of the project that `erasure` matches, by the time they were
/// received (a pending update has no record timestamp yet).
pub fn erase_pending_updates(dialect: Dialect, project_id: ObjectId, erasure: &Erasure) -> Statement {
    let mut s = Statement::new(dialect);
    s.push("DELETE FROM pending_updates WHERE project_id = ").bind(Value::Text(project_id.to_string()));
    push_erasure(&mut s, erasure, "received_at");
    s
}

/// Deletes the project's sessions that `erasure` matches and that no row names any more (kept
/// after their transcript was deleted): those of its contacts whose activity lies within its
/// bounds.
pub fn erase_empty_sessions(dialect: Dialect, project_id: ObjectId, erasure: &Erasure) -> Statement {
    let mut s = Statement::new(dialect);
    s.push("DELETE FROM sessions WHERE project_id = ").bind(Value::Text(project_id.to_string()));
    s.push(" AND inputs_count = 0 AND messages_count = 0 AND steps_count = 0 AND handover_escalations = 0");
    if let Some(contacts) = &erasure.contact_ids {
        s.push(" AND ");
        push_in_list(&mut s, "contact_id", contacts);
    }
    if let Some(start) = erasure.timestamp_start {
        s.push(" AND started_at >= ").bind(Value::Time(start));
    }
    if let Some(end) = erasure.timestamp_end {
        s.push(" AND last_activity_at <= ").bind(Value::Time(end));
    }
    s
}

/// `AND …` for the contacts and the inclusive time bounds of an erasure. The contact list is
/// bound as one JSON array, so that the statement text does not depend on its length.
fn push_erasure(s: &mut Statement, erasure: &Erasure, time_column: &str) {
    if let Some(contacts) = &erasure.contact_ids {
        s.push(" AND ");
        push_in_list(s, "contact_id", contacts);
    }
    if let Some(start) = erasure.timestamp_start {
        s.push(" AND ").push(time_column).push(" >= ").bind(Value::Time(start));
    }
    if let Some(end) = erasure.timestamp_end {
        s.push(" AND ").push(time_column).push(" <= ").bind(Value::Time(end));
    }
}

/// `column IN (…)` for a list of texts, bound as one JSON array, so that the statement text does
/// not depend on the list's length.
pub(crate) fn push_in_list(s: &mut Statement, column: &str, list: &[String]) {
    let list = Value::Json(serde_json::Value::from(list.to_vec()));
    s.push(column);
    match s.dialect {
        Dialect::Sqlite => s.push(" IN (SELECT value FROM json_each(").bind(list).push("))"),
        Dialect::Postgres => s.push(" IN (SELECT json_array_elements_text(").bind(list).push("::json))"),
    };
}

/// One batch of the retention purge in `table`: deletes at most `limit` of the project's rows
/// whose `expiresAt` has passed at `now` and returns the session of each.
pub fn purge_expired(
    dialect: Dialect,
    table: &str,
    project_id: ObjectId,
    now: OffsetDateTime,
    limit: u32,
) -> Statement {
    let mut s = Statement::new(dialect);
    let project = Value::Text(project_id.to_string());
    s.push("DELETE FROM ").push(table).push(" WHERE project_id = ").bind(project.clone());
    s.push(" AND id IN (SELECT id FROM ").push(table).push(" WHERE project_id = ").bind(project);
    s.push(" AND expires_at IS NOT NULL AND expires_at <= ").bind(Value::Time(now));
    s.push(" LIMIT ").bind(Value::Integer(i64::from(limit))).push(") RETURNING session_id");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_postgres_batch_insert_casts_every_column() {
        let sql = super::insert_batch_postgres();
        assert_eq!(sql.matches("[]").count(), super::RECORD_FIELDS.len());
        assert!(sql.contains("$7::timestamptz[]"), "{sql}");
        assert!(sql.contains("$9::json[]"), "{sql}");
        assert!(sql.ends_with("ON CONFLICT DO NOTHING RETURNING project_id, input_id"), "{sql}");
    }

    use super::*;
    use parley_core::field::idx;

    fn filter() -> RecordFilter {
        RecordFilter { project_id: ObjectId::generate(), contact_id: None, session_id: None, from: None, to: None }
    }

    #[test]
    fn seek_handles_nulls_in_both_directions() {
        let sort = [SortKey { field: idx::IP, descending: true }, SortKey { field: idx::ID, descending: false }];
        let cursor = Cursor { values: vec![Value::Null, Value::Text("a".into())] };
        let s = select_records(Dialect::Postgres, &filter(), &sort, Some(&cursor), 0, 10);
        assert!(s.text.contains("AND ((ip IS NULL AND id > $2))"), "{}", s.text);
        assert!(s.text.ends_with("ORDER BY ip DESC NULLS LAST, id ASC NULLS FIRST LIMIT $3"), "{}", s.text);
    }

    #[test]
    fn erasure_names_the_project_and_binds_the_contacts_once() {
        let erasure = Erasure {
            contact_ids: Some(vec!["a".into(), "b".into()]),
            timestamp_start: None,
            timestamp_end: Some(time::macros::datetime!(2024-05-01 12:00 UTC)),
        };
        let project = ObjectId::generate();
        let s = erase_rows(Dialect::Postgres, "records", false, project, &erasure, 1000);
        assert_eq!(
            s.text,
            "DELETE FROM records WHERE project_id = $1 AND id IN (SELECT id FROM records WHERE project_id = $2 \
             AND contact_id IN (SELECT json_array_elements_text($3::json)) AND timestamp <= $4 LIMIT $5) \
             RETURNING session_id"
        );
        assert_eq!(s.params[2], Value::Json(serde_json::json!(["a", "b"])));
        let s = erase_pending_updates(Dialect::Sqlite, project, &Erasure { contact_ids: None, ..erasure });
        assert_eq!(s.text, "DELETE FROM pending_updates WHERE project_id = ?1 AND received_at <= ?2");
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        let s = count_records(Dialect::Sqlite, &RecordFilter { contact_id: Some("c".into()), ..filter() });
        assert_eq!(s.text, "SELECT COUNT(*) FROM records WHERE project_id = ?1 AND contact_id = ?2");
        assert_eq!(s.params.len(), 2);
    }
}
