//! Storage failures, converted once into domain errors.

/// What went wrong in an engine. Messages are for logs only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is shutting down; the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint refused the write; holds the constraint's name.
    #[error("constraint violated: {0}")]
    Conflict(String),
    /// Anything else: a bug or a corrupt store.
    #[error("storage failure: {0}")]
    Internal(String),
}

impl From<StoreError> for parley_core::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                parley_core::Error::Unavailable("The database is unavailable; try again shortly.".into())
            }
            StoreError::Conflict(constraint) => parley_core::Error::Conflict(match constraint.as_str() {
                "users_organisation_email" => "A user with this email already exists in the organisation.".into(),
                _ => "The request conflicts with stored data.".into(),
            }),
            StoreError::Internal(message) => parley_core::Error::Internal(message),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
