//! Delivery reports: each sent part is indexed by (modem, TP-MR) so a `+CDS` can be
//! matched to its message. TP-MR is one byte, so the index holds at most 256 entries
//! per modem; a wrapped reference overwrites the stale one.

use ::sled::transaction::{ConflictableTransactionError, Transactional};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{decode_tx, encode, SledStore};
use crate::sms::{DeliveryStatus, StatusReport};
use crate::store::{
    MessageRecord, MessageStatus, ReportOutcome, ReportStore, StoreError, Transition,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SentPart {
    pub message_id: String,
    /// [`crate::store::AtRest::subscriber_digest`] of the recipient: never the number.
    pub recipient: String,
}

pub(super) fn report_key(modem: &str, mr: u8) -> Vec<u8> {
    let mut key = modem.as_bytes().to_vec();
    key.push(0);
    key.push(mr);
    key
}

#[async_trait]
impl ReportStore for SledStore {
    async fn record_report(
        &self,
        modem: &str,
        report: &StatusReport,
    ) -> Result<ReportOutcome, StoreError> {
        let outcome = self.record_report_at(modem, report, self.clock.now())?;
        self.durable().await?;
        Ok(outcome)
    }
}

impl SledStore {
    fn record_report_at(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        let key = report_key(modem, report.message_reference);
        let has_digits = report.recipient.bytes().any(|b| b.is_ascii_digit());
        let recipient = self.at_rest.subscriber_digest(&report.recipient);
        let outcome = (&self.reports, &self.messages).transaction(|(reports, messages)| {
            let Some(bytes) = reports.get(&key)? else {
                return Ok(ReportOutcome::Unmatched);
            };
            let part: SentPart = decode_tx(&bytes, "reports")?;
            if !has_digits || part.recipient != recipient {
                return Ok(ReportOutcome::Unmatched);
            }
            let Some(bytes) = messages.get(part.message_id.as_bytes())? else {
                reports.remove(key.as_slice())?;
                return Ok(ReportOutcome::Unmatched);
            };
            let mut record: MessageRecord = decode_tx(&bytes, "messages")?;
            let id = part.message_id.clone();
            let outcome = match report.status {
                DeliveryStatus::Pending(_) => ReportOutcome::Pending { message_id: id },
                DeliveryStatus::Delivered => {
                    reports.remove(key.as_slice())?;
                    record.delivered_parts = record.delivered_parts.saturating_add(1);
                    if record.delivered_parts >= record.parts.max(1)
                        && record.status == MessageStatus::Sent
                    {
                        record.push(Transition {
                            at: now,
                            status: MessageStatus::Delivered,
                            modem: Some(modem.to_owned()),
                            message_references: vec![report.message_reference],
                            detail: Some(format!("handset reached at {}", report.discharge_time)),
                        });
                        ReportOutcome::Delivered { message_id: id }
                    } else {
                        ReportOutcome::PartDelivered { message_id: id }
                    }
                }
                DeliveryStatus::Failed(status) => {
                    reports.remove(key.as_slice())?;
                    if !record.status.is_terminal() {
                        record.push(Transition {
                            at: now,
                            status: MessageStatus::Failed,
                            modem: Some(modem.to_owned()),
                            message_references: vec![report.message_reference],
                            detail: Some(format!(
                                "the network gave up delivering it (TP-ST {status:#04x})"
                            )),
                        });
                    }
                    ReportOutcome::Failed { message_id: id }
                }
            };
            messages.insert(part.message_id.as_bytes(), encode(&record))?;
            Ok::<_, ConflictableTransactionError<StoreError>>(outcome)
        })?;
        Ok(outcome)
    }
}
