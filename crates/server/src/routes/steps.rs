//! Executed steps (docs/contract/conversations.md, "Steps and ExecutedSteps"): their ingest. They
//! are read over OData, with the step catalogue parley keeps from them.

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use parley_core::{Caller, ExecutedStep, NewStep, ObjectId, Project};
use serde_json::Value as Json;

use super::{IngestResult, NewRow};
use crate::extract::IngestBody;
use crate::negotiate::Format;
use crate::openapi::NewExecutedStepSchema;
use crate::problem::{ApiError, BodyRejection};
use crate::state::AppState;

impl NewRow for NewStep {
    type Stamped = ExecutedStep;

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewStep::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewStep::project_id(self)
    }

    /// Steps are analytics: a project that collects none drops them.
    fn collected(project: &Project) -> bool {
        project.settings.collect_analytics
    }

    fn stamp(self, project: &Project, now: time::OffsetDateTime) -> ExecutedStep {
        NewStep::stamp(self, project, now)
    }
}

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
    super::ingest::<NewStep>(&state, &caller, format, &uri, body, async |steps| state.store.insert_steps(steps).await)
        .await
}
