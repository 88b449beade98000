//! SMS-SUBMIT (3GPP TS 23.040 §9.2.2.2): encoding for `AT+CMGS`, and decoding for the
//! simulated modem and the tests.

use super::address;
use super::reader::Reader;
use super::split::{split, SplitText};
use super::udh::{self, ConcatHeader};
use super::user_data::{self, DataCoding};
use super::validity::relative_vp;
use super::{gsm7, ucs2};
use super::{
    Coding, DecodeError, DecodedSubmit, EncodeError, PhoneNumber, SubmitOptions, SubmitPdu,
};

const MTI_MASK: u8 = 0b11;
const MTI_SUBMIT: u8 = 0b01;
const VPF_MASK: u8 = 0b1_1000;
const VPF_RELATIVE: u8 = 0b1_0000;
const SRR: u8 = 0x20;
const UDHI: u8 = 0x40;

const DCS_GSM7: u8 = 0x00;
const DCS_UCS2: u8 = 0x08;

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
        Coding::Gsm7 => user_data::decode_gsm7(udl, ud, first & UDHI != 0)?,
        Coding::Ucs2 => user_data::decode_ucs2(udl, ud, first & UDHI != 0)?,
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

/// The coding a TP-DCS names, for a SUBMIT: text only (8-bit data is `Invalid`).
pub fn coding_of_dcs(dcs: u8) -> Result<Coding, DecodeError> {
    match user_data::data_coding(dcs)? {
        DataCoding::Gsm7 => Ok(Coding::Gsm7),
        DataCoding::Ucs2 => Ok(Coding::Ucs2),
        DataCoding::Eight => Err(DecodeError::Invalid("8-bit data coding")),
    }
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;
