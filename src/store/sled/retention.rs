//! Forgetting: expired codes through the expiry index, and — by an incremental sweep
//! that needs no index of its own — old message histories and limit records that no
//! longer decide anything. Without this the store would grow with every SMS ever sent.
//!
//! Every removal is a compare-and-swap against the value that was judged, so a record
//! rewritten meanwhile (a new code for the scope, a new send to the number) is kept.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::records::{expiry_key, time_key};
use super::{decode, SledStore};
use crate::otp::{AccountBudget, SendHistory};
use crate::store::{MessageRecord, MessageStatus, RetentionStore, StoreError, Swept};

/// Where the incremental sweeps stand between calls: the key to start from (empty:
/// from the beginning).
#[derive(Debug, Default)]
pub(super) struct Cursors {
    messages: Vec<u8>,
    limits: Vec<u8>,
}

/// Where an incremental sweep stopped, and what it did on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sweep {
    /// Records looked at.
    pub examined: usize,
    /// Records removed.
    pub removed: usize,
    /// The key to start the next sweep from; `None` when the tree's end was reached
    /// (the next sweep starts over from the beginning).
    pub resume_at: Option<Vec<u8>>,
}

impl Sweep {
    fn swept(self) -> Swept {
        Swept {
            examined: self.examined,
            removed: self.removed,
            pass_complete: self.resume_at.is_none(),
        }
    }
}

/// The work runs on the blocking pool: a batch or a slice is milliseconds of
/// synchronous sled calls, which should not hold an async worker.
#[async_trait]
impl RetentionStore for SledStore {
    async fn purge_expired_codes(&self, max: usize) -> Result<usize, StoreError> {
        let (store, now) = (self.clone(), self.clock.now());
        let purged = blocking(move || store.purge_expired_batch(now, max)).await?;
        self.durable().await?;
        Ok(purged)
    }

    async fn purge_idempotency(&self) -> Result<usize, StoreError> {
        let (store, now) = (self.clone(), self.clock.now());
        let purged = blocking(move || store.purge_idempotency_at(now)).await?;
        self.durable().await?;
        Ok(purged)
    }

    async fn sweep_messages(
        &self,
        max: usize,
        retention: chrono::Duration,
    ) -> Result<Swept, StoreError> {
        let from = self.cursor(|c| std::mem::take(&mut c.messages));
        let (store, before) = (self.clone(), self.clock.now() - retention);
        let sweep = blocking(move || store.sweep_messages_from(&from, max, before)).await?;
        self.cursor(|c| c.messages = sweep.resume_at.clone().unwrap_or_default());
        self.durable().await?;
        Ok(sweep.swept())
    }

    async fn sweep_limits(&self, max: usize) -> Result<Swept, StoreError> {
        let from = self.cursor(|c| std::mem::take(&mut c.limits));
        let (store, now) = (self.clone(), self.clock.now());
        let sweep = blocking(move || store.sweep_limits_from(&from, max, now)).await?;
        self.cursor(|c| c.limits = sweep.resume_at.clone().unwrap_or_default());
        self.durable().await?;
        Ok(sweep.swept())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Backend(format!("housekeeping task failed: {e}")))?
}

impl SledStore {
    fn cursor<T>(&self, with: impl FnOnce(&mut Cursors) -> T) -> T {
        // The cursors are plain keys: a panic elsewhere cannot leave them torn.
        with(&mut self.cursors.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Remove up to `max` codes that expired before `now`, through the expiry index.
    /// Returns how many index entries were handled: fewer than `max` means none is left.
    pub(super) fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<usize, StoreError> {
        let due: Vec<::sled::IVec> = self
            .expiry
            .range(..time_key(now).to_vec())
            .keys()
            .take(max)
            .collect::<Result<_, _>>()?;
        let mut index_removals = ::sled::Batch::default();
        for index_key in &due {
            let scope_key = &index_key[8..];
            // Only the code this entry indexes goes: a newer code may have replaced it
            // under the same scope, or it was used or cancelled (then nothing changes,
            // and a newer code is purged when its own entry falls due).
            self.update_scope_at(scope_key, |record| {
                let indexed = record.code.as_ref().is_some_and(|code| {
                    expiry_key(code.expires_at, scope_key) == index_key.as_ref()
                });
                if indexed {
                    record.purge_code(now);
                }
            })?;
            index_removals.remove(index_key.as_ref());
        }
        self.expiry.apply_batch(index_removals)?;
        Ok(due.len())
    }

    /// Look at up to `max` message histories from `from` on and remove those whose
    /// message was created before `created_before` and is no longer queued or being
    /// sent (a message still in the outbox keeps its history whatever its age).
    pub(super) fn sweep_messages_from(
        &self,
        from: &[u8],
        max: usize,
        created_before: DateTime<Utc>,
    ) -> Result<Sweep, StoreError> {
        self.sweep(&self.messages, from, max, |_, bytes| {
            let record: MessageRecord = decode(bytes, "messages")?;
            let settled = !matches!(
                record.status,
                MessageStatus::Queued | MessageStatus::Sending
            );
            Ok(settled && record.created_at < created_before)
        })
    }

    /// Look at up to `max` limit records from `from` on and remove those that can no
    /// longer refuse anything: send histories with no send in the last day, account
    /// budgets that are full again. (Failure counts live with the codes; see
    /// [`SledStore::purge_expired_batch`].)
    pub(super) fn sweep_limits_from(
        &self,
        from: &[u8],
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Sweep, StoreError> {
        self.sweep(&self.limits, from, max, |key, bytes| {
            Ok(match key.first() {
                Some(b'n') => decode::<SendHistory>(bytes, "limits")?.is_stale(now),
                Some(b'r') => decode::<AccountBudget>(bytes, "limits")?.is_full(now),
                _ => false,
            })
        })
    }

    fn sweep(
        &self,
        tree: &::sled::Tree,
        from: &[u8],
        max: usize,
        removable: impl Fn(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<Sweep, StoreError> {
        let mut sweep = Sweep::default();
        for entry in tree.range(from.to_vec()..) {
            let (key, value) = entry?;
            if sweep.examined == max {
                sweep.resume_at = Some(key.to_vec());
                break;
            }
            sweep.examined += 1;
            // A record that does not decode is left for an operator to look at rather
            // than silently deleted.
            if removable(&key, &value).unwrap_or(false)
                && tree
                    .compare_and_swap(&key, Some(value), None::<&[u8]>)?
                    .is_ok()
            {
                sweep.removed += 1;
            }
        }
        Ok(sweep)
    }
}
