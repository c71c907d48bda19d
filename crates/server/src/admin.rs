//! What the operator's subcommands do (`parley organisations|users|keys|oauth-clients …`), as
//! functions over the store, so that the binary only parses arguments and prints.

use parley_core::identity::{normalise_email, parse_org_roles, validate_password};
use parley_core::project::validate_project_name;
use parley_core::value::now;
use parley_core::{Error, ObjectId, OrgRole};
use parley_store::{ApiKeyInfo, GrantType, NewApiKey, NewUser, OAuthClient, Organisation, Store, User, UserKind};
use serde_json::Value as Json;

use crate::auth::{generate_api_key, hash_api_key};
use crate::password::{generate_password, hash_password};

/// A failure of a subcommand, in one line for the operator.
pub type AdminResult<T> = Result<T, String>;

fn domain(error: Error) -> String {
    error.to_string()
}

fn store(error: parley_store::StoreError) -> String {
    match parley_core::Error::from(error) {
        Error::Internal(cause) => cause.to_string(),
        other => other.to_string(),
    }
}

/// The organisation a subcommand acts in: the one named, or the only one there is.
pub async fn organisation(store_: &dyn Store, named: Option<&str>) -> AdminResult<Organisation> {
    let all = store_.list_organisations().await.map_err(store)?;
    match named {
        Some(text) => {
            let id = ObjectId::parse(text).map_err(|e| format!("--organisation {e}"))?;
            all.into_iter().find(|o| o.id == id).ok_or_else(|| format!("no organisation {id}"))
        }
        None if all.len() == 1 => Ok(all.into_iter().next().unwrap_or_else(|| unreachable!())),
        None if all.is_empty() => {
            Err("there is no organisation yet; run `parley serve` once or `parley organisations create`".into())
        }
        None => Err(format!(
            "there are several organisations; name one with --organisation ({})",
            all.iter().map(|o| format!("{} {}", o.id, o.name)).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A person of an organisation, by email.
pub async fn person(store_: &dyn Store, organisation: ObjectId, email: &str) -> AdminResult<User> {
    let email = normalise_email(email).map_err(domain)?;
    store_
        .people_by_email(&email)
        .await
        .map_err(store)?
        .into_iter()
        .map(|(user, _)| user)
        .find(|user| user.organisation == organisation)
        .ok_or_else(|| format!("no user {email} in organisation {organisation}"))
}

/// What `organisations create` made.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub id: ObjectId,
    pub admin_email: String,
    pub api_key: String,
    pub password: String,
}

/// `parley organisations create NAME --admin-email EMAIL`: the organisation, its admin (with a
/// generated password) and the admin's API key.
pub async fn create_organisation(store_: &dyn Store, name: &str, admin_email: &str) -> AdminResult<NewOrganisation> {
    let name = validate_project_name(Some(&Json::String(name.to_owned()))).map_err(domain)?;
    let admin_email = normalise_email(admin_email).map_err(domain)?;
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
    let api_key = generate_api_key();
    let key = NewApiKey {
        id: ObjectId::generate(),
        user_id: admin.id,
        name: "bootstrap".into(),
        secret_hash: hash_api_key(&api_key),
        created_at,
    };
    let password_hash = hash_password(password.clone()).await.map_err(domain)?;
    let id = organisation.id;
    store_
        .create_organisation(organisation, NewUser { user: admin, password_hash: Some(password_hash) }, key)
        .await
        .map_err(store)?;
    Ok(NewOrganisation { id, admin_email, api_key, password })
}

/// `parley users create`: a person; the password is generated unless given. Returns the user
/// and the generated password.
pub async fn create_user(
    store_: &dyn Store,
    organisation: ObjectId,
    email: &str,
    name: &str,
    roles: &str,
    password: Option<String>,
) -> AdminResult<(User, Option<String>)> {
    let email = normalise_email(email).map_err(domain)?;
    let name = validate_project_name(Some(&Json::String(name.to_owned()))).map_err(domain)?;
    let roles = parse_org_roles(roles).map_err(domain)?;
    let (password, generated) = match password {
        Some(password) => {
            validate_password(&password).map_err(domain)?;
            (password, false)
        }
        None => (generate_password(), true),
    };
    let user =
        User { id: ObjectId::generate(), organisation, email, name, roles, kind: UserKind::Person, created_at: now() };
    let password_hash = hash_password(password.clone()).await.map_err(domain)?;
    store_.create_user(NewUser { user: user.clone(), password_hash: Some(password_hash) }).await.map_err(store)?;
    Ok((user, generated.then_some(password)))
}

/// `parley keys create`: a key for a user; returns its info and secret.
pub async fn create_key(store_: &dyn Store, user: ObjectId, name: &str) -> AdminResult<(ApiKeyInfo, String)> {
    let name = validate_project_name(Some(&Json::String(name.to_owned()))).map_err(domain)?;
    let secret = generate_api_key();
    let key = NewApiKey {
        id: ObjectId::generate(),
        user_id: user,
        name,
        secret_hash: hash_api_key(&secret),
        created_at: now(),
    };
    Ok((store_.create_api_key(key).await.map_err(store)?, secret))
}

/// `parley keys revoke KEY_ID`: revokes any user's key at once.
pub async fn revoke_key(store_: &dyn Store, key: &str) -> AdminResult<()> {
    let key = ObjectId::parse(key).map_err(|e| format!("the key id {e}"))?;
    let owner = store_.api_key_owner(key).await.map_err(store)?.ok_or_else(|| format!("no API key {key}"))?;
    if store_.revoke_api_key(owner, key).await.map_err(store)? { Ok(()) } else { Err(format!("no API key {key}")) }
}

/// What `oauth-clients create` made.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub client_secret: String,
    pub service_user: ObjectId,
    pub roles: Vec<OrgRole>,
}

/// `parley oauth-clients create NAME --roles …`: a confidential client for the
/// `client_credentials` grant, acting as a new service user with these organisation roles.
pub async fn create_client(
    store_: &dyn Store,
    organisation: ObjectId,
    name: &str,
    roles: &str,
) -> AdminResult<NewClient> {
    let name = validate_project_name(Some(&Json::String(name.to_owned()))).map_err(domain)?;
    let roles = parse_org_roles(roles).map_err(domain)?;
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
    store_.create_oauth_client(client, NewUser { user: service_user, password_hash: None }).await.map_err(store)?;
    Ok(NewClient { client_id, client_secret, service_user: service_user_id, roles })
}
