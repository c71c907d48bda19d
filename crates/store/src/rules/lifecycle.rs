//! Erasure tasks and the purges that keep data no longer than it may be kept.

use async_trait::async_trait;
use parley_core::{Erasure, ObjectId, Task, TaskStatus, Value};
use time::OffsetDateTime;

use super::sessions::{self, Emptied, SessionKey};
use super::{Columns, opt_text, text};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::sql;
use crate::traits::LifecycleStore;

const TASK_COLUMNS: &str =
    "id, organisation, project_id, created_by, status, erasure, deleted, error, created_at, started_at, finished_at";
const TASK_KINDS: [Kind; 11] = [
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Json,
    Kind::Integer,
    Kind::Text,
    Kind::Time,
    Kind::Time,
    Kind::Time,
];

/// The tasks a worker may still take up.
const UNFINISHED: &str = "status IN ('queued', 'running')";

fn task(row: Vec<Value>) -> StoreResult<Task> {
    let mut columns = Columns::new(row);
    Ok(Task {
        id: columns.id()?,
        organisation: columns.id()?,
        project_id: columns.id()?,
        created_by: columns.id()?,
        status: {
            let status = columns.text()?;
            TaskStatus::parse(&status).ok_or_else(|| StoreError::internal(format!("stored task status '{status}'")))?
        },
        erasure: columns
            .opt_json::<serde_json::Value>()?
            .map(|json| Erasure::parse(json).map_err(|e| StoreError::internal(format!("stored erasure: {e}"))))
            .transpose()?,
        deleted: columns.integer()?.max(0) as u64,
        error: columns.opt_text()?,
        created_at: columns.time()?,
        started_at: columns.opt_time()?,
        finished_at: columns.opt_time()?,
    })
}

/// The tables of a project's rows that name sessions, which erasures and expiry delete from, and
/// whether their rows may leave the contact out. Executed steps, escalations and goal events come
/// first: one without a contact is found through its session, whose contact comes from the other
/// tables.
const ERASED_TABLES: [(&str, bool); 5] =
    [("executed_steps", true), ("escalations", true), ("goal_events", true), ("records", false), ("messages", false)];

/// Runs a `DELETE … RETURNING session_id` and answers the session of each row it deleted.
async fn deleted_sessions(
    x: &mut impl Executor,
    delete: &sql::Statement,
    project: ObjectId,
) -> StoreResult<Vec<SessionKey>> {
    let rows = x.query(&delete.text, &delete.params, &[Kind::Text]).await?;
    rows.into_iter().map(|row| Ok((project, Columns::new(row).text()?))).collect()
}

fn opt_time(value: Option<OffsetDateTime>) -> Value {
    value.map_or(Value::Null, Value::Time)
}

#[async_trait]
impl<E: Engine> LifecycleStore for E {
    async fn create_task(&self, t: Task) -> StoreResult<()> {
        self.write(job!(|x| {
            let sql =
                format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
            let params = [
                text(t.id),
                text(t.organisation),
                text(t.project_id),
                text(t.created_by),
                text(t.status.as_str()),
                t.erasure.as_ref().map_or(Value::Null, |e| Value::Json(e.to_json())),
                Value::Integer(t.deleted.min(i64::MAX as u64) as i64),
                opt_text(t.error.as_ref()),
                Value::Time(t.created_at),
                opt_time(t.started_at),
                opt_time(t.finished_at),
            ];
            x.execute(&x.dialect().text(&sql), &params).await.map(drop)
        }))
        .await
    }

    async fn get_task(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<Task>> {
        self.read(job!(|x| {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND organisation = ?2");
            let row = x.query_opt(&x.dialect().text(&sql), &[text(id), text(organisation)], &TASK_KINDS).await?;
            row.map(task).transpose()
        }))
        .await
    }

    async fn next_task(&self) -> StoreResult<Option<Task>> {
        self.read(job!(|x| {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE {UNFINISHED} ORDER BY created_at, id LIMIT 1");
            x.query_opt(&sql, &[], &TASK_KINDS).await?.map(task).transpose()
        }))
        .await
    }

    async fn erase_batch(&self, t: &Task, limit: u32, now: OffsetDateTime) -> StoreResult<u64> {
        let Some(erasure) = &t.erasure else { return Ok(0) };
        let (id, project, erasure) = (t.id, t.project_id, erasure.clone());
        self.write(job!(|x| {
            // The deletion and its count commit together, so that batches of one task that several
            // nodes run at once add up to exactly what was deleted.
            x.begin().await?;
            let mut touched = Vec::new();
            for (table, contact_optional) in ERASED_TABLES {
                let left = limit - touched.len().min(limit as usize) as u32;
                if left == 0 {
                    break;
                }
                let erase = sql::erase_rows(x.dialect(), table, contact_optional, project, &erasure, left);
                touched.extend(deleted_sessions(x, &erase, project).await?);
            }
            let deleted = touched.len() as u64;
            sessions::refresh(x, touched, Emptied::Remove).await?;
            let sql = format!(
                "UPDATE tasks SET deleted = deleted + ?2, status = 'running', started_at = COALESCE(started_at, ?3) \
                 WHERE project_id = ?4 AND id = ?1 AND {UNFINISHED}"
            );
            let deleted_count = Value::Integer(deleted.min(i64::MAX as u64) as i64);
            let params = [text(id), deleted_count, Value::Time(now), text(project)];
            x.execute(&x.dialect().text(&sql), &params).await?;
            x.commit().await?;
            Ok(deleted)
        }))
        .await
    }

    async fn finish_task(&self, t: &Task, failure: Option<String>, now: OffsetDateTime) -> StoreResult<()> {
        let (id, project) = (t.id, t.project_id);
        // Only a task that succeeded takes the pending updates it matches with it; after a failure
        // they are left, as the records it did not reach are.
        let pending = if failure.is_none() { t.erasure.clone() } else { None };
        let status = if failure.is_some() { TaskStatus::Error } else { TaskStatus::Done };
        self.write(job!(|x| {
            x.begin().await?;
            if let Some(erasure) = &pending {
                let erase = sql::erase_pending_updates(x.dialect(), project, erasure);
                x.execute(&erase.text, &erase.params).await?;
                let orphans = sql::erase_empty_sessions(x.dialect(), project, erasure);
                x.execute(&orphans.text, &orphans.params).await?;
            }
            let sql = format!(
                "UPDATE tasks SET status = ?2, error = ?3, erasure = NULL, finished_at = ?4, \
                 started_at = COALESCE(started_at, ?4) WHERE project_id = ?5 AND id = ?1 AND {UNFINISHED}"
            );
            let params = [text(id), text(status.as_str()), opt_text(failure), Value::Time(now), text(project)];
            x.execute(&x.dialect().text(&sql), &params).await?;
            x.commit().await
        }))
        .await
    }

    async fn all_project_ids(&self) -> StoreResult<Vec<ObjectId>> {
        self.read(job!(|x| {
            let rows = x.query("SELECT id FROM projects ORDER BY id", &[], &[Kind::Text]).await?;
            rows.into_iter().map(|row| Columns::new(row).id()).collect()
        }))
        .await
    }

    async fn purge_expired_records(&self, project: ObjectId, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        self.write(job!(|x| {
            x.begin().await?;
            let mut touched = Vec::new();
            for (table, _) in ERASED_TABLES {
                let left = limit - touched.len().min(limit as usize) as u32;
                if left == 0 {
                    break;
                }
                let purge = sql::purge_expired(x.dialect(), table, project, now, left);
                touched.extend(deleted_sessions(x, &purge, project).await?);
            }
            let deleted = touched.len() as u64;
            sessions::refresh(x, touched, Emptied::Remove).await?;
            // Sessions kept without rows (their transcript deleted) go when they expire.
            let sql = "DELETE FROM sessions WHERE project_id = ?1 AND expires_at <= ?2 \
                       AND inputs_count = 0 AND messages_count = 0 AND steps_count = 0 AND handover_escalations = 0";
            x.execute(&x.dialect().text(sql), &[text(project), Value::Time(now)]).await?;
            x.commit().await?;
            Ok(deleted)
        }))
        .await
    }

    async fn purge_expired_pending_updates(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.write(job!(|x| {
            let sql = "DELETE FROM pending_updates WHERE expires_at <= ?1";
            x.execute(&x.dialect().text(sql), &[Value::Time(now)]).await
        }))
        .await
    }
}
