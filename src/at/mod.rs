//! The sans-IO AT engine: turns the bytes a modem writes into events. No IO, never
//! blocks, never panics, whatever the bytes.
//!
//! The driver tells the [`Digester`] which command it has just written (so the echo and
//! the information lines of that command can be told apart from unsolicited result
//! codes), feeds it every byte it reads, and pulls events until there are none.

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

/// Incremental AT output digester. See the module docs.
#[derive(Debug, Default)]
pub struct Digester {
    buffer: Vec<u8>,
    pending: Option<String>,
}

impl Digester {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `command` (without the trailing `\r`, e.g. `AT+CMGS=23`) was written.
    pub fn command_sent(&mut self, command: &str) {
        self.pending = Some(command.to_owned());
    }

    /// Forget the command in flight (after a timeout) and any partial reply.
    pub fn reset(&mut self) {
        self.pending = None;
        self.buffer.clear();
    }

    /// Append bytes read from the port.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffered bytes hold one.
    pub fn next_event(&mut self) -> Option<Event> {
        todo!("at: next_event")
    }
}
