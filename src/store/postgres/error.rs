//! What a PostgreSQL failure means for a request: the database away or busy for now
//! (`Unavailable`: retry later, nothing was applied — every call is one transaction),
//! a conflict worth retrying at once (serialization failure, deadlock), or a fault.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// SQLSTATE classes and codes that say "not now" rather than "never".
fn transient(state: &SqlState) -> bool {
    let code = state.code();
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections)
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || *state == SqlState::READ_ONLY_SQL_TRANSACTION // a standby, mid-switchover
        || *state == SqlState::QUERY_CANCELED // statement_timeout
        || *state == SqlState::LOCK_NOT_AVAILABLE
        || conflict(state)
}

/// Worth running the transaction again at once (what CockroachDB and YugabyteDB
/// report far more often than PostgreSQL under Read Committed).
pub(super) fn conflict(state: &SqlState) -> bool {
    *state == SqlState::T_R_SERIALIZATION_FAILURE || *state == SqlState::T_R_DEADLOCK_DETECTED
}

pub(super) fn is_conflict(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(conflict)
}

pub(super) fn from_pg(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) if transient(db.code()) => {
            StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
        }
        Some(db) => StoreError::Backend(format!("{}: {}", db.code().code(), db.message())),
        // No answer from the server: the socket closed, a timeout, a refused connect.
        None => StoreError::Unavailable(with_causes(&error)),
    }
}

pub(super) fn from_pool(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(e) => from_pg(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection within the pool's wait".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// An error's message followed by its causes' ("error connecting to server: Connection
/// refused (os error 111)").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
