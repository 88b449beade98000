//! Turns per key: requests on one key (one number's sends) go one at a time, requests
//! on different keys almost never wait for each other. A fixed set of striped locks,
//! so nothing grows with the number of keys.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const STRIPES: usize = 64;

#[derive(Debug, Clone)]
pub(super) struct Turns {
    stripes: Arc<[Mutex<()>; STRIPES]>,
    hasher: RandomState,
}

impl Default for Turns {
    fn default() -> Self {
        Self {
            stripes: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
            hasher: RandomState::new(),
        }
    }
}

impl Turns {
    /// Wait for `key`'s turn; it lasts until the guard is dropped. Hold it only across
    /// short synchronous work, never across an `.await`.
    pub(super) fn take(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        let stripe =
            usize::try_from(self.hasher.hash_one(key) % STRIPES as u64).unwrap_or_default();
        // The lock guards no data, so a panic while it was held left nothing torn.
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_takes_turns_other_keys_do_not_wait() {
        let turns = Turns::default();
        let held = turns.take(b"+15551111111");
        let again = turns
            .stripes
            .iter()
            .filter(|m| m.try_lock().is_err())
            .count();
        assert_eq!(again, 1, "exactly the key's stripe is taken");
        drop(held);
        assert!(turns.stripes.iter().all(|m| m.try_lock().is_ok()));
    }
}
