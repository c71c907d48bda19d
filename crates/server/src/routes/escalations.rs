//! Handovers to human agents (docs/contract/conversations.md, "LiveAgentEscalations"): their
//! ingest, each write merged into its escalation by event time. They are read over OData.

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use parley_core::{Caller, NewEscalation};

use super::IngestResult;
use crate::extract::IngestBody;
use crate::negotiate::Format;
use crate::openapi::EscalationWriteSchema;
use crate::problem::{ApiError, BodyRejection};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/analytics/escalations",
    tag = "conversations",
    request_body(content(
        (Vec<EscalationWriteSchema> = "application/json"),
        (EscalationWriteSchema = "application/x-ndjson"),
    ), description = "A JSON array of escalation writes, or one per line (NDJSON); at most 10 000 or 16 MiB. An escalation is sent again as its status changes"),
    responses(
        (status = 201, description = "Stored (durable), merged by event time; the sessions they name are up to date", body = IngestResult),
        (status = 200, description = "No escalation was new: each write changed one (updated) or nothing (duplicate), or was dropped", body = IngestResult),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /analytics/escalations`: validates the whole batch, then merges each write into its
/// escalation, in order, and brings the sessions they name up to date, in one transaction.
pub async fn ingest_escalations(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: IngestBody,
) -> Result<Response, ApiError> {
    super::ingest::<NewEscalation>(&state, &caller, format, &uri, body).await
}
