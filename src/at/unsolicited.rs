//! What an unsolicited result code means to the driver, typed: the driver matches on
//! these instead of on strings.

use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char, digit1, space0};
use nom::combinator::{all_consuming, map_res};
use nom::sequence::{delimited, preceded, separated_pair, tuple};
use nom::IResult;

use super::line::extended_name;
use super::Urc;

/// A message storage (`"SM"` the SIM, `"ME"` the modem, `"SR"` status reports, …).
pub type Memory = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsolicited {
    /// `+CDS: <length>` and its PDU: a status report routed to us (`<ds>` = 1).
    StatusReport { pdu: String },
    /// `+CDSI: <mem>,<index>`: a status report stored (`<ds>` = 2).
    StoredReport { mem: Memory, index: u32 },
    /// `+CMTI: <mem>,<index>`: an SMS stored.
    NewMessage { mem: Memory, index: u32 },
    /// `+CMT: [<alpha>],<length>` and its PDU: an SMS routed to us.
    Deliver { pdu: String },
    /// The message storage is full (Huawei `^SMMEMFULL`, SIMCom `+SMSFULL`).
    StorageFull,
    /// Anything else (signal, registration, boot banners): only logged.
    Other,
}

impl Urc {
    /// What this URC means; a known name with a malformed value is `Other` (and the
    /// line stays in the log).
    pub fn meaning(&self) -> Unsolicited {
        let name = extended_name(&self.line);
        match (name, self.pdu.as_deref()) {
            (Some("+CDS"), Some(pdu)) => Unsolicited::StatusReport {
                pdu: pdu.to_owned(),
            },
            (Some("+CMT"), Some(pdu)) => Unsolicited::Deliver {
                pdu: pdu.to_owned(),
            },
            (Some("+CDSI"), None) => match storage_index("+CDSI", &self.line) {
                Some((mem, index)) => Unsolicited::StoredReport { mem, index },
                None => Unsolicited::Other,
            },
            (Some("^SMMEMFULL" | "+SMSFULL"), _) => Unsolicited::StorageFull,
            (Some("+CMTI"), None) => match storage_index("+CMTI", &self.line) {
                Some((mem, index)) => Unsolicited::NewMessage { mem, index },
                None => Unsolicited::Other,
            },
            _ => Unsolicited::Other,
        }
    }
}

/// `<name>: "<mem>",<index>` (the quotes are optional on some firmware).
fn storage_index(name: &'static str, line: &str) -> Option<(Memory, u32)> {
    let memory = |input| -> IResult<&str, &str> {
        let quoted = delimited(char('"'), take_while(|c: char| c != '"'), char('"'));
        let bare = take_while(|c: char| c.is_ascii_alphanumeric());
        nom::branch::alt((quoted, bare))(input)
    };
    let parsed: IResult<&str, (&str, u32)> = all_consuming(preceded(
        tuple((tag(name), char(':'), space0)),
        separated_pair(
            memory,
            tuple((space0, char(','), space0)),
            map_res(digit1, str::parse::<u32>),
        ),
    ))(line.trim());
    let (_, (mem, index)) = parsed.ok()?;
    (!mem.is_empty()).then(|| (mem.to_owned(), index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urc(line: &str, pdu: Option<&str>) -> Urc {
        Urc {
            line: line.to_owned(),
            pdu: pdu.map(str::to_owned),
        }
    }

    #[test]
    fn storage_urcs_name_memory_and_index() {
        assert_eq!(
            urc("+CDSI: \"SR\",3", None).meaning(),
            Unsolicited::StoredReport {
                mem: "SR".into(),
                index: 3
            }
        );
        assert_eq!(
            urc("+CMTI: \"SM\",12", None).meaning(),
            Unsolicited::NewMessage {
                mem: "SM".into(),
                index: 12
            }
        );
        assert_eq!(
            urc("+CMTI:ME,0", None).meaning(),
            Unsolicited::NewMessage {
                mem: "ME".into(),
                index: 0
            }
        );
        for bad in [
            "+CMTI: \"SM\"",
            "+CMTI: \"SM\",x",
            "+CDSI: ,3",
            "+CMTI: \"SM\",3,4",
        ] {
            assert_eq!(urc(bad, None).meaning(), Unsolicited::Other, "{bad}");
        }
    }

    #[test]
    fn two_line_urcs_carry_their_pdu() {
        assert_eq!(
            urc("+CDS: 25", Some("0006")).meaning(),
            Unsolicited::StatusReport { pdu: "0006".into() }
        );
        assert_eq!(
            urc("+CMT: ,23", Some("07911326")).meaning(),
            Unsolicited::Deliver {
                pdu: "07911326".into()
            }
        );
        // A text-mode +CDS (no PDU line) is not one this driver reads.
        assert_eq!(
            urc("+CDS: 6,45,\"+31612345678\",145", None).meaning(),
            Unsolicited::Other
        );
        assert_eq!(urc("^RSSI: 17", None).meaning(), Unsolicited::Other);
        assert_eq!(
            urc("^SMMEMFULL: \"SM\"", None).meaning(),
            Unsolicited::StorageFull
        );
    }
}
