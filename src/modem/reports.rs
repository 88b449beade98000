//! Status reports the modem received (routed as `+CDS` or read from storage), decoded
//! and handed to the dispatcher, which matches them to messages.

use super::handle::DeliveryReport;
use super::lifecycle::ModemTask;
use crate::sms;

impl ModemTask {
    /// Hand the status report `pdu` (SMSC field first) to the dispatcher; false when it
    /// does not decode.
    pub(super) fn forward_report(&self, pdu: &[u8]) -> bool {
        match sms::decode_status_report(pdu) {
            Ok(report) => {
                let _ = self.outlets.reports.send(DeliveryReport {
                    modem: self.settings.name.clone(),
                    report,
                });
                true
            }
            Err(e) => {
                tracing::warn!(modem = %self.settings.name, error = %e, "undecodable status report");
                false
            }
        }
    }
}
