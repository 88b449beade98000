//! TP-User-Data as received: the header (concatenation) and the text after it, in GSM
//! 7-bit (with the fill bits a header leaves), UCS-2, or 8-bit data; and which of
//! these a TP-DCS names (3GPP TS 23.038 §4, TS 23.040 §9.2.3.24).

use super::{gsm7, ucs2, udh, ConcatInfo, DecodeError};

/// The most user data one SMS carries, in octets and septets (TS 23.040 §9.2.3.16).
pub const MAX_UD_OCTETS: usize = 140;
pub const MAX_UD_SEPTETS: usize = 160;

/// The alphabet of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCoding {
    Gsm7,
    Ucs2,
    /// 8-bit data: read as ISO-8859-1, one character per octet, so nothing is lost.
    Eight,
}

/// The coding a TP-DCS names; compression and reserved groups are not read.
pub fn data_coding(dcs: u8) -> Result<DataCoding, DecodeError> {
    match dcs >> 4 {
        // General data coding and its automatic-deletion twin (bits 7..6 = 00 or 01).
        0x0..=0x7 => {
            if dcs & 0x20 != 0 {
                return Err(DecodeError::Invalid("compressed user data"));
            }
            match (dcs >> 2) & 0b11 {
                0b00 => Ok(DataCoding::Gsm7),
                0b10 => Ok(DataCoding::Ucs2),
                0b01 => Ok(DataCoding::Eight),
                _ => Err(DecodeError::Invalid("reserved alphabet")),
            }
        }
        // Message waiting indication groups: discard/store with 7-bit, store with UCS-2.
        0xC | 0xD => Ok(DataCoding::Gsm7),
        0xE => Ok(DataCoding::Ucs2),
        0xF if dcs & 0x04 == 0 => Ok(DataCoding::Gsm7),
        0xF => Ok(DataCoding::Eight),
        _ => Err(DecodeError::Invalid("reserved data coding group")),
    }
}

/// The text and concatenation element of user data in `coding`.
pub fn decode(
    coding: DataCoding,
    udl: usize,
    ud: &[u8],
    has_udh: bool,
) -> Result<(String, Option<ConcatInfo>), DecodeError> {
    match coding {
        DataCoding::Gsm7 => decode_gsm7(udl, ud, has_udh),
        DataCoding::Ucs2 => decode_ucs2(udl, ud, has_udh),
        DataCoding::Eight => decode_eight(udl, ud, has_udh),
    }
}

pub fn decode_gsm7(
    udl: usize,
    ud: &[u8],
    has_udh: bool,
) -> Result<(String, Option<ConcatInfo>), DecodeError> {
    if udl > MAX_UD_SEPTETS {
        return Err(DecodeError::Invalid("TP-UDL above 160 septets"));
    }
    let (header_len, concat) = if has_udh { udh::parse(ud)? } else { (0, None) };
    let (header_septets, fill) = udh::septet_alignment(header_len);
    let count = udl
        .checked_sub(header_septets)
        .ok_or(DecodeError::Invalid("TP-UDL shorter than the header"))?;
    let body = ud.get(header_len..).ok_or(DecodeError::Truncated)?;
    let septets = gsm7::unpack(body, fill, count).ok_or(DecodeError::Truncated)?;
    Ok((gsm7::from_septets(&septets), concat))
}

pub fn decode_ucs2(
    udl: usize,
    ud: &[u8],
    has_udh: bool,
) -> Result<(String, Option<ConcatInfo>), DecodeError> {
    let (body, concat) = octets(udl, ud, has_udh)?;
    Ok((ucs2::decode(body)?, concat))
}

fn decode_eight(
    udl: usize,
    ud: &[u8],
    has_udh: bool,
) -> Result<(String, Option<ConcatInfo>), DecodeError> {
    let (body, concat) = octets(udl, ud, has_udh)?;
    Ok((body.iter().map(|&b| char::from(b)).collect(), concat))
}

/// Octet-coded user data after its header.
fn octets(
    udl: usize,
    ud: &[u8],
    has_udh: bool,
) -> Result<(&[u8], Option<ConcatInfo>), DecodeError> {
    if udl > MAX_UD_OCTETS {
        return Err(DecodeError::Invalid("TP-UDL above 140 octets"));
    }
    let ud = ud.get(..udl).ok_or(DecodeError::Truncated)?;
    let (header_len, concat) = if has_udh { udh::parse(ud)? } else { (0, None) };
    let body = ud.get(header_len..).ok_or(DecodeError::Truncated)?;
    Ok((body, concat))
}
