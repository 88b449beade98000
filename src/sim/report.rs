//! The `+CDS` unsolicited code a modem emits when the network reports on a sent SMS
//! (TP-SRR set, `AT+CNMI=...,1,...`): an SMS-STATUS-REPORT PDU (3GPP TS 23.040 §9.2.2.3).

use super::reply::push_line;

/// The service centre address the simulated network puts in its reports.
const SMSC: &str = "+46700000000";

/// `\r\n+CDS: <tpdu length>\r\n<hex>\r\n` for message reference `mr` to `recipient`
/// with TP-ST `status`; `None` when the recipient cannot be written as semi-octets
/// (an alphanumeric address), in which case no report is emitted.
pub fn cds_urc(mr: u8, recipient: &str, status: u8) -> Option<Vec<u8>> {
    let now = chrono::Utc::now();
    let (pdu, tpdu_len) = status_report_pdu(mr, recipient, status, now)?;
    let mut out = Vec::new();
    push_line(&mut out, &format!("+CDS: {tpdu_len}"));
    out.extend_from_slice(hex::encode_upper(pdu).as_bytes());
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// SMSC field + TPDU, and the TPDU length.
fn status_report_pdu(
    mr: u8,
    recipient: &str,
    status: u8,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(Vec<u8>, usize)> {
    let (smsc_toa, smsc_digits) = address(SMSC)?;
    let smsc = semi_octets(smsc_digits);
    let mut pdu = vec![u8::try_from(smsc.len() + 1).ok()?, smsc_toa];
    pdu.extend_from_slice(&smsc);
    let tpdu_start = pdu.len();
    // MTI = 10 (status report), TP-MMS = 1 (no more messages waiting).
    pdu.push(0x06);
    pdu.push(mr);
    let (toa, digits) = address(recipient)?;
    pdu.push(u8::try_from(digits.len()).ok()?);
    pdu.push(toa);
    pdu.extend_from_slice(&semi_octets(digits));
    let stamp = timestamp(now);
    pdu.extend_from_slice(&stamp); // TP-SCTS
    pdu.extend_from_slice(&stamp); // TP-DT
    pdu.push(status);
    let tpdu_len = pdu.len() - tpdu_start;
    Some((pdu, tpdu_len))
}

/// Type of address and the digits: international (0x91) with a leading `+`.
fn address(number: &str) -> Option<(u8, &str)> {
    let (toa, digits) = match number.strip_prefix('+') {
        Some(d) => (0x91, d),
        None => (0x81, number),
    };
    let valid =
        !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((toa, digits))
}

/// Swapped-nibble BCD, padded with 0xF.
fn semi_octets(digits: &str) -> Vec<u8> {
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let lo = pair[0] - b'0';
            let hi = pair.get(1).map_or(0x0F, |d| d - b'0');
            (hi << 4) | lo
        })
        .collect()
}

/// TP-SCTS format: YY MM DD hh mm ss TZ, each a swapped semi-octet pair; UTC (TZ 0).
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> [u8; 7] {
    use chrono::{Datelike, Timelike};
    let swap = |v: u32| {
        // Every field is below 100 (year taken modulo 100), so both digits fit a nibble.
        let v = (v % 100) as u8;
        ((v % 10) << 4) | (v / 10)
    };
    [
        swap(t.year().rem_euclid(100) as u32),
        swap(t.month()),
        swap(t.day()),
        swap(t.hour()),
        swap(t.minute()),
        swap(t.second()),
        0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn encodes_a_hand_checked_report() {
        let t = chrono::Utc
            .with_ymd_and_hms(2024, 3, 15, 12, 34, 56)
            .unwrap();
        let (pdu, len) = status_report_pdu(0x2A, "+46708251358", 0, t).unwrap();
        assert_eq!(
            hex::encode_upper(&pdu),
            concat!(
                "07916407000000F0", // SMSC +46700000000
                "06",               // SMS-STATUS-REPORT, no more messages
                "2A",               // TP-MR
                "0B916407281553F8", // TP-RA +46708251358
                "42305121436500",   // TP-SCTS 24-03-15 12:34:56 +00
                "42305121436500",   // TP-DT
                "00",               // TP-ST delivered
            )
        );
        assert_eq!(len, pdu.len() - 8);
        assert_eq!(len, 25);
    }

    #[test]
    fn urc_framing_and_refusals() {
        let urc = cds_urc(1, "4670", 0x46).unwrap();
        let text = String::from_utf8(urc).unwrap();
        assert!(
            text.starts_with("\r\n+CDS: 21\r\n07916407000000F0060104816407"),
            "{text}"
        );
        assert!(text.ends_with("46\r\n"), "{text}");
        assert_eq!(cds_urc(1, "Bank", 0), None);
        assert_eq!(cds_urc(1, "+", 0), None);
    }
}
