//! Goal events: ingest, and the sessions they name. An ingest checks that the goals its events
//! were recorded under still exist (holding them until it commits, so that deleting a goal waits
//! for it), inserts the new events, merges them into their sessions ([`sessions::add`]) and reads
//! the goals those sessions completed again ([`sessions::goals`]), all in one transaction.

use std::collections::BTreeSet;

use parley_core::goal_event::{GOAL_EVENT_FIELDS, GoalEvent, idx};
use parley_core::session::{Contribution, Source};
use parley_core::{ObjectId, Value};

use super::{RowTable, sessions, text};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::IngestCounts;
use crate::sql::Dialect;

/// Goal events, one row per `(projectId, eventId)`.
const GOAL_EVENTS: RowTable = RowTable {
    table: "goal_events",
    fields: GOAL_EVENT_FIELDS,
    copies: &[],
    key_column: "event_id",
    key_field: idx::EVENT_ID,
    project_field: idx::PROJECT_ID,
};

/// Inserts stamped goal events in one transaction, skipping any whose `(projectId, eventId)`
/// exists, and brings the sessions they name up to date. A goal deleted since the events were
/// checked against it refuses the whole batch.
pub(crate) async fn insert<E: Engine>(engine: &E, events: Vec<GoalEvent>) -> StoreResult<IngestCounts> {
    if events.is_empty() {
        return Ok(IngestCounts::default());
    }
    engine
        .write(job!(|x| {
            x.begin().await?;
            let goals: BTreeSet<(ObjectId, String)> = events
                .iter()
                .map(|e| (e.project_id(), e.get(idx::GOAL_ID).as_text().unwrap_or_default().to_owned()))
                .collect();
            hold_goals(x, &goals).await?;
            let rows: Vec<&[Value]> = events.iter().map(GoalEvent::values).collect();
            let inserted: Vec<&GoalEvent> =
                GOAL_EVENTS.insert_new(x, &rows).await?.into_iter().map(|i| &events[i]).collect();
            let count = inserted.len() as u64;
            let contributions = inserted
                .iter()
                .map(|event| {
                    let row = Contribution::of_row(Source::GoalEvent, event.values())
                        .ok_or_else(|| StoreError::internal("a stamped goal event does not read as a session's row"))?;
                    Ok(((event.project_id(), event.session_id().to_owned()), row))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let keys: BTreeSet<_> = contributions.iter().map(|(key, _)| key.clone()).collect();
            sessions::add(x, contributions).await?;
            sessions::goals(x, &keys).await?;
            x.commit().await?;
            Ok(IngestCounts {
                inserted: count,
                duplicates: events.len() as u64 - count,
                pending_applied: 0,
                updated: 0,
            })
        }))
        .await
}

/// Checks that these goals exist and, on PostgreSQL, holds them until the transaction ends: a
/// change or deletion of one of them waits, so that no event outlives its goal.
async fn hold_goals(x: &mut impl Executor, goals: &BTreeSet<(ObjectId, String)>) -> StoreResult<()> {
    let mut sql = "SELECT id FROM goals WHERE project_id = ?1 AND id = ?2".to_owned();
    if x.dialect() == Dialect::Postgres {
        sql.push_str(" FOR SHARE");
    }
    let sql = x.dialect().text(&sql).into_owned();
    for (project, goal) in goals {
        if x.query_opt(&sql, &[text(project), Value::Text(goal.clone())], &[Kind::Text]).await?.is_none() {
            return Err(StoreError::Stale("A goal the events name was deleted while they were written."));
        }
    }
    Ok(())
}

/// Deletes the events of a goal and brings the sessions they named up to date (a session left
/// without rows goes). The caller holds the goal.
pub(crate) async fn delete_of_goal(x: &mut impl Executor, project: ObjectId, goal: ObjectId) -> StoreResult<()> {
    let keys = sessions_of_goal(x, project, goal, false).await?;
    let sql = x.dialect().text("DELETE FROM goal_events WHERE project_id = ?1 AND goal_id = ?2");
    x.execute(&sql, &[text(project), text(goal)]).await?;
    sessions::refresh(x, keys.into_iter().collect(), sessions::Emptied::Remove).await
}

/// Reads the goals of the sessions that completed a goal again (after its name changed). The
/// caller holds the goal.
pub(crate) async fn renamed(x: &mut impl Executor, project: ObjectId, goal: ObjectId) -> StoreResult<()> {
    let keys = sessions_of_goal(x, project, goal, true).await?;
    sessions::lock(x, &keys).await?;
    sessions::goals(x, &keys).await
}

/// The sessions with events of a goal (`completed`: with a completion event).
async fn sessions_of_goal(
    x: &mut impl Executor,
    project: ObjectId,
    goal: ObjectId,
    completed: bool,
) -> StoreResult<BTreeSet<sessions::SessionKey>> {
    let mut sql = "SELECT DISTINCT session_id FROM goal_events WHERE project_id = ?1 AND goal_id = ?2".to_owned();
    if completed {
        sql.push_str(" AND step_type = 'completion'");
    }
    let rows = x.query(&x.dialect().text(&sql), &[text(project), text(goal)], &[Kind::Text]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| row.into_iter().next().and_then(|v| v.as_text().map(|s| (project, s.to_owned()))))
        .collect())
}
