//! Per-modem send counts in sled: `modem_sends` keyed by time first, so the purge
//! of sends older than a day is a range from the start of the tree.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SledStore;
use crate::store::{StoreError, UsageStore, USAGE_WINDOW};

/// Milliseconds since the epoch, shifted so that byte order is time order.
pub(super) fn time_bytes(at: DateTime<Utc>) -> [u8; 8] {
    // The cast flips the sign bit's meaning: negative times sort before positive ones.
    ((at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let raw = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?) ^ (1 << 63);
    DateTime::from_timestamp_millis(raw as i64)
}

/// `time ‖ modem ‖ 0 ‖ message id`.
pub(super) fn send_key(at: DateTime<Utc>, modem: &str, message_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + modem.len() + 1 + message_id.len());
    key.extend_from_slice(&time_bytes(at));
    key.extend_from_slice(modem.as_bytes());
    key.push(0);
    key.extend_from_slice(message_id.as_bytes());
    key
}

/// Remove up to `max` entries of a tree keyed by time first that are older than
/// `before`; how many went.
pub(super) fn purge_before(
    tree: &::sled::Tree,
    before: DateTime<Utc>,
    max: usize,
) -> Result<usize, StoreError> {
    let mut purged = 0;
    for entry in tree.range(..time_bytes(before).to_vec()).take(max) {
        let (key, _) = entry?;
        tree.remove(key)?;
        purged += 1;
    }
    Ok(purged)
}

fn modem_of(key: &[u8]) -> Option<&[u8]> {
    let rest = key.get(8..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    rest.get(..end)
}

#[async_trait]
impl UsageStore for SledStore {
    async fn modem_sends(
        &self,
        modem: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u32)>, StoreError> {
        let mut sends = Vec::new();
        for entry in self.modem_sends.range(time_bytes(since).to_vec()..) {
            let (key, value) = entry?;
            if modem_of(&key) != Some(modem.as_bytes()) {
                continue;
            }
            if let Some(at) = time_from(&key).filter(|at| *at > since) {
                sends.push((at, u32::from(value.first().copied().unwrap_or(0))));
            }
        }
        Ok(sends)
    }

    async fn purge_modem_sends(&self, max: usize) -> Result<usize, StoreError> {
        let purged = purge_before(&self.modem_sends, self.clock.now() - USAGE_WINDOW, max)?;
        self.durable().await?;
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_name_their_modem() {
        let early = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let late = early + chrono::Duration::milliseconds(1);
        let before_epoch = DateTime::from_timestamp(-5, 0).unwrap();
        let keys = [
            send_key(before_epoch, "b", "x"),
            send_key(early, "zz", "SM1"),
            send_key(late, "a", "SM2"),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(modem_of(&keys[1]), Some(&b"zz"[..]));
        assert_eq!(time_from(&keys[2]), Some(late));
        assert_eq!(time_from(&keys[0]), Some(before_epoch));
    }
}
