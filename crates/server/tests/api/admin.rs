//! The operator's commands refuse what they cannot do with a typed error that reads as one line.

use parley_server::admin::{self, AdminError};
use parley_server::service::ServiceError;
use parley_store::{Constraint, StoreError};

use crate::helpers::{ADMIN_EMAIL, spawn_app};

#[tokio::test]
async fn the_commands_name_what_they_cannot_find_or_parse() {
    let app = spawn_app().await;
    let store = app.store().await;
    let store = store.as_ref();
    let unknown = "0123456789abcdef01234567";

    let error = admin::organisation(store, Some("nope")).await.unwrap_err();
    assert!(matches!(error, AdminError::OrganisationId(_)), "{error:?}");
    assert_eq!(error.to_string(), "--organisation must be 24 lowercase hexadecimal characters");
    let error = admin::organisation(store, Some(unknown)).await.unwrap_err();
    assert_eq!(error.to_string(), format!("no organisation {unknown}"));

    let org = admin::organisation(store, None).await.unwrap();
    let error = admin::person(store, org.id, "nobody@example.com").await.unwrap_err();
    assert_eq!(error.to_string(), format!("no user nobody@example.com in organisation {}", org.id));

    let error = admin::revoke_key(store, "nope").await.unwrap_err();
    assert_eq!(error.to_string(), "the key id must be 24 lowercase hexadecimal characters");
    let error = admin::revoke_key(store, unknown).await.unwrap_err();
    assert_eq!(error.to_string(), format!("no API key {unknown}"));

    admin::create_organisation(store, "Other", "boss@other.example").await.unwrap();
    let error = admin::organisation(store, None).await.unwrap_err();
    assert!(
        error.to_string().starts_with("there are several organisations; name one with --organisation ("),
        "{error}"
    );
}

#[tokio::test]
async fn invalid_values_and_conflicts_keep_their_cause() {
    let app = spawn_app().await;
    let store = app.store().await;
    let store = store.as_ref();
    let org = admin::organisation(store, None).await.unwrap();

    let error = admin::create_key(store, org.id, " ").await.unwrap_err();
    assert!(matches!(error, AdminError::Service(ServiceError::Domain(_))), "{error:?}");
    assert_eq!(error.to_string(), "Validation failed. 'name' must not be blank.");
    let error = admin::create_client(store, org.id, "reports", "admin,owner").await.unwrap_err();
    assert!(error.to_string().contains("'roles' holds \"owner\""), "{error}");

    let error = admin::create_user(store, org.id, ADMIN_EMAIL, "Again", "", None).await.unwrap_err();
    assert!(
        matches!(error, AdminError::Service(ServiceError::Store(StoreError::Conflict(Constraint::UserEmail)))),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "A user with this email already exists in the organisation.");
    let source = std::error::Error::source(&error);
    assert!(source.is_some_and(|s| s.to_string().contains("UserEmail")), "the store's error is kept: {source:?}");
}
