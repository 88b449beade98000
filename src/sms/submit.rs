//! SMS-SUBMIT (3GPP TS 23.040 §9.2.2.2): encoding for `AT+CMGS`, and decoding for the
//! simulated modem and the tests.

use super::address;
use super::reader::Reader;
use super::split::{split, SplitText};
use super::udh::{self, ConcatHeader};
use super::validity::relative_vp;
use super::{gsm7, ucs2};
use super::{
    Coding, ConcatInfo, DecodeError, DecodedSubmit, EncodeError, PhoneNumber, SubmitOptions,
    SubmitPdu,
};

const MTI_MASK: u8 = 0b11;
const MTI_SUBMIT: u8 = 0b01;
const VPF_MASK: u8 = 0b1_1000;
const VPF_RELATIVE: u8 = 0b1_0000;
const SRR: u8 = 0x20;
const UDHI: u8 = 0x40;

const DCS_GSM7: u8 = 0x00;
const DCS_UCS2: u8 = 0x08;

/// The most user data one SMS carries, in octets (TS 23.040 §9.2.3.16).
const MAX_UD_OCTETS: usize = 140;
const MAX_UD_SEPTETS: usize = 160;

/// See [`super::encode_submit`].
pub fn encode_submit(
    to: &PhoneNumber,
    text: &str,
    reference: u16,
    opts: &SubmitOptions,
) -> Result<Vec<SubmitPdu>, EncodeError> {
    let parts = split(text, opts.concat_ref16);
    let total = parts.parts();
    if total == 0 {
        return Err(EncodeError::Empty);
    }
    let too_long = EncodeError::TooLong {
        parts_needed: total,
        max_parts: opts.max_parts,
    };
    if total > opts.max_parts {
        return Err(too_long);
    }
    // The part count travels in one octet.
    let total_u8 = u8::try_from(total).map_err(|_| too_long)?;
    let header = |sequence: usize| {
        (total > 1).then(|| ConcatHeader {
            reference,
            wide: opts.concat_ref16,
            total: total_u8,
            // sequence < total ≤ 255, checked just above.
            sequence: u8::try_from(sequence + 1).unwrap_or(u8::MAX),
        })
    };
    let pdus = match &parts {
        SplitText::Gsm7(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, septets)| {
                let (udl, ud) = gsm7_user_data(header(i), septets);
                submit_pdu(to, opts, header(i).is_some(), DCS_GSM7, udl, &ud)
            })
            .collect(),
        SplitText::Ucs2(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, units)| {
                let mut ud = header(i).map(|h| h.to_bytes()).unwrap_or_default();
                ud.extend(ucs2::units_to_bytes(units));
                submit_pdu(to, opts, header(i).is_some(), DCS_UCS2, ud.len(), &ud)
            })
            .collect(),
    };
    Ok(pdus)
}

/// TP-UDL (in septets, header included) and TP-UD for a 7-bit part.
fn gsm7_user_data(header: Option<ConcatHeader>, septets: &[u8]) -> (usize, Vec<u8>) {
    let mut ud = header.map(|h| h.to_bytes()).unwrap_or_default();
    let (header_septets, fill) = udh::septet_alignment(ud.len());
    ud.extend(gsm7::pack(septets, fill));
    (header_septets + septets.len(), ud)
}

fn submit_pdu(
    to: &PhoneNumber,
    opts: &SubmitOptions,
    multipart: bool,
    dcs: u8,
    udl: usize,
    ud: &[u8],
) -> SubmitPdu {
    let mut bytes = address::encode_smsc(opts.smsc.as_ref());
    let tpdu_start = bytes.len();
    let mut first = MTI_SUBMIT;
    if opts.validity.is_some() {
        first |= VPF_RELATIVE;
    }
    if opts.status_report {
        first |= SRR;
    }
    if multipart {
        first |= UDHI;
    }
    bytes.push(first);
    // TP-MR 0: the modem assigns the real reference and reports it in +CMGS.
    bytes.push(0);
    bytes.extend(address::encode_destination(to));
    bytes.push(0); // TP-PID: plain SMS
    bytes.push(dcs);
    if let Some(validity) = opts.validity {
        bytes.push(relative_vp(validity));
    }
    // The splitter keeps every part within 160 septets / 140 octets.
    bytes.push(u8::try_from(udl).unwrap_or(u8::MAX));
    bytes.extend_from_slice(ud);
    let tpdu_len = bytes.len() - tpdu_start;
    SubmitPdu { bytes, tpdu_len }
}

/// See [`super::decode_submit`].
pub fn decode_submit(pdu: &[u8]) -> Result<DecodedSubmit, DecodeError> {
    let mut r = Reader::new(pdu);
    let smsc = address::decode_smsc(&mut r)?;
    let first = r.u8()?;
    if first & MTI_MASK != MTI_SUBMIT {
        return Err(DecodeError::WrongType(first));
    }
    let message_reference = r.u8()?;
    let destination = address::decode_address(&mut r)?;
    let _pid = r.u8()?;
    let coding = coding_of_dcs(r.u8()?)?;
    let validity = match first & VPF_MASK {
        0 => None,
        VPF_RELATIVE => Some(r.u8()?),
        // Enhanced and absolute formats are seven octets; we only report relative ones.
        _ => {
            r.take(7)?;
            None
        }
    };
    let udl = usize::from(r.u8()?);
    let ud = r.rest();
    let (text, concat) = match coding {
        Coding::Gsm7 => decode_gsm7_ud(udl, ud, first & UDHI != 0)?,
        Coding::Ucs2 => decode_ucs2_ud(udl, ud, first & UDHI != 0)?,
    };
    Ok(DecodedSubmit {
        smsc,
        destination,
        text,
        coding,
        concat,
        message_reference,
        status_report_requested: first & SRR != 0,
        validity,
    })
}

/// The coding a TP-DCS names (TS 23.038 §4); 8-bit data, compression and reserved
/// groups are not text this crate reads.
pub fn coding_of_dcs(dcs: u8) -> Result<Coding, DecodeError> {
    match dcs >> 4 {
        // General data coding and its automatic-deletion twin (bits 7..6 = 00 or 01).
        0x0..=0x7 => {
            if dcs & 0x20 != 0 {
                return Err(DecodeError::Invalid("compressed user data"));
            }
            match (dcs >> 2) & 0b11 {
                0b00 => Ok(Coding::Gsm7),
                0b10 => Ok(Coding::Ucs2),
                0b01 => Err(DecodeError::Invalid("8-bit data coding")),
                _ => Err(DecodeError::Invalid("reserved alphabet")),
            }
        }
        // Message waiting indication groups: discard/store with 7-bit, store with UCS-2.
        0xC | 0xD => Ok(Coding::Gsm7),
        0xE => Ok(Coding::Ucs2),
        0xF if dcs & 0x04 == 0 => Ok(Coding::Gsm7),
        0xF => Err(DecodeError::Invalid("8-bit data coding")),
        _ => Err(DecodeError::Invalid("reserved data coding group")),
    }
}

fn decode_gsm7_ud(
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

fn decode_ucs2_ud(
    udl: usize,
    ud: &[u8],
    has_udh: bool,
) -> Result<(String, Option<ConcatInfo>), DecodeError> {
    if udl > MAX_UD_OCTETS {
        return Err(DecodeError::Invalid("TP-UDL above 140 octets"));
    }
    let ud = ud.get(..udl).ok_or(DecodeError::Truncated)?;
    let (header_len, concat) = if has_udh { udh::parse(ud)? } else { (0, None) };
    let body = ud.get(header_len..).ok_or(DecodeError::Truncated)?;
    Ok((ucs2::decode(body)?, concat))
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;
