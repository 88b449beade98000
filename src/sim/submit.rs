//! What the simulated network makes of a submitted body: PDU or text-mode decoding, then
//! reassembly of concatenated parts into the SMS a handset would show.

use std::collections::{BTreeMap, HashMap};

use super::commands::Charset;
use super::ReceivedSms;

/// `+CMS ERROR` codes for a body the modem refuses.
pub const INVALID_PDU: u16 = 304;
pub const INVALID_TEXT: u16 = 305;

/// One submitted SMS-SUBMIT, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: String,
    pub text: String,
    pub concat: Option<crate::sms::ConcatInfo>,
    pub status_report: bool,
}

/// Decode a PDU-mode body (hex, whitespace ignored). `length` is the `AT+CMGS=<length>`
/// argument, which must equal the TPDU length (everything after the SMSC field).
pub fn decode_pdu(length: usize, body: &[u8]) -> Result<Part, u16> {
    let hex: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = hex::decode(hex).map_err(|_| INVALID_PDU)?;
    let smsc_len = usize::from(*bytes.first().ok_or(INVALID_PDU)?);
    let tpdu_len = bytes.len().checked_sub(1 + smsc_len).ok_or(INVALID_PDU)?;
    if tpdu_len != length {
        return Err(INVALID_PDU);
    }
    let decoded = crate::sms::decode_submit(&bytes).map_err(|_| INVALID_PDU)?;
    Ok(Part {
        number: decoded.destination,
        text: decoded.text,
        concat: decoded.concat,
        status_report: decoded.status_report_requested,
    })
}

/// Decode a text-mode body. In `GSM`/`IRA` the bytes are taken as Latin-1 (the default
/// alphabet and ASCII agree on letters, digits and common punctuation); in `UCS2` both
/// the body and the number are hex-coded UTF-16BE, as 27.005 requires.
pub fn decode_text(number: &str, body: &[u8], charset: Charset, srr: bool) -> Result<Part, u16> {
    let (number, text) = match charset {
        Charset::Gsm | Charset::Ira => (
            number.to_owned(),
            body.iter().map(|&b| char::from(b)).collect(),
        ),
        Charset::Ucs2 => {
            let number = ucs2_hex(number.as_bytes()).unwrap_or_else(|| number.to_owned());
            let text = ucs2_hex(body).ok_or(INVALID_TEXT)?;
            (number, text)
        }
    };
    if number.is_empty() {
        return Err(INVALID_TEXT);
    }
    Ok(Part {
        number,
        text,
        concat: None,
        status_report: srr,
    })
}

fn ucs2_hex(hex: &[u8]) -> Option<String> {
    let hex: Vec<u8> = hex.iter().copied().filter(|b| *b != b'\n').collect();
    let bytes = hex::decode(hex).ok()?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// Incomplete concatenated messages are dropped beyond this many, oldest first, as a
/// handset drops stale fragments; it bounds memory if parts never complete.
const MAX_PENDING: usize = 256;

/// Collects parts until a message is complete. Parts are keyed by recipient,
/// concatenation reference and part count; a repeated sequence number replaces the
/// earlier part (keeping the later TP-MR).
#[derive(Debug, Default)]
pub struct Reassembler {
    pending: HashMap<(String, u16, u8), Pending>,
    arrivals: u64,
}

#[derive(Debug)]
struct Pending {
    first_arrival: u64,
    parts: BTreeMap<u8, (String, u8)>,
}

impl Reassembler {
    /// Add a part accepted with message reference `mr`; returns the SMS when complete.
    pub fn add(&mut self, part: Part, mr: u8) -> Option<ReceivedSms> {
        let concat = part
            .concat
            .filter(|c| c.total > 1 && c.sequence >= 1 && c.sequence <= c.total);
        let Some(concat) = concat else {
            return Some(ReceivedSms {
                number: part.number,
                text: part.text,
                parts: 1,
                message_references: vec![mr],
            });
        };
        let key = (part.number, concat.reference, concat.total);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            self.evict_oldest();
        }
        self.arrivals += 1;
        let arrival = self.arrivals;
        let entry = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            first_arrival: arrival,
            parts: BTreeMap::new(),
        });
        entry.parts.insert(concat.sequence, (part.text, mr));
        if entry.parts.len() < usize::from(concat.total) {
            return None;
        }
        let done = self.pending.remove(&key)?;
        let (texts, mrs): (Vec<String>, Vec<u8>) = done.parts.into_values().unzip();
        Some(ReceivedSms {
            number: key.0,
            text: texts.concat(),
            parts: usize::from(concat.total),
            message_references: mrs,
        })
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.first_arrival)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.pending.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::ConcatInfo;

    fn part(text: &str, seq: u8, total: u8) -> Part {
        Part {
            number: "+46708251358".into(),
            text: text.into(),
            concat: Some(ConcatInfo {
                reference: 7,
                total,
                sequence: seq,
            }),
            status_report: false,
        }
    }

    #[test]
    fn reassembles_out_of_order_parts() {
        let mut r = Reassembler::default();
        assert_eq!(r.add(part("c", 3, 3), 5), None);
        assert_eq!(r.add(part("a", 1, 3), 6), None);
        let sms = r.add(part("b", 2, 3), 7).unwrap();
        assert_eq!(sms.text, "abc");
        assert_eq!(sms.parts, 3);
        assert_eq!(sms.message_references, vec![6, 7, 5]);
        assert!(r.pending.is_empty());
    }

    #[test]
    fn bounded_pending() {
        let mut r = Reassembler::default();
        for reference in 0..(MAX_PENDING as u16 + 10) {
            let mut p = part("x", 1, 2);
            p.concat = p.concat.map(|c| ConcatInfo { reference, ..c });
            assert_eq!(r.add(p, 0), None);
        }
        assert_eq!(r.pending.len(), MAX_PENDING);
    }

    #[test]
    fn text_mode_bodies() {
        let p = decode_text("+4670", b"hi there", Charset::Gsm, false).unwrap();
        assert_eq!((p.number.as_str(), p.text.as_str()), ("+4670", "hi there"));
        let p = decode_text("002B0034", b"00480069", Charset::Ucs2, true).unwrap();
        assert_eq!((p.number.as_str(), p.text.as_str()), ("+4", "Hi"));
        assert!(p.status_report);
        assert_eq!(
            decode_text("+4", b"0048Z", Charset::Ucs2, false),
            Err(INVALID_TEXT)
        );
    }

    #[test]
    fn pdu_framing_errors_are_304() {
        assert_eq!(decode_pdu(1, b"0G"), Err(INVALID_PDU));
        assert_eq!(decode_pdu(1, b""), Err(INVALID_PDU));
        assert_eq!(decode_pdu(1, b"05"), Err(INVALID_PDU));
        // Length argument off by one against the "hellohello" PDU (TPDU = 23 octets).
        let pdu = b"0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
        assert_eq!(decode_pdu(22, pdu), Err(INVALID_PDU));
    }
}
