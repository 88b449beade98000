//! Delivery reports: each sent part is indexed by (host, modem, TP-MR), and a report
//! matches only if its recipient is the same subscriber.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MessageRecord, MessageStatus, StoreError, Transition};
use crate::sms::{DeliveryStatus, StatusReport};

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

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Apply a report `modem` (of this host) received. Durable when it returns.
    async fn record_report(
        &self,
        modem: &str,
        report: &StatusReport,
    ) -> Result<ReportOutcome, StoreError>;
}

/// What a report for one sent part of `record` does to it: the outcome, and whether
/// the part's index entry is done with (a final report; a pending one keeps it).
/// A message is delivered once all its parts are; a failed part fails it.
pub fn apply_report(
    record: &mut MessageRecord,
    modem: &str,
    report: &StatusReport,
    now: DateTime<Utc>,
) -> (ReportOutcome, bool) {
    let message_id = record.id.clone();
    match report.status {
        DeliveryStatus::Pending(_) => (ReportOutcome::Pending { message_id }, false),
        DeliveryStatus::Delivered => {
            record.delivered_parts = record.delivered_parts.saturating_add(1);
            if record.delivered_parts >= record.parts.max(1) && record.status == MessageStatus::Sent
            {
                let mut delivered = Transition::new(now, MessageStatus::Delivered)
                    .on(Some(modem))
                    .because(format!("handset reached at {}", report.discharge_time));
                delivered.message_references = vec![report.message_reference];
                record.push(delivered);
                (ReportOutcome::Delivered { message_id }, true)
            } else {
                (ReportOutcome::PartDelivered { message_id }, true)
            }
        }
        DeliveryStatus::Failed(status) => {
            if !record.status.is_terminal() {
                let mut failed = Transition::new(now, MessageStatus::Failed)
                    .on(Some(modem))
                    .because(format!(
                        "the network gave up delivering it (TP-ST {status:#04x})"
                    ));
                failed.message_references = vec![report.message_reference];
                record.push(failed);
            }
            (ReportOutcome::Failed { message_id }, true)
        }
    }
}

/// Whether a report names a subscriber at all (a report with no digits in its
/// recipient matches nothing).
pub fn names_a_subscriber(report: &StatusReport) -> bool {
    report.recipient.bytes().any(|b| b.is_ascii_digit())
}
