//! The outbox on PostgreSQL: claimed with `FOR UPDATE SKIP LOCKED` under a lease and
//! a fencing token; every later write by the holder is conditional on the token, so a
//! host presumed dead cannot undo what another host did after it took over.
//!
//! Statements that do not depend on each other are prepared, then sent together
//! (`tokio::join!`, one round trip, in order), and their results read in statement
//! order, so that when one fails the error reported is its own, not the "transaction
//! aborted" of those after it.
//!
//! A message sent `from` the number of another live host's ready modem is left to
//! that host (by the heartbeats in `host_modems`); this host's own modems are its
//! dispatcher's to choose.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::from_pg;
use super::statements::Tx;
use super::{from_json, in_transaction, Outcome, PgStore, TxError};
use crate::store::EventKind;
use crate::store::{
    message_event_of, Claimed, Lease, MessageRecord, MessageStatus, OutboundMessage, OutboxStore,
    Route, StoreError, Transition, EXPIRED_IN_QUEUE,
};
use tokio_postgres::types::ToSql;

/// Due messages locked per claim: how far a claim looks past messages none of this
/// host's modems can take now (another host's `from` number, say).
const CLAIM_BATCH: i64 = 32;

/// What `outbox.state` holds besides `queued`.
const CLAIMED: &str = "claimed";
const SUBMITTING: &str = "submitting";

/// Append `$3` (a transition) to message `$1`'s history and set its status `$2` (and
/// the fields of `$4`), in one statement. A history already swept away takes nothing.
const PUSH_TRANSITION: &str = "UPDATE messages SET status = $2, record = record || $4::jsonb || \
       jsonb_build_object('status', $2::text, \
         'history', (record -> 'history') || jsonb_build_array($3::jsonb)) \
     WHERE id = $1 RETURNING account, record ->> 'service', record ->> 'to_masked'";

const CLAIM: &str = "UPDATE outbox SET state = 'claimed', host = $2, modem = $3, \
       lease_token = nextval('lease_tokens'), lease_until = $4, attempts = attempts + 1 \
     WHERE id = $1 RETURNING lease_token";

const RELEASE: &str = "DELETE FROM outbox WHERE id = $1 AND lease_token = $2";

const INDEX_PARTS: &str =
    "INSERT INTO sent_parts (host, modem, mr, message_id, recipient, sent_at) \
     SELECT $1, $2, mr, $4, $5, $6 FROM unnest($3::smallint[]) AS mr \
     ON CONFLICT (host, modem, mr) DO UPDATE SET message_id = excluded.message_id, \
       recipient = excluded.recipient, sent_at = excluded.sent_at";

/// A send counted against the modem's caps ([`crate::store::UsageStore`]).
const COUNT_SEND: &str =
    "INSERT INTO modem_sends (host, modem, sent_at, message_id, parts) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING";

/// [`PUSH_TRANSITION`], and the event the transition makes (if some endpoint wants
/// it) in the same transaction, stamped `now`.
pub(super) async fn push_transition(
    store: &PgStore,
    tx: &Tx<'_>,
    id: &str,
    transition: &Transition,
    extra: Option<serde_json::Value>,
) -> Result<(), tokio_postgres::Error> {
    let status = transition.status.as_str();
    let json = super::to_json(transition);
    let extra = extra.unwrap_or_else(|| serde_json::json!({}));
    let row = tx
        .query_opt(PUSH_TRANSITION, &[&id, &status, &json, &extra])
        .await?;
    let Some(row) = row.filter(|_| !store.events_off()) else {
        return Ok(());
    };
    let Some(kind) = EventKind::of_transition(transition.status) else {
        return Ok(());
    };
    let (account, service, to_masked): (String, Option<String>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    let event = message_event_of(
        &account,
        id,
        service.as_deref().unwrap_or_default(),
        to_masked.as_deref().unwrap_or_default(),
        kind,
        transition.modem.as_deref(),
        transition.detail.as_deref(),
        &store.node,
    );
    store.insert_events(tx, vec![event], transition.at).await
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT min(due_at) FROM outbox WHERE state = 'queued'", &[])
            .await
            .map_err(from_pg)?;
        Ok(row.get(0))
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM outbox WHERE state = 'queued'", &[])
            .await
            .map_err(from_pg)?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn claim_next(&self, route: Route<'_>) -> Result<Option<Claimed>, StoreError> {
        in_transaction!(self, |tx, now| {
            let rows = tx
                .query(
                    "SELECT o.id, o.account, o.sealed, o.expires_at, o.attempts, \
                       o.unconfirmed, o.last_modem \
                     FROM outbox o WHERE o.state = 'queued' AND o.due_at <= $1 \
                       AND (NOT EXISTS ( \
                         SELECT 1 FROM host_modems m JOIN hosts h ON h.node = m.host \
                         WHERE m.number_digest = o.from_digest AND m.host <> $3 AND m.ready \
                           AND h.seen_at >= $1 - $4::bigint * interval '1 microsecond') \
                       OR EXISTS ( \
                         SELECT 1 FROM host_modems mine \
                         WHERE mine.host = $3 AND mine.number_digest = o.from_digest)) \
                     ORDER BY o.due_at, o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED",
                    &[&now, &CLAIM_BATCH, &self.node, &self.lease_micros()],
                )
                .await?;
            for row in rows {
                let id: String = row.get(0);
                let expires_at: DateTime<Utc> = row.get(3);
                if now >= expires_at {
                    tx.execute("DELETE FROM outbox WHERE id = $1", &[&id])
                        .await?;
                    let failed =
                        Transition::new(now, MessageStatus::Failed).because(EXPIRED_IN_QUEUE);
                    push_transition(self, tx, &id, &failed, None).await?;
                    continue;
                }
                let sealed: Vec<u8> = row.get(2);
                let (from, to, text) = self.at_rest.unseal(&id, &sealed)?;
                let mut message = OutboundMessage {
                    id,
                    account: row.get(1),
                    from,
                    to,
                    text,
                    expires_at,
                    attempts: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
                    unconfirmed: u32::try_from(row.get::<_, i32>(5)).unwrap_or(0),
                    last_modem: row.get(6),
                };
                let Some(modem) = route(&message) else {
                    continue;
                };
                message.attempts += 1;
                let sending = Transition::sending(now, &modem, message.attempts);
                let lease_until = now + self.lease;
                let claim_params: [&(dyn ToSql + Sync); 4] =
                    [&message.id, &self.node, &modem, &lease_until];
                // Prepared first, then sent together in this order (see `Tx::prepare`).
                let claim_statement = tx.prepare(CLAIM).await?;
                tx.prepare(PUSH_TRANSITION).await?;
                let (token, pushed) = tokio::join!(
                    tx.run_one(&claim_statement, &claim_params),
                    push_transition(self, tx, &message.id, &sending, None),
                );
                let token: i64 = token?.get(0);
                pushed?;
                let lease = Lease {
                    message_id: message.id.clone(),
                    token,
                };
                return Ok(Outcome::Commit(Some(Claimed {
                    message,
                    modem,
                    lease,
                })));
            }
            Ok(Outcome::Commit(None))
        })
    }

    async fn begin_submit(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.extend_lease(lease, Some(SUBMITTING)).await
    }

    async fn renew(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.extend_lease(lease, None).await
    }

    async fn mark_sent(
        &self,
        lease: &Lease,
        message: &OutboundMessage,
        modem: &str,
        message_references: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let recipient = self.at_rest.subscriber_digest(&message.to);
        let references: Vec<i16> = message_references.iter().map(|&mr| i16::from(mr)).collect();
        in_transaction!(self, |tx, now| {
            let mut sent = Transition::new(now, MessageStatus::Sent).on(Some(modem));
            sent.message_references = message_references.clone();
            let parts = u8::try_from(message_references.len()).unwrap_or(u8::MAX);
            let counts = serde_json::json!({"parts": parts, "delivered_parts": 0});
            let part_params: [&(dyn ToSql + Sync); 6] = [
                &self.node,
                &modem,
                &references,
                &message.id,
                &recipient,
                &now,
            ];
            // One round trip for all three, prepared first and sent in this order;
            // rolled back if the lease is gone.
            let release_statement = tx.prepare(RELEASE).await?;
            let index_statement = tx.prepare(INDEX_PARTS).await?;
            tx.prepare(PUSH_TRANSITION).await?;
            let count_statement = tx.prepare(COUNT_SEND).await?;
            let release_params: [&(dyn ToSql + Sync); 2] = [&lease.message_id, &lease.token];
            let parts_sent = i16::from(parts);
            let count_params: [&(dyn ToSql + Sync); 5] =
                [&self.node, &modem, &now, &message.id, &parts_sent];
            let (released, indexed, pushed, counted) = tokio::join!(
                tx.run(&release_statement, &release_params),
                tx.run(&index_statement, &part_params),
                push_transition(self, tx, &message.id, &sent, Some(counts)),
                tx.run(&count_statement, &count_params),
            );
            let released = released? == 1;
            if !released {
                return Ok(Outcome::Rollback(false));
            }
            indexed?;
            pushed?;
            counted?;
            Ok(Outcome::Commit(true))
        })
    }

    async fn mark_failed(
        &self,
        lease: &Lease,
        modem: Option<&str>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        in_transaction!(self, |tx, now| {
            if !release(tx, lease).await? {
                return Ok(Outcome::Rollback(false));
            }
            let failed = Transition::new(now, MessageStatus::Failed)
                .on(modem)
                .because(reason);
            push_transition(self, tx, &lease.message_id, &failed, None).await?;
            Ok(Outcome::Commit(true))
        })
    }

    async fn retry_later(
        &self,
        lease: &Lease,
        message: &OutboundMessage,
        modem: Option<&str>,
        reason: &str,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let attempts = i32::try_from(message.attempts).unwrap_or(i32::MAX);
        let unconfirmed = i32::try_from(message.unconfirmed).unwrap_or(i32::MAX);
        let last_modem = modem.map(str::to_owned).or(message.last_modem.clone());
        in_transaction!(self, |tx, now| {
            let queued = tx
                .execute(
                    "UPDATE outbox SET state = 'queued', due_at = $3, attempts = $4, \
                       unconfirmed = $5, last_modem = $6, host = NULL, modem = NULL, \
                       lease_token = NULL, lease_until = NULL \
                     WHERE id = $1 AND lease_token = $2",
                    &[
                        &lease.message_id,
                        &lease.token,
                        &due,
                        &attempts,
                        &unconfirmed,
                        &last_modem,
                    ],
                )
                .await?;
            if queued != 1 {
                return Ok(Outcome::Rollback(false));
            }
            let transition = Transition::new(now, MessageStatus::Queued)
                .on(modem)
                .because(format!("retry at {}: {reason}", due.to_rfc3339()));
            push_transition(self, tx, &lease.message_id, &transition, None).await?;
            Ok(Outcome::Commit(true))
        })
    }

    async fn requeue_abandoned(&self) -> Result<usize, StoreError> {
        self.requeue(true).await
    }

    async fn reclaim_expired(&self) -> Result<usize, StoreError> {
        self.requeue(false).await
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT record FROM messages WHERE id = $1", &[&id])
            .await
            .map_err(from_pg)?;
        row.map(|row| from_json(row.get(0), "messages")).transpose()
    }
}

/// Take a message out of the outbox if `lease` still holds it.
async fn release(tx: &Tx<'_>, lease: &Lease) -> Result<bool, TxError> {
    let deleted = tx
        .execute(RELEASE, &[&lease.message_id, &lease.token])
        .await?;
    Ok(deleted == 1)
}

impl PgStore {
    /// Push the lease's end out by `lease_secs` (and move its state on), if it holds.
    async fn extend_lease(&self, lease: &Lease, state: Option<&str>) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let extended = client
            .execute(
                "UPDATE outbox SET state = coalesce($4, state), \
                   lease_until = now() + $1::bigint * interval '1 microsecond' + $5::bigint * interval '1 microsecond' \
                 WHERE id = $2 AND lease_token = $3",
                &[
                    &self.shift(),
                    &lease.message_id,
                    &lease.token,
                    &state,
                    &self.lease.num_microseconds().unwrap_or(i64::MAX),
                ],
            )
            .await
            .map_err(from_pg)?;
        Ok(extended == 1)
    }

    /// Queue again what its holder will not finish: this host's own claims when
    /// `own` (at start: it stopped mid-send), and any host's whose lease ran out.
    /// Those whose PDU may have reached a modem say they may arrive twice.
    async fn requeue(&self, own: bool) -> Result<usize, StoreError> {
        in_transaction!(self, |tx, now| {
            let rows = tx
                .query(
                    "SELECT id, state, host FROM outbox \
                     WHERE state <> 'queued' AND (($3 AND host = $2) OR lease_until < $1) \
                     FOR UPDATE SKIP LOCKED",
                    &[&now, &self.node, &own],
                )
                .await?;
            for row in &rows {
                let (id, state, host): (String, String, Option<String>) =
                    (row.get(0), row.get(1), row.get(2));
                let host = host.unwrap_or_default();
                tx.execute(
                    "UPDATE outbox SET state = 'queued', due_at = $2, host = NULL, modem = NULL, \
                       lease_token = NULL, lease_until = NULL WHERE id = $1",
                    &[&id, &now],
                )
                .await?;
                let detail = if state == SUBMITTING {
                    format!(
                        "host {host} stopped while this message was being sent; it may arrive twice"
                    )
                } else {
                    debug_assert_eq!(state, CLAIMED);
                    format!("host {host} stopped before sending it; queued again")
                };
                let queued = Transition::new(now, MessageStatus::Queued).because(detail);
                push_transition(self, tx, &id, &queued, None).await?;
            }
            Ok(Outcome::Commit(rows.len()))
        })
    }
}
