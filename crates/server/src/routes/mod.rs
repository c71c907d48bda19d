//! The HTTP resources, one module each, and the access check they share.

pub mod analytics;
pub mod apikeys;
pub mod conversations;
pub mod health;
pub mod members;
pub mod oauth;
pub mod odata;
pub mod projects;
pub mod tasks;
pub mod users;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use parley_core::{Caller, ObjectId, Project, ProjectAccess};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{ApiError, ErrorCode};
use crate::state::AppState;

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
}
