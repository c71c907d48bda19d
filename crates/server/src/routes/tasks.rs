//! Background tasks clients follow (docs/contract/rest.md §4): for now, erasures.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::Response;
use parley_core::value::format_time;
use parley_core::{Caller, Task};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use crate::extract::PathId;
use crate::negotiate::Format;
use crate::problem::ApiError;
use crate::represent::{Body, fields_of, respond};
use crate::state::AppState;

/// A task as clients see it; never what it deletes (an erasure's contact ids are not shown back).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    #[serde(rename = "_id")]
    #[schema(rename = "_id")]
    id: String,
    project_id: String,
    /// queued, running, done or error.
    status: &'static str,
    /// Records deleted so far.
    deleted: u64,
    /// Why it failed.
    error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
}

impl TaskView {
    /// The fields of `task`'s view, as the body of a resource.
    pub fn of(task: &Task) -> Map<String, Json> {
        let view = TaskView {
            id: task.id.to_string(),
            project_id: task.project_id.to_string(),
            status: task.status.as_str(),
            deleted: task.deleted,
            error: task.error.clone(),
            created_at: format_time(task.created_at),
            started_at: task.started_at.map(format_time),
            finished_at: task.finished_at.map(format_time),
        };
        fields_of(&view)
    }
}

#[utoipa::path(
    get,
    path = "/tasks/{taskId}",
    tag = "tasks",
    params(("taskId" = String, Path)),
    responses(
        (status = 200, description = "The task: queued, running, done (deleted is final) or error", body = TaskView),
        ApiError,
    )
)]
/// `GET /tasks/{taskId}`: a task of a project the caller may see.
pub async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let task = state.store.get_task(caller.organisation, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    if state.store.project_for(&caller, task.project_id).await?.is_none() {
        return Err(ApiError::not_found("task"));
    }
    Ok(respond(format, StatusCode::OK, Body::Resource { value: TaskView::of(&task), self_href: uri.path().to_owned() }))
}
