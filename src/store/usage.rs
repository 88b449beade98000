//! What each of this host's modems sent lately, for per-SIM caps. A send is written
//! with its message's `sent` step ([`super::OutboxStore::mark_sent`]), so the counts
//! survive a restart; rows older than [`USAGE_WINDOW`] are purged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// How far back the caps look: a rolling day.
pub const USAGE_WINDOW: chrono::Duration = chrono::Duration::hours(24);

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// This host's `modem`'s sends since `since`: (when, parts), in any order.
    async fn modem_sends(
        &self,
        modem: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u32)>, StoreError>;

    /// Forget up to `max` sends older than [`USAGE_WINDOW`]; how many went.
    async fn purge_modem_sends(&self, max: usize) -> Result<usize, StoreError>;
}
