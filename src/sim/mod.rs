//! The simulated modem: speaks the AT subset sms2fa uses, on any async byte stream
//! (a `tokio::io::duplex` pipe, or the far end of a pseudo-terminal), decodes the PDUs it
//! is given and records each SMS (number + text). Used by tests and `serve --simulate`.
//!
//! It behaves like a verbose-result-code modem: replies framed `\r\n<line>\r\n`, echo on
//! at boot, the `> ` prompt (no newline) after `AT+CMGS`. Choices where real modems
//! differ:
//! - ESC at the prompt cancels and answers `\r\nOK\r\n` (some modems answer nothing).
//! - With echo on, the body typed after `> ` is echoed too (Ctrl-Z/ESC are not).
//! - `+CMS ERROR` is numeric whatever `AT+CMEE` says, verbose with `AT+CMEE=2`.
//! - SMS commands answer `+CMS ERROR: 311` while the SIM wants its PIN (316 for PUK,
//!   314 while busy after the PIN); an unregistered modem answers 331 after the body.
//! - `+CDS` is only emitted when `AT+CNMI` routed status reports (`<ds>` = 1) and the
//!   PDU asked for one (TP-SRR); with `<ds>` = 2 the report is stored in `SR` and
//!   announced by `+CDSI: "SR",<index>`. `AT+CPMS`, `AT+CMGR`, `AT+CMGD` and
//!   `AT+CMGL` (PDU mode) work on `SM`, `ME` and `SR`, 20 entries each.
//! - With `cpin_without_final`, `AT+CPIN?` is answered by its `+CPIN:` line alone
//!   (Wavecom).
//! - An SMS sent to the modem ([`SimHandle::receive_sms`]) is split into SMS-DELIVER
//!   parts and, as `AT+CNMI`'s `<mt>` says, stored in `SM` (announced by `+CMTI` when
//!   `<mt>` = 1) or routed as `+CMT` (`<mt>` = 2). A part that finds `SM` full waits at
//!   the network, announced by `^SMMEMFULL`, until a slot is freed.
//! - `ATZ` restores echo and `AT+CMEE`; `AT+CFUN=1,1` reboots: settings lost, PIN
//!   needed again, silent for `boot_delay`.

mod commands;
mod handle;
mod log;
mod pty;
mod reply;
mod report;
mod session;
mod state;
mod storage;
mod submit;

pub use handle::{SimHandle, SimStats, SimStatsSnapshot, COMMAND_HISTORY};
pub use log::{SmsLog, SmsLogError};
pub use pty::SimPort;
pub use storage::StoredPdu;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// Behaviour switches of the simulated modem. `Default` is a well-behaved modem: echo
/// on at boot, no PIN, registered, zero delays, no faults.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Echo commands back until `ATE0` (real modems boot with echo on).
    pub echo: bool,
    /// When set, the SIM wants this PIN (`+CPIN: SIM PIN`) until `AT+CPIN="<pin>"`;
    /// three wrong entries lock it (`+CPIN: SIM PUK`).
    pub pin: Option<String>,
    /// Radio time per `AT+CMGS`, before `+CMGS: <mr>` is answered.
    pub send_delay: Duration,
    /// After start (and after `AT+CFUN=1,1`) the modem answers nothing for this long;
    /// what arrives meanwhile is dropped.
    pub boot_delay: Duration,
    /// Written as-is when the modem has booted (at start and after `AT+CFUN=1,1`), e.g.
    /// `b"\0\0\r\nRDY\r\n"` for the noise and banner real modems emit.
    pub boot_output: Vec<u8>,
    /// After a correct PIN, `AT+CPIN?` answers `+CME ERROR: 14` and SMS commands
    /// `+CMS ERROR: 314` (SIM busy) for this long.
    pub sim_busy_after_pin: Duration,
    /// Registration state: `false` reports `+CREG: 0,2` (searching) and sends fail
    /// with `+CMS ERROR: 331`. [`SimHandle::set_registered`] changes it at run time.
    pub registered: bool,
    /// Answer `AT+CPIN?` with its `+CPIN:` line and no final result code, as Wavecom
    /// modems do.
    pub cpin_without_final: bool,
    /// Behave like an LTE-only module: `+CREG`/`+CGREG` report `0,0`, only `+CEREG`
    /// tells the registration.
    pub lte_only: bool,
    /// The `<rssi>` of `+CSQ` while registered (99, unknown, otherwise).
    pub rssi: u8,
    /// Scripted failures: the k-th submission (1-based count of bodies ended with
    /// Ctrl-Z on this modem) is answered `+CMS ERROR: <code>` after `send_delay`.
    pub cms_errors: BTreeMap<u64, u16>,
    /// Scripted hangs: see [`Silence`].
    pub silences: Vec<Silence>,
    /// `AT+CNMI` parameter lists (as `2,1,2,1,0`) answered `+CMS ERROR: 303`, to make
    /// the driver fall back to its next variant.
    pub cnmi_rejected: Vec<String>,
    /// Unsolicited codes between and inside replies.
    pub urc_storm: Option<UrcStorm>,
    /// Emit a `+CDS` status report for each accepted PDU that asked for one.
    pub delivery_reports: bool,
    /// Time between `+CMGS: <mr>` and its `+CDS`.
    pub delivery_report_delay: Duration,
    /// TP-ST of the reports: 0 delivered, 0x20.. pending, 0x40.. failed.
    pub delivery_status: u8,
    /// With `<ds>` = 2 reports are stored in `SR` and announced by `+CDSI: "SR",<n>`;
    /// with this set they are stored without a word, as when the `+CDSI` was lost.
    pub cdsi_silent: bool,
    /// Messages in storage at power-on: (memory, entry).
    pub stored: Vec<(String, StoredPdu)>,
    /// While `SM` is full, `AT+CMGS` answers `+CMS ERROR: 322` (memory full), as some
    /// modems do until their storage is emptied.
    pub memory_full_blocks_sends: bool,
    /// What the network answers any USSD request with (`+CUSD: 0,"…",15`, 200 ms after
    /// `OK`); as GSM 7-bit packed hex with `ussd_packed_reply`, as Huawei sticks do.
    pub ussd_reply: String,
    pub ussd_packed_reply: bool,
    /// Stay in message service phase 2+ (`+CSMS: 1`, `AT+CSMS=0` refused): a routed
    /// `+CMT` then wants `AT+CNMA`.
    pub phase2_plus_only: bool,
    /// Counters and run-time controls; clones of these options share it.
    pub handle: SimHandle,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            echo: true,
            pin: None,
            send_delay: Duration::ZERO,
            boot_delay: Duration::ZERO,
            boot_output: Vec::new(),
            sim_busy_after_pin: Duration::ZERO,
            registered: true,
            cpin_without_final: false,
            lte_only: false,
            rssi: 21,
            cms_errors: BTreeMap::new(),
            silences: Vec::new(),
            cnmi_rejected: Vec::new(),
            urc_storm: None,
            delivery_reports: false,
            delivery_report_delay: Duration::ZERO,
            delivery_status: 0,
            cdsi_silent: false,
            stored: Vec::new(),
            memory_full_blocks_sends: false,
            ussd_reply: "Your balance is 4.20 EUR".to_owned(),
            ussd_packed_reply: false,
            phase2_plus_only: false,
            handle: SimHandle::default(),
        }
    }
}

/// A submission that is never answered, after which the modem stays mute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// 1-based index of the submission (body ended with Ctrl-Z) left unanswered.
    pub at_send: u64,
    /// How long the modem then answers nothing, counted from that Ctrl-Z.
    pub duration: Duration,
    /// The network got the SMS anyway (it is recorded after `send_delay`): only the
    /// answer was lost, so a driver that resends delivers it twice.
    pub delivered: bool,
}

/// Unsolicited result codes written every `interval` while the modem is not at the
/// prompt (zero: never on a timer), cycling through `lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrcStorm {
    pub interval: Duration,
    pub lines: Vec<String>,
    /// Also put one inside every reply that has an information line, between that line
    /// and the final result code.
    pub inside_replies: bool,
}

impl UrcStorm {
    /// A Huawei-style flood: signal, registration and boot URCs every `interval`, also
    /// inside replies.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            lines: vec![
                "^RSSI: 17".into(),
                "+CREG: 1".into(),
                "^BOOT:20952548,0,0,0,72".into(),
            ],
            inside_replies: true,
        }
    }
}

/// One SMS as the simulated network received it (concatenated parts reassembled).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceivedSms {
    pub number: String,
    pub text: String,
    pub parts: usize,
    /// The TP-MR the simulator answered for each part, in order.
    pub message_references: Vec<u8>,
}

/// Serve the AT dialogue on `stream` until it closes (or [`SimHandle::unplug`]).
pub async fn run<S>(stream: S, options: SimOptions, log: SmsLog) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    session::Session::new(stream, options, log).run().await
}

#[cfg(test)]
mod tests;
