//! Goal events (docs/contract/conversations.md, "Goals"): their ingest, each event recorded
//! under the current version of its goal. They are read over OData, with the goal cycles they
//! make up.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use parley_core::goal::Goal;
use parley_core::{Caller, GoalEvent, NewGoalEvent, ObjectId, Project};
use serde_json::Value as Json;

use super::{IngestResult, NewRow};
use crate::extract::IngestBody;
use crate::negotiate::Format;
use crate::openapi::NewGoalEventSchema;
use crate::problem::{ApiError, BodyRejection};
use crate::state::AppState;

impl NewRow for NewGoalEvent {
    type Stamped = GoalEvent;

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewGoalEvent::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewGoalEvent::project_id(self)
    }

    /// Goal events are analytics: a project that collects none drops them.
    fn collected(project: &Project) -> bool {
        project.settings.collect_analytics
    }

    /// Each event names a goal of its project and a step of that goal: it takes the step's type
    /// and, unless sent, the goal's version.
    async fn prepare(state: &AppState, rows: &mut [Self]) -> Result<(), (usize, parley_core::Error)> {
        let mut goals: HashMap<(ObjectId, ObjectId), Option<Goal>> = HashMap::new();
        for (index, row) in rows.iter_mut().enumerate() {
            let key = (row.project_id(), row.goal_id());
            if let Entry::Vacant(slot) = goals.entry(key) {
                slot.insert(state.store.goals(key.0, Some(key.1)).await.map_err(|e| (index, e.into()))?.pop());
            }
            row.record_under(goals[&key].as_ref()).map_err(|e| (index, e))?;
        }
        Ok(())
    }

    fn stamp(self, project: &Project, now: time::OffsetDateTime) -> GoalEvent {
        NewGoalEvent::stamp(self, project, now)
    }
}

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
    super::ingest::<NewGoalEvent>(&state, &caller, format, &uri, body, async |events| {
        state.store.insert_goal_events(events).await
    })
    .await
}
