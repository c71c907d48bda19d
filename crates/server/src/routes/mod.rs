//! The HTTP resources, one module each, and the access check they share.

pub mod analytics;
pub mod apikeys;
pub mod health;
pub mod members;
pub mod oauth;
pub mod odata;
pub mod projects;
pub mod tasks;
pub mod users;

use parley_core::{Caller, ObjectId, Project, ProjectAccess};

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
