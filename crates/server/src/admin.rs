//! What the operator's subcommands do (`parley organisations|users|keys|oauth-clients …`): they
//! parse the command line's text, find what it names, and call the service layer that the API
//! calls too, so that the binary only parses arguments and prints.

use parley_core::id::InvalidId;
use parley_core::identity::{normalise_email, parse_org_roles};
use parley_core::name::validate_name;
use parley_core::{ObjectId, OrgRole};
use parley_store::{ApiKeyInfo, Organisation, Store, StoreError, User};

use crate::password::generate_password;
use crate::service::ServiceError;
use crate::service::apikeys::{self, CreatedKey};
use crate::service::oauth::{self, CreatedClient};
use crate::service::organisations::{self, CreatedOrganisation};
use crate::service::users::{self, NewPerson};

/// Why a subcommand failed, in one line for the operator; the cause is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("--organisation {0}")]
    OrganisationId(#[source] InvalidId),
    #[error("the key id {0}")]
    KeyId(#[source] InvalidId),
    #[error("no organisation {0}")]
    NoSuchOrganisation(ObjectId),
    #[error("there is no organisation yet; run `parley serve` once or `parley organisations create`")]
    NoOrganisation,
    #[error("there are several organisations; name one with --organisation ({0})")]
    SeveralOrganisations(String),
    #[error("no user {email} in organisation {organisation}")]
    NoSuchUser { email: String, organisation: ObjectId },
    #[error("no API key {0}")]
    NoSuchKey(ObjectId),
}

impl From<parley_core::Error> for AdminError {
    fn from(error: parley_core::Error) -> Self {
        AdminError::Service(error.into())
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        AdminError::Service(error.into())
    }
}

/// The organisation a subcommand acts in: the one named, or the only one there is.
pub async fn organisation(store: &dyn Store, named: Option<&str>) -> Result<Organisation, AdminError> {
    let mut all = store.list_organisations().await?;
    match named {
        Some(text) => {
            let id = ObjectId::parse(text).map_err(AdminError::OrganisationId)?;
            all.into_iter().find(|o| o.id == id).ok_or(AdminError::NoSuchOrganisation(id))
        }
        None if all.len() > 1 => Err(AdminError::SeveralOrganisations(
            all.iter().map(|o| format!("{} {}", o.id, o.name)).collect::<Vec<_>>().join(", "),
        )),
        None => all.pop().ok_or(AdminError::NoOrganisation),
    }
}

/// A person of an organisation, by email.
pub async fn person(store: &dyn Store, organisation: ObjectId, email: &str) -> Result<User, AdminError> {
    let email = normalise_email(email)?;
    store
        .people_by_email(&email)
        .await?
        .into_iter()
        .map(|(user, _)| user)
        .find(|user| user.organisation == organisation)
        .ok_or(AdminError::NoSuchUser { email, organisation })
}

/// `parley organisations create NAME --admin-email EMAIL`: the organisation, its admin (with a
/// generated password) and the admin's API key.
pub async fn create_organisation(
    store: &dyn Store,
    name: &str,
    admin_email: &str,
) -> Result<CreatedOrganisation, AdminError> {
    let name = validate_name(name)?;
    let admin_email = normalise_email(admin_email)?;
    Ok(organisations::create_organisation(store, name, admin_email).await?)
}

/// `parley users create`: a person; the password is generated unless given. Returns the user
/// and the generated password.
pub async fn create_user(
    store: &dyn Store,
    organisation: ObjectId,
    email: &str,
    name: &str,
    roles: &str,
    password: Option<String>,
) -> Result<(User, Option<String>), AdminError> {
    let email = normalise_email(email)?;
    let name = validate_name(name)?;
    let roles: Vec<OrgRole> = parse_org_roles(roles)?;
    let generated = password.is_none().then(generate_password);
    let password = password.or_else(|| generated.clone());
    let user = users::create_person(store, NewPerson { organisation, email, name, roles, password }).await?;
    Ok((user, generated))
}

/// `parley users list`: the users of an organisation, oldest first.
pub async fn list_users(store: &dyn Store, organisation: ObjectId) -> Result<Vec<User>, AdminError> {
    let mut all = Vec::new();
    loop {
        let (page, total) = store.list_users(organisation, all.len() as u64, 100).await?;
        let done = page.is_empty() || all.len() as u64 + page.len() as u64 >= total;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// `parley users reset-password`: a new password for a person (generated unless given); their
/// OAuth2 sessions end. Returns the generated password.
pub async fn reset_password(
    store: &dyn Store,
    organisation: ObjectId,
    email: &str,
    password: Option<String>,
) -> Result<Option<String>, AdminError> {
    let user = person(store, organisation, email).await?;
    let generated = password.is_none().then(generate_password);
    let password = password.or_else(|| generated.clone()).unwrap_or_default();
    if !users::set_password(store, organisation, user.id, password).await? {
        return Err(AdminError::NoSuchUser { email: user.email, organisation });
    }
    Ok(generated)
}

/// Rows under a header, each column as wide as its widest cell, for the listing commands.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// `parley keys create`: a key for a user; returns its info and secret.
pub async fn create_key(store: &dyn Store, user: ObjectId, name: &str) -> Result<(ApiKeyInfo, String), AdminError> {
    let name = validate_name(name)?;
    let CreatedKey { info, secret } = apikeys::create_key(store, user, name).await?;
    Ok((info, secret))
}

/// `parley keys revoke KEY_ID`: revokes any user's key at once.
pub async fn revoke_key(store: &dyn Store, key: &str) -> Result<(), AdminError> {
    let key = ObjectId::parse(key).map_err(AdminError::KeyId)?;
    let owner = store.api_key_owner(key).await?.ok_or(AdminError::NoSuchKey(key))?;
    if store.revoke_api_key(owner, key).await? { Ok(()) } else { Err(AdminError::NoSuchKey(key)) }
}

/// `parley oauth-clients create NAME --roles …`: a confidential client for the
/// `client_credentials` grant, acting as a new service user with these organisation roles.
pub async fn create_client(
    store: &dyn Store,
    organisation: ObjectId,
    name: &str,
    roles: &str,
) -> Result<CreatedClient, AdminError> {
    let name = validate_name(name)?;
    let roles = parse_org_roles(roles)?;
    Ok(oauth::create_client(store, organisation, name, roles).await?)
}
