//! Sessions kept exact on every write. Every rule that adds, changes or removes rows of a session
//! (records, messages) ends its transaction by calling [`refresh`] with the sessions it touched:
//! each is derived again from all of its rows ([`parley_core::session::derive`]) and stored, or
//! removed when no row names it any more.
//!
//! Two transactions that touch one session must not derive it from each other's uncommitted
//! rows: on PostgreSQL each takes a transaction lock per session (hashed into a fixed number of
//! keys, so that a batch of any size takes a bounded number of locks), in key order, before it
//! reads; the one that waits reads after the other has committed. SQLite's one writer needs none.

use std::collections::{BTreeMap, BTreeSet};

use parley_core::session::{Contribution, Derived, Source, derive};
use parley_core::{ObjectId, Value};

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

/// The columns a contribution is read from, in the order of [`CONTRIBUTION_KINDS`], for each
/// table that names sessions.
const RECORD_CONTRIBUTION: &str = "session_id, id, timestamp, contact_id, organisation, channel, endpoint_name, \
     endpoint_url_token, entrypoint, locale_name, locale_reference_id, CAST(NULL AS TEXT), snapshot_name, flow_name, \
     rating, rating_comment, handover_escalations, expires_at";
const MESSAGE_CONTRIBUTION: &str = "session_id, id, timestamp, contact_id, organisation, channel, endpoint_name, \
     endpoint_url_token, CAST(NULL AS TEXT), locale_name, locale_reference_id, snapshot_id, snapshot_name, flow_name, \
     rating, rating_comment, CAST(NULL AS BIGINT), expires_at";
const CONTRIBUTION_KINDS: [Kind; 18] = [
    Kind::Text,
    Kind::Text,
    Kind::Time,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Number,
    Kind::Text,
    Kind::Integer,
    Kind::Time,
];

fn contribution(source: Source, row: Vec<Value>) -> StoreResult<(String, Contribution)> {
    let mut c = Columns::new(row);
    let session = c.text()?;
    let contribution = Contribution {
        source: Some(source),
        id: c.text()?,
        timestamp: Some(c.time()?),
        contact_id: c.text()?,
        organisation: c.text()?,
        channel: c.opt_text()?,
        endpoint_name: c.opt_text()?,
        endpoint_url_token: c.opt_text()?,
        endpoint_reference_id: c.opt_text()?,
        locale_name: c.opt_text()?,
        locale_reference_id: c.opt_text()?,
        snapshot_id: c.opt_text()?,
        snapshot_name: c.opt_text()?,
        flow_name: c.opt_text()?,
        rating: c.opt_number()?,
        rating_comment: c.opt_text()?,
        handover_escalations: c.opt_integer()?,
        expires_at: c.opt_time()?,
    };
    Ok((session, contribution))
}

/// The columns of `sessions` that a derivation sets, in the order [`session_values`] gives them.
const SESSION_COLUMNS: [&str; 28] = [
    "id",
    "organisation",
    "project_id",
    "project_name",
    "session_id",
    "contact_id",
    "started_at",
    "last_activity_at",
    "channel",
    "endpoint_name",
    "endpoint_url_token",
    "endpoint_reference_id",
    "locale_name",
    "locale_reference_id",
    "snapshot_id",
    "snapshot_name",
    "steps_count",
    "step_path",
    "goals",
    "handover_escalations",
    "rating",
    "rating_comment",
    "inputs_count",
    "messages_count",
    "flow_name",
    "first_message_at",
    "last_message_at",
    "expires_at",
];
const SESSION_TYPES: [&str; 28] = [
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int8",
    "text",
    "text",
    "int8",
    "float8",
    "text",
    "int8",
    "int8",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
];

fn time(value: Option<time::OffsetDateTime>) -> Value {
    value.map_or(Value::Null, Value::Time)
}

fn session_values(key: &SessionKey, project_name: Option<&str>, d: Derived) -> Vec<Value> {
    vec![
        text(ObjectId::generate()),
        Value::Text(d.organisation),
        text(key.0),
        opt_text(project_name),
        Value::Text(key.1.clone()),
        Value::Text(d.contact_id),
        Value::Time(d.started_at),
        Value::Time(d.last_activity_at),
        opt_text(d.channel),
        opt_text(d.endpoint_name),
        opt_text(d.endpoint_url_token),
        opt_text(d.endpoint_reference_id),
        opt_text(d.locale_name),
        opt_text(d.locale_reference_id),
        opt_text(d.snapshot_id),
        opt_text(d.snapshot_name),
        Value::Integer(0),
        Value::Text(String::new()),
        Value::Text(String::new()),
        Value::Integer(d.handover_escalations),
        d.rating.map_or(Value::Null, Value::Number),
        opt_text(d.rating_comment),
        Value::Integer(d.inputs_count),
        Value::Integer(d.messages_count),
        opt_text(d.flow_name),
        time(d.first_message_at),
        time(d.last_message_at),
        time(d.expires_at),
    ]
}

/// `ON CONFLICT … DO UPDATE` that replaces every derived column and keeps the session's id.
fn upsert_tail() -> String {
    let sets: Vec<String> = SESSION_COLUMNS[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    format!(" ON CONFLICT (project_id, session_id) DO UPDATE SET {}", sets.join(", "))
}

/// Derives the sessions `keys` name again from their rows and stores them, in the transaction of
/// the write that touched them.
pub(crate) async fn refresh(x: &mut impl Executor, keys: Vec<SessionKey>, emptied: Emptied) -> StoreResult<()> {
    let keys: BTreeSet<SessionKey> = keys.into_iter().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let dialect = x.dialect();
    if dialect == Dialect::Postgres {
        let locks: BTreeSet<i32> = keys.iter().map(lock_key).collect();
        let locks: Vec<Value> = locks.into_iter().map(|k| Value::Integer(k.into())).collect();
        let sql = format!("SELECT pg_advisory_xact_lock({SESSION_LOCK_CLASS}, k::int4) FROM unnest($1::int8[]) AS k");
        x.query_columns(&sql, &[locks.iter().collect()], &[]).await?;
    }
    let mut rows: BTreeMap<SessionKey, Vec<Contribution>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    let by_project = group_by_project(&keys);
    let mut names: BTreeMap<ObjectId, Option<String>> = BTreeMap::new();
    for (project, sessions) in &by_project {
        for (table, columns, source) in
            [("records", RECORD_CONTRIBUTION, Source::Record), ("messages", MESSAGE_CONTRIBUTION, Source::Message)]
        {
            for row in contributions(x, table, columns, *project, sessions).await? {
                let (session, contribution) = contribution(source, row)?;
                if let Some(list) = rows.get_mut(&(*project, session)) {
                    list.push(contribution);
                }
            }
        }
        let name = x
            .query_opt(&dialect.text("SELECT name FROM projects WHERE id = ?1"), &[text(project)], &[Kind::Text])
            .await?;
        names
            .insert(*project, name.and_then(|row| row.into_iter().next()).and_then(|v| v.as_text().map(str::to_owned)));
    }
    let mut derived = Vec::new();
    let mut empty = Vec::new();
    for (key, mut list) in rows {
        match derive(&mut list) {
            Some(d) => derived.push(session_values(&key, names[&key.0].as_deref(), d)),
            None => empty.push(key),
        }
    }
    store(x, derived).await?;
    remove(x, empty, emptied).await
}

fn group_by_project(keys: &BTreeSet<SessionKey>) -> BTreeMap<ObjectId, Vec<String>> {
    let mut by_project: BTreeMap<ObjectId, Vec<String>> = BTreeMap::new();
    for (project, session) in keys {
        by_project.entry(*project).or_default().push(session.clone());
    }
    by_project
}

/// The contributing rows of a project's sessions in one table.
async fn contributions(
    x: &mut impl Executor,
    table: &str,
    columns: &str,
    project: ObjectId,
    sessions: &[String],
) -> StoreResult<Vec<Vec<Value>>> {
    match x.dialect() {
        Dialect::Sqlite => {
            let sql = format!("SELECT {columns} FROM {table} WHERE project_id = ?1 AND session_id = ?2");
            let mut rows = Vec::new();
            for session in sessions {
                rows.extend(x.query(&sql, &[text(project), text(session)], &CONTRIBUTION_KINDS).await?);
            }
            Ok(rows)
        }
        Dialect::Postgres => {
            let sql = format!(
                "SELECT {columns} FROM {table} WHERE project_id = ANY($1::text[]) AND session_id = ANY($2::text[])"
            );
            let project = [text(project)];
            let sessions: Vec<Value> = sessions.iter().map(text).collect();
            x.query_columns(&sql, &[project.iter().collect(), sessions.iter().collect()], &CONTRIBUTION_KINDS).await
        }
    }
}

/// Inserts or replaces the derived sessions.
async fn store(x: &mut impl Executor, derived: Vec<Vec<Value>>) -> StoreResult<()> {
    if derived.is_empty() {
        return Ok(());
    }
    let columns = SESSION_COLUMNS.join(", ");
    match x.dialect() {
        Dialect::Sqlite => {
            let placeholders: Vec<String> = (1..=SESSION_COLUMNS.len()).map(|n| format!("?{n}")).collect();
            let sql = format!("INSERT INTO sessions ({columns}) VALUES ({}){}", placeholders.join(", "), upsert_tail());
            for values in derived {
                x.execute(&sql, &values).await?;
            }
        }
        Dialect::Postgres => {
            let arrays: Vec<String> =
                SESSION_TYPES.iter().enumerate().map(|(i, ty)| format!("${}::{ty}[]", i + 1)).collect();
            let sql = format!(
                "INSERT INTO sessions ({columns}) SELECT * FROM unnest({}){}",
                arrays.join(", "),
                upsert_tail()
            );
            let columns: Vec<Vec<&Value>> =
                (0..SESSION_COLUMNS.len()).map(|i| derived.iter().map(|row| &row[i]).collect()).collect();
            x.query_columns(&sql, &columns, &[]).await?;
        }
    }
    Ok(())
}

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
