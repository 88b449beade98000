//! The user data header of a concatenated SMS (3GPP TS 23.040 §9.2.3.24): IE 0x00 with
//! an 8-bit reference or IE 0x08 with a 16-bit one, and the septet alignment of 7-bit
//! text that follows a header.

use super::{ConcatInfo, DecodeError};

const IEI_CONCAT8: u8 = 0x00;
const IEI_CONCAT16: u8 = 0x08;

/// The concatenation header of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatHeader {
    pub reference: u16,
    /// IE 0x08 (16-bit reference) rather than IE 0x00 (only the low 8 bits are sent).
    pub wide: bool,
    pub total: u8,
    /// 1-based.
    pub sequence: u8,
}

impl ConcatHeader {
    /// UDHL followed by the one information element.
    pub fn to_bytes(self) -> Vec<u8> {
        let [high, low] = self.reference.to_be_bytes();
        if self.wide {
            vec![
                0x06,
                IEI_CONCAT16,
                0x04,
                high,
                low,
                self.total,
                self.sequence,
            ]
        } else {
            vec![0x05, IEI_CONCAT8, 0x03, low, self.total, self.sequence]
        }
    }
}

/// Septets taken by a header of `octets` octets (UDHL included), and the fill bits
/// that make the text start on a septet boundary.
pub fn septet_alignment(octets: usize) -> (usize, u8) {
    let bits = octets * 8;
    let septets = bits.div_ceil(7);
    // Less than 7 by construction of div_ceil.
    let fill = u8::try_from(septets * 7 - bits).unwrap_or(0);
    (septets, fill)
}

/// Read the header at the start of `ud`: its length in octets (UDHL included) and the
/// concatenation element, if there is one. Other elements are skipped.
pub fn parse(ud: &[u8]) -> Result<(usize, Option<ConcatInfo>), DecodeError> {
    let (&udhl, rest) = ud.split_first().ok_or(DecodeError::Truncated)?;
    let mut elements = rest
        .get(..usize::from(udhl))
        .ok_or(DecodeError::Truncated)?;
    let mut concat = None;
    while let Some((&iei, rest)) = elements.split_first() {
        let (&len, rest) = rest
            .split_first()
            .ok_or(DecodeError::Invalid("user data header"))?;
        let data = rest
            .get(..usize::from(len))
            .ok_or(DecodeError::Invalid("user data header"))?;
        concat = match (iei, data) {
            (IEI_CONCAT8, &[reference, total, sequence]) => Some(ConcatInfo {
                reference: u16::from(reference),
                total,
                sequence,
            }),
            (IEI_CONCAT16, &[high, low, total, sequence]) => Some(ConcatInfo {
                reference: u16::from_be_bytes([high, low]),
                total,
                sequence,
            }),
            _ => concat,
        };
        elements = rest.get(usize::from(len)..).unwrap_or_default();
    }
    Ok((usize::from(udhl) + 1, concat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_gsmmodem_concat_elements() {
        // test_pdu.py TestUdhConcatenation: IE "0003170301" and "080401800402".
        let h8 = ConcatHeader {
            reference: 23,
            wide: false,
            total: 3,
            sequence: 1,
        };
        assert_eq!(hex::encode_upper(h8.to_bytes()), "050003170301");
        let h16 = ConcatHeader {
            reference: 384,
            wide: true,
            total: 4,
            sequence: 2,
        };
        assert_eq!(hex::encode_upper(h16.to_bytes()), "06080401800402");
        let (len, info) = parse(&h16.to_bytes()).unwrap();
        assert_eq!(len, 7);
        assert_eq!(
            info,
            Some(ConcatInfo {
                reference: 384,
                total: 4,
                sequence: 2
            })
        );
    }

    #[test]
    fn alignment_after_headers() {
        assert_eq!(septet_alignment(0), (0, 0));
        assert_eq!(septet_alignment(6), (7, 1));
        assert_eq!(septet_alignment(7), (8, 0));
        assert_eq!(septet_alignment(12), (14, 2));
    }

    #[test]
    fn other_elements_are_skipped_and_bad_ones_refused() {
        // A port-addressing IE (0x05) before the concatenation element.
        let ud = hex::decode("0B05040B8423F00003AB0201").unwrap();
        let (len, info) = parse(&ud).unwrap();
        assert_eq!(len, 12);
        assert_eq!(
            info.map(|c| (c.reference, c.total, c.sequence)),
            Some((0xAB, 2, 1))
        );
        assert!(parse(&[0x05, 0x00, 0x03]).is_err());
        assert!(parse(&[0x02, 0x00, 0x03]).is_err());
        assert!(parse(&[]).is_err());
    }
}
