//! USSD answers (`+CUSD: <m>[,<str>[,<dcs>]]`, 3GPP TS 27.007 §7.15) and their text.
//!
//! Modems disagree on how `<str>` comes: plain text (the TE character set), the hex of
//! GSM 7-bit packed septets (Huawei E160 and friends), or the hex of UCS-2 — sometimes
//! with a `<dcs>` that says otherwise (Quectel M35 answers UCS-2 hex under dcs 15).
//! Samples from gammu's tests/at-ussd dumps are in the tests below. The reading is
//! gammu's: UCS-2 when the dcs says so or the hex has the shape of it, packed 7-bit when
//! it is hex that unpacks to text, plain otherwise.

use crate::sms::{gsm7_from_packed, ucs2_from_hex};

/// What the network answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdAnswer {
    /// `<m>`: 0 no further action, 1 further action required (a menu), 2 terminated by
    /// the network, 3 other client answered, 4 not supported, 5 timed out.
    pub status: u8,
    pub text: String,
}

/// Parse a `+CUSD:` line; `None` when it is not one.
pub fn parse_cusd(line: &str) -> Option<UssdAnswer> {
    let rest = line.trim().strip_prefix("+CUSD:")?.trim_start();
    let (status, rest) = match rest.split_once(',') {
        Some((status, rest)) => (status.trim(), Some(rest)),
        None => (rest.trim(), None),
    };
    let status = status.parse::<u8>().ok()?;
    let Some(rest) = rest else {
        return Some(UssdAnswer {
            status,
            text: String::new(),
        });
    };
    let rest = rest.trim_start();
    // The string is quoted (most) or bare up to the last comma (Huawei E160).
    let (raw, dcs) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.rfind('"')?;
        let dcs = quoted[end + 1..]
            .trim_start_matches(',')
            .trim()
            .parse::<u8>()
            .ok();
        (&quoted[..end], dcs)
    } else {
        match rest.rsplit_once(',') {
            Some((raw, dcs)) if dcs.trim().parse::<u8>().is_ok() => {
                (raw.trim(), dcs.trim().parse::<u8>().ok())
            }
            _ => (rest.trim(), None),
        }
    };
    Some(UssdAnswer {
        status,
        text: decode_text(raw, dcs),
    })
}

/// TS 23.038 §5 (CBS data coding): UCS-2 is group 0100 with bits 3..2 = 10, or 0x48.
fn dcs_is_ucs2(dcs: u8) -> bool {
    dcs == 0x48 || (dcs >> 4 == 0x4 && (dcs >> 2) & 0b11 == 0b10) || dcs == 0x11
}

/// Hex, with at least one letter: an answer of digits alone ("100") is taken as the
/// plain text it most likely is.
fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.len() % 2 == 0
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Hex whose every other octet is 00 for the ASCII it carries: UCS-2 in all likelihood.
fn looks_like_ucs2(s: &str) -> bool {
    s.len() % 4 == 0
        && s.as_bytes()
            .chunks(4)
            .filter(|unit| unit.starts_with(b"00"))
            .count()
            * 2
            >= s.len() / 4
}

fn decode_text(raw: &str, dcs: Option<u8>) -> String {
    if is_hex(raw) {
        if dcs.is_some_and(dcs_is_ucs2) || looks_like_ucs2(raw) {
            if let Some(text) = ucs2_from_hex(raw) {
                return text;
            }
        }
        if let Some(text) = gsm7_from_packed(raw) {
            return text;
        }
    }
    raw.to_owned()
}

/// The USSD string as the modem must be given it: plain, or the hex of its GSM 7-bit
/// packed septets (what some Huawei firmware wants). `None` for characters outside
/// the GSM alphabet.
pub fn ussd_request(code: &str, packed: bool) -> Option<String> {
    if code.is_empty() {
        return None;
    }
    if !packed {
        return code
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"')
            .then(|| format!("AT+CUSD=1,\"{code}\",15"));
    }
    let hex = crate::sms::gsm7_packed_hex(code)?;
    Some(format!("AT+CUSD=1,\"{hex}\",15"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gammu_dumps_of_real_modems() {
        // tests/at-ussd/01-E160.dump: bare packed hex, no dcs.
        let a = parse_cusd("+CUSD: 0, 49B41C74ACD3D16171D90D66666666666666666666B45CAC76C3CD6CB41B2D060389CB74F9FE4C07DD5CB91AA85897BF1B").unwrap();
        assert_eq!(a.status, 0);
        assert!(a.text.starts_with("Ihr Guthaben"), "{}", a.text);
        // 02-E160: quoted packed hex with dcs 15.
        let b = parse_cusd("+CUSD: 0,\"49B41C74ACD3D16171D90D32FBE52072BA0C72CA5DB45CAC76C3CD6CB41B2D060389CB74F9FE4C07D55C371CA85897BF1B\",15").unwrap();
        // The 7-bit padding CR is not part of the text; ä and ü are GSM 7-bit's.
        assert_eq!(
            b.text,
            "Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"
        );
        // 03-unknown: plain text, no dcs.
        let c = parse_cusd("+CUSD: 1,\"Kontostand: 3.00 EUR Bitte w{hlen Sie: 1 Konto aufladen 2 CallNow Transfer\"").unwrap();
        assert_eq!(c.status, 1);
        assert!(c.text.starts_with("Kontostand: 3.00 EUR"));
        // 04-unknown: plain text, dcs 0.
        let d = parse_cusd("+CUSD: 2,\"Maaf, permintaan Anda tidak dapat kami proses. Silakan coba beberapa saat lagi.\",0").unwrap();
        assert_eq!((d.status, d.text.starts_with("Maaf,")), (2, true));
        // Uissue358-Quectel_M35: UCS-2 hex under dcs 15.
        let e = parse_cusd(
            "+CUSD: 2,\"00480061007600690020006B0065007200650074003A0020003000460074002E\",15",
        )
        .unwrap();
        assert_eq!(e.text, "Havi keret: 0Ft.");
        // issue109-E3276: UCS-2 hex, dcs 72.
        let f = parse_cusd("+CUSD: 0,\"0414043B044F00200441043F044004300432043A04380020043E002004310430043B0430043D044104350020043D04300431043504400438044204350020002A0031003000350023002E\",72").unwrap();
        assert_eq!(f.text, "Для справки о балансе наберите *105#.");
        assert!(parse_cusd("+CUSD").is_none());
        assert!(parse_cusd("+CUSD: x").is_none());
        assert_eq!(parse_cusd("+CUSD: 4").unwrap().status, 4);
        assert_eq!(parse_cusd("+CUSD: 0,\"100\",15").unwrap().text, "100");
    }

    #[test]
    fn requests_plain_or_packed() {
        assert_eq!(
            ussd_request("*100#", false).as_deref(),
            Some("AT+CUSD=1,\"*100#\",15")
        );
        // "*100#" packed: the form Huawei sticks take.
        assert_eq!(
            ussd_request("*100#", true).as_deref(),
            Some("AT+CUSD=1,\"AA180C3602\",15")
        );
        assert_eq!(ussd_request("*1\"0#", false), None);
    }
}
