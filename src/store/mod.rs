//! Durable state, behind traits by aggregate: codes and their limits ([`CodeStore`]),
//! the outbox and message histories ([`OutboxStore`]), idempotency keys
//! ([`IdempotencyStore`]), delivery reports ([`ReportStore`]), forgetting
//! ([`RetentionStore`]), what each modem sent lately ([`UsageStore`]) and the SMS
//! the modems received ([`InboxStore`]). [`Store`] is all of them; the rest of the program holds an
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
//! Backends: [`sled`] (embedded, one host, the default) and [`postgres`] (shared by
//! several hosts).

mod at_rest;
mod cluster;
mod codes;
mod error;
mod events;
pub(crate) mod idempotency;
mod inbox;
mod outbox;
pub mod postgres;
mod records;
mod relay;
pub(crate) mod reports;
mod retention;
mod scope;
pub mod sled;
mod usage;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Backend, ClusterConfig, StorageConfig};
use crate::otp::{Clock, SecretKey};

pub use at_rest::AtRest;
pub use cluster::{ClusterStore, HostBeat, ModemBeat};
pub use codes::{CodeStore, Issued, Judge, NewCode, NewMessage};
pub use error::StoreError;
pub use events::{
    attempt_events, message_event, message_event_of, queued_event, received_event, EventBatch,
    EventCursor, EventFilter, EventGate, EventInterest, EventKind, EventStore, NewEvent,
    StoredEvent, EVENT_RETENTION,
};
pub use idempotency::{Begin, IdempotencyStore, StoredAnswer, ABANDONED_AFTER, IDEMPOTENCY_WINDOW};
pub use inbox::{InboxStore, ReceivedSms};
pub use outbox::{Claimed, Lease, OutboxStore, Route};
pub use records::{
    length_prefixed, CodeRecord, CodeScope, MessageRecord, MessageStatus, OutboundMessage,
    Transition, EXPIRED_IN_QUEUE, MAY_ARRIVE_TWICE,
};
pub use relay::{NewText, Queued, RelayStore, RELAY_SERVICE};
pub use reports::{ReportOutcome, ReportStore};
pub use retention::{RetentionStore, Swept};
pub use scope::ScopeState;
pub use usage::{UsageStore, USAGE_WINDOW};

/// The whole store, as the daemon holds it.
#[async_trait]
pub trait Store:
    CodeStore
    + OutboxStore
    + IdempotencyStore
    + ReportStore
    + RetentionStore
    + ClusterStore
    + UsageStore
    + InboxStore
    + RelayStore
    + EventStore
    + Send
    + Sync
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

/// Open the store `[storage]` names: sled in the state folder, or the PostgreSQL
/// database (migrated to this build's schema; refused if it was set up with another
/// secret key). Records are sealed and digested under keys derived from `key`.
/// `clock` is the embedded backend's clock; a database uses its own, moved by the
/// clock's [`Clock::shift`] (tests).
pub async fn open(
    storage: &StorageConfig,
    cluster: &ClusterConfig,
    key: &SecretKey,
    clock: Arc<dyn Clock>,
) -> Result<SharedStore, StoreError> {
    match storage.backend {
        Backend::Sled => {
            let store = sled::SledStore::open(&storage.path.join("db"), key, clock)?
                .with_node(&cluster.node_name())?;
            Ok(Arc::new(store))
        }
        Backend::Postgres => {
            let options = connect_options(storage)?;
            let store = postgres::PgStore::open(
                &options,
                storage.pool_size,
                key,
                clock,
                &cluster.node_name(),
                cluster.lease(),
            )
            .await?;
            Ok(Arc::new(store))
        }
    }
}

/// The database `[storage]` names, with its password.
pub fn connect_options(storage: &StorageConfig) -> Result<postgres::ConnectOptions, StoreError> {
    let url = storage.url.as_deref().unwrap_or_default();
    let refused = |e: postgres::ConnectError| StoreError::Open {
        path: "[storage] url".into(),
        detail: e.to_string(),
    };
    postgres::ConnectOptions::parse(url)
        .and_then(|options| options.with_password_from(storage.password_file.as_deref()))
        .map_err(refused)
}

#[cfg(test)]
pub(crate) mod tests;
