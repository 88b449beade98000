//! The pure SMS layer: phone numbers, GSM 03.38 / UCS-2 text coding, splitting into
//! concatenated parts, SMS-SUBMIT encoding, SMS-DELIVER decoding and reassembly, and
//! SMS-STATUS-REPORT decoding
//! (3GPP TS 23.038 / 23.040), plus the decoders and encoders the simulated modem needs
//! (`decode_submit`, `encode_status_report`) and the strings of text mode
//! (`text_mode_submit`). No IO, no async.

mod address;
mod deliver;
mod gsm7;
mod phone;
mod reader;
mod reassembly;
mod split;
mod status_report;
mod submit;
mod text;
mod text_mode;
mod timestamp;
mod ucs2;
mod udh;
mod user_data;
mod validity;

#[cfg(test)]
mod proptests;

pub use deliver::{decode_deliver, encode_deliver, Deliver, DeliverEncodeError};
pub use gsm7::septet_len;
pub use phone::{PhoneNumber, PhoneNumberError};
pub use reassembly::{Reassembly, Received, MISSING_PART};
pub use split::{
    plan_with, GSM7_CONCAT16, GSM7_CONCAT8, GSM7_SINGLE, UCS2_CONCAT16, UCS2_CONCAT8, UCS2_SINGLE,
};
pub use status_report::{encode_status_report, ReportEncodeError};
pub use text::{SmsText, SmsTextError};
pub use text_mode::{
    csmp_params, text_mode_submit, CsmpParams, TextCharset, TextModeSubmit, TODA_INTERNATIONAL,
};
pub use timestamp::TimestampError;
pub use user_data::DataCoding;
pub use validity::{relative_validity, relative_vp};

use std::time::Duration;

/// How the user data of a message is coded (TP-DCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// GSM 03.38 default alphabet, 7-bit packed (DCS 0x00).
    Gsm7,
    /// UCS-2 / UTF-16BE (DCS 0x08).
    Ucs2,
}

/// How a text will be sent: its coding and the number of SMS parts it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagePlan {
    pub coding: Coding,
    pub parts: usize,
}

/// Per-modem/per-message settings of the SMS-SUBMIT fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// TP-VP (relative format). `None` leaves the validity period out.
    pub validity: Option<Duration>,
    /// TP-SRR: ask the network for a delivery report.
    pub status_report: bool,
    /// Service centre address; `None` encodes `00` (the SIM's default SMSC).
    pub smsc: Option<PhoneNumber>,
    /// Use the 16-bit concatenation reference (IE 0x08) instead of the 8-bit one (IE 0x00).
    pub concat_ref16: bool,
    /// Refuse texts that need more parts than this.
    pub max_parts: usize,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        Self {
            validity: None,
            status_report: false,
            smsc: None,
            concat_ref16: false,
            max_parts: 4,
        }
    }
}

/// One SMS-SUBMIT ready for `AT+CMGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    /// SMSC address field followed by the TPDU.
    pub bytes: Vec<u8>,
    /// Length of the TPDU alone: the `<length>` argument of `AT+CMGS`.
    pub tpdu_len: usize,
}

impl SubmitPdu {
    /// Upper-case hex, as written to the modem after the `> ` prompt.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(&self.bytes)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the text needs {parts_needed} SMS parts, more than the {max_parts} allowed")]
    TooLong {
        parts_needed: usize,
        max_parts: usize,
    },
    #[error("the text is empty")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("PDU is truncated")]
    Truncated,
    #[error("PDU is not valid hex")]
    BadHex,
    #[error("unexpected PDU type {0:#04x}")]
    WrongType(u8),
    #[error("unsupported or invalid field: {0}")]
    Invalid(&'static str),
}

/// The coding and part count a text would be sent with (for refusing over-long texts
/// at the API before anything is stored): exactly the number of PDUs `encode_submit`
/// makes with the default 8-bit reference. An empty text plans 0 parts (and does not
/// encode). See [`plan_with`] for the 16-bit reference, which can need one part more.
pub fn plan(text: &str) -> MessagePlan {
    plan_with(text, false)
}

/// Encode `text` for `to` as one or more SMS-SUBMIT PDUs. `reference` is the
/// concatenation reference used when the text needs several parts (the caller rotates it
/// per message; only its low 8 bits are used unless `opts.concat_ref16`).
///
/// GSM 7-bit when every character is in the default alphabet or its extension table,
/// else UCS-2; no character is ever dropped or approximated. Parts hold at most
/// 160/153/152 septets or 70/67/66 UTF-16 units (single, 8-bit and 16-bit reference),
/// and an ESC pair or a surrogate pair is never cut between two parts.
pub fn encode_submit(
    to: &PhoneNumber,
    text: &str,
    reference: u16,
    opts: &SubmitOptions,
) -> Result<Vec<SubmitPdu>, EncodeError> {
    submit::encode_submit(to, text, reference, opts)
}

/// What the simulated modem (or a test) reads back out of an SMS-SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSubmit {
    /// `None` when the SMSC field was `00`.
    pub smsc: Option<String>,
    /// Destination as written in the PDU: `+` prefix for international (TON 0x91).
    pub destination: String,
    pub text: String,
    pub coding: Coding,
    pub concat: Option<ConcatInfo>,
    pub message_reference: u8,
    pub status_report_requested: bool,
    /// Raw TP-VP octet when a relative validity period is present.
    pub validity: Option<u8>,
}

/// Concatenation information element of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatInfo {
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
}

/// Decode an SMS-SUBMIT PDU (SMSC field + TPDU). Never panics, whatever the bytes.
/// Reads GSM 7-bit and UCS-2 text (8-bit data and compression are `Invalid`); a lone
/// surrogate in UCS-2 reads as U+FFFD.
pub fn decode_submit(pdu: &[u8]) -> Result<DecodedSubmit, DecodeError> {
    submit::decode_submit(pdu)
}

/// The outcome a status report gives (TP-ST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// 0x00–0x1F: the SMS reached the handset.
    Delivered,
    /// 0x20–0x3F: the SC is still trying.
    Pending(u8),
    /// 0x40–0x7F (and reserved values): the SC gave up.
    Failed(u8),
}

/// An SMS-STATUS-REPORT, as the modem hands it over in `+CDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub message_reference: u8,
    pub recipient: String,
    /// SC timestamp and discharge time, RFC 3339 with the offset the PDU carried
    /// (`2011-01-11T17:59:15+01:00`); the two-digit year is read as 2000–2099.
    pub service_centre_time: String,
    pub discharge_time: String,
    pub status: DeliveryStatus,
}

/// Decode an SMS-STATUS-REPORT PDU (SMSC field + TPDU). Never panics, whatever the bytes.
/// The recipient reads as `+digits` (international), `digits` (other numbering) or the
/// text of an alphanumeric address.
pub fn decode_status_report(pdu: &[u8]) -> Result<StatusReport, DecodeError> {
    status_report::decode_status_report(pdu)
}

/// The text of hex-coded GSM 7-bit packed septets (a USSD answer): `None` when `hex`
/// is not hex. A trailing CR that pads the last octet (TS 23.038 §6.1.2.3.1) is dropped.
pub fn gsm7_from_packed(hex: &str) -> Option<String> {
    let octets = hex::decode(hex).ok()?;
    let count = octets.len() * 8 / 7;
    let mut septets = gsm7::unpack(&octets, 0, count)?;
    if septets.len() % 8 == 0 && septets.last() == Some(&0x0D) {
        septets.pop();
    }
    if septets.last() == Some(&0) && (octets.len() * 8) % 7 != 0 {
        // Seven spare bits read as one septet of zeros ('@'): padding, not text.
        septets.pop();
    }
    Some(gsm7::from_septets(&septets))
}

/// The text of hex-coded UCS-2 (UTF-16BE); `None` when it is not.
pub fn ucs2_from_hex(hex: &str) -> Option<String> {
    let octets = hex::decode(hex).ok()?;
    ucs2::decode(&octets).ok()
}

/// `text` as hex-coded GSM 7-bit packed septets, a CR padding seven spare bits;
/// `None` for characters outside the GSM alphabet.
pub fn gsm7_packed_hex(text: &str) -> Option<String> {
    let mut septets = gsm7::to_septets(text)?;
    if septets.len() % 8 == 7 {
        septets.push(0x0D);
    }
    Some(hex::encode_upper(gsm7::pack(&septets, 0)))
}
