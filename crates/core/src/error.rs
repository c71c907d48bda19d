//! The domain error: what went wrong in terms of the service, never of HTTP or SQL.

use std::sync::Arc;

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
    /// Storage cannot be reached; safe to retry. The text is for the client.
    #[error("{0}")]
    Unavailable(String),
    /// The request is valid, but what it asks is not implemented (by parley or by the database
    /// engine it runs on). The text is for the client.
    #[error("{0}")]
    Unsupported(String),
    /// A fault of parley's own; what it holds is for the log, never for the client.
    #[error("internal failure: {0}")]
    Internal(#[source] Cause),
}

impl Error {
    /// A missing argument named `field`.
    pub fn missing(field: &str) -> Self {
        Error::Missing { detail: format!("Validation failed. '{field}' is required."), details: field_details(field) }
    }

    /// An invalid argument named `field`, with the reason.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        let reason = reason.to_string();
        let end = if reason.ends_with('?') { "" } else { "." };
        Error::Invalid { detail: format!("Validation failed. '{field}' {reason}{end}"), details: field_details(field) }
    }

    /// A fault of parley's own, described for the log.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Error::Internal(cause.into())
    }

    /// Adds a key to the details of a validation error (for example a batch index).
    pub fn with_detail(mut self, key: &str, value: impl Into<Json>) -> Self {
        if let Error::Missing { details, .. } | Error::Invalid { details, .. } = &mut self {
            details.insert(key.to_owned(), value.into());
        }
        self
    }

    /// The error about one line of an NDJSON body: the line is named in the text too
    /// (`Validation failed. Line 3: 'inputId' is required.`) and in the details.
    pub fn at_line(mut self, line: usize) -> Self {
        if let Error::Missing { detail, .. } | Error::Invalid { detail, .. } = &mut self {
            *detail = match detail.strip_prefix("Validation failed. ") {
                Some(rest) => format!("Validation failed. Line {line}: {rest}"),
                None => format!("Line {line}: {detail}"),
            };
        }
        self.with_detail("line", line)
    }
}

fn field_details(field: &str) -> Map<String, Json> {
    let mut details = Map::new();
    details.insert("field".into(), Json::String(field.to_owned()));
    details
}

/// What caused a failure, for logs: a one-line description and, when a library reported it, that
/// library's error as the source (shown in place of an empty description). Cheap to clone, so that one failure can be
/// answered to every request that shared it (a group commit, for example).
#[derive(Debug, Clone)]
pub struct Cause {
    what: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A failure described by `what` alone.
    pub fn new(what: impl Into<String>) -> Self {
        Cause { what: what.into(), source: None }
    }

    /// A failure described by `what`, reported by `source`.
    pub fn with_source(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause { what: what.into(), source: Some(Arc::new(source)) }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Some(source) if self.what.is_empty() => write!(f, "{source}"),
            _ => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Two causes are the same failure when they read the same.
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl From<String> for Cause {
    fn from(what: String) -> Self {
        Cause::new(what)
    }
}

impl From<&str> for Cause {
    fn from(what: &str) -> Self {
        Cause::new(what)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
