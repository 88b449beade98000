//! The sans-IO AT engine: turns the bytes a modem writes into events. No IO, never
//! blocks, never panics, whatever the bytes.
//!
//! The driver tells the [`Digester`] which command it has just written (so the echo and
//! the information lines of that command can be told apart from unsolicited result
//! codes), feeds it every byte it reads, and pulls events until there are none.
//!
//! Layout: [`frame`] is the pure framer (bytes and context in, one frame out) built on
//! the per-line parsers in `line` and the URC rules in `urc`; the [`Digester`] only
//! buffers bytes and collects a reply's lines around it. `values` parses the
//! information lines the driver acts on, `cms` classifies `+CMS ERROR` codes.

mod cms;
pub mod frame;
mod line;
mod unsolicited;
mod urc;
mod ussd;
mod values;

#[cfg(test)]
mod props;
#[cfg(test)]
mod transcripts;

pub use cms::{
    classify_cms, classify_cms_error, cms_code_from_text, cms_description, describe_cms_error,
    CmsClass,
};
pub use frame::{Context, Frame, MAX_FRAME};
pub use unsolicited::{Memory, Unsolicited};
pub use ussd::{parse_cusd, ussd_request, UssdAnswer};
pub use values::{
    parse_cds_header, parse_cmgl, parse_cmgr, parse_cmgs, parse_cops, parse_cpin,
    parse_cpms_memories, parse_csq, parse_registration, ListedMessage, RegDomain, RegState,
    Registration, SignalQuality, SimState, ValueError,
};

/// What the modem said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The complete answer to the command in flight: its information lines (without
    /// empty lines) and the final result code.
    Response {
        lines: Vec<String>,
        result: FinalResult,
    },
    /// The `> ` prompt of `AT+CMGS` / `AT+CMGW`, waiting for the PDU and Ctrl-Z.
    Prompt,
    /// An unsolicited result code (`+CMTI: "SM",3`, `^RSSI: 12`, `RING`, …); two-line URCs
    /// (`+CMT:`, `+CDS:`) carry their PDU line in `pdu`.
    Urc(Urc),
    /// The modem echoing the command it was sent (echo on, `ATE1`).
    Echo(String),
    /// Bytes that form no line: noise, NUL bytes at boot, an invalid line.
    Garbage(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urc {
    /// The URC line, e.g. `+CDS: 25`.
    pub line: String,
    /// The second line of a two-line URC (hex PDU), if this URC has one.
    pub pdu: Option<String>,
}

/// The final result code that ends a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    Ok,
    Error,
    /// `+CME ERROR: <n>` or its verbose form.
    CmeError(ErrorCode),
    /// `+CMS ERROR: <n>` or its verbose form.
    CmsError(ErrorCode),
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`, `COMMAND NOT SUPPORT`, …
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Numeric(u16),
    Verbose(String),
}

/// The most information lines one reply may collect. Replies beyond it (a modem stuck
/// repeating a line) have the extra lines reported as garbage instead of buffered.
/// A full SIM listed with `AT+CMGL` is a few hundred lines.
pub const MAX_REPLY_LINES: usize = 1024;

/// Incremental AT output digester. See the module docs.
#[derive(Debug, Default)]
pub struct Digester {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already framed; compacted on the next `feed` so that framing
    /// many short lines from one large read stays linear.
    start: usize,
    pending: Option<String>,
    prompted: bool,
    lines: Vec<String>,
}

impl Digester {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `command` (without the trailing `\r`, e.g. `AT+CMGS=23`) was written.
    /// Lines collected for an earlier, unanswered command are dropped.
    pub fn command_sent(&mut self, command: &str) {
        self.pending = Some(command.to_owned());
        self.prompted = false;
        self.lines.clear();
    }

    /// Forget the command in flight (after a timeout) and any partial reply.
    pub fn reset(&mut self) {
        self.pending = None;
        self.prompted = false;
        self.lines.clear();
        self.buffer.clear();
        self.start = 0;
    }

    /// Append bytes read from the port.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start.min(self.buffer.len()));
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The command in flight, if any.
    pub fn pending(&self) -> Option<&str> {
        self.pending.as_deref()
    }

    /// Whether the reply collected so far may be complete although no final result
    /// code came: the pending query is one that some modem families answer with their
    /// information line alone (see [`urc::may_end_unterminated`]), and that line is in.
    /// The driver then waits a short quiet time for the final code before it
    /// [`settles`](Self::settle) the reply.
    pub fn may_settle(&self) -> bool {
        self.pending.as_deref().is_some_and(|command| {
            self.buffered() == 0
                && self
                    .lines
                    .iter()
                    .any(|line| urc::may_end_unterminated(command, line))
        })
    }

    /// The reply of a query that [`may_settle`](Self::may_settle), taken as answered
    /// `OK`: the command is no longer in flight. `None` (and nothing changes) otherwise.
    pub fn settle(&mut self) -> Option<Event> {
        if !self.may_settle() {
            return None;
        }
        self.pending = None;
        self.prompted = false;
        Some(Event::Response {
            lines: std::mem::take(&mut self.lines),
            result: FinalResult::Ok,
        })
    }

    /// Bytes fed but not yet turned into events (an incomplete line).
    pub fn buffered(&self) -> usize {
        self.buffer.len().saturating_sub(self.start)
    }

    /// The next complete event, if the buffered bytes hold one. Each call consumes at
    /// least one byte per event it returns, and returns `None` once the rest needs more
    /// bytes, so draining with `while let Some(e) = d.next_event()` always ends.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let unread = self.buffer.get(self.start..).unwrap_or_default();
            let ctx = Context {
                pending: self.pending.as_deref(),
                prompted: self.prompted,
            };
            let (frame, used) = frame::frame(unread, &ctx);
            if used == 0 {
                return None;
            }
            self.start = (self.start + used).min(self.buffer.len());
            if self.start == self.buffer.len() {
                self.buffer.clear();
                self.start = 0;
            }
            match frame {
                None => {}
                Some(Frame::Info(line)) if self.lines.len() < MAX_REPLY_LINES => {
                    self.lines.push(line);
                }
                Some(Frame::Info(line)) => return Some(Event::Garbage(line.into_bytes())),
                Some(Frame::Final(result)) => {
                    self.pending = None;
                    self.prompted = false;
                    return Some(Event::Response {
                        lines: std::mem::take(&mut self.lines),
                        result,
                    });
                }
                Some(Frame::Event(event)) => {
                    if event == Event::Prompt {
                        self.prompted = true;
                    }
                    return Some(event);
                }
            }
        }
    }
}
