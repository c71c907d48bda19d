//! OAuth2 clients registered by an operator.

use parley_core::value::now;
use parley_core::{ObjectId, OrgRole};
use parley_store::{GrantType, NewUser, OAuthClient, Store, User, UserKind};

use super::ServiceError;
use crate::auth::{generate_api_key, hash_api_key};

/// What registering a client made; the secret is shown once.
#[derive(Debug, Clone)]
pub struct CreatedClient {
    pub client_id: String,
    pub client_secret: String,
    pub service_user: ObjectId,
    pub roles: Vec<OrgRole>,
}

/// Registers a confidential client for the `client_credentials` grant, named `name` (already
/// validated), acting as a new service user of `organisation` with these roles.
pub async fn create_client(
    store: &dyn Store,
    organisation: ObjectId,
    name: String,
    roles: Vec<OrgRole>,
) -> Result<CreatedClient, ServiceError> {
    let created_at = now();
    let client_id = ObjectId::generate().to_string();
    let service_user = User {
        id: ObjectId::generate(),
        organisation,
        // Service users never sign in; the address only has to be unique and visibly not a person's.
        email: format!("{client_id}@oauth-clients.invalid"),
        name: name.clone(),
        roles: roles.clone(),
        kind: UserKind::Service,
        created_at,
    };
    let client_secret = generate_api_key();
    let client = OAuthClient {
        id: client_id.clone(),
        name,
        secret_hash: Some(hash_api_key(&client_secret)),
        user_id: Some(service_user.id),
        grants: vec![GrantType::ClientCredentials],
        created_at,
    };
    let service_user_id = service_user.id;
    store.create_oauth_client(client, NewUser { user: service_user, password_hash: None }).await?;
    Ok(CreatedClient { client_id, client_secret, service_user: service_user_id, roles })
}
