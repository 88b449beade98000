//! A store of each backend for one test, on a clock the test moves by hand.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::otp::{Clock, ManualClock, SecretKey};
use crate::store::sled::SledStore;
use crate::store::SharedStore;

pub struct Fixture {
    pub store: SharedStore,
    clock: Arc<ManualClock>,
    _state: tempfile::TempDir,
}

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
        }
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
    /// same handle stands for the restarted process.
    pub async fn restart(&self) -> SharedStore {
        self.store.clone()
    }
}
