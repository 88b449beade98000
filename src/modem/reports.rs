//! What the modem says unasked: status reports (`+CDS`) decoded and handed to the
//! dispatcher, which matches them to messages.

use tokio::io::{AsyncRead, AsyncWrite};

use super::handle::DeliveryReport;
use super::lifecycle::ModemTask;
use super::session::AtSession;
use crate::sms;

impl ModemTask {
    pub(super) fn forward_reports<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut AtSession<S>,
    ) {
        for urc in session.take_urcs() {
            let Some(pdu) = urc.pdu.as_deref().filter(|_| urc.line.starts_with("+CDS")) else {
                continue;
            };
            match hex::decode(pdu.trim())
                .map_err(|_| sms::DecodeError::BadHex)
                .and_then(|b| sms::decode_status_report(&b))
            {
                Ok(report) => {
                    let _ = self.reports.send(DeliveryReport {
                        modem: self.settings.name.clone(),
                        report,
                    });
                }
                Err(e) => {
                    tracing::warn!(modem = %self.settings.name, error = %e, "undecodable status report")
                }
            }
        }
    }
}
