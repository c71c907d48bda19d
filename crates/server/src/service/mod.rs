//! What the API and the operator's commands both do: creating organisations, people, API keys
//! and OAuth2 clients. Values come in validated (each caller parses its own input: JSON bodies
//! or command-line text); what is generated, hashed and stored is decided here, once.

pub mod apikeys;
pub mod oauth;
pub mod organisations;
pub mod users;

use parley_store::StoreError;

use crate::problem::ApiError;

/// Why an operation of the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A value is refused, or a rule of the domain is broken; the text is for whoever asked.
    #[error(transparent)]
    Domain(#[from] parley_core::Error),
    /// The store failed, or refused the write by a uniqueness rule (a typed constraint).
    #[error("{}", store_text(.0))]
    Store(#[source] StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        ServiceError::Store(error)
    }
}

/// What an operator is told of a store failure: the domain's words for a refusal, the cause for
/// a fault (an operator, unlike a client, may see it).
fn store_text(error: &StoreError) -> String {
    match parley_core::Error::from(error.clone()) {
        parley_core::Error::Internal(cause) => cause.to_string(),
        other => other.to_string(),
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Domain(error) => ApiError::from(error),
            ServiceError::Store(error) => ApiError::from(error),
        }
    }
}
