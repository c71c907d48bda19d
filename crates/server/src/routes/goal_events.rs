//! Goal events (docs/contract/conversations.md, "Goals"): their ingest, each event recorded
//! under the current version of its goal. They are read over OData, with the goal cycles they
//! make up.

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use parley_core::{Caller, NewGoalEvent};

use super::IngestResult;
use crate::extract::IngestBody;
use crate::negotiate::Format;
use crate::openapi::NewGoalEventSchema;
use crate::problem::{ApiError, BodyRejection};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/analytics/goalevents",
    tag = "conversations",
    request_body(content(
        (Vec<NewGoalEventSchema> = "application/json"),
        (NewGoalEventSchema = "application/x-ndjson"),
    ), description = "A JSON array of goal events, or one per line (NDJSON); at most 10 000 events or 16 MiB"),
    responses(
        (status = 201, description = "Stored (durable); the sessions they name are up to date", body = IngestResult),
        (status = 200, description = "Every event was a duplicate or dropped", body = IngestResult),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /analytics/goalevents`: validates the whole batch against the goals it names, then
/// stores it and the sessions it names in one transaction.
pub async fn ingest_goal_events(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: IngestBody,
) -> Result<Response, ApiError> {
    super::ingest::<NewGoalEvent>(&state, &caller, format, &uri, body).await
}
