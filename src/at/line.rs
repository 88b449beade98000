//! nom parsers for single, already framed lines (no terminator, trailing blanks
//! trimmed): final result codes, error codes, the name of a `+XXX:` / `^XXX:` line and
//! the hex PDU lines that follow two-line URCs or get echoed after the prompt.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{digit1, space0};
use nom::combinator::{all_consuming, map, map_res, rest, value};
use nom::sequence::preceded;
use nom::IResult;

use super::{ErrorCode, FinalResult};

/// Result codes that end a command without being `OK`/`ERROR`/`+CMx ERROR`. Listed
/// as they appear on the wire; vendors add their own (`COMMAND NOT SUPPORT` is Huawei's).
const OTHER_FINALS: &[&str] = &[
    "NO CARRIER",
    "BUSY",
    "NO ANSWER",
    "NO DIALTONE",
    "COMMAND NOT SUPPORT",
    "TOO MANY PARAMETERS",
];

/// Parses `line` as a final result code, or `None` when it is any other line.
pub fn final_result(line: &str) -> Option<FinalResult> {
    let parsed: IResult<&str, FinalResult> = all_consuming(alt((
        value(FinalResult::Ok, tag("OK")),
        value(FinalResult::Error, tag("ERROR")),
        map(
            preceded(tag("+CME ERROR:"), error_code),
            FinalResult::CmeError,
        ),
        map(
            preceded(tag("+CMS ERROR:"), error_code),
            FinalResult::CmsError,
        ),
    )))(line);
    if let Ok((_, result)) = parsed {
        return Some(result);
    }
    OTHER_FINALS
        .iter()
        .find(|code| **code == line)
        .map(|code| FinalResult::Other((*code).to_owned()))
}

/// The text after `+CME ERROR:` / `+CMS ERROR:`: a number when it is one that fits,
/// the text otherwise (`SIM PIN required`, or a number too large to be a real code).
fn error_code(input: &str) -> IResult<&str, ErrorCode> {
    let (input, _) = space0(input)?;
    alt((
        map(
            all_consuming(map_res(digit1, str::parse::<u16>)),
            ErrorCode::Numeric,
        ),
        map(rest, |text: &str| {
            ErrorCode::Verbose(text.trim().to_owned())
        }),
    ))(input)
}

/// The name of an extended result line: `+CREG` for `+CREG: 1`, `^BOOT` for
/// `^BOOT:20952644,0,0,0,75`, `+PACSP1` for `+PACSP1`. `None` for lines that do not
/// start with `+`, `^`, `*`, `$` or `#` (`RING`, `OK`, `Quectel`, a PDU).
pub fn extended_name(line: &str) -> Option<&str> {
    let parsed: IResult<&str, &str> = nom::combinator::recognize(preceded(
        nom::character::complete::one_of("+^*$#"),
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))(line);
    parsed.ok().map(|(_, name)| name)
}

/// Whether `line` is a non-empty run of hex digits, as a PDU is.
pub fn is_hex(line: &str) -> bool {
    let parsed: IResult<&str, &str> =
        all_consuming(take_while1(|c: char| c.is_ascii_hexdigit()))(line);
    parsed.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_finals() {
        assert_eq!(final_result("OK"), Some(FinalResult::Ok));
        assert_eq!(final_result("ERROR"), Some(FinalResult::Error));
        assert_eq!(
            final_result("COMMAND NOT SUPPORT"),
            Some(FinalResult::Other("COMMAND NOT SUPPORT".into()))
        );
        assert_eq!(
            final_result("NO CARRIER"),
            Some(FinalResult::Other("NO CARRIER".into()))
        );
        assert_eq!(final_result("OKAY"), None);
        assert_eq!(final_result("+CMGS: 12"), None);
        assert_eq!(final_result("Call Ready"), None);
    }

    #[test]
    fn numeric_and_verbose_errors() {
        assert_eq!(
            final_result("+CMS ERROR: 500"),
            Some(FinalResult::CmsError(ErrorCode::Numeric(500)))
        );
        assert_eq!(
            final_result("+CMS ERROR:330"),
            Some(FinalResult::CmsError(ErrorCode::Numeric(330)))
        );
        assert_eq!(
            final_result("+CME ERROR: SIM PIN required"),
            Some(FinalResult::CmeError(ErrorCode::Verbose(
                "SIM PIN required".into()
            )))
        );
        assert_eq!(
            final_result("+CME ERROR: 99999"),
            Some(FinalResult::CmeError(ErrorCode::Verbose("99999".into())))
        );
        assert_eq!(
            final_result("+CME ERROR:"),
            Some(FinalResult::CmeError(ErrorCode::Verbose(String::new())))
        );
    }

    #[test]
    fn names() {
        assert_eq!(extended_name("+CREG: 1"), Some("+CREG"));
        assert_eq!(extended_name("+CDS:25"), Some("+CDS"));
        assert_eq!(extended_name("^BOOT:20952644,0,0,0,75"), Some("^BOOT"));
        assert_eq!(extended_name("+PACSP1"), Some("+PACSP1"));
        assert_eq!(extended_name("RING"), None);
        assert_eq!(extended_name("+"), None);
    }

    #[test]
    fn hex() {
        assert!(is_hex("0791447758100650"));
        assert!(is_hex("00aF"));
        assert!(!is_hex(""));
        assert!(!is_hex("OK"));
        assert!(!is_hex("00 11"));
    }
}
