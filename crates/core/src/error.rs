//! The domain error: what went wrong in terms of the service, never of HTTP or SQL.

use serde_json::{Map, Value as Json};

/// A failure that the caller may be told about. The HTTP layer maps each kind to a code once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A required argument is absent.
    #[error("{detail}")]
    Missing { detail: String, details: Map<String, Json> },
    /// An argument is present but unacceptable.
    #[error("{detail}")]
    Invalid { detail: String, details: Map<String, Json> },
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0}")]
    NotFound(String),
    /// The caller is known but lacks the right.
    #[error("{0}")]
    Forbidden(String),
    /// The request contradicts stored state.
    #[error("{0}")]
    Conflict(String),
    /// Storage cannot be reached; safe to retry.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of parley's own; the text is for the log, never for the client.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// A missing argument named `field`.
    pub fn missing(field: &str) -> Self {
        Error::Missing { detail: format!("Validation failed. '{field}' is required."), details: field_details(field) }
    }

    /// An invalid argument named `field`, with the reason.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Error::Invalid { detail: format!("Validation failed. '{field}' {reason}."), details: field_details(field) }
    }

    /// Adds a key to the details of a validation error (for example a batch index).
    pub fn with_detail(mut self, key: &str, value: impl Into<Json>) -> Self {
        if let Error::Missing { details, .. } | Error::Invalid { details, .. } = &mut self {
            details.insert(key.to_owned(), value.into());
        }
        self
    }
}

fn field_details(field: &str) -> Map<String, Json> {
    let mut details = Map::new();
    details.insert("field".into(), Json::String(field.to_owned()));
    details
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
