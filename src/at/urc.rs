//! Which lines are unsolicited result codes, which URCs carry a second (PDU) line, and
//! which lines answer the command in flight.

use super::line::extended_name;

/// Extended URC names (`+XXX` / `^XXX`, up to the `:`). A line with such a name is an
/// information line when the pending command carries the same name (`+CREG: 0,1`
/// answers `AT+CREG?`), a URC otherwise.
const EXTENDED: &[&str] = &[
    // 27.005: message arrival.
    "+CMTI",
    "+CMT",
    "+CDS",
    "+CDSI",
    "+CBM",
    "+CBMI",
    // 27.007: calls, USSD, registration, SIM, functionality, time zone, SIM toolkit.
    "+CUSD",
    "+CRING",
    "+CLIP",
    "+CCWA",
    "+CREG",
    "+CGREG",
    "+CEREG",
    "+C5GREG",
    "+CPIN",
    "+CFUN",
    "+CIEV",
    "+CGEV",
    "+CTZV",
    "+CTZE",
    "+CTZU",
    "+CUSATP",
    "+CUSATEND",
    "+PBREADY",
    // Quectel.
    "+QIND",
    "+QUSIM",
    "+QSTK",
    // SIMCom.
    "*PSUTTZ",
    "+CPSI",
    "+STIN",
    "+SMSFULL",
    // Huawei.
    "^RSSI",
    "^HCSQ",
    "^MODE",
    "^SRVST",
    "^SIMST",
    "^BOOT",
    "^DSFLOWRPT",
    "^CEND",
    "^ORIG",
    "^CONN",
    "^CONF",
    "^STIN",
    "^SYSSTART",
    "^RFSWITCH",
    "^NWTIME",
    "^SMMEMFULL",
    "^ACTIVEBAND",
    "^EONS",
    "^CSNR",
    "^CRSSI",
    "^ECCLIST",
    "^NDISSTAT",
    "^LTERSRP",
    "^CPBREADY",
];

/// Extended URCs whose value is glued to the name (`+PACSP1`, `+PACSP0`, Ericsson /
/// Qualcomm, sent by SIMCom and Quectel modules at boot).
const GLUED: &[&str] = &["+PACSP"];

/// Whole-line URCs: the line is the URC, there is no `:`.
const PLAIN: &[&str] = &[
    "RING",
    "RDY",
    "Call Ready",
    "SMS Ready",
    "SMS DONE",
    "PB DONE",
    "NORMAL POWER DOWN",
    "POWERED DOWN",
    "UNDER-VOLTAGE POWER DOWN",
    "UNDER-VOLTAGE WARNNING",
    "OVER-VOLTAGE POWER DOWN",
    "OVER-VOLTAGE WARNNING",
];

/// Plain URCs that carry a value after a space or a colon (`DST: 1` on SIMCom).
const PLAIN_PREFIXED: &[&str] = &["DST:", "+PACSP "];

/// Whether `line` is a known unsolicited result code, regardless of context.
pub fn is_known(line: &str) -> bool {
    if PLAIN.contains(&line) || PLAIN_PREFIXED.iter().any(|p| line.starts_with(p)) {
        return true;
    }
    match extended_name(line) {
        Some(name) => EXTENDED.contains(&name) || GLUED.iter().any(|g| name.starts_with(g)),
        None => false,
    }
}

/// Whether the two-line URC starting with `line` waits for a PDU line. `+CMT:` and
/// `+CBM:` always have one; `+CDS:` only in PDU mode, where its header is a lone
/// length (`+CDS: 25`, `+CDS:25`) — in text mode the report fits on its one line.
pub fn takes_pdu(line: &str) -> bool {
    match extended_name(line) {
        Some("+CMT") | Some("+CBM") => true,
        Some("+CDS") => super::values::parse_cds_header(line).is_ok(),
        _ => false,
    }
}

/// Queries that a modem family is known to answer with the information line alone,
/// never followed by `OK`, and the line that does it. Wavecom: "AT+CPIN? replies will
/// never have an OK appended" (ModemManager, plugins/wavecom, which ends the reply at
/// the `+CPIN:` line); python-gsmmodem works around the same. Only queries belong
/// here: an `AT+CMGS` is never taken as done without its final result, as a guess
/// there could send an SMS twice or lose one.
const UNTERMINATED: &[(&str, &str)] = &[("AT+CPIN?", "+CPIN")];

/// Whether `line`, collected for `command`, may be the whole answer without a final
/// result code (see [`UNTERMINATED`]).
pub fn may_end_unterminated(command: &str, line: &str) -> bool {
    UNTERMINATED.iter().any(|(query, name)| {
        command.trim().eq_ignore_ascii_case(query)
            && extended_name(line).is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Whether `line` answers `command`: its extended name is one of the command's
/// (`+CPIN: READY` for `AT+CPIN?`; `+CREG: 0,1` for `AT+CREG?;+CGREG?`).
pub fn answers(line: &str, command: &str) -> bool {
    match extended_name(line) {
        Some(name) => command_names(command).any(|c| c.eq_ignore_ascii_case(name)),
        None => false,
    }
}

/// The extended command names in `command`, e.g. `+CREG` and `^SYSINFO` for
/// `AT+CREG?;^SYSINFO`. Basic commands (`ATZ`, `ATE0`) name no information line.
fn command_names(command: &str) -> impl Iterator<Item = &str> {
    let body = command
        .get(..2)
        .filter(|at| at.eq_ignore_ascii_case("AT"))
        .and_then(|_| command.get(2..))
        .unwrap_or(command);
    body.split(';')
        .filter_map(|part| extended_name(part.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_urcs() {
        for line in [
            "+CMTI: \"SM\",3",
            "+CDS:25",
            "^RSSI:18",
            "^BOOT:20952644,0,0,0,75",
            "RDY",
            "Call Ready",
            "SMS Ready",
            "+QIND: SMS DONE",
            "+PACSP1",
            "+PACSP 1",
            "+PBREADY",
            "+CPIN: READY",
            "RING",
        ] {
            assert!(is_known(line), "{line}");
        }
        for line in [
            "+CMGS: 12",
            "+CSQ: 21,99",
            "Quectel",
            "EC25",
            "+CMTIX: 1",
            "OK",
        ] {
            assert!(!is_known(line), "{line}");
        }
    }

    #[test]
    fn pdu_headers() {
        assert!(takes_pdu("+CMT: ,23"));
        assert!(takes_pdu("+CMT: \"\",23"));
        assert!(takes_pdu("+CDS: 25"));
        assert!(takes_pdu("+CDS:25"));
        assert!(!takes_pdu("+CDS: 6,45,\"+31612345678\",145,\"24/01/01\""));
        assert!(!takes_pdu("+CMTI: \"SM\",1"));
        assert!(!takes_pdu("+CDSI: \"SR\",1"));
    }

    #[test]
    fn only_a_cpin_answer_may_end_a_cpin_query_unterminated() {
        assert!(may_end_unterminated("AT+CPIN?", "+CPIN: READY"));
        assert!(may_end_unterminated("at+cpin?", "+CPIN:SIM PIN"));
        assert!(!may_end_unterminated("AT+CPIN?", "+CREG: 1"));
        assert!(!may_end_unterminated("AT+CMGS=23", "+CMGS: 4"));
        assert!(!may_end_unterminated("AT+CPIN=\"1234\"", "+CPIN: READY"));
    }

    #[test]
    fn info_of_pending() {
        assert!(answers("+CREG: 0,1", "AT+CREG?"));
        assert!(answers("+CGREG: 0,1", "AT+CREG?;+CGREG?"));
        assert!(answers("+CPIN: READY", "at+cpin?"));
        assert!(answers("^SYSINFO: 2,3,0,5,1", "AT^SYSINFO"));
        assert!(!answers("+CREG: 1,\"00C3\",\"0F1A\"", "AT+CSQ"));
        assert!(!answers("+CPIN: READY", "AT"));
        assert!(!answers("RDY", "ATZ"));
        assert!(!answers("+CREG: 1", ""));
    }
}
