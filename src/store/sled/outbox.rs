//! The outbox: what is due, claiming for a modem, and recording each outcome.

use ::sled::transaction::{ConflictableTransactionError, Transactional};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::records::{outbox_key, time_key};
use super::reports::{report_key, SentPart};
use super::{decode_tx, encode, SledStore};
use crate::store::{
    Claimed, Lease, MessageRecord, MessageStatus, OutboundMessage, OutboxStore, Route, StoreError,
    Transition, EXPIRED_IN_QUEUE, MAY_ARRIVE_TWICE,
};

/// How far the dispatcher looks past messages no ready modem can take (e.g. waiting
/// for the modem that owns their `from` number), so one stuck sender cannot hide the
/// rest of the queue, while a claim stays cheap.
const CLAIM_SCAN_LIMIT: usize = 256;

/// One host owns a sled database: nothing to fence.
const TOKEN: i64 = 0;

#[async_trait]
impl OutboxStore for SledStore {
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some((key, _)) = self.outbox.first()? else {
            return Ok(None);
        };
        let mut millis = [0u8; 8];
        millis.copy_from_slice(&key[..8]);
        let millis = i64::try_from(u64::from_be_bytes(millis)).unwrap_or(i64::MAX);
        Ok(Utc.timestamp_millis_opt(millis).single())
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        Ok(self.outbox.len() as u64)
    }

    async fn claim_next(&self, route: Route<'_>) -> Result<Option<Claimed>, StoreError> {
        let claimed = self.claim_next_at(self.clock.now(), route)?;
        // The claim must be on disk before the SMS goes out, or a crash could send it
        // again from the outbox without the history saying so. (Messages failed on the
        // way as expired ride with the next flush: losing that write only fails them
        // again at the next claim.)
        if claimed.is_some() {
            self.durable().await?;
        }
        Ok(claimed)
    }

    async fn begin_submit(&self, _lease: &Lease) -> Result<bool, StoreError> {
        // The durable claim already stands for `submitting` (see the module doc).
        Ok(true)
    }

    async fn renew(&self, _lease: &Lease) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn mark_sent(
        &self,
        _lease: &Lease,
        message: &OutboundMessage,
        modem: &str,
        message_references: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.mark_sent_at(message, modem, message_references, self.clock.now())?;
        self.durable().await?;
        Ok(true)
    }

    async fn mark_failed(
        &self,
        lease: &Lease,
        modem: Option<&str>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let failed = Transition::new(self.clock.now(), MessageStatus::Failed)
            .on(modem)
            .because(reason);
        self.leave_inflight(&lease.message_id, failed)?;
        self.durable().await?;
        Ok(true)
    }

    async fn retry_later(
        &self,
        _lease: &Lease,
        message: &OutboundMessage,
        modem: Option<&str>,
        reason: &str,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.retry_later_at(message, modem, reason, due, self.clock.now())?;
        self.durable().await?;
        Ok(true)
    }

    async fn requeue_abandoned(&self) -> Result<usize, StoreError> {
        let requeued = self.requeue_inflight(self.clock.now())?;
        self.durable().await?;
        Ok(requeued)
    }

    async fn reclaim_expired(&self) -> Result<usize, StoreError> {
        // One host: whatever it claimed, it still holds.
        Ok(0)
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.message_record(id)
    }
}

impl SledStore {
    /// [`OutboxStore::claim_next`] at `now`, before the flush.
    fn claim_next_at(
        &self,
        now: DateTime<Utc>,
        route: Route<'_>,
    ) -> Result<Option<Claimed>, StoreError> {
        let due_end = time_key(now + chrono::Duration::milliseconds(1)).to_vec();
        for entry in self.outbox.range(..due_end).take(CLAIM_SCAN_LIMIT) {
            let (key, bytes) = entry?;
            let message = self.unseal(&bytes, "outbox")?;
            if now >= message.expires_at {
                self.finish_queued_as_expired(&key, &message, now)?;
                continue;
            }
            let Some(modem) = route(&message) else {
                continue;
            };
            let mut claimed = message.clone();
            claimed.attempts += 1;
            let sending = Transition::sending(now, &modem, claimed.attempts);
            let claimed_bytes = self.seal(&claimed);
            let taken = (&self.outbox, &self.inflight, &self.messages).transaction(
                |(outbox, inflight, messages)| {
                    if outbox.remove(key.as_ref())?.is_none() {
                        return Ok(false);
                    }
                    inflight.insert(claimed.id.as_bytes(), claimed_bytes.as_slice())?;
                    push_transition(messages, &claimed.id, sending.clone())?;
                    Ok::<_, ConflictableTransactionError<StoreError>>(true)
                },
            )?;
            if taken {
                let lease = Lease {
                    message_id: claimed.id.clone(),
                    token: TOKEN,
                };
                return Ok(Some(Claimed {
                    message: claimed,
                    modem,
                    lease,
                }));
            }
        }
        Ok(None)
    }

    /// The modem accepted every part: the message is sent and leaves `inflight`; its
    /// parts are indexed for delivery reports.
    fn mark_sent_at(
        &self,
        message: &OutboundMessage,
        modem: &str,
        message_references: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = message.id.as_str();
        let part = encode(&SentPart {
            message_id: id.to_owned(),
            recipient: self.at_rest.subscriber_digest(&message.to),
        });
        let parts = u8::try_from(message_references.len()).unwrap_or(u8::MAX);
        let mut sent = Transition::new(now, MessageStatus::Sent).on(Some(modem));
        sent.message_references = message_references.clone();
        let send_key = super::usage::send_key(now, modem, id);
        let event = self.pending_event(self.transition_event(id, &sent)?);
        (
            &self.inflight,
            &self.messages,
            &self.reports,
            &self.modem_sends,
            &self.events,
        )
            .transaction(|(inflight, messages, reports, modem_sends, events)| {
                inflight.remove(id.as_bytes())?;
                if let Some(event) = &event {
                    event.write(events)?;
                }
                for &mr in &message_references {
                    reports.insert(report_key(modem, mr), part.as_slice())?;
                }
                modem_sends.insert(send_key.as_slice(), &[parts])?;
                if let Some(bytes) = messages.get(id.as_bytes())? {
                    let mut record: MessageRecord = decode_tx(&bytes, "messages")?;
                    record.parts = parts;
                    record.delivered_parts = 0;
                    record.push(sent.clone());
                    messages.insert(id.as_bytes(), encode(&record))?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
        Ok(())
    }

    /// A temporary failure: back to the outbox, due at `due`.
    fn retry_later_at(
        &self,
        message: &OutboundMessage,
        modem: Option<&str>,
        reason: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let queued = Transition::new(now, MessageStatus::Queued)
            .on(modem)
            .because(format!("retry at {}: {reason}", due.to_rfc3339()));
        let mut message = message.clone();
        if modem.is_some() {
            message.last_modem = modem.map(str::to_owned);
        }
        let message = &message;
        let bytes = self.seal(message);
        (&self.outbox, &self.inflight, &self.messages).transaction(
            |(outbox, inflight, messages)| {
                inflight.remove(message.id.as_bytes())?;
                outbox.insert(outbox_key(due, &message.id), bytes.as_slice())?;
                push_transition(messages, &message.id, queued.clone())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }

    /// At start-up: whatever was `sending` when the process died goes back to the queue.
    /// The modem may or may not have sent it, so the SMS can arrive twice: delivery is
    /// at-least-once, and the history says so.
    fn requeue_inflight(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut requeued = 0;
        for entry in self.inflight.iter() {
            let (_, bytes) = entry?;
            let message = self.unseal(&bytes, "inflight")?;
            self.retry_later_at(&message, None, MAY_ARRIVE_TWICE, now, now)?;
            requeued += 1;
        }
        Ok(requeued)
    }

    fn finish_queued_as_expired(
        &self,
        outbox_key: &[u8],
        message: &OutboundMessage,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let failed = Transition::new(now, MessageStatus::Failed).because(EXPIRED_IN_QUEUE);
        let event = self.pending_event(self.transition_event(&message.id, &failed)?);
        (&self.outbox, &self.messages, &self.events).transaction(
            |(outbox, messages, events)| {
                outbox.remove(outbox_key)?;
                if let Some(event) = &event {
                    event.write(events)?;
                }
                push_transition(messages, &message.id, failed.clone())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }

    fn leave_inflight(&self, id: &str, transition: Transition) -> Result<(), StoreError> {
        let event = self.pending_event(self.transition_event(id, &transition)?);
        (&self.inflight, &self.messages, &self.events).transaction(
            |(inflight, messages, events)| {
                inflight.remove(id.as_bytes())?;
                if let Some(event) = &event {
                    event.write(events)?;
                }
                push_transition(messages, id, transition.clone())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }
}

fn push_transition(
    messages: &::sled::transaction::TransactionalTree,
    id: &str,
    transition: Transition,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let Some(bytes) = messages.get(id.as_bytes())? else {
        // The history was purged; the transition has nowhere to go.
        return Ok(());
    };
    let mut record: MessageRecord = decode_tx(&bytes, "messages")?;
    record.push(transition);
    messages.insert(id.as_bytes(), encode(&record))?;
    Ok(())
}
