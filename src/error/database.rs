//! The one mapping from a database failure to an API answer, decided by what went wrong.
//!
//! A constraint violation is the request's fault and is answered as such (409 for a clash with an
//! existing row, 422 for a value the schema refuses), naming the constraint. Only when the
//! database cannot serve right now (connection lost, pool exhausted, statement timeout, shutdown,
//! failover) is the answer 503, so that clients retry what retrying can fix. Anything else is a
//! bug on our side and answers 500 without echoing driver text.

use axum::http::StatusCode;

use super::ApiError;

/// What a database failure means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The database cannot serve now; retrying later can succeed.
    Unavailable,
    /// A unique or exclusion constraint: the row clashes with one that exists.
    Conflict { constraint: String },
    /// A check, not-null or foreign-key constraint: the schema refuses the value.
    Refused { constraint: String },
    /// Anything else: a bug (bad SQL, a decode error), never the client's to retry.
    Internal,
}

fn classify(error: &sqlx::Error) -> Failure {
    use sqlx::Error;
    match error {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => Failure::Unavailable,
        Error::Database(db) => {
            let constraint = || db.constraint().unwrap_or("unnamed constraint").to_owned();
            match db.code().as_deref().unwrap_or_default() {
                // unique_violation, exclusion_violation
                "23505" | "23P01" => Failure::Conflict {
                    constraint: constraint(),
                },
                // not_null_violation, foreign_key_violation, check_violation
                "23502" | "23503" | "23514" => Failure::Refused {
                    constraint: constraint(),
                },
                code if unavailable_sqlstate(code) => Failure::Unavailable,
                _ => Failure::Internal,
            }
        }
        _ => Failure::Internal,
    }
}

/// SQLSTATEs that say "not now" rather than "never": connection exceptions (08), insufficient
/// resources (53), operator intervention (57: statement timeout, admin shutdown, starting up),
/// serialization failures and deadlocks (40), and a read-only transaction during failover.
fn unavailable_sqlstate(code: &str) -> bool {
    ["08", "53", "57", "40"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "25006"
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match classify(&error) {
            Failure::Unavailable => {
                tracing::error!(%error, "database unavailable");
                ApiError::unavailable()
            }
            Failure::Conflict { constraint } => {
                tracing::warn!(%error, "unique constraint violated");
                ApiError::conflict(
                    "conflict",
                    format!("conflicts with an existing record ({constraint})"),
                )
            }
            Failure::Refused { constraint } => {
                tracing::warn!(%error, "constraint violated");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "constraint_violated",
                    format!("the value breaks the constraint {constraint}"),
                )
            }
            Failure::Internal => {
                tracing::error!(%error, "database error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred",
                )
            }
        }
    }
}

/// Lets a caller that knows what a constraint means say so in the API's words (after
/// realworld-axum-sqlx's `on_constraint`); any other failure takes the mapping above.
pub trait OnConstraint<T> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> OnConstraint<T> for Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|error| {
            let hit = error
                .as_database_error()
                .and_then(|db| db.constraint())
                .is_some_and(|constraint| constraint == name);
            if hit { map() } else { error.into() }
        })
    }
}
