//! Background tasks clients follow (rest.md §4): for now, erasures.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::Response;
use parley_core::Caller;

use crate::extract::PathId;
use crate::negotiate::Format;
use crate::problem::ApiError;
use crate::represent::{Body, respond};
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/new/v2.0/tasks/{taskId}",
    tag = "tasks",
    params(("taskId" = String, Path)),
    responses(
        (status = 200, description = "The task: queued, running, done (deleted is final) or error", body = crate::openapi::TaskView),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or its project is not visible (1002)", body = crate::openapi::Problem, content_type = "application/problem+json"),
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
    Ok(respond(format, StatusCode::OK, Body::Resource { value: task.to_json(), self_href: uri.path().to_owned() }))
}
