//! Typed parsers of the information lines (and URCs) the modem driver acts on.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char, digit1, space0};
use nom::combinator::{all_consuming, map, map_res, opt, rest};
use nom::multi::separated_list1;
use nom::sequence::{delimited, preceded, terminated, tuple};
use nom::IResult;
use thiserror::Error;

/// A line that does not have the shape its parser expects.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("not a {expected} line: {line:?}")]
    Malformed {
        expected: &'static str,
        line: String,
    },
    #[error("{what} {value} is out of range")]
    OutOfRange { what: &'static str, value: u32 },
}

fn malformed(expected: &'static str, line: &str) -> ValueError {
    ValueError::Malformed {
        expected,
        line: line.to_owned(),
    }
}

/// `<name>:` and the blanks after it; modems differ on the space (`+CDS:25`).
fn prefix<'a>(name: &'static str) -> impl FnMut(&'a str) -> IResult<&'a str, ()> {
    map(tuple((tag(name), char(':'), space0)), |_| ())
}

fn number(input: &str) -> IResult<&str, u32> {
    map_res(digit1, str::parse::<u32>)(input)
}

/// `+CMGS: <mr>[,<scts>]` → the message reference, the key that matches a later `+CDS`.
pub fn parse_cmgs(line: &str) -> Result<u8, ValueError> {
    let parsed: IResult<&str, u32> = all_consuming(terminated(
        preceded(prefix("+CMGS"), number),
        opt(preceded(char(','), rest)),
    ))(line.trim());
    let (_, mr) = parsed.map_err(|_| malformed("+CMGS", line))?;
    u8::try_from(mr).map_err(|_| ValueError::OutOfRange {
        what: "message reference",
        value: mr,
    })
}

/// Signal quality from `+CSQ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalQuality {
    /// Received signal strength in dBm; `None` when the modem does not know (99).
    pub rssi_dbm: Option<i16>,
    /// Bit error rate class 0..=7; `None` when unknown (99).
    pub ber: Option<u8>,
}

/// `+CSQ: <rssi>,<ber>`: rssi 0..=31 maps to -113 + 2·rssi dBm (0 means "-113 or less",
/// 31 "-51 or more"), 100..=191 (TD-SCDMA) to -116 + (rssi - 100), 99 to unknown.
pub fn parse_csq(line: &str) -> Result<SignalQuality, ValueError> {
    let parsed: IResult<&str, (u32, u32)> = all_consuming(preceded(
        prefix("+CSQ"),
        tuple((terminated(number, char(',')), number)),
    ))(line.trim());
    let (_, (rssi, ber)) = parsed.map_err(|_| malformed("+CSQ", line))?;
    let rssi_dbm = match rssi {
        // Both ranges fit i16 by construction, so the casts cannot truncate.
        0..=31 => Some(-113 + 2 * rssi as i16),
        100..=191 => Some(-116 + (rssi - 100) as i16),
        99 | 199 => None,
        other => {
            return Err(ValueError::OutOfRange {
                what: "rssi",
                value: other,
            })
        }
    };
    let ber = match ber {
        0..=7 => Some(ber as u8),
        99 => None,
        other => {
            return Err(ValueError::OutOfRange {
                what: "ber",
                value: other,
            })
        }
    };
    Ok(SignalQuality { rssi_dbm, ber })
}

/// Which registration a `+CREG`-family line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegDomain {
    /// `+CREG`: circuit switched (where SMS lives on 2G/3G).
    Cs,
    /// `+CGREG`: packet switched.
    Ps,
    /// `+CEREG`: LTE.
    Eps,
    /// `+C5GREG`: 5G.
    FiveG,
}

/// The `<stat>` of `+CREG` / `+CGREG` / `+CEREG` (27.007 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    NotRegistered,
    Home,
    Searching,
    Denied,
    Unknown,
    Roaming,
    /// 6: registered for SMS only, home network. Good enough to send.
    HomeSmsOnly,
    /// 7: registered for SMS only, roaming. Good enough to send.
    RoamingSmsOnly,
    /// 8 (and 11): attached for emergency services only.
    EmergencyOnly,
}

/// The highest `<stat>` 27.007 defines (11: attached for emergency bearer services).
const MAX_STAT: u32 = 11;

impl RegState {
    fn from_stat(stat: u32) -> Self {
        match stat {
            0 => Self::NotRegistered,
            // 9: home, "CSFB not preferred" — registered all the same.
            1 | 9 => Self::Home,
            2 => Self::Searching,
            3 => Self::Denied,
            5 | 10 => Self::Roaming,
            6 => Self::HomeSmsOnly,
            7 => Self::RoamingSmsOnly,
            8 | 11 => Self::EmergencyOnly,
            _ => Self::Unknown,
        }
    }

    /// Whether an SMS can be sent: home or roaming, SMS-only included.
    pub fn is_registered(self) -> bool {
        matches!(
            self,
            Self::Home | Self::Roaming | Self::HomeSmsOnly | Self::RoamingSmsOnly
        )
    }

    pub fn is_roaming(self) -> bool {
        matches!(self, Self::Roaming | Self::RoamingSmsOnly)
    }
}

/// A parsed `+CREG` / `+CGREG` / `+CEREG` / `+C5GREG` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub domain: RegDomain,
    pub state: RegState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field<'a> {
    Num(u32),
    Text(&'a str),
}

/// One comma-separated field: quoted text, a decimal number, or unquoted text. A
/// field is a number only when it is digits to its end: Huawei answers `+CREG: 2,1,4CA,
/// 81DE445` with the area and cell in unquoted hex (gammu tests/at-creg/huawei.dump).
fn field(input: &str) -> IResult<&str, Field<'_>> {
    let (input, _) = space0(input)?;
    alt((
        map(
            delimited(char('"'), take_while(|c| c != '"'), char('"')),
            Field::Text,
        ),
        map(take_while(|c| c != ','), |t: &str| {
            let t = t.trim();
            match t.parse::<u32>() {
                Ok(n) if t.bytes().all(|b| b.is_ascii_digit()) => Field::Num(n),
                _ => Field::Text(t),
            }
        }),
    ))(input)
}

/// Both shapes: the answer to `AT+CREG?` is `<n>,<stat>[,<lac>,<ci>[,<AcT>]]`, the URC
/// is `<stat>[,<lac>,<ci>[,<AcT>]]`. They differ in the second field: a number (the
/// stat) after `<n>`, a quoted area code after `<stat>`.
pub fn parse_registration(line: &str) -> Result<Registration, ValueError> {
    let line_t = line.trim();
    let parsed: IResult<&str, (RegDomain, Vec<Field<'_>>)> = all_consuming(tuple((
        terminated(
            alt((
                map(tag("+CREG"), |_| RegDomain::Cs),
                map(tag("+CGREG"), |_| RegDomain::Ps),
                map(tag("+CEREG"), |_| RegDomain::Eps),
                map(tag("+C5GREG"), |_| RegDomain::FiveG),
            )),
            tuple((char(':'), space0)),
        ),
        separated_list1(char(','), field),
    )))(line_t);
    let (_, (domain, fields)) = parsed.map_err(|_| malformed("+CREG", line))?;
    // The second field is the stat only in the answer form; a number too large to be
    // one is an unquoted all-digit area code of the URC form (`+CREG: 1,1234,5678`).
    let stat = match fields.as_slice() {
        [Field::Num(_), Field::Num(stat), ..] if *stat <= MAX_STAT => *stat,
        [Field::Num(stat), ..] => *stat,
        _ => return Err(malformed("+CREG", line)),
    };
    Ok(Registration {
        domain,
        state: RegState::from_stat(stat),
    })
}

/// The SIM state from `+CPIN: <code>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimState {
    Ready,
    /// Waiting for the PIN.
    SimPin,
    /// Locked: the PUK is needed. Never answered automatically.
    SimPuk,
    /// `NOT READY`: the SIM is still initialising; ask again later.
    NotReady,
    NotInserted,
    /// Anything else (`PH-SIM PIN`, `SIM PIN2`, …), verbatim.
    Other(String),
}

pub fn parse_cpin(line: &str) -> Result<SimState, ValueError> {
    let parsed: IResult<&str, &str> = preceded(prefix("+CPIN"), rest)(line.trim());
    let (_, code) = parsed.map_err(|_| malformed("+CPIN", line))?;
    Ok(match code.trim() {
        "READY" => SimState::Ready,
        "SIM PIN" => SimState::SimPin,
        "SIM PUK" => SimState::SimPuk,
        "NOT READY" => SimState::NotReady,
        "NOT INSERTED" | "SIM NOT INSERTED" => SimState::NotInserted,
        other => SimState::Other(other.to_owned()),
    })
}

/// `+CDS: <length>` (PDU mode) → the TPDU length in octets, without the SMSC part.
pub fn parse_cds_header(line: &str) -> Result<u16, ValueError> {
    let parsed: IResult<&str, u32> = all_consuming(preceded(prefix("+CDS"), number))(line.trim());
    let (_, length) = parsed.map_err(|_| malformed("+CDS", line))?;
    u16::try_from(length).map_err(|_| ValueError::OutOfRange {
        what: "PDU length",
        value: length,
    })
}

/// `+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]` → the operator, `None` when the modem
/// is not on a network (`+COPS: 0`).
pub fn parse_cops(line: &str) -> Result<Option<String>, ValueError> {
    let parsed: IResult<&str, Vec<Field<'_>>> =
        all_consuming(preceded(prefix("+COPS"), separated_list1(char(','), field)))(line.trim());
    let (_, fields) = parsed.map_err(|_| malformed("+COPS", line))?;
    match fields.as_slice() {
        [Field::Num(_)] => Ok(None),
        [Field::Num(_), Field::Num(_), Field::Text(name), ..] => Ok(Some((*name).to_owned())),
        _ => Err(malformed("+COPS", line)),
    }
}

/// One entry of `AT+CMGL` in PDU mode: `+CMGL: <index>,<stat>,[<alpha>],<length>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedMessage {
    pub index: u32,
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: u32,
    /// TPDU length in octets (the PDU line also holds the SMSC field).
    pub length: u32,
}

/// `+CMGL: <index>,<stat>,[<alpha>],<length>`.
pub fn parse_cmgl(line: &str) -> Result<ListedMessage, ValueError> {
    let parsed: IResult<&str, Vec<Field<'_>>> =
        all_consuming(preceded(prefix("+CMGL"), separated_list1(char(','), field)))(line.trim());
    let (_, fields) = parsed.map_err(|_| malformed("+CMGL", line))?;
    match fields.as_slice() {
        [Field::Num(index), Field::Num(stat), .., Field::Num(length)] if fields.len() >= 3 => {
            Ok(ListedMessage {
                index: *index,
                stat: *stat,
                length: *length,
            })
        }
        _ => Err(malformed("+CMGL", line)),
    }
}

/// `+CMGR: <stat>,[<alpha>],<length>` (PDU mode) → (stat, TPDU length).
pub fn parse_cmgr(line: &str) -> Result<(u32, u32), ValueError> {
    let parsed: IResult<&str, Vec<Field<'_>>> =
        all_consuming(preceded(prefix("+CMGR"), separated_list1(char(','), field)))(line.trim());
    let (_, fields) = parsed.map_err(|_| malformed("+CMGR", line))?;
    match fields.as_slice() {
        [Field::Num(stat), .., Field::Num(length)] if fields.len() >= 2 => Ok((*stat, *length)),
        _ => Err(malformed("+CMGR", line)),
    }
}

/// The memories `AT+CPMS=?` offers for reading and deleting (its first list):
/// `+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")`. Lenient about quotes and blanks,
/// as firmware is (gammu tests/at-cpms-sr/generic.dump: `(ME", "SR")`); an empty
/// answer (Samsung) offers none.
pub fn parse_cpms_memories(line: &str) -> Result<Vec<String>, ValueError> {
    let parsed: IResult<&str, &str> = preceded(prefix("+CPMS"), rest)(line.trim());
    let (_, value) = parsed.map_err(|_| malformed("+CPMS", line))?;
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let first = value
        .strip_prefix('(')
        .and_then(|v| v.split_once(')'))
        .map(|(list, _)| list)
        .ok_or_else(|| malformed("+CPMS", line))?;
    Ok(first
        .split(',')
        .map(|m| m.trim().trim_matches('"').trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmgs() {
        assert_eq!(parse_cmgs("+CMGS: 45"), Ok(45));
        assert_eq!(parse_cmgs("+CMGS:0"), Ok(0));
        assert_eq!(parse_cmgs("+CMGS: 12,\"24/01/01,10:00:00+04\""), Ok(12));
        assert!(matches!(
            parse_cmgs("+CMGS: 256"),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(parse_cmgs("+CMGS: ").is_err());
        assert!(parse_cmgs("+CMGR: 1").is_err());
    }

    #[test]
    fn csq() {
        let q = |line| parse_csq(line).map(|s| s.rssi_dbm);
        assert_eq!(q("+CSQ: 21,99"), Ok(Some(-71)));
        assert_eq!(q("+CSQ: 0,0"), Ok(Some(-113)));
        assert_eq!(q("+CSQ: 31,7"), Ok(Some(-51)));
        assert_eq!(q("+CSQ: 99,99"), Ok(None));
        assert_eq!(q("+CSQ: 100,99"), Ok(Some(-116)));
        assert_eq!(parse_csq("+CSQ: 18,3").map(|s| s.ber), Ok(Some(3)));
        assert!(q("+CSQ: 50,99").is_err());
        assert!(q("+CSQ: 21").is_err());
        assert!(q("+CSQ: 21,8").is_err());
    }

    #[test]
    fn registration_both_forms() {
        let r = |line| parse_registration(line).map(|r| (r.domain, r.state));
        assert_eq!(r("+CREG: 0,1"), Ok((RegDomain::Cs, RegState::Home)));
        assert_eq!(r("+CREG: 1"), Ok((RegDomain::Cs, RegState::Home)));
        assert_eq!(
            r("+CREG: 5,\"00C3\",\"0F1A\""),
            Ok((RegDomain::Cs, RegState::Roaming))
        );
        assert_eq!(
            r("+CREG: 2,1,\"00C3\",\"0F1A\""),
            Ok((RegDomain::Cs, RegState::Home))
        );
        assert_eq!(r("+CGREG: 0,2"), Ok((RegDomain::Ps, RegState::Searching)));
        assert_eq!(
            r("+CEREG: 2,1,\"1A2B\",\"01A2B3C4\",7"),
            Ok((RegDomain::Eps, RegState::Home))
        );
        assert_eq!(r("+CEREG:3"), Ok((RegDomain::Eps, RegState::Denied)));
        // LTE-only modules answer +CREG with "not registered" while +CEREG is home.
        assert_eq!(
            r("+CREG: 0,0"),
            Ok((RegDomain::Cs, RegState::NotRegistered))
        );
        assert_eq!(r("+CREG: 0,6"), Ok((RegDomain::Cs, RegState::HomeSmsOnly)));
        assert_eq!(
            r("+CREG: 0,7"),
            Ok((RegDomain::Cs, RegState::RoamingSmsOnly))
        );
        assert_eq!(r("+CREG: 0,4"), Ok((RegDomain::Cs, RegState::Unknown)));
        assert!(r("+CREG: \"00C3\"").is_err());
        // Unquoted hex area and cell (Huawei, gammu tests/at-creg/huawei.dump).
        assert_eq!(
            r("+CREG: 2,1,4CA,81DE445"),
            Ok((RegDomain::Cs, RegState::Home))
        );
        assert_eq!(
            r("+CREG: 1,4CA,81DE445"),
            Ok((RegDomain::Cs, RegState::Home))
        );
        assert_eq!(
            r("+CREG: 5,1234,5678"),
            Ok((RegDomain::Cs, RegState::Roaming))
        );
        // An empty area (gammu tests/at-creg-corner/empty-lac.dump).
        assert_eq!(
            r("+CREG: 2,1,\"\",\"605F\""),
            Ok((RegDomain::Cs, RegState::Home))
        );
        assert!(r("+COPS: 0").is_err());
    }

    #[test]
    fn registration_predicates() {
        assert!(RegState::HomeSmsOnly.is_registered());
        assert!(RegState::RoamingSmsOnly.is_roaming());
        assert!(!RegState::Searching.is_registered());
        assert!(!RegState::EmergencyOnly.is_registered());
    }

    #[test]
    fn cpin() {
        assert_eq!(parse_cpin("+CPIN: READY"), Ok(SimState::Ready));
        assert_eq!(parse_cpin("+CPIN:SIM PIN"), Ok(SimState::SimPin));
        assert_eq!(parse_cpin("+CPIN: SIM PUK"), Ok(SimState::SimPuk));
        assert_eq!(parse_cpin("+CPIN: NOT READY"), Ok(SimState::NotReady));
        assert_eq!(parse_cpin("+CPIN: NOT INSERTED"), Ok(SimState::NotInserted));
        assert_eq!(
            parse_cpin("+CPIN: PH-SIM PIN"),
            Ok(SimState::Other("PH-SIM PIN".into()))
        );
        assert!(parse_cpin("+CPINR: 3").is_err());
    }

    #[test]
    fn cds_header() {
        assert_eq!(parse_cds_header("+CDS: 25"), Ok(25));
        assert_eq!(parse_cds_header("+CDS:25"), Ok(25));
        assert!(parse_cds_header("+CDS: 6,45,\"+316\",145").is_err());
        assert!(parse_cds_header("+CDSI: \"SR\",1").is_err());
    }

    #[test]
    fn stored_message_headers() {
        assert_eq!(
            parse_cmgl("+CMGL: 1,0,,23"),
            Ok(ListedMessage {
                index: 1,
                stat: 0,
                length: 23
            })
        );
        assert_eq!(
            parse_cmgl("+CMGL: 12,1,\"Alice\",40").map(|m| (m.index, m.length)),
            Ok((12, 40))
        );
        assert!(parse_cmgl("+CMGL: 1,0").is_err());
        assert!(parse_cmgl("+CMGL: x,0,,23").is_err());
        // gammu tests/at-sms/02.dump.
        assert_eq!(parse_cmgr("+CMGR: 3,,29"), Ok((3, 29)));
        assert_eq!(parse_cmgr("+CMGR: 0,\"\",25"), Ok((0, 25)));
        assert!(parse_cmgr("+CMGR: ").is_err());
    }

    #[test]
    fn cpms_memories() {
        let m = |line| parse_cpms_memories(line);
        assert_eq!(
            m("+CPMS: (\"SM\",\"ME\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")"),
            Ok(vec!["SM".into(), "ME".into()])
        );
        assert_eq!(
            m("+CPMS: (ME\", \"SR\"), (\"ME\", \"SR\"), (\"ME\")"),
            Ok(vec!["ME".into(), "SR".into()])
        );
        assert_eq!(m("+CPMS: "), Ok(vec![]));
        assert!(m("+CPMS: \"SM\",0,20").is_err());
    }

    #[test]
    fn cops() {
        assert_eq!(
            parse_cops("+COPS: 0,0,\"Operator\",7"),
            Ok(Some("Operator".into()))
        );
        assert_eq!(parse_cops("+COPS: 0,2,\"20408\""), Ok(Some("20408".into())));
        assert_eq!(parse_cops("+COPS: 0"), Ok(None));
        assert!(parse_cops("+COPS: \"x\"").is_err());
    }
}
