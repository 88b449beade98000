//! `+CMS ERROR` codes: what they mean and whether a failed send is worth retrying.
//!
//! The rule behind the table: a failure caused by the network or by this modem (its
//! SIM, its memory, congestion, a timeout) is temporary, because the same message may
//! go out later or through another modem; a failure caused by the message or its
//! recipient (unassigned number, barring, invalid PDU) is permanent, because sending it
//! again can only fail again. 330 (SMSC address unknown) is a modem set-up fault but is
//! permanent as issue 4 asks: without an SMSC the modem will not recover by itself.
//! Codes 0..=127 are TS 24.011 RP causes, 128..=255 TS 23.040 TP-FCS values,
//! 300..=500 TS 27.005 3.2.5; 512 and up are manufacturer specific.

use super::ErrorCode;

/// Whether a failed send may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsClass {
    /// Retry with backoff, on another modem when there is one.
    Temporary,
    /// Fail the message and record the reason.
    Permanent,
}

use CmsClass::{Permanent as P, Temporary as T};

const TABLE: &[(u16, CmsClass, &str)] = &[
    (1, P, "unassigned (unallocated) number"),
    (8, P, "operator determined barring"),
    (10, P, "call barred"),
    (17, T, "network failure"),
    (21, P, "short message transfer rejected"),
    (22, T, "memory capacity exceeded"),
    (27, T, "destination out of service"),
    (28, P, "unidentified subscriber"),
    (29, P, "facility rejected"),
    (30, P, "unknown subscriber"),
    (38, T, "network out of order"),
    (41, T, "temporary failure"),
    (42, T, "congestion"),
    (47, T, "resources unavailable, unspecified"),
    (50, P, "requested facility not subscribed"),
    (69, P, "requested facility not implemented"),
    (81, T, "invalid short message transfer reference value"),
    (95, P, "semantically incorrect message"),
    (96, P, "invalid mandatory information"),
    (97, P, "message type non-existent or not implemented"),
    (
        98,
        T,
        "message not compatible with short message protocol state",
    ),
    (99, P, "information element non-existent or not implemented"),
    (111, T, "protocol error, unspecified"),
    (127, T, "interworking, unspecified"),
    (128, P, "telematic interworking not supported"),
    (129, P, "short message type 0 not supported"),
    (130, P, "cannot replace short message"),
    (143, P, "unspecified TP-PID error"),
    (144, P, "data coding scheme (alphabet) not supported"),
    (145, P, "message class not supported"),
    (159, P, "unspecified TP-DCS error"),
    (160, P, "command cannot be actioned"),
    (161, P, "command unsupported"),
    (175, P, "unspecified TP-command error"),
    (176, P, "TPDU not supported"),
    (192, T, "SC busy"),
    (193, P, "no SC subscription"),
    (194, T, "SC system failure"),
    (195, P, "invalid SME address"),
    (196, P, "destination SME barred"),
    (197, P, "SM rejected, duplicate SM"),
    (198, P, "TP-VPF not supported"),
    (199, P, "TP-VP not supported"),
    (208, T, "SIM SMS storage full"),
    (209, T, "no SMS storage capability in SIM"),
    (210, T, "error in MS"),
    (211, T, "memory capacity exceeded"),
    (212, T, "SIM application toolkit busy"),
    (213, T, "SIM data download error"),
    (255, T, "unspecified error cause"),
    (300, T, "ME failure"),
    (301, T, "SMS service of ME reserved"),
    (302, T, "operation not allowed"),
    (303, T, "operation not supported"),
    (304, P, "invalid PDU mode parameter"),
    (305, P, "invalid text mode parameter"),
    (310, T, "SIM not inserted"),
    (311, T, "SIM PIN required"),
    (312, T, "PH-SIM PIN required"),
    (313, T, "SIM failure"),
    (314, T, "SIM busy"),
    (315, T, "SIM wrong"),
    (316, T, "SIM PUK required"),
    (317, T, "SIM PIN2 required"),
    (318, T, "SIM PUK2 required"),
    (320, T, "memory failure"),
    (321, P, "invalid memory index"),
    (322, T, "memory full"),
    (330, P, "SMSC address unknown"),
    (331, T, "no network service"),
    (332, T, "network timeout"),
    (340, P, "no +CNMA acknowledgement expected"),
    (500, T, "unknown error"),
];

fn entry(code: u16) -> Option<&'static (u16, CmsClass, &'static str)> {
    TABLE.iter().find(|(c, _, _)| *c == code)
}

/// The class of a numeric `+CMS ERROR`. Codes not in the table (reserved values,
/// manufacturer codes from 512 up) are temporary: a retry costs little, because
/// retries end with the code's lifetime, while failing a deliverable code costs a login.
pub fn classify_cms(code: u16) -> CmsClass {
    entry(code).map_or(T, |(_, class, _)| *class)
}

/// A human-readable description of a numeric `+CMS ERROR`, for message status.
pub fn cms_description(code: u16) -> Option<&'static str> {
    entry(code).map(|(_, _, text)| *text)
}

/// The code a verbose `+CMS ERROR` text (`AT+CMEE=2`) stands for, when it is one of the
/// standard texts; modems differ in case and punctuation, so both are ignored.
pub fn cms_code_from_text(text: &str) -> Option<u16> {
    let wanted = normalise(text);
    TABLE
        .iter()
        .find(|(_, _, description)| normalise(description) == wanted)
        .map(|(code, _, _)| *code)
}

fn normalise(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The class of a `+CMS ERROR` in either form; unknown verbose texts are temporary for
/// the reason given at [`classify_cms`].
pub fn classify_cms_error(code: &ErrorCode) -> CmsClass {
    match code {
        ErrorCode::Numeric(n) => classify_cms(*n),
        ErrorCode::Verbose(text) => cms_code_from_text(text).map_or(T, classify_cms),
    }
}

/// A description of a `+CMS ERROR` in either form, for message status:
/// `+CMS ERROR: 42 (congestion)`, `+CMS ERROR: 612`, `+CMS ERROR: SIM busy`.
pub fn describe_cms_error(code: &ErrorCode) -> String {
    match code {
        ErrorCode::Numeric(n) => match cms_description(*n) {
            Some(text) => format!("+CMS ERROR: {n} ({text})"),
            None => format!("+CMS ERROR: {n}"),
        },
        ErrorCode::Verbose(text) => format!("+CMS ERROR: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_4_temporary_codes() {
        for code in [38, 41, 42, 47, 314, 331, 332, 500] {
            assert_eq!(classify_cms(code), CmsClass::Temporary, "{code}");
        }
    }

    #[test]
    fn issue_4_permanent_codes() {
        for code in [1, 8, 10, 21, 29, 30, 50, 69, 96, 304, 305, 330] {
            assert_eq!(classify_cms(code), CmsClass::Permanent, "{code}");
        }
    }

    #[test]
    fn unknown_codes_are_temporary() {
        assert_eq!(classify_cms(612), CmsClass::Temporary);
        assert_eq!(classify_cms(2), CmsClass::Temporary);
        assert_eq!(cms_description(612), None);
    }

    #[test]
    fn every_code_is_described_once() {
        for (i, (code, _, text)) in TABLE.iter().enumerate() {
            assert!(!text.is_empty());
            assert!(TABLE[i + 1..].iter().all(|(c, _, _)| c != code), "{code}");
        }
        assert_eq!(cms_description(42), Some("congestion"));
    }

    #[test]
    fn verbose_forms() {
        assert_eq!(cms_code_from_text("SIM busy"), Some(314));
        assert_eq!(cms_code_from_text("Invalid PDU mode parameter"), Some(304));
        assert_eq!(
            classify_cms_error(&ErrorCode::Verbose(
                "Unassigned (unallocated) number".into()
            )),
            CmsClass::Permanent
        );
        assert_eq!(
            classify_cms_error(&ErrorCode::Verbose("something new".into())),
            CmsClass::Temporary
        );
        assert_eq!(
            describe_cms_error(&ErrorCode::Numeric(42)),
            "+CMS ERROR: 42 (congestion)"
        );
        assert_eq!(
            describe_cms_error(&ErrorCode::Verbose("SIM busy".into())),
            "+CMS ERROR: SIM busy"
        );
    }
}
