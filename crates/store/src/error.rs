//! Storage failures, converted once into domain errors.

use parley_core::Cause;

/// What went wrong in an engine. What it holds is for logs only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is shutting down; the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The database has no room left for the write (its disk or its file system is full);
    /// nothing of the transaction was written, and writes work again once space is freed.
    #[error("storage full: {0}")]
    Full(#[source] Cause),
    /// A uniqueness rule refused the write.
    #[error("constraint violated: {0:?}")]
    Conflict(Constraint),
    /// What the request was checked against changed before it was written; the text says what,
    /// for the client.
    #[error("stale: {0}")]
    Stale(&'static str),
    /// A query's own computation failed on the stored values (an overflow, a division by zero, a
    /// date-time out of range): the caller's request, not the store, is at fault. The text says
    /// what failed, for the client.
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    /// The engine cannot run the query as written (a distributed engine's planner refuses some
    /// shapes of subquery): valid, but not answerable here. The text says why, for the client.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Anything else: a bug or a corrupt store.
    #[error("storage failure: {0}")]
    Internal(#[source] Cause),
}

impl StoreError {
    /// The database cannot be reached, for the reason given.
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        StoreError::Unavailable(cause.into())
    }

    /// A failure of the store itself, for the reason given.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        StoreError::Internal(cause.into())
    }
}

/// The uniqueness rules of the schema that a caller can run into, known by their constraint name
/// in the migrations. The names live here and in the schema only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// `users_organisation_email`: an email is used once per organisation.
    UserEmail,
    /// `goal_steps_pkey`: a goal step's id is used once per project.
    GoalStep,
    /// Any other rule: a clash of generated ids or secrets, which a retry resolves, or a race the
    /// rules do not expect. It holds the constraint's name (what the engine said when it names
    /// none), so that the logs say which rule it was; clients are never told.
    Other(String),
}

impl Constraint {
    /// The rule a constraint name stands for.
    pub fn named(name: &str) -> Constraint {
        match name {
            "users_organisation_email" => Constraint::UserEmail,
            "goal_steps_pkey" => Constraint::GoalStep,
            other => Constraint::Other(other.to_owned()),
        }
    }
}

impl From<StoreError> for parley_core::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                parley_core::Error::Unavailable("The database is unavailable; try again shortly.".into())
            }
            StoreError::Full(_) => parley_core::Error::Unavailable(
                "The database has no room left: its disk is full. Nothing of this request was written; writes \
                 work again once space is freed."
                    .into(),
            ),
            StoreError::Conflict(Constraint::UserEmail) => {
                parley_core::Error::Conflict("A user with this email already exists in the organisation.".into())
            }
            StoreError::Conflict(Constraint::GoalStep) => {
                parley_core::Error::Conflict("A stepId of this goal is used by another goal of the project.".into())
            }
            StoreError::Conflict(Constraint::Other(constraint)) => {
                tracing::warn!(%constraint, "a write was refused by a uniqueness rule no caller expects");
                parley_core::Error::Conflict("The request conflicts with stored data.".into())
            }
            StoreError::Stale(what) => parley_core::Error::Conflict(what.into()),
            StoreError::Evaluation(reason) => parley_core::Error::Invalid {
                detail: format!("The query's expression cannot be computed on the stored values: {reason}."),
                details: serde_json::Map::new(),
            },
            StoreError::Unsupported(reason) => {
                parley_core::Error::Unsupported(format!("The database engine cannot run this query: {reason}."))
            }
            StoreError::Internal(cause) => parley_core::Error::Internal(cause),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
