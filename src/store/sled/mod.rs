//! The embedded backend: sled, in the state folder, for one host. The default, and
//! all that `serve --simulate` needs.
//!
//! sled (0.34.7) acknowledges writes before they are durable: every mutating call of
//! the store traits writes, then waits for the group-commit flusher ([`Flusher`])
//! before it returns. Hot paths avoid sled's multi-tree transactions (they take a
//! process-wide write lock and roll the log buffer twice each): one compare-and-swap
//! per scope record, per-number turns for sends.
//!
//! Trees:
//! - `meta`: `format` → the store format this build reads ([`FORMAT`])
//! - `codes`: scope key → [`records::ScopeRecord`] (keyed hash only, never the code)
//! - `expiry`: (expires_at, scope key) → () — housekeeping's index
//! - `outbox`: (due, message id) → [`records::SealedMessage`] waiting to be sent
//! - `inflight`: message id → [`records::SealedMessage`] claimed by the dispatcher; put
//!   back into `outbox` at start-up, because a crash mid-send must not lose it
//! - `messages`: message id → [`MessageRecord`] (status history, no text), kept
//!   `message_retention` once settled
//! - `limits`: send histories per number and per account (so limits hold across
//!   restarts); swept once they can no longer refuse anything
//! - `idempotency` (+ `idempotency_index` by time): the first answer per
//!   `Idempotency-Key`, for 24 hours
//! - `reports`: (modem, TP-MR) → sent part, to match delivery reports
//! - `inbox`: (time, id) → a received SMS, its sender and text sealed; kept
//!   `message_retention`
//! - `modem_sends`: (time, modem, message id) → parts sent, for per-SIM caps; kept a day
//!
//! One host owns the database (sled's file lock), so a lease needs no fencing here:
//! every token is 0, and a claim made durable before the SMS goes out stands for
//! `submitting` (after a crash, everything claimed is queued again with "may arrive
//! twice").

mod codes;
mod events;
mod flusher;
mod idempotency;
mod inbox;
mod outbox;
mod records;
mod relay;
mod reports;
mod retention;
mod turns;
mod usage;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use flusher::Flusher;
use records::SealedMessage;
use turns::Turns;

use super::{AtRest, MessageRecord, OutboundMessage, Store, StoreError};
use crate::otp::{Clock, SecretKey};

/// The on-disk format this build reads and writes. A change of key layout or record
/// shape bumps it and comes with a migration; a folder of another format is refused.
/// 2: number digests in keys, numbers sealed in the outbox, keyed fingerprints.
pub const FORMAT: &str = "2";

impl From<::sled::Error> for StoreError {
    fn from(e: ::sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<::sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: ::sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            ::sled::transaction::TransactionError::Abort(inner) => inner,
            ::sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

/// Keep sled's page cache small: the working set is a few KiB per live code.
const CACHE_CAPACITY: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SledStore {
    db: ::sled::Db,
    codes: ::sled::Tree,
    expiry: ::sled::Tree,
    outbox: ::sled::Tree,
    inflight: ::sled::Tree,
    messages: ::sled::Tree,
    limits: ::sled::Tree,
    idempotency: ::sled::Tree,
    idempotency_index: ::sled::Tree,
    reports: ::sled::Tree,
    modem_sends: ::sled::Tree,
    inbox: ::sled::Tree,
    events: ::sled::Tree,
    webhooks: ::sled::Tree,
    event_log: Arc<events::EventLog>,
    flusher: Flusher,
    send_turns: Turns,
    at_rest: AtRest,
    clock: Arc<dyn Clock>,
    /// Where the incremental sweeps of `messages` and `limits` stand.
    cursors: Arc<Mutex<retention::Cursors>>,
}

impl SledStore {
    /// Open (or create) the database in `path`, and start its group-commit flusher.
    /// Outbox contents are sealed, and numbers in keys digested, under keys derived
    /// from `key`; `clock` decides expiry and limits. A database of another [`FORMAT`]
    /// is refused.
    pub fn open(path: &Path, key: &SecretKey, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let db = ::sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(|source| open_error(path, source))?;
        check_format(&db, path)?;
        let tree = |name: &str| db.open_tree(name);
        let events = tree("events")?;
        Ok(Self {
            event_log: events::EventLog::open(&events, "local")?,
            events,
            webhooks: tree("webhooks")?,
            codes: tree("codes")?,
            expiry: tree("expiry")?,
            outbox: tree("outbox")?,
            inflight: tree("inflight")?,
            messages: tree("messages")?,
            limits: tree("limits")?,
            idempotency: tree("idempotency")?,
            idempotency_index: tree("idempotency_index")?,
            reports: tree("reports")?,
            modem_sends: tree("modem_sends")?,
            inbox: tree("inbox")?,
            flusher: Flusher::spawn(db.clone()).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                detail: e.to_string(),
            })?,
            send_turns: Turns::default(),
            db,
            at_rest: AtRest::new(key),
            clock,
            cursors: Arc::default(),
        })
    }

    /// Name this host in the events it writes (`[cluster] node`).
    pub fn with_node(mut self, node: &str) -> Result<Self, StoreError> {
        self.event_log = events::EventLog::open(&self.events, node)?;
        Ok(self)
    }

    /// The event a message's transition makes, if some endpoint may want it (the
    /// message's account, service and number are read from its history).
    fn transition_event(
        &self,
        id: &str,
        transition: &super::Transition,
    ) -> Result<Option<super::NewEvent>, StoreError> {
        if self.event_log.gate.is_off() {
            return Ok(None);
        }
        Ok(self
            .message_record(id)?
            .and_then(|record| super::message_event(&record, transition, &self.event_log.node)))
    }

    /// Resolves once every write made before the call is on disk (group commit).
    async fn durable(&self) -> Result<(), StoreError> {
        self.flusher.flush().await.map_err(StoreError::Flush)
    }

    fn message_record(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.messages
            .get(id.as_bytes())?
            .map(|bytes| decode(&bytes, "messages"))
            .transpose()
    }
}

/// sled reports a busy file lock only as text in an `io::ErrorKind::Other`.
fn open_error(path: &Path, source: ::sled::Error) -> StoreError {
    let detail = source.to_string();
    if detail.contains("could not acquire lock") {
        StoreError::Locked {
            path: path.to_owned(),
            detail,
        }
    } else {
        StoreError::Open {
            path: path.to_owned(),
            detail,
        }
    }
}

/// One host: nobody else to tell, and nobody else to list.
#[async_trait]
impl super::ClusterStore for SledStore {
    async fn heartbeat(&self, _modems: &[super::ModemBeat]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn hosts(&self) -> Result<Vec<super::HostBeat>, StoreError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl Store for SledStore {
    fn backend(&self) -> &'static str {
        "sled"
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.outbox.first()?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Refuse a database of another format; stamp a new one with ours.
fn check_format(db: &::sled::Db, path: &Path) -> Result<(), StoreError> {
    let meta = db.open_tree("meta")?;
    let refuse = |found: String| StoreError::Format {
        path: path.to_owned(),
        found,
        expected: FORMAT,
    };
    match meta.get("format")? {
        Some(found) if found.as_ref() == FORMAT.as_bytes() => Ok(()),
        Some(found) => Err(refuse(String::from_utf8_lossy(&found).into_owned())),
        None => {
            // Written by a build from before format versions, if it holds anything.
            for name in db.tree_names() {
                if name.as_ref() != b"meta" && !db.open_tree(&name)?.is_empty() {
                    return Err(refuse("1 (from before format versions)".to_owned()));
                }
            }
            meta.insert("format", FORMAT.as_bytes())?;
            db.flush()?;
            Ok(())
        }
    }
}

impl SledStore {
    /// The `codes` key of `scope`.
    fn scope_key(&self, scope: &super::CodeScope) -> Vec<u8> {
        records::scope_key(
            &scope.account,
            &scope.service,
            &self.at_rest.number_digest(&scope.number),
        )
    }

    fn seal(&self, message: &OutboundMessage) -> Vec<u8> {
        encode(&SealedMessage {
            id: message.id.clone(),
            account: message.account.clone(),
            sealed: hex::encode(self.at_rest.seal(message)),
            expires_at: message.expires_at,
            attempts: message.attempts,
            unconfirmed: message.unconfirmed,
            last_modem: message.last_modem.clone(),
        })
    }

    fn unseal(&self, bytes: &[u8], tree: &'static str) -> Result<OutboundMessage, StoreError> {
        let sealed: SealedMessage = decode(bytes, tree)?;
        let raw = hex::decode(&sealed.sealed).map_err(|_| StoreError::Unseal {
            id: sealed.id.clone(),
            source: crate::otp::SealError::Truncated,
        })?;
        let (from, to, text) = self.at_rest.unseal(&sealed.id, &raw)?;
        Ok(OutboundMessage {
            id: sealed.id,
            account: sealed.account,
            from,
            to,
            text,
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
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: tree,
        detail: source.to_string(),
    })
}

/// Decode a value that may be absent; absent is the type's default.
fn decode_or_default<T: serde::de::DeserializeOwned + Default>(
    bytes: Option<&::sled::IVec>,
    tree: &'static str,
) -> Result<T, StoreError> {
    bytes.map_or_else(|| Ok(T::default()), |bytes| decode(bytes, tree))
}

/// Abort a sled transaction with a decoding error.
fn decode_tx<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    tree: &'static str,
) -> Result<T, ::sled::transaction::ConflictableTransactionError<StoreError>> {
    decode(bytes, tree).map_err(::sled::transaction::ConflictableTransactionError::Abort)
}

#[cfg(test)]
mod tests;
