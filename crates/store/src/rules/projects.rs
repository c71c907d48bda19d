//! Projects and membership.

use async_trait::async_trait;
use parley_core::{Caller, ObjectId, Project, ProjectAccess, ProjectRole, Value};

use super::{Columns, count, json, text, truth};
use crate::error::StoreResult;
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::{Member, MemberChange};
use crate::traits::ProjectStore;

const PROJECT_COLUMNS: &str = "p.id, p.organisation, p.name, p.settings, p.profile, p.created_at, p.updated_at";
const PROJECT_KINDS: [Kind; 7] = [Kind::Text, Kind::Text, Kind::Text, Kind::Json, Kind::Json, Kind::Time, Kind::Time];

/// The projects a caller may see: every one of the organisation (`?1`) for an admin (`?2`), the
/// ones they are a member of (`?3`) otherwise. [`visibility`] gives the three parameters. The
/// membership test is an uncorrelated `IN`: Citus plans no correlated subquery over reference
/// tables.
const VISIBLE: &str = "p.organisation = ?1 AND (?2 OR p.id IN \
    (SELECT m.project_id FROM project_members m WHERE m.user_id = ?3))";

fn visibility(caller: &Caller) -> [Value; 3] {
    [text(caller.organisation), Value::Bool(caller.is_admin()), text(caller.user_id)]
}

fn project(columns: &mut Columns) -> StoreResult<Project> {
    Ok(Project {
        id: columns.id()?,
        organisation: columns.id()?,
        name: columns.text()?,
        settings: columns.json()?,
        profile: columns.json()?,
        created_at: columns.time()?,
        updated_at: columns.time()?,
    })
}

#[async_trait]
impl<E: Engine> ProjectStore for E {
    async fn create_project(&self, p: Project) -> StoreResult<()> {
        self.write(job!(|x| {
            let sql = "INSERT INTO projects (id, organisation, name, settings, profile, created_at, updated_at) \
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
            let params = [
                text(p.id),
                text(p.organisation),
                text(&p.name),
                json(&p.settings)?,
                json(&p.profile)?,
                Value::Time(p.created_at),
                Value::Time(p.updated_at),
            ];
            x.execute(&x.dialect().text(sql), &params).await.map(drop)
        }))
        .await
    }

    async fn project_for(&self, caller: &Caller, id: ObjectId) -> StoreResult<Option<(Project, ProjectAccess)>> {
        let caller = caller.clone();
        self.read(job!(|x| {
            let sql = format!(
                "SELECT {PROJECT_COLUMNS}, m.roles FROM projects p \
                 LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?3 \
                 WHERE p.id = ?1 AND p.organisation = ?2"
            );
            let kinds = [&PROJECT_KINDS[..], &[Kind::Json]].concat();
            let params = [text(id), text(caller.organisation), text(caller.user_id)];
            let Some(row) = x.query_opt(&x.dialect().text(&sql), &params, &kinds).await? else {
                return Ok(None);
            };
            let mut columns = Columns::new(row);
            let project = project(&mut columns)?;
            let roles: Vec<ProjectRole> = columns.opt_json()?.unwrap_or_default();
            Ok(caller.project_access(&roles).map(|access| (project, access)))
        }))
        .await
    }

    async fn list_projects(&self, caller: &Caller, skip: u64, limit: u32) -> StoreResult<(Vec<Project>, u64)> {
        let caller = caller.clone();
        self.read(job!(|x| {
            let list = format!(
                "SELECT {PROJECT_COLUMNS} FROM projects p WHERE {VISIBLE} ORDER BY p.created_at, p.id LIMIT ?4 OFFSET ?5"
            );
            let [org, admin, user] = visibility(&caller);
            let params = [org, admin, user, Value::Integer(i64::from(limit)), Value::Integer(skip.min(i64::MAX as u64) as i64)];
            let rows = x.query(&x.dialect().text(&list), &params, &PROJECT_KINDS).await?;
            let items = rows.into_iter().map(|row| project(&mut Columns::new(row))).collect::<StoreResult<Vec<_>>>()?;
            let total = format!("SELECT COUNT(*) FROM projects p WHERE {VISIBLE}");
            let total = count(x.scalar(&x.dialect().text(&total), &params[..3], Kind::Integer).await?)?;
            Ok((items, total))
        }))
        .await
    }

    async fn visible_project_ids(&self, caller: &Caller) -> StoreResult<Vec<ObjectId>> {
        let caller = caller.clone();
        self.read(job!(|x| {
            let sql = format!("SELECT p.id FROM projects p WHERE {VISIBLE}");
            let rows = x.query(&x.dialect().text(&sql), &visibility(&caller), &[Kind::Text]).await?;
            rows.into_iter().map(|row| Columns::new(row).id()).collect()
        }))
        .await
    }

    async fn update_project(&self, p: Project) -> StoreResult<()> {
        self.write(job!(|x| {
            let sql = "UPDATE projects SET name = ?3, settings = ?4, profile = ?6, updated_at = ?5 \
                       WHERE id = ?1 AND organisation = ?2";
            let params = [
                text(p.id),
                text(p.organisation),
                text(&p.name),
                json(&p.settings)?,
                Value::Time(p.updated_at),
                json(&p.profile)?,
            ];
            x.execute(&x.dialect().text(sql), &params).await.map(drop)
        }))
        .await
    }

    async fn delete_project(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<bool> {
        self.write(job!(|x| {
            x.begin().await?;
            let sql = "DELETE FROM projects WHERE id = ?1 AND organisation = ?2";
            let deleted = x.execute(&x.dialect().text(sql), &[text(id), text(organisation)]).await? > 0;
            if deleted {
                for table in [
                    "records",
                    "messages",
                    "executed_steps",
                    "steps",
                    "escalations",
                    "goal_events",
                    "sessions",
                    "goal_step_metrics",
                    "goal_steps",
                    "goals",
                ] {
                    let sql = format!("DELETE FROM {table} WHERE project_id = ?1");
                    x.execute(&x.dialect().text(&sql), &[text(id)]).await?;
                }
            }
            x.commit().await?;
            Ok(deleted)
        }))
        .await
    }

    async fn set_member(
        &self,
        project: &Project,
        user_id: ObjectId,
        roles: Vec<ProjectRole>,
    ) -> StoreResult<MemberChange> {
        let (project_id, organisation) = (project.id, project.organisation);
        self.write(job!(|x| {
            let sql = "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND organisation = ?2)";
            let known =
                truth(x.scalar(&x.dialect().text(sql), &[text(user_id), text(organisation)], Kind::Bool).await?)?;
            if !known {
                return Ok(MemberChange::UnknownUser);
            }
            let params = [text(project_id), text(user_id), json(&roles)?];
            let sql = "INSERT INTO project_members (project_id, user_id, roles) VALUES (?1, ?2, ?3) \
                       ON CONFLICT (project_id, user_id) DO NOTHING";
            if x.execute(&x.dialect().text(sql), &params).await? > 0 {
                return Ok(MemberChange::Added);
            }
            let sql = "UPDATE project_members SET roles = ?3 WHERE project_id = ?1 AND user_id = ?2";
            x.execute(&x.dialect().text(sql), &params).await?;
            Ok(MemberChange::Replaced)
        }))
        .await
    }

    async fn remove_member(&self, project_id: ObjectId, user_id: ObjectId) -> StoreResult<bool> {
        self.write(job!(|x| {
            let sql = "DELETE FROM project_members WHERE project_id = ?1 AND user_id = ?2";
            Ok(x.execute(&x.dialect().text(sql), &[text(project_id), text(user_id)]).await? > 0)
        }))
        .await
    }

    async fn list_members(&self, project_id: ObjectId) -> StoreResult<Vec<Member>> {
        self.read(job!(|x| {
            let sql = "SELECT user_id, roles FROM project_members WHERE project_id = ?1 ORDER BY user_id";
            let rows = x.query(&x.dialect().text(sql), &[text(project_id)], &[Kind::Text, Kind::Json]).await?;
            rows.into_iter()
                .map(|row| {
                    let mut columns = Columns::new(row);
                    Ok(Member { user_id: columns.id()?, roles: columns.json()? })
                })
                .collect()
        }))
        .await
    }
}
