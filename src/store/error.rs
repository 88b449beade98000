//! What can go wrong in any backend, in terms the service and the API can act on:
//! `Unavailable` is worth a retry (503), the others are faults to report.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the work for now (connection lost,
    /// pool exhausted, a switchover in progress). Nothing of the call was applied.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("cannot open the database at {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    /// Another process holds the database (sled's file lock).
    #[error("the database at {path} is in use by another process: {detail}")]
    Locked { path: PathBuf, detail: String },
    /// The backend failed in a way a retry will not fix.
    #[error("database error: {0}")]
    Backend(String),
    #[error("database flush failed: {0}")]
    Flush(String),
    #[error("cannot decrypt the text of message {id}: {source}")]
    Unseal {
        id: String,
        source: crate::otp::SealError,
    },
    #[error("corrupt record in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error(
        "the database at {path} was written in store format {found} and this build reads \
         format {expected}; it cannot be read. Stop sms2fa, move {path} aside (live codes in it \
         expire within otp.ttl_secs; SMS still queued in it will not be sent) and start \
         again to create a new one"
    )]
    Format {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    /// The database was first used with another `secret.key`: codes and numbers hashed
    /// by this host would match nothing there.
    #[error(
        "the database was set up with another secret key (fingerprint {stored}, this host's \
         is {ours}); copy the same {key_file} to every host that shares the database"
    )]
    KeyMismatch {
        stored: String,
        ours: String,
        key_file: String,
    },
    /// Another live process heartbeats under this host's `[cluster] node` name.
    #[error(
        "another sms2fa is running as node {node:?} on this database (its heartbeat stays \
         fresh); give every host a [cluster] node name of its own"
    )]
    NodeTaken { node: String },
    /// The schema in the database is newer than this build knows.
    #[error(
        "the database schema is at version {found}, newer than this build's {known}; \
         upgrade sms2fa on this host"
    )]
    SchemaTooNew { found: i64, known: i64 },
}

impl StoreError {
    /// A failure that says nothing about the request: retry later (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
