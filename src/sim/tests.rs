//! Scripted host sides against the simulator over `tokio::io::duplex`: exact bytes in,
//! exact bytes out.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use super::*;

mod codec;
mod pty;
mod switches;

/// "hellohello" to +46708251358, GSM 7-bit, TPDU 23 octets (hand-checked).
pub(super) const HELLO_PDU: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
const WAIT: Duration = Duration::from_secs(5);

pub(super) struct Host {
    io: DuplexStream,
    pending: Vec<u8>,
}

impl Host {
    pub(super) async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// Read until exactly `want` has arrived; anything else is a failure.
    pub(super) async fn expect(&mut self, want: &[u8]) {
        let got = self.read_exact(want.len()).await;
        assert_eq!(show(&got), show(want));
    }

    async fn fill(&mut self, deadline: Instant) {
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout_at(deadline, self.io.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("timed out, got {:?}", show(&self.pending)))
            .unwrap();
        assert!(n > 0, "EOF, got {:?}", show(&self.pending));
        self.pending.extend_from_slice(&buf[..n]);
    }

    /// The next `n` bytes, whatever they are.
    pub(super) async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        while self.pending.len() < n {
            self.fill(deadline).await;
        }
        self.pending.drain(..n).collect()
    }

    /// Drop everything up to and including the first `marker`.
    pub(super) async fn skip_until(&mut self, marker: &[u8]) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.pending.windows(marker.len()).position(|w| w == marker) {
                self.pending.drain(..at + marker.len());
                return;
            }
            self.fill(deadline).await;
        }
    }

    /// The next line, without its `\r\n` (leading empty lines skipped).
    pub(super) async fn read_line(&mut self) -> String {
        self.skip_leading_crlf().await;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..at + 2).collect();
                return show(&line[..at]);
            }
            self.fill(deadline).await;
        }
    }

    async fn skip_leading_crlf(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            while self.pending.starts_with(b"\r\n") {
                self.pending.drain(..2);
            }
            if self.pending.len() >= 2 {
                return;
            }
            self.fill(deadline).await;
        }
    }

    /// Nothing arrives for `quiet`.
    pub(super) async fn expect_nothing(&mut self, quiet: Duration) {
        let mut buf = [0u8; 512];
        if let Ok(read) = timeout(quiet, self.io.read(&mut buf)).await {
            let n = read.unwrap();
            panic!("expected silence, got {:?}", show(&buf[..n]));
        }
        assert!(self.pending.is_empty(), "{:?}", show(&self.pending));
    }

    /// Send a command line and expect exactly `reply` (echo off).
    pub(super) async fn at(&mut self, command: &str, reply: &str) {
        self.send(format!("{command}\r").as_bytes()).await;
        self.expect(reply.as_bytes()).await;
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn start(options: SimOptions) -> (Host, SmsLog, JoinHandle<std::io::Result<()>>) {
    let log = SmsLog::in_memory();
    let (host, modem) = tokio::io::duplex(4096);
    let task = tokio::spawn(run(modem, options, log.clone()));
    let host = Host {
        io: host,
        pending: Vec::new(),
    };
    (host, log, task)
}

/// A modem with echo already off.
pub(super) async fn quiet_modem(
    options: SimOptions,
) -> (Host, SmsLog, JoinHandle<std::io::Result<()>>) {
    let (mut host, log, task) = start(SimOptions {
        echo: false,
        ..options
    });
    host.at("AT", "\r\nOK\r\n").await;
    (host, log, task)
}

#[tokio::test]
async fn echo_is_on_at_boot_until_ate0_and_back_with_ate1() {
    let (mut host, _log, _task) = start(SimOptions::default());
    host.send(b"AT\r").await;
    host.expect(b"AT\r\r\nOK\r\n").await;
    // A `\n` after the `\r` is ignored, as is an empty line.
    host.send(b"ATE0\r\n\r").await;
    host.expect(b"ATE0\r\r\nOK\r\n").await;
    host.at("AT", "\r\nOK\r\n").await;
    host.at("ATE1", "\r\nOK\r\n").await;
    host.send(b"at+cmee=1\r").await;
    host.expect(b"at+cmee=1\r\r\nOK\r\n").await;
    host.send(b"ATE0\r").await;
    host.expect(b"ATE0\r\r\nOK\r\n").await;
    // ATZ restores the stored profile: echo on, +CMEE=0.
    host.at("ATZ", "\r\nOK\r\n").await;
    host.send(b"AT+CMEE?\r").await;
    host.expect(b"AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n").await;
}

#[tokio::test]
async fn commands_split_into_single_bytes_still_work() {
    let (mut host, _log, _task) = quiet_modem(SimOptions::default()).await;
    for b in b"AT+CSQ\r" {
        host.send(&[*b]).await;
    }
    host.expect(b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n").await;
}

#[tokio::test]
async fn information_commands() {
    let (mut host, _log, _task) = quiet_modem(SimOptions::default()).await;
    host.at("AT+CREG?", "\r\n+CREG: 0,1\r\n\r\nOK\r\n").await;
    host.at("AT+CGREG?", "\r\n+CGREG: 0,1\r\n\r\nOK\r\n").await;
    host.at("AT+CEREG=2", "\r\nOK\r\n").await;
    host.at(
        "AT+CEREG?",
        "\r\n+CEREG: 2,1,\"1A2B\",\"01C3D4E5\"\r\n\r\nOK\r\n",
    )
    .await;
    host.at("AT+COPS?", "\r\n+COPS: 0,0,\"SIMNET\",7\r\n\r\nOK\r\n")
        .await;
    host.at("AT+CGMI", "\r\nsms2fa\r\n\r\nOK\r\n").await;
    host.at("AT+CGMM", "\r\nSIMULATOR\r\n\r\nOK\r\n").await;
    host.at("AT+CGSN", "\r\n490154203237518\r\n\r\nOK\r\n")
        .await;
    let rev = format!("\r\n{}\r\n\r\nOK\r\n", state::REVISION);
    host.at("AT+CGMR", &rev).await;
    host.at("AT+CFUN?", "\r\n+CFUN: 1\r\n\r\nOK\r\n").await;
    host.at("AT+CSMS=1", "\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n").await;
    host.at("AT+CSMS?", "\r\n+CSMS: 1,1,1,1\r\n\r\nOK\r\n")
        .await;
    host.at("AT+CNMI=2,1,2,1,0", "\r\nOK\r\n").await;
    host.at("AT+CNMI?", "\r\n+CNMI: 2,1,2,1,0\r\n\r\nOK\r\n")
        .await;
    host.at("AT+CSMP=17,167,0,0", "\r\nOK\r\n").await;
    host.at("AT+CSCS=\"IRA\"", "\r\nOK\r\n").await;
    host.at("AT+CMGF=0", "\r\nOK\r\n").await;
    host.at("AT^CURC=0", "\r\nERROR\r\n").await;
    host.at("AT+FOO", "\r\nERROR\r\n").await;
    host.at("garbage", "\r\nERROR\r\n").await;
    // ESC and NUL in command mode (a driver clearing a stale prompt) are dropped.
    host.at("\x1b\0AT", "\r\nOK\r\n").await;
    host.at("AT+CFUN=0", "\r\nOK\r\n").await;
    host.at("AT+CREG?", "\r\n+CREG: 0,0\r\n\r\nOK\r\n").await;
    host.at("AT+CSQ", "\r\n+CSQ: 99,99\r\n\r\nOK\r\n").await;
    host.at("AT+CFUN=1", "\r\nOK\r\n").await;
    host.at("AT+CREG?", "\r\n+CREG: 0,1\r\n\r\nOK\r\n").await;
}

#[tokio::test]
async fn pin_flow_with_wrong_pin_and_error_modes() {
    let options = SimOptions {
        pin: Some("1234".into()),
        ..SimOptions::default()
    };
    let handle = options.handle.clone();
    let (mut host, _log, _task) = quiet_modem(options).await;
    host.at("AT+CPIN?", "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n")
        .await;
    host.at("AT+CMGF=0", "\r\n+CMS ERROR: 311\r\n").await;
    host.at("AT+CREG?", "\r\n+CREG: 0,0\r\n\r\nOK\r\n").await;
    host.at("AT+CPIN=\"0000\"", "\r\nERROR\r\n").await;
    host.at("AT+CMEE=1", "\r\nOK\r\n").await;
    host.at("AT+CPIN=\"1111\"", "\r\n+CME ERROR: 16\r\n").await;
    assert_eq!(handle.stats().snapshot().pin_attempts, 2);
    host.at("AT+CMEE=2", "\r\nOK\r\n").await;
    host.at("AT+CPIN=\"1234\"", "\r\nOK\r\n").await;
    host.at("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n").await;
    host.at(
        "AT+CPIN=\"1234\"",
        "\r\n+CME ERROR: operation not allowed\r\n",
    )
    .await;
    host.at("AT+CMGF=0", "\r\nOK\r\n").await;
    let commands = handle.stats().commands();
    let tries: Vec<_> = commands
        .iter()
        .filter(|c| c.starts_with("AT+CPIN="))
        .collect();
    assert_eq!(
        tries,
        [
            "AT+CPIN=\"0000\"",
            "AT+CPIN=\"1111\"",
            "AT+CPIN=\"1234\"",
            "AT+CPIN=\"1234\""
        ]
    );
}

#[tokio::test]
async fn three_wrong_pins_lock_the_sim() {
    let options = SimOptions {
        pin: Some("1234".into()),
        ..SimOptions::default()
    };
    let (mut host, _log, _task) = quiet_modem(options).await;
    host.at("AT+CMEE=1", "\r\nOK\r\n").await;
    for _ in 0..3 {
        host.at("AT+CPIN=\"9999\"", "\r\n+CME ERROR: 16\r\n").await;
    }
    host.at("AT+CPIN?", "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n")
        .await;
    host.at("AT+CPIN=\"1234\"", "\r\n+CME ERROR: 12\r\n").await;
    host.at("AT+CMGF=0", "\r\n+CMS ERROR: 316\r\n").await;
}

#[tokio::test]
async fn sim_busy_for_a_while_after_the_pin() {
    let options = SimOptions {
        pin: Some("1234".into()),
        sim_busy_after_pin: Duration::from_millis(200),
        ..SimOptions::default()
    };
    let (mut host, _log, _task) = quiet_modem(options).await;
    host.at("AT+CMEE=1", "\r\nOK\r\n").await;
    host.at("AT+CPIN=\"1234\"", "\r\nOK\r\n").await;
    host.at("AT+CPIN?", "\r\n+CME ERROR: 14\r\n").await;
    host.at("AT+CMGF=0", "\r\n+CMS ERROR: 314\r\n").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    host.at("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n").await;
}

#[tokio::test]
async fn cmgs_pdu_is_answered_and_logged() {
    let (mut host, log, _task) = quiet_modem(SimOptions::default()).await;
    host.at("AT+CMGF=0", "\r\nOK\r\n").await;
    host.at("AT+CMGS=23", "\r\n> ").await;
    host.send(format!("{HELLO_PDU}\x1a").as_bytes()).await;
    host.expect(b"\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    host.at("AT+CMGS=23", "\r\n> ").await;
    host.send(format!("{HELLO_PDU}\x1a").as_bytes()).await;
    host.expect(b"\r\n+CMGS: 1\r\n\r\nOK\r\n").await;
    let got = log.wait_for(2, WAIT).await;
    let want = ReceivedSms {
        number: "+46708251358".into(),
        text: "hellohello".into(),
        parts: 1,
        message_references: vec![0],
    };
    assert_eq!(got[0], want);
    assert_eq!(got[1].message_references, vec![1]);
}

#[tokio::test]
async fn echo_covers_the_pdu_body_but_not_ctrl_z() {
    let (mut host, log, _task) = start(SimOptions::default());
    host.send(b"AT+CMGS=23\r").await;
    host.expect(b"AT+CMGS=23\r\r\n> ").await;
    host.send(format!("{HELLO_PDU}\x1a").as_bytes()).await;
    host.expect(format!("{HELLO_PDU}\r\n+CMGS: 0\r\n\r\nOK\r\n").as_bytes())
        .await;
    assert_eq!(log.wait_for(1, WAIT).await.len(), 1);
}

/// Two UCS-2 parts, concatenation reference 0x2A: "hel" + "lo!".
const PART_1: &str = "0041000B916407281553F800080C0500032A020100680065006C";
const PART_2: &str = "0041000B916407281553F800080C0500032A0202006C006F0021";

#[tokio::test]
async fn concatenated_parts_become_one_sms() {
    let (mut host, log, _task) = quiet_modem(SimOptions::default()).await;
    host.at("AT+CMGS=25", "\r\n> ").await;
    host.send(format!("{PART_1}\x1a").as_bytes()).await;
    host.expect(b"\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    assert!(log.all().is_empty());
    host.at("AT+CMGS=25", "\r\n> ").await;
    host.send(format!("{PART_2}\x1a").as_bytes()).await;
    host.expect(b"\r\n+CMGS: 1\r\n\r\nOK\r\n").await;
    let got = log.wait_for(1, WAIT).await;
    assert_eq!(
        got,
        [ReceivedSms {
            number: "+46708251358".into(),
            text: "hello!".into(),
            parts: 2,
            message_references: vec![0, 1],
        }]
    );
}

#[tokio::test]
async fn esc_cancels_the_prompt() {
    let options = SimOptions::default();
    let handle = options.handle.clone();
    let (mut host, log, _task) = quiet_modem(options).await;
    host.at("AT+CMGS=23", "\r\n> ").await;
    host.send(b"0011000B91\x1b").await;
    host.expect(b"\r\nOK\r\n").await;
    host.at("AT", "\r\nOK\r\n").await;
    assert!(log.all().is_empty());
    let stats = handle.stats().snapshot();
    assert_eq!(
        (stats.escapes, stats.submissions, stats.cmgs_commands),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn bad_pdus_get_cms_304() {
    let (mut host, log, _task) = quiet_modem(SimOptions::default()).await;
    // Length argument one short of the TPDU.
    host.at("AT+CMGS=22", "\r\n> ").await;
    host.send(format!("{HELLO_PDU}\x1a").as_bytes()).await;
    host.expect(b"\r\n+CMS ERROR: 304\r\n").await;
    host.at("AT+CMGS=3", "\r\n> ").await;
    host.send(b"00XYZ\x1a").await;
    host.expect(b"\r\n+CMS ERROR: 304\r\n").await;
    host.at("AT+CMGS=0", "\r\n+CMS ERROR: 304\r\n").await;
    // The modem is still usable and MR 0 was not used up.
    host.at("AT+CMGS=23", "\r\n> ").await;
    host.send(format!("{HELLO_PDU}\x1a").as_bytes()).await;
    host.expect(b"\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    assert_eq!(log.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn text_mode_ira_and_ucs2() {
    let (mut host, log, _task) = quiet_modem(SimOptions::default()).await;
    host.at("AT+CMGF=1", "\r\nOK\r\n").await;
    host.at("AT+CMGS=23", "\r\n+CMS ERROR: 305\r\n").await;
    host.at("AT+CMGS=\"+46708251358\"", "\r\n> ").await;
    // Enter inside the text gives a new prompt and a line break in the message.
    host.send(b"Your code\r").await;
    host.expect(b"\r\n> ").await;
    host.send(b"is 123456\x1a").await;
    host.expect(b"\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    host.at("AT+CSCS=\"UCS2\"", "\r\nOK\r\n").await;
    // "+46" and "Hé" in UTF-16BE hex.
    host.at("AT+CMGS=\"002B00340036\",145", "\r\n> ").await;
    host.send(b"004800E9\x1a").await;
    host.expect(b"\r\n+CMGS: 1\r\n\r\nOK\r\n").await;
    let got = log.wait_for(2, WAIT).await;
    assert_eq!(got[0].text, "Your code\nis 123456");
    assert_eq!(got[0].number, "+46708251358");
    assert_eq!(
        (got[1].number.as_str(), got[1].text.as_str()),
        ("+46", "Hé")
    );
}
