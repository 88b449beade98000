//! Delivery reports: each sent part is indexed by (host, modem, TP-MR), and a report
//! matches only if its recipient is the same subscriber.

use async_trait::async_trait;

use super::StoreError;
use crate::sms::StatusReport;

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
