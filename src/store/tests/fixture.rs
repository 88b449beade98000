//! A store of each backend for one test, on a clock the test moves by hand.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::otp::{Clock, ManualClock, SecretKey};
use crate::store::postgres::{ConnectOptions, PgStore};
use crate::store::sled::SledStore;
use crate::store::SharedStore;

#[path = "../../../tests/support/postgres.rs"]
pub mod postgres_server;

pub struct Fixture {
    pub store: SharedStore,
    clock: Arc<ManualClock>,
    _state: tempfile::TempDir,
    database: Option<postgres_server::TestDatabase>,
}

/// The host name the PostgreSQL fixtures run as.
pub const NODE: &str = "test-host";

pub fn key() -> SecretKey {
    SecretKey::from_bytes([5; 32])
}

impl Fixture {
    pub fn sled() -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::default());
        let store =
            SledStore::open(&state.path().join("db"), &key(), clock.clone()).expect("open sled");
        Self {
            store: Arc::new(store),
            clock,
            _state: state,
            database: None,
        }
    }

    /// A store on a fresh database of the test PostgreSQL server.
    pub async fn postgres() -> Self {
        let database = postgres_server::TestDatabase::create().await;
        let clock = Arc::new(ManualClock::default());
        let store = open_postgres(&database.url, clock.clone(), NODE).await;
        Self {
            store: Arc::new(store),
            clock,
            _state: tempfile::tempdir().expect("temp dir"),
            database: Some(database),
        }
    }

    /// Another host on the same database (PostgreSQL only).
    pub async fn host(&self, node: &str) -> SharedStore {
        let database = self.database.as_ref().expect("a PostgreSQL fixture");
        Arc::new(open_postgres(&database.url, self.clock.clone(), node).await)
    }

    /// Move the store's clock on.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The store as the same host sees it after a restart. sled's file lock lets one
    /// process hold the database, and its handle holds nothing a restart forgets: the
    /// same handle stands for the restarted process. On PostgreSQL, a new store under
    /// the same host name.
    pub async fn restart(&self) -> SharedStore {
        match &self.database {
            None => self.store.clone(),
            Some(_) => {
                // What a crash leaves is the same; a clean stop lets the name go, so
                // the new process need not wait out the old heartbeat.
                self.store.close().await.expect("close");
                self.host(NODE).await
            }
        }
    }
}

async fn open_postgres(url: &str, clock: Arc<ManualClock>, node: &str) -> PgStore {
    let options = ConnectOptions::parse(url).expect("test database URL");
    PgStore::open(
        &options,
        8,
        &key(),
        clock,
        node,
        std::time::Duration::from_secs(15),
    )
    .await
    .expect("open the PostgreSQL store")
}
