//! Users of the caller's organisation (docs/contract/rest.md §5), for organisation admins.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_core::identity::{ORG_ROLE_NAMES, validate_email, validate_roles};
use parley_core::name::name_from_json;
use parley_core::value::format_time;
use parley_core::{Caller, Error, OrgRole};
use parley_store::{User, UserDeletion};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use crate::extract::{ApiJson, PageParams, PathId, QueryParams, WireType};
use crate::negotiate::Format;
use crate::problem::{ApiError, BodyRejection, ErrorCode, Problem};
use crate::represent::{Body, Collection, Page, PageRef, fields_of, respond};
use crate::service::users::{self, NewPerson};
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

/// The body of `POST /users`. Each property is kept as sent, so that the domain's validators
/// give each fault its own text, in a fixed order (email, name, roles, password).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    #[schema(value_type = String, required = true, max_length = 254,
        pattern = "^[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^@\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u0000]+@([^@.\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u0000]|[^@.\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u0000][^@\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u0000]*[^@.\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u0000])[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$")]
    email: Option<Json>,
    /// 1 to 200 characters, not blank.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    name: Option<Json>,
    /// 8 to 1024 characters; without one the user cannot sign in with a password.
    #[schema(value_type = Option<String>, min_length = 8, max_length = 1024)]
    password: Option<Json>,
    /// Organisation roles: admin, odata, apiKeys.
    #[schema(value_type = Vec<String>, required = true)]
    roles: Option<Json>,
}

impl WireType for UserIn {
    const NOUN: &'static str = "a user";
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
    path = "/users",
    tag = "users",
    request_body = UserIn,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "The email is taken in the organisation (1004)", body = Problem, content_type = "application/problem+json"),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /users {email, name, password?, roles}`.
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: ApiJson<UserIn>,
) -> Result<Response, ApiError> {
    require_user_admin(&caller)?;
    let body = body.parse()?;
    let email = validate_email(body.email.as_ref())?;
    let name = name_from_json(body.name.as_ref())?;
    let roles: Vec<OrgRole> = validate_roles("roles", body.roles.as_ref(), ORG_ROLE_NAMES)?;
    let password = match body.password {
        None | Some(Json::Null) => None,
        Some(Json::String(password)) => Some(password),
        Some(_) => return Err(Error::invalid("password", "must be a string").into()),
    };
    let person = NewPerson { organisation: caller.organisation, email, name, roles, password };
    let user = users::create_person(state.store.as_ref(), person).await?;
    let href = format!("{}/{}", uri.path(), user.id);
    Ok(respond(format, StatusCode::CREATED, Body::Resource { value: user_json(&user), self_href: href }))
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(("limit" = Option<u32>, Query), ("skip" = Option<u64>, Query)),
    responses(
        (status = 200, description = "The organisation's users, in the list shape", body = Page<UserView>),
        ApiError,
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
    let (next, previous) = PageRef::offsets(skip, limit, total);
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            items: users.iter().map(user_json).collect(),
            columns: USER_COLUMNS.map(str::to_owned).to_vec(),
            total,
            next,
            previous,
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/users/{userId}",
    tag = "users",
    params(("userId" = String, Path)),
    responses(
        (status = 204, description = "Deleted, with their API keys, tokens and memberships"),
        (status = 409, description = "The organisation's last admin (1004)", body = Problem, content_type = "application/problem+json"),
        ApiError,
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
