//! Goal definitions: the current version of each goal in `goals`, its steps in `goal_steps` and
//! their metrics in `goal_step_metrics`, written together in one transaction so that the three
//! OData sets always show one version. Renaming a goal renames it in the sessions that completed
//! it; deleting one deletes its events.

use async_trait::async_trait;
use parley_core::goal::{Change, Definition, Goal, GoalStep, Metric};
use parley_core::{ObjectId, Value};
use time::OffsetDateTime;

use super::{Columns, goal_events, opt_text, text};
use crate::error::{Constraint, StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::sql::Dialect;
use crate::traits::GoalStore;

const GOAL_COLUMNS: &str = "id, project_id, organisation, name, version, description, reference_id, created_at, \
                            last_changed, created_by, last_changed_by";
const GOAL_KINDS: [Kind; 11] = [
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Time,
    Kind::Time,
    Kind::Text,
    Kind::Text,
];

#[async_trait]
impl<E: Engine> GoalStore for E {
    async fn create_goal(&self, goal: Goal) -> StoreResult<()> {
        self.write(job!(|x| {
            x.begin().await?;
            insert(x, &goal).await?;
            x.commit().await
        }))
        .await
    }

    async fn change_goal(
        &self,
        project: ObjectId,
        id: ObjectId,
        change: Change,
        by: ObjectId,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Goal>> {
        self.write(job!(|x| {
            x.begin().await?;
            // Changes of one goal take turns: each applies to the version the one before made.
            let Some(goal) = read(x, project, Some(id), true).await?.pop() else {
                x.commit().await?;
                return Ok(None);
            };
            let changed = goal.changed(change.clone(), by, now);
            let sql = "UPDATE goals SET name = ?3, version = ?4, description = ?5, reference_id = ?6, \
                       last_changed = ?7, last_changed_by = ?8 WHERE project_id = ?1 AND id = ?2";
            let d = &changed.definition;
            let params = [
                text(project),
                text(id),
                Value::Text(d.name.clone()),
                Value::Text(changed.version.clone()),
                opt_text(d.description.as_ref()),
                opt_text(d.reference_id.as_ref()),
                Value::Time(now),
                text(by),
            ];
            x.execute(&x.dialect().text(sql), &params).await?;
            remove_steps(x, project, id).await?;
            insert_steps(x, &changed).await?;
            if changed.definition.name != goal.definition.name {
                goal_events::renamed(x, project, id).await?;
            }
            x.commit().await?;
            Ok(Some(changed))
        }))
        .await
    }

    async fn goals(&self, project: ObjectId, id: Option<ObjectId>) -> StoreResult<Vec<Goal>> {
        self.read(job!(|x| read(x, project, id, false).await)).await
    }

    async fn delete_goal(&self, project: ObjectId, id: ObjectId) -> StoreResult<bool> {
        self.write(job!(|x| {
            x.begin().await?;
            // An ingest of its events holds the goal: the deletion waits for it, then takes them.
            if read(x, project, Some(id), true).await?.is_empty() {
                x.commit().await?;
                return Ok(false);
            }
            goal_events::delete_of_goal(x, project, id).await?;
            remove_steps(x, project, id).await?;
            let sql = "DELETE FROM goals WHERE project_id = ?1 AND id = ?2";
            x.execute(&x.dialect().text(sql), &[text(project), text(id)]).await?;
            x.commit().await?;
            Ok(true)
        }))
        .await
    }
}

/// A project's goals (or the one `id` names), by creation; `lock` holds them for the transaction
/// (PostgreSQL).
async fn read(x: &mut impl Executor, project: ObjectId, id: Option<ObjectId>, lock: bool) -> StoreResult<Vec<Goal>> {
    let mut sql = format!("SELECT {GOAL_COLUMNS} FROM goals WHERE project_id = ?1");
    let mut params = vec![text(project)];
    if let Some(id) = id {
        sql.push_str(" AND id = ?2");
        params.push(text(id));
    }
    sql.push_str(" ORDER BY created_at, id");
    if lock && x.dialect() == Dialect::Postgres {
        sql.push_str(" FOR UPDATE");
    }
    let rows = x.query(&x.dialect().text(&sql), &params, &GOAL_KINDS).await?;
    let mut goals = Vec::new();
    for row in rows {
        let mut c = Columns::new(row);
        let (id, project_id, organisation) = (c.id()?, c.id()?, c.id()?);
        let (name, version, description, reference_id) = (c.text()?, c.text()?, c.opt_text()?, c.opt_text()?);
        let (created_at, last_changed, created_by, last_changed_by) = (c.time()?, c.time()?, c.id()?, c.id()?);
        let steps = steps(x, project_id, id).await?;
        goals.push(Goal {
            id,
            project_id,
            organisation,
            version,
            definition: Definition { name, description, reference_id, steps },
            created_at,
            last_changed,
            created_by,
            last_changed_by,
        });
    }
    Ok(goals)
}

/// The steps of a goal with their metrics, in the order of its definition.
async fn steps(x: &mut impl Executor, project: ObjectId, goal: ObjectId) -> StoreResult<Vec<GoalStep>> {
    let sql = "SELECT id, name, description, text, step_type, step_order FROM goal_steps \
               WHERE project_id = ?1 AND goal_id = ?2 ORDER BY position";
    let kinds = [Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Integer];
    let rows = x.query(&x.dialect().text(sql), &[text(project), text(goal)], &kinds).await?;
    let metrics_sql = "SELECT id, name, description, metric_type, value FROM goal_step_metrics \
                       WHERE project_id = ?1 AND goal_id = ?2 AND goal_step_id = ?3 ORDER BY position";
    let metric_kinds = [Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Number];
    let mut steps = Vec::new();
    for row in rows {
        let mut c = Columns::new(row);
        let (id, name, description, step_text, kind, order) =
            (c.text()?, c.text()?, c.opt_text()?, c.opt_text()?, c.text()?, c.integer()?);
        let params = [text(project), text(goal), Value::Text(id.clone())];
        let metrics = x
            .query(&x.dialect().text(metrics_sql), &params, &metric_kinds)
            .await?
            .into_iter()
            .map(|row| {
                let mut c = Columns::new(row);
                Ok(Metric {
                    id: c.text()?,
                    name: c.text()?,
                    description: c.opt_text()?,
                    kind: c.text()?,
                    value: c.number()?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        steps.push(GoalStep { id, name, description, text: step_text, kind, order, metrics });
    }
    Ok(steps)
}

/// Deletes a goal's steps and their metrics.
async fn remove_steps(x: &mut impl Executor, project: ObjectId, goal: ObjectId) -> StoreResult<()> {
    let params = [text(project), text(goal)];
    for table in ["goal_step_metrics", "goal_steps"] {
        let sql = format!("DELETE FROM {table} WHERE project_id = ?1 AND goal_id = ?2");
        x.execute(&x.dialect().text(&sql), &params).await?;
    }
    Ok(())
}

/// Writes a new goal: the goal, its steps and their metrics.
async fn insert(x: &mut impl Executor, goal: &Goal) -> StoreResult<()> {
    let d = &goal.definition;
    let sql = format!("INSERT INTO goals ({GOAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    let params = [
        text(goal.id),
        text(goal.project_id),
        text(goal.organisation),
        Value::Text(d.name.clone()),
        Value::Text(goal.version.clone()),
        opt_text(d.description.as_ref()),
        opt_text(d.reference_id.as_ref()),
        Value::Time(goal.created_at),
        Value::Time(goal.last_changed),
        text(goal.created_by),
        text(goal.last_changed_by),
    ];
    x.execute(&x.dialect().text(&sql), &params).await?;
    insert_steps(x, goal).await
}

/// Writes the steps of a goal's current version and their metrics. A step id another goal of the
/// project uses is a conflict.
async fn insert_steps(x: &mut impl Executor, goal: &Goal) -> StoreResult<()> {
    let d = &goal.definition;
    let taken = "SELECT id FROM goal_steps WHERE project_id = ?1 AND id = ?2 AND goal_id <> ?3";
    for step in &d.steps {
        let params = [text(goal.project_id), Value::Text(step.id.clone()), text(goal.id)];
        if x.query_opt(&x.dialect().text(taken), &params, &[Kind::Text]).await?.is_some() {
            return Err(StoreError::Conflict(Constraint::GoalStep));
        }
    }
    let step_sql = "INSERT INTO goal_steps (id, project_id, organisation, goal_id, name, version, description, \
                    step_order, text, step_type, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    let metric_sql = "INSERT INTO goal_step_metrics (id, project_id, organisation, goal_id, goal_step_id, name, \
                      version, description, value, metric_type, position) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    for (position, step) in d.steps.iter().enumerate() {
        let params = [
            Value::Text(step.id.clone()),
            text(goal.project_id),
            text(goal.organisation),
            text(goal.id),
            Value::Text(step.name.clone()),
            Value::Text(goal.version.clone()),
            opt_text(step.description.as_ref()),
            Value::Integer(step.order),
            opt_text(step.text.as_ref()),
            Value::Text(step.kind.clone()),
            Value::Integer(position as i64),
        ];
        x.execute(&x.dialect().text(step_sql), &params).await?;
        for (position, metric) in step.metrics.iter().enumerate() {
            let params = [
                Value::Text(metric.id.clone()),
                text(goal.project_id),
                text(goal.organisation),
                text(goal.id),
                Value::Text(step.id.clone()),
                Value::Text(metric.name.clone()),
                Value::Text(goal.version.clone()),
                opt_text(metric.description.as_ref()),
                Value::Number(metric.value),
                Value::Text(metric.kind.clone()),
                Value::Integer(position as i64),
            ];
            x.execute(&x.dialect().text(metric_sql), &params).await?;
        }
    }
    Ok(())
}
