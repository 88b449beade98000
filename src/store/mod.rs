//! Durable state in sled. Nothing outside this module names sled.
//!
//! Trees:
//! - `codes`: scope key → [`CodeRecord`] (keyed hash only, never the code)
//! - `expiry`: (expires_at, scope key) → () — housekeeping's index
//! - `outbox`: (due, message id) → [`OutboundMessage`] waiting to be sent
//! - `inflight`: message id → [`OutboundMessage`] claimed by the dispatcher; put back
//!   into `outbox` at start-up, because a crash mid-send must not lose it
//! - `messages`: message id → [`MessageRecord`] (status history, no text), kept
//!   `message_retention_days` once settled
//! - `limits`: send histories per number and per account, failure counts per scope
//!   (so limits hold across restarts); swept once they can no longer refuse anything
//! - `idempotency` (+ `idempotency_index` by time): the first answer per
//!   `Idempotency-Key`, for 24 hours
//! - `reports`: (modem, TP-MR) → sent part, to match delivery reports

mod codes;
mod flusher;
mod idempotency;
mod outbox;
mod records;
mod reports;
mod retention;
mod turns;

use std::path::Path;

pub use codes::NewCode;
pub use idempotency::{Begin, StoredAnswer, IDEMPOTENCY_WINDOW};
pub use outbox::Claim;
pub use records::{
    CodeRecord, CodeScope, MessageRecord, MessageStatus, OutboundMessage, Transition,
};
pub use reports::ReportOutcome;
pub use retention::Sweep;

use flusher::Flusher;
use records::SealedMessage;
use turns::Turns;

use crate::otp::TextSealer;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: sled::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    #[error("database flush failed: {0}")]
    Flush(String),
    #[error("cannot decrypt the text of message {id}: {source}")]
    Unseal {
        id: String,
        source: crate::otp::SealError,
    },
    #[error("corrupt record in tree {tree}: {source}")]
    Corrupt {
        tree: &'static str,
        source: serde_json::Error,
    },
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(inner) => inner,
            sled::transaction::TransactionError::Storage(e) => StoreError::Db(e),
        }
    }
}

/// Keep sled's page cache small: the working set is a few KiB per live code.
const CACHE_CAPACITY: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    codes: sled::Tree,
    expiry: sled::Tree,
    outbox: sled::Tree,
    inflight: sled::Tree,
    messages: sled::Tree,
    limits: sled::Tree,
    idempotency: sled::Tree,
    idempotency_index: sled::Tree,
    reports: sled::Tree,
    flusher: Flusher,
    send_turns: Turns,
    sealer: TextSealer,
}

impl Store {
    /// Open (or create) the database in `path`, and start its group-commit flusher.
    /// Outbox texts are sealed with `sealer`.
    pub fn open(path: &Path, sealer: TextSealer) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        let tree = |name: &str| db.open_tree(name);
        Ok(Self {
            codes: tree("codes")?,
            expiry: tree("expiry")?,
            outbox: tree("outbox")?,
            inflight: tree("inflight")?,
            messages: tree("messages")?,
            limits: tree("limits")?,
            idempotency: tree("idempotency")?,
            idempotency_index: tree("idempotency_index")?,
            reports: tree("reports")?,
            flusher: Flusher::spawn(db.clone()).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: sled::Error::Io(e),
            })?,
            send_turns: Turns::default(),
            db,
            sealer,
        })
    }

    /// Resolves once every write made before the call is on disk (group commit).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.flusher.flush().await.map_err(StoreError::Flush)
    }

    /// Flush synchronously, for shutdown.
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    pub fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.messages
            .get(id.as_bytes())?
            .map(|bytes| decode(&bytes, "messages"))
            .transpose()
    }
}

impl Store {
    fn seal(&self, message: &OutboundMessage) -> Vec<u8> {
        encode(&SealedMessage {
            id: message.id.clone(),
            account: message.account.clone(),
            from: message.from.clone(),
            to: message.to.clone(),
            sealed_text: hex::encode(self.sealer.seal(&message.id, &message.text)),
            expires_at: message.expires_at,
            attempts: message.attempts,
            last_modem: message.last_modem.clone(),
        })
    }

    fn unseal(&self, bytes: &[u8], tree: &'static str) -> Result<OutboundMessage, StoreError> {
        let sealed: SealedMessage = decode(bytes, tree)?;
        let unseal_error = |source| StoreError::Unseal {
            id: sealed.id.clone(),
            source,
        };
        let raw = hex::decode(&sealed.sealed_text)
            .map_err(|_| unseal_error(crate::otp::SealError::Truncated))?;
        let text = self.sealer.open(&sealed.id, &raw).map_err(unseal_error)?;
        Ok(OutboundMessage {
            id: sealed.id,
            account: sealed.account,
            from: sealed.from,
            to: sealed.to,
            text,
            expires_at: sealed.expires_at,
            attempts: sealed.attempts,
            last_modem: sealed.last_modem,
        })
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our record types serialize infallibly: plain structs, string keys, no maps with
    // non-string keys.
    serde_json::to_vec(value).expect("record types always serialize")
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    tree: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { tree, source })
}

/// Decode a value that may be absent; absent is the type's default.
fn decode_or_default<T: serde::de::DeserializeOwned + Default>(
    bytes: Option<&sled::IVec>,
    tree: &'static str,
) -> Result<T, StoreError> {
    bytes.map_or_else(|| Ok(T::default()), |bytes| decode(bytes, tree))
}

/// Abort a sled transaction with a decoding error.
fn decode_tx<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    tree: &'static str,
) -> Result<T, sled::transaction::ConflictableTransactionError<StoreError>> {
    decode(bytes, tree).map_err(sled::transaction::ConflictableTransactionError::Abort)
}

#[cfg(test)]
mod tests;
