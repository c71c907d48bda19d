//! Health (docs/contract/operations.md): liveness of the process, readiness of the database.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::problem::ApiError;
use crate::state::AppState;

/// What a health probe answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` (live) or `ready`.
    pub status: String,
    /// `sqlite` or `postgres` (ready only).
    pub engine: Option<String>,
}

/// This build and the database it runs on.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Version {
    /// `parley`.
    pub name: String,
    pub version: String,
    /// `sqlite` or `postgres`.
    pub engine: String,
}

#[utoipa::path(get, path = "/health/live", tag = "health", security(), responses((status = 200, description = "The process answers", body = Health)))]
/// `GET /health/live`: the process answers.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/health/ready", tag = "health", security(), responses(
    (status = 200, description = "The database answers and its schema is current", body = Health),
    (status = 503, description = "The database is unavailable (503)", body = crate::problem::Problem, content_type = "application/problem+json"),
))]
/// `GET /health/ready`: the database answers and its schema is current; 503 otherwise.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ready().await?;
    Ok(Json(json!({ "status": "ready", "engine": state.store.engine() })))
}

#[utoipa::path(get, path = "/version", tag = "health", security(), responses(
    (status = 200, description = "This build and the database it runs on", body = Version),
))]
/// `GET /version`: this build and the engine it runs on.
pub async fn version(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "name": "parley", "version": env!("CARGO_PKG_VERSION"), "engine": state.store.engine() }))
}
