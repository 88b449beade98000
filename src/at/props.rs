//! Property tests: arbitrary bytes are always digested in bounded steps, independent of
//! read sizes, and URCs sprinkled anywhere into a reply never change the reply.

use proptest::prelude::*;

use super::{Digester, Event, FinalResult, Urc, MAX_FRAME};

/// Drains `digester`, checking that every event consumes at least one byte.
fn drain(digester: &mut Digester, events: &mut Vec<Event>) {
    loop {
        let before = digester.buffered();
        match digester.next_event() {
            Some(event) => {
                assert!(digester.buffered() < before, "event without progress");
                events.push(event);
            }
            None => break,
        }
    }
}

/// Feeds `bytes` in pieces cut at `cuts` (offsets modulo the length).
fn digest(command: Option<&str>, bytes: &[u8], cuts: &[usize]) -> (Vec<Event>, Digester) {
    let mut digester = Digester::new();
    if let Some(command) = command {
        digester.command_sent(command);
    }
    let mut offsets: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    offsets.push(0);
    offsets.push(bytes.len());
    offsets.sort_unstable();
    let mut events = Vec::new();
    for pair in offsets.windows(2) {
        digester.feed(&bytes[pair[0]..pair[1]]);
        drain(&mut digester, &mut events);
    }
    (events, digester)
}

/// Bytes that hit the framer's corners more often than uniform bytes would.
fn modem_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"> ".to_vec()),
        Just(b"OK".to_vec()),
        Just(b"+CDS: 25".to_vec()),
        Just(b"+CMT: ,23".to_vec()),
        Just(b"0791AB".to_vec()),
        Just(b"AT+CMGS=23".to_vec()),
        Just(b"\x1a".to_vec()),
        Just(b"\0\0".to_vec()),
        Just(b"+CMS ERROR: 500".to_vec()),
        Just(b"^RSSI:18".to_vec()),
    ];
    prop::collection::vec(token, 0..200).prop_map(|tokens| tokens.concat())
}

const URCS: &[(&str, Option<&str>)] = &[
    ("+CMTI: \"SM\",3", None),
    ("RING", None),
    ("^RSSI:18", None),
    ("+CDS: 25", Some("07914477581006500006450B914477123456F1")),
    ("+CDS:6", Some("0006AB")),
    ("+CMT: ,23", Some("0011000B914477123456F10000AA")),
    ("+CREG: 1,\"00C3\",\"0F1A\"", None),
    ("+QIND: SMS DONE", None),
    ("Call Ready", None),
    ("+CPIN: READY", None),
];

const REPLIES: &[(&str, &[&str], &str)] = &[
    ("AT+CSQ", &["+CSQ: 21,99"], "OK"),
    (
        "ATI",
        &["Quectel", "EC25", "Revision: EC25EFAR06A09M4G"],
        "OK",
    ),
    ("AT+CMGS=23", &["+CMGS: 45"], "OK"),
    ("AT+CMGR=1", &["+CMGR: 0,,23", "0791447758100650"], "OK"),
    ("AT+COPS?", &["+COPS: 0,0,\"Operator\",7"], "OK"),
    ("AT+CMGS=23", &[], "+CMS ERROR: 500"),
    ("AT+CPIN?", &[], "+CME ERROR: SIM busy"),
    ("AT^CURC=0", &[], "COMMAND NOT SUPPORT"),
];

fn final_of(line: &str) -> FinalResult {
    super::line::final_result(line).unwrap_or(FinalResult::Other(line.to_owned()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_are_digested_in_bounded_steps(
        bytes in modem_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        command in prop::option::of(prop::sample::select(vec!["AT", "AT+CMGS=23", "AT+CSQ"])),
    ) {
        let (whole, _) = digest(command, &bytes, &[]);
        let (pieces, mut digester) = digest(command, &bytes, &cuts);
        prop_assert_eq!(&whole, &pieces);
        prop_assert!(whole.len() <= bytes.len());
        prop_assert!(digester.buffered() < MAX_FRAME);
        // Two line ends and a line that is neither hex nor a header settle whatever
        // was still waiting: a partial line, a junk run, a two-line URC header.
        let mut rest = Vec::new();
        digester.feed(b"\r\nX\r\n");
        drain(&mut digester, &mut rest);
        prop_assert_eq!(digester.buffered(), 0);
    }

    #[test]
    fn arbitrary_raw_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..6000),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let (whole, _) = digest(Some("AT+CMGS=23"), &bytes, &[]);
        let (pieces, digester) = digest(Some("AT+CMGS=23"), &bytes, &cuts);
        prop_assert_eq!(whole, pieces);
        prop_assert!(digester.buffered() < MAX_FRAME);
    }

    #[test]
    fn urcs_interleaved_into_a_reply_leave_it_exact(
        reply in prop::sample::select(REPLIES.to_vec()),
        echo_on in any::<bool>(),
        inserts in prop::collection::vec(
            (0usize..8, prop::sample::select(URCS.to_vec())), 0..6),
        ending in prop::sample::select(vec!["\r\n", "\r\r\n", "\n", "\r"]),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let (command, info, final_line) = reply;
        // The reply's lines; a URC may go before any of them, or after the final one.
        let mut body: Vec<&str> = info.to_vec();
        body.push(final_line);
        let mut slots: Vec<Vec<(&str, Option<&str>)>> = vec![Vec::new(); body.len() + 1];
        for (slot, urc) in &inserts {
            // `+CPIN: READY` inside the reply to `AT+CPIN?` is its answer, not a URC.
            if super::urc::answers(urc.0, command) {
                continue;
            }
            slots[slot % (body.len() + 1)].push(*urc);
        }

        let mut bytes = String::new();
        let mut expected = Vec::new();
        if echo_on {
            bytes.push_str(command);
            bytes.push('\r');
            expected.push(Event::Echo(command.to_owned()));
        }
        for (index, slot) in slots.iter().enumerate() {
            for (line, pdu) in slot {
                bytes.push_str(ending);
                bytes.push_str(line);
                bytes.push_str(ending);
                if let Some(pdu) = pdu {
                    bytes.push_str(pdu);
                    bytes.push_str(ending);
                }
                expected.push(Event::Urc(Urc {
                    line: (*line).to_owned(),
                    pdu: pdu.map(str::to_owned),
                }));
            }
            if let Some(line) = body.get(index) {
                bytes.push_str(ending);
                bytes.push_str(line);
                bytes.push_str(ending);
                if index + 1 == body.len() {
                    expected.push(Event::Response {
                        lines: info.iter().map(|l| (*l).to_owned()).collect(),
                        result: final_of(final_line),
                    });
                }
            }
        }

        let (whole, digester) = digest(Some(command), bytes.as_bytes(), &[]);
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(digester.buffered(), 0);
        let (pieces, _) = digest(Some(command), bytes.as_bytes(), &cuts);
        prop_assert_eq!(&pieces, &expected);
    }
}
