//! Goal definitions of a project (docs/contract/conversations.md, "Goals"): project admins
//! create, change and delete them; anyone who may read the project reads them. Every change
//! makes a new version.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_core::goal::{Change, Goal, new_version};
use parley_core::{Caller, ObjectId, ProjectAccess};
use serde_json::Value as Json;

use super::{path_id, require_project};
use crate::extract::{ApiJson, RequestBody};
use crate::negotiate::Format;
use crate::problem::{ApiError, BodyRejection};
use crate::represent::{Body, Collection, respond};
use crate::state::AppState;

/// The body of `POST …/goals`: a whole definition.
pub struct NewGoal(Change);

impl RequestBody for NewGoal {
    fn from_json(value: Json) -> parley_core::Result<Self> {
        Change::parse(value, true).map(NewGoal)
    }
}

/// The body of `PATCH …/goals/{goalId}`: the fields it changes.
pub struct GoalPatch(Change);

impl RequestBody for GoalPatch {
    fn from_json(value: Json) -> parley_core::Result<Self> {
        Change::parse(value, false).map(GoalPatch)
    }
}

/// A goal's project and id from its path.
fn ids(project: &str, goal: &str) -> Result<(ObjectId, ObjectId), ApiError> {
    Ok((path_id(project, "project")?, path_id(goal, "goal")?))
}

fn resource(goal: &Goal, path: String) -> Body {
    Body::Resource { value: goal.to_json(), self_href: path }
}

#[utoipa::path(
    post,
    path = "/projects/{projectId}/goals",
    tag = "projects",
    params(("projectId" = String, Path)),
    request_body(content = Object, description = "{name, description?, referenceId?, steps: [{stepId?, name, description?, text?, type: start|step|completion, order, metrics?: [{name, description?, type: duration|currency, value}]}]}: 1 to 20 steps, exactly one start, at least one completion"),
    responses(
        (status = 201, description = "Created, at its first version", body = Object),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /projects/{projectId}/goals`.
pub async fn create_goal(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path(project_id): Path<String>,
    body: ApiJson<NewGoal>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&project_id, "project")?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Manage).await?;
    let NewGoal(change) = body.parse()?;
    let now = parley_core::value::now();
    let goal = Goal {
        id: ObjectId::generate(),
        project_id: project.id,
        organisation: project.organisation,
        version: new_version(),
        definition: change.into_definition(),
        created_at: now,
        last_changed: now,
        created_by: caller.user_id,
        last_changed_by: caller.user_id,
    };
    state.store.create_goal(goal.clone()).await?;
    Ok(respond(format, StatusCode::CREATED, resource(&goal, format!("{}/{}", uri.path(), goal.id))))
}

#[utoipa::path(
    get,
    path = "/projects/{projectId}/goals",
    tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 200, description = "The project's goals, by creation: {items, total, _links}", body = Object),
        ApiError,
    )
)]
/// `GET /projects/{projectId}/goals`.
pub async fn list_goals(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path(project_id): Path<String>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&project_id, "project")?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Read).await?;
    let goals = state.store.goals(project.id, None).await?;
    let columns = ["_id", "name", "description", "referenceId", "version", "projectId", "organisationId", "steps"];
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Index(Collection {
            total: goals.len() as u64,
            items: goals.iter().map(Goal::to_json).collect(),
            columns: columns.map(str::to_owned).to_vec(),
            next: None,
            previous: None,
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/projects/{projectId}/goals/{goalId}",
    tag = "projects",
    params(("projectId" = String, Path), ("goalId" = String, Path)),
    responses(
        (status = 200, description = "The goal at its current version", body = Object),
        ApiError,
    )
)]
/// `GET /projects/{projectId}/goals/{goalId}`.
pub async fn read_goal(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path((project_id, goal_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (project_id, goal_id) = ids(&project_id, &goal_id)?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Read).await?;
    let goal = state.store.goals(project.id, Some(goal_id)).await?.pop().ok_or_else(|| ApiError::not_found("goal"))?;
    Ok(respond(format, StatusCode::OK, resource(&goal, uri.path().to_owned())))
}

#[utoipa::path(
    patch,
    path = "/projects/{projectId}/goals/{goalId}",
    tag = "projects",
    params(("projectId" = String, Path), ("goalId" = String, Path)),
    request_body(content = Object, description = "Any of name, description, referenceId, steps (replacing every step); the same rules as creation"),
    responses(
        (status = 200, description = "Changed, at a new version", body = Object),
        ApiError,
        BodyRejection,
    )
)]
/// `PATCH /projects/{projectId}/goals/{goalId}`.
pub async fn change_goal(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path((project_id, goal_id)): Path<(String, String)>,
    body: ApiJson<GoalPatch>,
) -> Result<Response, ApiError> {
    let (project_id, goal_id) = ids(&project_id, &goal_id)?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Manage).await?;
    let GoalPatch(change) = body.parse()?;
    let now = parley_core::value::now();
    let goal = state.store.change_goal(project.id, goal_id, change, caller.user_id, now).await?;
    let goal = goal.ok_or_else(|| ApiError::not_found("goal"))?;
    Ok(respond(format, StatusCode::OK, resource(&goal, uri.path().to_owned())))
}

#[utoipa::path(
    delete,
    path = "/projects/{projectId}/goals/{goalId}",
    tag = "projects",
    params(("projectId" = String, Path), ("goalId" = String, Path)),
    responses(
        (status = 204, description = "Deleted, with its steps and metrics"),
        ApiError,
    )
)]
/// `DELETE /projects/{projectId}/goals/{goalId}`.
pub async fn delete_goal(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, goal_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (project_id, goal_id) = ids(&project_id, &goal_id)?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Manage).await?;
    if state.store.delete_goal(project.id, goal_id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("goal"))
    }
}
