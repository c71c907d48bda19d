//! Organisations (tenants), each created with its first admin and the admin's API key.

use parley_core::value::now;
use parley_core::{ObjectId, OrgRole};
use parley_store::{NewUser, Organisation, Store, User, UserKind};

use super::ServiceError;
use super::apikeys::new_key;
use crate::password::{generate_password, hash_password};

/// What creating an organisation made; the secrets are shown once.
#[derive(Debug, Clone)]
pub struct CreatedOrganisation {
    pub id: ObjectId,
    pub admin_email: String,
    pub api_key: String,
    pub password: String,
}

/// Creates the organisation `name` with an admin (`admin_email`, normalised, and a generated
/// password) and the admin's API key, in one write.
pub async fn create_organisation(
    store: &dyn Store,
    name: String,
    admin_email: String,
) -> Result<CreatedOrganisation, ServiceError> {
    let created_at = now();
    let organisation = Organisation { id: ObjectId::generate(), name, created_at };
    let password = generate_password();
    let admin = User {
        id: ObjectId::generate(),
        organisation: organisation.id,
        email: admin_email.clone(),
        name: "Administrator".into(),
        roles: vec![OrgRole::Admin],
        kind: UserKind::Person,
        created_at,
    };
    let (key, api_key) = new_key(admin.id, "bootstrap".into());
    let password_hash = hash_password(password.clone()).await?;
    let id = organisation.id;
    store.create_organisation(organisation, NewUser { user: admin, password_hash: Some(password_hash) }, key).await?;
    Ok(CreatedOrganisation { id, admin_email, api_key, password })
}
