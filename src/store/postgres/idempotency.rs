//! `Idempotency-Key` records on PostgreSQL, by (account, keyed digest of the key).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::from_pg;
use super::{in_transaction, Outcome, PgStore};
use crate::store::idempotency::KeyRecord;
use crate::store::{Begin, IdempotencyStore, StoreError, StoredAnswer};

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn begin_idempotent(
        &self,
        account: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Begin, StoreError> {
        let digest = self.at_rest.idempotency_key_digest(key).to_vec();
        let fingerprint = self.at_rest.fingerprint_digest(fingerprint);
        in_transaction!(self, |tx, now| {
            let taken = tx
                .query_opt(
                    "INSERT INTO idempotency_keys (account, key_digest, fingerprint, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                    &[&account, &digest, &fingerprint, &now],
                )
                .await?;
            if taken.is_some() {
                return Ok(Outcome::Commit(Begin::Proceed));
            }
            let row = tx
                .query_one(
                    "SELECT fingerprint, created_at, answer_status, answer_body \
                     FROM idempotency_keys WHERE account = $1 AND key_digest = $2 FOR UPDATE",
                    &[&account, &digest],
                )
                .await?;
            let status: Option<i16> = row.get(2);
            let body: Option<String> = row.get(3);
            let existing = KeyRecord {
                fingerprint: row.get(0),
                created_at: row.get::<_, DateTime<Utc>>(1),
                answer: status.zip(body).map(|(status, body)| StoredAnswer {
                    status: u16::try_from(status).unwrap_or(200),
                    body,
                }),
            };
            if let Some(begin) = existing.judge(&fingerprint, now) {
                return Ok(Outcome::Commit(begin));
            }
            // Stale or abandoned: the key is this request's now.
            tx.execute(
                "UPDATE idempotency_keys SET fingerprint = $3, created_at = $4, \
                   answer_status = NULL, answer_body = NULL \
                 WHERE account = $1 AND key_digest = $2",
                &[&account, &digest, &fingerprint, &now],
            )
            .await?;
            Ok(Outcome::Commit(Begin::Proceed))
        })
    }

    async fn finish_idempotent(
        &self,
        account: &str,
        key: &str,
        answer: Option<StoredAnswer>,
    ) -> Result<(), StoreError> {
        let digest = self.at_rest.idempotency_key_digest(key).to_vec();
        let client = self.client().await?;
        match answer {
            Some(answer) => {
                let status = i16::try_from(answer.status).unwrap_or(500);
                client
                    .execute(
                        "UPDATE idempotency_keys SET answer_status = $3, answer_body = $4 \
                         WHERE account = $1 AND key_digest = $2",
                        &[&account, &digest, &status, &answer.body],
                    )
                    .await
            }
            None => {
                client
                    .execute(
                        "DELETE FROM idempotency_keys WHERE account = $1 AND key_digest = $2",
                        &[&account, &digest],
                    )
                    .await
            }
        }
        .map_err(from_pg)?;
        Ok(())
    }
}
