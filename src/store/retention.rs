//! Forgetting: expired codes, old idempotency keys, settled message histories past
//! their retention, and limit records that can no longer refuse anything. Without
//! this the store would grow with every SMS ever sent.
//!
//! Each call does a bounded slice of work, so housekeeping can give its turn back;
//! where a backend sweeps incrementally, it keeps its own place between calls.

use async_trait::async_trait;

use super::StoreError;

/// What one slice of a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records looked at.
    pub examined: usize,
    /// Records removed.
    pub removed: usize,
    /// The slice reached the end: the next one starts a new pass.
    pub pass_complete: bool,
}

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Remove up to `max` codes that have expired. Returns how many were handled:
    /// fewer than `max` means none is left.
    async fn purge_expired_codes(&self, max: usize) -> Result<usize, StoreError>;

    /// Forget idempotency keys older than their window. Returns how many.
    async fn purge_idempotency(&self) -> Result<usize, StoreError>;

    /// Look at up to `max` message histories and remove those settled (sent,
    /// delivered or failed) and created more than `retention` ago.
    async fn sweep_messages(
        &self,
        max: usize,
        retention: chrono::Duration,
    ) -> Result<Swept, StoreError>;

    /// Look at up to `max` limit records and remove those that can no longer refuse
    /// anything: send histories with no send in the last day, account budgets that are
    /// full again.
    async fn sweep_limits(&self, max: usize) -> Result<Swept, StoreError>;
}
