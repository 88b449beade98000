//! The modem's message storage: what it announces (`+CDSI` for a stored status
//! report, `+CMTI` for a stored SMS), what it routes (`+CDS`, `+CMT`), and what
//! accumulated while nobody listened.
//!
//! An announced entry is read (`AT+CPMS` to its memory, `AT+CMGR`). At each link's
//! start, every health check, and whenever the modem says its storage is full
//! (`+CMS ERROR: 322` on a send, `^SMMEMFULL`, `+SMSFULL`), the memories the modem
//! offers among SR, ME and SM are listed (`AT+CMGL=4`). Each entry then goes where
//! it belongs: a status report to the dispatcher (`reports`), a received SMS to the
//! inbox (`inbox`, deleted once kept), and anything else — stored outgoing SMS,
//! undecodable PDUs — is deleted with a warning naming only its memory and index, so
//! storage never fills up. PDU mode only (text mode lists in another format).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::lifecycle::ModemTask;
use super::session::{AtSession, CommandError};
use crate::at::{parse_cmgl, parse_cmgr, parse_cpms_memories, Unsolicited};
use crate::sms;

/// The memories swept, in this order, when the modem offers them.
const SWEPT_MEMORIES: [&str; 3] = ["SR", "ME", "SM"];
/// `AT+CMGL` of a full SIM is a few hundred lines; give it time.
const LIST_TIMEOUT: Duration = Duration::from_secs(20);
pub(super) const STORAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an entry is: (memory, index).
pub(super) type Slot = (String, u32);

/// Per-link knowledge of the modem's message storage.
#[derive(Debug, Default)]
pub(super) struct Storage {
    /// Entries announced by `+CDSI` / `+CMTI` and not read yet.
    announced: VecDeque<Slot>,
    /// PDUs of `+CMT` (routed, not stored) waiting to be taken in.
    pub(super) routed: VecDeque<Vec<u8>>,
    /// The modem said its storage is full: sweep at the next chance.
    pub(super) drain_needed: bool,
    /// The modem is in phase 2+ (`+CSMS: 1`): a routed SMS needs `AT+CNMA`.
    pub(super) acknowledge_routed: bool,
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

impl ModemTask {
    /// Take the URCs the session collected: routed reports go to the dispatcher at
    /// once; announced entries and routed SMS are queued for [`Self::look_after_storage`].
    pub(super) fn take_unsolicited<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) {
        for urc in session.take_urcs() {
            match urc.meaning() {
                Unsolicited::StatusReport { pdu } => match hex::decode(pdu.trim()) {
                    Ok(bytes) => {
                        self.forward_report(&bytes);
                    }
                    Err(_) => {
                        tracing::warn!(modem = %self.settings.name, "undecodable status report")
                    }
                },
                Unsolicited::StoredReport { mem, index }
                | Unsolicited::NewMessage { mem, index } => {
                    self.storage.announced.push_back((mem, index));
                }
                Unsolicited::Deliver { pdu } => match hex::decode(pdu.trim()) {
                    Ok(bytes) => self.storage.routed.push_back(bytes),
                    Err(_) => {
                        tracing::warn!(modem = %self.settings.name, "undecodable routed SMS")
                    }
                },
                Unsolicited::StorageFull => {
                    tracing::warn!(modem = %self.settings.name, "the modem says its message storage is full; draining it");
                    self.storage.drain_needed = true;
                }
                Unsolicited::Other => {}
            }
        }
    }

    /// Read what was announced, take in routed SMS, and with `sweep` (or when the
    /// storage is full) list every memory for what nobody announced.
    pub(super) async fn look_after_storage<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        sweep: bool,
    ) -> Result<(), CommandError> {
        if self.settings.mode != crate::config::SmsMode::Pdu {
            return Ok(());
        }
        self.take_in_routed(session).await?;
        while let Some((mem, index)) = self.storage.announced.pop_front() {
            if let Err(e) = self.read_one(session, &mem, index).await {
                if e.link_is_broken() {
                    self.storage.announced.push_front((mem, index));
                    return Err(e);
                }
                tracing::warn!(modem = %self.settings.name, %mem, index, error = %e, "cannot read a stored message");
            }
        }
        if sweep || self.storage.drain_needed {
            self.storage.drain_needed = false;
            self.sweep_storage(session).await?;
            self.give_up_stale(session).await?;
        }
        self.take_unsolicited(session);
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
        self.settle(session, (mem.to_owned(), index), pdu).await
    }

    async fn sweep_storage<S: AsyncRead + AsyncWrite + Unpin>(
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
            self.settle(session, (mem.to_owned(), index), pdu).await?;
        }
        Ok(())
    }

    /// Send the entry at `slot` where it belongs (see the module docs).
    async fn settle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        slot: Slot,
        pdu: Option<Vec<u8>>,
    ) -> Result<(), CommandError> {
        let Some(pdu) = pdu else {
            return self.discard(session, slot, "an entry without a PDU").await;
        };
        match pdu_kind(&pdu) {
            Some(PduKind::StatusReport) => {
                if self.forward_report(&pdu) {
                    self.delete(session, &slot).await
                } else {
                    self.discard(session, slot, "an undecodable status report")
                        .await
                }
            }
            Some(PduKind::Deliver) => match sms::decode_deliver(&pdu) {
                Ok(part) => self.take_in(session, Some(slot), part).await,
                Err(_) => {
                    self.discard(session, slot, "an undecodable received SMS")
                        .await
                }
            },
            Some(PduKind::Submit) => self.discard(session, slot, "a stored outgoing SMS").await,
            None => self.discard(session, slot, "an undecodable PDU").await,
        }
    }

    async fn discard<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        slot: Slot,
        what: &str,
    ) -> Result<(), CommandError> {
        // Memory and index only: the entry's content may hold a number.
        tracing::warn!(modem = %self.settings.name, mem = %slot.0, index = slot.1, "deleting {what} from the modem's storage");
        self.delete(session, &slot).await
    }

    pub(super) async fn delete<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        (mem, index): &Slot,
    ) -> Result<(), CommandError> {
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

    /// Whether the modem stayed in phase 2+ (`AT+CSMS=0` is optional in init): then
    /// routed SMS must be acknowledged.
    pub(super) async fn learn_message_service<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<(), CommandError> {
        let service = match session.command("AT+CSMS?", STORAGE_TIMEOUT).await {
            Ok(lines) => lines.iter().find_map(|l| {
                l.trim()
                    .strip_prefix("+CSMS:")
                    .and_then(|rest| rest.split(',').next())
                    .and_then(|service| service.trim().parse::<u8>().ok())
            }),
            Err(CommandError::Rejected { .. }) => None,
            Err(e) => return Err(e),
        };
        self.storage.acknowledge_routed = service == Some(1);
        Ok(())
    }

    /// A new link: the modem may have been swapped or rebooted.
    pub(super) fn forget_storage(&mut self) {
        let announced = std::mem::take(&mut self.storage.announced);
        let routed = std::mem::take(&mut self.storage.routed);
        self.storage = Storage {
            announced,
            routed,
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
