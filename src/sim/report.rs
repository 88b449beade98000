//! The `+CDS` unsolicited code a modem emits when the network reports on a sent SMS
//! (TP-SRR set, `AT+CNMI=...,1,...`): an SMS-STATUS-REPORT PDU (3GPP TS 23.040 §9.2.2.3),
//! encoded by the production codec in `crate::sms`.

use super::reply::push_line;
use crate::sms::{encode_status_report, DeliveryStatus, StatusReport};

/// The service centre address the simulated network puts in its reports.
const SMSC: &str = "+46700000000";

/// The SMS-STATUS-REPORT PDU (SMSC field first) for message reference `mr` to
/// `recipient` with TP-ST `status`; `None` when the recipient cannot be encoded.
pub fn status_report_pdu(mr: u8, recipient: &str, status: u8) -> Option<Vec<u8>> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = StatusReport {
        message_reference: mr,
        recipient: recipient.to_owned(),
        service_centre_time: now.clone(),
        discharge_time: now,
        status: DeliveryStatus::from_tp_st(status),
    };
    encode_status_report(&report, Some(SMSC)).ok()
}

/// `\r\n+CDS: <tpdu length>\r\n<hex>\r\n` for that report; `None` when the recipient
/// cannot be encoded, in which case no report is emitted.
pub fn cds_urc(mr: u8, recipient: &str, status: u8) -> Option<Vec<u8>> {
    let pdu = status_report_pdu(mr, recipient, status)?;
    // The `<len>` of `+CDS` counts the TPDU only: the PDU less the SMSC field.
    let smsc_field = 1 + usize::from(*pdu.first()?);
    let tpdu_len = pdu.len().checked_sub(smsc_field)?;
    let mut out = Vec::new();
    push_line(&mut out, &format!("+CDS: {tpdu_len}"));
    out.extend_from_slice(hex::encode_upper(&pdu).as_bytes());
    out.extend_from_slice(b"\r\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::decode_status_report;

    #[test]
    fn urc_is_framed_and_decodes_back() {
        let urc = String::from_utf8(cds_urc(0x2A, "+46708251358", 0x46).unwrap()).unwrap();
        let lines: Vec<&str> = urc.split("\r\n").collect();
        assert_eq!(lines[0], "");
        assert_eq!(lines[1], "+CDS: 25");
        assert!(lines[2].starts_with("07916407000000F0"), "{urc}");
        assert_eq!(lines[3], "");
        let report = decode_status_report(&hex::decode(lines[2]).unwrap()).unwrap();
        assert_eq!(report.message_reference, 0x2A);
        assert_eq!(report.recipient, "+46708251358");
        assert_eq!(report.status, DeliveryStatus::Failed(0x46));
    }
}
