//! OData query trees compiled to SQL with bound parameters, once for both engines; the dialect
//! decides placeholders, a few function names, and (PostgreSQL) explicit parameter types.
//!
//! Semantics kept identical on both engines:
//! - every statement names the entity's project column: `project_id IN (…)`, the projects the
//!   caller may read;
//! - two-valued logic as OData has it: `ne` is `IS DISTINCT FROM`, `not` treats an unknown
//!   comparison (one with null) as false before negating it;
//! - text compares and sorts by bytes (the PostgreSQL schema uses the "C" collation, and text
//!   parameters are given it too); `tolower`/`toupper` map ASCII letters only, as SQLite does;
//! - nulls sort lowest (first ascending, last descending);
//! - sums and averages are computed in double precision, so they never overflow.

use std::borrow::Cow;

use parley_core::field::FieldType;
use parley_core::{ObjectId, Value};
use parley_odata::{
    Arith, ArithOp, CompareOp, EntityType, Expr, Function, Lambda, Method, Operand, OrderKey, Query, Step, conjoin,
};

use parley_odata::cast::{self, Kind as ValueKind, Target};
use parley_odata::search::Search;

use crate::exec::Kind;
use crate::seek::{self, SeekKey};
use crate::sql::{Dialect, Statement};

/// One page of an OData read: which rows, which columns, how many.
#[derive(Debug, Clone, Copy)]
pub struct ODataRead<'a> {
    pub entity: &'a EntityType,
    pub query: &'a Query,
    /// The projects whose rows may be read.
    pub projects: &'a [ObjectId],
    /// The columns to return, in order.
    pub columns: &'a [Operand],
    /// The most rows to return.
    pub limit: u64,
}

impl ODataRead<'_> {
    /// How the returned columns are read, in order.
    pub fn column_kinds(&self) -> Vec<Kind> {
        self.columns.iter().map(|&c| Kind::of(self.query.ty(self.entity, c))).collect()
    }
}

/// The `SELECT` of one page: the query's rows in its order, after the skip token when there is
/// one, skipping `$skip` rows, at most `limit`.
pub fn select(dialect: Dialect, read: &ODataRead<'_>) -> Statement {
    let ODataRead { entity, query, projects, columns, limit } = *read;
    let mut s = Statement::new(dialect);
    s.push("SELECT ");
    for (i, &column) in columns.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.push(&output_name(entity, column));
    }
    let mut conditions = 0;
    let mut and = |s: &mut Statement| {
        s.push(if conditions == 0 { " WHERE " } else { " AND " });
        conditions += 1;
    };
    if is_piped(query) {
        s.push(" FROM (");
        push_pipeline(&mut s, entity, query, projects);
        s.push(") piped");
        if let Some(filter) = &query.output_filter {
            and(&mut s);
            push_expr(&mut s, entity, filter);
        }
    } else {
        push_source(&mut s, entity, query, projects);
        and(&mut s);
        push_row_conditions(&mut s, entity, query, projects);
    }
    // After $apply's steps when there are any (the parser allows no aggregation with it).
    if let Some(search) = &query.search {
        and(&mut s);
        push_search(&mut s, search);
    }
    if let Some(after) = &query.after {
        and(&mut s);
        push_seek(&mut s, entity, &query.order, after);
    }
    push_order(&mut s, entity, &query.order);
    s.push(" LIMIT ").bind(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    if query.skip > 0 {
        s.push(" OFFSET ").bind(Value::Integer(i64::try_from(query.skip).unwrap_or(i64::MAX)));
    }
    s
}

/// The number of rows the query selects, ignoring `$top`, `$skip` and the skip token.
pub fn count(dialect: Dialect, entity: &EntityType, query: &Query, projects: &[ObjectId]) -> Statement {
    let mut s = Statement::new(dialect);
    let mut conditions = 0;
    let mut and = |s: &mut Statement| {
        s.push(if conditions == 0 { " WHERE " } else { " AND " });
        conditions += 1;
    };
    if is_piped(query) {
        s.push("SELECT COUNT(*) FROM (");
        push_pipeline(&mut s, entity, query, projects);
        s.push(") piped");
        if let Some(filter) = &query.output_filter {
            and(&mut s);
            push_expr(&mut s, entity, filter);
        }
    } else {
        s.push("SELECT COUNT(*)");
        push_source(&mut s, entity, query, projects);
        and(&mut s);
        push_row_conditions(&mut s, entity, query, projects);
    }
    if let Some(search) = &query.search {
        and(&mut s);
        push_search(&mut s, search);
    }
    s
}

/// What selects the entity's rows, before any aggregation: the caller's projects and the
/// filter.
fn push_row_conditions(s: &mut Statement, entity: &EntityType, query: &Query, projects: &[ObjectId]) {
    push_projects(s, entity, projects);
    if let Some(filter) = &query.filter {
        s.push(" AND ");
        push_expr(s, entity, filter);
    }
}

/// `$search` over the messages' text, through its full-text index (the parser allows it on
/// `Conversations` only): SQLite's FTS5 table `messages_search`, PostgreSQL's GIN index on
/// `to_tsvector('simple', …)`, which this expression matches. Each word or phrase is true or
/// false, never unknown, so `NOT` negates it plainly.
fn push_search(s: &mut Statement, search: &Search) {
    match search {
        Search::Phrase(words) => {
            if s.dialect() == Dialect::Sqlite {
                // One quoted FTS5 phrase: its words are letters and digits only.
                s.push("search_key IN (SELECT rowid FROM messages_search WHERE messages_search MATCH ")
                    .bind(Value::Text(format!("\"{}\"", words.join(" "))))
                    .push(")");
            } else {
                s.push("to_tsvector('simple', coalesce(input_text, '')) @@ phraseto_tsquery('simple', ");
                bind_typed(s, Value::Text(words.join(" ")));
                s.push(")");
            }
        }
        Search::Not(inner) => {
            s.push("NOT (");
            push_search(s, inner);
            s.push(")");
        }
        Search::And(items) | Search::Or(items) => {
            let operator = if matches!(search, Search::And(_)) { " AND " } else { " OR " };
            s.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push(operator);
                }
                push_search(s, item);
            }
            s.push(")");
        }
    }
}

/// ` ORDER BY` the keys, nulls lowest; nothing without keys.
fn push_order(s: &mut Statement, entity: &EntityType, keys: &[OrderKey]) {
    for (i, key) in keys.iter().enumerate() {
        s.push(if i == 0 { " ORDER BY " } else { ", " });
        s.push(&output_name(entity, key.operand));
        s.push(match (key.descending, is_nullable(entity, key.operand)) {
            (false, false) => " ASC",
            (true, false) => " DESC",
            (false, true) => " ASC NULLS FIRST",
            (true, true) => " DESC NULLS LAST",
        });
    }
}

/// Whether the rows come from `$apply` (an aggregation or steps) rather than the table.
fn is_piped(query: &Query) -> bool {
    query.aggregation.is_some() || !query.steps.is_empty()
}

/// The rows `$apply` makes: the aggregated rows (or the entity's rows that pass the first
/// filters), then each step as a subquery of the one before. `top`, `skip`, `topcount` and
/// `bottomcount` count in an order made total by the grouping properties (or the key), so
/// that both engines keep the same rows.
fn push_pipeline(s: &mut Statement, entity: &EntityType, query: &Query, projects: &[ObjectId]) {
    let tiebreak: Vec<OrderKey> = match &query.aggregation {
        Some(aggregation) => (!query.branches.is_empty())
            .then_some(Operand::Branch)
            .into_iter()
            .chain(aggregation.group_by.iter().copied())
            .map(|operand| OrderKey { operand, descending: false })
            .collect(),
        None => vec![OrderKey { operand: Operand::Property(entity.key), descending: false }],
    };
    // The outermost step's wrapper comes first.
    for (i, step) in query.steps.iter().enumerate().rev() {
        match step {
            Step::TopSum { operand, bottom, .. } => {
                // The sum of the rows ranked before each row, and the sum over all, beside it.
                let column = output_name(entity, *operand);
                let direction = if *bottom { "ASC" } else { "DESC" };
                let mut ranking = format!("{column} {direction}");
                for key in &tiebreak {
                    ranking.push_str(&format!(", {} ASC", output_name(entity, key.operand)));
                }
                let double = if s.dialect() == Dialect::Sqlite { "REAL" } else { "float8" };
                s.push(&format!(
                    "SELECT * FROM (SELECT *, SUM(CAST({column} AS {double})) OVER (ORDER BY {ranking} ROWS BETWEEN \
                     UNBOUNDED PRECEDING AND 1 PRECEDING) AS before{i}, SUM(CAST({column} AS {double})) OVER () AS \
                     all{i} FROM ("
                ));
            }
            Step::Compute(positions) => {
                s.push("SELECT *");
                for &c in positions {
                    s.push(", ");
                    push_expr(s, entity, &query.computed[c].expr);
                    s.push(&format!(" AS c{c}"));
                }
                s.push(" FROM (");
            }
            _ => {
                s.push("SELECT * FROM (");
            }
        }
    }
    match &query.aggregation {
        Some(_) if !query.branches.is_empty() => push_concatenated(s, entity, query, projects),
        Some(_) => push_grouped(s, entity, query, projects),
        None => {
            s.push("SELECT *");
            push_source(s, entity, query, projects);
            s.push(" WHERE ");
            push_row_conditions(s, entity, query, projects);
        }
    }
    let total = |keys: &[OrderKey]| -> Vec<OrderKey> {
        let mut keys = keys.to_vec();
        keys.extend(
            tiebreak.iter().filter(|t| !keys.iter().any(|k| k.operand == t.operand)).copied().collect::<Vec<_>>(),
        );
        keys
    };
    let mut order: Vec<OrderKey> = Vec::new();
    for (i, step) in query.steps.iter().enumerate() {
        s.push(&format!(") step{i}"));
        match step {
            Step::Filter(condition) => {
                s.push(" WHERE ");
                push_expr(s, entity, condition);
            }
            Step::Order(keys) => order = keys.clone(),
            Step::Top(count) => {
                push_order(s, entity, &total(&order));
                s.push(" LIMIT ").bind(Value::Integer(i64::try_from(*count).unwrap_or(i64::MAX)));
            }
            Step::Skip(count) => {
                push_order(s, entity, &total(&order));
                // SQLite has no OFFSET without LIMIT; -1 is no limit there, NULL is none on PostgreSQL.
                s.push(if s.dialect() == Dialect::Sqlite { " LIMIT -1" } else { " LIMIT NULL" });
                s.push(" OFFSET ").bind(Value::Integer(i64::try_from(*count).unwrap_or(i64::MAX)));
            }
            Step::TopCount { count, operand, bottom } => {
                // Rows without a value rank last either way.
                let column = output_name(entity, *operand);
                s.push(&format!(" ORDER BY {column} IS NULL, {column}{}", if *bottom { " ASC" } else { " DESC" }));
                for key in total(&[]) {
                    s.push(", ").push(&output_name(entity, key.operand)).push(if key.descending {
                        " DESC"
                    } else {
                        " ASC"
                    });
                }
                s.push(" LIMIT ").bind(Value::Integer(i64::try_from(*count).unwrap_or(i64::MAX)));
                order = vec![OrderKey { operand: *operand, descending: !bottom }];
            }
            Step::Compute(_) => {}
            Step::TopSum { threshold, operand, percent, .. } => {
                // Rows without a value are left out; a row is kept while the rows before it
                // have not reached the threshold.
                let column = output_name(entity, *operand);
                s.push(&format!(" WHERE {column} IS NOT NULL) ranked{i} WHERE COALESCE(before{i}, 0) < "));
                bind_typed(s, Value::Number(*threshold));
                if *percent {
                    s.push(&format!(" / 100 * all{i}"));
                }
            }
        }
    }
}

/// The query of the set's rows only: its filters and the properties computed on them, without
/// the aggregation and what follows it (whose computed properties come last, and are dropped).
fn on_rows(query: &Query) -> Query {
    Query {
        computed: query.computed_on_rows().to_vec(),
        aggregation: None,
        branches: Vec::new(),
        row_steps: Vec::new(),
        steps: Vec::new(),
        output_filter: None,
        ..query.clone()
    }
}

/// The rows of `concat(…)`: each sequence's rows (its own grouping and steps, on the rows the
/// filters before `concat` leave) with the columns of the whole, null where the sequence has
/// none, and the sequence's position as `concat_branch`.
fn push_concatenated(s: &mut Statement, entity: &EntityType, query: &Query, projects: &[ObjectId]) {
    let Some(whole) = &query.aggregation else { return };
    let group_columns = group_columns(entity, &whole.group_by);
    for (i, branch) in query.branches.iter().enumerate() {
        if i > 0 {
            s.push(" UNION ALL ");
        }
        s.push("SELECT ");
        for column in &group_columns {
            let present = branch.aggregation.group_by.iter().any(|g| output_name(entity, *g) == *column);
            s.push(if present { column } else { "NULL" }).push(" AS ").push(column).push(", ");
        }
        for a in 0..whole.aggregates.len() {
            match branch.aggregates.iter().position(|&b| b == a) {
                Some(own) => s.push(&format!("a{own} AS a{a}, ")),
                None => s.push(&format!("NULL AS a{a}, ")),
            };
        }
        bind_typed(s, Value::Integer(i as i64));
        s.push(" AS concat_branch FROM (");
        // The sequence's filters apply after the steps before concat, when there are any.
        let (filter, row_steps) = if query.row_steps.is_empty() {
            (conjoin(query.filter.iter().chain(&branch.filter).cloned().collect()), Vec::new())
        } else {
            let filtered = branch.filter.iter().cloned().map(Step::Filter);
            (query.filter.clone(), query.row_steps.iter().cloned().chain(filtered).collect())
        };
        let sequence = Query {
            filter,
            aggregation: Some(branch.aggregation.clone()),
            row_steps,
            steps: branch.steps.clone(),
            ..on_rows(query)
        };
        push_pipeline(s, entity, &sequence, projects);
        s.push(&format!(") sequence{i}"));
    }
}

/// ` FROM` the entity's table or, with computed properties, subqueries that add them as `c0`,
/// `c1`… to its columns (only the caller's projects' rows), so that the filter, the grouping,
/// the order and the skip token name them like any column. Each property is added by its own
/// subquery around the one before, so that it may use those computed before it (`$compute` may
/// use what `compute(…)` of `$apply` computed).
fn push_source(s: &mut Statement, entity: &EntityType, query: &Query, projects: &[ObjectId]) {
    s.push(" FROM ");
    let on_rows = query.computed_on_rows();
    for (i, computed) in on_rows.iter().enumerate().rev() {
        s.push("(SELECT *, ");
        // PostgreSQL's functions count in `int4`; the column is read as the type says.
        let cast = match (s.dialect(), computed.ty) {
            (Dialect::Postgres, FieldType::Integer { .. }) => Some(" AS int8)"),
            (Dialect::Postgres, FieldType::Number { .. }) => Some(" AS float8)"),
            _ => None,
        };
        s.push(if cast.is_some() { "CAST(" } else { "" });
        push_expr(s, entity, &computed.expr);
        s.push(cast.unwrap_or_default()).push(&format!(" AS c{i} FROM "));
    }
    s.push(entity.table);
    if on_rows.is_empty() {
        return;
    }
    s.push(" WHERE ");
    push_projects(s, entity, projects);
    for _ in on_rows {
        s.push(") ").push(entity.table);
    }
}

/// The aggregated rows: grouping properties by their column names, aggregates as `a0`, `a1`…
/// The parser guarantees at least one of either.
fn push_grouped(s: &mut Statement, entity: &EntityType, query: &Query, projects: &[ObjectId]) {
    let Some(aggregation) = &query.aggregation else { return };
    s.push("SELECT ");
    let mut first = true;
    let mut comma = |s: &mut Statement| {
        if !first {
            s.push(", ");
        }
        first = false;
    };
    let group_columns = group_columns(entity, &aggregation.group_by);
    for column in &group_columns {
        comma(s);
        s.push(column);
    }
    for (i, aggregate) in aggregation.aggregates.iter().enumerate() {
        comma(s);
        let column = aggregate.operand.map(|operand| output_name(entity, operand)).unwrap_or_default();
        let double = match s.dialect() {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "float8",
        };
        let sql = match aggregate.method {
            Method::Count => "COUNT(*)".to_owned(),
            Method::CountDistinct => format!("COUNT(DISTINCT {column})"),
            Method::Sum => format!("SUM(CAST({column} AS {double}))"),
            Method::Average => format!("AVG(CAST({column} AS {double}))"),
            Method::Min => format!("MIN({column})"),
            Method::Max => format!("MAX({column})"),
        };
        s.push(&sql).push(&format!(" AS a{i}"));
    }
    if query.row_steps.is_empty() {
        push_source(s, entity, query, projects);
        s.push(" WHERE ");
        push_row_conditions(s, entity, query, projects);
    } else {
        // The rows the steps before the grouping keep (filtered there).
        let rows = Query { steps: query.row_steps.clone(), ..on_rows(query) };
        s.push(" FROM (");
        push_pipeline(s, entity, &rows, projects);
        s.push(") ").push(entity.table).push(" WHERE ");
        push_projects(s, entity, projects);
    }
    if !group_columns.is_empty() {
        s.push(" GROUP BY ").push(&group_columns.join(", "));
    }
}

/// The columns of the grouping properties. Two properties may share a column (`userId` and
/// `contactId` of a session): each column is named once, or the outer select could not name it
/// (PostgreSQL finds it ambiguous).
fn group_columns(entity: &EntityType, group_by: &[Operand]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for &operand in group_by {
        let column = output_name(entity, operand);
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    columns
}

/// `project_id IN (…)`; nothing matches when there are no projects.
fn push_projects(s: &mut Statement, entity: &EntityType, projects: &[ObjectId]) {
    s.push(entity.project_column).push(" IN (");
    for (i, project) in projects.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        bind_typed(s, Value::Text(project.to_string()));
    }
    if projects.is_empty() {
        s.push("NULL");
    }
    s.push(")");
}

/// How an operand is named in a select list and an `ORDER BY`: its column, or `aN`.
fn output_name(entity: &EntityType, operand: Operand) -> String {
    match operand {
        Operand::Property(p) => entity.properties[p].column.to_owned(),
        Operand::Aggregate(a) => format!("a{a}"),
        Operand::Computed(c) => format!("c{c}"),
        Operand::Branch => "concat_branch".to_owned(),
    }
}

fn is_nullable(entity: &EntityType, operand: Operand) -> bool {
    match operand {
        Operand::Property(p) => entity.properties[p].nullable,
        Operand::Aggregate(_) | Operand::Computed(_) => true,
        Operand::Branch => false,
    }
}

/// A parameter with its type named, so that PostgreSQL never has to guess it (a parameter
/// compared with another parameter, or passed to `lower`, has no type to infer).
fn bind_typed(s: &mut Statement, value: Value) {
    if s.dialect() == Dialect::Sqlite {
        s.bind(value);
        return;
    }
    let ty = match &value {
        Value::Text(_) => "text",
        Value::Integer(_) => "int8",
        Value::Number(_) => "float8",
        Value::Bool(_) => "bool",
        Value::Time(_) => "timestamptz",
        Value::Null | Value::Json(_) | Value::TextList(_) | Value::Bytes(_) => "text",
    };
    s.push("CAST(").bind(value).push(" AS ").push(ty).push(")");
    if ty == "text" {
        s.push(" COLLATE \"C\"");
    }
}

/// An operand as a value in an expression: JSON values compare as their text.
fn push_operand(s: &mut Statement, entity: &EntityType, operand: Operand) {
    let sql = operand_sql(s.dialect(), entity, operand);
    s.push(&sql);
}

/// The SQL of an operand, as [`push_operand`] writes it.
fn operand_sql(dialect: Dialect, entity: &EntityType, operand: Operand) -> Cow<'static, str> {
    match operand {
        Operand::Property(p) => {
            let property = &entity.properties[p];
            match (property.ty, dialect) {
                (FieldType::Json { .. }, Dialect::Postgres) => {
                    Cow::Owned(format!("(CAST({} AS text) COLLATE \"C\")", property.column))
                }
                _ => Cow::Borrowed(property.column),
            }
        }
        Operand::Aggregate(a) => Cow::Owned(format!("a{a}")),
        Operand::Computed(c) => Cow::Owned(format!("c{c}")),
        Operand::Branch => Cow::Borrowed("concat_branch"),
    }
}

fn push_expr(s: &mut Statement, entity: &EntityType, expr: &Expr) {
    match expr {
        Expr::Literal(Value::Null) => {
            s.push("NULL");
        }
        Expr::Literal(value) => bind_typed(s, value.clone()),
        Expr::Column(operand) => push_operand(s, entity, *operand),
        Expr::Not(inner) => {
            s.push("NOT COALESCE(");
            push_expr(s, entity, inner);
            s.push(", FALSE)");
        }
        Expr::And(items) => push_balanced(s, entity, items, " AND "),
        Expr::Or(items) => push_balanced(s, entity, items, " OR "),
        Expr::Compare(op, left, right) => push_compare(s, entity, *op, left, right),
        Expr::In(operand, values) => {
            let listed: Vec<&Value> = values.iter().filter(|v| **v != Value::Null).collect();
            let with_null = listed.len() < values.len();
            s.push("(");
            if !listed.is_empty() {
                push_expr(s, entity, operand);
                s.push(" IN (");
                for (i, value) in listed.into_iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    bind_typed(s, value.clone());
                }
                s.push(")");
                if with_null {
                    s.push(" OR ");
                }
            }
            if with_null {
                push_expr(s, entity, operand);
                s.push(" IS NULL");
            }
            s.push(")");
        }
        Expr::Call(function, args) => push_call(s, entity, *function, args),
        Expr::Arith(op, kind, left, right) => push_arith(s, entity, *op, *kind, left, right),
        Expr::Any(list, None) => {
            s.push("(COALESCE(json_array_length(");
            push_array(s, entity, *list);
            s.push("), 0) > 0)");
        }
        Expr::Any(list, Some(lambda)) => push_lambda(s, entity, *list, lambda, false),
        Expr::All(list, lambda) => push_lambda(s, entity, *list, lambda, true),
        Expr::Element(depth) => {
            let collated = if s.dialect() == Dialect::Sqlite { "" } else { " COLLATE \"C\"" };
            s.push(&format!("(element{depth}{collated})"));
        }
        Expr::Count(list) => {
            s.push("COALESCE(json_array_length(");
            push_array(s, entity, *list);
            s.push("), 0)");
        }
        Expr::Cast(value, from, target) => push_cast(s, entity, value, *from, *target),
        Expr::Case(arms) => {
            s.push("(CASE");
            for (condition, value) in arms {
                s.push(" WHEN ");
                push_expr(s, entity, condition);
                s.push(" THEN ");
                push_expr(s, entity, value);
            }
            s.push(" END)");
        }
    }
}

/// `cast(value, type)` by the rules of [`parley_odata::cast`]: SQLite computes it with
/// `odata_cast` (registered on every connection that reads), which applies those rules itself;
/// PostgreSQL's SQL spells them with the same patterns and bounds. Each guard is its own `CASE`,
/// because PostgreSQL may evaluate the parts of an `AND` in any order.
fn push_cast(s: &mut Statement, entity: &EntityType, value: &Expr, from: ValueKind, target: Target) {
    let arg = |s: &mut Statement| push_expr(s, entity, value);
    if s.dialect() == Dialect::Sqlite {
        s.push("odata_cast(");
        arg(s);
        s.push(&format!(", '{}', '{}')", from.word(), target.name));
        return;
    }
    let float = |f: f64| format!("CAST('{f:e}' AS float8)");
    match (from, target.kind) {
        (ValueKind::Integer | ValueKind::Number, ValueKind::Text) => {
            s.push("CAST(");
            arg(s);
            s.push(" AS text)");
        }
        (ValueKind::Boolean, ValueKind::Text) => {
            s.push("(CASE WHEN ");
            arg(s);
            s.push(" THEN 'true' WHEN NOT ");
            arg(s);
            s.push(" THEN 'false' END)");
        }
        (ValueKind::DateTime, ValueKind::Text) => {
            s.push("to_char((");
            arg(s);
            s.push(") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')");
        }
        (ValueKind::Integer, ValueKind::Integer) => {
            let (least, most) = target.range.unwrap_or((i64::MIN, i64::MAX));
            s.push("(CASE WHEN ");
            arg(s);
            s.push(&format!(" BETWEEN {least} AND {most} THEN "));
            arg(s);
            s.push(" END)");
        }
        (ValueKind::Number, ValueKind::Integer) => {
            let (least, below) = cast::integer_bounds(target).unwrap_or((i64::MIN as f64, i64::MAX as f64 + 1.0));
            s.push("(CASE WHEN trunc(");
            arg(s);
            s.push(&format!(") >= {} THEN CASE WHEN trunc(", float(least)));
            arg(s);
            s.push(&format!(") < {} THEN CAST(trunc(", float(below)));
            arg(s);
            s.push(") AS int8) END END)");
        }
        (ValueKind::Text, ValueKind::Integer) => {
            let (least, most) = target.range.unwrap_or((i64::MIN, i64::MAX));
            s.push("(CASE WHEN ");
            arg(s);
            s.push(&format!(" ~ '{}' THEN CASE WHEN CAST(", cast::INTEGER_PATTERN));
            arg(s);
            s.push(&format!(" AS numeric) BETWEEN {least} AND {most} THEN CAST("));
            arg(s);
            s.push(" AS int8) END END)");
        }
        (ValueKind::Integer, ValueKind::Number) => {
            s.push("CAST(");
            arg(s);
            s.push(" AS float8)");
        }
        (ValueKind::Text, ValueKind::Number) => {
            let (least, most) = cast::NUMBER_BOUNDS;
            s.push("(CASE WHEN ");
            arg(s);
            s.push(&format!(" ~ '{}' THEN CASE WHEN abs(CAST(", cast::NUMBER_PATTERN));
            arg(s);
            s.push(" AS numeric)) = 0 OR abs(CAST(");
            arg(s);
            s.push(&format!(" AS numeric)) BETWEEN {least:e} AND {most:e} THEN CAST(CAST("));
            arg(s);
            s.push(" AS numeric) AS float8) END END)");
        }
        (ValueKind::Text, ValueKind::Boolean) => {
            s.push("(CASE lower(");
            arg(s);
            s.push(") WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END)");
        }
        // The parser leaves out the casts that change nothing and refuses the others.
        _ => arg(s),
    }
}

/// A collection property as a JSON array, or null. PostgreSQL's array functions fail on a JSON
/// value that is not an array, so anything else counts as absent there (SQLite's count none).
fn push_array(s: &mut Statement, entity: &EntityType, list: Operand) {
    if s.dialect() == Dialect::Sqlite {
        push_operand(s, entity, list);
    } else {
        s.push("(CASE WHEN json_typeof(");
        push_operand(s, entity, list);
        s.push(") = 'array' THEN ");
        push_operand(s, entity, list);
        s.push(" END)");
    }
}

/// `any` (some element fulfils the condition) or `all` (none fails it) over a collection
/// property, which both engines keep as a JSON array: a subquery over its elements, whose only
/// column is `element{depth}`, so that the condition's other names still find the row's columns
/// (and those of the lambdas around it), never a column of the engine's JSON function.
fn push_lambda(s: &mut Statement, entity: &EntityType, list: Operand, lambda: &Lambda, all: bool) {
    let depth = lambda.depth;
    s.push(if all { "(NOT EXISTS (SELECT 1 FROM " } else { "(EXISTS (SELECT 1 FROM " });
    if s.dialect() == Dialect::Sqlite {
        s.push(&format!("(SELECT value AS element{depth} FROM json_each("));
        push_array(s, entity, list);
        s.push(&format!(")) AS lambda{depth}"));
    } else {
        s.push("json_array_elements_text(");
        push_array(s, entity, list);
        s.push(&format!(") AS lambda{depth}(element{depth})"));
    }
    s.push(" WHERE ");
    if all {
        s.push("NOT COALESCE(");
        push_expr(s, entity, &lambda.condition);
        s.push(", FALSE)");
    } else {
        push_expr(s, entity, &lambda.condition);
    }
    s.push("))");
}

/// Arithmetic. SQLite computes it with `odata_arith` (registered on every connection that reads),
/// which fails the statement on an overflow or a division by zero as PostgreSQL does by itself;
/// date-times and durations are milliseconds there. PostgreSQL computes whole numbers in `int8`,
/// numbers in `float8`, and shifts date-times by intervals.
fn push_arith(s: &mut Statement, entity: &EntityType, op: ArithOp, kind: Arith, left: &Expr, right: &Expr) {
    if s.dialect() == Dialect::Sqlite {
        s.push("odata_arith('").push(op.word()).push("', ");
        push_expr(s, entity, left);
        s.push(", ");
        push_expr(s, entity, right);
        s.push(")");
        return;
    }
    let symbol = match op {
        ArithOp::Add => " + ",
        ArithOp::Sub => " - ",
        ArithOp::Mul => " * ",
        ArithOp::Div | ArithOp::DivBy => " / ",
        ArithOp::Mod => " % ",
    };
    match kind {
        Arith::Number if op == ArithOp::Mod => {
            s.push("CAST(mod(CAST(");
            push_expr(s, entity, left);
            s.push(" AS numeric), CAST(");
            push_expr(s, entity, right);
            s.push(" AS numeric)) AS float8)");
        }
        Arith::Integer | Arith::Number => {
            let ty = if kind == Arith::Integer { " AS int8)" } else { " AS float8)" };
            s.push("(CAST(");
            push_expr(s, entity, left);
            s.push(ty).push(symbol).push("CAST(");
            push_expr(s, entity, right);
            s.push(ty).push(")");
        }
        Arith::Shift => {
            s.push("(");
            push_expr(s, entity, left);
            s.push(symbol).push("CAST(");
            push_expr(s, entity, right);
            s.push(" AS float8) * INTERVAL '1 millisecond')");
        }
        Arith::Between => {
            s.push("CAST(ROUND(EXTRACT(EPOCH FROM (");
            push_expr(s, entity, left);
            s.push(" - ");
            push_expr(s, entity, right);
            s.push(")) * 1000) AS int8)");
        }
    }
}

/// A whole number held between 0 and the largest position either engine takes.
fn push_position(s: &mut Statement, entity: &EntityType, expr: &Expr) {
    let cast = s.dialect() == Dialect::Postgres;
    s.push(if cast { "CAST(" } else { "" }).push("(CASE WHEN ");
    push_expr(s, entity, expr);
    s.push(" < 0 THEN 0 WHEN ");
    push_expr(s, entity, expr);
    s.push(" > 2147483646 THEN 2147483646 ELSE ");
    push_expr(s, entity, expr);
    s.push(" END)").push(if cast { " AS int4)" } else { "" });
}

/// A conjunction or disjunction as a balanced tree, so that a long list stays shallow (SQLite
/// limits the depth of an expression).
fn push_balanced(s: &mut Statement, entity: &EntityType, items: &[Expr], operator: &str) {
    match items {
        [] => {
            s.push(if operator == " AND " { "1 = 1" } else { "1 = 0" });
        }
        [only] => push_expr(s, entity, only),
        _ => {
            let (left, right) = items.split_at(items.len() / 2);
            s.push("(");
            push_balanced(s, entity, left, operator);
            s.push(operator);
            push_balanced(s, entity, right, operator);
            s.push(")");
        }
    }
}

fn push_compare(s: &mut Statement, entity: &EntityType, op: CompareOp, left: &Expr, right: &Expr) {
    let is_null = |e: &Expr| matches!(e, Expr::Literal(Value::Null));
    let is_literal = |e: &Expr| matches!(e, Expr::Literal(_));
    s.push("(");
    if is_null(left) || is_null(right) {
        let other = if is_null(left) { right } else { left };
        push_expr(s, entity, other);
        s.push(if op == CompareOp::Eq { " IS NULL" } else { " IS NOT NULL" });
    } else {
        push_expr(s, entity, left);
        s.push(match op {
            // Two values that may both be null are equal when both are, as OData has it.
            CompareOp::Eq if !is_literal(left) && !is_literal(right) => " IS NOT DISTINCT FROM ",
            CompareOp::Eq => " = ",
            CompareOp::Ne => " IS DISTINCT FROM ",
            CompareOp::Gt => " > ",
            CompareOp::Ge => " >= ",
            CompareOp::Lt => " < ",
            CompareOp::Le => " <= ",
        });
        push_expr(s, entity, right);
    }
    s.push(")");
}

fn push_call(s: &mut Statement, entity: &EntityType, function: Function, args: &[Expr]) {
    let arg = |s: &mut Statement, i: usize| push_expr(s, entity, &args[i]);
    let sqlite = s.dialect() == Dialect::Sqlite;
    match function {
        Function::Contains => {
            s.push(if sqlite { "(instr(" } else { "(strpos(" });
            arg(s, 0);
            s.push(", ");
            arg(s, 1);
            s.push(") > 0)");
        }
        Function::StartsWith => {
            s.push("(substr(");
            arg(s, 0);
            s.push(", 1, length(");
            arg(s, 1);
            s.push(")) = ");
            arg(s, 1);
            s.push(")");
        }
        Function::EndsWith => {
            s.push("(length(");
            arg(s, 0);
            s.push(") >= length(");
            arg(s, 1);
            s.push(") AND substr(");
            arg(s, 0);
            s.push(", length(");
            arg(s, 0);
            s.push(") - length(");
            arg(s, 1);
            s.push(") + 1) = ");
            arg(s, 1);
            s.push(")");
        }
        Function::MatchesPattern => {
            // SQLite's REGEXP calls the `regexp` function registered on every reading connection.
            s.push("(");
            arg(s, 0);
            s.push(if sqlite { " REGEXP " } else { " ~ " });
            arg(s, 1);
            s.push(")");
        }
        Function::ToLower | Function::ToUpper | Function::Trim | Function::Length => {
            s.push(match function {
                Function::ToLower => "lower(",
                Function::ToUpper => "upper(",
                Function::Trim if sqlite => "trim(",
                Function::Trim => "btrim(",
                _ if sqlite => "length(",
                _ => "char_length(",
            });
            arg(s, 0);
            s.push(")");
        }
        Function::IndexOf => {
            s.push(if sqlite { "(instr(" } else { "(strpos(" });
            arg(s, 0);
            s.push(", ");
            arg(s, 1);
            s.push(") - 1)");
        }
        Function::Substring => {
            s.push("substr(");
            arg(s, 0);
            s.push(", ");
            push_position(s, entity, &args[1]);
            s.push(" + 1");
            if let Some(length) = args.get(2) {
                s.push(", ");
                push_position(s, entity, length);
            }
            s.push(")");
        }
        Function::Concat => {
            s.push("(");
            arg(s, 0);
            s.push(" || ");
            arg(s, 1);
            s.push(")");
        }
        Function::Year | Function::Month | Function::Day | Function::Hour | Function::Minute | Function::Second => {
            let (format, field) = match function {
                Function::Year => ("%Y", "YEAR"),
                Function::Month => ("%m", "MONTH"),
                Function::Day => ("%d", "DAY"),
                Function::Hour => ("%H", "HOUR"),
                Function::Minute => ("%M", "MINUTE"),
                _ => ("%S", "SECOND"),
            };
            if sqlite {
                // Times are epoch milliseconds in SQLite.
                s.push(&format!("CAST(strftime('{format}', "));
                arg(s, 0);
                s.push(" / 1000.0, 'unixepoch') AS INTEGER)");
            } else {
                s.push(&format!("CAST(FLOOR(EXTRACT({field} FROM ("));
                arg(s, 0);
                s.push(") AT TIME ZONE 'UTC')) AS int8)");
            }
        }
        Function::FractionalSeconds => {
            if sqlite {
                s.push("((");
                arg(s, 0);
                s.push(" % 1000 + 1000) % 1000 / 1000.0)");
            } else {
                s.push("(CAST(MOD(EXTRACT(MILLISECONDS FROM (");
                arg(s, 0);
                s.push(") AT TIME ZONE 'UTC'), 1000) AS float8) / 1000)");
            }
        }
        Function::TotalOffsetMinutes => {
            s.push("(CASE WHEN ");
            arg(s, 0);
            s.push(" IS NULL THEN NULL ELSE 0 END)");
        }
        Function::Time => {
            if sqlite {
                s.push("((");
                arg(s, 0);
                s.push(" % 86400000 + 86400000) % 86400000)");
            } else {
                s.push("CAST(ROUND(EXTRACT(EPOCH FROM CAST((");
                arg(s, 0);
                s.push(") AT TIME ZONE 'UTC' AS time)) * 1000) AS int8)");
            }
        }
        Function::Date => {
            if sqlite {
                s.push("(");
                arg(s, 0);
                s.push(" - (");
                arg(s, 0);
                s.push(" % 86400000 + 86400000) % 86400000)");
            } else {
                s.push("(date_trunc('day', (");
                arg(s, 0);
                s.push(") AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')");
            }
        }
        Function::TotalSeconds => {
            s.push(if sqlite { "(" } else { "(CAST(" });
            arg(s, 0);
            s.push(if sqlite { " / 1000.0)" } else { " AS float8) / 1000)" });
        }
        Function::Round => {
            // Half away from zero on both engines (PostgreSQL rounds a float8 half to even).
            s.push(if sqlite { "round(" } else { "CAST(round(CAST(" });
            arg(s, 0);
            s.push(if sqlite { ")" } else { " AS numeric)) AS float8)" });
        }
        Function::Floor | Function::Ceiling => {
            s.push(match (function, sqlite) {
                (Function::Floor, true) => "odata_floor(",
                (Function::Floor, false) => "floor(",
                (_, true) => "odata_ceiling(",
                (_, false) => "ceil(",
            });
            arg(s, 0);
            s.push(")");
        }
    }
}

/// The rows after a skip token: after `after` in the order `keys`, where null is the lowest
/// value.
fn push_seek(s: &mut Statement, entity: &EntityType, keys: &[OrderKey], after: &[Value]) {
    let keys: Vec<SeekKey> = keys
        .iter()
        .map(|key| SeekKey {
            expr: operand_sql(s.dialect(), entity, key.operand),
            descending: key.descending,
            nullable: is_nullable(entity, key.operand),
        })
        .collect();
    seek::push_seek(s, &keys, after, bind_typed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_odata::{IdName, parse_query};

    fn compile(dialect: Dialect, query: &str) -> Statement {
        let entity = EntityType::analytics(IdName::Id);
        let pairs: Vec<(String, String)> = query
            .split('&')
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect();
        let query = parse_query(&entity, &pairs).unwrap();
        let columns = query.select.clone();
        let project = ObjectId::parse("5f0c6bc4ad4f8b0011b2e0e1").unwrap();
        select(
            dialect,
            &ODataRead { entity: &entity, query: &query, projects: &[project], columns: &columns, limit: 10 },
        )
    }

    #[test]
    fn every_statement_names_the_projects() {
        let s = compile(Dialect::Sqlite, "$select=intent&$filter=intent eq 'x' or channel ne 'web'");
        assert_eq!(
            s.text,
            "SELECT intent FROM records WHERE project_id IN (?1) AND ((intent = ?2) OR (channel IS DISTINCT FROM ?3)) \
             ORDER BY id ASC LIMIT ?4"
        );
        let s = compile(Dialect::Postgres, "$apply=groupby((intent),aggregate($count as n))&$filter=n gt 1");
        assert_eq!(
            s.text,
            "SELECT intent, a0 FROM (SELECT intent, COUNT(*) AS a0 FROM records WHERE project_id IN \
             (CAST($1 AS text) COLLATE \"C\") GROUP BY intent) piped WHERE (a0 > CAST($2 AS int8)) \
             ORDER BY intent ASC NULLS FIRST LIMIT $3"
        );
    }

    #[test]
    fn arithmetic_fails_alike_on_both_engines() {
        let query =
            "$select=intent&$filter=handoverEscalations div 2 gt 1 and timestamp add duration'PT1H' lt 2024-05-01";
        let s = compile(Dialect::Sqlite, query);
        assert!(s.text.contains("odata_arith('div', handover_escalations, ?2)"), "{}", s.text);
        assert!(s.text.contains("odata_arith('add', timestamp, ?4)"), "{}", s.text);
        let s = compile(Dialect::Postgres, query);
        assert!(s.text.contains("(CAST(handover_escalations AS int8) / CAST(CAST($2 AS int8) AS int8))"), "{}", s.text);
        assert!(
            s.text.contains("(timestamp + CAST(CAST($4 AS int8) AS float8) * INTERVAL '1 millisecond')"),
            "{}",
            s.text
        );
    }

    #[test]
    fn properties_sharing_a_column_are_grouped_by_it_once() {
        let entity = EntityType::sessions(IdName::Id);
        let pairs = vec![("$apply".to_owned(), "groupby((userId,contactId),aggregate($count as n))".to_owned())];
        let query = parse_query(&entity, &pairs).unwrap();
        let columns = query.select.clone();
        let read = ODataRead { entity: &entity, query: &query, projects: &[], columns: &columns, limit: 5 };
        assert_eq!(
            select(Dialect::Sqlite, &read).text,
            "SELECT contact_id, contact_id, a0 FROM (SELECT contact_id, COUNT(*) AS a0 FROM sessions WHERE \
             project_id IN (NULL) GROUP BY contact_id) piped ORDER BY contact_id ASC, contact_id ASC LIMIT ?1"
        );
    }

    #[test]
    fn continuations_seek_by_row_value_when_they_can() {
        let entity = EntityType::analytics(IdName::Id);
        let pairs = vec![("$orderby".to_owned(), "timestamp".to_owned())];
        let mut query = parse_query(&entity, &pairs).unwrap();
        query.after = Some(vec![Value::Integer(1), Value::Text("a".into())]);
        let columns = [Operand::Property(0)];
        let read = ODataRead { entity: &entity, query: &query, projects: &[], columns: &columns, limit: 5 };
        let s = select(Dialect::Sqlite, &read);
        assert!(s.text.contains("WHERE project_id IN (NULL) AND (timestamp, id) > (?1, ?2)"), "{}", s.text);
        query.order[0].descending = true;
        let read = ODataRead { entity: &entity, query: &query, projects: &[], columns: &columns, limit: 5 };
        let s = select(Dialect::Sqlite, &read);
        assert!(s.text.contains("((timestamp < ?1) OR (timestamp = ?2 AND id > ?3))"), "{}", s.text);
        query.order[1] = OrderKey { operand: Operand::Property(18), descending: true };
        query.after = Some(vec![Value::Integer(1), Value::Text("a".into())]);
        let read = ODataRead { entity: &entity, query: &query, projects: &[], columns: &columns, limit: 5 };
        let s = select(Dialect::Sqlite, &read);
        assert!(
            s.text.contains("((timestamp < ?1) OR (timestamp = ?2 AND (intent < ?3 OR intent IS NULL)))"),
            "{}",
            s.text
        );
    }

    #[test]
    fn long_disjunctions_stay_shallow() {
        let filter: Vec<String> = (0..64).map(|i| format!("execution eq {i}")).collect();
        let s = compile(Dialect::Sqlite, &format!("$filter={}", filter.join(" or ")));
        let mut depth: i32 = 0;
        let mut deepest = 0;
        for c in s.text.chars() {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            deepest = deepest.max(depth);
        }
        assert!(deepest <= 9, "{deepest}: {}", s.text);
    }
}
