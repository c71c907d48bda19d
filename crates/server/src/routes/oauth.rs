//! OAuth2 (docs/contract/rest.md §5): `POST /auth/oauth2/token` with the `password`, `refresh_token` and
//! `client_credentials` grants, and `POST /auth/oauth2/revoke` (RFC 7009). These two endpoints
//! answer failures in OAuth2's own format (RFC 6749 §5.2: `{error, error_description}`), which
//! OAuth2 clients expect, rather than in the problem format of the rest of the API.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use parley_core::value::now;
use parley_core::{Caller, ObjectId};
use parley_store::{GrantType, NewRefreshToken, OAuthClient, RefreshOutcome, TokenSession, User};
use serde_json::json;
use subtle::ConstantTimeEq;
use time::Duration;

use crate::auth::form_decoded;
use crate::auth::hash_api_key as sha256;
use crate::password::verify_password;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::tokens::{ACCESS_TOKEN_SECONDS, REFRESH_TOKEN_SECONDS, generate_refresh_token, looks_like_jwt};

/// The largest form accepted.
const FORM_LIMIT: usize = 16 * 1024;

/// An OAuth2 error (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status, error, description: description.into() }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
}

impl From<ApiError> for OAuthError {
    /// A failure of parley's own (storage unavailable, internal error) keeps its status; the
    /// body says `server_error` or `temporarily_unavailable` in OAuth2's terms.
    fn from(error: ApiError) -> Self {
        let status = error.code.status();
        let code = if status == StatusCode::SERVICE_UNAVAILABLE { "temporarily_unavailable" } else { "server_error" };
        OAuthError::new(status, code, error.detail)
    }
}

impl From<parley_store::StoreError> for OAuthError {
    fn from(error: parley_store::StoreError) -> Self {
        OAuthError::from(ApiError::from(error))
    }
}

impl From<parley_core::Error> for OAuthError {
    fn from(error: parley_core::Error) -> Self {
        OAuthError::from(ApiError::from(error))
    }
}

fn no_store(response: &mut Response) {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"parley\""));
        }
        no_store(&mut response);
        response
    }
}

/// The parameters of a form body, each at most once (RFC 6749 §3.2).
pub struct Form {
    params: HashMap<String, String>,
    headers: HeaderMap,
}

impl Form {
    /// A parameter; an empty value counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("The parameter '{name}' is required.")))
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = OAuthError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let media = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let json = media.as_deref() == Some("application/json");
        if !json && media.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("The body must be application/x-www-form-urlencoded."));
        }
        let headers = request.headers().clone();
        let bytes: Bytes = axum::body::to_bytes(request.into_body(), FORM_LIMIT)
            .await
            .map_err(|_| OAuthError::invalid_request(format!("The body is larger than {FORM_LIMIT} bytes.")))?;
        let pairs: Vec<(String, String)> = if json {
            let object = match crate::json::parse(&bytes) {
                Ok(serde_json::Value::Object(object)) => object,
                Err(crate::json::JsonError::DuplicateKey { path, .. }) => {
                    return Err(OAuthError::invalid_request(format!("The key '{path}' appears twice in the body.")));
                }
                Err(crate::json::JsonError::Nul { path }) => {
                    return Err(OAuthError::invalid_request(format!("'{path}' holds the NUL character (U+0000).")));
                }
                Ok(_) | Err(crate::json::JsonError::Syntax(_)) => {
                    return Err(OAuthError::invalid_request("The body is not a JSON object."));
                }
            };
            object
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                .collect()
        } else {
            serde_urlencoded::from_bytes(&bytes).map_err(|_| OAuthError::invalid_request("The form is malformed."))?
        };
        let mut params = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if name.contains('\0') || value.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "The parameter '{}' holds the NUL character (U+0000).",
                    name.replace('\0', "\\0")
                )));
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!("The parameter '{name}' is given more than once.")));
            }
        }
        Ok(Form { params, headers })
    }
}

/// The client the request authenticates as: HTTP Basic, or `client_id` and `client_secret` in
/// the form (RFC 6749 §2.3.1). A public client sends its id with an empty or absent secret.
async fn authenticate_client(state: &AppState, form: &Form) -> Result<OAuthClient, OAuthError> {
    let basic = form.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|value| {
        let (scheme, encoded) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| encoded.trim().to_owned())
    });
    let (id, secret) = match basic {
        Some(encoded) => {
            if form.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "Send the client's secret either in the Authorization header or in the form, not both.",
                ));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_client("The Basic credentials are malformed."))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("The Basic credentials are malformed."))?;
            (form_decoded(id), form_decoded(secret))
        }
        None => (
            form.get("client_id").map(str::to_owned).unwrap_or_default(),
            form.get("client_secret").map(str::to_owned).unwrap_or_default(),
        ),
    };
    if id.is_empty() {
        return Err(OAuthError::invalid_client("No client identified: send client_id."));
    }
    let unknown = || OAuthError::invalid_client("The client is unknown or its secret is wrong.");
    let client = state.store.oauth_client(&id).await?.ok_or_else(unknown)?;
    let authentic = match (&client.secret_hash, secret.is_empty()) {
        (None, true) => true,
        (None, false) => false,
        (Some(_), true) => false,
        (Some(stored), false) => bool::from(stored.ct_eq(&sha256(&secret))),
    };
    if !authentic {
        return Err(unknown());
    }
    Ok(client)
}

/// The form of `POST /auth/oauth2/token`, as documented: `grant_type` and the parameters of the
/// grants (RFC 6749), each sent once.
pub struct TokenForm;

impl utoipa::PartialSchema for TokenForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let grants = ["password", "refresh_token", "client_credentials"];
        let mut form = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("grant_type", text().enum_values(Some(grants)))
            .required("grant_type")
            .additional_properties(Some(AdditionalProperties::RefOr(text().into())));
        for name in ["username", "password", "refresh_token", "client_id", "client_secret", "scope"] {
            form = form.property(name, text());
        }
        form.into()
    }
}

impl utoipa::ToSchema for TokenForm {}

#[utoipa::path(
    post,
    path = "/auth/oauth2/token",
    tag = "oauth2",
    security(),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded",
        description = "grant_type (password, refresh_token or client_credentials) and that grant's parameters (RFC 6749); the client's credentials here or as HTTP Basic"),
    responses(
        (status = 200, description = "access_token, token_type (Bearer), expires_in, and a refresh_token for the password and refresh_token grants"),
        (status = 400, description = "An OAuth2 error body (RFC 6749 §5.2): invalid_request, invalid_grant, unauthorized_client or unsupported_grant_type"),
        (status = 401, description = "An OAuth2 error body: invalid_client"),
        (status = 503, description = "An OAuth2 error body: temporarily_unavailable"),
    )
)]
/// `POST /auth/oauth2/token`.
pub async fn token(State(state): State<AppState>, form: Form) -> Result<Response, OAuthError> {
    let grant = match form.required("grant_type")? {
        "password" => GrantType::Password,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        other => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "The grant type '{other}' is not supported; use password, refresh_token or client_credentials."
                ),
            ));
        }
    };
    let client = authenticate_client(&state, &form).await?;
    if !client.grants.contains(&grant) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "This client may not use this grant type.",
        ));
    }
    let answer = match grant {
        GrantType::Password => password_grant(&state, &form, &client).await?,
        GrantType::RefreshToken => refresh_grant(&state, &form, &client).await?,
        GrantType::ClientCredentials => client_credentials_grant(&state, &client).await?,
    };
    let mut response = axum::Json(answer).into_response();
    no_store(&mut response);
    Ok(response)
}

/// The answer of a successful grant.
fn token_answer(access_token: String, refresh_token: Option<String>) -> serde_json::Value {
    let mut answer =
        json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS });
    if let Some(refresh) = refresh_token {
        answer["refresh_token"] = refresh.into();
    }
    answer
}

/// Starts a session for a user and issues its first tokens.
async fn issue(
    state: &AppState,
    caller: &Caller,
    client: &OAuthClient,
    with_refresh: bool,
) -> Result<serde_json::Value, OAuthError> {
    let issued_at = now();
    let refresh = with_refresh.then(generate_refresh_token);
    let lifetime = if with_refresh { REFRESH_TOKEN_SECONDS } else { ACCESS_TOKEN_SECONDS };
    let session = TokenSession {
        id: ObjectId::generate(),
        user_id: caller.user_id,
        client_id: client.id.clone(),
        created_at: issued_at,
        expires_at: issued_at + Duration::seconds(lifetime),
    };
    let stored =
        refresh.as_ref().map(|secret| NewRefreshToken { hash: sha256(secret), expires_at: session.expires_at });
    let access = state.tokens.issue(caller.user_id, caller.organisation, session.id, &client.id, issued_at)?;
    state.store.start_session(session, stored).await?;
    Ok(token_answer(access, refresh))
}

/// The `password` grant. The username is the user's email. A person with accounts in several
/// organisations picks one with the `organisation-id` header; without it, the oldest account
/// whose password matches is used.
async fn password_grant(state: &AppState, form: &Form, client: &OAuthClient) -> Result<serde_json::Value, OAuthError> {
    let username = form.required("username")?;
    let password = form.required("password")?.to_owned();
    let organisation = match form.headers.get("organisation-id") {
        None => None,
        Some(value) => {
            Some(value.to_str().ok().map(str::trim).and_then(|text| ObjectId::parse(text).ok()).ok_or_else(|| {
                OAuthError::invalid_request(
                    "The organisation-id header must be an organisation id (24 hexadecimal characters).",
                )
            })?)
        }
    };
    let refused = || OAuthError::invalid_grant("The username or password is wrong.");
    let candidates: Vec<(User, Option<String>)> = match parley_core::identity::normalise_email(username) {
        Ok(email) => state.store.people_by_email(&email).await?,
        Err(_) => Vec::new(),
    };
    let candidates: Vec<_> =
        candidates.into_iter().filter(|(user, _)| organisation.is_none_or(|org| user.organisation == org)).collect();
    if candidates.is_empty() {
        // As slow as a real check, so that timing does not tell which emails exist.
        verify_password(password, None).await;
        return Err(refused());
    }
    for (user, hash) in candidates {
        if verify_password(password.clone(), hash).await {
            return issue(state, &user.caller(), client, true).await;
        }
    }
    Err(refused())
}

/// The `refresh_token` grant: the token is used up and a new one answered with the access token.
async fn refresh_grant(state: &AppState, form: &Form, client: &OAuthClient) -> Result<serde_json::Value, OAuthError> {
    let presented = sha256(form.required("refresh_token")?);
    let issued_at = now();
    let refresh = generate_refresh_token();
    let successor =
        NewRefreshToken { hash: sha256(&refresh), expires_at: issued_at + Duration::seconds(REFRESH_TOKEN_SECONDS) };
    match state.store.rotate_refresh_token(presented, successor, issued_at).await? {
        RefreshOutcome::Rotated { session, caller } => {
            if session.client_id != client.id {
                // Another client holds this client's token: it leaked.
                state.store.revoke_session(session.id).await?;
                return Err(OAuthError::invalid_grant("The refresh token was issued to another client."));
            }
            let access = state.tokens.issue(caller.user_id, caller.organisation, session.id, &client.id, issued_at)?;
            Ok(token_answer(access, Some(refresh)))
        }
        RefreshOutcome::Reused => Err(OAuthError::invalid_grant(
            "The refresh token has been used before; its session is revoked. Sign in again.",
        )),
        RefreshOutcome::Invalid => Err(OAuthError::invalid_grant("The refresh token is unknown, revoked or expired.")),
    }
}

/// The `client_credentials` grant: a confidential client acts as its service user. RFC 6749
/// §4.4.3 gives it no refresh token; it asks again instead.
async fn client_credentials_grant(state: &AppState, client: &OAuthClient) -> Result<serde_json::Value, OAuthError> {
    let Some(user_id) = client.user_id else {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "A public client has no credentials of its own.",
        ));
    };
    // The session is made first, then read back with its user, so that the token carries the
    // user's organisation as stored.
    let issued_at = now();
    let session = TokenSession {
        id: ObjectId::generate(),
        user_id,
        client_id: client.id.clone(),
        created_at: issued_at,
        expires_at: issued_at + Duration::seconds(ACCESS_TOKEN_SECONDS),
    };
    let session_id = session.id;
    state.store.start_session(session, None).await?;
    let caller = state
        .store
        .session_caller(session_id, user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("The client's service user no longer exists."))?;
    let access = state.tokens.issue(caller.user_id, caller.organisation, session_id, &client.id, issued_at)?;
    Ok(token_answer(access, None))
}

/// The form of `POST /auth/oauth2/revoke`, as documented: `token`, and whatever else RFC 7009
/// lets a client send beside it (`token_type_hint`), which is ignored.
pub struct RevokeForm;

impl utoipa::PartialSchema for RevokeForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let token = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
        // A parameter is sent once (RFC 6749 §3.1): each is one string.
        let other = ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("token", token)
            .required("token")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(other.into())))
            .into()
    }
}

impl utoipa::ToSchema for RevokeForm {}

#[utoipa::path(
    post,
    path = "/auth/oauth2/revoke",
    tag = "oauth2",
    security(),
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded", description = "token: an access or refresh token (RFC 7009)"),
    responses(
        (status = 200, description = "Revoked, or not known: the answer is the same"),
        (status = 400, description = "An OAuth2 error body (RFC 6749 §5.2): invalid_request"),
        (status = 503, description = "An OAuth2 error body: temporarily_unavailable"),
    )
)]
/// `POST /auth/oauth2/revoke {token}` (RFC 7009): revokes the session of an access or refresh
/// token, with every token of that session. Answers 200 whether or not the token was known, so
/// that it tells nothing. Holding the token is enough to revoke it.
pub async fn revoke(State(state): State<AppState>, form: Form) -> Result<Response, OAuthError> {
    let token = form.required("token")?;
    if looks_like_jwt(token) {
        if let Some(session) = state.tokens.verify_signature_only(token).and_then(|c| ObjectId::parse(&c.sid).ok()) {
            state.store.revoke_session(session).await?;
        }
    } else {
        state.store.revoke_refresh_token(sha256(token)).await?;
    }
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}
