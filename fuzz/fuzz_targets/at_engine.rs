//! The sans-IO AT engine fed arbitrary modem output, split at arbitrary points, with
//! commands sent (and the engine reset) in between. It must never panic, every drain
//! must end, and it must not buffer bytes it could already have framed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sms2fa::at::{Digester, Event};

/// Commands the driver really sends; which one is "in flight" changes the framing
/// (echo matching, the `> ` prompt of `AT+CMGS`, information lines).
const COMMANDS: &[&str] = &[
    "AT",
    "ATE0",
    "AT+CMEE=1",
    "AT+CPIN?",
    "AT+CSQ",
    "AT+CREG?",
    "AT+COPS?",
    "AT+CMGF=0",
    "AT+CMGS=23",
    "AT+CNMI=2,1,2,1,0",
    "AT+CMGL=4",
    "ATI",
];

fuzz_target!(|data: &[u8]| {
    let mut digester = Digester::new();
    let mut rest = data;
    // Each round: one control byte, then a chunk of modem output of the length it says.
    while let Some((&control, tail)) = rest.split_first() {
        rest = tail;
        match control >> 5 {
            0 => digester.command_sent(COMMANDS[usize::from(control) % COMMANDS.len()]),
            1 if control & 0x1f == 0 => digester.reset(),
            _ => {
                let len = usize::from(control & 0x3f).min(rest.len());
                let (chunk, tail) = rest.split_at(len);
                rest = tail;
                digester.feed(chunk);
            }
        }
        drain(&mut digester);
    }
});

fn drain(digester: &mut Digester) {
    // Each event consumes at least one byte, so a drain yields at most `buffered + 1`
    // events (the +1 for a reply completed by the last byte).
    let limit = digester.buffered() + 1;
    let mut events = 0;
    while let Some(event) = digester.next_event() {
        events += 1;
        assert!(events <= limit, "more events than bytes: {event:?}");
        if let Event::Response { lines, .. } = &event {
            assert!(lines.len() <= sms2fa::at::MAX_REPLY_LINES);
        }
    }
}
