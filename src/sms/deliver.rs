//! SMS-DELIVER (3GPP TS 23.040 §9.2.2.1): a received SMS as the modem hands it over
//! (`+CMT`, or read from storage with `AT+CMGR` / `AT+CMGL`), and the encoder the
//! simulated network and the tests use to make one.

use super::reader::Reader;
use super::user_data::{self, DataCoding};
use super::{address, timestamp, ConcatInfo, DecodeError, PhoneNumber, SubmitOptions};

const MTI_MASK: u8 = 0b11;
const MTI_DELIVER: u8 = 0b00;
const UDHI: u8 = 0x40;
/// TP-MMS set: no more messages are waiting at the SC.
const NO_MORE_MESSAGES: u8 = 0x04;

/// One received SMS part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// `+digits`, `digits`, or the text of an alphanumeric sender (`Vodafone`).
    pub sender: String,
    pub text: String,
    pub coding: DataCoding,
    pub concat: Option<ConcatInfo>,
    /// The service centre time stamp, RFC 3339 with the PDU's offset.
    pub service_centre_time: String,
}

/// Decode an SMS-DELIVER PDU (SMSC field + TPDU). Never panics, whatever the bytes.
pub fn decode_deliver(pdu: &[u8]) -> Result<Deliver, DecodeError> {
    let mut r = Reader::new(pdu);
    let _smsc = address::decode_smsc(&mut r)?;
    let first = r.u8()?;
    if first & MTI_MASK != MTI_DELIVER {
        return Err(DecodeError::WrongType(first));
    }
    let sender = address::decode_address(&mut r)?;
    let _pid = r.u8()?;
    let coding = user_data::data_coding(r.u8()?)?;
    let service_centre_time = timestamp::decode(r.array()?)?;
    let udl = usize::from(r.u8()?);
    let (text, concat) = user_data::decode(coding, udl, r.rest(), first & UDHI != 0)?;
    Ok(Deliver {
        sender,
        text,
        coding,
        concat,
        service_centre_time,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverEncodeError {
    #[error("the sender {0:?} cannot be encoded as an address")]
    Sender(String),
    #[error(transparent)]
    Text(#[from] super::EncodeError),
    #[error(transparent)]
    Time(#[from] super::TimestampError),
}

/// The SMS-DELIVER PDUs (SMSC `+46700000000` first) that carry `text` from `sender`,
/// stamped `time` (RFC 3339): as many parts as an SMS-SUBMIT of it would need, with
/// the concatenation reference `reference`. The user data is the SUBMIT encoder's.
pub fn encode_deliver(
    sender: &str,
    text: &str,
    time: &str,
    reference: u16,
) -> Result<Vec<Vec<u8>>, DeliverEncodeError> {
    let originator =
        address::encode_address(sender).ok_or_else(|| DeliverEncodeError::Sender(sender.into()))?;
    let stamp = timestamp::encode(time)?;
    // Any valid number will do as the SUBMIT's destination: only its user data is used.
    let placeholder = PhoneNumber::parse("+15550000000")
        .map_err(|_| DeliverEncodeError::Sender(sender.into()))?;
    let options = SubmitOptions {
        max_parts: 255,
        ..SubmitOptions::default()
    };
    let submits = super::encode_submit(&placeholder, text, reference, &options)?;
    let smsc = address::encode_smsc_str("+46700000000").unwrap_or_else(|| vec![0]);
    Ok(submits
        .iter()
        .filter_map(|submit| {
            let mut r = Reader::new(&submit.bytes);
            address::decode_smsc(&mut r).ok()?;
            let first = r.u8().ok()?;
            let _mr = r.u8().ok()?;
            address::decode_address(&mut r).ok()?;
            let pid = r.u8().ok()?;
            let dcs = r.u8().ok()?;
            // encode_submit writes no validity period here; UDL and UD follow.
            let user_data = r.rest();
            let mut pdu = smsc.clone();
            pdu.push(MTI_DELIVER | NO_MORE_MESSAGES | (first & UDHI));
            pdu.extend(&originator);
            pdu.push(pid);
            pdu.push(dcs);
            pdu.extend(stamp);
            pdu.extend(user_data);
            Some(pdu)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_deliver_decodes() {
        // The SMS-DELIVER example of many PDU tutorials: "hellohello" from +31641600986.
        let pdu = hex::decode(
            "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
        )
        .unwrap();
        let deliver = decode_deliver(&pdu).unwrap();
        assert_eq!(deliver.sender, "+31641600986");
        assert_eq!(deliver.text, "How are you?");
        assert_eq!(deliver.coding, DataCoding::Gsm7);
        assert_eq!(deliver.concat, None);
        // Its zone octet 0x08 is "minus zero quarters" (python-gammu reads the same
        // local time, without a zone).
        assert_eq!(deliver.service_centre_time, "2002-08-26T19:37:41+00:00");
    }

    #[test]
    fn other_kinds_are_refused() {
        let submit = hex::decode("0011000B914477123456F10000AA0AE8329BFD4697D9EC37").unwrap();
        assert!(matches!(
            decode_deliver(&submit),
            Err(DecodeError::WrongType(_))
        ));
        assert!(decode_deliver(&[]).is_err());
        assert!(decode_deliver(&[0x00, 0x04, 0x0B]).is_err());
    }

    #[test]
    fn eight_bit_data_reads_one_char_per_octet() {
        // +4477… sends 0x41 0xE9 0xFF as 8-bit data (DCS 0x04).
        let mut pdu = vec![0x00, 0x04];
        pdu.extend(address::encode_address("+447700900123").unwrap());
        pdu.extend([0x00, 0x04]);
        pdu.extend(timestamp::encode("2026-12-05T10:00:00+00:00").unwrap());
        pdu.extend([0x03, 0x41, 0xE9, 0xFF]);
        let deliver = decode_deliver(&pdu).unwrap();
        assert_eq!(deliver.coding, DataCoding::Eight);
        assert_eq!(deliver.text, "A\u{e9}\u{ff}");
    }

    #[test]
    fn encoded_parts_decode_back_with_their_concatenation() {
        let text = "Balance low: 0.42 EUR. ".repeat(10);
        let parts = encode_deliver("Vodafone", &text, "2026-12-05T10:00:00+01:00", 7).unwrap();
        assert_eq!(parts.len(), 2);
        let decoded: Vec<Deliver> = parts.iter().map(|p| decode_deliver(p).unwrap()).collect();
        assert!(decoded.iter().all(|d| d.sender == "Vodafone"));
        assert_eq!(
            decoded[0]
                .concat
                .map(|c| (c.reference, c.total, c.sequence)),
            Some((7, 2, 1))
        );
        let joined: String = decoded.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(joined, text);
        assert_eq!(decoded[1].service_centre_time, "2026-12-05T10:00:00+01:00");
        let ucs2 = encode_deliver("+447700900123", "Привет", "2026-12-05T10:00:00Z", 1).unwrap();
        let decoded = decode_deliver(&ucs2[0]).unwrap();
        assert_eq!(
            (decoded.text.as_str(), decoded.coding),
            ("Привет", DataCoding::Ucs2)
        );
    }
}
