//! Delivery reports: each sent part is indexed by (modem, TP-MR) so a `+CDS` can be
//! matched to its message. TP-MR is one byte, so the index holds at most 256 entries
//! per modem; a wrapped reference overwrites the stale one.

use ::sled::transaction::{ConflictableTransactionError, Transactional};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{decode_tx, encode, SledStore};
use crate::sms::StatusReport;
use crate::store::reports::{apply_report, names_a_subscriber};
use crate::store::{MessageRecord, ReportOutcome, ReportStore, StoreError};

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
        let has_digits = names_a_subscriber(report);
        let recipient = self.at_rest.subscriber_digest(&report.recipient);
        let slot = self.event_slot();
        let node = &self.event_log.node;
        let outcome = (&self.reports, &self.messages, &self.events).transaction(
            |(reports, messages, events)| {
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
                let before = record.status;
                let (outcome, part_done) = apply_report(&mut record, modem, report, now);
                if part_done {
                    reports.remove(key.as_slice())?;
                }
                if record.status != before {
                    let event = record
                        .history
                        .last()
                        .and_then(|last| crate::store::message_event(&record, last, node));
                    self.write_in_slot(slot.as_ref(), events, event)?;
                }
                messages.insert(part.message_id.as_bytes(), encode(&record))?;
                Ok::<_, ConflictableTransactionError<StoreError>>(outcome)
            },
        )?;
        Ok(outcome)
    }
}
