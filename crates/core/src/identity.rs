//! Who is calling, and what their roles let them do.

use serde::{Deserialize, Serialize};

use crate::ObjectId;

/// Organisation-wide roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrgRole {
    /// Everything in the organisation.
    Admin,
    /// May use the OData endpoint.
    Odata,
    /// May manage their own API keys.
    ApiKeys,
}

/// Roles within one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProjectRole {
    /// Read records and reports.
    Basic,
    /// Read, update and delete records.
    Analytics,
    /// Also manage the project.
    ProjectAdmin,
}

/// The user on whose behalf a request runs, resolved from its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: ObjectId,
    pub organisation: ObjectId,
    pub org_roles: Vec<OrgRole>,
}

/// What a caller may do in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProjectAccess {
    /// Read records and reports.
    Read,
    /// Also update, ingest and delete records.
    Write,
    /// Also change and delete the project.
    Manage,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.org_roles.contains(&OrgRole::Admin)
    }

    /// May create projects in the organisation.
    pub fn may_create_projects(&self) -> bool {
        self.is_admin()
    }

    /// May create and revoke their own API keys.
    pub fn may_manage_own_keys(&self) -> bool {
        self.is_admin() || self.org_roles.contains(&OrgRole::ApiKeys)
    }

    /// May read analytics through the OData endpoint.
    pub fn may_use_odata(&self) -> bool {
        self.is_admin() || self.org_roles.contains(&OrgRole::Odata)
    }

    /// The access given by the caller's roles in a project of their organisation; `None` means
    /// the project is invisible to them.
    pub fn project_access(&self, project_roles: &[ProjectRole]) -> Option<ProjectAccess> {
        if self.is_admin() {
            return Some(ProjectAccess::Manage);
        }
        project_roles
            .iter()
            .map(|role| match role {
                ProjectRole::Basic => ProjectAccess::Read,
                ProjectRole::Analytics => ProjectAccess::Write,
                ProjectRole::ProjectAdmin => ProjectAccess::Manage,
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: Vec<OrgRole>) -> Caller {
        Caller { user_id: ObjectId::generate(), organisation: ObjectId::generate(), org_roles: roles }
    }

    #[test]
    fn admins_manage_every_project() {
        assert_eq!(caller(vec![OrgRole::Admin]).project_access(&[]), Some(ProjectAccess::Manage));
    }

    #[test]
    fn project_roles_grade_access() {
        let user = caller(vec![]);
        assert_eq!(user.project_access(&[]), None);
        assert_eq!(user.project_access(&[ProjectRole::Basic]), Some(ProjectAccess::Read));
        assert_eq!(user.project_access(&[ProjectRole::Basic, ProjectRole::Analytics]), Some(ProjectAccess::Write));
        assert_eq!(user.project_access(&[ProjectRole::ProjectAdmin]), Some(ProjectAccess::Manage));
        assert!(!user.may_manage_own_keys());
        assert!(caller(vec![OrgRole::ApiKeys]).may_manage_own_keys());
    }

    #[test]
    fn odata_needs_its_role_or_admin() {
        assert!(caller(vec![OrgRole::Odata]).may_use_odata());
        assert!(caller(vec![OrgRole::Admin]).may_use_odata());
        assert!(!caller(vec![OrgRole::ApiKeys]).may_use_odata());
        assert!(!caller(vec![]).may_use_odata());
    }
}
