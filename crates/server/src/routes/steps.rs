//! Executed steps (docs/contract/conversations.md, "Steps and ExecutedSteps"): their ingest. They
//! are read over OData, with the step catalogue parley keeps from them.

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use parley_core::{Caller, NewStep};

use super::IngestResult;
use crate::extract::IngestBody;
use crate::negotiate::Format;
use crate::openapi::NewExecutedStepSchema;
use crate::problem::{ApiError, BodyRejection};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/analytics/steps",
    tag = "conversations",
    request_body(content(
        (Vec<NewExecutedStepSchema> = "application/json"),
        (NewExecutedStepSchema = "application/x-ndjson"),
    ), description = "A JSON array of executed steps, or one per line (NDJSON); at most 10 000 steps or 16 MiB"),
    responses(
        (status = 201, description = "Stored (durable); the step catalogue and the sessions they name are up to date", body = IngestResult),
        (status = 200, description = "Every step was a duplicate or dropped", body = IngestResult),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /analytics/steps`: validates the whole batch, then stores it, the step catalogue and the
/// sessions it names in one transaction.
pub async fn ingest_steps(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: IngestBody,
) -> Result<Response, ApiError> {
    super::ingest::<NewStep>(&state, &caller, format, &uri, body).await
}
