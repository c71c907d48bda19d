//! API keys: a secret shown once, stored only as its hash.

use parley_core::ObjectId;
use parley_core::value::now;
use parley_store::{ApiKeyInfo, NewApiKey, Store};

use super::ServiceError;
use crate::auth::{generate_api_key, hash_api_key};

/// A key newly made for a user: what is stored, and the secret, which is never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub info: ApiKeyInfo,
    pub secret: String,
}

/// The stored form of a new key named `name` for `user`, and its secret.
pub(crate) fn new_key(user: ObjectId, name: String) -> (NewApiKey, String) {
    let secret = generate_api_key();
    let key = NewApiKey {
        id: ObjectId::generate(),
        user_id: user,
        name,
        secret_hash: hash_api_key(&secret),
        created_at: now(),
    };
    (key, secret)
}

/// Creates a key named `name` (already validated) for `user`.
pub async fn create_key(store: &dyn Store, user: ObjectId, name: String) -> Result<CreatedKey, ServiceError> {
    let (key, secret) = new_key(user, name);
    let info = store.create_api_key(key).await?;
    Ok(CreatedKey { info, secret })
}
