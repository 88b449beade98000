//! Per-modem send counts on PostgreSQL: rows of `modem_sends`, written by `mark_sent`,
//! read at start for this host's modems, purged by any host's housekeeping.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{in_transaction, Outcome, PgStore};
use crate::store::{StoreError, UsageStore, USAGE_WINDOW};

#[async_trait]
impl UsageStore for PgStore {
    async fn modem_sends(
        &self,
        modem: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u32)>, StoreError> {
        in_transaction!(self, |tx, _now| {
            let rows = tx
                .query(
                    "SELECT sent_at, parts FROM modem_sends \
                     WHERE host = $1 AND modem = $2 AND sent_at > $3",
                    &[&self.node, &modem, &since],
                )
                .await?;
            let sends = rows
                .iter()
                .map(|row| {
                    let parts: i16 = row.get(1);
                    (row.get(0), u32::try_from(parts).unwrap_or(0))
                })
                .collect();
            Ok(Outcome::Commit(sends))
        })
    }

    async fn purge_modem_sends(&self, max: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        in_transaction!(self, |tx, now| {
            let purged = tx
                .execute(
                    "DELETE FROM modem_sends WHERE ctid IN ( \
                       SELECT ctid FROM modem_sends WHERE sent_at < $1 \
                       LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&(now - USAGE_WINDOW), &limit],
                )
                .await?;
            Ok(Outcome::Commit(usize::try_from(purged).unwrap_or(0)))
        })
    }
}
