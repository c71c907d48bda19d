//! Project membership (docs/contract/rest.md §5), for the project's admins (`projectAdmin`) and organisation
//! admins.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_core::identity::{PROJECT_ROLE_NAMES, validate_roles};
use parley_core::{Caller, Error, ObjectId, ProjectAccess, ProjectRole};
use parley_store::{Member, MemberChange};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::{path_id, require_project};
use crate::extract::{ApiJson, WireType};
use crate::negotiate::Format;
use crate::problem::{ApiError, BodyRejection};
use crate::represent::{Body, Collection, Page, fields_of, respond};
use crate::state::AppState;

/// A member as clients see it.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[serde(rename = "projectId")]
    #[schema(rename = "projectId")]
    project_id: String,
    #[serde(rename = "userId")]
    #[schema(rename = "userId")]
    user_id: String,
    /// Project roles: basic, analytics, projectAdmin.
    #[schema(value_type = Vec<String>)]
    roles: Vec<ProjectRole>,
}

/// The body of `POST /projects/{projectId}/members`, each property kept as sent for the
/// domain's validators.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemberIn {
    #[schema(value_type = String, required = true, pattern = "^[0-9a-f]{24}$")]
    user_id: Option<Json>,
    /// At least one of basic, analytics, projectAdmin; replaces the member's roles.
    #[schema(value_type = Vec<String>, required = true)]
    roles: Option<Json>,
}

impl WireType for MemberIn {
    const NOUN: &'static str = "a member";
}

fn member_json(project: ObjectId, member: &Member) -> Map<String, Json> {
    fields_of(&MemberView {
        project_id: project.to_string(),
        user_id: member.user_id.to_string(),
        roles: member.roles.clone(),
    })
}

#[utoipa::path(
    post,
    path = "/projects/{projectId}/members",
    tag = "projects",
    params(("projectId" = String, Path)),
    request_body = MemberIn,
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 200, description = "The member's roles replaced", body = MemberView),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /projects/{projectId}/members {userId, roles}`: gives a user of the organisation these
/// roles in the project, replacing any they had.
pub async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path(project_id): Path<String>,
    body: ApiJson<MemberIn>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&project_id, "project")?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Manage).await?;
    let body = body.parse()?;
    let user_id = match body.user_id {
        None | Some(Json::Null) => return Err(Error::missing("userId").into()),
        Some(Json::String(text)) => ObjectId::parse(&text).map_err(|e| Error::invalid("userId", e))?,
        Some(_) => return Err(Error::invalid("userId", "must be a string").into()),
    };
    let roles: Vec<ProjectRole> = validate_roles("roles", body.roles.as_ref(), PROJECT_ROLE_NAMES)?;
    if roles.is_empty() {
        return Err(
            Error::invalid("roles", "must name at least one role; to take every role away, remove the member").into()
        );
    }
    let status = match state.store.set_member(&project, user_id, roles.clone()).await? {
        MemberChange::Added => StatusCode::CREATED,
        MemberChange::Replaced => StatusCode::OK,
        MemberChange::UnknownUser => return Err(ApiError::not_found("user")),
    };
    let value = member_json(project.id, &Member { user_id, roles });
    Ok(respond(format, status, Body::Resource { value, self_href: format!("{}/{user_id}", uri.path()) }))
}

#[utoipa::path(
    get,
    path = "/projects/{projectId}/members",
    tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 200, description = "The project's members", body = Page<MemberView>),
        ApiError,
    )
)]
/// `GET /projects/{projectId}/members`.
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path(project_id): Path<String>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&project_id, "project")?;
    let project = require_project(&state, &caller, project_id, ProjectAccess::Manage).await?;
    let members = state.store.list_members(project.id).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            total: members.len() as u64,
            items: members.iter().map(|m| member_json(project.id, m)).collect(),
            columns: ["projectId", "userId", "roles"].map(str::to_owned).to_vec(),
            next: None,
            previous: None,
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/projects/{projectId}/members/{userId}",
    tag = "projects",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        ApiError,
    )
)]
/// `DELETE /projects/{projectId}/members/{userId}`.
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (project_id, user_id) = (path_id(&project_id, "project")?, path_id(&user_id, "member")?);
    let project = require_project(&state, &caller, project_id, ProjectAccess::Manage).await?;
    if state.store.remove_member(project.id, user_id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("member"))
    }
}
