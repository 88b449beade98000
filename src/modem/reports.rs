//! What the modem tells unasked, and what it keeps in its message storage.
//!
//! Status reports arrive routed (`+CDS`, `<ds>` = 1) or stored (`+CDSI: "SR",3`,
//! `<ds>` = 2, and on modems that store them whatever `AT+CNMI` says). A stored report
//! is read (`AT+CPMS` to its memory, `AT+CMGR`), handed to the dispatcher like a `+CDS`,
//! then deleted (`AT+CMGD`). What accumulated while nobody listened is swept at each
//! link's start and every health check: `AT+CMGL=4` in each memory the modem offers
//! among SR, ME and SM. Entries that are neither a status report nor a received SMS
//! (stored SUBMITs, undecodable PDUs) are logged without their content and deleted, so
//! storage never fills up with them.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::handle::DeliveryReport;
use super::lifecycle::ModemTask;
use super::session::{AtSession, CommandError};
use crate::at::{parse_cmgl, parse_cmgr, parse_cpms_memories, Unsolicited};
use crate::sms;

/// The memories swept, in this order, when the modem offers them.
const SWEPT_MEMORIES: [&str; 3] = ["SR", "ME", "SM"];
/// `AT+CMGL` of a full SIM is a few hundred lines; give it time.
const LIST_TIMEOUT: Duration = Duration::from_secs(20);
const STORAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-link knowledge of the modem's message storage.
#[derive(Debug, Default)]
pub(super) struct Storage {
    /// Stored reports announced by `+CDSI` and not read yet.
    announced: VecDeque<(String, u32)>,
    /// The memory `AT+CPMS` last selected for reading and deleting.
    selected: Option<String>,
    /// The memories `AT+CPMS=?` offers that are swept; `None` until asked.
    sweepable: Option<Vec<String>>,
}

/// What a stored PDU is, from its TP-MTI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PduKind {
    Deliver,
    Submit,
    StatusReport,
}

/// The TP-MTI of a PDU that starts with its SMSC field.
fn pdu_kind(pdu: &[u8]) -> Option<PduKind> {
    let smsc_len = usize::from(*pdu.first()?);
    let first_octet = *pdu.get(1 + smsc_len)?;
    match first_octet & 0x03 {
        0 => Some(PduKind::Deliver),
        1 => Some(PduKind::Submit),
        2 => Some(PduKind::StatusReport),
        _ => None,
    }
}

/// What to do with one stored entry.
enum Verdict {
    /// A status report: forwarded; delete it.
    Reported,
    /// A received SMS: left where it is.
    Keep,
    /// Anything else: delete it.
    Discard(&'static str),
}

impl ModemTask {
    /// Take the URCs the session collected: routed reports go to the dispatcher at
    /// once, stored ones are queued for [`Self::read_announced`].
    pub(super) fn take_unsolicited<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) {
        for urc in session.take_urcs() {
            match urc.meaning() {
                Unsolicited::StatusReport { pdu } => match hex::decode(pdu.trim()) {
                    Ok(bytes) => {
                        self.judge_stored(&bytes);
                    }
                    Err(_) => {
                        tracing::warn!(modem = %self.settings.name, "undecodable status report")
                    }
                },
                Unsolicited::StoredReport { mem, index } => {
                    self.storage.announced.push_back((mem, index));
                }
                Unsolicited::NewMessage { mem, index } => {
                    tracing::info!(modem = %self.settings.name, %mem, index, "an SMS arrived in the modem's storage");
                }
                Unsolicited::Deliver { .. } => {
                    tracing::info!(modem = %self.settings.name, "an SMS arrived");
                }
                Unsolicited::Other => {}
            }
        }
    }

    /// Read, forward and delete the stored reports `+CDSI` announced.
    pub(super) async fn read_announced<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<(), CommandError> {
        while let Some((mem, index)) = self.storage.announced.pop_front() {
            if let Err(e) = self.read_one(session, &mem, index).await {
                if e.link_is_broken() {
                    self.storage.announced.push_front((mem, index));
                    return Err(e);
                }
                tracing::warn!(modem = %self.settings.name, %mem, index, error = %e, "cannot read a stored status report");
            }
        }
        Ok(())
    }

    async fn read_one<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        mem: &str,
        index: u32,
    ) -> Result<(), CommandError> {
        self.select_memory(session, mem).await?;
        let lines = session
            .command(&format!("AT+CMGR={index}"), STORAGE_TIMEOUT)
            .await?;
        let pdu = lines
            .iter()
            .position(|l| parse_cmgr(l).is_ok())
            .and_then(|at| lines.get(at + 1))
            .and_then(|hex_line| hex::decode(hex_line.trim()).ok());
        let verdict = match &pdu {
            Some(bytes) => self.judge_stored(bytes),
            None => Verdict::Discard("no PDU in the reply"),
        };
        self.settle(session, mem, index, verdict).await
    }

    /// Sweep every storage the modem offers for reports that nobody announced.
    pub(super) async fn sweep_storage<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<(), CommandError> {
        let memories = match &self.storage.sweepable {
            Some(memories) => memories.clone(),
            None => {
                let offered = match session.command("AT+CPMS=?", STORAGE_TIMEOUT).await {
                    Ok(lines) => lines
                        .iter()
                        .find_map(|l| parse_cpms_memories(l).ok())
                        .unwrap_or_default(),
                    Err(CommandError::Rejected { .. }) => Vec::new(),
                    Err(e) => return Err(e),
                };
                let sweepable: Vec<String> = SWEPT_MEMORIES
                    .iter()
                    .filter(|m| offered.iter().any(|o| o.eq_ignore_ascii_case(m)))
                    .map(|m| (*m).to_owned())
                    .collect();
                self.storage.sweepable = Some(sweepable.clone());
                sweepable
            }
        };
        for mem in memories {
            if let Err(e) = self.sweep_memory(session, &mem).await {
                if e.link_is_broken() {
                    return Err(e);
                }
                tracing::debug!(modem = %self.settings.name, %mem, error = %e, "cannot list a message storage");
            }
        }
        Ok(())
    }

    async fn sweep_memory<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        mem: &str,
    ) -> Result<(), CommandError> {
        self.select_memory(session, mem).await?;
        let lines = session.command("AT+CMGL=4", LIST_TIMEOUT).await?;
        let mut entries = Vec::new();
        let mut lines = lines.iter().peekable();
        while let Some(line) = lines.next() {
            let Ok(listed) = parse_cmgl(line) else {
                continue;
            };
            let pdu = lines
                .next_if(|next| parse_cmgl(next).is_err())
                .and_then(|hex_line| hex::decode(hex_line.trim()).ok());
            entries.push((listed.index, pdu));
        }
        for (index, pdu) in entries {
            let verdict = match &pdu {
                Some(bytes) => self.judge_stored(bytes),
                None => Verdict::Discard("no PDU in the listing"),
            };
            self.settle(session, mem, index, verdict).await?;
        }
        Ok(())
    }

    /// Forward a status report; say what to do with the entry that held it.
    fn judge_stored(&self, pdu: &[u8]) -> Verdict {
        match pdu_kind(pdu) {
            Some(PduKind::StatusReport) => match sms::decode_status_report(pdu) {
                Ok(report) => {
                    let _ = self.reports.send(DeliveryReport {
                        modem: self.settings.name.clone(),
                        report,
                    });
                    Verdict::Reported
                }
                Err(_) => Verdict::Discard("an undecodable status report"),
            },
            Some(PduKind::Deliver) => Verdict::Keep,
            Some(PduKind::Submit) => Verdict::Discard("a stored outgoing SMS"),
            None => Verdict::Discard("an undecodable PDU"),
        }
    }

    async fn settle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        mem: &str,
        index: u32,
        verdict: Verdict,
    ) -> Result<(), CommandError> {
        match verdict {
            Verdict::Keep => return Ok(()),
            Verdict::Reported => {}
            Verdict::Discard(what) => {
                // Index and memory only: the entry's content may hold a number.
                tracing::warn!(modem = %self.settings.name, %mem, index, "deleting {what} from the modem's storage");
            }
        }
        self.select_memory(session, mem).await?;
        match session
            .command(&format!("AT+CMGD={index}"), STORAGE_TIMEOUT)
            .await
        {
            Ok(_) => Ok(()),
            // Already gone (another listing deleted it): nothing left to do.
            Err(CommandError::Rejected { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn select_memory<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        mem: &str,
    ) -> Result<(), CommandError> {
        if self.storage.selected.as_deref() == Some(mem) {
            return Ok(());
        }
        session
            .command(&format!("AT+CPMS=\"{mem}\""), STORAGE_TIMEOUT)
            .await?;
        self.storage.selected = Some(mem.to_owned());
        Ok(())
    }

    /// A new link: the modem may have been swapped or rebooted.
    pub(super) fn forget_storage(&mut self) {
        let announced = std::mem::take(&mut self.storage.announced);
        self.storage = Storage {
            announced,
            ..Storage::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tp_mti_after_the_smsc_field_tells_the_kind() {
        // gammu tests/at-sms/02.dump (`+CMGR: 3,,29`, stored sent): an SMS-SUBMIT
        // behind a 7-octet SMSC field.
        let stored = hex::decode("0791361907001003B17A0C913619397750320000AD11").unwrap();
        assert_eq!(pdu_kind(&stored), Some(PduKind::Submit));
        // The classic SMS-DELIVER example of 3GPP-based tutorials (first octet 04).
        let deliver = hex::decode(
            "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
        )
        .unwrap();
        assert_eq!(pdu_kind(&deliver), Some(PduKind::Deliver));
        let report = sms::encode_status_report(
            &sms::StatusReport {
                message_reference: 7,
                recipient: "+46708251358".into(),
                service_centre_time: "2026-12-05T12:00:00Z".into(),
                discharge_time: "2026-12-05T12:00:05Z".into(),
                status: sms::DeliveryStatus::from_tp_st(0),
            },
            Some("+46700000000"),
        )
        .unwrap();
        assert_eq!(pdu_kind(&report), Some(PduKind::StatusReport));
        let submit = hex::decode("0011000B914477123456F10000AA0AE8329BFD4697D9EC37").unwrap();
        assert_eq!(pdu_kind(&submit), Some(PduKind::Submit));
        assert_eq!(pdu_kind(&[]), None);
        assert_eq!(pdu_kind(&[0x07, 0x91]), None);
    }
}
