//! People: users who sign in, with an API key or a password.

use parley_core::identity::validate_password;
use parley_core::value::now;
use parley_core::{ObjectId, OrgRole};
use parley_store::{NewUser, Store, User, UserKind};

use super::ServiceError;
use crate::password::hash_password;

/// A person to create, from values already validated (the password's length is checked here).
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub organisation: ObjectId,
    /// Normalised.
    pub email: String,
    pub name: String,
    pub roles: Vec<OrgRole>,
    /// Without one, the person cannot sign in with a password.
    pub password: Option<String>,
}

/// Creates a person; an email already used in the organisation is a conflict
/// (`Constraint::UserEmail`).
pub async fn create_person(store: &dyn Store, person: NewPerson) -> Result<User, ServiceError> {
    let password_hash = match person.password {
        Some(password) => {
            validate_password(&password)?;
            Some(hash_password(password).await?)
        }
        None => None,
    };
    let user = User {
        id: ObjectId::generate(),
        organisation: person.organisation,
        email: person.email,
        name: person.name,
        roles: person.roles,
        kind: UserKind::Person,
        created_at: now(),
    };
    store.create_user(NewUser { user: user.clone(), password_hash }).await?;
    Ok(user)
}

/// Sets a person's password (checked like any new one) and ends their OAuth2 sessions; false
/// when the organisation has no such person.
pub async fn set_password(
    store: &dyn Store,
    organisation: ObjectId,
    user: ObjectId,
    password: String,
) -> Result<bool, ServiceError> {
    validate_password(&password)?;
    let hash = hash_password(password).await?;
    Ok(store.set_password(organisation, user, hash).await?)
}
