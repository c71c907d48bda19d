//! The first start: one organisation, an `admin` user with a password and an API key (docs/contract/rest.md §5);
//! and on every start, the access token signing key shared through the database.

use parley_core::value::now;
use parley_core::{ObjectId, OrgRole};
use parley_store::{Bootstrap, NewApiKey, Store};

use crate::auth::{generate_api_key, hash_api_key};
use crate::config::Config;
use crate::password::{generate_password, hash_password};
use crate::tokens::AccessTokens;

/// What the first start made; `None` on later starts.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub organisation: ObjectId,
    pub admin_email: String,
    /// The admin's API key when parley generated it (it is shown once); `None` when the operator
    /// gave it in `PARLEY_ADMIN_API_KEY`.
    pub generated_api_key: Option<String>,
    /// The admin's password when parley generated it (it is shown once); `None` when the operator
    /// gave it in `PARLEY_ADMIN_PASSWORD`.
    pub generated_password: Option<String>,
}

/// Why a start could not prepare the store.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{0}")]
    Store(#[from] parley_store::StoreError),
    #[error("{0}")]
    Domain(#[from] parley_core::Error),
}

/// The access token signer, with the key stored in the database (made now if there is none).
pub async fn access_tokens(store: &dyn Store) -> Result<AccessTokens, parley_store::StoreError> {
    let key = store.signing_key(rand::random::<[u8; 32]>().to_vec()).await?;
    Ok(AccessTokens::new(&key))
}

/// Creates the bootstrap organisation, admin and key unless the store has an organisation.
pub async fn bootstrap(store: &dyn Store, config: &Config) -> Result<Option<FirstStart>, BootstrapError> {
    if !store.list_organisations().await?.is_empty() {
        return Ok(None);
    }
    let (secret, generated) = match &config.admin_api_key {
        Some(key) => (key.clone(), false),
        None => (generate_api_key(), true),
    };
    let (password, generated_password) = match &config.admin_password {
        Some(password) => (password.clone(), false),
        None => (generate_password(), true),
    };
    let admin_email = parley_core::identity::normalise_email(&config.admin_email)?;
    let password_hash = hash_password(password.clone()).await?;
    let organisation = ObjectId::generate();
    let admin = ObjectId::generate();
    let created = store
        .bootstrap(Bootstrap {
            organisation_id: organisation,
            organisation_name: "Default organisation".into(),
            admin_id: admin,
            admin_email: admin_email.clone(),
            admin_password_hash: Some(password_hash),
            admin_roles: vec![OrgRole::Admin],
            api_key: NewApiKey {
                id: ObjectId::generate(),
                user_id: admin,
                name: "bootstrap".into(),
                secret_hash: hash_api_key(&secret),
                created_at: now(),
            },
        })
        .await?;
    Ok(created.then(|| FirstStart {
        organisation,
        admin_email,
        generated_api_key: generated.then_some(secret),
        generated_password: generated_password.then_some(password),
    }))
}
