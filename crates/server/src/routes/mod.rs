//! The HTTP resources, one module each, and the access check they share.

pub mod analytics;
pub mod apikeys;
pub mod conversations;
pub mod escalations;
pub mod goal_events;
pub mod goals;
pub mod health;
pub mod insights;
pub mod members;
pub mod oauth;
pub mod odata;
pub mod projects;
pub mod steps;
pub mod tasks;
pub mod users;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use parley_core::{Caller, ObjectId, Project, ProjectAccess};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::{IngestBody, at_row};
use crate::ingest::{NewRow, Refused, Stored, store_rows};
use crate::negotiate::Format;
use crate::problem::{ApiError, ErrorCode};
use crate::represent::{Body, fields_of, respond};
use crate::state::AppState;

/// The decoded pairs of a query string, in order.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| ApiError::from(parley_core::Error::invalid("query", format!("is not a valid query string: {e}"))))
}

/// An id from a path; a malformed one reads as "not found" (`what`), like an unknown one.
pub fn path_id(text: &str, what: &str) -> Result<ObjectId, ApiError> {
    ObjectId::parse(text).map_err(|_| ApiError::not_found(what))
}

/// The project, if the caller may see it and has at least `needed` in it. An unknown project and
/// one the caller may not see answer the same 404, so that other tenants' ids cannot be probed.
pub async fn require_project(
    state: &AppState,
    caller: &Caller,
    id: ObjectId,
    needed: ProjectAccess,
) -> Result<Project, ApiError> {
    let Some((project, access)) = state.store.project_for(caller, id).await? else {
        return Err(ApiError::not_found("project"));
    };
    if access < needed {
        let what = match needed {
            ProjectAccess::Read => "read records in",
            ProjectAccess::Write => "write analytics in",
            ProjectAccess::Manage => "manage",
        };
        return Err(ApiError::new(ErrorCode::Forbidden, format!("You may not {what} this project.")));
    }
    Ok(project)
}

/// The projects a batch of ingested rows names, each one the caller may write analytics in, by
/// id. A project refused names the first row that named it (`index`, field `projectId`).
pub async fn writable_projects(
    state: &AppState,
    caller: &Caller,
    named: impl Iterator<Item = ObjectId>,
) -> Result<HashMap<ObjectId, Project>, ApiError> {
    let mut projects: HashMap<ObjectId, Project> = HashMap::new();
    for (index, id) in named.enumerate() {
        if let Entry::Vacant(slot) = projects.entry(id) {
            let project = require_project(state, caller, id, ProjectAccess::Write).await.map_err(|mut e| {
                e.details.insert("index".into(), index.into());
                e.details.insert("field".into(), "projectId".into());
                e
            })?;
            slot.insert(project);
        }
    }
    Ok(projects)
}

/// The counts of an ingest.
#[derive(Serialize, ToSchema)]
pub struct IngestResult {
    pub inserted: u64,
    pub duplicates: u64,
    /// Rows dropped because the project does not collect them (`collectAnalytics`,
    /// `collectConversations`).
    pub dropped: u64,
    /// Escalations that existed and that the batch changed (escalation ingest only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
}

/// An ingest (rest.md §2, and conversations.md for the other collections): validates the whole
/// batch, checks that the caller may write every project it names, then has [`store_rows`] stamp
/// and store it in one transaction, and answers the counts, `201` when anything was inserted.
pub async fn ingest<R: NewRow>(
    state: &AppState,
    caller: &Caller,
    format: Format,
    uri: &Uri,
    body: IngestBody,
) -> Result<Response, ApiError> {
    let lines = body.lines();
    let rows = body.parse_rows(R::parse)?;
    let projects = writable_projects(state, caller, rows.iter().map(R::project_id)).await?;
    let Stored { counts, dropped } =
        store_rows(state.store.as_ref(), &projects, rows).await.map_err(|refused| match refused {
            Refused::Row(index, e) => ApiError::from(at_row(e, index, lines.as_deref())),
            Refused::Store(e) => ApiError::from(e),
        })?;
    for (outcome, n) in [
        ("inserted", counts.inserted),
        ("duplicate", counts.duplicates),
        ("dropped", dropped),
        ("updated", counts.updated),
    ] {
        state.metrics.rows(R::COLLECTION, outcome, n);
    }
    let status = if counts.inserted > 0 { StatusCode::CREATED } else { StatusCode::OK };
    let updated = R::UPDATES.then_some(counts.updated);
    let value = fields_of(&IngestResult { inserted: counts.inserted, duplicates: counts.duplicates, dropped, updated });
    Ok(respond(format, status, Body::Resource { value, self_href: uri.path().to_owned() }))
}
