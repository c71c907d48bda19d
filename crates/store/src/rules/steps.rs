//! Executed steps: ingest, the step catalogue kept from them, and their sessions. An ingest
//! inserts the new executions, merges them into their sessions ([`sessions::add`]), brings the
//! catalogue up to the latest execution of each step, and reads the sessions' step paths again
//! ([`sessions::paths`]), all in one transaction.

use std::collections::{BTreeMap, BTreeSet};

use parley_core::session::{Contribution, Source};
use parley_core::step::{CATALOGUED, EXECUTED_STEP_FIELDS, ExecutedStep, idx};
use parley_core::{ObjectId, Value};

use super::sessions;
use super::{RowTable, text};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, job};
use crate::model::IngestCounts;

/// Executed steps, one row per `(projectId, executionId)`. `sent_parent_step` keeps the
/// `parentStep` the client sent, so that parley knows which parents it derives.
const EXECUTED_STEPS: RowTable = RowTable {
    table: "executed_steps",
    fields: EXECUTED_STEP_FIELDS,
    copies: &[("sent_parent_step", idx::PARENT_STEP)],
    key_column: "execution_id",
    key_field: idx::EXECUTION_ID,
    project_field: idx::PROJECT_ID,
};

/// Inserts stamped executed steps in one transaction, skipping any whose `(projectId,
/// executionId)` exists, and brings the step catalogue and the sessions they name up to date.
pub(crate) async fn insert<E: Engine>(engine: &E, steps: Vec<ExecutedStep>) -> StoreResult<IngestCounts> {
    if steps.is_empty() {
        return Ok(IngestCounts::default());
    }
    engine
        .write(job!(|x| {
            x.begin().await?;
            let rows: Vec<&[Value]> = steps.iter().map(ExecutedStep::values).collect();
            let inserted: Vec<&ExecutedStep> =
                EXECUTED_STEPS.insert_new(x, &rows).await?.into_iter().map(|i| &steps[i]).collect();
            let count = inserted.len() as u64;
            let contributions = inserted
                .iter()
                .map(|step| {
                    let row = Contribution::of_row(Source::Step, step.values())
                        .ok_or_else(|| StoreError::internal("a stamped step does not read as a session's row"))?;
                    Ok(((step.project_id(), step.session_id().to_owned()), row))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let keys: BTreeSet<_> = contributions.iter().map(|(key, _)| key.clone()).collect();
            sessions::add(x, contributions).await?;
            catalogue(x, &inserted).await?;
            sessions::paths(x, &keys).await?;
            x.commit().await?;
            Ok(IngestCounts { inserted: count, duplicates: steps.len() as u64 - count, pending_applied: 0, updated: 0 })
        }))
        .await
}

/// Brings each executed step's catalogue entry to its latest execution, by timestamp, then label
/// (the catalogue keeps no execution id, which could lead to a contact): a late write of an older
/// execution changes nothing.
async fn catalogue(x: &mut impl Executor, inserted: &[&ExecutedStep]) -> StoreResult<()> {
    let order =
        |s: &ExecutedStep| (time_of(s.get(idx::TIMESTAMP)), s.get(idx::STEP_LABEL).as_text().map(str::to_owned));
    let mut latest: BTreeMap<(ObjectId, String), &ExecutedStep> = BTreeMap::new();
    for step in inserted {
        let entity = step.get(idx::ENTITY_REFERENCE_ID).as_text().unwrap_or_default().to_owned();
        let slot = latest.entry((step.project_id(), entity)).or_insert(step);
        if order(step) > order(slot) {
            *slot = step;
        }
    }
    let columns: Vec<&str> = CATALOGUED.iter().map(|(column, _)| *column).collect();
    let sets: Vec<String> =
        columns.iter().chain(&["project_name", "executed_at"]).map(|c| format!("{c} = excluded.{c}")).collect();
    let placeholders: Vec<String> = (1..=columns.len() + 6).map(|n| format!("?{n}")).collect();
    let sql = format!(
        "INSERT INTO steps (id, project_id, organisation, entity_reference_id, project_name, executed_at, {}) \
         VALUES ({}) ON CONFLICT (project_id, entity_reference_id) DO UPDATE SET {} \
         WHERE excluded.executed_at > steps.executed_at \
         OR (excluded.executed_at = steps.executed_at AND excluded.label > steps.label)",
        columns.join(", "),
        placeholders.join(", "),
        sets.join(", ")
    );
    let sql = x.dialect().text(&sql).into_owned();
    for ((project, entity), step) in latest {
        let mut params = vec![
            text(ObjectId::generate()),
            text(project),
            step.get(idx::ORGANISATION).clone(),
            Value::Text(entity),
            step.get(idx::PROJECT_NAME).clone(),
            step.get(idx::TIMESTAMP).clone(),
        ];
        params.extend(CATALOGUED.iter().map(|(_, field)| step.get(*field).clone()));
        x.execute(&sql, &params).await?;
    }
    Ok(())
}

fn time_of(value: &Value) -> Option<time::OffsetDateTime> {
    match value {
        Value::Time(t) => Some(*t),
        _ => None,
    }
}
