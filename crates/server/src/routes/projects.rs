//! Projects (rest.md §5): create, list, read, rename and configure, delete.

use axum::extract::{OriginalUri, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_core::project::validate_project_name;
use parley_core::value::{format_time, now};
use parley_core::{Caller, Error, ObjectId, Project, ProjectAccess, ProjectSettings};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::require_project;
use crate::extract::{JsonBody, PathId, QueryParams};
use crate::negotiate::Format;
use crate::problem::{ApiError, ErrorCode};
use crate::represent::{Body, Collection, fields_of, respond};
use crate::state::AppState;

/// A project as clients see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    #[serde(rename = "_id")]
    #[schema(rename = "_id")]
    id: String,
    name: String,
    /// collectAnalytics, maskSensitive, maskIp, retentionDays.
    #[schema(value_type = Object)]
    settings: Json,
    #[schema(rename = "createdAt")]
    created_at: String,
    #[schema(rename = "updatedAt")]
    updated_at: String,
}

/// The body of project creation and change.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProjectInput {
    /// 1 to 200 characters.
    name: Option<String>,
    /// Settings to merge: collectAnalytics, maskSensitive, maskIp (booleans), retentionDays (0 keeps forever).
    #[schema(value_type = Option<Object>)]
    settings: Option<Json>,
}

fn project_json(project: &Project) -> Map<String, Json> {
    let view = ProjectView {
        id: project.id.to_string(),
        name: project.name.clone(),
        settings: serde_json::to_value(&project.settings).unwrap_or_default(),
        created_at: format_time(project.created_at),
        updated_at: format_time(project.updated_at),
    };
    fields_of(&view)
}

const PROJECT_COLUMNS: [&str; 5] = ["_id", "name", "settings", "createdAt", "updatedAt"];

/// Refuses any body key other than `allowed`.
fn only_keys(body: &Map<String, Json>, allowed: &[&str]) -> Result<(), Error> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(Error::invalid(key, "is not a property of a project")),
        None => Ok(()),
    }
}

fn object(body: Json) -> Result<Map<String, Json>, Error> {
    match body {
        Json::Object(map) => Ok(map),
        _ => Err(Error::invalid("body", "must be a JSON object")),
    }
}

#[utoipa::path(
    post,
    path = "/new/v2.0/projects",
    tag = "projects",
    request_body = ProjectInput,
    responses(
        (status = 201, description = "Created", body = ProjectView),
        (status = 400, description = "Invalid argument", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /projects {name, settings?}`.
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if !caller.may_create_projects() {
        return Err(ApiError::new(ErrorCode::Forbidden, "Only organisation admins may create projects."));
    }
    let body = object(body)?;
    only_keys(&body, &["name", "settings"])?;
    let name = validate_project_name(body.get("name"))?;
    let settings = match body.get("settings") {
        None | Some(Json::Null) => ProjectSettings::default(),
        Some(patch) => ProjectSettings::default().merge(patch.clone())?,
    };
    let created = now();
    let project = Project {
        id: ObjectId::generate(),
        organisation: caller.organisation,
        name,
        settings,
        created_at: created,
        updated_at: created,
    };
    state.store.create_project(project.clone()).await?;
    let href = format!("{}/{}", uri.path(), project.id);
    let mut response =
        respond(format, StatusCode::CREATED, Body::Resource { value: project_json(&project), self_href: href.clone() });
    if let Ok(location) = header::HeaderValue::from_str(&href) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Offset paging of small collections (projects, keys).
#[derive(Debug, Deserialize)]
pub struct PageParams {
    limit: Option<String>,
    skip: Option<String>,
}

impl PageParams {
    /// `(skip, limit)`; limit 1..=100, default 25.
    pub fn parse(&self) -> Result<(u64, u32), Error> {
        let limit = match &self.limit {
            None => 25,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 100"))?,
        };
        let skip = match &self.skip {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= i64::MAX as u64)
                .ok_or_else(|| Error::invalid("skip", "must be a whole number"))?,
        };
        Ok((skip, limit))
    }
}

#[utoipa::path(
    get,
    path = "/new/v2.0/projects",
    tag = "projects",
    params(("limit" = Option<u32>, Query), ("skip" = Option<u64>, Query)),
    responses(
        (status = 200, description = "Projects the caller may see, in the list shape", body = Vec<ProjectView>),
        (status = 400, description = "Invalid argument", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /projects`: the projects the caller may see.
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    let (skip, limit) = params.parse()?;
    let (projects, total) = state.store.list_projects(&caller, skip, limit).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            items: projects.iter().map(project_json).collect(),
            columns: PROJECT_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            total,
            next: None,
            previous: None,
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/new/v2.0/projects/{projectId}",
    tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        (status = 400, description = "Invalid argument", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /projects/{projectId}`.
pub async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let project = require_project(&state, &caller, id, ProjectAccess::Read).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Resource { value: project_json(&project), self_href: uri.path().to_owned() },
    ))
}

#[utoipa::path(
    patch,
    path = "/new/v2.0/projects/{projectId}",
    tag = "projects",
    params(("projectId" = String, Path)),
    request_body = ProjectInput,
    responses(
        (status = 200, description = "The changed project", body = ProjectView),
        (status = 400, description = "Invalid argument", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `PATCH /projects/{projectId} {name?, settings?}`: settings merge what they name.
pub async fn update_project(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut project = require_project(&state, &caller, id, ProjectAccess::Manage).await?;
    let body = object(body)?;
    only_keys(&body, &["name", "settings"])?;
    if body.is_empty() {
        return Err(Error::Missing {
            detail: "Validation failed. Name 'name' or 'settings'.".into(),
            details: Map::new(),
        }
        .into());
    }
    if body.contains_key("name") {
        project.name = validate_project_name(body.get("name"))?;
    }
    if let Some(patch) = body.get("settings") {
        project.settings = project.settings.merge(patch.clone())?;
    }
    project.updated_at = now();
    state.store.update_project(project.clone()).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Resource { value: project_json(&project), self_href: uri.path().to_owned() },
    ))
}

#[utoipa::path(
    delete,
    path = "/new/v2.0/projects/{projectId}",
    tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 204, description = "Deleted with its records"),
        (status = 400, description = "Invalid argument", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `DELETE /projects/{projectId}`: the project and all its records.
pub async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let project = require_project(&state, &caller, id, ProjectAccess::Manage).await?;
    if !state.store.delete_project(project.organisation, project.id).await? {
        return Err(ApiError::not_found("project"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
