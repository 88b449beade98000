//! Address fields (3GPP TS 23.040 §9.1.2.5): the type-of-address octet and the number in
//! swapped semi-octets, in the two length conventions the PDU uses — TP-DA/TP-RA count
//! semi-octets, the SMSC field (TS 24.011 RP-address) counts octets including the type.

use super::gsm7;
use super::reader::Reader;
use super::{DecodeError, PhoneNumber};

/// Type of address: international number, ISDN/telephone numbering plan.
pub const TOA_INTERNATIONAL: u8 = 0x91;
/// Type of address: unknown type of number, ISDN/telephone numbering plan.
pub const TOA_UNKNOWN: u8 = 0x81;
/// Type of address: alphanumeric (GSM 7-bit packed), unknown numbering plan.
pub const TOA_ALPHANUMERIC: u8 = 0xD0;

const TON_INTERNATIONAL: u8 = 0b001;
const TON_ALPHANUMERIC: u8 = 0b101;

/// The longest address value the field allows: 10 octets (TS 23.040 §9.1.2.5).
const MAX_VALUE_OCTETS: usize = 10;

/// TP-DA for an E.164 number: semi-octet count, 0x91, swapped digits.
pub fn encode_destination(number: &PhoneNumber) -> Vec<u8> {
    let digits = number.digits().as_bytes();
    // PhoneNumber holds at most 15 digits.
    let count = u8::try_from(digits.len()).unwrap_or(u8::MAX);
    let mut out = vec![count, TOA_INTERNATIONAL];
    out.extend(semi_octets(digits).unwrap_or_default());
    out
}

/// The SMSC field: `00` for the SIM's default, else octet count, 0x91, swapped digits.
pub fn encode_smsc(smsc: Option<&PhoneNumber>) -> Vec<u8> {
    match smsc {
        None => vec![0],
        Some(number) => {
            let value = semi_octets(number.digits().as_bytes()).unwrap_or_default();
            // At most 8 octets for a 15-digit number, plus the type octet.
            let len = u8::try_from(value.len() + 1).unwrap_or(u8::MAX);
            let mut out = vec![len, TOA_INTERNATIONAL];
            out.extend(value);
            out
        }
    }
}

/// The SMSC field for an address written as text (`+digits` or `digits`); `None` for an
/// address that cannot be written in semi-octets.
pub fn encode_smsc_str(address: &str) -> Option<Vec<u8>> {
    let (toa, digits) = split_type(address);
    let value = semi_octets(digits.as_bytes())?;
    if digits.is_empty() || value.len() > MAX_VALUE_OCTETS {
        return None;
    }
    let mut out = vec![u8::try_from(value.len() + 1).ok()?, toa];
    out.extend(value);
    Some(out)
}

/// A TP-DA/TP-RA style field for an address written as text: `+digits` international,
/// `digits` of unknown type, anything else alphanumeric in GSM 7-bit (at most 11
/// characters). `None` when it fits none of these.
pub fn encode_address(address: &str) -> Option<Vec<u8>> {
    let (toa, digits) = split_type(address);
    if let Some(value) = semi_octets(digits.as_bytes()) {
        if !digits.is_empty() && value.len() <= MAX_VALUE_OCTETS {
            let mut out = vec![u8::try_from(digits.len()).ok()?, toa];
            out.extend(value);
            return Some(out);
        }
    }
    let septets = gsm7::to_septets(address)?;
    let value = gsm7::pack(&septets, 0);
    if address.is_empty() || value.len() > MAX_VALUE_OCTETS {
        return None;
    }
    // The length counts the semi-octets that hold septets, not whole octets.
    let useful = u8::try_from((septets.len() * 7).div_ceil(4)).ok()?;
    let mut out = vec![useful, TOA_ALPHANUMERIC];
    out.extend(value);
    Some(out)
}

fn split_type(address: &str) -> (u8, &str) {
    match address.strip_prefix('+') {
        Some(digits) => (TOA_INTERNATIONAL, digits),
        None => (TOA_UNKNOWN, address),
    }
}

/// Swapped semi-octets, padded with 0xF; `None` for a character that has no
/// semi-octet (digits, `*`, `#`, `a`, `b`, `c` do).
fn semi_octets(digits: &[u8]) -> Option<Vec<u8>> {
    let nibbles: Option<Vec<u8>> = digits.iter().map(|&d| nibble_of(d)).collect();
    Some(
        nibbles?
            .chunks(2)
            .map(|pair| {
                let low = pair.first().copied().unwrap_or(0x0F);
                let high = pair.get(1).copied().unwrap_or(0x0F);
                (high << 4) | low
            })
            .collect(),
    )
}

fn nibble_of(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'*' => Some(0x0A),
        b'#' => Some(0x0B),
        b'a' => Some(0x0C),
        b'b' => Some(0x0D),
        b'c' => Some(0x0E),
        _ => None,
    }
}

fn char_of(nibble: u8) -> Option<char> {
    match nibble {
        0..=9 => Some(char::from(b'0' + nibble)),
        0x0A => Some('*'),
        0x0B => Some('#'),
        0x0C => Some('a'),
        0x0D => Some('b'),
        0x0E => Some('c'),
        _ => None,
    }
}

/// Read a TP-DA/TP-OA/TP-RA field: `+digits` for an international number, the digits
/// alone for other numeric types, the decoded text for an alphanumeric address.
pub fn decode_address(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let semi_octet_count = usize::from(r.u8()?);
    let toa = r.u8()?;
    let value = r.take(semi_octet_count.div_ceil(2))?;
    Ok(address_value(toa, value, semi_octet_count))
}

/// Read the SMSC field: `None` when its length is 0.
pub fn decode_smsc(r: &mut Reader<'_>) -> Result<Option<String>, DecodeError> {
    let len = usize::from(r.u8()?);
    if len == 0 {
        return Ok(None);
    }
    let field = r.take(len)?;
    let Some((&toa, value)) = field.split_first() else {
        return Err(DecodeError::Truncated);
    };
    Ok(Some(address_value(toa, value, value.len() * 2)))
}

fn address_value(toa: u8, value: &[u8], semi_octet_count: usize) -> String {
    let ton = (toa >> 4) & 0b111;
    if ton == TON_ALPHANUMERIC {
        let septets = gsm7::unpack(value, 0, semi_octet_count * 4 / 7).unwrap_or_default();
        return gsm7::from_septets(&septets);
    }
    let digits = value
        .iter()
        .flat_map(|&b| [b & 0x0F, b >> 4])
        .take(semi_octet_count)
        // 0xF is the filler; it ends the number wherever it turns up.
        .map_while(char_of);
    let prefix = if ton == TON_INTERNATIONAL { "+" } else { "" };
    prefix.chars().chain(digits).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_of_the_classic_vector() {
        // "0B916407281553F8" from the classic SMS-SUBMIT example.
        let n = PhoneNumber::parse("+46708251358").unwrap();
        assert_eq!(
            hex::encode_upper(encode_destination(&n)),
            "0B916407281553F8"
        );
        let bytes = hex::decode("0B916407281553F8").unwrap();
        assert_eq!(
            decode_address(&mut Reader::new(&bytes)).unwrap(),
            "+46708251358"
        );
    }

    #[test]
    fn smsc_field() {
        assert_eq!(encode_smsc(None), [0]);
        // python-gsmmodem test_pdu.py: SMSC +44000000000 is "07914400000000F0".
        let n = PhoneNumber::parse("+44000000000").unwrap();
        assert_eq!(hex::encode_upper(encode_smsc(Some(&n))), "07914400000000F0");
        let bytes = hex::decode("07914400000000F0").unwrap();
        let got = decode_smsc(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(got.as_deref(), Some("+44000000000"));
        assert_eq!(decode_smsc(&mut Reader::new(&[0])).unwrap(), None);
        assert_eq!(encode_smsc_str("+44000000000").unwrap(), bytes);
        assert_eq!(encode_smsc_str("SMSC"), None);
    }

    #[test]
    fn national_and_alphanumeric_addresses() {
        let national = encode_address("0126541234").unwrap();
        assert_eq!(hex::encode_upper(&national), "0A811062452143");
        assert_eq!(
            decode_address(&mut Reader::new(&national)).unwrap(),
            "0126541234"
        );
        // TON 010 (national) reads as the bare digits too.
        let bytes = hex::decode("0AA11062452143").unwrap();
        assert_eq!(
            decode_address(&mut Reader::new(&bytes)).unwrap(),
            "0126541234"
        );
        let alpha = encode_address("Bank").unwrap();
        assert_eq!(alpha[1], TOA_ALPHANUMERIC);
        assert_eq!(decode_address(&mut Reader::new(&alpha)).unwrap(), "Bank");
        assert_eq!(encode_address("A much too long sender"), None);
        assert_eq!(encode_address(""), None);
    }

    #[test]
    fn truncated_fields_are_errors() {
        assert_eq!(
            decode_address(&mut Reader::new(&[0x0B, 0x91, 0x64])),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_smsc(&mut Reader::new(&[0x07, 0x91])),
            Err(DecodeError::Truncated)
        );
    }
}
