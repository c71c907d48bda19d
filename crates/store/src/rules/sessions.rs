//! Sessions kept exact on every write. Every rule that adds, changes or removes rows of a session
//! (records, messages, executed steps, escalations, goal events) brings the sessions it touched up to date in
//! its own transaction:
//!
//! - rows only added ([`add`]): they are derived on their own and merged into the stored
//!   session ([`Derived::merge`]), which keeps the keys of the rows its values came from, so an
//!   ingest costs the same whatever the size of the sessions it adds to;
//! - records an update changed ([`update`]): their new values are applied to the stored
//!   session, which says whether that is enough (it is, unless the row a value came from lost
//!   it);
//! - otherwise, and for rows removed ([`refresh`]): each session is derived again from all of its
//!   rows, and removed when none is left;
//! - and whenever a session's executed steps change ([`paths`]): its step path and the parent of
//!   each of its steps whose client left it out are read again from its steps in order.
//!
//! Two transactions that touch one session must not derive it from each other's uncommitted
//! rows: on PostgreSQL each takes a transaction lock per session (hashed into a fixed number of
//! keys, so that a batch of any size takes a bounded number of locks), in key order, before it
//! reads; the one that waits reads after the other has committed. SQLite's one writer needs none.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use parley_core::escalation::ESCALATION_FIELDS;
use parley_core::goal_event::{Completion, GOAL_EVENT_FIELDS, completed_goals};
use parley_core::session::{CARRIED, Contribution, Derived, RowKey, Source, Touched, contribution_fields, derive};
use parley_core::step::{EXECUTED_STEP_FIELDS, Executed, step_path};
use parley_core::{Field, MESSAGE_FIELDS, ObjectId, RECORD_FIELDS, Value};

use super::{Columns, opt_text, text};
use crate::error::StoreResult;
use crate::exec::{Executor, Kind};
use crate::sql::Dialect;

/// A session: its project and id.
pub(crate) type SessionKey = (ObjectId, String);

/// What becomes of a session none of whose rows remain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Emptied {
    /// It goes (an erasure, an expiry).
    Remove,
    /// It stays as it was with no messages (a transcript deleted on its own).
    KeepWithoutMessages,
}

/// The first key of the session locks, a key space apart from the other advisory locks.
const SESSION_LOCK_CLASS: i32 = 0x7365_7373;
/// How many session locks there are. Two sessions that share one only wait for each other a
/// little more; a batch takes at most this many, well inside PostgreSQL's lock table.
const SESSION_LOCKS: u32 = 512;

fn lock_key(key: &SessionKey) -> i32 {
    // FNV-1a over the project and the session id.
    let bytes = key.0.to_string().into_bytes().into_iter().chain([0]).chain(key.1.bytes());
    let hash = bytes.fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    (hash % SESSION_LOCKS) as i32
}

/// Takes the locks of these sessions, in key order (PostgreSQL). A transaction that brings
/// sessions up to date in more than one step takes the locks of all of them first: locks taken
/// in two rounds could wait for another transaction's in a cycle. Taking a lock it holds again
/// never waits.
pub(crate) async fn lock(x: &mut impl Executor, keys: &BTreeSet<SessionKey>) -> StoreResult<()> {
    lock_in(x, SESSION_LOCK_CLASS, keys).await
}

/// Takes the transaction locks of `keys` (a project and a name) in the key space `class`, in key
/// order, on PostgreSQL; see [`lock`].
pub(crate) async fn lock_in(x: &mut impl Executor, class: i32, keys: &BTreeSet<SessionKey>) -> StoreResult<()> {
    if x.dialect() == Dialect::Postgres {
        let locks: BTreeSet<i32> = keys.iter().map(lock_key).collect();
        let locks: Vec<Value> = locks.into_iter().map(|k| Value::Integer(k.into())).collect();
        let sql = format!("SELECT pg_advisory_xact_lock({class}, k::int4) FROM unnest($1::int8[]) AS k");
        x.query_columns(&sql, &[locks.iter().collect()], &[]).await?;
    }
    Ok(())
}

/// The session columns a derivation sets, in the order [`session_values`] gives them.
static SESSION_COLUMNS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut columns = vec![
        "id",
        "organisation",
        "project_id",
        "project_name",
        "session_id",
        "contact_id",
        "started_at",
        "last_activity_at",
    ];
    columns.extend(CARRIED.iter().map(|c| c.column));
    columns.extend([
        "steps_count",
        "step_path",
        "goals",
        "handover_escalations",
        "rating",
        "rating_comment",
        "inputs_count",
        "messages_count",
        "first_message_at",
        "last_message_at",
        "expires_at",
        "derivation",
    ]);
    columns
});

/// The PostgreSQL array type of each of [`SESSION_COLUMNS`].
fn postgres_array(column: &str) -> &'static str {
    match column {
        "started_at" | "last_activity_at" | "first_message_at" | "last_message_at" | "expires_at" => "timestamptz[]",
        "steps_count" | "handover_escalations" | "inputs_count" | "messages_count" => "int8[]",
        "rating" => "float8[]",
        "derivation" => "json[]",
        _ => "text[]",
    }
}

fn time(value: Option<time::OffsetDateTime>) -> Value {
    value.map_or(Value::Null, Value::Time)
}

fn session_values(key: &SessionKey, project_name: Option<&str>, d: &Derived) -> Vec<Value> {
    let mut values = vec![
        text(ObjectId::generate()),
        Value::Text(d.organisation.clone()),
        text(key.0),
        opt_text(project_name),
        Value::Text(key.1.clone()),
        Value::Text(d.contact_id().to_owned()),
        Value::Time(d.started_at),
        Value::Time(d.last_activity_at),
    ];
    values.extend(d.carried.iter().map(|c| opt_text(c.as_ref().map(|(_, v)| v))));
    values.extend([
        Value::Integer(d.steps_count),
        // Written here only for a new session: see KEPT.
        Value::Text(String::new()),
        Value::Text(String::new()),
        Value::Integer(d.handover_escalations()),
        d.rated.as_ref().map_or(Value::Null, |(_, rating, _)| Value::Number(*rating)),
        opt_text(d.rated.as_ref().and_then(|(_, _, comment)| comment.as_ref())),
        Value::Integer(d.inputs_count),
        Value::Integer(d.messages_count),
        time(d.first_message_at),
        time(d.last_message_at),
        time(d.expires_at),
        Value::Json(d.keys_json()),
    ]);
    values
}

/// Merges rows just inserted (none of them existed before) into their sessions.
pub(crate) async fn add(x: &mut impl Executor, rows: Vec<(SessionKey, Contribution)>) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut added: BTreeMap<SessionKey, Derived> = BTreeMap::new();
    for (key, row) in rows {
        let one = Derived::of(&row);
        let merged = match added.remove(&key) {
            Some(before) => before.merge(one),
            None => one,
        };
        added.insert(key, merged);
    }
    let keys: BTreeSet<SessionKey> = added.keys().cloned().collect();
    lock(x, &keys).await?;
    let (mut stored, unreadable) = stored_sessions(x, &keys).await?;
    let mut derived = Vec::new();
    for (key, new) in added {
        if unreadable.contains(&key) {
            continue;
        }
        let merged = match stored.remove(&key) {
            Some(before) => before.merge(new),
            None => new,
        };
        derived.push((key, merged, true));
    }
    store(x, derived).await?;
    // A stored session whose keys cannot be read is derived again from all of its rows.
    refresh(x, unreadable.into_iter().collect(), Emptied::Remove).await
}

/// Applies to their sessions the new values of records an update changed (`touched` says what
/// it may have changed), from what each session stores; a session whose stored values cannot
/// tell the answer is derived again from all of its rows.
pub(crate) async fn update(
    x: &mut impl Executor,
    rows: Vec<(SessionKey, Contribution)>,
    touched: Touched,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let keys: BTreeSet<SessionKey> = rows.iter().map(|(key, _)| key.clone()).collect();
    lock(x, &keys).await?;
    let (mut stored, mut again) = stored_sessions(x, &keys).await?;
    let before = stored.clone();
    for (key, row) in &rows {
        match stored.get_mut(key) {
            Some(session) if !again.contains(key) => {
                if !session.apply_update(row, &touched) {
                    again.insert(key.clone());
                }
            }
            _ => drop(again.insert(key.clone())),
        }
    }
    // A session the update did not change (a rating of a row older than the one it shows) is not
    // written at all.
    let derived: Vec<(SessionKey, Derived, bool)> = stored
        .into_iter()
        .filter(|(key, derived)| !again.contains(key) && before.get(key) != Some(derived))
        .map(|(key, derived)| {
            let indexed = before.get(&key).is_none_or(|before| {
                (before.contact_id(), before.last_message_at, before.expires_at)
                    != (derived.contact_id(), derived.last_message_at, derived.expires_at)
            });
            (key, derived, indexed)
        })
        .collect();
    store(x, derived).await?;
    refresh(x, again.into_iter().collect(), Emptied::Remove).await
}

/// Derives the sessions `keys` name again from all of their rows and stores them.
pub(crate) async fn refresh(x: &mut impl Executor, keys: Vec<SessionKey>, emptied: Emptied) -> StoreResult<()> {
    let keys: BTreeSet<SessionKey> = keys.into_iter().collect();
    if keys.is_empty() {
        return Ok(());
    }
    lock(x, &keys).await?;
    let mut rows: BTreeMap<SessionKey, Vec<Contribution>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for (project, sessions) in by_project(&keys) {
        for source in Source::ALL {
            for (session, contribution) in contributions(x, source, project, &sessions).await? {
                if let Some(list) = rows.get_mut(&(project, session)) {
                    list.push(contribution);
                }
            }
        }
    }
    let mut derived = Vec::new();
    let mut empty = Vec::new();
    for (key, list) in rows {
        match derive(&list) {
            Some(d) => derived.push((key, d, true)),
            None => empty.push(key),
        }
    }
    store(x, derived).await?;
    remove(x, empty, emptied).await?;
    paths(x, &keys).await?;
    goals(x, &keys).await
}

fn by_project(keys: &BTreeSet<SessionKey>) -> BTreeMap<ObjectId, Vec<String>> {
    let mut grouped: BTreeMap<ObjectId, Vec<String>> = BTreeMap::new();
    for (project, session) in keys {
        grouped.entry(*project).or_default().push(session.clone());
    }
    grouped
}

/// The `columns` of the rows of `table` that belong to these sessions of one project and meet
/// `condition` (empty for every row): one statement per session on SQLite, where each is an
/// index lookup in the process, one for all on PostgreSQL.
async fn rows_of_sessions(
    x: &mut impl Executor,
    table: &str,
    columns: &str,
    condition: &str,
    project: ObjectId,
    sessions: &[String],
    kinds: &[Kind],
) -> StoreResult<Vec<Vec<Value>>> {
    match x.dialect() {
        Dialect::Sqlite => {
            let sql = format!("SELECT {columns} FROM {table} WHERE project_id = ?1 AND session_id = ?2{condition}");
            let mut rows = Vec::new();
            for session in sessions {
                rows.extend(x.query(&sql, &[text(project), text(session)], kinds).await?);
            }
            Ok(rows)
        }
        Dialect::Postgres => {
            let sql = format!(
                "SELECT {columns} FROM {table} WHERE project_id = ANY($1::text[]) AND session_id = ANY($2::text[])\
                 {condition}"
            );
            let project = [text(project)];
            let sessions: Vec<Value> = sessions.iter().map(text).collect();
            x.query_columns(&sql, &[project.iter().collect(), sessions.iter().collect()], kinds).await
        }
    }
}

/// The table of a source's rows and its catalogue.
fn table_of(source: Source) -> (&'static str, &'static [Field]) {
    match source {
        Source::Record => ("records", RECORD_FIELDS),
        Source::Message => ("messages", MESSAGE_FIELDS),
        Source::Step => ("executed_steps", EXECUTED_STEP_FIELDS),
        Source::Escalation => ("escalations", ESCALATION_FIELDS),
        Source::GoalEvent => ("goal_events", GOAL_EVENT_FIELDS),
    }
}

/// The statement part that reads `field` of a row, or a typed null where the source has none.
fn column_or_null(source: Source, field: Option<usize>, null_kind: &str) -> String {
    let (_, fields) = table_of(source);
    field.map_or_else(|| format!("CAST(NULL AS {null_kind})"), |i| fields[i].column.to_owned())
}

/// Every row of a project's sessions in one table, as contributions.
async fn contributions(
    x: &mut impl Executor,
    source: Source,
    project: ObjectId,
    sessions: &[String],
) -> StoreResult<Vec<(String, Contribution)>> {
    let (columns, kinds) = contribution_columns(source);
    let (table, _) = table_of(source);
    let rows = rows_of_sessions(x, table, &columns.join(", "), "", project, sessions, &kinds).await?;
    read_contributions(source, rows)
}

/// The columns a session's row is read from (`session_id` first, then those of
/// [`contribution_fields`], a typed null where the source has no such field), and their kinds.
pub(crate) fn contribution_columns(source: Source) -> (Vec<String>, Vec<Kind>) {
    // Every field of a contribution has the same kind in both catalogues; the record's says it
    // where the message has none (handover escalations).
    let kinds: Vec<Kind> = std::iter::once(Kind::Text)
        .chain(contribution_fields(Source::Record).iter().map(|f| Kind::of(RECORD_FIELDS[f.unwrap_or(0)].ty)))
        .collect();
    let columns: Vec<String> = std::iter::once("session_id".to_owned())
        .chain(contribution_fields(source).iter().zip(&kinds[1..]).map(|(field, kind)| {
            let null = match kind {
                Kind::Integer => "BIGINT",
                Kind::Number => "DOUBLE PRECISION",
                _ => "TEXT",
            };
            column_or_null(source, *field, null)
        }))
        .collect();
    (columns, kinds)
}

/// Rows read with [`contribution_columns`], as (session id, contribution).
pub(crate) fn read_contributions(source: Source, rows: Vec<Vec<Value>>) -> StoreResult<Vec<(String, Contribution)>> {
    rows.into_iter()
        .map(|mut row| {
            let session = match row.remove(0) {
                Value::Text(session) => session,
                other => return Err(crate::StoreError::internal(format!("a stored session id: {other:?}"))),
            };
            let contribution = Contribution::from_values(source, &row)
                .ok_or_else(|| crate::StoreError::internal("a stored row does not read as a session's row"))?;
            Ok((session, contribution))
        })
        .collect()
}

/// The stored derivations of these sessions, and the sessions whose stored keys cannot be read.
/// A session kept without rows (its transcript deleted) has no derivation to merge into.
async fn stored_sessions(
    x: &mut impl Executor,
    keys: &BTreeSet<SessionKey>,
) -> StoreResult<(BTreeMap<SessionKey, Derived>, BTreeSet<SessionKey>)> {
    const READ: [&str; 13] = [
        "session_id",
        "contact_id",
        "organisation",
        "started_at",
        "last_activity_at",
        "rating",
        "rating_comment",
        "handover_escalations",
        "inputs_count",
        "messages_count",
        "steps_count",
        "first_message_at",
        "last_message_at",
    ];
    let mut columns: Vec<&str> = READ.to_vec();
    columns.extend(["expires_at", "derivation"]);
    columns.extend(CARRIED.iter().map(|c| c.column));
    let mut kinds = vec![
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Time,
        Kind::Time,
        Kind::Number,
        Kind::Text,
        Kind::Integer,
        Kind::Integer,
        Kind::Integer,
        Kind::Integer,
        Kind::Time,
        Kind::Time,
        Kind::Time,
        Kind::Json,
    ];
    kinds.extend(CARRIED.iter().map(|_| Kind::Text));
    let mut stored = BTreeMap::new();
    let mut unreadable = BTreeSet::new();
    for (project, sessions) in by_project(keys) {
        let rows = rows_of_sessions(x, "sessions", &columns.join(", "), "", project, &sessions, &kinds).await?;
        for row in rows {
            let mut c = Columns::new(row);
            let session = c.text()?;
            let (contact_id, organisation) = (c.text()?, c.text()?);
            let (started_at, last_activity_at) = (c.time()?, c.time()?);
            let (rating, rating_comment, shown_handovers) = (c.opt_number()?, c.opt_text()?, c.integer()?);
            let (inputs_count, messages_count, steps_count) = (c.integer()?, c.integer()?, c.integer()?);
            let (first_message_at, last_message_at, expires_at) = (c.opt_time()?, c.opt_time()?, c.opt_time()?);
            let keys: Option<serde_json::Value> = c.opt_json()?;
            let carried: Vec<Option<String>> = CARRIED.iter().map(|_| c.opt_text()).collect::<StoreResult<_>>()?;
            let key = (project, session);
            let keys = keys.unwrap_or_default();
            // Stored before escalations were kept, the count shown was the records'.
            let record_handovers = keys["recordHandovers"].as_i64().unwrap_or(shown_handovers);
            let escalations_count = keys["escalations"].as_i64().unwrap_or(0);
            let goal_events_count = keys["goalEvents"].as_i64().unwrap_or(0);
            if inputs_count + messages_count + steps_count + escalations_count + goal_events_count == 0 {
                continue;
            }
            let row_key = |json: &serde_json::Value| RowKey::from_json(json);
            let readable = (|| {
                let first = row_key(&keys["first"])?;
                // Stored before steps could leave their contact out, the contact was the first
                // row's.
                let contact = match keys.get("contact") {
                    None => Some((first.clone(), contact_id)),
                    Some(serde_json::Value::Null) => None,
                    Some(key) => Some((row_key(key)?, contact_id)),
                };
                let mut values = Vec::new();
                for (i, value) in carried.into_iter().enumerate() {
                    values.push(match value {
                        Some(v) => Some((row_key(&keys["carried"][i])?, v)),
                        None => None,
                    });
                }
                let rated = match rating {
                    Some(r) => Some((row_key(&keys["rated"])?, r, rating_comment)),
                    None => None,
                };
                Some(Derived {
                    first,
                    contact,
                    organisation,
                    started_at,
                    last_activity_at,
                    carried: values.try_into().ok()?,
                    rated,
                    record_handovers,
                    escalations_count,
                    goal_events_count,
                    inputs_count,
                    messages_count,
                    steps_count,
                    first_message_at,
                    last_message_at,
                    expires_at,
                })
            })();
            match readable {
                Some(derived) => drop(stored.insert(key, derived)),
                None => drop(unreadable.insert(key)),
            }
        }
    }
    Ok((stored, unreadable))
}

/// Inserts or replaces the derived sessions, with the name their project has now. Each comes with
/// whether the columns an index holds may have changed (else SQLite leaves them alone).
async fn store(x: &mut impl Executor, derived: Vec<(SessionKey, Derived, bool)>) -> StoreResult<()> {
    if derived.is_empty() {
        return Ok(());
    }
    let dialect = x.dialect();
    let mut names: BTreeMap<ObjectId, Option<String>> = BTreeMap::new();
    for ((project, _), _, _) in &derived {
        if !names.contains_key(project) {
            let sql = dialect.text("SELECT name FROM projects WHERE id = ?1");
            let row = x.query_opt(&sql, &[text(project)], &[Kind::Text]).await?;
            let name = row.and_then(|row| row.into_iter().next()).and_then(|v| v.as_text().map(str::to_owned));
            names.insert(*project, name);
        }
    }
    let rows: Vec<Vec<Value>> =
        derived.iter().map(|(key, d, _)| session_values(key, names[&key.0].as_deref(), d)).collect();
    let columns = SESSION_COLUMNS.join(", ");
    match dialect {
        Dialect::Sqlite => {
            // SQLite rewrites the index entries of every column an UPDATE names, changed or not:
            // the upsert names only columns no index holds, and writes nothing when nothing
            // changed; the indexed ones follow in an update of their own, only when they changed.
            let placeholders: Vec<String> = (1..=SESSION_COLUMNS.len()).map(|n| format!("?{n}")).collect();
            let plain: Vec<&str> = SESSION_COLUMNS
                .iter()
                .copied()
                .filter(|c| !KEYS.contains(c) && !INDEXED.contains(c) && !KEPT.contains(c))
                .collect();
            let sets: Vec<String> = plain.iter().map(|c| format!("{c} = excluded.{c}")).collect();
            let changed: Vec<String> = plain.iter().map(|c| format!("sessions.{c} IS NOT excluded.{c}")).collect();
            let upsert = format!(
                "INSERT INTO sessions ({columns}) VALUES ({}) ON CONFLICT (project_id, session_id) DO UPDATE SET {} \
                 WHERE {}",
                placeholders.join(", "),
                sets.join(", "),
                changed.join(" OR ")
            );
            let sets: Vec<String> = INDEXED.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 3)).collect();
            let changed: Vec<String> =
                INDEXED.iter().enumerate().map(|(i, c)| format!("{c} IS NOT ?{}", i + 3)).collect();
            let indexed = format!(
                "UPDATE sessions SET {} WHERE project_id = ?1 AND session_id = ?2 AND ({})",
                sets.join(", "),
                changed.join(" OR ")
            );
            let position = |column: &str| SESSION_COLUMNS.iter().position(|c| *c == column).unwrap_or_default();
            let picked: Vec<usize> = ["project_id", "session_id"].iter().chain(&INDEXED).map(|c| position(c)).collect();
            for (values, (_, _, may_change)) in rows.iter().zip(&derived) {
                x.execute(&upsert, values).await?;
                if *may_change {
                    let params: Vec<Value> = picked.iter().map(|&i| values[i].clone()).collect();
                    x.execute(&indexed, &params).await?;
                }
            }
        }
        Dialect::Postgres => {
            let arrays: Vec<String> =
                SESSION_COLUMNS.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 1, postgres_array(c))).collect();
            let updated: Vec<&str> =
                SESSION_COLUMNS.iter().copied().filter(|c| !KEYS.contains(c) && !KEPT.contains(c)).collect();
            let sets: Vec<String> = updated.iter().map(|c| format!("{c} = excluded.{c}")).collect();
            // json has no equality: its text is compared.
            let changed: Vec<String> = updated
                .iter()
                .map(|c| match *c {
                    "derivation" => "sessions.derivation::text IS DISTINCT FROM excluded.derivation::text".to_owned(),
                    c => format!("sessions.{c} IS DISTINCT FROM excluded.{c}"),
                })
                .collect();
            let sql = format!(
                "INSERT INTO sessions ({columns}) SELECT * FROM unnest({}) ON CONFLICT (project_id, session_id) \
                 DO UPDATE SET {} WHERE {}",
                arrays.join(", "),
                sets.join(", "),
                changed.join(" OR ")
            );
            let columns: Vec<Vec<&Value>> =
                (0..SESSION_COLUMNS.len()).map(|i| rows.iter().map(|row| &row[i]).collect()).collect();
            x.query_columns(&sql, &columns, &[]).await?;
        }
    }
    Ok(())
}

/// The columns that identify a session: never changed once it is stored.
const KEYS: [&str; 3] = ["id", "project_id", "session_id"];
/// The columns a derivation writes only when it creates a session: the rule that keeps them
/// exact writes them after ([`paths`], [`goals`]).
const KEPT: [&str; 2] = ["step_path", "goals"];
/// The other columns an index of `sessions` holds (see the migration).
const INDEXED: [&str; 4] = ["contact_id", "last_message_at", "expires_at", "started_at"];

/// Removes the sessions none of whose rows remain, or keeps them without messages.
async fn remove(x: &mut impl Executor, keys: Vec<SessionKey>, emptied: Emptied) -> StoreResult<()> {
    let change = match emptied {
        Emptied::Remove => "DELETE FROM sessions",
        Emptied::KeepWithoutMessages => {
            "UPDATE sessions SET messages_count = 0, first_message_at = NULL, last_message_at = NULL"
        }
    };
    for (project, session) in keys {
        let sql = format!("{change} WHERE project_id = ?1 AND session_id = ?2");
        x.execute(&x.dialect().text(&sql), &[text(project), Value::Text(session)]).await?;
    }
    Ok(())
}

/// Reads the completion events of these sessions again and writes each session's `goals` where
/// it changed. The caller holds the sessions' locks.
pub(crate) async fn goals(x: &mut impl Executor, keys: &BTreeSet<SessionKey>) -> StoreResult<()> {
    const COLUMNS: &str = "session_id, goal_id, timestamp, event_id";
    const KINDS: [Kind; 4] = [Kind::Text, Kind::Text, Kind::Time, Kind::Text];
    let dialect = x.dialect();
    for (project, sessions) in by_project(keys) {
        let completion = " AND step_type = 'completion'";
        let rows = rows_of_sessions(x, "goal_events", COLUMNS, completion, project, &sessions, &KINDS).await?;
        let mut completions: BTreeMap<String, Vec<Completion>> =
            sessions.iter().map(|s| (s.clone(), Vec::new())).collect();
        for row in rows {
            let mut c = Columns::new(row);
            let (session, goal_id, at, event_id) = (c.text()?, c.text()?, c.time()?, c.text()?);
            completions.entry(session).or_default().push(Completion { goal_id, at, event_id });
        }
        let names = if completions.values().any(|list| !list.is_empty()) {
            let sql = dialect.text("SELECT id, name FROM goals WHERE project_id = ?1");
            let rows = x.query(&sql, &[text(project)], &[Kind::Text, Kind::Text]).await?;
            rows.into_iter()
                .map(|row| {
                    let mut c = Columns::new(row);
                    Ok((c.text()?, c.text()?))
                })
                .collect::<StoreResult<BTreeMap<String, String>>>()?
        } else {
            BTreeMap::new()
        };
        let set_goals =
            dialect.text("UPDATE sessions SET goals = ?3 WHERE project_id = ?1 AND session_id = ?2 AND goals <> ?3");
        for (session, list) in completions {
            let goals = completed_goals(list, &names);
            x.execute(&set_goals, &[text(project), Value::Text(session), Value::Text(goals)]).await?;
        }
    }
    Ok(())
}

/// Reads the executed steps of these sessions again, in order, and writes each session's step
/// path and the parent of each step whose client left it out, where they changed. The caller
/// holds the sessions' locks.
pub(crate) async fn paths(x: &mut impl Executor, keys: &BTreeSet<SessionKey>) -> StoreResult<()> {
    const COLUMNS: &str = "session_id, execution_id, timestamp, entity_reference_id, sent_parent_step, parent_step";
    const KINDS: [Kind; 6] = [Kind::Text, Kind::Text, Kind::Time, Kind::Text, Kind::Text, Kind::Text];
    let dialect = x.dialect();
    for (project, sessions) in by_project(keys) {
        let rows = rows_of_sessions(x, "executed_steps", COLUMNS, "", project, &sessions, &KINDS).await?;
        let mut steps: BTreeMap<String, Vec<Executed>> = sessions.iter().map(|s| (s.clone(), Vec::new())).collect();
        let mut parents: BTreeMap<String, Option<String>> = BTreeMap::new();
        for row in rows {
            let mut c = Columns::new(row);
            let (session, execution_id, at, entity_reference_id) = (c.text()?, c.text()?, c.time()?, c.text()?);
            let (sent_parent, parent) = (c.opt_text()?, c.opt_text()?);
            parents.insert(execution_id.clone(), parent);
            steps.entry(session).or_default().push(Executed { execution_id, at, entity_reference_id, sent_parent });
        }
        let set_parent =
            dialect.text("UPDATE executed_steps SET parent_step = ?3 WHERE project_id = ?1 AND execution_id = ?2");
        let set_path = dialect
            .text("UPDATE sessions SET step_path = ?3 WHERE project_id = ?1 AND session_id = ?2 AND step_path <> ?3");
        for (session, executed) in steps {
            let (path, derived_parents) = step_path(executed);
            for (execution, parent) in derived_parents {
                if parents.get(&execution) != Some(&parent) {
                    x.execute(&set_parent, &[text(project), Value::Text(execution), opt_text(parent)]).await?;
                }
            }
            x.execute(&set_path, &[text(project), Value::Text(session), Value::Text(path)]).await?;
        }
    }
    Ok(())
}
