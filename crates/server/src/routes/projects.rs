//! Projects (docs/contract/rest.md §5): create, list, read, rename and configure, delete.

use axum::extract::{OriginalUri, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_core::name::name_from_json;
use parley_core::value::{format_time, now};
use parley_core::{Caller, Error, ObjectId, Project, ProjectAccess, ProjectSettings};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::require_project;
use crate::extract::{ApiJson, PageParams, PathId, QueryParams, WireType, as_sent};
use crate::negotiate::Format;
use crate::problem::{ApiError, BodyRejection, ErrorCode};
use crate::represent::{Body, Collection, Page, fields_of, respond};
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

/// The body of project creation and change. Each property is kept as sent, `null` apart from
/// absent, because a change names what it changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectIn {
    /// 1 to 200 characters; required on creation.
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(value_type = Option<String>)]
    name: Option<Json>,
    /// Settings to merge: collectAnalytics, maskSensitive, maskIp (booleans), retentionDays (0 keeps forever).
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(value_type = Option<Object>)]
    settings: Option<Json>,
}

impl WireType for ProjectIn {
    const NOUN: &'static str = "a project";
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

#[utoipa::path(
    post,
    path = "/projects",
    tag = "projects",
    request_body = ProjectIn,
    responses(
        (status = 201, description = "Created", body = ProjectView,
            headers(("Location" = String, description = "The project"))),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /projects {name, settings?}`.
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: ApiJson<ProjectIn>,
) -> Result<Response, ApiError> {
    if !caller.may_create_projects() {
        return Err(ApiError::new(ErrorCode::Forbidden, "Only organisation admins may create projects."));
    }
    let body = body.parse()?;
    let name = name_from_json(body.name.as_ref())?;
    let settings = match body.settings {
        None | Some(Json::Null) => ProjectSettings::default(),
        Some(patch) => ProjectSettings::default().merge(patch)?,
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

#[utoipa::path(
    get,
    path = "/projects",
    tag = "projects",
    params(("limit" = Option<u32>, Query), ("skip" = Option<u64>, Query)),
    responses(
        (status = 200, description = "Projects the caller may see, in the list shape", body = Page<ProjectView>),
        ApiError,
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
    path = "/projects/{projectId}",
    tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        ApiError,
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
    path = "/projects/{projectId}",
    tag = "projects",
    params(("projectId" = String, Path)),
    request_body = ProjectIn,
    responses(
        (status = 200, description = "The changed project", body = ProjectView),
        ApiError,
        BodyRejection,
    )
)]
/// `PATCH /projects/{projectId} {name?, settings?}`: settings merge what they name.
pub async fn update_project(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(id): PathId,
    body: ApiJson<ProjectIn>,
) -> Result<Response, ApiError> {
    let mut project = require_project(&state, &caller, id, ProjectAccess::Manage).await?;
    let ProjectIn { name, settings } = body.parse()?;
    if name.is_none() && settings.is_none() {
        return Err(Error::Missing {
            detail: "Validation failed. Name 'name' or 'settings'.".into(),
            details: Map::new(),
        }
        .into());
    }
    if let Some(name) = name {
        project.name = name_from_json(Some(&name))?;
    }
    if let Some(patch) = settings {
        project.settings = project.settings.merge(patch)?;
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
    path = "/projects/{projectId}",
    tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 204, description = "Deleted with its records"),
        ApiError,
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
