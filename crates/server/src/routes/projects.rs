//! Projects (docs/contract/rest.md §5): create, list, read, rename and configure, delete.

use axum::extract::{OriginalUri, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_core::name::name_from_json;
use parley_core::value::{format_time, now};
use parley_core::{Caller, Error, ObjectId, Project, ProjectAccess, ProjectProfile, ProjectSettings};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::require_project;
use crate::extract::{ApiJson, PageParams, PathId, QueryParams, WireType, as_sent};
use crate::negotiate::Format;
use crate::problem::{ApiError, BodyRejection, ErrorCode};
use crate::represent::{Body, Collection, Page, PageRef, fields_of, respond};
use crate::state::AppState;

/// A project as clients see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    #[serde(rename = "_id")]
    #[schema(rename = "_id")]
    id: String,
    name: String,
    /// collectAnalytics, maskSensitive, maskIp, retentionDays, collectConversations,
    /// transcriptRetentionDays.
    #[schema(value_type = Object)]
    settings: Json,
    /// The bot's primary locale, such as `en-US`; null when not given.
    locale: Option<String>,
    /// The colour the project is shown in; null when not given.
    color: Option<String>,
    description: Option<String>,
    /// Settings for handing a conversation to a human agent, kept as sent; null when not given.
    #[serde(rename = "handoverConfiguration")]
    #[schema(rename = "handoverConfiguration", value_type = Option<Object>)]
    handover_configuration: Option<Json>,
    #[schema(rename = "createdAt")]
    created_at: String,
    /// When the project last changed (the reference product's name for it).
    #[serde(rename = "lastChanged")]
    #[schema(rename = "lastChanged")]
    last_changed: String,
    /// The same time as `lastChanged`.
    #[schema(rename = "updatedAt")]
    updated_at: String,
}

/// The body of project creation and change. Each property is kept as sent, `null` apart from
/// absent, because a change names what it changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectIn {
    /// 1 to 200 characters, not blank; required on creation.
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    name: Option<Json>,
    /// Settings to merge: collectAnalytics, maskSensitive, maskIp, collectConversations (booleans),
    /// retentionDays (0 keeps forever), transcriptRetentionDays (0 keeps messages as long as records).
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(schema_with = crate::openapi::project_settings_schema)]
    settings: Option<Json>,
    /// The bot's primary locale, such as `en-US`, at most 35 characters, not blank; null clears it.
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(value_type = Option<String>, max_length = 35, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    locale: Option<Json>,
    /// At most 64 characters, not blank; null clears it.
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(value_type = Option<String>, max_length = 64, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    color: Option<Json>,
    /// At most 2000 characters, not blank; null clears it.
    #[serde(default, deserialize_with = "as_sent")]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    description: Option<Json>,
    /// An object of at most 16 KiB, kept as sent; null clears it.
    #[serde(default, deserialize_with = "as_sent", rename = "handoverConfiguration")]
    #[schema(schema_with = crate::openapi::json_object_schema, rename = "handoverConfiguration")]
    handover_configuration: Option<Json>,
}

impl ProjectIn {
    /// The profile properties the body names, with their names as sent.
    fn profile_changes(&mut self) -> Vec<(&'static str, Json)> {
        let named = [
            ("locale", self.locale.take()),
            ("color", self.color.take()),
            ("description", self.description.take()),
            ("handoverConfiguration", self.handover_configuration.take()),
        ];
        named.into_iter().filter_map(|(name, value)| value.map(|value| (name, value))).collect()
    }
}

/// The body of a project change, as documented: [`ProjectIn`] with nothing required but at
/// least one property named.
pub struct ProjectChange;

impl utoipa::PartialSchema for ProjectChange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut schema = <ProjectIn as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.clear();
            object.min_properties = Some(1);
        }
        schema
    }
}

impl ToSchema for ProjectChange {}

impl WireType for ProjectIn {
    const NOUN: &'static str = "a project";
}

fn project_json(project: &Project) -> Map<String, Json> {
    let view = ProjectView {
        id: project.id.to_string(),
        name: project.name.clone(),
        settings: serde_json::to_value(&project.settings).unwrap_or_default(),
        locale: project.profile.locale.clone(),
        color: project.profile.color.clone(),
        description: project.profile.description.clone(),
        handover_configuration: project.profile.handover_configuration.clone(),
        created_at: format_time(project.created_at),
        last_changed: format_time(project.updated_at),
        updated_at: format_time(project.updated_at),
    };
    fields_of(&view)
}

const PROJECT_COLUMNS: [&str; 10] = [
    "_id",
    "name",
    "settings",
    "locale",
    "color",
    "description",
    "handoverConfiguration",
    "createdAt",
    "lastChanged",
    "updatedAt",
];

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
/// `POST /projects {name, settings?, locale?, color?, description?, handoverConfiguration?}`.
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
    let mut body = body.parse()?;
    let name = name_from_json(body.name.as_ref())?;
    let mut profile = ProjectProfile::default();
    for (property, value) in body.profile_changes() {
        profile.set(property, value)?;
    }
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
        profile,
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
    let (next, previous) = PageRef::offsets(skip, limit, total);
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            items: projects.iter().map(project_json).collect(),
            columns: PROJECT_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            total,
            next,
            previous,
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
    request_body = ProjectChange,
    responses(
        (status = 200, description = "The changed project", body = ProjectView),
        ApiError,
        BodyRejection,
    )
)]
/// `PATCH /projects/{projectId} {name?, settings?, locale?, color?, description?,
/// handoverConfiguration?}`: settings merge what they name; `null` clears a profile property.
pub async fn update_project(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(id): PathId,
    body: ApiJson<ProjectIn>,
) -> Result<Response, ApiError> {
    let mut project = require_project(&state, &caller, id, ProjectAccess::Manage).await?;
    let mut body = body.parse()?;
    let profile_changes = body.profile_changes();
    let ProjectIn { name, settings, .. } = body;
    if name.is_none() && settings.is_none() && profile_changes.is_empty() {
        return Err(Error::Missing {
            detail: "Validation failed. Name 'name', 'settings' or a property of the project's profile.".into(),
            details: Map::new(),
        }
        .into());
    }
    for (property, value) in profile_changes {
        project.profile.set(property, value)?;
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
