//! Forgetting on PostgreSQL. Every host runs housekeeping; each slice locks the rows
//! it works on with `SKIP LOCKED`, so two hosts never do the same work or wait for
//! each other.

use async_trait::async_trait;

use super::{in_transaction, Outcome, PgStore};
use crate::store::{RetentionStore, StoreError, Swept, IDEMPOTENCY_WINDOW};

#[async_trait]
impl RetentionStore for PgStore {
    async fn purge_expired_codes(&self, max: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        in_transaction!(self, |tx, now| {
            // The code goes, and a lock that has run out with it (see
            // `ScopeState::purge_code`); a row left with nothing in it goes too.
            let purged = tx
                .query(
                    "WITH due AS ( \
                       SELECT account, service, number_digest FROM scopes \
                       WHERE code_hash IS NOT NULL AND code_expires_at < $1 \
                       ORDER BY code_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                     UPDATE scopes s SET code_hash = NULL, code_created_at = NULL, \
                       code_expires_at = NULL, code_attempts = NULL, code_max_attempts = NULL, \
                       code_message_id = NULL, \
                       failures = CASE WHEN s.locked_until <= $1 THEN 0 ELSE s.failures END, \
                       locked_until = CASE WHEN s.locked_until <= $1 THEN NULL \
                         ELSE s.locked_until END, \
                       version = s.version + 1 \
                     FROM due WHERE s.account = due.account AND s.service = due.service \
                       AND s.number_digest = due.number_digest \
                     RETURNING s.account, s.service, s.number_digest",
                    &[&now, &limit],
                )
                .await?;
            let accounts: Vec<String> = purged.iter().map(|r| r.get(0)).collect();
            let services: Vec<String> = purged.iter().map(|r| r.get(1)).collect();
            let numbers: Vec<Vec<u8>> = purged.iter().map(|r| r.get(2)).collect();
            tx.execute(
                "DELETE FROM scopes s USING unnest($1::text[], $2::text[], $3::bytea[]) \
                   AS k(account, service, number_digest) \
                 WHERE s.account = k.account AND s.service = k.service \
                   AND s.number_digest = k.number_digest \
                   AND s.code_hash IS NULL AND s.failures = 0 AND s.locked_until IS NULL",
                &[&accounts, &services, &numbers],
            )
            .await?;
            Ok(Outcome::Commit(purged.len()))
        })
    }

    async fn purge_idempotency(&self) -> Result<usize, StoreError> {
        let window = IDEMPOTENCY_WINDOW;
        in_transaction!(self, |tx, now| {
            let purged = tx
                .execute(
                    "DELETE FROM idempotency_keys WHERE created_at < $1",
                    &[&(now - window)],
                )
                .await?;
            Ok(Outcome::Commit(usize::try_from(purged).unwrap_or(0)))
        })
    }

    async fn sweep_messages(
        &self,
        max: usize,
        retention: chrono::Duration,
    ) -> Result<Swept, StoreError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        in_transaction!(self, |tx, now| {
            let removed = tx
                .execute(
                    "DELETE FROM messages WHERE id IN ( \
                       SELECT id FROM messages \
                       WHERE status IN ('sent', 'delivered', 'failed') AND created_at < $1 \
                       ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&(now - retention), &limit],
                )
                .await?;
            Ok(Outcome::Commit(slice(removed, max)))
        })
    }

    async fn sweep_limits(&self, max: usize) -> Result<Swept, StoreError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        in_transaction!(self, |tx, now| {
            // A send history with no send in the last day; a budget that is full again.
            let histories = tx
                .execute(
                    "DELETE FROM number_sends WHERE (account, number_digest) IN ( \
                       SELECT account, number_digest FROM number_sends WHERE last_send <= $1 \
                       LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&(now - chrono::Duration::days(1)), &limit],
                )
                .await?;
            let budgets = tx
                .execute(
                    "DELETE FROM account_budgets WHERE account IN ( \
                       SELECT account FROM account_budgets WHERE tat_us <= $1 \
                       LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now.timestamp_micros(), &limit],
                )
                .await?;
            let mut swept = slice(histories, max);
            let budgets = slice(budgets, max);
            swept.examined += budgets.examined;
            swept.removed += budgets.removed;
            swept.pass_complete &= budgets.pass_complete;
            Ok(Outcome::Commit(swept))
        })
    }
}

/// A slice that removed `removed` of at most `max`: the query finds only removable
/// rows, so a short slice means none is left.
fn slice(removed: u64, max: usize) -> Swept {
    let removed = usize::try_from(removed).unwrap_or(usize::MAX);
    Swept {
        examined: removed,
        removed,
        pass_complete: removed < max,
    }
}
