//! What a modem in text mode (`AT+CMGF=1`, 3GPP TS 27.005 §3) needs to send one SMS:
//! the `AT+CSCS` character set, the `AT+CSMP` parameters, and the strings for
//! `AT+CMGS="<da>",<toda>` and the text after the `> ` prompt.
//!
//! Text mode is the fallback for modems without PDU mode and sends **single-part
//! messages only**: 27.005 gives no portable way to set a user data header, so a text
//! that needs more than one part is refused. It also ignores `smsc` (that is
//! `AT+CSCA`), `concat_ref16` and `max_parts` of [`SubmitOptions`].

use super::gsm7;
use super::split::plan_with;
use super::validity::relative_vp;
use super::{Coding, EncodeError, PhoneNumber, SubmitOptions};

/// `<toda>` for a number with a leading `+` (type of address 0x91).
pub const TODA_INTERNATIONAL: u8 = 145;
/// The `<vp>` written when no validity is asked for: the 27.005 default, which the
/// modem ignores anyway since `<fo>` then says no TP-VP is present.
const DEFAULT_VP: u8 = 167;

/// The `AT+CSCS` character set of the strings given to the modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCharset {
    /// `"GSM"`, used only when every character has the same code in GSM 03.38 and
    /// ASCII, so that the bytes written are the bytes meant whatever the modem makes of
    /// "GSM" (firmwares differ).
    Gsm,
    /// `"UCS2"`: every string parameter and the text are hex of UTF-16BE; the modem
    /// converts to the alphabet that `<dcs>` names.
    Ucs2,
}

impl TextCharset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm => "GSM",
            Self::Ucs2 => "UCS2",
        }
    }
}

/// `AT+CSMP=<fo>,<vp>,<pid>,<dcs>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsmpParams {
    pub fo: u8,
    pub vp: u8,
    pub pid: u8,
    pub dcs: u8,
}

/// One SMS in text mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextModeSubmit {
    pub charset: TextCharset,
    pub csmp: CsmpParams,
    /// The number as `<da>` in `charset`: with `UCS2` even the number is hex.
    pub destination: String,
    /// The text to write after the `> ` prompt (the driver adds Ctrl-Z).
    pub payload: String,
    /// GSM 7-bit or UCS-2 over the air, as in PDU mode.
    pub coding: Coding,
}

impl TextModeSubmit {
    pub fn cscs_command(&self) -> String {
        format!("AT+CSCS=\"{}\"", self.charset.as_str())
    }

    pub fn csmp_command(&self) -> String {
        let CsmpParams { fo, vp, pid, dcs } = self.csmp;
        format!("AT+CSMP={fo},{vp},{pid},{dcs}")
    }

    pub fn cmgs_command(&self) -> String {
        format!("AT+CMGS=\"{}\",{TODA_INTERNATIONAL}", self.destination)
    }
}

/// Everything needed to send `text` to `to` in text mode. `EncodeError::TooLong` with
/// `max_parts: 1` when the text needs more than one part (160 GSM septets or 70 UCS-2
/// code units), `EncodeError::Empty` for an empty text.
pub fn text_mode_submit(
    to: &PhoneNumber,
    text: &str,
    opts: &SubmitOptions,
) -> Result<TextModeSubmit, EncodeError> {
    let plan = plan_with(text, false);
    match plan.parts {
        0 => return Err(EncodeError::Empty),
        1 => {}
        parts_needed => {
            return Err(EncodeError::TooLong {
                parts_needed,
                max_parts: 1,
            })
        }
    }
    let charset = if text.chars().all(gsm7::is_text_mode_safe) {
        TextCharset::Gsm
    } else {
        TextCharset::Ucs2
    };
    let in_charset = |s: &str| match charset {
        TextCharset::Gsm => s.to_owned(),
        TextCharset::Ucs2 => s.encode_utf16().map(|unit| format!("{unit:04X}")).collect(),
    };
    Ok(TextModeSubmit {
        charset,
        csmp: csmp_params(opts, plan.coding),
        destination: in_charset(to.as_str()),
        payload: in_charset(text),
        coding: plan.coding,
    })
}

/// The `AT+CSMP` values for the same first octet, TP-VP, TP-PID and TP-DCS that PDU
/// mode would send.
pub fn csmp_params(opts: &SubmitOptions, coding: Coding) -> CsmpParams {
    // TP-MTI submit, TP-VPF relative when a validity is set, TP-SRR when reports are on.
    let mut fo = 0x01;
    if opts.validity.is_some() {
        fo |= 0x10;
    }
    if opts.status_report {
        fo |= 0x20;
    }
    CsmpParams {
        fo,
        vp: opts.validity.map_or(DEFAULT_VP, relative_vp),
        pid: 0,
        dcs: match coding {
            Coding::Gsm7 => 0x00,
            Coding::Ucs2 => 0x08,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn to() -> PhoneNumber {
        PhoneNumber::parse("+46708251358").unwrap()
    }

    fn ten_minutes() -> SubmitOptions {
        SubmitOptions {
            validity: Some(Duration::from_secs(600)),
            ..SubmitOptions::default()
        }
    }

    #[test]
    fn plain_ascii_goes_as_gsm() {
        let t = text_mode_submit(&to(), "Your code: 123456", &ten_minutes()).unwrap();
        assert_eq!(t.cscs_command(), "AT+CSCS=\"GSM\"");
        assert_eq!(t.csmp_command(), "AT+CSMP=17,1,0,0");
        assert_eq!(t.cmgs_command(), "AT+CMGS=\"+46708251358\",145");
        assert_eq!(t.payload, "Your code: 123456");
        assert_eq!(t.coding, Coding::Gsm7);
    }

    #[test]
    fn gsm_text_with_unsafe_characters_goes_as_ucs2_hex_with_7_bit_dcs() {
        let opts = SubmitOptions {
            status_report: true,
            ..SubmitOptions::default()
        };
        let t = text_mode_submit(&to(), "[Shop] € 1@", &opts).unwrap();
        assert_eq!(t.charset, TextCharset::Ucs2);
        assert_eq!(t.csmp_command(), "AT+CSMP=33,167,0,0");
        assert_eq!(
            t.destination,
            "002B00340036003700300038003200350031003300350038"
        );
        assert_eq!(t.payload, "005B00530068006F0070005D002020AC002000310040");
        assert_eq!(t.coding, Coding::Gsm7);
    }

    #[test]
    fn unicode_text_goes_as_ucs2() {
        let t = text_mode_submit(&to(), "Код 🔐", &ten_minutes()).unwrap();
        assert_eq!(t.charset, TextCharset::Ucs2);
        assert_eq!(
            t.csmp,
            CsmpParams {
                fo: 17,
                vp: 1,
                pid: 0,
                dcs: 8
            }
        );
        assert_eq!(t.payload, "041A043E04340020D83DDD10");
    }

    #[test]
    fn single_part_only() {
        let opts = SubmitOptions::default();
        assert!(text_mode_submit(&to(), &"a".repeat(160), &opts).is_ok());
        assert_eq!(
            text_mode_submit(&to(), &"a".repeat(161), &opts),
            Err(EncodeError::TooLong {
                parts_needed: 2,
                max_parts: 1
            })
        );
        assert!(text_mode_submit(&to(), &"Ж".repeat(70), &opts).is_ok());
        assert!(text_mode_submit(&to(), &"Ж".repeat(71), &opts).is_err());
        assert_eq!(text_mode_submit(&to(), "", &opts), Err(EncodeError::Empty));
    }
}
