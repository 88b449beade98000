//! Received SMS on PostgreSQL: one `received_sms` row each, any host's modems'; every
//! host answers `GET /sms/inbox` from it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{in_transaction, Outcome, PgStore};
use crate::store::{received_event, InboxStore, ReceivedSms, StoreError};

#[async_trait]
impl InboxStore for PgStore {
    async fn store_received(&self, sms: &ReceivedSms) -> Result<(), StoreError> {
        let sealed = self
            .at_rest
            .seal_received(&sms.id, &sms.sender, &sms.text, &sms.sent_at);
        let parts = i32::try_from(sms.parts).unwrap_or(i32::MAX);
        in_transaction!(self, |tx, now| {
            let inserted = tx.execute(
                "INSERT INTO received_sms (id, host, modem, received_at, parts, incomplete, sealed) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                &[
                    &sms.id,
                    &sms.host,
                    &sms.modem,
                    &sms.received_at,
                    &parts,
                    &sms.incomplete,
                    &sealed,
                ],
            )
            .await?;
            // Told once: a repeat of the same SMS (kept again after a crash) is not news.
            if inserted == 1 {
                self.insert_events(tx, vec![received_event(sms)], now)
                    .await?;
            }
            Ok(Outcome::Commit(()))
        })
    }

    async fn received(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<ReceivedSms>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = in_transaction!(self, |tx, _now| {
            let rows = tx
                .query(
                    "SELECT id, host, modem, received_at, parts, incomplete, sealed \
                     FROM received_sms WHERE $1::timestamptz IS NULL OR received_at > $1 \
                     ORDER BY received_at DESC, id DESC LIMIT $2",
                    &[&since, &limit],
                )
                .await?;
            Ok(Outcome::Commit(rows))
        })?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                let sealed: Vec<u8> = row.get(6);
                let (sender, text, sent_at) = self.at_rest.unseal_received(&id, &sealed)?;
                let parts: i32 = row.get(4);
                Ok(ReceivedSms {
                    id,
                    host: row.get(1),
                    modem: row.get(2),
                    sender,
                    text,
                    received_at: row.get(3),
                    sent_at,
                    parts: u32::try_from(parts).unwrap_or(0),
                    incomplete: row.get(5),
                })
            })
            .collect()
    }

    async fn purge_received(
        &self,
        retention: chrono::Duration,
        max: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        in_transaction!(self, |tx, now| {
            let purged = tx
                .execute(
                    "DELETE FROM received_sms WHERE id IN ( \
                       SELECT id FROM received_sms WHERE received_at < $1 \
                       ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&(now - retention), &limit],
                )
                .await?;
            Ok(Outcome::Commit(usize::try_from(purged).unwrap_or(0)))
        })
    }
}
