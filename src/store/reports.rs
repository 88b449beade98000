//! Delivery reports: each sent part is indexed by (modem, TP-MR) so a `+CDS` can be
//! matched to its message. TP-MR is one byte, so the index holds at most 256 entries
//! per modem; a wrapped reference overwrites the stale one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use super::{decode_tx, encode, MessageRecord, MessageStatus, Store, StoreError, Transition};
use crate::sms::{DeliveryStatus, StatusReport};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SentPart {
    pub message_id: String,
    /// [`Store::subscriber_digest`] of the recipient, hex: never the number.
    pub recipient: String,
}

/// Networks report the recipient national or international: the trailing digits both
/// forms share are what identifies the subscriber.
const SIGNIFICANT_DIGITS: usize = 7;

pub(super) fn report_key(modem: &str, mr: u8) -> Vec<u8> {
    let mut key = modem.as_bytes().to_vec();
    key.push(0);
    key.push(mr);
    key
}

/// What a report did to its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// No sent part matches (unknown reference, or another recipient).
    Unmatched,
    /// A part is delivered; others are still outstanding.
    PartDelivered {
        message_id: String,
    },
    Delivered {
        message_id: String,
    },
    Failed {
        message_id: String,
    },
    /// The service centre is still trying.
    Pending {
        message_id: String,
    },
}

impl Store {
    /// The keyed digest of a number's last [`SIGNIFICANT_DIGITS`] digits, hex; `None`
    /// for a number with no digits.
    pub(super) fn subscriber_digest(&self, number: &str) -> String {
        let digits: Vec<u8> = number.bytes().filter(u8::is_ascii_digit).collect();
        let tail = &digits[digits.len().saturating_sub(SIGNIFICANT_DIGITS)..];
        hex::encode(self.pseudonyms.digest(super::NUMBER_TAIL, tail))
    }

    pub fn record_report(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        let key = report_key(modem, report.message_reference);
        let has_digits = report.recipient.bytes().any(|b| b.is_ascii_digit());
        let recipient = self.subscriber_digest(&report.recipient);
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
