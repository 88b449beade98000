//! Events on PostgreSQL: written by the transaction of the change they describe, read
//! in (transaction id, row id) order once no older transaction can still commit, and
//! each endpoint delivered by one host at a time (a lease on its cursor row, as on an
//! outbox message).
//!
//! Why the transaction id: row ids come from a sequence, and a transaction that took
//! id 5 may commit after one that took id 6; a cursor at 6 would skip 5 for good.
//! Reading only rows whose transaction is older than the oldest one still running
//! (`pg_snapshot_xmin`) and ordering by it makes a late commit land after the cursor.
//! The cost: a long-running writing transaction anywhere in the cluster holds event
//! delivery back until it ends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::error::from_pg;
use super::statements::Tx;
use super::{in_transaction, Outcome, PgStore};
use crate::store::{
    EventBatch, EventCursor, EventFilter, EventInterest, EventKind, EventStore, NewEvent,
    StoreError, StoredEvent,
};

/// Rows looked at per read: bounds the work of an endpoint whose filter skips most.
const SCAN_LIMIT: i64 = 1000;

const INSERT_EVENT: &str = "INSERT INTO events (event_id, account, kind, created_at, sealed) \
     VALUES ($1, $2, $3, $4, $5)";

impl PgStore {
    /// Write the events some endpoint wants, in the transaction `tx` (of the change
    /// they describe), stamped `now`.
    pub(super) async fn insert_events(
        &self,
        tx: &Tx<'_>,
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
    ) -> Result<(), tokio_postgres::Error> {
        for event in events {
            let Some(event) = self.events.keep(Some(event)) else {
                continue;
            };
            let sealed = self
                .at_rest
                .seal_event(&event.id, &serde_json::Value::Object(event.data.clone()));
            let params: [&(dyn ToSql + Sync); 5] =
                [&event.id, &event.account, &event.kind.name(), &now, &sealed];
            tx.execute(INSERT_EVENT, &params).await?;
        }
        Ok(())
    }

    /// Whether no endpoint wants anything (so nothing need be read to decide).
    pub(super) fn events_off(&self) -> bool {
        self.events.is_off()
    }

    /// The event of `row` if `filter` takes it; its data is unsealed only then.
    fn stored_event(
        &self,
        row: &tokio_postgres::Row,
        filter: &EventFilter,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let account: Option<String> = row.get(3);
        let Some(kind) = filter.takes(account.as_deref(), row.get(4)) else {
            return Ok(None);
        };
        let id: String = row.get(2);
        let sealed: Vec<u8> = row.get(6);
        let data = match self.at_rest.unseal_event(&id, &sealed)? {
            serde_json::Value::Object(data) => data,
            _ => serde_json::Map::new(),
        };
        Ok(Some(StoredEvent {
            cursor: EventCursor {
                major: row.get(0),
                minor: row.get(1),
            },
            id,
            account,
            kind,
            created_at: row.get(5),
            data,
        }))
    }
}

#[async_trait]
impl EventStore for PgStore {
    fn set_event_interest(&self, interest: EventInterest) {
        self.events.set(interest);
    }

    fn wants_event(&self, account: Option<&str>, kind: EventKind) -> bool {
        self.events.wants(account, kind)
    }

    async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events
            .iter()
            .all(|e| !self.events.wants(e.account.as_deref(), e.kind))
        {
            return Ok(());
        }
        in_transaction!(self, |tx, now| {
            self.insert_events(tx, events.to_vec(), now).await?;
            Ok(Outcome::Commit(()))
        })
    }

    async fn webhook_cursor(&self, endpoint: &str) -> Result<EventCursor, StoreError> {
        in_transaction!(self, |tx, _now| {
            // A new endpoint starts after the last event written so far.
            tx.execute(
                "INSERT INTO webhook_cursors (endpoint, cursor_tx, cursor_id) \
                 SELECT $1, coalesce((SELECT tx FROM events ORDER BY tx DESC, id DESC LIMIT 1), '0'::xid8), \
                   coalesce((SELECT id FROM events ORDER BY tx DESC, id DESC LIMIT 1), 0) \
                 ON CONFLICT (endpoint) DO NOTHING",
                &[&endpoint],
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT cursor_tx::text::bigint, cursor_id FROM webhook_cursors WHERE endpoint = $1",
                    &[&endpoint],
                )
                .await?;
            Ok(Outcome::Commit(EventCursor {
                major: row.get(0),
                minor: row.get(1),
            }))
        })
    }

    async fn events_after(
        &self,
        cursor: EventCursor,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<EventBatch, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT tx::text::bigint, id, event_id, account, kind, created_at, sealed \
                 FROM events \
                 WHERE (tx, id) > ($1::bigint::text::xid8, $2) \
                   AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY tx, id LIMIT $3",
                &[&cursor.major, &cursor.minor, &SCAN_LIMIT],
            )
            .await
            .map_err(from_pg)?;
        let mut batch = EventBatch::default();
        for row in &rows {
            let cursor = EventCursor {
                major: row.get(0),
                minor: row.get(1),
            };
            if !batch.take(cursor, self.stored_event(row, filter)?, limit) {
                break;
            }
        }
        Ok(batch)
    }

    async fn events_pending(
        &self,
        cursor: EventCursor,
        filter: &EventFilter,
    ) -> Result<u64, StoreError> {
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.name()).collect();
        let client = self.client().await?;
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM events \
                 WHERE (tx, id) > ($1::bigint::text::xid8, $2) \
                   AND account IS NOT DISTINCT FROM $3 AND kind = ANY($4)",
                &[&cursor.major, &cursor.minor, &filter.account, &kinds],
            )
            .await
            .map_err(from_pg)?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn claim_webhook(
        &self,
        endpoint: &str,
        node: &str,
        lease: chrono::Duration,
    ) -> Result<bool, StoreError> {
        in_transaction!(self, |tx, now| {
            let until = now + lease;
            let taken = tx
                .execute(
                    "UPDATE webhook_cursors SET holder = $2, lease_until = $3 \
                     WHERE endpoint = $1 AND (holder IS NULL OR holder = $2 OR lease_until < $4)",
                    &[&endpoint, &node, &until, &now],
                )
                .await?;
            Ok(Outcome::Commit(taken == 1))
        })
    }

    async fn advance_webhook(
        &self,
        endpoint: &str,
        node: &str,
        to: EventCursor,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let moved = client
            .execute(
                "UPDATE webhook_cursors SET cursor_tx = $3::bigint::text::xid8, cursor_id = $4 \
                 WHERE endpoint = $1 AND holder = $2",
                &[&endpoint, &node, &to.major, &to.minor],
            )
            .await
            .map_err(from_pg)?;
        Ok(moved == 1)
    }

    async fn purge_events(&self, age: chrono::Duration) -> Result<usize, StoreError> {
        let age_us = age.num_microseconds().unwrap_or(i64::MAX);
        in_transaction!(self, |tx, now| {
            let before = now - chrono::Duration::microseconds(age_us);
            let purged = tx
                .execute(
                    "DELETE FROM events WHERE (tx, id) IN \
                       (SELECT tx, id FROM events WHERE created_at < $1 LIMIT 10000 \
                        FOR UPDATE SKIP LOCKED)",
                    &[&before],
                )
                .await?;
            Ok(Outcome::Commit(usize::try_from(purged).unwrap_or(0)))
        })
    }
}
