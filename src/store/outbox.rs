//! The outbox: what is due, claiming for a modem, and recording each outcome.

use chrono::{DateTime, TimeZone, Utc};
use sled::transaction::{ConflictableTransactionError, Transactional};

use super::records::{outbox_key, time_key};
use super::reports::{report_key, SentPart};
use super::{decode_tx, encode, MessageRecord, MessageStatus, OutboundMessage};
use super::{Store, StoreError, Transition};

/// How far the dispatcher looks past messages no ready modem can take (e.g. waiting
/// for the modem that owns their `from` number), so one stuck sender cannot hide the
/// rest of the queue, while a claim stays cheap.
const CLAIM_SCAN_LIMIT: usize = 256;

/// What one claim attempt found.
#[derive(Debug)]
pub enum Claim {
    /// The message is now in `inflight`, marked `sending` on `modem`.
    Claimed {
        message: OutboundMessage,
        modem: String,
    },
    /// Nothing due that a ready modem can take.
    Nothing,
}

impl Store {
    /// When the earliest queued message is due, if any is queued.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some((key, _)) = self.outbox.first()? else {
            return Ok(None);
        };
        let mut millis = [0u8; 8];
        millis.copy_from_slice(&key[..8]);
        let millis = i64::try_from(u64::from_be_bytes(millis)).unwrap_or(i64::MAX);
        Ok(Utc.timestamp_millis_opt(millis).single())
    }

    /// Messages waiting in the outbox (due or not).
    pub fn queue_depth(&self) -> usize {
        self.outbox.len()
    }

    /// Claim the first due message that `route` finds a modem for. Messages whose code
    /// expired in the queue are failed on the way (a stale code must not be sent).
    pub fn claim_next(
        &self,
        now: DateTime<Utc>,
        route: impl Fn(&OutboundMessage) -> Option<String>,
    ) -> Result<Claim, StoreError> {
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
            let sending = Transition {
                at: now,
                status: MessageStatus::Sending,
                modem: Some(modem.clone()),
                message_references: Vec::new(),
                detail: (claimed.attempts > 1).then(|| format!("attempt {}", claimed.attempts)),
            };
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
                return Ok(Claim::Claimed {
                    message: claimed,
                    modem,
                });
            }
        }
        Ok(Claim::Nothing)
    }

    /// The modem accepted every part: the message is sent and leaves `inflight`; its
    /// parts are indexed for delivery reports.
    pub fn mark_sent(
        &self,
        message: &OutboundMessage,
        modem: &str,
        message_references: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = message.id.as_str();
        let part = encode(&SentPart {
            message_id: id.to_owned(),
            recipient: self.subscriber_digest(&message.to),
        });
        let parts = u8::try_from(message_references.len()).unwrap_or(u8::MAX);
        let sent = Transition {
            at: now,
            status: MessageStatus::Sent,
            modem: Some(modem.to_owned()),
            message_references: message_references.clone(),
            detail: None,
        };
        (&self.inflight, &self.messages, &self.reports).transaction(
            |(inflight, messages, reports)| {
                inflight.remove(id.as_bytes())?;
                for &mr in &message_references {
                    reports.insert(report_key(modem, mr), part.as_slice())?;
                }
                if let Some(bytes) = messages.get(id.as_bytes())? {
                    let mut record: MessageRecord = decode_tx(&bytes, "messages")?;
                    record.parts = parts;
                    record.delivered_parts = 0;
                    record.push(sent.clone());
                    messages.insert(id.as_bytes(), encode(&record))?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }

    /// The send failed for good (or the code expired): record why and drop the text.
    pub fn mark_failed(
        &self,
        id: &str,
        modem: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let failed = Transition {
            at: now,
            status: MessageStatus::Failed,
            modem: modem.map(str::to_owned),
            message_references: Vec::new(),
            detail: Some(reason.to_owned()),
        };
        self.leave_inflight(id, failed)
    }

    /// A temporary failure: back to the outbox, due at `due`.
    pub fn retry_later(
        &self,
        message: &OutboundMessage,
        modem: Option<&str>,
        reason: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let queued = Transition {
            at: now,
            status: MessageStatus::Queued,
            modem: modem.map(str::to_owned),
            message_references: Vec::new(),
            detail: Some(format!("retry at {}: {reason}", due.to_rfc3339())),
        };
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
    pub fn requeue_inflight(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut requeued = 0;
        for entry in self.inflight.iter() {
            let (_, bytes) = entry?;
            let message = self.unseal(&bytes, "inflight")?;
            self.retry_later(
                &message,
                None,
                "the daemon stopped while this message was being sent; it may arrive twice",
                now,
                now,
            )?;
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
        let failed = Transition {
            at: now,
            status: MessageStatus::Failed,
            modem: None,
            message_references: Vec::new(),
            detail: Some("the code expired before the SMS could be sent".to_owned()),
        };
        (&self.outbox, &self.messages).transaction(|(outbox, messages)| {
            outbox.remove(outbox_key)?;
            push_transition(messages, &message.id, failed.clone())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    fn leave_inflight(&self, id: &str, transition: Transition) -> Result<(), StoreError> {
        (&self.inflight, &self.messages).transaction(|(inflight, messages)| {
            inflight.remove(id.as_bytes())?;
            push_transition(messages, id, transition.clone())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }
}

fn push_transition(
    messages: &sled::transaction::TransactionalTree,
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
