//! The first start: one organisation, an `admin` user and an API key (rest.md §5).

use parley_core::value::now;
use parley_core::{ObjectId, OrgRole};
use parley_store::{Bootstrap, NewApiKey, Store};

use crate::auth::{generate_api_key, hash_api_key};
use crate::config::Config;

/// What the first start made; `None` on later starts.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub organisation: ObjectId,
    pub admin_email: String,
    /// The admin's API key when parley generated it (it is shown once); `None` when the operator
    /// gave it in `PARLEY_ADMIN_API_KEY`.
    pub generated_api_key: Option<String>,
}

/// Creates the bootstrap organisation, admin and key unless the store has an organisation.
pub async fn bootstrap(store: &dyn Store, config: &Config) -> Result<Option<FirstStart>, parley_store::StoreError> {
    let (secret, generated) = match &config.admin_api_key {
        Some(key) => (key.clone(), false),
        None => (generate_api_key(), true),
    };
    let organisation = ObjectId::generate();
    let admin = ObjectId::generate();
    let created = store
        .bootstrap(Bootstrap {
            organisation_id: organisation,
            organisation_name: "Default organisation".into(),
            admin_id: admin,
            admin_email: config.admin_email.clone(),
            admin_password_hash: None,
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
        admin_email: config.admin_email.clone(),
        generated_api_key: generated.then_some(secret),
    }))
}
