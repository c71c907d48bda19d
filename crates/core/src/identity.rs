//! Who is calling, and what their roles let them do.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::ObjectId;
use crate::error::{Error, Result};

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

    /// May create, list and delete the organisation's users.
    pub fn may_manage_users(&self) -> bool {
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

/// The longest email address (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// Passwords are at least this many characters long.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Passwords are at most this many bytes long, which bounds the work of hashing one.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// An email address as parley keeps it: trimmed and lower-cased, so that sign-in does not depend
/// on how it was capitalised. It needs one `@` with text on both sides and no white space; the
/// domain may be a bare host name (`admin@localhost`, the default admin).
pub fn normalise_email(text: &str) -> Result<String> {
    let email = text.trim().to_lowercase();
    let shaped = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
        None => false,
    };
    if !shaped || email.chars().any(char::is_whitespace) {
        return Err(Error::invalid("email", "must be an email address such as name@example.com"));
    }
    if email.chars().count() > MAX_EMAIL {
        return Err(Error::invalid("email", format!("must be at most {MAX_EMAIL} characters long")));
    }
    Ok(email)
}

/// An email address from a JSON body.
pub fn validate_email(value: Option<&Json>) -> Result<String> {
    match value {
        None | Some(Json::Null) => Err(Error::missing("email")),
        Some(Json::String(text)) => normalise_email(text),
        Some(_) => Err(Error::invalid("email", "must be a string")),
    }
}

/// Checks a new password's length; it is kept exactly as given.
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid("password", format!("must be at least {MIN_PASSWORD_CHARS} characters long")));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(Error::invalid("password", format!("must be at most {MAX_PASSWORD_CHARS} characters long")));
    }
    Ok(())
}

/// A list of role names from a JSON body (`field` names it in errors); duplicates collapse.
pub fn validate_roles<R: DeserializeOwned + PartialEq>(
    field: &str,
    value: Option<&Json>,
    known: &str,
) -> Result<Vec<R>> {
    let Some(Json::Array(items)) = value else {
        return Err(match value {
            None | Some(Json::Null) => Error::missing(field),
            Some(_) => Error::invalid(field, format!("must be a list of role names ({known})")),
        });
    };
    let mut roles = Vec::with_capacity(items.len());
    for item in items {
        let role: R = serde_json::from_value(item.clone())
            .map_err(|_| Error::invalid(field, format!("holds {item}, which is not one of {known}")))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// Organisation roles named in a list, as the CLI takes them (`admin,odata`).
pub fn parse_org_roles(list: &str) -> Result<Vec<OrgRole>> {
    let names: Vec<Json> =
        list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(|n| Json::String(n.to_owned())).collect();
    validate_roles("roles", Some(&Json::Array(names)), ORG_ROLE_NAMES)
}

/// The organisation roles, as error messages list them.
pub const ORG_ROLE_NAMES: &str = "admin, odata, apiKeys";
/// The project roles, as error messages list them.
pub const PROJECT_ROLE_NAMES: &str = "basic, analytics, projectAdmin";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalise_email("  Ada.Lovelace@Example.COM ").unwrap(), "ada.lovelace@example.com");
        assert_eq!(normalise_email("admin@localhost").unwrap(), "admin@localhost");
        for bad in ["", "ada", "@example.com", "ada@", "ada@.", "ada@@example.com", "a da@example.com", "ada@.com"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
        assert!(normalise_email(&format!("{}@example.com", "a".repeat(250))).is_err());
        // Characters are counted, not bytes: 254 two-byte ones fit.
        assert!(normalise_email(&format!("{}@é", "é".repeat(252))).is_ok());
        assert!(normalise_email(&format!("{}@é", "é".repeat(253))).is_err());
        assert_eq!(validate_email(None), Err(Error::missing("email")));
        assert!(validate_email(Some(&json!(7))).is_err());
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert!(validate_password(&"x".repeat(1025)).is_err());
        assert!(validate_password(&"é".repeat(1024)).is_ok(), "characters are counted, not bytes");
    }

    #[test]
    fn roles_are_named_exactly() {
        let roles: Vec<OrgRole> = validate_roles("roles", Some(&json!(["admin", "odata", "admin"])), "").unwrap();
        assert_eq!(roles, vec![OrgRole::Admin, OrgRole::Odata]);
        assert!(validate_roles::<OrgRole>("roles", Some(&json!(["Admin"])), "").is_err());
        assert!(validate_roles::<OrgRole>("roles", Some(&json!("admin")), "").is_err());
        assert_eq!(validate_roles::<OrgRole>("roles", None, ""), Err(Error::missing("roles")));
        let project: Vec<ProjectRole> = validate_roles("roles", Some(&json!(["projectAdmin"])), "").unwrap();
        assert_eq!(project, vec![ProjectRole::ProjectAdmin]);
        assert_eq!(parse_org_roles("admin, apiKeys").unwrap(), vec![OrgRole::Admin, OrgRole::ApiKeys]);
        assert_eq!(parse_org_roles("").unwrap(), Vec::<OrgRole>::new());
        assert!(parse_org_roles("root").is_err());
    }

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
