//! The caller's own API keys (docs/contract/rest.md §5): the secret is shown once, stored only as a hash.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_core::Caller;
use parley_core::name::name_from_json;
use parley_core::value::format_time;
use parley_store::ApiKeyInfo;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use crate::extract::{ApiJson, PageParams, PathId, QueryParams, WireType};
use crate::negotiate::Format;
use crate::problem::{ApiError, BodyRejection, ErrorCode};
use crate::represent::{Body, Collection, Page, PageRef, fields_of, respond};
use crate::service::apikeys::{CreatedKey, create_key};
use crate::state::AppState;

/// An API key as clients see it; `apiKey` only in the answer that creates it.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    #[serde(rename = "_id")]
    #[schema(rename = "_id")]
    id: String,
    name: String,
    #[serde(rename = "apiKey", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "apiKey")]
    api_key: Option<String>,
    #[serde(rename = "createdAt")]
    #[schema(rename = "createdAt")]
    created_at: String,
}

/// The body of `POST /users/me/apikeys`, the name kept as sent for the domain's validator.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    /// 1 to 200 characters, not blank.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    name: Option<Json>,
}

impl WireType for ApiKeyIn {
    const NOUN: &'static str = "an API key";
}

fn key_json(key: &ApiKeyInfo, secret: Option<String>) -> Map<String, Json> {
    let view = ApiKeyView {
        id: key.id.to_string(),
        name: key.name.clone(),
        api_key: secret,
        created_at: format_time(key.created_at),
    };
    fields_of(&view)
}

fn require_key_rights(caller: &Caller) -> Result<(), ApiError> {
    if caller.may_manage_own_keys() {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "Managing API keys needs the 'apiKeys' or 'admin' role."))
    }
}

#[utoipa::path(
    post,
    path = "/users/me/apikeys",
    tag = "apiKeys",
    request_body = ApiKeyIn,
    responses(
        (status = 201, description = "Created; apiKey is shown only now", body = ApiKeyView),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /users/me/apikeys {name}`.
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: ApiJson<ApiKeyIn>,
) -> Result<Response, ApiError> {
    require_key_rights(&caller)?;
    let name = name_from_json(body.parse()?.name.as_ref())?;
    let CreatedKey { info, secret } = create_key(state.store.as_ref(), caller.user_id, name).await?;
    let value = key_json(&info, Some(secret));
    let href = format!("{}/{}", uri.path(), info.id);
    Ok(respond(format, StatusCode::CREATED, Body::Resource { value, self_href: href }))
}

#[utoipa::path(
    get,
    path = "/users/me/apikeys",
    tag = "apiKeys",
    params(("limit" = Option<u32>, Query), ("skip" = Option<u64>, Query)),
    responses(
        (status = 200, description = "The caller's keys, without secrets", body = Page<ApiKeyView>),
        ApiError,
    )
)]
/// `GET /users/me/apikeys`: the caller's keys, without secrets.
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    require_key_rights(&caller)?;
    let (skip, limit) = params.parse()?;
    let keys = state.store.list_api_keys(caller.user_id).await?;
    let total = keys.len() as u64;
    let items = keys.iter().skip(skip as usize).take(limit as usize).map(|key| key_json(key, None)).collect();
    let (next, previous) = PageRef::offsets(skip, limit, total);
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            items,
            columns: ["_id", "name", "createdAt"].map(str::to_owned).to_vec(),
            total,
            next,
            previous,
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/users/me/apikeys/{apiKeyId}",
    tag = "apiKeys",
    params(("apiKeyId" = String, Path)),
    responses(
        (status = 204, description = "Revoked at once"),
        ApiError,
    )
)]
/// `DELETE /users/me/apikeys/{apiKeyId}`: revokes at once.
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    require_key_rights(&caller)?;
    if state.store.revoke_api_key(caller.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("API key"))
    }
}
