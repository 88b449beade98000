//! Durable state, behind traits by aggregate: codes and their limits ([`CodeStore`]),
//! the outbox and message histories ([`OutboxStore`]), idempotency keys
//! ([`IdempotencyStore`]), delivery reports ([`ReportStore`]) and forgetting
//! ([`RetentionStore`]). [`Store`] is all of them; the rest of the program holds an
//! `Arc<dyn Store>` and never names a backend's library.
//!
//! Every backend keeps the same invariants:
//! - every mutating call returns once its effect is durable;
//! - no phone number is written in clear ([`AtRest`]): keys hold a number's keyed
//!   digest, the outbox seals a message's numbers with its text, histories keep the
//!   masked number only, delivery reports are matched by digest;
//! - a code is stored as its keyed hash only;
//! - the store's clock decides expiry and limits (`sled`: this host's; a shared
//!   database: the database's, so that hosts agree).
//!
//! Backends: [`sled`] (embedded, one host).

mod at_rest;
mod codes;
mod error;
pub(crate) mod idempotency;
mod outbox;
mod records;
pub(crate) mod reports;
mod retention;
mod scope;
pub mod sled;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::StorageConfig;
use crate::otp::{Clock, SecretKey};

pub use at_rest::AtRest;
pub use codes::{CodeStore, Issued, Judge, NewCode, NewMessage};
pub use error::StoreError;
pub use idempotency::{Begin, IdempotencyStore, StoredAnswer, ABANDONED_AFTER, IDEMPOTENCY_WINDOW};
pub use outbox::{Claimed, Lease, OutboxStore, Route};
pub use records::{
    length_prefixed, CodeRecord, CodeScope, MessageRecord, MessageStatus, OutboundMessage,
    Transition, EXPIRED_IN_QUEUE, MAY_ARRIVE_TWICE,
};
pub use reports::{ReportOutcome, ReportStore};
pub use retention::{RetentionStore, Swept};
pub use scope::ScopeState;

/// The whole store, as the daemon holds it.
#[async_trait]
pub trait Store:
    CodeStore + OutboxStore + IdempotencyStore + ReportStore + RetentionStore + Send + Sync
{
    /// The backend's name, as `[storage] backend` spells it.
    fn backend(&self) -> &'static str;

    /// Whether the store answers a read now (`/readyz`, the watchdog).
    async fn check(&self) -> Result<(), StoreError>;

    /// Make everything written so far durable (at shutdown).
    async fn close(&self) -> Result<(), StoreError>;
}

/// Shared handle to a store.
pub type SharedStore = Arc<dyn Store>;

/// Open the store `[storage]` names, in its state folder. Records are sealed and
/// digested under keys derived from `key`; `clock` is the embedded backend's.
pub async fn open(
    storage: &StorageConfig,
    key: &SecretKey,
    clock: Arc<dyn Clock>,
) -> Result<SharedStore, StoreError> {
    let store = sled::SledStore::open(&storage.path.join("db"), key, clock)?;
    Ok(Arc::new(store))
}

#[cfg(test)]
pub(crate) mod tests;
