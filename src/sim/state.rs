//! The modem's settings and SIM/radio state, and what each command does to them. Pure:
//! no IO, no timers (the caller passes `now`); the session decides when bytes go out.

use tokio::time::Instant;

use super::commands::{Charset, Command, RegKind, SendTarget};
use super::reply::{Final, Reply};
use super::storage::{Storage, MEMORIES};
use super::submit::{self, Part, Reassembler};
use super::{ReceivedSms, SimOptions};

pub const MANUFACTURER: &str = "sms2fa";
pub const MODEL: &str = "SIMULATOR";
pub const REVISION: &str = concat!("sms2fa-sim-", env!("CARGO_PKG_VERSION"));
/// A Luhn-valid 15-digit IMEI (the classic documentation example), so that drivers
/// validating the check digit accept it.
pub const IMEI: &str = "490154203237518";
pub const OPERATOR: &str = "SIMNET";
/// Wrong PIN entries before the SIM wants its PUK.
pub const PIN_ATTEMPTS: u8 = 3;

/// Where the text after the `> ` prompt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Pdu { length: usize },
    Text { number: String },
}

/// What the session must do after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Write `\r\n> ` and collect the body.
    Prompt(Input),
    /// Answer `OK`, then restart: silent for the boot delay, settings back to power-on.
    Reboot,
    /// Answer `OK`, then (a moment later) this `+CUSD:` line.
    Ussd(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimState {
    Ready,
    PinRequired { attempts_left: u8 },
    PukRequired,
}

#[derive(Debug)]
pub struct Modem {
    options: SimOptions,
    pub echo: bool,
    pub cmee: u8,
    sim: SimState,
    sim_busy_until: Option<Instant>,
    text_mode: bool,
    pub charset: Charset,
    text_first_octet: u8,
    service: u8,
    indications: String,
    /// `<ds>` of `AT+CNMI`: 1 routes status reports as `+CDS` URCs.
    pub report_routing: u8,
    /// `<mt>` of `AT+CNMI`: 0 stores received SMS silently, 1 stores and announces
    /// them (`+CMTI`), 2 routes them (`+CMT`).
    pub message_routing: u8,
    reg_modes: [u8; 3],
    radio_on: bool,
    pub registered: bool,
    // The TP-MR counter lives on the SIM (EF-SMSS): it survives a reboot.
    next_mr: u8,
    reassembler: Reassembler,
    pub storage: Storage,
}

impl Modem {
    pub fn new(options: &SimOptions) -> Self {
        let mut storage = Storage::default();
        for (mem, entry) in &options.stored {
            storage.store(mem, entry.clone());
        }
        Self::fresh(
            options.clone(),
            0,
            options.registered,
            Reassembler::default(),
            storage,
        )
    }

    /// Back to the state after a power cycle: settings lost, SIM locked again. The
    /// network side (registration, parts in reassembly) and the SIM's TP-MR counter stay.
    pub fn power_on(&mut self) {
        let reassembler = std::mem::take(&mut self.reassembler);
        let mut storage = std::mem::take(&mut self.storage);
        // The memory selection is a setting: lost; the contents stay.
        let _ = storage.select("SM");
        *self = Self::fresh(
            self.options.clone(),
            self.next_mr,
            self.registered,
            reassembler,
            storage,
        );
    }

    fn fresh(
        options: SimOptions,
        next_mr: u8,
        registered: bool,
        reassembler: Reassembler,
        storage: Storage,
    ) -> Self {
        Self {
            echo: options.echo,
            cmee: 0,
            sim: match options.pin {
                Some(_) => SimState::PinRequired {
                    attempts_left: PIN_ATTEMPTS,
                },
                None => SimState::Ready,
            },
            sim_busy_until: None,
            text_mode: false,
            charset: Charset::Gsm,
            // SMS-SUBMIT with a relative validity period, the usual modem default.
            text_first_octet: 17,
            service: u8::from(options.phase2_plus_only),
            indications: "0,0,0,0,0".into(),
            report_routing: 0,
            message_routing: 0,
            reg_modes: [0; 3],
            radio_on: true,
            registered,
            next_mr,
            reassembler,
            storage,
            options,
        }
    }

    pub fn execute(&mut self, command: Command, now: Instant) -> Action {
        use Command as C;
        let reply = match command {
            C::Attention => Reply::ok(),
            C::Reset => {
                self.echo = self.options.echo;
                self.cmee = 0;
                Reply::ok()
            }
            C::Identify => Reply {
                lines: vec![
                    format!("Manufacturer: {MANUFACTURER}"),
                    format!("Model: {MODEL}"),
                    format!("Revision: {REVISION}"),
                    format!("IMEI: {IMEI}"),
                ],
                result: Final::Ok,
            },
            C::Echo(on) => {
                self.echo = on;
                Reply::ok()
            }
            C::SetCmee(n) => {
                self.cmee = n;
                Reply::ok()
            }
            C::QueryCmee => Reply::line(format!("+CMEE: {}", self.cmee)),
            C::QueryPin => self.query_pin(now),
            C::EnterPin(pin) => self.enter_pin(&pin, now),
            C::SetCharset(cs) => {
                self.charset = cs;
                Reply::ok()
            }
            C::QueryCharset => Reply::line(format!("+CSCS: \"{}\"", self.charset.name())),
            C::SignalQuality => {
                let rssi = if self.radio_on && self.registered {
                    self.options.rssi
                } else {
                    99
                };
                Reply::line(format!("+CSQ: {rssi},99"))
            }
            C::QueryRegistration(kind) => self.registration(kind, now),
            C::SetRegistration(kind, n) => {
                self.reg_modes[kind as usize] = n;
                Reply::ok()
            }
            C::QueryOperator => Reply::line(if self.reg_status(RegKind::Cs, now) == 1 {
                format!("+COPS: 0,0,\"{OPERATOR}\",7")
            } else {
                "+COPS: 0".into()
            }),
            C::Manufacturer => Reply::line(MANUFACTURER),
            C::Model => Reply::line(MODEL),
            C::Revision => Reply::line(REVISION),
            C::Serial => Reply::line(IMEI),
            // What gammu-smsd and smstools3 ask at start-up (bench/peers.py drives them).
            C::QueryServiceCentre => Reply::line("+CSCA: \"+15550009999\",145"),
            C::SetServiceCentre => Reply::ok(),
            C::Imsi => Reply::line("001010123456789"),
            C::QueryFunctionality => Reply::line(format!("+CFUN: {}", u8::from(self.radio_on))),
            C::SetFunctionality { fun, reset } => {
                if reset {
                    return Action::Reboot;
                }
                self.radio_on = fun == 1;
                Reply::ok()
            }
            C::Ussd(_) if self.reg_status(RegKind::Cs, now) != 1 => Reply::with(Final::Cme(30)),
            C::Ussd(_) => {
                let reply = &self.options.ussd_reply;
                let line = if self.options.ussd_packed_reply {
                    crate::sms::gsm7_packed_hex(reply)
                        .map(|hex| format!("+CUSD: 0,\"{hex}\",15"))
                        .unwrap_or_else(|| "+CUSD: 4".to_owned())
                } else {
                    format!("+CUSD: 0,\"{reply}\",15")
                };
                return Action::Ussd(line);
            }
            C::Unknown => Reply::with(Final::Error),
            sms => return self.sms_command(sms, now),
        };
        Action::Reply(reply)
    }

    /// 27.005 commands need an unlocked, settled SIM.
    fn sms_command(&mut self, command: Command, now: Instant) -> Action {
        use Command as C;
        if let Some(code) = self.sim_gate(now) {
            return Action::Reply(Reply::with(Final::Cms(code)));
        }
        let reply = match command {
            C::SetFormat(f) => {
                self.text_mode = f == 1;
                Reply::ok()
            }
            C::QueryFormat => Reply::line(format!("+CMGF: {}", u8::from(self.text_mode))),
            C::SetTextParams(fo) => {
                self.text_first_octet = fo;
                Reply::ok()
            }
            C::SetService(0) if self.options.phase2_plus_only => Reply::with(Final::Cms(303)),
            C::SetService(s) => {
                self.service = s;
                Reply::line("+CSMS: 1,1,1")
            }
            C::QueryService => Reply::line(format!("+CSMS: {},1,1,1", self.service)),
            C::SetIndications { params, ds } => {
                if self.options.cnmi_rejected.contains(&params) {
                    Reply::with(Final::Cms(303))
                } else {
                    self.message_routing = params
                        .split(',')
                        .nth(1)
                        .and_then(|mt| mt.parse().ok())
                        .unwrap_or(0);
                    self.indications = params;
                    self.report_routing = ds;
                    Reply::ok()
                }
            }
            C::QueryIndications => Reply::line(format!("+CNMI: {}", self.indications)),
            C::TestIndications => Reply::line("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"),
            C::Acknowledge => Reply::ok(),
            C::QueryStorage => Reply::line(self.storage.usage(true)),
            C::TestStorage => Reply::line(format!(
                "+CPMS: ({mems}),(\"SM\",\"ME\"),(\"SM\",\"ME\")",
                mems = MEMORIES.map(|m| format!("\"{m}\"")).join(",")
            )),
            C::SelectStorage(mem) => match self.storage.select(&mem) {
                Ok(()) => Reply::line(self.storage.usage(false)),
                Err(code) => Reply::with(Final::Cms(code)),
            },
            C::ReadMessage(_) | C::ListMessages(_) if self.text_mode => {
                // Only the PDU-mode listing is simulated.
                Reply::with(Final::Cms(302))
            }
            C::ReadMessage(index) => match self.storage.read(index) {
                Ok(entry) => Reply {
                    lines: vec![
                        format!("+CMGR: {},,{}", entry.stat, entry.tpdu_len()),
                        hex::encode_upper(&entry.pdu),
                    ],
                    result: Final::Ok,
                },
                Err(code) => Reply::with(Final::Cms(code)),
            },
            C::DeleteMessage(index) => {
                self.storage.delete(index);
                Reply::ok()
            }
            C::ListMessages(stat) => Reply {
                lines: self
                    .storage
                    .list(stat)
                    .into_iter()
                    .flat_map(|(index, entry)| {
                        [
                            format!("+CMGL: {index},{},,{}", entry.stat, entry.tpdu_len()),
                            hex::encode_upper(&entry.pdu),
                        ]
                    })
                    .collect(),
                result: Final::Ok,
            },
            C::Send(target) => return self.send_command(target),
            _ => Reply::with(Final::Error),
        };
        Action::Reply(reply)
    }

    fn send_command(&mut self, target: SendTarget) -> Action {
        if self.options.memory_full_blocks_sends && self.storage.full("SM") {
            return Action::Reply(Reply::with(Final::Cms(322)));
        }
        match (self.text_mode, target) {
            (false, SendTarget::Length(length)) if (1..=176).contains(&length) => {
                Action::Prompt(Input::Pdu { length })
            }
            (true, SendTarget::Number(number)) => Action::Prompt(Input::Text { number }),
            (false, _) => Action::Reply(Reply::with(Final::Cms(submit::INVALID_PDU))),
            (true, _) => Action::Reply(Reply::with(Final::Cms(submit::INVALID_TEXT))),
        }
    }

    /// Decode a body submitted with Ctrl-Z; the `+CMS ERROR` code when it cannot be sent.
    pub fn submit(&self, input: &Input, body: &[u8], now: Instant) -> Result<Part, u16> {
        let part = match input {
            Input::Pdu { length } => submit::decode_pdu(*length, body)?,
            Input::Text { number } => submit::decode_text(
                number,
                body,
                self.charset,
                self.text_first_octet & 0x20 != 0,
            )?,
        };
        if self.reg_status(RegKind::Cs, now) != 1 && self.reg_status(RegKind::Eps, now) != 1 {
            return Err(331);
        }
        Ok(part)
    }

    /// The network accepted `part`: its TP-MR, and the SMS if this completed one.
    pub fn accept(&mut self, part: Part) -> (u8, Option<ReceivedSms>) {
        let mr = self.next_mr;
        self.next_mr = self.next_mr.wrapping_add(1);
        (mr, self.reassembler.add(part, mr))
    }

    fn sim_gate(&self, now: Instant) -> Option<u16> {
        match self.sim {
            SimState::PinRequired { .. } => Some(311),
            SimState::PukRequired => Some(316),
            SimState::Ready if self.sim_busy(now) => Some(314),
            SimState::Ready => None,
        }
    }

    fn sim_busy(&self, now: Instant) -> bool {
        self.sim_busy_until.is_some_and(|until| now < until)
    }

    fn query_pin(&self, now: Instant) -> Reply {
        let mut reply = match self.sim {
            SimState::Ready if self.sim_busy(now) => return Reply::with(Final::Cme(14)),
            SimState::Ready => Reply::line("+CPIN: READY"),
            SimState::PinRequired { .. } => Reply::line("+CPIN: SIM PIN"),
            SimState::PukRequired => Reply::line("+CPIN: SIM PUK"),
        };
        if self.options.cpin_without_final {
            reply.result = Final::Omitted;
        }
        reply
    }

    fn enter_pin(&mut self, pin: &str, now: Instant) -> Reply {
        match self.sim {
            SimState::Ready => Reply::with(Final::Cme(3)),
            SimState::PukRequired => Reply::with(Final::Cme(12)),
            SimState::PinRequired { attempts_left } => {
                if self.options.pin.as_deref() == Some(pin) {
                    self.sim = SimState::Ready;
                    let busy = self.options.sim_busy_after_pin;
                    self.sim_busy_until = (!busy.is_zero()).then(|| now + busy);
                    Reply::ok()
                } else {
                    let left = attempts_left.saturating_sub(1);
                    self.sim = if left == 0 {
                        SimState::PukRequired
                    } else {
                        SimState::PinRequired {
                            attempts_left: left,
                        }
                    };
                    Reply::with(Final::Cme(16))
                }
            }
        }
    }

    /// 0 not searching, 1 home, 2 searching (27.007 `<stat>`).
    fn reg_status(&self, kind: RegKind, now: Instant) -> u8 {
        if self.options.lte_only && kind != RegKind::Eps {
            return 0;
        }
        let sim_ok = self.sim == SimState::Ready && !self.sim_busy(now);
        match (self.radio_on && sim_ok, self.registered) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => 2,
        }
    }

    fn registration(&self, kind: RegKind, now: Instant) -> Reply {
        let n = self.reg_modes[kind as usize];
        let stat = self.reg_status(kind, now);
        let location = if n >= 2 && stat == 1 {
            ",\"1A2B\",\"01C3D4E5\""
        } else {
            ""
        };
        Reply::line(format!("{}: {n},{stat}{location}", kind.prefix()))
    }
}
