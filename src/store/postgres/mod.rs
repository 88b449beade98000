//! The shared backend: PostgreSQL, through a pool of tokio-postgres connections, for
//! several gateway hosts at once.
//!
//! How it keeps the store's rules under concurrency from many hosts:
//! - short transactions under Read Committed; a transaction that meets a serialization
//!   failure or a deadlock is run again ([`PgStore::transaction`]), so the same SQL
//!   also suits CockroachDB and YugabyteDB;
//! - the database's clock (`now()`) decides expiry and limits, so hosts whose clocks
//!   differ still agree;
//! - one number's sends take turns on its send-history row (`FOR UPDATE`); the
//!   account's rate is one conditional statement, last, so its hot row is held only
//!   until the commit;
//! - a verification, cancel or unlock is a compare-and-swap on the scope row's
//!   `version`, as on sled;
//! - the outbox is claimed with `FOR UPDATE SKIP LOCKED` under a lease and a fencing
//!   token, and every later write by the holder is conditional on the token.
//!
//! Schema: `migrations/` (applied at start, [`migrate`]).

mod cluster;
mod codes;
mod connect;
pub(crate) mod error;
mod events;
mod idempotency;
mod inbox;
pub mod migrate;
mod outbox;
mod relay;
mod reports;
mod retention;
mod statements;
#[cfg(test)]
mod tests;
mod tls;
mod usage;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use statements::Conn;

pub use connect::{ConnectError, ConnectOptions};

use super::{AtRest, Store, StoreError};
use crate::otp::{Clock, SecretKey};
use error::{from_pg, from_pool};

/// How often a transaction that met a conflict is run again before giving up.
pub(crate) const CONFLICT_RETRIES: u32 = 5;

/// `meta` key of the secret key's fingerprint.
const KEY_FINGERPRINT: &str = "key_fingerprint";

/// The SQL for "now" on the database's clock; `$1` is the test clock's shift in
/// microseconds (0 in production).
pub(crate) const NOW: &str = "SELECT now() + $1::bigint * interval '1 microsecond'";

/// What a transaction decided: keep its writes, or undo them (a refusal found late).
pub(crate) enum Outcome<T> {
    Commit(T),
    Rollback(T),
}

/// Run a body in one Read Committed transaction that starts with the database's `now`;
/// commit or roll back as the body decides ([`Outcome`]); run it again (a few times) if
/// the database reports a serialization failure or a deadlock. Evaluates to
/// `Result<T, StoreError>`. A macro rather than a function taking an async closure:
/// the trait methods' futures must be `Send`, which higher-ranked async closures
/// cannot yet promise.
///
/// `in_transaction!(store, |tx, now| { ... Ok(Outcome::Commit(value)) })`
macro_rules! in_transaction {
    ($store:expr, |$tx:ident, $now:ident| $body:block) => {{
        let store: &PgStore = $store;
        let mut client = store.client().await?;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let attempt: Result<_, $crate::store::postgres::TxError> = async {
                let $now: chrono::DateTime<chrono::Utc> = client
                    .begin($crate::store::postgres::NOW, &[&store.shift()])
                    .await?
                    .get(0);
                let outcome = {
                    let $tx = &client.tx();
                    let outcome: Result<_, $crate::store::postgres::TxError> =
                        async { $body }.await;
                    outcome
                };
                match outcome? {
                    $crate::store::postgres::Outcome::Commit(value) => {
                        client.commit().await?;
                        Ok(value)
                    }
                    $crate::store::postgres::Outcome::Rollback(value) => {
                        client.rollback().await?;
                        Ok(value)
                    }
                }
            }
            .await;
            if attempt.is_err() {
                // A failed statement leaves the transaction aborted: end it, or the
                // connection is closed rather than pooled (`Conn`'s drop).
                let _ = client.rollback().await;
            }
            match attempt {
                Ok(value) => break Ok(value),
                Err($crate::store::postgres::TxError::Pg(e))
                    if $crate::store::postgres::error::is_conflict(&e)
                        && tries < $crate::store::postgres::CONFLICT_RETRIES =>
                {
                    continue
                }
                Err($crate::store::postgres::TxError::Pg(e)) => {
                    break Err($crate::store::postgres::error::from_pg(e))
                }
                Err($crate::store::postgres::TxError::Store(e)) => break Err(e),
            }
        }
    }};
}
use in_transaction;

/// What can stop a transaction's work: the database, or a record it read.
pub(crate) enum TxError {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    at_rest: AtRest,
    /// This host's name: claims, leases and sent parts are recorded under it.
    node: String,
    lease: chrono::Duration,
    /// Only its [`Clock::shift`] is used: the time is the database's.
    clock: Arc<dyn Clock>,
    reconnect: Arc<Reconnect>,
    /// This process's id under `node` (see `hosts` in the schema).
    instance: i64,
    /// Which events to write.
    events: Arc<super::EventGate>,
}

/// Backoff for new connections while the database is unreachable: after a failed
/// connect, requests are answered "unavailable" at once for a while (100 ms doubling
/// to 5 s) instead of each trying, and waiting for, a connection of its own.
#[derive(Debug, Default)]
struct Reconnect {
    /// Set while connects fail: the common path reads only this.
    failing: std::sync::atomic::AtomicBool,
    state: std::sync::Mutex<(Option<std::time::Instant>, std::time::Duration)>,
}

impl Reconnect {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(100);
    const MOST: std::time::Duration = std::time::Duration::from_secs(5);

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<std::time::Instant>, std::time::Duration)> {
        // Two plain values: a panic elsewhere cannot leave them torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the next attempt may be made, if not now.
    fn wait_until(&self) -> Option<std::time::Instant> {
        if !self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.lock().0.filter(|at| *at > std::time::Instant::now())
    }

    fn failed(&self) {
        let mut state = self.lock();
        state.1 = (state.1 * 2).clamp(Self::FIRST, Self::MOST);
        state.0 = Some(std::time::Instant::now() + state.1);
        self.failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn succeeded(&self) {
        if self
            .failing
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            *self.lock() = (None, std::time::Duration::ZERO);
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Where the database stands, for `check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// sms2fa never ran there: it will be migrated at start.
    Empty,
    At(i64),
}

impl PgStore {
    /// Connect, migrate the schema to this build's version, and check that the
    /// database was set up with the same secret key as this host's.
    pub async fn open(
        options: &ConnectOptions,
        pool_size: usize,
        key: &SecretKey,
        clock: Arc<dyn Clock>,
        node: &str,
        lease: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let options = options.clone().application_name(&format!("sms2fa {node}"));
        let pool = options.pool(pool_size).map_err(|e| StoreError::Open {
            path: options.describe().into(),
            detail: e.to_string(),
        })?;
        let store = Self {
            pool,
            at_rest: AtRest::new(key),
            node: node.to_owned(),
            lease: chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(15)),
            clock,
            reconnect: Arc::default(),
            instance: rand::random(),
            events: Arc::default(),
        };
        let mut client = store.client().await?;
        migrate::migrate(client.object_mut()).await?;
        store.check_key(&client).await?;
        drop(client);
        store.register().await?;
        Ok(store)
    }

    /// Connect once and read the schema version, changing nothing.
    pub async fn inspect(options: &ConnectOptions) -> Result<SchemaState, StoreError> {
        let pool = options.pool(1).map_err(|e| StoreError::Open {
            path: options.describe().into(),
            detail: e.to_string(),
        })?;
        let client = pool.get().await.map_err(from_pool)?;
        Ok(match migrate::version(&client).await? {
            None => SchemaState::Empty,
            Some(version) => SchemaState::At(version),
        })
    }

    /// A connection from the pool (a new one if none is idle).
    pub(crate) async fn client(&self) -> Result<Conn, StoreError> {
        if let Some(at) = self.reconnect.wait_until() {
            return Err(StoreError::Unavailable(format!(
                "the database was unreachable moments ago; trying again in {} ms",
                at.saturating_duration_since(std::time::Instant::now())
                    .as_millis()
            )));
        }
        match self.pool.get().await {
            Ok(client) => {
                self.reconnect.succeeded();
                Ok(Conn::new(client))
            }
            Err(e) => {
                let error = from_pool(e);
                if error.is_unavailable() {
                    self.reconnect.failed();
                }
                Err(error)
            }
        }
    }

    /// The test clock's shift, `$1` of every statement that reads the time.
    pub(crate) fn shift(&self) -> i64 {
        self.clock.shift().num_microseconds().unwrap_or(0)
    }

    /// The first host to use the database records the key's fingerprint; every other
    /// must have the same.
    async fn check_key(&self, client: &Conn) -> Result<(), StoreError> {
        let ours = self.at_rest.key_fingerprint();
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&KEY_FINGERPRINT, &ours],
            )
            .await
            .map_err(from_pg)?;
        let stored: String = client
            .query_one("SELECT value FROM meta WHERE key = $1", &[&KEY_FINGERPRINT])
            .await
            .map_err(from_pg)?
            .get(0);
        if stored != ours {
            return Err(StoreError::KeyMismatch {
                stored,
                ours: ours.to_owned(),
                key_file: "secret.key".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(from_pg)?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Every call committed before it returned; the name is let go so that a
        // restart need not wait out the lease, and the connections go.
        let unregistered = self.unregister().await;
        self.pool.close();
        unregistered
    }
}

/// A JSON column's value into a record.
fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // Our record types serialize infallibly: plain structs, string keys.
    serde_json::to_value(value).expect("record types always serialize")
}
