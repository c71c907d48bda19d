//! The Insights reports (docs/contract/insights.md), read from the rows as they are: every
//! acknowledged write is in the next report. Each report is one or a few grouped statements per
//! project and bucket; buckets are found by `width_bucket` over the bucket bounds (PostgreSQL's
//! own, and the same function registered on SQLite's readers), so that every time zone and grain
//! is the same statement. Projects are combined here, unless the request compares them.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parley_core::insights::{self, Filter, FilterField, Item, Report, ReportQuery, Tally, number, rate, weekday_hours};
use parley_core::value::format_time;
use parley_core::{ObjectId, RatingScale, Value};
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::{Columns, text};
use crate::error::StoreResult;
use crate::exec::{Engine, Executor, Kind, job};
use crate::sql::{Dialect, Statement};
use crate::traits::InsightStore;

/// A table the reports read: the alias its statements use, the time that places a row in a
/// bucket, and whether `flowName` reaches it through its session's records (a table without the
/// column).
#[derive(Clone, Copy)]
struct Source {
    table: &'static str,
    alias: &'static str,
    time: &'static str,
    flow_of_session: bool,
}

const RECORDS: Source = Source { table: "records", alias: "r", time: "timestamp", flow_of_session: false };
const MESSAGES: Source = Source { table: "messages", alias: "m", time: "timestamp", flow_of_session: false };
const SESSIONS: Source = Source { table: "sessions", alias: "s", time: "started_at", flow_of_session: true };
const ESCALATIONS: Source = Source { table: "escalations", alias: "e", time: "timestamp", flow_of_session: true };
const GOAL_EVENTS: Source = Source { table: "goal_events", alias: "g", time: "timestamp", flow_of_session: true };

/// What a report's rows are grouped by, besides the project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Bucket(usize),
    Category(Option<String>),
}

/// Numbers per project and key, before the projects are combined.
type Cells = BTreeMap<(ObjectId, Key), Vec<Tally>>;

/// The cells of one series: a project under `compare=project`, else all together (`None`).
type Series = (Option<ObjectId>, BTreeMap<Key, Vec<Tally>>);

/// A measure of a bucket: its name, and how it is read from the bucket's tallies.
type Measure<'a> = (&'a str, &'a dyn Fn(&[Tally]) -> Json);

/// A goal cycle as read: completed, partial, the steps it reached, and its first event.
#[derive(Default)]
struct Cycle {
    completed: bool,
    partial: bool,
    steps: Vec<String>,
    first: Option<OffsetDateTime>,
}

/// A statement over one source, built in the open: `SELECT … FROM table alias WHERE` the
/// request's projects, range and filters.
struct Select<'q> {
    s: Statement,
    q: &'q ReportQuery,
    src: Source,
}

impl<'q> Select<'q> {
    fn new(dialect: Dialect, q: &'q ReportQuery, src: Source, columns: &str) -> Self {
        let mut s = Statement::new(dialect);
        s.push("SELECT ").push(&columns.replace("{a}", src.alias));
        Select { s, q, src }
    }

    /// `width_bucket` of the row's time over `bounds`: 1 for the first bucket.
    fn bucket(&mut self, bounds: &[OffsetDateTime]) -> &mut Self {
        let a = self.src.alias;
        // PostgreSQL answers an `integer`; every count is read as a `bigint`.
        self.s.push("CAST(width_bucket(").push(&format!("{a}.{}, ", self.src.time));
        match self.s.dialect() {
            Dialect::Sqlite => {
                let millis: Vec<i64> = bounds.iter().map(|b| (b.unix_timestamp_nanos() / 1_000_000) as i64).collect();
                self.s.bind(Value::Text(serde_json::to_string(&millis).unwrap_or_default()));
            }
            Dialect::Postgres => {
                let list: Vec<String> = bounds.iter().map(|b| format_time(*b)).collect();
                self.s
                    .push("CAST(CAST(")
                    .bind(Value::Text(format!("{{{}}}", list.join(","))))
                    .push(" AS text) AS timestamptz[])");
            }
        }
        self.s.push(") AS BIGINT)");
        self
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.s.push(&text.replace("{a}", self.src.alias));
        self
    }

    /// ` FROM table alias WHERE` the projects, `[from, to)` when `ranged`, and the filters.
    fn scope(&mut self, ranged: bool) -> &mut Self {
        self.s.push(&format!(" FROM {} {}", self.src.table, self.src.alias));
        self.where_scope(ranged)
    }

    /// `project_id IN (…)` of the request's projects, for `column`.
    fn projects(&mut self, column: &str) -> &mut Self {
        self.s.push(column).push(" IN (");
        for (i, project) in self.q.projects.iter().enumerate() {
            if i > 0 {
                self.s.push(", ");
            }
            self.s.bind(text(project));
        }
        self.s.push(")");
        self
    }

    /// ` WHERE` the projects, `[from, to)` when `ranged`, and the filters, after a `FROM` written
    /// by the caller.
    fn where_scope(&mut self, ranged: bool) -> &mut Self {
        let (a, q) = (self.src.alias, self.q);
        self.s.push(" WHERE ");
        self.projects(&format!("{a}.project_id"));
        if ranged {
            self.s.push(&format!(" AND {a}.{} >= ", self.src.time)).bind(Value::Time(q.from));
            self.s.push(&format!(" AND {a}.{} < ", self.src.time)).bind(Value::Time(q.to));
        }
        self.filters()
    }

    fn filters(&mut self) -> &mut Self {
        let a = self.src.alias;
        for filter in &self.q.filters {
            if filter.field == FilterField::FlowName && self.src.flow_of_session {
                // Through the session's records: a session is matched by a flow any of its
                // records ran.
                let exists = format!(
                    "EXISTS (SELECT 1 FROM records f WHERE f.project_id = {a}.project_id \
                     AND f.session_id = {a}.session_id AND f.flow_name"
                );
                if !filter.include.is_empty() {
                    self.s.push(" AND ").push(&exists);
                    self.list(&filter.include);
                    self.s.push(")");
                }
                if !filter.exclude.is_empty() {
                    self.s.push(" AND NOT ").push(&exists);
                    self.list(&filter.exclude);
                    self.s.push(")");
                }
            } else {
                self.filter(filter);
            }
        }
        self
    }

    fn filter(&mut self, filter: &Filter) {
        let column = format!("{}.{}", self.src.alias, filter.field.column());
        if !filter.include.is_empty() {
            self.s.push(" AND ").push(&column);
            self.list(&filter.include);
        }
        if !filter.exclude.is_empty() {
            self.s.push(&format!(" AND ({column} IS NULL OR NOT {column}"));
            self.list(&filter.exclude);
            self.s.push(")");
        }
    }

    /// ` IN (…)`, one placeholder per value.
    fn list(&mut self, values: &[String]) {
        self.s.push(" IN (");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.s.push(", ");
            }
            self.s.bind(text(value));
        }
        self.s.push(")");
    }

    async fn run(self, x: &mut impl Executor, kinds: &[Kind]) -> StoreResult<Vec<Columns>> {
        let rows = x.query_uncached(&self.s.text, &self.s.params, kinds).await?;
        Ok(rows.into_iter().map(Columns::new).collect())
    }
}

/// Seconds from `a` to `b`, two times of a row, as a floating-point number.
fn seconds(dialect: Dialect, a: &str, b: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("(({b}) - ({a})) / 1000.0"),
        Dialect::Postgres => format!("CAST(EXTRACT(EPOCH FROM ({b}) - ({a})) AS DOUBLE PRECISION)"),
    }
}

/// The columns that make a [`Tally`] of a numeric expression: count, sum, least, greatest.
fn tally_columns(expression: &str) -> String {
    format!(
        "COUNT({e}), CAST(SUM({e}) AS DOUBLE PRECISION), CAST(MIN({e}) AS DOUBLE PRECISION), \
         CAST(MAX({e}) AS DOUBLE PRECISION)",
        e = expression
    )
}

const TALLY_KINDS: [Kind; 4] = [Kind::Integer, Kind::Number, Kind::Number, Kind::Number];

fn read_tally(c: &mut Columns) -> StoreResult<Tally> {
    Ok(Tally {
        count: c.integer()?.max(0) as u64,
        sum: c.opt_number()?.unwrap_or(0.0),
        min: c.opt_number()?,
        max: c.opt_number()?,
    })
}

fn read_counts(c: &mut Columns, n: usize) -> StoreResult<Vec<Tally>> {
    (0..n).map(|_| Ok(Tally::of_count(c.integer()?.max(0) as u64))).collect()
}

/// Reads rows of `project_id, key, …` into cells: `key` reads the key (`None` for a row outside
/// the range), `numbers` the rest.
fn read_cells(
    rows: Vec<Columns>,
    mut key: impl FnMut(&mut Columns) -> StoreResult<Option<Key>>,
    mut numbers: impl FnMut(&mut Columns) -> StoreResult<Vec<Tally>>,
    cells: &mut Cells,
) -> StoreResult<()> {
    for mut c in rows {
        let project = c.id()?;
        let key = key(&mut c)?;
        let tallies = numbers(&mut c)?;
        if let Some(key) = key {
            merge_into(cells, (project, key), tallies);
        }
    }
    Ok(())
}

/// A bucket as `width_bucket` numbers it (from 1); 0 is before the range.
fn bucket_key(c: &mut Columns) -> StoreResult<Option<Key>> {
    let bucket = c.integer()?;
    Ok((bucket >= 1).then(|| Key::Bucket(bucket as usize - 1)))
}

fn category_key(c: &mut Columns) -> StoreResult<Option<Key>> {
    Ok(Some(Key::Category(c.opt_text()?)))
}

fn merge_into(cells: &mut Cells, key: (ObjectId, Key), tallies: Vec<Tally>) {
    merge(cells.entry(key).or_default(), &tallies);
}

fn merge(cell: &mut Vec<Tally>, tallies: &[Tally]) {
    if cell.len() < tallies.len() {
        cell.resize(tallies.len(), Tally::default());
    }
    for (into, from) in cell.iter_mut().zip(tallies) {
        into.merge(from);
    }
}

/// The cells per series: one per project under `compare=project`, else one for all, keyed as
/// the rows were. Every bucket of the range is present in a series of buckets.
fn series(q: &ReportQuery, cells: Cells, buckets: Option<usize>) -> Vec<Series> {
    let mut out: Vec<Series> = if q.compare {
        q.projects.iter().map(|p| (Some(*p), BTreeMap::new())).collect()
    } else {
        vec![(None, BTreeMap::new())]
    };
    for ((project, key), tallies) in cells {
        let at = if q.compare { q.projects.iter().position(|p| *p == project).unwrap_or(0) } else { 0 };
        merge(out[at].1.entry(key).or_default(), &tallies);
    }
    if let Some(n) = buckets {
        for (_, keys) in &mut out {
            for i in 0..n {
                keys.entry(Key::Bucket(i)).or_default();
            }
        }
    }
    out
}

/// Items of a series of buckets: for each bucket, each measure as `measures` reads it from the
/// bucket's tallies (missing tallies read as empty).
fn bucket_items(q: &ReportQuery, cells: Cells, measures: &[Measure<'_>], width: usize) -> Vec<Item> {
    let mut items = Vec::new();
    for (project, keys) in series(q, cells, Some(q.bucket_count())) {
        for (key, mut tallies) in keys {
            let Key::Bucket(i) = key else { continue };
            tallies.resize(width, Tally::default());
            for (measure, read) in measures {
                items.push(Item {
                    project,
                    dimension: Some(q.bucket_label(i)),
                    measure: (*measure).to_owned(),
                    value: read(&tallies),
                });
            }
        }
    }
    items
}

/// Items of counts per category, greatest first (then by name); at most `limit` per series.
fn category_items(q: &ReportQuery, cells: Cells, measure: &str, limit: Option<u32>) -> Vec<Item> {
    let mut items = Vec::new();
    for (project, keys) in series(q, cells, None) {
        let mut counts: Vec<(Option<String>, u64)> = keys
            .into_iter()
            .filter_map(|(key, t)| match key {
                Key::Category(c) => Some((c, t.first().map_or(0, |t| t.count))),
                Key::Bucket(_) => None,
            })
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(limit) = limit {
            counts.truncate(limit as usize);
        }
        items.extend(counts.into_iter().map(|(dimension, count)| Item {
            project,
            dimension,
            measure: measure.to_owned(),
            value: Json::from(count),
        }));
    }
    items
}

/// Items of names counted in Rust (slots, goals in lists): the top `limit` per series.
fn counted_items(q: &ReportQuery, counts: BTreeMap<(ObjectId, String), u64>) -> Vec<Item> {
    let mut cells = Cells::new();
    for ((project, name), count) in counts {
        merge_into(&mut cells, (project, Key::Category(Some(name))), vec![Tally::of_count(count)]);
    }
    category_items(q, cells, "count", Some(q.limit))
}

/// One number per series with a fixed dimension (`total`, `all`): the sum over its projects.
fn total_items(q: &ReportQuery, per_project: &HashMap<ObjectId, Json>, dimension: &str, measure: &str) -> Vec<Item> {
    let groups: Vec<(Option<ObjectId>, Vec<ObjectId>)> = if q.compare {
        q.projects.iter().map(|p| (Some(*p), vec![*p])).collect()
    } else {
        vec![(None, q.projects.clone())]
    };
    groups
        .into_iter()
        .map(|(project, members)| {
            let sum: f64 = members.iter().filter_map(|p| per_project.get(p)?.as_f64()).sum();
            Item { project, dimension: Some(dimension.to_owned()), measure: measure.to_owned(), value: number(sum) }
        })
        .collect()
}

#[async_trait]
impl<E: Engine> InsightStore for E {
    async fn report(
        &self,
        query: &ReportQuery,
        scales: &[(ObjectId, RatingScale)],
        as_of: OffsetDateTime,
    ) -> StoreResult<Vec<Item>> {
        let (q, scales) = (query.clone(), scales.iter().copied().collect::<HashMap<_, _>>());
        self.read(job!(|x| Box::pin(run_report(x, q, scales, as_of)).await)).await
    }
}

async fn run_report(
    x: &mut impl Executor,
    q: ReportQuery,
    scales: HashMap<ObjectId, RatingScale>,
    as_of: OffsetDateTime,
) -> StoreResult<Vec<Item>> {
    let count = |t: &[Tally]| Json::from(t[0].count);
    Ok(match q.report {
        Report::Overview => overview(x, &q, &scales, as_of).await?,
        Report::Inputs => bucket_items(&q, per_bucket(x, &q, RECORDS, "COUNT(*)").await?, &[("inputs", &count)], 1),
        Report::Contacts => bucket_items(
            &q,
            per_bucket(x, &q, RECORDS, "COUNT(DISTINCT {a}.contact_id)").await?,
            &[("contacts", &count)],
            1,
        ),
        Report::Sessions => {
            bucket_items(&q, per_bucket(x, &q, SESSIONS, "COUNT(*)").await?, &[("sessions", &count)], 1)
        }
        Report::ActiveSessions => {
            let active = active_sessions(x, &q, as_of).await?;
            total_items(&q, &active, "total", "activeSessions")
        }
        Report::SessionsByChannel => {
            category_items(&q, per_category(x, &q, SESSIONS, "channel", "COUNT(*)", "").await?, "sessions", None)
        }
        Report::SessionsByEndpoint => {
            category_items(&q, per_category(x, &q, SESSIONS, "endpoint_name", "COUNT(*)", "").await?, "sessions", None)
        }
        Report::ContactsByLocale => category_items(
            &q,
            per_category(x, &q, RECORDS, "locale_name", "COUNT(DISTINCT {a}.contact_id)", "").await?,
            "contacts",
            None,
        ),
        Report::TopIntents => {
            let cells = per_category(x, &q, RECORDS, "intent", "COUNT(*)", " AND {a}.intent IS NOT NULL").await?;
            category_items(&q, cells, "count", Some(q.limit))
        }
        Report::TopMessages => {
            let cells = per_category(
                x,
                &q,
                MESSAGES,
                "input_text",
                "COUNT(*)",
                " AND {a}.source = 'user' AND {a}.input_text IS NOT NULL",
            )
            .await?;
            category_items(&q, cells, "count", Some(q.limit))
        }
        Report::TopExitMessages => counted_items(&q, exit_messages(x, &q).await?),
        Report::TopSlots => counted_items(&q, slot_counts(x, &q).await?),
        Report::TopGoals => counted_items(&q, goal_counts(x, &q).await?),
        Report::SessionLength => {
            let cells = session_lengths(x, &q).await?;
            bucket_items(&q, cells, &tally_measures(), 1)
        }
        Report::ExecutionTime => {
            let columns = tally_columns("{a}.execution_time");
            let mut cells = Cells::new();
            let mut s = Select::new(x.dialect(), &q, RECORDS, "{a}.project_id, ");
            s.bucket(&q.bounds)
                .push(", ")
                .push(&columns)
                .scope(true)
                .push(" AND {a}.execution_time IS NOT NULL GROUP BY 1, 2");
            read_cells(s.run(x, &with_key(&TALLY_KINDS)).await?, bucket_key, |c| Ok(vec![read_tally(c)?]), &mut cells)?;
            bucket_items(&q, cells, &tally_measures(), 1)
        }
        Report::ContainmentRate | Report::HandoverRate => {
            let cells = handovers_per_bucket(x, &q).await?;
            let handover = |t: &[Tally]| rate(t[1].count, t[0].count);
            let containment = |t: &[Tally]| rate(t[0].count - t[1].count, t[0].count);
            if q.report == Report::HandoverRate {
                bucket_items(&q, cells, &[("handoverRate", &handover)], 2)
            } else {
                bucket_items(&q, cells, &[("containmentRate", &containment)], 2)
            }
        }
        Report::HandoversByHour => handovers_by_hour(x, &q).await?,
        Report::Ratings => {
            let cells = ratings(x, &q, &scales).await?;
            let average = |t: &[Tally]| Tally { count: t[2].count, sum: t[2].sum, ..Tally::default() }.average();
            bucket_items(
                &q,
                cells,
                &[
                    ("positive", &|t: &[Tally]| Json::from(t[0].count)),
                    ("negative", &|t: &[Tally]| Json::from(t[1].count)),
                    ("average", &average),
                ],
                3,
            )
        }
        Report::Understood => {
            let mut cells = Cells::new();
            let aggregates = [
                "SUM(CASE WHEN {a}.understood = TRUE THEN 1 ELSE 0 END)",
                "SUM(CASE WHEN {a}.understood = FALSE THEN 1 ELSE 0 END)",
            ];
            counts_per_bucket(x, &q, RECORDS, &q.bounds, &aggregates, "", &mut cells).await?;
            bucket_items(
                &q,
                cells,
                &[
                    ("understood", &|t: &[Tally]| Json::from(t[0].count)),
                    ("notUnderstood", &|t: &[Tally]| Json::from(t[1].count)),
                ],
                2,
            )
        }
        Report::IntentScore => intent_scores(x, &q).await?,
        Report::Goals => goals(x, &q).await?,
        Report::LiveAgent => live_agent(x, &q).await?,
        Report::Steps => steps(x, &q).await?,
    })
}

/// The kinds of `project_id, key, …`.
fn with_key(kinds: &[Kind]) -> Vec<Kind> {
    let mut all = vec![Kind::Text, Kind::Integer];
    all.extend_from_slice(kinds);
    all
}

fn with_category(kinds: &[Kind]) -> Vec<Kind> {
    let mut all = vec![Kind::Text, Kind::Text];
    all.extend_from_slice(kinds);
    all
}

fn tally_measures() -> [Measure<'static>; 3] {
    [
        ("average", &|t: &[Tally]| t[0].average()),
        ("minimum", &|t: &[Tally]| t[0].min.map_or(Json::Null, number)),
        ("maximum", &|t: &[Tally]| t[0].max.map_or(Json::Null, number)),
    ]
}

/// One count per project and bucket.
async fn per_bucket(x: &mut impl Executor, q: &ReportQuery, src: Source, aggregate: &str) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    counts_per_bucket(x, q, src, &q.bounds, &[aggregate], "", &mut cells).await?;
    Ok(cells)
}

/// Counts per project and bucket of `bounds`, one per aggregate, of the rows in the range that
/// pass the filters and `condition`, added to `cells`.
async fn counts_per_bucket(
    x: &mut impl Executor,
    q: &ReportQuery,
    src: Source,
    bounds: &[OffsetDateTime],
    aggregates: &[&str],
    condition: &str,
    cells: &mut Cells,
) -> StoreResult<()> {
    let mut s = Select::new(x.dialect(), q, src, "{a}.project_id, ");
    s.bucket(bounds).push(", ").push(&aggregates.join(", ")).scope(true).push(condition).push(" GROUP BY 1, 2");
    let kinds = with_key(&vec![Kind::Integer; aggregates.len()]);
    read_cells(s.run(x, &kinds).await?, bucket_key, |c| read_counts(c, aggregates.len()), cells)
}

/// One count per project and value of `column`.
async fn per_category(
    x: &mut impl Executor,
    q: &ReportQuery,
    src: Source,
    column: &str,
    aggregate: &str,
    condition: &str,
) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    let mut s = Select::new(x.dialect(), q, src, &format!("{{a}}.project_id, {{a}}.{column}, {aggregate}"));
    s.scope(true).push(condition).push(" GROUP BY 1, 2");
    read_cells(s.run(x, &with_category(&[Kind::Integer])).await?, category_key, |c| read_counts(c, 1), &mut cells)?;
    Ok(cells)
}

/// Sessions with an input or a message in the 15 minutes up to `as_of`, per project; the
/// sessions matched by their own fields.
async fn active_sessions(
    x: &mut impl Executor,
    q: &ReportQuery,
    as_of: OffsetDateTime,
) -> StoreResult<HashMap<ObjectId, Json>> {
    let since = as_of - time::Duration::minutes(insights::ACTIVE_MINUTES);
    // The sessions of the inputs and messages of the window, found through their times.
    let mut s = Select::new(x.dialect(), q, SESSIONS, "{a}.project_id, COUNT(*) FROM sessions {a} JOIN (");
    for (i, table) in ["records", "messages"].into_iter().enumerate() {
        if i > 0 {
            s.s.push(" UNION ");
        }
        s.s.push(&format!("SELECT project_id, session_id FROM {table} WHERE "));
        s.projects("project_id");
        s.s.push(" AND timestamp >= ").bind(Value::Time(since)).push(" AND timestamp <= ").bind(Value::Time(as_of));
    }
    s.push(") w ON w.project_id = {a}.project_id AND w.session_id = {a}.session_id");
    s.where_scope(false).push(" GROUP BY 1");
    let mut out = HashMap::new();
    for mut c in s.run(x, &[Kind::Text, Kind::Integer]).await? {
        out.insert(c.id()?, Json::from(c.integer()?));
    }
    Ok(out)
}

/// Per project and bucket of `startedAt`: sessions, and those handed over.
async fn handovers_per_bucket(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    let handed = format!("SUM(CASE WHEN {HANDED_OVER} THEN 1 ELSE 0 END)");
    counts_per_bucket(x, q, SESSIONS, &q.bounds, &["COUNT(*)", &handed], "", &mut cells).await?;
    Ok(cells)
}

/// Whether session `s` was handed over: it has an escalation (then `handover_escalations`
/// counts them), or, with none, one of its records says so.
const HANDED_OVER: &str = "({a}.handover_escalations > 0 OR EXISTS (SELECT 1 FROM records h \
    WHERE h.project_id = {a}.project_id AND h.session_id = {a}.session_id AND h.in_handover_request = TRUE))";

/// Per project and bucket of `startedAt`: the tally of each session's last minus first record.
async fn session_lengths(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Cells> {
    let dialect = x.dialect();
    let mut s = Select::new(dialect, q, SESSIONS, "{a}.project_id, ");
    s.bucket(&q.bounds).push(", ").push(&tally_columns("l.length"));
    // A session that started in the range has no record before `from`.
    s.s.push(" FROM sessions s JOIN (SELECT project_id, session_id, ")
        .push(&seconds(dialect, "MIN(timestamp)", "MAX(timestamp)"))
        .push(" AS length FROM records WHERE ");
    s.projects("project_id");
    s.s.push(" AND timestamp >= ").bind(Value::Time(q.from));
    s.push(" GROUP BY project_id, session_id) l ON l.project_id = {a}.project_id AND l.session_id = {a}.session_id");
    s.where_scope(true).push(" GROUP BY 1, 2");
    let mut cells = Cells::new();
    read_cells(s.run(x, &with_key(&TALLY_KINDS)).await?, bucket_key, |c| Ok(vec![read_tally(c)?]), &mut cells)?;
    Ok(cells)
}

/// Per project: how often each text was the last user message of a session started in the range.
async fn exit_messages(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<BTreeMap<(ObjectId, String), u64>> {
    let mut s = Select::new(x.dialect(), q, SESSIONS, "l.project_id, l.input_text, COUNT(*) FROM (SELECT ");
    s.push(
        "m.project_id, m.input_text, ROW_NUMBER() OVER (PARTITION BY m.project_id, m.session_id \
         ORDER BY m.timestamp DESC, m.id DESC) AS n FROM messages m JOIN sessions {a} \
         ON {a}.project_id = m.project_id AND {a}.session_id = m.session_id",
    );
    // Driven by the sessions of the range, each session's messages read through its own index
    // entries: bounding the messages by time too made SQLite read them by time instead, seven
    // times slower on a million records.
    s.where_scope(true).push(" AND m.source = 'user') l WHERE l.n = 1 AND l.input_text IS NOT NULL GROUP BY 1, 2");
    let mut counts = BTreeMap::new();
    for mut c in s.run(x, &[Kind::Text, Kind::Text, Kind::Integer]).await? {
        counts.insert((c.id()?, c.text()?), c.integer()?.max(0) as u64);
    }
    Ok(counts)
}

/// Per project: how many records in the range found each slot. A slot is a key of an object, a
/// string, or a string of a list.
async fn slot_counts(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<BTreeMap<(ObjectId, String), u64>> {
    let mut s = Select::new(x.dialect(), q, RECORDS, "{a}.project_id, {a}.slots");
    s.scope(true).push(" AND {a}.slots IS NOT NULL");
    let mut counts = BTreeMap::new();
    for mut c in s.run(x, &[Kind::Text, Kind::Json]).await? {
        let project = c.id()?;
        let slots: Json = c.json()?;
        let mut names: Vec<String> = match slots {
            Json::Object(map) => map.into_iter().map(|(k, _)| k).collect(),
            Json::String(name) => vec![name],
            Json::Array(items) => items.into_iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        names.sort();
        names.dedup();
        for name in names {
            *counts.entry((project, name)).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Per project: how many records in the range name each goal in `completedGoals`.
async fn goal_counts(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<BTreeMap<(ObjectId, String), u64>> {
    let mut s = Select::new(x.dialect(), q, RECORDS, "{a}.project_id, {a}.completed_goals");
    s.scope(true).push(" AND {a}.completed_goals IS NOT NULL");
    let mut counts = BTreeMap::new();
    for row in s.run(x, &[Kind::Text, Kind::TextList]).await? {
        let mut c = row;
        let project = c.id()?;
        let mut names = c.opt_text_list()?.unwrap_or_default();
        names.sort();
        names.dedup();
        for name in names {
            *counts.entry((project, name)).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Handovers per local weekday and hour: escalations by their opening time, and the records that
/// say a session without escalations was handed over, by their time.
async fn handovers_by_hour(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Vec<Item>> {
    let hours = &q.hours;
    let mut cells = Cells::new();
    counts_per_bucket(x, q, ESCALATIONS, hours, &["COUNT(*)"], "", &mut cells).await?;
    let without_escalations = " AND ({a}.handover_escalations > 0 OR {a}.in_handover_request = TRUE) AND NOT EXISTS \
         (SELECT 1 FROM escalations x WHERE x.project_id = {a}.project_id AND x.session_id = {a}.session_id)";
    counts_per_bucket(x, q, RECORDS, hours, &["COUNT(*)"], without_escalations, &mut cells).await?;
    // Hours to their weekday and hour.
    let mut by_cell = Cells::new();
    for ((project, key), tallies) in cells {
        if let Key::Bucket(i) = key {
            merge_into(&mut by_cell, (project, Key::Category(Some(q.weekday_hour(hours[i])))), tallies);
        }
    }
    let cells_in_order = weekday_hours();
    let mut items = Vec::new();
    for (project, keys) in series(q, by_cell, None) {
        for cell in &cells_in_order {
            let count = keys.get(&Key::Category(Some(cell.clone()))).and_then(|t| t.first()).map_or(0, |t| t.count);
            items.push(Item {
                project,
                dimension: Some(cell.clone()),
                measure: "handovers".into(),
                value: Json::from(count),
            });
        }
    }
    Ok(items)
}

/// Per project and bucket: positive and negative ratings by the project's scale, and the tally of
/// ratings, over records and messages.
async fn ratings(
    x: &mut impl Executor,
    q: &ReportQuery,
    scales: &HashMap<ObjectId, RatingScale>,
) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    for src in [RECORDS, MESSAGES] {
        let mut s = Select::new(x.dialect(), q, src, "{a}.project_id, ");
        s.bucket(&q.bounds).push(
            ", SUM(CASE WHEN {a}.rating > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN {a}.rating < 0 THEN 1 ELSE 0 END), \
             SUM(CASE WHEN {a}.rating >= 5 THEN 1 ELSE 0 END), SUM(CASE WHEN {a}.rating < 5 THEN 1 ELSE 0 END), ",
        );
        s.push(&tally_columns("{a}.rating")).scope(true).push(" AND {a}.rating IS NOT NULL GROUP BY 1, 2");
        let kinds = with_key(&[
            Kind::Integer,
            Kind::Integer,
            Kind::Integer,
            Kind::Integer,
            Kind::Integer,
            Kind::Number,
            Kind::Number,
            Kind::Number,
        ]);
        for mut c in s.run(x, &kinds).await? {
            let project = c.id()?;
            let bucket = c.integer()?;
            let counts = read_counts(&mut c, 4)?;
            let tally = read_tally(&mut c)?;
            if bucket < 1 {
                continue;
            }
            let (positive, negative) = match scales.get(&project).copied().unwrap_or_default() {
                RatingScale::Binary => (counts[0], counts[1]),
                RatingScale::Ten => (counts[2], counts[3]),
            };
            merge_into(&mut cells, (project, Key::Bucket(bucket as usize - 1)), vec![positive, negative, tally]);
        }
    }
    Ok(cells)
}

/// The ranges of `intentScore`, as the answer names them.
fn score_ranges() -> Vec<String> {
    (0..10).map(|i| format!("{:.1}-{:.1}", f64::from(i) / 10.0, f64::from(i + 1) / 10.0)).collect()
}

/// Intent scores of the records in the range: a count per tenth (1 in the last), the average and
/// the greatest.
async fn intent_scores(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Vec<Item>> {
    let tenth = match x.dialect() {
        Dialect::Sqlite => "CAST({a}.intent_score * 10 AS BIGINT)",
        Dialect::Postgres => "CAST(FLOOR({a}.intent_score * 10) AS BIGINT)",
    };
    let range = format!("CASE WHEN {{a}}.intent_score >= 1 THEN 9 ELSE {tenth} END");
    let mut s = Select::new(x.dialect(), q, RECORDS, &format!("{{a}}.project_id, {range}, "));
    s.push(&tally_columns("{a}.intent_score")).scope(true).push(" AND {a}.intent_score IS NOT NULL GROUP BY 1, 2");
    let mut cells = Cells::new();
    for mut c in s.run(x, &with_key(&TALLY_KINDS)).await? {
        let project = c.id()?;
        let range = c.integer()?.clamp(0, 9) as usize;
        merge_into(&mut cells, (project, Key::Bucket(range)), vec![read_tally(&mut c)?]);
    }
    let names = score_ranges();
    let mut items = Vec::new();
    for (project, keys) in series(q, cells, Some(10)) {
        let mut all = Tally::default();
        for (key, tallies) in &keys {
            let Key::Bucket(i) = key else { continue };
            let tally = tallies.first().copied().unwrap_or_default();
            all.merge(&tally);
            items.push(Item {
                project,
                dimension: Some(names[*i].clone()),
                measure: "count".into(),
                value: Json::from(tally.count),
            });
        }
        items.push(Item { project, dimension: Some("all".into()), measure: "average".into(), value: all.average() });
        items.push(Item {
            project,
            dimension: Some("all".into()),
            measure: "maximum".into(),
            value: all.max.map_or(Json::Null, number),
        });
    }
    Ok(items)
}

/// The measures of the goals report, in order.
const GOAL_MEASURES: [&str; 6] = ["completed", "partial", "incomplete", "timeSaved", "costSaved", "revenue"];

/// Per goal: its cycles started in the range by status, and the sums of the metrics of the steps
/// each cycle reached (durations as time saved; currency metrics named as revenue as revenue, the
/// others as cost saved).
async fn goals(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Vec<Item>> {
    // The steps each cycle reached, over the events that pass the filters; a cycle is placed by
    // its first such event, so those before `from` are read too.
    let mut s = Select::new(
        x.dialect(),
        q,
        GOAL_EVENTS,
        "{a}.project_id, {a}.goal_id, {a}.goal_cycle_id, {a}.step_id, MIN({a}.step_type), MIN({a}.timestamp)",
    );
    s.scope(false).push(" AND {a}.timestamp < ");
    s.s.bind(Value::Time(q.to));
    s.push(" GROUP BY 1, 2, 3, 4");
    let reached = s.run(x, &[Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Time]).await?;
    // Each cycle's status, reached steps and first event.
    let mut cycles: BTreeMap<(ObjectId, String, String), Cycle> = BTreeMap::new();
    for mut c in reached {
        let key = (c.id()?, c.text()?, c.text()?);
        let step = c.text()?;
        let step_type = c.text()?;
        let at = c.time()?;
        let cycle = cycles.entry(key).or_default();
        cycle.completed |= step_type == "completion";
        cycle.partial |= step_type == "step";
        cycle.steps.push(step);
        cycle.first = Some(cycle.first.map_or(at, |first| first.min(at)));
    }
    cycles.retain(|_, cycle| cycle.first.is_some_and(|first| first >= q.from));
    let mut s = Select::new(x.dialect(), q, RECORDS, "project_id, id, name FROM goals WHERE ");
    s.projects("project_id");
    let mut names = HashMap::new();
    for mut c in s.run(x, &[Kind::Text, Kind::Text, Kind::Text]).await? {
        names.insert((c.id()?, c.text()?), c.text()?);
    }
    let mut s = Select::new(
        x.dialect(),
        q,
        RECORDS,
        "project_id, goal_step_id, name, metric_type, value FROM goal_step_metrics WHERE ",
    );
    s.projects("project_id");
    let mut metrics: HashMap<(ObjectId, String), [f64; 3]> = HashMap::new();
    for mut c in s.run(x, &[Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Number]).await? {
        let key = (c.id()?, c.text()?);
        let (name, kind, value) = (c.text()?, c.text()?, c.number()?);
        let at = match kind.as_str() {
            "duration" => 0,
            _ if name.to_lowercase().contains("revenue") => 2,
            _ => 1,
        };
        metrics.entry(key).or_default()[at] += value;
    }
    let mut cells = Cells::new();
    for ((project, goal, _), Cycle { completed, partial, steps, .. }) in cycles {
        let Some(name) = names.get(&(project, goal.clone())) else { continue };
        let mut tallies = vec![Tally::default(); GOAL_MEASURES.len()];
        let status = if completed {
            0
        } else if partial {
            1
        } else {
            2
        };
        tallies[status].count = 1;
        for step in steps {
            if let Some(sums) = metrics.get(&(project, step)) {
                for (i, sum) in sums.iter().enumerate() {
                    tallies[3 + i].sum += sum;
                }
            }
        }
        merge_into(&mut cells, (project, Key::Category(Some(name.clone()))), tallies);
    }
    let mut items = Vec::new();
    for (project, keys) in series(q, cells, None) {
        for (key, tallies) in keys {
            let Key::Category(name) = key else { continue };
            for (i, measure) in GOAL_MEASURES.iter().enumerate() {
                let value = if i < 3 { Json::from(tallies[i].count) } else { number(tallies[i].sum) };
                items.push(Item { project, dimension: name.clone(), measure: (*measure).into(), value });
            }
        }
    }
    Ok(items)
}

/// Escalations opened in the range: how many, the handover rate of the sessions started in it,
/// the average times to first response and to resolution, and counts per status and per label.
async fn live_agent(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Vec<Item>> {
    let dialect = x.dialect();
    let columns = format!(
        "{{a}}.project_id, {{a}}.status, {{a}}.labels, {}, {}",
        seconds(dialect, "{a}.timestamp", "{a}.first_response_at"),
        seconds(dialect, "{a}.timestamp", "{a}.resolved_at")
    );
    let mut s = Select::new(dialect, q, ESCALATIONS, &columns);
    s.scope(true);
    let rows = s.run(x, &[Kind::Text, Kind::Text, Kind::TextList, Kind::Number, Kind::Number]).await?;
    let mut cells = Cells::new();
    let mut per_project: HashMap<ObjectId, [Tally; 2]> = HashMap::new();
    for mut c in rows {
        let project = c.id()?;
        let status = c.text()?;
        let labels = c.opt_text_list()?.unwrap_or_default();
        let (first, resolved) = (c.opt_number()?, c.opt_number()?);
        let times = per_project.entry(project).or_default();
        if let Some(first) = first {
            times[0].add(first);
        }
        if let Some(resolved) = resolved {
            times[1].add(resolved);
        }
        merge_into(&mut cells, (project, Key::Category(Some(status))), vec![Tally::of_count(1)]);
        let mut labels = labels;
        labels.sort();
        labels.dedup();
        for label in labels {
            merge_into(&mut cells, (project, Key::Category(Some(format!("label:{label}")))), vec![Tally::of_count(1)]);
        }
    }
    let sessions = handovers_per_bucket(x, q).await?;
    let mut items = Vec::new();
    let series_of_sessions = series(q, sessions, None);
    for (project, keys) in series(q, cells, None) {
        let members: Vec<ObjectId> = project.map_or_else(|| q.projects.clone(), |p| vec![p]);
        let mut times = [Tally::default(); 2];
        for p in &members {
            if let Some(t) = per_project.get(p) {
                times[0].merge(&t[0]);
                times[1].merge(&t[1]);
            }
        }
        let handovers: u64 = keys
            .iter()
            .filter(|(k, _)| matches!(k, Key::Category(Some(c)) if !c.starts_with("label:")))
            .map(|(_, t)| t[0].count)
            .sum();
        let (mut all, mut handed) = (0, 0);
        for (sp, sk) in &series_of_sessions {
            if *sp == project {
                for t in sk.values() {
                    all += t[0].count;
                    handed += t[1].count;
                }
            }
        }
        let all_dimension = Some("all".to_owned());
        items.push(Item {
            project,
            dimension: all_dimension.clone(),
            measure: "handovers".into(),
            value: Json::from(handovers),
        });
        items.push(Item {
            project,
            dimension: all_dimension.clone(),
            measure: "handoverRate".into(),
            value: rate(handed, all),
        });
        items.push(Item {
            project,
            dimension: all_dimension.clone(),
            measure: "averageFirstResponse".into(),
            value: times[0].average(),
        });
        items.push(Item {
            project,
            dimension: all_dimension,
            measure: "averageResolution".into(),
            value: times[1].average(),
        });
        for (key, tallies) in keys {
            if let Key::Category(category) = key {
                items.push(Item {
                    project,
                    dimension: category,
                    measure: "count".into(),
                    value: Json::from(tallies[0].count),
                });
            }
        }
    }
    Ok(items)
}

/// The step funnel of the sessions started in the range (see [`insights::funnel`]).
async fn steps(x: &mut impl Executor, q: &ReportQuery) -> StoreResult<Vec<Item>> {
    let (step, backwards) = match (&q.start_step, &q.end_step) {
        (Some(step), _) => (step.clone(), false),
        (None, Some(step)) => (step.clone(), true),
        (None, None) => return Ok(Vec::new()),
    };
    let mut s = Select::new(x.dialect(), q, SESSIONS, "{a}.project_id, {a}.step_path");
    s.scope(true).push(" AND {a}.steps_count > 0");
    let mut paths: BTreeMap<ObjectId, Vec<Vec<String>>> = BTreeMap::new();
    for mut c in s.run(x, &[Kind::Text, Kind::Text]).await? {
        let project = c.id()?;
        let path: Vec<String> = c.text()?.split(',').map(str::to_owned).collect();
        if path.contains(&step) {
            paths.entry(project).or_default().push(path);
        }
    }
    let groups: Vec<(Option<ObjectId>, Vec<ObjectId>)> = if q.compare {
        q.projects.iter().map(|p| (Some(*p), vec![*p])).collect()
    } else {
        vec![(None, q.projects.clone())]
    };
    let mut items = Vec::new();
    for (project, members) in groups {
        let all = members.iter().filter_map(|p| paths.get(p)).flatten().map(Vec::as_slice);
        for node in insights::funnel(all, &step, backwards, q.depth) {
            let dimension = Some(node.path.join(" > "));
            items.push(Item {
                project,
                dimension: dimension.clone(),
                measure: "sessions".into(),
                value: Json::from(node.sessions),
            });
            items.push(Item { project, dimension, measure: "dropOff".into(), value: Json::from(node.drop_off) });
        }
    }
    Ok(items)
}

/// The dashboard's tiles: sessions, contacts and inputs of the range, positive and negative
/// ratings, and the sessions active now.
async fn overview(
    x: &mut impl Executor,
    q: &ReportQuery,
    scales: &HashMap<ObjectId, RatingScale>,
    as_of: OffsetDateTime,
) -> StoreResult<Vec<Item>> {
    let mut per: Vec<(&str, HashMap<ObjectId, Json>)> = Vec::new();
    for (measure, src, aggregate) in [
        ("sessions", SESSIONS, "COUNT(*)"),
        ("contacts", RECORDS, "COUNT(DISTINCT {a}.contact_id)"),
        ("inputs", RECORDS, "COUNT(*)"),
    ] {
        let mut s = Select::new(x.dialect(), q, src, &format!("{{a}}.project_id, {aggregate}"));
        s.scope(true).push(" GROUP BY 1");
        let mut values = HashMap::new();
        for mut c in s.run(x, &[Kind::Text, Kind::Integer]).await? {
            values.insert(c.id()?, Json::from(c.integer()?));
        }
        per.push((measure, values));
    }
    let ratings = ratings(x, q, scales).await?;
    let (mut positive, mut negative): (HashMap<ObjectId, Json>, HashMap<ObjectId, Json>) =
        (HashMap::new(), HashMap::new());
    for ((project, _), tallies) in &ratings {
        for (into, i) in [(&mut positive, 0), (&mut negative, 1)] {
            let entry = into.entry(*project).or_insert(Json::from(0));
            *entry = Json::from(entry.as_u64().unwrap_or(0) + tallies[i].count);
        }
    }
    per.push(("positiveRatings", positive));
    per.push(("negativeRatings", negative));
    per.push(("activeSessions", active_sessions(x, q, as_of).await?));
    let mut items = Vec::new();
    for (measure, values) in &per {
        items.extend(total_items(q, values, "total", measure));
    }
    if q.compare {
        // One project's tiles together.
        items.sort_by_key(|item| q.projects.iter().position(|p| Some(*p) == item.project));
    }
    Ok(items)
}
