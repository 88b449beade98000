//! Durable state in sled. Nothing outside this module names sled.
//!
//! No phone number is written in clear: keys hold a number's keyed digest
//! ([`Pseudonymizer`]), the outbox seals a message's numbers with its text, histories
//! keep the masked number only, and delivery reports are matched by digest.
//!
//! Trees:
//! - `meta`: `format` → the store format this build reads ([`FORMAT`])
//! - `codes`: scope key → [`CodeRecord`] (keyed hash only, never the code)
//! - `expiry`: (expires_at, scope key) → () — housekeeping's index
//! - `outbox`: (due, message id) → [`OutboundMessage`] waiting to be sent
//! - `inflight`: message id → [`OutboundMessage`] claimed by the dispatcher; put back
//!   into `outbox` at start-up, because a crash mid-send must not lose it
//! - `messages`: message id → [`MessageRecord`] (status history, no text), kept
//!   `message_retention` once settled
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
use records::{SealedContent, SealedMessage};
use turns::Turns;

use crate::otp::{Pseudonymizer, SecretKey, TextSealer};

/// The on-disk format this build reads and writes. A change of key layout or record
/// shape bumps it and comes with a migration; a folder of another format is refused.
/// 2: number digests in keys, numbers sealed in the outbox, keyed fingerprints.
pub const FORMAT: &str = "2";

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
    #[error(
        "the database at {path} was written in store format {found} and this build reads \
         format {FORMAT}; it cannot be read. Stop sms2fa, move {path} aside (live codes in it \
         expire within otp.ttl_secs; SMS still queued in it will not be sent) and start \
         again to create a new one"
    )]
    Format {
        path: std::path::PathBuf,
        found: String,
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
    pseudonyms: Pseudonymizer,
}

impl Store {
    /// Open (or create) the database in `path`, and start its group-commit flusher.
    /// Outbox contents are sealed, and numbers in keys digested, under keys derived
    /// from `key`. A database of another [`FORMAT`] is refused.
    pub fn open(path: &Path, key: &SecretKey) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        check_format(&db, path)?;
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
            sealer: TextSealer::new(key),
            pseudonyms: Pseudonymizer::new(key),
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

/// Refuse a database of another format; stamp a new one with ours.
fn check_format(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    let meta = db.open_tree("meta")?;
    match meta.get("format")? {
        Some(found) if found.as_ref() == FORMAT.as_bytes() => Ok(()),
        Some(found) => Err(StoreError::Format {
            path: path.to_owned(),
            found: String::from_utf8_lossy(&found).into_owned(),
        }),
        None => {
            // Written by a build from before format versions, if it holds anything.
            for name in db.tree_names() {
                if name.as_ref() != b"meta" && !db.open_tree(&name)?.is_empty() {
                    return Err(StoreError::Format {
                        path: path.to_owned(),
                        found: "1 (from before format versions)".to_owned(),
                    });
                }
            }
            meta.insert("format", FORMAT.as_bytes())?;
            db.flush()?;
            Ok(())
        }
    }
}

/// Purposes of [`Pseudonymizer::digest`], one per kind of value.
const NUMBER: &str = "number";
const NUMBER_TAIL: &str = "number tail";
const IDEMPOTENCY_KEY: &str = "idempotency key";
const FINGERPRINT: &str = "request fingerprint";

impl Store {
    /// The digest that stands for `number` in keys.
    fn number_digest(&self, number: &str) -> [u8; crate::otp::PSEUDONYM_LEN] {
        self.pseudonyms.digest(NUMBER, number.as_bytes())
    }

    /// The `codes` key of `scope`.
    fn scope_key(&self, scope: &CodeScope) -> Vec<u8> {
        records::scope_key(
            &scope.account,
            &scope.service,
            &self.number_digest(&scope.number),
        )
    }

    fn seal(&self, message: &OutboundMessage) -> Vec<u8> {
        let content = SealedContent {
            from: message.from.clone(),
            to: message.to.clone(),
            text: message.text.clone(),
        };
        // A struct of three strings always serializes.
        let content = serde_json::to_string(&content).expect("strings serialize");
        encode(&SealedMessage {
            id: message.id.clone(),
            account: message.account.clone(),
            sealed: hex::encode(self.sealer.seal(&message.id, &content)),
            expires_at: message.expires_at,
            attempts: message.attempts,
            unconfirmed: message.unconfirmed,
            last_modem: message.last_modem.clone(),
        })
    }

    fn unseal(&self, bytes: &[u8], tree: &'static str) -> Result<OutboundMessage, StoreError> {
        let sealed: SealedMessage = decode(bytes, tree)?;
        let unseal_error = |source| StoreError::Unseal {
            id: sealed.id.clone(),
            source,
        };
        let raw = hex::decode(&sealed.sealed)
            .map_err(|_| unseal_error(crate::otp::SealError::Truncated))?;
        let content = self.sealer.open(&sealed.id, &raw).map_err(unseal_error)?;
        let content: SealedContent = serde_json::from_str(&content)
            .map_err(|_| unseal_error(crate::otp::SealError::NotText))?;
        Ok(OutboundMessage {
            id: sealed.id,
            account: sealed.account,
            from: content.from,
            to: content.to,
            text: content.text,
            expires_at: sealed.expires_at,
            attempts: sealed.attempts,
            unconfirmed: sealed.unconfirmed,
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
