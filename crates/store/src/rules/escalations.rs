//! Escalations: each write merged into its escalation by event time ([`escalation::merge`]), and
//! their sessions. Writes of one escalation take turns: on PostgreSQL each transaction takes a
//! lock per escalation before it reads what is stored. New escalations are merged into their
//! sessions ([`sessions::add`]); a changed one may move its session's times and fields either
//! way, so its sessions are derived again ([`sessions::refresh`]).

use std::collections::{BTreeMap, BTreeSet};

use parley_core::escalation::{self, ESCALATION_FIELDS, EscalationWrite, Merged, Outcome, idx};
use parley_core::session::{Contribution, Source};
use parley_core::{Escalation, ObjectId, Value};

use super::sessions::{self, Emptied, SessionKey};
use super::{Columns, text};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::IngestCounts;
use crate::sql::{self, Dialect};

/// The first key of the escalation locks, a key space apart from the session locks (a
/// transaction takes escalation locks, then session locks; sharing one space, two could wait for
/// each other).
const ESCALATION_LOCK_CLASS: i32 = 0x6573_6361;

/// Merges the writes, in order, into their escalations in one transaction, and brings their
/// sessions up to date.
pub(crate) async fn insert<E: Engine>(engine: &E, writes: Vec<EscalationWrite>) -> StoreResult<IngestCounts> {
    if writes.is_empty() {
        return Ok(IngestCounts::default());
    }
    engine
        .write(job!(|x| {
            x.begin().await?;
            let keys: BTreeSet<(ObjectId, String)> =
                writes.iter().map(|w| (w.row.project_id(), w.escalation_id().to_owned())).collect();
            sessions::lock_in(x, ESCALATION_LOCK_CLASS, &keys).await?;
            let stored = stored(x, &keys).await?;
            let mut current: BTreeMap<(ObjectId, String), Merged> = stored.clone();
            let mut counts = IngestCounts::default();
            for write in &writes {
                let key = (write.row.project_id(), write.escalation_id().to_owned());
                let (merged, outcome) = escalation::merge(current.remove(&key), write);
                match outcome {
                    Outcome::Inserted => counts.inserted += 1,
                    Outcome::Updated => counts.updated += 1,
                    Outcome::Duplicate => counts.duplicates += 1,
                }
                current.insert(key, merged);
            }
            let mut added = Vec::new();
            let mut changed: Vec<SessionKey> = Vec::new();
            for (key, merged) in current {
                let before = stored.get(&key);
                if before == Some(&merged) {
                    continue;
                }
                write_row(x, &merged).await?;
                let session = (key.0, merged.row.session_id().to_owned());
                match before {
                    None => {
                        let row = Contribution::of_row(Source::Escalation, merged.row.values()).ok_or_else(|| {
                            StoreError::internal("a stamped escalation does not read as a session's row")
                        })?;
                        added.push((session, row));
                    }
                    Some(before) => changed.extend([(key.0, before.row.session_id().to_owned()), session]),
                }
            }
            // Both steps below lock their sessions; all are taken first, in one round.
            let all: BTreeSet<SessionKey> = added.iter().map(|(key, _)| key.clone()).chain(changed.clone()).collect();
            sessions::lock(x, &all).await?;
            sessions::add(x, added).await?;
            sessions::refresh(x, changed, Emptied::Remove).await?;
            x.commit().await?;
            Ok(counts)
        }))
        .await
}

/// The stored escalations among `keys`, with the times their fields' values came from: one
/// statement per escalation on SQLite, one per project on PostgreSQL.
async fn stored(
    x: &mut impl Executor,
    keys: &BTreeSet<(ObjectId, String)>,
) -> StoreResult<BTreeMap<(ObjectId, String), Merged>> {
    let mut kinds: Vec<Kind> = ESCALATION_FIELDS.iter().map(|f| Kind::of(f.ty)).collect();
    kinds.push(Kind::Json);
    let columns = sql::columns_of(ESCALATION_FIELDS);
    let mut by_project: BTreeMap<ObjectId, Vec<Value>> = BTreeMap::new();
    for (project, escalation) in keys {
        by_project.entry(*project).or_default().push(Value::Text(escalation.clone()));
    }
    let mut rows = Vec::new();
    for (project, escalations) in by_project {
        match x.dialect() {
            Dialect::Sqlite => {
                let sql = format!(
                    "SELECT {columns}, merge_times FROM escalations WHERE project_id = ?1 AND escalation_id = ?2"
                );
                for escalation in escalations {
                    rows.extend(x.query(&sql, &[text(project), escalation], &kinds).await?);
                }
            }
            Dialect::Postgres => {
                let sql = format!(
                    "SELECT {columns}, merge_times FROM escalations WHERE project_id = ANY($1::text[]) \
                     AND escalation_id = ANY($2::text[])"
                );
                let project = [text(project)];
                let arrays = [project.iter().collect(), escalations.iter().collect()];
                rows.extend(x.query_columns(&sql, &arrays, &kinds).await?);
            }
        }
    }
    rows.into_iter()
        .map(|mut row| {
            let times = Columns::new(vec![row.pop().unwrap_or(Value::Null)]).json()?;
            let row = Escalation::from_values(row);
            let key = (row.project_id(), row.get(idx::ESCALATION_ID).as_text().unwrap_or_default().to_owned());
            Ok((key, Merged { row, times }))
        })
        .collect()
}

/// Inserts or replaces one merged escalation.
async fn write_row(x: &mut impl Executor, merged: &Merged) -> StoreResult<()> {
    let dialect = x.dialect();
    let columns = sql::columns_of(ESCALATION_FIELDS);
    let placeholders: Vec<String> = (1..=ESCALATION_FIELDS.len() + 1).map(|n| format!("?{n}")).collect();
    let sets: Vec<String> = ESCALATION_FIELDS
        .iter()
        .map(|f| f.column)
        .filter(|c| !["id", "project_id", "escalation_id"].contains(c))
        .chain(["merge_times"])
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let statement = format!(
        "INSERT INTO escalations ({columns}, merge_times) VALUES ({}) \
         ON CONFLICT (project_id, escalation_id) DO UPDATE SET {}",
        placeholders.join(", "),
        sets.join(", ")
    );
    let mut params = merged.row.values().to_vec();
    params.push(super::json(&merged.times)?);
    x.execute(&dialect.text(&statement), &params).await.map(drop)
}
