//! SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.2.3): decoding for the modem driver's `+CDS`
//! delivery reports, encoding for the simulated modem that produces them.

use super::address;
use super::reader::Reader;
use super::timestamp::{self, TimestampError};
use super::{DecodeError, DeliveryStatus, StatusReport};

const MTI_MASK: u8 = 0b11;
const MTI_STATUS_REPORT: u8 = 0b10;
/// MTI 10 with TP-MMS set ("no more messages waiting"), as service centres send it.
const FIRST_OCTET: u8 = 0x06;

/// A status report that cannot be written as a PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportEncodeError {
    #[error("recipient {0:?} is neither a number nor a GSM 7-bit name of up to 11 characters")]
    Recipient(String),
    #[error("SMSC {0:?} is not a number")]
    Smsc(String),
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
}

impl DeliveryStatus {
    /// The outcome of a TP-ST value; reserved values (≥ 0x80) count as failures, since
    /// the service centre has not said it will try again.
    pub fn from_tp_st(st: u8) -> Self {
        match st {
            0x00..=0x1F => Self::Delivered,
            0x20..=0x3F => Self::Pending(st),
            _ => Self::Failed(st),
        }
    }

    /// The TP-ST octet: 0x00 for `Delivered`, the carried value otherwise.
    pub fn tp_st(self) -> u8 {
        match self {
            Self::Delivered => 0x00,
            Self::Pending(st) | Self::Failed(st) => st,
        }
    }
}

/// See [`super::decode_status_report`]. TP-PI and the fields it announces, and anything
/// after them, are ignored: the outcome is all the driver needs.
pub fn decode_status_report(pdu: &[u8]) -> Result<StatusReport, DecodeError> {
    let mut r = Reader::new(pdu);
    let _smsc = address::decode_smsc(&mut r)?;
    let first = r.u8()?;
    if first & MTI_MASK != MTI_STATUS_REPORT {
        return Err(DecodeError::WrongType(first));
    }
    let message_reference = r.u8()?;
    let recipient = address::decode_address(&mut r)?;
    let service_centre_time = timestamp::decode(r.array()?)?;
    let discharge_time = timestamp::decode(r.array()?)?;
    let status = DeliveryStatus::from_tp_st(r.u8()?);
    Ok(StatusReport {
        message_reference,
        recipient,
        service_centre_time,
        discharge_time,
        status,
    })
}

/// The SMSC field and TPDU of `report`, as a modem hands it over after `+CDS: <len>`
/// (`<len>` is the TPDU length: the PDU's length less `1 + pdu[0]`). `smsc` is `+digits`
/// or `digits`; `None` writes `00`. The times are RFC 3339 (see [`StatusReport`]) and
/// keep their offset; the recipient is `+digits`, `digits` or an alphanumeric name.
pub fn encode_status_report(
    report: &StatusReport,
    smsc: Option<&str>,
) -> Result<Vec<u8>, ReportEncodeError> {
    let mut pdu = match smsc {
        None => vec![0],
        Some(s) => address::encode_smsc_str(s).ok_or_else(|| ReportEncodeError::Smsc(s.into()))?,
    };
    pdu.push(FIRST_OCTET);
    pdu.push(report.message_reference);
    pdu.extend(
        address::encode_address(&report.recipient)
            .ok_or_else(|| ReportEncodeError::Recipient(report.recipient.clone()))?,
    );
    pdu.extend(timestamp::encode(&report.service_centre_time)?);
    pdu.extend(timestamp::encode(&report.discharge_time)?);
    pdu.push(report.status.tp_st());
    Ok(pdu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_hex(pdu: &str) -> Result<StatusReport, DecodeError> {
        decode_status_report(&hex::decode(pdu).unwrap())
    }

    #[test]
    fn python_gsmmodem_status_report() {
        // python-gsmmodem test_pdu.py test_decode: reference 214 to +31628870634.
        let pdu = "0006D60B911326880736F4111011719551401110117195714000";
        let expected = StatusReport {
            message_reference: 214,
            recipient: "+31628870634".into(),
            service_centre_time: "2011-01-11T17:59:15+01:00".into(),
            discharge_time: "2011-01-11T17:59:17+01:00".into(),
            status: DeliveryStatus::Delivered,
        };
        assert_eq!(decode_hex(pdu).unwrap(), expected);
        let encoded = encode_status_report(&expected, None).unwrap();
        assert_eq!(hex::encode_upper(encoded), pdu);
    }

    #[test]
    fn zte_report_with_odd_recipient_is_read_without_panic() {
        // python-gsmmodem test_pdu.py: "semi-invalid status report PDU captured from a
        // ZTE modem"; the recipient is garbage, the reference and times are sound.
        let r = decode_hex("0297F1061C0F910B487228297020F5317062419272803170624192138000").unwrap();
        assert_eq!(r.message_reference, 0x1C);
        assert_eq!(r.service_centre_time, "2013-07-26T14:29:27+02:00");
        assert_eq!(r.discharge_time, "2013-07-26T14:29:31+02:00");
        assert_eq!(r.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn status_classes() {
        assert_eq!(DeliveryStatus::from_tp_st(0x00), DeliveryStatus::Delivered);
        assert_eq!(DeliveryStatus::from_tp_st(0x1F), DeliveryStatus::Delivered);
        assert_eq!(
            DeliveryStatus::from_tp_st(0x20),
            DeliveryStatus::Pending(0x20)
        );
        assert_eq!(
            DeliveryStatus::from_tp_st(0x3F),
            DeliveryStatus::Pending(0x3F)
        );
        assert_eq!(
            DeliveryStatus::from_tp_st(0x40),
            DeliveryStatus::Failed(0x40)
        );
        assert_eq!(
            DeliveryStatus::from_tp_st(0x7F),
            DeliveryStatus::Failed(0x7F)
        );
        assert_eq!(
            DeliveryStatus::from_tp_st(0x80),
            DeliveryStatus::Failed(0x80)
        );
        // Failures and pending states keep their exact value for the logs.
        for st in 0x20..=u8::MAX {
            assert_eq!(DeliveryStatus::from_tp_st(st).tp_st(), st);
        }
    }

    #[test]
    fn optional_parameters_are_tolerated() {
        // The python-gsmmodem report with TP-ST 0x46 and a TP-PI announcing a PID.
        let r = decode_hex("0006D60B911326880736F41110117195514011101171957140460100").unwrap();
        assert_eq!(r.status, DeliveryStatus::Failed(0x46));
    }

    #[test]
    fn round_trip_with_smsc_and_alphanumeric_recipient() {
        let report = StatusReport {
            message_reference: 7,
            recipient: "Bank".into(),
            service_centre_time: "2024-12-31T23:59:59-03:30".into(),
            discharge_time: "2025-01-01T00:00:05Z".into(),
            status: DeliveryStatus::Pending(0x21),
        };
        let pdu = encode_status_report(&report, Some("+46700000000")).unwrap();
        assert_eq!(hex::encode_upper(&pdu[..8]), "07916407000000F0");
        let back = decode_status_report(&pdu).unwrap();
        assert_eq!(back.discharge_time, "2025-01-01T00:00:05+00:00");
        assert_eq!(
            back,
            StatusReport {
                discharge_time: back.discharge_time.clone(),
                ..report.clone()
            }
        );
        let bad = StatusReport {
            service_centre_time: "now".into(),
            ..report.clone()
        };
        assert!(matches!(
            encode_status_report(&bad, None),
            Err(ReportEncodeError::Timestamp(_))
        ));
        assert!(matches!(
            encode_status_report(&report, Some("SMSC")),
            Err(ReportEncodeError::Smsc(_))
        ));
    }

    #[test]
    fn wrong_type_and_truncation() {
        let submit = hex::decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap();
        assert_eq!(
            decode_status_report(&submit),
            Err(DecodeError::WrongType(0x11))
        );
        assert_eq!(
            decode_hex("0006D60B911326880736F411101171955140"),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decode_status_report(&[]), Err(DecodeError::Truncated));
    }
}
