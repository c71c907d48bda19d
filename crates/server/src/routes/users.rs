//! Users of the caller's organisation (rest.md §5), for organisation admins.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_core::identity::{ORG_ROLE_NAMES, validate_email, validate_password, validate_roles};
use parley_core::project::validate_project_name;
use parley_core::value::{format_time, now};
use parley_core::{Caller, Error, ObjectId, OrgRole};
use parley_store::{NewUser, User, UserDeletion, UserKind};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::projects::PageParams;
use crate::extract::{JsonBody, PathId, QueryParams};
use crate::negotiate::Format;
use crate::password::hash_password;
use crate::problem::{ApiError, ErrorCode};
use crate::represent::{Body, Collection, fields_of, respond};
use crate::state::AppState;

/// A user as clients see it; never a password or its hash.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[serde(rename = "_id")]
    #[schema(rename = "_id")]
    id: String,
    email: String,
    name: String,
    /// Organisation roles: admin, odata, apiKeys.
    #[schema(value_type = Vec<String>)]
    roles: Vec<OrgRole>,
    /// `person`, or `service` for the user an OAuth2 client acts as.
    kind: String,
    #[serde(rename = "createdAt")]
    #[schema(rename = "createdAt")]
    created_at: String,
}

/// The body of user creation.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserInput {
    email: String,
    /// 1 to 200 characters.
    name: String,
    /// At least 8 characters; without one the user cannot sign in with a password.
    password: Option<String>,
    /// Organisation roles: admin, odata, apiKeys.
    roles: Vec<String>,
}

const USER_COLUMNS: [&str; 6] = ["_id", "email", "name", "roles", "kind", "createdAt"];

fn user_json(user: &User) -> Map<String, Json> {
    let view = UserView {
        id: user.id.to_string(),
        email: user.email.clone(),
        name: user.name.clone(),
        roles: user.roles.clone(),
        kind: user.kind.as_str().to_owned(),
        created_at: format_time(user.created_at),
    };
    fields_of(&view)
}

fn require_user_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.may_manage_users() {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "Managing users needs the organisation 'admin' role."))
    }
}

#[utoipa::path(
    post,
    path = "/new/v2.0/users",
    tag = "users",
    request_body = UserInput,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Missing (1000) or invalid (1005) argument", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organisation admin", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken in the organisation (1004)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /users {email, name, password?, roles}`.
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    require_user_admin(&caller)?;
    let Json::Object(body) = body else {
        return Err(Error::invalid("body", "must be a JSON object").into());
    };
    if let Some(key) = body.keys().find(|k| !["email", "name", "password", "roles"].contains(&k.as_str())) {
        return Err(Error::invalid(key, "is not a property of a user").into());
    }
    let email = validate_email(body.get("email"))?;
    let name = validate_project_name(body.get("name"))?;
    let roles: Vec<OrgRole> = validate_roles("roles", body.get("roles"), ORG_ROLE_NAMES)?;
    let password_hash = match body.get("password") {
        None | Some(Json::Null) => None,
        Some(Json::String(password)) => {
            validate_password(password)?;
            Some(hash_password(password.clone()).await?)
        }
        Some(_) => return Err(Error::invalid("password", "must be a string").into()),
    };
    let user = User {
        id: ObjectId::generate(),
        organisation: caller.organisation,
        email,
        name,
        roles,
        kind: UserKind::Person,
        created_at: now(),
    };
    state.store.create_user(NewUser { user: user.clone(), password_hash }).await?;
    let href = format!("{}/{}", uri.path(), user.id);
    Ok(respond(format, StatusCode::CREATED, Body::Resource { value: user_json(&user), self_href: href }))
}

#[utoipa::path(
    get,
    path = "/new/v2.0/users",
    tag = "users",
    params(("limit" = Option<u32>, Query), ("skip" = Option<u64>, Query)),
    responses(
        (status = 200, description = "The organisation's users, in the list shape", body = Vec<UserView>),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organisation admin", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /users`: the users of the caller's organisation.
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    require_user_admin(&caller)?;
    let (skip, limit) = params.parse()?;
    let (users, total) = state.store.list_users(caller.organisation, skip, limit).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            items: users.iter().map(user_json).collect(),
            columns: USER_COLUMNS.map(str::to_owned).to_vec(),
            total,
            next: None,
            previous: None,
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/new/v2.0/users/{userId}",
    tag = "users",
    params(("userId" = String, Path)),
    responses(
        (status = 204, description = "Deleted, with their API keys, tokens and memberships"),
        (status = 401, description = "No or bad credentials", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organisation admin", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (1002)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The organisation's last admin (1004)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    )
)]
/// `DELETE /users/{userId}`: the user and, at once, their keys, tokens and memberships.
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    require_user_admin(&caller)?;
    match state.store.delete_user(caller.organisation, id).await? {
        UserDeletion::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        UserDeletion::NotFound => Err(ApiError::not_found("user")),
        UserDeletion::LastAdmin => Err(ApiError::new(
            ErrorCode::Conflict,
            "This is the organisation's last admin; make another user an admin first.",
        )),
    }
}
